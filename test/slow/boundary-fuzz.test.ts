// The boundary fuzz campaign (issue 9, "Beyond the findings"): a million hostile messages across the
// host/enclave boundary, in both isolation modes, with the host as the target.
//
//   caller side    every JS type as args (typed arrays of every kind, DataView, functions, symbols,
//                  bigint, deep and cyclic objects, huge strings, __proto__ keys, Map/Set/Date/RegExp/
//                  Error, proxies), random op names, session ids and call options, against the bundled
//                  echo and counter modules through the public API;
//   cross-tenant   two echo enclaves (and two sessions of one) interleaved, each sending its own marker
//                  bytes: no reply may carry the other tenant's marker, nor the application's own
//                  msgpackr output;
//   enclave side   a raw module whose reply (bytes, descriptor, pointer, length, next allocation) is
//                  whatever the request tells it, so random msgpack (valid, truncated, deep, huge
//                  counts, extensions, non-string keys) and random descriptors reach the host's reply path.
//
// Every outcome is a value or an EnclaveError with a documented code; echo returns what was sent (after
// the mapping below); nothing reaches a caller that another caller sent; no uncaught exception or
// unhandled rejection; host RSS stays under a bound. The inputs are deterministic for a given FUZZ_SEED;
// a failure is reported by kind, with its count and the first input that produced it.
//
//   npx vitest run --config test/slow/fuzz.vitest.config.ts                  # 1 000 000 messages
//   FUZZ_MESSAGES=20000 npx vitest run --config test/slow/fuzz.vitest.config.ts   # smoke
//
// Env: FUZZ_MESSAGES (default 1 000 000), FUZZ_SEED (default 9), FUZZ_RSS_MIB (RSS growth bound over
// the baseline, default 512), FUZZ_WORKER_SHARE (share of messages in worker mode, default 0.08),
// FUZZ_FRESH (share of freshly generated values, the rest replayed from a pool, default 0.3),
// FUZZ_LOG (a file for progress lines), FUZZ_SLOW_MS (log calls slower than this, default 300).

import { appendFileSync } from 'node:fs';
import util from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { loadEnclave, EnclaveError, type EnclaveHandle } from '../../host/index.js';
import { isErrorCode } from '../../core/index.js';
import { watModule } from '../helpers/wat.js';

const TOTAL = Number(process.env.FUZZ_MESSAGES ?? 1_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? 9);
const RSS_BOUND_MIB = Number(process.env.FUZZ_RSS_MIB ?? 512);
const WORKER_SHARE = Number(process.env.FUZZ_WORKER_SHARE ?? 0.08);
const FRESH = Number(process.env.FUZZ_FRESH ?? 0.3);
/** FUZZ_LOG=<file>: progress, and calls slower than FUZZ_SLOW_MS, appended there (vitest holds a test's output back until it ends). */
const LOG = process.env.FUZZ_LOG;
const VERBOSE = LOG !== undefined && LOG !== '';
const SLOW_MS = Number(process.env.FUZZ_SLOW_MS ?? 300);
function log(line: string): void {
  if (VERBOSE) appendFileSync(LOG!, `${new Date().toISOString()} ${line}\n`);
}
/** Calls in flight per enclave in worker mode (the queue refuses with `overloaded` beyond its bound). */
const WORKER_BATCH = 32;

const ECHO = new URL('../../enclave-modules/echo/build/echo.wasm', import.meta.url).pathname;
const COUNTER = new URL('../../enclave-modules/counter/build/counter.wasm', import.meta.url).pathname;

// ---------------------------------------------------------------------------------------------
// Bookkeeping: messages, RSS, failures, process-level errors.

const stats = {
  messages: 0,
  /** Outcomes by code ('ok' for a value), per suite. */
  outcomes: new Map<string, Map<string, number>>(),
  rssBaseline: 0,
  rssMax: 0,
  rssSamples: 0,
  started: 0,
};
const processErrors: string[] = [];
/** Kinds of failure reported per test (each with its count and first reproducer). */
const MAX_KINDS = 40;

/** Counts an outcome; `message` false for calls that send nothing to an enclave (endSession). */
function tally(suite: string, code: string, message = true): void {
  let m = stats.outcomes.get(suite);
  if (m === undefined) stats.outcomes.set(suite, (m = new Map()));
  m.set(code, (m.get(code) ?? 0) + 1);
  if (message && ++stats.messages % 1000 === 0) {
    sampleRss();
    if (VERBOSE && stats.messages % 10_000 === 0) log(`${stats.messages} messages, ${suite}, rss ${(process.memoryUsage.rss() / 2 ** 20).toFixed(0)} MiB, ${((performance.now() - stats.started) / 1000).toFixed(1)} s`);
  }
}

function sampleRss(): void {
  const rss = process.memoryUsage.rss();
  stats.rssSamples++;
  if (rss > stats.rssMax) stats.rssMax = rss;
}

let failureCount = 0;
/** Failures of the running test by kind (the outcome's text up to its first colon): count and first reproducer. */
const failureKinds = new Map<string, { count: number; first: string }>();

function fail(suite: string, iteration: number, input: string | (() => string), outcome: string): void {
  failureCount++;
  const kind = `${suite}: ${outcome.split(':')[0]}`;
  const seen = failureKinds.get(kind);
  if (seen !== undefined) {
    seen.count++;
    return;
  }
  if (failureKinds.size >= MAX_KINDS) return;
  const text = typeof input === 'string' ? input : input();
  failureKinds.set(kind, { count: 1, first: `[${suite} seed=${SEED} #${iteration}] input: ${text}\n    outcome: ${outcome}` });
}

const onUncaught = (err: unknown) => processErrors.push(`uncaughtException: ${err instanceof Error ? err.stack : typeof err}`);
const onRejection = (err: unknown) => processErrors.push(`unhandledRejection: ${err instanceof Error ? err.stack : typeof err}`);

// ---------------------------------------------------------------------------------------------
// A small, fast, seeded generator (sfc32): the campaign is reproducible from FUZZ_SEED alone.

class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;
  constructor(seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = (seed ^ 0xdeadbeef) >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }
  /** 0 <= n < max */
  int(max: number): number {
    return max <= 0 ? 0 : Math.floor((this.u32() / 4294967296) * max);
  }
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const x = this.u32();
      out[i] = x;
      if (i + 1 < n) out[i + 1] = x >>> 8;
      if (i + 2 < n) out[i + 2] = x >>> 16;
      if (i + 3 < n) out[i + 3] = x >>> 24;
    }
    return out;
  }
}

/**
 * Values generated so far, replayed in random order: a fresh value with probability FUZZ_FRESH
 * (default 0.3), otherwise one from the pool. Replays cost no generation nor modelling and meet the
 * host in a different state each time (another request before them in msgpackr's shared buffer,
 * another instance), which is what interleaving is about.
 */
class Pool<T> {
  readonly #items: T[] = [];
  constructor(readonly size: number) {}
  next(rng: Rng, make: () => T): T {
    if (this.#items.length < this.size || rng.chance(FRESH)) {
      const x = make();
      if (this.#items.length < this.size) this.#items.push(x);
      else this.#items[rng.int(this.size)] = x;
      return x;
    }
    return this.#items[rng.int(this.#items.length)]!;
  }
}

// ---------------------------------------------------------------------------------------------
// Caller-side values, and what echo must answer for each.

/** Thrown by hostile getters: it must come back wrapped (invalid_args / invalid_options), never as itself. */
class Sentinel extends Error {
  override name = 'Sentinel';
}

/** Marker bytes a tenant puts in everything it sends. */
interface Tenant {
  readonly name: string;
  readonly marker: Uint8Array;
  /** The marker as text (latin-1 safe hex), for strings. */
  readonly text: string;
}

function makeTenant(rng: Rng, name: string): Tenant {
  // 0xf7 and 0xc1 never occur in UTF-8 text nor in short msgpack headers: a leaked marker is unambiguous.
  const marker = Uint8Array.from([0xf7, 0xc1, ...rng.bytes(10)]);
  return { name, marker, text: `<${name}:${Buffer.from(marker).toString('hex')}>` };
}

const INTS = [0, 1, -1, 31, 127, 128, 255, 256, -32, -33, -128, -129, 32767, 32768, 65535, 65536, -32768, -32769,
  2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 53, -(2 ** 53), 2 ** 63, 2 ** 64, 1e300];
const FLOATS = [0.5, -0, NaN, Infinity, -Infinity, Number.MIN_VALUE, Number.MAX_VALUE, -1.5, 1 / 3, 3.4028234663852886e38, 1e-310];
const BIGINTS = [0n, 1n, -1n, 127n, 2n ** 31n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 63n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 63n) - 1n, 2n ** 70n, -(2n ** 200n)];
const KEYS = ['a', 'b', 'op', 'args', 'ok', 'err', 'code', '', ' ', '0', '1', '-1', '1.5', 'length', 'constructor', 'toString',
  'valueOf', 'hasOwnProperty', '__defineGetter__', 'then', 'prototype', '\u0000', '\u001b[2J', 'é', '\u{1f600}', 'k'.repeat(40), 'K'.repeat(300)];
const SURROGATES = ['\ud800', '\udfff', 'a\ud800b', '\udc00\ud800', '\ud83d', '\ude00x'];
const OPS_GARBAGE: unknown[] = ['', ' echo', 'echo ', 'ECHO', 'echo\u0000', 'toString', '__proto__', 'constructor', 'hasOwnProperty',
  'valueOf', 'op'.repeat(40), 'e\ud800', '\udfff', 'incr\n', 'r', 0, 1, -1, NaN, null, undefined, true, {}, [], ['echo'],
  Symbol('echo'), Symbol.for('echo'), 10n, () => 'echo', new String('echo'), { toString: () => 'echo' }];

const TYPED = [Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array,
  BigInt64Array, BigUint64Array] as const;

function randomString(rng: Rng, tenant: Tenant | undefined): string {
  switch (rng.int(10)) {
    case 0:
      return '';
    case 1:
      return rng.pick(KEYS);
    case 2: {
      let s = '';
      for (let i = rng.int(8); i >= 0; i--) s += rng.chance(0.5) ? rng.pick(SURROGATES) : String.fromCharCode(rng.int(0x3000));
      return s;
    }
    case 3:
      return String.fromCodePoint(...Array.from({ length: rng.range(1, 20) }, () => rng.pick([rng.int(0x80), rng.int(0x800), rng.int(0xd800), 0x10000 + rng.int(0xfffff)])));
    case 4:
      return 'x'.repeat(rng.pick([31, 32, 255, 256, rng.chance(0.1) ? 65535 : 257, rng.chance(0.1) ? 65536 : 1, rng.int(600)]));
    case 5:
      // Rare: huge, near and past the echo contract's 1 050 000 request bytes.
      if (rng.chance(0.003)) return 'h'.repeat(rng.pick([100_000, 1_049_000, 1_050_001, 2_000_000]));
      return 'y'.repeat(rng.int(300));
    case 6:
      if (tenant !== undefined) return `${tenant.text}${rng.int(1000)}${tenant.text}`;
      return String(rng.u32());
    default: {
      let s = '';
      for (let i = rng.int(24); i > 0; i--) s += String.fromCharCode(0x20 + rng.int(0x5f));
      return s;
    }
  }
}

function markerBytes(tenant: Tenant | undefined, rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  if (tenant === undefined) return rng.bytes(n);
  for (let i = 0; i < n; i++) out[i] = tenant.marker[i % tenant.marker.length]!;
  return out;
}

/** A view of `n` bytes inside a larger buffer full of the tenant's marker (or random bytes). */
function bytesView(rng: Rng, tenant: Tenant | undefined, n: number): Uint8Array {
  const before = rng.int(3) * 8;
  const all = markerBytes(tenant, rng, before + n + rng.int(3) * 8);
  const view = new Uint8Array(all.buffer, before, n);
  if (rng.chance(0.5)) view.set(rng.bytes(n));
  return view;
}

function typedArray(rng: Rng, tenant: Tenant | undefined): ArrayBufferView {
  const Ctor = rng.pick(TYPED);
  const count = rng.pick([0, 1, 2, 3, 7, 16, rng.int(300)]);
  const bpe = Ctor.BYTES_PER_ELEMENT;
  const before = rng.int(3);
  const raw = markerBytes(tenant, rng, (before + count + rng.int(3)) * bpe);
  const arr = new Ctor(raw.buffer as ArrayBuffer, before * bpe, count);
  if (rng.chance(0.3) && !(arr instanceof BigInt64Array) && !(arr instanceof BigUint64Array)) {
    for (let i = 0; i < count; i++) (arr as Float64Array)[i] = rng.int(1000) - 500;
  }
  return arr;
}

function hostileObject(rng: Rng, depth: number, tenant: Tenant | undefined): unknown {
  let c = rng.int(22);
  // Cycles, throwing getters and proxies cost the encoder tens of milliseconds each (it recurses to
  // a stack overflow or unwinds an exception): kept rarer, so the campaign stays fast.
  if (c >= 11 && c <= 14 && !rng.chance(0.1)) c = 21;
  switch (c) {
    case 0:
      return () => 1;
    case 1:
      return rng.pick([class X {}, async function f() {}, function* g() {}, Math.max.bind(null), Symbol('s'), Symbol.iterator]);
    case 2:
      return new Map(Array.from({ length: rng.int(4) }, () => [rng.chance(0.5) ? rng.pick(KEYS) : rng.pick([1, 2, true, null, {}]), genValue(rng, depth + 1, tenant)]));
    case 3:
      return new Set(Array.from({ length: rng.int(4) }, () => genValue(rng, depth + 1, tenant)));
    case 4:
      return rng.chance(0.5) ? new Date(rng.int(2 ** 40)) : new Date(NaN);
    case 5:
      return rng.pick([/a/g, /x(?<n>y)/u, new RegExp('\\u0000', 'y')]);
    case 6: {
      const e = new (rng.pick([Error, TypeError, RangeError]))(randomString(rng, tenant), { cause: rng.chance(0.5) ? 'c' : undefined });
      return e;
    }
    case 7:
      return rng.pick([new Number(3), new String('s'), new Boolean(false), Object(1n), Object(Symbol('b'))]);
    case 8:
      return typedArray(rng, tenant);
    case 9: {
      const raw = markerBytes(tenant, rng, 8 + rng.int(64));
      return rng.chance(0.5) ? new DataView(raw.buffer, rng.int(4), rng.int(4)) : raw.buffer;
    }
    case 10:
      return new SharedArrayBuffer(rng.int(16));
    case 11: {
      // Cyclic: directly or a few levels down.
      const o: Record<string, unknown> = { a: 1 };
      const inner: unknown[] = [o];
      o.b = rng.chance(0.5) ? o : { c: inner };
      return rng.chance(0.5) ? o : [inner];
    }
    case 12: {
      // A getter that throws the caller's own exception.
      const o: Record<string, unknown> = { a: 1 };
      Object.defineProperty(o, rng.pick(['by', 'x', 'a2']), {
        enumerable: true,
        get() {
          throw new Sentinel('getter');
        },
      });
      return o;
    }
    case 13: {
      const { proxy, revoke } = Proxy.revocable({ a: 1 }, {});
      if (rng.chance(0.5)) revoke();
      return proxy;
    }
    case 14:
      return new Proxy({ a: 1 }, {
        ownKeys: () => {
          throw new Sentinel('ownKeys');
        },
        get: () => {
          throw new Sentinel('get');
        },
      });
    case 15:
      return new (class Point {
        x = 1;
        y = genValue(rng, depth + 1, tenant);
      })();
    case 16:
      return Promise.resolve(1);
    case 17:
      return rng.pick([new WeakMap(), new WeakSet(), new WeakRef({}), Math, JSON]);
    case 18: {
      const a: unknown[] = [1, 2];
      (a as unknown as Record<string, unknown>).extra = 'x';
      return a;
    }
    case 19: {
      // An accessor that returns a different value each time it is read.
      let n = 0;
      const o = {};
      Object.defineProperty(o, 'v', { enumerable: true, get: () => (n++ % 2 === 0 ? 'short' : 'l'.repeat(1000)) });
      return o;
    }
    case 20:
      return Object.freeze({ frozen: genValue(rng, depth + 1, tenant) });
    default:
      return new ArrayBuffer(rng.int(16));
  }
}

/** Nodes left for the value being generated: keeps most values small (the big ones are explicit cases). */
let nodesLeft = 0;

/** A random caller value; `tenant` makes every byte string carry that tenant's marker. */
function genValue(rng: Rng, depth = 0, tenant?: Tenant): unknown {
  if (depth === 0) nodesLeft = rng.chance(0.05) ? 300 : 8;
  const k = rng.int(depth > 6 || --nodesLeft <= 0 ? 14 : rng.chance(0.97) ? 21 : 24);
  switch (k) {
    case 0:
      return null;
    case 1:
      return undefined;
    case 2:
      return rng.chance(0.5);
    case 3:
      return rng.chance(0.5) ? rng.pick(INTS) * (rng.chance(0.2) ? -1 : 1) : rng.int(2000) - 1000;
    case 4:
      return rng.chance(0.5) ? rng.pick(FLOATS) : (rng.u32() - 2 ** 31) / (rng.u32() + 1);
    case 5:
      return rng.chance(0.7) ? rng.pick(BIGINTS) : BigInt(rng.u32()) * (rng.chance(0.5) ? -1n : 1n);
    case 6:
    case 7:
    case 8:
      return randomString(rng, tenant);
    case 9:
    case 10:
      return bytesView(rng, tenant, rng.pick([0, 1, 8, 31, 32, 255, 256, rng.int(600), rng.chance(0.01) ? 70_000 : 5]));
    case 11:
      return Buffer.from(bytesView(rng, tenant, rng.int(64)));
    case 12:
    case 13:
      return hostileObject(rng, depth, tenant);
    case 14:
    case 15:
    case 16: {
      const n = Math.max(0, Math.min(nodesLeft, rng.pick([0, 1, 2, 3, 5, 15, 16, 17])));
      const a: unknown[] = [];
      for (let i = 0; i < n; i++) a.push(genValue(rng, depth + 1, tenant));
      if (rng.chance(0.05)) a.length += rng.int(5); // holes
      return a;
    }
    case 17:
    case 18:
    case 19: {
      const o: Record<string, unknown> = rng.chance(0.1) ? Object.create(null) : {};
      for (let i = Math.min(nodesLeft, rng.pick([0, 1, 2, 3, 4, 15, 16, 17])); i > 0; i--) {
        const key = rng.chance(0.1) ? randomString(rng, undefined) : rng.pick(KEYS);
        o[key] = genValue(rng, depth + 1, tenant);
      }
      if (rng.chance(0.05)) Object.defineProperty(o, '__proto__', { value: genValue(rng, depth + 1, tenant), enumerable: true, writable: true, configurable: true });
      if (rng.chance(0.03)) (o as Record<symbol, unknown>)[Symbol('hidden')] = 1;
      if (rng.chance(0.03)) Object.defineProperty(o, 'hidden', { value: 1, enumerable: false });
      return o;
    }
    case 20: {
      // Deep nesting around the echo contract's depth limit (32) and far past it.
      const levels = rng.pick([10, 29, 30, 31, 32, 33, 34, 100, 1000, rng.chance(0.02) ? 100_000 : 50]);
      let v: unknown = rng.chance(0.5) ? 1 : (tenant?.text ?? 'leaf');
      for (let i = 0; i < levels; i++) v = rng.chance(0.5) ? [v] : { d: v };
      return v;
    }
    case 21: {
      // Many items: a large but shallow value.
      const n = rng.pick([100, 1000, rng.chance(0.2) ? 10_000 : 500, rng.chance(0.02) ? 300_000 : 2000]);
      return Array.from({ length: n }, (_, i) => (rng.chance(0.5) ? i : null));
    }
    default:
      return genValue(rng, depth + 1, tenant);
  }
}

// What echo must answer for a value: PLAIN values come back equal (under the mapping in `expectOf`);
// REFUSE values must be refused (invalid_args); EITHER values may be refused or come back as `out`.
const PLAIN = 0;
const EITHER = 1;
const REFUSE = 2;

/** Expected bytes for a bin. */
class Bytes {
  constructor(readonly bytes: Uint8Array) {}
}
/** An integer that may come back as a number or a bigint. */
class Int {
  constructor(readonly value: bigint) {}
}
/** An object value with its own keys as sent (kept apart from `__proto__` tricks). */
class Obj {
  constructor(readonly entries: ReadonlyArray<readonly [string, unknown]>) {}
}

interface Expect {
  kind: number;
  out: unknown;
  /** Container levels (the value itself is level 1 when it is a container). */
  depth: number;
  /** An upper estimate of the encoded size. */
  size: number;
  /** msgpack values in it (containers count one each, like their items). */
  items: number;
  /** Read through a getter or proxy of the caller's (which may throw): if refused, as invalid_args. */
  sentinel: boolean;
  /** A string with a lone surrogate: the enclave may refuse it as malformed UTF-8 (`bad_request`). */
  surrogate: boolean;
  /** Plain JS objects cannot carry it back faithfully (a `__proto__` key, non-string map keys): the reply may be refused (`bad_reply`). */
  lossy: boolean;
  /** Holds something not modelled (a class instance, a proxy, a getter): any caller-side code is acceptable. */
  opaque: boolean;
}

const OBJECT_PROTO = Object.prototype;

function expectOf(v: unknown, ancestors: Set<object> = new Set()): Expect {
  const leaf = (kind: number, out: unknown, size = 9): Expect => ({ kind, out, depth: 0, size, items: 1, sentinel: false, surrogate: false, lossy: false, opaque: out === ANY });
  // Far past any depth limit: must be refused whatever it holds (and not walked further here).
  if (ancestors.size > 300) return { ...leaf(PLAIN, ANY), depth: 100_000, opaque: false };
  switch (typeof v) {
    case 'undefined':
      return leaf(PLAIN, null, 1);
    case 'boolean':
      return leaf(PLAIN, v, 1);
    case 'number':
      return leaf(PLAIN, v);
    case 'bigint':
      return v >= -(2n ** 63n) && v < 2n ** 64n ? leaf(PLAIN, new Int(v)) : leaf(REFUSE, undefined);
    case 'string': {
      const size = Buffer.byteLength(v) + 5;
      if ((v as string & { isWellFormed(): boolean }).isWellFormed()) return leaf(PLAIN, v, size);
      return { ...leaf(EITHER, (v as string & { toWellFormed(): string }).toWellFormed(), size), surrogate: true };
    }
    case 'symbol':
    case 'function':
      return leaf(REFUSE, undefined);
  }
  if (v === null) return leaf(PLAIN, null, 1);
  const o = v as object;
  if (ancestors.has(o)) return leaf(REFUSE, undefined);
  if (util.types.isProxy(o)) return { ...leaf(REFUSE, undefined), sentinel: true, opaque: true, kind: EITHER, out: PROXY };
  const proto = Object.getPrototypeOf(o);
  if (proto === Uint8Array.prototype) return leaf(PLAIN, new Bytes((o as Uint8Array).slice()), (o as Uint8Array).length + 5);
  if (proto === Buffer.prototype) return leaf(EITHER, new Bytes(new Uint8Array(o as Uint8Array)), (o as Uint8Array).length + 5);
  if (o instanceof ArrayBuffer || o instanceof SharedArrayBuffer) return leaf(EITHER, new Bytes(new Uint8Array(o).slice()), o.byteLength + 5);
  if (ArrayBuffer.isView(o)) {
    // Not plain data: refused, or (at most) exactly the bytes the view covers, never a byte beyond.
    const view = new Uint8Array(o.buffer, o.byteOffset, o.byteLength);
    return leaf(EITHER, new Bytes(view.slice()), o.byteLength + 5);
  }
  ancestors.add(o);
  try {
    if (Array.isArray(o)) {
      const extra = Object.keys(o).length !== o.length;
      const items = Array.from(o, (x) => expectOf(x, ancestors));
      return combine(items, items.map((e) => e.out), extra || items.length !== Object.keys(o).length ? EITHER : PLAIN);
    }
    if (proto === OBJECT_PROTO || proto === null) {
      const keys = Object.keys(o);
      let kind = PLAIN;
      if (Object.getOwnPropertySymbols(o).length > 0) kind = EITHER;
      const parts: Expect[] = [];
      const entries: Array<readonly [string, unknown]> = [];
      let sentinel = false;
      let anyKey = false;
      for (const key of keys) {
        const d = Object.getOwnPropertyDescriptor(o, key)!;
        if (d.get !== undefined) {
          // Read by the encoder, so its value is whatever the getter gives then: refused or anything.
          sentinel = true;
          kind = Math.max(kind, EITHER);
          parts.push({ ...leaf(EITHER, ANY) });
          entries.push([key, ANY]);
          continue;
        }
        if (d.value === undefined) {
          // An undefined value: the key is left out (docs/ABI.md §4.4) or, at most, sent as nil.
          entries.push([key, ABSENT]);
          continue;
        }
        const e = expectOf(d.value, ancestors);
        if (key === '__proto__') {
          e.kind = Math.max(e.kind, EITHER); // decoded faithfully, or refused
          e.lossy = true;
        }
        if (!(key as string & { isWellFormed(): boolean }).isWellFormed()) {
          // Two such keys may become one: not modelled beyond refused-or-anything.
          e.kind = Math.max(e.kind, EITHER);
          e.surrogate = true;
          anyKey = true;
        }
        parts.push(e);
        entries.push([key, e.out]);
      }
      const out = combine(parts, anyKey ? ANY : new Obj(entries), kind);
      out.size += keys.reduce((n, k) => n + Buffer.byteLength(k) + 5, 0);
      if (sentinel) out.sentinel = true;
      return out;
    }
    if (o instanceof Map) {
      // A map: refused, or its entries, string keys as keys; other keys cannot be JS object keys
      // (1 and "1" would merge), so the reply is refused or decoded faithfully (as a Map).
      const parts: Expect[] = [];
      const entries: Array<readonly [string, unknown]> = [];
      let lossy = false;
      for (const [k, x] of o) {
        const e = expectOf(x, ancestors);
        if (typeof k === 'string' && k !== '__proto__' && (k as string & { isWellFormed(): boolean }).isWellFormed()) entries.push([k, e.out]);
        else lossy = true;
        parts.push(e);
      }
      const out = combine(parts, lossy ? ANY : new Obj(entries), EITHER);
      out.lossy ||= lossy;
      return out;
    }
    // Set, Date, RegExp, Error, boxed primitives, promises...: not plain data. Class instances:
    // refused or anything (their mapping is not specified).
    const known = o instanceof Set || o instanceof Date || o instanceof RegExp || o instanceof Error ||
      o instanceof Promise || o instanceof WeakMap || o instanceof WeakSet || o instanceof WeakRef ||
      o instanceof Number || o instanceof String ||
      o instanceof Boolean || o instanceof BigInt || o instanceof Symbol;
    return { ...leaf(known ? REFUSE : EITHER, ANY), sentinel: !known, opaque: !known };
  } finally {
    ancestors.delete(o);
  }
}

/** Accepts any value (a class instance's mapping, a getter's value). */
const ANY = Symbol('any');
/** An object key whose value was undefined: absent from the reply, or nil. */
const ABSENT = Symbol('absent');
/** A proxy: read through its traps; refused, the caller's own exception, or any value. */
const PROXY = ANY;

function combine(parts: Expect[], out: unknown, base: number): Expect {
  let kind = base;
  let depth = 0;
  let size = 5;
  let items = 1;
  let sentinel = false;
  let surrogate = false;
  let lossy = false;
  let opaque = false;
  for (const p of parts) {
    opaque ||= p.opaque;
    kind = Math.max(kind, p.kind);
    depth = Math.max(depth, p.depth);
    size += p.size;
    items += p.items;
    sentinel ||= p.sentinel;
    surrogate ||= p.surrogate;
    lossy ||= p.lossy;
  }
  return { kind, out, depth: depth + 1, size, items, sentinel, surrogate, lossy, opaque };
}

/** Why `got` is not what `want` describes, or undefined. */
function mismatch(got: unknown, want: unknown, path = 'value'): string | undefined {
  if (want === ANY) return undefined;
  if (want instanceof Bytes) {
    if (!(got instanceof Uint8Array)) return `${path}: expected bytes, got ${render(got, 1)}`;
    if (!Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(want.bytes)) {
      return `${path}: bytes differ: sent ${hexOf(want.bytes)}, got ${hexOf(got)}`;
    }
    return undefined;
  }
  if (want instanceof Int) {
    // Exactly the integer sent: a bigint, or a number that is that integer (not one rounded to it).
    if (typeof got === 'bigint' ? got === want.value : typeof got === 'number' && Number.isInteger(got) && BigInt(got) === want.value) return undefined;
    return `${path}: expected integer ${want.value}, got ${render(got, 1)}`;
  }
  if (typeof want === 'number') {
    if (typeof got === 'number' && (got === want || (Number.isNaN(got) && Number.isNaN(want)))) return undefined;
    if (typeof got === 'bigint' && Number.isInteger(want) && BigInt(want) === got) return undefined; // an integral float beyond 2^53
    return `${path}: expected ${render(want, 1)}, got ${render(got, 1)}`;
  }
  if (typeof want === 'string' || typeof want === 'boolean' || want === null) {
    return got === want ? undefined : `${path}: expected ${render(want, 1)}, got ${render(got, 1)}`;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got)) return `${path}: expected an array, got ${render(got, 1)}`;
    if (got.length !== want.length) return `${path}: expected ${want.length} items, got ${got.length}`;
    for (let i = 0; i < want.length; i++) {
      const why = mismatch(got[i], want[i], `${path}[${i}]`);
      if (why !== undefined) return why;
    }
    return undefined;
  }
  if (want instanceof Obj) {
    if (typeof got !== 'object' || got === null || Array.isArray(got) || got instanceof Uint8Array) return `${path}: expected an object, got ${render(got, 1)}`;
    const proto = Object.getPrototypeOf(got);
    if (proto !== OBJECT_PROTO && proto !== null) return `${path}: a decoded object has an unexpected prototype`;
    const own = Object.keys(got);
    const wantKeys = new Set(want.entries.map(([k]) => k));
    if (own.some((k) => !wantKeys.has(k))) return `${path}: expected keys ${render([...wantKeys], 1)}, got ${render(own, 1)}`;
    for (const [key, value] of want.entries) {
      const d = Object.getOwnPropertyDescriptor(got, key);
      if (value === ABSENT) {
        if (d !== undefined && d.value !== null) return `${path}.${key}: sent undefined, got ${render(d.value, 1)}`;
        continue;
      }
      if (d === undefined) return `${path}: key ${JSON.stringify(key)} missing (got ${render(own, 1)})`;
      const why = mismatch(d.value, value, `${path}.${key}`);
      if (why !== undefined) return why;
    }
    return undefined;
  }
  return `${path}: no model for ${render(want, 1)}`;
}

// ---------------------------------------------------------------------------------------------
// Printing inputs and outcomes compactly (a reproducer must be readable, and never huge).

function render(v: unknown, depth = 3): string {
  try {
    const s = util.inspect(v, { depth, maxArrayLength: 4, maxStringLength: 40, breakLength: Infinity, showProxy: true, compact: true });
    return s.length > 400 ? `${s.slice(0, 400)}...` : s;
  } catch (err) {
    return `<uninspectable: ${String((err as Error)?.message)}>`;
  }
}

function hexOf(b: Uint8Array): string {
  const h = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  return h.length > 80 ? `${h.slice(0, 80)}...(${b.byteLength} bytes)` : h;
}

function outcomeOf(result: { ok: true; value: unknown } | { ok: false; error: unknown }): string {
  if (result.ok) return `value ${render(result.value, 2)}`;
  const e = result.error;
  if (e instanceof EnclaveError) return `EnclaveError ${e.code}: ${e.message}${e.detail ? ` (detail ${JSON.stringify(e.detail)})` : ''}`;
  // Never inspect the error itself: formatting a stack is slow, and a hostile value may be anything.
  const name = e instanceof Error ? e.constructor.name : typeof e;
  return `${name} (not an EnclaveError): ${e instanceof Error ? e.message : typeof e}`;
}

// ---------------------------------------------------------------------------------------------
// Checks that hold for every outcome.

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

function valueOf(o: Outcome): unknown {
  return o.ok ? o.value : undefined;
}

async function settle(p: () => Promise<unknown>, describe?: () => string): Promise<Outcome> {
  const t0 = VERBOSE ? performance.now() : 0;
  let o: Outcome;
  try {
    o = { ok: true, value: await p() };
  } catch (error) {
    o = { ok: false, error };
  }
  if (VERBOSE && performance.now() - t0 > SLOW_MS) log(`slow call (${(performance.now() - t0).toFixed(0)} ms): ${describe?.() ?? '?'}`);
  return o;
}

/** The code of an outcome ('ok' for a value), or why it is not an acceptable outcome at all. */
function codeOf(o: Outcome): { code: string; bad?: string } {
  if (o.ok) return { code: 'ok' };
  const e = o.error;
  // Every bad input gets an EnclaveError: what a caller's getter or proxy throws while the runtime
  // reads it is bad input too (invalid_args / invalid_options, the exception as `cause`).
  if (e instanceof Sentinel) return { code: 'sentinel', bad: "a caller's getter threw and its exception escaped unwrapped" };
  if (!(e instanceof EnclaveError)) return { code: 'not-enclave-error', bad: 'not an EnclaveError' };
  if (!isErrorCode(e.code)) return { code: String(e.code), bad: 'undocumented code' };
  if (typeof e.message !== 'string' || e.name !== 'EnclaveError') return { code: e.code, bad: 'malformed EnclaveError' };
  return { code: e.code };
}

/** Object.prototype is never touched by anything decoded. */
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).join();
function prototypeIntact(): boolean {
  return Object.getOwnPropertyNames(Object.prototype).join() === PROTO_KEYS && ({} as Record<string, unknown>).x === undefined;
}

/** Every byte string reachable in a value, as one buffer (for marker scans). */
function bytesIn(v: unknown, out: Buffer[] = [], depth = 0): Buffer[] {
  if (depth > 200) return out;
  if (typeof v === 'string') out.push(Buffer.from(v, 'latin1'), Buffer.from(v, 'utf8'));
  else if (v instanceof Uint8Array) out.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  else if (Array.isArray(v)) for (const x of v) bytesIn(x, out, depth + 1);
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) {
    out.push(Buffer.from(k, 'latin1'));
    bytesIn((v as Record<string, unknown>)[k], out, depth + 1);
  }
  return out;
}

function carries(v: unknown, tenant: Tenant): boolean {
  const probe = Buffer.from(tenant.marker.subarray(0, 8));
  const text = Buffer.from(tenant.text.slice(0, 14), 'latin1');
  for (const b of bytesIn(v)) if (b.includes(probe) || b.includes(text)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Budgets.

const workerTotal = Math.round(TOTAL * WORKER_SHARE);
const inProcessTotal = TOTAL - workerTotal;
const BUDGET = {
  echo: Math.round(inProcessTotal * 0.4),
  counter: Math.round(inProcessTotal * 0.1),
  tenants: Math.round(inProcessTotal * 0.15),
  reply: 0,
  workerCaller: Math.round(workerTotal * 0.55),
  workerReply: 0,
};
BUDGET.reply = inProcessTotal - BUDGET.echo - BUDGET.counter - BUDGET.tenants;
BUDGET.workerReply = workerTotal - BUDGET.workerCaller;

/** Values in an echo's args from which the default fuel budget may run out (echo of 500 ints: 5.6 M fuel of 10 M). */
const COSTLY_ITEMS = 300;
/**
 * Request bytes from which it may too: the SDK checks and copies a string byte by byte (a 1 MiB
 * string echoes for about 8.1 M fuel on a fresh instance; growing memory and a collection can push
 * it past 10 M).
 */
const COSTLY_BYTES = 512 * 1024;

/** Codes a caller's garbage may get from the bundled modules; anything else (internal, trap...) is a bug. */
const CALLER_CODES = new Set(['invalid_args', 'unknown_op', 'invalid_options', 'too_large', 'bad_request', 'limit', 'state', 'overloaded']);

// ---------------------------------------------------------------------------------------------
// Caller side: echo.

function checkEcho(suite: string, i: number, input: () => string, want: Expect, o: Outcome, limits: { requestBytes: number; depth: number }): void {
  const { code, bad } = codeOf(o);
  tally(suite, code);
  if (bad !== undefined) return fail(suite, i, input, `${bad}: ${outcomeOf(o)}`);
  // Echoing many values takes the guest SDK many instructions: past a few hundred, the default
  // fuel budget may end the call (the bound working, not a fault); below that it must not.
  const costly = want.items >= COSTLY_ITEMS || want.size >= COSTLY_BYTES;
  if (code === 'fuel_exhausted' && costly) {
    if (want.kind === REFUSE) fail(suite, i, input, `not plain data, but it reached the enclave: ${outcomeOf(o)}`);
    return;
  }
  if (!CALLER_CODES.has(code) && code !== 'ok' && code !== 'timeout' && !(code === 'bad_reply' && want.lossy)) {
    return fail(suite, i, input, `unexpected code for caller input: ${outcomeOf(o)}`);
  }
  // The args sit at level 2 (the envelope is level 1): depth above limits.depth - 1 must be refused.
  const tooDeep = want.depth > limits.depth; // margin of one level either side of the exact bound
  const surelyFits = want.depth < limits.depth - 2;
  const big = want.size > 64 * 1024;
  if (code === 'ok') {
    if (want.kind === REFUSE) return fail(suite, i, input, `not plain data, but it was sent: ${outcomeOf(o)}`);
    if (tooDeep) return fail(suite, i, input, `nested ${want.depth} levels (limit ${limits.depth}), but it was sent`);
    const why = mismatch(valueOf(o), want.out);
    if (why !== undefined) return fail(suite, i, input, `echo changed the value: ${why}`);
    return;
  }
  if (code === 'timeout' || code === 'overloaded') return; // worker mode under load
  if (code === 'invalid_args') {
    if (want.kind === PLAIN && surelyFits && !big) fail(suite, i, input, `plain data of depth ${want.depth} refused: ${outcomeOf(o)}`);
    return;
  }
  if (code === 'too_large' || code === 'limit' || (code === 'bad_request' && big)) {
    if (!big) fail(suite, i, input, `a small value (~${want.size} bytes) got ${outcomeOf(o)}`);
    return;
  }
  if (code === 'bad_request' && want.surrogate) return; // a lone surrogate is not UTF-8: the enclave may refuse it
  if (code === 'bad_reply' && want.lossy) return; // the echo cannot be decoded faithfully into plain JS: refused
  if (want.opaque && CALLER_CODES.has(code)) return; // not modelled: any caller-side refusal
  if (want.kind === REFUSE || (want.kind === EITHER && want.sentinel)) {
    // Refused, but not as invalid_args: wrong code for something the host must refuse itself.
    return fail(suite, i, input, `not plain data, refused with ${code} instead of invalid_args: ${outcomeOf(o)}`);
  }
  fail(suite, i, input, `unexpected refusal: ${outcomeOf(o)}`);
}

function randomOptions(rng: Rng): unknown {
  switch (rng.int(16)) {
    case 0:
      return null;
    case 1:
      return rng.pick([0, 1, 'session', true, Symbol('o'), 5n, () => ({})]);
    case 2:
      return { session: rng.pick([...SURROGATES, '', 'x'.repeat(257), 5, null, {}, 'tenant']) };
    case 3:
      return { session: undefined, other: 1 };
    case 4:
      return Object.create({ session: 'inherited' });
    case 5: {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    }
    case 6:
      return Object.defineProperty({}, 'session', {
        enumerable: true,
        get() {
          throw new Sentinel('options.session');
        },
      });
    default:
      return undefined;
  }
}

function optionsAreDefault(opt: unknown): boolean {
  if (opt === undefined || opt === null) return true;
  if (typeof opt !== 'object' && typeof opt !== 'function') return true;
  try {
    return (opt as { session?: unknown }).session === undefined;
  } catch {
    return false;
  }
}

/** A caller value and what echo must answer for it (modelled once, replayed many times). */
interface Sample {
  readonly value: unknown;
  readonly want: Expect;
}

function sample(value: unknown): Sample {
  return { value, want: expectOf(value) };
}

async function callerEcho(suite: string, e: EnclaveHandle, rng: Rng, budget: number, batch: number): Promise<void> {
  const limits = e.limits;
  const pool = new Pool<Sample>(512);
  let i = 0;
  while (i < budget) {
    const n = Math.min(batch, budget - i);
    const jobs: Array<Promise<void>> = [];
    for (let j = 0; j < n; j++, i++) {
      const iteration = i;
      const garbageOp = rng.chance(0.05);
      const op = garbageOp ? rng.pick(OPS_GARBAGE) : 'echo';
      const options = rng.chance(0.05) ? randomOptions(rng) : undefined;
      const { value, want } = pool.next(rng, () => sample(genValue(rng, 0)));
      const p = settle(() => e.call(op as string, value, options as never), () => render(value, 2));
      jobs.push(
        p.then((o) => {
          const input = () => `call(${render(op, 1)}, ${render(value, 4)}, ${render(options, 1)})`;
          if (garbageOp) {
            const { code, bad } = codeOf(o);
            tally(suite, code);
            if (bad !== undefined) return fail(suite, iteration, input, `${bad}: ${outcomeOf(o)}`);
            if (code !== 'unknown_op' && code !== 'overloaded' && !(code === 'invalid_options' && !optionsAreDefault(options))) {
              return fail(suite, iteration, input, `an op not in the contract got ${outcomeOf(o)}`);
            }
            return;
          }
          if (!optionsAreDefault(options)) {
            // persistent state: any session id is invalid_options (or the caller's own exception).
            const { code, bad } = codeOf(o);
            tally(suite, code);
            if (bad !== undefined) return fail(suite, iteration, input, `${bad}: ${outcomeOf(o)}`);
            // The args may be refused first; only a value is wrong.
            if (code === 'ok') fail(suite, iteration, input, `a session id on a persistent enclave was accepted: ${outcomeOf(o)}`);
            return;
          }
          checkEcho(suite, iteration, input, want, o, limits);
        }),
      );
    }
    await Promise.all(jobs);
    if (i % 5000 < batch && !prototypeIntact()) fail(suite, i, '(any)', 'Object.prototype was modified');
  }
}

// ---------------------------------------------------------------------------------------------
// Caller side: counter (a model of its state), in the three state policies.

/**
 * `modelled`: the count is predicted (persistent; per-session with no eviction). per-call starts
 * every call from 0. With eviction (`modelled` false) only the codes are checked.
 */
async function callerCounter(suite: string, e: EnclaveHandle, rng: Rng, budget: number, policy: 'persistent' | 'per-session' | 'per-call', modelled: boolean, batch: number): Promise<void> {
  const sessions = policy === 'per-session';
  const model = new Map<string, bigint>();
  const ids = ['a', 'b', 'tenant-2', 'é', '\u{1f600}', 'x'.repeat(256)];
  let i = 0;
  while (i < budget) {
    const n = Math.min(batch, budget - i);
    const jobs: Array<Promise<void>> = [];
    for (let j = 0; j < n; j++, i++) {
      const iteration = i;
      const op = rng.chance(0.9) ? rng.pick(['incr', 'incr', 'get', 'reset']) : rng.pick(OPS_GARBAGE);
      let args: unknown;
      let by: bigint | undefined; // defined when args are a valid incr
      const r = rng.int(10);
      if (op === 'incr' && r < 5) {
        const b = rng.chance(0.9) ? rng.range(1, 1000) : rng.pick([2 ** 53 - 1, 2 ** 31, 2 ** 32 + 1]);
        args = { by: b };
        by = BigInt(b);
      } else if (op === 'incr' && r < 6) {
        args = rng.pick([undefined, null, {}]);
        by = 1n;
      } else if ((op === 'get' || op === 'reset') && r < 6) {
        args = rng.pick([undefined, null]);
      } else {
        args = rng.chance(0.5) ? { by: genValue(rng, 1) } : genValue(rng, 0);
      }
      if (sessions && rng.chance(0.02)) {
        // Drop a session (or try to, with garbage): its count starts again from 0.
        const id = rng.chance(0.7) ? rng.pick(ids) : rng.pick<unknown>([...SURROGATES, '', 'y'.repeat(257), 5, null, {}, Symbol('s')]);
        const iteration = i;
        await Promise.all(jobs); // in order with the calls made before it
        jobs.length = 0;
        const o = await settle(async () => (e as unknown as { endSession(id: unknown): boolean | Promise<boolean> }).endSession(id));
        const { code, bad } = codeOf(o);
        tally(suite, `endSession ${code}`, false);
        if (bad !== undefined) fail(suite, iteration, () => `endSession(${render(id, 1)})`, `${bad}: ${outcomeOf(o)}`);
        else if (code === 'ok' && typeof valueOf(o) !== 'boolean') fail(suite, iteration, () => `endSession(${render(id, 1)})`, `not a boolean: ${outcomeOf(o)}`);
        else if (code === 'ok' && valueOf(o) === true && typeof id !== 'string') fail(suite, iteration, () => `endSession(${render(id, 1)})`, 'a garbage id ended a session');
        if (typeof id === 'string') model.delete(id);
      }
      const session = sessions ? (rng.chance(0.95) ? rng.pick(ids) : rng.pick([...SURROGATES, '', 'y'.repeat(257)])) : undefined;
      const options = sessions ? { session } : rng.chance(0.03) ? randomOptions(rng) : undefined;
      const key = session ?? '';
      const p = settle(() => e.call(op as string, args, options as never), () => render(args, 2));
      jobs.push(
        p.then((o) => {
          const input = () => `call(${render(op, 1)}, ${render(args, 3)}, ${render(options, 1)})`;
          const { code, bad } = codeOf(o);
          tally(suite, code);
          if (bad !== undefined) return fail(suite, iteration, input, `${bad}: ${outcomeOf(o)}`);
          if (!CALLER_CODES.has(code) && code !== 'ok' && code !== 'timeout') return fail(suite, iteration, input, `unexpected code for caller input: ${outcomeOf(o)}`);
          const validSession = !sessions || (typeof session === 'string' && session.length > 0 && session.length <= 256 && (session as string & { isWellFormed(): boolean }).isWellFormed());
          const defaultOptions = sessions || optionsAreDefault(options);
          if (code === 'ok' && (!validSession || !defaultOptions)) return fail(suite, iteration, input, `accepted with bad call options: ${outcomeOf(o)}`);
          if (code === 'ok' && typeof op === 'string' && !['incr', 'get', 'reset'].includes(op)) return fail(suite, iteration, input, `an unknown op succeeded`);
          if (!validSession || !defaultOptions || !modelled) return;
          if (policy === 'per-call') model.set(key, 0n);
          const before = model.get(key) ?? 0n;
          if (op === 'incr' && by !== undefined) {
            if (code === 'ok') {
              if (mismatch(valueOf(o), new Int(before + by)) !== undefined) return fail(suite, iteration, input, `counter ${before} + ${by} gave ${render(valueOf(o))}`);
              model.set(key, before + by);
            } else if (code !== 'limit' && code !== 'overloaded' && code !== 'timeout') {
              fail(suite, iteration, input, `a valid incr failed: ${outcomeOf(o)}`);
            }
          } else if (op === 'incr' && code === 'ok') {
            // Garbage args that the enclave still took: learn the new count from the model's view.
            const v = valueOf(o);
            if (typeof v === 'number' || typeof v === 'bigint') model.set(key, BigInt(v));
          } else if (op === 'get' && code === 'ok') {
            if (mismatch(valueOf(o), new Int(before)) !== undefined) fail(suite, iteration, input, `get gave ${render(valueOf(o))}, the model says ${before}`);
          } else if (op === 'reset' && code === 'ok') {
            model.set(key, 0n);
          }
        }),
      );
      // A per-session model relies on calls settling in order; sequential per batch is enough since
      // each enclave runs calls one at a time in the order they were made.
    }
    await Promise.all(jobs);
  }
}

// ---------------------------------------------------------------------------------------------
// Cross-tenant: interleaved callers with distinct markers, plus the application's own msgpackr use.

async function crossTenant(suite: string, handles: readonly EnclaveHandle[], sessionIds: readonly (string | undefined)[], rng: Rng, budget: number, batch: number): Promise<void> {
  const tenants = handles.map((_, k) => makeTenant(rng, `t${k}`));
  const app = makeTenant(rng, 'app');
  const appPackr = new Packr({ useRecords: false });
  const pools = tenants.map(() => new Pool<Sample>(256));
  let i = 0;
  while (i < budget) {
    const n = Math.min(batch, budget - i);
    const jobs: Array<Promise<void>> = [];
    for (let j = 0; j < n; j++, i++) {
      const iteration = i;
      const k = rng.int(handles.length);
      const tenant = tenants[k]!;
      // What the tenant sends: marker-laden bins and strings, typed arrays over marker-filled buffers.
      const { value, want } = pools[k]!.next(rng, () =>
        sample(
          rng.chance(0.5)
            ? [markerBytes(tenant, rng, rng.range(8, 600)), typedArray(rng, tenant), genValue(rng, 0, tenant), tenant.text]
            : genValue(rng, 0, tenant),
        ),
      );
      const session = sessionIds[k];
      const p = settle(() => handles[k]!.call('echo', value, session === undefined ? undefined : { session }));
      // The application encodes its own data with msgpackr between calls (msgpackr shares one buffer).
      if (rng.chance(0.3)) appPackr.pack({ secret: Buffer.from(markerBytes(app, rng, rng.range(16, 2048))), note: app.text });
      jobs.push(
        p.then((o) => {
          const input = () => `tenant ${tenant.name} call('echo', ${render(value, 3)})`;
          if (o.ok) {
            for (const other of [...tenants, app]) {
              if (other !== tenant && carries(o.value, other)) {
                fail(suite, iteration, input, `LEAK: the reply carries ${other.name}'s marker: ${render(o.value, 2)}`);
                break;
              }
            }
          }
          checkEcho(suite, iteration, input, want, o, handles[k]!.limits);
        }),
      );
    }
    await Promise.all(jobs);
  }
}

// ---------------------------------------------------------------------------------------------
// Enclave side: a module that replies whatever the request says.
//
// Request args (a bin): [mode u8][desc u32][ptr u32][len u32][nextAlloc u32][reply bytes...], all LE.
// mode bit 0: return `desc` as the descriptor pointer; bit 1: descriptor ptr = `ptr`; bit 2:
// descriptor len = `len`; bit 3: the next enclave_alloc returns `nextAlloc`; bit 4: trap.
// By default the descriptor (at 0x100) points at the reply bytes where they lie in the request.

const MIRROR_PAGES = 2;
const MIRROR_MEMORY = MIRROR_PAGES * 65536;
const MIRROR_WAT = `(module
  (memory (export "memory") ${MIRROR_PAGES} ${MIRROR_PAGES})
  (global $next (mut i32) (i32.const 0))
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param $n i32) (result i32)
    (local $r i32)
    (if (i32.ne (global.get $next) (i32.const 0))
      (then (local.set $r (global.get $next)) (global.set $next (i32.const 0)) (return (local.get $r))))
    (if (i32.gt_u (local.get $n) (i32.const 0x17000)) (then (return (i32.const 0))))
    (i32.const 0x8000))
  (func (export "enclave_call") (param $p i32) (param $n i32) (result i32)
    (local $h i32) (local $body i32) (local $len i32) (local $mode i32)
    ;; {op: "r", args: <bin>}: 82 a2 6f 70 a1 72 a4 61 72 67 73, then the bin header at p + 11
    (local.set $h (i32.load8_u offset=11 (local.get $p)))
    (if (i32.eq (local.get $h) (i32.const 0xc4))
      (then (local.set $len (i32.load8_u offset=12 (local.get $p)))
            (local.set $body (i32.add (local.get $p) (i32.const 13)))))
    (if (i32.eq (local.get $h) (i32.const 0xc5))
      (then (local.set $len (i32.or (i32.shl (i32.load8_u offset=12 (local.get $p)) (i32.const 8))
                                    (i32.load8_u offset=13 (local.get $p))))
            (local.set $body (i32.add (local.get $p) (i32.const 14)))))
    (if (i32.eq (local.get $h) (i32.const 0xc6))
      (then (local.set $len (i32.or (i32.or (i32.shl (i32.load8_u offset=12 (local.get $p)) (i32.const 24))
                                            (i32.shl (i32.load8_u offset=13 (local.get $p)) (i32.const 16)))
                                    (i32.or (i32.shl (i32.load8_u offset=14 (local.get $p)) (i32.const 8))
                                            (i32.load8_u offset=15 (local.get $p)))))
            (local.set $body (i32.add (local.get $p) (i32.const 16)))))
    (if (i32.lt_u (local.get $len) (i32.const 17)) (then (unreachable)))
    (local.set $mode (i32.load8_u (local.get $body)))
    (i32.store (i32.const 0x100) (i32.add (local.get $body) (i32.const 17)))
    (i32.store (i32.const 0x104) (i32.sub (local.get $len) (i32.const 17)))
    (if (i32.and (local.get $mode) (i32.const 2)) (then (i32.store (i32.const 0x100) (i32.load offset=5 (local.get $body)))))
    (if (i32.and (local.get $mode) (i32.const 4)) (then (i32.store (i32.const 0x104) (i32.load offset=9 (local.get $body)))))
    (if (i32.and (local.get $mode) (i32.const 8)) (then (global.set $next (i32.load offset=13 (local.get $body)))))
    (if (i32.and (local.get $mode) (i32.const 16)) (then (unreachable)))
    (if (i32.and (local.get $mode) (i32.const 1)) (then (return (i32.load offset=1 (local.get $body)))))
    (i32.const 0x100))
)`;
const MIRROR_CONTRACT = {
  abi: 1,
  name: 'mirror',
  version: '0.0.1',
  svn: 0,
  capabilities: [] as string[],
  limits: { requestBytes: 0x17000, replyBytes: 65536, depth: 32, memoryPages: MIRROR_PAGES },
  ops: { r: { args: { type: 'bin' }, reply: { type: 'any' } } },
};

/** A msgpack writer that chooses every header form itself (the host must read them all). */
class Writer {
  parts: number[] = [];
  u8(...b: number[]): this {
    for (const x of b) this.parts.push(x & 0xff);
    return this;
  }
  be(v: number, n: number): this {
    for (let i = n - 1; i >= 0; i--) this.parts.push(Math.floor(v / 2 ** (8 * i)) & 0xff);
    return this;
  }
  raw(b: Uint8Array): this {
    for (const x of b) this.parts.push(x);
    return this;
  }
}

/** A reply value: its msgpack bytes and what the host must decode them to (ANY: not modelled). */
interface Gen {
  out: unknown;
  depth: number;
  items: number;
  /** Decoding it faithfully is not possible with plain objects (non-string or duplicate keys, __proto__). */
  lossy: boolean;
}

/** Items left for the reply being generated (a reply stays small: the host's limits are the subject, not our generator). */
let itemsLeft = 0;

function genMsgpack(rng: Rng, w: Writer, depth: number): Gen {
  const leaf = (out: unknown): Gen => ({ out, depth: 0, items: 1, lossy: false });
  if (depth <= 1) itemsLeft = rng.chance(0.05) ? 5000 : 40;
  const k = rng.int(depth > 5 || --itemsLeft <= 0 ? 9 : 13);
  switch (k) {
    case 0: {
      const forms = rng.int(4);
      if (forms === 0) return w.u8(0xc0), leaf(null);
      if (forms === 1) return w.u8(0xc2), leaf(false);
      return w.u8(0xc3), leaf(true);
    }
    case 1: {
      // Integers in every width, including non-minimal encodings.
      const form = rng.int(10);
      if (form === 0) { const v = rng.int(128); w.u8(v); return leaf(new Int(BigInt(v))); }
      if (form === 1) { const v = rng.int(32); w.u8(0xe0 | v); return leaf(new Int(BigInt(v - 32))); }
      if (form === 2) { const v = rng.int(256); w.u8(0xcc, v); return leaf(new Int(BigInt(v))); }
      if (form === 3) { const v = rng.int(65536); w.u8(0xcd).be(v, 2); return leaf(new Int(BigInt(v))); }
      if (form === 4) { const v = rng.u32(); w.u8(0xce).be(v, 4); return leaf(new Int(BigInt(v))); }
      if (form === 5) {
        const v = BigInt(rng.u32()) * 2n ** 32n + BigInt(rng.u32());
        const b = Buffer.alloc(8); b.writeBigUInt64BE(v); w.u8(0xcf).raw(b); return leaf(new Int(v));
      }
      if (form === 6) { const v = rng.int(256) - 128; w.u8(0xd0, v); return leaf(new Int(BigInt(v))); }
      if (form === 7) { const v = rng.int(65536) - 32768; w.u8(0xd1).be(v & 0xffff, 2); return leaf(new Int(BigInt(v))); }
      if (form === 8) { const v = rng.u32() | 0; w.u8(0xd2).be(v >>> 0, 4); return leaf(new Int(BigInt(v))); }
      const v = BigInt.asIntN(64, BigInt(rng.u32()) * 2n ** 32n + BigInt(rng.u32()));
      const b = Buffer.alloc(8); b.writeBigInt64BE(v); w.u8(0xd3).raw(b); return leaf(new Int(v));
    }
    case 2: {
      if (rng.chance(0.5)) {
        const b = Buffer.alloc(8); const v = rng.pick(FLOATS); b.writeDoubleBE(v); w.u8(0xcb).raw(b); return leaf(v);
      }
      const b = Buffer.alloc(4); b.writeFloatBE(rng.pick([0.5, -2, NaN, Infinity, 1.25])); w.u8(0xca).raw(b); return leaf(b.readFloatBE());
    }
    case 3:
    case 4: {
      const s = rng.chance(0.8) ? 'abc\u00e9\u{1f600}'.slice(0, rng.int(7)) + 'z'.repeat(rng.pick([0, 1, 31, 32, 255, 256, rng.int(600)])) : rng.pick(KEYS);
      const b = Buffer.from(s); // a cut surrogate pair becomes U+FFFD here: what is sent is what must come back
      const form = b.length < 32 ? rng.int(4) : b.length < 256 ? 1 + rng.int(3) : b.length < 65536 ? 2 + rng.int(2) : 3;
      if (form === 0) w.u8(0xa0 | b.length);
      else if (form === 1) w.u8(0xd9, b.length);
      else if (form === 2) w.u8(0xda).be(b.length, 2);
      else w.u8(0xdb).be(b.length, 4);
      w.raw(b);
      return leaf(b.toString('utf8'));
    }
    case 5: {
      // Invalid UTF-8 in a str: decoded with replacement characters or refused; not modelled.
      const b = rng.bytes(rng.range(1, 12));
      w.u8(0xa0 | b.length).raw(b);
      return leaf(ANY);
    }
    case 6:
    case 7: {
      const b = rng.bytes(rng.pick([0, 1, 16, 255, 256, rng.int(1000)]));
      const form = b.length < 256 ? rng.int(3) : b.length < 65536 ? 1 + rng.int(2) : 2;
      if (form === 0) w.u8(0xc4, b.length);
      else if (form === 1) w.u8(0xc5).be(b.length, 2);
      else w.u8(0xc6).be(b.length, 4);
      w.raw(b);
      return leaf(new Bytes(b));
    }
    case 8: {
      // Deep nesting (around the contract's 32 and past it), one item per level.
      const levels = rng.pick([2, 10, 29, 30, 31, 32, 33, 40, 200]);
      for (let i = 0; i < levels; i++) w.u8(0x91);
      w.u8(0x01);
      let out: unknown = new Int(1n);
      for (let i = 0; i < levels; i++) out = [out];
      return { out, depth: levels, items: levels + 1, lossy: false };
    }
    case 9:
    case 10: {
      const n = Math.max(0, Math.min(itemsLeft, rng.pick([0, 1, 2, 3, 15, 16, 17, rng.chance(0.1) ? rng.int(3000) : 4])));
      itemsLeft -= n;
      const form = n < 16 ? rng.int(3) : 1 + rng.int(2);
      if (form === 0) w.u8(0x90 | n);
      else if (form === 1) w.u8(0xdc).be(n, 2);
      else w.u8(0xdd).be(n, 4);
      const out: unknown[] = [];
      let d = 0;
      let items = 1;
      let lossy = false;
      for (let i = 0; i < n; i++) {
        const g = genMsgpack(rng, w, depth + 1);
        out.push(g.out);
        d = Math.max(d, g.depth);
        items += g.items;
        lossy ||= g.lossy;
      }
      return { out, depth: d + 1, items, lossy };
    }
    default: {
      const n = Math.max(0, Math.min(itemsLeft, rng.pick([0, 1, 2, 3, 15, 16, 17, 5])));
      itemsLeft -= n;
      const form = n < 16 ? rng.int(3) : 1 + rng.int(2);
      if (form === 0) w.u8(0x80 | n);
      else if (form === 1) w.u8(0xde).be(n, 2);
      else w.u8(0xdf).be(n, 4);
      const entries: Array<readonly [string, unknown]> = [];
      const seen = new Set<string>();
      let d = 0;
      let items = 1;
      let lossy = false;
      for (let i = 0; i < n; i++) {
        let key: string | undefined;
        if (rng.chance(0.85)) {
          key = rng.chance(0.05) ? '__proto__' : rng.pick(KEYS);
          const b = Buffer.from(key);
          if (b.length < 32) w.u8(0xa0 | b.length);
          else w.u8(0xda).be(b.length, 2);
          w.raw(b);
        } else {
          // A non-string key: an integer, nil, a bool, an array, a bin.
          const g = genMsgpack(rng, w, depth + 5);
          d = Math.max(d, g.depth);
          lossy = true;
        }
        const g = genMsgpack(rng, w, depth + 1);
        d = Math.max(d, g.depth);
        items += 1 + g.items;
        lossy ||= g.lossy;
        if (key === undefined) continue;
        if (seen.has(key) || key === '__proto__') lossy = true;
        seen.add(key);
        entries.push([key, g.out]);
      }
      return { out: lossy ? ANY : new Obj(entries), depth: d + 1, items, lossy };
    }
  }
}

const ENCLAVE_CODES_LIST = ['bad_request', 'unknown_op', 'denied', 'state', 'limit', 'internal'];

interface ReplyCase {
  body: Uint8Array;
  describe: string;
  /** What a success must decode to (ANY when not modelled), or undefined when success is impossible. */
  out: unknown;
  /** Codes that are acceptable (besides success when `out` is defined). */
  codes: ReadonlySet<string>;
  /** Must succeed (within every bound the host may set). */
  mustSucceed: boolean;
}

const INTERESTING_U32 = [0, 1, 7, 8, 0xff, 0x100, 0x104, 0x8000, 0x10000, MIRROR_MEMORY - 8, MIRROR_MEMORY - 7, MIRROR_MEMORY - 1, MIRROR_MEMORY,
  MIRROR_MEMORY + 1, 0x7fffffff, 0x80000000, 0xfffffff8, 0xfffffffc, 0xffffffff, 65536, 65537, 16 * 1024 * 1024];

function genReply(rng: Rng, depthLimit: number): ReplyCase {
  const w = new Writer();
  let out: unknown;
  let mustSucceed = false;
  const codes = new Set<string>(['bad_reply', 'too_large']);
  const shape = rng.int(12);
  let what: string;
  if (shape <= 4) {
    // {ok: value}, in every map and key form.
    const head = rng.int(3);
    if (head === 0) w.u8(0x81);
    else if (head === 1) w.u8(0xde, 0, 1);
    else w.u8(0xdf, 0, 0, 0, 1);
    if (rng.chance(0.8)) w.u8(0xa2, 0x6f, 0x6b);
    else w.u8(0xd9, 2, 0x6f, 0x6b);
    const g = genMsgpack(rng, w, 1);
    out = g.out;
    // The envelope is level 1: the value may nest depth - 1 levels. A bound on items may refuse big ones.
    mustSucceed = !g.lossy && g.depth + 1 < depthLimit - 1 && g.items <= 1000 && w.parts.length <= 60_000 && out !== ANY;
    if (g.lossy) out = ANY;
    what = `{ok: value} depth ${g.depth + 1}, ${g.items} items${g.lossy ? ', non-string/duplicate/__proto__ keys' : ''}`;
  } else if (shape === 5) {
    // {err: {code, message?}}, with enclave codes, host codes and garbage.
    const code = rng.chance(0.7) ? rng.pick(ENCLAVE_CODES_LIST) : rng.pick(['trap', 'timeout', 'closed', 'toString', '__proto__', '', 'x'.repeat(40)]);
    const withMsg = rng.chance(0.6);
    const extra = rng.chance(0.1);
    w.u8(0x81, 0xa3, 0x65, 0x72, 0x72, 0x80 | (1 + (withMsg ? 1 : 0) + (extra ? 1 : 0)));
    w.u8(0xa4, 0x63, 0x6f, 0x64, 0x65);
    const cb = Buffer.from(code);
    w.u8(0xd9, cb.length).raw(cb);
    if (withMsg) {
      const m = Buffer.from(rng.pick(['oops', '\u001b[31mred', 'é'.repeat(200), 'm'.repeat(300), '']));
      w.u8(0xa7).raw(Buffer.from('message')).u8(0xda).be(m.length, 2).raw(m);
    }
    if (extra) w.u8(0xa1, 0x78, 0xc0);
    out = undefined;
    if (ENCLAVE_CODES_LIST.includes(code)) codes.add(code); // extra keys: passed through or refused (bad_reply)
    what = `{err: {code: ${JSON.stringify(code)}${withMsg ? ', message' : ''}${extra ? ', x' : ''}}}`;
  } else if (shape === 6) {
    // Lies about sizes: huge counts and lengths with few bytes after them.
    const hdr = rng.pick([[0xdd, 0xff, 0xff, 0xff, 0xff], [0xdf, 0x7f, 0xff, 0xff, 0xff], [0xdb, 0xff, 0xff, 0xff, 0xf0], [0xc6, 0x80, 0, 0, 0], [0xdc, 0xff, 0xff], [0xde, 0xff, 0xff]]);
    w.u8(0x81, 0xa2, 0x6f, 0x6b, ...hdr).raw(rng.bytes(rng.int(8)));
    out = undefined;
    what = `{ok: ${Buffer.from(hdr).toString('hex')}...} (count or length past the end)`;
  } else if (shape === 7) {
    // Extension types and the reserved byte, anywhere.
    const ext = rng.pick([[0xd4, 1, 0], [0xd5, 0xff, 0, 0], [0xd6, 0xff, 0, 0, 0, 0], [0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0], [0xd8, 0x74, ...new Array(16).fill(1)], [0xc7, 1, 0x74, 0], [0xc8, 0, 1, 5, 9], [0xc9, 0, 0, 0, 1, 0x65, 1], [0xc1]]);
    w.u8(0x81, 0xa2, 0x6f, 0x6b);
    if (rng.chance(0.5)) w.u8(0x92, 0x01);
    w.u8(...ext);
    out = undefined;
    what = `{ok: ext/reserved ${Buffer.from(ext).toString('hex')}}`;
  } else if (shape === 8) {
    // A valid value, then cut short or followed by trailing bytes.
    w.u8(0x81, 0xa2, 0x6f, 0x6b);
    genMsgpack(rng, w, 1);
    if (rng.chance(0.5) && w.parts.length > 1) w.parts.length = rng.range(1, w.parts.length - 1);
    else w.raw(rng.bytes(rng.range(1, 4)));
    out = ANY; // a cut may still leave a valid (shorter) envelope
    what = 'a value cut short or with trailing bytes';
  } else if (shape === 9) {
    // Not an envelope: other maps, other keys, two entries, not a map.
    const v = rng.int(6);
    if (v === 0) w.u8(0x82, 0xa2, 0x6f, 0x6b, 0x01, 0xa2, 0x6f, 0x6b, 0x02);
    else if (v === 1) w.u8(0x82, 0xa2, 0x6f, 0x6b, 0x01, 0xa3, 0x65, 0x72, 0x72, 0x80);
    else if (v === 2) w.u8(0x81, 0xa2, 0x4f, 0x4b, 0x01);
    else if (v === 3) w.u8(0x80);
    else if (v === 4) w.u8(0x81, 0x01, 0x01);
    else genMsgpack(rng, w, 0);
    out = v === 5 ? ANY : undefined;
    what = 'not an envelope';
  } else {
    // Random bytes.
    w.raw(rng.bytes(rng.int(64)));
    out = ANY;
    what = 'random bytes';
  }
  const reply = Uint8Array.from(w.parts);

  // The header: default descriptor, or attacker-chosen numbers.
  let mode = 0;
  const desc = rng.pick(INTERESTING_U32);
  const ptr = rng.pick(INTERESTING_U32);
  const len = rng.chance(0.5) ? rng.pick(INTERESTING_U32) : rng.int(70_000);
  const next = rng.pick(INTERESTING_U32);
  if (rng.chance(0.15)) {
    mode = rng.int(32) & ~16;
    if (rng.chance(0.1)) mode |= 16;
    if (mode & 0b10111) {
      // A changed descriptor: the reply is whatever lies there, not what we wrote.
      out = ANY;
      mustSucceed = false;
      codes.add('internal'); // a zero descriptor: "no reply"
      codes.add('trap');
      for (const c of ENCLAVE_CODES_LIST) codes.add(c); // the region may hold an {err} envelope
    }
  }
  if (mode & 16) {
    out = undefined;
    codes.clear();
    codes.add('trap');
    codes.add('too_large'); // a request past the contract's requestBytes never reaches the enclave
  }
  const body = new Uint8Array(17 + reply.length);
  const dv = new DataView(body.buffer);
  dv.setUint8(0, mode);
  dv.setUint32(1, desc, true);
  dv.setUint32(5, ptr, true);
  dv.setUint32(9, len, true);
  dv.setUint32(13, next, true);
  body.set(reply, 17);
  const flags = [mode & 1 ? `desc=0x${desc.toString(16)}` : '', mode & 2 ? `ptr=0x${ptr.toString(16)}` : '', mode & 4 ? `len=0x${len.toString(16)}` : '',
    mode & 8 ? `nextAlloc=0x${next.toString(16)}` : '', mode & 16 ? 'trap' : ''].filter(Boolean).join(' ');
  return { body, describe: `${what}${flags ? ` [${flags}]` : ''}: reply ${hexOf(reply)}`, out, codes, mustSucceed };
}

async function enclaveSide(suite: string, e: EnclaveHandle, rng: Rng, budget: number, batch: number): Promise<void> {
  let i = 0;
  // After a `nextAlloc` the following call's request lands wherever the enclave said: that call may
  // then fail in any documented way (too far: bad_reply; zero: limit; in bounds: the module reads it).
  let allocPoisoned = false;
  const pool = new Pool<ReplyCase>(512);
  const garbageOps = OPS_GARBAGE.filter((op) => op !== 'r');
  while (i < budget) {
    const n = Math.min(batch, budget - i);
    const jobs: Array<Promise<void>> = [];
    for (let j = 0; j < n; j++, i++) {
      const iteration = i;
      const garbageOp = rng.chance(0.02);
      const c = pool.next(rng, () => genReply(rng, e.limits.depth));
      // Calls run in the order they were made (one at a time per enclave), batched or not.
      const poisoned = allocPoisoned;
      if (!garbageOp) allocPoisoned = (c.body[0]! & 8) !== 0 && (c.body[0]! & 16) === 0;
      const p = settle(() => e.call(garbageOp ? (rng.pick(garbageOps) as string) : 'r', c.body));
      jobs.push(
        p.then((o) => {
          const input = garbageOp ? `(unknown op) ${c.describe}` : c.describe;
          const { code, bad } = codeOf(o);
          tally(suite, code);
          if (bad !== undefined) return fail(suite, iteration, input, `${bad}: ${outcomeOf(o)}`);
          if (code === 'overloaded' || code === 'timeout') return;
          if (garbageOp) {
            if (code !== 'unknown_op') fail(suite, iteration, input, `an op not in the contract got ${outcomeOf(o)}`);
            return;
          }
          if (poisoned) {
            // Anything documented may happen once the allocator lied; a value is still checked for sanity.
            if (o.ok && !prototypeIntact()) fail(suite, iteration, input, 'Object.prototype was modified');
            return;
          }
          if (code === 'ok') {
            if (c.out === undefined) return fail(suite, iteration, input, `a malformed reply was accepted: ${outcomeOf(o)}`);
            const why = mismatch(valueOf(o), c.out);
            if (why !== undefined) return fail(suite, iteration, input, `the reply was not decoded faithfully: ${why}`);
            return;
          }
          const detail = (o as { error: EnclaveError }).error.detail;
          if (detail !== undefined && Buffer.byteLength(detail) > 256) fail(suite, iteration, input, `detail longer than 256 bytes: ${outcomeOf(o)}`);
          if (c.mustSucceed) return fail(suite, iteration, input, `a valid reply within every bound failed: ${outcomeOf(o)}`);
          if (!c.codes.has(code)) fail(suite, iteration, input, `unexpected code: ${outcomeOf(o)}`);
        }),
      );
    }
    await Promise.all(jobs);
    if (i % 5000 < batch && !prototypeIntact()) fail(suite, i, '(any)', 'Object.prototype was modified');
  }
}

// ---------------------------------------------------------------------------------------------

let mirrorBytes: Uint8Array;
const opened: EnclaveHandle[] = [];

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  mirrorBytes = await watModule(MIRROR_WAT, MIRROR_CONTRACT);
  stats.started = performance.now();
  stats.rssBaseline = process.memoryUsage.rss();
  stats.rssMax = stats.rssBaseline;
});

afterAll(async () => {
  await Promise.all(opened.map((e) => e.close()));
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onRejection);
});

async function open(source: string | Uint8Array, options: Record<string, unknown> = {}): Promise<EnclaveHandle> {
  const e = (await loadEnclave(source as never, options as never)) as EnclaveHandle;
  opened.push(e);
  return e;
}

/** Closes what the test opened (its workers exit), so each test starts from the same footprint. */
async function closeOpened(): Promise<void> {
  await Promise.all(opened.splice(0).map((e) => e.close()));
}

function report(): string {
  const secs = (performance.now() - stats.started) / 1000;
  const lines = [`${failureCount} failures`, `${stats.messages} boundary messages in ${secs.toFixed(1)} s (${Math.round(stats.messages / secs)}/s), seed ${SEED}`,
    `RSS baseline ${(stats.rssBaseline / 2 ** 20).toFixed(0)} MiB, max ${(stats.rssMax / 2 ** 20).toFixed(0)} MiB over ${stats.rssSamples} samples`];
  for (const [suite, m] of stats.outcomes) lines.push(`  ${suite}: ${[...m].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ')}`);
  return lines.join('\n');
}

let failuresBefore = 0;

/** Checks the running test's failures (or, with `all`, that the whole campaign had none). */
async function expectClean(all = false): Promise<void> {
  sampleRss();
  await closeOpened();
  const mine = [...failureKinds.values()].map(({ count, first }) => `(${count}x) ${first}`);
  failureKinds.clear();
  const count = failureCount - failuresBefore;
  failuresBefore = failureCount;
  if (all) expect(failureCount, `${failureCount} failures in the campaign (see the tests above)\n${report()}`).toBe(0);
  expect(processErrors.length, processErrors.join('\n')).toBe(0);
  expect(count, `${count} failures, by kind (count, first reproducer):\n${mine.join('\n')}`).toBe(0);
  expect(stats.rssMax - stats.rssBaseline, `RSS grew by more than ${RSS_BOUND_MIB} MiB`).toBeLessThan(RSS_BOUND_MIB * 2 ** 20);
}

describe(`boundary fuzz: ${TOTAL} messages`, () => {
  it('in-process, caller side: echo returns what was sent, garbage gets a documented code', async () => {
    const rng = new Rng(SEED);
    await callerEcho('echo in-process', await open(ECHO), rng, BUDGET.echo, 1);
    await expectClean();
  });

  it('in-process, caller side: counter in every state policy keeps its model', async () => {
    const rng = new Rng(SEED + 1);
    const q = Math.floor(BUDGET.counter / 4);
    await callerCounter('counter persistent', await open(COUNTER), rng, q, 'persistent', true, 1);
    await callerCounter('counter per-session', await open(COUNTER, { state: 'per-session', maxSessions: 8 }), rng, q, 'per-session', true, 1);
    // Six session ids over two slots: sessions are evicted all the time; only the codes are checked.
    await callerCounter('counter per-session evicting', await open(COUNTER, { state: 'per-session', maxSessions: 2 }), rng, q, 'per-session', false, 1);
    await callerCounter('counter per-call', await open(COUNTER, { state: 'per-call' }), rng, BUDGET.counter - 3 * q, 'per-call', true, 1);
    await expectClean();
  });

  it('in-process, cross-tenant: no reply carries another tenant\'s or the application\'s bytes', async () => {
    const rng = new Rng(SEED + 2);
    const half = Math.floor(BUDGET.tenants / 2);
    await crossTenant('tenants in-process', [await open(ECHO), await open(ECHO)], [undefined, undefined], rng, half, 1);
    const shared = await open(ECHO, { state: 'per-session', maxSessions: 2 });
    await crossTenant('tenants per-session', [shared, shared, shared], ['s1', 's2', 's3'], rng, BUDGET.tenants - half, 1);
    await expectClean();
  });

  it('in-process, enclave side: any reply bytes and descriptors get a value or a documented code', async () => {
    const rng = new Rng(SEED + 3);
    const half = Math.floor((BUDGET.reply * 2) / 3);
    await enclaveSide('reply persistent', await open(mirrorBytes), rng, half, 1);
    await enclaveSide('reply per-call', await open(mirrorBytes, { state: 'per-call' }), rng, BUDGET.reply - half, 1);
    await expectClean();
  });

  it('worker mode: caller side, cross-tenant and enclave side', async () => {
    const rng = new Rng(SEED + 4);
    const q = Math.floor(BUDGET.workerCaller / 3);
    await callerEcho('echo worker', await open(ECHO, { isolation: 'worker' }), rng, q, WORKER_BATCH);
    await closeOpened(); // one worker at a time: RSS measures the host, not how many workers are idle
    await crossTenant('tenants worker', [await open(ECHO, { isolation: 'worker' }), await open(ECHO, { isolation: 'worker' }), await open(ECHO)], [undefined, undefined, undefined], rng, q, WORKER_BATCH);
    await closeOpened();
    await callerCounter('counter worker per-session', await open(COUNTER, { isolation: 'worker', state: 'per-session', maxSessions: 8 }), rng, BUDGET.workerCaller - 2 * q, 'per-session', true, 1);
    await closeOpened();
    const half = Math.floor(BUDGET.workerReply / 2);
    await enclaveSide('reply worker', await open(mirrorBytes, { isolation: 'worker' }), rng, half, WORKER_BATCH);
    await closeOpened();
    await enclaveSide('reply worker per-call', await open(mirrorBytes, { isolation: 'worker', state: 'per-call' }), rng, BUDGET.workerReply - half, WORKER_BATCH);
    await closeOpened();
    await expectClean();
  });

  it('closing with calls in flight: each gets a value or a documented code, every later call `closed`', async () => {
    const rng = new Rng(SEED + 5);
    for (const [suite, options] of [['close in-process', {}], ['close worker', { isolation: 'worker' }], ['close worker per-session', { isolation: 'worker', state: 'per-session' }]] as const) {
      for (let round = 0; round < 3; round++) {
        const e = await open(ECHO, options);
        const session = 'state' in options ? { session: 's' } : undefined;
        const inFlight = Array.from({ length: WORKER_BATCH }, () => {
          const value = genValue(rng, 0);
          return settle(() => e.call('echo', value, session)).then((o) => ({ o, value }));
        });
        await inFlight[rng.int(WORKER_BATCH / 2)]; // some answered, some queued, one maybe running
        const closing = [e.close(), e.close()]; // twice: idempotent
        for (const { o, value } of await Promise.all(inFlight)) {
          const { code, bad } = codeOf(o);
          tally(suite, code);
          if (bad !== undefined) fail(suite, round, () => `call('echo', ${render(value, 2)}) while closing`, `${bad}: ${outcomeOf(o)}`);
        }
        await Promise.all(closing);
        for (let i = 0; i < 8; i++) {
          const o = await settle(() => e.call('echo', i, session));
          const { code } = codeOf(o);
          tally(suite, code);
          if (code !== 'closed') fail(suite, round, `call('echo', ${i}) after close()`, `expected closed: ${outcomeOf(o)}`);
        }
      }
    }
    await expectClean();
  });

  it(`reached ${TOTAL} messages with host RSS bounded, no uncaught exception, no unhandled rejection`, async () => {
    console.log(report());
    expect(stats.messages).toBeGreaterThanOrEqual(TOTAL);
    await expectClean(true);
  });
});
