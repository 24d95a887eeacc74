/**
 * Byte helpers for secrets: constant-time comparison and wiping.
 *
 * Written for this project. Pattern after noble-ciphers `equalBytes()` / `clean()`
 * (see docs/THREAT-MODEL.md, "Timing: what is and is not constant-time").
 */

/**
 * Compares `len` bytes at two addresses in time that depends only on `len`
 * (never on the contents). Returns 1 if equal, 0 otherwise.
 * @internal
 */
export function _equalPtr(a: usize, b: usize, len: usize): i32 {
  let diff: u32 = 0;
  let i: usize = 0;
  // 8 bytes at a time, then the tail: the loop bounds depend on the public length only.
  for (; i + 8 <= len; i += 8) {
    const x = load<u64>(a + i) ^ load<u64>(b + i);
    diff |= <u32>(x | (x >>> 32));
  }
  for (; i < len; i++) diff |= <u32>(load<u8>(a + i) ^ load<u8>(b + i));
  // Fold to one bit without a branch: (diff - 1) >> 31 is 1 iff diff == 0 (diff < 2^32 here,
  // so widen to 64 bits first).
  return <i32>(((<u64>diff) - 1) >>> 63);
}

/**
 * Constant-time equality of two byte arrays (tags, MACs, hashes).
 *
 * The time taken depends on the lengths (public) but not on the contents, so a caller
 * that compares a received tag with the expected one learns nothing from timing about
 * how many leading bytes matched (RFC 8439 §4: "the tag comparison must be done in
 * constant time").
 *
 * @returns `true` if both arrays have the same length and the same bytes.
 * @example
 * if (!equalBytes(tag, expected)) return null;
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false; // lengths are public
  return _equalPtr(a.dataStart, b.dataStart, <usize>a.length) == 1;
}

/**
 * Overwrites a buffer with zeros so that a secret does not linger in linear memory
 * after use (keys, seeds, intermediate key streams).
 *
 * `memory.fill` is a Wasm bulk-memory instruction with no observable result, but the
 * optimizer never removes it because linear memory is visible to the host. Wiping limits
 * how long a secret stays in memory; it does not protect against a host that reads
 * linear memory while the secret is in use (docs/THREAT-MODEL.md).
 *
 * @example
 * const okm = hkdfSha256(ikm, salt, info, 32); ... ; wipe(okm);
 */
export function wipe(buf: Uint8Array): void {
  memory.fill(buf.dataStart, 0, <usize>buf.length);
}

/** Zeroes `len` bytes at `ptr` (the raw form of {@link wipe}). @internal */
// @ts-ignore: decorator
@inline
export function _wipePtr(ptr: usize, len: usize): void {
  memory.fill(ptr, 0, len);
}

/** Zeroes a StaticArray used as scratch space. @internal */
export function _wipeStatic<T>(a: StaticArray<T>): void {
  memory.fill(changetype<usize>(a), 0, <usize>a.length << alignof<T>());
}
