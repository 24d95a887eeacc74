// The supervisor's instance pool (host/supervisor/pool.ts): members from one compiled module,
// started in parallel, all-or-nothing; acquire/release/idle accounting; affinity; replacement of a
// member whose handle was closed behind the pool's back; drain and close. Worker mode runs the
// compiled worker from dist/ (the global setup's tsc).

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileEnclave, DIAGNOSTICS_CHANNELS, EnclaveError, type EnclaveModule, type WorkerExitMessage } from '../host/index.js';
import { affinityIndex, InstancePool, MAX_POOL_SIZE, type PoolMember, type PoolOptions } from '../host/supervisor/pool.js';
import { codeOf, syncCodeOf } from './helpers/errors.js';
import { minimalWat, MINIMAL_CONTRACT, watModule } from './helpers/wat.js';

const ECHO = new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url);
const CRYPTO = new URL('../enclave-modules/crypto/build/crypto.wasm', import.meta.url);

/**
 * `enclave_abi_version` (called once at every start) traps when the clock's milliseconds are a
 * multiple of 4: a member's start fails by chance, about one in four (no capability may touch memory
 * before the version check, so the clock is the one source of chance there).
 */
const COIN_WAT = minimalWat({
  imports: '(import "enclave" "now" (func $now (result i64)))',
  exports: `(func (export "enclave_abi_version") (result i32)
      (if (i64.eqz (i64.rem_u (call $now) (i64.const 4))) (then unreachable))
      (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (func (export "enclave_call") (param i32 i32) (result i32) (i32.const 0x100))`,
});

const worker = (size: number, more: Partial<PoolOptions> = {}): PoolOptions => ({ size, isolation: 'worker', enclave: {}, ...more });

/** Resolves on the pool's next onMemberReplaced. */
function replaced(): { options: Partial<PoolOptions>; next: () => Promise<[number, string]>; calls: [number, string][] } {
  const calls: [number, string][] = [];
  let waiters: ((v: [number, string]) => void)[] = [];
  return {
    calls,
    options: {
      onMemberReplaced: (index, reason) => {
        calls.push([index, reason]);
        for (const w of waiters) w([index, reason]);
        waiters = [];
      },
    },
    next: () => new Promise((resolve) => waiters.push(resolve)),
  };
}

/** A key that maps to member `index` of a pool of `size`. */
function keyFor(index: number, size: number): string {
  for (let i = 0; ; i++) if (affinityIndex(`caller\u0000s${i}`, size) === index) return `caller\u0000s${i}`;
}

let echo: EnclaveModule;
let pools: InstancePool[] = [];
const track = (pool: InstancePool) => (pools.push(pool), pool);

beforeAll(async () => {
  echo = await compileEnclave(ECHO);
});

afterEach(async () => {
  await Promise.all(pools.map((p) => p.close()));
  pools = [];
});

describe('pool: options', () => {
  it.each([
    [{ size: 0 }],
    [{ size: 1.5 }],
    [{ size: MAX_POOL_SIZE + 1 }],
    [{ size: Number.NaN }],
    [{ isolation: 'thread' as 'worker' }],
    [{ enclave: null as unknown as object }],
    [{ isolation: 'in-process' as const, size: 2 }],
    [{ isolation: 'in-process' as const, worker: { deadlineMs: 5 } }],
    [{ onMemberReplaced: 'x' as unknown as () => void }],
  ])('refuses %o with invalid_options before starting anything', async (bad) => {
    expect(await codeOf(InstancePool.start(echo, { ...worker(1), ...bad }))).toBe('invalid_options');
  });

  it("passes the runtime's own refusals through (an unknown policy limit)", async () => {
    expect(await codeOf(InstancePool.start(echo, worker(2, { enclave: { policy: { bogus: 1 } as never } })))).toBe('invalid_options');
  });
});

describe('pool: start', () => {
  it('starts `size` members from one module, in parallel, each a working instance', async () => {
    const ports = () => process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
    const before = ports();
    const starting = InstancePool.start(echo, worker(2));
    // Both workers exist before the first has started: nothing was awaited between the two starts.
    expect(ports() - before).toBe(2);
    const pool = track(await starting);
    expect(pool.size).toBe(2);
    expect(pool.members.map((m) => m.index)).toEqual([0, 1]);
    expect(pool.members[0]!.handle).not.toBe(pool.members[1]!.handle);
    for (const m of pool.members) {
      expect(m.inFlight).toBe(0);
      expect(m.handle.measurement).toBe(echo.measurement);
      expect(await m.handle.call('echo', { i: m.index })).toEqual({ i: m.index });
    }
  });

  it('in-process: one member, created from the module', async () => {
    const pool = track(await InstancePool.start(echo, { size: 1, isolation: 'in-process', enclave: {} }));
    expect(pool.members).toHaveLength(1);
    expect(await pool.members[0]!.handle.call('echo', 'hi')).toBe('hi');
  });

  it('one member failing to start closes the others and rejects with its EnclaveError', async () => {
    const coin = await compileEnclave(await watModule(COIN_WAT, { ...MINIMAL_CONTRACT, capabilities: ['clock'] }));
    const closedWorkers: WorkerExitMessage[] = [];
    const onExit = (m: unknown) => {
      const msg = m as WorkerExitMessage;
      if (msg.measurement === coin.measurement && msg.reason === 'close') closedWorkers.push(msg);
    };
    subscribe(DIAGNOSTICS_CHANNELS.workerExit, onExit);
    try {
      // Each member traps at start by chance: retry until exactly one of the two started.
      let mixed = false;
      for (let attempt = 0; attempt < 60 && !mixed; attempt++) {
        closedWorkers.length = 0;
        let pool: InstancePool | undefined;
        let error: unknown;
        try {
          pool = await InstancePool.start(coin, worker(2, { enclave: { capabilities: ['clock'] } }));
        } catch (err) {
          error = err;
        }
        if (pool !== undefined) {
          await pool.close();
          continue;
        }
        expect(error).toBeInstanceOf(EnclaveError);
        expect((error as EnclaveError).code).toBe('trap');
        // The one that started was closed before start rejected (its exit is published by then).
        await new Promise((r) => setImmediate(r));
        if (closedWorkers.length === 1) mixed = true;
        else expect(closedWorkers).toHaveLength(0);
      }
      expect(mixed).toBe(true);
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.workerExit, onExit);
    }
  });
});

describe('pool: acquire, release, idle', () => {
  it('hands out idle members, counts them in flight until released', async () => {
    const pool = track(await InstancePool.start(echo, worker(2)));
    expect(pool.idle()).toBe(2);
    const a = pool.acquire()!;
    expect(a.index).toBe(0);
    expect(a.inFlight).toBe(1);
    expect(pool.idle()).toBe(1);
    const b = pool.acquire()!;
    expect(b.index).toBe(1);
    expect(pool.idle()).toBe(0);
    expect(pool.acquire()).toBeUndefined();
    pool.release(a);
    expect(a.inFlight).toBe(0);
    expect(pool.idle()).toBe(1);
    expect(pool.acquire()).toBe(a);
    pool.release(a);
    pool.release(b);
    // A second release of the same call does not go below zero.
    pool.release(b);
    expect(b.inFlight).toBe(0);
    expect(pool.idle()).toBe(2);
  });

  it('runs CPU-bound calls on two members at once', async () => {
    const crypto = await compileEnclave(CRYPTO);
    const pool = track(await InstancePool.start(crypto, worker(2, { worker: { deadlineMs: 10_000 } })));
    const data = new Uint8Array(16 * 1024).fill(7);
    const members = [pool.acquire()!, pool.acquire()!];
    expect(pool.idle()).toBe(0);
    const digests = await Promise.all(
      members.map(async (m) => {
        try {
          return (await m.handle.call('sha256', { data })) as Uint8Array;
        } finally {
          pool.release(m);
        }
      }),
    );
    expect(Buffer.from(digests[0]!).equals(Buffer.from(digests[1]!))).toBe(true);
    expect(digests[0]).toHaveLength(32);
    expect(pool.idle()).toBe(2);
  });

  it('ignores a release of something that is not its current member', async () => {
    const pool = track(await InstancePool.start(echo, worker(1)));
    const m = pool.acquire()!;
    pool.release({ index: 0, handle: m.handle, inFlight: 1 } as PoolMember);
    pool.release({ index: 7, handle: m.handle, inFlight: 1 } as PoolMember);
    pool.release(undefined as unknown as PoolMember);
    expect(m.inFlight).toBe(1);
    expect(pool.idle()).toBe(0);
    pool.release(m);
    expect(pool.idle()).toBe(1);
  });
});

describe('pool: affinity', () => {
  it('maps a key to one member, always the same, and only that one', async () => {
    const pool = track(await InstancePool.start(echo, worker(2)));
    const keys = Array.from({ length: 200 }, (_, i) => `billing\u0000session-${i}`);
    const indexes = keys.map((k) => pool.indexOf(k));
    // Stable: the same again, and the same from the free function (another pool of that size maps alike).
    expect(keys.map((k) => pool.indexOf(k))).toEqual(indexes);
    expect(keys.map((k) => affinityIndex(k, 2))).toEqual(indexes);
    // Spread over both members.
    const ones = indexes.filter((i) => i === 1).length;
    expect(ones).toBeGreaterThan(60);
    expect(ones).toBeLessThan(140);
    for (const key of keys.slice(0, 20)) {
      const m = pool.acquire(key)!;
      expect(m.index).toBe(pool.indexOf(key));
      pool.release(m);
    }
    // Busy target: undefined, even though the other member is idle.
    const key0 = keyFor(0, 2);
    const held = pool.acquire(key0)!;
    expect(held.index).toBe(0);
    expect(pool.acquire(key0)).toBeUndefined();
    expect(pool.idle()).toBe(1);
    const other = pool.acquire()!;
    expect(other.index).toBe(1);
    pool.release(other);
    pool.release(held);
    expect(pool.acquire(key0)).toBe(held);
  });

  it('hostile keys are keys like any other', async () => {
    const pool = track(await InstancePool.start(echo, worker(2)));
    for (const key of ['__proto__', 'constructor', '', 'x'.repeat(1 << 20), '\u0000\ud800']) {
      const index = pool.indexOf(key);
      expect([0, 1]).toContain(index);
      expect(affinityIndex(key, 2)).toBe(index);
      const m = pool.acquire(key)!;
      expect(m.index).toBe(index);
      pool.release(m);
    }
    expect(syncCodeOf(() => pool.acquire(5 as unknown as string))).toBe('invalid_options');
    expect(syncCodeOf(() => affinityIndex('k', 0))).toBe('invalid_options');
  });
});

describe('pool: a member closed behind its back', () => {
  it('is never handed out, and is replaced from the same module (found on acquire)', async () => {
    const r = replaced();
    const pool = track(await InstancePool.start(echo, worker(2, r.options)));
    const old = pool.members[0]!;
    await old.handle.close();
    const next = r.next();
    // Not member 0: its handle is closed; its replacement starts.
    const m = pool.acquire()!;
    expect(m.index).toBe(1);
    pool.release(m);
    expect(pool.acquire(keyFor(0, 2))).toBeUndefined();
    expect(pool.idle()).toBe(1);
    expect(await next).toEqual([0, 'closed']);
    const fresh = pool.members[0]!;
    expect(fresh).not.toBe(old);
    expect(fresh.index).toBe(0);
    expect(fresh.handle.closed).toBe(false);
    expect(fresh.handle.measurement).toBe(echo.measurement);
    expect(pool.idle()).toBe(2);
    const again = pool.acquire(keyFor(0, 2))!;
    expect(again).toBe(fresh);
    expect(await again.handle.call('echo', 'back')).toBe('back');
    pool.release(again);
    // A release of the old member changes nothing.
    pool.release(old);
    expect(r.calls).toEqual([[0, 'closed']]);
  });

  it('is replaced when found closed on release (closed during a call)', async () => {
    const r = replaced();
    const pool = track(await InstancePool.start(echo, worker(1, r.options)));
    const m = pool.acquire()!;
    const call = m.handle.call('echo', 1);
    await m.handle.close();
    expect(await codeOf(call)).toBe('closed');
    const next = r.next();
    pool.release(m);
    expect(pool.idle()).toBe(0);
    expect(await next).toEqual([0, 'closed']);
    const fresh = pool.acquire()!;
    expect(fresh).not.toBe(m);
    expect(await fresh.handle.call('echo', 2)).toBe(2);
    pool.release(fresh);
  });

  it('a replacement that fails to start is reported and tried again until it starts', async () => {
    const coin = await compileEnclave(await watModule(COIN_WAT, { ...MINIMAL_CONTRACT, capabilities: ['clock'] }));
    // Recorded as given and checked below, in the test's own flow: an expect() in the handler
    // could never fail the test (the pool ignores what its handler throws).
    const failures: [number, unknown][] = [];
    const r = replaced();
    const options = worker(2, {
      enclave: { capabilities: ['clock'] },
      ...r.options,
      onReplaceFailed: (index, error) => {
        failures.push([index, error]);
        throw new Error('a throwing handler changes nothing');
      },
    });
    let pool: InstancePool | undefined;
    for (let attempt = 0; attempt < 60 && pool === undefined; attempt++) pool = await InstancePool.start(coin, options).catch(() => undefined);
    track(pool!);
    // Each replacement start fails by chance: replace until one attempt failed before it succeeded.
    for (let round = 0; round < 80 && failures.length === 0; round++) {
      await pool!.members[1]!.handle.close();
      const next = r.next();
      expect(pool!.acquire(keyFor(1, 2))).toBeUndefined();
      expect(await next).toEqual([1, 'closed']);
    }
    expect(failures.length).toBeGreaterThan(0);
    for (const [index, error] of failures) {
      expect(index).toBe(1);
      expect(error).toBeInstanceOf(EnclaveError);
      expect((error as EnclaveError).code).toBe('trap');
    }
    expect(pool!.members[1]!.handle.closed).toBe(false);
    expect(pool!.idle()).toBe(2);
  });

  it('a replacement under way when the pool closes is stopped, not leaked', async () => {
    const closedWorkers: WorkerExitMessage[] = [];
    const onExit = (msg: unknown) => {
      if ((msg as WorkerExitMessage).measurement === echo.measurement && (msg as WorkerExitMessage).reason === 'close') closedWorkers.push(msg as WorkerExitMessage);
    };
    subscribe(DIAGNOSTICS_CHANNELS.workerExit, onExit);
    try {
      const r = replaced();
      const pool = await InstancePool.start(echo, worker(2, r.options));
      await pool.members[0]!.handle.close();
      expect(pool.acquire(keyFor(0, 2))).toBeUndefined(); // the replacement starts
      await pool.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(r.calls).toEqual([]);
      // Member 0 (closed behind the back), member 1, and the replacement: all three stopped.
      expect(closedWorkers).toHaveLength(3);
      expect(pool.members.every((m) => m.handle.closed)).toBe(true);
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.workerExit, onExit);
    }
  });
});

describe('pool: drain and close', () => {
  it('drain waits for every member\'s accepted calls', async () => {
    const pool = track(await InstancePool.start(echo, worker(2)));
    const settled: number[] = [];
    for (const m of pool.members) void m.handle.call('echo', m.index).then((v) => settled.push(v as number));
    await pool.drain();
    expect(settled.sort()).toEqual([0, 1]);
  });

  it('close closes every member, is idempotent, and leaves nothing to acquire', async () => {
    const pool = await InstancePool.start(echo, worker(2));
    const m = pool.acquire()!;
    const first = pool.close();
    expect(pool.close()).toBe(first);
    await first;
    await pool.close();
    expect(pool.closed).toBe(true);
    expect(pool.members.every((member) => member.handle.closed)).toBe(true);
    expect(pool.acquire()).toBeUndefined();
    expect(pool.acquire('k')).toBeUndefined();
    expect(pool.idle()).toBe(0);
    // Release after close: no replacement of the (closed) member, no throw.
    pool.release(m);
    expect(await codeOf(pool.members[0]!.handle.call('echo', 1))).toBe('closed');
  });
});
