// One call through the host supervisor (host/supervisor/host.ts): the contract's order per
// (caller, session), sessions kept apart per caller, affinity, a sibling that keeps serving while
// another enclave crashes and recovers, the breaker opening and closing, overload and fairness at
// the host's queue, a rate-limited caller, hostile arguments; and no unhandled rejection anywhere.
// Real worker-mode enclaves, one or two instances.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CONTRACT_SECTION, encodeCustomSection } from '../core/index.js';
import { DIAGNOSTICS_CHANNELS, type BreakerEvent, type RestartEvent } from '../host/index.js';
import { InstancePool } from '../host/supervisor/pool.js';
import { supervisedContract, supervisedHosts, supervisedModule } from './helpers/supervised.js';
import { codeOf } from './helpers/errors.js';

let v1: Uint8Array;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  v1 = await supervisedModule();
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  // Nothing a caller or an enclave did left a rejection nobody handled.
  expect(unhandled).toEqual([]);
});

const ACCESS = {
  version: 1,
  callers: {
    alice: { allow: { a: '*', b: '*' } },
    bob: { allow: { a: '*', b: '*' } },
    flood: { allow: { a: '*' } },
    quiet: { allow: { a: '*' } },
    slow: { allow: { a: ['echo'] }, rate: { perSecond: 1, burst: 2 } },
  },
};

const { newHost } = supervisedHosts({ access: ACCESS, integrityIntervalMs: 0 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the contract order, per caller and session', () => {
  it('`use` before `open` in a session is `state`; sessions of two callers are separate', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 2 });
    expect(await codeOf(host.call('alice', 'a', 'use', undefined, { session: 's1' }))).toBe('state');
    expect(await host.call('alice', 'a', 'open', undefined, { session: 's1' })).toBe(true);
    expect(await host.call('alice', 'a', 'use', undefined, { session: 's1' })).toBe(true);
    // Another session of the same caller, and the same session id of another caller: not opened.
    expect(await codeOf(host.call('alice', 'a', 'use', undefined, { session: 's2' }))).toBe('state');
    expect(await codeOf(host.call('bob', 'a', 'use', undefined, { session: 's1' }))).toBe('state');
    // Without a session, the caller's own sessionless sequence.
    expect(await codeOf(host.call('bob', 'a', 'use'))).toBe('state');
    await host.call('bob', 'a', 'open');
    expect(await host.call('bob', 'a', 'use')).toBe(true);
    expect(await codeOf(host.call('alice', 'a', 'use'))).toBe('state');
    // Ending the session forgets its order.
    expect(await host.endSession('alice', 'a', 's1')).toBe(false); // persistent state: no instance per session
    expect(await codeOf(host.call('alice', 'a', 'use', undefined, { session: 's1' }))).toBe('state');
  });

  it('per-session state: one caller can never reach another caller\'s session instance', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 2, state: 'per-session' });
    expect(await host.call('alice', 'a', 'count', undefined, { session: 'x' })).toBe(1);
    expect(await host.call('alice', 'a', 'count', undefined, { session: 'x' })).toBe(2);
    // bob's "x" is another instance, and so is a session id that looks namespaced.
    expect(await host.call('bob', 'a', 'count', undefined, { session: 'x' })).toBe(1);
    expect(await host.call('bob', 'a', 'count', undefined, { session: 'alice|x' })).toBe(1);
    expect(await host.endSession('alice', 'a', 'x')).toBe(true);
    expect(await host.call('alice', 'a', 'count', undefined, { session: 'x' })).toBe(1);
    // per-session needs a session: the runtime's refusal reaches the caller as it is.
    expect(await codeOf(host.call('alice', 'a', 'count'))).toBe('invalid_options');
  });

  it('affinity: concurrent calls of one session all reach the same instance', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 2, queue: { maxQueuedPerCaller: 64 } });
    const counts = await Promise.all(Array.from({ length: 12 }, () => host.call('alice', 'a', 'count', undefined, { session: 'sticky' })));
    expect([...counts].sort((x, y) => (x as number) - (y as number))).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });
});

describe('failure handling', () => {
  it('a sibling keeps serving while another enclave crashes; the crashed one recovers', async () => {
    const host = newHost();
    const restarts: RestartEvent[] = [];
    host.on('restart', (e) => void restarts.push(e));
    await host.start('a', { module: v1, instances: 1 });
    await host.start('b', { module: v1, instances: 1 });
    const results = await Promise.allSettled([
      host.call('alice', 'a', 'crash'),
      ...Array.from({ length: 20 }, (_, i) => host.call('alice', 'b', 'echo', i)),
      host.call('alice', 'a', 'crash'),
    ]);
    expect((results[0] as PromiseRejectedResult).reason.code).toBe('trap');
    expect((results.at(-1) as PromiseRejectedResult).reason.code).toBe('trap');
    expect(results.slice(1, -1).map((r) => (r as PromiseFulfilledResult<unknown>).value)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(restarts.filter((e) => e.enclave === 'a').map((e) => e.reason)).toEqual(['trap', 'trap']);
    expect(restarts.filter((e) => e.enclave === 'b')).toEqual([]);
    // The crashed one recovered (a fresh instance), and counts its restarts.
    expect(await host.call('alice', 'a', 'echo', 'back')).toBe('back');
    expect(host.stats().enclaves.a).toMatchObject({ state: 'ready', restarts: 2 });
    expect(host.stats().enclaves.b).toMatchObject({ state: 'ready', restarts: 0 });
  });

  it('repeated failures open the breaker (`unavailable`); a half-open probe that succeeds closes it', async () => {
    const host = newHost();
    const breaker: BreakerEvent[] = [];
    host.on('breaker', (e) => void breaker.push(e));
    await host.start('a', { module: v1, instances: 1, breaker: { failures: 2, halfOpenAfterMs: 150 } });
    await host.start('b', { module: v1, instances: 1, breaker: { failures: 2, halfOpenAfterMs: 150 } });
    expect(await codeOf(host.call('alice', 'a', 'crash'))).toBe('trap');
    // A caller's own mistake does not count: invalid_args is not the enclave's failure.
    expect(await codeOf(host.call('alice', 'a', 'work', { n: -1 }))).toBe('invalid_args');
    expect(breaker).toEqual([]);
    expect(await codeOf(host.call('alice', 'a', 'crash'))).toBe('trap');
    expect(breaker).toEqual([{ enclave: 'a', state: 'open' }]);
    expect(host.stats().enclaves.a!.breaker).toBe('open');
    expect(await codeOf(host.call('alice', 'a', 'echo', 1))).toBe('unavailable');
    // Its sibling is not affected.
    expect(await host.call('alice', 'b', 'echo', 1)).toBe(1);
    await sleep(250);
    expect(breaker.at(-1)).toEqual({ enclave: 'a', state: 'half-open' });
    expect(await host.call('alice', 'a', 'echo', 2)).toBe(2);
    expect(breaker.at(-1)).toEqual({ enclave: 'a', state: 'closed' });
    expect(host.stats().enclaves.a!.breaker).toBe('closed');
  });

  it('hostile arguments are refused with a code, never a crash', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 1 });
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const trap = new Proxy({}, { ownKeys: () => { throw new Error('trap'); } });
    expect(await codeOf(host.call('alice', 'a', 'echo', cycle))).toBe('invalid_args');
    expect(await codeOf(host.call('alice', 'a', 'echo', trap))).toBe('invalid_args');
    expect(await codeOf(host.call('alice', 'a', 'echo', 'x'.repeat(100_000)))).toBe('too_large');
    expect(await codeOf(host.call('alice', 'a', 'work', { n: 'nine' }))).toBe('invalid_args');
    expect(await host.call('alice', 'a', 'echo', 'fine')).toBe('fine');
  });
});

describe('backpressure and fairness', () => {
  it('overloaded at once when the queue, or this caller\'s share of it, is full; a queued call past its time is overloaded', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 1, queue: { maxQueued: 3, maxQueuedPerCaller: 2, queueTimeoutMs: 10_000 } });
    const running = host.call('alice', 'a', 'work', { n: 300_000 });
    const queued = [host.call('alice', 'a', 'echo', 1), host.call('alice', 'a', 'echo', 2)];
    expect(await codeOf(host.call('alice', 'a', 'echo', 3))).toBe('overloaded'); // alice's share
    queued.push(host.call('bob', 'a', 'echo', 4));
    expect(await codeOf(host.call('bob', 'a', 'echo', 5))).toBe('overloaded'); // the whole queue
    await running;
    expect(await Promise.all(queued)).toEqual([1, 2, 4]);

    const timed = newHost();
    // Unmetered, `spin` runs until its worker's deadline stops it.
    await timed.start('a', { module: v1, instances: 1, metering: false, deadlineMs: 400, queue: { queueTimeoutMs: 20 } });
    const spinning = codeOf(timed.call('alice', 'a', 'spin'));
    expect(await codeOf(timed.call('bob', 'a', 'echo', 1))).toBe('overloaded');
    expect(await spinning).toBe('timeout');
    expect(await timed.call('bob', 'a', 'echo', 1)).toBe(1);
  });

  it('a flooding caller does not starve a quiet one: its call is served next, not after the flood', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 1, queue: { maxQueuedPerCaller: 100 } });
    const order: string[] = [];
    const flood = Array.from({ length: 40 }, (_, i) => host.call('flood', 'a', 'work', { n: 50_000 }).then(() => void order.push(`flood${i}`)));
    const quiet = host.call('quiet', 'a', 'echo', 'q').then(() => void order.push('quiet'));
    await Promise.all([...flood, quiet]);
    // The flood's first call was in flight; the quiet caller's turn comes right after at most one more of the flood's.
    expect(order.indexOf('quiet')).toBeLessThanOrEqual(2);
  });

  it('a rate-limited caller is refused `rate_limited` past its burst; others are not', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 1, isolation: 'in-process' });
    expect(await host.call('slow', 'a', 'echo', 1)).toBe(1);
    expect(await host.call('slow', 'a', 'echo', 2)).toBe(2);
    expect(await codeOf(host.call('slow', 'a', 'echo', 3))).toBe('rate_limited');
    // Its allow list holds: other ops are denied, whatever the bucket.
    expect(await codeOf(host.call('slow', 'a', 'work', { n: 1 }))).toBe('denied');
    expect(await host.call('alice', 'a', 'echo', 3)).toBe(3);
    const ops = host.stats().enclaves.a!.ops;
    expect(ops.echo!.calls).toBeGreaterThanOrEqual(3);
  });
});

describe('retries (R1)', () => {
  /** The fixture with `crash` (traps, every time) declared idempotent: a retryable failure that never heals. */
  function alwaysTrapping(): Uint8Array {
    const raw = supervisedContract();
    const old = encodeCustomSection(CONTRACT_SECTION, new TextEncoder().encode(JSON.stringify(raw)));
    const code = v1.subarray(0, v1.length - old.length);
    (raw.ops as Record<string, object>).crash = { idempotent: true };
    const section = encodeCustomSection(CONTRACT_SECTION, new TextEncoder().encode(JSON.stringify(raw)));
    const bytes = new Uint8Array(code.length + section.length);
    bytes.set(code, 0);
    bytes.set(section, code.length);
    return bytes;
  }

  it('an idempotent op that always traps is tried maxAttempts times, then fails; stop() then ends', async () => {
    const host = newHost();
    await host.start('a', { module: alwaysTrapping(), isolation: 'in-process', breaker: false, retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 2 } });
    const ends: unknown[] = [];
    const onEnd = (message: unknown) => void ends.push(message);
    subscribe(DIAGNOSTICS_CHANNELS.callEnd, onEnd);
    try {
      // A retry's failed attempt started a retry series of its own: the call never settled, ran
      // the op hundreds of times a second, and kept stop() and close() waiting for ever.
      const outcome = await Promise.race([codeOf(host.call('alice', 'a', 'crash')), sleep(3000).then(() => 'still retrying')]);
      expect(outcome).toBe('trap');
      expect(ends).toHaveLength(3);
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.callEnd, onEnd);
    }
    expect(await Promise.race([host.stop('a').then(() => 'stopped'), sleep(3000).then(() => 'stop hangs')])).toBe('stopped');
  });
});

describe('endSession under the access policy', () => {
  it('a caller the policy does not grant the enclave learns nothing of it and reaches nothing in it', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 1, state: 'per-session' });
    // Unknown caller: the same refusal for an enclave that runs and one that does not.
    expect(await codeOf(host.endSession('mallory', 'a', 's1'))).toBe('unauthorized');
    expect(await codeOf(host.endSession('mallory', 'nope', 's1'))).toBe('unauthorized');
    // A known caller without this enclave: denied, running or not.
    expect(await codeOf(host.endSession('flood', 'b', 's1'))).toBe('denied');
    expect(await codeOf(host.endSession('flood', 'nope', 's1'))).toBe('denied');
    // A flood of them never reaches the member's own queue: an allowed caller's calls all serve.
    const flood = Array.from({ length: 200 }, (_, i) => codeOf(host.endSession('mallory', 'a', `s${i}`)));
    const calls = await Promise.allSettled(Array.from({ length: 5 }, () => host.call('alice', 'a', 'echo', 1, { session: 'x' })));
    expect(new Set(await Promise.all(flood))).toEqual(new Set(['unauthorized']));
    expect(calls.map((c) => c.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    // The granted caller ends its own session.
    expect(await host.endSession('alice', 'a', 'x')).toBe(true);
  });

  it('ending a session takes a token from the caller\'s bucket, like a call', async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 1, isolation: 'in-process', state: 'per-session' });
    // slow: burst 2.
    await host.endSession('slow', 'a', 's1');
    await host.endSession('slow', 'a', 's2');
    expect(await codeOf(host.endSession('slow', 'a', 's3'))).toBe('rate_limited');
  });
});

describe('the queue under load (R1)', () => {
  it('a settled call asks the queue for the next one only while a member is free: not every queued caller each time', async () => {
    const host = newHost({ access: { version: 1, callers: { '*': { allow: { a: '*' } } } } });
    await host.start('a', { module: v1, instances: 1 });
    const acquire = vi.spyOn(InstancePool.prototype, 'acquire');
    try {
      const callers = 200;
      // One call runs, the others wait, one per caller, each in a session (an affinity key to hash).
      const calls = Array.from({ length: callers }, (_, i) => host.call(`caller-${i}`, 'a', 'echo', i, { session: 's' }));
      expect(await Promise.all(calls)).toEqual(Array.from({ length: callers }, (_, i) => i));
      // Each dispatch needs about one acquire. Asking every queued caller's head after each
      // settled call made it about callers^2 / 2 (19 902 here): CPU quadratic in a full queue.
      expect(acquire.mock.calls.length).toBeLessThan(callers * 3);
    } finally {
      acquire.mockRestore();
    }
  });
});

describe('sequences of callers kept apart in memory too', () => {
  it("another caller's flood of sessions (on another enclave) does not make the host forget alice's", async () => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 1, isolation: 'in-process' });
    await host.start('b', { module: v1, instances: 1, isolation: 'in-process' });
    await host.call('alice', 'a', 'open', undefined, { session: 's1' });
    // More sessions than the host remembers (10 000), all bob's.
    for (let i = 0; i < 10_050; i++) await host.call('bob', 'b', 'open', undefined, { session: `x${i}` });
    expect(await host.call('alice', 'a', 'use', undefined, { session: 's1' })).toBe(true);
    // bob's own oldest were the ones forgotten.
    expect(await codeOf(host.call('bob', 'b', 'use', undefined, { session: 'x0' }))).toBe('state');
    expect(await host.call('bob', 'b', 'use', undefined, { session: 'x10049' })).toBe(true);
  });
});

describe('per-session instances of callers kept apart in memory too', () => {
  it.each(['in-process', 'worker'] as const)("(%s) another caller's many sessions do not push out alice's session instance", async (isolation) => {
    const host = newHost();
    await host.start('a', { module: v1, instances: 1, isolation, state: 'per-session', maxSessions: 4 });
    await host.call('alice', 'a', 'open', undefined, { session: 's1' });
    expect(await host.call('alice', 'a', 'count', undefined, { session: 's1' })).toBe(1);
    expect(await host.call('bob', 'a', 'count', undefined, { session: 'x0' })).toBe(1);
    // Five times as many sessions as the instance keeps, all bob's.
    for (let i = 1; i < 20; i++) await host.call('bob', 'a', 'open', undefined, { session: `x${i}` });
    // alice's instance is still there: its counter goes on, and its `open` still counts.
    expect(await host.call('alice', 'a', 'count', undefined, { session: 's1' })).toBe(2);
    expect(await host.call('alice', 'a', 'use', undefined, { session: 's1' })).toBe(true);
    // bob's most recent session lives; his oldest was ended (its counter starts over).
    expect(await host.call('bob', 'a', 'count', undefined, { session: 'x19' })).toBe(1);
    expect(await host.call('bob', 'a', 'count', undefined, { session: 'x19' })).toBe(2);
    expect(await host.call('bob', 'a', 'count', undefined, { session: 'x0' })).toBe(1);
    // endSession forgets it in the host's view as well: ended, then a fresh instance.
    expect(await host.endSession('alice', 'a', 's1')).toBe(true);
    expect(await host.call('alice', 'a', 'count', undefined, { session: 's1' })).toBe(1);
  });
});
