/**
 * The trust decision a loader makes before running a module (`compileEnclave({ trust })`,
 * `enclave verify-module`): which signers may load modules, and the lowest security version (svn)
 * each one's modules may carry, so a signed old version with a known flaw cannot be rolled back to.
 * Built on the identity (./measure.ts), which is built on the signature format (./module-signature.ts).
 */
import { AttestationError } from '../core/index.js';
import { parsePublicKey, signerId, type PublicKeyInput } from './keys.js';
import { moduleIdentity, type ModuleIdentity } from './measure.js';
import { signersInModuleOrder } from './module-signature.js';

/** One trusted signer and its rollback floor. */
export interface TrustedSigner {
  /** The signer's public key, in any {@link PublicKeyInput} form. */
  readonly publicKey: PublicKeyInput;
  /** Lowest contract svn accepted from this signer (default 0). */
  readonly minSvn?: number;
}

/** The runtime's trust option: which signers may load modules, and their svn floors. */
export interface TrustPolicy {
  readonly trusted: readonly TrustedSigner[];
}

/**
 * Checks that a module is signed by a trusted key at or above that key's svn floor.
 * The module is admitted if at least one trusted signer validly signed it and the contract's svn
 * is ≥ that signer's `minSvn`. Of those, the one whose signature comes first in the module's own
 * signature section becomes `signer`: an order the module's bytes fix, never the order of `trusted`,
 * so two hosts that list the same keys differently bind the same signer and derive the same
 * signer-bound sealing keys and counters.
 * @returns the module's identity ({@link moduleIdentity}) with `signers` (every valid trusted
 *   signer) and `signer`.
 * @throws {TypeError} if `policy.trusted` is not an array; {@link RangeError} if a `minSvn` is not an integer ≥ 0.
 * @throws {AttestationError} `untrusted_module` if no trusted key signed the whole module;
 *   `rollback` if every trusted signer's floor is above the svn; `invalid_module`,
 *   `invalid_contract`, `malformed_signature`, `invalid_key`.
 * @example
 * const id = checkTrust(bytes, { trusted: [{ publicKey: releaseKey, minSvn: 3 }] });
 * console.log(`loading ${id.name}@${id.version} signed by ${id.signer}`);
 */
export function checkTrust(bytes: Uint8Array, policy: TrustPolicy): ModuleIdentity {
  if (!policy || !Array.isArray(policy.trusted)) throw new TypeError('policy.trusted: expected an array');
  const floors = policy.trusted.map((t) => {
    const minSvn = t.minSvn ?? 0;
    if (!Number.isSafeInteger(minSvn) || minSvn < 0) throw new RangeError('minSvn: expected an integer ≥ 0');
    const publicKey = parsePublicKey(t.publicKey);
    return { publicKey, signer: signerId(publicKey), minSvn };
  });
  const identity = moduleIdentity(bytes, floors.map((f) => f.publicKey));
  if (identity.signers.length === 0) throw new AttestationError('untrusted_module');
  // Only the floor of a key that signed this module counts: a trusted key that did not sign it
  // says nothing about which svn may load (a lower floor there would be a rollback bypass).
  const admitted = floors.filter((f) => identity.svn >= f.minSvn && identity.signers.includes(f.signer));
  if (admitted.length === 0) throw new AttestationError('rollback');
  let signer = admitted[0]!.signer;
  // Several admitted signers: the module's order decides (its first valid signature among them), a
  // second pass over the signatures of those keys only, paid only by a module with several trusted signers.
  if (admitted.some((f) => f.signer !== signer)) signer = signersInModuleOrder(bytes, admitted.map((f) => f.publicKey))[0]!;
  return Object.freeze({ ...identity, signer });
}
