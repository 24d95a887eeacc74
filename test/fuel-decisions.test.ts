/**
 * Regression tests for the fuel charged for a call (issue 10, mutation survivors): the exact fuel
 * of tiny known functions (a charge off by one anywhere changes it), and the surcharge each
 * capability import adds on the host (a surcharge looked up under the wrong name is 0). Each test
 * names the bug it guards, and fails on that bug (checked by applying it by hand).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadEnclave, type Enclave, type WorkerEnclave } from '../host/index.js';
import { watModule } from './helpers/wat.js';

/**
 * `enclave_alloc` is one expression (`i32.const`), so it costs 1. `enclave_call` dispatches on the
 * op's first letter (offset 5 of `{op: ...}`); each branch body below is the only work that differs.
 * Pairs with the same expression count: `now` / `bare_now` (a call of `now` against an `i64.const`),
 * `random` / `plain_random` (a call of `random` for 64 bytes against an `i32.const` with the same operands).
 */
const FUEL_WAT = `(module
  (type $rt (func (param i32 i32) (result i32)))
  (type $nt (func (result i64)))
  (import "enclave" "random" (func $random (type $rt)))
  (import "enclave" "now" (func $now (type $nt)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  (func $three (result i32) (i32.add (i32.const 1) (i32.const 2)))
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $c i32)
    (local.set $c (i32.load8_u offset=5 (local.get $p)))
    (if (i32.eq (local.get $c) (i32.const 0x74)) (then (drop (call $three))))
    (if (i32.eq (local.get $c) (i32.const 0x6e)) (then (drop (call $now))))
    (if (i32.eq (local.get $c) (i32.const 0x62)) (then (drop (i64.const 0))))
    (if (i32.eq (local.get $c) (i32.const 0x72)) (then (drop (call $random (i32.const 0x400) (i32.const 64)))))
    (if (i32.eq (local.get $c) (i32.const 0x70)) (then (drop (i32.add (i32.const 0x400) (i32.const 64)))))
    (i32.const 0x100)))`;

// Op names: their first letter selects the branch (t, n, b, r, p; anything else none).
const OPS = { ok: {}, three: {}, now: {}, bare_now: {}, random: {}, plain_random: {} };
const CONTRACT = {
  abi: 1,
  name: 'fuel-decisions',
  version: '0.0.1',
  svn: 0,
  capabilities: ['random', 'clock'],
  limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1, fuel: 1_000_000 },
  ops: OPS,
};

/**
 * Fuel of `ok` (runtime/fuel.ts: each IR expression 1, a load LOAD_FUEL = 32, a region charged
 * whole when entered): `enclave_alloc` 1 (its `i32.const`), plus `enclave_call` 70: its body block
 * 1; the `local.set` of the op letter 34 (`local.set`, the load 32, `local.get`); five `if`s of 4
 * (`if`, `i32.eq`, `local.get`, `i32.const`) = 20, with their arms counted though not taken,
 * 2 + 2 + 2 + 4 + 4 = 14; the final `i32.const` 1.
 */
const OK_FUEL = 71;
/** `$three`: `i32.add` and two `i32.const`, 3; the call site `drop(call)` 0 (its arm is counted in OK_FUEL). */
const THREE_FUEL = 3;
/** What `now` and `random` of 64 bytes charge on the host (runtime/fuel.ts IMPORT_FUEL, 4 bytes a unit). */
const NOW_FUEL = 1_000;
const RANDOM_64_FUEL = 4_000 + 64 / 4;

const MODES = [
  ['in-process', {}],
  ['worker', { isolation: 'worker', deadlineMs: 10_000 }],
] as const;

const open: (Enclave | WorkerEnclave)[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

describe.each(MODES)('fuel of a call is exact (%s)', (_mode, options) => {
  async function load(): Promise<Enclave | WorkerEnclave> {
    const e = await loadEnclave(await watModule(FUEL_WAT, CONTRACT), { ...options, capabilities: ['random', 'clock'] } as never);
    open.push(e);
    return e;
  }
  async function fuelOf(e: Enclave | WorkerEnclave, op: string): Promise<number> {
    const stats = { fuel: -1 };
    expect(await e.call(op, undefined, { stats })).toBe('fine');
    return stats.fuel;
  }

  it('a tiny function costs exactly its expressions (a charge off by one changes it)', async () => {
    const e = await load();
    expect(await fuelOf(e, 'ok')).toBe(OK_FUEL);
    expect(await fuelOf(e, 'three')).toBe(OK_FUEL + THREE_FUEL);
    // The same call, the same fuel.
    expect(await fuelOf(e, 'ok')).toBe(OK_FUEL);
  });

  it('a call of the now import adds its surcharge (never 0: the surcharge is keyed by the import name)', async () => {
    const e = await load();
    const without = await fuelOf(e, 'bare_now');
    expect(await fuelOf(e, 'now')).toBe(without + NOW_FUEL);
  });

  it('a call of the random import adds its surcharge and one unit per 4 bytes', async () => {
    const e = await load();
    const without = await fuelOf(e, 'plain_random');
    expect(await fuelOf(e, 'random')).toBe(without + RANDOM_64_FUEL);
  });
});
