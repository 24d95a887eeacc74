/**
 * The runtime's view of the one error model: the root class, its table of codes and their flags
 * live in core/ (core/errors.ts, core/error-codes.ts), below runtime and attest; the runtime's files
 * import them from here.
 */
export {
  EnclaveError,
  ERROR_TABLE,
  errorFlags,
  ERROR_MESSAGES,
  ENCLAVE_CODES,
  isErrorCode,
} from '../core/index.js';
/** @internal */
export { DISCARDING_CODES, quoteInput } from '../core/index.js';
export type { ErrorCode, ErrorJSON, ErrorFlags } from '../core/index.js';
