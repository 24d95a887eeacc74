// A bounded msgpack decoder (msgpack spec, 2017 revision) for untrusted input.
//
// Never traps on input: every declared length is checked against the bytes that remain before
// anything is allocated (so a bin32 that claims 4 GiB fails at once), containers are counted against
// the depth limit (docs/ABI.md §5), and extension types, the reserved byte 0xc1 and invalid UTF-8 are
// refused (ABI §4). An error is recorded in `error` and decoding unwinds with `nil` values.

import { Value, Kind } from "../value";
import { validUtf8 } from "./utf8";

const EMPTY = new ArrayBuffer(0);

/** Why decoding failed. */
export const enum ReadError {
  None = 0,
  /** A value or a declared length runs past the end of the input. */
  Truncated = 1,
  /** The reserved byte 0xc1. */
  Reserved = 2,
  /** An extension type (fixext, ext 8/16/32, including timestamps): not allowed by ABI §4. */
  Ext = 3,
  /** Containers nested deeper than the depth limit. */
  Depth = 4,
  /** A str that is not valid UTF-8. */
  Utf8 = 5,
  /** The decoded values would take more heap than the budget (see `limits.decodeBudget`). */
  Budget = 6,
}

// Heap cost estimates (bytes, with allocator and GC headers) charged against the budget.
const COST_VALUE: i64 = 64; // a Value: 32 B of fields + 20 B of headers, 16-aligned
const COST_VIEW: i64 = 48; // a Uint8Array view
const COST_ARRAY: i64 = 96; // an Array object and its backing buffer's headers

/** A short, fixed description of `e` for the `message` of a `bad_request` reply. */
export function readErrorMessage(e: ReadError): string {
  switch (e) {
    case ReadError.Truncated:
      return "msgpack: truncated, or a length claims more bytes than remain";
    case ReadError.Reserved:
      return "msgpack: reserved byte 0xc1";
    case ReadError.Ext:
      return "msgpack: extension types are not allowed";
    case ReadError.Depth:
      return "msgpack: nested deeper than the depth limit";
    case ReadError.Utf8:
      return "msgpack: str is not valid UTF-8";
    case ReadError.Budget:
      return "msgpack: too many values for the enclave's memory";
  }
  return "msgpack: malformed";
}

/**
 * Decodes msgpack from `[start, end)` of `buf`. Str and bin values are views into `buf` (`viewed`
 * records that one was handed out), valid as long as `buf` is not overwritten. Reusable: call
 * `reset` before each input.
 *
 * @example
 * ```ts
 * const r = new Reader();
 * r.reset(buf, 0, buf.byteLength, 32, 1 << 20);
 * const v = r.readValue(1);
 * if (r.error != ReadError.None || !r.atEnd()) return Reply.err(ErrorCode.BadRequest, "bad input");
 * ```
 */
export class Reader {
  buf: ArrayBuffer = EMPTY;
  base: usize = 0;
  pos: u32 = 0;
  end: u32 = 0;
  maxDepth: i32 = 32;
  /** Heap bytes the values of this input may still take. */
  budget: i64 = 0;
  error: ReadError = ReadError.None;
  /** Set once a str or bin view into `buf` was created. */
  viewed: bool = false;
  /** Offset and length of the last str read by `readStrRaw`. */
  strOff: u32 = 0;
  strLen: u32 = 0;

  /**
   * Prepares to read `[start, end)` of `buf` (offsets; the caller checked
   * `start <= end <= buf.byteLength`), spending at most `budget` heap bytes on values.
   */
  reset(buf: ArrayBuffer, start: u32, end: u32, maxDepth: i32, budget: i64): void {
    this.budget = budget;
    this.buf = buf;
    this.base = changetype<usize>(buf);
    this.pos = start;
    this.end = end;
    this.maxDepth = maxDepth;
    this.error = ReadError.None;
    this.viewed = false;
  }

  /** Drops the reference to the input buffer. */
  release(): void {
    this.buf = EMPTY;
    this.base = changetype<usize>(EMPTY);
    this.pos = 0;
    this.end = 0;
  }

  /** Whether every byte was consumed. */
  atEnd(): bool {
    return this.pos == this.end;
  }

  /** @internal records the first error and returns `nil` */
  // @ts-ignore: decorator
  @noinline
  fail(e: ReadError): Value {
    if (this.error == ReadError.None) this.error = e;
    this.pos = this.end; // nothing more is read after an error
    return Value.nil();
  }

  /** @internal spends `cost` of the budget; false (error recorded) when it runs out */
  // @ts-ignore: decorator
  @inline
  charge(cost: i64): bool {
    let left = this.budget - cost;
    this.budget = left;
    if (left >= 0) return true;
    this.fail(ReadError.Budget);
    return false;
  }

  // @ts-ignore: decorator
  @inline
  remaining(): u32 {
    return this.end - this.pos;
  }

  /** Reads a big-endian unsigned integer of `k` (1, 2, 4) bytes, or fails with `Truncated`. */
  readLen(k: u32): u32 {
    if (this.remaining() < k) {
      this.fail(ReadError.Truncated);
      return 0;
    }
    let p = this.base + <usize>this.pos;
    this.pos += k;
    if (k == 1) return <u32>load<u8>(p);
    if (k == 2) return <u32>bswap<u16>(load<u16>(p));
    return bswap<u32>(load<u32>(p));
  }

  /**
   * Reads a map header; returns the number of entries, or -1 (error recorded, or not a map:
   * then `error` stays `None` and `pos` is unchanged).
   */
  readMapHeader(): i64 {
    if (this.remaining() < 1) {
      this.fail(ReadError.Truncated);
      return -1;
    }
    let b = <u32>load<u8>(this.base + <usize>this.pos);
    let n: u32;
    if ((b & 0xf0) == 0x80) {
      this.pos++;
      n = b & 0x0f;
    } else if (b == 0xde || b == 0xdf) {
      this.pos++;
      n = this.readLen(b == 0xde ? 2 : 4);
      if (this.error != ReadError.None) return -1;
    } else {
      return -1;
    }
    // Each entry needs at least two bytes (checked arithmetic in u64).
    if (<u64>n * 2 > <u64>this.remaining()) {
      this.fail(ReadError.Truncated);
      return -1;
    }
    return <i64>n;
  }

  /**
   * Reads a str without decoding or allocating: its UTF-8 bytes are at `strOff`/`strLen` of `buf`.
   * Returns false (and leaves `pos`) when the next value is not a str; records an error on bad input.
   */
  readStrRaw(): bool {
    if (this.remaining() < 1) {
      this.fail(ReadError.Truncated);
      return false;
    }
    let b = <u32>load<u8>(this.base + <usize>this.pos);
    let n: u32;
    if ((b & 0xe0) == 0xa0) {
      this.pos++;
      n = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
      this.pos++;
      n = this.readLen(b == 0xd9 ? 1 : b == 0xda ? 2 : 4);
      if (this.error != ReadError.None) return false;
    } else {
      return false;
    }
    return this.takeStr(n);
  }

  /** @internal checks and consumes `n` bytes of str payload into `strOff`/`strLen` */
  takeStr(n: u32): bool {
    if (n > this.remaining()) {
      this.fail(ReadError.Truncated);
      return false;
    }
    if (!validUtf8(this.base + <usize>this.pos, <usize>n)) {
      this.fail(ReadError.Utf8);
      return false;
    }
    this.strOff = this.pos;
    this.strLen = n;
    this.pos += n;
    return true;
  }

  /**
   * Reads one value. `level` is the nesting level a container read here would have (the request
   * envelope is level 1, so `args` are read at level 2: ABI §5). Fuel (runtime/fuel.ts) charges a
   * function's whole body on entry, so every case but fixints is a call (each of those functions has
   * several call sites, so binaryen does not inline it): an item pays little more than its own kind.
   */
  readValue(level: i32): Value {
    if (this.remaining() < 1) return this.fail(ReadError.Truncated);
    let p = this.base + <usize>this.pos;
    let b = <u32>load<u8>(p);
    this.pos++;
    if (b <= 0x7f) return Value.int(<i64>b);
    if (b >= 0xe0) return Value.int(<i64><i8>b);
    if (b <= 0x8f) return this.readMap(b & 0x0f, level);
    if (b <= 0x9f) return this.readArray(b & 0x0f, level);
    if (b <= 0xbf) return this.readStr(b & 0x1f);
    switch (b) {
      case 0xc0:
        return Value.nil();
      case 0xc1:
        return this.fail(ReadError.Reserved);
      case 0xc2:
        return Value.bool(false);
      case 0xc3:
        return Value.bool(true);
      case 0xc4:
        return this.readBin(this.readLen(1));
      case 0xc5:
        return this.readBin(this.readLen(2));
      case 0xc6:
        return this.readBin(this.readLen(4));
      case 0xca:
        return this.readFloat(4);
      case 0xcb:
        return this.readFloat(8);
      case 0xcc:
        return this.readUint(1);
      case 0xcd:
        return this.readUint(2);
      case 0xce:
        return this.readUint(4);
      case 0xcf:
        return this.readUint(8);
      case 0xd0:
        return this.readInt(1);
      case 0xd1:
        return this.readInt(2);
      case 0xd2:
        return this.readInt(4);
      case 0xd3:
        return this.readInt(8);
      case 0xd9:
        return this.readStr(this.readLen(1));
      case 0xda:
        return this.readStr(this.readLen(2));
      case 0xdb:
        return this.readStr(this.readLen(4));
      case 0xdc:
        return this.readArray(this.readLen(2), level);
      case 0xdd:
        return this.readArray(this.readLen(4), level);
      case 0xde:
        return this.readMap(this.readLen(2), level);
      case 0xdf:
        return this.readMap(this.readLen(4), level);
    }
    // 0xc7..0xc9 ext 8/16/32, 0xd4..0xd8 fixext (including the timestamp extension, type -1).
    return this.fail(ReadError.Ext);
  }

  /** @internal a float32 (`k` = 4) or float64 (`k` = 8) */
  readFloat(k: u32): Value {
    if (this.remaining() < k) return this.fail(ReadError.Truncated);
    if (!this.charge(COST_VALUE)) return Value.nil();
    let p = this.base + <usize>this.pos;
    this.pos += k;
    if (k == 4) return Value.float(<f64>reinterpret<f32>(bswap<u32>(load<u32>(p))));
    return new Value(Kind.Float, bswap<u64>(load<u64>(p)));
  }

  /** @internal */
  readUint(k: u32): Value {
    if (this.remaining() < k) return this.fail(ReadError.Truncated);
    let p = this.base + <usize>this.pos;
    this.pos += k;
    let v: u64;
    if (k == 1) v = <u64>load<u8>(p);
    else if (k == 2) v = <u64>bswap<u16>(load<u16>(p));
    else if (k == 4) v = <u64>bswap<u32>(load<u32>(p));
    else v = bswap<u64>(load<u64>(p));
    if (v > 127 && !this.charge(COST_VALUE)) return Value.nil();
    return Value.uint(v);
  }

  /** @internal */
  readInt(k: u32): Value {
    if (this.remaining() < k) return this.fail(ReadError.Truncated);
    let p = this.base + <usize>this.pos;
    this.pos += k;
    let v: i64;
    if (k == 1) v = <i64>load<i8>(p);
    else if (k == 2) v = <i64><i16>bswap<u16>(load<u16>(p));
    else if (k == 4) v = <i64><i32>bswap<u32>(load<u32>(p));
    else v = <i64>bswap<u64>(load<u64>(p));
    if ((v < -32 || v > 127) && !this.charge(COST_VALUE)) return Value.nil();
    return Value.int(v);
  }

  /** @internal */
  readStr(n: u32): Value {
    if (this.error != ReadError.None) return Value.nil();
    if (!this.takeStr(n)) return Value.nil();
    // Charged as a Value and a view although the view is only made if a handler asks for the bytes.
    if (!this.charge(COST_VALUE + COST_VIEW)) return Value.nil();
    this.viewed = true;
    return Value._slice(Kind.Str, this.buf, this.strOff, n);
  }

  /** @internal */
  readBin(n: u32): Value {
    if (this.error != ReadError.None) return Value.nil();
    if (n > this.remaining()) return this.fail(ReadError.Truncated);
    if (!this.charge(COST_VALUE + COST_VIEW)) return Value.nil();
    let off = this.pos;
    this.pos += n;
    this.viewed = true;
    return Value._slice(Kind.Bin, this.buf, off, n);
  }

  /** @internal */
  readArray(n: u32, level: i32): Value {
    if (this.error != ReadError.None) return Value.nil();
    if (level > this.maxDepth) return this.fail(ReadError.Depth);
    // Each item needs at least one byte: refuse before allocating `n` slots.
    if (n > this.remaining()) return this.fail(ReadError.Truncated);
    if (!this.charge(COST_VALUE + COST_ARRAY + 4 * <i64>n)) return Value.nil();
    // Charged as an Array and its buffer, as the estimate always was (one StaticArray is made).
    if (n == 0) return new Value(Kind.Array, 0);
    let items = new StaticArray<Value>(<i32>n);
    for (let i: i32 = 0; i < <i32>n; i++) {
      // Fixints (the commonest item) without entering readValue, whose body is charged whole.
      let pos = this.pos;
      if (pos < this.end) {
        let b = <u32>load<u8>(this.base + <usize>pos);
        if (b <= 0x7f || b >= 0xe0) {
          this.pos = pos + 1;
          unchecked((items[i] = Value.int(<i64><i8>b)));
          continue;
        }
      }
      let v = this.readValue(level + 1);
      if (this.error != ReadError.None) return Value.nil();
      unchecked((items[i] = v));
    }
    let out = Value._new(Kind.Array, <u64>n);
    out._items = items;
    return out;
  }

  /** @internal */
  readMap(n: u32, level: i32): Value {
    if (this.error != ReadError.None) return Value.nil();
    if (level > this.maxDepth) return this.fail(ReadError.Depth);
    // Each entry needs at least two bytes (u64: no overflow for n up to 2^32-1).
    if (<u64>n * 2 > <u64>this.remaining()) return this.fail(ReadError.Truncated);
    // Charged as two Arrays, as the estimate always was (one StaticArray of 2n slots is made).
    if (!this.charge(COST_VALUE + 2 * COST_ARRAY + 8 * <i64>n)) return Value.nil();
    if (n == 0) return new Value(Kind.Map, 0);
    let entries = new StaticArray<Value>(<i32>(n << 1));
    for (let i: i32 = 0, m = <i32>(n << 1); i < m; i++) {
      let v = this.readValue(level + 1);
      if (this.error != ReadError.None) return Value.nil();
      unchecked((entries[i] = v));
    }
    let out = Value._new(Kind.Map, <u64>(n << 1));
    out._items = entries;
    return out;
  }
}
