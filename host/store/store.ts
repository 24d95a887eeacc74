/**
 * The sealed-blob store's interface (docs/STORE.md §1): a durable map from names to opaque blobs, each with
 * the store's own compare-and-set version. The vault (host/vault/) keeps one sealed key record per
 * name in it; anything that can honour this contract can stand behind it (`FileStore` here, a
 * PostgreSQL table, an object store with conditional writes).
 *
 * What the store is trusted for, and what not (docs/STORE.md):
 * - Durability and atomicity: a `put` or `delete` that resolved survives a crash or a power cut, and
 *   a reader sees a whole old blob or a whole new one, never a mix.
 * - Mutual exclusion of writers: of two `put`s with the same `expectedVersion`, exactly one wins; the
 *   other fails with `conflict` and changed nothing.
 * - NOT freshness or authenticity: a store (or whoever can write its disk, or a backup restored over
 *   it) may serve an old blob or a forged one. The blobs are sealed and carry their own monotonic
 *   counter value (docs/SEALING.md): the enclave refuses a forged or rolled-back blob, whatever
 *   version the store says it has. The store's `version` only serialises writers.
 *
 * The same contract in SQL (PostgreSQL; what a `PgStore` would run, one statement per method, no
 * transaction needed beyond the statement's own):
 * ```sql
 * CREATE TABLE sealed_blobs (
 *   name    bytea  PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 256), -- UTF-8 of the name
 *   version bigint NOT NULL CHECK (version >= 1),
 *   bytes   bytea  NOT NULL CHECK (octet_length(bytes) <= 1048576));
 * -- get(name):
 * SELECT version, bytes FROM sealed_blobs WHERE name = $1;
 * -- put(name, bytes, { expectedVersion: 0 }): 0 rows inserted → conflict
 * INSERT INTO sealed_blobs (name, version, bytes) VALUES ($1, 1, $2) ON CONFLICT (name) DO NOTHING RETURNING version;
 * -- put(name, bytes, { expectedVersion: e ≥ 1 }): 0 rows → conflict
 * UPDATE sealed_blobs SET version = version + 1, bytes = $3 WHERE name = $1 AND version = $2 RETURNING version;
 * -- list({ prefix, after, limit }): bytea compares bytewise, the order of UTF-8 bytes (= code points)
 * SELECT name FROM sealed_blobs WHERE name > $after AND substring(name FROM 1 FOR octet_length($prefix)) = $prefix
 *   ORDER BY name LIMIT $limit;
 * -- delete(name, { expectedVersion: e ≥ 1 }): 0 rows → conflict
 * DELETE FROM sealed_blobs WHERE name = $1 AND version = $2;
 * ```
 * A deleted name starts again at version 1, as the `INSERT` above does: versions are compared, never
 * trusted for history.
 */
import { types } from 'node:util';
import { EnclaveError } from '../../core/index.js';

/** One stored blob: the name, the store's version of it, and its bytes (a copy the caller owns). */
export interface StoredBlob {
  readonly name: string;
  /** The store's compare-and-set counter: 1 after the name's first `put`, +1 after each. Not trusted for rollback. */
  readonly version: number;
  readonly bytes: Uint8Array;
}

/** The compare-and-set condition of a `put` or `delete`. */
export interface PutOptions {
  /** The version the caller last read; 0: the name must not exist. */
  expectedVersion: number;
}

/** What `list` returns a page of. */
export interface ListOptions {
  /** Only names that start with these UTF-8 bytes. Default: every name. */
  prefix?: string;
  /** Only names after this one (exclusive): the last name of the previous page. */
  after?: string;
  /** Names per page, 1..1000; default 100. */
  limit?: number;
}

/**
 * A durable store of sealed blobs with compare-and-set writes (docs/STORE.md).
 *
 * Names are UTF-8 strings of 1..256 bytes without control or bidirectional-formatting characters,
 * compared as bytes (`"A"` and `"a"`, or the NFC and NFD forms of `"é"`, are different names).
 * @example
 * const store: SealedStore = new FileStore('/var/lib/myservice/sealed');
 * const cur = await store.get('vault/payments');
 * const next = await store.put('vault/payments', blob, { expectedVersion: cur?.version ?? 0 });
 */
export interface SealedStore {
  /**
   * The blob stored under `name`, or `undefined` if there is none.
   * @throws {EnclaveError} `invalid_args` (a bad name), `store_corrupt`, `too_large`, `unavailable`, `closed`.
   */
  get(name: string): Promise<StoredBlob | undefined>;
  /**
   * Stores `bytes` under `name` if the name's current version is `expectedVersion` (0: absent);
   * resolves once the blob is durable, with version `expectedVersion + 1`.
   * @throws {EnclaveError} `conflict` (the version differs: nothing was written), `invalid_args`,
   *   `invalid_options`, `too_large`, `store_corrupt`, `unavailable` (retryable; the write may or may
   *   not have happened: read before retrying), `closed`.
   */
  put(name: string, bytes: Uint8Array, options: PutOptions): Promise<StoredBlob>;
  /**
   * A page of names in UTF-8 byte order.
   * @throws {EnclaveError} `invalid_options`, `store_corrupt`, `unavailable`, `closed`.
   */
  list(options?: ListOptions): Promise<string[]>;
  /**
   * Removes `name` if its current version is `expectedVersion` (≥ 1); durable when it resolves.
   * @throws {EnclaveError} `conflict` (absent, or another version), `invalid_args`, `invalid_options`,
   *   `store_corrupt`, `unavailable`, `closed`.
   */
  delete(name: string, options: PutOptions): Promise<void>;
  /** Waits for the calls in flight, then refuses new ones (`closed`). Idempotent. */
  close(): Promise<void>;
}

/**
 * The bounds of a store (docs/STORE.md §6). `maxBlobBytes` is a default a `FileStore` may lower or raise
 * up to `hardMaxBlobBytes`; the others are fixed.
 * @example
 * if (blob.length > STORE_LIMITS.maxBlobBytes) throw new Error('too big for the default store');
 */
export const STORE_LIMITS = Object.freeze({
  /** Longest name, UTF-8 bytes. */
  maxNameBytes: 256,
  /** Default largest blob, bytes (1 MiB). */
  maxBlobBytes: 1024 * 1024,
  /** What `maxBlobBytes` may be raised to (16 MiB: a sealed blob's plaintext bound, docs/SEALING.md). */
  hardMaxBlobBytes: 16 * 1024 * 1024,
  /** Names per `list` page when no limit is given. */
  defaultListLimit: 100,
  /** Most names per `list` page. */
  maxListLimit: 1000,
  /** Largest version (the largest integer a JS number holds exactly). */
  maxVersion: Number.MAX_SAFE_INTEGER,
});

const UTF8 = new TextEncoder();

/**
 * Characters a name may not hold: C0 and C1 controls and DEL (\p{Cc}), line and paragraph separators,
 * and the bidirectional formatting characters (\p{Bidi_Control}), which would let a name print as
 * another in a terminal or a log.
 */
const FORBIDDEN = /[\p{Cc}\p{Zl}\p{Zp}\p{Bidi_Control}]/u;

/** Why a candidate name is refused, or undefined for a valid one; `allowEmpty` for a list prefix. */
function nameProblem(value: unknown, allowEmpty = false): string | undefined {
  if (typeof value !== 'string') return `a string was expected, not ${value === null ? 'null' : typeof value}`;
  if (value.length === 0) return allowEmpty ? undefined : 'it is empty';
  if (value.length > STORE_LIMITS.maxNameBytes) return `it is longer than ${STORE_LIMITS.maxNameBytes} bytes`;
  // A lone surrogate has no UTF-8 form: encoding would turn it into U+FFFD, another name. (In a /u
  // regular expression \p{Cs} matches only unpaired surrogates; a pair is one code point.)
  if (/\p{Cs}/u.test(value)) return 'it holds a lone surrogate (not valid Unicode)';
  if (FORBIDDEN.test(value)) return 'it holds a control, line-separator or bidirectional-formatting character';
  if (UTF8.encode(value).length > STORE_LIMITS.maxNameBytes) return `it is longer than ${STORE_LIMITS.maxNameBytes} bytes in UTF-8`;
  return undefined;
}

/**
 * The UTF-8 bytes of a valid name.
 * @throws {EnclaveError} `invalid_args` for anything else (the message says why, never echoes the name).
 * @example
 * checkName('vault/payments'); // Uint8Array of 14 bytes
 */
export function checkName(name: unknown): Uint8Array {
  const problem = nameProblem(name);
  if (problem !== undefined) {
    throw new EnclaveError('invalid_args', `The store name is not valid (${problem}): use 1 to ${STORE_LIMITS.maxNameBytes} bytes of UTF-8 without control characters.`);
  }
  return UTF8.encode(name as string);
}

/** True for a valid name (a name read back from disk is checked with this). */
export function isValidName(name: string): boolean {
  return nameProblem(name) === undefined;
}

/**
 * The expected version of a `put` (`min` 0) or a `delete` (`min` 1).
 * @throws {EnclaveError} `invalid_options`.
 * @example
 * checkExpectedVersion({ expectedVersion: 3 }, 0); // 3
 */
export function checkExpectedVersion(options: unknown, min: 0 | 1): number {
  const value = typeof options === 'object' && options !== null ? (options as { expectedVersion?: unknown }).expectedVersion : undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value >= STORE_LIMITS.maxVersion) {
    throw new EnclaveError(
      'invalid_options',
      `options.expectedVersion must be an integer from ${min} to ${STORE_LIMITS.maxVersion - 1}: pass the version you last read${min === 0 ? ' (0 for a name that must not exist yet)' : ''}.`,
    );
  }
  return value;
}

/** `list` options, settled: prefix and after as UTF-8 (after undefined: from the start), limit bounded. */
export interface SettledListOptions {
  readonly prefix: Uint8Array;
  readonly after: Uint8Array | undefined;
  readonly limit: number;
}

/**
 * Settles `list` options once, at the edge.
 * @throws {EnclaveError} `invalid_options`.
 * @example
 * checkListOptions({ prefix: 'vault/' }).limit; // 100
 */
export function checkListOptions(options: unknown): SettledListOptions {
  const bad = (what: string) => new EnclaveError('invalid_options', `The list options are not valid (${what}): see SealedStore.list.`);
  if (options === undefined) return { prefix: new Uint8Array(0), after: undefined, limit: STORE_LIMITS.defaultListLimit };
  if (typeof options !== 'object' || options === null) throw bad('an object was expected');
  const { prefix, after, limit } = options as ListOptions;
  for (const key of Object.keys(options)) if (key !== 'prefix' && key !== 'after' && key !== 'limit') throw bad(`unknown option ${JSON.stringify(key.slice(0, 40))}`);
  if (prefix !== undefined) {
    const problem = nameProblem(prefix, true);
    if (problem !== undefined) throw bad(`prefix: ${problem}`);
  }
  if (after !== undefined) {
    const problem = nameProblem(after);
    if (problem !== undefined) throw bad(`after: ${problem}`);
  }
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > STORE_LIMITS.maxListLimit)) {
    throw bad(`limit must be an integer from 1 to ${STORE_LIMITS.maxListLimit}`);
  }
  return {
    prefix: UTF8.encode(prefix ?? ''),
    after: after === undefined ? undefined : UTF8.encode(after),
    limit: limit ?? STORE_LIMITS.defaultListLimit,
  };
}

/** The length of a real typed array, read from its internal slot: a subclass's own `length` getter cannot lie to it. */
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'length')!.get! as (this: Uint8Array) => number;

/**
 * The bytes of a `put`, bounded, as a copy the store owns (taken now: a caller changing its array
 * afterwards, or a `SharedArrayBuffer` changed by another thread, changes nothing stored).
 *
 * The size is the array's real one, not what a subclass's `length` getter says (a subclass could
 * claim 0 and store a file larger than the store will ever read back: acknowledged, then `too_large`
 * forever); a Proxy or an object that only inherits from `Uint8Array`, and a view of a detached
 * buffer, are refused here rather than failing with a `TypeError` deeper in.
 * @throws {EnclaveError} `invalid_args` (not a Uint8Array, or a detached one), `too_large` (above `max`).
 * @example
 * checkBlob(new Uint8Array(10), STORE_LIMITS.maxBlobBytes);
 */
export function checkBlob(bytes: unknown, max: number): Uint8Array {
  if (!types.isUint8Array(bytes)) throw new EnclaveError('invalid_args', 'The blob must be a Uint8Array: pass the sealed bytes.');
  const length = typedArrayLength.call(bytes);
  if (length > max) throw new EnclaveError('too_large', `The blob is ${length} bytes, above the store's limit of ${max}: store less, or raise maxBlobBytes.`);
  let copy: Uint8Array;
  try {
    copy = new Uint8Array(bytes);
  } catch {
    throw new EnclaveError('invalid_args', 'The blob is a view of a detached buffer (transferred elsewhere): pass bytes that are still readable.');
  }
  // A length-tracking view of a resizable buffer may have grown since it was measured.
  if (copy.length > max) throw new EnclaveError('too_large', `The blob is ${copy.length} bytes, above the store's limit of ${max}: store less, or raise maxBlobBytes.`);
  return copy;
}
