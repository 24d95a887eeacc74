/**
 * The one error root of every layer, and the classes that extend it.
 *
 * Callers match on `code`, never on `message` (docs/ABI.md §4.2, §4.3). Every code is declared once,
 * in core/error-codes.ts, with its default message, its class and its flags. Messages say what to do
 * and reveal nothing of an enclave's insides: what an enclave said about its own failure travels
 * separately in `detail`, and only for the codes an enclave may send.
 *
 * All the classes live here, below runtime and attest, so that a code always builds as its own class
 * wherever it is built: `new EnclaveError('rollback')` in the runtime is an `AttestationError`, and an
 * error rebuilt from `{code, message}` on the far side of a worker (`fromJSON`) is the class it was,
 * without the runtime's worker importing attest/. A registry filled by each layer instead would
 * depend on which layers happen to be loaded.
 *
 * `instanceof` works across two copies of the package (two versions in one dependency tree, or the
 * sources beside dist/): each class marks its prototype with a `Symbol.for` key and answers
 * `instanceof` from that mark, not from the prototype chain (undici `lib/core/errors.js`).
 */
import { ERROR_TABLE, errorFlags, isErrorCode, type AttestationErrorCode, type ErrorClassName, type ErrorCode, type ErrorFlags } from './error-codes.js';

const kEnclaveError = Symbol.for('enclave.error');
const kAttestationError = Symbol.for('enclave.error.attestation');
const kWasmFormatError = Symbol.for('enclave.error.wasm_format');
const kUsageError = Symbol.for('enclave.error.usage');

/** Reads a mark without trusting the value: a missing one or a throwing getter means "no". */
function marked(value: unknown, mark: symbol): boolean {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  try {
    return (value as Record<symbol, unknown>)[mark] === true;
  } catch {
    return false;
  }
}

/** What every constructor takes besides the code and the message. */
export interface EnclaveErrorOptions {
  /** What an enclave said about its own failure (enclave codes only); never put secrets in it. */
  detail?: string | undefined;
  /** The underlying error, for debugging; not shown to callers. */
  cause?: unknown;
}

/** The form an error takes to cross a thread or a process. */
export interface ErrorJSON {
  name: string;
  code: ErrorCode;
  message: string;
  detail?: string;
}

/** The message of a new error: `message`, or the code's default; refuses a code outside the table first. */
function messageFor(code: ErrorCode, message: string | undefined): string {
  if (!isErrorCode(code)) throw new TypeError(`not an error code: ${JSON.stringify(String(code))}`);
  return message ?? ERROR_TABLE[code].message;
}

/**
 * What `fromJSON` keeps of a message and of a detail from another thread or process: far above what
 * the runtime sends (a worker's whole error fits in 4096 bytes, an enclave's detail in 256), small
 * enough that a hostile peer cannot make an error hold, print or log megabytes.
 */
const MAX_MESSAGE = 4096;
const MAX_DETAIL = 1024;

/** `text` cut to `max` UTF-16 units at most, never between the halves of a surrogate pair, `…` marking a cut. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = max - 1;
  const high = text.charCodeAt(end - 1);
  return `${text.slice(0, high >= 0xd800 && high <= 0xdbff ? end - 1 : end)}…`;
}

/** The classes of this file: only they are swapped for the class that carries a code, and answer `instanceof` by mark. */
const MARKS = new Map<unknown, symbol>();

/**
 * The root of every error the package throws for a refusal or a failure a caller can act on.
 * Programming mistakes (a wrong argument type to an attest function) are `TypeError`/`RangeError`.
 *
 * Constructing it with a code that belongs to a subclass builds that subclass.
 *
 * @example
 * try {
 *   await enclave.call('incr', { by: -1 });
 * } catch (err) {
 *   if (err instanceof EnclaveError && err.code === 'invalid_args') { ... }
 *   if (err instanceof EnclaveError && err.flags.retryable) { ... }
 * }
 */
export class EnclaveError extends Error {
  declare readonly name: string;
  /** Stable code; match on this. */
  readonly code: ErrorCode;
  /** What the enclave said about its own failure, for enclave codes only; may be absent. */
  readonly detail: string | undefined;

  /**
   * @param code - the stable code.
   * @param message - overrides the default message of the code; never put secrets in it.
   * @throws {TypeError} if `code` is not a code of the table.
   */
  constructor(code: ErrorCode, message?: string, options?: EnclaveErrorOptions) {
    super(messageFor(code, message), options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    // Only an enclave's own codes carry what it said: an error of a host code never shows text an
    // enclave chose, however it was built (docs/ABI.md §4.2).
    const detail = options?.detail;
    this.detail = typeof detail === 'string' && errorFlags(code).fromEnclave ? detail : undefined;
    // A code is carried by one of our classes: built through another, it becomes its own (see the
    // file header). A class that extends ours keeps its own class: swapping it would drop its methods
    // and put its fields on an object of another class.
    if (MARKS.has(new.target) && !carries(this, code)) return build(code, message, options);
  }

  /** The flags of this error's code (discards, retryable, usage, fromEnclave). */
  get flags(): ErrorFlags {
    return errorFlags(this.code);
  }

  /** The `{name, code, message, detail?}` form an error takes to cross a thread or a process. */
  toJSON(): ErrorJSON {
    const json: ErrorJSON = { name: this.name, code: this.code, message: this.message };
    if (this.detail !== undefined) json.detail = this.detail;
    return json;
  }

  /**
   * Rebuilds an error that crossed a thread or a process, as the class its code belongs to (or the
   * subclass its `name` gives, if that class carries the code). An unknown or missing code becomes
   * `internal`; a missing message, the code's default. Never throws, whatever `value` is (it may
   * come from a buggy or hostile worker or peer): each field is read once, a throwing getter or
   * proxy reads as nothing, a message is kept to 4096 UTF-16 units and a detail to 1024, and a
   * detail only for a code an enclave may send.
   * @example
   * const err = EnclaveError.fromJSON(JSON.parse(line)); // err instanceof AttestationError for 'rollback'
   */
  static fromJSON(value: unknown): EnclaveError {
    let fields: { name?: unknown; code?: unknown; message?: unknown; detail?: unknown } = {};
    try {
      if (typeof value === 'object' && value !== null) {
        const { name, code, message, detail } = value as typeof fields;
        fields = { name, code, message, detail };
      }
    } catch {
      fields = {};
    }
    const code: ErrorCode = isErrorCode(fields.code) ? fields.code : 'internal';
    const message = typeof fields.message === 'string' ? cut(fields.message, MAX_MESSAGE) : undefined;
    const detail = typeof fields.detail === 'string' ? cut(fields.detail, MAX_DETAIL) : undefined;
    const options = detail === undefined ? undefined : { detail };
    if (fields.name === 'WasmFormatError' && code === 'invalid_module') return new WasmFormatError(message, options);
    return build(code, message, options);
  }

  /**
   * Our classes answer from their mark, so an error of another copy of the package is one; a class
   * that extends ours answers by its prototype chain (this static is inherited: answering from
   * the root's mark would make every EnclaveError an instance of it).
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    const mark = MARKS.get(this);
    return mark === undefined ? Function.prototype[Symbol.hasInstance].call(this, value) : marked(value, mark);
  }
}

/**
 * The error of the attestation layer: a module's verdict (its bytes, contract, signer and svn), keys,
 * evidence and its verification (docs/ATTESTATION.md §7). An {@link EnclaveError}.
 *
 * @example
 * try {
 *   checkTrust(bytes, { trusted });
 * } catch (err) {
 *   if (err instanceof AttestationError && err.code === 'rollback') console.error(err.message);
 *   else throw err;
 * }
 */
export class AttestationError extends EnclaveError {
  declare readonly code: AttestationErrorCode;

  /**
   * @param code - the stable code.
   * @param message - overrides the default message; never put secrets in it.
   * @param options - `cause` keeps the underlying error for debugging (not shown to callers).
   * @throws {TypeError} if `code` is not a code of the table.
   */
  constructor(code: AttestationErrorCode, message?: string, options?: EnclaveErrorOptions) {
    super(code, message, options);
  }
}

/**
 * Bytes that are not a well-framed WebAssembly module, from the framing reader (core/wasm-sections.ts).
 * Code `invalid_module`; an {@link AttestationError}, the class of that code.
 * @example
 * try { listSections(bytes); } catch (err) { if (err instanceof WasmFormatError) refuse(err.message); }
 */
export class WasmFormatError extends AttestationError {
  declare readonly code: 'invalid_module';

  /** @param message - what is wrong with the framing. */
  constructor(message?: string, options?: EnclaveErrorOptions) {
    super('invalid_module', message, options);
  }
}

/**
 * A command line the CLI cannot act on: a file it cannot read, a flag that is not a number, two
 * inputs where one is allowed. Code `usage`; the CLI exits 2.
 * @example
 * if (!Number.isSafeInteger(n)) throw new UsageError('--min-svn must be a whole number ≥ 0.');
 */
export class UsageError extends EnclaveError {
  declare readonly code: 'usage';

  /** @param message - what is wrong and how to fix it; may quote the user's own input. */
  constructor(message?: string, options?: EnclaveErrorOptions) {
    super('usage', message, options);
  }
}

// The marks `instanceof` reads, and the names: on the prototypes, so they are inherited, never
// enumerated, and never set by a subclass's field initializer on an object its constructor did not build.
for (const [cls, mark, name] of [
  [EnclaveError, kEnclaveError, 'EnclaveError'],
  [AttestationError, kAttestationError, 'AttestationError'],
  [WasmFormatError, kWasmFormatError, 'WasmFormatError'],
  [UsageError, kUsageError, 'UsageError'],
] as const) {
  Object.defineProperty(cls.prototype, mark, { value: true });
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
  MARKS.set(cls, mark);
}

/** The most derived of our classes `err` is, read from its marks. */
function classOf(err: EnclaveError): ErrorClassName | 'WasmFormatError' {
  if (marked(err, kUsageError)) return 'UsageError';
  if (marked(err, kWasmFormatError)) return 'WasmFormatError';
  if (marked(err, kAttestationError)) return 'AttestationError';
  return 'EnclaveError';
}

/** Whether `err`'s class carries `code`: the code's own class, or WasmFormatError for `invalid_module`. */
function carries(err: EnclaveError, code: ErrorCode): boolean {
  const own = ERROR_TABLE[code].class;
  const cls = classOf(err);
  return cls === own || (cls === 'WasmFormatError' && code === 'invalid_module');
}

/** Builds an error of the class that carries `code`. */
function build(code: ErrorCode, message: string | undefined, options: EnclaveErrorOptions | undefined): EnclaveError {
  switch (ERROR_TABLE[code].class) {
    case 'AttestationError':
      return new AttestationError(code as AttestationErrorCode, message, options);
    case 'UsageError':
      return new UsageError(message, options);
    default:
      return new EnclaveError(code, message, options);
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
