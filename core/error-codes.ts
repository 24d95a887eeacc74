/**
 * The one table of error codes: every code any layer throws, declared once, with the message a
 * caller sees by default, the class that carries it, and the flags that tell a caller (and the
 * runtime, and the CLI) what the code means for them. Tests walk this table (test/errors.test.ts).
 *
 * Codes are stable: callers match on them, never on a message. Messages may be reworded; each says
 * what happened, then, after a colon, what to do, and reveals nothing of an enclave's insides
 * (docs/ABI.md §4.2, §4.3; docs/ATTESTATION.md §7).
 *
 * Flags (absent means false):
 * - `fromEnclave`: an enclave may put the code in an `err` reply (docs/ABI.md §4.2); only for these
 *   is the enclave's own `detail` passed on.
 * - `discards`: the instance can no longer be trusted and is discarded; the next call gets a fresh one.
 * - `retryable`: a transient condition of the host, not of the request: the same request, unchanged,
 *   may succeed later (with backoff): `overloaded`, and the supervisor's `rate_limited` and `unavailable`. Not `timeout`: in most cases the call itself is
 *   too expensive and fails again, and the discarded instance lost the session's state, so a retry is
 *   the caller's decision for its idempotent ops. Not `trap`, `fuel_exhausted`: they are deterministic.
 * - `usage`: the caller used the API or the CLI wrongly (an option, a flag, a policy, a nonce) and
 *   nothing ran; the CLI exits 2 for these. `invalid_args` is not one: it is an op's contract refusing
 *   the data of a call that was made correctly (the CLI exits 1, as for any failed operation).
 */

/** The classes a code can belong to; each is defined in core/errors.ts. */
export type ErrorClassName = 'EnclaveError' | 'AttestationError' | 'UsageError';

/** One row of {@link ERROR_TABLE}. */
export interface ErrorSpec {
  /** The default message: what happened, a colon, what to do. */
  readonly message: string;
  /** The class an error with this code is built as (by its constructor and by `fromJSON`). */
  readonly class: ErrorClassName;
  readonly fromEnclave?: boolean;
  readonly discards?: boolean;
  readonly retryable?: boolean;
  readonly usage?: boolean;
}

/** The flags of a code, all present. */
export interface ErrorFlags {
  /** An enclave may send this code; its `detail` is passed on. */
  readonly fromEnclave: boolean;
  /** The instance was discarded. */
  readonly discards: boolean;
  /** The same request may succeed later, unchanged. */
  readonly retryable: boolean;
  /** A caller's mistake in how it called (options, flags, policy); the CLI exits 2. */
  readonly usage: boolean;
}

const E = 'EnclaveError';
const A = 'AttestationError';

/**
 * Every code, once. Grouped by who raises it; the class column is what `instanceof` and `name` say.
 * @example
 * ERROR_TABLE.overloaded.retryable; // true
 */
export const ERROR_TABLE = {
  // Sent by an enclave in an `err` reply (docs/ABI.md §4.2).
  bad_request: { class: E, fromEnclave: true, message: 'The enclave could not decode the request or its arguments have the wrong shape: check them against the enclave contract.' },
  unknown_op: { class: E, fromEnclave: true, message: 'No such operation: check the op name against the enclave contract.' },
  denied: { class: E, fromEnclave: true, message: 'The enclave refused the operation: check that this caller may perform it.' },
  state: { class: E, fromEnclave: true, message: 'The operation is not valid in the current state: call the operations it requires first.' },
  limit: { class: E, fromEnclave: true, message: 'A limit inside the enclave was reached: make the request smaller or split it.' },
  internal: { class: E, fromEnclave: true, message: 'The enclave or the runtime failed internally: report it with the op and the module that caused it.' },
  unseal_failed: { class: E, fromEnclave: true, message: 'Sealed data did not open (changed, from another module, or under a revoked or unknown sealing root): restore it from a good copy.' },
  not_found: { class: E, fromEnclave: true, message: 'The enclave has no such key or handle: check the name, or open the key again.' },
  conflict: { class: E, fromEnclave: true, message: 'A concurrent or pending update got there first: read the current state and retry.' },
  decrypt_failed: { class: E, fromEnclave: true, message: 'The ciphertext did not authenticate (changed, or under another key or aad): check the data and the key.' },

  // The verdict on a module's bytes, contract and signer. Raised by core's reader, the runtime's load
  // checks and attest's measurement and trust decision alike; one class, AttestationError, so that
  // attest's callers keep matching it and every layer's callers get the same class for the same code.
  invalid_module: { class: A, message: 'The module is not a valid enclave: rebuild it and check it against docs/ABI.md.' },
  invalid_contract: { class: A, message: 'The module has no valid enclave.contract section: rebuild it with a contract (docs/ABI.md §6).' },
  untrusted_module: { class: A, message: 'The module carries no valid signature from a trusted key: sign it with a trusted key or trust its signer.' },
  // `rollback` is also an enclave's code (docs/ABI.md §4.2): sealed state older than its monotonic counter.
  rollback: { class: A, fromEnclave: true, message: 'Something older than allowed was presented (a module svn below its signer\'s floor, or sealed state older than its counter): deploy a newer build, or restore the latest sealed state.' },

  // Added by the runtime: loading.
  unsupported_abi: { class: E, message: 'The module speaks an ABI version this runtime does not support: rebuild it with the SDK of this runtime (docs/ABI.md).' },
  capability_denied: { class: E, message: 'The module needs a capability that was not granted: pass it in `capabilities` or refuse the module.' },
  memory_limit: { class: E, message: 'The module memory or table has no maximum or one above the policy: declare a smaller maximum or raise the policy limit.' },
  // Added by the runtime: calling.
  invalid_args: { class: E, message: 'The arguments do not match the contract shape for this operation or cannot be encoded: fix them to match the contract.' },
  invalid_options: { class: E, usage: true, message: 'The options are not valid: check them against the documentation of the function called.' },
  too_large: { class: E, message: 'The request or reply exceeds the byte limit of the contract: send less, or raise the limit in the contract.' },
  bad_reply: { class: E, discards: true, message: 'The enclave returned a malformed reply; its instance was discarded: report it to the author of the module.' },
  trap: { class: E, discards: true, message: 'The enclave trapped; its instance was discarded and the next call gets a fresh one: report it to the author of the module.' },
  stack_overflow: { class: E, discards: true, message: 'The enclave exhausted its call stack; its instance was discarded: send a request that needs less recursion.' },
  fuel_exhausted: { class: E, discards: true, message: 'The call used up its fuel (instruction budget); its instance was discarded: raise limits.fuel or fix the loop.' },
  closed: { class: E, message: 'The enclave is closed: load it again to make more calls.' },
  timeout: { class: E, discards: true, message: 'The call did not finish within its deadline; its worker was stopped and the next call gets a fresh instance: raise the deadline or make the call cheaper.' },
  overloaded: { class: E, retryable: true, message: 'The enclave has too much work queued: retry later or with backoff.' },

  // Attestation: module signatures.
  malformed_signature: { class: A, message: 'The module signature section is malformed, misplaced or duplicated: re-sign the unsigned module.' },
  duplicate_signature: { class: A, message: 'The module is already signed with this key: use it as it is, or sign the unsigned module with another key.' },
  // Attestation: keys.
  invalid_key: { class: A, message: 'The key is malformed or not an Ed25519 key: generate one with `enclave keygen`.' },
  key_unavailable: { class: A, message: 'The key file could not be read or written: check the path and its permissions.' },
  key_exists: { class: A, message: 'A key file already exists at that path: choose another path or remove the old key first.' },
  insecure_key_file: { class: A, message: 'The private key file is readable by other users: restrict it with `chmod 600` and rotate the key if it leaked.' },
  // Attestation: evidence issuance.
  invalid_nonce: { class: A, usage: true, message: 'The nonce is missing or not 8 to 64 bytes: pass the fresh nonce of 8 to 64 bytes the relying party chose.' },
  invalid_report_data: { class: A, message: 'The report data is not 8 to 64 bytes: pass 8 to 64 bytes.' },
  invalid_evidence_request: { class: A, message: 'The evidence request is incomplete or malformed: see docs/ATTESTATION.md.' },
  sealing_unavailable: { class: A, message: 'No signer-bound sealing key for a module without an accepted signer: sign the module or use the measurement policy.' },
  platform_unavailable: { class: A, message: 'The platform key store could not be opened: check ENCLAVE_PLATFORM_DIR and its permissions.' },
  // Attestation: the software platform's sealing roots and counters (docs/ATTESTATION.md §6).
  sealing_key_revoked: { class: A, message: 'The sealing root key id was revoked and its secret destroyed: what it sealed cannot be unsealed; restore from a copy sealed under an active root.' },
  sealing_key_unknown: { class: A, message: 'The platform has no sealing root with that key id: check the platform directory, or the data came from another platform.' },
  counter_limit: { class: A, message: 'A monotonic counter limit was reached (4096 counters per enclave identity, or a value of 2^64-1): reuse counter ids.' },
  // Attestation: evidence verification (the reason codes of docs/ATTESTATION.md §5).
  invalid_policy: { class: A, usage: true, message: 'The verification policy is malformed: see the policy schema in docs/ATTESTATION.md.' },
  malformed: { class: A, message: 'The evidence is not a well-formed enclave attestation token: request fresh evidence from the enclave.' },
  bad_signature: { class: A, message: 'The evidence signature does not verify with the trusted platform key: check the platform key, or treat the evidence as forged.' },
  nonce_mismatch: { class: A, message: 'The evidence was not issued for this nonce: request fresh evidence with a new nonce.' },
  expired: { class: A, message: 'The evidence is too old: request fresh evidence.' },
  not_yet_valid: { class: A, message: 'The evidence is dated in the future: check both clocks.' },
  platform_not_allowed: { class: A, message: 'The evidence comes from a platform the policy does not accept: add the platform to the policy or refuse the enclave.' },
  measurement_not_allowed: { class: A, message: 'The enclave measurement is not in the policy allow-list: add it to the policy if you trust this build.' },
  signer_not_allowed: { class: A, message: 'The enclave signer is not in the policy allow-list: add its key to the policy if you trust it.' },
  svn_too_low: { class: A, message: 'The enclave security version (svn) is below the policy minimum: deploy a newer build.' },
  debug_not_allowed: { class: A, message: 'The enclave ran with debugging or tracing that can see inside it, which the policy forbids: run it without debugging.' },
  report_data_mismatch: { class: A, message: 'The evidence report data differs from the expected value: request fresh evidence bound to the expected data.' },

  // The build (host/build-modules.ts, `enclave build`): the module did not compile, or the built
  // module failed its load check (a contract op without a handler).
  build_failed: { class: E, message: 'The enclave module could not be built: fix what the compiler or the load check reported.' },

  // The host supervisor (host/supervisor/): refusals at its boundary, before anything reaches an enclave.
  unauthorized: { class: E, message: 'The call carries no caller identity the access policy knows: call with the identity your service authenticated.' },
  rate_limited: { class: E, retryable: true, message: "The caller exceeded its rate limit in the access policy: retry after a pause, with backoff." },
  quota_exceeded: { class: E, message: "The caller used up its call quota in the access policy: wait for the quota's window to pass, or raise the quota." },
  unavailable: { class: E, retryable: true, message: 'The enclave is not serving: it is starting, draining, stopped or failed, or its circuit breaker is open: retry later, or check the host events.' },
  invalid_access_policy: { class: E, usage: true, message: 'The access policy is not valid: check it against docs/access-policy.schema.json.' },

  // The sealed-blob store (host/store/): a file on disk that is not a blob the store wrote.
  store_corrupt: { class: E, message: 'A stored blob is damaged, truncated, or not one this store wrote (or a link or directory was planted in its place): restore it from a backup, or remove it by hand.' },

  // The CLI's own: a command line it cannot act on (host/cli).
  usage: { class: 'UsageError', usage: true, message: 'The command line is not valid: see `enclave help <command>`.' },
} as const satisfies Record<string, ErrorSpec>;

/** A stable error code: every code of every layer. */
export type ErrorCode = keyof typeof ERROR_TABLE;

/** The codes whose class is `C`. */
export type CodeOf<C extends ErrorClassName> = {
  [K in ErrorCode]: (typeof ERROR_TABLE)[K]['class'] extends C ? K : never;
}[ErrorCode];

/** A code an {@link AttestationError} carries. */
export type AttestationErrorCode = CodeOf<'AttestationError'>;

/** Every code, in table order. */
export const ERROR_CODES: readonly ErrorCode[] = Object.freeze(Object.keys(ERROR_TABLE) as ErrorCode[]);

/**
 * True for a string that is one of the stable codes (and not an inherited name such as `toString`).
 * @example
 * isErrorCode('overloaded'); // true
 */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_TABLE, value);
}

const FLAGS = new Map<ErrorCode, ErrorFlags>(
  ERROR_CODES.map((code) => {
    const spec: ErrorSpec = ERROR_TABLE[code];
    return [
      code,
      Object.freeze({
        fromEnclave: spec.fromEnclave === true,
        discards: spec.discards === true,
        retryable: spec.retryable === true,
        usage: spec.usage === true,
      }),
    ];
  }),
);

/**
 * The flags of a code (see the table's documentation for what each means).
 * @throws {TypeError} for a string that is not a code.
 * @example
 * if (errorFlags(err.code).retryable) setTimeout(retry, backoff);
 */
export function errorFlags(code: ErrorCode): ErrorFlags {
  const flags = FLAGS.get(code);
  if (flags === undefined) throw new TypeError(`not an error code: ${JSON.stringify(String(code))}`);
  return flags;
}

const codesWith = (flag: keyof ErrorFlags): readonly ErrorCode[] => ERROR_CODES.filter((c) => FLAGS.get(c)![flag]);

// The names the code had before the one table, derived from it. Kept so callers keep compiling.

/**
 * Codes an enclave may put in an `err` reply (docs/ABI.md §4.2): the codes flagged `fromEnclave`.
 * @example
 * ENCLAVE_CODES.includes('denied'); // true
 */
export const ENCLAVE_CODES: readonly ErrorCode[] = Object.freeze(codesWith('fromEnclave'));

/**
 * @internal Codes that discard the instance: the codes flagged `discards`. Prefer `err.flags.discards`.
 */
export const DISCARDING_CODES: ReadonlySet<ErrorCode> = new Set(codesWith('discards'));

/**
 * Every code and its default message.
 * @deprecated Read `ERROR_TABLE[code].message`, or `new EnclaveError(code).message`.
 */
export const ERROR_MESSAGES: Readonly<Record<ErrorCode, string>> = Object.freeze(
  Object.fromEntries(ERROR_CODES.map((c) => [c, ERROR_TABLE[c].message])) as Record<ErrorCode, string>,
);

/**
 * Every code an `AttestationError` carries, with its default message.
 * @deprecated Read `ERROR_TABLE[code].message` for a code of {@link ATTESTATION_ERROR_CODES}.
 */
export const ATTESTATION_ERROR_MESSAGES: Readonly<Record<AttestationErrorCode, string>> = Object.freeze(
  Object.fromEntries(ERROR_CODES.filter((c) => ERROR_TABLE[c].class === A).map((c) => [c, ERROR_TABLE[c].message])) as Record<
    AttestationErrorCode,
    string
  >,
);

/**
 * Every code an `AttestationError` carries, in table order.
 * @example
 * ATTESTATION_ERROR_CODES.includes('rollback'); // true
 */
export const ATTESTATION_ERROR_CODES: readonly AttestationErrorCode[] = Object.freeze(
  Object.keys(ATTESTATION_ERROR_MESSAGES) as AttestationErrorCode[],
);
