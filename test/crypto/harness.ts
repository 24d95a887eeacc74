// Test-only AssemblyScript harness: exposes the crypto SDK over linear memory so that the
// vitest suites can drive it in bulk without the msgpack boundary (bench/crypto.ts has its own entry).
//
// `*Api` exports go through the public Uint8Array API (what enclave code calls); the
// others call the raw pointer cores directly (used by the benchmark to measure the
// primitive itself, without the per-call Uint8Array allocations).

import {
  Sha256, Sha512, HmacSha256, HmacSha512, sha256, sha512, hmacSha256, hmacSha512, hkdfSha256, chacha20poly1305Seal, chacha20poly1305Open,
  xchacha20poly1305Seal, xchacha20poly1305Open, x25519, x25519PublicKey, ed25519PublicKey,
  ed25519Sign, ed25519Verify, equalBytes, wipe, poly1305, chacha20, hchacha20,
} from '../../enclave-modules/sdk/crypto/index';
import { _sha256Ptr } from '../../enclave-modules/sdk/crypto/sha256';
import { _sha512Ptr } from '../../enclave-modules/sdk/crypto/sha512';
import { _hmacSha256Ptr, _hmacSha512Ptr } from '../../enclave-modules/sdk/crypto/hmac';
import { _sealPtr, _openPtr, _xsealPtr, _xopenPtr } from '../../enclave-modules/sdk/crypto/chacha20poly1305';
import { _x25519Ptr } from '../../enclave-modules/sdk/crypto/x25519';
import { _ed25519SignPtr, _ed25519VerifyPtr, _ed25519PublicKeyPtr } from '../../enclave-modules/sdk/crypto/ed25519';

/** Scratch memory outside the GC heap. */
export function alloc(len: usize): usize {
  return heap.alloc(len);
}

export function free(ptr: usize): void {
  heap.free(ptr);
}

function view(ptr: usize, len: usize): Uint8Array {
  const a = new Uint8Array(<i32>len);
  memory.copy(a.dataStart, ptr, len);
  return a;
}

function put(out: usize, a: Uint8Array): void {
  memory.copy(out, a.dataStart, <usize>a.length);
}

// ---- public API ----

export function sha256Api(out: usize, p: usize, n: usize): void { put(out, sha256(view(p, n))); }
export function sha512Api(out: usize, p: usize, n: usize): void { put(out, sha512(view(p, n))); }
export function hmacSha256Api(out: usize, k: usize, kn: usize, m: usize, mn: usize): void {
  put(out, hmacSha256(view(k, kn), view(m, mn)));
}
export function hmacSha512Api(out: usize, k: usize, kn: usize, m: usize, mn: usize): void {
  put(out, hmacSha512(view(k, kn), view(m, mn)));
}
/** Returns 1 and writes `len` bytes, or 0 if HKDF refused the length. */
export function hkdfSha256Api(out: usize, len: i32, ikm: usize, ikmN: usize, salt: usize, saltN: usize, info: usize, infoN: usize): i32 {
  const r = hkdfSha256(view(ikm, ikmN), view(salt, saltN), view(info, infoN), len);
  if (r === null) return 0;
  put(out, r);
  return 1;
}
/** alg 0: ChaCha20-Poly1305, 1: XChaCha20-Poly1305. Writes ct || tag. */
export function sealApi(alg: i32, out: usize, key: usize, nonce: usize, nonceN: usize, aad: usize, aadN: usize, pt: usize, ptN: usize): void {
  const r = alg == 0
    ? chacha20poly1305Seal(view(key, 32), view(nonce, nonceN), view(pt, ptN), view(aad, aadN))
    : xchacha20poly1305Seal(view(key, 32), view(nonce, nonceN), view(pt, ptN), view(aad, aadN));
  put(out, r);
}
/** Returns 1 and writes the plaintext, or 0 on failure. `ctN` includes the tag. */
export function openApi(alg: i32, out: usize, key: usize, keyN: usize, nonce: usize, nonceN: usize, aad: usize, aadN: usize, ct: usize, ctN: usize): i32 {
  const r = alg == 0
    ? chacha20poly1305Open(view(key, keyN), view(nonce, nonceN), view(ct, ctN), view(aad, aadN))
    : xchacha20poly1305Open(view(key, keyN), view(nonce, nonceN), view(ct, ctN), view(aad, aadN));
  if (r === null) return 0;
  put(out, r);
  return 1;
}
/** Returns 1 and writes the shared secret, or 0 if it was all zeros (small-order peer). */
export function x25519Api(out: usize, k: usize, u: usize): i32 {
  const r = x25519(view(k, 32), view(u, 32));
  if (r === null) return 0;
  put(out, r);
  return 1;
}
export function x25519PublicKeyApi(out: usize, k: usize): void { put(out, x25519PublicKey(view(k, 32))); }
export function ed25519PublicKeyApi(out: usize, seed: usize): void { put(out, ed25519PublicKey(view(seed, 32))); }
export function ed25519SignApi(sig: usize, seed: usize, m: usize, mn: usize): void { put(sig, ed25519Sign(view(m, mn), view(seed, 32))); }
export function ed25519VerifyApi(sig: usize, sigN: usize, pub: usize, pubN: usize, m: usize, mn: usize): i32 {
  return ed25519Verify(view(sig, sigN), view(m, mn), view(pub, pubN)) ? 1 : 0;
}
export function equalBytesApi(a: usize, an: usize, b: usize, bn: usize): i32 { return equalBytes(view(a, an), view(b, bn)) ? 1 : 0; }
/** Wipes a copy and reports whether every byte is zero afterwards. */
export function wipeApi(p: usize, n: usize): i32 {
  const a = view(p, n);
  wipe(a);
  let acc: u8 = 0;
  for (let i = 0; i < a.length; i++) acc |= a[i];
  return acc == 0 ? 1 : 0;
}
export function poly1305Api(out: usize, key: usize, m: usize, mn: usize): void { put(out, poly1305(view(key, 32), view(m, mn))); }
export function chacha20Api(out: usize, key: usize, nonce: usize, counter: u32, m: usize, mn: usize): void {
  put(out, chacha20(view(key, 32), view(nonce, 12), counter, view(m, mn)));
}
export function hchacha20Api(out: usize, key: usize, nonce: usize): void { put(out, hchacha20(view(key, 32), view(nonce, 16))); }

/**
 * Incremental APIs: absorbs the message in chunks of `chunk` bytes (views into one array).
 * which: 0 Sha256, 1 Sha512, 2 HmacSha256 (key k), 3 HmacSha512 (key k).
 */
export function chunkedApi(which: i32, out: usize, k: usize, kn: usize, p: usize, n: usize, chunk: i32): void {
  const m = view(p, n);
  const key = view(k, kn);
  const h256 = new Sha256(), h512 = new Sha512();
  const m256 = new HmacSha256(key), m512 = new HmacSha512(key);
  for (let off = 0; off < m.length; off += chunk) {
    const part = m.subarray(off, min(off + chunk, m.length));
    if (which == 0) h256.update(part);
    else if (which == 1) h512.update(part);
    else if (which == 2) m256.update(part);
    else m512.update(part);
  }
  if (which == 0) put(out, h256.digest());
  else if (which == 1) put(out, h512.digest());
  else if (which == 2) { put(out, m256.digest()); m256.wipe(); }
  else { put(out, m512.digest()); m512.wipe(); }
}

// ---- raw cores (benchmark) ----

export function sha256Raw(out: usize, p: usize, n: usize): void { _sha256Ptr(out, p, n); }
export function sha512Raw(out: usize, p: usize, n: usize): void { _sha512Ptr(out, p, n); }
export function hmacSha256Raw(out: usize, k: usize, kn: usize, m: usize, mn: usize): void { _hmacSha256Ptr(out, k, kn, m, mn); }
export function hmacSha512Raw(out: usize, k: usize, kn: usize, m: usize, mn: usize): void { _hmacSha512Ptr(out, k, kn, m, mn); }
export function sealRaw(alg: i32, out: usize, key: usize, nonce: usize, aad: usize, aadN: usize, pt: usize, ptN: usize): void {
  if (alg == 0) _sealPtr(out, key, nonce, aad, aadN, pt, ptN);
  else _xsealPtr(out, key, nonce, aad, aadN, pt, ptN);
}
export function openRaw(alg: i32, out: usize, key: usize, nonce: usize, aad: usize, aadN: usize, ct: usize, ctN: usize): i32 {
  return alg == 0 ? (_openPtr(out, key, nonce, aad, aadN, ct, ctN) ? 1 : 0) : (_xopenPtr(out, key, nonce, aad, aadN, ct, ctN) ? 1 : 0);
}
export function x25519Raw(out: usize, k: usize, u: usize): i32 { return _x25519Ptr(out, k, u); }
export function ed25519PublicKeyRaw(out: usize, seed: usize): void { _ed25519PublicKeyPtr(out, seed); }
export function ed25519SignRaw(sig: usize, seed: usize, m: usize, mn: usize): void { _ed25519SignPtr(sig, seed, m, mn); }
export function ed25519VerifyRaw(sig: usize, pub: usize, m: usize, mn: usize): i32 { return _ed25519VerifyPtr(sig, pub, m, mn); }
