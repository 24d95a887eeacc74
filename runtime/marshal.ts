/**
 * Moving values across the boundary (docs/ABI.md §4, §5): requests are written by each enclave's
 * own encoder from plain data only ({@link RequestEncoder}); replies are checked first (structure,
 * depth, map keys, value count: msgpackr has no limits of its own), then decoded by msgpackr.
 *
 * The entry of the marshalling files, one job each:
 *
 * ```
 *  _request.ts          request frames, ops, encodeCall (the checkpoint of every call), createPackr
 *  _request-encoder.ts  RequestEncoder: args to msgpack, plain data only, walked once, bounded
 *  _request-refusal.ts  why a value cannot cross (Refusal, kindOf)
 *  _msgpack-check.ts    checkMsgpack / checkReply: the structure, depth, key and item checks
 *  _reply.ts            decodeReply (the envelope), decodePlainMsgpack, unpackr, the faithful decoder
 * ```
 */
export { compileOps, createPackr, encodeCall, opFor, requestFrame, type OpCall, type RequestFrame } from './_request.js';
export { RequestEncoder, type Encoded } from './_request-encoder.js';
export { checkMsgpack, checkReply, scannedItems, TOO_MANY_ITEMS } from './_msgpack-check.js';
export { decodePlainMsgpack, decodeReply, NOT_ENVELOPE, truncateUtf8, unpackr, type ReplyLimits } from './_reply.js';
