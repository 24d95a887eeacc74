/**
 * Sealing keys: 32-byte keys derived with HKDF-SHA-256 (RFC 5869) from a platform sealing secret,
 * bound to an enclave identity (docs/ATTESTATION.md §6).
 *
 * - `measurement`: bound to the exact module bytes. Any change, even a rebuild with the same
 *   source and signer, gives a different key (SGX MRENCLAVE policy).
 * - `signer`: bound to the accepted signer, the contract `name` and an svn (SGX MRSIGNER policy with
 *   ISVPRODID/ISVSVN). An enclave may derive the key of its own svn or of any lower svn, so an
 *   upgrade can unseal what older versions sealed; an older enclave cannot derive a newer svn's key,
 *   so data sealed after a security fix stays out of reach of the vulnerable version.
 */
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, concatBytes, hexToBytesOrUndefined, utf8Encode } from './_bytes.js';
import { AttestationError } from '../core/index.js';
import type { ModuleIdentity } from './measure.js';

/** What a sealing key is bound to. */
export type SealingPolicy = 'measurement' | 'signer';

/**
 * The policies, in the order of the `seal_key` import's `policy` argument (0, 1; docs/ABI.md §3).
 * The ABI's own table is runtime/abi.ts `SEAL_POLICIES`; this copy is kept equal by test/abi.test.ts.
 */
export const SEALING_POLICIES: readonly SealingPolicy[] = Object.freeze(['measurement', 'signer']);

/** Options of {@link deriveSealingKey}. */
export interface SealingOptions {
  /** For the `signer` policy: the svn to derive for, ≤ the identity's svn (default: the identity's svn). */
  svn?: number;
}

const SALT = utf8Encode('enclave/sealing/v1');

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  return concatBytes(u64be(bytes.length), bytes);
}

/**
 * The bytes that name what a key or a counter table is bound to, without any svn:
 * `"measurement" ‖ 0x00 ‖ measurement (32)`, or `"signer" ‖ 0x00 ‖ signer id (32) ‖ u64be(len) ‖ name`.
 * The sealing key appends `u64be(svn)` under `signer`; the counter namespace (./counters.ts) does not,
 * so an upgrade keeps its predecessor's counters.
 * @throws {AttestationError} `sealing_unavailable` if the policy is `signer` and the identity has no accepted signer.
 * @throws {RangeError} for a malformed measurement or signer id; {@link TypeError} for an unknown policy.
 * @example
 * const binding = sealingBinding(identity, 'signer');
 */
export function sealingBinding(identity: ModuleIdentity, policy: SealingPolicy): Uint8Array {
  if (policy === 'measurement') {
    const m = hexToBytesOrUndefined(identity.measurement);
    if (!m || m.length !== 32) throw new RangeError('identity.measurement: expected 64 hex digits');
    return concatBytes(utf8Encode('measurement\0'), m);
  }
  if (policy === 'signer') {
    if (identity.signer === undefined) throw new AttestationError('sealing_unavailable');
    const s = hexToBytesOrUndefined(identity.signer);
    if (!s || s.length !== 32) throw new RangeError('identity.signer: expected 64 hex digits');
    return concatBytes(utf8Encode('signer\0'), s, lengthPrefixed(utf8Encode(identity.name)));
  }
  throw new TypeError(`policy: expected 'measurement' or 'signer'`);
}

/**
 * Derives a 32-byte sealing key from a platform sealing secret.
 *
 * info = "measurement" ‖ 0x00 ‖ measurement (32 bytes), or
 * info = "signer" ‖ 0x00 ‖ signer id (32 bytes) ‖ u64be(len) ‖ name ‖ u64be(svn); salt = "enclave/sealing/v1".
 * @param secret - the platform's 32-byte sealing secret (one sealing root's, for the software platform).
 * @param identity - the enclave's identity; the `signer` policy needs `identity.signer` (from {@link checkTrust}).
 * @param policy - `'measurement'` or `'signer'`.
 * @throws {AttestationError} `sealing_unavailable` if the policy is `signer` and the identity has no
 *   accepted signer, or the requested svn is above the identity's.
 * @throws {RangeError} for a secret that is not 32 bytes or a bad svn; {@link TypeError} for an unknown policy.
 * @example
 * const key = deriveSealingKey(secret, identity, 'signer');
 */
export function deriveSealingKey(
  secret: Uint8Array,
  identity: ModuleIdentity,
  policy: SealingPolicy,
  options: SealingOptions = {},
): Uint8Array {
  abytes(secret, 'sealing secret', 32);
  let info = sealingBinding(identity, policy);
  if (policy === 'signer') {
    const svn = options.svn ?? identity.svn;
    if (!Number.isSafeInteger(svn) || svn < 0) throw new RangeError('svn: expected an integer ≥ 0');
    if (svn > identity.svn) {
      throw new AttestationError('sealing_unavailable', 'an enclave cannot derive the sealing key of a higher svn than its own');
    }
    info = concatBytes(info, u64be(svn));
  }
  return hkdf(sha256, secret, SALT, info, 32);
}
