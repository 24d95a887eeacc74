/**
 * Poly1305 one-time authenticator (RFC 8439 §2.5).
 *
 * Arithmetic after Andrew Moon's poly1305-donna 32-bit variant (public domain / MIT):
 * h and r in five 26-bit limbs, products in i64, which Wasm does natively. Rewritten for
 * AssemblyScript for this project.
 *
 * Constant time: the only data-dependent choice, the final reduction of h modulo
 * 2^130 - 5, is a mask select (no branch); no memory index depends on key or message.
 */

import { _wipeStatic } from './utils';

// Accumulator and key, shared by all users (Wasm is single-threaded; each MAC computation
// runs to completion before another starts).
// [0..4] r, [5..9] h, [10..13] s = pad (key bytes 16..31).
const S = new StaticArray<u32>(14);
const _last = new StaticArray<u8>(16);

/** Clamps r (RFC 8439 §2.5) and loads r and s from a 32-byte one-time key. @internal */
export function _polyInit(key: usize): void {
  const s = changetype<usize>(S);
  store<u32>(s, load<u32>(key, 0) & 0x3ffffff, 0);
  store<u32>(s, (load<u32>(key, 3) >>> 2) & 0x3ffff03, 4);
  store<u32>(s, (load<u32>(key, 6) >>> 4) & 0x3ffc0ff, 8);
  store<u32>(s, (load<u32>(key, 9) >>> 6) & 0x3f03fff, 12);
  store<u32>(s, (load<u32>(key, 12) >>> 8) & 0x00fffff, 16);
  for (let i: usize = 0; i < 5; i++) store<u32>(s + 20 + (i << 2), 0);
  store<u32>(s, load<u32>(key, 16), 40);
  store<u32>(s, load<u32>(key, 20), 44);
  store<u32>(s, load<u32>(key, 24), 48);
  store<u32>(s, load<u32>(key, 28), 52);
}

/**
 * Absorbs `nblocks` 16-byte blocks; `hibit` is 1<<24 for full blocks (the appended 0x01
 * byte of RFC 8439 §2.5.1) and 0 for a final block padded by the caller. @internal
 */
export function _polyBlocks(m: usize, nblocks: usize, hibit: u32): void {
  const s = changetype<usize>(S);
  const r0 = <u64>load<u32>(s, 0), r1 = <u64>load<u32>(s, 4), r2 = <u64>load<u32>(s, 8);
  const r3 = <u64>load<u32>(s, 12), r4 = <u64>load<u32>(s, 16);
  const s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  let h0 = load<u32>(s, 20), h1 = load<u32>(s, 24), h2 = load<u32>(s, 28), h3 = load<u32>(s, 32), h4 = load<u32>(s, 36);
  const end = m + (nblocks << 4);
  while (m < end) {
    h0 += load<u32>(m, 0) & 0x3ffffff;
    h1 += (load<u32>(m, 3) >>> 2) & 0x3ffffff;
    h2 += (load<u32>(m, 6) >>> 4) & 0x3ffffff;
    h3 += (load<u32>(m, 9) >>> 6) & 0x3ffffff;
    h4 += (load<u32>(m, 12) >>> 8) | hibit;
    const H0 = <u64>h0, H1 = <u64>h1, H2 = <u64>h2, H3 = <u64>h3, H4 = <u64>h4;
    const d0 = H0 * r0 + H1 * s4 + H2 * s3 + H3 * s2 + H4 * s1;
    let d1 = H0 * r1 + H1 * r0 + H2 * s4 + H3 * s3 + H4 * s2;
    let d2 = H0 * r2 + H1 * r1 + H2 * r0 + H3 * s4 + H4 * s3;
    let d3 = H0 * r3 + H1 * r2 + H2 * r1 + H3 * r0 + H4 * s4;
    let d4 = H0 * r4 + H1 * r3 + H2 * r2 + H3 * r1 + H4 * r0;
    let c = d0 >>> 26; h0 = <u32>d0 & 0x3ffffff;
    d1 += c; c = d1 >>> 26; h1 = <u32>d1 & 0x3ffffff;
    d2 += c; c = d2 >>> 26; h2 = <u32>d2 & 0x3ffffff;
    d3 += c; c = d3 >>> 26; h3 = <u32>d3 & 0x3ffffff;
    d4 += c; c = d4 >>> 26; h4 = <u32>d4 & 0x3ffffff;
    h0 += <u32>c * 5; const c2 = h0 >>> 26; h0 &= 0x3ffffff;
    h1 += c2;
    m += 16;
  }
  store<u32>(s, h0, 20); store<u32>(s, h1, 24); store<u32>(s, h2, 28); store<u32>(s, h3, 32); store<u32>(s, h4, 36);
}

/**
 * Absorbs `len` bytes as whole 16-byte blocks, zero-padding the last one (the
 * `pad16` of RFC 8439 §2.8 used by the AEAD construction). @internal
 */
export function _polyPadded(m: usize, len: usize): void {
  const full = len >> 4;
  if (full > 0) _polyBlocks(m, full, 1 << 24);
  const rest = len & 15;
  if (rest > 0) {
    const b = changetype<usize>(_last);
    memory.fill(b, 0, 16);
    memory.copy(b, m + (full << 4), rest);
    _polyBlocks(b, 1, 1 << 24);
  }
}

/**
 * Absorbs a whole message with the standard final-block padding of RFC 8439 §2.5.1
 * (append 0x01 then zeros). @internal
 */
export function _polyMessage(m: usize, len: usize): void {
  const full = len >> 4;
  if (full > 0) _polyBlocks(m, full, 1 << 24);
  const rest = len & 15;
  if (rest > 0) {
    const b = changetype<usize>(_last);
    memory.fill(b, 0, 16);
    memory.copy(b, m + (full << 4), rest);
    store<u8>(b + rest, 1);
    _polyBlocks(b, 1, 0);
  }
}

/** Final reduction and tag = (h + s) mod 2^128 into 16 bytes at `out`; wipes state. @internal */
export function _polyFinish(out: usize): void {
  const s = changetype<usize>(S);
  let h0 = load<u32>(s, 20), h1 = load<u32>(s, 24), h2 = load<u32>(s, 28), h3 = load<u32>(s, 32), h4 = load<u32>(s, 36);
  // Fully carry h.
  let c = h1 >>> 26; h1 &= 0x3ffffff;
  h2 += c; c = h2 >>> 26; h2 &= 0x3ffffff;
  h3 += c; c = h3 >>> 26; h3 &= 0x3ffffff;
  h4 += c; c = h4 >>> 26; h4 &= 0x3ffffff;
  h0 += c * 5; c = h0 >>> 26; h0 &= 0x3ffffff;
  h1 += c;
  // g = h + -p = h + 5 - 2^130.
  let g0 = h0 + 5; c = g0 >>> 26; g0 &= 0x3ffffff;
  let g1 = h1 + c; c = g1 >>> 26; g1 &= 0x3ffffff;
  let g2 = h2 + c; c = g2 >>> 26; g2 &= 0x3ffffff;
  let g3 = h3 + c; c = g3 >>> 26; g3 &= 0x3ffffff;
  const g4 = h4 + c - (1 << 26);
  // Select h if h < p (g4 negative), else g, with a mask rather than a branch.
  let mask = (g4 >>> 31) - 1; // all ones iff g4 >= 0, i.e. h >= p
  g0 &= mask; g1 &= mask; g2 &= mask; g3 &= mask;
  const g4m = g4 & mask;
  mask = ~mask;
  h0 = (h0 & mask) | g0; h1 = (h1 & mask) | g1; h2 = (h2 & mask) | g2; h3 = (h3 & mask) | g3;
  h4 = (h4 & mask) | g4m;
  // h mod 2^128 as four 32-bit words.
  const w0 = h0 | (h1 << 26);
  const w1 = (h1 >>> 6) | (h2 << 20);
  const w2 = (h2 >>> 12) | (h3 << 14);
  const w3 = (h3 >>> 18) | (h4 << 8);
  // tag = (h + s) mod 2^128 (RFC 8439 §2.5.1).
  let f: u64 = <u64>w0 + <u64>load<u32>(s, 40); store<u32>(out, <u32>f, 0);
  f = <u64>w1 + <u64>load<u32>(s, 44) + (f >>> 32); store<u32>(out, <u32>f, 4);
  f = <u64>w2 + <u64>load<u32>(s, 48) + (f >>> 32); store<u32>(out, <u32>f, 8);
  f = <u64>w3 + <u64>load<u32>(s, 52) + (f >>> 32); store<u32>(out, <u32>f, 12);
  _wipeStatic(S);
  _wipeStatic(_last);
}

/**
 * Poly1305 tag of `msg` under a 32-byte one-time key (RFC 8439 §2.5). A key must never be
 * used for two messages; the AEADs derive a fresh one per nonce.
 * @returns a new 16-byte tag.
 * @throws (aborts) if the key is not 32 bytes.
 */
export function poly1305(key: Uint8Array, msg: Uint8Array): Uint8Array {
  assert(key.length == 32, 'poly1305: key must be 32 bytes');
  const out = new Uint8Array(16);
  _polyInit(key.dataStart);
  _polyMessage(msg.dataStart, <usize>msg.length);
  _polyFinish(out.dataStart);
  return out;
}
