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
  // Internal representation; use the accessors.
  /** @internal */ _kind: Kind;
  /** @internal bool (0/1), int (i64 bits), uint (u64), float (f64 bits) */ _n: u64;
  /** @internal str (valid UTF-8) or bin bytes; for str `null` until encoded if built from `_text` */
  _bytes: Uint8Array | null = null;
  /** @internal str as an AssemblyScript string, decoded lazily */ _text: string | null = null;
  /** @internal array items, or map values */ _items: Array<Value> | null = null;
  /** @internal map keys, parallel to `_items` */ _keys: Array<Value> | null = null;

  /** @internal use the static constructors */
  constructor(kind: Kind, n: u64) {
    this._kind = kind;
    this._n = n;
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
    return new Value(Kind.Int, <u64>v);
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
    let v = new Value(Kind.Array, 0);
    v._items = new Array<Value>();
    return v;
  }

  /** An empty map; add entries with `set`. Keys keep insertion order. @example `Value.map().set("n", Value.int(1))` */
  static map(): Value {
    let v = new Value(Kind.Map, 0);
    v._items = new Array<Value>();
    v._keys = new Array<Value>();
    return v;
  }

  /** @internal a str over bytes already validated as UTF-8 */
  static _utf8(bytes: Uint8Array): Value {
    let v = new Value(Kind.Str, 0);
    v._bytes = bytes;
    return v;
  }

  /**
   * A deep copy that owns its bytes: what a handler keeps across calls (views into the request buffer
   * are overwritten by the next request). Shared values (nil, bools, small ints) are returned as is.
   * @example `savedKey = args.get("key").copy();`
   */
  copy(): Value {
    switch (this._kind) {
      case Kind.Str: {
        let t = this._text;
        if (t !== null) return Value.str(t);
        return Value._utf8(this._bytes!.slice());
      }
      case Kind.Bin:
        return Value.bin(this._bytes!.slice());
      case Kind.Array: {
        let out = Value.array();
        let items = this._items!;
        for (let i = 0, n = items.length; i < n; i++) out.push(unchecked(items[i]).copy());
        return out;
      }
      case Kind.Map: {
        let out = Value.map();
        let keys = this._keys!;
        let vals = this._items!;
        for (let i = 0, n = keys.length; i < n; i++) out.setKey(unchecked(keys[i]).copy(), unchecked(vals[i]).copy());
        return out;
      }
    }
    return this;
  }

  // ---- builders (no-ops on the wrong kind) ----

  /** Appends `item` to an array; returns `this` for chaining. @example `list.push(Value.str("x"))` */
  push(item: Value): Value {
    if (this._kind == Kind.Array) this._items!.push(item);
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
      unchecked((this._items!)[i] = val);
      return this;
    }
    this._keys!.push(Value.str(key));
    this._items!.push(val);
    return this;
  }

  /**
   * Appends an entry with any key (msgpack allows non-string keys); no replacement. Returns `this`.
   * @example `Value.map().setKey(Value.int(1), Value.str("one"))`
   */
  setKey(key: Value, val: Value): Value {
    if (this._kind != Kind.Map) return this;
    this._keys!.push(key);
    this._items!.push(val);
    return this;
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
    let b = this._bytes!;
    let s = String.UTF8.decodeUnsafe(b.dataStart, <usize>b.byteLength);
    this._text = s;
    return s;
  }

  /**
   * The bytes of a bin, or the UTF-8 bytes of a str; empty for other kinds. Not a copy: don't
   * modify it, and keep `.slice()` of it across calls (a decoded one is a view into the request).
   * @example `const data = args.get("data").asBytes();`
   */
  asBytes(): Uint8Array {
    if (this._kind == Kind.Bin) return this._bytes!;
    if (this._kind == Kind.Str) return this.utf8();
    return EMPTY_BYTES;
  }

  /** @internal the UTF-8 bytes of a str, encoding (once) a str built from a string */
  utf8(): Uint8Array {
    let b = this._bytes;
    if (b !== null) return b;
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
      case Kind.Map:
        return this._items!.length;
      case Kind.Bin:
        return this._bytes!.byteLength;
      case Kind.Str:
        return this.utf8().byteLength;
    }
    return 0;
  }

  /** Array item `i` (or map value `i`); `nil` when out of range. @example `args.at(0).asInt()` */
  at(i: i32): Value {
    let items = this._items;
    if (items === null || i < 0 || i >= items.length) return NIL;
    return unchecked(items[i]);
  }

  /** Map key `i`; `nil` when out of range or not a map. @example `m.keyAt(0).asString()` */
  keyAt(i: i32): Value {
    let keys = this._keys;
    if (keys === null || i < 0 || i >= keys.length) return NIL;
    return unchecked(keys[i]);
  }

  /** The value under string `key` in a map (first match); `nil` if absent or not a map. @example `args.get("by")` */
  get(key: string): Value {
    let i = this.indexOf(key);
    return i < 0 ? NIL : unchecked((this._items!)[i]);
  }

  /** Whether a map has string `key` (a present `nil` counts). @example `if (!args.has("id")) ...` */
  has(key: string): bool {
    return this.indexOf(key) >= 0;
  }

  /** @internal index of string key `key` in a map, or -1 */
  indexOf(key: string): i32 {
    let keys = this._keys;
    if (keys === null) return -1;
    for (let i = 0, n = keys.length; i < n; i++) {
      if (strEquals(unchecked(keys[i]), key)) return i;
    }
    return -1;
  }
}

/** Whether `k` is a str equal to `s`, without decoding `k` when `s` is ASCII. */
function strEquals(k: Value, s: string): bool {
  if (k._kind != Kind.Str) return false;
  let t = k._text;
  if (t !== null) return t == s;
  let b = k._bytes!;
  let n = s.length;
  if (b.byteLength != n) {
    // Different byte length can still be equal only if `s` has non-ASCII characters.
    return b.byteLength > n && k.asString() == s;
  }
  let p = b.dataStart;
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
