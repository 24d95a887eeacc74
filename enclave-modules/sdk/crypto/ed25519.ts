/**
 * Ed25519 signatures (RFC 8032 §5.1): key generation, signing and strict verification.
 *
 * Written for this project from RFC 8032 over the ref10-style group code in
 * `_edwards25519.ts`. The verification policy follows libsodium's
 * `crypto_sign_verify_detached` (also used by Frank Denis's wasm-crypto): it rejects
 *  - S >= L (RFC 8032 §5.1.7 step 1; prevents signature malleability),
 *  - a public key or R whose y is not canonical (>= p) or that does not decode,
 *  - a public key of small order (the identity and the 7 other torsion points),
 *  - an R of small order,
 * and checks the cofactorless equation [S]B = R + [k]A by re-encoding R' = [S]B - [k]A and
 * comparing bytes (which also rejects any non-canonical encoding of R). This is the strict
 * behaviour Wycheproof's ed25519 vectors expect.
 *
 * Timing: signing and key generation are constant time in the seed, the secret scalar and
 * the nonce (fixed-base multiplication with masked table selection; TweetNaCl-style mod-L
 * arithmetic). Verification is variable time: it only handles public data.
 */

import { Sha512 } from './sha512';
import { _scReduce, _scMulAdd, _scIsCanonical } from './_scalar25519';
import {
  _decode, _doubleScalarmultVartime, _encode, _encodeWipe, _hasSmallOrder, _scalarmultBase,
} from './_edwards25519';
import { feNeg } from './_field25519';
import { _wipePtr } from './utils';

const H = new Sha512();
const az = memory.data(64, 16); // SHA-512(seed): a (clamped) || prefix
const nonce = memory.data(64, 16);
const hram = memory.data(64, 16);
const rr = memory.data(32, 16);
const kk = memory.data(32, 16);
const pk = memory.data(32, 16);
const P = memory.data(320, 16);
const R = memory.data(320, 16);
const Rb = memory.data(32, 16);

/** Expands a 32-byte seed into the clamped scalar a (az[0..32]) and prefix (az[32..64]) (RFC 8032 §5.1.5). */
function expand(seed: usize): void {
  H.reset();
  H._update(seed, 32);
  H._finish(az);
  store<u8>(az, load<u8>(az) & 248);
  store<u8>(az + 31, (load<u8>(az + 31) & 127) | 64);
}

/** Public key A = [a]B for a 32-byte seed, into `out` (RFC 8032 §5.1.5). @internal */
export function _ed25519PublicKeyPtr(out: usize, seed: usize): void {
  expand(seed);
  _scalarmultBase(P, az);
  _encode(out, P);
  _wipePtr(az, 64);
  _wipePtr(P, 320);
  _encodeWipe();
}

/** 64-byte signature of `msgLen` bytes at `msg` under a 32-byte seed (RFC 8032 §5.1.6). @internal */
export function _ed25519SignPtr(sig: usize, seed: usize, msg: usize, msgLen: usize): void {
  expand(seed);
  // A = [a]B (recomputed so that callers cannot pair a seed with a wrong public key).
  _scalarmultBase(P, az);
  _encode(pk, P);
  // Step 2: r = SHA-512(prefix || M) mod L.
  H.reset();
  H._update(az + 32, 32);
  H._update(msg, msgLen);
  H._finish(nonce);
  _scReduce(rr, nonce);
  // Step 3: R = [r]B.
  _scalarmultBase(P, rr);
  _encode(sig, P);
  // Step 4: k = SHA-512(R || A || M) mod L.
  H.reset();
  H._update(sig, 32);
  H._update(pk, 32);
  H._update(msg, msgLen);
  H._finish(hram);
  _scReduce(kk, hram);
  // Step 5: S = (r + k * a) mod L.
  _scMulAdd(sig + 32, kk, az, rr);
  _wipePtr(az, 64); _wipePtr(nonce, 64); _wipePtr(rr, 32); _wipePtr(P, 320);
  _encodeWipe();
}

/**
 * 1 if `sig` (64 bytes) is a valid signature of the message by `pub` (32 bytes) under the
 * strict rules described at the top of this file, else 0 (RFC 8032 §5.1.7). @internal
 */
export function _ed25519VerifyPtr(sig: usize, pub: usize, msg: usize, msgLen: usize): i32 {
  if (!_scIsCanonical(sig + 32)) return 0; // S < L
  if (!_decode(P, pub)) return 0; // canonical y, on the curve
  if (_hasSmallOrder(P)) return 0;
  // k = SHA-512(R || A || M) mod L.
  H.reset();
  H._update(sig, 32);
  H._update(pub, 32);
  H._update(msg, msgLen);
  H._finish(hram);
  _scReduce(kk, hram);
  // R' = [k](-A) + [S]B.
  feNeg(P, P);
  feNeg(P + 240, P + 240);
  _doubleScalarmultVartime(R, kk, P, sig + 32);
  if (_hasSmallOrder(R)) return 0;
  _encode(Rb, R);
  for (let i: usize = 0; i < 32; i += 8) if (load<u64>(Rb + i) != load<u64>(sig + i)) return 0;
  return 1;
}

/**
 * Derives the 32-byte public key of a 32-byte secret seed (RFC 8032 §5.1.5).
 * @throws (aborts) if the seed is not 32 bytes.
 * @example
 * const pub = ed25519PublicKey(seed);
 */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  assert(seed.length == 32, 'ed25519: secret key (seed) must be 32 bytes');
  const out = new Uint8Array(32);
  _ed25519PublicKeyPtr(out.dataStart, seed.dataStart);
  return out;
}

/**
 * Signs `msg` with a 32-byte secret seed (pure Ed25519, RFC 8032 §5.1.6). Deterministic:
 * the nonce is derived from the key and the message, so no randomness is needed.
 * @returns the 64-byte signature R || S.
 * @throws (aborts) if the seed is not 32 bytes.
 * @example
 * const sig = ed25519Sign(msg, seed);
 */
export function ed25519Sign(msg: Uint8Array, seed: Uint8Array): Uint8Array {
  assert(seed.length == 32, 'ed25519: secret key (seed) must be 32 bytes');
  const out = new Uint8Array(64);
  _ed25519SignPtr(out.dataStart, seed.dataStart, msg.dataStart, <usize>msg.length);
  return out;
}

/**
 * Verifies a pure Ed25519 signature (RFC 8032 §5.1.7) with the strict checks described
 * at the top of this file. Never aborts: wrong lengths simply fail.
 * @returns `true` only for a valid signature.
 */
export function ed25519Verify(sig: Uint8Array, msg: Uint8Array, publicKey: Uint8Array): bool {
  if (sig.length != 64 || publicKey.length != 32) return false;
  return _ed25519VerifyPtr(sig.dataStart, publicKey.dataStart, msg.dataStart, <usize>msg.length) == 1;
}
