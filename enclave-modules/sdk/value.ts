// A msgpack value: what a handler receives as `args` and returns in `Reply.ok`.
//
// Accessors never trap: asking a value for the wrong kind gives a neutral answer (`0`, `""`, an
// empty array, `nil`), so a handler checks kinds with `isInt()` etc. where shape matters. The host
// already checks args against the contract's shapes (ABI §6); the checks here are the second line.

/** The kind of a `Value`. `Uint` only holds integers above `i64.MAX_VALUE` (msgpack uint64). */
export const enum Kind {
  Nil = 0,
  Bool = 1,
  Int = 2,
  Uint = 3,
  Float = 4,
  Str = 5,
  Bin = 6,
  Array = 7,
  Map = 8,
}

const EMPTY_BYTES = new Uint8Array(0);

/**
 * One msgpack value. Build one with the static constructors, read one with the `is*`/`as*`
 * accessors, `get(key)` on maps and `at(i)` on arrays.
 *
 * Strings and binaries decoded from a request are views into the request buffer (no copy), valid
 * during the call only: the SDK reuses that buffer for the next request. A handler that keeps one
 * across calls (in a global) must keep `v.copy()` (or `asBytes().slice()`) instead.
 *
 * @example
 * ```ts
 * const by = args.get("by");
 * if (!by.isNil() && !by.isInt()) return Reply.err(ErrorCode.BadRequest, "by must be an int");
 * const reply = Value.map().set("value", Value.int(42)).set("note", Value.str("hi"));
 * ```
 */
export class Value {
  // Internal representation; use the accessors. The reference fields have no initialisers on
  // purpose: `__new` zeroes the object, and an initialiser would cost a GC write barrier per field
  // on every Value the decoder makes.
  /** @internal */ _kind: Kind;
  /**
   * @internal bool (0/1), int (i64 bits), uint (u64), float (f64 bits); for a str or bin decoded
   * from a request, the offset (low 32 bits) and length (high 32 bits) of its bytes in `_src`; for
   * an array or a map, the number of slots of `_items` in use
   */
  _n: u64;
  /** @internal str (valid UTF-8) or bin bytes; for a decoded one a view of `_src`, made on demand */
  // @ts-ignore: null until set; AssemblyScript zeroes fields (an initializer would cost a store per Value)
  _bytes: Uint8Array | null;
  /** @internal str as an AssemblyScript string, decoded lazily */
  // @ts-ignore: as _bytes
  _text: string | null;
  /**
   * @internal array items, or map entries as key, value, key, value, ...: the first `_n` slots (one
   * allocation, not an Array and its buffer); null while empty
   */
  // @ts-ignore: as _bytes
  _items: StaticArray<Value> | null;
  /** @internal the request buffer a decoded str or bin lies in (see `_n`), or null */
  // @ts-ignore: as _bytes
  _src: ArrayBuffer | null;

  /** @internal use the static constructors */
  constructor(kind: Kind, n: u64) {
    this._kind = kind;
    this._n = n;
  }

  /**
   * @internal `new Value(kind, n)` without the call: the constructor is not inlined by the
   * optimiser, and the decoder makes one Value per str, bin, container and large number.
   */
  // @ts-ignore: decorator
  @inline
  static _new(kind: Kind, n: u64): Value {
    let v = changetype<Value>(__new(offsetof<Value>(), idof<Value>()));
    v._kind = kind;
    v._n = n;
    return v;
  }

  // ---- constructors ----

  /** The `nil` value (shared, immutable). @example `Reply.ok(Value.nil())` */
  static nil(): Value {
    return NIL;
  }

  /** A boolean (shared, immutable). @example `Value.bool(true)` */
  static bool(b: bool): Value {
    return b ? TRUE : FALSE;
  }

  /** A signed 64-bit integer. @example `Value.int(-3)` */
  static int(v: i64): Value {
    if (v >= SMALL_MIN && v <= SMALL_MAX) return unchecked(SMALL[<i32>(v - SMALL_MIN)]);
    return Value._new(Kind.Int, <u64>v);
  }

  /** An unsigned 64-bit integer; at or below `i64.MAX_VALUE` it is the same as `Value.int`. @example `Value.uint(u64.MAX_VALUE)` */
  static uint(v: u64): Value {
    if (v <= <u64>i64.MAX_VALUE) return Value.int(<i64>v);
    return new Value(Kind.Uint, v);
  }

  /** A 64-bit float (sent as float32 when that is exact). @example `Value.float(0.5)` */
  static float(v: f64): Value {
    return new Value(Kind.Float, reinterpret<u64>(v));
  }

  /** A string. @example `Value.str("hello")` */
  static str(s: string): Value {
    let v = new Value(Kind.Str, 0);
    v._text = s;
    return v;
  }

  /**
   * A binary. The value refers to `data` (no copy): don't modify `data` afterwards.
   * @example `Value.bin(randomBytes(16))`
   */
  static bin(data: Uint8Array): Value {
    let v = new Value(Kind.Bin, 0);
    v._bytes = data;
    return v;
  }

  /** An empty array; add items with `push`. @example `Value.array().push(Value.int(1)).push(Value.int(2))` */
  static array(): Value {
    return new Value(Kind.Array, 0);
  }

  /** An empty map; add entries with `set`. Keys keep insertion order. @example `Value.map().set("n", Value.int(1))` */
  static map(): Value {
    return new Value(Kind.Map, 0);
  }

  /** @internal a str over bytes already validated as UTF-8 */
  static _utf8(bytes: Uint8Array): Value {
    let v = new Value(Kind.Str, 0);
    v._bytes = bytes;
    return v;
  }

  /**
   * @internal a str (bytes already validated as UTF-8) or bin over `[off, off+len)` of `src`,
   * without a Uint8Array until one is asked for
   */
  // @ts-ignore: decorator
  @inline
  static _slice(kind: Kind, src: ArrayBuffer, off: u32, len: u32): Value {
    let v = Value._new(kind, <u64>off | (<u64>len << 32));
    v._src = src;
    return v;
  }

  /** @internal the address of the bytes of a str or bin (`_bytesLen` of them) */
  // @ts-ignore: decorator
  @inline
  _bytesStart(): usize {
    let src = this._src;
    if (src !== null) return changetype<usize>(src) + <usize>(<u32>this._n);
    return this.utf8().dataStart;
  }

  /** @internal the byte length of a str or bin */
  // @ts-ignore: decorator
  @inline
  _bytesLen(): u32 {
    if (this._src !== null) return <u32>(this._n >>> 32);
    return <u32>this.utf8().byteLength;
  }

  /**
   * A deep copy that owns its bytes: what a handler keeps across calls (views into the request buffer
   * are overwritten by the next request). Shared values (nil, bools, small ints) are returned as is.
   * @example `savedKey = args.get("key").copy();`
   */
  copy(): Value {
    switch (this._kind) {
      case Kind.Str: {
        if (this._src === null) {
          let t = this._text;
          if (t !== null) return Value.str(t);
        }
        return Value._utf8(this.ownBytes());
      }
      case Kind.Bin:
        return Value.bin(this.ownBytes());
      case Kind.Array: {
        let out = Value.array();
        let items = this._items;
        for (let i = 0, n = <i32>this._n; i < n; i++) out.push(_itemAt(items!, i).copy());
        return out;
      }
      case Kind.Map: {
        let out = Value.map();
        let items = this._items;
        for (let i = 0, n = <i32>this._n & ~1; i < n; i += 2) {
          out.setKey(_itemAt(items!, i).copy(), _itemAt(items!, i + 1).copy());
        }
        return out;
      }
    }
    return this;
  }

  /** @internal a fresh copy of the bytes of a str or bin */
  ownBytes(): Uint8Array {
    let n = this._bytesLen();
    let out = new Uint8Array(<i32>n);
    memory.copy(out.dataStart, this._bytesStart(), <usize>n);
    return out;
  }

  // ---- builders (no-ops on the wrong kind) ----

  /** Appends `item` to an array; returns `this` for chaining. @example `list.push(Value.str("x"))` */
  push(item: Value): Value {
    if (this._kind == Kind.Array) this._append(item);
    return this;
  }

  /**
   * Sets `key` in a map (replacing an existing string key of that name); returns `this`.
   * @example `Value.map().set("ok", Value.bool(true))`
   */
  set(key: string, val: Value): Value {
    if (this._kind != Kind.Map) return this;
    let i = this.indexOf(key);
    if (i >= 0) {
      unchecked((this._items!)[(i << 1) + 1] = val);
      return this;
    }
    this._append(Value.str(key));
    this._append(val);
    return this;
  }

  /**
   * Appends an entry with any key (msgpack allows non-string keys); no replacement. Returns `this`.
   * @example `Value.map().setKey(Value.int(1), Value.str("one"))`
   */
  setKey(key: Value, val: Value): Value {
    if (this._kind != Kind.Map) return this;
    this._append(key);
    this._append(val);
    return this;
  }

  /** @internal appends one slot to `_items`, growing it (doubling) when full */
  _append(item: Value): void {
    let n = <i32>this._n;
    let items = this._items;
    if (items === null || n == items.length) {
      let grown = new StaticArray<Value>(n < 4 ? 4 : n * 2);
      for (let i = 0; i < n; i++) unchecked((grown[i] = _itemAt(items!, i)));
      this._items = grown;
      items = grown;
    }
    unchecked((items[n] = item));
    this._n = <u64>(n + 1);
  }

  // ---- kind tests ----

  /** The kind. @example `if (v.kind == Kind.Map) ...` */
  get kind(): Kind {
    return this._kind;
  }
  /** @example `if (args.get("by").isNil()) ...` */
  isNil(): bool {
    return this._kind == Kind.Nil;
  }
  /** @example `v.isBool()` */
  isBool(): bool {
    return this._kind == Kind.Bool;
  }
  /** True for integers that fit an i64 (`asInt` is exact). @example `v.isInt()` */
  isInt(): bool {
    return this._kind == Kind.Int;
  }
  /** True for integers above `i64.MAX_VALUE`. @example `v.isUint()` */
  isUint(): bool {
    return this._kind == Kind.Uint;
  }
  /** @example `v.isFloat()` */
  isFloat(): bool {
    return this._kind == Kind.Float;
  }
  /** @example `v.isStr()` */
  isStr(): bool {
    return this._kind == Kind.Str;
  }
  /** @example `v.isBin()` */
  isBin(): bool {
    return this._kind == Kind.Bin;
  }
  /** @example `v.isArray()` */
  isArray(): bool {
    return this._kind == Kind.Array;
  }
  /** @example `v.isMap()` */
  isMap(): bool {
    return this._kind == Kind.Map;
  }

  // ---- scalar accessors ----

  /** The boolean; `false` for any other kind. @example `args.get("force").asBool()` */
  asBool(): bool {
    return this._kind == Kind.Bool && this._n != 0;
  }

  /** The integer; `0` for any other kind (including `Uint` and floats). @example `args.get("by").asInt()` */
  asInt(): i64 {
    return this._kind == Kind.Int ? <i64>this._n : 0;
  }

  /** The integer or `def` when the value is not an `Int` (e.g. absent). @example `args.get("by").intOr(1)` */
  intOr(def: i64): i64 {
    return this._kind == Kind.Int ? <i64>this._n : def;
  }

  /** The unsigned integer; `0` for negative ints and other kinds. @example `v.asUint()` */
  asUint(): u64 {
    if (this._kind == Kind.Uint) return this._n;
    if (this._kind == Kind.Int && <i64>this._n >= 0) return this._n;
    return 0;
  }

  /** The number as f64 (ints converted); `0` for other kinds. @example `v.asFloat()` */
  asFloat(): f64 {
    if (this._kind == Kind.Float) return reinterpret<f64>(this._n);
    if (this._kind == Kind.Int) return <f64><i64>this._n;
    if (this._kind == Kind.Uint) return <f64>this._n;
    return 0;
  }

  /** The string; `""` for other kinds. Decoded once and cached. @example `args.get("name").asString()` */
  asString(): string {
    if (this._kind != Kind.Str) return "";
    let t = this._text;
    if (t !== null) return t;
    let s = String.UTF8.decodeUnsafe(this._bytesStart(), <usize>this._bytesLen());
    this._text = s;
    return s;
  }

  /**
   * The bytes of a bin, or the UTF-8 bytes of a str; empty for other kinds. Not a copy: don't
   * modify it, and keep `.slice()` of it across calls (a decoded one is a view into the request).
   * @example `const data = args.get("data").asBytes();`
   */
  asBytes(): Uint8Array {
    if (this._kind == Kind.Bin || this._kind == Kind.Str) return this.utf8();
    return EMPTY_BYTES;
  }

  /**
   * @internal the bytes of a bin, or the UTF-8 bytes of a str: a view made (once) over the request
   * for a decoded one, an encoding made (once) for a str built from a string
   */
  utf8(): Uint8Array {
    let b = this._bytes;
    if (b !== null) return b;
    let src = this._src;
    if (src !== null) {
      let view = Uint8Array.wrap(src, <i32><u32>this._n, <i32>(this._n >>> 32));
      this._bytes = view;
      return view;
    }
    let s = this._text!;
    let out = new Uint8Array(String.UTF8.byteLength(s));
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, out.dataStart, false, String.UTF8.ErrorMode.REPLACE);
    this._bytes = out;
    return out;
  }

  // ---- containers ----

  /** Items of an array, entries of a map, bytes of a str/bin; `0` otherwise. @example `args.length` */
  get length(): i32 {
    switch (this._kind) {
      case Kind.Array:
        return <i32>this._n;
      case Kind.Map:
        return <i32>this._n >>> 1;
      case Kind.Bin:
      case Kind.Str:
        return <i32>this._bytesLen();
    }
    return 0;
  }

  /** Array item `i` (or map value `i`); `nil` when out of range. @example `args.at(0).asInt()` */
  at(i: i32): Value {
    let items = this._items;
    if (items === null || i < 0) return NIL;
    if (this._kind == Kind.Map) {
      if (i >= <i32>this._n >>> 1) return NIL;
      return _itemAt(items, (i << 1) + 1);
    }
    if (i >= <i32>this._n) return NIL;
    return _itemAt(items, i);
  }

  /** Map key `i`; `nil` when out of range or not a map. @example `m.keyAt(0).asString()` */
  keyAt(i: i32): Value {
    let items = this._items;
    if (this._kind != Kind.Map || items === null || i < 0 || i >= <i32>this._n >>> 1) return NIL;
    return _itemAt(items, i << 1);
  }

  /** The value under string `key` in a map (first match); `nil` if absent or not a map. @example `args.get("by")` */
  get(key: string): Value {
    let i = this.indexOf(key);
    return i < 0 ? NIL : _itemAt(this._items!, (i << 1) + 1);
  }

  /** Whether a map has string `key` (a present `nil` counts). @example `if (!args.has("id")) ...` */
  has(key: string): bool {
    return this.indexOf(key) >= 0;
  }

  /** @internal index of string key `key` in a map, or -1 */
  indexOf(key: string): i32 {
    let items = this._items;
    if (this._kind != Kind.Map || items === null) return -1;
    for (let i = 0, n = <i32>this._n & ~1; i < n; i += 2) {
      if (strEquals(_itemAt(items, i), key)) return i >>> 1;
    }
    return -1;
  }
}

/**
 * @internal slot `i` of `items` (`0 <= i < _n` checked by the caller), as a load: `unchecked(items[i])`
 * is a call in the optimised build.
 */
// @ts-ignore: decorator
@inline
export function _itemAt(items: StaticArray<Value>, i: i32): Value {
  return load<Value>(changetype<usize>(items) + (<usize>i << alignof<usize>()));
}

/** Whether `k` is a str equal to `s`, without decoding `k` when `s` is ASCII. */
function strEquals(k: Value, s: string): bool {
  if (k._kind != Kind.Str) return false;
  let t = k._text;
  if (t !== null) return t == s;
  let len = <i32>k._bytesLen();
  let n = s.length;
  if (len != n) {
    // Different byte length can still be equal only if `s` has non-ASCII characters.
    return len > n && k.asString() == s;
  }
  let p = k._bytesStart();
  let q = changetype<usize>(s);
  for (let i = 0; i < n; i++) {
    let c = <u32>load<u16>(q + (<usize>i << 1));
    if (c >= 0x80) return k.asString() == s;
    if (<u32>load<u8>(p + <usize>i) != c) return false;
  }
  return true;
}

const NIL = new Value(Kind.Nil, 0);
const TRUE = new Value(Kind.Bool, 1);
const FALSE = new Value(Kind.Bool, 0);

// Small integers are shared so that decoding an array of fixints does not allocate one object per
// item (fixints are 1 byte on the wire; a Value is tens of bytes of heap).
const SMALL_MIN: i64 = -32;
const SMALL_MAX: i64 = 127;
const SMALL = makeSmall();
function makeSmall(): StaticArray<Value> {
  let a = new StaticArray<Value>(<i32>(SMALL_MAX - SMALL_MIN + 1));
  for (let i: i64 = SMALL_MIN; i <= SMALL_MAX; i++) {
    unchecked((a[<i32>(i - SMALL_MIN)] = new Value(Kind.Int, <u64>i)));
  }
  return a;
}
