/**
 * The supervisor's failure handling (issue 12, §3): the circuit breaker (host/supervisor/breaker.ts)
 * opens after N consecutive failures of the enclave, never after the caller's errors, refuses with
 * `unavailable` while open, lets exactly one probe through when half-open, and closes or re-opens
 * on its outcome; retries (host/supervisor/retry.ts) are capped, delayed by a jittered backoff
 * within its bounds, and never made for a code outside RETRY_CODES. Time is vitest's fake timers.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EnclaveError, ERROR_CODES, errorFlags, type ErrorCode } from '../core/index.js';
import { Breaker, BREAKER_FAILURE_CODES, BREAKER_HEALTHY_CODES, type BreakerState } from '../host/supervisor/breaker.js';
import { checkRetryOptions, RETRY_CODES, withRetry } from '../host/supervisor/retry.js';

/** The code `fn` throws synchronously; 'no error' if it returns. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof EnclaveError ? err.code : `other error: ${String(err)}`;
  }
}

const fail = (code: ErrorCode) => () => Promise.reject(new EnclaveError(code));
const ok = () => Promise.resolve('fine');

/** A breaker and the states it reported, in order. */
function breaker(failures = 3, halfOpenAfterMs = 1000): { b: Breaker; states: BreakerState[] } {
  const states: BreakerState[] = [];
  const b = new Breaker({ failures, halfOpenAfterMs }, (s) => states.push(s));
  return { b, states };
}

async function settle<T>(p: Promise<T>): Promise<T | ErrorCode | 'rejected'> {
  try {
    return await p;
  } catch (err) {
    return err instanceof EnclaveError ? err.code : 'rejected';
  }
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe('breaker failure codes', () => {
  it('counts the enclave failures and none of the caller-driven or host codes', () => {
    expect([...BREAKER_FAILURE_CODES].sort()).toEqual(['bad_reply', 'internal', 'stack_overflow', 'timeout', 'trap']);
    for (const code of ['fuel_exhausted', 'invalid_args', 'too_large', 'overloaded', 'unavailable', 'rate_limited', 'closed'] as const) {
      expect(BREAKER_FAILURE_CODES.has(code)).toBe(false);
    }
    for (const code of [...BREAKER_FAILURE_CODES, ...BREAKER_HEALTHY_CODES]) expect(ERROR_CODES).toContain(code);
    for (const code of BREAKER_HEALTHY_CODES) expect(BREAKER_FAILURE_CODES.has(code)).toBe(false);
  });
});

describe('Breaker', () => {
  it('opens after N consecutive enclave failures and then refuses without calling fn', async () => {
    const { b, states } = breaker(3);
    for (let i = 0; i < 2; i++) expect(await settle(b.run(fail('trap')))).toBe('trap');
    expect(b.state).toBe('closed');
    expect(await settle(b.run(fail('timeout')))).toBe('timeout');
    expect(b.state).toBe('open');
    expect(states).toEqual(['open']);
    const fn = vi.fn(ok);
    expect(await settle(b.run(fn))).toBe('unavailable');
    expect(fn).not.toHaveBeenCalled();
    b.dispose();
  });

  it('a reply, or an err the enclave sent, resets the count', async () => {
    const { b } = breaker(3);
    await settle(b.run(fail('trap')));
    await settle(b.run(fail('trap')));
    expect(await b.run(ok)).toBe('fine');
    await settle(b.run(fail('trap')));
    await settle(b.run(fail('trap')));
    expect(await settle(b.run(fail('denied')))).toBe('denied');
    await settle(b.run(fail('trap')));
    await settle(b.run(fail('trap')));
    expect(b.state).toBe('closed');
    await settle(b.run(fail('internal')));
    expect(b.state).toBe('open');
    b.dispose();
  });

  it("never opens on the caller's errors, however many (a hostile caller's invalid or costly requests)", async () => {
    const { b, states } = breaker(2);
    for (const code of ['invalid_args', 'too_large', 'fuel_exhausted', 'overloaded', 'closed'] as const) {
      for (let i = 0; i < 5; i++) expect(await settle(b.run(fail(code)))).toBe(code);
    }
    // A non-EnclaveError (a bug of the caller's function) is neutral too.
    await settle(b.run(() => Promise.reject(new TypeError('x'))));
    await settle(b.run(() => Promise.reject(new TypeError('x'))));
    expect(b.state).toBe('closed');
    expect(states).toEqual([]);
    // Neutral codes neither count nor reset: one trap, noise, one trap opens it.
    await settle(b.run(fail('trap')));
    await settle(b.run(fail('invalid_args')));
    await settle(b.run(fail('bad_reply')));
    expect(b.state).toBe('open');
    b.dispose();
  });

  it("the runtime's own refusals (an undeclared op, an op out of order) neither reset the count nor close a half-open breaker (R1)", async () => {
    const { b } = breaker(2, 10);
    for (const code of ['unknown_op', 'state'] as const) {
      expect(BREAKER_HEALTHY_CODES.has(code)).toBe(false);
      // Closed: one in between two failures does not reset the count.
      await settle(b.run(fail('trap')));
      expect(await settle(b.run(fail(code)))).toBe(code);
      await settle(b.run(fail('trap')));
      expect(b.state).toBe('open');
      // Half-open: a probe ending with one proves nothing about the enclave.
      await vi.advanceTimersByTimeAsync(10);
      expect(await settle(b.run(fail(code)))).toBe(code);
      expect(b.state).toBe('half-open');
      expect(await b.run(ok)).toBe('fine');
      expect(b.state).toBe('closed');
    }
    b.dispose();
  });

  it('a function that throws synchronously is a rejection, counted by its code', async () => {
    const { b } = breaker(1);
    const p = b.run(() => {
      throw new EnclaveError('trap');
    });
    expect(await settle(p)).toBe('trap');
    expect(b.state).toBe('open');
    b.dispose();
  });

  it('half-open after halfOpenAfterMs; a successful probe closes it', async () => {
    const { b, states } = breaker(1, 1000);
    await settle(b.run(fail('trap')));
    await vi.advanceTimersByTimeAsync(999);
    expect(b.state).toBe('open');
    expect(await settle(b.run(ok))).toBe('unavailable');
    await vi.advanceTimersByTimeAsync(1);
    expect(b.state).toBe('half-open');
    expect(await b.run(ok)).toBe('fine');
    expect(b.state).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
    expect(await b.run(ok)).toBe('fine');
    b.dispose();
  });

  it('half-open lets exactly one probe through; the others are refused while it runs', async () => {
    const { b } = breaker(1, 100);
    await settle(b.run(fail('trap')));
    await vi.advanceTimersByTimeAsync(100);
    let answer!: (v: string) => void;
    const probeFn = vi.fn(() => new Promise<string>((r) => (answer = r)));
    const probe = b.run(probeFn);
    const others = [vi.fn(ok), vi.fn(ok), vi.fn(ok)];
    const refused = await Promise.all(others.map((fn) => settle(b.run(fn))));
    expect(refused).toEqual(['unavailable', 'unavailable', 'unavailable']);
    for (const fn of others) expect(fn).not.toHaveBeenCalled();
    expect(probeFn).toHaveBeenCalledTimes(1);
    answer('probed');
    expect(await probe).toBe('probed');
    expect(b.state).toBe('closed');
    b.dispose();
  });

  it('a failed probe re-opens it for another halfOpenAfterMs', async () => {
    const { b, states } = breaker(2, 500);
    await settle(b.run(fail('trap')));
    await settle(b.run(fail('trap')));
    await vi.advanceTimersByTimeAsync(500);
    expect(await settle(b.run(fail('stack_overflow')))).toBe('stack_overflow');
    expect(b.state).toBe('open');
    expect(await settle(b.run(ok))).toBe('unavailable');
    await vi.advanceTimersByTimeAsync(499);
    expect(b.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(b.state).toBe('half-open');
    expect(states).toEqual(['open', 'half-open', 'open', 'half-open']);
    b.dispose();
  });

  it("a probe ending with the caller's error proves nothing: still half-open, the next call probes", async () => {
    const { b } = breaker(1, 10);
    await settle(b.run(fail('trap')));
    await vi.advanceTimersByTimeAsync(10);
    expect(await settle(b.run(fail('invalid_args')))).toBe('invalid_args');
    expect(b.state).toBe('half-open');
    expect(await b.run(ok)).toBe('fine');
    expect(b.state).toBe('closed');
    b.dispose();
  });

  it('calls started before it opened change nothing when they end (only the probe decides)', async () => {
    const { b } = breaker(1, 10);
    let late!: (v: string) => void;
    const slow = b.run(() => new Promise<string>((r) => (late = r)));
    await settle(b.run(fail('trap')));
    expect(b.state).toBe('open');
    late('late');
    expect(await slow).toBe('late');
    expect(b.state).toBe('open');
    b.dispose();
  });

  it('dispose stops the timer and every further change; a throwing listener is ignored', async () => {
    const seen: BreakerState[] = [];
    const b = new Breaker({ failures: 1, halfOpenAfterMs: 10 }, (s) => {
      seen.push(s);
      throw new Error('listener bug');
    });
    expect(await settle(b.run(fail('trap')))).toBe('trap');
    expect(b.state).toBe('open');
    b.dispose();
    await vi.advanceTimersByTimeAsync(1000);
    expect(b.state).toBe('open');
    expect(seen).toEqual(['open']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses bad options with invalid_options', () => {
    const bad = [
      { failures: 0, halfOpenAfterMs: 10 },
      { failures: 1.5, halfOpenAfterMs: 10 },
      { failures: Number.NaN, halfOpenAfterMs: 10 },
      { failures: 2e6, halfOpenAfterMs: 10 },
      { failures: 1, halfOpenAfterMs: -1 },
      { failures: 1, halfOpenAfterMs: Number.NaN },
      { failures: 1, halfOpenAfterMs: 2 ** 31 },
      { failures: 1, halfOpenAfterMs: '10' },
    ];
    for (const options of bad) {
      expect(codeOf(() => new Breaker(options as never, () => undefined))).toBe('invalid_options');
    }
    expect(codeOf(() => new Breaker(null as never, () => undefined))).toBe('invalid_options');
  });
});

describe('retry codes', () => {
  it('never retries a usage, access or argument error', () => {
    expect([...RETRY_CODES].sort()).toEqual(['timeout', 'trap']);
    for (const code of RETRY_CODES) expect(errorFlags(code).usage).toBe(false);
    for (const code of ['invalid_args', 'unauthorized', 'denied', 'rate_limited', 'quota_exceeded', 'invalid_options', 'overloaded', 'unavailable'] as const) {
      expect(RETRY_CODES.has(code)).toBe(false);
    }
  });
});

describe('withRetry', () => {
  const options = { maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 40 };

  it('a success or a non-retryable failure makes one attempt, with no timer', async () => {
    const attempt = vi.fn(ok);
    expect(await withRetry(attempt, options)).toBe('fine');
    expect(attempt).toHaveBeenCalledTimes(1);
    for (const code of ['invalid_args', 'denied', 'unauthorized', 'invalid_options', 'overloaded', 'fuel_exhausted', 'unavailable'] as const) {
      const failing = vi.fn(fail(code));
      expect(await settle(withRetry(failing, options))).toBe(code);
      expect(failing).toHaveBeenCalledTimes(1);
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it('retries a retryable code until it succeeds', async () => {
    let n = 0;
    const attempt = vi.fn(() => (++n < 3 ? Promise.reject(new EnclaveError('trap')) : Promise.resolve('third')));
    const p = settle(withRetry(attempt, options));
    await vi.advanceTimersByTimeAsync(options.maxDelayMs * 2);
    expect(await p).toBe('third');
    expect(attempt).toHaveBeenCalledTimes(3);
  });

  it('stops at maxAttempts and rejects with the last error', async () => {
    const attempt = vi.fn(fail('timeout'));
    const p = settle(withRetry(attempt, options));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await p).toBe('timeout');
    expect(attempt).toHaveBeenCalledTimes(3);
    const once = vi.fn(fail('timeout'));
    expect(await settle(withRetry(once, { ...options, maxAttempts: 1 }))).toBe('timeout');
    expect(once).toHaveBeenCalledTimes(1);
  });

  it('a retry that fails with a non-retryable code ends the retries', async () => {
    let n = 0;
    const attempt = vi.fn(() => Promise.reject(new EnclaveError(++n === 1 ? 'trap' : 'invalid_args')));
    const p = settle(withRetry(attempt, { ...options, maxAttempts: 5 }));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await p).toBe('invalid_args');
    expect(attempt).toHaveBeenCalledTimes(2);
  });

  it('delays are jittered, within 0..maxDelayMs, and told to onRetry', async () => {
    const delays: number[] = [];
    const told: [ErrorCode, number, number][] = [];
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    for (const r of [0.01, 0.5, 0.99]) {
      vi.spyOn(Math, 'random').mockReturnValue(r);
      const p = settle(
        withRetry(fail('trap'), { maxAttempts: 6, initialDelayMs: 10, maxDelayMs: 40, onRetry: (code, attempt, delay) => told.push([code, attempt, delay]) }),
      );
      await vi.advanceTimersByTimeAsync(10_000);
      expect(await p).toBe('trap');
    }
    for (const call of setTimeoutSpy.mock.calls) delays.push(call[1] as number);
    expect(delays).toHaveLength(15);
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(40);
    }
    // Jitter: the same attempt waits differently for different random draws.
    expect(new Set([delays[0], delays[5], delays[10]]).size).toBe(3);
    // Exponential: with the same draw, later delays grow until the cap holds them.
    const mid = delays.slice(5, 10);
    expect(mid[0]).toBeLessThan(mid[2]!);
    expect(mid[4]).toBe(40);
    expect(told).toHaveLength(15);
    expect(told.map(([code]) => code)).toEqual(Array(15).fill('trap'));
    expect(told.slice(0, 5).map(([, attempt]) => attempt)).toEqual([1, 2, 3, 4, 5]);
    expect(told.map(([, , delay]) => delay)).toEqual(delays);
  });

  it('retries go through the breaker: an open breaker ends them with unavailable', async () => {
    const { b } = breaker(2, 60_000);
    const attempt = vi.fn(fail('trap'));
    const p = settle(withRetry(() => b.run(attempt), { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 2 }));
    await vi.advanceTimersByTimeAsync(100);
    expect(await p).toBe('unavailable');
    expect(attempt).toHaveBeenCalledTimes(2);
    b.dispose();
  });

  it('an abort ends a backoff at once (its timer cleared) with unavailable, and no attempt follows', async () => {
    const controller = new AbortController();
    const attempt = vi.fn(fail('trap'));
    const p = settle(withRetry(attempt, { maxAttempts: 10, initialDelayMs: 60_000, maxDelayMs: 60_000, signal: controller.signal }));
    await vi.advanceTimersByTimeAsync(0);
    expect(attempt).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort();
    expect(await p).toBe('unavailable');
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(attempt).toHaveBeenCalledTimes(1);
    // Aborted while an attempt runs: that attempt's failure is not retried.
    const late = new AbortController();
    let n = 0;
    const second = vi.fn(() => {
      if (++n === 2) late.abort();
      return Promise.reject(new EnclaveError('timeout'));
    });
    const q = settle(withRetry(second, { maxAttempts: 5, initialDelayMs: 1, maxDelayMs: 2, signal: late.signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(await q).toBe('unavailable');
    expect(second).toHaveBeenCalledTimes(2);
    // Not aborted: the signal changes nothing.
    let m = 0;
    const heals = vi.fn(() => (++m < 2 ? Promise.reject(new EnclaveError('trap')) : Promise.resolve('healed')));
    const r = settle(withRetry(heals, { ...options, signal: new AbortController().signal }));
    await vi.advanceTimersByTimeAsync(100);
    expect(await r).toBe('healed');
    expect(codeOf(() => checkRetryOptions({ ...options, signal: {} as AbortSignal }))).toBe('invalid_options');
  });

  it('bad options are refused with invalid_options', async () => {
    const bad = [
      { maxAttempts: 0, initialDelayMs: 1, maxDelayMs: 2 },
      { maxAttempts: 11, initialDelayMs: 1, maxDelayMs: 2 },
      { maxAttempts: 2.5, initialDelayMs: 1, maxDelayMs: 2 },
      { maxAttempts: 2, initialDelayMs: -1, maxDelayMs: 2 },
      { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 2 },
      { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: Infinity },
      { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 2, onRetry: 'x' },
    ];
    for (const o of bad) {
      expect(codeOf(() => checkRetryOptions(o as never))).toBe('invalid_options');
      expect(await settle(withRetry(fail('trap'), o as never))).toBe('invalid_options');
    }
  });
});
