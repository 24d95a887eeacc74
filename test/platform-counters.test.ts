/**
 * The software platform's monotonic counters (issue 13, docs/ATTESTATION.md §6.3): compare-and-set
 * advances, namespaces per identity binding, exactly one winner across processes, bounds, and
 * hostile counter files (truncated, garbage, symlinks, copies, other users' modes).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_COUNTER_VALUE, MAX_COUNTERS_PER_NAMESPACE, SoftwareAttestationProvider, type ModuleIdentity } from '../attest/index.js';
import { counterNamespace } from '../attest/counters.js'; // internal: where the documented counter files live
import { syncCodeOf } from './helpers/errors.js';

const DIST_ATTEST = resolve('dist/attest/index.js');

const identity: ModuleIdentity = Object.freeze({
  measurement: 'ab'.repeat(32),
  signers: ['cd'.repeat(32)],
  signer: 'cd'.repeat(32),
  svn: 3,
  name: 'vault',
  version: '1.0.0',
});

const tag = (byte: number) => new Uint8Array(32).fill(byte);

function setup() {
  const dir = join(mkdtempSync(join(tmpdir(), 'enclave-counters-')), 'platform');
  const p = new SoftwareAttestationProvider({ dir });
  const nsDir = (policy: 'measurement' | 'signer' = 'signer') => join(dir, 'counters', Buffer.from(counterNamespace(identity, policy)).toString('hex'));
  const file = (id: bigint, policy: 'measurement' | 'signer' = 'signer') => join(nsDir(policy), id.toString(16).padStart(16, '0'));
  return { dir, p, nsDir, file };
}

/** The documented 64-byte counter file, written independently of attest/counters.ts. */
function counterFile(namespace: Uint8Array, id: bigint, value: bigint, t: Uint8Array): Buffer {
  const out = Buffer.alloc(64);
  out.write('ENCC', 0, 'latin1');
  out[4] = 1;
  out.writeBigUInt64BE(id, 8);
  out.writeBigUInt64BE(value, 16);
  out.set(t, 24);
  const check = createHash('sha256').update('enclave/counter-file/v1\0').update(namespace).update(out.subarray(0, 56)).digest();
  out.set(check.subarray(0, 8), 56);
  return out;
}

describe('compare-and-set', () => {
  it('a new counter reads 0 and zero tag; advance from the value it has, never from another', () => {
    const { p, file, nsDir, dir } = setup();
    expect(p.readCounter(identity, 'signer', 7n)).toEqual({ value: 0n, tag: tag(0) });
    expect(p.advanceCounter(identity, 'signer', 7n, 1n, tag(1))).toBe(false);
    expect(p.advanceCounter(identity, 'signer', 7n, 0n, tag(1))).toBe(true);
    expect(p.advanceCounter(identity, 'signer', 7n, 0n, tag(2))).toBe(false);
    expect(p.readCounter(identity, 'signer', 7n)).toEqual({ value: 1n, tag: tag(1) });
    expect(p.advanceCounter(identity, 'signer', 7n, 1n, tag(2))).toBe(true);
    expect(p.readCounter(identity, 'signer', 7n)).toEqual({ value: 2n, tag: tag(2) });
    expect(p.readCounter(identity, 'signer', 8n).value).toBe(0n); // counters are independent
    // the documented file, modes 0600 in 0700 folders
    const ns = counterNamespace(identity, 'signer');
    expect(readFileSync(file(7n))).toEqual(counterFile(ns, 7n, 2n, tag(2)));
    expect(statSync(file(7n)).mode & 0o777).toBe(0o600);
    expect(statSync(nsDir()).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'counters')).mode & 0o777).toBe(0o700);
    expect(readdirSync(nsDir()).filter((n) => n.startsWith('.'))).toEqual([]); // no lock or temp left behind
    // another provider (another process, a restart) sees the same counters
    expect(new SoftwareAttestationProvider({ dir }).readCounter(identity, 'signer', 7n).value).toBe(2n);
  });

  it('keeps a copy of the tag: a caller changing its array afterwards changes nothing', () => {
    const { p } = setup();
    const t = tag(5);
    p.advanceCounter(identity, 'signer', 0n, 0n, t);
    t.fill(9);
    expect(p.readCounter(identity, 'signer', 0n).tag).toEqual(tag(5));
  });

  it('namespaces: signer counters survive an svn upgrade; other names, signers and the measurement policy are apart', () => {
    const { p } = setup();
    p.advanceCounter(identity, 'signer', 1n, 0n, tag(1));
    expect(p.readCounter({ ...identity, svn: 9, measurement: 'ef'.repeat(32) }, 'signer', 1n).value).toBe(1n);
    expect(p.readCounter({ ...identity, name: 'other' }, 'signer', 1n).value).toBe(0n);
    expect(p.readCounter({ ...identity, signer: '01'.repeat(32) }, 'signer', 1n).value).toBe(0n);
    expect(p.readCounter(identity, 'measurement', 1n).value).toBe(0n);
    p.advanceCounter(identity, 'measurement', 1n, 0n, tag(2));
    expect(p.readCounter({ ...identity, measurement: 'ef'.repeat(32) }, 'measurement', 1n).value).toBe(0n);
    expect(syncCodeOf(() => p.readCounter({ ...identity, signer: undefined }, 'signer', 1n))).toBe('sealing_unavailable');
    expect(syncCodeOf(() => p.advanceCounter({ ...identity, signer: undefined }, 'signer', 1n, 0n, tag(1)))).toBe('sealing_unavailable');
  });

  it('u64 ids: 0 and 2^64-1 are counters; values out of u64 and wrong tags are refused', () => {
    const { p } = setup();
    expect(p.advanceCounter(identity, 'signer', MAX_COUNTER_VALUE, 0n, tag(1))).toBe(true);
    expect(p.readCounter(identity, 'signer', MAX_COUNTER_VALUE).value).toBe(1n);
    expect(p.readCounter(identity, 'signer', 0n).value).toBe(0n);
    expect(() => p.readCounter(identity, 'signer', -1n)).toThrow(RangeError);
    expect(() => p.readCounter(identity, 'signer', 2n ** 64n)).toThrow(RangeError);
    expect(() => p.readCounter(identity, 'signer', 1 as unknown as bigint)).toThrow(TypeError);
    expect(() => p.advanceCounter(identity, 'signer', 1n, -1n, tag(1))).toThrow(RangeError);
    expect(() => p.advanceCounter(identity, 'signer', 1n, 0n, new Uint8Array(31))).toThrow(RangeError);
    expect(() => p.advanceCounter(identity, 'signer', 1n, 0n, 'x'.repeat(32) as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('bounds', () => {
  it('a counter at 2^64-1 cannot advance (counter_limit); a conflict there is still false', () => {
    const { p, file, nsDir } = setup();
    p.advanceCounter(identity, 'signer', 3n, 0n, tag(1)); // creates the folders
    writeFileSync(file(3n), counterFile(counterNamespace(identity, 'signer'), 3n, MAX_COUNTER_VALUE, tag(4)), { mode: 0o600 });
    expect(p.readCounter(identity, 'signer', 3n)).toEqual({ value: MAX_COUNTER_VALUE, tag: tag(4) });
    expect(syncCodeOf(() => p.advanceCounter(identity, 'signer', 3n, MAX_COUNTER_VALUE, tag(1)))).toBe('counter_limit');
    expect(p.advanceCounter(identity, 'signer', 3n, 5n, tag(1))).toBe(false);
    expect(readdirSync(nsDir()).filter((n) => n.startsWith('.'))).toEqual([]); // the lock was released
  });

  it(`refuses a new counter beyond ${MAX_COUNTERS_PER_NAMESPACE} in a namespace; existing ones still advance; other namespaces are not affected`, () => {
    const { p, file, nsDir } = setup();
    p.advanceCounter(identity, 'signer', 0n, 0n, tag(1));
    for (let id = 1n; id < BigInt(MAX_COUNTERS_PER_NAMESPACE); id++) writeFileSync(file(id), '');
    expect(syncCodeOf(() => p.advanceCounter(identity, 'signer', 99999n, 0n, tag(1)))).toBe('counter_limit');
    expect(p.advanceCounter(identity, 'signer', 0n, 1n, tag(2))).toBe(true);
    expect(p.advanceCounter(identity, 'measurement', 99999n, 0n, tag(1))).toBe(true);
    expect(readdirSync(nsDir()).length).toBe(MAX_COUNTERS_PER_NAMESPACE);
  });

  it("a killed writer's temp file is not a counter, and is removed when the next counter is made", () => {
    const { p, nsDir } = setup();
    p.advanceCounter(identity, 'signer', 0n, 0n, tag(1));
    const temp = join(nsDir(), '.0000000000000005.4242.0123456789ab.tmp');
    writeFileSync(temp, Buffer.alloc(64), { mode: 0o600 });
    expect(p.readCounter(identity, 'signer', 5n).value).toBe(0n);
    expect(p.advanceCounter(identity, 'signer', 6n, 0n, tag(1))).toBe(true);
    expect(existsSync(temp)).toBe(false);
  });
});

describe('across processes', () => {
  it('four processes racing on one counter: every value is won exactly once', async () => {
    const { dir, p } = setup();
    const rounds = 40;
    const script = `import { SoftwareAttestationProvider } from ${JSON.stringify(DIST_ATTEST)};
const p = new SoftwareAttestationProvider({ dir: ${JSON.stringify(dir)} });
const id = ${JSON.stringify(identity)};
const won = [];
for (;;) { const { value } = p.readCounter(id, 'signer', 1n); if (value >= ${rounds}n) break;
  if (p.advanceCounter(id, 'signer', 1n, value, new Uint8Array(32).fill(Number(value % 256n)))) won.push(Number(value)); }
console.log(JSON.stringify(won));`;
    const runs = await Promise.all(
      Array.from({ length: 4 }, () => new Promise<number[]>((res, rej) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.on('data', (b: Buffer) => (out += b));
        c.stderr.on('data', (b: Buffer) => (err += b));
        c.on('close', (code) => (code === 0 ? res(JSON.parse(out) as number[]) : rej(new Error(err))));
      })),
    );
    const all = runs.flat().sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: rounds }, (_, i) => i));
    expect(p.readCounter(identity, 'signer', 1n)).toEqual({ value: BigInt(rounds), tag: tag(rounds - 1) });
  });

  it('two processes advancing from the same expected value at once: exactly one wins', async () => {
    for (let round = 0; round < 5; round++) {
      const { dir, p } = setup();
      p.advanceCounter(identity, 'signer', 2n, 0n, tag(1));
      // both wait for the same instant, then advance from 1
      const at = Date.now() + 400;
      const script = (byte: number) => `import { SoftwareAttestationProvider } from ${JSON.stringify(DIST_ATTEST)};
const p = new SoftwareAttestationProvider({ dir: ${JSON.stringify(dir)} }).open();
const id = ${JSON.stringify(identity)};
while (Date.now() < ${at});
console.log(p.advanceCounter(id, 'signer', 2n, 1n, new Uint8Array(32).fill(${byte})));`;
      const results = await Promise.all([7, 8].map((byte) => new Promise<string>((res, rej) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script(byte)], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout.on('data', (b: Buffer) => (out += b));
        c.on('close', (code) => (code === 0 ? res(out.trim()) : rej(new Error(`exit ${code}`))));
      })));
      expect([...results].sort()).toEqual(['false', 'true']);
      const state = p.readCounter(identity, 'signer', 2n);
      expect(state.value).toBe(2n);
      expect(state.tag).toEqual(results[0] === 'true' ? tag(7) : tag(8)); // the winner's tag
    }
  });
});

describe('crash safety', () => {
  it('an advancer killed (SIGKILL) at random points: the counter reads whole, never below an acknowledged value, and advances again', async () => {
    const { dir, p } = setup();
    const script = `import { SoftwareAttestationProvider } from ${JSON.stringify(DIST_ATTEST)};
const p = new SoftwareAttestationProvider({ dir: ${JSON.stringify(dir)} });
const id = ${JSON.stringify(identity)};
process.stdout.write('go\\n');
for (;;) { const { value } = p.readCounter(id, 'signer', 4n); if (p.advanceCounter(id, 'signer', 4n, value, new Uint8Array(32).fill(Number((value + 1n) % 256n)))) process.stdout.write(\`\${value + 1n}\\n\`); }`;
    let acknowledged = 0n;
    for (let round = 0; round < 12; round++) {
      const lines = await new Promise<string>((res) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        let armed = false;
        c.stdout.on('data', (b: Buffer) => {
          out += b;
          // once it has acknowledged a few advances, kill it a little later: somewhere inside one
          if (!armed && out.split('\n').length > 2 + (round % 4)) {
            armed = true;
            setTimeout(() => c.kill('SIGKILL'), round % 5);
          }
        });
        c.on('close', () => res(out));
      });
      const printed = lines.split('\n').filter((l) => /^\d+$/.test(l)).map(BigInt);
      if (printed.length > 0) acknowledged = printed[printed.length - 1]!;
      const state = p.readCounter(identity, 'signer', 4n); // whole, or this throws
      expect(state.value >= acknowledged).toBe(true); // printed after the durable advance returned
      expect(state.value <= acknowledged + 1n).toBe(true); // at most the one in flight
      expect(state.tag).toEqual(tag(Number(state.value % 256n)));
    }
    expect(acknowledged > 0n).toBe(true);
    const { value } = p.readCounter(identity, 'signer', 4n);
    expect(p.advanceCounter(identity, 'signer', 4n, value, tag(1))).toBe(true); // a killed holder's lock does not block
  });
});

describe('hostile counter files', () => {
  const prepare = () => {
    const s = setup();
    s.p.advanceCounter(identity, 'signer', 1n, 0n, tag(1));
    s.p.advanceCounter(identity, 'signer', 2n, 0n, tag(2));
    return s;
  };
  const both = (p: SoftwareAttestationProvider, id: bigint) => [
    syncCodeOf(() => p.readCounter(identity, 'signer', id)),
    syncCodeOf(() => p.advanceCounter(identity, 'signer', id, 1n, tag(3))),
  ];

  it('truncated, grown, garbage, a zero value, a header change: platform_unavailable, never a value', () => {
    const good = readFileSync(prepare().file(1n));
    const bad: [string, Buffer][] = [
      ['truncated', good.subarray(0, 40)],
      ['empty', Buffer.alloc(0)],
      ['grown', Buffer.concat([good, Buffer.from([0])])],
      ['garbage', Buffer.alloc(64, 0x41)],
      ['a flipped value bit', Buffer.from(good.map((b, i) => (i === 23 ? b ^ 1 : b)))],
      ['a flipped tag bit', Buffer.from(good.map((b, i) => (i === 30 ? b ^ 1 : b)))],
      ['version 2', Buffer.from(good.map((b, i) => (i === 4 ? 2 : b)))],
      ['value 0', counterFile(counterNamespace(identity, 'signer'), 1n, 0n, tag(0))],
    ];
    for (const [name, bytes] of bad) {
      const { p, file } = prepare();
      writeFileSync(file(1n), bytes);
      expect(both(p, 1n), name).toEqual(['platform_unavailable', 'platform_unavailable']);
      expect(p.readCounter(identity, 'signer', 2n).value).toBe(1n); // its neighbours are fine
    }
  });

  it("another counter's file copied over, or another namespace's: platform_unavailable", () => {
    const { p, file } = prepare();
    copyFileSync(file(2n), file(1n));
    expect(both(p, 1n)).toEqual(['platform_unavailable', 'platform_unavailable']);
    const other = prepare();
    other.p.advanceCounter(identity, 'measurement', 2n, 0n, tag(9));
    copyFileSync(other.file(2n, 'measurement'), other.file(2n));
    expect(both(other.p, 2n)).toEqual(['platform_unavailable', 'platform_unavailable']);
  });

  it('a symlink planted as a counter file, a namespace folder or the counters folder: insecure_key_file, nothing written through it', () => {
    const { p, file, dir, nsDir } = prepare();
    const outside = join(dir, '..', 'outside');
    writeFileSync(outside, readFileSync(file(2n)));
    rmSync(file(1n));
    symlinkSync(outside, file(1n));
    expect(both(p, 1n)).toEqual(['insecure_key_file', 'insecure_key_file']);
    expect(readFileSync(outside)).toEqual(readFileSync(file(2n)));

    const s2 = prepare();
    const real = `${s2.nsDir()}.real`;
    renameSync(s2.nsDir(), real);
    symlinkSync(real, s2.nsDir());
    expect(both(s2.p, 1n)).toEqual(['insecure_key_file', 'insecure_key_file']);

    const s3 = prepare();
    renameSync(join(s3.dir, 'counters'), join(s3.dir, 'counters.real'));
    symlinkSync(join(s3.dir, 'counters.real'), join(s3.dir, 'counters'));
    expect(both(s3.p, 1n)).toEqual(['insecure_key_file', 'insecure_key_file']);
    expect(nsDir()).toContain('counters');
  });

  it('a file or folder open to others: insecure_key_file', () => {
    const { p, file, nsDir, dir } = prepare();
    chmodSync(file(1n), 0o644);
    expect(both(p, 1n)).toEqual(['insecure_key_file', 'insecure_key_file']);
    chmodSync(file(1n), 0o600);
    chmodSync(nsDir(), 0o777);
    expect(both(p, 1n)).toEqual(['insecure_key_file', 'insecure_key_file']);
    chmodSync(nsDir(), 0o700);
    chmodSync(join(dir, 'counters'), 0o757);
    expect(both(p, 1n)).toEqual(['insecure_key_file', 'insecure_key_file']);
    chmodSync(join(dir, 'counters'), 0o700);
    expect(p.readCounter(identity, 'signer', 1n).value).toBe(1n);
  });

  it('a counter file that is a folder, and a namespace that is a file: platform_unavailable', () => {
    const { p, file } = prepare();
    rmSync(file(1n));
    mkdirSync(file(1n), { mode: 0o700 });
    expect(both(p, 1n)).toEqual(['platform_unavailable', 'platform_unavailable']);
    const s = setup();
    mkdirSync(join(s.dir, 'counters'), { recursive: true, mode: 0o700 });
    writeFileSync(s.nsDir(), 'x', { mode: 0o600 });
    expect(both(s.p, 1n)).toEqual(['platform_unavailable', 'platform_unavailable']);
  });
});
