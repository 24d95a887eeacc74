/**
 * The attestation layer's view of the one error model (docs/ATTESTATION.md §7): `AttestationError`,
 * its codes and their messages are declared in core/ (core/errors.ts, core/error-codes.ts), below
 * runtime and attest, and re-exported here for attest's files and the `enclave/attest` entry.
 *
 * Callers match on `code`, never on `message`: the codes are stable, the wording is not. Messages
 * say what to do next and never carry key material, report data, nonces or enclave state.
 */
export {
  AttestationError,
  ATTESTATION_ERROR_CODES,
  ATTESTATION_ERROR_MESSAGES,
  isAttestationError,
} from '../core/index.js';
export type { AttestationErrorCode } from '../core/index.js';
