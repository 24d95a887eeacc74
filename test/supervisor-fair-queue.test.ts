// The supervisor's fair queue (host/supervisor/fair-queue.ts): bounds, per-caller FIFO, fairness
// and weights across callers, accept-skips, expiry, clear, and hostile caller names.

import { afterEach, describe, expect, it, vi } from 'vitest';
import { FairQueue, type FairQueueOptions } from '../host/supervisor/fair-queue.js';
import { syncCodeOf } from './helpers/errors.js';

const roomy: FairQueueOptions = { maxQueued: 10_000, maxQueuedPerCaller: 5_000, queueTimeoutMs: 60_000 };

/** A queue of `caller:n` strings, with what expired. */
function queue(options: Partial<FairQueueOptions> = {}) {
  const expired: string[] = [];
  const q = new FairQueue<string>({ ...roomy, ...options }, (item) => expired.push(item));
  return { q, expired };
}

/** Shifts until empty (or `limit`), returning the items in order. */
function drainAll(q: FairQueue<string>, limit = Infinity): string[] {
  const out: string[] = [];
  let item: string | undefined;
  while (out.length < limit && (item = q.shift()) !== undefined) out.push(item);
  return out;
}

const callerOf = (item: string) => item.slice(0, item.lastIndexOf(':'));

afterEach(() => {
  vi.useRealTimers();
});

describe('fair queue: options', () => {
  it.each([
    [{ maxQueued: -1 }],
    [{ maxQueued: 1.5 }],
    [{ maxQueued: 2 ** 21 }],
    [{ maxQueuedPerCaller: Number.NaN }],
    [{ queueTimeoutMs: 0 }],
    [{ queueTimeoutMs: 2 ** 31 }],
    [{ queueTimeoutMs: '5' as unknown as number }],
    [{ clock: 5 as unknown as () => number }],
  ])('refuses %o with invalid_options', (bad) => {
    expect(syncCodeOf(() => new FairQueue({ ...roomy, ...bad }, () => undefined))).toBe('invalid_options');
  });

  it('refuses a weight outside 1..100 and a caller that is not a string, queuing nothing', () => {
    const { q } = queue();
    for (const weight of [0, 101, 1.5, Number.NaN, -1]) expect(syncCodeOf(() => q.push('a', 'a:0', weight))).toBe('invalid_options');
    expect(syncCodeOf(() => q.push(5 as unknown as string, 'x'))).toBe('invalid_options');
    expect(q.size).toBe(0);
    expect(q.callers).toBe(0);
  });
});

describe('fair queue: bounds', () => {
  it('refuses with overloaded at once when full in total, whoever pushes', () => {
    const { q } = queue({ maxQueued: 3, maxQueuedPerCaller: 3 });
    q.push('a', 'a:0');
    q.push('b', 'b:0');
    q.push('c', 'c:0');
    for (const caller of ['a', 'b', 'd']) expect(syncCodeOf(() => q.push(caller, `${caller}:x`))).toBe('overloaded');
    expect(q.size).toBe(3);
    expect(q.sizeOf('d')).toBe(0);
    // A refused caller left nothing behind.
    expect(q.callers).toBe(3);
    // Room again after one leaves.
    expect(q.shift()).toBe('a:0');
    q.push('d', 'd:0');
    expect(q.size).toBe(3);
  });

  it('refuses a caller past its own bound while other callers are still admitted', () => {
    const { q } = queue({ maxQueued: 100, maxQueuedPerCaller: 2 });
    q.push('flood', 'flood:0');
    q.push('flood', 'flood:1');
    expect(syncCodeOf(() => q.push('flood', 'flood:2'))).toBe('overloaded');
    expect(q.sizeOf('flood')).toBe(2);
    q.push('quiet', 'quiet:0');
    q.push('quiet', 'quiet:1');
    expect(syncCodeOf(() => q.push('quiet', 'quiet:2'))).toBe('overloaded');
    expect(q.size).toBe(4);
  });

  it('maxQueued 0 queues nothing', () => {
    const { q } = queue({ maxQueued: 0 });
    expect(syncCodeOf(() => q.push('a', 'a:0'))).toBe('overloaded');
    expect(q.size).toBe(0);
  });
});

describe('fair queue: order and fairness', () => {
  it('keeps each caller FIFO', () => {
    const { q } = queue();
    for (let i = 0; i < 5; i++) {
      q.push('a', `a:${i}`);
      q.push('b', `b:${i}`, 3);
    }
    const out = drainAll(q);
    expect(out.filter((x) => callerOf(x) === 'a')).toEqual(['a:0', 'a:1', 'a:2', 'a:3', 'a:4']);
    expect(out.filter((x) => callerOf(x) === 'b')).toEqual(['b:0', 'b:1', 'b:2', 'b:3', 'b:4']);
  });

  it('a flooding caller does not starve another: B (10 items, after A\'s 1000) is served interleaved', () => {
    const { q } = queue();
    for (let i = 0; i < 1000; i++) q.push('A', `A:${i}`);
    for (let i = 0; i < 10; i++) q.push('B', `B:${i}`);
    const first = drainAll(q, 20);
    // Equal weights: strict alternation, so all of B's items leave within the first 20.
    expect(first.filter((x) => callerOf(x) === 'B')).toHaveLength(10);
    for (let i = 0; i < 20; i++) expect(callerOf(first[i]!)).toBe(i % 2 === 0 ? 'A' : 'B');
    expect(q.size).toBe(990);
    expect(q.sizeOf('B')).toBe(0);
    expect(q.callers).toBe(1);
    expect(drainAll(q)).toHaveLength(990);
  });

  it('a caller joining late waits at most one round, not behind the backlog', () => {
    const { q } = queue();
    for (const c of ['a', 'b', 'c']) for (let i = 0; i < 100; i++) q.push(c, `${c}:${i}`);
    expect(drainAll(q, 4).map(callerOf)).toEqual(['a', 'b', 'c', 'a']);
    q.push('late', 'late:0');
    // The turn is b's: one full round (b, c, a), then the newcomer at the ring's end, before b's next turn.
    expect(drainAll(q, 5).map(callerOf)).toEqual(['b', 'c', 'a', 'late', 'b']);
  });

  it('serves callers in proportion to their weights', () => {
    const { q } = queue();
    for (let i = 0; i < 300; i++) q.push('heavy', `heavy:${i}`, 3);
    for (let i = 0; i < 300; i++) q.push('light', `light:${i}`, 1);
    const first = drainAll(q, 40);
    expect(first.slice(0, 8).map(callerOf)).toEqual(['heavy', 'heavy', 'heavy', 'light', 'heavy', 'heavy', 'heavy', 'light']);
    expect(first.filter((x) => callerOf(x) === 'heavy')).toHaveLength(30);
    expect(first.filter((x) => callerOf(x) === 'light')).toHaveLength(10);
  });

  it('a weight of 100 still yields to the others after 100 items', () => {
    const { q } = queue();
    for (let i = 0; i < 250; i++) q.push('vip', `vip:${i}`, 100);
    q.push('other', 'other:0');
    const out = drainAll(q, 102);
    expect(out.indexOf('other:0')).toBe(100);
  });

  it('a caller that runs out mid-turn hands the turn on', () => {
    const { q } = queue();
    q.push('a', 'a:0', 5);
    for (let i = 0; i < 3; i++) q.push('b', `b:${i}`);
    expect(drainAll(q)).toEqual(['a:0', 'b:0', 'b:1', 'b:2']);
    expect(q.callers).toBe(0);
  });
});

describe('fair queue: shift(accept)', () => {
  it('asks only head items, and skipping a caller never reorders its items', () => {
    const { q } = queue();
    q.push('a', 'a:0');
    q.push('a', 'a:1');
    q.push('b', 'b:0');
    const asked: string[] = [];
    // Refuses a:0, would accept a:1: a:1 must not overtake a:0.
    const item = q.shift((x) => {
      asked.push(x);
      return x !== 'a:0';
    });
    expect(item).toBe('b:0');
    expect(asked).toEqual(['a:0', 'b:0']);
    expect(q.shift((x) => x !== 'a:0')).toBeUndefined();
    expect(q.size).toBe(2);
    expect(drainAll(q)).toEqual(['a:0', 'a:1']);
  });

  it('refusing every head takes nothing and keeps the turn where it was', () => {
    const { q } = queue();
    for (let i = 0; i < 3; i++) {
      q.push('a', `a:${i}`);
      q.push('b', `b:${i}`);
    }
    expect(q.shift(() => false)).toBeUndefined();
    expect(q.size).toBe(6);
    expect(drainAll(q)).toEqual(['a:0', 'b:0', 'a:1', 'b:1', 'a:2', 'b:2']);
  });

  it('a stuck caller does not let one neighbour take every turn from the others', () => {
    const { q } = queue();
    for (const c of ['stuck', 'x', 'y']) for (let i = 0; i < 10; i++) q.push(c, `${c}:${i}`);
    const out: string[] = [];
    for (let i = 0; i < 6; i++) out.push(q.shift((item) => callerOf(item) !== 'stuck')!);
    expect(out.map(callerOf)).toEqual(['x', 'y', 'x', 'y', 'x', 'y']);
    expect(q.sizeOf('stuck')).toBe(10);
  });

  it('a caller refused for its member keeps its turn: it gets its share when that member frees (R1)', () => {
    // A's calls need member m0 (its session's); B and C take any member. Members free in turn,
    // m1, m0, m1, ... Moving the turn to whoever was served out of turn let B and C take it for
    // ever: A was never served, whatever the weights.
    for (const [wb, wc, least] of [[1, 1, 10], [2, 1, 6]] as const) {
      const { q } = queue();
      for (let i = 0; i < 100; i++) q.push('A', `A:${i}`);
      for (let i = 0; i < 200; i++) q.push('B', `B:${i}`, wb);
      for (let i = 0; i < 200; i++) q.push('C', `C:${i}`, wc);
      const out: string[] = [];
      for (let i = 0; i < 60; i++) {
        const free = i % 2 === 0 ? 'm1' : 'm0';
        out.push(q.shift((x) => callerOf(x) !== 'A' || free === 'm0')!);
      }
      const served = (c: string) => out.filter((x) => callerOf(x) === c).length;
      // Fair shares of 60: 1/3 each with weights 1,1,1 (A can take only m0's 30); 1/4 for A with 1,2,1.
      expect(served('A')).toBeGreaterThanOrEqual(least);
      expect(served('B')).toBeGreaterThan(0);
      expect(served('C')).toBeGreaterThan(0);
    }
  });

  it('callers served while the turn waits share by weight', () => {
    const { q } = queue();
    for (let i = 0; i < 10; i++) q.push('stuck', `stuck:${i}`);
    for (let i = 0; i < 100; i++) q.push('heavy', `heavy:${i}`, 3);
    for (let i = 0; i < 100; i++) q.push('light', `light:${i}`, 1);
    const out: string[] = [];
    for (let i = 0; i < 8; i++) out.push(q.shift((x) => callerOf(x) !== 'stuck')!);
    expect(out.map(callerOf)).toEqual(['heavy', 'heavy', 'heavy', 'light', 'heavy', 'heavy', 'heavy', 'light']);
    // The turn stayed with the stuck caller: it is first once accepted.
    expect(q.shift()).toBe('stuck:0');
  });

  it('an accept that throws removes nothing', () => {
    const { q } = queue();
    q.push('a', 'a:0');
    expect(() =>
      q.shift(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(q.size).toBe(1);
    expect(q.shift()).toBe('a:0');
  });
});

describe('fair queue: expiry', () => {
  it('removes an item that waited past queueTimeoutMs and hands it to onExpire, oldest first', () => {
    vi.useFakeTimers();
    const { q, expired } = queue({ queueTimeoutMs: 1000 });
    q.push('a', 'a:0');
    vi.advanceTimersByTime(100);
    q.push('b', 'b:0');
    q.push('a', 'a:1');
    vi.advanceTimersByTime(899);
    expect(expired).toEqual([]);
    expect(q.size).toBe(3);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['a:0']);
    expect(q.sizeOf('a')).toBe(1);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual(['a:0', 'b:0', 'a:1']);
    expect(q.size).toBe(0);
    // Nothing left behind: no caller state, no timer.
    expect(q.callers).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a served item never expires, and the timer moves on to the next oldest', () => {
    vi.useFakeTimers();
    const { q, expired } = queue({ queueTimeoutMs: 1000 });
    q.push('a', 'a:0');
    vi.advanceTimersByTime(500);
    q.push('b', 'b:0');
    expect(q.shift()).toBe('a:0');
    vi.advanceTimersByTime(999);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['b:0']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('uses one timer for the whole queue, not one per item', () => {
    vi.useFakeTimers();
    const { q } = queue({ queueTimeoutMs: 1000 });
    for (let i = 0; i < 500; i++) q.push(`c${i % 7}`, `c${i % 7}:${i}`);
    expect(vi.getTimerCount()).toBe(1);
    drainAll(q);
    // Emptied and filled again: still the one timer, which, once due, finds nothing and stops.
    q.push('a', 'a:0');
    expect(q.shift()).toBe('a:0');
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('an expired caller\'s turn passes on, and the others keep their order', () => {
    vi.useFakeTimers();
    const { q, expired } = queue({ queueTimeoutMs: 1000 });
    q.push('old', 'old:0');
    vi.advanceTimersByTime(600);
    q.push('new', 'new:0');
    q.push('new', 'new:1');
    vi.advanceTimersByTime(400);
    expect(expired).toEqual(['old:0']);
    expect(drainAll(q)).toEqual(['new:0', 'new:1']);
  });

  it('an onExpire that throws does not stop the other expiries; one that pushes is served', () => {
    vi.useFakeTimers();
    const seen: string[] = [];
    const q: FairQueue<string> = new FairQueue<string>({ ...roomy, queueTimeoutMs: 1000 }, (item) => {
      seen.push(item);
      if (item === 'a:0') throw new Error('handler bug');
      if (item === 'b:0') q.push('b', 'b:again');
    });
    q.push('a', 'a:0');
    q.push('b', 'b:0');
    vi.advanceTimersByTime(1000);
    expect(seen).toEqual(['a:0', 'b:0']);
    expect(q.size).toBe(1);
    expect(q.shift()).toBe('b:again');
  });

  it('its timer never keeps the process alive (unref)', () => {
    const count = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = count();
    const { q } = queue({ queueTimeoutMs: 60_000 });
    q.push('a', 'a:0');
    expect(count()).toBe(before);
    q.clear(() => undefined);
  });
});

describe('fair queue: clear', () => {
  it('hands every item to reject in push order, empties the queue and stops its timer', () => {
    vi.useFakeTimers();
    const { q, expired } = queue({ queueTimeoutMs: 1000 });
    q.push('a', 'a:0');
    q.push('b', 'b:0');
    q.push('a', 'a:1');
    const rejected: string[] = [];
    q.clear((item) => {
      // Empty before the first reject runs.
      expect(q.size).toBe(0);
      rejected.push(item);
    });
    expect(rejected).toEqual(['a:0', 'b:0', 'a:1']);
    expect(q.size).toBe(0);
    expect(q.callers).toBe(0);
    expect(q.sizeOf('a')).toBe(0);
    expect(q.shift()).toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(expired).toEqual([]);
    // Usable again.
    q.push('c', 'c:0');
    expect(q.shift()).toBe('c:0');
  });
});

describe('fair queue: hostile caller names', () => {
  const names = ['__proto__', 'constructor', 'hasOwnProperty', 'toString', '', 'x'.repeat(1 << 20), '\u0000\n\u202e'];

  it('treats each as an ordinary, separate caller', () => {
    const { q } = queue({ maxQueuedPerCaller: 2 });
    for (const name of names) {
      q.push(name, `${name}:0`);
      q.push(name, `${name}:1`);
      expect(syncCodeOf(() => q.push(name, `${name}:2`))).toBe('overloaded');
    }
    expect(q.size).toBe(names.length * 2);
    for (const name of names) expect(q.sizeOf(name)).toBe(2);
    expect(q.sizeOf('valueOf')).toBe(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const out = drainAll(q);
    // Round robin over all of them, each FIFO.
    expect(out.slice(0, names.length)).toEqual(names.map((n) => `${n}:0`));
    expect(out.slice(names.length)).toEqual(names.map((n) => `${n}:1`));
    expect(q.callers).toBe(0);
  });

  it('holds no memory for a caller once its items are gone', () => {
    const { q } = queue();
    for (let i = 0; i < 10_000; i++) {
      q.push(`caller-${i}`, `caller-${i}:0`);
      expect(q.shift()).toBe(`caller-${i}:0`);
    }
    expect(q.callers).toBe(0);
    expect(q.size).toBe(0);
  });
});
