/**
 * SHA-256 (FIPS 180-4 §6.2).
 *
 * Written for this project (a straightforward rendering of FIPS 180-4); layout after
 * noble-hashes `sha2.ts`. The compression function works on linear-memory addresses with
 * `load<u32>` + `bswap` so that no array is allocated per block.
 *
 * SHA-256 has no secret-dependent branches or table look-ups: its running time depends on
 * the message length only.
 */

import { _wipeStatic } from './utils';

/** Digest length in bytes. */
export const SHA256_OUTPUT_LEN: i32 = 32;
/** Block length in bytes (FIPS 180-4 §1). */
export const SHA256_BLOCK_LEN: i32 = 64;

// FIPS 180-4 §4.2.2: first 32 bits of the fractional parts of the cube roots of the first 64 primes.
const K: usize = memory.data<u32>([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

// Message schedule scratch, shared by all instances (Wasm is single-threaded; no re-entrancy).
const W = new StaticArray<u32>(64);

/**
 * Compresses `nblocks` 64-byte blocks at `data` into the 8-word state at `st`
 * (FIPS 180-4 §6.2.2). @internal
 */
export function _sha256Blocks(st: usize, data: usize, nblocks: usize): void {
  const w = changetype<usize>(W);
  let a = load<u32>(st, 0), b = load<u32>(st, 4), c = load<u32>(st, 8), d = load<u32>(st, 12);
  let e = load<u32>(st, 16), f = load<u32>(st, 20), g = load<u32>(st, 24), h = load<u32>(st, 28);
  for (let n: usize = 0; n < nblocks; n++) {
    const p = data + (n << 6);
    for (let i: usize = 0; i < 16; i++) store<u32>(w + (i << 2), bswap<u32>(load<u32>(p + (i << 2))));
    for (let i: usize = 16; i < 64; i++) {
      const w15 = load<u32>(w + ((i - 15) << 2));
      const w2 = load<u32>(w + ((i - 2) << 2));
      const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >>> 3);
      const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >>> 10);
      store<u32>(w + (i << 2), load<u32>(w + ((i - 16) << 2)) + s0 + load<u32>(w + ((i - 7) << 2)) + s1);
    }
    const a0 = a, b0 = b, c0 = c, d0 = d, e0 = e, f0 = f, g0 = g, h0 = h;
    for (let i: usize = 0; i < 64; i++) {
      const S1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
      const ch = g ^ (e & (f ^ g));
      const t1 = h + S1 + ch + load<u32>(K + (i << 2)) + load<u32>(w + (i << 2));
      const S0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
      const maj = (a & b) | (c & (a | b));
      h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + S0 + maj;
    }
    a += a0; b += b0; c += c0; d += d0; e += e0; f += f0; g += g0; h += h0;
  }
  store<u32>(st, a, 0); store<u32>(st, b, 4); store<u32>(st, c, 8); store<u32>(st, d, 12);
  store<u32>(st, e, 16); store<u32>(st, f, 20); store<u32>(st, g, 24); store<u32>(st, h, 28);
}

/**
 * Incremental SHA-256. Reuse one instance with {@link Sha256.reset} to avoid allocation.
 *
 * @example
 * const h = new Sha256(); h.update(a); h.update(b); const d = h.digest();
 */
export class Sha256 {
  /** Chaining value H(i) (FIPS 180-4 §6.2). */
  private state: StaticArray<u32> = new StaticArray<u32>(8);
  /** Partial block. */
  private buf: StaticArray<u8> = new StaticArray<u8>(64);
  private bufLen: usize = 0;
  private total: u64 = 0;

  constructor() {
    this.reset();
  }

  /** Restores the initial hash value (FIPS 180-4 §5.3.3). */
  reset(): Sha256 {
    const s = this.state;
    unchecked(s[0] = 0x6a09e667); unchecked(s[1] = 0xbb67ae85); unchecked(s[2] = 0x3c6ef372); unchecked(s[3] = 0xa54ff53a);
    unchecked(s[4] = 0x510e527f); unchecked(s[5] = 0x9b05688c); unchecked(s[6] = 0x1f83d9ab); unchecked(s[7] = 0x5be0cd19);
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
      const take = min<usize>(64 - used, len);
      memory.copy(buf + used, ptr, take);
      used += take; ptr += take; len -= take;
      if (used < 64) { this.bufLen = used; return; }
      _sha256Blocks(st, buf, 1);
      used = 0;
    }
    const full = len >> 6;
    if (full > 0) _sha256Blocks(st, ptr, full);
    const rest = len & 63;
    memory.copy(buf, ptr + (full << 6), rest);
    this.bufLen = rest;
  }

  /** Absorbs `data`. */
  update(data: Uint8Array): Sha256 {
    this._update(data.dataStart, <usize>data.length);
    return this;
  }

  /**
   * Pads (FIPS 180-4 §5.1.1), writes the 32-byte digest to `out`, and wipes the internal
   * state (it may hold key material when used by HMAC). Call `reset()` before reuse. @internal
   */
  _finish(out: usize): void {
    const st = changetype<usize>(this.state);
    const buf = changetype<usize>(this.buf);
    let used = this.bufLen;
    store<u8>(buf + used, 0x80);
    used++;
    if (used > 56) {
      memory.fill(buf + used, 0, 64 - used);
      _sha256Blocks(st, buf, 1);
      used = 0;
    }
    memory.fill(buf + used, 0, 56 - used);
    store<u64>(buf + 56, bswap<u64>(this.total << 3));
    _sha256Blocks(st, buf, 1);
    for (let i: usize = 0; i < 8; i++) store<u32>(out + (i << 2), bswap<u32>(load<u32>(st + (i << 2))));
    _wipeStatic(this.state);
    _wipeStatic(this.buf);
    _wipeStatic(W);
    this.bufLen = 0;
  }

  /** Returns the 32-byte digest. The instance must be `reset()` before further use. */
  digest(): Uint8Array {
    const out = new Uint8Array(32);
    this._finish(out.dataStart);
    return out;
  }
}

const _h = new Sha256();

/** One-shot SHA-256 of `len` bytes at `ptr` into 32 bytes at `out`. @internal */
export function _sha256Ptr(out: usize, ptr: usize, len: usize): void {
  _h.reset();
  _h._update(ptr, len);
  _h._finish(out);
}

/**
 * SHA-256 of `data` (FIPS 180-4 §6.2).
 * @returns a new 32-byte array.
 * @example
 * const d = sha256(Uint8Array.wrap(String.UTF8.encode('abc')));
 */
export function sha256(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(32);
  _sha256Ptr(out.dataStart, data.dataStart, <usize>data.length);
  return out;
}
