// What a handler returns: a value or a typed error (docs/ABI.md §4.2). Handlers never build the
// `{ok}` / `{err}` envelope themselves; the dispatcher does.

import { Value } from "./value";

/** The enclave error codes of ABI §4.2 (the only ones an enclave may send). */
export const enum ErrorCode {
  /** The args do not have the expected shape (decoding errors are reported by the SDK). */
  BadRequest = 0,
  /** No handler for the op (reported by the SDK). */
  UnknownOp = 1,
  /** A policy inside the enclave refuses the operation. */
  Denied = 2,
  /** The operation is not valid in the current state. */
  State = 3,
  /** A limit inside the enclave was reached. */
  Limit = 4,
  /** The enclave failed by its own fault. */
  Internal = 5,
  /** A sealed blob did not open (changed byte, wrong module, revoked or unknown root, svn above own). */
  UnsealFailed = 6,
  /** Sealed state older than its counter: a stale copy was presented. */
  Rollback = 7,
  /** No such key or handle. */
  NotFound = 8,
  /** A concurrent or pending update. */
  Conflict = 9,
  /** A ciphertext did not authenticate. */
  DecryptFailed = 10,
}

/** The wire string of `code`. */
export function errorCodeName(code: ErrorCode): string {
  switch (code) {
    case ErrorCode.BadRequest:
      return "bad_request";
    case ErrorCode.UnknownOp:
      return "unknown_op";
    case ErrorCode.Denied:
      return "denied";
    case ErrorCode.State:
      return "state";
    case ErrorCode.Limit:
      return "limit";
    case ErrorCode.UnsealFailed:
      return "unseal_failed";
    case ErrorCode.Rollback:
      return "rollback";
    case ErrorCode.NotFound:
      return "not_found";
    case ErrorCode.Conflict:
      return "conflict";
    case ErrorCode.DecryptFailed:
      return "decrypt_failed";
  }
  return "internal";
}

/**
 * A handler's result.
 *
 * @example
 * ```ts
 * function get(args: Value): Reply {
 *   if (!ready) return Reply.err(ErrorCode.State, "call init first");
 *   return Reply.ok(Value.int(count));
 * }
 * ```
 */
export class Reply {
  /** @internal use `Reply.ok` / `Reply.err` */
  constructor(
    public readonly isOk: bool,
    public readonly value: Value,
    public readonly code: ErrorCode,
    public readonly message: string,
  ) {}

  /** Success with `value` (`nil` by default). @example `return Reply.ok(Value.int(n));` */
  static ok(value: Value = Value.nil()): Reply {
    // A Reply is immutable, so the common `Reply.ok()` shares one instead of allocating.
    if (value === Value.nil()) return OK_NIL;
    return new Reply(true, value, ErrorCode.Internal, "");
  }

  /**
   * Failure with `code` and an optional `message` (at most 256 UTF-8 bytes are sent; never put
   * secrets in it: the caller sees it as the error's detail).
   * @example `return Reply.err(ErrorCode.Denied, "key is not exportable");`
   */
  static err(code: ErrorCode, message: string = ""): Reply {
    return new Reply(false, Value.nil(), code, message);
  }

  /** Shorthand for `Reply.err(ErrorCode.BadRequest, message)`. @example `return Reply.badRequest("by must be an int");` */
  static badRequest(message: string = ""): Reply {
    return new Reply(false, Value.nil(), ErrorCode.BadRequest, message);
  }
}

const OK_NIL = new Reply(true, Value.nil(), ErrorCode.Internal, "");
