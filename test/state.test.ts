/**
 * State policies (runtime/state.ts): persistent, per-session, per-call. One tenant's memory never
 * reaches another's. Uses the counter module (incr/get/reset) from enclave-modules/.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileEnclave, EnclaveError, type EnclaveModule } from '../host/index.js';
import { InstancePool, type PoolInstance } from '../runtime/state.js';
import { HOSTILE_CORPUS } from './hostile/corpus.js';
import { codeOf } from './helpers/errors.js';
import { runBounded } from './helpers/bounded.js';

const COUNTER = new URL('../enclave-modules/counter/build/counter.wasm', import.meta.url);

let counter: EnclaveModule;
beforeAll(async () => {
  counter = await compileEnclave(readFileSync(COUNTER));
});

describe('persistent (the default)', () => {
  it('keeps memory between calls and refuses a session id', async () => {
    const e = counter.create();
    await e.call('incr', { by: 2 });
    expect(await e.call('incr', { by: 3 })).toBe(5);
    expect(await codeOf(e.call('get', undefined, { session: 'a' }))).toBe('invalid_options');
    expect(await e.call('get')).toBe(5);
  });
});

describe('per-session', () => {
  it('gives each session its own memory: no session sees another one', async () => {
    const e = counter.create({ state: 'per-session' });
    await e.call('incr', { by: 5 }, { session: 'alice' });
    await e.call('incr', { by: 2 }, { session: 'bob' });
    await e.call('incr', { by: 1 }, { session: 'alice' });
    expect(await e.call('get', undefined, { session: 'alice' })).toBe(6);
    expect(await e.call('get', undefined, { session: 'bob' })).toBe(2);
    expect(await e.call('get', undefined, { session: 'carol' })).toBe(0);
  });

  it('tracks requires per session', async () => {
    const e = counter.create({ state: 'per-session' });
    await e.call('incr', undefined, { session: 'a' });
    expect(await e.call('reset', undefined, { session: 'a' })).toBe(null);
    expect(await codeOf(e.call('reset', undefined, { session: 'b' }))).toBe('state');
  });

  it('evicts the least recently used session beyond maxSessions, and endSession drops one now', async () => {
    const e = counter.create({ state: 'per-session', maxSessions: 2 });
    await e.call('incr', { by: 1 }, { session: 'a' });
    await e.call('incr', { by: 2 }, { session: 'b' });
    await e.call('get', undefined, { session: 'a' }); // a is now the most recently used
    await e.call('incr', { by: 3 }, { session: 'c' }); // evicts b
    expect(await e.call('get', undefined, { session: 'a' })).toBe(1);
    expect(await e.call('get', undefined, { session: 'b' })).toBe(0); // fresh: b's memory is gone
    expect(await e.endSession('a')).toBe(true);
    expect(await e.endSession('a')).toBe(false);
    expect(await e.call('get', undefined, { session: 'a' })).toBe(0);
  });

  it('needs a session id on every call and a valid maxSessions', async () => {
    const e = counter.create({ state: 'per-session' });
    expect(await codeOf(e.call('get'))).toBe('invalid_options');
    expect(await codeOf(e.call('get', undefined, { session: '' }))).toBe('invalid_options');
    expect(await codeOf(e.call('get', undefined, { session: 'x'.repeat(300) }))).toBe('invalid_options');
    expect(() => counter.create({ state: 'per-session', maxSessions: 0 })).toThrow(EnclaveError);
    expect(() => counter.create({ maxSessions: 4 })).toThrow(/per-session/);
    expect(() => counter.create({ state: 'shared' as never })).toThrow(EnclaveError);
  });

  it('a session whose instance fails is discarded alone', async () => {
    const entry = HOSTILE_CORPUS.find((c) => c.name === 'infinite-loop')!;
    // On a bounded thread (test/helpers/bounded.ts): an unmetered loop fails the test, not the run.
    const run = await runBounded('state: infinite loop in one session', async (host, bytes) => {
      const mod = await host.compileEnclave(bytes);
      const e = mod.create({ state: 'per-session' });
      const a1 = await e.call('ok', undefined, { session: 'a' });
      let code = 'no error';
      await e.call('attack', undefined, { session: 'b' }).catch((err: unknown) => {
        code = err instanceof host.EnclaveError ? err.code : `not an EnclaveError: ${String(err)}`;
      });
      return { a1, code, a2: await e.call('ok', undefined, { session: 'a' }), b: await e.call('ok', undefined, { session: 'b' }) };
    }, await entry.module());
    expect(run.a1).toBe('fine');
    expect(run.code).toBe('fuel_exhausted');
    expect(run.a2).toBe('fine');
    expect(run.b).toBe('fine');
  });
});

describe('per-call', () => {
  it('serves every call from a pristine instance', async () => {
    const e = counter.create({ state: 'per-call' });
    expect(await e.call('incr', { by: 3 })).toBe(3);
    expect(await e.call('incr', { by: 3 })).toBe(3);
    expect(await e.call('get')).toBe(0);
    // requires can never be met across calls: each call starts over.
    expect(await codeOf(e.call('reset'))).toBe('state');
    expect(await codeOf(e.call('get', undefined, { session: 'a' }))).toBe('invalid_options');
  });

  it('a succeeded op never counts for requires on the next call (regression: done set after the reset)', async () => {
    const e = counter.create({ state: 'per-call' });
    await e.call('incr', { by: 1 });
    expect(await codeOf(e.call('reset'))).toBe('state');
  });

  it('is pristine after a grown memory too (the grown instance is replaced)', async () => {
    const entry = HOSTILE_CORPUS.find((c) => c.name === 'grow-report')!;
    const e = (await compileEnclave(await entry.module())).create({ state: 'per-call' });
    expect(await e.call('grow')).toEqual([3, -1, -1]);
    expect(await e.call('grow')).toEqual([3, -1, -1]);
  });

  it('is pristine for a memory too large to snapshot (5 MiB: a fresh instance per call)', async () => {
    const { watModule } = await import('./helpers/wat.js');
    const wat = `(module
      (memory (export "memory") 80 80)
      (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
      (data (i32.const 0x200) "\\81\\a2ok\\00")
      (func (export "enclave_abi_version") (result i32) (i32.const 1))
      (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
      (func (export "enclave_call") (param i32 i32) (result i32)
        (i32.store8 (i32.const 0x204) (i32.add (i32.load8_u (i32.const 0x204)) (i32.const 1)))
        (i32.store8 (i32.const 0x4fffff) (i32.const 7))
        (i32.const 0x100)))`;
    const contract = { abi: 1, name: 'big', version: '0.0.1', svn: 0, capabilities: [], limits: { memoryPages: 80 }, ops: { n: {} } };
    const mod = await compileEnclave(await watModule(wat, contract));
    const persistent = mod.create();
    expect(await persistent.call('n')).toBe(1);
    expect(await persistent.call('n')).toBe(2);
    const perCall = mod.create({ state: 'per-call' });
    for (let i = 0; i < 3; i++) expect(await perCall.call('n')).toBe(1);
  });

  it('is pristine after a failed call', async () => {
    const e = counter.create({ state: 'per-call' });
    expect(await codeOf(e.call('incr', { by: 0 }))).toBe('invalid_args');
    expect(await e.call('incr', { by: 1 })).toBe(1);
  });

  it('resets the same way with metering off (no snapshot: a fresh instance per call)', async () => {
    const e = counter.create({ state: 'per-call', metering: false });
    expect(await e.call('incr', { by: 4 })).toBe(4);
    expect(await e.call('incr', { by: 4 })).toBe(4);
  });
});

describe('InstancePool.holds (worker settle)', () => {
  it("answers for a session's own instance only, by lookup, and forgets evicted and ended sessions", () => {
    const make = (): PoolInstance => ({ memory: new WebAssembly.Memory({ initial: 0 }), globals: [], done: new Set() });
    const pool = new InstancePool('per-session', 2, make, false);
    const a = pool.acquire('a');
    const b = pool.acquire('b');
    expect(pool.holds(a, 'a')).toBe(true);
    expect(pool.holds(a, 'b')).toBe(false);
    expect(pool.holds(a, undefined)).toBe(false);
    pool.acquire('c'); // evicts a, the least recently used
    expect(pool.holds(a, 'a')).toBe(false);
    pool.endSession('b');
    expect(pool.holds(b, 'b')).toBe(false);
    const single = new InstancePool('per-call', 1, make, false);
    expect(single.holds(single.acquire(undefined), undefined)).toBe(true);
  });
});
