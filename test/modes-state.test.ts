/**
 * State policies, endSession and per-call stats, the same in both isolation modes
 * (test/helpers/modes.ts). Fuel is deterministic: the same call on the same state uses the same
 * fuel, whichever mode runs it, so the figures are compared across modes too.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnclaveHandle } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { loadIn, MODES, type Mode } from './helpers/modes.js';
import { fixture } from './helpers/wat.js';

const COUNTER = readFileSync(new URL('../enclave-modules/counter/build/counter.wasm', import.meta.url));
const ECHO = readFileSync(new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url));

describe.each(MODES)('$name', (mode) => {
  let persistent: EnclaveHandle;
  let perSession: EnclaveHandle;
  let perCall: EnclaveHandle;
  beforeAll(async () => {
    [persistent, perSession, perCall] = await Promise.all([
      loadIn(mode, COUNTER),
      loadIn(mode, COUNTER, { state: 'per-session', maxSessions: 2 }),
      loadIn(mode, COUNTER, { state: 'per-call' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([persistent, perSession, perCall].map((h) => h?.close()));
  });

  describe('state policies', () => {
    it('persistent (the default): one memory across calls; a session id is refused', async () => {
      const before = (await persistent.call('get')) as number;
      await persistent.call('incr', { by: 2 });
      expect(await persistent.call('incr', { by: 3 })).toBe(before + 5);
      expect(await codeOf(persistent.call('get', undefined, { session: 'a' }))).toBe('invalid_options');
    });

    it('per-session: each session its own memory and its own requires', async () => {
      await perSession.call('incr', { by: 5 }, { session: 'alice' });
      await perSession.call('incr', { by: 2 }, { session: 'bob' });
      expect(await perSession.call('incr', { by: 1 }, { session: 'alice' })).toBe(6);
      expect(await perSession.call('get', undefined, { session: 'bob' })).toBe(2);
      expect(await perSession.call('reset', undefined, { session: 'alice' })).toBe(null);
      expect(await codeOf(perSession.call('reset', undefined, { session: 'carol' }))).toBe('state');
    });

    it('per-session: a session id is required and must be well-formed', async () => {
      expect(await codeOf(perSession.call('get'))).toBe('invalid_options');
      expect(await codeOf(perSession.call('get', undefined, { session: '' }))).toBe('invalid_options');
      expect(await codeOf(perSession.call('get', undefined, { session: 'x'.repeat(300) }))).toBe('invalid_options');
      expect(await codeOf(perSession.call('get', undefined, { session: 7 as never }))).toBe('invalid_options');
    });

    it('per-session: least recently used evicted beyond maxSessions', async () => {
      const e = await loadIn(mode, COUNTER, { state: 'per-session', maxSessions: 2 });
      try {
        await e.call('incr', { by: 1 }, { session: 'a' });
        await e.call('incr', { by: 2 }, { session: 'b' });
        await e.call('get', undefined, { session: 'a' });
        await e.call('incr', { by: 3 }, { session: 'c' }); // evicts b
        expect(await e.call('get', undefined, { session: 'a' })).toBe(1);
        expect(await e.call('get', undefined, { session: 'b' })).toBe(0);
      } finally {
        await e.close();
      }
    });

    it('per-session: a session whose instance fails is discarded alone', async () => {
      const e = await loadIn(mode, await fixture('hostile'), { state: 'per-session' });
      try {
        await e.call('ok', undefined, { session: 'a' });
        await e.call('ok', undefined, { session: 'b' });
        expect(await e.call('order', undefined, { session: 'a' })).toBe('fine');
        expect(await codeOf(e.call('unreachable', undefined, { session: 'b' }))).toBe('trap');
        expect(await e.call('order', undefined, { session: 'a' })).toBe('fine');
        expect(await codeOf(e.call('order', undefined, { session: 'b' }))).toBe('state');
      } finally {
        await e.close();
      }
    });

    it('per-call: every call from a pristine instance; requires never met; no session', async () => {
      expect(await perCall.call('incr', { by: 3 })).toBe(3);
      expect(await perCall.call('incr', { by: 3 })).toBe(3);
      expect(await perCall.call('get')).toBe(0);
      expect(await codeOf(perCall.call('reset'))).toBe('state');
      expect(await codeOf(perCall.call('get', undefined, { session: 'a' }))).toBe('invalid_options');
      expect(await codeOf(perCall.call('incr', { by: 0 }))).toBe('invalid_args');
      expect(await perCall.call('incr', { by: 1 })).toBe(1);
    });
  });

  describe('endSession', () => {
    it('drops a session now and resolves with whether it existed (a Promise in both modes)', async () => {
      await perSession.call('incr', { by: 4 }, { session: 'dave' });
      const ended = perSession.endSession('dave');
      expect(ended).toBeInstanceOf(Promise);
      expect(await ended).toBe(true);
      expect(await perSession.endSession('dave')).toBe(false);
      expect(await perSession.endSession('never-seen')).toBe(false);
      expect(await perSession.call('get', undefined, { session: 'dave' })).toBe(0);
    });

    it('runs after the calls made before it', async () => {
      const e = await loadIn(mode, COUNTER, { state: 'per-session' });
      try {
        const incr = e.call('incr', { by: 9 }, { session: 's' });
        const ended = e.endSession('s');
        expect(await incr).toBe(9);
        expect(await ended).toBe(true);
        expect(await e.call('get', undefined, { session: 's' })).toBe(0);
      } finally {
        await e.close();
      }
    });

    it('is false outside per-session, for a malformed id, and once closed', async () => {
      expect(await persistent.endSession('a')).toBe(false);
      expect(await perCall.endSession('a')).toBe(false);
      expect(await perSession.endSession('')).toBe(false);
      const e = await loadIn(mode, COUNTER, { state: 'per-session' });
      await e.call('incr', undefined, { session: 'a' });
      await e.close();
      expect(await e.endSession('a')).toBe(false);
    });
  });

  describe('the { stats } call option', () => {
    it('fills in the fuel of this call; deterministic on the same state', async () => {
      const e = await loadIn(mode, COUNTER, { state: 'per-call' });
      try {
        const first = { fuel: -1 };
        const second = { fuel: -1 };
        await e.call('incr', { by: 2 }, { stats: first });
        await e.call('incr', { by: 2 }, { stats: second });
        expect(first.fuel).toBeGreaterThan(0);
        expect(second.fuel).toBe(first.fuel);
      } finally {
        await e.close();
      }
    });

    it('0 for a call refused before it entered the enclave', async () => {
      for (const call of [
        (stats: { fuel: number }) => persistent.call('nope', undefined, { stats }),
        (stats: { fuel: number }) => persistent.call('incr', { by: 0 }, { stats }),
        (stats: { fuel: number }) => persistent.call('get', undefined, { stats, session: 'a' }),
      ]) {
        const stats = { fuel: -1 };
        await call(stats).catch(() => undefined);
        expect(stats.fuel).toBe(0);
      }
    });

    it('concurrent calls each get their own', async () => {
      const e = await loadIn(mode, ECHO);
      try {
        // Once each first: a first call of a kind costs more (the enclave's memory grows, its allocator warms).
        await e.call('echo', 1);
        await e.call('echo', 'y'.repeat(5000));
        const small = { fuel: -1 };
        await e.call('echo', 1, { stats: small });
        const big = { fuel: -1 };
        await e.call('echo', 'y'.repeat(5000), { stats: big });
        expect(big.fuel).toBeGreaterThan(small.fuel);
        const stats = Array.from({ length: 6 }, () => ({ fuel: -1 }));
        const args = [1, 'y'.repeat(5000), 1, 1, 'y'.repeat(5000), 1];
        await Promise.all(args.map((a, i) => e.call('echo', a, { stats: stats[i] })));
        expect(stats.map((s) => s.fuel)).toEqual(args.map((a) => (a === 1 ? small.fuel : big.fuel)));
      } finally {
        await e.close();
      }
    });

    it('0 with metering off', async () => {
      const e = await loadIn(mode, COUNTER, { metering: false });
      try {
        const stats = { fuel: -1 };
        expect(await e.call('incr', undefined, { stats })).toBe(1);
        expect(stats.fuel).toBe(0);
      } finally {
        await e.close();
      }
    });
  });
});

describe('both modes use the same fuel for the same calls', () => {
  /** Runs `calls` on a fresh enclave in `mode`: each call's outcome and fuel. */
  async function trace(mode: Mode, source: Uint8Array, calls: [op: string, args?: unknown, session?: string][], extra = {}) {
    const e = await loadIn(mode, source, extra);
    try {
      const out: [string, number][] = [];
      for (const [op, args, session] of calls) {
        const stats = { fuel: -1 };
        const outcome = await e.call(op, args, { stats, ...(session === undefined ? {} : { session }) }).then(
          (value) => JSON.stringify(value),
          (err: { code: string }) => err.code,
        );
        out.push([outcome, stats.fuel]);
      }
      return out;
    } finally {
      await e.close();
    }
  }
  const [inProcess, worker] = MODES as [Mode, Mode];

  it('counter, persistent: successes, an enclave refusal, a refused call', async () => {
    const calls: [string, unknown?][] = [['incr'], ['incr', { by: 7 }], ['get'], ['reset'], ['incr', { by: 0 }], ['nope'], ['get']];
    const a = await trace(inProcess, COUNTER, calls);
    expect(a.every(([, fuel]) => fuel >= 0)).toBe(true);
    expect(await trace(worker, COUNTER, calls)).toEqual(a);
  });

  it('counter, per-session and per-call', async () => {
    const calls: [string, unknown, string][] = [['incr', { by: 1 }, 'a'], ['incr', { by: 2 }, 'b'], ['get', undefined, 'a'], ['reset', undefined, 'c']];
    expect(await trace(worker, COUNTER, calls, { state: 'per-session' })).toEqual(await trace(inProcess, COUNTER, calls, { state: 'per-session' }));
    const perCall: [string, unknown?][] = [['incr', { by: 1 }], ['incr', { by: 1 }], ['get']];
    expect(await trace(worker, COUNTER, perCall, { state: 'per-call' })).toEqual(await trace(inProcess, COUNTER, perCall, { state: 'per-call' }));
  });

  it('echo, values of several sizes', async () => {
    const calls: [string, unknown][] = [['echo', null], ['echo', { a: [1, 2, 3] }], ['echo', 'z'.repeat(20_000)], ['echo', new Uint8Array(4096)]];
    expect(await trace(worker, ECHO, calls)).toEqual(await trace(inProcess, ECHO, calls));
  });

  it('the hostile fixture: traps and bad replies are charged alike', async () => {
    const hostile = await fixture('hostile');
    const calls: [string][] = [['ok'], ['unreachable'], ['ok'], ['x_not_envelope'], ['refuse'], ['huge_len'], ['zero_reply'], ['call_forever'], ['ok']];
    expect(await trace(worker, hostile, calls)).toEqual(await trace(inProcess, hostile, calls));
  });
});
