/**
 * Durable, crash-safe file writes and a cross-process lock for the software platform's files (the
 * key file's sealing roots, the counters). Private to `attest/` (the `_` prefix).
 *
 * - {@link writeFileAtomic}: a temp file in the same directory (O_EXCL, 0600, never through a
 *   symlink), written, fsynced, renamed over the target, then the directory fsynced. A SIGKILL or a
 *   power cut at any point leaves the old file or the new one, never half of one.
 * - {@link withFileLock}: an O_EXCL lock file naming its holder (pid and process start time). A
 *   lock whose holder is gone is broken under a second, short-lived guard lock, so two processes
 *   that both see it stale cannot both break it (the second would remove the first one's new lock).
 *
 * Every call is synchronous: the runtime advances counters and derives keys from inside
 * WebAssembly imports, which cannot await.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants as fsc,
  fstatSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AttestationError, EnclaveError } from '../core/index.js';

/** False on Windows, where modes, uids, O_NOFOLLOW and directory fsync do not apply. @example if (POSIX) checkModes(); */
export const POSIX = process.platform !== 'win32';

/** How long {@link withFileLock} waits for a live holder before it gives up. */
const LOCK_WAIT_MS = 10_000;
/** A guard lock older than this is a breaker that died inside a microseconds-long window: removed. */
const GUARD_STALE_MS = 5_000;
/** Far above a lock file's `pid start\n`; bounds what a planted file makes us read. */
const MAX_LOCK_BYTES = 256;

/**
 * `platform_unavailable` with what went wrong; never key material.
 * @example
 * throw platformUnavailable('cannot list a counters folder', err);
 */
export function platformUnavailable(detail: string, cause?: unknown): AttestationError {
  return new AttestationError(
    'platform_unavailable',
    `the platform key store could not be used (${detail}); check ENCLAVE_PLATFORM_DIR and its permissions`,
    { cause },
  );
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Blocks the thread for `ms` (a lock wait inside a synchronous import: there is no event loop to yield to). */
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * Fsyncs a directory, so a rename or a new entry in it survives a power cut. A no-op where
 * directories cannot be opened for fsync (Windows).
 * @throws Node's error (EACCES, EIO) if the directory cannot be opened or synced.
 * @example
 * renameSync(tmp, path);
 * fsyncDirectory(dirname(path));
 */
export function fsyncDirectory(dir: string): void {
  if (!POSIX) return;
  const fd = openSync(dir, fsc.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A temp file's name beside `path`: hidden, unique, never a name the platform reads.
 * @example
 * tempPathFor('/p/platform-key.json'); // '/p/.platform-key.json.1234.a1b2c3d4e5f6.tmp'
 */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Writes `data` to a new private file (O_EXCL, 0600, not through a symlink) and fsyncs it.
 * @throws Node's error: EEXIST if the path exists (a symlink included), ENOSPC, EACCES.
 * @example
 * writeNewFileDurably(tempPathFor(path), text);
 */
export function writeNewFileDurably(path: string, data: Uint8Array | string): void {
  const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (POSIX ? fsc.O_NOFOLLOW : 0), 0o600);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `path` with `data` atomically and durably: temp file, fsync, rename over, fsync the
 * directory. The new file is mode 0600.
 * @throws Node's error (ENOSPC, EACCES, EROFS); the temp file is removed, the old file untouched.
 * @example
 * writeFileAtomic(join(dir, 'platform-key.json'), `${JSON.stringify(file)}\n`);
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = tempPathFor(path);
  try {
    writeNewFileDurably(tmp, data);
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // not created, or already renamed
    }
    throw err;
  }
  fsyncDirectory(dirname(path));
}

/** This process's start time (clock ticks since boot, Linux), so a reused pid is not taken for the holder. */
function startTimeOf(pid: number): string {
  if (process.platform !== 'linux') return '-';
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Field 22 (starttime); the command name (field 2) is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? '-';
  } catch {
    return '?';
  }
}

const OWN_HOLDER = `${process.pid} ${startTimeOf(process.pid)}\n`;

/** Whether the holder a lock file names is gone (dead pid, or the pid now belongs to a younger process). */
function holderGone(content: string): boolean {
  const m = /^(\d{1,10}) (\S{1,32})\n$/.exec(content);
  if (!m) return false; // unreadable: only the age rule below may break it
  const pid = Number(m[1]);
  if (pid === process.pid) return m[2] !== startTimeOf(pid); // ours (another thread), or an earlier process with our pid
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
    // EPERM: a live process of another user. Only our user (or root) can create a lock in a private
    // directory, so this is most often the dead holder's pid reused (after a crash, or a reboot, by a
    // system daemon): its start time tells. Unreadable (/proc mounted hidepid): never broken.
    const now = startTimeOf(pid);
    return m[2] !== '-' && m[2] !== '?' && now !== '?' && now !== '-' && m[2] !== now;
  }
  return m[2] !== '-' && m[2] !== '?' && m[2] !== startTimeOf(pid);
}

/** Creates `path` holding `content` only if it does not exist (link: the content is there the instant the name is). */
function createExclusive(path: string, content: string): boolean {
  const tmp = tempPathFor(path);
  writeLockFile(tmp, content);
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/** A lock file need not survive a power cut (a lock from before a reboot is stale): no fsync. */
function writeLockFile(path: string, content: string): void {
  const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | (POSIX ? fsc.O_NOFOLLOW : 0), 0o600);
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

/** The lock file's content and age, or undefined if it is gone. Never follows a symlink. */
function readLock(path: string): { content: string; ageMs: number } | undefined {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | (POSIX ? fsc.O_NOFOLLOW | fsc.O_NONBLOCK : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new AttestationError('insecure_key_file', `the platform lock ${basename(path)} is a symlink; remove it`);
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_LOCK_BYTES) throw platformUnavailable(`the lock ${basename(path)} is not a small regular file; remove it`);
    return { content: readFileSync(fd, 'latin1'), ageMs: Date.now() - st.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/**
 * Removes the lock `path` if it still holds `content`, under the guard lock `path + '.guard'`.
 * @returns false if another breaker holds the guard (the caller waits a little and retries).
 */
function breakStale(path: string, content: string): boolean {
  const guard = `${path}.guard`;
  if (!createExclusive(guard, OWN_HOLDER)) {
    const g = readLock(guard);
    if (g && g.ageMs > GUARD_STALE_MS) {
      try {
        unlinkSync(guard);
      } catch {
        // another process removed it
      }
    }
    return false;
  }
  try {
    // Nobody but a breaker (under this guard) removes a lock whose holder is gone, and nobody
    // creates one while it exists: if it still reads `content`, it is the stale one.
    if (readLock(path)?.content === content) unlinkSync(path);
  } finally {
    unlinkSync(guard);
  }
  return true;
}

/**
 * Runs `fn` holding the lock file `lockPath` (created with O_EXCL beside the files it guards),
 * waiting up to 10 s for a live holder, breaking the lock of a holder that is gone.
 * @throws {AttestationError} `platform_unavailable` if a live process holds the lock for 10 s;
 *   `insecure_key_file` if the lock is a symlink. Whatever `fn` throws.
 * @example
 * withFileLock(join(dir, '.lock'), () => writeFileAtomic(path, text));
 */
export function withFileLock<T>(lockPath: string, fn: () => T): T {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    if (createExclusive(lockPath, OWN_HOLDER)) break;
    const held = readLock(lockPath);
    if (held === undefined) continue; // released between our try and our look
    // An unreadable lock (planted, or a holder's half-written file: link makes that impossible for ours) breaks by age.
    const stale = holderGone(held.content) || (!/^\d+ \S+\n$/.test(held.content) && held.ageMs > GUARD_STALE_MS);
    if (stale && breakStale(lockPath, held.content)) continue;
    if (Date.now() > deadline) {
      const pid = /^(\d+)/.exec(held.content)?.[1] ?? 'unknown';
      throw platformUnavailable(`the lock ${basename(lockPath)} is held by process ${pid}; if no enclave process is running, remove ${lockPath}`);
    }
    sleepSync(Math.min(1 + attempt, 20));
  }
  try {
    return fn();
  } finally {
    try {
      unlinkSync(lockPath);
    } catch {
      // broken by another process after we hung for long: nothing to release
    }
  }
}

/**
 * Refuses a directory the platform keeps files in unless it is a real directory (not a symlink,
 * when `noSymlink`), ours and not writable by group or others: whoever can write in it can plant files.
 * @throws {AttestationError} `insecure_key_file`, `platform_unavailable`.
 * @example
 * checkPrivateDirectory(join(dir, 'counters'), { noSymlink: true });
 */
export function checkPrivateDirectory(dir: string, options: { noSymlink?: boolean } = {}): void {
  if (!POSIX) return;
  let st;
  try {
    st = options.noSymlink ? lstatSync(dir) : statSync(dir);
  } catch (err) {
    throw platformUnavailable(`cannot read the directory ${basename(dir)}`, err);
  }
  if (st.isSymbolicLink()) throw new AttestationError('insecure_key_file', `the platform directory ${basename(dir)} is a symlink; replace it with a directory (mode 0700)`);
  if (!st.isDirectory()) throw platformUnavailable(`${basename(dir)} is not a directory`);
  if ((st.mode & 0o022) !== 0 || st.uid !== process.getuid!()) {
    throw new AttestationError('insecure_key_file', `the platform directory ${basename(dir)} is writable by, or belongs to, another user; use a private directory (mode 0700)`);
  }
}

/**
 * Runs `fn`, turning a Node I/O error (ENOSPC, EACCES, EROFS) into `platform_unavailable`; our own
 * errors (`EnclaveError`, `TypeError`, `RangeError`) pass unchanged.
 * @throws {AttestationError} `platform_unavailable` for an I/O error; whatever else `fn` throws.
 * @example
 * ioErrors('cannot write a counter', () => writeFileAtomic(path, bytes));
 */
export function ioErrors<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof EnclaveError || err instanceof TypeError || err instanceof RangeError) throw err;
    throw platformUnavailable(`${what}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err);
  }
}
