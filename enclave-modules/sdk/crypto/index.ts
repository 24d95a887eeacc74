/**
 * Cryptography for enclaves, in AssemblyScript, so that secrets are created and used
 * inside the enclave's linear memory and never cross the boundary.
 *
 * One file per primitive (noble layout). Names ending in `Seal`/`Open` are AEADs; helpers
 * whose names start with `_` work on raw linear-memory addresses and are internal.
 * See docs/THREAT-MODEL.md, "Timing: what is and is not constant-time".
 */

export { sha256, Sha256, SHA256_OUTPUT_LEN, SHA256_BLOCK_LEN } from './sha256';
export { sha512, Sha512, SHA512_OUTPUT_LEN, SHA512_BLOCK_LEN } from './sha512';
export { hmacSha256, hmacSha512, HmacSha256, HmacSha512 } from './hmac';
export { hkdfSha256, hkdfSha256Extract, hkdfSha256Expand, HKDF_SHA256_MAX_OUTPUT } from './hkdf';
export { chacha20, hchacha20 } from './chacha20';
export { poly1305 } from './poly1305';
export {
  chacha20poly1305Seal, chacha20poly1305Open, xchacha20poly1305Seal, xchacha20poly1305Open,
  AEAD_KEY_LEN, AEAD_TAG_LEN, CHACHA20POLY1305_NONCE_LEN, XCHACHA20POLY1305_NONCE_LEN,
} from './chacha20poly1305';
export { x25519, x25519PublicKey } from './x25519';
export { ed25519PublicKey, ed25519Sign, ed25519Verify } from './ed25519';
export { equalBytes, wipe } from './utils';
