/**
 * The request encoder (docs/ABI.md §4.4): each enclave's own writer of call arguments into msgpack,
 * plain data only, walked once and bounded by the request limits ({@link RequestEncoder}).
 */
import { types } from 'node:util';
import { EnclaveError } from '../core/index.js';
import { typedLength } from './contract.js';
import { kindOf, PLAIN_DATA, Refusal } from './_request-refusal.js';

/** A message encoded into its encoder's own buffer: valid until that encoder's next `encode`. */
export interface Encoded {
  readonly buffer: Buffer;
  readonly start: number;
  readonly end: number;
}

/** Bytes a write may reserve beyond the byte limit before the final size check (a short string's worst case). */
export const SLACK = 256;
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
