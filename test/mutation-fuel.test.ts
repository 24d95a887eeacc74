/**
 * The fuel instrumenter's decisions, exercised in this process (issue 10, mutation testing).
 *
 * Every enclave is instrumented in the instrumentation worker, which runs the compiled dist/, so the
 * fuel tests that load an enclave cannot see a change to runtime/fuel.ts made in the sources under
 * test (a mutant, or an edit before `npm run build:ts`). These call `instrumentFuel` here and run
 * the result on the bare engine: the exact fuel of small functions pins each weight of the charge
 * (runtime/fuel.ts: an expression 1, a load LOAD_FUEL, a bulk operation BULK_OP_FUEL plus its
 * length, a grow MEMORY_GROW_FUEL plus its pages, locals per LOCALS_PER_FUEL), the counter's trip
 * between a local and the global around calls and returns, the trap when a charge fails, the
 * manifest, and the modules the instrumenter must refuse (docs/ABI.md feature set).
 */
import { parse } from '@bytecodealliance/jco';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BULK_OP_FUEL,
  BULK_ZERO_LENGTH_FUEL,
  FUEL_EXPORT,
  GLOBAL_EXPORT_PREFIX,
  GROW_PAGE_SHIFT,
  INSTRUMENTER_VERSION,
  LOAD_FUEL,
  MEMORY_GROW_FUEL,
  START_EXPORT,
  instrumentFuel,
  type FuelManifest,
} from '../runtime/fuel.js';

/** Functions whose fuel is counted by hand below; memory 1 page, at most 3. */
const WAT = `(module
  (type $v (func (result i32)))
  (memory (export "memory") 1 3)
  (table 1 funcref)
  (elem (i32.const 0) $tiny)
  (global $g0 (mut i32) (i32.const 1))
  (global $k i32 (i32.const 2))
  (global $g1 (mut i64) (i64.const 3))
  (func $tiny (export "tiny") (result i32) (i32.const 7))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "locals15") (local i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (nop))
  (func (export "locals32")
    (local i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)
    (local i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)
    (nop))
  (func (export "loop") (param $n i32)
    (block $out (loop $top
      (br_if $out (i32.eqz (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $top))))
  (func (export "fill") (param $len i32) (memory.fill (i32.const 0) (i32.const 0) (local.get $len)))
  (func (export "copy") (param $len i32) (memory.copy (i32.const 0) (i32.const 8) (local.get $len)))
  (func (export "grow") (param $p i32) (result i32) (memory.grow (local.get $p)))
  (func (export "caller") (result i32) (i32.add (call $tiny) (call $tiny)))
  (func (export "indirect") (result i32) (call_indirect (type $v) (i32.const 0)))
  (func $pair (export "pair") (result i32 i32) (i32.const 1) (i32.const 2))
  (func (export "pair_caller") (result i32) (call $pair) (i32.add))
  (func (export "ret") (param i32) (result i32) (if (local.get 0) (then (return (i32.const 5)))) (i32.const 6))
)`;

/**
 * Fuel of each function, counted by the rules of runtime/fuel.ts. A region (function body or loop
 * body) is charged whole on entry, one unit per IR expression:
 * - tiny: `i32.const` 1. load: `i32.load` LOAD_FUEL + `local.get` 1 = 33.
 * - locals15 / locals32: `nop` 1, plus 15/16 = 0 and 32/16 = 2 units for zeroing the locals.
 * - loop(n): the body outside the loop, `block` and `loop`, 2; the loop body 9 (`block`, `br_if`,
 *   `i32.eqz`, `local.get`, `local.set`, `i32.sub`, `local.get`, `i32.const`, `br`) each of its n + 1 entries.
 * - fill/copy(len): the op 1 + BULK_OP_FUEL + three operands = 20, then len >>> 3, or
 *   BULK_ZERO_LENGTH_FUEL for a length of 0.
 * - grow(p): the op 1 + MEMORY_GROW_FUEL + `local.get` 1 = 1002, then p << GROW_PAGE_SHIFT when the
 *   grow will succeed (p <= max - size), nothing when it fails.
 * - caller: `i32.add` and two calls 3, plus what each call of tiny charges (1): 5 (the callee's
 *   charge is read back after each call). indirect: `call_indirect` and its index 2, plus tiny 1.
 * - pair (a two-value result, so its counter stays in the global): its body 3; pair_caller 9.
 * - ret: both paths are charged the whole body (6), and the counter is written back before `return`.
 */
const FUEL = {
  tiny: 1,
  load: 1 + LOAD_FUEL,
  locals15: 1,
  locals32: 3,
  loopBase: 2,
  loopBody: 9,
  bulk: 4 + BULK_OP_FUEL,
  grow: 2 + MEMORY_GROW_FUEL,
  caller: 5,
  indirect: 3,
  pair: 3,
  pairCaller: 9,
  ret: 6,
} as const;

interface Exports {
  readonly [name: string]: unknown;
}

let manifest: FuelManifest;
let bytes: Uint8Array;

beforeAll(async () => {
  ({ bytes, manifest } = await instrumentFuel(await parse(WAT)));
});

/** A fresh instance of the instrumented module and a helper that measures one call's fuel. */
async function instance(): Promise<{ ex: Exports; fuel: WebAssembly.Global; used: (name: string, ...args: number[]) => number }> {
  const { instance: inst } = await WebAssembly.instantiate(bytes);
  const ex = inst.exports as Exports;
  const fuel = ex[FUEL_EXPORT] as WebAssembly.Global;
  const used = (name: string, ...args: number[]): number => {
    fuel.value = 1_000_000;
    (ex[name] as (...a: number[]) => unknown)(...args);
    return 1_000_000 - (fuel.value as number);
  };
  return { ex, fuel, used };
}

/** Calls `name` with exactly `budget` fuel: 'ok' with what is left, or 'trap' with the global. */
function withBudget(ex: Exports, fuel: WebAssembly.Global, budget: number, name: string, ...args: number[]): { outcome: string; left: number } {
  fuel.value = budget;
  try {
    (ex[name] as (...a: number[]) => unknown)(...args);
    return { outcome: 'ok', left: fuel.value as number };
  } catch (err) {
    expect(err).toBeInstanceOf(WebAssembly.RuntimeError);
    return { outcome: 'trap', left: fuel.value as number };
  }
}

describe('fuel weights (exact fuel of small functions, instrumented in this process)', () => {
  it('an expression costs 1, a load LOAD_FUEL, and locals one unit per 16', async () => {
    const { used } = await instance();
    expect(used('tiny')).toBe(FUEL.tiny);
    expect(used('load', 0)).toBe(FUEL.load);
    expect(used('locals15')).toBe(FUEL.locals15);
    expect(used('locals32')).toBe(FUEL.locals32);
  });

  it('a loop body is charged on each entry, the code around it once', async () => {
    const { used } = await instance();
    for (const n of [0, 1, 10]) expect(used('loop', n)).toBe(FUEL.loopBase + (n + 1) * FUEL.loopBody);
  });

  it('a bulk operation pays its static charge plus one unit per 8 bytes, a zero length its own rate', async () => {
    const { used } = await instance();
    expect(used('fill', 0)).toBe(FUEL.bulk + BULK_ZERO_LENGTH_FUEL);
    expect(used('fill', 7)).toBe(FUEL.bulk);
    expect(used('fill', 8)).toBe(FUEL.bulk + 1);
    expect(used('fill', 64)).toBe(FUEL.bulk + 8);
    expect(used('copy', 64)).toBe(FUEL.bulk + 8);
    expect(used('copy', 0)).toBe(FUEL.bulk + BULK_ZERO_LENGTH_FUEL);
  });

  it('memory.grow pays per page it will grow, and only its static charge when it fails', async () => {
    const { used } = await instance();
    expect(used('grow', 0)).toBe(FUEL.grow);
    expect(used('grow', 2)).toBe(FUEL.grow + (2 << GROW_PAGE_SHIFT)); // 1 + 2 = 3 pages, the maximum
    expect(used('grow', 1)).toBe(FUEL.grow); // past the maximum: grows nothing
  });

  it('a grow to exactly the maximum is charged, one page past it is not', async () => {
    const { used } = await instance();
    expect(used('grow', 3)).toBe(FUEL.grow); // 1 + 3 > 3
    expect(used('grow', 2)).toBe(FUEL.grow + (2 << GROW_PAGE_SHIFT));
  });

  it('what a callee charges reaches the caller (direct, indirect and multi-value calls)', async () => {
    const { used } = await instance();
    expect(used('caller')).toBe(FUEL.caller);
    expect(used('indirect')).toBe(FUEL.indirect);
    expect(used('pair')).toBe(FUEL.pair);
    expect(used('pair_caller')).toBe(FUEL.pairCaller);
  });

  it('the counter is written back before a return and at the end of the body', async () => {
    const { used } = await instance();
    expect(used('ret', 1)).toBe(FUEL.ret);
    expect(used('ret', 0)).toBe(FUEL.ret);
  });
});

describe('the budget (a failed charge traps and leaves the global below zero)', () => {
  it('a function runs on exactly its fuel and traps on one unit less', async () => {
    const { ex, fuel } = await instance();
    for (const [name, cost, args] of [
      ['tiny', FUEL.tiny, []],
      ['load', FUEL.load, [0]],
      ['ret', FUEL.ret, [1]],
      ['pair', FUEL.pair, []],
      ['caller', FUEL.caller, []],
    ] as const) {
      expect(withBudget(ex, fuel, cost, name, ...args), name).toEqual({ outcome: 'ok', left: 0 });
      const short = withBudget(ex, fuel, cost - 1, name, ...args);
      expect(short.outcome, name).toBe('trap');
      expect(short.left, name).toBeLessThan(0);
    }
  });

  it('a loop stops when its fuel runs out, and the global shows it', async () => {
    const { ex, fuel } = await instance();
    const cost = FUEL.loopBase + 11 * FUEL.loopBody;
    expect(withBudget(ex, fuel, cost, 'loop', 10)).toEqual({ outcome: 'ok', left: 0 });
    const short = withBudget(ex, fuel, cost - 1, 'loop', 10);
    expect(short.outcome).toBe('trap');
    expect(short.left).toBeLessThan(0);
  });

  it('a bulk operation and a grow are refused before they run when their length charge fails', async () => {
    const { ex, fuel } = await instance();
    const fill = FUEL.bulk + 8;
    expect(withBudget(ex, fuel, fill, 'fill', 64)).toEqual({ outcome: 'ok', left: 0 });
    expect(withBudget(ex, fuel, fill - 1, 'fill', 64).outcome).toBe('trap');
    const grow = FUEL.grow + (1 << GROW_PAGE_SHIFT);
    expect(withBudget(ex, fuel, grow - 1, 'grow', 1).outcome).toBe('trap');
    expect((ex.memory as WebAssembly.Memory).buffer.byteLength).toBe(65_536); // the grow never ran
    expect(withBudget(ex, fuel, grow, 'grow', 1)).toEqual({ outcome: 'ok', left: 0 });
    expect((ex.memory as WebAssembly.Memory).buffer.byteLength).toBe(2 * 65_536);
  });
});

describe('the manifest and the exports the host drives', () => {
  it('counts one charge point per function and loop, and exports the mutable globals in order', async () => {
    expect(manifest).toEqual({ version: INSTRUMENTER_VERSION, hasStart: false, mutableGlobals: 2, snapshotSafe: true, chargePoints: 14 });
    const { ex } = await instance();
    expect((ex[`${GLOBAL_EXPORT_PREFIX}0`] as WebAssembly.Global).value).toBe(1);
    expect((ex[`${GLOBAL_EXPORT_PREFIX}1`] as WebAssembly.Global).value).toBe(3n);
    expect(ex[`${GLOBAL_EXPORT_PREFIX}2`]).toBeUndefined();
  });

  it('defers a start function to an export, so it runs metered', async () => {
    const wat = `(module (memory 1) (global $s (export "s") (mut i32) (i32.const 0))
      (func $init (global.set $s (i32.const 9))) (start $init))`;
    const out = await instrumentFuel(await parse(wat));
    expect(out.manifest.hasStart).toBe(true);
    const { instance: inst } = await WebAssembly.instantiate(out.bytes);
    const ex = inst.exports as Exports;
    expect((ex.s as WebAssembly.Global).value).toBe(0); // not run at instantiation
    (ex[FUEL_EXPORT] as WebAssembly.Global).value = 100;
    (ex[START_EXPORT] as () => void)();
    expect((ex.s as WebAssembly.Global).value).toBe(9);
    expect((ex[FUEL_EXPORT] as WebAssembly.Global).value).toBeLessThan(100);
  });

  it('a module with data.drop, memory.init or a v128 global cannot be restored from a snapshot', async () => {
    const drop = `(module (memory 1) (data $d "ab") (func (export "f") (data.drop $d)))`;
    const init = `(module (memory 1) (data $d "ab") (func (export "f") (memory.init $d (i32.const 0) (i32.const 0) (i32.const 2))))`;
    const v128 = `(module (memory 1) (global (mut v128) (v128.const i64x2 0 0)) (func (export "f")))`;
    const plain = `(module (memory 1) (data "ab") (global (mut i32) (i32.const 0)) (func (export "f")))`;
    expect((await instrumentFuel(await parse(drop))).manifest.snapshotSafe).toBe(false);
    expect((await instrumentFuel(await parse(init))).manifest.snapshotSafe).toBe(false);
    const withV128 = (await instrumentFuel(await parse(v128))).manifest;
    expect(withV128.snapshotSafe).toBe(false);
    expect(withV128.mutableGlobals).toBe(0); // JavaScript cannot read a v128 global
    expect((await instrumentFuel(await parse(plain))).manifest).toMatchObject({ snapshotSafe: true, mutableGlobals: 1 });
  });

  it('memory.init is charged by its length like the other bulk operations', async () => {
    const wat = `(module (memory 1) (data $d "abcdefghijklmnop")
      (func (export "f") (param $n i32) (memory.init $d (i32.const 0) (i32.const 0) (local.get $n))))`;
    const out = await instrumentFuel(await parse(wat));
    const { instance: inst } = await WebAssembly.instantiate(out.bytes);
    const ex = inst.exports as Exports;
    const fuel = ex[FUEL_EXPORT] as WebAssembly.Global;
    fuel.value = 1000;
    (ex.f as (n: number) => void)(16);
    expect(1000 - (fuel.value as number)).toBe(FUEL.bulk + 2);
  });
});

describe('modules the instrumenter refuses (invalid_module, never an unmetered module)', () => {
  async function refusal(wat: string): Promise<unknown> {
    try {
      await instrumentFuel(await parse(wat));
      return 'accepted';
    } catch (err) {
      return (err as { code?: unknown }).code;
    }
  }

  it('tail calls', async () => {
    expect(await refusal(`(module (func $f (return_call $f)))`)).toBe('invalid_module');
    expect(await refusal(`(module (type $t (func)) (table 1 funcref) (func (return_call_indirect (type $t) (i32.const 0))))`)).toBe('invalid_module');
  });

  it('reference types beyond funcref tables', async () => {
    expect(await refusal(`(module (table 1 externref))`)).toBe('invalid_module');
    expect(await refusal(`(module (func (param externref)))`)).toBe('invalid_module');
    expect(await refusal(`(module (func (result externref) (ref.null extern)))`)).toBe('invalid_module');
    expect(await refusal(`(module (func (local externref)))`)).toBe('invalid_module');
    expect(await refusal(`(module (global externref (ref.null extern)))`)).toBe('invalid_module');
    expect(await refusal(`(module (memory 1) (table 1 funcref) (func (param i32) (result i32) (local.get 0)))`)).toBe('accepted');
  });

  it('an active data segment past the initial memory, to the byte', async () => {
    expect(await refusal(`(module (memory 1) (data (i32.const 65535) "ab"))`)).toBe('invalid_module');
    expect(await refusal(`(module (memory 1) (data (i32.const 65534) "ab"))`)).toBe('accepted');
    expect(await refusal(`(module (memory 1) (data "passive data is not placed"))`)).toBe('accepted');
  });

  it('bytes that are not a module', async () => {
    expect(await refusal(`(module (memory 1) (func))`)).toBe('accepted');
    await expect(instrumentFuel(new Uint8Array([0, 0x61, 0x73, 0x6d, 9, 9, 9, 9]))).rejects.toMatchObject({ code: 'invalid_module' });
  });
});
