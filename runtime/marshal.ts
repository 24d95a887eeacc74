/**
 * Moving values across the boundary: msgpackr for encoding and decoding, and a structural check
 * that runs first on every byte string crossing, because msgpackr has no depth or extension
 * limits of its own (docs/ABI.md §4, §5).
 */
import { Packr, Unpackr } from 'msgpackr';
import { compileShape, type Contract, type ShapeCheck } from './contract.js';
import { ENCLAVE_CODES, EnclaveError, quoteInput, type ErrorCode } from './errors.js';

/** msgpackr settings shared by both directions: plain msgpack, no records, no extensions. */
const MSGPACKR_OPTIONS = {
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  structuredClone: false,
  encodeUndefinedAsNil: true,
  variableMapSize: true,
  int64AsType: 'auto' as 'number',
  largeBigIntToFloat: false,
} as const;

/**
 * msgpackr `pack()` flags: return the encoder's own buffer with `start`/`end` instead of a new
 * view, and write the next message at the same place. No allocation per request.
 */
const REUSE_BUFFER = 512 | 1024; // REUSE_BUFFER_MODE | RESET_BUFFER_MODE (msgpackr pack.js)
/** msgpackr RESERVE_START_SPACE: leave `flags & 0xff` bytes free before the value (pack.js). */
const RESERVE_START_SPACE = 2048;

/** A message encoded into the encoder's reusable buffer: valid until the next `encode`. */
export interface Encoded {
  readonly buffer: Buffer;
  readonly start: number;
  readonly end: number;
}


/**
 * The bytes that frame a request for one op (docs/ABI.md §4.1), built once per op at load:
 * `{op: <name>}` when there are no args, and `{op: <name>, args: ` before the encoded args.
 */
export interface RequestFrame {
  readonly withArgs: Buffer;
  readonly withoutArgs: Buffer;
}

const frameEncoder = new Packr(MSGPACKR_OPTIONS);
const OP_KEY = [0xa2, 0x6f, 0x70]; // fixstr "op"
const ARGS_KEY = [0xa4, 0x61, 0x72, 0x67, 0x73]; // fixstr "args"

/** Builds the request frame of one op. */
export function requestFrame(op: string): RequestFrame {
  const name = Buffer.from(frameEncoder.pack(op));
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
 * (from the contract), then the args packed after the op's frame in the packr's reusable buffer
 * (no wrapper object, one contiguous request), then size and depth.
 * @throws {EnclaveError} `invalid_args`, `too_large`.
 */
export function encodeCall(
  packr: Packr,
  op: string,
  frame: RequestFrame,
  check: ShapeCheck,
  args: unknown,
  limits: { readonly requestBytes: number; readonly depth: number },
): Encoded {
  const why = check(args);
  if (why !== undefined) throw new EnclaveError('invalid_args', `Invalid arguments for "${op}": ${why}.`);
  let encoded: Encoded;
  let argsStart: number;
  if (args === undefined) {
    encoded = { buffer: frame.withoutArgs, start: 0, end: frame.withoutArgs.length };
    argsStart = encoded.end;
  } else {
    const header = frame.withArgs;
    let buffer: Buffer & { start: number; end: number };
    try {
      buffer = packr.pack(args, REUSE_BUFFER | RESERVE_START_SPACE | header.length) as typeof buffer;
    } catch (err) {
      throw new EnclaveError('invalid_args', `The arguments for "${op}" cannot be encoded as msgpack.`, { cause: err });
    }
    header.copy(buffer, buffer.start);
    encoded = { buffer, start: buffer.start, end: buffer.end };
    argsStart = buffer.start + header.length;
  }
  const size = encoded.end - encoded.start;
  if (size > limits.requestBytes) {
    throw new EnclaveError('too_large', `The request is ${size} bytes; the limit is ${limits.requestBytes}.`);
  }
  if (argsStart < encoded.end) {
    // The envelope is level 1, so the args may nest one level less than the limit.
    const bad = checkMsgpack(encoded.buffer, limits.depth - 1, argsStart, encoded.end);
    if (bad !== undefined) throw new EnclaveError('invalid_args', `The arguments for "${op}" are not acceptable: ${bad}.`);
  }
  return encoded;
}

/** What {@link decodeReply} returns for a reply that is not an envelope (docs/ABI.md §4.2). */
export const NOT_ENVELOPE: unique symbol = Symbol('enclave.notEnvelope');

/** docs/ABI.md §4.2: an enclave's error message is at most 256 bytes of UTF-8. */
const MAX_DETAIL = 256;

const detailEncoder = new TextEncoder();
const detailDecoder = new TextDecoder();

/** Cuts a string to at most `max` UTF-8 bytes, on a character boundary. */
export function truncateUtf8(text: string, max: number): string {
  if (text.length * 3 <= max) return text;
  const bytes = detailEncoder.encode(text);
  if (bytes.length <= max) return text;
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back off a continuation byte
  return detailDecoder.decode(bytes.subarray(0, end));
}

/**
 * Opens a reply envelope that {@link checkMsgpack} has accepted: a map of exactly one entry
 * (duplicates count) whose key is `ok` or `err`. The header is read here; only the value goes
 * through msgpackr, and a one-byte value (small int, nil, bool) not even that.
 * @returns the `ok` value, or {@link NOT_ENVELOPE}.
 * @throws {EnclaveError} the enclave's own code for an `err` reply (its message as `detail`);
 *   `bad_reply` for a value that cannot be decoded or an error code outside the ABI.
 */
export function decodeReply(bytes: Uint8Array, start: number, end: number): unknown {
  let p = start;
  const b = bytes[p]!;
  let count: number;
  if (b === 0x81) {
    count = 1;
    p += 1;
  } else if (b === 0xde) {
    count = (bytes[p + 1]! << 8) | bytes[p + 2]!;
    p += 3;
  } else if (b === 0xdf) {
    count = readU32(bytes, p + 1);
    p += 5;
  } else {
    return NOT_ENVELOPE;
  }
  if (count !== 1) return NOT_ENVELOPE;
  const k = bytes[p]!;
  let keyLen: number;
  if ((k & 0xe0) === 0xa0) {
    keyLen = k & 0x1f;
    p += 1;
  } else if (k === 0xd9) {
    keyLen = bytes[p + 1]!;
    p += 2;
  } else {
    return NOT_ENVELOPE; // "ok" and "err" fit in a fixstr or a str8; nothing longer can match
  }
  let isErr: boolean;
  if (keyLen === 2 && bytes[p] === 0x6f && bytes[p + 1] === 0x6b) isErr = false;
  else if (keyLen === 3 && bytes[p] === 0x65 && bytes[p + 1] === 0x72 && bytes[p + 2] === 0x72) isErr = true;
  else return NOT_ENVELOPE;
  p += keyLen;

  let value: unknown;
  const x = bytes[p]!;
  if (end - p === 1 && (x <= 0x7f || x >= 0xe0 || x === 0xc0 || x === 0xc2 || x === 0xc3)) {
    value = x <= 0x7f ? x : x >= 0xe0 ? x - 256 : x === 0xc0 ? null : x === 0xc3;
  } else {
    try {
      value = unpackr.unpack(bytes, { start: p, end });
    } catch {
      throw new EnclaveError('bad_reply', 'The enclave reply could not be decoded.');
    }
  }
  if (isErr) throw enclaveErrorFromReply(value);
  return value;
}

function enclaveErrorFromReply(err: unknown): EnclaveError {
  if (typeof err !== 'object' || err === null) return new EnclaveError('bad_reply', 'The enclave error reply has no code.');
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || !(ENCLAVE_CODES as readonly string[]).includes(code)) {
    return new EnclaveError('bad_reply', 'The enclave replied with an error code outside the ABI.');
  }
  const detail = typeof message === 'string' ? truncateUtf8(message, MAX_DETAIL) : undefined;
  return new EnclaveError(code as ErrorCode, undefined, detail === undefined ? undefined : { detail });
}

/**
 * Creates the encoder of one enclave. (msgpackr shares one target buffer between all its
 * encoders in a process, and the next encode anywhere overwrites it: every request must be copied
 * out before the caller awaits anything. Worker mode copies it before waiting for a fresh worker.)
 */
export function createPackr(): Packr {
  return new Packr(MSGPACKR_OPTIONS);
}

/**
 * Shared decoder. `copyBuffers` makes every decoded bin a copy, so replies are decoded straight
 * out of enclave memory and still never alias it: that read is the one copy out.
 */
export const unpackr = new Unpackr({ ...MSGPACKR_OPTIONS, copyBuffers: true });

/**
 * Walks one msgpack value without building it and returns why it is not acceptable, or
 * `undefined`. Refuses: truncation, trailing bytes, the reserved byte 0xc1, extension types,
 * containers nested deeper than `maxDepth`, and lengths that claim more than the bytes left.
 * Iterative, so a hostile nesting cannot exhaust the host's stack.
 */
export function checkMsgpack(bytes: Uint8Array, maxDepth: number, start = 0, end = bytes.length): string | undefined {
  // pending[d] = values still to read at depth d; a map of n entries is 2n values.
  const pending: number[] = [1];
  let pos = start;
  while (pending.length > 0) {
    const top = pending.length - 1;
    if (pending[top] === 0) {
      pending.pop();
      continue;
    }
    pending[top]!--;
    if (pos >= end) return 'truncated';
    const b = bytes[pos++]!;
    let skip = 0;
    let children = -1;
    if (b <= 0x7f || b >= 0xe0) {
      // fixint
    } else if (b <= 0x8f) {
      children = (b & 0x0f) * 2;
    } else if (b <= 0x9f) {
      children = b & 0x0f;
    } else if (b <= 0xbf) {
      skip = b & 0x1f;
    } else {
      switch (b) {
        case 0xc0:
        case 0xc2:
        case 0xc3:
          break;
        case 0xc4:
        case 0xd9:
          if (pos + 1 > end) return 'truncated';
          skip = bytes[pos]!;
          pos += 1;
          break;
        case 0xc5:
        case 0xda:
          if (pos + 2 > end) return 'truncated';
          skip = (bytes[pos]! << 8) | bytes[pos + 1]!;
          pos += 2;
          break;
        case 0xc6:
        case 0xdb:
          if (pos + 4 > end) return 'truncated';
          skip = readU32(bytes, pos);
          pos += 4;
          break;
        case 0xca:
          skip = 4;
          break;
        case 0xcb:
          skip = 8;
          break;
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
          skip = 4;
          break;
        case 0xcf:
        case 0xd3:
          skip = 8;
          break;
        case 0xdc:
          if (pos + 2 > end) return 'truncated';
          children = (bytes[pos]! << 8) | bytes[pos + 1]!;
          pos += 2;
          break;
        case 0xde:
          if (pos + 2 > end) return 'truncated';
          children = ((bytes[pos]! << 8) | bytes[pos + 1]!) * 2;
          pos += 2;
          break;
        case 0xdd:
          if (pos + 4 > end) return 'truncated';
          children = readU32(bytes, pos);
          pos += 4;
          break;
        case 0xdf:
          if (pos + 4 > end) return 'truncated';
          children = readU32(bytes, pos) * 2;
          pos += 4;
          break;
        case 0xc1:
          return 'reserved byte 0xc1';
        default:
          // 0xc7..0xc9 ext 8/16/32, 0xd4..0xd8 fixext
          return 'extension types are not allowed';
      }
    }
    if (skip > end - pos) return 'a length runs past the end';
    pos += skip;
    if (children >= 0) {
      // Each element takes at least one byte: a count beyond the bytes left is a lie.
      if (children > end - pos) return 'a container claims more elements than there are bytes';
      if (pending.length > maxDepth) return `nested deeper than ${maxDepth}`;
      if (children > 0) pending.push(children);
    }
  }
  if (pos !== end) return 'trailing bytes after the value';
  return undefined;
}

function readU32(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos]! << 24) >>> 0) + ((bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!);
}
