/**
 * Arithmetic modulo the Ed25519 group order
 * L = 2^252 + 27742317777372353535851937790883648493 (RFC 8032 §5.1) (internal).
 *
 * After TweetNaCl's `modL` (Bernstein, van Gastel, Janssen, Lange, Schwabe, Smetsers;
 * public domain), rewritten for AssemblyScript over linear memory. It works on 64 signed
 * i64 "digits" in radix 2^8 with fixed loop bounds and arithmetic shifts only, so it is
 * constant time for secret scalars (the nonce r and the secret scalar a of RFC 8032 §5.1.6).
 */

// L in little-endian bytes (RFC 8032 §5.1).
const L: usize = memory.data<i64>([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

const X = memory.data(64 * 8, 16);

/** r (32 bytes) = x mod L where x is the 64-digit i64 array at X; wipes X. */
function modL(r: usize): void {
  const x = X;
  for (let i = 63; i >= 32; i--) {
    let carry: i64 = 0;
    const xi = load<i64>(x + (<usize>i << 3));
    let j = i - 32;
    for (; j < i - 12; j++) {
      const p = x + (<usize>j << 3);
      let v = load<i64>(p) + carry - 16 * xi * load<i64>(L + (<usize>(j - (i - 32)) << 3));
      carry = (v + 128) >> 8;
      v -= carry << 8;
      store<i64>(p, v);
    }
    const p = x + (<usize>j << 3);
    store<i64>(p, load<i64>(p) + carry);
    store<i64>(x + (<usize>i << 3), 0);
  }
  let carry: i64 = 0;
  const x31 = load<i64>(x + 31 * 8) >> 4;
  for (let j: usize = 0; j < 32; j++) {
    const p = x + (j << 3);
    let v = load<i64>(p) + carry - x31 * load<i64>(L + (j << 3));
    carry = v >> 8;
    v &= 255;
    store<i64>(p, v);
  }
  for (let j: usize = 0; j < 32; j++) {
    const p = x + (j << 3);
    store<i64>(p, load<i64>(p) - carry * load<i64>(L + (j << 3)));
  }
  for (let i: usize = 0; i < 32; i++) {
    const p = x + (i << 3);
    const v = load<i64>(p);
    if (i < 31) store<i64>(p + 8, load<i64>(p + 8) + (v >> 8));
    store<u8>(r + i, <u8>(v & 255));
  }
  memory.fill(x, 0, 64 * 8);
}

/** r (32 bytes) = s (64 bytes, little-endian) mod L (RFC 8032 §5.1.6 steps 2 and 4). @internal */
export function _scReduce(r: usize, s: usize): void {
  for (let i: usize = 0; i < 64; i++) store<i64>(X + (i << 3), <i64>load<u8>(s + i));
  modL(r);
}

/** s (32 bytes) = (r + k * a) mod L (RFC 8032 §5.1.6 step 5); inputs are 32-byte scalars. @internal */
export function _scMulAdd(s: usize, k: usize, a: usize, r: usize): void {
  for (let i: usize = 0; i < 64; i++) store<i64>(X + (i << 3), i < 32 ? <i64>load<u8>(r + i) : 0);
  for (let i: usize = 0; i < 32; i++) {
    const ki = <i64>load<u8>(k + i);
    for (let j: usize = 0; j < 32; j++) {
      const p = X + ((i + j) << 3);
      store<i64>(p, load<i64>(p) + ki * <i64>load<u8>(a + j));
    }
  }
  modL(s);
}

/**
 * 1 if the 32-byte little-endian s is < L (canonical), else 0 (RFC 8032 §5.1.7 step 1:
 * "check the range 0 <= s < L"). Variable time: s is public (part of a signature). @internal
 */
export function _scIsCanonical(s: usize): i32 {
  for (let i = 31; i >= 0; i--) {
    const a = <i64>load<u8>(s + <usize>i), b = load<i64>(L + (<usize>i << 3));
    if (a < b) return 1;
    if (a > b) return 0;
  }
  return 0; // s == L
}
