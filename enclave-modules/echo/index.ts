// echo: returns its args unchanged (re-encoded canonically). The smallest useful enclave, and the
// one the benchmarks use to measure the boundary.

import { Enclave, Value, Reply } from "../sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "../sdk/exports";

// Keep in step with contract.json `limits`.
Enclave.setLimits(1050000, 1050000, 32, 64);
Enclave.op("echo", echo);

function echo(args: Value): Reply {
  return Reply.ok(args);
}
