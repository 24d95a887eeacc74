/**
 * ChaCha20 stream cipher (RFC 8439 §2.3-2.4) and HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2).
 *
 * Written for this project from RFC 8439; layout after noble-ciphers `chacha.ts`. The 16
 * state words live in Wasm locals; key stream is XORed 4 bytes at a time with unaligned
 * `load<u32>` (Wasm is little-endian, as ChaCha20 is).
 *
 * ChaCha20 is add-rotate-xor only: no secret-dependent branch or memory index.
 */

import { _wipeStatic } from './utils';

const SIGMA0: u32 = 0x61707865; // "expa"
const SIGMA1: u32 = 0x3320646e; // "nd 3"
const SIGMA2: u32 = 0x79622d32; // "2-by"
const SIGMA3: u32 = 0x6b206574; // "te k"

// One block of key stream for a partial last block.
const _block = new StaticArray<u8>(64);

/**
 * XORs `len` bytes at `src` with the ChaCha20 key stream for (key, counter, nonce) into
 * `dst` (RFC 8439 §2.4). `src` and `dst` may be the same address. The caller keeps
 * `len` below 2^32 blocks (always true for a 32-bit Wasm memory). @internal
 */
export function _chacha20XorPtr(key: usize, nonce: usize, counter: u32, src: usize, dst: usize, len: usize): void {
  const k0 = load<u32>(key, 0), k1 = load<u32>(key, 4), k2 = load<u32>(key, 8), k3 = load<u32>(key, 12);
  const k4 = load<u32>(key, 16), k5 = load<u32>(key, 20), k6 = load<u32>(key, 24), k7 = load<u32>(key, 28);
  const n0 = load<u32>(nonce, 0), n1 = load<u32>(nonce, 4), n2 = load<u32>(nonce, 8);
  let ctr = counter;
  let off: usize = 0;
  while (off < len) {
    let x0 = SIGMA0, x1 = SIGMA1, x2 = SIGMA2, x3 = SIGMA3;
    let x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7;
    let x12 = ctr, x13 = n0, x14 = n1, x15 = n2;
    for (let i = 0; i < 10; i++) {
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 16); x8 += x12; x4 = rotl<u32>(x4 ^ x8, 12);
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 8); x8 += x12; x4 = rotl<u32>(x4 ^ x8, 7);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 16); x9 += x13; x5 = rotl<u32>(x5 ^ x9, 12);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 8); x9 += x13; x5 = rotl<u32>(x5 ^ x9, 7);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 16); x10 += x14; x6 = rotl<u32>(x6 ^ x10, 12);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 8); x10 += x14; x6 = rotl<u32>(x6 ^ x10, 7);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 16); x11 += x15; x7 = rotl<u32>(x7 ^ x11, 12);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 8); x11 += x15; x7 = rotl<u32>(x7 ^ x11, 7);
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 16); x10 += x15; x5 = rotl<u32>(x5 ^ x10, 12);
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 8); x10 += x15; x5 = rotl<u32>(x5 ^ x10, 7);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 16); x11 += x12; x6 = rotl<u32>(x6 ^ x11, 12);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 8); x11 += x12; x6 = rotl<u32>(x6 ^ x11, 7);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 16); x8 += x13; x7 = rotl<u32>(x7 ^ x8, 12);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 8); x8 += x13; x7 = rotl<u32>(x7 ^ x8, 7);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 16); x9 += x14; x4 = rotl<u32>(x4 ^ x9, 12);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 8); x9 += x14; x4 = rotl<u32>(x4 ^ x9, 7);
    }
    // RFC 8439 §2.3: add the original state.
    x0 += SIGMA0; x1 += SIGMA1; x2 += SIGMA2; x3 += SIGMA3;
    x4 += k0; x5 += k1; x6 += k2; x7 += k3; x8 += k4; x9 += k5; x10 += k6; x11 += k7;
    x12 += ctr; x13 += n0; x14 += n1; x15 += n2;
    const s = src + off, d = dst + off;
    if (len - off >= 64) {
      store<u32>(d, load<u32>(s, 0) ^ x0, 0); store<u32>(d, load<u32>(s, 4) ^ x1, 4);
      store<u32>(d, load<u32>(s, 8) ^ x2, 8); store<u32>(d, load<u32>(s, 12) ^ x3, 12);
      store<u32>(d, load<u32>(s, 16) ^ x4, 16); store<u32>(d, load<u32>(s, 20) ^ x5, 20);
      store<u32>(d, load<u32>(s, 24) ^ x6, 24); store<u32>(d, load<u32>(s, 28) ^ x7, 28);
      store<u32>(d, load<u32>(s, 32) ^ x8, 32); store<u32>(d, load<u32>(s, 36) ^ x9, 36);
      store<u32>(d, load<u32>(s, 40) ^ x10, 40); store<u32>(d, load<u32>(s, 44) ^ x11, 44);
      store<u32>(d, load<u32>(s, 48) ^ x12, 48); store<u32>(d, load<u32>(s, 52) ^ x13, 52);
      store<u32>(d, load<u32>(s, 56) ^ x14, 56); store<u32>(d, load<u32>(s, 60) ^ x15, 60);
      off += 64;
    } else {
      const b = changetype<usize>(_block);
      store<u32>(b, x0, 0); store<u32>(b, x1, 4); store<u32>(b, x2, 8); store<u32>(b, x3, 12);
      store<u32>(b, x4, 16); store<u32>(b, x5, 20); store<u32>(b, x6, 24); store<u32>(b, x7, 28);
      store<u32>(b, x8, 32); store<u32>(b, x9, 36); store<u32>(b, x10, 40); store<u32>(b, x11, 44);
      store<u32>(b, x12, 48); store<u32>(b, x13, 52); store<u32>(b, x14, 56); store<u32>(b, x15, 60);
      const rest = len - off;
      for (let i: usize = 0; i < rest; i++) store<u8>(d + i, load<u8>(s + i) ^ load<u8>(b + i));
      _wipeStatic(_block);
      off = len;
    }
    ctr++;
  }
}

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2): derives a 32-byte subkey at `out` from a
 * 32-byte key and the first 16 bytes of an XChaCha20 nonce. @internal
 */
export function _hchacha20Ptr(out: usize, key: usize, nonce16: usize): void {
  let x0 = SIGMA0, x1 = SIGMA1, x2 = SIGMA2, x3 = SIGMA3;
  let x4 = load<u32>(key, 0), x5 = load<u32>(key, 4), x6 = load<u32>(key, 8), x7 = load<u32>(key, 12);
  let x8 = load<u32>(key, 16), x9 = load<u32>(key, 20), x10 = load<u32>(key, 24), x11 = load<u32>(key, 28);
  let x12 = load<u32>(nonce16, 0), x13 = load<u32>(nonce16, 4), x14 = load<u32>(nonce16, 8), x15 = load<u32>(nonce16, 12);
  for (let i = 0; i < 10; i++) {
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 16); x8 += x12; x4 = rotl<u32>(x4 ^ x8, 12);
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 8); x8 += x12; x4 = rotl<u32>(x4 ^ x8, 7);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 16); x9 += x13; x5 = rotl<u32>(x5 ^ x9, 12);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 8); x9 += x13; x5 = rotl<u32>(x5 ^ x9, 7);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 16); x10 += x14; x6 = rotl<u32>(x6 ^ x10, 12);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 8); x10 += x14; x6 = rotl<u32>(x6 ^ x10, 7);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 16); x11 += x15; x7 = rotl<u32>(x7 ^ x11, 12);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 8); x11 += x15; x7 = rotl<u32>(x7 ^ x11, 7);
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 16); x10 += x15; x5 = rotl<u32>(x5 ^ x10, 12);
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 8); x10 += x15; x5 = rotl<u32>(x5 ^ x10, 7);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 16); x11 += x12; x6 = rotl<u32>(x6 ^ x11, 12);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 8); x11 += x12; x6 = rotl<u32>(x6 ^ x11, 7);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 16); x8 += x13; x7 = rotl<u32>(x7 ^ x8, 12);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 8); x8 += x13; x7 = rotl<u32>(x7 ^ x8, 7);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 16); x9 += x14; x4 = rotl<u32>(x4 ^ x9, 12);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 8); x9 += x14; x4 = rotl<u32>(x4 ^ x9, 7);
  }
  // No feed-forward; output words 0..3 and 12..15 (draft §2.2).
  store<u32>(out, x0, 0); store<u32>(out, x1, 4); store<u32>(out, x2, 8); store<u32>(out, x3, 12);
  store<u32>(out, x12, 16); store<u32>(out, x13, 20); store<u32>(out, x14, 24); store<u32>(out, x15, 28);
}

/**
 * ChaCha20 (RFC 8439 §2.4) without authentication: XORs `data` with the key stream.
 * Prefer the AEADs in `chacha20poly1305.ts`; raw ChaCha20 gives no integrity.
 *
 * @param key 32 bytes. @param nonce 12 bytes. @param counter initial block counter.
 * @returns a new array of `data.length` bytes.
 * @throws (aborts) if the key or nonce has the wrong length.
 */
export function chacha20(key: Uint8Array, nonce: Uint8Array, counter: u32, data: Uint8Array): Uint8Array {
  assert(key.length == 32 && nonce.length == 12, 'chacha20: key must be 32 bytes and nonce 12 bytes');
  const out = new Uint8Array(data.length);
  _chacha20XorPtr(key.dataStart, nonce.dataStart, counter, data.dataStart, out.dataStart, <usize>data.length);
  return out;
}

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2).
 * @param key 32 bytes. @param nonce16 16 bytes. @returns a new 32-byte subkey.
 * @throws (aborts) on wrong lengths.
 */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  assert(key.length == 32 && nonce16.length == 16, 'hchacha20: key must be 32 bytes and nonce 16 bytes');
  const out = new Uint8Array(32);
  _hchacha20Ptr(out.dataStart, key.dataStart, nonce16.dataStart);
  return out;
}
