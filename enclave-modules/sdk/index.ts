// The AssemblyScript guest SDK: what an enclave module imports, as `enclave/sdk` (sdk/index.ts
// re-exports this file; docs/SDK.md is its reference). It implements ABI version 1 (docs/ABI.md).
// Its limits are the contract's, given by `enclave build` (limits.ts).
//
// @example
// ```ts
// import { Enclave, Value, Reply, ErrorCode } from "enclave/sdk";
// export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";
//
// Enclave.op("incr", incr);
//
// let count: i64 = 0;
// function incr(args: Value): Reply {
//   const by = args.get("by");
//   if (!by.isNil() && !by.isInt()) return Reply.badRequest("by must be an int");
//   count += by.intOr(1);
//   return Reply.ok(Value.int(count));
// }
// ```

export { Value, Kind } from "./value";
export { Reply, ErrorCode, errorCodeName } from "./reply";
export { Enclave, Handler } from "./dispatch";
export { DEFAULT_REQUEST_BYTES, DEFAULT_REPLY_BYTES, DEFAULT_DEPTH, DEFAULT_MEMORY_PAGES } from "./limits";
export { randomBytes, fillRandom, nowMillis, log, LogLevel, sealKey, SealPolicy, report } from "./env";
export { sealKeyAt, counterRead, counterAdvance, SEAL_KEY_AT_BYTES, COUNTER_BYTES } from "./env";
