// The byte formats and bounds of the vault's crypto ops (crypto-ops.ts; docs/VAULT.md §6). Kept apart
// so that the formats are read in one place: every constant here is part of the wire format or of
// the contract, and changing one breaks every ciphertext, signature or mac already made.

/** "EV1": the first three bytes of every vault ciphertext. */
export const MAGIC_0: u8 = 0x45;
export const MAGIC_1: u8 = 0x56;
export const MAGIC_2: u8 = 0x31;
/** XChaCha20-Poly1305 nonce bytes. */
export const NONCE_BYTES: i32 = 24;
/** Poly1305 tag bytes. */
export const TAG_BYTES: i32 = 16;
/** "EV1" ‖ version u32 ‖ nonce[24]. */
export const CIPHERTEXT_HEADER: i32 = 3 + 4 + NONCE_BYTES;
/** What a ciphertext adds to its plaintext: header and tag (47 bytes). */
export const CIPHERTEXT_OVERHEAD: i32 = CIPHERTEXT_HEADER + TAG_BYTES;
/** version u32 ‖ Ed25519 signature[64]. */
export const SIGNATURE_BYTES: i32 = 4 + 64;
/** version u32 ‖ HMAC-SHA-256[32]. */
export const MAC_BYTES: i32 = 4 + 32;
/** The most plaintext (or message, or MAC'd data) one item may hold: 1 MiB (docs/VAULT.md §11). */
export const MAX_PLAINTEXT: i32 = 1 << 20;
/** The most associated data (or derive context) one item may hold: 64 KiB. */
export const MAX_AAD: i32 = 1 << 16;
/** The most items of one batch (docs/VAULT.md §5). */
export const MAX_BATCH: i32 = 256;
/** A data key: 256 bits. */
export const DATA_KEY_BYTES: i32 = 32;
/** derive's default and largest outputs. */
export const DERIVE_DEFAULT_BYTES: i32 = 32;
export const DERIVE_MAX_BYTES: i32 = 64;

/** An empty byte string (absent aad, HKDF's empty salt). Never written to. */
export const EMPTY = new Uint8Array(0);
/** HKDF info of the MAC subkey: a mac never uses the encryption key directly. */
export const MAC_INFO: Uint8Array = Uint8Array.wrap(String.UTF8.encode("enclave-vault/mac"));
/** HKDF salt of `derive`. */
export const DERIVE_SALT: Uint8Array = Uint8Array.wrap(String.UTF8.encode("enclave-vault/derive"));
/** The first bytes of every ciphertext's associated data, NUL included. */
const AAD_PREFIX: Uint8Array = Uint8Array.wrap(String.UTF8.encode("enclave-vault/v1\0", false));

/** Whether `b` starts with "EV1" (false when shorter). @example `if (!isMagic(ct)) return Reply.badRequest("malformed ciphertext");` */
export function isMagic(b: Uint8Array): bool {
  return b.length >= 3 && b[0] == MAGIC_0 && b[1] == MAGIC_1 && b[2] == MAGIC_2;
}

/**
 * The u32 LE at `off` of `b`.
 * @throws nothing, but reads out of bounds unless the caller checked that 4 bytes are there.
 * @example `const v = readVersion(signature, 0); // after checking signature.length == SIGNATURE_BYTES`
 */
export function readVersion(b: Uint8Array, off: i32): u32 {
  return load<u32>(b.dataStart + <usize>off);
}

/**
 * The AEAD's associated data: "enclave-vault/v1\0" ‖ u32 len(name) ‖ name ‖ version u32 ‖ aad. The
 * name and the version are bound, so a ciphertext does not open under another key or with its
 * version field changed.
 * @example `xchacha20poly1305Seal(kv.material, nonce, plaintext, aeadAad(nameBytes, kv.version, aad))`
 */
export function aeadAad(name: Uint8Array, version: u32, aad: Uint8Array): Uint8Array {
  const p = AAD_PREFIX.length;
  const out = new Uint8Array(p + 4 + name.length + 4 + aad.length);
  out.set(AAD_PREFIX, 0);
  store<u32>(out.dataStart + <usize>p, <u32>name.length);
  out.set(name, p + 4);
  store<u32>(out.dataStart + <usize>(p + 4 + name.length), version);
  out.set(aad, p + 8 + name.length);
  return out;
}
