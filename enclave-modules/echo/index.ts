// echo: returns its args unchanged (re-encoded canonically). The smallest useful enclave, and the
// one the benchmarks use to measure the boundary.

import { Enclave, Value, Reply } from "enclave/sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

Enclave.op("echo", echo);

function echo(args: Value): Reply {
  return Reply.ok(args);
}
