/**
 * SHA-512 (FIPS 180-4 §6.4). Used by HMAC-SHA-512 and by Ed25519 (RFC 8032 §5.1).
 *
 * Written for this project (a straightforward rendering of FIPS 180-4); layout after
 * noble-hashes `sha2.ts`. Wasm has native 64-bit integers, so unlike JavaScript
 * implementations no hi/lo 32-bit split is needed.
 *
 * SHA-512 has no secret-dependent branches or table look-ups.
 */

import { _wipeStatic } from './utils';

/** Digest length in bytes. */
export const SHA512_OUTPUT_LEN: i32 = 64;
/** Block length in bytes (FIPS 180-4 §1). */
export const SHA512_BLOCK_LEN: i32 = 128;

// FIPS 180-4 §4.2.3.
const K: usize = memory.data<u64>([
  0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc, 0x3956c25bf348b538,
  0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118, 0xd807aa98a3030242, 0x12835b0145706fbe,
  0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2, 0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235,
  0xc19bf174cf692694, 0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
  0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5, 0x983e5152ee66dfab,
  0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4, 0xc6e00bf33da88fc2, 0xd5a79147930aa725,
  0x06ca6351e003826f, 0x142929670a0e6e70, 0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed,
  0x53380d139d95b3df, 0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
  0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30, 0xd192e819d6ef5218,
  0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8, 0x19a4c116b8d2d0c8, 0x1e376c085141ab53,
  0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8, 0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373,
  0x682e6ff3d6b2b8a3, 0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
  0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b, 0xca273eceea26619c,
  0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178, 0x06f067aa72176fba, 0x0a637dc5a2c898a6,
  0x113f9804bef90dae, 0x1b710b35131c471b, 0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc,
  0x431d67c49c100d4c, 0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
]);

const W = new StaticArray<u64>(80);

/** Compresses `nblocks` 128-byte blocks into the state at `st` (FIPS 180-4 §6.4.2). @internal */
export function _sha512Blocks(st: usize, data: usize, nblocks: usize): void {
  const w = changetype<usize>(W);
  let a = load<u64>(st, 0), b = load<u64>(st, 8), c = load<u64>(st, 16), d = load<u64>(st, 24);
  let e = load<u64>(st, 32), f = load<u64>(st, 40), g = load<u64>(st, 48), h = load<u64>(st, 56);
  for (let n: usize = 0; n < nblocks; n++) {
    const p = data + (n << 7);
    for (let i: usize = 0; i < 16; i++) store<u64>(w + (i << 3), bswap<u64>(load<u64>(p + (i << 3))));
    for (let i: usize = 16; i < 80; i++) {
      const w15 = load<u64>(w + ((i - 15) << 3));
      const w2 = load<u64>(w + ((i - 2) << 3));
      const s0 = rotr<u64>(w15, 1) ^ rotr<u64>(w15, 8) ^ (w15 >>> 7);
      const s1 = rotr<u64>(w2, 19) ^ rotr<u64>(w2, 61) ^ (w2 >>> 6);
      store<u64>(w + (i << 3), load<u64>(w + ((i - 16) << 3)) + s0 + load<u64>(w + ((i - 7) << 3)) + s1);
    }
    const a0 = a, b0 = b, c0 = c, d0 = d, e0 = e, f0 = f, g0 = g, h0 = h;
    for (let i: usize = 0; i < 80; i++) {
      const S1 = rotr<u64>(e, 14) ^ rotr<u64>(e, 18) ^ rotr<u64>(e, 41);
      const ch = g ^ (e & (f ^ g));
      const t1 = h + S1 + ch + load<u64>(K + (i << 3)) + load<u64>(w + (i << 3));
      const S0 = rotr<u64>(a, 28) ^ rotr<u64>(a, 34) ^ rotr<u64>(a, 39);
      const maj = (a & b) | (c & (a | b));
      h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + S0 + maj;
    }
    a += a0; b += b0; c += c0; d += d0; e += e0; f += f0; g += g0; h += h0;
  }
  store<u64>(st, a, 0); store<u64>(st, b, 8); store<u64>(st, c, 16); store<u64>(st, d, 24);
  store<u64>(st, e, 32); store<u64>(st, f, 40); store<u64>(st, g, 48); store<u64>(st, h, 56);
}

/**
 * Incremental SHA-512. Reuse one instance with {@link Sha512.reset} to avoid allocation.
 *
 * @example
 * const h = new Sha512(); h.update(a); h.update(b); const d = h.digest();
 */
export class Sha512 {
  private state: StaticArray<u64> = new StaticArray<u64>(8);
  private buf: StaticArray<u8> = new StaticArray<u8>(128);
  private bufLen: usize = 0;
  private total: u64 = 0;

  constructor() {
    this.reset();
  }

  /** Restores the initial hash value (FIPS 180-4 §5.3.5). */
  reset(): Sha512 {
    const s = this.state;
    unchecked(s[0] = 0x6a09e667f3bcc908); unchecked(s[1] = 0xbb67ae8584caa73b);
    unchecked(s[2] = 0x3c6ef372fe94f82b); unchecked(s[3] = 0xa54ff53a5f1d36f1);
    unchecked(s[4] = 0x510e527fade682d1); unchecked(s[5] = 0x9b05688c2b3e6c1f);
    unchecked(s[6] = 0x1f83d9abfb41bd6b); unchecked(s[7] = 0x5be0cd19137e2179);
    this.bufLen = 0;
    this.total = 0;
    return this;
  }

  /** Absorbs `len` bytes at address `ptr`. @internal */
  _update(ptr: usize, len: usize): void {
    const st = changetype<usize>(this.state);
    const buf = changetype<usize>(this.buf);
    this.total += <u64>len;
    let used = this.bufLen;
    if (used > 0) {
      const take = min<usize>(128 - used, len);
      memory.copy(buf + used, ptr, take);
      used += take; ptr += take; len -= take;
      if (used < 128) { this.bufLen = used; return; }
      _sha512Blocks(st, buf, 1);
      used = 0;
    }
    const full = len >> 7;
    if (full > 0) _sha512Blocks(st, ptr, full);
    const rest = len & 127;
    memory.copy(buf, ptr + (full << 7), rest);
    this.bufLen = rest;
  }

  /** Absorbs `data`. */
  update(data: Uint8Array): Sha512 {
    this._update(data.dataStart, <usize>data.length);
    return this;
  }

  /** Pads (FIPS 180-4 §5.1.2), writes 64 bytes to `out`, wipes the state. @internal */
  _finish(out: usize): void {
    const st = changetype<usize>(this.state);
    const buf = changetype<usize>(this.buf);
    let used = this.bufLen;
    store<u8>(buf + used, 0x80);
    used++;
    if (used > 112) {
      memory.fill(buf + used, 0, 128 - used);
      _sha512Blocks(st, buf, 1);
      used = 0;
    }
    memory.fill(buf + used, 0, 112 - used);
    // 128-bit big-endian bit length.
    store<u64>(buf + 112, bswap<u64>(this.total >>> 61));
    store<u64>(buf + 120, bswap<u64>(this.total << 3));
    _sha512Blocks(st, buf, 1);
    for (let i: usize = 0; i < 8; i++) store<u64>(out + (i << 3), bswap<u64>(load<u64>(st + (i << 3))));
    _wipeStatic(this.state);
    _wipeStatic(this.buf);
    _wipeStatic(W);
    this.bufLen = 0;
  }

  /** Returns the 64-byte digest. The instance must be `reset()` before further use. */
  digest(): Uint8Array {
    const out = new Uint8Array(64);
    this._finish(out.dataStart);
    return out;
  }
}

const _h = new Sha512();

/** One-shot SHA-512 of `len` bytes at `ptr` into 64 bytes at `out`. @internal */
export function _sha512Ptr(out: usize, ptr: usize, len: usize): void {
  _h.reset();
  _h._update(ptr, len);
  _h._finish(out);
}

/**
 * SHA-512 of `data` (FIPS 180-4 §6.4).
 * @returns a new 64-byte array.
 */
export function sha512(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  _sha512Ptr(out.dataStart, data.dataStart, <usize>data.length);
  return out;
}
