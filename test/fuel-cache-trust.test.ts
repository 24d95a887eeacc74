/**
 * The disk cache of instrumented modules (runtime/_fuel-cache.ts) holds code the runtime runs, so
 * it is read only from a directory no other user can have written (issue 9, finding 8): every
 * component of its real path owned by root or us and not writable by group or others (a sticky
 * ancestor such as /tmp excepted), and entries that are our own regular files. Anything else means
 * no disk cache: the module is instrumented in memory and behaves exactly as its bytes say.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lchownSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadEnclave } from '../host/index.js';
import { clearFuelMemoryCache, instrumentCached, instrumenterFingerprint } from '../runtime/_fuel-cache.js';
import { realOwned } from '../runtime/_disk-cache.js';
import { INSTRUMENTER_VERSION, instrumentFuel } from '../runtime/fuel.js';
import { watModule } from './helpers/wat.js';

const FIXTURES = new URL('../bench/fixtures/', import.meta.url);
const SUM_WAT = readFileSync(new URL('sum.wat', FIXTURES), 'utf8');
const SUM_CONTRACT = JSON.parse(readFileSync(new URL('sum.contract.json', FIXTURES), 'utf8'));
const ADD_I = '(local.set $s (i32.add (local.get $s) (local.get $i)))';

/** The genuine module (`sum n` = n(n-1)/2), made unique by `salt` so no other test shares its key. */
async function genuine(salt: number): Promise<Uint8Array> {
  return watModule(SUM_WAT, { ...SUM_CONTRACT, version: `0.0.${salt}` });
}
/** The attacker's instrumented code: adds 7 per iteration instead of i (`sum 10` = 70, not 45). */
async function planted(): Promise<Uint8Array> {
  expect(SUM_WAT).toContain(ADD_I);
  return watModule(SUM_WAT.replace(ADD_I, '(local.set $s (i32.add (local.get $s) (i32.const 7)))'), SUM_CONTRACT);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest();
const keyOf = (bytes: Uint8Array) => `${sha256(bytes).toString('hex')}-fuel-v${INSTRUMENTER_VERSION}`;

/**
 * Writes an entry in the cache's own format that passes every content check for `victim`'s key:
 * `ENCFUEL1` | sha256(rest) | u32 LE manifest length | manifest JSON (with victim's hash) | bytes.
 */
async function plantEntry(dir: string, victim: Uint8Array, instrumenter = instrumenterFingerprint()): Promise<string> {
  const { bytes, manifest } = await instrumentFuel(await planted());
  const json = Buffer.from(JSON.stringify({ ...manifest, measurement: sha256(victim).toString('hex'), instrumenter }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length, 0);
  const rest = Buffer.concat([len, json, bytes]);
  const file = join(dir, `${keyOf(victim)}.bin`);
  writeFileSync(file, Buffer.concat([Buffer.from('ENCFUEL1'), sha256(rest), rest]), { mode: 0o600 });
  return file;
}

let root: string;
let salt = 0;
const previous = process.env.ENCLAVE_CACHE_DIR;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'enclave-cache-trust-'));
});
afterEach(() => {
  if (previous === undefined) delete process.env.ENCLAVE_CACHE_DIR;
  else process.env.ENCLAVE_CACHE_DIR = previous;
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh directory under the test root, with the given mode (chmod, so the umask does not narrow it). */
function dirWithMode(name: string, mode: number, parent = root): string {
  const d = join(parent, name);
  mkdirSync(d);
  chmodSync(d, mode);
  return d;
}

/** `sum 10` through a real enclave whose cache is `dir` (ENCLAVE_CACHE_DIR), in the given mode. */
async function sum10(bytes: Uint8Array, dir: string, isolation?: 'worker'): Promise<unknown> {
  process.env.ENCLAVE_CACHE_DIR = dir;
  clearFuelMemoryCache();
  const e = await loadEnclave(bytes, isolation === undefined ? {} : { isolation });
  try {
    return await e.call('sum', 10);
  } finally {
    e.close();
  }
}

describe('fuel cache trust: a planted entry is never run', () => {
  it('the planted entry is well formed: a trusted cache would serve it (the test can fail)', async () => {
    const dir = dirWithMode(`trusted-${++salt}`, 0o700);
    const victim = await genuine(salt);
    await plantEntry(dir, victim);
    // A directory that passes every check is trusted as the user's own: whoever wrote there is us.
    expect(await sum10(victim, dir)).toBe(70);
  });

  for (const isolation of [undefined, 'worker'] as const) {
    const mode = isolation ?? 'in-process';

    it(`ignores a cache directory whose parent anyone can write (no sticky bit) (${mode})`, async () => {
      const parent = dirWithMode(`open-parent-${++salt}`, 0o777);
      const dir = dirWithMode('cache', 0o700, parent);
      const victim = await genuine(salt);
      const file = await plantEntry(dir, victim);
      const before = readFileSync(file);
      expect(await sum10(victim, dir, isolation)).toBe(45);
      // Not used at all: the planted file is neither read nor replaced.
      expect(readFileSync(file).equals(before)).toBe(true);
    });

    it(`ignores a cache directory that is a symlink to a directory others can write (${mode})`, async () => {
      const parent = dirWithMode(`open-target-${++salt}`, 0o777);
      const target = dirWithMode('cache', 0o700, parent);
      const victim = await genuine(salt);
      await plantEntry(target, victim);
      const link = join(root, `link-${salt}`);
      symlinkSync(target, link);
      expect(await sum10(victim, link, isolation)).toBe(45);
    });

    it(`ignores a group-writable cache directory (${mode})`, async () => {
      const dir = dirWithMode(`group-${++salt}`, 0o770);
      const victim = await genuine(salt);
      await plantEntry(dir, victim);
      expect(await sum10(victim, dir, isolation)).toBe(45);
    });
  }

  it('ignores an entry that group or others can write, or that is a symlink', async () => {
    const dir = dirWithMode(`entries-${++salt}`, 0o700);
    const victim = await genuine(salt);
    const file = await plantEntry(dir, victim);
    chmodSync(file, 0o666);
    clearFuelMemoryCache();
    const direct = await instrumentFuel(victim);
    const got = await instrumentCached(victim, sha256(victim).toString('hex'), dir);
    expect(Buffer.from(got.bytes).equals(Buffer.from(direct.bytes))).toBe(true);

    const dir2 = dirWithMode(`entries-link-${++salt}`, 0o700);
    const victim2 = await genuine(salt);
    const elsewhere = await plantEntry(dirWithMode(`elsewhere-${salt}`, 0o700), victim2);
    symlinkSync(elsewhere, join(dir2, `${keyOf(victim2)}.bin`));
    expect(await sum10(victim2, dir2)).toBe(45);
  });

  it('never serves an entry made by another instrumenter, even under the same INSTRUMENTER_VERSION', async () => {
    // The feature gate and the metering live in the instrumenter: a stale entry would skip both.
    const dir = dirWithMode(`stale-${++salt}`, 0o700);
    const victim = await genuine(salt);
    await plantEntry(dir, victim, '0'.repeat(16));
    expect(await sum10(victim, dir)).toBe(45);
  });

  it('treats an entry whose manifest is not an object as a miss, never as a load failure', async () => {
    const dir = dirWithMode(`null-manifest-${++salt}`, 0o700);
    const victim = await genuine(salt);
    const rest = Buffer.concat([Buffer.from([4, 0, 0, 0]), Buffer.from('null'), Buffer.from([0])]);
    writeFileSync(join(dir, `${keyOf(victim)}.bin`), Buffer.concat([Buffer.from('ENCFUEL1'), sha256(rest), rest]), { mode: 0o600 });
    expect(await sum10(victim, dir)).toBe(45);
  });

  it('creates a missing cache directory itself, mode 0700, and then uses it', async () => {
    const dir = join(dirWithMode(`fresh-${++salt}`, 0o755), 'cache');
    const victim = await genuine(salt);
    expect(await sum10(victim, dir)).toBe(45);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual([`${keyOf(victim)}.bin`]);
    expect(await sum10(victim, dir)).toBe(45); // served from the entry it wrote
  });

  it('does not create a missing cache directory inside a directory others can write', async () => {
    const parent = dirWithMode(`open-missing-${++salt}`, 0o777);
    const dir = join(parent, 'cache');
    const victim = await genuine(salt);
    expect(await sum10(victim, dir)).toBe(45);
    // The parent is checked before anything is created in it: nothing is made where another user could swap it.
    expect(existsSync(dir)).toBe(false);
  });
});

describe('links on the way to the cache directory', () => {
  it('resolves as realpath does (relative, absolute, chained links, .. in a target)', async () => {
    const base = dirWithMode('links', 0o700);
    mkdirSync(join(base, 'a', 'b', 'c'), { recursive: true });
    symlinkSync('a/b', join(base, 'ab'));
    symlinkSync(join(base, 'ab', 'c'), join(base, 'abs'));
    symlinkSync('../../a/b/c', join(base, 'a', 'b', 'up'));
    symlinkSync('ab/../b/up', join(base, 'chain'));
    // Not join(): `chain/../c` must reach the kernel as written. realpathSync.native is libc's
    // (node's JS realpathSync takes `..` in a link's target lexically).
    for (const p of ['ab', 'abs', 'a/b/up', 'chain', 'chain/../c', 'ab/./c/..']) {
      await expect(realOwned(`${base}/${p}`, process.geteuid!())).resolves.toBe(realpathSync.native(`${base}/${p}`));
    }
  });

  it('refuses a link that belongs to another user, even to a private directory of ours (a link planted in /tmp)', async () => {
    const base = dirWithMode('planted', 0o700);
    const mine = dirWithMode('mine', 0o700, base);
    symlinkSync(mine, join(base, 'enclave'));
    // The link is another user's: given away when the test runs as root, else `euid` stands for
    // the user running the cache (the test's own links are then another user's).
    const root = process.geteuid!() === 0;
    if (root) lchownSync(join(base, 'enclave'), 65534, 65534);
    const other = root ? 0 : process.geteuid!() + 1;
    expect(await realOwned(join(base, 'enclave'), other)).toEqual({ problem: `${join(realpathSync(base), 'enclave')} is a link that belongs to another user` });
    expect(await realOwned(`${base}/enclave/../mine/../enclave/.`, other)).toMatchObject({ problem: expect.stringMatching(/another user/) });
    // No link on the way: nothing to refuse, whoever owns the directories (checkPath judges those).
    expect(await realOwned(mine, other)).toBe(realpathSync(mine));
  });

  it('stops a loop of links', async () => {
    const base = dirWithMode('loop', 0o700);
    symlinkSync('b', join(base, 'a'));
    symlinkSync('a', join(base, 'b'));
    expect(await realOwned(join(base, 'a'), process.geteuid!())).toMatchObject({ problem: expect.stringMatching(/too many links/) });
  });
});
