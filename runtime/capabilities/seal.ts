/**
 * `seal_key(policy, out_ptr) -> i32` (docs/ABI.md §3): writes the enclave's 32-byte sealing key
 * for a policy (0 measurement, 1 signer: {@link SEAL_POLICIES}) at `out_ptr`. Returns 0, or
 * -1 out of bounds, -2 unknown policy, -3 the platform could not give a key ({@link SEAL_STATUS}).
 *
 * The key comes from the platform's {@link SealingKeySource}. In a worker, the platform stays on
 * the host thread: the worker's platform proxy asks it by host call, and {@link answerSealHostCall}
 * answers there with the identity the host computed itself.
 */
import { EnclaveError } from '../../core/index.js';
import type { ModuleIdentity } from '../../attest/index.js';
import { SEAL_KEY_BYTES, SEAL_POLICIES, SEAL_STATUS, type SealPolicy } from '../abi.js';
import { dropPending, type SealingKeySource } from '../platform.js';
import type { CapabilityModule } from './_capability.js';

/** The `seal` capability. */
export const seal: CapabilityModule<'seal'> = Object.freeze<CapabilityModule<'seal'>>({
  name: 'seal',
  importName: 'seal_key',
  type: { params: ['i32', 'i32'], results: ['i32'] },
  fuel: 500_000,
  crossing: 'host-call',
  hostCall: {
    kind: 'seal',
    answer: (platform, context, message, room) => answerSealHostCall(platform, context.identity, message.policy, room.maxAnswer),
  },
  grant(options) {
    if (options.attestation === undefined) throw new EnclaveError('invalid_options', 'The "seal" capability needs an attestation provider: pass { attestation }.');
  },
  implement(ctx) {
    const platform = ctx.platform;
    if (platform === undefined) return undefined;
    return (policy: number, outPtr: number): number => {
      ctx.pay(seal.fuel);
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
