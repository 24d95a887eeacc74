// Run-time limits of the SDK (docs/ABI.md §5). The contract is their one source: `enclave build`
// passes the contract's limits as compile-time integer constants (`--use ENCLAVE_REQUEST_BYTES=<n>`,
// host/build/compile.ts), so a module's SDK limits always equal its contract's. Compiled without
// them (plain asc), the SDK uses the ABI defaults.

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

// The constants of `enclave build`; `isDefined` is false under plain asc, where the ABI defaults apply.
// @ts-ignore: a compile-time constant of the build, undeclared for TypeScript
const CONTRACT_REQUEST_BYTES: i32 = isDefined(ENCLAVE_REQUEST_BYTES) ? ENCLAVE_REQUEST_BYTES : DEFAULT_REQUEST_BYTES;
// @ts-ignore: a compile-time constant of the build, undeclared for TypeScript
const CONTRACT_REPLY_BYTES: i32 = isDefined(ENCLAVE_REPLY_BYTES) ? ENCLAVE_REPLY_BYTES : DEFAULT_REPLY_BYTES;
// @ts-ignore: a compile-time constant of the build, undeclared for TypeScript
const CONTRACT_DEPTH: i32 = isDefined(ENCLAVE_DEPTH) ? ENCLAVE_DEPTH : DEFAULT_DEPTH;
// @ts-ignore: a compile-time constant of the build, undeclared for TypeScript
const CONTRACT_MEMORY_PAGES: i32 = isDefined(ENCLAVE_MEMORY_PAGES) ? ENCLAVE_MEMORY_PAGES : DEFAULT_MEMORY_PAGES;

export let requestBytesLimit: i32 = clampRequestBytes(CONTRACT_REQUEST_BYTES);
export let replyBytesLimit: i32 = clampReplyBytes(CONTRACT_REPLY_BYTES);
export let depthLimit: i32 = clampDepth(CONTRACT_DEPTH);
export let memoryPagesLimit: i32 = clampMemoryPages(CONTRACT_MEMORY_PAGES);
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

function clampRequestBytes(n: i32): i32 {
  return n < 1 ? 1 : n;
}

function clampReplyBytes(n: i32): i32 {
  return n < MIN_REPLY_BYTES ? MIN_REPLY_BYTES : n;
}

function clampDepth(n: i32): i32 {
  return n < MIN_DEPTH ? MIN_DEPTH : n > MAX_DEPTH ? MAX_DEPTH : n;
}

function clampMemoryPages(n: i32): i32 {
  return n < 1 ? 1 : n > 65536 ? 65536 : n;
}

/**
 * Internal, for the SDK's own tests (test/sdk-fixtures/limits.ts): changes the limits at run time,
 * clamped to what the SDK can honour. Not part of the SDK's surface: a module's limits are its
 * contract's, given by `enclave build`.
 */
export function setLimitsImpl(requestBytes: i32, replyBytes: i32, depth: i32, memoryPages: i32): void {
  requestBytesLimit = clampRequestBytes(requestBytes);
  replyBytesLimit = clampReplyBytes(replyBytes);
  depthLimit = clampDepth(depth);
  memoryPagesLimit = clampMemoryPages(memoryPages);
  decodeBudget = computeBudget();
}
