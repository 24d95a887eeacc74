/**
 * The software platform's sealing roots (issue 13, docs/ATTESTATION.md §6.2): key ids, rotation,
 * revocation, the version 1 key file read as root 1, a running provider seeing another process's
 * change, atomic rewrites under a cross-process lock, and hostile key files.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, symlinkSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { deriveSealingKey, MAX_SEALING_ROOTS, SoftwareAttestationProvider, type ModuleIdentity } from '../attest/index.js';
import { EnclaveError } from '../core/index.js';
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

function platformDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'enclave-roots-')), 'platform');
}

function keyFile(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'platform-key.json'), 'utf8')) as Record<string, unknown>;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Runs a script in another Node process against the built dist/ (`DIR` is the platform directory). */
function inChild(dir: string, body: string): string {
  const script = `import { SoftwareAttestationProvider } from ${JSON.stringify(DIST_ATTEST)};\nconst p = new SoftwareAttestationProvider({ dir: ${JSON.stringify(dir)} });\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return r.stdout;
}

describe('version 1 key file', () => {
  it('reads as one active root, id 1, current; stays version 1 until a rotation', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir });
    const roots = p.listSealingRoots();
    expect(roots).toEqual([{ id: 1, state: 'active', current: true, createdAt: keyFile(dir).createdAt }]);
    expect(keyFile(dir).version).toBe(1);
    const k = p.sealingKey(identity, 'signer');
    expect(k.keyId).toBe(1);
    expect(k.svn).toBe(3);
    // root 1 is the version 1 secret, derived exactly as before
    const secret = new Uint8Array(Buffer.from(keyFile(dir).sealingSecret as string, 'base64url'));
    expect(hex(k.key)).toBe(hex(deriveSealingKey(secret, identity, 'signer')));
    expect(hex(p.getSealingSecret(identity, 'measurement'))).toBe(hex(deriveSealingKey(secret, identity, 'measurement')));
  });

  it('a key derived before rotation equals root 1 after it; the current root changes; the file becomes version 2', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir });
    const jwk = p.publicJwk();
    const before = { m: hex(p.getSealingSecret(identity, 'measurement')), s: hex(p.getSealingSecret(identity, 'signer')) };
    expect(p.rotateSealingRoot()).toEqual({ id: 2 });
    const file = keyFile(dir);
    expect(file.version).toBe(2);
    expect(file.currentRoot).toBe(2);
    expect(statSync(join(dir, 'platform-key.json')).mode & 0o777).toBe(0o600);
    expect(hex(p.sealingKey(identity, 'measurement', { keyId: 1 }).key)).toBe(before.m);
    expect(hex(p.sealingKey(identity, 'signer', { keyId: 1 }).key)).toBe(before.s);
    // a new provider (a restart) agrees
    const q = new SoftwareAttestationProvider({ dir });
    expect(hex(q.sealingKey(identity, 'signer', { keyId: 1 }).key)).toBe(before.s);
    // the current root is 2 now, and seals differently
    const now = p.sealingKey(identity, 'signer');
    expect(now.keyId).toBe(2);
    expect(hex(now.key)).not.toBe(before.s);
    expect(hex(p.getSealingSecret(identity, 'signer'))).toBe(hex(now.key));
    expect(p.publicJwk()).toEqual(jwk); // the attestation key is untouched
    expect(p.listSealingRoots().map((r) => [r.id, r.state, r.current])).toEqual([[1, 'active', false], [2, 'active', true]]);
  });
});

describe('sealingKey', () => {
  it('derives a lower svn under signer, refuses a higher one, and an svn under measurement', () => {
    const p = new SoftwareAttestationProvider({ dir: platformDir() });
    const low = p.sealingKey(identity, 'signer', { svn: 1 });
    expect(low.svn).toBe(1);
    expect(hex(low.key)).not.toBe(hex(p.sealingKey(identity, 'signer').key));
    expect(hex(low.key)).toBe(hex(p.getSealingSecret(identity, 'signer', { svn: 1 })));
    expect(syncCodeOf(() => p.sealingKey(identity, 'signer', { svn: 4 }))).toBe('sealing_unavailable');
    expect(syncCodeOf(() => p.sealingKey(identity, 'measurement', { svn: 0 }))).toBe('sealing_unavailable');
    expect(p.sealingKey(identity, 'measurement').svn).toBe(0);
    expect(syncCodeOf(() => p.sealingKey({ ...identity, signer: undefined }, 'signer'))).toBe('sealing_unavailable');
  });

  it('refuses an unknown key id and malformed requests', () => {
    const p = new SoftwareAttestationProvider({ dir: platformDir() });
    expect(syncCodeOf(() => p.sealingKey(identity, 'signer', { keyId: 2 }))).toBe('sealing_key_unknown');
    expect(syncCodeOf(() => p.sealingKey(identity, 'signer', { keyId: 2 ** 31 - 1 }))).toBe('sealing_key_unknown');
    for (const keyId of [-1, 2 ** 31, 1.5, Number.NaN]) expect(() => p.sealingKey(identity, 'signer', { keyId })).toThrow(RangeError);
    for (const svn of [-1, 0.5]) expect(() => p.sealingKey(identity, 'signer', { svn })).toThrow(RangeError);
    expect(p.sealingKey(identity, 'signer', { keyId: 0 }).keyId).toBe(1);
  });
});

describe('revocation', () => {
  it('destroys the secret, keeps the id listed, never reuses it; refuses the current root and unknown ids', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir });
    const err = (() => {
      try {
        p.revokeSealingRoot(1);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).code).toBe('invalid_options');
    expect(keyFile(dir).version).toBe(1); // a refused revocation writes nothing
    p.rotateSealingRoot();
    const secret1 = (keyFile(dir).sealingRoots as { secret?: string }[])[0]!.secret!;
    p.revokeSealingRoot(1);
    const text = readFileSync(join(dir, 'platform-key.json'), 'utf8');
    expect(text).not.toContain(secret1);
    expect((keyFile(dir).sealingRoots as unknown[])[0]).toEqual({ id: 1, createdAt: expect.any(String), state: 'revoked' });
    expect(syncCodeOf(() => p.sealingKey(identity, 'signer', { keyId: 1 }))).toBe('sealing_key_revoked');
    expect(syncCodeOf(() => p.sealingKey(identity, 'measurement', { keyId: 1 }))).toBe('sealing_key_revoked');
    p.revokeSealingRoot(1); // again: nothing to do
    expect(syncCodeOf(() => p.revokeSealingRoot(9))).toBe('sealing_key_unknown');
    expect(() => p.revokeSealingRoot(0)).toThrow(RangeError);
    expect(p.rotateSealingRoot()).toEqual({ id: 3 });
    p.revokeSealingRoot(2);
    expect(p.listSealingRoots().map((r) => [r.id, r.state, r.current])).toEqual([[1, 'revoked', false], [2, 'revoked', false], [3, 'active', true]]);
    expect(new SoftwareAttestationProvider({ dir }).sealingKey(identity, 'signer').keyId).toBe(3);
  });

  it(`refuses a rotation beyond ${MAX_SEALING_ROOTS} roots (revoked ones count)`, () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir });
    p.rotateSealingRoot();
    const file = keyFile(dir);
    const roots = file.sealingRoots as { id: number; createdAt: string; state: string; secret?: string }[];
    const last = roots[1]!;
    const many = [...Array.from({ length: MAX_SEALING_ROOTS - 1 }, (_, i) => ({ id: i + 1, createdAt: last.createdAt, state: 'revoked' })), { ...last, id: MAX_SEALING_ROOTS }];
    writeFileSync(join(dir, 'platform-key.json'), JSON.stringify({ ...file, sealingRoots: many, currentRoot: MAX_SEALING_ROOTS }), { mode: 0o600 });
    expect(p.listSealingRoots()).toHaveLength(MAX_SEALING_ROOTS);
    expect(syncCodeOf(() => p.rotateSealingRoot())).toBe('platform_unavailable');
    expect(p.listSealingRoots()).toHaveLength(MAX_SEALING_ROOTS);
  });

  it('refuses a rotation when no id is left (ids are never reused)', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir });
    p.rotateSealingRoot();
    const file = keyFile(dir);
    const roots = file.sealingRoots as { id: number }[];
    writeFileSync(join(dir, 'platform-key.json'), JSON.stringify({ ...file, sealingRoots: [roots[0], { ...roots[1], id: 2 ** 31 - 1 }], currentRoot: 2 ** 31 - 1 }), { mode: 0o600 });
    expect(p.sealingKey(identity, 'signer').keyId).toBe(2 ** 31 - 1);
    expect(syncCodeOf(() => p.rotateSealingRoot())).toBe('platform_unavailable');
  });
});

describe('a running provider sees another process change the roots', () => {
  it('rotation and revocation by another process apply at the next call, without a restart', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir });
    const old = hex(p.sealingKey(identity, 'signer').key);
    expect(inChild(dir, 'console.log(p.rotateSealingRoot().id);').trim()).toBe('2');
    const now = p.sealingKey(identity, 'signer');
    expect(now.keyId).toBe(2);
    expect(hex(p.getSealingSecret(identity, 'signer'))).toBe(hex(now.key));
    expect(hex(p.sealingKey(identity, 'signer', { keyId: 1 }).key)).toBe(old);
    inChild(dir, 'p.revokeSealingRoot(1);');
    expect(syncCodeOf(() => p.sealingKey(identity, 'signer', { keyId: 1 }))).toBe('sealing_key_revoked');
    expect(p.listSealingRoots().map((r) => r.state)).toEqual(['revoked', 'active']);
  });

  it('a key file removed under a running provider is platform_unavailable, not a new platform with a reused id 1', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir }).open();
    spawnSync('rm', [join(dir, 'platform-key.json')]);
    expect(syncCodeOf(() => p.sealingKey(identity, 'signer'))).toBe('platform_unavailable');
    expect(existsSync(join(dir, 'platform-key.json'))).toBe(false);
  });
});

describe('concurrent and interrupted rewrites', () => {
  it('eight processes rotating at once: every rotation lands, ids distinct, the file whole', async () => {
    const dir = platformDir();
    new SoftwareAttestationProvider({ dir }).open();
    const script = `import { SoftwareAttestationProvider } from ${JSON.stringify(DIST_ATTEST)};
const p = new SoftwareAttestationProvider({ dir: ${JSON.stringify(dir)} });
const ids = []; for (let i = 0; i < 5; i++) ids.push(p.rotateSealingRoot().id);
console.log(ids.join(','));`;
    const runs = await Promise.all(
      Array.from({ length: 8 }, () => new Promise<string>((res, rej) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.on('data', (b: Buffer) => (out += b));
        c.stderr.on('data', (b: Buffer) => (err += b));
        c.on('close', (code) => (code === 0 ? res(out) : rej(new Error(err))));
      })),
    );
    const ids = runs.flatMap((r) => r.trim().split(',').map(Number));
    expect(new Set(ids).size).toBe(40);
    const roots = new SoftwareAttestationProvider({ dir }).listSealingRoots();
    expect(roots.map((r) => r.id)).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp') || n.includes('.lock'))).toEqual([]);
  });

  it('a rotator killed (SIGKILL) at random points leaves the old file or the new one, and a stale lock is recovered', async () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir });
    p.open();
    const script = `import { SoftwareAttestationProvider } from ${JSON.stringify(DIST_ATTEST)};
const p = new SoftwareAttestationProvider({ dir: ${JSON.stringify(dir)} });
for (;;) { const { id } = p.rotateSealingRoot(); p.revokeSealingRoot(id - 1); process.stdout.write(\`\${id}\\n\`); }`;
    let acknowledged = 1;
    for (let round = 0; round < 12; round++) {
      await new Promise<void>((res) => {
        const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        let armed = false;
        c.stdout.on('data', (b: Buffer) => {
          out += b;
          acknowledged = Math.max(acknowledged, ...out.split('\n').filter((l) => /^\d+$/.test(l)).map(Number));
          // once it has rotated a couple of times, kill it a little later: somewhere inside a rewrite
          if (!armed && out.split('\n').length > 1 + (round % 3)) {
            armed = true;
            setTimeout(() => c.kill('SIGKILL'), round % 4);
          }
        });
        c.on('close', () => res());
      });
      expect(Math.max(...p.listSealingRoots().map((r) => r.id))).toBeGreaterThanOrEqual(acknowledged); // nothing acknowledged is lost
      const roots = p.listSealingRoots(); // parses whole, or throws
      expect(roots.filter((r) => r.current)).toHaveLength(1);
      expect(p.sealingKey(identity, 'signer').key).toHaveLength(32);
    }
    // A lock left by a killed holder does not block the next writer.
    expect(p.rotateSealingRoot().id).toBeGreaterThan(1);
  });

  it('a lock file naming a dead process is broken', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir }).open();
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    writeFileSync(join(dir, 'platform-key.json.lock'), `${dead.stdout.trim()} 1\n`, { mode: 0o600 });
    expect(p.rotateSealingRoot()).toEqual({ id: 2 });
    expect(existsSync(join(dir, 'platform-key.json.lock'))).toBe(false);
  });

  it.runIf(process.platform === 'linux')('a lock naming a dead holder whose pid now belongs to another user (EPERM) is broken by its start time', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir }).open();
    // pid 1 is alive; as another user's process it answers kill(pid, 0) with EPERM (simulated: tests may run as root).
    const kill = vi.spyOn(process, 'kill').mockImplementation((pid) => {
      if (pid === 1) throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
      return true;
    });
    try {
      writeFileSync(join(dir, 'platform-key.json.lock'), '1 0\n', { mode: 0o600 }); // started at tick 0: not pid 1's start time
      const started = Date.now();
      expect(p.rotateSealingRoot()).toEqual({ id: 2 });
      expect(Date.now() - started).toBeLessThan(5_000); // broken, not waited out (10 s, then platform_unavailable)
      expect(existsSync(join(dir, 'platform-key.json.lock'))).toBe(false);
    } finally {
      kill.mockRestore();
    }
  });

  it('a live holder of the lock is waited for, not broken', async () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir }).open();
    const released = join(dir, '..', 'released');
    const script = `import { withFileLock } from ${JSON.stringify(resolve('dist/attest/_durable.js'))};
import { writeFileSync } from 'node:fs';
withFileLock(${JSON.stringify(join(dir, 'platform-key.json.lock'))}, () => {
  process.stdout.write('held\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
  writeFileSync(${JSON.stringify(released)}, 'yes');
});`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((res) => child.on('close', res));
    await new Promise((res) => child.stdout.once('data', res));
    expect(p.rotateSealingRoot()).toEqual({ id: 2 }); // blocks until the child lets go
    expect(existsSync(released)).toBe(true);
    await exited;
  });

  it('a symlink planted as the lock is refused (insecure_key_file), and nothing is written through it', () => {
    const dir = platformDir();
    const p = new SoftwareAttestationProvider({ dir }).open();
    const target = join(dir, '..', 'elsewhere');
    writeFileSync(target, 'untouched');
    symlinkSync(target, join(dir, 'platform-key.json.lock'));
    expect(syncCodeOf(() => p.rotateSealingRoot())).toBe('insecure_key_file');
    expect(readFileSync(target, 'utf8')).toBe('untouched');
    expect(p.listSealingRoots()).toHaveLength(1);
  });
});

describe('hostile key files', () => {
  const base = (dir: string) => {
    const p = new SoftwareAttestationProvider({ dir });
    p.rotateSealingRoot();
    return keyFile(dir);
  };
  const cases: [string, (f: Record<string, unknown>) => unknown][] = [
    ['a revoked root that keeps its secret', (f) => ({ ...f, sealingRoots: (f.sealingRoots as object[]).map((r, i) => (i === 0 ? { ...r, state: 'revoked' } : r)) })],
    ['a current root that is revoked', (f) => ({ ...f, currentRoot: 1, sealingRoots: (f.sealingRoots as { id: number; createdAt: string }[]).map((r, i) => (i === 0 ? { id: r.id, createdAt: r.createdAt, state: 'revoked' } : r)) })],
    ['a current root that does not exist', (f) => ({ ...f, currentRoot: 3 })],
    ['ids out of order', (f) => ({ ...f, sealingRoots: [...(f.sealingRoots as object[])].reverse() })],
    ['a duplicated id', (f) => ({ ...f, sealingRoots: (f.sealingRoots as object[]).map((r) => ({ ...r, id: 1 })), currentRoot: 1 })],
    ['an id of 2^31', (f) => ({ ...f, sealingRoots: (f.sealingRoots as object[]).map((r, i) => ({ ...r, id: i === 0 ? 1 : 2 ** 31 })), currentRoot: 2 ** 31 })],
    ['a short secret', (f) => ({ ...f, sealingRoots: (f.sealingRoots as object[]).map((r) => ({ ...r, secret: 'AAAA' })) })],
    ['an unknown state', (f) => ({ ...f, sealingRoots: (f.sealingRoots as object[]).map((r) => ({ ...r, state: 'frozen' })) })],
    ['no roots', (f) => ({ ...f, sealingRoots: [] })],
    ['roots that are not a list', (f) => ({ ...f, sealingRoots: { 1: 'x' } })],
    ['a createdAt with control characters', (f) => ({ ...f, sealingRoots: (f.sealingRoots as object[]).map((r) => ({ ...r, createdAt: '\u001b[31m' })) })],
    ['version 3', (f) => ({ ...f, version: 3 })],
    ['another platform name', (f) => ({ ...f, platform: 'sgx' })],
  ];
  for (const [name, change] of cases) {
    it(`refuses ${name} with platform_unavailable`, () => {
      const dir = platformDir();
      const file = base(dir);
      writeFileSync(join(dir, 'platform-key.json'), JSON.stringify(change(file)), { mode: 0o600 });
      expect(syncCodeOf(() => new SoftwareAttestationProvider({ dir }).sealingKey(identity, 'signer'))).toBe('platform_unavailable');
    });
  }

  it('a truncated file and garbage are platform_unavailable; a mode open to others is insecure_key_file', () => {
    const dir = platformDir();
    const text = JSON.stringify(base(dir));
    const path = join(dir, 'platform-key.json');
    writeFileSync(path, text.slice(0, text.length / 2), { mode: 0o600 });
    expect(syncCodeOf(() => new SoftwareAttestationProvider({ dir }).listSealingRoots())).toBe('platform_unavailable');
    writeFileSync(path, Buffer.from([0xff, 0xfe, 0, 1, 2]));
    expect(syncCodeOf(() => new SoftwareAttestationProvider({ dir }).listSealingRoots())).toBe('platform_unavailable');
    writeFileSync(path, text);
    chmodSync(path, 0o644);
    expect(syncCodeOf(() => new SoftwareAttestationProvider({ dir }).listSealingRoots())).toBe('insecure_key_file');
  });
});
