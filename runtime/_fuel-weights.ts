/**
 * What fuel costs and what the instrumenter leaves behind (docs/LIMITS.md, "Fuel"): the version of
 * the rewrite, the weights and charge rates of runtime/_fuel-pass.ts, the charge of a capability
 * import, the budget's bound, the export names the host drives, and the manifest.
 */

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
