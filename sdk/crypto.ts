// `enclave/sdk/crypto`: the SDK's cryptography (hashes, HMAC, HKDF, AEADs, X25519, Ed25519), computed
// inside the enclave's linear memory.
//
// @example
// ```ts
// import { sha256 } from "enclave/sdk/crypto";
// const digest = sha256(data);
// ```

export * from "../enclave-modules/sdk/crypto/index";
