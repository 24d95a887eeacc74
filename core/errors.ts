/**
 * The one error class every failure of the runtime surfaces as, and its stable codes.
 *
 * Callers match on `code`, never on `message` (docs/ABI.md §4.2, §4.3). Messages say what to do
 * and reveal nothing of an enclave's insides: what an enclave said about its own failure travels
 * separately in `detail`, and only for the codes the enclave itself chose.
 */

/** Codes an enclave may put in an `err` reply (docs/ABI.md §4.2). */
export const ENCLAVE_CODES = ['bad_request', 'unknown_op', 'denied', 'state', 'limit', 'internal'] as const;

/** Every code and the message a caller sees by default. Declared once; tests walk this table. */
export const ERROR_MESSAGES = {
  // Sent by the enclave.
  bad_request: 'The enclave could not decode the request or its arguments have the wrong shape.',
  unknown_op: 'No such operation: check the op name against the enclave contract.',
  denied: 'The enclave refused the operation.',
  state: 'The operation is not valid in the current state: call the operations it requires first.',
  limit: 'A limit inside the enclave was reached.',
  internal: 'The enclave failed internally.',
  // Added by the host.
  invalid_module: 'The module is not a valid enclave: check it against docs/ABI.md.',
  unsupported_abi: 'The module speaks an ABI version this runtime does not support.',
  capability_denied: 'The module needs a capability that was not granted: pass it in `capabilities` or refuse the module.',
  memory_limit: 'The module memory has no maximum or a maximum above the policy.',
  invalid_contract: 'The module has no valid enclave.contract section.',
  untrusted_module: 'The module carries no valid signature from a trusted key: sign it with a trusted key or trust its signer.',
  rollback: 'The module security version (svn) is below the minimum allowed for its signer: deploy a newer build.',
  invalid_args: 'The arguments do not match the contract shape for this operation or cannot be encoded.',
  invalid_options: 'The options are not valid.',
  too_large: 'The request or reply exceeds the byte limit of the contract.',
  bad_reply: 'The enclave returned a malformed reply.',
  trap: 'The enclave trapped; its instance was discarded and the next call gets a fresh one.',
  stack_overflow: 'The enclave exhausted its call stack; its instance was discarded.',
  fuel_exhausted: 'The call used up its fuel (instruction budget); its instance was discarded. Raise limits.fuel or fix the loop.',
  closed: 'The enclave is closed.',
  timeout: 'The call did not finish within its deadline; its worker was stopped and the next call gets a fresh instance.',
  overloaded: 'The enclave has too much work queued: retry later or with backoff.',
} as const;

/** A stable error code. */
export type ErrorCode = keyof typeof ERROR_MESSAGES;

/** Codes that mean the instance can no longer be trusted and must be discarded. */
export const DISCARDING_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'trap',
  'stack_overflow',
  'fuel_exhausted',
  'bad_reply',
  'timeout',
]);

/**
 * The error every runtime and host operation throws.
 *
 * @example
 * try {
 *   await enclave.call('incr', { by: -1 });
 * } catch (err) {
 *   if (err instanceof EnclaveError && err.code === 'invalid_args') { ... }
 * }
 */
export class EnclaveError extends Error {
  override readonly name = 'EnclaveError';
  /** Stable code; match on this. */
  readonly code: ErrorCode;
  /** What the enclave said about its own failure, for enclave codes only; may be absent. */
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message?: string, options?: { detail?: string; cause?: unknown }) {
    super(message ?? ERROR_MESSAGES[code], options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options?.detail;
  }

  /** The form an error takes to cross a thread or a process (`{code, message}`). */
  toJSON(): { code: ErrorCode; message: string; detail?: string } {
    return this.detail === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, detail: this.detail };
  }

  /** Rebuilds an error that crossed a thread; an unknown code becomes `internal`. */
  static fromJSON(value: { code?: unknown; message?: unknown; detail?: unknown }): EnclaveError {
    const code = isErrorCode(value.code) ? value.code : 'internal';
    const message = typeof value.message === 'string' ? value.message : undefined;
    const detail = typeof value.detail === 'string' ? value.detail : undefined;
    return new EnclaveError(code, message, detail === undefined ? undefined : { detail });
  }
}

/** True for a string that is one of the stable codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_MESSAGES, value);
}

/** Longest piece of caller input a message repeats. */
const MAX_QUOTED = 64;

/**
 * Input from outside (a caller's op name or map key, a name read from a module or its contract) as
 * it may appear in a message: JSON-quoted, so control characters cannot forge log lines, cut to 64 characters, so a message stays small whatever was
 * sent, and never by calling the value's own `toString`, which may throw.
 * @internal
 */
export function quoteInput(value: unknown): string {
  if (typeof value !== 'string') return `(a ${value === null ? 'null' : typeof value}, not a string)`;
  const quoted = value.length > MAX_QUOTED ? `${JSON.stringify(value.slice(0, MAX_QUOTED))}...` : JSON.stringify(value);
  // JSON.stringify escapes C0 only: DEL, C1, bidi and other format characters as \uXXXX too (host/cli/_escape.ts).
  return quoted.replace(/[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Cn}]/gu, (ch) =>
    Array.from({ length: ch.length }, (_, i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}
