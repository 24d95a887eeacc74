// `enclave/sdk`: the AssemblyScript guest SDK, ABI version 1 (docs/SDK.md, docs/ABI.md).
//
// asc resolves `import ... from "enclave/sdk"` to this file in node_modules/enclave; `enclave build`
// resolves it to the SDK of the package that runs the build. The SDK itself lives in
// enclave-modules/sdk/.
//
// @example
// ```ts
// import { Enclave, Value, Reply } from "enclave/sdk";
// export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";
//
// Enclave.op("echo", echo);
// function echo(args: Value): Reply { return Reply.ok(args); }
// ```

export * from "../enclave-modules/sdk/index";
