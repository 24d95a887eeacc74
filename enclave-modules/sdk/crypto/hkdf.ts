/**
 * HKDF-SHA-256 (RFC 5869): extract-then-expand key derivation.
 *
 * Written for this project; layout after noble-hashes `hkdf.ts`.
 */

import { HmacSha256 } from './hmac';
import { _wipePtr } from './utils';

/** Largest output HKDF-SHA-256 can produce: 255 * HashLen (RFC 5869 §2.3). */
export const HKDF_SHA256_MAX_OUTPUT: i32 = 255 * 32;

let _ctx: HmacSha256 | null = null;
const _prk = new StaticArray<u8>(32);
const _t = new StaticArray<u8>(32);

// @ts-ignore: decorator
@inline
function ctx(): HmacSha256 {
  let c = _ctx;
  if (c === null) { c = new HmacSha256(new Uint8Array(0)); _ctx = c; }
  return c;
}

/**
 * HKDF-Extract (RFC 5869 §2.2): PRK = HMAC-Hash(salt, IKM). An empty salt means HashLen
 * zero bytes, which HMAC pads to the same block, so no special case is needed.
 * @internal
 */
export function _hkdfExtractPtr(prk: usize, salt: usize, saltLen: usize, ikm: usize, ikmLen: usize): void {
  const m = ctx();
  m._setKey(salt, saltLen);
  m._update(ikm, ikmLen);
  m._finish(prk);
  m.wipe();
}

/**
 * HKDF-Expand (RFC 5869 §2.3) of a 32-byte PRK into `len` bytes at `out`.
 * Returns false (writing nothing) if `len` > 255 * 32. @internal
 */
export function _hkdfExpandPtr(out: usize, len: usize, prk: usize, info: usize, infoLen: usize): bool {
  if (len > <usize>HKDF_SHA256_MAX_OUTPUT) return false;
  const m = ctx();
  m._setKey(prk, 32);
  const t = changetype<usize>(_t);
  const ctr = changetype<usize>(_t) + 31; // reuse: counter byte written just before hashing
  let done: usize = 0;
  let i: u8 = 1;
  while (done < len) {
    // T(i) = HMAC-Hash(PRK, T(i-1) | info | i), T(0) = empty.
    if (i > 1) m._update(t, 32);
    m._update(info, infoLen);
    store<u8>(ctr, i); // ctr aliases the last byte of T(i-1), which was already absorbed
    m._update(ctr, 1);
    m._finish(t);
    const n = min<usize>(32, len - done);
    memory.copy(out + done, t, n);
    done += n;
    i++;
  }
  m.wipe();
  _wipePtr(t, 32);
  return true;
}

/**
 * HKDF-SHA-256 (RFC 5869 §2): derives `length` bytes from input keying material.
 *
 * @param ikm input keying material (secret).
 * @param salt optional non-secret random value; empty means "no salt" (RFC 5869 §3.1).
 * @param info context and application-specific information (RFC 5869 §3.2).
 * @param length output length, at most 8160 (255 * 32, RFC 5869 §2.3).
 * @returns the output keying material, or `null` if `length` is out of range.
 * @example
 * const key = hkdfSha256(secret, salt, info, 32);
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: i32): Uint8Array | null {
  if (length < 0 || length > HKDF_SHA256_MAX_OUTPUT) return null;
  const prk = changetype<usize>(_prk);
  _hkdfExtractPtr(prk, salt.dataStart, <usize>salt.length, ikm.dataStart, <usize>ikm.length);
  const out = new Uint8Array(length);
  _hkdfExpandPtr(out.dataStart, <usize>length, prk, info.dataStart, <usize>info.length);
  _wipePtr(prk, 32);
  return out;
}

/** HKDF-Extract (RFC 5869 §2.2). @returns the 32-byte pseudorandom key. */
export function hkdfSha256Extract(ikm: Uint8Array, salt: Uint8Array): Uint8Array {
  const prk = new Uint8Array(32);
  _hkdfExtractPtr(prk.dataStart, salt.dataStart, <usize>salt.length, ikm.dataStart, <usize>ikm.length);
  return prk;
}

/**
 * HKDF-Expand (RFC 5869 §2.3).
 * @param prk a 32-byte pseudorandom key (from {@link hkdfSha256Extract}).
 * @returns `length` bytes, or `null` if `prk` is not 32 bytes or `length` > 8160.
 */
export function hkdfSha256Expand(prk: Uint8Array, info: Uint8Array, length: i32): Uint8Array | null {
  if (prk.length != 32 || length < 0 || length > HKDF_SHA256_MAX_OUTPUT) return null;
  const out = new Uint8Array(length);
  _hkdfExpandPtr(out.dataStart, <usize>length, prk.dataStart, info.dataStart, <usize>info.length);
  return out;
}
