/**
 * The one error class of the attestation layer (docs/ATTESTATION.md §7).
 *
 * Callers match on `code`, never on `message`: the codes are stable, the wording is not. Messages
 * say what to do next and never carry key material, report data, nonces or enclave state.
 */

/** Every code an {@link AttestationError} can carry, with its default message. */
export const ATTESTATION_ERROR_MESSAGES = {
  // Modules and their contract.
  invalid_module: 'the bytes are not a well-formed WebAssembly module; rebuild it',
  invalid_contract: 'the module has no valid enclave.contract section; rebuild it with a contract',
  // Module signatures.
  malformed_signature:
    'the module signature section is malformed, misplaced or duplicated; re-sign the unsigned module',
  duplicate_signature: 'the module is already signed with this key',
  untrusted_module:
    'the module carries no valid signature from a trusted key; sign it with a trusted key or trust its signer',
  rollback:
    'the module security version (svn) is below the minimum allowed for its signer; deploy a newer build',
  // Keys.
  invalid_key: 'the key is malformed or not an Ed25519 key; generate one with `enclave keygen`',
  key_unavailable: 'the key file could not be read or written; check the path and its permissions',
  key_exists: 'a key file already exists at that path; choose another path or remove the old key first',
  insecure_key_file:
    'the private key file is readable by other users; restrict it with `chmod 600` and rotate the key if it leaked',
  // Evidence issuance.
  invalid_nonce: 'a nonce of 8 to 64 bytes chosen by the relying party is required',
  invalid_report_data: 'report data must be 8 to 64 bytes',
  invalid_evidence_request: 'the evidence request is incomplete or malformed; see docs/ATTESTATION.md',
  sealing_unavailable:
    'no signer-bound sealing key for a module without an accepted signer; sign the module or use the measurement policy',
  platform_unavailable:
    'the platform key store could not be opened; check ENCLAVE_PLATFORM_DIR and its permissions',
  // Evidence verification (the reason codes of docs/ATTESTATION.md §5).
  invalid_policy: 'the verification policy is malformed; see the policy schema in docs/ATTESTATION.md',
  malformed: 'the evidence is not a well-formed enclave attestation token',
  bad_signature: 'the evidence signature does not verify with the trusted platform key',
  nonce_mismatch: 'the evidence was not issued for this nonce; request fresh evidence with a new nonce',
  expired: 'the evidence is too old; request fresh evidence',
  not_yet_valid: 'the evidence is dated in the future; check both clocks',
  platform_not_allowed: 'the evidence comes from a platform the policy does not accept',
  measurement_not_allowed: 'the enclave measurement is not in the policy allow-list',
  signer_not_allowed: 'the enclave signer is not in the policy allow-list',
  svn_too_low: 'the enclave security version (svn) is below the policy minimum',
  debug_not_allowed: 'the enclave ran with debugging or tracing that can see inside it, which the policy forbids',
  report_data_mismatch: 'the evidence report data differs from the expected value',
} as const;

/** A stable error code of the attestation layer. */
export type AttestationErrorCode = keyof typeof ATTESTATION_ERROR_MESSAGES;

/** All codes, for tables and exhaustive tests. */
export const ATTESTATION_ERROR_CODES = Object.freeze(
  Object.keys(ATTESTATION_ERROR_MESSAGES) as AttestationErrorCode[],
);

/**
 * The error thrown by every function of `attest/` for a refusal or a failure the caller can act on.
 * Programming mistakes (a wrong argument type) are `TypeError`/`RangeError` instead.
 *
 * @example
 * try {
 *   checkTrust(bytes, { trusted });
 * } catch (err) {
 *   if (err instanceof AttestationError && err.code === 'rollback') console.error(err.message);
 *   else throw err;
 * }
 */
export class AttestationError extends Error {
  override readonly name = 'AttestationError';
  /** Stable machine-readable code; see {@link ATTESTATION_ERROR_MESSAGES}. */
  readonly code: AttestationErrorCode;

  /**
   * @param code - the stable code.
   * @param message - overrides the default message; never put secrets in it.
   * @param options - `cause` keeps the underlying error for debugging (not shown to callers).
   */
  constructor(code: AttestationErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ATTESTATION_ERROR_MESSAGES[code], options);
    this.code = code;
  }

  /** The `{code, message}` form used to carry the error across a worker boundary. */
  toJSON(): { name: string; code: AttestationErrorCode; message: string } {
    return { name: this.name, code: this.code, message: this.message };
  }
}

/**
 * Tells whether `err` is an {@link AttestationError}, optionally with a given code.
 * @example
 * if (isAttestationError(err, 'untrusted_module')) refuse();
 */
export function isAttestationError(err: unknown, code?: AttestationErrorCode): err is AttestationError {
  return err instanceof AttestationError && (code === undefined || err.code === code);
}
