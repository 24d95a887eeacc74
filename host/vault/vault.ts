/**
 * The key vault's host side: a typed client of the vault enclave (enclave-modules/vault) that
 * persists every change of a key to a sealed store before it is acknowledged.
 *
 * ```
 *  caller ── key.rotate() ──► Vault ── rotate ──────────────► vault enclave (keys in its memory)
 *                               │   ◄── {version, persist} ──    the new record sealed, PENDING
 *                               ├── store.put(vault/<name>, blob, {expectedVersion}) ──► SealedStore
 *                               │     failed:  abort ──► enclave (back to the committed record); the caller gets the error
 *                               └── commit ──► enclave (advances the record's monotonic counter) ──► resolves
 * ```
 *
 * - Nothing is acknowledged before it is durable: a change resolves only after its sealed record is
 *   in the store and committed. A failed `put` (store down, a compare-and-set `conflict`) aborts the
 *   change and the key keeps its previous state; if the store's record is then not the one this
 *   client last saw (another writer, or a put whose answer was lost after it landed), the vault
 *   reloads the store before the next call.
 * - A `commit` that fails after the record was stored leaves the record pending in the store: it
 *   takes effect when the vault next loads (the enclave commits a pending record it finds), unless
 *   the commit failed with `conflict` (the key's counter moved past it: that record is refused as
 *   `rollback` at the reload); the error says which. The vault reloads from the store on the next call to stay in step.
 * - One change per key at a time: mutations of one key wait for each other on the host, and other
 *   ops of that key wait for the change in flight, so no ciphertext is ever made under a version
 *   that might be aborted.
 * - A restart is `Vault.open` on the same store and platform: every `vault/` record is loaded; a
 *   record that does not open (changed bytes, another module, a revoked root: `unseal_failed`; an
 *   older copy than the last committed one: `rollback`) is listed in {@link Vault.refused}, never
 *   dropped silently.
 * - An enclave instance that is discarded (a trap, a timeout) loses the keyring in its memory: the
 *   next call starts a new instance and loads the store again. Handles stay inside {@link VaultKey}
 *   and are renewed then.
 *
 * One `Vault` per store at a time: a second writer's change shows up here as `conflict`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { types } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { TrustPolicy } from '../../attest/index.js';
import { EnclaveError, errorFlags, isErrorCode, type ErrorCode } from '../../core/index.js';
import {
  compileEnclave,
  createWorkerEnclave,
  readModuleBytes,
  type ArgValue,
  type EnclaveHandle,
  type EnclaveModule,
  type CounterSource,
  type EnclavePlatform,
  type Limits,
  type ModuleSource,
  type ReplyValue,
} from '../../runtime/index.js';
import {
  KEY_NAME,
  VAULT_KEY_TYPES,
  asArray,
  asBool,
  asBytes,
  asMap,
  asString,
  asVersion,
  parseBatch,
  parseLoad,
  parseMetadata,
  parsePersist,
  type Persist,
  type VaultBatchItem,
  type VaultKeyMetadata,
  type VaultKeyType,
  type VaultSealPolicy,
} from './_ops.js';

/**
 * The fuel a vault call may use (the host's policy over the contract's): a batch of 256 Ed25519
 * signatures is about 1.7e9; the vault stops a batch's work at about 1.2e9 and answers `limit` for
 * the items past it.
 */
export const VAULT_FUEL = 2_000_000_000;

/** The prefix of every record the vault keeps in its store: `vault/<key name>`. */
export const VAULT_STORE_PREFIX = 'vault/';

/**
 * The store record holding the vault's id (16 random bytes, made at the first open): outside
 * {@link VAULT_STORE_PREFIX}. Every key's counter and record are bound to it, so two vaults (two
 * stores) on one platform running one module never share a counter, and a record copied from one
 * vault's store into another's does not open there (`unseal_failed`).
 */
export const VAULT_ID_RECORD = 'vault.id';

/** The bytes of a vault id. */
const VAULT_ID_BYTES = 16;

/** The bounds the client holds to (the enclave's own are in enclave-modules/vault/index.ts; these never exceed them). */
export const VAULT_LIMITS = Object.freeze({
  /** Records per `load` call. */
  loadBatch: 256,
  /** Bytes of one sealed key record (64 versions and the metadata fit well under it); a larger one is refused at open. */
  recordBytes: 4096,
  /** Names per `store.list` page. */
  listPage: 1000,
  /** `vault/` names read from a store at open; beyond, the store is refused (`too_large`). */
  storeNames: 65_536,
  /** Items per batch op (`encryptBatch`…). */
  batch: 256,
  /** Store reads in flight at open. */
  readsInFlight: 16,
});

/**
 * What the vault needs of a store: host/store's `SealedStore` (`FileStore`) or any object with
 * these methods and their contract (a compare-and-set `put` that fails with `conflict`).
 */
export interface VaultStore {
  get(name: string): Promise<{ readonly name: string; readonly version: number; readonly bytes: Uint8Array } | undefined>;
  put(name: string, bytes: Uint8Array, options: { expectedVersion: number }): Promise<{ readonly version: number }>;
  list(options?: { prefix?: string; after?: string; limit?: number }): Promise<string[]>;
}

/** Options of {@link Vault.open}. */
export interface VaultOpenOptions {
  /** Where the sealed key records live (`vault/<name>`). Not closed by the vault. */
  store: VaultStore;
  /**
   * The platform that seals and keeps the monotonic counters (`SoftwareAttestationProvider`): the
   * same platform directory at every restart, or nothing opens.
   */
  attestation: EnclavePlatform & CounterSource & { listSealingRoots?(): readonly { readonly id: number; readonly current: boolean }[] };
  /** The vault module; default: this package's `enclave-modules/vault/build/vault.wasm`. */
  module?: ModuleSource;
  /** Default `'in-process'`; `'worker'` runs the enclave in its own thread, with a deadline per call. */
  isolation?: 'in-process' | 'worker';
  /** Worker isolation: the deadline of one call, ms. Default 5000 (a `load` of 256 records commits pending ones, each an fsync). */
  deadlineMs?: number;
  /** Load only a vault module signed by one of these keys (and bind `signer`-sealed records to it). */
  trust?: TrustPolicy;
  /** The instrumented-module cache (see `CompileOptions.cacheDir`). */
  cacheDir?: string | false;
  /** The host's limits over the module's (see `EnclaveOptions.policy`). */
  policy?: Partial<Limits>;
  /**
   * How long one call of `store` may take, ms (1..2^31-1; default 30000). A call that has not
   * settled by then is `unavailable` (for a put: "may or may not have happened", as the store's own
   * contract says), so a store that never answers cannot hang a change, a reload or `close` forever.
   */
  storeTimeoutMs?: number;
}

/** Options of {@link Vault.create}. */
export interface VaultCreateOptions {
  type: VaultKeyType;
  /** Whether {@link VaultKey.exportKey} may ever return the material. Fixed at creation. Default false. */
  exportable?: boolean;
  /** Whether {@link VaultKey.destroy} is allowed. Default false. */
  deletionAllowed?: boolean;
  /** What the key's record is sealed to. Default `'signer'`. */
  sealPolicy?: VaultSealPolicy;
}

/** The result of {@link Vault.resealStale}: per key name, moved or not and why. */
export interface ResealReport {
  /** The keys (live or destroyed) whose record is now sealed under the current root, sorted. */
  readonly moved: readonly string[];
  /** The keys that could not be moved (still stale), with the error's code and the error itself. */
  readonly failed: readonly { readonly name: string; readonly code: ErrorCode; readonly error: EnclaveError }[];
}

/** A record of the store that did not load at open (or at a reload), with why. */
export interface RefusedRecord {
  /** The store name (`vault/<key>`). */
  readonly name: string;
  /**
   * `unseal_failed` (changed bytes, another module, a revoked or unknown root, stored under another
   * key's name, or a store name that is no key name), `rollback` (older than the last committed
   * record of that key), `conflict` (the key is already loaded), `too_large` (larger than a record can be,
   * or than the store reads), `store_corrupt` (the store's own check of the record failed: a damaged file).
   */
  readonly code: ErrorCode;
}

/** The result of {@link VaultKey.datakey}. */
export interface DataKey {
  /** The wrapped 32-byte data key, a vault ciphertext: store it with the data. */
  readonly ciphertext: Uint8Array;
  /** The data key itself (when asked for): use it, then zero it. */
  readonly plaintext?: Uint8Array;
}

/** The result of {@link VaultKey.derive}. */
export interface DerivedKey {
  /** The derived bytes: use them, then zero them. */
  readonly key: Uint8Array;
  /** The key version they were derived with (derive again with it to get the same bytes). */
  readonly version: number;
}

/** What {@link VaultKey} calls on its vault (closures over the vault's private state). */
interface KeyPort {
  read(name: string, op: string, args: (handle: Uint8Array) => { [key: string]: ArgValue }): Promise<ReplyValue>;
  mutate(name: string, op: string, args: (handle: Uint8Array) => { [key: string]: ArgValue }): Promise<ReplyValue>;
  forget(name: string): void;
}

const closedError = (): EnclaveError => new EnclaveError('closed', 'The vault is closed: open it again with Vault.open.');

/** Whether an error discarded the enclave's instance (its keyring with it). */
function discarded(err: unknown): boolean {
  return err instanceof EnclaveError && isErrorCode(err.code) && errorFlags(err.code).discards;
}

/**
 * The caller's store with every call bounded in time: one that never settles rejects with
 * `unavailable` after `ms` (its answer, if it ever comes, is ignored). A synchronous throw is a
 * rejection like any other.
 */
function boundedStore(store: VaultStore, ms: number): VaultStore {
  const bounded = <T>(what: string, call: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new EnclaveError('unavailable', `The store did not ${what} within ${ms} ms: check the store (a put may or may not have happened); the vault reads the store again before relying on it.`)), ms);
      Promise.resolve()
        .then(call)
        .then(resolve, reject)
        .finally(() => clearTimeout(timer));
    });
  return {
    get: (name) => bounded('answer a get', () => store.get(name)),
    put: (name, bytes, options) => bounded('answer a put', () => store.put(name, bytes, options)),
    list: (options) => bounded('answer a list', () => store.list(options)),
  };
}

/** A store's error as an `EnclaveError`: a store that throws anything else is `unavailable`. */
function storeError(err: unknown, what: string): EnclaveError {
  if (err instanceof EnclaveError) return err;
  return new EnclaveError('unavailable', `The store failed to ${what}: check the store, then retry.`, { cause: err });
}

/** The length of a real typed array, from its internal slot (a subclass's `length` getter cannot lie to it). */
const typedArrayLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype) as object, 'length')!.get! as (this: Uint8Array) => number;

/**
 * A store's answer to `get`, checked at the vault's edge (the store is the caller's code): absent
 * (`undefined`, or `null` as a store backed by SQL may answer), or its version and a copy of its
 * bytes; `bytes` undefined when they are more than `max` (measured, not copied). Anything else (not
 * a record, a throwing getter, a Proxy, a detached view) is `unavailable`, never a TypeError.
 */
function storedRecord(value: unknown, what: string, max: number): { version: number; bytes: Uint8Array | undefined } | undefined {
  if (value === undefined || value === null) return undefined;
  const malformed = (cause?: unknown) => new EnclaveError('unavailable', `The store returned a malformed record for ${what}: check the store.`, { cause });
  if (typeof value !== 'object') throw malformed();
  let version: unknown;
  let bytes: unknown;
  try {
    ({ version, bytes } = value as { version?: unknown; bytes?: unknown });
  } catch (err) {
    throw malformed(err);
  }
  if (!types.isUint8Array(bytes) || typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) throw malformed();
  if (typedArrayLength.call(bytes) > max) return { version, bytes: undefined };
  try {
    return { version, bytes: new Uint8Array(bytes) };
  } catch (err) {
    throw malformed(err); // a view of a detached buffer
  }
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || !KEY_NAME.test(name)) {
    throw new EnclaveError('invalid_args', 'A key name is 1 to 64 of a-z, 0-9, "_", "." and "-", starting with a letter or digit.');
  }
  return name;
}

function checkBatch(items: unknown): readonly unknown[] {
  if (!Array.isArray(items) || items.length === 0 || items.length > VAULT_LIMITS.batch) {
    throw new EnclaveError('invalid_args', `A batch is an array of 1 to ${VAULT_LIMITS.batch} items.`);
  }
  return items;
}

/** A batch whose items are objects (`{ plaintext, aad }`…): a null or a number among them is `invalid_args`, not a TypeError. */
function checkObjectBatch<T>(items: readonly T[]): readonly T[] {
  const batch = checkBatch(items) as readonly T[];
  for (let i = 0; i < batch.length; i++) {
    if (typeof batch[i] !== 'object' || batch[i] === null) throw new EnclaveError('invalid_args', `Batch item ${i} is not an object: each item is { ... } as the method's type says.`);
  }
  return batch;
}

/** An options argument: undefined (the defaults) or an object; anything else is `invalid_args`. */
function checkOptions<T extends object>(options: T | undefined, method: string): Partial<T> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_args', `The options of ${method} must be an object (or left out).`);
  return options;
}

/** The vault module of this package: beside the sources (host/vault/) and beside dist/ (dist/host/vault/). */
function defaultModule(): string {
  const candidates = ['../../enclave-modules/vault/build/vault.wasm', '../../../enclave-modules/vault/build/vault.wasm'].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  );
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) {
    throw new EnclaveError('invalid_module', 'The vault module (enclave-modules/vault/build/vault.wasm) is missing from this installation: build it (`enclave build`) or pass `module`.');
  }
  return found;
}

/**
 * A key in the vault. Holds the key's name and, inside, its handle into the enclave: the material
 * never leaves the enclave (unless the key is `exportable` and {@link VaultKey.exportKey} is called).
 * Every method rejects with an `EnclaveError`: `not_found` (the key was destroyed), `bad_request`
 * (the op does not fit the key's type), `denied`, `decrypt_failed`, `conflict`, and the store's
 * codes for a change (`unavailable`, `conflict`).
 * @example
 * const key = await vault.create('payments', { type: 'symmetric' });
 * const sealed = await key.encrypt(new TextEncoder().encode('4111 1111'), aad);
 * const plain = await key.decrypt(sealed, aad);
 */
export class VaultKey {
  /** The key's name (unique in its vault). */
  readonly name: string;
  /** The key's type. */
  readonly type: VaultKeyType;
  readonly #port: KeyPort;

  /** @internal Made by {@link Vault}; not for callers. */
  constructor(port: KeyPort, metadata: VaultKeyMetadata) {
    this.#port = port;
    this.name = metadata.name;
    this.type = metadata.type;
  }

  /**
   * The key's metadata, now.
   * @throws {EnclaveError} `not_found` when the key was destroyed.
   * @example
   * (await key.describe()).latestVersion; // 1
   */
  async describe(): Promise<VaultKeyMetadata> {
    return parseMetadata('describe', await this.#port.read(this.name, 'describe', (handle) => ({ handle })));
  }

  /**
   * Adds a new version and makes it the one that encrypts, signs and macs; older versions still
   * decrypt and verify. Resolves once the new record is stored and committed.
   * @returns The new version.
   * @throws {EnclaveError} the store's `unavailable` or `conflict` (the key stays at its previous
   *   version), `limit` (64 live versions: `trim` first).
   * @example
   * const version = await key.rotate(); // 2
   */
  async rotate(): Promise<number> {
    const reply = asMap('rotate', await this.#port.mutate(this.name, 'rotate', (handle) => ({ handle })));
    return asVersion('rotate', reply.version, 'version');
  }

  /**
   * Changes the key's policy: the lowest version that may still decrypt or verify, and whether it
   * may be destroyed. With nothing to change (`{}`), rewrites the key's record as it is: sealed
   * under the platform's current root (after `enclave keys rotate`, before the old root is revoked).
   * @throws {EnclaveError} `bad_request` (a version above the latest), the store's codes.
   * @example
   * await key.configure({ minDecryptionVersion: 2 }); // version 1 ciphertexts are now refused
   * await key.configure({}); // the record moves to the current sealing root
   */
  async configure(options: { minDecryptionVersion?: number; deletionAllowed?: boolean }): Promise<VaultKeyMetadata> {
    const args: { [key: string]: ArgValue } = {};
    if (options?.minDecryptionVersion !== undefined) args.min_decryption_version = options.minDecryptionVersion;
    if (options?.deletionAllowed !== undefined) args.deletion_allowed = options.deletionAllowed;
    const reply = asMap('configure', await this.#port.mutate(this.name, 'configure', (handle) => ({ handle, ...args })));
    return parseMetadata('configure', reply.key);
  }

  /**
   * Erases the material of every version below `minAvailableVersion` (at most the minimum
   * decryption version): what they protected can no longer be decrypted by anyone.
   * @throws {EnclaveError} `bad_request` (above the minimum decryption version), the store's codes.
   * @example
   * await key.configure({ minDecryptionVersion: 3 });
   * await key.trim(3);
   */
  async trim(minAvailableVersion: number): Promise<VaultKeyMetadata> {
    const reply = asMap('trim', await this.#port.mutate(this.name, 'trim', (handle) => ({ handle, min_available_version: minAvailableVersion })));
    return parseMetadata('trim', reply.key);
  }

  /**
   * Destroys the key: its material is erased (a tombstone record replaces it). Only when
   * `deletionAllowed`.
   * @throws {EnclaveError} `denied` (deletion not allowed), the store's codes.
   * @example
   * await key.configure({ deletionAllowed: true });
   * await key.destroy();
   */
  async destroy(): Promise<void> {
    await this.#port.mutate(this.name, 'destroy', (handle) => ({ handle }));
    this.#port.forget(this.name);
  }

  /**
   * Encrypts under the latest version (XChaCha20-Poly1305; `symmetric` keys). The ciphertext names
   * its version, so {@link VaultKey.decrypt} works across rotations.
   * @param aad Associated data: authenticated, not encrypted; the same bytes must be given to decrypt.
   * @throws {EnclaveError} `bad_request` (not a symmetric key), `invalid_args` (over 1 MiB of
   *   plaintext, or 64 KiB of aad: refused by the contract before the enclave runs).
   * @example
   * const ciphertext = await key.encrypt(plaintext, new TextEncoder().encode('order:42'));
   */
  async encrypt(plaintext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    return asBytes('encrypt', await this.#port.read(this.name, 'encrypt', (handle) => ({ handle, plaintext, aad })), 'the ciphertext');
  }

  /**
   * {@link VaultKey.encrypt} for up to 256 items in one crossing; each item succeeds or fails alone.
   * @throws {EnclaveError} `invalid_args` (not 1..256 items, or an item that is not an object).
   * @example
   * const out = await key.encryptBatch([{ plaintext: a }, { plaintext: b, aad }]);
   * if (out[0].ok) store(out[0].value);
   */
  async encryptBatch(items: readonly { plaintext: Uint8Array; aad?: Uint8Array }[]): Promise<VaultBatchItem<Uint8Array>[]> {
    const batch = checkObjectBatch(items);
    const reply = await this.#port.read(this.name, 'encrypt', (handle) => ({ handle, batch: batch.map((i) => ({ plaintext: i.plaintext, aad: i.aad })) }));
    return parseBatch('encrypt', reply, batch.length, (v) => asBytes('encrypt', v, 'a ciphertext'));
  }

  /**
   * Decrypts a ciphertext of this key (any version still available and at least the minimum
   * decryption version).
   * @throws {EnclaveError} `decrypt_failed` (changed bytes, wrong aad, another key), `denied` (a
   *   version below the minimum), `not_found` (a trimmed version), `bad_request` (not a vault ciphertext).
   * @example
   * const plaintext = await key.decrypt(ciphertext, aad);
   */
  async decrypt(ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    return asBytes('decrypt', await this.#port.read(this.name, 'decrypt', (handle) => ({ handle, ciphertext, aad })), 'the plaintext');
  }

  /**
   * {@link VaultKey.decrypt} for up to 256 items in one crossing.
   * @throws {EnclaveError} `invalid_args` (not 1..256 items, or an item that is not an object).
   * @example
   * const out = await key.decryptBatch(ciphertexts.map((ciphertext) => ({ ciphertext })));
   */
  async decryptBatch(items: readonly { ciphertext: Uint8Array; aad?: Uint8Array }[]): Promise<VaultBatchItem<Uint8Array>[]> {
    const batch = checkObjectBatch(items);
    const reply = await this.#port.read(this.name, 'decrypt', (handle) => ({ handle, batch: batch.map((i) => ({ ciphertext: i.ciphertext, aad: i.aad })) }));
    return parseBatch('decrypt', reply, batch.length, (v) => asBytes('decrypt', v, 'a plaintext'));
  }

  /**
   * Re-encrypts a ciphertext under the latest version without the plaintext leaving the enclave:
   * after a rotation, moves stored data forward so old versions can be retired and trimmed.
   * @throws {EnclaveError} as {@link VaultKey.decrypt}.
   * @example
   * const fresh = await key.rewrap(old, aad);
   */
  async rewrap(ciphertext: Uint8Array, aad?: Uint8Array): Promise<Uint8Array> {
    return asBytes('rewrap', await this.#port.read(this.name, 'rewrap', (handle) => ({ handle, ciphertext, aad })), 'the ciphertext');
  }

  /**
   * {@link VaultKey.rewrap} for up to 256 items in one crossing.
   * @throws {EnclaveError} `invalid_args` (not 1..256 items, or an item that is not an object).
   * @example
   * const out = await key.rewrapBatch(rows.map((r) => ({ ciphertext: r.secret })));
   */
  async rewrapBatch(items: readonly { ciphertext: Uint8Array; aad?: Uint8Array }[]): Promise<VaultBatchItem<Uint8Array>[]> {
    const batch = checkObjectBatch(items);
    const reply = await this.#port.read(this.name, 'rewrap', (handle) => ({ handle, batch: batch.map((i) => ({ ciphertext: i.ciphertext, aad: i.aad })) }));
    return parseBatch('rewrap', reply, batch.length, (v) => asBytes('rewrap', v, 'a ciphertext'));
  }

  /**
   * A fresh 32-byte data key for envelope encryption: wrapped under this key (store the
   * ciphertext) and, when asked, in the clear (use it locally, then zero it; unwrap it later with
   * {@link VaultKey.decrypt}).
   * @throws {EnclaveError} `bad_request` (not a symmetric key), `invalid_args` (options not an object, or
   *   `plaintext` not a boolean).
   * @param options.aad Associated data the wrapped key is bound to (give it again to decrypt it).
   * @example
   * const { ciphertext, plaintext } = await key.datakey({ plaintext: true });
   */
  async datakey(options: { plaintext?: boolean; aad?: Uint8Array } = {}): Promise<DataKey> {
    options = checkOptions(options, 'datakey');
    // Not truthiness: `{ plaintext: 'no' }` must not hand out the data key, nor `'yes'` silently withhold it.
    if (options.plaintext !== undefined && typeof options.plaintext !== 'boolean') throw new EnclaveError('invalid_args', 'datakey: options.plaintext is true or false.');
    const reply = asMap('datakey', await this.#port.read(this.name, 'datakey', (handle) => ({ handle, plaintext: options.plaintext === true, aad: options.aad })));
    const ciphertext = asBytes('datakey', reply.ciphertext, 'ciphertext');
    if (options.plaintext !== true) return { ciphertext };
    return { ciphertext, plaintext: asBytes('datakey', reply.plaintext, 'plaintext', 32) };
  }

  /**
   * Signs with the latest version (Ed25519; `ed25519` keys). The signature is the version (u32 LE)
   * then the 64-byte Ed25519 signature.
   * @throws {EnclaveError} `bad_request` (not an ed25519 key).
   * @example
   * const signature = await key.sign(message);
   */
  async sign(message: Uint8Array): Promise<Uint8Array> {
    return asBytes('sign', await this.#port.read(this.name, 'sign', (handle) => ({ handle, message })), 'the signature', 68);
  }

  /**
   * {@link VaultKey.sign} for up to 256 messages in one crossing.
   * @throws {EnclaveError} `invalid_args` (not 1..256 items).
   * @example
   * const out = await key.signBatch([m1, m2]);
   */
  async signBatch(messages: readonly Uint8Array[]): Promise<VaultBatchItem<Uint8Array>[]> {
    const batch = checkBatch(messages) as typeof messages;
    const reply = await this.#port.read(this.name, 'sign', (handle) => ({ handle, batch: batch.map((message) => ({ message })) }));
    return parseBatch('sign', reply, batch.length, (v) => asBytes('sign', v, 'a signature', 68));
  }

  /**
   * Whether `signature` (from {@link VaultKey.sign}) is this key's over `message`; false for a
   * trimmed version.
   * @throws {EnclaveError} `bad_request` (not an ed25519 key, or not a vault signature), `denied`
   *   (a version below the minimum decryption version: retired, whatever the bytes).
   * @example
   * if (!(await key.verify(message, signature))) throw new Error('forged');
   */
  async verify(message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return asBool('verify', await this.#port.read(this.name, 'verify', (handle) => ({ handle, message, signature })), 'the verdict');
  }

  /**
   * {@link VaultKey.verify} for up to 256 items in one crossing.
   * @throws {EnclaveError} `invalid_args` (not 1..256 items, or an item that is not an object).
   * @example
   * const out = await key.verifyBatch([{ message, signature }]);
   */
  async verifyBatch(items: readonly { message: Uint8Array; signature: Uint8Array }[]): Promise<VaultBatchItem<boolean>[]> {
    const batch = checkObjectBatch(items);
    const reply = await this.#port.read(this.name, 'verify', (handle) => ({ handle, batch: batch.map((i) => ({ message: i.message, signature: i.signature })) }));
    return parseBatch('verify', reply, batch.length, (v) => asBool('verify', v, 'a verdict'));
  }

  /**
   * An HMAC-SHA-256 tag under the latest version (`symmetric` keys): the version (u32 LE) then 32 bytes.
   * @throws {EnclaveError} `bad_request` (not a symmetric key).
   * @example
   * const tag = await key.mac(data);
   */
  async mac(data: Uint8Array): Promise<Uint8Array> {
    return asBytes('mac', await this.#port.read(this.name, 'mac', (handle) => ({ handle, data })), 'the tag', 36);
  }

  /**
   * {@link VaultKey.mac} for up to 256 items in one crossing.
   * @throws {EnclaveError} `invalid_args` (not 1..256 items).
   * @example
   * const out = await key.macBatch([a, b]);
   */
  async macBatch(items: readonly Uint8Array[]): Promise<VaultBatchItem<Uint8Array>[]> {
    const batch = checkBatch(items) as typeof items;
    const reply = await this.#port.read(this.name, 'mac', (handle) => ({ handle, batch: batch.map((data) => ({ data })) }));
    return parseBatch('mac', reply, batch.length, (v) => asBytes('mac', v, 'a tag', 36));
  }

  /**
   * Whether `mac` (from {@link VaultKey.mac}) is this key's tag over `data` (compared in constant
   * time inside the enclave); false for a trimmed version.
   * @throws {EnclaveError} `bad_request` (not a symmetric key, or not a vault tag), `denied` (a
   *   version below the minimum decryption version).
   * @example
   * await key.verifyMac(data, tag); // true
   */
  async verifyMac(data: Uint8Array, mac: Uint8Array): Promise<boolean> {
    return asBool('verify_mac', await this.#port.read(this.name, 'verify_mac', (handle) => ({ handle, data, mac })), 'the verdict');
  }

  /**
   * {@link VaultKey.verifyMac} for up to 256 items in one crossing.
   * @throws {EnclaveError} `invalid_args` (not 1..256 items, or an item that is not an object).
   * @example
   * const out = await key.verifyMacBatch([{ data, mac }]);
   */
  async verifyMacBatch(items: readonly { data: Uint8Array; mac: Uint8Array }[]): Promise<VaultBatchItem<boolean>[]> {
    const batch = checkObjectBatch(items);
    const reply = await this.#port.read(this.name, 'verify_mac', (handle) => ({ handle, batch: batch.map((i) => ({ data: i.data, mac: i.mac })) }));
    return parseBatch('verify_mac', reply, batch.length, (v) => asBool('verify_mac', v, 'a verdict'));
  }

  /**
   * Derives `length` bytes (1..64, default 32) with a version of the key (default the latest):
   * from a `symmetric` key, HKDF-SHA-256 with `context` as info; from an `x25519` key, HKDF over
   * the X25519 shared secret with `peerPublicKey`.
   * @throws {EnclaveError} `bad_request` (a wrong type, a missing or low-order peer key), `invalid_args`
   *   (options not an object, a length or version out of range).
   * @example
   * const { key: sessionKey, version } = await key.derive(new TextEncoder().encode('session:7'));
   */
  async derive(context: Uint8Array, options: { peerPublicKey?: Uint8Array; length?: number; version?: number } = {}): Promise<DerivedKey> {
    options = checkOptions(options, 'derive');
    const reply = await this.#port.read(this.name, 'derive', (handle) => ({
      handle,
      context,
      ...(options.version === undefined ? {} : { version: options.version }),
      ...(options.peerPublicKey === undefined ? {} : { peer_public_key: options.peerPublicKey }),
      ...(options.length === undefined ? {} : { length: options.length }),
    }));
    const derived = asMap('derive', reply);
    return { key: asBytes('derive', derived.key, 'the derived bytes', options.length ?? 32), version: asVersion('derive', derived.version, 'version') };
  }

  /**
   * The public key of a version (default: the latest) of an `ed25519` or `x25519` key.
   * @throws {EnclaveError} `bad_request` (a symmetric key), `not_found` (a trimmed version).
   * @example
   * const publicKey = await key.publicKey(); // 32 bytes
   */
  async publicKey(version?: number): Promise<Uint8Array> {
    const reply = await this.#port.read(this.name, 'public_key', (handle) => ({ handle, ...(version === undefined ? {} : { version }) }));
    return asBytes('public_key', reply, 'the public key', 32);
  }

  /**
   * The key's whole record, sealed for moving it to another host or module version
   * ({@link Vault.importSealed} there, in this vault or another: an export is not bound to a
   * vault id). Opens only under a platform and module that could unseal it (`policy`, default the
   * key's own). An export never widens who can open the key: a `measurement` key exports only under
   * `measurement`.
   * @throws {EnclaveError} `not_found`, `denied` (`signer` for a `measurement` key), `state` (the
   *   `signer` policy for a module without a trusted signer: no sealing key).
   * @example
   * const blob = await key.exportSealed('signer');
   */
  async exportSealed(policy?: VaultSealPolicy): Promise<Uint8Array> {
    const reply = await this.#port.read(this.name, 'export_sealed', (handle) => ({ handle, ...(policy === undefined ? {} : { policy }) }));
    return asBytes('export_sealed', reply, 'the sealed export');
  }

  /**
   * The raw material of a version (default: the latest), only for a key created `exportable`.
   * @throws {EnclaveError} `denied` (not exportable), `not_found` (a trimmed version).
   * @example
   * const material = await key.exportKey(); // 32 bytes: zero it when done
   */
  async exportKey(version?: number): Promise<Uint8Array> {
    const reply = await this.#port.read(this.name, 'export', (handle) => ({ handle, ...(version === undefined ? {} : { version }) }));
    return asBytes('export', reply, 'the material', 32);
  }
}

/**
 * The key vault: keys generated and used inside an enclave, their records sealed to the platform
 * and kept in a store, every change durable before it is acknowledged (module comment above).
 * @example
 * import { Vault, FileStore, SoftwareAttestationProvider } from 'enclave';
 * const vault = await Vault.open({
 *   store: new FileStore('/var/lib/app/keys'),
 *   attestation: new SoftwareAttestationProvider().open(),
 *   module: 'vault.signed.wasm', // the package's vault.wasm signed with your release key (`enclave sign`)
 *   trust: { trusted: [{ publicKey: releasePublicKey }] }, // key records are sealed to this signer
 * });
 * const key = await vault.create('tokens', { type: 'symmetric' });
 * const ciphertext = await key.encrypt(new TextEncoder().encode('secret'));
 * await vault.close();
 */
export class Vault {
  readonly #store: VaultStore;
  readonly #newInstance: () => Promise<EnclaveHandle>;
  #enclave: EnclaveHandle;
  /** Bumped with every new instance: handles of an older epoch are stale. */
  #epoch = 0;
  /** The instance lost its keyring (discarded) or its state is unknown: reload before the next call. */
  #lost = false;
  #recovering: Promise<void> | undefined;
  #closed = false;
  /** The store's compare-and-set version of each key's record (0: not in the store). */
  readonly #versions = new Map<string, number>();
  readonly #handles = new Map<string, { readonly epoch: number; readonly handle: Uint8Array }>();
  /** Per key name: the tail of its queue of changes. */
  readonly #locks = new Map<string, Promise<void>>();
  /** Changes past their first enclave call: a reload waits for them. */
  readonly #active = new Set<Promise<unknown>>();
  #refused: readonly RefusedRecord[] = [];
  /** Keys whose record the enclave found stale at load (a root not current then, or a lower svn). */
  readonly #stale = new Set<string>();
  /** The sealing root id of each key's stored record, read from its header (docs/SEALING.md). */
  readonly #roots = new Map<string, number>();
  readonly #platform: VaultOpenOptions['attestation'];
  readonly #port: KeyPort;

  private constructor(store: VaultStore, platform: VaultOpenOptions['attestation'], enclave: EnclaveHandle, newInstance: () => Promise<EnclaveHandle>) {
    this.#store = store;
    this.#platform = platform;
    this.#enclave = enclave;
    this.#newInstance = newInstance;
    this.#port = {
      read: (name, op, args) => this.#read(name, op, args),
      mutate: (name, op, args) => this.#mutateKey(name, op, args),
      forget: (name) => this.#handles.delete(name),
    };
  }

  /**
   * Starts the vault enclave and loads every `vault/` record of the store into it.
   * @throws {EnclaveError} `invalid_options` (no store or platform, a bad `storeTimeoutMs`, or a platform that cannot
   *   keep counters), `invalid_module` (no vault module), the runtime's load codes
   *   (`untrusted_module`), the store's codes (`unavailable`), `store_corrupt` (the store's
   *   {@link VAULT_ID_RECORD} is not a 16-byte vault id), `too_large` (more than
   *   {@link VAULT_LIMITS}.storeNames records).
   * @example
   * const vault = await Vault.open({ store, attestation: platform, module: 'vault.signed.wasm', trust });
   * for (const { name, code } of vault.refused) console.warn(`${name} did not load: ${code}`);
   */
  static async open(options: VaultOpenOptions): Promise<Vault> {
    if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_options', 'Vault.open takes an options object.');
    const { store: given, attestation, isolation = 'in-process' } = options;
    if (typeof given?.get !== 'function' || typeof given.put !== 'function' || typeof given.list !== 'function') {
      throw new EnclaveError('invalid_options', '`store` must be a SealedStore (get, put, list).');
    }
    if (typeof attestation !== 'object' || attestation === null) {
      throw new EnclaveError('invalid_options', '`attestation` must be the platform that seals and keeps counters (SoftwareAttestationProvider).');
    }
    if (isolation !== 'in-process' && isolation !== 'worker') throw new EnclaveError('invalid_options', "`isolation` is 'in-process' or 'worker'.");
    const storeTimeoutMs = options.storeTimeoutMs ?? 30_000;
    if (typeof storeTimeoutMs !== 'number' || !Number.isSafeInteger(storeTimeoutMs) || storeTimeoutMs < 1 || storeTimeoutMs > 2 ** 31 - 1) {
      throw new EnclaveError('invalid_options', '`storeTimeoutMs` is a whole number of milliseconds from 1 to 2147483647.');
    }
    const store = boundedStore(given, storeTimeoutMs);
    const bytes = await readModuleBytes(options.module ?? defaultModule());
    const mod: EnclaveModule = await compileEnclave(bytes, {
      ...(options.trust === undefined ? {} : { trust: options.trust }),
      ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir }),
    });
    const enclaveOptions = {
      capabilities: ['random', 'seal', 'counter'] as const,
      attestation,
      state: 'persistent' as const,
      // The host's default fuel (10 M) is far below what a batch of signatures needs; an op that
      // ran out would discard the instance (and its keyring, reloaded from the store at once). The
      // vault bounds each op's work itself (VAULT_FUEL).
      policy: { fuel: VAULT_FUEL, ...options.policy },
    };
    const vaultId = await Vault.#vaultId(store);
    // Every instance serves this vault only: `init` before any other op (the contract requires it).
    const newInstance = async (): Promise<EnclaveHandle> => {
      const enclave = isolation === 'worker' ? await createWorkerEnclave(mod, { ...enclaveOptions, deadlineMs: options.deadlineMs ?? 5000 }) : await mod.create(enclaveOptions);
      try {
        await enclave.call('init', { vault_id: vaultId });
      } catch (err) {
        await enclave.close().catch(() => undefined);
        throw err;
      }
      return enclave;
    };
    const vault = new Vault(store, attestation, await newInstance(), newInstance);
    try {
      vault.#refused = await vault.#loadAll();
    } catch (err) {
      await vault.#enclave.close();
      throw err;
    }
    return vault;
  }

  /**
   * The store's vault id ({@link VAULT_ID_RECORD}), made at the first open. Put with expectedVersion
   * 0, so two first opens of one store at once agree on one id (the loser reads the winner's).
   */
  static async #vaultId(store: VaultStore): Promise<Uint8Array> {
    for (let attempt = 0; attempt < 2; attempt++) {
      let answer: unknown;
      try {
        answer = await store.get(VAULT_ID_RECORD);
      } catch (err) {
        throw storeError(err, 'read the vault id');
      }
      let found: ReturnType<typeof storedRecord>;
      try {
        found = storedRecord(answer, VAULT_ID_RECORD, VAULT_ID_BYTES);
      } catch {
        found = { version: 0, bytes: undefined }; // not a record: refused as store_corrupt below
      }
      if (found !== undefined) {
        if (found.bytes === undefined || found.bytes.length !== VAULT_ID_BYTES) {
          throw new EnclaveError(
            'store_corrupt',
            `The store's ${VAULT_ID_RECORD} record is not a ${VAULT_ID_BYTES}-byte vault id: it was changed or planted. Restore it from a backup of this store (the keys are bound to it); never replace it with a fresh id.`,
          );
        }
        return found.bytes;
      }
      // No id, yet key records: the id was lost (a partial restore, a hostile or broken store). A
      // fresh one would open none of them and, once stored, stand in the way of restoring the old.
      let records: unknown;
      try {
        records = await store.list({ prefix: VAULT_STORE_PREFIX, limit: 1 });
      } catch (err) {
        throw storeError(err, 'list the vault records');
      }
      if (!Array.isArray(records) || records.length > 0) {
        // (Or another first open stored its id and a key since the read above: read it again once.)
        if (attempt === 0) continue;
        throw new EnclaveError(
          'store_corrupt',
          `The store holds key records but no ${VAULT_ID_RECORD} record (the vault id they are bound to): restore it from a backup of this store; never replace it with a fresh id.`,
        );
      }
      const id = new Uint8Array(randomBytes(VAULT_ID_BYTES));
      try {
        await store.put(VAULT_ID_RECORD, id, { expectedVersion: 0 });
        return id;
      } catch (err) {
        // Another first open won the race: read its id.
        if (!(err instanceof EnclaveError && err.code === 'conflict')) throw storeError(err, 'store the vault id');
      }
    }
    throw new EnclaveError('unavailable', `The store's ${VAULT_ID_RECORD} record neither reads nor writes consistently: check the store.`);
  }

  /**
   * The records that did not load at the last open (or reload), by store name and code. Empty when
   * everything loaded. A refused record is left in the store untouched.
   * @example
   * for (const { name, code } of vault.refused) console.warn(`not loaded: ${name} (${code})`);
   */
  get refused(): readonly RefusedRecord[] {
    return this.#refused;
  }

  /**
   * The keys whose stored record is sealed under a sealing root that is not the platform's current
   * one (after `enclave keys rotate`, also while running, when the platform lists its roots), or was
   * sealed by a lower svn of the module, sorted: {@link Vault.resealStale} moves them forward. A
   * record leaves this list whenever its key changes.
   * @example
   * if (vault.stale.length > 0) await vault.resealStale();
   */
  get stale(): readonly string[] {
    let current: number | undefined;
    try {
      current = this.#platform.listSealingRoots?.().find((root) => root.current)?.id;
    } catch {
      current = undefined; // a platform that cannot list its roots: the load's verdicts only
    }
    const names = new Set(this.#stale);
    if (current !== undefined) for (const [name, root] of this.#roots) if (root !== current) names.add(name);
    return [...names].sort();
  }

  /**
   * Rewrites the record of every key in {@link Vault.stale} as it is, live keys and destroyed keys'
   * tombstones alike (the enclave's `reseal_key`): sealed under the current root and this module's
   * svn, stored and committed. Run it after `enclave keys rotate` and before `enclave keys revoke`
   * of the old root, whose records would otherwise never open again (a tombstone left behind would
   * also block re-creating its name). A record that was refused at load is not among them (it did
   * not open). One key's failure does not stop the others: check `failed` before revoking.
   * @returns The keys moved and the keys that failed, each with its error (the store's
   *   `unavailable`/`conflict`, …); the failed ones are still listed in {@link Vault.stale}.
   * @throws {EnclaveError} `closed`.
   * @example
   * // enclave keys rotate; then, in the service:
   * const { moved, failed } = await vault.resealStale(); // moved: ['payments', 'releases']
   * if (failed.length === 0) console.log('now: enclave keys revoke 1 --yes');
   */
  async resealStale(): Promise<ResealReport> {
    if (this.#closed) throw closedError();
    const moved: string[] = [];
    const failed: { name: string; code: ErrorCode; error: EnclaveError }[] = [];
    for (const name of this.stale) {
      try {
        await this.#mutate(name, 'reseal_key', () => ({ name }), true);
        moved.push(name);
      } catch (err) {
        if (this.#closed) throw closedError();
        const error = err instanceof EnclaveError ? err : new EnclaveError('internal', `Resealing key "${name}" failed (see the cause): its record stays under its old root; run resealStale again before revoking that root.`, { cause: err });
        failed.push({ name, code: isErrorCode(error.code) ? error.code : 'internal', error });
      }
    }
    return { moved, failed };
  }

  /**
   * The enclave's measurement (hex): what its records are sealed to under the `measurement` policy.
   * @example
   * console.log(`vault module ${vault.measurement}`);
   */
  get measurement(): string {
    return this.#enclave.measurement;
  }

  /**
   * Creates a key (material generated inside the enclave), stores its sealed record and commits it.
   * @throws {EnclaveError} `invalid_args` (a bad name or type), `conflict` (the name exists, or the
   *   store already holds a record under it), `limit` (1024 keys), the store's codes (the key is
   *   then not created); `sealing_unavailable` (an `AttestationError`) for the `signer` policy
   *   (the default) when the module was not admitted by a `trust` policy.
   * @example
   * const signer = await vault.create('release-signing', { type: 'ed25519', sealPolicy: 'signer' });
   */
  async create(name: string, options: VaultCreateOptions): Promise<VaultKey> {
    if (this.#closed) throw closedError();
    checkName(name);
    if (typeof options !== 'object' || options === null || !VAULT_KEY_TYPES.includes(options.type)) {
      throw new EnclaveError('invalid_args', `A key's type is one of ${VAULT_KEY_TYPES.join(', ')}.`);
    }
    // The enclave would answer only `state` ("could not seal"); the reason and the two ways out are known here.
    if ((options.sealPolicy ?? 'signer') === 'signer' && this.#enclave.identity.signer === undefined) {
      throw new EnclaveError(
        'sealing_unavailable',
        'The vault module has no trusted signer, so a key cannot be sealed to a signer: sign the module and pass `trust` to Vault.open (keys then survive upgrades signed by the same key), or create the key with sealPolicy "measurement" (bound to this exact build).',
      );
    }
    const args: { [key: string]: ArgValue } = { name, type: options.type };
    if (options.exportable !== undefined) args.exportable = options.exportable;
    if (options.deletionAllowed !== undefined) args.deletion_allowed = options.deletionAllowed;
    if (options.sealPolicy !== undefined) args.seal_policy = options.sealPolicy;
    const epoch = this.#epoch;
    const reply = asMap('create', await this.#mutate(name, 'create', () => args, true));
    const metadata = parseMetadata('create', reply.key);
    if (epoch === this.#epoch) this.#handles.set(name, { epoch, handle: asBytes('create', reply.handle, 'handle', 16) });
    return new VaultKey(this.#port, metadata);
  }

  /**
   * The key of that name.
   * @throws {EnclaveError} `not_found` (no such key, or destroyed), `invalid_args` (a bad name).
   * @example
   * const key = await vault.key('payments');
   */
  async key(name: string): Promise<VaultKey> {
    checkName(name);
    await this.#settled(name);
    const reply = asMap('open', await this.#call('open', { name }));
    this.#handles.set(name, { epoch: this.#epoch, handle: asBytes('open', reply.handle, 'handle', 16) });
    return new VaultKey(this.#port, parseMetadata('open', reply.key));
  }

  /**
   * Every key's name, sorted.
   * @throws {EnclaveError} `closed`.
   * @example
   * await vault.list(); // ['payments', 'release-signing']
   */
  async list(): Promise<string[]> {
    const names: string[] = [];
    for (;;) {
      const after = names.at(-1);
      const page = asArray('list', await this.#call('list', { ...(after === undefined ? {} : { after }), limit: 256 }), 'the names');
      for (const raw of page) {
        const name = asString('list', raw, 'a name');
        // Strictly increasing: a reply that repeats itself cannot keep this loop going.
        if (after !== undefined && name <= (names.at(-1) ?? '')) throw new EnclaveError('bad_reply', "The vault enclave's `list` reply is not sorted.");
        names.push(name);
      }
      if (page.length < 256 || names.length > 65_536) return names;
    }
  }

  /**
   * Imports a record made by {@link VaultKey.exportSealed} (on this platform or one that can unseal
   * it) as a new key, stored and committed.
   * @param name The new key's name; default the exported key's.
   * @throws {EnclaveError} `unseal_failed` (not a sealed export this module may open), `conflict`
   *   (the name exists), the store's codes.
   * @example
   * const key = await vault.importSealed(blob, 'payments-copy');
   */
  async importSealed(blob: Uint8Array, name?: string): Promise<VaultKey> {
    if (name !== undefined) checkName(name);
    const args = { blob, ...(name === undefined ? {} : { name }) };
    // Without a name the key's name is known only from the reply: the enclave keeps the new key
    // pending (any other change of it is `conflict`) until it is committed or aborted here.
    const reply = asMap('import_sealed', await this.#mutate(name, 'import_sealed', () => args, true));
    const handle = asBytes('import_sealed', reply.handle, 'handle', 16);
    const metadata = parseMetadata('import_sealed', reply.key ?? (await this.#call('describe', { handle })));
    this.#handles.set(metadata.name, { epoch: this.#epoch, handle });
    return new VaultKey(this.#port, metadata);
  }

  /**
   * Re-seals an exported record ({@link VaultKey.exportSealed}) under the platform's current root
   * and this module's svn: after `enclave keys rotate`, or before an old root is revoked.
   * @throws {EnclaveError} `unseal_failed`.
   * @example
   * const fresh = await vault.reseal(oldExport);
   */
  async reseal(blob: Uint8Array): Promise<Uint8Array> {
    return asBytes('reseal', await this.#call('reseal', { blob }), 'the sealed export');
  }

  /**
   * Waits for the changes in flight, then stops the enclave (its keys leave memory). The store is
   * the caller's: it is not closed. Idempotent.
   * @example
   * await vault.close();
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // A reload under way (started before close) makes a new instance: wait for it, so the instance
    // closed below is the last one (none is left running, loaded with the keys, after close).
    await Promise.allSettled([...this.#locks.values(), ...this.#active, ...(this.#recovering === undefined ? [] : [this.#recovering])]);
    await this.#enclave.close();
  }

  // ── calls ─────────────────────────────────────────────────────────────────────────────────

  /** The instance to call, after a reload if the last one was lost. */
  async #ready(): Promise<EnclaveHandle> {
    while (this.#lost && !this.#closed) {
      this.#recovering ??= this.#recover().finally(() => {
        this.#recovering = undefined;
      });
      await this.#recovering;
    }
    if (this.#closed) throw closedError();
    return this.#enclave;
  }

  /** A new instance, loaded from the store, once the changes in flight have finished. */
  async #recover(): Promise<void> {
    while (this.#active.size > 0) await Promise.allSettled([...this.#active]);
    const old = this.#enclave;
    await old.close().catch(() => undefined);
    this.#enclave = await this.#newInstance();
    // Closed meanwhile: close() closes this instance; loading the keys into it would be for nothing.
    if (this.#closed) return;
    this.#epoch++;
    this.#handles.clear();
    this.#versions.clear();
    this.#stale.clear();
    this.#roots.clear();
    this.#refused = await this.#loadAll();
    this.#lost = false;
  }

  /** One call on the instance as it is (no reload): a discard marks it lost. */
  async #send(enclave: EnclaveHandle, op: string, args: ArgValue): Promise<ReplyValue> {
    try {
      return await enclave.call<ReplyValue>(op, args);
    } catch (err) {
      if (discarded(err)) this.#lost = true;
      throw err;
    }
  }

  async #call(op: string, args: ArgValue): Promise<ReplyValue> {
    return this.#send(await this.#ready(), op, args);
  }

  /** Resolves when no change of `name` is queued or in flight. */
  async #settled(name: string): Promise<void> {
    for (let tail = this.#locks.get(name); tail !== undefined; tail = this.#locks.get(name)) await tail;
  }

  /** The key's handle in the current instance (renewed with `open` after a reload). */
  async #handle(name: string): Promise<Uint8Array> {
    const cached = this.#handles.get(name);
    if (cached !== undefined && cached.epoch === this.#epoch && !this.#lost) return cached.handle;
    await this.#ready();
    const epoch = this.#epoch;
    const handle = asBytes('open', asMap('open', await this.#call('open', { name })).handle, 'handle', 16);
    if (epoch === this.#epoch) this.#handles.set(name, { epoch, handle });
    return handle;
  }

  /** A non-changing op of a key: after its changes in flight, with its handle (renewed once if the instance changed meanwhile). */
  async #read(name: string, op: string, args: (handle: Uint8Array) => { [key: string]: ArgValue }): Promise<ReplyValue> {
    await this.#settled(name);
    const epoch = this.#epoch;
    try {
      return await this.#call(op, args(await this.#handle(name)));
    } catch (err) {
      if (!(err instanceof EnclaveError) || err.code !== ('not_found') || epoch === this.#epoch) throw err;
      return this.#call(op, args(await this.#handle(name)));
    }
  }

  /** A change of an existing key, by handle. */
  #mutateKey(name: string, op: string, args: (handle: Uint8Array) => { [key: string]: ArgValue }): Promise<ReplyValue> {
    return this.#mutate(name, op, args, false);
  }

  /**
   * A change of one key (module comment): after the changes of that key queued before it, the op, then
   * `store.put` of its record with the store version last seen, then `commit`; a failed put
   * `abort`s. `name` undefined: an import whose name is known from its reply.
   */
  #mutate(name: string | undefined, op: string, args: (handle: Uint8Array) => { [key: string]: ArgValue }, byName: boolean): Promise<ReplyValue> {
    const run = async (): Promise<ReplyValue> => {
      const handle = byName ? new Uint8Array(0) : await this.#handle(name!);
      const enclave = await this.#ready();
      let finish!: () => void;
      const active = new Promise<void>((resolve) => (finish = resolve));
      this.#active.add(active);
      try {
        const reply = asMap(op, await this.#send(enclave, op, args(handle)));
        let persist: Persist;
        try {
          persist = parsePersist(op, reply.persist, name);
        } catch (err) {
          // The enclave may hold a pending change this client cannot name to abort: start afresh.
          this.#lost = true;
          throw err;
        }
        await this.#persist(enclave, persist);
        return reply;
      } finally {
        this.#active.delete(active);
        finish();
      }
    };
    if (name === undefined) return run();
    const previous = this.#locks.get(name);
    const result = (previous === undefined ? run() : previous.then(run));
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#locks.set(name, tail);
    void tail.then(() => {
      if (this.#locks.get(name) === tail) this.#locks.delete(name);
    });
    return result;
  }

  /** Stores a pending record, then commits it; a failed put aborts it. */
  async #persist(enclave: EnclaveHandle, persist: Persist): Promise<void> {
    const ref = { name: persist.name, version: persist.version };
    let stored: { readonly version: number };
    const expectedVersion = this.#versions.get(persist.name) ?? 0;
    try {
      stored = await this.#store.put(VAULT_STORE_PREFIX + persist.name, persist.blob, { expectedVersion });
    } catch (err) {
      const failure = storeError(err, `store the record of key "${persist.name}"`);
      try {
        await this.#send(enclave, 'abort', ref);
      } catch {
        // The enclave's state of this key is unknown: reload it from the store before the next call.
        this.#lost = true;
      }
      // The store's record may not be the one this client last saw: a `conflict` (another writer),
      // or a put that landed but whose answer was lost (`unavailable`: "may or may not have
      // happened"). Left so, every later change of the key would be a `conflict` until a restart,
      // and the restart would commit the record this change left pending. Read it back: if it
      // moved, reload before the next call, so the vault agrees with the store (a store that does
      // not answer now is read again at the key's next put, whose `conflict` comes back here).
      // A record refused at the last load stays in the store as it was: a create over its name is a
      // `conflict` that a reload would only repeat.
      const storeName = VAULT_STORE_PREFIX + persist.name;
      if (!this.#lost && !this.#refused.some((r) => r.name === storeName)) {
        const now = await Promise.resolve()
          .then(() => this.#store.get(storeName))
          .then((blob) => blob?.version ?? 0)
          .catch(() => expectedVersion); // no answer (or a throwing one): read again at the key's next put
        if (now !== expectedVersion) this.#lost = true;
      }
      throw failure;
    }
    // Read once, guarded: the answer is the caller's store's (a getter may throw, or answer twice differently).
    let version: unknown;
    try {
      version = (stored as { readonly version?: unknown } | null | undefined)?.version;
    } catch {
      version = undefined;
    }
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
      // The record may be stored: reload, so that this process agrees with whatever the store holds.
      this.#lost = true;
      throw new EnclaveError('unavailable', 'The store answered a put without a valid version: check the store; the vault reloads it before the next call.');
    }
    this.#versions.set(persist.name, version);
    try {
      await this.#send(enclave, 'commit', ref);
      // Committed: the record was sealed just now, under the current root.
      this.#stale.delete(persist.name);
      this.#noteRoot(persist.name, persist.blob);
    } catch (err) {
      // Stored but not committed: the record is pending in the store, and the enclave commits a
      // pending record it loads. Reload, so this process agrees with what the store now says.
      this.#lost = true;
      const code = err instanceof EnclaveError ? err.code : 'internal';
      // A `conflict` here means the key's counter moved past this record (another commit won): the
      // reload refuses this record (`rollback`, listed in `refused`) rather than applying it.
      const outcome =
        code === 'conflict'
          ? 'the key was changed elsewhere, so this change will not take effect: the vault reloads the store before the next call and lists the record in refused'
          : 'the change takes effect when the vault next loads the store, which it does before the next call';
      throw new EnclaveError(code, `The record of key "${persist.name}" was stored but its commit failed (${code}): ${outcome}.`, { cause: err });
    }
  }

  /** Records the sealing root id a sealed record names in its header ("ENCS", version 1: root id u32 LE at 8). */
  #noteRoot(name: string, blob: Uint8Array): void {
    const sealed = blob.length >= 12 && blob[0] === 0x45 && blob[1] === 0x4e && blob[2] === 0x43 && blob[3] === 0x53 && blob[4] === 1;
    if (sealed) this.#roots.set(name, new DataView(blob.buffer, blob.byteOffset, blob.length).getUint32(8, true));
    else this.#roots.delete(name);
  }

  /** Lists the store's `vault/` records, reads them and loads them into the instance. */
  async #loadAll(): Promise<RefusedRecord[]> {
    const names: string[] = [];
    for (;;) {
      const after = names.at(-1);
      let page: unknown;
      try {
        page = await this.#store.list({ prefix: VAULT_STORE_PREFIX, ...(after === undefined ? {} : { after }), limit: VAULT_LIMITS.listPage });
      } catch (err) {
        throw storeError(err, 'list the vault records');
      }
      if (!Array.isArray(page) || page.length > VAULT_LIMITS.listPage) throw new EnclaveError('unavailable', 'The store answered a list with something else than a page of names: check the store.');
      for (const name of page) {
        // Strictly increasing names under the prefix: a store that repeats itself cannot loop this.
        // The store's order is that of the UTF-8 bytes (SealedStore.list), not JavaScript's UTF-16
        // code units: the two differ between U+E000..U+FFFF and the characters above U+FFFF.
        if (typeof name !== 'string' || !name.startsWith(VAULT_STORE_PREFIX) || (names.length > 0 && Buffer.compare(Buffer.from(name), Buffer.from(names.at(-1)!)) <= 0)) {
          throw new EnclaveError('unavailable', 'The store listed a name out of order or outside vault/: check the store.');
        }
        names.push(name);
      }
      if (names.length > VAULT_LIMITS.storeNames) throw new EnclaveError('too_large', `The store holds more than ${VAULT_LIMITS.storeNames} vault records, the most one vault opens: keep the keys in several stores (each its own vault).`);
      if (page.length < VAULT_LIMITS.listPage) break;
    }

    const refused: RefusedRecord[] = [];
    // What one load request may carry: the contract's request bound, less room for the envelope.
    const budget = Math.max(VAULT_LIMITS.recordBytes, this.#enclave.limits.requestBytes - 8192);
    let batch: { name: string; key: string; version: number; bytes: Uint8Array }[] = [];
    let bytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      let sent = batch;
      batch = [];
      bytes = 0;
      for (;;) {
        // The names go with the blobs: a record's associated data binds it to its key's name, so a
        // record the store moved to another name does not open (`unseal_failed`).
        const args = { blobs: sent.map((b) => b.bytes), names: sent.map((b) => b.key) };
        const items = parseLoad(await this.#send(this.#enclave, 'load', args), sent.length);
        const again: typeof sent = [];
        items.forEach((item, i) => {
          const record = sent[i]!;
          // `limit`: one call commits at most 64 pending records (each advance is an fsync on the
          // host), or the vault holds its most keys. Sent again in a new call below.
          if (!item.ok) (item.code === 'limit' ? again.push(record) : refused.push({ name: record.name, code: item.code }));
          else if (item.name !== record.key) throw new EnclaveError('bad_reply', "The vault enclave's `load` reply names another key than the record sent.");
          else {
            this.#versions.set(item.name, record.version);
            this.#noteRoot(item.name, record.bytes);
            if (item.stale) this.#stale.add(item.name);
          }
        });
        if (again.length === 0) return;
        // A call that loaded none of them makes no progress (the vault is full): they are refused.
        if (again.length === sent.length) {
          for (const record of again) refused.push({ name: record.name, code: 'limit' });
          return;
        }
        sent = again;
      }
    };
    for (let i = 0; i < names.length; i += VAULT_LIMITS.readsInFlight) {
      const chunk = names.slice(i, i + VAULT_LIMITS.readsInFlight);
      const blobs = await Promise.all(
        chunk.map((name) =>
          Promise.resolve()
            .then(() => this.#store.get(name))
            .then((answer) => storedRecord(answer, name, VAULT_LIMITS.recordBytes), (err: unknown) => {
              const failure = storeError(err, `read ${name}`);
              // One damaged or oversized record is reported, as a record that does not unseal is:
              // it does not keep every other key from loading. An I/O failure stays fatal (retry).
              if (failure.code === 'store_corrupt' || failure.code === 'too_large') return failure;
              throw failure;
            }),
        ),
      );
      for (const [j, blob] of blobs.entries()) {
        if (blob === undefined) continue; // deleted since it was listed
        const name = chunk[j]!;
        if (blob instanceof EnclaveError) {
          refused.push({ name, code: blob.code });
          continue;
        }
        const key = name.slice(VAULT_STORE_PREFIX.length);
        if (!KEY_NAME.test(key)) {
          refused.push({ name, code: 'unseal_failed' });
          continue;
        }
        if (blob.bytes === undefined) {
          refused.push({ name, code: 'too_large' });
          continue;
        }
        if (batch.length === VAULT_LIMITS.loadBatch || bytes + blob.bytes.length > budget) await flush();
        batch.push({ name, key, version: blob.version, bytes: blob.bytes });
        bytes += blob.bytes.length;
      }
    }
    await flush();
    return refused;
  }
}
