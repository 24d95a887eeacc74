/**
 * ChaCha20-Poly1305 AEAD (RFC 8439 §2.8) and XChaCha20-Poly1305
 * (draft-irtf-cfrg-xchacha-03 §2.3).
 *
 * Written for this project from the RFC; layout after noble-ciphers `chacha.ts`.
 * `open` authenticates before it decrypts and compares tags in constant time
 * (RFC 8439 §4); on failure it returns `null` and writes no plaintext.
 */

import { _chacha20XorPtr, _hchacha20Ptr } from './chacha20';
import { _polyInit, _polyPadded, _polyBlocks, _polyFinish } from './poly1305';
import { _equalPtr, _wipeStatic } from './utils';

/** Key length in bytes for both AEADs. */
export const AEAD_KEY_LEN: i32 = 32;
/** ChaCha20-Poly1305 nonce length (RFC 8439 §2.8). */
export const CHACHA20POLY1305_NONCE_LEN: i32 = 12;
/** XChaCha20-Poly1305 nonce length (draft-irtf-cfrg-xchacha-03 §2.3). */
export const XCHACHA20POLY1305_NONCE_LEN: i32 = 24;
/** Tag length in bytes. */
export const AEAD_TAG_LEN: i32 = 16;

const _otk = new StaticArray<u8>(64); // block 0 of the key stream: Poly1305 key (§2.6)
const _lens = new StaticArray<u8>(16); // le64(aad length) || le64(ciphertext length)
const _tag = new StaticArray<u8>(16);
const _subkey = new StaticArray<u8>(32); // XChaCha20 subkey
const _nonce12 = new StaticArray<u8>(12); // XChaCha20 inner nonce

/** Computes the RFC 8439 §2.8 tag over aad and ciphertext into `tag`. */
function macTag(tag: usize, key: usize, nonce: usize, aad: usize, aadLen: usize, ct: usize, ctLen: usize): void {
  const otk = changetype<usize>(_otk);
  // §2.6: the one-time key is the first 32 bytes of ChaCha20 block 0.
  memory.fill(otk, 0, 64);
  _chacha20XorPtr(key, nonce, 0, otk, otk, 64);
  _polyInit(otk);
  _wipeStatic(_otk);
  _polyPadded(aad, aadLen);
  _polyPadded(ct, ctLen);
  const l = changetype<usize>(_lens);
  store<u64>(l, <u64>aadLen, 0);
  store<u64>(l, <u64>ctLen, 8);
  _polyBlocks(l, 1, 1 << 24);
  _polyFinish(tag);
}

/**
 * Seals `ptLen` bytes: writes ciphertext then the 16-byte tag at `out` (which must have
 * room for ptLen + 16 bytes and may equal `pt`). Lengths are the caller's job. @internal
 */
export function _sealPtr(out: usize, key: usize, nonce: usize, aad: usize, aadLen: usize, pt: usize, ptLen: usize): void {
  _chacha20XorPtr(key, nonce, 1, pt, out, ptLen);
  macTag(out + ptLen, key, nonce, aad, aadLen, out, ptLen);
}

/**
 * Verifies the tag after `ctLen` ciphertext bytes at `ct` and, only if it matches,
 * decrypts into `out`. Returns false (writing nothing) on mismatch. @internal
 */
export function _openPtr(out: usize, key: usize, nonce: usize, aad: usize, aadLen: usize, ct: usize, ctLen: usize): bool {
  const tag = changetype<usize>(_tag);
  macTag(tag, key, nonce, aad, aadLen, ct, ctLen);
  const ok = _equalPtr(tag, ct + ctLen, 16);
  _wipeStatic(_tag);
  if (!ok) return false; // §4: reveal nothing but the failure; decrypt nothing
  _chacha20XorPtr(key, nonce, 1, ct, out, ctLen);
  return true;
}

/** Derives the XChaCha20 subkey and inner nonce (draft §2.3). @internal */
export function _xnonce(key: usize, nonce24: usize): void {
  _hchacha20Ptr(changetype<usize>(_subkey), key, nonce24);
  const n = changetype<usize>(_nonce12);
  store<u32>(n, 0, 0);
  store<u64>(n, load<u64>(nonce24, 16), 4);
}

/** XChaCha20-Poly1305 seal on raw memory. @internal */
export function _xsealPtr(out: usize, key: usize, nonce: usize, aad: usize, aadLen: usize, pt: usize, ptLen: usize): void {
  _xnonce(key, nonce);
  _sealPtr(out, changetype<usize>(_subkey), changetype<usize>(_nonce12), aad, aadLen, pt, ptLen);
  _wipeStatic(_subkey);
}

/** XChaCha20-Poly1305 open on raw memory. @internal */
export function _xopenPtr(out: usize, key: usize, nonce: usize, aad: usize, aadLen: usize, ct: usize, ctLen: usize): bool {
  _xnonce(key, nonce);
  const ok = _openPtr(out, changetype<usize>(_subkey), changetype<usize>(_nonce12), aad, aadLen, ct, ctLen);
  _wipeStatic(_subkey);
  return ok;
}

/**
 * ChaCha20-Poly1305 encryption (RFC 8439 §2.8).
 *
 * @param key 32-byte secret key.
 * @param nonce 12 bytes, never reused with the same key (RFC 8439 §4). For random nonces
 *   prefer {@link xchacha20poly1305Seal}.
 * @param plaintext any length.
 * @param aad additional authenticated data (not encrypted).
 * @returns ciphertext followed by the 16-byte tag.
 * @throws (aborts) if the key or nonce has the wrong length: a programming error.
 * @example
 * const sealed = chacha20poly1305Seal(key, nonce, pt, aad);
 */
export function chacha20poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  assert(key.length == 32 && nonce.length == 12, 'chacha20poly1305: key must be 32 bytes and nonce 12 bytes');
  const out = new Uint8Array(plaintext.length + 16);
  _sealPtr(out.dataStart, key.dataStart, nonce.dataStart, aad.dataStart, <usize>aad.length, plaintext.dataStart, <usize>plaintext.length);
  return out;
}

/**
 * ChaCha20-Poly1305 decryption (RFC 8439 §2.8).
 *
 * @param sealed ciphertext followed by the 16-byte tag.
 * @returns the plaintext, or `null` if the tag does not verify or any length is wrong
 *   (one outcome for every failure, so callers cannot leak which check failed).
 */
export function chacha20poly1305Open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (key.length != 32 || nonce.length != 12 || sealed.length < 16) return null;
  const ctLen = sealed.length - 16;
  const out = new Uint8Array(ctLen);
  if (!_openPtr(out.dataStart, key.dataStart, nonce.dataStart, aad.dataStart, <usize>aad.length, sealed.dataStart, <usize>ctLen)) return null;
  return out;
}

/**
 * XChaCha20-Poly1305 encryption (draft-irtf-cfrg-xchacha-03 §2.3): a 24-byte nonce, large
 * enough to be chosen at random for every message.
 *
 * @returns ciphertext followed by the 16-byte tag.
 * @throws (aborts) if the key is not 32 bytes or the nonce not 24 bytes.
 * @example
 * const sealed = xchacha20poly1305Seal(key, randomNonce24, pt, aad);
 */
export function xchacha20poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  assert(key.length == 32 && nonce.length == 24, 'xchacha20poly1305: key must be 32 bytes and nonce 24 bytes');
  const out = new Uint8Array(plaintext.length + 16);
  _xsealPtr(out.dataStart, key.dataStart, nonce.dataStart, aad.dataStart, <usize>aad.length, plaintext.dataStart, <usize>plaintext.length);
  return out;
}

/**
 * XChaCha20-Poly1305 decryption.
 * @returns the plaintext, or `null` on any failure (bad tag or wrong lengths).
 */
export function xchacha20poly1305Open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (key.length != 32 || nonce.length != 24 || sealed.length < 16) return null;
  const ctLen = sealed.length - 16;
  const out = new Uint8Array(ctLen);
  if (!_xopenPtr(out.dataStart, key.dataStart, nonce.dataStart, aad.dataStart, <usize>aad.length, sealed.dataStart, <usize>ctLen)) return null;
  return out;
}
