/**
 * Monotonic counters of the software platform (rollback protection for sealed data, docs/ATTESTATION.md
 * §6.3): per identity binding, a table of counters, each a value (u64) and a 32-byte tag, kept in
 * `<platformDir>/counters/<namespace hex>/<id hex>`, one 64-byte file per counter.
 *
 * - Namespace = SHA-256("enclave/counter/v1" ‖ 0x00 ‖ binding), the binding of ./sealing.ts
 *   {@link sealingBinding} (no svn: an upgrade keeps its predecessor's counters).
 * - An advance is a compare-and-set under the namespace's lock file (./_durable.ts), written with an
 *   atomic rename and fsynced (file and directory) before it returns: a SIGKILL or a power cut leaves
 *   the old value or the new one. Two processes advancing from the same value: exactly one wins.
 * - Bounds: 4096 counters per namespace, values up to 2^64-1 (`counter_limit`).
 *
 * THREAT MODEL: the counters protect sealed data against a stale copy of the store (a backup
 * restore, a replica, hostile storage). Anyone who can write the platform directory can reset them;
 * the files carry a checksum against damage, not a MAC against that writer (docs/THREAT-MODEL.md).
 *
 * File format (64 bytes, big-endian integers):
 * `"ENCC" ‖ version 1 ‖ 3 zero bytes ‖ id u64 ‖ value u64 ‖ tag (32) ‖ SHA-256("enclave/counter-file/v1\0" ‖ namespace ‖ bytes [0, 56))[0, 8)`.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { closeSync, constants as fsc, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { abytes, bytesToHex, concatBytes, equalBytes, utf8Encode } from './_bytes.js';
import { checkPrivateDirectory, fsyncDirectory, ioErrors, platformUnavailable, POSIX, withFileLock, writeFileAtomic } from './_durable.js';
import { AttestationError } from '../core/index.js';
import type { ModuleIdentity } from './measure.js';
import type { CounterState } from './provider.js';
import { sealingBinding, type SealingPolicy } from './sealing.js';

/** The counters' folder inside the platform directory. */
export const COUNTERS_DIR = 'counters';
/** At most this many counters per namespace (identity binding); a new one beyond is `counter_limit`. */
export const MAX_COUNTERS_PER_NAMESPACE = 4096;
/** The largest value a counter holds (u64); advancing past it is `counter_limit`. */
export const MAX_COUNTER_VALUE = 2n ** 64n - 1n;

const FILE_BYTES = 64;
const MAGIC = utf8Encode('ENCC');
const NAMESPACE_PREFIX = utf8Encode('enclave/counter/v1\0');
const CHECK_PREFIX = utf8Encode('enclave/counter-file/v1\0');
const ID_NAME = /^[0-9a-f]{16}$/;
/** A temp file of an advance (./_durable.ts tempPathFor): only the lock holder writes one, so under the lock any is a dead writer's. */
const ADVANCE_TEMP = /^\.[0-9a-f]{16}\.\d+\.[0-9a-f]{12}\.tmp$/;

/**
 * The counter namespace of an identity under a policy: SHA-256("enclave/counter/v1\0" ‖ binding).
 * @throws {AttestationError} `sealing_unavailable` for `signer` without an accepted signer.
 * @throws {RangeError} for a malformed identity; {@link TypeError} for an unknown policy.
 * @example
 * const ns = counterNamespace(identity, 'signer'); // 32 bytes, the same for every svn
 */
export function counterNamespace(identity: ModuleIdentity, policy: SealingPolicy): Uint8Array {
  return sha256(concatBytes(NAMESPACE_PREFIX, sealingBinding(identity, policy)));
}

function u64(value: unknown, title: string): bigint {
  if (typeof value !== 'bigint') throw new TypeError(`${title}: expected a bigint`);
  if (value < 0n || value > MAX_COUNTER_VALUE) throw new RangeError(`${title}: expected 0..2^64-1`);
  return value;
}

function checksum(namespace: Uint8Array, body: Uint8Array): Uint8Array {
  return sha256(concatBytes(CHECK_PREFIX, namespace, body)).subarray(0, 8);
}

function encode(namespace: Uint8Array, id: bigint, value: bigint, tag: Uint8Array): Uint8Array {
  const out = new Uint8Array(FILE_BYTES);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = 1;
  view.setBigUint64(8, id);
  view.setBigUint64(16, value);
  out.set(tag, 24);
  out.set(checksum(namespace, out.subarray(0, 56)), 56);
  return out;
}

function corrupt(path: string, what: string): AttestationError {
  return platformUnavailable(`the counter file ${basename(dirname(path))}/${basename(path)} is corrupt (${what}); restore the platform directory from a backup`);
}

function decode(namespace: Uint8Array, id: bigint, bytes: Uint8Array, path: string): CounterState {
  if (bytes.length !== FILE_BYTES) throw corrupt(path, `${bytes.length} bytes, expected ${FILE_BYTES}`);
  if (!equalBytes(bytes.subarray(0, 4), MAGIC) || bytes[4] !== 1 || bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) throw corrupt(path, 'bad header');
  if (!equalBytes(bytes.subarray(56), checksum(namespace, bytes.subarray(0, 56)))) throw corrupt(path, 'bad checksum');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getBigUint64(8) !== id) throw corrupt(path, 'it names another counter');
  const value = view.getBigUint64(16);
  if (value === 0n) throw corrupt(path, 'value 0 is never written');
  return { value, tag: bytes.slice(24, 56) };
}

/**
 * The counters of one platform directory. Stateless between calls (every call reads the files), so
 * any number of instances and processes share the same counters.
 *
 * @example
 * const store = new CounterStore('/var/lib/enclave/counters');
 * const ns = counterNamespace(identity, 'signer');
 * const { value } = store.read(ns, 7n);
 * if (!store.advance(ns, 7n, value, digest)) throw new Error('lost a race');
 */
export class CounterStore {
  readonly #dir: string;

  /** @param dir - the counters folder (`<platformDir>/counters`); created (0700) on the first advance. */
  constructor(dir: string) {
    this.#dir = dir;
  }

  /**
   * A counter's value and tag; 0n and 32 zero bytes if it was never advanced.
   * @throws {AttestationError} `insecure_key_file` (a symlink, another user's file or folder, a mode
   *   open to others), `platform_unavailable` (a corrupt file, an I/O error).
   * @throws {TypeError}/{@link RangeError} for a namespace that is not 32 bytes or an id outside u64.
   * @example
   * store.read(ns, 0n); // { value: 0n, tag: Uint8Array(32) }
   */
  read(namespace: Uint8Array, id: bigint): CounterState {
    abytes(namespace, 'namespace', 32);
    u64(id, 'id');
    const nsDir = join(this.#dir, bytesToHex(namespace));
    for (const dir of [this.#dir, nsDir]) {
      if (!exists(dir)) return { value: 0n, tag: new Uint8Array(32) };
      checkPrivateDirectory(dir, { noSymlink: true });
    }
    return readCounterFile(namespace, id, join(nsDir, idName(id))) ?? { value: 0n, tag: new Uint8Array(32) };
  }

  /**
   * Advances a counter from `expected` to `expected + 1` and stores `tag` with it, durably (file and
   * folder fsynced) before it returns; atomic across processes that share the folder.
   * @returns true if the value was `expected` (now `expected + 1`); false if it was not (nothing changed).
   * @throws {AttestationError} `counter_limit` (a new counter beyond 4096 in the namespace, or a value
   *   past 2^64-1), `insecure_key_file`, `platform_unavailable`.
   * @throws {TypeError}/{@link RangeError} for a namespace or tag that is not 32 bytes, or an id or value outside u64.
   * @example
   * store.advance(ns, 0n, 0n, tag); // true: the counter is 1 now
   */
  advance(namespace: Uint8Array, id: bigint, expected: bigint, tag: Uint8Array): boolean {
    abytes(namespace, 'namespace', 32);
    u64(id, 'id');
    u64(expected, 'expected');
    abytes(tag, 'tag', 32);
    const tagCopy = tag.slice(); // the caller's array may change while we wait for the lock
    const nsDir = join(this.#dir, bytesToHex(namespace));
    makePrivateDirectory(this.#dir);
    makePrivateDirectory(nsDir);
    const path = join(nsDir, idName(id));
    return ioErrors('cannot write a counter', () => withFileLock(join(nsDir, '.lock'), () => {
      const current = readCounterFile(namespace, id, path);
      const value = current?.value ?? 0n;
      if (value !== expected) return false;
      if (value === MAX_COUNTER_VALUE) throw new AttestationError('counter_limit', 'the counter is at 2^64-1 and cannot advance: use another counter id');
      if (current === undefined) checkRoomFor(nsDir);
      writeFileAtomic(path, encode(namespace, id, value + 1n, tagCopy));
      return true;
    }));
  }
}

function idName(id: bigint): string {
  return id.toString(16).padStart(16, '0');
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw platformUnavailable(`cannot read ${basename(path)}`, err);
  }
}

/** Creates a counters folder (0700) if missing, fsyncing its parent so it survives a power cut; then checks it. */
function makePrivateDirectory(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
    fsyncDirectory(dirname(dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw platformUnavailable(`cannot create the folder ${basename(dir)}`, err);
  }
  checkPrivateDirectory(dir, { noSymlink: true });
}

/** Refuses a new counter when the namespace holds 4096; removes temp files of dead writers (we hold the lock). */
function checkRoomFor(nsDir: string): void {
  let names: string[];
  try {
    names = readdirSync(nsDir);
  } catch (err) {
    throw platformUnavailable('cannot list a counters folder', err);
  }
  let count = 0;
  for (const name of names) {
    if (ID_NAME.test(name)) count++;
    else if (ADVANCE_TEMP.test(name)) {
      try {
        unlinkSync(join(nsDir, name));
      } catch {
        // gone already
      }
    }
  }
  if (count >= MAX_COUNTERS_PER_NAMESPACE) {
    throw new AttestationError('counter_limit', `this enclave identity has ${MAX_COUNTERS_PER_NAMESPACE} counters, the most it may: reuse counter ids`);
  }
}

/**
 * Reads one counter file, or undefined if there is none. Opened once without following a symlink,
 * and the open file checked (regular, ours, 0600 or narrower, 64 bytes): nothing can swap it between check and read.
 */
function readCounterFile(namespace: Uint8Array, id: bigint, path: string): CounterState | undefined {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | (POSIX ? fsc.O_NOFOLLOW | fsc.O_NONBLOCK : 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new AttestationError('insecure_key_file', `the counter file ${basename(path)} is a symlink; restore the platform directory from a backup`);
    throw platformUnavailable(`cannot open the counter file ${basename(path)}`, err);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw corrupt(path, 'not a regular file');
    if (POSIX && (st.uid !== process.getuid!() || (st.mode & 0o077) !== 0)) {
      throw new AttestationError('insecure_key_file', `the counter file ${basename(path)} belongs to another user or is open to others; restore the platform directory from a backup`);
    }
    if (st.size !== FILE_BYTES) throw corrupt(path, `${st.size} bytes, expected ${FILE_BYTES}`);
    const bytes = new Uint8Array(FILE_BYTES + 1); // one more: a file that grew after fstat is caught
    let n = 0;
    while (n < bytes.length) {
      const r = readSync(fd, bytes, n, bytes.length - n, n);
      if (r === 0) break;
      n += r;
    }
    return decode(namespace, id, bytes.subarray(0, n), path);
  } catch (err) {
    if (err instanceof AttestationError) throw err;
    throw platformUnavailable(`cannot read the counter file ${basename(path)}`, err);
  } finally {
    closeSync(fd);
  }
}
