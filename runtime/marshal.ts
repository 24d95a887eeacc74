/**
 * Moving values across the boundary (docs/ABI.md §4, §5): requests are written by each enclave's
 * own encoder from plain data only ({@link RequestEncoder}); replies are checked first (structure,
 * depth, map keys, value count: msgpackr has no limits of its own), then decoded by msgpackr.
 */
import { types } from 'node:util';
import { Unpackr } from 'msgpackr';
import { CHECK_TOO_LARGE, checkArgs, compileShape, DEFAULT_LIMITS, typedLength, type Contract, type ShapeCheck } from './contract.js';
import { ENCLAVE_CODES, EnclaveError, quoteInput, type ErrorCode } from './errors.js';

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

/** A message encoded into its encoder's own buffer: valid until that encoder's next `encode`. */
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

/** Why a value cannot cross; becomes an `EnclaveError` once the path to it is known. */
class Refusal {
  path = '';
  constructor(
    readonly code: 'invalid_args' | 'too_large',
    readonly why: string,
  ) {}
}

/** Bytes a write may reserve beyond the byte limit before the final size check (a short string's worst case). */
const SLACK = 256;
const TWO_32 = 2 ** 32;
const TWO_63 = 2 ** 63;
const TWO_64 = 2 ** 64;
const I64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;
/** A lone surrogate: a map key with one would be sent as U+FFFD, and could repeat another key. */
const LONE_SURROGATE = /\p{Cs}/u;
/** Set by `utf8Short` when it wrote U+FFFD for a lone surrogate. */
let wroteReplacement = false;
/** Maps an encode lists with `Object.keys` directly before it keeps each object's keys (a few: most args). */
const LISTED_DIRECTLY = 16;
const PLAIN_DATA = 'only plain data can cross: null, booleans, numbers, bigints within 64 bits, strings, Uint8Array (or Buffer), arrays and plain objects';

/** What a refused value is, for the message; never its contents. */
function kindOf(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'bigint') return 'a bigint outside the 64-bit range';
  const t = types;
  if (t.isTypedArray(v)) return `a ${Object.prototype.toString.call(v).slice(8, -1)}`;
  if (t.isDataView(v)) return 'a DataView';
  if (t.isAnyArrayBuffer(v)) return 'an ArrayBuffer';
  if (t.isDate(v)) return 'a Date';
  if (t.isRegExp(v)) return 'a RegExp';
  if (t.isNativeError(v)) return 'an Error';
  if (t.isMap(v)) return 'a Map (use a plain object)';
  if (t.isSet(v)) return 'a Set (use an array)';
  if (t.isPromise(v)) return 'a Promise';
  if (t.isBoxedPrimitive(v)) return 'a boxed primitive';
  if (Array.isArray(v)) return 'an array with another prototype';
  return 'an object whose prototype is not Object.prototype or null (a class instance?)';
}

/**
 * Encodes call arguments into msgpack (docs/ABI.md §4.4), walking them once: each value is read
 * exactly once, checked to be plain data, and written at once, so what is checked is what is sent.
 *
 * Each enclave has its own encoder and buffer (msgpackr's encoders share one process-wide buffer:
 * with `moreTypes: false` a typed array's `bin` header claimed its byte length while one byte per
 * element was copied, and the rest was whatever another tenant's request had left there). Every
 * byte of `[start, end)` of a result was written by this encode; nothing beyond is exposed.
 *
 * The walk is bounded: containers deeper than the depth limit are refused (this also ends a
 * cycle), and every value writes at least one byte (a map key left out for its `undefined` value
 * counts one), so the walk stops with `too_large` once the request would exceed `requestBytes`:
 * at most about twice `requestBytes` values are visited, shared references or not.
 */
export class RequestEncoder {
  #buf: Buffer = Buffer.alloc(4096);
  #pos = 0;
  /** No write may end past this: `requestBytes` plus {@link SLACK}. */
  #cap = 0;
  #depth = 0;
  /** Map keys left out (value `undefined`) so far: each counts as a byte, so the walk stays bounded. */
  #skipped = 0;
  /** Maps walked so far in this encode. */
  #maps = 0;
  /**
   * The keys of each object met in this encode after its first {@link LISTED_DIRECTLY} maps, listed
   * once: `Object.keys` costs every own property, enumerable or not, so an object of many hidden
   * properties referenced again and again would cost that much per reference while writing a
   * byte. Emptied when the encode ends.
   */
  readonly #keysOf = new Map<object, string[]>();
  #busy = false;

  /**
   * Writes `header` then `value`; the result is valid until this encoder's next `encode`.
   * @throws {EnclaveError} `invalid_args`, `too_large`.
   */
  encode(op: string, header: Uint8Array, value: unknown, limits: { readonly requestBytes: number; readonly depth: number }): Encoded {
    // A getter or proxy in the args could call the same enclave again while we write.
    if (this.#busy) throw new EnclaveError('invalid_args', `The arguments for "${op}" called the enclave while being encoded.`);
    this.#busy = true;
    try {
      this.#cap = limits.requestBytes + SLACK;
      this.#depth = limits.depth;
      this.#pos = 0;
      this.#skipped = 0;
      this.#maps = 0;
      const h = header.length;
      this.#ensure(h);
      const buf = this.#buf;
      for (let i = 0; i < h; i++) buf[i] = header[i]!; // a few bytes: a loop beats set()
      this.#pos = h;
      // The envelope is level 1, so the args' outermost container is level 2.
      this.#value(value, 2);
      return { buffer: this.#buf, start: 0, end: this.#pos };
    } catch (err) {
      if (err instanceof Refusal) {
        const where = err.path === '' ? '' : ` at args${err.path}`;
        const message =
          err.code === 'too_large'
            ? `The request for "${op}" exceeds the limit of ${limits.requestBytes} bytes${where}.`
            : `The arguments for "${op}" are not acceptable${where}: ${err.why}.`;
        throw new EnclaveError(err.code, message);
      }
      if (err instanceof EnclaveError) throw err;
      // A getter or proxy trap of the caller's threw.
      throw new EnclaveError('invalid_args', `Reading the arguments for "${op}" threw.`, { cause: err });
    } finally {
      if (this.#keysOf.size > 0) this.#keysOf.clear();
      this.#busy = false;
    }
  }

  /** msgpack of a plain-data value in a fresh buffer (tests and benchmarks; no size limit). */
  pack(value: unknown, depth = 512): Buffer {
    const { buffer, start, end } = this.encode('(pack)', new Uint8Array(0), value, { requestBytes: 2 ** 31 - 1 - SLACK, depth: depth + 1 });
    return Buffer.from(buffer.subarray(start, end));
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need > this.#cap) throw new Refusal('too_large', 'too large');
    if (need > this.#buf.length) {
      const grown = Buffer.alloc(Math.min(Math.max(need, this.#buf.length * 2), this.#cap));
      grown.set(this.#buf.subarray(0, this.#pos), 0);
      this.#buf = grown;
    }
  }

  #value(v: unknown, level: number): void {
    switch (typeof v) {
      case 'string':
        return this.#string(v);
      case 'number':
        return this.#number(v);
      case 'boolean':
        this.#ensure(1);
        this.#buf[this.#pos++] = v ? 0xc3 : 0xc2;
        return;
      case 'undefined': // an array item or hole (map values are left out before this)
        this.#ensure(1);
        this.#buf[this.#pos++] = 0xc0;
        return;
      case 'bigint':
        if (v < I64_MIN || v > U64_MAX) throw new Refusal('invalid_args', `${kindOf(v)}; ${PLAIN_DATA}`);
        if (v >= -2147483648n && v <= 4294967295n) return this.#number(Number(v));
        return this.#int64(v);
      case 'object': {
        if (v === null) {
          this.#ensure(1);
          this.#buf[this.#pos++] = 0xc0;
          return;
        }
        if (types.isUint8Array(v)) return this.#bin(v as Uint8Array);
        const proto = Object.getPrototypeOf(v);
        if (Array.isArray(v) && proto === Array.prototype) return this.#array(v, level);
        // A proxy whose prototype is Object.prototype passes too: its traps are read once, like getters.
        if (proto === Object.prototype || proto === null) return this.#map(v as Record<string, unknown>, level);
        throw new Refusal('invalid_args', `${kindOf(v)}; ${PLAIN_DATA}`);
      }
      default:
        throw new Refusal('invalid_args', `${kindOf(v)}; ${PLAIN_DATA}`);
    }
  }

  #number(v: number): void {
    this.#ensure(9);
    const buf = this.#buf;
    let p = this.#pos;
    if (v >>> 0 === v) {
      // 0..2^32-1, and -0 (an integer: sent as 0)
      if (v < 0x80) buf[p++] = v;
      else if (v < 0x100) {
        buf[p++] = 0xcc;
        buf[p++] = v;
      } else if (v < 0x10000) {
        buf[p++] = 0xcd;
        buf[p++] = v >> 8;
        buf[p++] = v & 0xff;
      } else {
        buf[p++] = 0xce;
        buf[p++] = v >>> 24;
        buf[p++] = (v >> 16) & 0xff;
        buf[p++] = (v >> 8) & 0xff;
        buf[p++] = v & 0xff;
      }
    } else if ((v | 0) === v) {
      // -2^31..-1
      if (v >= -32) buf[p++] = v & 0xff;
      else if (v >= -128) {
        buf[p++] = 0xd0;
        buf[p++] = v & 0xff;
      } else if (v >= -32768) {
        buf[p++] = 0xd1;
        buf[p++] = (v >> 8) & 0xff;
        buf[p++] = v & 0xff;
      } else {
        buf[p++] = 0xd2;
        buf[p++] = (v >> 24) & 0xff;
        buf[p++] = (v >> 16) & 0xff;
        buf[p++] = (v >> 8) & 0xff;
        buf[p++] = v & 0xff;
      }
    } else if (Number.isInteger(v) && v >= -TWO_63 && v < TWO_64) {
      // docs/ABI.md §4.4: an integer is always sent as a msgpack integer, never as a float.
      if (v > 0) {
        const hi = Math.floor(v / TWO_32);
        buf[p++] = 0xcf;
        buf.writeUInt32BE(hi, p);
        buf.writeUInt32BE(v - hi * TWO_32, p + 4);
      } else {
        buf[p++] = 0xd3;
        buf.writeBigInt64BE(BigInt(v), p);
      }
      p += 8;
    } else {
      buf[p++] = 0xcb;
      buf.writeDoubleBE(v, p);
      p += 8;
    }
    this.#pos = p;
  }

  #int64(v: bigint): void {
    this.#ensure(9);
    if (v >= 0n) {
      this.#buf[this.#pos] = 0xcf;
      this.#buf.writeBigUInt64BE(v, this.#pos + 1);
    } else {
      this.#buf[this.#pos] = 0xd3;
      this.#buf.writeBigInt64BE(v, this.#pos + 1);
    }
    this.#pos += 9;
  }

  #string(v: string): void {
    const n = v.length;
    if (n > this.#cap - this.#pos) throw new Refusal('too_large', 'too large'); // each UTF-16 unit is at least one byte
    if (n <= 64) {
      // At most 3 bytes per UTF-16 unit: reserve the header for that, write, move if shorter.
      this.#ensure(2 + 3 * n);
      const buf = this.#buf;
      const p = this.#pos;
      if (3 * n < 32) {
        const len = utf8Short(v, buf, p + 1);
        buf[p] = 0xa0 | len;
        this.#pos = p + 1 + len;
      } else {
        const len = utf8Short(v, buf, p + 2);
        if (len < 32) {
          buf.copyWithin(p + 1, p + 2, p + 2 + len);
          buf[p] = 0xa0 | len;
          this.#pos = p + 1 + len;
        } else {
          buf[p] = 0xd9;
          buf[p + 1] = len;
          this.#pos = p + 2 + len;
        }
      }
      return;
    }
    const max = 3 * n;
    if (max + 5 > this.#cap - this.#pos) {
      // Near the limit: measure exactly, so a string that fits is not refused for its worst case.
      const len = Buffer.byteLength(v, 'utf8');
      this.#ensure(5 + len);
      this.#header(len, 0xa0, 0xd9, 0xda, 0xdb);
      this.#pos += this.#buf.write(v, this.#pos, len, 'utf8');
      return;
    }
    // One pass: reserve the header for the worst case, write, then move the bytes if the exact
    // length takes a shorter header.
    this.#ensure(5 + max);
    const p = this.#pos;
    const reserved = max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    const len = this.#buf.write(v, p + reserved, max, 'utf8');
    const exact = len < 0x100 ? 2 : len < 0x10000 ? 3 : 5; // n > 64 bytes: never a fixstr
    if (exact !== reserved) this.#buf.copyWithin(p + exact, p + reserved, p + reserved + len);
    this.#header(len, 0xa0, 0xd9, 0xda, 0xdb);
    this.#pos = p + exact + len;
  }

  #bin(v: Uint8Array): void {
    const len = typedLength.call(v) as number;
    this.#ensure(5 + len);
    this.#header(len, -1, 0xc4, 0xc5, 0xc6);
    this.#buf.set(v, this.#pos); // copies exactly the view's own `len` bytes
    this.#pos += len;
  }

  /** A length header: fix form (when `fix >= 0` and `n < 32`), then 8/16/32-bit forms. */
  #header(n: number, fix: number, b8: number, b16: number, b32: number): void {
    const buf = this.#buf;
    let p = this.#pos;
    if (fix >= 0 && n < 32) buf[p++] = fix | n;
    else if (n < 0x100) {
      buf[p++] = b8;
      buf[p++] = n;
    } else if (n < 0x10000) {
      buf[p++] = b16;
      buf[p++] = n >> 8;
      buf[p++] = n & 0xff;
    } else {
      buf[p++] = b32;
      buf.writeUInt32BE(n, p);
      p += 4;
    }
    this.#pos = p;
  }

  /** A container's header of `n` items (fixarray/fixmap below 16), reserved at its final size. */
  #container(n: number, fix: number, b16: number, b32: number): void {
    this.#ensure(5);
    const buf = this.#buf;
    const p = this.#pos;
    if (n < 16) {
      buf[p] = fix | n;
      this.#pos = p + 1;
    } else if (n < 0x10000) {
      buf[p] = b16;
      buf.writeUInt16BE(n, p + 1);
      this.#pos = p + 3;
    } else {
      buf[p] = b32;
      buf.writeUInt32BE(n, p + 1);
      this.#pos = p + 5;
    }
  }

  #enter(level: number): void {
    if (level > this.#depth) throw new Refusal('invalid_args', `nested deeper than ${this.#depth - 1} (or cyclic)`);
  }

  #array(v: unknown[], level: number): void {
    this.#enter(level);
    const n = v.length;
    // Each item takes at least one byte: a longer array cannot fit, holes or not.
    if (n > this.#cap - this.#pos) throw new Refusal('too_large', 'too large');
    this.#container(n, 0x90, 0xdc, 0xdd);
    let i = 0;
    try {
      for (; i < n; i++) this.#value(v[i], level + 1);
    } catch (err) {
      if (err instanceof Refusal) err.path = `[${i}]${err.path}`;
      throw err;
    }
  }

  #map(v: Record<string, unknown>, level: number): void {
    this.#enter(level);
    let keys: string[] | undefined;
    if (++this.#maps <= LISTED_DIRECTLY) keys = Object.keys(v);
    else {
      keys = this.#keysOf.get(v);
      if (keys === undefined) {
        keys = Object.keys(v);
        this.#keysOf.set(v, keys);
      }
    }
    const n = keys.length;
    if (2 * n > this.#cap - this.#pos - this.#skipped) throw new Refusal('too_large', 'too large');
    const at = this.#pos;
    this.#container(n, 0x80, 0xde, 0xdf);
    let count = 0;
    let key = '';
    try {
      for (let i = 0; i < n; i++) {
        key = keys[i]!;
        const value = v[key];
        // docs/ABI.md §4.4: an undefined value is an absent key, as the contract's shape check treats it.
        // It writes nothing, so it counts one byte of the limit: an object of such keys referenced
        // many times would otherwise be walked again and again for a few header bytes each.
        if (value === undefined) {
          if (++this.#skipped > this.#cap - this.#pos) throw new Refusal('too_large', 'too large');
          continue;
        }
        // docs/ABI.md §4.4: "\ud800" and "\udc00" would both be sent as the key U+FFFD (and beside
        // a key "\ufffd" the shape check passed), so the guest would see one key twice.
        wroteReplacement = false;
        this.#string(key); // short keys: utf8Short says whether it replaced a lone surrogate
        if (wroteReplacement || (key.length > 64 && LONE_SURROGATE.test(key))) {
          throw new Refusal('invalid_args', 'a map key with a lone surrogate cannot be sent (as U+FFFD it could repeat another key)');
        }
        this.#value(value, level + 1);
        count++;
      }
    } catch (err) {
      if (err instanceof Refusal) err.path = `[${JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}...` : key)}]${err.path}`;
      throw err;
    }
    if (count !== n) {
      // Keys were left out: patch the count into the header reserved for n (same size, or a
      // map16/map32 that still says the right count).
      const buf = this.#buf;
      if (n < 16) buf[at] = 0x80 | count;
      else if (n < 0x10000) buf.writeUInt16BE(count, at + 1);
      else buf.writeUInt32BE(count, at + 1);
    }
  }
}

/**
 * UTF-8 of a short string into `buf` at `p` (room for 3 bytes per unit is reserved); a lone
 * surrogate becomes U+FFFD, as `TextEncoder` and `Buffer` write it. Returns the bytes written.
 */
function utf8Short(s: string, buf: Buffer, p: number): number {
  const start = p;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[p++] = c;
    } else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6);
      buf[p++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = c <= 0xdbff && i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[p++] = 0xf0 | (c >> 18);
        buf[p++] = 0x80 | ((c >> 12) & 0x3f);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        buf[p++] = 0xef;
        buf[p++] = 0xbf;
        buf[p++] = 0xbd;
        wroteReplacement = true;
      }
    } else {
      buf[p++] = 0xe0 | (c >> 12);
      buf[p++] = 0x80 | ((c >> 6) & 0x3f);
      buf[p++] = 0x80 | (c & 0x3f);
    }
  }
  return p - start;
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

/** Creates the request encoder of one enclave (its own buffer: see {@link RequestEncoder}). */
export function createPackr(): RequestEncoder {
  return new RequestEncoder();
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
 * Iterative, so a hostile nesting cannot exhaust the host's stack. Map keys are not looked at
 * (see {@link checkReply}).
 */
export function checkMsgpack(bytes: Uint8Array, maxDepth: number, start = 0, end = bytes.length): string | undefined {
  return scan(bytes, maxDepth, start, end, false, Infinity);
}

/**
 * {@link checkMsgpack} plus the rules for what the host decodes into objects (docs/ABI.md §4.4):
 * every map key is a str of valid UTF-8, and no key appears twice in one map (a JS object would
 * merge them silently). The walk stops at value `maxItems + 1` and returns {@link TOO_MANY_ITEMS},
 * so it costs at most `maxItems` values whatever the byte length; otherwise {@link scannedItems}
 * holds the number of values in the message.
 */
export function checkReply(bytes: Uint8Array, maxDepth: number, start = 0, end = bytes.length, maxItems = Infinity): string | undefined {
  return scan(bytes, maxDepth, start, end, true, maxItems);
}

/** What {@link checkReply} returns for a message of more than `maxItems` values. */
export const TOO_MANY_ITEMS = 'too many values';

/** The number of msgpack values (every key, value and element) the last check walked. */
export let scannedItems = 0;
/**
 * Whether the last {@link checkReply} saw what msgpackr would not decode faithfully: a map key
 * `__proto__`, or a str (key or value) that starts with U+FEFF.
 */
let scannedUnfaithful = false;

const keyDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const PROTO_KEY = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"
/** Maps of up to this many entries find a repeated key by comparing bytes; larger ones use a Set. */
const SMALL_MAP = 16;
/** The keys read so far of the small maps being walked (start, length), innermost last. */
const keyStart: number[] = [];
const keyLen: number[] = [];

/** Whether the key bytes are UTF-8 that decodes one way (ASCII, or checked by a fatal decoder). */
function validKey(bytes: Uint8Array, pos: number, len: number): boolean {
  for (let i = pos; i < pos + len; i++) {
    if (bytes[i]! >= 0x80) {
      try {
        keyDecoder.decode(bytes.subarray(pos, pos + len));
        return true;
      } catch {
        return false;
      }
    }
  }
  return true;
}

function sameBytes(bytes: Uint8Array, a: number, b: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

/** The key bytes as a latin1 string: equal strings exactly when the bytes are equal. */
function latin1(bytes: Uint8Array, pos: number, len: number): string {
  if (len > 32) return Buffer.from(bytes.buffer, bytes.byteOffset + pos, len).toString('latin1');
  let text = '';
  for (let i = pos; i < pos + len; i++) text += String.fromCharCode(bytes[i]!);
  return text;
}

function scan(bytes: Uint8Array, maxDepth: number, start: number, end: number, keys: boolean, maxItems: number): string | undefined {
  // pending[d] = values still to read at depth d; a map of n entries is 2n values. seen[d] is, for
  // a map: null (one entry), the base of its keys in keyStart/keyLen (up to SMALL_MAP entries) or a
  // Set of them (more); undefined for an array.
  const pending: number[] = [1];
  const seen: (Set<string> | number | null | undefined)[] = [undefined];
  keyStart.length = 0;
  keyLen.length = 0;
  let pos = start;
  let items = 0;
  scannedItems = 0;
  scannedUnfaithful = false;
  while (pending.length > 0) {
    const top = pending.length - 1;
    const left = pending[top]!;
    if (left === 0) {
      pending.pop();
      const done = seen.pop();
      if (typeof done === 'number') keyStart.length = keyLen.length = done;
      continue;
    }
    pending[top] = left - 1;
    if (++items > maxItems) return TOO_MANY_ITEMS;
    if (pos >= end) return 'truncated';
    const b = bytes[pos++]!;
    const map = seen[top];
    if (keys && map !== undefined && (left & 1) === 0) {
      // A map key: a str, valid UTF-8, not seen before in this map.
      let len: number;
      if ((b & 0xe0) === 0xa0) len = b & 0x1f;
      else if (b === 0xd9 && pos + 1 <= end) len = bytes[pos++]!;
      else if (b === 0xda && pos + 2 <= end) {
        len = (bytes[pos]! << 8) | bytes[pos + 1]!;
        pos += 2;
      } else if (b === 0xdb && pos + 4 <= end) {
        len = readU32(bytes, pos);
        pos += 4;
      } else if (b >= 0xd9 && b <= 0xdb) return 'truncated';
      else return 'a map key is not a string';
      if (len > end - pos) return 'a length runs past the end';
      if (len === 9 && PROTO_KEY.every((c, i) => bytes[pos + i] === c)) scannedUnfaithful = true;
      if (len >= 3 && bytes[pos] === 0xef && bytes[pos + 1] === 0xbb && bytes[pos + 2] === 0xbf) scannedUnfaithful = true;
      // Valid UTF-8 decodes one way, so two keys are the same string exactly when their bytes are.
      if (!validKey(bytes, pos, len)) return 'a map key is not valid UTF-8';
      if (typeof map === 'number') {
        for (let j = map; j < keyStart.length; j++) {
          if (keyLen[j] === len && sameBytes(bytes, keyStart[j]!, pos, len)) return 'a map has a key twice';
        }
        keyStart.push(pos);
        keyLen.push(len);
      } else if (map !== null) {
        const text = latin1(bytes, pos, len);
        if (map.has(text)) return 'a map has a key twice';
        map.add(text);
      }
      pos += len;
      continue;
    }
    let skip = 0;
    let children = -1;
    let isMap = false;
    if (b <= 0x7f || b >= 0xe0) {
      // fixint
    } else if (b <= 0x8f) {
      children = (b & 0x0f) * 2;
      isMap = true;
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
          isMap = true;
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
          isMap = true;
          break;
        case 0xc1:
          return 'reserved byte 0xc1';
        default:
          // 0xc7..0xc9 ext 8/16/32, 0xd4..0xd8 fixext
          return 'extension types are not allowed';
      }
    }
    if (skip > end - pos) return 'a length runs past the end';
    // A str that starts with U+FEFF: msgpackr without its native extractor drops it (a default
    // TextDecoder for strings over 64 bytes), so such a message takes the faithful decoder too.
    if (skip >= 3 && bytes[pos] === 0xef && bytes[pos + 1] === 0xbb && bytes[pos + 2] === 0xbf && ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb))) {
      scannedUnfaithful = true;
    }
    pos += skip;
    if (children >= 0) {
      // Each element takes at least one byte: a count beyond the bytes left is a lie.
      if (children > end - pos) return 'a container claims more elements than there are bytes';
      if (pending.length > maxDepth) return `nested deeper than ${maxDepth}`;
      if (children > 0) {
        pending.push(children);
        seen.push(!isMap ? undefined : !keys || children === 2 ? null : children <= 2 * SMALL_MAP ? keyStart.length : new Set<string>());
      }
    }
  }
  if (pos !== end) return 'trailing bytes after the value';
  scannedItems = items;
  return undefined;
}

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

function readU32(bytes: Uint8Array, pos: number): number {
  return ((bytes[pos]! << 24) >>> 0) + ((bytes[pos + 1]! << 16) | (bytes[pos + 2]! << 8) | bytes[pos + 3]!);
}
