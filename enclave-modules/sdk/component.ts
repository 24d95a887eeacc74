// The exports of a component build (`enclave build --component`): the core functions of the world's
// `handler` export in the canonical ABI (wit/enclave.wit). The build compiles a generated entry that
// imports the module's index.ts (so its top-level code registers the ops) and re-exports these two,
// then renames `enclave_component_call` to `enclave:runtime/handler@1.0.0#call`; the module has none
// of the core ABI's exports (docs/ABI.md §2) and imports nothing from `enclave` (env.ts).

import { allocRequest, handleComponentCall } from "./dispatch";
import { importing } from "./_canonical";
import "./env";

/** The result area of a call: `result<list<u8>, error>`, 16 bytes aligned to 4. */
const resultArea: usize = memory.data(16, 4);

/**
 * The canonical ABI's allocator, for the host. While an import of the world runs, a heap block for
 * the list it returns, which the SDK's wrapper copies and frees (_canonical.ts); otherwise the
 * request buffer (as `enclave_alloc`: at least `newSize` bytes, or 0 above `limits.requestBytes`),
 * which the host fills with the request before calling. Only fresh allocations (`old` 0) of an
 * alignment up to 16 are served: the world's lists and strings are bytes, lowered whole.
 */
export function cabi_realloc(old: usize, oldSize: usize, align: usize, newSize: usize): usize {
  if (old != 0 || oldSize != 0 || align == 0 || align > 16 || (align & (align - 1)) != 0) unreachable();
  if (importing) return __alloc(newSize);
  return newSize > <usize>i32.MAX_VALUE ? 0 : allocRequest(<i32>newSize);
}

/**
 * `handler.call(request) -> result<list<u8>, error>`: handles the request the host wrote into the
 * buffer `cabi_realloc` gave it, and returns the result area (dispatch.ts, handleComponentCall).
 */
export function enclave_component_call(ptr: usize, len: i32): usize {
  handleComponentCall(ptr, len, resultArea);
  return resultArea;
}
