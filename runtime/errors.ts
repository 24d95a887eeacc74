/**
 * The runtime's view of the one error model: the root class and its table live in core/errors.ts
 * (below both runtime and attest); the runtime's files import them from here.
 */
export { EnclaveError, ERROR_MESSAGES, ENCLAVE_CODES, DISCARDING_CODES, isErrorCode, quoteInput } from '../core/index.js';
export type { ErrorCode } from '../core/index.js';
