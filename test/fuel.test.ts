/**
 * Fuel metering (runtime/fuel.ts, runtime/_fuel-cache.ts): determinism, budgets, the start budget,
 * metering off, the instrumenter failing closed, and the cache of instrumented bytes.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileEnclave, loadEnclave, type Enclave } from '../host/index.js';
import { clearFuelMemoryCache, instrumentCached, readEntry } from '../runtime/_fuel-cache.js';
import { FUEL_EXPORT, INSTRUMENTER_VERSION, instrumentFuel } from '../runtime/fuel.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';
import { runBounded } from './helpers/bounded.js';

const FIXTURES = new URL('../bench/fixtures/', import.meta.url);
export async function sumModule(fuel?: number): Promise<Uint8Array> {
  const contract = JSON.parse(readFileSync(new URL('sum.contract.json', FIXTURES), 'utf8'));
  if (fuel !== undefined) contract.limits.fuel = fuel;
  return watModule(readFileSync(new URL('sum.wat', FIXTURES), 'utf8'), contract);
}

const expectedSum = (n: number) => ((n * (n - 1)) / 2) % 2 ** 32 || 0;

describe('fuel: charging and determinism', () => {
  let sum: Enclave;
  beforeAll(async () => {
    sum = await loadEnclave(await sumModule());
  });

  it('computes the same results metered', async () => {
    for (const n of [0, 1, 10, 1000, 100_000]) expect(await sum.call('sum', n)).toBe(expectedSum(n));
  });

  it('the same call on the same state uses the same fuel, every time', async () => {
    const used: number[] = [];
    for (let i = 0; i < 5; i++) {
      const stats = { fuel: 0 };
      await sum.call('sum', 5000, { stats });
      used.push(stats.fuel);
    }
    expect(new Set(used).size).toBe(1);
    expect(used[0]).toBeGreaterThan(5000);
    // Another enclave from other bytes-identical module: same fuel.
    const other = await loadEnclave(await sumModule());
    const stats = { fuel: 0 };
    await other.call('sum', 5000, { stats });
    expect(stats.fuel).toBe(used[0]);
  });

  it('charges each loop iteration the same: fuel is affine in the iteration count', async () => {
    const fuelFor = async (n: number) => {
      const stats = { fuel: 0 };
      await sum.call('sum', n, { stats });
      return stats.fuel;
    };
    const [a, b, c] = [await fuelFor(1000), await fuelFor(2000), await fuelFor(3000)];
    expect(b - a).toBe(c - b);
    expect(b - a).toBeGreaterThanOrEqual(1000); // at least one unit per iteration
  });

  it("a call refused before entering reports 0 fuel and leaves the next call's fuel unchanged", async () => {
    const before = { fuel: 0 };
    await sum.call('sum', 10, { stats: before });
    const refused = { fuel: -1 };
    expect(await codeOf(sum.call('sum', -1, { stats: refused }))).toBe('invalid_args');
    expect(refused.fuel).toBe(0);
    const after = { fuel: 0 };
    await sum.call('sum', 10, { stats: after });
    expect(after.fuel).toBe(before.fuel);
    expect(after.fuel).toBeGreaterThan(0);
  });
});

describe('fuel: budgets', () => {
  it('ends an infinite loop with fuel_exhausted, reports the whole budget used, and the next call succeeds', async () => {
    // On a bounded thread (test/helpers/bounded.ts): were the loop not metered, it would block the
    // thread it runs on, and this test would hang the run instead of failing.
    const run = await runBounded('fuel: infinite loop', async (host, bytes) => {
      const e = await host.loadEnclave(bytes);
      let code = 'no error';
      const stats = { fuel: 0 };
      await e.call('loop', undefined, { stats }).catch((err: unknown) => {
        code = err instanceof host.EnclaveError ? err.code : `not an EnclaveError: ${String(err)}`;
      });
      return { code, fuel: stats.fuel, next: await e.call('sum', 10) };
    }, await sumModule(100_000));
    expect(run.code).toBe('fuel_exhausted');
    expect(run.fuel).toBe(100_000);
    expect(run.next).toBe(45);
  });

  it('a call just under its budget succeeds and one just over fails, at the same fuel', async () => {
    const probe = await loadEnclave(await sumModule());
    const stats = { fuel: 0 };
    await probe.call('sum', 1000, { stats });
    const need = stats.fuel;
    const exact = await loadEnclave(await sumModule(), { policy: { fuel: need } });
    expect(await exact.call('sum', 1000)).toBe(expectedSum(1000));
    const short = await loadEnclave(await sumModule(), { policy: { fuel: need - 1 } });
    expect(await codeOf(short.call('sum', 1000))).toBe('fuel_exhausted');
  });

  it('the host policy caps the contract budget, never raises it', async () => {
    const e = await loadEnclave(await sumModule(1000), { policy: { fuel: 10_000_000 } });
    expect(e.limits.fuel).toBe(1000);
    expect(await codeOf(e.call('sum', 10_000))).toBe('fuel_exhausted');
    const capped = await loadEnclave(await sumModule(10_000_000), { policy: { fuel: 1000 } });
    expect(capped.limits.fuel).toBe(1000);
    expect(await codeOf(capped.call('sum', 10_000))).toBe('fuel_exhausted');
  });

  it('refuses fuel policies that are not positive integers', async () => {
    const bytes = await sumModule();
    for (const fuel of [0, -1, 1.5, Number.POSITIVE_INFINITY, Number.NaN]) {
      expect(await codeOf(loadEnclave(bytes, { policy: { fuel } }))).toBe('invalid_options');
    }
  });

  it('metering: false runs the module as built: no budget, { stats } fuel 0', async () => {
    const e = await loadEnclave(await sumModule(1000), { metering: false });
    const stats = { fuel: -1 };
    expect(await e.call('sum', 100_000, { stats })).toBe(expectedSum(100_000));
    expect(stats.fuel).toBe(0);
    expect(await codeOf(loadEnclave(await sumModule(), { metering: 'no' as never }))).toBe('invalid_options');
  });

  it('a start function runs under the start budget: bounded work passes, endless work fails the load', async () => {
    const work = (n: number) =>
      minimalWat({
        body: `(global $g (mut i32) (i32.const 0))
          (func $s (local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const ${n})))) (global.set $g (local.get $i)))
          (start $s)`,
      });
    const contract = { ...MINIMAL_CONTRACT, limits: { ...MINIMAL_CONTRACT.limits, fuel: 100_000 } };
    const ok = await loadEnclave(await watModule(work(100), contract));
    expect(await ok.call('ping')).toBe(true);
    expect(await codeOf(loadEnclave(await watModule(work(1_000_000), contract)))).toBe('fuel_exhausted');
  });

  it('still maps unbounded recursion to stack_overflow after instrumentation', async () => {
    const bytes = await watModule(
      minimalWat({
        exports: `(func (export "enclave_abi_version") (result i32) (i32.const 1))
          (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
          (func $r (param i32) (result i32) (i32.add (call $r (local.get 0)) (i32.const 1)))
          (func (export "enclave_call") (param i32 i32) (result i32) (call $r (i32.const 0)))`,
      }),
      MINIMAL_CONTRACT,
    );
    const e = await loadEnclave(bytes);
    expect(await codeOf(e.call('ping'))).toBe('stack_overflow');
  });
});

describe('fuel: the instrumented module', () => {
  it('adds the counter as an export the guest never had and removes the start section', async () => {
    const bytes = await watModule(minimalWat({ body: '(func $s) (start $s)' }), MINIMAL_CONTRACT);
    const { bytes: out, manifest } = await instrumentFuel(bytes);
    const names = WebAssembly.Module.exports(new WebAssembly.Module(out)).map((e) => e.name);
    expect(names).toContain(FUEL_EXPORT);
    expect(names).toContain('__enclave_start');
    expect(manifest).toMatchObject({ version: INSTRUMENTER_VERSION, hasStart: true, snapshotSafe: true });
    // The original measurement is unchanged by compiling.
    const mod = await compileEnclave(bytes);
    expect(mod.measurement).toBe((await compileEnclave(bytes)).measurement);
  });

  it('refuses a module that exports a name reserved for the runtime', async () => {
    const bytes = await watModule(minimalWat({ body: '(global (export "__enclave_fuel") (mut f64) (f64.const 1e18))' }), MINIMAL_CONTRACT);
    expect(await codeOf(loadEnclave(bytes))).toBe('invalid_module');
  });

  it('fails closed on instructions outside the ABI feature set instead of leaving them unmetered', async () => {
    // reference types (table.get): not in docs/ABI.md's feature list.
    const bytes = await watModule(
      minimalWat({ body: '(table 1 funcref) (func (export "x") (result funcref) (table.get 0 (i32.const 0)))' }),
      MINIMAL_CONTRACT,
    );
    expect(await codeOf(loadEnclave(bytes))).toBe('invalid_module');
  });
});

describe('fuel: the cache of instrumented bytes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'enclave-fuel-cache-'));
  const previous = process.env.ENCLAVE_CACHE_DIR;
  beforeAll(() => {
    process.env.ENCLAVE_CACHE_DIR = dir;
  });
  afterAll(() => {
    if (previous === undefined) delete process.env.ENCLAVE_CACHE_DIR;
    else process.env.ENCLAVE_CACHE_DIR = previous;
    rmSync(dir, { recursive: true, force: true });
  });

  const entries = () => readdirSync(dir).filter((n) => n.endsWith('.bin'));
  const entryFile = (bytes: Uint8Array) => join(dir, `${createHash('sha256').update(bytes).digest('hex')}-fuel-v${INSTRUMENTER_VERSION}.bin`);

  it('writes one entry on a cold compile and serves a warm one from it, without binaryen', async () => {
    clearFuelMemoryCache();
    const bytes = await sumModule(123_457);
    await compileEnclave(bytes);
    expect(entries()).toHaveLength(1);
    const file = entryFile(bytes);
    const before = readFileSync(file);
    clearFuelMemoryCache();
    const e = (await compileEnclave(bytes)).create();
    expect(await e.call('sum', 100)).toBe(4950);
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('ignores and rebuilds a corrupt entry: a flipped byte, a truncation, garbage', async () => {
    clearFuelMemoryCache();
    const bytes = await sumModule(123_458);
    const probe = await loadEnclave(bytes);
    const probeStats = { fuel: 0 };
    await probe.call('sum', 1000, { stats: probeStats });
    const fuel = probeStats.fuel;
    const file = entryFile(bytes);
    const good = readFileSync(file);
    const corruptions = [
      (() => {
        const b = Buffer.from(good);
        b[b.length - 10]! ^= 0xff; // inside the wasm bytes
        return b;
      })(),
      good.subarray(0, good.length - 100),
      Buffer.from('not a cache entry at all'),
    ];
    for (const bad of corruptions) {
      writeFileSync(file, bad);
      clearFuelMemoryCache();
      const e = await loadEnclave(bytes);
      const stats = { fuel: 0 };
      await e.call('sum', 1000, { stats });
      expect(stats.fuel).toBe(fuel);
      expect(readFileSync(file).equals(good)).toBe(true); // rebuilt
    }
  });

  it('never serves an entry made from other bytes, even with a valid hash', async () => {
    clearFuelMemoryCache();
    const a = await sumModule(111_111);
    const b = await sumModule(222_222);
    await compileEnclave(a);
    const fileA = entryFile(a);
    // The entry of `a`, placed under `b`'s key: its stored measurement does not match.
    const keyB = createHash('sha256').update(b).digest('hex');
    expect(await readEntry(fileA, keyB)).toBeUndefined();
    const { bytes: direct } = await instrumentFuel(b);
    const cached = await instrumentCached(b, keyB, dir);
    expect(Buffer.from(cached.bytes).equals(Buffer.from(direct))).toBe(true);
  });

  it('keeps working when the cache directory cannot be written', async () => {
    clearFuelMemoryCache();
    const bytes = await sumModule(333_333);
    const cached = await instrumentCached(bytes, 'f'.repeat(64), '/proc/enclave-no-such-dir');
    expect(cached.bytes.length).toBeGreaterThan(0);
  });
});

describe('fuel: the counter kept in a local between calls', () => {
  // Each op runs 1000 outer iterations of a call whose operand (or call_indirect target, or the
  // callee's return value) runs a loop of 100 iterations first. The counter is written back to the
  // global only after the operands: a write-back before them would hand the callee fuel the operand
  // loop already spent, and the call would end with far less used (or never run out).
  const inner = `(block (result i32) (local.set $j (i32.const 0))
      (loop $in (local.set $j (i32.add (local.get $j) (i32.const 1))) (br_if $in (i32.lt_u (local.get $j) (i32.const 100))))
      (i32.const 0))`;
  const outer = (call: string) => `(local.set $i (i32.const 0))
      (loop $out ${call} (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $out (i32.lt_u (local.get $i) (i32.const 1000))))`;
  const wat = minimalWat({
    exports: `(func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (type $t (func (param i32)))
    (table 1 1 funcref) (elem (i32.const 0) $sink)
    (func $sink (param i32))
    (func $zero (result i32) (local $j i32) (return ${inner}))
    (func $operand (local $i i32) (local $j i32) ${outer(`(call $sink ${inner})`)})
    (func $target (local $i i32) (local $j i32) ${outer(`(call_indirect (type $t) (i32.const 0) ${inner})`)})
    (func $returned (local $i i32) (local $j i32) ${outer('(call $sink (call $zero))')})
    (func $bare (local $j i32) (drop ${inner}) (return))
    (func $void (local $i i32) (local $j i32) ${outer('(call $bare)')})
    (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
      (local $c i32) (local.set $c (i32.load8_u offset=5 (local.get $p)))
      (if (i32.eq (local.get $c) (i32.const 0x6f)) (then (call $operand)))
      (if (i32.eq (local.get $c) (i32.const 0x74)) (then (call $target)))
      (if (i32.eq (local.get $c) (i32.const 0x72)) (then (call $returned)))
      (if (i32.eq (local.get $c) (i32.const 0x76)) (then (call $void)))
      (i32.const 0x100))`,
  });
  const contract = { ...MINIMAL_CONTRACT, ops: { operand: {}, target: {}, returned: {}, void: {}, ping: {} } };

  // operand: in a call's argument; target: in call_indirect's table index; returned: in a
  // `return`'s value; void: before a bare `return`.
  it.each(['operand', 'target', 'returned', 'void'])('a loop whose fuel crosses a call (%s) is paid for, every time', async (op) => {
    const e = await loadEnclave(await watModule(wat, contract), { policy: { fuel: 10_000_000 } });
    const stats = { fuel: 0 };
    expect(await e.call(op, undefined, { stats })).toBe(true);
    expect(stats.fuel).toBeGreaterThanOrEqual(1000 * 100);
    // And under a budget that covers a tenth of it, the call runs out.
    const short = await loadEnclave(await watModule(wat, contract), { policy: { fuel: 10_000 } });
    const shortStats = { fuel: 0 };
    expect(await codeOf(short.call(op, undefined, { stats: shortStats }))).toBe('fuel_exhausted');
    expect(shortStats.fuel).toBe(10_000);
  });
});
