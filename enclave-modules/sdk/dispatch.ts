// The op registry and the request/reply path behind `enclave_alloc` and `enclave_call`
// (docs/ABI.md §2, §4).

import { Value } from "./value";
import { Reply, ErrorCode, errorCodeName } from "./reply";
import { Reader, ReadError, readErrorMessage } from "./msgpack/reader";
import { Writer } from "./msgpack/writer";
import { requestBytesLimit, replyBytesLimit, depthLimit, memoryPagesLimit, decodeBudget } from "./limits";
import { enclave_abort } from "./env";
import { allocBuffer } from "./_alloc";

/** A handler: a top-level function from the op's args to its reply (no closures in AssemblyScript). */
export type Handler = (args: Value) => Reply;

/** ABI §4.2: the message is at most 256 bytes. */
const MESSAGE_MAX: i32 = 256;
/** ABI §4.1: the op name is 1..64 bytes. */
const OP_MAX: u32 = 64;

// ---- registry ----

const opNames = new Array<ArrayBuffer>();
const opHandlers = new Array<Handler>();

/** Whether `name` matches the contract's op-name pattern `[a-z_][a-z0-9_]{0,63}` (ABI §6). */
function validOpName(name: string): bool {
  let n = name.length;
  if (n < 1 || n > <i32>OP_MAX) return false;
  for (let i = 0; i < n; i++) {
    let c = name.charCodeAt(i);
    let ok = (c >= 0x61 && c <= 0x7a) || c == 0x5f || (i > 0 && c >= 0x30 && c <= 0x39);
    if (!ok) return false;
  }
  return true;
}

function findOp(p: usize, n: u32): i32 {
  for (let i = 0, k = opNames.length; i < k; i++) {
    let name = unchecked(opNames[i]);
    if (<u32>name.byteLength == n && memory.compare(changetype<usize>(name), p, <usize>n) == 0) return i;
  }
  return -1;
}

/**
 * The module's registry of operations. Call it at the module's top level (it runs once, when the
 * instance starts). The limits the SDK enforces are the contract's: `enclave build` gives them.
 *
 * @example
 * ```ts
 * import { Enclave, Value, Reply } from "enclave/sdk";
 * export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";
 *
 * Enclave.op("echo", echo);
 *
 * function echo(args: Value): Reply {
 *   return Reply.ok(args);
 * }
 * ```
 */
export class Enclave {
  /**
   * Registers `handler` for `name` (replacing an earlier one). A name outside
   * `[a-z_][a-z0-9_]{0,63}` aborts at start: it could never be called.
   * @example `Enclave.op("incr", incr);`
   */
  static op(name: string, handler: Handler): void {
    if (!validOpName(name)) enclave_abort("Enclave.op: invalid op name", null, 0, 0);
    let bytes = String.UTF8.encode(name);
    let i = findOp(changetype<usize>(bytes), <u32>bytes.byteLength);
    if (i >= 0) {
      unchecked((opHandlers[i] = handler));
      return;
    }
    opNames.push(bytes);
    opHandlers.push(handler);
  }
}

// ---- the call path ----

// The request buffer: one per instance, grown when a request does not fit, reused otherwise. Str and
// bin values decoded from a request are views into it, valid until the host's next `enclave_alloc`
// (see `Value`). A fresh buffer per call would make views live forever, but AssemblyScript's TLSF
// allocator never reuses a freed block for a request of the same size, so alternating big buffers
// fragment memory until a module with a tight `memoryPages` traps.
let reqBuf: ArrayBuffer | null = null;

/** Growing a buffer to at least this many bytes runs a full collection first. */
const BIG_ALLOC: i32 = 256 * 1024;

const reader = new Reader();
const writer = new Writer();
const descriptor: usize = memory.data(8, 4);

/** `enclave_alloc` (ABI §2): a buffer of at least `len` bytes, or 0. */
export function allocRequest(len: i32): usize {
  if (len < 1 || len > requestBytesLimit) return 0;
  if (requestCapacity() < len) growRequest(len);
  return changetype<usize>(reqBuf);
}

// @ts-ignore: decorator
@inline
function requestCapacity(): i32 {
  let b = reqBuf;
  return b === null ? 0 : b.byteLength;
}

// @ts-ignore: decorator
@noinline
function growRequest(len: i32): void {
  let cap = requestCapacity() * 2;
  if (cap < len) cap = len;
  if (cap < 256) cap = 256;
  if (cap > requestBytesLimit) cap = requestBytesLimit;
  // Drop the old buffer first, and collect before a big allocation so the old one can be reused.
  reqBuf = null;
  if (cap >= BIG_ALLOC) collectNow();
  // Uninitialised: the host overwrites it, and only `[ptr, ptr+len)` of `enclave_call` is read.
  reqBuf = allocBuffer(<usize>cap);
}

/** `enclave_call` (ABI §2): handles `[ptr, ptr+len)` and returns the reply descriptor, or 0. */
export function handleCall(ptr: usize, len: i32): usize {
  reader.budget = decodeBudget; // so that a call refused before decoding counts as spending nothing
  let reply = dispatch(ptr, len);
  noteCall();
  reader.release(); // the reader must not keep an old request buffer alive
  if (!encodeReply(reply)) return 0;
  store<u32>(descriptor, <u32>writer.dataStart);
  store<u32>(descriptor, <u32>writer.length, 4);
  return descriptor;
}

/**
 * The call of a component build (component.ts): handles `[ptr, ptr+len)` like `handleCall` and
 * writes the canonical result area of `result<list<u8>, error>` (wit/enclave.wit) at `area` (16
 * bytes, aligned to 4). It encodes the reply exactly as the core ABI does (the same envelope, limits
 * and fallbacks) and points into it: ok is the envelope's value (after `{ok:`), err the code's index
 * in `types.error-code` (ErrorCode's order) and the message the envelope carries (empty when the
 * envelope had to drop it). Both stay valid until the next call.
 */
export function handleComponentCall(ptr: usize, len: i32, area: usize): void {
  reader.budget = decodeBudget;
  let reply = dispatch(ptr, len);
  noteCall();
  reader.release();
  // Never fails: MIN_REPLY_BYTES holds the longest error envelope without its message.
  if (!encodeReply(reply)) unreachable();
  let w = writer;
  let out = w.dataStart;
  if (load<u8>(out, 1) == 0xa2) {
    // {ok: value}: fixmap 1, fixstr "ok", then the value.
    store<u8>(area, 0);
    store<u32>(area, <u32>(out + 4), 4);
    store<u32>(area, <u32>(w.length - 4), 8);
    return;
  }
  // {err: {code, message?}}: the code is the reply's, or `limit` when an ok reply did not fit.
  let code = reply.isOk ? ErrorCode.Limit : reply.code;
  if (<u32>code > <u32>ErrorCode.DecryptFailed) code = ErrorCode.Internal; // errorCodeName's fallback
  let msgPtr: usize = 0;
  let msgLen: u32 = 0;
  if (load<u8>(out, 5) == 0x82) {
    // 81 a3 "err" 82 a4 "code" <fixstr name> a7 "message" <str header> <message>
    let h = out + 11 + 1 + <usize>(load<u8>(out, 11) & 0x1f) + 8;
    let b = <u32>load<u8>(h);
    if ((b & 0xe0) == 0xa0) {
      msgLen = b & 0x1f;
      msgPtr = h + 1;
    } else if (b == 0xd9) {
      msgLen = <u32>load<u8>(h, 1);
      msgPtr = h + 2;
    } else {
      msgLen = (<u32>load<u8>(h, 1) << 8) | <u32>load<u8>(h, 2); // 0xda: the 256-byte cut
      msgPtr = h + 3;
    }
    if (msgPtr + <usize>msgLen != out + <usize>w.length) unreachable();
  }
  store<u8>(area, 1);
  store<u8>(area, <u8>code, 4);
  store<u32>(area, <u32>msgPtr, 8);
  store<u32>(area, msgLen, 12);
}

function dispatch(ptr: usize, len: i32): Reply {
  let b = reqBuf;
  if (b === null) return Reply.badRequest("no request buffer: call enclave_alloc first");
  let base = changetype<usize>(b);
  // The host passes what enclave_alloc returned; anything else is refused, not read.
  if (len < 1 || ptr < base || <u64>(ptr - base) + <u64>len > <u64>b.byteLength) {
    return Reply.badRequest("request outside the enclave_alloc buffer");
  }
  if (len > requestBytesLimit) return Reply.badRequest("request over the byte limit");
  let start = <u32>(ptr - base);
  collectIfNeeded(len);
  let r = reader;
  r.reset(b, start, start + <u32>len, depthLimit, decodeBudget);

  // ABI §4.1: a map with string keys; `op` required, `args` optional, other keys ignored.
  let n = r.readMapHeader();
  if (n < 0) return decodeError(r, "request is not a map");
  let opOff: u32 = 0;
  let opLen: u32 = 0;
  let haveOp = false;
  let haveArgs = false;
  let probe = false;
  let args = Value.nil();
  for (let i: i64 = 0; i < n; i++) {
    if (!r.readStrRaw()) return decodeError(r, "request keys must be strings");
    let kOff = r.strOff;
    let kLen = r.strLen;
    let kp = r.base + <usize>kOff;
    if (kLen == 2 && load<u16>(kp) == 0x706f /* "op" */) {
      if (haveOp) return Reply.badRequest("duplicate key op");
      if (!r.readStrRaw()) return decodeError(r, "op must be a string");
      if (r.strLen < 1 || r.strLen > OP_MAX) return Reply.badRequest("op must be 1..64 bytes");
      opOff = r.strOff;
      opLen = r.strLen;
      haveOp = true;
    } else if (kLen == 4 && load<u32>(kp) == 0x73677261 /* "args" */) {
      if (haveArgs) return Reply.badRequest("duplicate key args");
      args = r.readValue(2);
      haveArgs = true;
    } else if (kLen == 5 && load<u32>(kp) == 0x626f7270 /* "prob" */ && load<u8>(kp, 4) == 0x65 /* "e" */) {
      // ABI §4.1: `probe: true` asks whether `op` has a handler, without calling it (enclave build's
      // load check). Any other value is ignored like an unknown key.
      let v = r.readValue(2);
      if (v.isBool() && v.asBool()) probe = true;
    } else {
      r.readValue(2); // ignored, but it must still be valid
    }
    if (r.error != ReadError.None) return decodeError(r, "");
  }
  if (!r.atEnd()) return Reply.badRequest("trailing bytes after the request");
  if (!haveOp) return Reply.badRequest("missing op");

  let h = findOp(r.base + <usize>opOff, opLen);
  if (h < 0) return Reply.err(ErrorCode.UnknownOp, "no handler for this op");
  if (probe) return Reply.ok();
  return unchecked(opHandlers[h])(args);
}

// ---- collection before a call ----

// Near the memory maximum the garbage of earlier calls must be collected before a call that may need
// the room: the incremental collector only runs as allocation goes on, and running out of pages
// traps. Linear memory never shrinks, so "near the maximum" stays true once a module has grown; a
// full collection before every call from then on would cost several times the call itself. So a
// forced collection runs only when it can help: when memory grew since the last one, when this
// request may decode into more than the allowance left, or when the calls since the last one may
// have left an allowance's worth of garbage (estimated: what their decoding was charged plus
// CALL_COST each), and at least every COLLECT_EVERY calls.

/** Heap bytes a call is assumed to allocate besides its decoded values (reply value, temporaries). */
const CALL_COST: i64 = 256;
/** The most heap one request byte can decode into (a 1-byte value costs a Value, 64 bytes). */
const DECODE_PER_BYTE: i64 = 64;
/** A forced collection at least this often near the maximum, whatever the estimates say. */
const COLLECT_EVERY: i32 = 1024;

/** `memory.size()` after the last forced collection (0: none yet). */
let collectPages: i32 = 0;
/** Estimated heap bytes allocated by calls since the last forced collection. */
let spentSinceCollect: i64 = 0;
/** Calls since the last forced collection (saturates at COLLECT_EVERY). */
let callsSinceCollect: i32 = 0;
/** Forced collections so far (read by tests through `sdkCollections`). */
let forcedCollections: u32 = 0;

/** A full collection now, restarting the estimates. */
function collectNow(): void {
  __collect();
  forcedCollections++;
  collectPages = memory.size();
  spentSinceCollect = 0;
  callsSinceCollect = 0;
}

/** Before decoding a request of `len` bytes: collects when it can help (see above). */
// @ts-ignore: decorator
@inline
function collectIfNeeded(len: i32): void {
  let pages = memory.size();
  if (pages * 4 >= memoryPagesLimit * 3) {
    let need = <i64>len * DECODE_PER_BYTE;
    if (need > decodeBudget) need = decodeBudget;
    // An eighth of the maximum: garbage the incremental collector is left to deal with alone.
    let allowance = <i64>memoryPagesLimit << 13;
    if (
      pages != collectPages ||
      callsSinceCollect >= COLLECT_EVERY ||
      spentSinceCollect + need + CALL_COST > allowance
    ) {
      collectNow();
    }
  }
}

/** After a call: adds its estimated allocation to the running totals. */
// @ts-ignore: decorator
@inline
function noteCall(): void {
  let charged = decodeBudget - reader.budget;
  if (charged < 0) charged = 0;
  else if (charged > decodeBudget) charged = decodeBudget;
  spentSinceCollect += charged + CALL_COST;
  if (callsSinceCollect < COLLECT_EVERY) callsSinceCollect++;
}

/** Forced collections so far (for tests: export it from a test module to count them). */
export function sdkCollections(): u32 {
  return forcedCollections;
}

function decodeError(r: Reader, fallback: string): Reply {
  if (r.error != ReadError.None) {
      return Reply.badRequest(readErrorMessage(r.error));
  }
  return Reply.badRequest(fallback);
}

/** Encodes `reply` as the ABI §4.2 envelope; falls back to a `limit` error. False if nothing fits. */
function encodeReply(reply: Reply): bool {
  let w = writer;
  if (reply.isOk) {
    w.reset(replyBytesLimit);
    w.writeRaw(OK_HEAD, 4); // {"ok": (fixmap 1, fixstr 2)
    w.writeValue(reply.value, 2, depthLimit);
    if (!w.failed()) return true;
    let msg = w.tooDeep ? "reply nested deeper than the depth limit" : "reply over the byte limit";
    return encodeError(ErrorCode.Limit, msg);
  }
  return encodeError(reply.code, reply.message);
}

const OK_HEAD: usize = memory.data<u8>([0x81, 0xa2, 0x6f, 0x6b]); // fixmap 1, "ok"

function encodeError(code: ErrorCode, message: string): bool {
  let w = writer;
  let msgLen = <u32>String.UTF8.byteLength(message);
  let cut = msgLen > <u32>MESSAGE_MAX ? <u32>MESSAGE_MAX : msgLen;
  for (let attempt = 0; attempt < 2; attempt++) {
    w.reset(replyBytesLimit);
    w.u8(0x81);
    w.writeString("err");
    w.u8(cut > 0 ? 0x82 : 0x81);
    w.writeString("code");
    w.writeString(errorCodeName(code));
    if (cut > 0) {
      w.writeString("message");
      writeTruncated(w, message, msgLen, cut);
    }
    if (!w.failed()) return true;
    cut = 0; // retry without the message
  }
  return false;
}

/** Writes `s` as a str of at most `cut` bytes, cut at a UTF-8 character boundary. */
function writeTruncated(w: Writer, s: string, full: u32, cut: u32): void {
  if (full <= cut) {
    w.writeString(s);
    return;
  }
  let tmp = new Uint8Array(<i32>full);
  String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, tmp.dataStart, false, String.UTF8.ErrorMode.REPLACE);
  while (cut > 0 && (<u32>load<u8>(tmp.dataStart + <usize>cut) & 0xc0) == 0x80) cut--;
  w.writeStrBytes(tmp.dataStart, cut);
}
