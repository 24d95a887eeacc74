/**
 * The compiled module's identity: measured, and under a trust policy its signature and svn floor
 * checked, by attest alone. Kept apart from runtime/module.ts so that only the compile path loads
 * attest/ (`EnclaveModule.compile` imports this file when it runs); a worker thread, which rebuilds
 * a module from its parts, never does.
 */
import { checkTrust, measure, moduleIdentity, type ModuleIdentity, type TrustPolicy } from '../attest/index.js';
import { EnclaveError, isAttestationError } from '../core/index.js';

/**
 * Measures the module and, under a trust policy, checks its signature and svn floor. The identity
 * is built by attest (`moduleIdentity`, `checkTrust`) only, so both sides agree on what it holds.
 */
export function identify(bytes: Uint8Array, trust: TrustPolicy | undefined): ModuleIdentity {
  try {
    return trust !== undefined ? checkTrust(bytes, trust) : moduleIdentity(bytes);
  } catch (err) {
    if (isAttestationError(err, 'untrusted_module')) throw new EnclaveError('untrusted_module', undefined, { cause: err });
    if (isAttestationError(err, 'rollback')) throw new EnclaveError('rollback', undefined, { cause: err });
    if (err instanceof TypeError || err instanceof RangeError || isAttestationError(err, 'invalid_key')) {
      throw new EnclaveError('invalid_options', `The trust policy is not valid: ${(err as Error).message}.`, { cause: err });
    }
    throw new EnclaveError('invalid_module', `The module signature section is not valid: ${(err as Error).message}.`, { cause: err });
  }
}


/**
 * The measurement of module bytes recomputed now (attest's `measure`), lowercase hex, for
 * `EnclaveModule.remeasure`.
 * @throws {AttestationError} `invalid_module`, `malformed_signature` for bytes no longer framed as a
 *   module (they were, when compiled: changed bytes).
 */
export function measurementOf(bytes: Uint8Array): string {
  return Buffer.from(measure(bytes)).toString('hex');
}
