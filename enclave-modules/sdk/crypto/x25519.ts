/**
 * X25519 Diffie-Hellman (RFC 7748 §5, §6.1).
 *
 * Written for this project from RFC 7748 §5's ladder pseudo-code over the ref10-style field
 * in `_field25519.ts`. Constant time: the ladder always runs 255 steps, and the secret
 * scalar bit only feeds the mask of `feCswap`; the bit is read from a memory address that
 * depends on the public loop index, never on the secret.
 */

import {
  feAdd, feCopy, feCswap, feFromBytes, feInvert, feMul, feMul121665, feOne, feSq, feSub,
  feToBytes, feWipeScratch, feZero,
} from './_field25519';
import { _equalPtr, _wipePtr } from './utils';

const x1 = memory.data(80, 16), x2 = memory.data(80, 16), z2 = memory.data(80, 16);
const x3 = memory.data(80, 16), z3 = memory.data(80, 16);
const tA = memory.data(80, 16), tAA = memory.data(80, 16), tB = memory.data(80, 16), tBB = memory.data(80, 16);
const tE = memory.data(80, 16), tC = memory.data(80, 16), tD = memory.data(80, 16);
const tDA = memory.data(80, 16), tCB = memory.data(80, 16);
const kbuf = memory.data(32, 16);
const ZERO32 = memory.data(32, 16);
// RFC 7748 §6.1: the base point u = 9.
const BASE_U: usize = memory.data<u8>([9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

/**
 * out = X25519(k, u) over raw memory (RFC 7748 §5). Returns 0 if the result is all zeros
 * (u of small order), else 1; `out` is written in both cases. @internal
 */
export function _x25519Ptr(out: usize, scalar: usize, u: usize): i32 {
  // decodeScalar25519 (RFC 7748 §5): clear bits 0-2 and 255, set bit 254.
  memory.copy(kbuf, scalar, 32);
  store<u8>(kbuf, load<u8>(kbuf) & 248);
  store<u8>(kbuf + 31, (load<u8>(kbuf + 31) & 127) | 64);
  feFromBytes(x1, u); // decodeUCoordinate masks bit 255
  feOne(x2); feZero(z2);
  feCopy(x3, x1); feOne(z3);
  let swap: i64 = 0;
  for (let t = 254; t >= 0; t--) {
    const kt = <i64>((load<u8>(kbuf + (<usize>t >> 3)) >> (<u8>t & 7)) & 1);
    swap ^= kt;
    feCswap(x2, x3, swap);
    feCswap(z2, z3, swap);
    swap = kt;
    feAdd(tA, x2, z2);      // A = x_2 + z_2
    feSq(tAA, tA);          // AA = A^2
    feSub(tB, x2, z2);      // B = x_2 - z_2
    feSq(tBB, tB);          // BB = B^2
    feSub(tE, tAA, tBB);    // E = AA - BB
    feAdd(tC, x3, z3);      // C = x_3 + z_3
    feSub(tD, x3, z3);      // D = x_3 - z_3
    feMul(tDA, tD, tA);     // DA = D * A
    feMul(tCB, tC, tB);     // CB = C * B
    feAdd(x3, tDA, tCB);
    feSq(x3, x3);           // x_3 = (DA + CB)^2
    feSub(z3, tDA, tCB);
    feSq(z3, z3);
    feMul(z3, x1, z3);      // z_3 = x_1 * (DA - CB)^2
    feMul(x2, tAA, tBB);    // x_2 = AA * BB
    feMul121665(z2, tE);
    feAdd(z2, tAA, z2);
    feMul(z2, tE, z2);      // z_2 = E * (AA + a24 * E)
  }
  feCswap(x2, x3, swap);
  feCswap(z2, z3, swap);
  feInvert(z2, z2);
  feMul(x2, x2, z2);
  feToBytes(out, x2);
  // Wipe everything derived from the scalar.
  _wipePtr(kbuf, 32);
  feZero(x2); feZero(z2); feZero(x3); feZero(z3); feZero(tA); feZero(tAA); feZero(tB); feZero(tBB);
  feZero(tE); feZero(tC); feZero(tD); feZero(tDA); feZero(tCB);
  feWipeScratch();
  // RFC 7748 §6.1: an all-zero shared secret means the peer sent a small-order point.
  return 1 - _equalPtr(out, ZERO32, 32);
}

/**
 * X25519 scalar multiplication (RFC 7748 §5): the shared secret of `secretKey` and a
 * peer's `publicKey`.
 *
 * @param secretKey 32 random bytes (clamped internally as RFC 7748 §5 decodeScalar25519).
 * @param publicKey the peer's 32-byte u-coordinate (bit 255 ignored, non-canonical values
 *   accepted, per RFC 7748 §5).
 * @returns the 32-byte shared secret, or `null` when it is all zeros, i.e. the peer's key
 *   has small order: RFC 7748 §6.1 lets a protocol abort there, and we do so that a
 *   contributory key exchange is not silently reduced to a constant.
 * @throws (aborts) if either argument is not 32 bytes.
 * @example
 * const shared = x25519(mySecret, theirPublic); // hash it (HKDF) before use as a key
 */
export function x25519(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  assert(secretKey.length == 32 && publicKey.length == 32, 'x25519: keys must be 32 bytes');
  const out = new Uint8Array(32);
  if (_x25519Ptr(out.dataStart, secretKey.dataStart, publicKey.dataStart) == 0) return null;
  return out;
}

/**
 * The public key for an X25519 secret key: X25519(k, 9) (RFC 7748 §6.1).
 * @throws (aborts) if the secret key is not 32 bytes.
 */
export function x25519PublicKey(secretKey: Uint8Array): Uint8Array {
  assert(secretKey.length == 32, 'x25519: secret key must be 32 bytes');
  const out = new Uint8Array(32);
  _x25519Ptr(out.dataStart, secretKey.dataStart, BASE_U);
  return out;
}
