// crypto: a TEST enclave that exposes the SDK's cryptography (enclave-modules/sdk/crypto/) as ops,
// so that tests can drive every primitive across the real boundary (msgpack, limits, host API).
//
// Keys travel in the request here ONLY because this is a test module. A real enclave creates its
// keys inside (from the `random` or `seal` capability) and never returns or accepts them: see
// docs/THREAT-MODEL.md.

import { Enclave, Value, Reply } from "enclave/sdk";
import {
  sha256, sha512, hmacSha256, hmacSha512, hkdfSha256, HKDF_SHA256_MAX_OUTPUT,
  chacha20poly1305Seal, chacha20poly1305Open, xchacha20poly1305Seal, xchacha20poly1305Open,
  x25519, x25519PublicKey, ed25519PublicKey, ed25519Sign, ed25519Verify, equalBytes,
} from "enclave/sdk/crypto";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

Enclave.op("sha256", opSha256);
Enclave.op("sha512", opSha512);
Enclave.op("hmac_sha256", opHmacSha256);
Enclave.op("hmac_sha512", opHmacSha512);
Enclave.op("hkdf_sha256", opHkdfSha256);
Enclave.op("aead_seal", opAeadSeal);
Enclave.op("aead_open", opAeadOpen);
Enclave.op("x25519", opX25519);
Enclave.op("x25519_public_key", opX25519PublicKey);
Enclave.op("ed25519_public_key", opEd25519PublicKey);
Enclave.op("ed25519_sign", opEd25519Sign);
Enclave.op("ed25519_verify", opEd25519Verify);
Enclave.op("equal_bytes", opEqualBytes);

/** A bin field of a map, or null if absent or not a bin. */
function bin(args: Value, key: string): Uint8Array | null {
  const v = args.get(key);
  return v.isBin() ? v.asBytes() : null;
}

/** A bin field of exactly `len` bytes, or null. */
function binN(args: Value, key: string, len: i32): Uint8Array | null {
  const b = bin(args, key);
  return b !== null && b.length == len ? b : null;
}

/** `{data: bin}` -> SHA-256 digest (FIPS 180-4). */
function opSha256(args: Value): Reply {
  const data = bin(args, "data");
  if (data === null) return Reply.badRequest("data must be bin");
  return Reply.ok(Value.bin(sha256(data)));
}

/** `{data: bin}` -> SHA-512 digest (FIPS 180-4). */
function opSha512(args: Value): Reply {
  const data = bin(args, "data");
  if (data === null) return Reply.badRequest("data must be bin");
  return Reply.ok(Value.bin(sha512(data)));
}

/** `{key: bin, data: bin}` -> HMAC-SHA-256 tag (RFC 2104). */
function opHmacSha256(args: Value): Reply {
  const key = bin(args, "key"), data = bin(args, "data");
  if (key === null || data === null) return Reply.badRequest("key and data must be bin");
  return Reply.ok(Value.bin(hmacSha256(key, data)));
}

/** `{key: bin, data: bin}` -> HMAC-SHA-512 tag (RFC 2104). */
function opHmacSha512(args: Value): Reply {
  const key = bin(args, "key"), data = bin(args, "data");
  if (key === null || data === null) return Reply.badRequest("key and data must be bin");
  return Reply.ok(Value.bin(hmacSha512(key, data)));
}

/** `{ikm, salt, info: bin, length: int}` -> output keying material (RFC 5869). */
function opHkdfSha256(args: Value): Reply {
  const ikm = bin(args, "ikm"), salt = bin(args, "salt"), info = bin(args, "info");
  const length = args.get("length");
  if (ikm === null || salt === null || info === null || !length.isInt()) return Reply.badRequest("ikm, salt, info must be bin and length an int");
  const n = length.asInt();
  if (n < 0 || n > <i64>HKDF_SHA256_MAX_OUTPUT) return Reply.badRequest("length must be 0..8160");
  const okm = hkdfSha256(ikm, salt, info, <i32>n);
  if (okm === null) return Reply.badRequest("length must be 0..8160");
  return Reply.ok(Value.bin(okm));
}

/** 0: ChaCha20-Poly1305, 1: XChaCha20-Poly1305, -1: unknown. */
function algOf(args: Value): i32 {
  const a = args.get("alg");
  if (!a.isStr()) return -1;
  const s = a.asString();
  if (s == "chacha20poly1305") return 0;
  if (s == "xchacha20poly1305") return 1;
  return -1;
}

/** `{alg, key, nonce, aad, plaintext}` -> ciphertext || tag (RFC 8439 §2.8; XChaCha draft §2.3). */
function opAeadSeal(args: Value): Reply {
  const alg = algOf(args);
  if (alg < 0) return Reply.badRequest("alg must be chacha20poly1305 or xchacha20poly1305");
  const key = binN(args, "key", 32);
  const nonce = binN(args, "nonce", alg == 0 ? 12 : 24);
  const aad = bin(args, "aad"), pt = bin(args, "plaintext");
  if (key === null || nonce === null || aad === null || pt === null) return Reply.badRequest("key (32 B), nonce (12 or 24 B), aad and plaintext must be bin");
  return Reply.ok(Value.bin(alg == 0 ? chacha20poly1305Seal(key, nonce, pt, aad) : xchacha20poly1305Seal(key, nonce, pt, aad)));
}

/** `{alg, key, nonce, aad, sealed}` -> plaintext, or nil if authentication fails. */
function opAeadOpen(args: Value): Reply {
  const alg = algOf(args);
  if (alg < 0) return Reply.badRequest("alg must be chacha20poly1305 or xchacha20poly1305");
  const key = bin(args, "key"), nonce = bin(args, "nonce"), aad = bin(args, "aad"), sealed = bin(args, "sealed");
  if (key === null || nonce === null || aad === null || sealed === null) return Reply.badRequest("key, nonce, aad and sealed must be bin");
  const pt = alg == 0 ? chacha20poly1305Open(key, nonce, sealed, aad) : xchacha20poly1305Open(key, nonce, sealed, aad);
  return Reply.ok(pt === null ? Value.nil() : Value.bin(pt));
}

/** `{secret_key, public_key: bin(32)}` -> shared secret, or nil for a small-order peer (RFC 7748 §6.1). */
function opX25519(args: Value): Reply {
  const k = binN(args, "secret_key", 32), u = binN(args, "public_key", 32);
  if (k === null || u === null) return Reply.badRequest("secret_key and public_key must be 32-byte bin");
  const s = x25519(k, u);
  return Reply.ok(s === null ? Value.nil() : Value.bin(s));
}

/** `{secret_key: bin(32)}` -> X25519 public key (RFC 7748 §6.1). */
function opX25519PublicKey(args: Value): Reply {
  const k = binN(args, "secret_key", 32);
  if (k === null) return Reply.badRequest("secret_key must be a 32-byte bin");
  return Reply.ok(Value.bin(x25519PublicKey(k)));
}

/** `{seed: bin(32)}` -> Ed25519 public key (RFC 8032 §5.1.5). */
function opEd25519PublicKey(args: Value): Reply {
  const seed = binN(args, "seed", 32);
  if (seed === null) return Reply.badRequest("seed must be a 32-byte bin");
  return Reply.ok(Value.bin(ed25519PublicKey(seed)));
}

/** `{seed: bin(32), message: bin}` -> 64-byte signature (RFC 8032 §5.1.6). */
function opEd25519Sign(args: Value): Reply {
  const seed = binN(args, "seed", 32), msg = bin(args, "message");
  if (seed === null || msg === null) return Reply.badRequest("seed (32 B) and message must be bin");
  return Reply.ok(Value.bin(ed25519Sign(msg, seed)));
}

/** `{public_key, message, signature: bin}` -> bool (RFC 8032 §5.1.7, strict). */
function opEd25519Verify(args: Value): Reply {
  const pub = bin(args, "public_key"), msg = bin(args, "message"), sig = bin(args, "signature");
  if (pub === null || msg === null || sig === null) return Reply.badRequest("public_key, message and signature must be bin");
  return Reply.ok(Value.bool(ed25519Verify(sig, msg, pub)));
}

/** `{a, b: bin}` -> bool, compared in constant time. */
function opEqualBytes(args: Value): Reply {
  const a = bin(args, "a"), b = bin(args, "b");
  if (a === null || b === null) return Reply.badRequest("a and b must be bin");
  return Reply.ok(Value.bool(equalBytes(a, b)));
}
