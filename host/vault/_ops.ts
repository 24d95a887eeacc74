/**
 * The vault enclave's ops as the host sees them (enclave-modules/vault, its contract.json): the
 * args each takes and the reply it gives, and the checks that turn a reply into the client's types.
 *
 * The runtime checks every reply against the contract's shapes; the checks here are the client's
 * own, at its edge (docs/THREAT-MODEL.md: a value from the guest is never trusted, even one we
 * wrote): a reply of the wrong shape is `bad_reply`, never a `TypeError` deep in a caller.
 */
import { EnclaveError, isErrorCode, type ErrorCode } from '../../core/index.js';
import type { ReplyValue } from '../../runtime/index.js';

/** What a key is for: `symmetric` (256-bit: encrypt, mac, derive, datakey), `ed25519` (sign), `x25519` (derive). */
export type VaultKeyType = 'ed25519' | 'x25519' | 'symmetric';
/**
 * The key types, in one list (checked where a caller passes one).
 * @example
 * VAULT_KEY_TYPES.includes('ed25519'); // true
 */
export const VAULT_KEY_TYPES: readonly VaultKeyType[] = Object.freeze(['ed25519', 'x25519', 'symmetric']);

/**
 * What a key's sealed record is bound to: `signer` (default; any build signed by the same trusted
 * key at an svn at least as high opens it: upgrades keep their keys) or `measurement` (this exact
 * build only).
 */
export type VaultSealPolicy = 'measurement' | 'signer';

/** A key's metadata (the `describe` op); never its material. */
export interface VaultKeyMetadata {
  readonly name: string;
  readonly type: VaultKeyType;
  /** The version `encrypt`, `sign`, `mac` use; `rotate` adds the next. */
  readonly latestVersion: number;
  /** Ciphertexts, signatures and macs of a version below this are refused (`denied`). */
  readonly minDecryptionVersion: number;
  /** Versions below this were trimmed: their material is gone (`not_found`). */
  readonly minAvailableVersion: number;
  /** Whether `exportKey` may return the material (fixed at creation). */
  readonly exportable: boolean;
  /** Whether `destroy` is allowed (`configure` changes it). */
  readonly deletionAllowed: boolean;
  readonly sealPolicy: VaultSealPolicy;
}

/** One item of a batch reply: its value, or the code it failed with (the other items are unaffected). */
export type VaultBatchItem<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly code: ErrorCode };

/** What a mutating op returns besides its result: the record to store before `commit` (enclave-modules/vault/persist.ts). */
export interface Persist {
  readonly name: string;
  readonly version: number;
  readonly blob: Uint8Array;
}

/** The reply of `load`, per blob in order; `stale`: sealed under a root that is not current, or an svn below the module's. */
export type LoadItem = { readonly ok: true; readonly name: string; readonly stale: boolean } | { readonly ok: false; readonly code: ErrorCode };

/**
 * Key names of the vault (enclave-modules/vault/index.ts): what the enclave accepts, checked on the host first.
 * @example
 * KEY_NAME.test('payments'); // true
 */
export const KEY_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

function malformed(op: string, what: string): EnclaveError {
  return new EnclaveError('bad_reply', `The vault enclave's reply to \`${op}\` is malformed (${what}): check that the module is the vault of this package.`);
}

type Obj = { readonly [key: string]: ReplyValue };

/**
 * `value` as a map.
 * @throws {EnclaveError} `bad_reply` for anything else.
 * @example
 * const reply = asMap('rotate', await enclave.call('rotate', { handle }));
 */
export function asMap(op: string, value: ReplyValue, what = 'the reply'): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw malformed(op, `${what} is not a map`);
  return value;
}

/**
 * `value` as bytes, of exactly `length` when given.
 * @throws {EnclaveError} `bad_reply` for anything else.
 * @example
 * asBytes('open', reply.handle, 'handle', 16);
 */
export function asBytes(op: string, value: ReplyValue | undefined, what: string, length?: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw malformed(op, `${what} is not bytes`);
  if (length !== undefined && value.length !== length) throw malformed(op, `${what} is not ${length} bytes`);
  return value;
}

/**
 * `value` as a version number (`min` .. 2^32-1).
 * @throws {EnclaveError} `bad_reply` for anything else.
 * @example
 * asVersion('rotate', reply.version, 'version'); // 2
 */
export function asVersion(op: string, value: ReplyValue | undefined, what: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > 0xffff_ffff) throw malformed(op, `${what} is not a version`);
  return value;
}

/**
 * `value` as a boolean.
 * @throws {EnclaveError} `bad_reply` for anything else.
 * @example
 * asBool('verify', reply, 'the verdict');
 */
export function asBool(op: string, value: ReplyValue | undefined, what: string): boolean {
  if (typeof value !== 'boolean') throw malformed(op, `${what} is not a boolean`);
  return value;
}

/**
 * `value` as a string.
 * @throws {EnclaveError} `bad_reply` for anything else.
 * @example
 * asString('load', item.name, 'an item name');
 */
export function asString(op: string, value: ReplyValue | undefined, what: string): string {
  if (typeof value !== 'string') throw malformed(op, `${what} is not a string`);
  return value;
}

/**
 * `value` as an array, of exactly `length` items when given.
 * @throws {EnclaveError} `bad_reply` for anything else.
 * @example
 * asArray('list', reply, 'the names');
 */
export function asArray(op: string, value: ReplyValue | undefined, what: string, length?: number): readonly ReplyValue[] {
  if (!Array.isArray(value)) throw malformed(op, `${what} is not an array`);
  if (length !== undefined && value.length !== length) throw malformed(op, `${what} has ${value.length} items, not ${length}`);
  return value;
}

/**
 * An error code the enclave named (an unknown code is never passed on as such).
 * @throws {EnclaveError} `bad_reply` for a value that is no error code.
 * @example
 * asCode('load', item.code); // 'rollback'
 */
export function asCode(op: string, value: ReplyValue | undefined): ErrorCode {
  if (typeof value !== 'string' || !isErrorCode(value)) throw malformed(op, 'an item code is not an error code');
  return value;
}

/**
 * The `persist` member of a mutating op's reply; its name must be the key's (`expectedName`).
 * @throws {EnclaveError} `bad_reply` when malformed or naming another key.
 * @example
 * const { name, version, blob } = parsePersist('rotate', reply.persist, 'payments');
 */
export function parsePersist(op: string, value: ReplyValue | undefined, expectedName: string | undefined): Persist {
  const p = asMap(op, value ?? null, 'persist');
  const name = asString(op, p.name, 'persist.name');
  if (!KEY_NAME.test(name) || (expectedName !== undefined && name !== expectedName)) throw malformed(op, 'persist.name is not the key');
  return { name, version: asVersion(op, p.version, 'persist.version'), blob: asBytes(op, p.blob, 'persist.blob') };
}

/**
 * The enclave's `meta` map in the client's terms.
 * @throws {EnclaveError} `bad_reply` when a field is missing or of the wrong type.
 * @example
 * parseMetadata('describe', reply).latestVersion; // 1
 */
export function parseMetadata(op: string, value: ReplyValue | undefined): VaultKeyMetadata {
  const m = asMap(op, value ?? null, 'key');
  const type = asString(op, m.type, 'key.type');
  if (!(VAULT_KEY_TYPES as readonly string[]).includes(type)) throw malformed(op, 'key.type is not a key type');
  const sealPolicy = asString(op, m.seal_policy, 'key.seal_policy');
  if (sealPolicy !== 'measurement' && sealPolicy !== 'signer') throw malformed(op, 'key.seal_policy is not a policy');
  return Object.freeze({
    name: asString(op, m.name, 'key.name'),
    type: type as VaultKeyType,
    latestVersion: asVersion(op, m.latest_version, 'key.latest_version', 0),
    minDecryptionVersion: asVersion(op, m.min_decryption_version, 'key.min_decryption_version', 0),
    minAvailableVersion: asVersion(op, m.min_available_version, 'key.min_available_version', 0),
    exportable: asBool(op, m.exportable, 'key.exportable'),
    deletionAllowed: asBool(op, m.deletion_allowed, 'key.deletion_allowed'),
    sealPolicy,
  });
}

/**
 * A batch reply (`[{ok: T} | {err: code}]`, one per item sent), each item read by `item`.
 * @throws {EnclaveError} `bad_reply` when the count or an item is malformed.
 * @example
 * parseBatch('sign', reply, 2, (v) => asBytes('sign', v, 'a signature', 68));
 */
export function parseBatch<T>(op: string, value: ReplyValue, count: number, item: (v: ReplyValue | undefined) => T): VaultBatchItem<T>[] {
  return asArray(op, value, 'the batch reply', count).map((raw) => {
    const entry = asMap(op, raw, 'a batch item');
    if ('err' in entry) return { ok: false as const, code: asCode(op, entry.err) };
    return { ok: true as const, value: item(entry.ok) };
  });
}

/**
 * The `load` reply, one item per blob sent.
 * @throws {EnclaveError} `bad_reply` when the count or an item is malformed.
 * @example
 * parseLoad(reply, blobs.length); // [{ ok: true, name: 'payments', stale: false }, { ok: false, code: 'rollback' }]
 */
export function parseLoad(value: ReplyValue, count: number): LoadItem[] {
  return asArray('load', value, 'the reply', count).map((raw) => {
    const entry = asMap('load', raw, 'an item');
    if (entry.ok === true) {
      const name = asString('load', entry.name, 'an item name');
      if (!KEY_NAME.test(name)) throw malformed('load', 'an item name is not a key name');
      const stale = entry.stale === undefined ? false : asBool('load', entry.stale, 'an item stale flag');
      return { ok: true as const, name, stale };
    }
    return { ok: false as const, code: asCode('load', entry.code) };
  });
}
