/**
 * Fuel metering: rewrites a validated module so that it counts what it executes and traps when
 * its per-call budget runs out (docs/LIMITS.md, "Fuel").
 *
 * The rewrite, done with binaryen on the module's IR (never by splicing bytes):
 *
 * ```
 *  original                         instrumented
 *  (func $f  body)              ──► (func $f  f = fuel - C_f; (check) body; fuel = f)
 *  (loop $l  body)              ──► (loop $l  f -= C_l; (check) body)   ;; every back-edge pays
 *  (call $g  args)              ──► args; fuel = f; (call $g); f = fuel  ;; also call_indirect
 *  (return v)                   ──► v; fuel = f; return
 *  (memory.fill d v n)          ──► (memory.fill d v (n; f -= n >>> 3 or 256 if n = 0; (check)))
 *  (memory.grow n)              ──► (memory.grow (n; f -= n << 13 if it will succeed; (check)))
 *  (start $s)                   ──► no start; $s exported as __enclave_start (the host runs it
 *                                   under the start budget, right after instantiating)
 *  mutable global $g            ──► also exported as __enclave_global_<i> (per-call snapshots)
 *                                   + (global $__enclave_fuel (mut i32)) exported as __enclave_fuel
 *  (check) = if (f < 0) { fuel = f; unreachable }                 ;; f: one i32 local per function
 * ```
 *
 * `C` is the weighted count of IR expressions in the straight-line piece a charge point guards: a
 * function body or a loop body, minus what nested loops charge for themselves. Most expressions
 * weigh 1; a load {@link LOAD_FUEL}, a bulk memory operation {@link BULK_OP_FUEL} plus its length
 * charge, `memory.grow` {@link MEMORY_GROW_FUEL} plus its pages ({@link GROW_PAGE_SHIFT}), a
 * function entry one more per {@link LOCALS_PER_FUEL} locals. Capability imports charge themselves on the host
 * (runtime/capabilities/). A region is charged whole when entered, so fuel is an upper bound of the
 * work done, and it depends only on the code path: the same call on the same state always uses the
 * same fuel. The weights keep the wall time of any call within a constant per unit of fuel
 * (docs/LIMITS.md, "Fuel": the bound, measured by bench/fuel-bound.ts).
 *
 * Within a function the counter lives in a local (a register, not a global in memory, on every loop
 * back-edge): it is written back to the global after a call's operands, right before the call, and
 * before a return, and read again after each call (the callee or the host import charged the
 * global). The global is exact whenever control leaves the function, and below zero when a charge
 * fails. A function with a multi-value result (no scratch local of a tuple type) charges the global
 * directly instead.
 *
 * The counter is an `i32`: it crosses into JavaScript as a plain number (an `i64` would be a BigInt,
 * one allocation per call), and i32 arithmetic is the cheapest (an `f64` counter measured 10x
 * slower on a tight loop). So one call's budget is at most {@link MAX_FUEL} (2^31 - 1); a
 * charge never wraps because the counter is never below zero when charged. The guest cannot reach
 * it: its code was written before the global existed, and exports are host-only.
 *
 * The instrumenter fails closed: an instruction it does not know how to walk (anything outside the
 * feature set of docs/ABI.md: exception handling, reference types, GC, threads, tail calls) refuses
 * the module with `invalid_module`, rather than leaving a loop unmetered.
 */
import { listSections } from '../core/index.js';
import { EnclaveError } from './errors.js';

/** Bumped whenever the rewrite changes; part of the cache key of instrumented bytes. */
export const INSTRUMENTER_VERSION = 10;

/**
 * Bulk memory operations (`memory.fill`, `memory.copy`, `memory.init`) pay by length at run time,
 * right before they run: `fuel -= len >>> BULK_BYTES_SHIFT`, one unit per `2^BULK_BYTES_SHIFT`
 * bytes, on top of their static charge of {@link BULK_OP_FUEL}. A 16 MiB `memory.fill` is not one
 * instruction's work (docs/LIMITS.md, "Fuel": the charge rates keep every pattern within the bound).
 */
export const BULK_BYTES_SHIFT = 3;
/** Static fuel of one bulk memory operation besides its length charge: the engine's call into its runtime. */
export const BULK_OP_FUEL = 16;
/**
 * What a bulk memory operation of length 0 pays instead of its length charge: V8 takes a slow
 * path for a zero-length `memory.fill` (about 0.8 µs here, against 20 ns for 64 bytes).
 */
export const BULK_ZERO_LENGTH_FUEL = 256;
/**
 * Fuel of one load from linear memory. A chain of loads, each from the address the previous one
 * read, misses the caches every time: hundreds of nanoseconds per load where an arithmetic
 * instruction takes one. Weighting loads keeps that pattern within the time bound of fuel.
 */
export const LOAD_FUEL = 32;
/** Entering a function costs one unit per this many locals (the engine zeroes them). */
export const LOCALS_PER_FUEL = 16;
/**
 * Bound on the engine's work to compile the instrumented module: the sum over its functions of
 * locals (parameters included) times weighted control points (blocks, branches, ifs, loops, and
 * the checks the rewrite adds). V8 compiles a function lazily, on the thread of its first call,
 * and its baseline compiler handles every local at every control point: 20 000 empty loops in a
 * function of 9 000 locals (a 60 KB module, 40 000 fuel) held the host thread 16 s on its first
 * call, about 22 ns per unit of this measure; 200 000 `br_if` with 9 000 locals, 3.5 s; 20 000
 * calls, 0.18 s. A module past it is refused (`invalid_module`) before the rewrite is emitted.
 * At the bound, functions of 9 000 locals compiled on their first call for 40 ms (calls), 100 ms
 * (`br_if`), 350 ms (loops), 400 ms (ifs) here: about what a 2 MiB module costs whatever its
 * locals (the baseline compiler takes about 1 µs per loop or call with its checks: 300 000 calls,
 * 0.3 s). The repository's enclaves measure at most 64 000.
 */
export const MAX_COMPILE_WORK = 50_000_000;
/** Static fuel of one `memory.grow`: a call into the engine's runtime, which may commit pages. */
export const MEMORY_GROW_FUEL = 1_000;
/**
 * A `memory.grow` that will succeed also pays `delta << GROW_PAGE_SHIFT` (8 192 units per 64 KiB
 * page), before it runs: the first store to each 4 KiB of a new page is a page fault (the kernel
 * zeroes it), measured at 25 to 70 µs per 64 KiB page for one store per 4 KiB, which costs the
 * guest 12 fuel a store. Without it a loop touching memory it just grew ran at 150 to 370 ns per
 * unit of fuel (bench/fuel-bound.ts: 4 096 per page still measured 11 to 17). A grow that fails (past the maximum) grows nothing and pays only {@link MEMORY_GROW_FUEL}.
 * The initial memory of a fresh instance is not charged: its first touch is part of the constant
 * term of the bound (docs/LIMITS.md, "Fuel").
 */
export const GROW_PAGE_SHIFT = 13;

/**
 * Capability imports charge fuel for themselves, on the host side, before they do any work, so
 * every route to them pays the same (a direct `call`, or `call_indirect` through a table). Each
 * capability declares its own cost (runtime/capabilities/, `fuel`); where its work grows with a
 * length (`random`, `log`), it adds one unit per `2^IMPORT_BYTES_SHIFT` bytes ({@link importFuel}).
 * Depends only on the arguments, so the same call still uses the same fuel.
 */
/** Bytes per unit of fuel that `random` and `log` add to their own cost. */
export const IMPORT_BYTES_SHIFT = 2;

/** What a capability import of cost `base` charges for a call that handles `bytes` bytes. */
export function importFuel(base: number, bytes = 0): number {
  return base + Math.floor(bytes / 2 ** IMPORT_BYTES_SHIFT);
}

/** The largest fuel budget of one call (and of the start function): the counter is an i32. */
export const MAX_FUEL = 2 ** 31 - 1;

/** Export names the instrumenter adds; a module may not export names with this prefix itself. */
export const RESERVED_EXPORT_PREFIX = '__enclave_';
/** The fuel counter (`WebAssembly.Global`, mutable i32): the host sets the budget and reads what is left. */
export const FUEL_EXPORT = '__enclave_fuel';
/** The module's start function, deferred so it runs metered (absent when the module has none). */
export const START_EXPORT = '__enclave_start';
/** Prefix of the exported mutable globals, `__enclave_global_0`, ... in declaration order. */
export const GLOBAL_EXPORT_PREFIX = '__enclave_global_';

/** What the instrumenter learnt about a module, stored next to the instrumented bytes. */
export interface FuelManifest {
  readonly version: number;
  /** True when the module has a start function, now exported as {@link START_EXPORT}. */
  readonly hasStart: boolean;
  /** Number of `__enclave_global_<i>` exports. */
  readonly mutableGlobals: number;
  /**
   * True when linear memory plus the exported globals are the whole mutable state of an instance
   * (no `data.drop`/`memory.init`), so a snapshot of them restores a pristine instance.
   */
  readonly snapshotSafe: boolean;
  /** Charge points inserted (functions plus loops), for diagnostics. */
  readonly chargePoints: number;
}

/** Instrumented bytes and what the host needs to drive them. */
export interface Instrumented {
  readonly bytes: Uint8Array;
  readonly manifest: FuelManifest;
}

// The binaryen.js expression classes exist at runtime but are not in its typings.
type Ref = number;
interface Binaryen {
  readBinaryWithFeatures(data: Uint8Array, features: number): BinaryenModule;
  getExpressionId(e: Ref): number;
  getExpressionType(e: Ref): number;
  unreachable: number;
  getFunctionInfo(f: Ref): { name: string; module: string | null; base: string | null; body: Ref; params: number; results: number; vars: number[] };
  getGlobalInfo(g: Ref): { name: string; module: string | null; mutable: boolean; type: number };
  Features: Record<string, number>;
  i32: number;
  i64: number;
  f32: number;
  f64: number;
  v128: number;
  funcref: number;
  expandType(t: number): number[];
  _BinaryenGetNumTables(mod: number): number;
  _BinaryenGetTableByIndex(mod: number, i: number): Ref;
  _BinaryenTableGetType(table: Ref): number;
  _BinaryenFunctionAddVar(f: Ref, type: number): number;
  none: number;
  auto: number;
  [id: string]: unknown;
  Block: { getNumChildren(e: Ref): number; getChildAt(e: Ref, i: number): Ref };
  If: { getCondition(e: Ref): Ref; getIfTrue(e: Ref): Ref; getIfFalse(e: Ref): Ref };
  Loop: { getBody(e: Ref): Ref; setBody(e: Ref, body: Ref): void };
  Call: {
    getTarget(e: Ref): string;
    isReturn(e: Ref): boolean;
    getNumOperands(e: Ref): number;
    getOperandAt(e: Ref, i: number): Ref;
    setOperandAt(e: Ref, i: number, v: Ref): void;
  };
  CallIndirect: { isReturn(e: Ref): boolean; getTarget(e: Ref): Ref; setTarget(e: Ref, v: Ref): void };
  Return: { getValue(e: Ref): Ref; setValue(e: Ref, v: Ref): void };
  MemoryFill: { getSize(e: Ref): Ref; setSize(e: Ref, size: Ref): void };
  MemoryCopy: { getSize(e: Ref): Ref; setSize(e: Ref, size: Ref): void };
  MemoryInit: { getSize(e: Ref): Ref; setSize(e: Ref, size: Ref): void };
  MemoryGrow: { getDelta(e: Ref): Ref; setDelta(e: Ref, delta: Ref): void };
  Function: { getBody(f: Ref): Ref; setBody(f: Ref, body: Ref): void };
}
interface BinaryenModule {
  readonly ptr: number;
  getNumFunctions(): number;
  getFunctionByIndex(i: number): Ref;
  getNumGlobals(): number;
  getGlobalByIndex(i: number): Ref;
  getGlobal(name: string): Ref;
  getNumExports(): number;
  getMemoryInfo(): { initial: number; max?: number };
  getNumDataSegments(): number;
  getDataSegmentByIndex(i: number): Ref;
  getDataSegmentInfo(seg: Ref): { offset: number | null; data: ArrayBuffer; passive: boolean };
  getStart(): Ref;
  setStart(f: Ref): void;
  setFeatures(features: number): void;
  addGlobal(name: string, type: number, mutable: boolean, init: Ref): Ref;
  addGlobalExport(internal: string, external: string): Ref;
  addFunctionExport(internal: string, external: string): Ref;
  block(label: string | null, children: Ref[], type?: number): Ref;
  if(cond: Ref, ifTrue: Ref, ifFalse?: Ref): Ref;
  unreachable(): Ref;
  global: { get(name: string, type: number): Ref; set(name: string, value: Ref): Ref };
  i32: {
    const(v: number): Ref;
    sub(a: Ref, b: Ref): Ref;
    lt_s(a: Ref, b: Ref): Ref;
    le_u(a: Ref, b: Ref): Ref;
    shr_u(a: Ref, b: Ref): Ref;
    shl(a: Ref, b: Ref): Ref;
    eqz(a: Ref): Ref;
  };
  memory: { size(): Ref };
  select(cond: Ref, ifTrue: Ref, ifFalse: Ref): Ref;
  local: {
    get(index: number, type: number): Ref;
    set(index: number, value: Ref): Ref;
    tee(index: number, value: Ref, type: number): Ref;
  };
  emitBinary(): Uint8Array;
  dispose(): void;
}

/**
 * The features of docs/ABI.md (core + bulk-memory, sign-ext, mutable-globals, nontrapping-fptoint,
 * simd128) plus multi-value, which binaryen's reader needs for blocks with several results.
 */
function abiFeatures(b: Binaryen): number {
  const f = b.Features;
  return f.MutableGlobals! | f.NontrappingFPToInt! | f.SIMD128! | f.BulkMemory! | f.SignExt! | f.Multivalue! | f.BulkMemoryOpt!;
}

/** Which getters of each expression class return child expressions, by expression id name. */
const CHILDREN: Record<string, readonly string[]> = {
  NopId: [],
  UnreachableId: [],
  ConstId: [],
  LocalGetId: [],
  GlobalGetId: [],
  MemorySizeId: [],
  DataDropId: [],
  LocalSetId: ['Value'],
  GlobalSetId: ['Value'],
  DropId: ['Value'],
  ReturnId: ['Value'],
  UnaryId: ['Value'],
  BinaryId: ['Left', 'Right'],
  SelectId: ['IfTrue', 'IfFalse', 'Condition'],
  BreakId: ['Condition', 'Value'],
  SwitchId: ['Condition', 'Value'],
  CallId: ['Operands'],
  CallIndirectId: ['Target', 'Operands'],
  LoadId: ['Ptr'],
  StoreId: ['Ptr', 'Value'],
  MemoryGrowId: ['Delta'],
  MemoryInitId: ['Dest', 'Offset', 'Size'],
  MemoryCopyId: ['Dest', 'Source', 'Size'],
  MemoryFillId: ['Dest', 'Value', 'Size'],
  SIMDExtractId: ['Vec'],
  SIMDReplaceId: ['Vec', 'Value'],
  SIMDShuffleId: ['Left', 'Right'],
  SIMDTernaryId: ['A', 'B', 'C'],
  SIMDShiftId: ['Vec', 'Shift'],
  SIMDLoadId: ['Ptr'],
  SIMDLoadStoreLaneId: ['Ptr', 'Vec'],
  TupleMakeId: ['Operands'],
  TupleExtractId: ['Tuple'],
};

/** Class names of the expression ids in {@link CHILDREN} (binaryen's `Expression` subclasses). */
const CLASS_OF: Record<string, string> = {
  LocalSetId: 'LocalSet',
  GlobalSetId: 'GlobalSet',
  DropId: 'Drop',
  ReturnId: 'Return',
  UnaryId: 'Unary',
  BinaryId: 'Binary',
  SelectId: 'Select',
  BreakId: 'Break',
  SwitchId: 'Switch',
  CallId: 'Call',
  CallIndirectId: 'CallIndirect',
  LoadId: 'Load',
  StoreId: 'Store',
  MemoryGrowId: 'MemoryGrow',
  MemoryInitId: 'MemoryInit',
  MemoryCopyId: 'MemoryCopy',
  MemoryFillId: 'MemoryFill',
  SIMDExtractId: 'SIMDExtract',
  SIMDReplaceId: 'SIMDReplace',
  SIMDShuffleId: 'SIMDShuffle',
  SIMDTernaryId: 'SIMDTernary',
  SIMDShiftId: 'SIMDShift',
  SIMDLoadId: 'SIMDLoad',
  SIMDLoadStoreLaneId: 'SIMDLoadStoreLane',
  TupleMakeId: 'TupleMake',
  TupleExtractId: 'TupleExtract',
};

type ChildFn = (e: Ref) => Ref | Ref[];
interface Walker {
  readonly block: number;
  readonly if: number;
  readonly loop: number;
  /** `br`/`br_if` and `br_table`. */
  readonly branch: number;
  readonly switch: number;
  readonly call: number;
  readonly callIndirect: number;
  readonly memoryInit: number;
  readonly memoryFill: number;
  readonly memoryCopy: number;
  readonly memoryGrow: number;
  readonly dataDrop: number;
  /** Loads from linear memory (weighted {@link LOAD_FUEL}). */
  readonly loads: ReadonlySet<number>;
  readonly return: number;
  /** Expression id to child getters; an id absent here is refused. */
  readonly children: Map<number, readonly ChildFn[]>;
  /** Expression id to the names of those children (`Value`, `Operands`...), for their setters. */
  readonly childNames: Map<number, readonly string[]>;
  /** Expression id to its binaryen class (`b.Drop`...), whose `set<Child>` replaces a child. */
  readonly classOf: Map<number, Record<string, unknown>>;
}

let walkerCache: Walker | undefined;
function walkerFor(b: Binaryen): Walker {
  if (walkerCache !== undefined) return walkerCache;
  const children = new Map<number, readonly ChildFn[]>();
  const childNames = new Map<number, readonly string[]>();
  const classOf = new Map<number, Record<string, unknown>>();
  classOf.set(b.BlockId as number, b.Block as unknown as Record<string, unknown>);
  classOf.set(b.IfId as number, b.If as unknown as Record<string, unknown>);
  classOf.set(b.LoopId as number, b.Loop as unknown as Record<string, unknown>);
  for (const [idName, getters] of Object.entries(CHILDREN)) {
    const id = b[idName] as number;
    const cls = CLASS_OF[idName] === undefined ? undefined : (b[CLASS_OF[idName]!] as Record<string, ChildFn>);
    childNames.set(id, getters);
    if (cls !== undefined) classOf.set(id, cls);
    for (const g of getters) {
      const setter = g === 'Operands' ? 'setOperandAt' : `set${g}`;
      if (typeof cls?.[setter] !== 'function') throw new Error(`binaryen has no ${CLASS_OF[idName]}.${setter}`);
    }
    children.set(
      id,
      getters.map((g) => {
        const fn = cls?.[`get${g}`];
        if (typeof fn !== 'function') throw new Error(`binaryen has no ${CLASS_OF[idName]}.get${g}`);
        return fn as ChildFn;
      }),
    );
  }
  walkerCache = {
    block: b.BlockId as number,
    if: b.IfId as number,
    loop: b.LoopId as number,
    branch: b.BreakId as number,
    switch: b.SwitchId as number,
    call: b.CallId as number,
    callIndirect: b.CallIndirectId as number,
    memoryInit: b.MemoryInitId as number,
    memoryFill: b.MemoryFillId as number,
    memoryCopy: b.MemoryCopyId as number,
    memoryGrow: b.MemoryGrowId as number,
    dataDrop: b.DataDropId as number,
    loads: new Set([b.LoadId as number, b.SIMDLoadId as number, b.SIMDLoadStoreLaneId as number]),
    return: b.ReturnId as number,
    children,
    childNames,
    classOf,
  };
  return walkerCache;
}

/** A charge point: the function body or loop body it guards and the cost counted for it. */
interface Region {
  readonly loop: Ref; // 0 for a function body
  cost: number;
  /** The function whose scratch local the charge uses. */
  readonly fn: Ref;
}

let binaryenPromise: Promise<Binaryen> | undefined;
/** binaryen is large (seconds to load cold): imported only when a module must be instrumented. */
function loadBinaryen(): Promise<Binaryen> {
  binaryenPromise ??= import('binaryen').then((m) => m.default as unknown as Binaryen);
  return binaryenPromise;
}

function refuse(message: string): never {
  throw new EnclaveError('invalid_module', message);
}

/**
 * Instruments validated module bytes for fuel metering. The input is not modified; its
 * measurement is taken by the caller before this runs and never changes.
 * @throws {EnclaveError} `invalid_module` if the module uses an instruction outside the ABI feature
 *   set, or exports a name starting with `__enclave_`.
 * @example
 * const { bytes, manifest } = await instrumentFuel(original);
 */
export async function instrumentFuel(original: Uint8Array): Promise<Instrumented> {
  const b = await loadBinaryen();
  let mod: BinaryenModule;
  try {
    // Custom sections (names, the contract, signatures) mean nothing to the rewrite; dropping them
    // keeps binaryen from parsing (and warning about) what a hostile module put in them.
    mod = b.readBinaryWithFeatures(withoutSections(original, (id) => id === CUSTOM_SECTION_ID), abiFeatures(b));
  } catch (err) {
    throw new EnclaveError('invalid_module', 'The module cannot be read for instrumentation.', { cause: err });
  }
  try {
    return rewrite(b, mod);
  } catch (err) {
    if (err instanceof EnclaveError) throw err;
    throw new EnclaveError('invalid_module', 'The module cannot be instrumented.', { cause: err });
  } finally {
    mod.dispose();
  }
}

/** Where an expression sits in its parent, so that it can be replaced (wrapped) in place. */
interface Slot {
  /** The parent expression, or the function when `field` is `body`. */
  readonly parent: Ref;
  /** The parent's setter: `set<Field>` of its class, `setOperandAt`, `setChildAt`, or `body`. */
  readonly field: string;
  readonly index: number;
  /** The parent's expression id (its class), -1 for a function body. */
  readonly id: number;
}

/** A call (or `return`) of a function that keeps its counter in a local, to be rewritten. */
interface Site {
  readonly e: Ref;
  readonly id: number;
  readonly slot: Slot;
  readonly fn: Ref;
}

function rewrite(b: Binaryen, mod: BinaryenModule): Instrumented {
  const walker = walkerFor(b);
  checkTypes(b, mod);
  const fuel = uniqueGlobalName(mod, '__enclave_fuel');
  const { i32 } = b;
  const fail = (f: number): Ref => mod.block(null, [mod.global.set(fuel, mod.local.get(f, i32)), mod.unreachable()], b.unreachable);
  // A charge on the function's counter local `f`, kept in a register: `f -= amount; if (f < 0)`
  // writes it back (so the host sees the budget ran out) and traps.
  const chargeBy = (amount: Ref, f: number): Ref =>
    mod.block(null, [
      mod.local.set(f, mod.i32.sub(mod.local.get(f, i32), amount)),
      mod.if(mod.i32.lt_s(mod.local.get(f, i32), mod.i32.const(0)), fail(f)),
    ], b.none);
  // On entry the counter is read from the global, where the host or the caller left it.
  const entryCharge = (cost: number, f: number): Ref =>
    mod.block(null, [
      mod.local.set(f, mod.i32.sub(mod.global.get(fuel, i32), mod.i32.const(cost))),
      mod.if(mod.i32.lt_s(mod.local.get(f, i32), mod.i32.const(0)), fail(f)),
    ], b.none);
  // Functions that cannot keep the counter in a local (multi-value results) charge the global.
  const globalChargeBy = (amount: Ref, tmp: number): Ref =>
    mod.block(null, [
      mod.global.set(fuel, mod.local.tee(tmp, mod.i32.sub(mod.global.get(fuel, i32), amount), i32)),
      mod.if(mod.i32.lt_s(mod.local.get(tmp, i32), mod.i32.const(0)), mod.unreachable()),
    ], b.none);
  const writeBack = (f: number): Ref => mod.global.set(fuel, mod.local.get(f, i32));
  const reload = (f: number): Ref => mod.local.set(f, mod.global.get(fuel, i32));

  let snapshotSafe = true;
  let chargePoints = 0;
  const regions: Region[] = [];
  const functions: [fn: Ref, region: Region][] = [];
  // Bulk memory operations, charged by length at run time, and the function each one is in.
  const bulk: [expr: Ref, fn: Ref, id: number][] = [];
  // `memory.grow`s, charged per page they will grow, and the function each one is in.
  const grows: [expr: Ref, fn: Ref][] = [];
  // Calls and returns, in walk order (a parent before its children).
  const sites: Site[] = [];
  // Functions whose counter stays in the global: a multi-value result somewhere (no scratch local of a tuple type).
  const globalMode = new Set<Ref>();
  const single = (t: number): boolean => b.expandType(t).length <= 1;
  const stack: [expr: Ref, region: Region, slot: Slot][] = [];
  let compileWork = 0;

  for (let i = 0, n = mod.getNumFunctions(); i < n; i++) {
    const fn = mod.getFunctionByIndex(i);
    const info = b.getFunctionInfo(fn);
    // An import: no body. Capability imports charge for themselves on the host (runtime/enclave.ts).
    if (info.module !== null && info.module !== '') continue;
    // Entering a function zeroes its locals: a function with thousands of them pays for it.
    const region: Region = { loop: 0, cost: Math.floor(info.vars.length / LOCALS_PER_FUEL), fn };
    functions.push([fn, region]);
    // Control points of this function, weighted by what the engine's baseline compiler spends on
    // each per local (MAX_COMPILE_WORK): a block, branch or call 1, an if or a loop with its check
    // 4, the checks at the entry and before a bulk operation or a grow 2.
    let control = 2;
    if (!single(info.results)) globalMode.add(fn);
    stack.push([info.body, region, { parent: fn, field: 'body', index: 0, id: -1 }]);
    // An explicit stack, not recursion: a hostile module may nest expressions very deeply.
    while (stack.length > 0) {
      const [e, r, slot] = stack.pop()!;
      if (e === 0) continue;
      r.cost += 1;
      const id = b.getExpressionId(e);
      if (id === walker.block || id === walker.branch || id === walker.switch) control += 1;
      else if (id === walker.if) control += 4;
      if (id === walker.block) {
        for (let c = 0, m = b.Block.getNumChildren(e); c < m; c++) stack.push([b.Block.getChildAt(e, c), r, { parent: e, field: 'setChildAt', index: c, id }]);
      } else if (id === walker.if) {
        stack.push(
          [b.If.getCondition(e), r, { parent: e, field: 'setCondition', index: 0, id }],
          [b.If.getIfTrue(e), r, { parent: e, field: 'setIfTrue', index: 0, id }],
          [b.If.getIfFalse(e), r, { parent: e, field: 'setIfFalse', index: 0, id }],
        );
      } else if (id === walker.loop) {
        control += 4;
        const inner: Region = { loop: e, cost: 0, fn: r.fn };
        regions.push(inner);
        stack.push([b.Loop.getBody(e), inner, { parent: e, field: 'setBody', index: 0, id }]);
      } else {
        const getters = walker.children.get(id);
        if (getters === undefined) {
          refuse(`The module uses an instruction outside the enclave feature set (docs/ABI.md; expression id ${id}).`);
        }
        if (id === walker.memoryInit || id === walker.dataDrop) snapshotSafe = false;
        if (id === walker.call || id === walker.callIndirect) {
          control += 1;
          if (id === walker.call ? b.Call.isReturn(e) : b.CallIndirect.isReturn(e)) {
            refuse('The module uses tail calls (return_call), outside the enclave feature set (docs/ABI.md).');
          }
          if (!single(b.getExpressionType(e))) globalMode.add(fn);
          sites.push({ e, id, slot, fn });
        } else if (id === walker.return) {
          sites.push({ e, id, slot, fn });
        } else if (walker.loads.has(id)) {
          r.cost += LOAD_FUEL - 1;
        } else if (id === walker.memoryFill || id === walker.memoryCopy || id === walker.memoryInit) {
          r.cost += BULK_OP_FUEL;
          control += 2;
          bulk.push([e, r.fn, id]);
        } else if (id === walker.memoryGrow) {
          r.cost += MEMORY_GROW_FUEL;
          control += 2;
          grows.push([e, r.fn]);
        }
        const names = walker.childNames.get(id)!;
        for (let g = 0; g < getters.length; g++) {
          const child = getters[g]!(e);
          if (Array.isArray(child)) {
            for (let c = 0; c < child.length; c++) stack.push([child[c]!, r, { parent: e, field: 'setOperandAt', index: c, id }]);
          } else {
            stack.push([child, r, { parent: e, field: `set${names[g]}`, index: 0, id }]);
          }
        }
      }
    }
    // Locals as the engine counts them: parameters, the function's own, and about three the rewrite adds.
    compileWork += (b.expandType(info.params).length + info.vars.length + 3) * control;
    if (compileWork > MAX_COMPILE_WORK) {
      refuse(
        `The module's functions hold too many locals for their control flow (locals x blocks, loops, ifs, branches and calls above ${MAX_COMPILE_WORK} at function ${i}): compiling it would hold the host thread (docs/LIMITS.md, "Module structure").`,
      );
    }
  }

  // Rewrite after walking, so the walk never sees the charges it inserts. Each function gets new
  // locals after its own (so no index changes): its counter, and scratch locals by type.
  const counter = new Map<Ref, number>();
  for (const [fn] of functions) counter.set(fn, b._BinaryenFunctionAddVar(fn, i32));
  const scratchLocals = new Map<string, number>();
  const scratch = (fn: Ref, type: number): number => {
    const key = `${fn}:${type}`;
    let local = scratchLocals.get(key);
    if (local === undefined) scratchLocals.set(key, (local = b._BinaryenFunctionAddVar(fn, type)));
    return local;
  };
  const replace = (slot: Slot, value: Ref): void => {
    if (slot.field === 'body') b.Function.setBody(slot.parent, value);
    else (walker.classOf.get(slot.id)![slot.field] as (e: Ref, ...rest: number[]) => void)(slot.parent, ...(slot.field === 'setOperandAt' || slot.field === 'setChildAt' ? [slot.index, value] : [value]));
  };
  // `value` then a write-back, as one expression of value's type: (tmp = value; global = f; tmp).
  const thenWriteBack = (fn: Ref, value: Ref): Ref => {
    const type = b.getExpressionType(value);
    if (type === b.none || type === b.unreachable) return mod.block(null, [value, writeBack(counter.get(fn)!)], b.auto);
    const tmp = scratch(fn, type);
    return mod.block(null, [mod.local.set(tmp, value), writeBack(counter.get(fn)!), mod.local.get(tmp, type)], type);
  };

  // The counter lives in a local between calls: written back to the global right before a call
  // (after its operands, which may charge) and before a return, read again after a call (the
  // callee, or a capability import on the host, charged the global). Children before parents, so
  // a call nested in another's operands is rewritten first.
  for (let s = sites.length - 1; s >= 0; s--) {
    const { e, id, slot, fn } = sites[s]!;
    if (globalMode.has(fn)) continue;
    const f = counter.get(fn)!;
    if (id === walker.return) {
      // A return's own type is always `unreachable`; its value's tells whether it completes.
      const value = b.Return.getValue(e);
      if (value === 0) replace(slot, mod.block(null, [writeBack(f), e], b.unreachable));
      else if (b.getExpressionType(value) !== b.unreachable) b.Return.setValue(e, thenWriteBack(fn, value));
      continue;
    }
    const type = b.getExpressionType(e);
    if (type === b.unreachable) continue; // an operand never completes: the call never happens
    const operands = id === walker.call ? b.Call.getNumOperands(e) : -1;
    if (id === walker.callIndirect) b.CallIndirect.setTarget(e, thenWriteBack(fn, b.CallIndirect.getTarget(e)));
    else if (operands > 0) b.Call.setOperandAt(e, operands - 1, thenWriteBack(fn, b.Call.getOperandAt(e, operands - 1)));
    const pre = operands === 0 ? [writeBack(f)] : [];
    if (type === b.none) {
      replace(slot, mod.block(null, [...pre, e, reload(f)], b.none));
    } else {
      const tmp = scratch(fn, type);
      replace(slot, mod.block(null, [...pre, mod.local.set(tmp, e), reload(f), mod.local.get(tmp, type)], type));
    }
  }
  // A bulk operation's size operand is evaluated last, so it becomes
  //   (block (result i32) (local.set $n size) (charge by $n) (local.get $n)):
  // evaluated once, charged right before the operation runs. `$n >>> SHIFT` (SHIFT >= 1) is below
  // 2^31 and the counter is never negative when charged, so the subtraction cannot wrap.
  for (const [e, fn, id] of bulk) {
    const n = scratch(fn, i32);
    const cls = id === walker.memoryFill ? b.MemoryFill : id === walker.memoryCopy ? b.MemoryCopy : b.MemoryInit;
    const byLength = mod.select(
      mod.i32.eqz(mod.local.get(n, i32)),
      mod.i32.const(BULK_ZERO_LENGTH_FUEL),
      mod.i32.shr_u(mod.local.get(n, i32), mod.i32.const(BULK_BYTES_SHIFT)),
    );
    const charge = globalMode.has(fn) ? globalChargeBy(byLength, counter.get(fn)!) : chargeBy(byLength, counter.get(fn)!);
    cls.setSize(e, mod.block(null, [mod.local.set(n, cls.getSize(e)), charge, mod.local.get(n, i32)], i32));
  }
  // A grow's delta becomes (block (result i32) (local.set $n delta) (charge) (local.get $n)), the
  // charge `$n << SHIFT` when the grow will succeed ($n <= max - memory.size), else 0. The maximum
  // is at most 65 536 pages, so the charge is at most 2^29 and cannot wrap.
  if (grows.length > 0) {
    const max = mod.getMemoryInfo().max ?? 65_536;
    for (const [e, fn] of grows) {
      const n = scratch(fn, i32);
      const byPages = mod.select(
        mod.i32.le_u(mod.local.get(n, i32), mod.i32.sub(mod.i32.const(max), mod.memory.size())),
        mod.i32.shl(mod.local.get(n, i32), mod.i32.const(GROW_PAGE_SHIFT)),
        mod.i32.const(0),
      );
      const charge = globalMode.has(fn) ? globalChargeBy(byPages, counter.get(fn)!) : chargeBy(byPages, counter.get(fn)!);
      b.MemoryGrow.setDelta(e, mod.block(null, [mod.local.set(n, b.MemoryGrow.getDelta(e)), charge, mod.local.get(n, i32)], i32));
    }
  }
  for (const region of regions) {
    const f = counter.get(region.fn)!;
    const cost = mod.i32.const(Math.max(region.cost, 1));
    const charge = globalMode.has(region.fn) ? globalChargeBy(cost, f) : chargeBy(cost, f);
    b.Loop.setBody(region.loop, mod.block(null, [charge, b.Loop.getBody(region.loop)], b.auto));
    chargePoints++;
  }
  for (const [fn, region] of functions) {
    const f = counter.get(fn)!;
    const cost = Math.max(region.cost, 1);
    if (globalMode.has(fn)) {
      b.Function.setBody(fn, mod.block(null, [globalChargeBy(mod.i32.const(cost), f), b.Function.getBody(fn)], b.auto));
    } else {
      // Falling off the end (or a branch to the body's label) returns: write back after the body.
      b.Function.setBody(fn, mod.block(null, [entryCharge(cost, f), thenWriteBack(fn, b.Function.getBody(fn))], b.auto));
    }
    chargePoints++;
  }

  let mutableGlobals = 0;
  for (let i = 0, n = mod.getNumGlobals(); i < n; i++) {
    const g = b.getGlobalInfo(mod.getGlobalByIndex(i));
    // Imported globals are refused by validation; export the module's own mutable ones. JavaScript
    // cannot read a v128 global, so a module with one cannot be restored from a snapshot.
    if (!g.mutable || (g.module !== null && g.module !== '')) continue;
    if (g.type === b.v128) snapshotSafe = false;
    else mod.addGlobalExport(g.name, `${GLOBAL_EXPORT_PREFIX}${mutableGlobals++}`);
  }
  checkDataSegments(mod);
  mod.addGlobal(fuel, b.i32, true, mod.i32.const(0));
  mod.addGlobalExport(fuel, FUEL_EXPORT);

  const start = mod.getStart();
  const hasStart = start !== 0;
  if (hasStart) mod.addFunctionExport(b.getFunctionInfo(start).name, START_EXPORT);
  // binaryen's API cannot unset a start function: drop the whole start section (id 8) instead.
  const bytes = withoutSections(mod.emitBinary(), (id) => id === START_SECTION_ID);
  return {
    bytes,
    manifest: { version: INSTRUMENTER_VERSION, hasStart, mutableGlobals, snapshotSafe, chargePoints },
  };
}

/**
 * Reference types, beyond the `funcref` tables of WebAssembly 1.0, are outside the feature set
 * (docs/ABI.md §2): no `externref` table, and no reference-typed parameter, result, local or global.
 * The engine would accept them; refusing them here keeps the feature set one list, checked once.
 */
function checkTypes(b: Binaryen, mod: BinaryenModule): void {
  const plain = new Set([b.none, b.i32, b.i64, b.f32, b.f64, b.v128]);
  const isPlain = (t: number): boolean => plain.has(t) || b.expandType(t).every((p) => plain.has(p));
  for (let i = 0, n = b._BinaryenGetNumTables(mod.ptr); i < n; i++) {
    if (b._BinaryenTableGetType(b._BinaryenGetTableByIndex(mod.ptr, i)) !== b.funcref) {
      refuse(`Table ${i} is not a funcref table: reference types are outside the enclave feature set (docs/ABI.md).`);
    }
  }
  for (let i = 0, n = mod.getNumFunctions(); i < n; i++) {
    const info = b.getFunctionInfo(mod.getFunctionByIndex(i));
    if (!isPlain(info.params) || !isPlain(info.results) || !info.vars.every(isPlain)) {
      refuse(`Function ${i} has a reference-typed parameter, result or local: reference types are outside the enclave feature set (docs/ABI.md).`);
    }
  }
  for (let i = 0, n = mod.getNumGlobals(); i < n; i++) {
    if (!isPlain(b.getGlobalInfo(mod.getGlobalByIndex(i)).type)) {
      refuse(`Global ${i} is reference-typed: reference types are outside the enclave feature set (docs/ABI.md).`);
    }
  }
}

/**
 * Active data segments must fit the initial memory. The engine would otherwise fail every
 * instantiation; refusing at load gives one clear, stable code instead of a trap per call.
 * Offsets are constants: imported globals, the only other offset source, are refused by validation.
 */
function checkDataSegments(mod: BinaryenModule): void {
  const initialBytes = mod.getMemoryInfo().initial * 65_536;
  for (let i = 0, n = mod.getNumDataSegments(); i < n; i++) {
    const seg = mod.getDataSegmentInfo(mod.getDataSegmentByIndex(i));
    if (seg.passive || seg.offset === null) continue;
    const end = (seg.offset >>> 0) + seg.data.byteLength;
    if (end > initialBytes) {
      refuse(`Data segment ${i} ends at byte ${end}, past the initial memory (${initialBytes} bytes).`);
    }
  }
}

const CUSTOM_SECTION_ID = 0;
const START_SECTION_ID = 8;

function withoutSections(bytes: Uint8Array, drop: (id: number) => boolean): Uint8Array {
  const sections = listSections(bytes).filter((s) => drop(s.id));
  return cut(bytes, sections);
}

function cut(bytes: Uint8Array, drop: readonly { start: number; end: number }[]): Uint8Array {
  if (drop.length === 0) return bytes;
  const out = new Uint8Array(bytes.length - drop.reduce((n, s) => n + (s.end - s.start), 0));
  let o = 0;
  let from = 0;
  for (const s of drop) {
    out.set(bytes.subarray(from, s.start), o);
    o += s.start - from;
    from = s.end;
  }
  out.set(bytes.subarray(from), o);
  return out;
}

function uniqueGlobalName(mod: BinaryenModule, base: string): string {
  let name = base;
  for (let i = 1; mod.getGlobal(name) !== 0; i++) name = `${base}_${i}`;
  return name;
}
