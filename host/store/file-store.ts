/**
 * `FileStore`: the sealed-blob store (./store.ts, docs/STORE.md) in a directory of the local file system.
 *
 * Layout (everything 0700/0600, owned by the process's user):
 * ```
 * <dir>/data/<hex>.b                 one blob per name; <hex> = the name's UTF-8 in lowercase hex
 * <dir>/data/<hex240>.d/…/<hex>.b    names above 120 bytes: the hex cut in components of 240 characters
 * <dir>/locks/<sha256(name) hex>/    a writer's lock on one name: a directory holding one file, its owner
 * <dir>/tmp/<owner>.blob|.lock       blobs being written and locks being staged; never read
 * ```
 * File names are never the names themselves: lowercase hex has no `/`, `.` or `..`, no case to fold
 * (macOS and Windows file systems fold case; `A` and `a` stay distinct names) and no Unicode to
 * normalise; cut in components of 240 characters (plus `.b`/`.d`), a 256-byte name never passes
 * NAME_MAX (255). Hex keeps the byte order of the names, so `list` reads names off directory entries
 * in order without opening a file. A leaf is `.b` and a directory `.d`, so a name that ends where a
 * longer one goes on never needs a path to be both.
 *
 * A blob file (format 1, integers little-endian):
 * ```
 * off len
 * 0   8   magic "ENCSTORE"
 * 8   4   format = 1
 * 12  4   name length n (1..256)
 * 16  8   version (1..2^53-1)
 * 24  4   blob length m
 * 28  4   reserved = 0
 * 32  32  SHA-256 of bytes [0, 32) ‖ name ‖ blob
 * 64  n   name (UTF-8)
 * 64+n m  blob
 * ```
 * The digest finds a torn, truncated or bit-rotted file, and the name inside finds a file copied or
 * renamed from another name: either is `store_corrupt`, never a wrong blob. It is not a MAC: whoever
 * writes this directory can forge a file; the blob's own seal refuses it (docs/SEALING.md).
 *
 * ## Writes: a per-name lock, then write-fsync-rename
 * A `put` takes the name's lock, reads the current version (the compare of compare-and-set), writes
 * the new file to `tmp/` (O_EXCL, 0600), fsyncs it, renames it over `data/…/<hex>.b` (atomic: a
 * reader opens the old inode or the new one), fsyncs the directory, and only then releases the lock
 * and resolves. A SIGKILL or a power cut at any point leaves the old file or the new one.
 *
 * Why a lock and not one file per version published with `link()` (EEXIST = the other writer won):
 * that CAS is only sound while every old version's file stays. Prune version v after v+2 is written
 * and a writer that read v long ago (a stopped process, a slow disk) links v+1 again, successfully:
 * its write is acknowledged yet invisible behind v+2. Keeping every version forever, or a floor
 * marker that must itself be compare-and-set, costs more than the lock, and moving pruned versions
 * aside is undone by the kernel holding a directory a path lookup already reached. The lock's mutual
 * exclusion, by contrast, rests on one atomic step and one conditional one, with no clock involved:
 * - acquire: rename a staged directory holding one file `<owner>` onto `locks/<id>`; the kernel
 *   refuses (ENOTEMPTY/EEXIST) while the lock directory holds a file, and replaces it when empty.
 * - release: unlink our `<owner>` file, rmdir the directory (ENOTEMPTY: someone took it, fine).
 * - break a dead owner's lock: unlink `locks/<id>/<dead owner>`, then rmdir. The unlink names the
 *   dead owner, so it can never remove a live one's lock that replaced it (ENOENT); the rmdir only
 *   removes an empty directory. No read-then-delete race.
 * An owner is `<host>_<boot>_<pid namespace>_<pid>_<start time>_<random>`: it is dead when the boot
 * id differs (a reboot), or the pid no longer runs, or runs as a zombie, or runs with another start
 * time (a reused pid). An owner of another host or pid namespace (a container) cannot be judged and
 * is never broken: its lock is waited for, then reported `unavailable` naming the lock to remove by
 * hand if its process is gone. Waiting is bounded (`lockWaitMs`); safety never depends on a clock.
 *
 * Temp files of dead writers (same owner test) are removed when a store opens and whenever a dead
 * owner's lock is broken; they are never read.
 *
 * Planted content: every file is opened with O_NOFOLLOW|O_NONBLOCK and checked with fstat (a symlink,
 * a directory, a FIFO or a device where a blob belongs is `store_corrupt`, never followed, never
 * blocked on); directories on the way are checked with lstat. A check of a directory and its use are
 * two steps: an attacker who can write inside this 0700 directory runs as our user already, and the
 * seal is what protects the blobs from them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmdirSync, rmSync, statSync, type Dirent, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EnclaveError, quoteInput } from '../../core/index.js';
import {
  checkBlob,
  checkExpectedVersion,
  checkListOptions,
  checkName,
  isValidName,
  STORE_LIMITS,
  type ListOptions,
  type PutOptions,
  type SealedStore,
  type StoredBlob,
} from './store.js';

/** Options of a {@link FileStore}. */
export interface FileStoreOptions {
  /** Largest blob, bytes: 1..16 MiB (`STORE_LIMITS.hardMaxBlobBytes`); default 1 MiB. A larger file on disk reads as `too_large`. */
  maxBlobBytes?: number;
  /**
   * How long a write waits for another live writer's lock on the same name, ms: 0..600000; default
   * 10000. Then `unavailable` (retryable). Two writers of one name in one `FileStore` queue in memory
   * instead and never wait on each other's lock.
   */
  lockWaitMs?: number;
}

/** The defaults of {@link FileStoreOptions}. */
export const FILE_STORE_DEFAULTS = Object.freeze({
  maxBlobBytes: STORE_LIMITS.maxBlobBytes,
  lockWaitMs: 10_000,
});

/**
 * Calls of one FileStore doing I/O at once; the others wait in memory, in order. Without a bound, a
 * caller's burst (thousands of puts at once) held a file descriptor per call and ran the process
 * out of them (EMFILE for every other part of the process too: sockets, the platform's counter
 * files), and queued that many fsyncs in libuv's four-thread pool ahead of everyone else's file I/O.
 */
const MAX_IO_IN_FLIGHT = 64;

const POSIX = process.platform !== 'win32';
const O_NOFOLLOW = POSIX ? fsc.O_NOFOLLOW : 0;
const O_NONBLOCK = POSIX ? fsc.O_NONBLOCK : 0;

const MAGIC = Buffer.from('ENCSTORE', 'latin1');
const FORMAT = 1;
const HEADER = 64;
/** Hex characters per path component (+ 2 for `.b`/`.d`: 242 ≤ NAME_MAX 255). */
const SEGMENT = 240;
const LEAF = /^(?:[0-9a-f]{2}){1,120}\.b$/;
const BRANCH = /^[0-9a-f]{240}\.d$/;
// ignoreBOM: a name may begin with U+FEFF (a valid character); the default decoder would drop it and
// read "\uFEFFa" back as "a" (another name) and "\uFEFF" as "" (not a name).
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function corrupt(what: string, cause?: unknown): EnclaveError {
  return new EnclaveError('store_corrupt', `A file of the store is not a blob it wrote (${what}): restore it from a backup, or remove it by hand.`, cause === undefined ? undefined : { cause });
}

/** An I/O failure: `unavailable` (retryable) with the errno in the message; our own errors pass through. */
function ioError(what: string, err: unknown): EnclaveError {
  if (err instanceof EnclaveError) return err;
  const code = typeof (err as NodeJS.ErrnoException)?.code === 'string' ? (err as NodeJS.ErrnoException).code : 'EIO';
  return new EnclaveError('unavailable', `The store could not ${what} (${code}): check the store directory, its file system and free space, then retry.`, { cause: err });
}

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;

// ---------------------------------------------------------------------------------------------
// Owners: who holds a lock or a temp file, and whether it still runs.

interface Owner {
  readonly host: string;
  readonly boot: string;
  readonly ns: string;
  readonly pid: number;
  readonly start: string;
}

const OWNER = /^([0-9a-f]{8})_([0-9a-f]{1,32})_(\d{1,20})_(\d{1,10})_(\d{1,20})_([0-9a-f]{16})$/;

/** The start time of a process in clock ticks since boot (/proc/<pid>/stat field 22), or '0' unknown; 'Z' for a zombie or a dead task. */
function processStart(pid: number | 'self'): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X' || fields[0] === 'x') return 'Z';
    const start = fields[19];
    return start !== undefined && /^\d{1,20}$/.test(start) ? start : '0';
  } catch {
    return '0';
  }
}

let self: Owner | undefined;
/** This process as an owner (computed once). */
function selfOwner(): Owner {
  if (self !== undefined) return self;
  let boot = '0';
  let ns = '0';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/[^0-9a-f]/g, '').slice(0, 32) || '0';
  } catch {
    /* not Linux: a reboot is then judged by the pid alone */
  }
  try {
    ns = /\[(\d{1,20})\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  } catch {
    /* no pid namespaces to tell apart */
  }
  self = {
    host: createHash('sha256').update(hostname()).digest('hex').slice(0, 8),
    boot,
    ns,
    pid: process.pid,
    start: processStart('self'),
  };
  return self;
}

/** A fresh owner token of this process: its identity and 8 random bytes (one per lock or temp file). */
function ownerToken(): string {
  const o = selfOwner();
  return `${o.host}_${o.boot}_${o.ns}_${o.pid}_${o.start}_${randomBytes(8).toString('hex')}`;
}

/**
 * Whether the owner of a token still runs: `dead` (safe to clean up after), `alive`, or `unknown`
 * (another host or pid namespace: never broken). A malformed token is `dead`: only this code writes
 * tokens in these private directories, so it is debris.
 */
function ownerState(token: string): 'dead' | 'alive' | 'unknown' {
  const m = OWNER.exec(token);
  if (m === null) return 'dead';
  const me = selfOwner();
  const [, host, boot, ns, pidText, start] = m as unknown as [string, string, string, string, string, string];
  if (host !== me.host) return 'unknown';
  if (boot !== '0' && me.boot !== '0' && boot !== me.boot) return 'dead'; // written before this boot
  if (ns !== me.ns) return 'unknown';
  const pid = Number(pidText);
  if (pid === me.pid) return start === me.start ? 'alive' : 'dead';
  if (pid < 1) return 'dead';
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (errno(err) === 'ESRCH') return 'dead';
    // EPERM: a process of another user holds that pid, so ours is gone.
    if (errno(err) === 'EPERM') return 'dead';
    return 'alive';
  }
  const now = processStart(pid);
  if (now === 'Z') return 'dead';
  if (now !== '0' && start !== '0' && now !== start) return 'dead'; // the pid was reused
  return 'alive';
}

// ---------------------------------------------------------------------------------------------
// Paths and the file format.

/** The name's path components under data/: `<seg>.d`… then `<seg>.b`. */
function dataPath(nameBytes: Uint8Array): string[] {
  const hex = Buffer.from(nameBytes.buffer, nameBytes.byteOffset, nameBytes.byteLength).toString('hex');
  const parts: string[] = [];
  for (let i = 0; i < hex.length; i += SEGMENT) {
    const seg = hex.slice(i, i + SEGMENT);
    parts.push(i + SEGMENT < hex.length ? `${seg}.d` : `${seg}.b`);
  }
  return parts;
}

function lockId(nameBytes: Uint8Array): string {
  return createHash('sha256').update(nameBytes).digest('hex');
}

function encodeFile(nameBytes: Uint8Array, version: number, blob: Uint8Array): Buffer {
  const file = Buffer.alloc(HEADER + nameBytes.length + blob.length);
  MAGIC.copy(file, 0);
  file.writeUInt32LE(FORMAT, 8);
  file.writeUInt32LE(nameBytes.length, 12);
  file.writeBigUInt64LE(BigInt(version), 16);
  file.writeUInt32LE(blob.length, 24);
  file.set(nameBytes, HEADER);
  file.set(blob, HEADER + nameBytes.length);
  digestOf(file, nameBytes.length, blob.length).copy(file, 32);
  return file;
}

function digestOf(file: Buffer, nameLength: number, blobLength: number): Buffer {
  return createHash('sha256')
    .update(file.subarray(0, 32))
    .update(file.subarray(HEADER, HEADER + nameLength + blobLength))
    .digest();
}

/** Parses a whole blob file read for `nameBytes`; anything off is `store_corrupt`. */
function decodeFile(file: Buffer, nameBytes: Uint8Array): { version: number; bytes: Uint8Array } {
  if (file.length < HEADER || !file.subarray(0, 8).equals(MAGIC)) throw corrupt('no store header');
  if (file.readUInt32LE(8) !== FORMAT) throw corrupt(`format ${file.readUInt32LE(8)}, not ${FORMAT}`);
  const nameLength = file.readUInt32LE(12);
  const version = file.readBigUInt64LE(16);
  const blobLength = file.readUInt32LE(24);
  if (file.readUInt32LE(28) !== 0) throw corrupt('reserved bytes are set');
  if (nameLength < 1 || nameLength > STORE_LIMITS.maxNameBytes || HEADER + nameLength + blobLength !== file.length) throw corrupt('its lengths do not add up: truncated or extended');
  if (version < 1n || version > BigInt(STORE_LIMITS.maxVersion)) throw corrupt('its version is out of range');
  if (!digestOf(file, nameLength, blobLength).equals(file.subarray(32, HEADER))) throw corrupt('its digest does not match: damaged');
  if (!Buffer.from(nameBytes.buffer, nameBytes.byteOffset, nameBytes.byteLength).equals(file.subarray(HEADER, HEADER + nameLength))) {
    throw corrupt('it holds the blob of another name');
  }
  // A copy the caller owns, as a plain Uint8Array.
  return { version: Number(version), bytes: new Uint8Array(file.subarray(HEADER + nameLength)) };
}

/** fsync of a directory: makes a rename, link or unlink in it durable. Not on Windows (no such call). */
async function syncDir(path: string): Promise<void> {
  if (!POSIX) return;
  const fh = await open(path, fsc.O_RDONLY | O_NOFOLLOW);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsync of the store's root or of its parent (either may be reached through a symlink the caller chose). */
function syncDirSync(path: string): void {
  if (!POSIX) return;
  const fd = openSync(path, fsc.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------

/**
 * A {@link SealedStore} in a private directory of the local file system: durable (fsync of the
 * file and of its directory before a write resolves), atomic (rename), compare-and-set across
 * processes (a per-name lock whose dead owners are recovered by pid, boot id and start time, never by
 * a timeout). See the file header for the layout, the format and why. Local file systems only:
 * network file systems differ in their rename, fsync and pid semantics.
 *
 * Creates the directory (0700) if it is missing and refuses one that is not ours or that other users
 * may write (they could plant blobs or links). Opening removes dead writers' temp files and locks.
 * @example
 * const store = new FileStore('/var/lib/myservice/sealed');
 * const a = await store.put('vault/k1', blob, { expectedVersion: 0 });   // a.version === 1
 * await store.put('vault/k1', blob2, { expectedVersion: 0 });             // EnclaveError 'conflict'
 * await store.list({ prefix: 'vault/' });                                 // ['vault/k1']
 * await store.close();
 */
export class FileStore implements SealedStore {
  readonly #root: string;
  readonly #data: string;
  readonly #locks: string;
  readonly #tmp: string;
  readonly #maxBlobBytes: number;
  readonly #lockWaitMs: number;
  /** The tail of each name's queue of calls in this instance (so they never wait on each other's lock). */
  readonly #queues = new Map<string, Promise<unknown>>();
  readonly #inFlight = new Set<Promise<unknown>>();
  /** Free I/O slots (MAX_IO_IN_FLIGHT), and the calls waiting for one, first come first served. */
  #slots = MAX_IO_IN_FLIGHT;
  readonly #waiting: (() => void)[] = [];
  #closed = false;

  /**
   * @param dir - the store's directory; created (0700, with its parents) if missing.
   * @throws {EnclaveError} `invalid_options` (a bad option, a file where the directory or a parent belongs, or a directory that is not ours or that
   *   other users may write), `store_corrupt` (a file, link or foreign directory where the store's
   *   own directories belong), `unavailable` (an I/O error, errno in the message).
   */
  constructor(dir: string, options: FileStoreOptions = {}) {
    if (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0')) throw new EnclaveError('invalid_options', 'The store directory must be a non-empty path: pass the directory to keep the blobs in.');
    if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_options', 'FileStore options must be an object: see FileStoreOptions.');
    for (const key of Object.keys(options)) {
      if (key !== 'maxBlobBytes' && key !== 'lockWaitMs') throw new EnclaveError('invalid_options', `Unknown FileStore option ${JSON.stringify(key.slice(0, 40))}: see FileStoreOptions.`);
    }
    const maxBlobBytes = options.maxBlobBytes ?? FILE_STORE_DEFAULTS.maxBlobBytes;
    if (!Number.isInteger(maxBlobBytes) || maxBlobBytes < 1 || maxBlobBytes > STORE_LIMITS.hardMaxBlobBytes) {
      throw new EnclaveError('invalid_options', `maxBlobBytes must be an integer from 1 to ${STORE_LIMITS.hardMaxBlobBytes}.`);
    }
    const lockWaitMs = options.lockWaitMs ?? FILE_STORE_DEFAULTS.lockWaitMs;
    if (!Number.isInteger(lockWaitMs) || lockWaitMs < 0 || lockWaitMs > 600_000) throw new EnclaveError('invalid_options', 'lockWaitMs must be an integer from 0 to 600000.');
    this.#maxBlobBytes = maxBlobBytes;
    this.#lockWaitMs = lockWaitMs;
    try {
      // The first directory created, if any: its parent's entry for it is made durable below.
      const first = mkdirSync(resolve(dir), { recursive: true, mode: 0o700 });
      if (first !== undefined) syncDirSync(dirname(first));
      // The root may be a symlink (its target is what is checked, as for the platform directory);
      // the store works in the target, so no later call follows a link that was swapped meanwhile.
      this.#root = realpathSync(resolve(dir));
    } catch (err) {
      // A file (or a FIFO, a socket) where the directory or one of its parents belongs is the
      // caller's mistake, not a passing I/O failure: `unavailable` would say "retry" forever.
      if (errno(err) === 'EEXIST' || errno(err) === 'ENOTDIR') {
        throw new EnclaveError('invalid_options', `The store directory (${quoteInput(dir)}) or one of its parents is not a directory: pass a directory.`, { cause: err });
      }
      throw ioError('create its directory', err);
    }
    this.#data = join(this.#root, 'data');
    this.#locks = join(this.#root, 'locks');
    this.#tmp = join(this.#root, 'tmp');
    // The directories inside may not be links.
    checkPrivate(this.#root, statSyncOr(this.#root), 'the store directory');
    let created = false;
    for (const sub of [this.#data, this.#locks, this.#tmp]) {
      try {
        mkdirSync(sub, { mode: 0o700 });
        created = true;
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw ioError('create its directories', err);
      }
      let st: Stats;
      try {
        st = lstatSync(sub);
      } catch (err) {
        throw ioError('read its directories', err);
      }
      if (!st.isDirectory()) throw corrupt(`${sub.slice(this.#root.length + 1)} is not a directory`);
      checkPrivate(sub, st, `the store's ${sub.slice(this.#root.length + 1)} directory`);
    }
    try {
      if (created) syncDirSync(this.#root);
      this.#sweepSync();
    } catch (err) {
      throw ioError('open', err);
    }
  }

  /** The directory the store keeps its files in (absolute). */
  get directory(): string {
    return this.#root;
  }

  /**
   * The blob stored under `name`, or `undefined`.
   * @throws {EnclaveError} `invalid_args`, `store_corrupt`, `too_large` (a file above maxBlobBytes), `unavailable`, `closed`.
   * @example
   * const blob = await store.get('vault/k1'); // { name, version, bytes } | undefined
   */
  get(name: string): Promise<StoredBlob | undefined> {
    return this.#run(async () => {
      const nameBytes = checkName(name);
      const found = await this.#io(() => this.#read(nameBytes));
      return found === undefined ? undefined : Object.freeze({ name, version: found.version, bytes: found.bytes });
    });
  }

  /**
   * Stores `bytes` under `name` if its version is `expectedVersion` (0: absent); durable when it resolves.
   * @throws {EnclaveError} `conflict`, `invalid_args`, `invalid_options`, `too_large`, `store_corrupt`,
   *   `unavailable` (the write may or may not have landed: read before retrying), `closed`.
   * @example
   * const { version } = await store.put('vault/k1', blob, { expectedVersion: 0 }); // 1
   */
  put(name: string, bytes: Uint8Array, options: PutOptions): Promise<StoredBlob> {
    return this.#run(async () => {
      const nameBytes = checkName(name);
      // Copied once, before any await: a caller changing its array meanwhile changes nothing stored.
      const copy = checkBlob(bytes, this.#maxBlobBytes);
      const expected = checkExpectedVersion(options, 0);
      return this.#serial(nameBytes, async () => {
        const version = expected + 1;
        await this.#io(() => this.#withLock(nameBytes, async () => {
          const parts = dataPath(nameBytes);
          const dir = await this.#dirFor(parts, true);
          const current = await this.#read(nameBytes);
          if ((current?.version ?? 0) !== expected) throw conflict(current?.version);
          await this.#publish(dir, parts[parts.length - 1]!, encodeFile(nameBytes, version, copy));
        }));
        return Object.freeze({ name, version, bytes: new Uint8Array(copy) });
      });
    });
  }

  /**
   * A page of names in UTF-8 byte order (`after` exclusive).
   * @throws {EnclaveError} `invalid_options`, `store_corrupt` (a link, or an entry of the wrong kind, among the names), `unavailable`, `closed`.
   * @example
   * let page = await store.list({ prefix: 'vault/', limit: 1000 });
   * while (page.length === 1000) page = await store.list({ prefix: 'vault/', after: page.at(-1), limit: 1000 });
   */
  list(options?: ListOptions): Promise<string[]> {
    return this.#run(async () => {
      const { prefix, after, limit } = checkListOptions(options);
      const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
      const names: string[] = [];
      await this.#io(() => this.#walk(this.#data, '', hex(prefix), after === undefined ? undefined : hex(after), limit, names));
      return names;
    });
  }

  /**
   * Removes `name` if its version is `expectedVersion` (≥ 1); durable when it resolves.
   * @throws {EnclaveError} `conflict` (absent or another version), `invalid_args`, `invalid_options`, `store_corrupt`, `unavailable`, `closed`.
   * @example
   * await store.delete('vault/k1', { expectedVersion: 2 });
   */
  delete(name: string, options: PutOptions): Promise<void> {
    return this.#run(async () => {
      const nameBytes = checkName(name);
      const expected = checkExpectedVersion(options, 1);
      await this.#serial(nameBytes, () =>
        this.#io(() => this.#withLock(nameBytes, async () => {
          const parts = dataPath(nameBytes);
          const current = await this.#read(nameBytes);
          if (current?.version !== expected) throw conflict(current?.version);
          const dir = join(this.#data, ...parts.slice(0, -1));
          try {
            await unlink(join(dir, parts[parts.length - 1]!));
            await syncDir(dir);
          } catch (err) {
            throw ioError('delete the blob', err);
          }
        })),
      );
    });
  }

  /**
   * Waits for the calls in flight, then refuses new ones with `closed`. Idempotent.
   * @example
   * await store.close();
   */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  // -------------------------------------------------------------------------------------------

  /** Runs a public call: refused once closed, tracked for `close`. */
  #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new EnclaveError('closed', 'The store is closed: open a new FileStore to use it again.'));
    const p = fn();
    this.#inFlight.add(p);
    const done = () => this.#inFlight.delete(p);
    p.then(done, done);
    return p;
  }

  /**
   * Runs `fn` holding one of the instance's I/O slots (waiting for one in order). Taken inside a
   * name's queue and before the name's lock, so a slot holder waits only for its own I/O and, for
   * at most lockWaitMs, another process's lock: never for a call that waits for a slot.
   */
  async #io<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#slots > 0) this.#slots--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (the count stays taken), or give it back.
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else this.#slots++;
    }
  }

  /** Runs `fn` after every earlier call of this instance on the same name has settled. */
  #serial<T>(nameBytes: Uint8Array, fn: () => Promise<T>): Promise<T> {
    const key = Buffer.from(nameBytes).toString('latin1');
    const previous = this.#queues.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#queues.set(key, tail);
    void tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }

  /**
   * The directory holding a name's leaf: checked (a real directory, not a link) at each level;
   * created (and its parent fsynced) when `create`. Undefined when missing and not `create`.
   */
  #dirFor(parts: readonly string[], create: true): Promise<string>;
  #dirFor(parts: readonly string[], create: false): Promise<string | undefined>;
  async #dirFor(parts: readonly string[], create: boolean): Promise<string | undefined> {
    let dir = this.#data;
    for (const part of parts.slice(0, -1)) {
      const next = join(dir, part);
      if (create) {
        try {
          await mkdir(next, { mode: 0o700 });
          await syncDir(dir);
        } catch (err) {
          if (errno(err) !== 'EEXIST') throw ioError('create a directory', errno(err) === 'ENOTDIR' ? corrupt('a file where a directory belongs', err) : err);
        }
      }
      let st: Stats;
      try {
        st = await lstat(next);
      } catch (err) {
        if (errno(err) === 'ENOENT' && !create) return undefined;
        throw ioError('read a directory', err);
      }
      if (!st.isDirectory()) throw corrupt(st.isSymbolicLink() ? 'a link where a directory belongs' : 'a file where a directory belongs');
      dir = next;
    }
    return dir;
  }

  /** Reads and checks the blob of a name: undefined when absent. */
  async #read(nameBytes: Uint8Array): Promise<{ version: number; bytes: Uint8Array } | undefined> {
    const parts = dataPath(nameBytes);
    const dir = await this.#dirFor(parts, false);
    if (dir === undefined) return undefined;
    let fh: FileHandle;
    try {
      // No symlink followed, and no blocking on a planted FIFO.
      fh = await open(join(dir, parts[parts.length - 1]!), fsc.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (err) {
      const code = errno(err);
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP' || code === 'EMLINK') throw corrupt('a link where a blob belongs', err);
      if (code === 'ENOTDIR') throw corrupt('a file where a directory belongs', err);
      throw ioError('read a blob', err);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw corrupt(st.isDirectory() ? 'a directory where a blob belongs' : 'a special file where a blob belongs');
      const max = HEADER + STORE_LIMITS.maxNameBytes + this.#maxBlobBytes;
      if (st.size > max) throw new EnclaveError('too_large', `A stored blob is larger than this store's maxBlobBytes (${this.#maxBlobBytes}): open the store with a larger maxBlobBytes.`);
      // Read at most max + 1 bytes whatever fstat said: a file that grew meanwhile is still bounded.
      const buffer = Buffer.alloc(Math.min(max + 1, st.size + 1));
      let length = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buffer, length, buffer.length - length, length);
        if (bytesRead === 0) break;
        length += bytesRead;
        if (length === buffer.length) break;
      }
      if (length > st.size) throw corrupt('it changed while it was read');
      return decodeFile(buffer.subarray(0, length), nameBytes);
    } catch (err) {
      throw ioError('read a blob', err);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  /** Writes a file to tmp/, fsyncs it, renames it to `dir/leaf`, fsyncs `dir`. */
  async #publish(dir: string, leaf: string, file: Buffer): Promise<void> {
    const tmp = join(this.#tmp, `${ownerToken()}.blob`);
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | O_NOFOLLOW, 0o600);
      let written = 0;
      while (written < file.length) written += (await fh.write(file, written, file.length - written, written)).bytesWritten;
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, join(dir, leaf));
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      if (errno(err) === 'EISDIR' || errno(err) === 'ENOTEMPTY') throw corrupt('a directory where a blob belongs', err);
      throw ioError('write a blob', err);
    }
    try {
      await syncDir(dir);
    } catch (err) {
      throw ioError('make a write durable', err);
    }
  }

  /** Runs `fn` holding the name's lock (see the file header). */
  async #withLock<T>(nameBytes: Uint8Array, fn: () => Promise<T>): Promise<T> {
    const lock = join(this.#locks, lockId(nameBytes));
    const token = ownerToken();
    const stage = join(this.#tmp, `${token}.lock`);
    try {
      await mkdir(stage, { mode: 0o700 });
      await (await open(join(stage, token), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | O_NOFOLLOW, 0o600)).close();
    } catch (err) {
      await rm(stage, { recursive: true, force: true }).catch(() => undefined);
      throw ioError('stage a lock', err);
    }
    const deadline = Date.now() + this.#lockWaitMs;
    let pause = 1;
    for (;;) {
      try {
        await rename(stage, lock);
        break;
      } catch (err) {
        const code = errno(err);
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') {
          await rm(stage, { recursive: true, force: true }).catch(() => undefined);
          if (code === 'ENOTDIR') throw corrupt('a file or link where a lock directory belongs', err);
          throw ioError('take a lock', err);
        }
      }
      const holder = await this.#breakIfDead(lock);
      if (holder === undefined) continue; // gone or broken: try again at once
      if (Date.now() >= deadline) {
        await rm(stage, { recursive: true, force: true }).catch(() => undefined);
        const who = holder.state === 'unknown' ? 'a process of another host or container' : `process ${OWNER.exec(holder.token)?.[4] ?? '?'}`;
        throw new EnclaveError(
          'unavailable',
          `Another writer (${who}) holds the lock on this name: retry later; if that process is gone, remove ${quoteInput(join(lock, holder.token))} and the directory holding it.`,
        );
      }
      await sleep(pause + Math.random() * pause);
      pause = Math.min(pause * 2, 50);
    }
    try {
      return await fn();
    } finally {
      // Never throws: the write is done (or failed on its own); a lock we cannot remove stays until
      // this process exits, when any writer breaks it.
      await unlink(join(lock, token)).catch(() => undefined);
      await rmdir(lock).catch(() => undefined);
    }
  }

  /**
   * Looks at a held lock: breaks it if its owner is dead (and sweeps tmp/, where that owner may have
   * left files) and returns undefined; returns the live or unknown holder otherwise.
   */
  async #breakIfDead(lock: string): Promise<{ token: string; state: 'alive' | 'unknown' } | undefined> {
    let entries: string[];
    try {
      entries = await readdir(lock);
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      if (errno(err) === 'ENOTDIR') throw corrupt('a file where a lock directory belongs', err);
      throw ioError('read a lock', err);
    }
    let holder: { token: string; state: 'alive' | 'unknown' } | undefined;
    let broke = false;
    for (const entry of entries) {
      const state = ownerState(entry);
      if (state === 'dead') {
        // Conditional on the owner's name: if a live writer took the lock meanwhile, this is ENOENT.
        await rm(join(lock, entry), { recursive: true, force: true }).catch(() => undefined);
        broke = true;
      } else holder ??= { token: entry, state };
    }
    if (holder !== undefined) return holder;
    await rmdir(lock).catch(() => undefined);
    if (broke) await this.#sweep().catch(() => undefined);
    return undefined;
  }

  /** Removes dead owners' temp files (async; after a broken lock). */
  async #sweep(): Promise<void> {
    for (const entry of await readdir(this.#tmp)) {
      if (ownerState(entry.split('.')[0]!) === 'dead') await rm(join(this.#tmp, entry), { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** At open: removes dead owners' temp files, and breaks dead owners' locks. */
  #sweepSync(): void {
    for (const entry of readdirSync(this.#tmp)) {
      if (ownerState(entry.split('.')[0]!) === 'dead') rmSync(join(this.#tmp, entry), { recursive: true, force: true });
    }
    for (const entry of readdirSync(this.#locks)) {
      const lock = join(this.#locks, entry);
      let owners: string[];
      try {
        owners = readdirSync(lock);
      } catch {
        continue; // not a directory: reported when a write reaches it
      }
      let live = false;
      for (const owner of owners) {
        if (ownerState(owner) === 'dead') rmSync(join(lock, owner), { recursive: true, force: true });
        else live = true;
      }
      if (!live) {
        try {
          rmdirSync(lock);
        } catch {
          /* taken meanwhile, or not empty */
        }
      }
    }
  }

  /**
   * Collects, in byte order, up to `limit` names under `dir` (whose names start with `hexSoFar`)
   * that start with `prefix` and come after `after` (hex strings; lowercase hex orders as the bytes).
   */
  async #walk(dir: string, hexSoFar: string, prefix: string, after: string | undefined, limit: number, out: string[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw ioError('list its names', err);
    }
    // Sort by segment, a leaf before the directory of the same segment (its names are longer).
    const items = entries
      .filter((e) => LEAF.test(e.name) || BRANCH.test(e.name))
      .map((e) => ({ entry: e, seg: e.name.slice(0, -2), leaf: e.name.endsWith('.b') }))
      .sort((a, b) => (a.seg < b.seg ? -1 : a.seg > b.seg ? 1 : a.leaf === b.leaf ? 0 : a.leaf ? -1 : 1));
    for (const { entry, seg, leaf } of items) {
      if (out.length >= limit) return;
      const hex = hexSoFar + seg;
      // Every name here starts with `hex`: skip the entry unless it can hold a name with the prefix…
      if (!(hex.startsWith(prefix) || prefix.startsWith(hex))) continue;
      // …and one after `after` (if hex < after and after does not extend it, all of them are before).
      if (after !== undefined && hex <= after && !(!leaf && after.startsWith(hex))) continue;
      if (entry.isSymbolicLink()) throw corrupt('a link among the names');
      if (leaf) {
        if (!entry.isFile()) throw corrupt('a directory or special file where a blob belongs');
        if (!hex.startsWith(prefix)) continue;
        const name = decodeName(hex);
        if (name === undefined) throw corrupt('a file name that is not a valid name');
        out.push(name);
      } else {
        if (!entry.isDirectory()) throw corrupt('a file where a directory belongs');
        if (hex.length >= STORE_LIMITS.maxNameBytes * 2) continue; // no valid name is longer
        await this.#walk(join(dir, entry.name), hex, prefix, after, limit, out);
      }
    }
  }
}

function conflict(current: number | undefined): EnclaveError {
  return new EnclaveError(
    'conflict',
    current === undefined
      ? 'The name does not exist (or no longer exists) in the store: read it again, then retry with its current version (0 to create it).'
      : `The name is at version ${current} in the store: read it again, then retry with its current version.`,
  );
}

/** The name a hex file name encodes, or undefined if it is not a valid name. */
function decodeName(hex: string): string | undefined {
  try {
    const name = UTF8_STRICT.decode(Buffer.from(hex, 'hex'));
    return isValidName(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

function statSyncOr(path: string): Stats {
  try {
    return statSync(path);
  } catch (err) {
    throw ioError('read its directory', err);
  }
}

/**
 * Refuses a directory that is not a directory, not ours, or writable by group or others: whoever can
 * create or rename entries in it can plant blobs or links (the checks OpenSSH makes of `~/.ssh`, and
 * attest/software-provider.ts of the platform directory).
 */
function checkPrivate(path: string, st: Stats, what: string): void {
  if (!st.isDirectory()) throw new EnclaveError('invalid_options', `${what} is not a directory: pass a directory.`);
  if (!POSIX) return;
  if (st.uid !== process.getuid!() || (st.mode & 0o022) !== 0) {
    throw new EnclaveError('invalid_options', `${what} (${quoteInput(path)}) belongs to another user or other users may write to it: use a private directory (mode 0700).`);
  }
}
