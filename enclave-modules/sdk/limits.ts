// Run-time limits of the SDK. The SDK cannot read the contract, so a module states its contract's
// limits once at top level with `Enclave.setLimits` (docs/ABI.md §5).

/** ABI §5 default for `limits.requestBytes`. */
export const DEFAULT_REQUEST_BYTES: i32 = 65536;
/** ABI §5 default for `limits.replyBytes`. */
export const DEFAULT_REPLY_BYTES: i32 = 65536;
/** ABI §5 default for `limits.depth`. */
export const DEFAULT_DEPTH: i32 = 32;

/** The most container levels the SDK accepts whatever a module asks: it recurses once per level. */
export const MAX_DEPTH: i32 = 512;
/** The smallest depth that can carry an error reply (`{err: {code}}` is two levels). */
export const MIN_DEPTH: i32 = 2;
/** The reply byte limit can't go below this: `{err: {code: "bad_request"}}` must always fit. */
export const MIN_REPLY_BYTES: i32 = 32;

export let requestBytesLimit: i32 = DEFAULT_REQUEST_BYTES;
export let replyBytesLimit: i32 = DEFAULT_REPLY_BYTES;
export let depthLimit: i32 = DEFAULT_DEPTH;

/** Sets the limits, clamped to what the SDK can honour. Internal: use `Enclave.setLimits`. */
export function setLimitsImpl(requestBytes: i32, replyBytes: i32, depth: i32): void {
  requestBytesLimit = requestBytes < 1 ? 1 : requestBytes;
  replyBytesLimit = replyBytes < MIN_REPLY_BYTES ? MIN_REPLY_BYTES : replyBytes;
  depthLimit = depth < MIN_DEPTH ? MIN_DEPTH : depth > MAX_DEPTH ? MAX_DEPTH : depth;
}
