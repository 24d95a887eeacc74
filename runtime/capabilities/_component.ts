/**
 * The capabilities in the shape of the WIT world (wit/enclave.wit): the imports jco's glue hands a
 * component, one interface per granted capability, keyed as the glue asks for them (the
 * interface's name without its version: `enclave:runtime/random`).
 *
 * Each WIT function wraps the core ABI's import (docs/ABI.md §3, this folder) over a host-side
 * scratch buffer: the core implementation gets a derived {@link ImportContext} whose memory is the
 * scratch, and whose fuel, log, identity, platform, report context and call bounds are the real
 * instance's. So a component pays the same fuel, meets the same bounds (64 counter advances per
 * call) and crosses to the host thread in worker mode by the same code as a core module; only the
 * values change shape:
 *
 * ```
 *  glue (lifted args) ─► WIT function ─► core import (ptr, len into scratch) ─► status
 *                                                                     │
 *  glue (lowers into the guest) ◄─ value, or { tag: 'err', val: failure } ◄──┘
 * ```
 *
 * jco's conventions, as its generated glue (jco-transpile 0.15.0) reads them: enums are their
 * kebab-case names, u64 a BigInt, `option<T>` a value or undefined, records objects with camelCase
 * keys (`keyId`), a `result` function answers its ok value, or `{ tag: 'err', val }` for err. One
 * exception: `counter.read`'s ok record has a field named `tag`, so the glue cannot tell it from a
 * result and takes any answer as ok: its err is thrown as `{ payload: failure }` (what the glue's
 * catch reads, `getErrorPayload`). Anything thrown otherwise (fuel running out) unwinds the call.
 *
 * The gate checks a component's import names, not their types: a component may declare
 * `random.fill(len: u64)` and the glue then lifts a BigInt for it. Every argument is checked for
 * the JS type and range the world's type gives; anything else traps (`trap`: the component is not
 * of the world) having paid {@link COMPONENT_IMPORT_FUEL} only (the glue's work is done whatever
 * the arguments), before the core import's fuel or any work. And every byte list handed back owns
 * its buffer exactly (a copy, never a view into the scratch): a component declaring `list<u64>`
 * where the world has `list<u8>` makes the glue read `len × 8` bytes from that buffer, which then
 * throws instead of copying what lies beyond.
 *
 * Status codes map to `types.failure` (docs/ABI.md §9): -1 and -2 `invalid` (a length or data
 * out of range; an unknown policy cannot reach the core import), -3 `unavailable`, -4 `unknown-root` (seal-key-at) or `conflict`
 * (advance), -5 `svn-not-allowed` (seal-key-at) or `limit` (advance).
 */
import { EnclaveError } from '../../core/index.js';
import { importFuel } from '../fuel.js';
import {
  COUNTER_BYTES,
  COUNTER_STATUS,
  COUNTER_TAG_BYTES,
  LOG_LEVELS,
  OWN_SVN,
  REPORT_DATA_MAX_BYTES,
  REPORT_STATUS,
  SEAL_AT_STATUS,
  SEAL_KEY_AT_BYTES,
  SEAL_KEY_BYTES,
  SEAL_POLICIES,
  SEAL_STATUS,
  type LogLevel,
  type SealPolicy,
} from '../abi.js';
import { WORLD_PACKAGE } from '../_component-world.js';
import type { ImportContext } from './_capability.js';
import { CAPABILITY_MODULES, type Capability } from './index.js';

/** A function of a WIT interface, as the glue calls it. */
export type WitFunction = (...args: never[]) => unknown;

/**
 * What jco's glue takes as `imports`: interface name without its version (`enclave:runtime/random`;
 * the capability's name is the interface's) → its functions by camelCase name.
 */
export type ComponentImports = Record<string, Record<string, WitFunction>>;

/**
 * Fuel every import call of a component pays first, on top of its core import's own: the crossing
 * through jco's glue (a task and a subtask made and settled, the arguments lifted, the result
 * lowered through the guest's `cabi_realloc`) costs the host thread tens of microseconds, where a
 * core import call costs about one. Without it a component looping on `clock.now` kept the host
 * thread ~100 times longer per unit of fuel than any core module can (measured: 10 000 `now` calls,
 * 10 M fuel, took 0.3-1.4 s through the glue against 3-6 ms as a core module, load average 12 on
 * 2 cores). bench/fuel-bound.ts measures a component looping on an import beside the core worst
 * cases in one run: at 20 000 the loops reached 0.24-1.12 times the core worst case's time per unit
 * of fuel (load 18-22), at the bound with no room; 40 000 halves that. 10 M fuel buys at most 250
 * import calls of a component (`npm run build && node dist/bench/fuel-bound.js 10000000 component`).
 */
export const COMPONENT_IMPORT_FUEL = 40_000;

/** `random`'s bound (runtime/capabilities/random.ts): the scratch holds the largest fill. */
const MAX_RANDOM = 65_536;
/** `log`'s bound (runtime/capabilities/log.ts): the most of a message the core import reads. */
const MAX_LOG_MESSAGE = 1024;
/** Scratch for the evidence when nothing bigger is granted; larger evidence gets a buffer of its size. */
const EVIDENCE_ROOM = 16 * 1024;
/**
 * The largest evidence `report` hands over (`unavailable` above): a platform's token is a few KiB,
 * and worker mode carries at most 32 KiB of it (runtime/_worker-protocol.ts).
 */
const MAX_EVIDENCE = 1024 * 1024;

/** The names of `types.failure`, in the WIT enum's order. */
type Failure = 'invalid' | 'unavailable' | 'unknown-root' | 'svn-not-allowed' | 'conflict' | 'limit';

/** `{ tag: 'err', val }` for each failure, made once (the glue only reads them). */
const ERR: Readonly<Record<Failure, Readonly<{ tag: 'err'; val: Failure }>>> = Object.freeze({
  invalid: Object.freeze({ tag: 'err', val: 'invalid' }),
  unavailable: Object.freeze({ tag: 'err', val: 'unavailable' }),
  'unknown-root': Object.freeze({ tag: 'err', val: 'unknown-root' }),
  'svn-not-allowed': Object.freeze({ tag: 'err', val: 'svn-not-allowed' }),
  conflict: Object.freeze({ tag: 'err', val: 'conflict' }),
  limit: Object.freeze({ tag: 'err', val: 'limit' }),
});

/** What `counter.read` throws for a failure: the glue answers `err(payload)` (see the header). */
const THROWN: Readonly<Record<Failure, Readonly<{ payload: Failure }>>> = Object.freeze({
  invalid: Object.freeze({ payload: 'invalid' }),
  unavailable: Object.freeze({ payload: 'unavailable' }),
  'unknown-root': Object.freeze({ payload: 'unknown-root' }),
  'svn-not-allowed': Object.freeze({ payload: 'svn-not-allowed' }),
  conflict: Object.freeze({ payload: 'conflict' }),
  limit: Object.freeze({ payload: 'limit' }),
});

/** Failures of `seal-key`, `random` and `counter.read` (-1 .. -3). */
function basicFailure(status: number): Failure {
  return status === SEAL_STATUS.unavailable ? 'unavailable' : 'invalid';
}

/** Failures of `seal-key-at` (-1 .. -5). */
function sealAtFailure(status: number): Failure {
  switch (status) {
    case SEAL_AT_STATUS.unavailable:
      return 'unavailable';
    case SEAL_AT_STATUS.unknownKey:
      return 'unknown-root';
    case SEAL_AT_STATUS.svnNotAllowed:
      return 'svn-not-allowed';
    default:
      return 'invalid';
  }
}

/** Failures of `counter.advance` (-1 .. -5). */
function advanceFailure(status: number): Failure {
  switch (status) {
    case COUNTER_STATUS.unavailable:
      return 'unavailable';
    case COUNTER_STATUS.conflict:
      return 'conflict';
    case COUNTER_STATUS.limit:
      return 'limit';
    default:
      return 'invalid';
  }
}

/** Failures of `attest.report` (-1 .. -3). */
function reportFailure(status: number): Failure {
  return status === REPORT_STATUS.unavailable ? 'unavailable' : 'invalid';
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * Throws for a call whose arguments the world's types cannot give: the component declared the
 * import with other types. A trap: the call fails and the instance is discarded.
 */
function notOfTheWorld(fn: string): never {
  throw new EnclaveError('trap', `The component called ${fn} with arguments of other types than wit/enclave.wit gives them: it is not an enclave component.`);
}

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
const isU64 = (v: unknown): v is bigint => typeof v === 'bigint' && v >= 0n && v <= U64_MAX;
const isPolicy = (v: unknown): v is SealPolicy => (SEAL_POLICIES as readonly unknown[]).includes(v);
const isLevel = (v: unknown): v is LogLevel => (LOG_LEVELS as readonly unknown[]).includes(v);

/**
 * Hands bytes to the glue, which copies them into the guest before the import returns, and zeroes
 * them once the call is over (a microtask runs only after the synchronous call into the enclave).
 * For secrets: sealing keys and random bytes, which the core imports never hold outside the guest.
 */
function handOver(bytes: Uint8Array): Uint8Array {
  queueMicrotask(() => bytes.fill(0));
  return bytes;
}

/** The bytes of scratch each capability needs at most. */
function scratchNeed(capability: Capability): number {
  switch (capability) {
    case 'random':
      return MAX_RANDOM;
    case 'log':
      return MAX_LOG_MESSAGE;
    case 'seal':
      return SEAL_KEY_AT_BYTES;
    case 'counter':
      return COUNTER_BYTES;
    case 'attest':
      return REPORT_DATA_MAX_BYTES + EVIDENCE_ROOM;
    default:
      return 0;
  }
}

/** The scratch and the context the core imports see: its memory, the real instance for the rest. */
interface Scratch {
  readonly ctx: ImportContext;
  /** The scratch the core imports write to (its memory). */
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** Points the context's memory at `bytes` instead (undefined: the scratch again). */
  use(bytes: Uint8Array | undefined): void;
  /** While true, the context's `pay` charges nothing: a retry within one WIT call pays once. */
  free: boolean;
}

/** A scratch of `size` bytes and a context over it, delegating all but the memory to `real`. */
function scratchContext(real: ImportContext, size: number): Scratch {
  const bytes = new Uint8Array(size);
  const utf8 = new TextDecoder();
  let memory: Uint8Array = bytes;
  const inBounds = (ptr: number, len: number): boolean => ptr >>> 0 === ptr && len >>> 0 === len && ptr + len <= memory.length;
  const scratch: Scratch = {
    bytes,
    view: new DataView(bytes.buffer),
    use(other) {
      memory = other ?? bytes;
    },
    free: false,
    ctx: {
      memory: () => memory,
      inBounds,
      readText: (ptr, len, max) => {
        const n = Math.min(len >>> 0, max);
        return inBounds(ptr, n) ? utf8.decode(memory.subarray(ptr, ptr + n)) : '<out of bounds>';
      },
      pay: (fuel) => {
        if (!scratch.free) real.pay(fuel);
      },
      admitLog: () => real.admitLog(),
      log: (level, message) => real.log(level, message),
      get listening() {
        return real.listening;
      },
      get identity() {
        return real.identity;
      },
      get platform() {
        return real.platform;
      },
      reportContext: () => real.reportContext(),
      get sameCall() {
        return real.sameCall;
      },
      set sameCall(value: boolean) {
        real.sameCall = value;
      },
      callSerial: () => real.callSerial(),
    },
  };
  return scratch;
}

/** The core import `name` of `capability`, implemented over `ctx`; undefined when it cannot serve. */
function coreImport<F>(capability: Capability, name: string, ctx: ImportContext): F | undefined {
  const imp = CAPABILITY_MODULES.find((c) => c.name === capability)?.imports.find((i) => i.name === name);
  if (imp === undefined) throw new Error(`no core import ${capability}.${name}`);
  return imp.implement(ctx) as F | undefined;
}

type RandomCore = (ptr: number, len: number) => number;
type NowCore = () => bigint;
type LogCore = (level: number, ptr: number, len: number) => void;
type SealKeyCore = (policy: number, outPtr: number) => number;
type SealKeyAtCore = (policy: number, keyId: number, svn: number, outPtr: number) => number;
type CounterReadCore = (policy: number, id: bigint, outPtr: number) => number;
type CounterAdvanceCore = (policy: number, id: bigint, expected: bigint, tagPtr: number) => number;
type ReportCore = (dataPtr: number, dataLen: number, outPtr: number, outCap: number) => number;

/** Each capability's WIT interface over the scratch; functions whose core import cannot serve are left out. */
const INTERFACES: Readonly<Record<Capability, (s: Scratch) => Record<string, WitFunction | undefined>>> = Object.freeze({
  random(s) {
    const fill = coreImport<RandomCore>('random', 'random', s.ctx);
    return {
      // fill: func(len: u32) -> result<list<u8>, failure>. Above 65536: the core import pays, then -1.
      fill:
        fill &&
        ((len: number): unknown => {
          if (!isU32(len)) notOfTheWorld('random.fill');
          const status = fill(0, len);
          if (status !== 0) return ERR[basicFailure(status)];
          const out = s.bytes.slice(0, len);
          s.bytes.fill(0, 0, len);
          return handOver(out);
        }),
    };
  },

  clock(s) {
    // now: func() -> s64: the core import's BigInt as it is.
    return { now: coreImport<NowCore>('clock', 'now', s.ctx) };
  },

  log(s) {
    const log = coreImport<LogCore>('log', 'log', s.ctx);
    const area = s.bytes.subarray(0, MAX_LOG_MESSAGE);
    const encoder = new TextEncoder();
    return {
      // log: func(level: level, message: string). The glue decoded the whole message: what the core
      // import does not pay for (past the 1024 bytes it reads) is charged here, by UTF-16 unit, at
      // the core's rate per byte, so a long message costs its length whether or not anyone listens.
      log:
        log &&
        ((level: LogLevel, message: string): void => {
          if (!isLevel(level) || typeof message !== 'string') notOfTheWorld('log.log');
          // Whole characters only: encodeInto stops before one that does not fit.
          const { read, written } = encoder.encodeInto(message, area);
          if (read < message.length) s.ctx.pay(importFuel(0, message.length - read));
          log(LOG_LEVELS.indexOf(level), 0, written);
        }),
    };
  },

  seal(s) {
    const sealKey = coreImport<SealKeyCore>('seal', 'seal_key', s.ctx);
    const sealKeyAt = coreImport<SealKeyAtCore>('seal', 'seal_key_at', s.ctx);
    return {
      // seal-key: func(policy: policy) -> result<list<u8>, failure>.
      sealKey:
        sealKey &&
        ((policy: SealPolicy): unknown => {
          if (!isPolicy(policy)) notOfTheWorld('seal.seal-key');
          const status = sealKey(SEAL_POLICIES.indexOf(policy), 0);
          if (status !== SEAL_STATUS.ok) return ERR[basicFailure(status)];
          const key = s.bytes.slice(0, SEAL_KEY_BYTES);
          s.bytes.fill(0, 0, SEAL_KEY_BYTES);
          return handOver(key);
        }),
      // seal-key-at: func(policy: policy, key-id: u32, svn: option<u32>) -> result<sealing-key, failure>.
      sealKeyAt:
        sealKeyAt &&
        ((policy: SealPolicy, keyId: number, svn: number | undefined): unknown => {
          if (!isPolicy(policy) || !isU32(keyId) || (svn !== undefined && !isU32(svn))) notOfTheWorld('seal.seal-key-at');
          // key-id is a u32; the core import's is an i32, whose negatives are the ids no root can
          // have (unknown-root). svn is passed as it is: a u32 is never the core's -1 (own svn), so
          // some(2^32-1) is an svn above the module's own, not its own.
          const status = sealKeyAt(SEAL_POLICIES.indexOf(policy), keyId | 0, svn === undefined ? OWN_SVN : svn, 0);
          if (status !== SEAL_AT_STATUS.ok) return ERR[sealAtFailure(status)];
          const result = {
            key: handOver(s.bytes.slice(0, SEAL_KEY_BYTES)),
            keyId: s.view.getUint32(SEAL_KEY_BYTES, true),
            svn: s.view.getUint32(SEAL_KEY_BYTES + 4, true),
          };
          s.bytes.fill(0, 0, SEAL_KEY_AT_BYTES);
          return result;
        }),
    };
  },

  counter(s) {
    const read = coreImport<CounterReadCore>('counter', 'counter_read', s.ctx);
    const advance = coreImport<CounterAdvanceCore>('counter', 'counter_advance', s.ctx);
    // A tag pointer the scratch cannot hold: the core import pays, then answers -1 (invalid),
    // without counting the call against the 64 advances (as for a tag out of a module's memory).
    const noTag = s.bytes.length;
    return {
      // read: func(policy: policy, id: u64) -> result<counter-state, failure>. Its err is thrown.
      read:
        read &&
        ((policy: SealPolicy, id: bigint): unknown => {
          if (!isPolicy(policy) || !isU64(id)) notOfTheWorld('counter.read');
          const status = read(SEAL_POLICIES.indexOf(policy), id, 0);
          if (status !== COUNTER_STATUS.ok) throw THROWN[basicFailure(status)];
          return { value: s.view.getBigUint64(0, true), tag: s.bytes.slice(8, COUNTER_BYTES) };
        }),
      // advance: func(policy: policy, id: u64, expected: u64, tag: list<u8>) -> result<_, failure>.
      advance:
        advance &&
        ((policy: SealPolicy, id: bigint, expected: bigint, tag: Uint8Array): unknown => {
          if (!isPolicy(policy) || !isU64(id) || !isU64(expected) || !(tag instanceof Uint8Array)) notOfTheWorld('counter.advance');
          const isTag = tag.length === COUNTER_TAG_BYTES;
          // The glue copied the whole list out of the guest: longer than a tag, its copy is charged.
          if (!isTag) s.ctx.pay(importFuel(0, tag.length));
          else s.bytes.set(tag, 0);
          const status = advance(SEAL_POLICIES.indexOf(policy), id, expected, isTag ? 0 : noTag);
          return status === COUNTER_STATUS.ok ? undefined : ERR[advanceFailure(status)];
        }),
    };
  },

  attest(s) {
    const report = coreImport<ReportCore>('attest', 'report', s.ctx);
    const decoder = new TextDecoder();
    const at = REPORT_DATA_MAX_BYTES;
    return {
      // report: func(data: list<u8>) -> result<string, failure>. The data goes at 0, the evidence
      // after it; evidence larger than the scratch is asked again, within the call and without
      // paying twice, into a buffer of its size (the core import keeps the token for the call).
      report:
        report &&
        ((data: Uint8Array): unknown => {
          if (!(data instanceof Uint8Array)) notOfTheWorld('attest.report');
          const len = data.length;
          // The glue copied the whole list out of the guest: longer than report data, its copy is
          // charged. Data out of 8..64 is refused by the core import without reading it.
          if (len > REPORT_DATA_MAX_BYTES) s.ctx.pay(importFuel(0, len));
          else if (len > 0) s.bytes.set(data, 0);
          const n = report(0, len, at, s.bytes.length - at);
          if (n < 0) return ERR[reportFailure(n)];
          if (n <= s.bytes.length - at) return decoder.decode(s.bytes.subarray(at, at + n));
          if (n > MAX_EVIDENCE) return ERR.unavailable;
          const room = new Uint8Array(at + n);
          room.set(s.bytes.subarray(0, len), 0);
          s.use(room);
          s.free = true;
          try {
            const again = report(0, len, at, n);
            // A token made anew (the call's cache was gone) may differ in length: not the evidence asked for.
            return again === n ? decoder.decode(room.subarray(at, at + n)) : ERR.unavailable;
          } finally {
            s.free = false;
            s.use(undefined);
          }
        }),
    };
  },
});

/** `fn` paying {@link COMPONENT_IMPORT_FUEL} for the glue's crossing before anything else. */
function crossing(ctx: ImportContext, fn: WitFunction): WitFunction {
  return (...args: never[]) => {
    ctx.pay(COMPONENT_IMPORT_FUEL);
    return fn(...args);
  };
}

/**
 * The imports jco's glue expects for an enclave component granted `capabilities`: each capability's
 * WIT interface, under its unversioned name (`enclave:runtime/random`), its functions in jco's
 * shapes, each the core import of docs/ABI.md §3 over a scratch buffer of this instance's own.
 * Capabilities not in the list get no interface; a function whose core import cannot serve this
 * instance (no platform) is left out, as `importsFor` leaves out the core import.
 *
 * Call it once per instance with that instance's context: the scratch and the per-call state of
 * the core imports (the report cache, the count of advances) are never shared across instances.
 * Byte lists handed back (random bytes, sealing keys) are zeroed once the call into the enclave is
 * over: the glue copies them into the guest before the import returns.
 * @example
 * ```ts
 * const imports = componentImports(['random', 'clock'], importContext(source));
 * instantiate(getCoreModule, imports, instantiateCore); // jco's glue
 * ```
 */
export function componentImports(capabilities: readonly Capability[], ctx: ImportContext): ComponentImports {
  const granted = CAPABILITY_MODULES.map((c) => c.name).filter((name) => capabilities.includes(name));
  const scratch = scratchContext(ctx, Math.max(0, ...granted.map(scratchNeed)));
  const imports: ComponentImports = {};
  for (const capability of granted) {
    const functions: Record<string, WitFunction> = {};
    for (const [name, fn] of Object.entries(INTERFACES[capability](scratch))) {
      if (fn !== undefined) functions[name] = crossing(ctx, fn);
    }
    if (Object.keys(functions).length > 0) imports[`${WORLD_PACKAGE}/${capability}`] = Object.freeze(functions);
  }
  return imports;
}
