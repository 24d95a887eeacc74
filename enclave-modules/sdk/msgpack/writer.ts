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

  /**
   * Bytes the output may reach without `ensureSlow`: the smaller of `limit` and the buffer's
   * capacity while neither flag is set, 0 once one is (so `ensure`'s fast path reads 3 fields).
   */
  room: u32 = 0;

  /** Starts a new output of at most `limit` bytes, keeping the buffer. */
  reset(limit: i32): void {
    this.length = 0;
    this.limit = limit;
    this.over = false;
    this.tooDeep = false;
    let cap = this.buf.byteLength;
    this.room = limit < 0 ? 0 : <u32>(limit < cap ? limit : cap);
  }

  /** Whether the output is unusable. */
  // @ts-ignore: decorator
  @inline
  failed(): bool {
    return this.over || this.tooDeep;
  }

  /** @internal marks the output as nested too deep (nothing more is written) */
  // @ts-ignore: decorator
  @inline
  deny(): void {
    this.tooDeep = true;
    this.room = 0;
  }

  /**
   * Makes room for `n` more bytes; returns the address to write them at, or 0 if over the limit.
   * Inlined at every write: the fast path is kept to a few loads (fuel charges every load of a
   * function's body on entry, runtime/fuel.ts).
   */
  // @ts-ignore: decorator
  @inline
  ensure(n: u32): usize {
    let len = this.length;
    let room = this.room;
    let need = <u64><u32>len + <u64>n; // u64: no overflow
    if (need > <u64>room || room == 0) return this.ensureSlow(n);
    this.length = len + <i32>n;
    return this.dataStart + <usize>len;
  }

  /** @internal `ensure` past `room`: stopped, over the limit, or the buffer must grow */
  ensureSlow(n: u32): usize {
    if (this.over || this.tooDeep) return 0;
    let need = <u64>this.length + <u64>n;
    if (need > <u64>this.limit) {
      this.over = true;
      this.room = 0;
      return 0;
    }
    if (need > <u64>this.buf.byteLength) this.grow(need);
    let at = this.dataStart + <usize>this.length;
    this.length += <i32>n;
    return at;
  }

  /** @internal replaces the buffer by one of at least `need` bytes (`need <= limit`) */
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
    this.room = <u32>grown;
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

  // Fuel (runtime/fuel.ts) charges a function's whole body when it is entered, whatever path runs,
  // so the per-item path (ints, containers) stays in small functions and wider ints go through
  // calls. (AssemblyScript has no `@noinline`: binaryen inlines any function with one call site.)

  /** Writes a non-negative integer in its smallest form. */
  writeUint(v: u64): void {
    if (v <= 0x7f) this.u8(<u32>v);
    else this.writeUintWide(v);
  }

  /** @internal a non-negative integer above 0x7f */
  writeUintWide(v: u64): void {
    if (v <= 0xff) {
      let p = this.ensure(2);
      if (p) store<u16>(p, <u16>(0xcc | (<u32>v << 8)));
    } else if (v <= 0xffff) this.tu16(0xcd, <u32>v);
    else if (v <= 0xffffffff) this.tu32(0xce, <u32>v);
    else this.tu64(0xcf, v);
  }

  /** Writes an integer in its smallest form. */
  writeInt(v: i64): void {
    // Positive and negative fixints are both the low byte of `v`.
    if (v >= -32 && v <= 0x7f) this.u8(<u32>v & 0xff);
    else this.writeIntWide(v);
  }

  /** @internal an integer outside the fixint range */
  writeIntWide(v: i64): void {
    if (v >= 0) this.writeUintWide(<u64>v);
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
    let kind = v._kind;
    if (kind == Kind.Int) this.writeInt(<i64>v._n);
    else if (kind == Kind.Array) this.writeArray(v, level, maxDepth);
    else if (kind == Kind.Map) this.writeMap(v, level, maxDepth);
    else this.writeScalar(v);
  }

  /** @internal an array's header and items */
  writeArray(v: Value, level: i32, maxDepth: i32): void {
    if (level > maxDepth) {
      this.deny();
      return;
    }
    let items = v._items;
    let n = <i32>v._n;
    this.writeArrayHeader(<u32>n);
    for (let i = 0; i < n; i++) {
      let item = _itemAt(items!, i);
      // Ints (the commonest item) without entering writeValue, whose body is charged whole.
      if (item._kind == Kind.Int) this.writeInt(<i64>item._n);
      else this.writeValue(item, level + 1, maxDepth);
      if (this.over || this.tooDeep) return;
    }
  }

  /** @internal a map's header and entries (key, value, key, value, ...: see Value._items) */
  writeMap(v: Value, level: i32, maxDepth: i32): void {
    if (level > maxDepth) {
      this.deny();
      return;
    }
    let items = v._items;
    let n = <i32>v._n >>> 1;
    this.writeMapHeader(<u32>n);
    for (let i = 0, m = n << 1; i < m; i += 2) {
      this.writeValue(_itemAt(items!, i), level + 1, maxDepth);
      this.writeValue(_itemAt(items!, i + 1), level + 1, maxDepth);
      if (this.over || this.tooDeep) return;
    }
  }

  /** @internal a value that is neither an Int nor a container */
  writeScalar(v: Value): void {
    switch (v._kind) {
      case Kind.Nil:
        this.u8(0xc0);
        return;
      case Kind.Bool:
        this.u8(v._n != 0 ? 0xc3 : 0xc2);
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
    }
  }
}
