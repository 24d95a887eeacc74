/**
 * The `seal` capability (docs/ABI.md §3), two imports:
 *
 * - `seal_key(policy, out_ptr) -> i32`: writes the enclave's 32-byte sealing key for a policy
 *   (0 measurement, 1 signer: {@link SEAL_POLICIES}) at `out_ptr`, under the platform's current
 *   root and the module's own svn. Returns 0, or -1 out of bounds, -2 unknown policy, -3 the
 *   platform could not give a key ({@link SEAL_STATUS}).
 * - `seal_key_at(policy, key_id, svn, out_ptr) -> i32`: the key under a chosen root (`key_id` 0:
 *   the current one) and, under `signer`, a chosen svn at most the module's own (`svn` -1: its own),
 *   written as key[32] ‖ key id u32 LE ‖ svn u32 LE. Returns 0, or -1 .. -5 ({@link SEAL_AT_STATUS}).
 *   What opens data sealed before a root rotation or an upgrade.
 *
 * Keys come from the platform's {@link SealingKeySource}. In a worker, the platform stays on the
 * host thread: the worker's platform proxy asks it by host call, and the host answers there with
 * the identity it computed itself; both modes run the same checks ({@link sealingKeyAt}).
 */
import { isPromise } from 'node:util/types';
import { EnclaveError } from '../../core/index.js';
import type { ModuleIdentity } from '../../attest/index.js';
import { OWN_SVN, SEAL_AT_STATUS, SEAL_KEY_AT_BYTES, SEAL_KEY_BYTES, SEAL_POLICIES, SEAL_STATUS, type SealPolicy } from '../abi.js';
import { dropPending, platformCode, type SealingKeyResult, type SealingKeySource } from '../platform.js';
import type { CapabilityImport, CapabilityModule } from './_capability.js';

/** Highest sealing root id (ids are 1..2^31-1, never reused). */
const MAX_KEY_ID = 0x7fff_ffff;
/** Fuel of both imports: a key derivation on the host. */
const SEAL_FUEL = 500_000;

/** The `seal_key` import. */
const sealKey: CapabilityImport = Object.freeze<CapabilityImport>({
  name: 'seal_key',
  type: { params: ['i32', 'i32'], results: ['i32'] },
  fuel: SEAL_FUEL,
  hostCall: {
    kind: 'seal',
    answer: (platform, context, message, room) => answerSealHostCall(platform, context.identity, message.policy, room.maxAnswer),
  },
  implement(ctx) {
    const platform = ctx.platform;
    if (platform === undefined) return undefined;
    return (policy: number, outPtr: number): number => {
      ctx.pay(SEAL_FUEL);
      if (!ctx.inBounds(outPtr, SEAL_KEY_BYTES)) return SEAL_STATUS.outOfBounds;
      const name = SEAL_POLICIES[policy];
      if (name === undefined) return SEAL_STATUS.unknownPolicy;
      let key: unknown;
      try {
        key = platform.getSealingSecret(ctx.identity, name);
      } catch {
        return SEAL_STATUS.unavailable;
      }
      // A platform is code of the host's choosing, but a wrong answer is still an error value here,
      // never a trap (and never fewer than 32 bytes written as if they were a key).
      // (A promise is no key either: this import cannot wait for it.)
      if (!(key instanceof Uint8Array) || key.length !== SEAL_KEY_BYTES) {
        dropPending(key);
        return SEAL_STATUS.unavailable;
      }
      ctx.memory().set(key, outPtr);
      key.fill(0);
      return SEAL_STATUS.ok;
    };
  },
});

/** The `seal_key_at` import. */
const sealKeyAt: CapabilityImport = Object.freeze<CapabilityImport>({
  name: 'seal_key_at',
  type: { params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] },
  fuel: SEAL_FUEL,
  hostCall: {
    kind: 'seal_at',
    answer: (platform, context, message) => answerSealAtHostCall(platform, context.identity, message),
  },
  implement(ctx) {
    const platform = ctx.platform;
    if (platform === undefined) return undefined;
    return (policy: number, keyId: number, svn: number, outPtr: number): number => {
      ctx.pay(SEAL_FUEL);
      if (!ctx.inBounds(outPtr, SEAL_KEY_AT_BYTES)) return SEAL_AT_STATUS.outOfBounds;
      const name = SEAL_POLICIES[policy];
      if (name === undefined) return SEAL_AT_STATUS.unknownPolicy;
      if (!svnAllowed(name, svn, ctx.identity.svn)) return SEAL_AT_STATUS.svnNotAllowed;
      // An i32 below 0 is a u32 above 2^31-1: an id no root can have.
      if (keyId < 0) return SEAL_AT_STATUS.unknownKey;
      let result: SealingKeyResult;
      try {
        result = sealingKeyAt(platform, ctx.identity, name, keyId, svn === OWN_SVN ? undefined : svn);
      } catch (err) {
        const code = platformCode(err);
        return code === 'sealing_key_unknown' || code === 'sealing_key_revoked' ? SEAL_AT_STATUS.unknownKey : SEAL_AT_STATUS.unavailable;
      }
      writeSealingKey(ctx.memory(), outPtr, result);
      result.key.fill(0);
      return SEAL_AT_STATUS.ok;
    };
  },
});

/** The `seal` capability. */
export const seal: CapabilityModule<'seal'> = Object.freeze<CapabilityModule<'seal'>>({
  name: 'seal',
  imports: Object.freeze([sealKey, sealKeyAt]),
  crossing: 'host-call',
  grant(options) {
    if (options.attestation === undefined) throw new EnclaveError('invalid_options', 'The "seal" capability needs an attestation provider: pass { attestation }.');
  },
});

/**
 * Whether `seal_key_at` may ask for `svn`: -1 (own) always; under `signer` also 0..own; never
 * anything else (a key for a later svn would open what a newer build sealed).
 */
function svnAllowed(policy: SealPolicy, svn: number, own: number): boolean {
  if (svn === OWN_SVN) return true;
  return policy === 'signer' && Number.isInteger(svn) && svn >= 0 && svn <= own;
}

/** key[32] ‖ key id u32 LE ‖ svn u32 LE at `at` (in bounds: checked by the caller). */
function writeSealingKey(memory: Uint8Array, at: number, result: SealingKeyResult): void {
  memory.set(result.key, at);
  const view = new DataView(memory.buffer, memory.byteOffset, memory.byteLength);
  view.setUint32(at + SEAL_KEY_BYTES, result.keyId, true);
  view.setUint32(at + SEAL_KEY_BYTES + 4, result.svn, true);
}

/**
 * @internal The key of `platform.sealingKey` under root `keyId` (0: current) and `svn` (undefined:
 * own), checked: 32 bytes, a root id 1..2^31-1 (the one asked for, unless 0), the svn asked for
 * (0 under `measurement`). Returns a copy; the platform's array is zeroed. Throws the platform's
 * error, or a plain error for a platform without `sealingKey` or an answer that is no key (a
 * Promise included: nothing here can wait).
 */
export function sealingKeyAt(platform: SealingKeySource, identity: ModuleIdentity, policy: SealPolicy, keyId: number, svn: number | undefined): SealingKeyResult {
  const method: unknown = platform.sealingKey;
  if (typeof method !== 'function') throw new Error('The platform has no sealingKey.');
  const answer: unknown = method.call(platform, identity, policy, svn === undefined ? { keyId } : { keyId, svn });
  if (typeof answer !== 'object' || answer === null || isPromise(answer)) {
    dropPending(answer);
    throw new Error('not a sealing key');
  }
  // Each field read once: a getter could answer a check with one value and the copy with another.
  const { key, keyId: usedId, svn: usedSvn } = answer as Partial<Record<string, unknown>>;
  const wantSvn = policy === 'measurement' ? 0 : (svn ?? identity.svn);
  const keyOk = key instanceof Uint8Array && key.length === SEAL_KEY_BYTES;
  const idOk = typeof usedId === 'number' && Number.isInteger(usedId) && usedId >= 1 && usedId <= MAX_KEY_ID && (keyId === 0 || usedId === keyId);
  if (!keyOk || !idOk || usedSvn !== wantSvn) {
    if (key instanceof Uint8Array) key.fill(0);
    throw new Error('not a sealing key');
  }
  const copy = Uint8Array.from(key);
  key.fill(0);
  return { key: copy, keyId: usedId, svn: wantSvn };
}

/**
 * Host side of a worker's `seal_key`: the key for `policy`, as a copy (the platform's
 * array is zeroed). Throws for an unknown policy or a platform answer that is no key.
 * @param maxBytes - room for the answer in the host-call buffer.
 */
function answerSealHostCall(platform: SealingKeySource, identity: ModuleIdentity, policy: unknown, maxBytes: number): Uint8Array {
  if (typeof policy !== 'string' || !(SEAL_POLICIES as readonly string[]).includes(policy)) throw new Error('unknown sealing policy');
  const key: unknown = platform.getSealingSecret(identity, policy as SealPolicy);
  if (!(key instanceof Uint8Array) || key.length > maxBytes) {
    dropPending(key);
    throw new Error('not a key');
  }
  const answer = Uint8Array.from(key);
  key.fill(0);
  return answer;
}

/**
 * Host side of a worker's `seal_key_at`: the 40 bytes the import writes, for the identity the host
 * computed. Every field of the message is hostile: the worker checked the same before asking, so a
 * message that fails here comes from a broken worker, and gets "unavailable".
 */
function answerSealAtHostCall(platform: SealingKeySource, identity: ModuleIdentity, message: Readonly<Record<string, unknown>>): Uint8Array {
  const { policy, keyId, svn } = message;
  if (typeof policy !== 'string' || !(SEAL_POLICIES as readonly string[]).includes(policy)) throw new Error('unknown sealing policy');
  if (typeof keyId !== 'number' || !Number.isInteger(keyId) || keyId < 0 || keyId > MAX_KEY_ID) throw new Error('bad key id');
  if (svn !== undefined && (typeof svn !== 'number' || !svnAllowed(policy as SealPolicy, svn, identity.svn) || svn === OWN_SVN)) {
    throw new Error('bad svn');
  }
  const result = sealingKeyAt(platform, identity, policy as SealPolicy, keyId, svn);
  const answer = new Uint8Array(SEAL_KEY_AT_BYTES);
  writeSealingKey(answer, 0, result);
  result.key.fill(0);
  return answer;
}

/**
 * @internal Worker side: the 40 bytes of a `seal_at` host call as a {@link SealingKeyResult}
 * (checked again by {@link sealingKeyAt}, as any platform's answer). Throws for another length.
 */
export function sealingKeyFromAnswer(answer: Uint8Array): SealingKeyResult {
  if (answer.length !== SEAL_KEY_AT_BYTES) throw new Error('not a sealing key');
  const view = new DataView(answer.buffer, answer.byteOffset, answer.byteLength);
  return { key: answer.subarray(0, SEAL_KEY_BYTES), keyId: view.getUint32(SEAL_KEY_BYTES, true), svn: view.getUint32(SEAL_KEY_BYTES + 4, true) };
}
