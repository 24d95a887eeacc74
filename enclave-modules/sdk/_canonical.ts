// The capability imports of the component world (wit/enclave.wit) in their canonical core form,
// behind the same wrappers as the core imports (env.ts): `enclave build --component` compiles the SDK
// with `--use ENCLAVE_COMPONENT=1`, and each wrapper of env.ts then calls the function here instead
// of the core import. Return values are the core ABI's (docs/ABI.md §3): a `failure` of the world
// maps back to the status the core import would answer.
//
// Lists the host returns (a random fill, a key, a counter's tag, evidence) are allocated by the host
// through the module's `cabi_realloc` (component.ts: a heap block while `importing`, set around
// each import call); each wrapper copies one to where the SDK wants it and frees the block. A list
// of another length than the one asked for is a broken host: the wrapper traps rather than use it.
//
// Only declarations, functions and a lazy global here: a core build imports this file and compiles
// none of it, so its bytes do not change.

// @ts-ignore: decorator
@external("enclave:runtime/random@1.0.0", "fill")
declare function _fill(len: i32, ret: usize): void;

// @ts-ignore: decorator
@external("enclave:runtime/clock@1.0.0", "now")
declare function _now(): i64;

// @ts-ignore: decorator
@external("enclave:runtime/log@1.0.0", "log")
declare function _log(level: i32, ptr: usize, len: i32): void;

// @ts-ignore: decorator
@external("enclave:runtime/seal@1.0.0", "seal-key")
declare function _seal_key(policy: i32, ret: usize): void;

// @ts-ignore: decorator
@external("enclave:runtime/seal@1.0.0", "seal-key-at")
declare function _seal_key_at(policy: i32, keyId: i32, hasSvn: i32, svn: i32, ret: usize): void;

// @ts-ignore: decorator
@external("enclave:runtime/counter@1.0.0", "read")
declare function _counter_read(policy: i32, id: i64, ret: usize): void;

// @ts-ignore: decorator
@external("enclave:runtime/counter@1.0.0", "advance")
declare function _counter_advance(policy: i32, id: i64, expected: i64, tagPtr: usize, tagLen: i32, ret: usize): void;

// @ts-ignore: decorator
@external("enclave:runtime/attest@1.0.0", "report")
declare function _report(dataPtr: usize, dataLen: i32, ret: usize): void;

/**
 * Whether an import of the world is running: `cabi_realloc` then serves the list it returns from
 * the heap (whatever the host's reason to call it otherwise, it gets the request buffer).
 */
// @ts-ignore: decorator
@lazy export let importing: bool = false;

/** Bytes of a key and of a counter's tag. */
const KEY_BYTES: u32 = 32;

/** The result area of every import here (the largest, counter.read's, is 24 bytes aligned to 8). */
function resultArea(): usize {
  return memory.data(24, 8);
}

/** The core ABI's status for a `types.failure` (wit/enclave.wit: invalid, unavailable, unknown-root, svn-not-allowed, conflict, limit). */
function statusOf(failure: u32): i32 {
  switch (failure) {
    case 0:
      return -1; // invalid
    case 1:
      return -3; // unavailable
    case 2:
      return -4; // unknown-root
    case 3:
      return -5; // svn-not-allowed
    case 4:
      return -4; // conflict
    case 5:
      return -5; // limit
  }
  unreachable(); // no such failure: a broken host
  return 0;
}

/** Copies the host's list `[ptr, ptr+len)` (exactly `want` bytes) to `dest` and frees it. */
function takeList(ptr: usize, len: u32, dest: usize, want: u32): void {
  if (len != want) unreachable();
  memory.copy(dest, ptr, <usize>len);
  __free(ptr);
}

/** random.fill over `[p, p+len)`, in chunks of at most `chunk` bytes; false if the host refused. */
export function canonicalFill(p: usize, len: i32, chunk: i32): bool {
  let ret = resultArea();
  let left = len;
  while (left > 0) {
    let n = left < chunk ? left : chunk;
    importing = true;
    _fill(n, ret);
    importing = false;
    if (load<u8>(ret) != 0) return false;
    takeList(load<u32>(ret, 4), load<u32>(ret, 8), p, <u32>n);
    p += <usize>n;
    left -= n;
  }
  return true;
}

/** clock.now. */
export function canonicalNow(): i64 {
  return _now();
}

/**
 * log.log with the UTF-8 `[ptr, ptr+len)`, cut to at most `max` bytes at a character boundary (a
 * string of the world is whole UTF-8). A level outside 0..3 is `info`, as the core import reads it.
 */
export function canonicalLog(level: i32, ptr: usize, len: i32, max: i32): void {
  if (len > max) {
    len = max;
    while (len > 0 && (<u32>load<u8>(ptr + <usize>len) & 0xc0) == 0x80) len--;
  }
  _log(<u32>level > 3 ? 1 : level, ptr, len);
}

/** seal.seal-key into `out` (32 bytes at least): 0 or the core status. */
export function canonicalSealKey(policy: i32, out: usize): i32 {
  if (<u32>policy > 1) return -2;
  let ret = resultArea();
  importing = true;
  _seal_key(policy, ret);
  importing = false;
  if (load<u8>(ret) != 0) return statusOf(load<u8>(ret, 4));
  takeList(load<u32>(ret, 4), load<u32>(ret, 8), out, KEY_BYTES);
  return 0;
}

/** seal.seal-key-at into `out` (40 bytes at least: key ‖ key id ‖ svn, LE): 0 or the core status. */
export function canonicalSealKeyAt(policy: i32, keyId: i32, svn: i32, out: usize): i32 {
  if (<u32>policy > 1) return -2;
  if (svn < -1) return -5; // the core import's answer: -1 is "own", other negatives no svn at all
  let ret = resultArea();
  importing = true;
  _seal_key_at(policy, keyId, svn >= 0 ? 1 : 0, svn >= 0 ? svn : 0, ret);
  importing = false;
  if (load<u8>(ret) != 0) return statusOf(load<u8>(ret, 4));
  takeList(load<u32>(ret, 4), load<u32>(ret, 8), out, KEY_BYTES);
  store<u32>(out, load<u32>(ret, 12), KEY_BYTES);
  store<u32>(out, load<u32>(ret, 16), KEY_BYTES + 4);
  return 0;
}

/** counter.read into `out` (40 bytes at least: value u64 LE ‖ tag): 0 or the core status. */
export function canonicalCounterRead(policy: i32, id: i64, out: usize): i32 {
  if (<u32>policy > 1) return -2;
  let ret = resultArea();
  importing = true;
  _counter_read(policy, id, ret);
  importing = false;
  if (load<u8>(ret) != 0) return statusOf(load<u8>(ret, 8));
  store<u64>(out, load<u64>(ret, 8));
  takeList(load<u32>(ret, 16), load<u32>(ret, 20), out + 8, KEY_BYTES);
  return 0;
}

/** counter.advance with the 32-byte tag at `tag`: 0 or the core status. */
export function canonicalCounterAdvance(policy: i32, id: i64, expected: i64, tag: usize): i32 {
  if (<u32>policy > 1) return -2;
  let ret = resultArea();
  _counter_advance(policy, id, expected, tag, <i32>KEY_BYTES, ret);
  if (load<u8>(ret) != 0) return statusOf(load<u8>(ret, 1));
  return 0;
}

/** attest.report of `[data, data+len)`: the evidence's bytes, or null if the host refused. */
export function canonicalReport(data: usize, len: i32): Uint8Array | null {
  let ret = resultArea();
  importing = true;
  _report(data, len, ret);
  importing = false;
  if (load<u8>(ret) != 0) return null;
  let ptr = load<u32>(ret, 4);
  let n = load<u32>(ret, 8);
  let out = new Uint8Array(<i32>n);
  takeList(ptr, n, out.dataStart, n);
  return out;
}
