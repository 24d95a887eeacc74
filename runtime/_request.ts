/**
 * A call's request (docs/ABI.md §4.1, §4.4): the frame of each op, built once at load, and the
 * checkpoint every call crosses in both isolation modes ({@link encodeCall}: the shape, then the
 * plain-data walk of runtime/_request-encoder.ts, then the size).
 */
import { EnclaveError, quoteInput } from '../core/index.js';
import { CHECK_TOO_LARGE, checkArgs, compileShape, type Contract, type ShapeCheck } from './contract.js';
import { RequestEncoder, SLACK, type Encoded } from './_request-encoder.js';

/**
 * The bytes that frame a request for one op (docs/ABI.md §4.1), built once per op at load:
 * `{op: <name>}` when there are no args, and `{op: <name>, args: ` before the encoded args.
 */
export interface RequestFrame {
  readonly withArgs: Buffer;
  readonly withoutArgs: Buffer;
}

const OP_KEY = [0xa2, 0x6f, 0x70]; // fixstr "op"
const ARGS_KEY = [0xa4, 0x61, 0x72, 0x67, 0x73]; // fixstr "args"

/** Builds the request frame of one op. */
export function requestFrame(op: string): RequestFrame {
  const name = new RequestEncoder().pack(op);
  return Object.freeze({
    withoutArgs: Buffer.concat([Buffer.of(0x81, ...OP_KEY), name]),
    withArgs: Buffer.concat([Buffer.of(0x82, ...OP_KEY), name, Buffer.from(ARGS_KEY)]),
  });
}

/** What a call needs of its op, prepared once per op at load (both isolation modes). */
export interface OpCall {
  /** Position in `Object.keys(contract.ops)`: worker mode sends it instead of the name. */
  readonly index: number;
  readonly check: ShapeCheck;
  readonly frame: RequestFrame;
  readonly requires: readonly string[];
}

/** The ops of a contract, ready to call. */
export function compileOps(contract: Contract): ReadonlyMap<string, OpCall> {
  return new Map(
    Object.entries(contract.ops).map(([name, op], index) => [
      name,
      Object.freeze({ index, check: compileShape(op.args), frame: requestFrame(name), requires: op.requires }),
    ]),
  );
}

/**
 * The op a caller named.
 * @throws {EnclaveError} `unknown_op`, for a name not in the contract or not a string.
 */
export function opFor(ops: ReadonlyMap<string, OpCall>, enclave: string, op: unknown): OpCall {
  const spec = typeof op === 'string' ? ops.get(op) : undefined;
  if (spec === undefined) throw new EnclaveError('unknown_op', `The enclave "${enclave}" has no op ${quoteInput(op)}.`);
  return spec;
}

/**
 * Checks and encodes one call's request, the same way in both isolation modes: the args' shape
 * (from the contract), then the args, walked once as plain data and written after the op's frame
 * into the enclave's own encoder buffer (one contiguous request), then the size.
 * @throws {EnclaveError} `invalid_args` (shape, not plain data, nested too deep or cyclic),
 *   `too_large` (over `requestBytes`; found while walking, so an oversized argument costs at most
 *   `requestBytes` of work).
 */
export function encodeCall(
  encoder: RequestEncoder,
  op: string,
  frame: RequestFrame,
  check: ShapeCheck,
  args: unknown,
  limits: { readonly requestBytes: number; readonly depth: number },
): Encoded {
  let why: string | undefined;
  try {
    // Each item or key the check visits is at least a byte the encoder would write (a left-out key
    // one): twice its byte bound is more than a request that fits can hold.
    why = checkArgs(check, args, 2 * (limits.requestBytes + SLACK));
  } catch (err) {
    // A getter or proxy trap of the caller's threw while the shape was checked.
    throw new EnclaveError('invalid_args', `Reading the arguments for "${op}" threw.`, { cause: err });
  }
  if (why === CHECK_TOO_LARGE) throw new EnclaveError('too_large', `The request for "${op}" exceeds the limit of ${limits.requestBytes} bytes.`);
  if (why !== undefined) throw new EnclaveError('invalid_args', `Invalid arguments for "${op}": ${why}.`);
  let encoded: Encoded;
  if (args === undefined) {
    encoded = { buffer: frame.withoutArgs, start: 0, end: frame.withoutArgs.length };
  } else {
    encoded = encoder.encode(op, frame.withArgs, args, limits);
  }
  const size = encoded.end - encoded.start;
  if (size > limits.requestBytes) {
    throw new EnclaveError('too_large', `The request is ${size} bytes; the limit is ${limits.requestBytes}.`);
  }
  return encoded;
}

/** Creates the request encoder of one enclave (its own buffer: see {@link RequestEncoder}). */
export function createPackr(): RequestEncoder {
  return new RequestEncoder();
}
