// Test fixture for the SDK's forced collections near the memory maximum (compiled by
// test/sdk-gc.test.ts with --maximumMemory 16). Exports the SDK's count of forced collections.

import { Enclave, Value, Reply } from "enclave/sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";
// The SDK's internals, by their path in the package (tests only).
export { sdkCollections as sdk_collections } from "enclave/enclave-modules/sdk/dispatch";
import { setLimitsImpl } from "enclave/enclave-modules/sdk/limits";

let count: i64 = 0;

// A module's limits are its contract's, given by enclave build; this fixture has no contract.
setLimitsImpl(200000, 200000, 8, 16);
Enclave.op("incr", incr);
Enclave.op("echo", echo);
Enclave.op("garbage", garbage);

function incr(args: Value): Reply {
  count += args.get("by").intOr(1);
  return Reply.ok(Value.int(count));
}

function echo(args: Value): Reply {
  return Reply.ok(args);
}

/** Allocates `args` bytes of garbage (in 4 KiB strings) and returns its length. */
function garbage(args: Value): Reply {
  let n = <i32>args.asInt();
  let total = 0;
  while (total < n) {
    let s = "y".repeat(2048); // 4 KiB of UTF-16
    total += s.length * 2;
  }
  return Reply.ok(Value.int(total));
}
