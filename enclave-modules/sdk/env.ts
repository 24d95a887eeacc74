// The capability imports of docs/ABI.md §3, with typed wrappers.
//
// AssemblyScript emits an import only when a function that uses it is compiled in, so a module that
// never calls `randomBytes` carries no `enclave.random` import and needs no `random` capability.
// The module name is always `enclave` (ABI §3): nothing here may use `env` (no `trace`, no
// `Math.random`, whose seed is an `env.seed` import).
//
// Built as a component (`enclave build --component`, asc `--use ENCLAVE_COMPONENT=1`), each wrapper
// calls the world's import instead (_canonical.ts, wit/enclave.wit), with the same results, and
// `abort` traps: nothing is imported from `enclave`.

import {
  canonicalFill,
  canonicalNow,
  canonicalLog,
  canonicalSealKey,
  canonicalSealKeyAt,
  canonicalCounterRead,
  canonicalCounterAdvance,
  canonicalReport,
} from "./_canonical";

// Whether this is a component build; `isDefined` is false under plain asc and for a core module.
// @ts-ignore: a compile-time constant of the build, undeclared for TypeScript
const COMPONENT: bool = isDefined(ENCLAVE_COMPONENT);

// @ts-ignore: decorator
@external("enclave", "abort")
declare function _abort(msgPtr: usize, msgLen: i32): void;

// @ts-ignore: decorator
@external("enclave", "random")
declare function _random(ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("enclave", "now")
declare function _now(): i64;

// @ts-ignore: decorator
@external("enclave", "log")
declare function _log(level: i32, ptr: usize, len: i32): void;

// @ts-ignore: decorator
@external("enclave", "seal_key")
declare function _seal_key(policy: i32, outPtr: usize): i32;

// @ts-ignore: decorator
@external("enclave", "seal_key_at")
declare function _seal_key_at(policy: i32, keyId: i32, svn: i32, outPtr: usize): i32;

// @ts-ignore: decorator
@external("enclave", "counter_read")
declare function _counter_read(policy: i32, id: i64, outPtr: usize): i32;

// @ts-ignore: decorator
@external("enclave", "counter_advance")
declare function _counter_advance(policy: i32, id: i64, expected: i64, tagPtr: usize): i32;

// @ts-ignore: decorator
@external("enclave", "report")
declare function _report(dataPtr: usize, dataLen: i32, outPtr: usize, outCap: i32): i32;

/** The host reads at most this many bytes of an abort message (ABI §3). */
const ABORT_MAX: i32 = 256;
/** The host reads at most this many bytes of a log line (ABI §3). */
const LOG_MAX: i32 = 1024;
/** The most bytes one `random` import call may fill (ABI §3). */
const RANDOM_CHUNK: i32 = 65536;

// A static buffer for abort messages: abort can be reached from an allocation failure, so building
// the message must not allocate.
const abortBuf: usize = memory.data(ABORT_MAX);

// @ts-ignore: decorator
@inline
function putAscii(s: string | null, at: i32): i32 {
  if (changetype<usize>(s) == 0) return at; // identity, not String.__eq
  let n = changetype<string>(s).length; // not null (checked above): a cast, no run-time check
  let p = changetype<usize>(s);
  for (let i = 0; i < n && at < ABORT_MAX; i++) {
    let c = <u32>load<u16>(p + (<usize>i << 1));
    // Keep the message printable ASCII without a UTF-8 encoder (which would allocate).
    store<u8>(abortBuf + <usize>at, c >= 0x20 && c < 0x7f ? <u8>c : 0x3f);
    at++;
  }
  return at;
}

function putU32(v: u32, at: i32): i32 {
  let digits: i32 = 1;
  for (let t = v; t >= 10; t /= 10) digits++;
  if (at + digits > ABORT_MAX) return at;
  for (let i = digits - 1; i >= 0; i--) {
    store<u8>(abortBuf + <usize>(at + i), <u8>(0x30 + v % 10));
    v /= 10;
  }
  return at + digits;
}

/**
 * AssemblyScript's `abort` replacement (wired by `enclave build` with
 * `--use abort=~lib/enclave/enclave-modules/sdk/env/enclave_abort`, the name of this function where asc
 * finds the package: node_modules/enclave).
 * Reports `message at file:line:column` (printable ASCII, at most 256 bytes) through the `enclave.abort`
 * import, which never returns: the host fails the call with `trap` and discards the instance.
 * Enclave code should not call it directly; return `Reply.err(...)` for expected failures.
 *
 * @example
 * ```ts
 * // reached through `assert(x)`, an out-of-range array index, or an allocation failure
 * enclave_abort("invariant broken", "counter/index.ts", 12, 3);
 * ```
 */
export function enclave_abort(
  message: string | null = null,
  fileName: string | null = null,
  line: u32 = 0,
  column: u32 = 0,
): void {
  if (COMPONENT) {
    // The world has no abort: the trap is the report (the host fails the call with `trap`).
    unreachable();
  } else {
    let n = putAscii(message, 0);
    if (changetype<usize>(fileName) != 0) {
      n = putAscii(" at ", n);
      n = putAscii(fileName, n);
      n = putAscii(":", n);
      n = putU32(line, n);
      n = putAscii(":", n);
      n = putU32(column, n);
    }
    _abort(abortBuf, n);
    unreachable();
  }
}

/**
 * Fills `out` with bytes from the host's CSPRNG (capability `random`). Returns `false` if the host
 * refused (it cannot for an in-bounds buffer, so `false` means a bug).
 *
 * @example
 * ```ts
 * const nonce = new Uint8Array(12);
 * if (!fillRandom(nonce)) return Reply.err(ErrorCode.Internal, "no randomness");
 * ```
 */
export function fillRandom(out: Uint8Array): bool {
  if (COMPONENT) return canonicalFill(out.dataStart, out.byteLength, RANDOM_CHUNK);
  let p = out.dataStart;
  let left = out.byteLength;
  while (left > 0) {
    let n = left < RANDOM_CHUNK ? left : RANDOM_CHUNK;
    if (_random(p, n) != 0) return false;
    p += <usize>n;
    left -= n;
  }
  return true;
}

/**
 * Returns `n` fresh random bytes from the host's CSPRNG (capability `random`). Aborts (traps) if
 * the host refuses, which cannot happen for an in-bounds buffer: randomness failing is never
 * papered over with weak bytes.
 *
 * @example
 * ```ts
 * const key = randomBytes(32);
 * ```
 */
export function randomBytes(n: i32): Uint8Array {
  let out = new Uint8Array(n);
  if (!fillRandom(out)) enclave_abort("random: host refused", null, 0, 0);
  return out;
}

/**
 * Wall-clock milliseconds since the Unix epoch (capability `clock`). The host controls it: never use
 * it as the only guard of anything security-relevant.
 *
 * @example
 * ```ts
 * const expired = nowMillis() > expiresAt;
 * ```
 */
export function nowMillis(): i64 {
  if (COMPONENT) return canonicalNow();
  return _now();
}

/** Log levels of the `log` import (ABI §3). */
export const enum LogLevel {
  Debug = 0,
  Info = 1,
  Warn = 2,
  Error = 3,
}

/**
 * Sends one line to the host's logger (capability `log`); the host keeps at most 1024 bytes of it.
 * Log output leaves the enclave: never log secrets.
 *
 * @example
 * ```ts
 * log(LogLevel.Info, "rotated key " + id.toString());
 * ```
 */
export function log(level: LogLevel, msg: string): void {
  let buf = new Uint8Array(String.UTF8.byteLength(msg));
  let n = <i32>String.UTF8.encodeUnsafe(changetype<usize>(msg), msg.length, buf.dataStart, false, String.UTF8.ErrorMode.REPLACE);
  if (COMPONENT) {
    canonicalLog(<i32>level, buf.dataStart, n, LOG_MAX);
    return;
  }
  // The host reads at most LOG_MAX bytes anyway; it may cut a character, which it tolerates.
  _log(<i32>level, buf.dataStart, n < LOG_MAX ? n : LOG_MAX);
}

/** Sealing-key policies of the `seal_key` import (ABI §3). */
export const enum SealPolicy {
  /** Bound to the module's measurement: a new build gets a new key. */
  Measurement = 0,
  /** Bound to the module's signer: survives upgrades signed by the same key. */
  Signer = 1,
}

/**
 * Writes the 32-byte sealing key for `policy` into `out` (capability `seal`). Returns `0`, or the
 * host's negative error: `-1` out of bounds, `-2` unknown policy, `-3` unavailable (for example
 * policy `Signer` on an unsigned module). `out` must hold at least 32 bytes, otherwise `-1`.
 *
 * @example
 * ```ts
 * const key = new Uint8Array(32);
 * if (sealKey(SealPolicy.Measurement, key) != 0) return Reply.err(ErrorCode.State, "no sealing key");
 * ```
 */
export function sealKey(policy: SealPolicy, out: Uint8Array): i32 {
  if (out.byteLength < 32) return -1;
  if (COMPONENT) return canonicalSealKey(<i32>policy, out.dataStart);
  return _seal_key(<i32>policy, out.dataStart);
}

/** Bytes `sealKeyAt` writes: key[32] ‖ key id u32 LE ‖ svn u32 LE (ABI §3). */
export const SEAL_KEY_AT_BYTES: i32 = 40;
/** Bytes `counterRead` writes: value u64 LE ‖ tag[32] (ABI §3). */
export const COUNTER_BYTES: i32 = 40;

/**
 * Writes the sealing key for `policy` under root `keyId` (0: the current root) at `svn` (-1: the
 * module's own; ≥ 0 only under `Signer`, at most its own) into `out` (capability `seal`):
 * key[32] ‖ the root id used (u32 LE) ‖ the svn used (u32 LE; 0 under `Measurement`), 40 bytes.
 * Returns `0`, or `-1` out of bounds (`out` shorter than 40 bytes), `-2` unknown policy, `-3`
 * unavailable, `-4` unknown or revoked root, `-5` svn not allowed. Zero the key when done.
 *
 * @example
 * ```ts
 * const out = new Uint8Array(SEAL_KEY_AT_BYTES);
 * if (sealKeyAt(SealPolicy.Signer, 0, -1, out) != 0) return Reply.err(ErrorCode.State, "no sealing key");
 * const rootId = load<u32>(out.dataStart + 32);
 * ```
 */
export function sealKeyAt(policy: SealPolicy, keyId: u32, svn: i32, out: Uint8Array): i32 {
  if (out.byteLength < SEAL_KEY_AT_BYTES) return -1;
  if (COMPONENT) return canonicalSealKeyAt(<i32>policy, <i32>keyId, svn, out.dataStart);
  return _seal_key_at(<i32>policy, <i32>keyId, svn, out.dataStart);
}

/**
 * Reads monotonic counter `id` of this module's `policy` binding into `out` (capability `counter`):
 * value u64 LE ‖ tag[32], 40 bytes; a counter never advanced reads 0 and 32 zero bytes. Returns `0`,
 * or `-1` out of bounds (`out` shorter than 40 bytes), `-2` unknown policy, `-3` unavailable.
 *
 * @example
 * ```ts
 * const out = new Uint8Array(COUNTER_BYTES);
 * if (counterRead(SealPolicy.Signer, 7, out) != 0) return Reply.err(ErrorCode.State, "no counter");
 * const value = load<u64>(out.dataStart);
 * ```
 */
export function counterRead(policy: SealPolicy, id: u64, out: Uint8Array): i32 {
  if (out.byteLength < COUNTER_BYTES) return -1;
  if (COMPONENT) return canonicalCounterRead(<i32>policy, <i64>id, out.dataStart);
  return _counter_read(<i32>policy, <i64>id, out.dataStart);
}

/**
 * Advances counter `id` from `expected` to `expected + 1` with the 32-byte `tag`, durably, if its
 * value is `expected` (capability `counter`). Returns `0`, or `-1` out of bounds (`tag` shorter than
 * 32 bytes), `-2` unknown policy, `-3` unavailable, `-4` conflict (the value was not `expected`),
 * `-5` limit (too many counters, the value would overflow, or more than 64 advances in one call).
 *
 * @example
 * ```ts
 * const rc = counterAdvance(SealPolicy.Signer, 7, current, digest);
 * if (rc == -4) return Reply.err(ErrorCode.Conflict, "counter moved");
 * ```
 */
export function counterAdvance(policy: SealPolicy, id: u64, expected: u64, tag: Uint8Array): i32 {
  if (tag.byteLength < 32) return -1;
  if (COMPONENT) return canonicalCounterAdvance(<i32>policy, <i64>id, <i64>expected, tag.dataStart);
  return _counter_advance(<i32>policy, <i64>id, <i64>expected, tag.dataStart);
}

/**
 * Asks the platform for evidence binding `data` (at most 64 bytes) (capability `attest`). Returns the
 * evidence, or `null` if the host reported an error (`-2` data over 64 bytes, `-3` unavailable).
 * Retries once with a buffer of the size the host asked for.
 *
 * @example
 * ```ts
 * const evidence = report(nonceHash);
 * if (evidence === null) return Reply.err(ErrorCode.State, "attestation unavailable");
 * return Reply.ok(Value.bin(evidence));
 * ```
 */
export function report(data: Uint8Array): Uint8Array | null {
  if (data.byteLength > 64) return null;
  if (COMPONENT) return canonicalReport(data.dataStart, data.byteLength);
  let out = new Uint8Array(4096);
  let n = _report(data.dataStart, data.byteLength, out.dataStart, out.byteLength);
  if (n < 0) return null;
  if (n > out.byteLength) {
    out = new Uint8Array(n);
    n = _report(data.dataStart, data.byteLength, out.dataStart, out.byteLength);
    if (n < 0 || n > out.byteLength) return null;
  }
  return out.subarray(0, n);
}
