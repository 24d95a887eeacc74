// The three exports of docs/ABI.md §2. A module's entry file re-exports them:
//
//   export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";
//
// (`memory` is exported by the compiler; its maximum is the contract's `limits.memoryPages`, which
// `enclave build` passes as `--maximumMemory`.)

import { allocRequest, handleCall } from "./dispatch";
// The `abort` replacement (`--use abort=~lib/enclave/enclave-modules/sdk/env/enclave_abort`, given by
// `enclave build`) lives in env.ts, which must be part of every module's program.
import "./env";

/** ABI §2: the ABI version this SDK speaks. @example `enclave_abi_version() == 1` */
export function enclave_abi_version(): i32 {
  return 1;
}

/** ABI §2: a request buffer of at least `len` bytes, or 0. @example `const p = enclave_alloc(n)` */
export function enclave_alloc(len: i32): i32 {
  return <i32>allocRequest(len);
}

/** ABI §2: handles the request at `[reqPtr, reqPtr+reqLen)`; returns the reply descriptor, or 0. @example `const d = enclave_call(p, n)` */
export function enclave_call(reqPtr: i32, reqLen: i32): i32 {
  return <i32>handleCall(<usize>reqPtr, reqLen);
}
