// The work bound of one crypto call (crypto-ops.ts). A call that runs out of fuel is stopped by the
// host and its instance DISCARDED (docs/ABI.md §4.3): for the vault that loses the whole keyring in
// memory until the host loads it again. A batch may hold 256 items of 1 MiB in total, and 256
// Ed25519 signatures alone cost about 1.7e9 fuel: so a batch spends from a budget, each item's cost
// estimated (from above) BEFORE its work, and an item that would pass the budget is answered
// `{err: "limit"}` instead of run. The estimates are in the host's fuel units, measured on this
// runtime (test/vault-batch.test.ts checks the worst batches stay within the contract's fuel) with
// about 25% to spare; a single item of any op fits (the worst, sign of 1 MiB, is ~450e6).

/**
 * What one call's items may spend together. The vault's contract must grant more fuel than this
 * plus a request's decoding and a reply's encoding (~50e6): contract.json asks for 2e9.
 */
export const WORK_BUDGET: i64 = 1_500_000_000;

// Per item: a fixed part, plus a part per byte of input (plaintext, ciphertext, message, data and aad).
export const COST_AEAD_ITEM: i64 = 200_000; // nonce, aad, the XChaCha subkey, the reply value
export const COST_AEAD_BYTE: i64 = 110; // ChaCha20 and Poly1305 over each byte (measured ~85)
export const COST_REWRAP_BYTE: i64 = 2 * COST_AEAD_BYTE; // open, then seal again
export const COST_SIGN_ITEM: i64 = 8_500_000; // two base-point multiplications (measured ~6.6e6)
export const COST_SIGN_BYTE: i64 = 540; // SHA-512 over the message twice (measured ~420)
export const COST_VERIFY_ITEM: i64 = 7_000_000; // a double-scalar multiplication (measured ~5.4e6)
export const COST_VERIFY_BYTE: i64 = 270; // SHA-512 over the message once (measured ~210)
export const COST_PUBLIC_KEY: i64 = 4_000_000; // a version's public key, once per call (measured ~3.1e6)
export const COST_MAC_ITEM: i64 = 300_000; // HMAC set-up (the subkey is derived once per call)
export const COST_MAC_BYTE: i64 = 420; // HMAC-SHA-256 over each byte (measured ~320)
