// `enclave/sdk/sealed`: sealed blobs (docs/SEALING.md): data encrypted inside the enclave under a
// sealing key bound to the module or its signer, with optional rollback protection by a platform
// counter. Needs the capabilities `seal`, `random` and `counter`.
//
// @example
// ```ts
// import { seal, unseal } from "enclave/sdk/sealed";
// const s = seal(secret, aad, SealPolicy.Signer);
// const u = unseal(s.bytes, aad, 4096);
// ```

export * from "../enclave-modules/sdk/sealed";
