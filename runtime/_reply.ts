/**
 * A reply, checked then opened (docs/ABI.md §4.2, §4.4, §5): the envelope `{ok}` or `{err}`, the
 * value decoded by msgpackr (or faithfully, for what msgpackr would change), an enclave's error
 * rebuilt with its code; and the same checks for msgpack from outside ({@link decodePlainMsgpack}).
 */
import { Unpackr } from 'msgpackr';
import { ENCLAVE_CODES, EnclaveError, type ErrorCode } from '../core/index.js';
import { DEFAULT_LIMITS } from './contract.js';
import { checkReply, readU32, scannedUnfaithful, TOO_MANY_ITEMS } from './_msgpack-check.js';

/**
 * msgpackr settings for decoding replies: plain msgpack, no records, no extensions; 64-bit
 * integers as numbers when they are within 2^53 and as bigints beyond.
 */
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

/** What bounds a reply's decoding (docs/ABI.md §5, docs/LIMITS.md "Replies"). */
export interface ReplyLimits {
  readonly depth: number;
  readonly replyItems: number;
}

/**
 * Checks and opens a reply, on the thread that will hold the result (the host thread in both
 * isolation modes), before any object is built: first its structure ({@link checkReply}: msgpack,
 * depth, map keys), then its item count against `replyItems`; only then is the envelope read: a
 * map of exactly one entry whose key is `ok` or `err`. The header is read here; only the value
 * goes through msgpackr, and a one-byte value (small int, nil, bool) not even that.
 *
 * Values map to JS as docs/ABI.md §4.4 says: integers to numbers within ±2^53 and to bigints
 * beyond, bins to `Uint8Array` copies (never `Buffer`, never a view of enclave memory), maps to
 * plain objects with every key an own property (`__proto__` included).
 * @returns the `ok` value, or {@link NOT_ENVELOPE}.
 * @throws {EnclaveError} the enclave's own code for an `err` reply (its message as `detail`);
 *   `bad_reply` for a reply that is not acceptable msgpack, cannot be decoded or has an error
 *   code outside the ABI; `too_large` for more than `replyItems` values (whichever of the two
 *   comes first in the bytes: the check stops there).
 */
export function decodeReply(bytes: Uint8Array, start: number, end: number, limits: ReplyLimits = DEFAULT_LIMITS): unknown {
  const bad = checkReply(bytes, limits.depth, start, end, limits.replyItems);
  if (bad === TOO_MANY_ITEMS) throw new EnclaveError('too_large', `The reply holds more than ${limits.replyItems} msgpack values.`);
  if (bad !== undefined) throw new EnclaveError('bad_reply', `The enclave reply is not acceptable msgpack: ${bad}.`);
  const faithful = scannedUnfaithful;
  // A Buffer source would make msgpackr's bin copies Buffers (slice follows the species).
  if (Buffer.isBuffer(bytes)) bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
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
      // msgpackr renames a key __proto__ to __proto_; the rare reply with one is decoded here.
      value = faithful ? decodeFaithful(bytes, p, end) : unpackr.unpack(bytes, { start: p, end });
    } catch {
      throw new EnclaveError('bad_reply', 'The enclave reply could not be decoded.');
    }
  }
  if (isErr) throw enclaveErrorFromReply(value);
  return value;
}

/**
 * Decodes one msgpack value from outside (a file, a client) into plain data only, for a caller to
 * pass as args: the checks of a reply (no extensions, so never a typed array or a Date; string
 * keys, none twice; depth), then the value, bins as `Uint8Array`, `__proto__` an own key.
 * @throws {EnclaveError} `invalid_args`, saying why the bytes are not acceptable.
 * @example
 * const args = decodePlainMsgpack(await readFile('args.msgpack'), { depth: 32, replyItems: 100_000 });
 */
export function decodePlainMsgpack(bytes: Uint8Array, limits: ReplyLimits): unknown {
  const why = checkReply(bytes, limits.depth, 0, bytes.length, limits.replyItems);
  if (why === TOO_MANY_ITEMS) throw new EnclaveError('invalid_args', `The msgpack input holds more than ${limits.replyItems} values.`);
  if (why !== undefined) throw new EnclaveError('invalid_args', `The msgpack input is not acceptable: ${why}.`);
  const faithful = scannedUnfaithful;
  const src = Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) : bytes;
  try {
    return faithful ? decodeFaithful(src, 0, src.length) : unpackr.unpack(src, { start: 0, end: src.length });
  } catch {
    throw new EnclaveError('invalid_args', 'The msgpack input could not be decoded.');
  }
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
 * Shared decoder. `copyBuffers` makes every decoded bin a copy, so replies are decoded straight
 * out of enclave memory and still never alias it: that read is the one copy out.
 */
export const unpackr = new Unpackr({ ...MSGPACKR_OPTIONS, copyBuffers: true });

/**
 * Decodes a value that {@link checkReply} accepted, as msgpackr does with the reply options, but
 * with every map key an own data property: the slow path for a reply with a `__proto__` key.
 * Recursion is bounded by the depth limit the check applied.
 */
function decodeFaithful(bytes: Uint8Array, start: number, end: number): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { ignoreBOM: true });
  let pos = start;
  const str = (n: number): string => text.decode(bytes.subarray(pos, (pos += n)));
  const bin = (n: number): Uint8Array => bytes.slice(pos, (pos += n));
  const auto = (v: bigint): number | bigint => (v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v);
  const u = (n: 1 | 2 | 4): number => {
    const v = n === 1 ? view.getUint8(pos) : n === 2 ? view.getUint16(pos) : view.getUint32(pos);
    pos += n;
    return v;
  };
  const array = (n: number): unknown[] => {
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = read();
    return out;
  };
  const map = (n: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = read() as string;
      Object.defineProperty(out, key, { value: read(), writable: true, enumerable: true, configurable: true });
    }
    return out;
  };
  const read = (): unknown => {
    const b = bytes[pos++]!;
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 256;
    if (b <= 0x8f) return map(b & 0x0f);
    if (b <= 0x9f) return array(b & 0x0f);
    if (b <= 0xbf) return str(b & 0x1f);
    let v: unknown;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return bin(u(1));
      case 0xc5:
        return bin(u(2));
      case 0xc6:
        return bin(u(4));
      case 0xca:
        v = view.getFloat32(pos);
        pos += 4;
        return v;
      case 0xcb:
        v = view.getFloat64(pos);
        pos += 8;
        return v;
      case 0xcc:
        return u(1);
      case 0xcd:
        return u(2);
      case 0xce:
        return u(4);
      case 0xcf:
        v = auto(view.getBigUint64(pos));
        pos += 8;
        return v;
      case 0xd0:
        return view.getInt8(pos++);
      case 0xd1:
        v = view.getInt16(pos);
        pos += 2;
        return v;
      case 0xd2:
        v = view.getInt32(pos);
        pos += 4;
        return v;
      case 0xd3:
        v = auto(view.getBigInt64(pos));
        pos += 8;
        return v;
      case 0xd9:
        return str(u(1));
      case 0xda:
        return str(u(2));
      case 0xdb:
        return str(u(4));
      case 0xdc:
        return array(u(2));
      case 0xdd:
        return array(u(4));
      case 0xde:
        return map(u(2));
      case 0xdf:
        return map(u(4));
    }
    throw new Error('unreachable: checked before'); // checkReply refused everything else
  };
  const value = read();
  if (pos !== end) throw new Error('trailing bytes');
  return value;
}
