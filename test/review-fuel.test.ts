/**
 * Review of fuel metering (issue 9, finding 2): patterns that ran much longer per unit of fuel than
 * the bound of docs/LIMITS.md ("Fuel"). Assertions are on fuel, never on time (bench/fuel-bound.ts
 * measures the time); in-process and in a worker alike (the rewrite is the same, the fuel too).
 */
import { describe, expect, it } from 'vitest';
import { loadEnclave } from '../host/index.js';
import { watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

type Mode = { isolation?: 'worker' };
const MODES: [string, Mode][] = [
  ['in-process', {}],
  ['worker', { isolation: 'worker' }],
];

function contract(ops: string[], fuel: number, memoryPages = 256): object {
  return {
    abi: 1,
    name: 'review-fuel',
    version: '0.0.1',
    svn: 0,
    capabilities: [],
    limits: { requestBytes: 256, replyBytes: 256, depth: 8, memoryPages, fuel },
    ops: Object.fromEntries(ops.map((op) => [op, {}])),
  };
}

/** Dispatch on the first letter of the op name (request `{op}`: the name starts at byte 5). */
function dispatcher(cases: Record<string, string>, memory: string): string {
  const entries = Object.entries(cases);
  const funcs = entries.map(([op, body]) => `(func $op_${op} (local $i i32) (local $p i32) ${body})`).join('\n  ');
  const arms = entries.map(([op]) => `(if (i32.eq (local.get $c) (i32.const ${op.charCodeAt(0)})) (then (call $op_${op})))`).join('\n    ');
  return `(module
  ${memory}
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  ${funcs}
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $c i32)
    (local.set $c (i32.load8_u offset=5 (local.get $p)))
    ${arms}
    (i32.const 0x100)))`;
}

/**
 * The first write to a page the engine has not yet touched takes a page fault (the kernel zeroes
 * 4 KiB): 25 to 70 µs per 64 KiB page measured here for one store per 4 KiB, the work of thousands
 * of fuel units at the bound's rate. A loop storing once per 4 KiB over memory it just grew costs
 * 12 fuel a store, so grown pages must pay for that first touch when they are grown. This floor is
 * far below the charge and far above what a page cost before (nothing beyond the grow's static 1 000).
 */
const FUEL_PER_GROWN_PAGE_AT_LEAST = 1_024;
const GROW_PAGES = 200;

const touch = `(local.set $p (i32.const 0x10000))
    (loop $l
      (i32.store (local.get $p) (local.get $p))
      (local.set $p (i32.add (local.get $p) (i32.const 4096)))
      (br_if $l (i32.lt_u (local.get $p) (i32.mul (memory.size) (i32.const 65536)))))`;

const GROW_WAT = dispatcher(
  {
    // Grow by GROW_PAGES, then store once in every new 4 KiB page.
    grow: `(drop (memory.grow (i32.const ${GROW_PAGES}))) ${touch}`,
    // Past the maximum: grows nothing, so there is nothing to pay for but the instruction.
    huge: '(drop (memory.grow (i32.const 0x7fffffff)))',
    zero: '(drop (memory.grow (i32.const 0)))',
    ok: 'nop',
  },
  '(memory (export "memory") 1 256)',
);

describe.each(MODES)('review: fuel of memory.grow (%s)', (_name, mode) => {
  it('memory.grow pays per page it grows: first touches of grown memory are within the fuel bound', async () => {
    const e = await loadEnclave(await watModule(GROW_WAT, contract(['grow', 'huge', 'zero', 'ok'], 100_000_000)), {
      ...mode,
      policy: { fuel: 100_000_000 },
    });
    try {
      const stats = { fuel: 0 };
      await e.call('zero', undefined, { stats });
      const base = stats.fuel;
      expect(await e.call('grow', undefined, { stats })).toBe('fine');
      expect(stats.fuel - base).toBeGreaterThanOrEqual(GROW_PAGES * FUEL_PER_GROWN_PAGE_AT_LEAST);
      // A grow that fails (past the maximum) grows no page and pays none.
      expect(await e.call('huge', undefined, { stats })).toBe('fine');
      expect(stats.fuel - base).toBeLessThan(FUEL_PER_GROWN_PAGE_AT_LEAST);
    } finally {
      await e.close();
    }
  });

  it('a grow the budget cannot pay for ends in fuel_exhausted before a page is touched, and the host keeps serving', async () => {
    const fuel = 50_000;
    const e = await loadEnclave(await watModule(GROW_WAT, contract(['grow', 'huge', 'zero', 'ok'], fuel)), mode);
    try {
      const stats = { fuel: 0 };
      expect(await codeOf(e.call('grow', undefined, { stats }))).toBe('fuel_exhausted');
      expect(stats.fuel).toBe(fuel);
      expect(await e.call('ok')).toBe('fine');
    } finally {
      await e.close();
    }
  });
});

/** A function of `locals` i32 locals whose body is `count` copies of `stmt`, called by op `big`. */
function manyLocals(locals: number, count: number, stmt: string): string {
  return dispatcher(
    { big: `(call $big (i32.const 0))`, ok: 'nop' },
    `(memory (export "memory") 1 1)
  (func $big (param i32) ${'(local i32)'.repeat(locals)} (block $b ${stmt.repeat(count)}))`,
  );
}

describe.each(MODES)('review: compile work of a metered module (%s)', (_name, mode) => {
  // V8 compiles each function on its first call, on the calling thread, handling every local at
  // every loop: this 60 KB module held the host thread 16 s on its first call, for 40 000 fuel.
  it('a function with thousands of locals across thousands of loops is refused at load: its first call would compile for seconds', async () => {
    const bytes = await watModule(manyLocals(9_000, 20_000, '(loop)'), contract(['big', 'ok'], 10_000_000, 1));
    expect(await codeOf(loadEnclave(bytes, mode))).toBe('invalid_module');
  });

  it('a function with thousands of locals and 100 000 calls is refused at load (about 1 s of compiling)', async () => {
    const bytes = await watModule(manyLocals(9_000, 100_000, '(call $op_ok)'), contract(['big', 'ok'], 10_000_000, 1));
    expect(await codeOf(loadEnclave(bytes, mode))).toBe('invalid_module');
  });

  it('the same function with a hundred loops loads and runs', async () => {
    const e = await loadEnclave(await watModule(manyLocals(9_000, 100, '(loop)'), contract(['big', 'ok'], 10_000_000, 1)), mode);
    try {
      expect(await e.call('big')).toBe('fine');
    } finally {
      await e.close();
    }
  });
});

/**
 * The counter lives in a local within a function and reaches the global at calls and returns, so
 * a trap loses what the function spent since: a loop that burns most of the budget and then
 * divides by zero reported almost nothing. A trapped call is charged its whole budget.
 */
const TRAP_WAT = dispatcher(
  {
    burn: `(local.set $i (i32.const 100000))
    (loop $l (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br_if $l (local.get $i)))
    (drop (i32.div_u (i32.const 1) (local.get $i)))`,
    ok: 'nop',
  },
  '(memory (export "memory") 1 1)',
);

describe.each(MODES)('review: fuel of a call that traps (%s)', (_name, mode) => {
  it('a call that burns fuel in a loop and then traps is charged its whole budget, not what was last written back', async () => {
    const budget = 5_000_000;
    const e = await loadEnclave(await watModule(TRAP_WAT, contract(['burn', 'ok'], budget, 1)), mode);
    try {
      const stats = { fuel: 0 };
      expect(await codeOf(e.call('burn', undefined, { stats }))).toBe('trap');
      expect(stats.fuel).toBe(budget);
      // A call that returns is charged what it used, far less than the budget.
      await e.call('ok', undefined, { stats });
      expect(stats.fuel).toBeGreaterThan(0);
      expect(stats.fuel).toBeLessThan(budget / 100);
    } finally {
      await e.close();
    }
  });
});
