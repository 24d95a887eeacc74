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
 *
 * The files of the instrumenter, one job each (this file is their entry):
 *
 * ```
 *  _fuel-weights.ts   INSTRUMENTER_VERSION, the weights and charge rates, MAX_FUEL, export names, manifest
 *  _fuel-gate.ts      the feature gate: binaryen's features, the expressions walked, no reference types
 *  _fuel-pass.ts      the pass: walk, charges, counter in a local, exports, emitted bytes
 *  _fuel-binaryen.ts  binaryen's missing typings, loaded only when a module must be instrumented
 * ```
 */
import { EnclaveError } from '../core/index.js';
import { loadBinaryen, type BinaryenModule } from './_fuel-binaryen.js';
import { abiFeatures } from './_fuel-gate.js';
import { CUSTOM_SECTION_ID, rewrite, withoutSections } from './_fuel-pass.js';
import type { Instrumented } from './_fuel-weights.js';

export {
  BULK_BYTES_SHIFT,
  BULK_OP_FUEL,
  BULK_ZERO_LENGTH_FUEL,
  FUEL_EXPORT,
  GLOBAL_EXPORT_PREFIX,
  GROW_PAGE_SHIFT,
  IMPORT_BYTES_SHIFT,
  importFuel,
  INSTRUMENTER_VERSION,
  LOAD_FUEL,
  LOCALS_PER_FUEL,
  MAX_COMPILE_WORK,
  MAX_FUEL,
  MEMORY_GROW_FUEL,
  RESERVED_EXPORT_PREFIX,
  START_EXPORT,
  type FuelManifest,
  type Instrumented,
} from './_fuel-weights.js';

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
