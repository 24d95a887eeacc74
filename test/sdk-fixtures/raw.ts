// Test fixture: the ABI without the SDK (a raw copy-in/copy-out echo), the baseline the SDK's echo
// is measured against in test/slow/sdk-perf.test.ts.

// The build's `--use abort=~lib/enclave/enclave-modules/sdk/env/enclave_abort` needs env.ts in the program.
import "enclave/enclave-modules/sdk/env";

const CAP: usize = (1 << 20) + 64;
const DESC: usize = memory.data(8, 4);
const REQ: usize = heap.alloc(CAP);
const REPLY: usize = heap.alloc(CAP);

export function enclave_abi_version(): i32 {
  return 1;
}

export function enclave_alloc(len: i32): i32 {
  return len > 0 && <usize>len <= CAP ? <i32>REQ : 0;
}

export function enclave_call(ptr: i32, len: i32): i32 {
  memory.copy(REPLY, <usize>ptr, <usize>len);
  store<u32>(DESC, <u32>REPLY);
  store<u32>(DESC, <u32>len, 4);
  return <i32>DESC;
}
