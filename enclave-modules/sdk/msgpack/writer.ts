// A msgpack encoder into a reusable, growable buffer capped at a byte limit.
//
// Encodings are canonical (the smallest form): positive fixint / uint8..64 for non-negative ints,
// negative fixint / int8..64 for negative ones, float32 when it represents the f64 exactly,
// fixstr/str8/16/32, bin8/16/32, fixarray/array16/32, fixmap/map16/32. Going over the byte limit or
// the depth limit sets a flag and stops writing; the caller then replaces the reply with a `limit`
// error (docs/ABI.md §4.2, §5).

import { Value, Kind, _itemAt } from "../value";
import { allocBuffer } from "../_alloc";

/** Growing to at least this many bytes runs a full collection first. */
const BIG_GROW: u64 = 256 * 1024;

/** Bytes up to which `copySmall` copies with loads and stores instead of `memory.copy`. */
const SMALL_COPY: usize = 64;

/**
 * Copies `[src, src+n)` to `dst` (the ranges don't overlap: the writer's buffer is its own). Up to
 * SMALL_COPY bytes with 8-byte loads and stores: `memory.copy` leaves the Wasm code for a runtime
 * call in V8, which costs more than the copy itself for the few bytes of a small reply.
 */
// @ts-ignore: decorator
@inline
function copySmall(dst: usize, src: usize, n: usize): void {
  if (n > SMALL_COPY) {
    memory.copy(dst, src, n);
    return;
  }
  let i: usize = 0;
  for (; i + 8 <= n; i += 8) store<u64>(dst + i, load<u64>(src + i));
  for (; i < n; i++) store<u8>(dst + i, load<u8>(src + i));
}

/**
 * Encodes values into an internal buffer. Check `over`/`tooDeep` after writing; the bytes are
 * `[dataStart, dataStart + length)`.
 *
 * @example
 * ```ts
 * const w = new Writer();
 * w.reset(1024);
 * w.writeValue(Value.map().set("n", Value.int(1)), 1, 32);
 * if (!w.failed()) use(w.dataStart, w.length);
 * ```
 */
export class Writer {
  buf: ArrayBuffer = new ArrayBuffer(256);
  /** Where the encoded bytes start (moves when the buffer grows). */
  dataStart: usize = changetype<usize>(this.buf);
  /** Bytes written. */
  length: i32 = 0;
  limit: i32 = 0;
  /** The byte limit was reached. */
  over: bool = false;
  /** A container was nested deeper than the depth limit (or a value contains itself). */
  tooDeep: bool = false;

  /** Starts a new output of at most `limit` bytes, keeping the buffer. */
  reset(limit: i32): void {
    this.length = 0;
    this.limit = limit;
    this.over = false;
    this.tooDeep = false;
  }

  /** Whether the output is unusable. */
  // @ts-ignore: decorator
  @inline
  failed(): bool {
    return this.over || this.tooDeep;
  }

  /** Makes room for `n` more bytes; returns the address to write them at, or 0 if over the limit. */
  // @ts-ignore: decorator
  @inline
  ensure(n: u32): usize {
    if (this.over || this.tooDeep) return 0;
    let need = <u64>this.length + <u64>n; // u64: no overflow
    if (need > <u64>this.limit) {
      this.over = true;
      return 0;
    }
    let cap = this.buf.byteLength;
    if (need > <u64>cap) this.grow(need);
    let at = this.dataStart + <usize>this.length;
    this.length += <i32>n;
    return at;
  }

  /** @internal replaces the buffer by one of at least `need` bytes (`need <= limit`) */
  // @ts-ignore: decorator
  @noinline
  grow(need: u64): void {
    let grown = <u64>this.buf.byteLength * 2;
    if (grown < need) grown = need;
    if (grown > <u64>this.limit) grown = <u64>this.limit;
    if (grown >= BIG_GROW) __collect(); // see allocRequest in dispatch.ts
    // Uninitialised allocation: every byte below `length` is copied, every byte above is written
    // before it is read.
    let nb = allocBuffer(<usize>grown);
    memory.copy(changetype<usize>(nb), this.dataStart, <usize>this.length);
    this.buf = nb;
    this.dataStart = changetype<usize>(nb);
  }

  /** @internal */
  // @ts-ignore: decorator
  @inline
  u8(b: u32): void {
    let p = this.ensure(1);
    if (p) store<u8>(p, <u8>b);
  }

  /** @internal a type byte followed by a big-endian u16 */
  tu16(t: u32, v: u32): void {
    let p = this.ensure(3);
    if (!p) return;
    store<u8>(p, <u8>t);
    store<u16>(p, bswap<u16>(<u16>v), 1);
  }

  /** @internal a type byte followed by a big-endian u32 */
  tu32(t: u32, v: u32): void {
    let p = this.ensure(5);
    if (!p) return;
    store<u8>(p, <u8>t);
    store<u32>(p, bswap<u32>(v), 1);
  }

  /** @internal a type byte followed by a big-endian u64 */
  tu64(t: u32, v: u64): void {
    let p = this.ensure(9);
    if (!p) return;
    store<u8>(p, <u8>t);
    store<u64>(p, bswap<u64>(v), 1);
  }

  /** Writes nil. */
  writeNil(): void {
    this.u8(0xc0);
  }

  /** Writes a bool. */
  writeBool(b: bool): void {
    this.u8(b ? 0xc3 : 0xc2);
  }

  /** Writes a non-negative integer in its smallest form. */
  writeUint(v: u64): void {
    if (v <= 0x7f) this.u8(<u32>v);
    else if (v <= 0xff) {
      let p = this.ensure(2);
      if (p) store<u16>(p, <u16>(0xcc | (<u32>v << 8)));
    } else if (v <= 0xffff) this.tu16(0xcd, <u32>v);
    else if (v <= 0xffffffff) this.tu32(0xce, <u32>v);
    else this.tu64(0xcf, v);
  }

  /** Writes an integer in its smallest form. */
  writeInt(v: i64): void {
    if (v >= 0) this.writeUint(<u64>v);
    else if (v >= -32) this.u8(<u32>(<i32>v & 0xff));
    else if (v >= -128) {
      let p = this.ensure(2);
      if (p) store<u16>(p, <u16>(0xd0 | ((<u32>v & 0xff) << 8)));
    } else if (v >= -32768) this.tu16(0xd1, <u32>v & 0xffff);
    else if (v >= -2147483648) this.tu32(0xd2, <u32>v);
    else this.tu64(0xd3, <u64>v);
  }

  /** Writes a float: float32 when that is exact, float64 otherwise (NaN keeps its f64 bits). */
  writeFloat(x: f64): void {
    if (x == x) {
      let f = <f32>x;
      if (<f64>f == x) {
        this.tu32(0xca, reinterpret<u32>(f));
        return;
      }
    }
    this.tu64(0xcb, reinterpret<u64>(x));
  }

  /** @internal a str header for `n` bytes */
  strHeader(n: u32): void {
    if (n < 32) this.u8(0xa0 | n);
    else if (n <= 0xff) {
      let p = this.ensure(2);
      if (p) store<u16>(p, <u16>(0xd9 | (n << 8)));
    } else if (n <= 0xffff) this.tu16(0xda, n);
    else this.tu32(0xdb, n);
  }

  /** Writes raw bytes (no header). */
  // @ts-ignore: decorator
  @inline
  writeRaw(src: usize, n: u32): void {
    let p = this.ensure(n);
    if (p) copySmall(p, src, <usize>n);
  }

  /** Writes a str from bytes that are valid UTF-8. */
  writeStrBytes(src: usize, n: u32): void {
    this.strHeader(n);
    this.writeRaw(src, n);
  }

  /** Writes a string (lone surrogates become U+FFFD, so the output is always valid UTF-8). */
  writeString(s: string): void {
    let n = <u32>String.UTF8.byteLength(s);
    this.strHeader(n);
    let p = this.ensure(n);
    if (p) String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p, false, String.UTF8.ErrorMode.REPLACE);
  }

  /** Writes a bin. */
  writeBin(src: usize, n: u32): void {
    if (n <= 0xff) {
      let p = this.ensure(2);
      if (p) store<u16>(p, <u16>(0xc4 | (n << 8)));
    } else if (n <= 0xffff) this.tu16(0xc5, n);
    else this.tu32(0xc6, n);
    this.writeRaw(src, n);
  }

  /** Writes an array header for `n` items. */
  writeArrayHeader(n: u32): void {
    if (n < 16) this.u8(0x90 | n);
    else if (n <= 0xffff) this.tu16(0xdc, n);
    else this.tu32(0xdd, n);
  }

  /** Writes a map header for `n` entries. */
  writeMapHeader(n: u32): void {
    if (n < 16) this.u8(0x80 | n);
    else if (n <= 0xffff) this.tu16(0xde, n);
    else this.tu32(0xdf, n);
  }

  /**
   * Writes `v`. `level` is the nesting level a container written here has; deeper than `maxDepth`
   * sets `tooDeep` (which also stops a value that contains itself).
   */
  writeValue(v: Value, level: i32, maxDepth: i32): void {
    if (this.over || this.tooDeep) return;
    switch (v._kind) {
      case Kind.Nil:
        this.u8(0xc0);
        return;
      case Kind.Bool:
        this.u8(v._n != 0 ? 0xc3 : 0xc2);
        return;
      case Kind.Int:
        this.writeInt(<i64>v._n);
        return;
      case Kind.Uint:
        this.writeUint(v._n);
        return;
      case Kind.Float:
        this.writeFloat(reinterpret<f64>(v._n));
        return;
      case Kind.Str: {
        let src = v._src;
        if (src !== null) {
          this.writeStrBytes(changetype<usize>(src) + <usize>(<u32>v._n), <u32>(v._n >>> 32));
          return;
        }
        let b = v._bytes;
        if (b !== null) this.writeStrBytes(b.dataStart, <u32>b.byteLength);
        else this.writeString(v._text!);
        return;
      }
      case Kind.Bin: {
        let src = v._src;
        if (src !== null) {
          this.writeBin(changetype<usize>(src) + <usize>(<u32>v._n), <u32>(v._n >>> 32));
          return;
        }
        let b = v._bytes!;
        this.writeBin(b.dataStart, <u32>b.byteLength);
        return;
      }
      case Kind.Array: {
        if (level > maxDepth) {
          this.tooDeep = true;
          return;
        }
        let items = v._items;
        let n = <i32>v._n;
        this.writeArrayHeader(<u32>n);
        for (let i = 0; i < n; i++) {
          this.writeValue(_itemAt(items!, i), level + 1, maxDepth);
          if (this.over || this.tooDeep) return;
        }
        return;
      }
      case Kind.Map: {
        if (level > maxDepth) {
          this.tooDeep = true;
          return;
        }
        // Entries are key, value, key, value, ... (see Value._items).
        let items = v._items;
        let n = <i32>v._n >>> 1;
        this.writeMapHeader(<u32>n);
        for (let i = 0, m = n << 1; i < m; i += 2) {
          this.writeValue(_itemAt(items!, i), level + 1, maxDepth);
          this.writeValue(_itemAt(items!, i + 1), level + 1, maxDepth);
          if (this.over || this.tooDeep) return;
        }
        return;
      }
    }
  }
}
