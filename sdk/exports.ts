// `enclave/sdk/exports`: the three exports of docs/ABI.md §2. A module's entry file re-exports them:
//
//   export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

export { enclave_abi_version, enclave_alloc, enclave_call } from "../enclave-modules/sdk/exports";
