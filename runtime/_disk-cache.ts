/**
 * What the runtime's disk caches share: the trust rules of a directory that holds code the runtime
 * will run, the integrity-hashed entry format, atomic writes and pruning. Two caches use it, in
 * the same directory: instrumented modules (runtime/_fuel-cache.ts) and components' JavaScript
 * glue (runtime/_component-transpile.ts). Both are code the runtime runs, so the directory must be
 * as trusted as `node_modules` (docs/THREAT-MODEL.md, "Fuel cache"; docs/LIMITS.md, "Fuel").
 *
 * - A directory is used only when no other user can have written anything in it, checked on every
 *   component of its real path ({@link trustedDir}); otherwise the caller works in memory (one
 *   process warning per directory, `ENCLAVE_FUEL_CACHE_UNTRUSTED`).
 * - An entry is read only from a regular file of ours (or root's) that group and others cannot
 *   write, opened without following a link ({@link readOwnedFile}).
 * - An entry carries the SHA-256 of its contents ({@link sealEntry}, {@link openEntry}): not a MAC
 *   (anyone who can write the file can recompute it), it catches truncation and bit rot; what
 *   keeps planted code out is that no one else can write the directory.
 * - Entries are written atomically: an exclusive temporary file, then a rename ({@link writeAtomic}).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';

const POSIX = process.platform !== 'win32';
/** A temporary file older than this was left by a process that died between write and rename. */
const STALE_TMP_MS = 60 * 60 * 1000;
/** Directories already warned about, so a misconfigured cache costs one warning per process, not one per load. */
const warned = new Set<string>();

/**
 * The real path of the cache directory if no other user can have written anything in it, else
 * `undefined` (no disk cache: the caller works in memory). The directory is created here,
 * mode 0700, with at most two missing parents, and only under a parent that passed the same checks.
 *
 * The rule (OpenSSH's StrictModes, docs/THREAT-MODEL.md "Fuel cache"): every component of the real
 * path, from `/` down, is a directory owned by root or the effective user; none but the cache
 * directory's ancestors may be writable by group or others, and those only when sticky (`/tmp`),
 * where others can add entries but cannot rename or replace ours. A path so checked cannot be
 * changed afterwards by anyone but root and us, so the entries read from it are ours.
 */
export async function trustedDir(dir: string): Promise<string | undefined> {
  const abs = resolve(dir);
  try {
    // The deepest existing ancestor, at most two levels up (`node_modules/.cache/enclave`).
    const missing: string[] = [];
    let existing = abs;
    while (!(await exists(existing))) {
      if (missing.length >= 3 || dirname(existing) === existing) return untrusted(abs, 'it cannot be created');
      missing.unshift(existing);
      existing = dirname(existing);
    }
    if (missing.length > 0) {
      // Create nothing under a parent someone else could rename or fill.
      const parent = await realOwned(existing);
      if (typeof parent !== 'string') return untrusted(abs, parent.problem);
      if ((await checkPath(parent, true)) !== undefined) return untrusted(abs, 'its parent is not private');
      for (const d of missing) {
        await mkdir(d, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
      }
    }
    const real = await realOwned(abs);
    if (typeof real !== 'string') return untrusted(abs, real.problem);
    const problem = await checkPath(real, false);
    return problem === undefined ? real : untrusted(abs, problem);
  } catch (err) {
    return untrusted(abs, (err as NodeJS.ErrnoException).code ?? 'error');
  }
}

/**
 * @internal The real path of `path`, resolved one component at a time as the kernel does, or why
 * it is refused: a symbolic link on the way that belongs to another user (not root, not `euid`).
 * Checking only where the links lead is not enough: a link another user planted in a sticky
 * directory (`/tmp/enclave` -> a private directory of ours) passes every check of its target and
 * would choose where our entries are written and pruned (Linux's fs.protected_symlinks refuses to
 * follow such a link, but it is often off, and other systems lack it).
 */
export async function realOwned(path: string, euid: number | undefined = POSIX ? process.geteuid!() : undefined): Promise<string | { problem: string }> {
  if (euid === undefined) return realpath(path);
  // Not resolve(): `link/..` is the parent of the link's target, not the directory of the link.
  const rest = (isAbsolute(path) ? path : `${process.cwd()}${sep}${path}`).split(sep).filter((p) => p !== '');
  let done: string = sep;
  let links = 0;
  while (rest.length > 0) {
    const part = rest.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done = dirname(done); // `done` has no links: its parent is the real one
      continue;
    }
    const next = join(done, part);
    const st = await lstat(next);
    if (!st.isSymbolicLink()) {
      done = next;
      continue;
    }
    if (st.uid !== 0 && st.uid !== euid) return { problem: `${next} is a link that belongs to another user` };
    if (++links > 40) return { problem: `${path} has too many links` };
    const target = await readlink(next);
    if (isAbsolute(target)) done = sep;
    rest.unshift(...target.split(sep).filter((p) => p !== ''));
  }
  return done;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Checks every component of a real (symlink-free) path. `ancestor`: the path is a parent of the
 * cache directory, so it may end in a sticky, world-writable directory.
 * @returns why the path is not private, or `undefined` when it is.
 */
async function checkPath(real: string, ancestor: boolean): Promise<string | undefined> {
  if (!POSIX) return (await lstat(real)).isDirectory() ? undefined : 'not a directory';
  const euid = process.geteuid!();
  const parts = real.split(sep).filter((p) => p !== '');
  for (let i = 0; i <= parts.length; i++) {
    const path = sep + parts.slice(0, i).join(sep);
    const st = await lstat(path);
    const last = i === parts.length;
    // lstat: a component replaced by a symlink since realpath is refused, not followed.
    if (!st.isDirectory()) return `${path} is not a directory`;
    if (st.uid !== 0 && st.uid !== euid) return `${path} belongs to another user`;
    const sticky = (st.mode & 0o1000) !== 0;
    if ((st.mode & 0o022) !== 0 && !(sticky && (ancestor || !last))) return `${path} is writable by group or others`;
  }
  return undefined;
}

function untrusted(dir: string, why: string): undefined {
  if (!warned.has(dir)) {
    warned.add(dir);
    // The path comes from the host's configuration (ENCLAVE_CACHE_DIR, cwd), never from a module.
    process.emitWarning(
      `The fuel cache directory ${JSON.stringify(dir)} is not used (${why}): modules are instrumented in memory. ` +
        'Point ENCLAVE_CACHE_DIR at a directory only you can write (e.g. ~/.cache/enclave), or set it to "off".',
      {
        code: 'ENCLAVE_FUEL_CACHE_UNTRUSTED',
      },
    );
  }
  return undefined;
}

/**
 * The bytes of a cache entry, or `undefined` for anything unexpected. The file is opened without
 * following a symlink, and the open file itself must be a regular file of ours (or root's) that
 * group and others cannot write: the checks hold for the bytes read, not for a name.
 */
export async function readOwnedFile(file: string): Promise<Buffer | undefined> {
  let fh;
  try {
    fh = await open(file, fsc.O_RDONLY | (POSIX ? fsc.O_NOFOLLOW | fsc.O_NONBLOCK : 0));
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    if (POSIX && ((st.mode & 0o022) !== 0 || (st.uid !== 0 && st.uid !== process.geteuid!()))) return undefined;
    return await fh.readFile();
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function digest(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

/** An entry's file contents: `magic` | SHA-256(body) (32 B) | body. */
export function sealEntry(magic: Uint8Array, body: Uint8Array): Buffer {
  return Buffer.concat([magic, digest(body), body]);
}

/** The body of an entry made by {@link sealEntry} with `magic`, or `undefined` when it does not check. */
export function openEntry(magic: Uint8Array, raw: Buffer): Buffer | undefined {
  if (raw.length < magic.length + 32 || !magic.every((b, i) => raw[i] === b)) return undefined;
  const stored = raw.subarray(magic.length, magic.length + 32);
  const body = raw.subarray(magic.length + 32);
  return timingSafeEqual(stored, digest(body)) ? body : undefined;
}

/**
 * Writes `bytes` to `file` atomically: an exclusive temporary file (`<file>.<pid>.<12 hex>.tmp`,
 * created with 'wx', so nothing planted under its name is followed), then a rename.
 * @returns false when the write failed (a read-only or full disk only costs the next start the work).
 */
export async function writeAtomic(file: string, bytes: Uint8Array): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, bytes, { mode: 0o600, flag: 'wx' });
    await rename(tmp, file); // atomic on one file system: readers see the old entry or the new one
    return true;
  } catch {
    await unlink(tmp).catch(() => undefined);
    return false;
  }
}

/**
 * Keeps a directory to `limits.entries` entries and `limits.bytes` bytes of the files `entry`
 * matches, deleting the least recently written first, and deletes temporary files `tmp` matches
 * that a dead process left behind.
 */
export async function pruneDir(dir: string, entry: RegExp, tmp: RegExp, limits: { entries: number; bytes: number }): Promise<void> {
  const all = await readdir(dir);
  const now = Date.now();
  for (const n of all.filter((name) => tmp.test(name))) {
    const st = await lstat(join(dir, n)).catch(() => undefined);
    if (st !== undefined && now - st.mtimeMs > STALE_TMP_MS) await unlink(join(dir, n)).catch(() => undefined);
  }
  const aged = (
    await Promise.all(
      all.filter((n) => entry.test(n)).map(async (n) => {
        const st = await lstat(join(dir, n)).catch(() => undefined);
        return st === undefined ? undefined : { n, t: st.mtimeMs, size: st.size };
      }),
    )
  ).filter((e) => e !== undefined);
  let bytes = aged.reduce((sum, e) => sum + e.size, 0);
  let count = aged.length;
  aged.sort((a, b) => a.t - b.t);
  for (const { n, size } of aged) {
    if (count <= limits.entries && bytes <= limits.bytes) break;
    await unlink(join(dir, n)).catch(() => undefined);
    count--;
    bytes -= size;
  }
}
