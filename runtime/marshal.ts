/**
 * Moving values across the boundary: msgpackr for encoding and decoding, and a structural check
 * that runs first on every byte string crossing, because msgpackr has no depth or extension
 * limits of its own (docs/ABI.md §4, §5).
 */
import { Packr, Unpackr } from 'msgpackr';

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

/** A message encoded into the encoder's reusable buffer: valid until the next `encode`. */
export interface Encoded {
  readonly buffer: Buffer;
  readonly start: number;
  readonly end: number;
}

/** Encodes into the packr's reusable buffer. Throws what msgpackr throws (cycles, unsupported values). */
export function encodeReusing(packr: Packr, value: unknown): Encoded {
  const buffer = packr.pack(value, REUSE_BUFFER) as Buffer & { start: number; end: number };
  return { buffer, start: buffer.start, end: buffer.end };
}

/**
 * Creates the encoder of one enclave. Each enclave has its own, because `pack()` returns a view
 * into the encoder's reusable buffer that is valid only until its next `pack()`.
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
