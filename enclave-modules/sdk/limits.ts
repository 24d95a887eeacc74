// Run-time limits of the SDK. The SDK cannot read the contract, so a module states its contract's
// limits once at top level with `Enclave.setLimits` (docs/ABI.md §5).

/** ABI §5 default for `limits.requestBytes`. */
export const DEFAULT_REQUEST_BYTES: i32 = 65536;
/** ABI §5 default for `limits.replyBytes`. */
export const DEFAULT_REPLY_BYTES: i32 = 65536;
/** ABI §5 default for `limits.depth`. */
export const DEFAULT_DEPTH: i32 = 32;
/** ABI §5 default for `limits.memoryPages`. */
export const DEFAULT_MEMORY_PAGES: i32 = 16;

/** The most container levels the SDK accepts whatever a module asks: it recurses once per level. */
export const MAX_DEPTH: i32 = 512;
/** The smallest depth that can carry an error reply (`{err: {code}}` is two levels). */
export const MIN_DEPTH: i32 = 2;
/** The reply byte limit can't go below this: `{err: {code: "bad_request"}}` must always fit. */
export const MIN_REPLY_BYTES: i32 = 32;

export let requestBytesLimit: i32 = DEFAULT_REQUEST_BYTES;
export let replyBytesLimit: i32 = DEFAULT_REPLY_BYTES;
export let depthLimit: i32 = DEFAULT_DEPTH;
export let memoryPagesLimit: i32 = DEFAULT_MEMORY_PAGES;
/**
 * Heap bytes the decoder may spend on the values of one request (see Reader.charge): half of what
 * the memory maximum leaves after static data and the request and reply buffers, so that a request
 * within the byte limit that would decode into more objects than fit is refused (`bad_request`)
 * instead of trapping out of memory.
 */
export let decodeBudget: i64 = computeBudget();

function computeBudget(): i64 {
  let avail = <i64>memoryPagesLimit * 65536 - <i64>__heap_base - <i64>requestBytesLimit - <i64>replyBytesLimit;
  let budget = avail / 2;
  return budget < 4096 ? 4096 : budget;
}

/** Sets the limits, clamped to what the SDK can honour. Internal: use `Enclave.setLimits`. */
export function setLimitsImpl(requestBytes: i32, replyBytes: i32, depth: i32, memoryPages: i32): void {
  requestBytesLimit = requestBytes < 1 ? 1 : requestBytes;
  replyBytesLimit = replyBytes < MIN_REPLY_BYTES ? MIN_REPLY_BYTES : replyBytes;
  depthLimit = depth < MIN_DEPTH ? MIN_DEPTH : depth > MAX_DEPTH ? MAX_DEPTH : depth;
  memoryPagesLimit = memoryPages < 1 ? 1 : memoryPages > 65536 ? 65536 : memoryPages;
  decodeBudget = computeBudget();
}
