/**
 * The throughput profile of an enclave's ops (`host.stats()`): per op, calls and errors by code
 * since start, calls per second over the last minute, latency percentiles and fuel over the last
 * calls. Memory is fixed per op: two rings of {@link RING_SIZE} samples and {@link RATE_WINDOW_SECONDS}
 * per-second buckets, whatever the traffic.
 *
 * ```
 *  call ends ─► OpRecorder.call(ok, code, fuel, ms, second)
 *                 calls++, errors++, byCode[code]++        (counts since start)
 *                 latency ring [1024] ◄─ ms                (overwrites the oldest)
 *                 fuel ring    [1024] ◄─ fuel
 *                 rate buckets [60]   ◄─ +1 in bucket second % 60 (reset when its second is stale)
 *  stats() ───► snapshot(second): sorts a COPY of each ring, reads p50 / p90 / p99 / max
 * ```
 *
 * The hot path never sorts and never allocates (a code's first error adds one `Map` entry, from
 * the bounded set of error codes); the cost is paid by whoever asks for the profile.
 */

/** Samples a ring keeps: latency and fuel percentiles are over the last this many calls. */
export const RING_SIZE = 1024;

/** Seconds `callsPerSecond` is averaged over. */
const RATE_WINDOW_SECONDS = 60;

/** The throughput profile of one op (what `host.stats()` reports per op). */
export interface OpStats {
  /** Calls the host answered for this op since it started, refused ones included. */
  readonly calls: number;
  /** Of those, the ones that failed (refused by the host, or failed in the enclave). */
  readonly errors: number;
  /** `errors` by their stable code (`overloaded`, `denied`, `trap`, ...). */
  readonly errorsByCode: Record<string, number>;
  /** Mean calls per second over the last {@link RATE_WINDOW_SECONDS} s (or since start, if shorter). */
  readonly callsPerSecond: number;
  /** Time in the runtime, from dispatch to settling (the host's own measure; a standalone observer's is `enclave:call:end` durationMs), over the last {@link RING_SIZE} calls that reached it, ms. */
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
  /** Fuel used over the last {@link RING_SIZE} calls that reached the runtime. */
  readonly fuel: { readonly mean: number; readonly p99: number };
}

/**
 * The p-th percentile of ascending samples by the nearest-rank method: the smallest sample with
 * at least p% of the samples at or below it. 0 for no samples.
 * @throws {RangeError} when p is not within 0..100.
 * @example
 * percentile(Float64Array.of(1, 2, 3, 4), 50); // 2
 * percentile(Float64Array.of(1, 2, 3, 4), 99); // 4
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${String(p)}`);
  const n = sorted.length;
  if (n === 0) return 0;
  // Nearest rank: ceil(p/100 * n), 1-based; p = 0 is the minimum.
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(rank, n) - 1]!;
}

/**
 * The last `capacity` numbers pushed, oldest overwritten first. Its array is allocated on the
 * first push, so an op never called costs no ring.
 * @example
 * const ring = new SampleRing(3);
 * [5, 1, 4, 2].forEach((v) => ring.push(v));
 * ring.sorted(); // Float64Array [1, 2, 4]
 */
export class SampleRing {
  readonly capacity: number;
  #values: Float64Array | undefined;
  #next = 0;
  #size = 0;

  /** @throws {RangeError} when capacity is not an integer of 1..2^20. */
  constructor(capacity: number = RING_SIZE) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 20) throw new RangeError(`capacity must be an integer of 1..2^20, got ${String(capacity)}`);
    this.capacity = capacity;
  }

  /** Samples held: the pushes so far, at most `capacity`. */
  get size(): number {
    return this.#size;
  }

  /** Keeps `value`, dropping the oldest sample when full. */
  push(value: number): void {
    const values = (this.#values ??= new Float64Array(this.capacity));
    values[this.#next] = value;
    this.#next = this.#next + 1 === this.capacity ? 0 : this.#next + 1;
    if (this.#size < this.capacity) this.#size++;
  }

  /** A sorted copy of the samples held (the ring itself is left in push order). */
  sorted(): Float64Array {
    if (this.#values === undefined) return new Float64Array(0);
    // Typed-array sort is numeric, not lexicographic.
    return this.#values.slice(0, this.#size).sort();
  }

  /** The mean of the samples held; 0 for none. */
  mean(): number {
    if (this.#values === undefined || this.#size === 0) return 0;
    let sum = 0;
    for (let i = 0; i < this.#size; i++) sum += this.#values[i]!;
    return sum / this.#size;
  }
}

/**
 * Counts per second over a sliding window of whole seconds: one bucket per second, reused
 * `seconds` later (a bucket whose second is stale counts as empty). Seconds are whatever clock
 * the owner keeps; they only need to grow.
 * @example
 * const w = new RateWindow(60);
 * w.add(100); w.add(100); w.add(101);
 * w.count(101); // 3: seconds 42..101
 */
export class RateWindow {
  readonly seconds: number;
  readonly #stamps: Float64Array;
  readonly #counts: Float64Array;

  /** @throws {RangeError} when seconds is not an integer of 1..3600. */
  constructor(seconds: number = RATE_WINDOW_SECONDS) {
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new RangeError(`seconds must be an integer of 1..3600, got ${String(seconds)}`);
    this.seconds = seconds;
    this.#stamps = new Float64Array(seconds).fill(-Infinity);
    this.#counts = new Float64Array(seconds);
  }

  /** Counts one event (or `n`) in second `second`. */
  add(second: number, n = 1): void {
    const i = second % this.seconds;
    if (this.#stamps[i] !== second) {
      this.#stamps[i] = second;
      this.#counts[i] = 0;
    }
    this.#counts[i]! += n;
  }

  /** Events in the window that ends with second `now` (seconds now-seconds+1 .. now). */
  count(now: number): number {
    let total = 0;
    for (let i = 0; i < this.seconds; i++) {
      const stamp = this.#stamps[i]!;
      if (stamp <= now && stamp > now - this.seconds) total += this.#counts[i]!;
    }
    return total;
  }
}

/**
 * The profile of one op: fed per call, read by {@link OpRecorder.snapshot}. `second` is the
 * owner's clock in whole seconds (the observer's ticking clock).
 * @example
 * const op = new OpRecorder(0);
 * op.call(true, undefined, 1200, 0.004, 0);
 * op.refusal('overloaded', 0);
 * op.snapshot(0).errorsByCode; // { overloaded: 1 }
 */
export class OpRecorder {
  calls = 0;
  errors = 0;
  /** Errors by code: keys come from the bounded table of error codes, never from a caller. */
  readonly byCode = new Map<string, number>();
  readonly #latency = new SampleRing(RING_SIZE);
  readonly #fuel = new SampleRing(RING_SIZE);
  readonly #rate = new RateWindow(RATE_WINDOW_SECONDS);
  readonly #since: number;

  /** @param since the second the record starts: a young record's rate is over its age, not the whole window. */
  constructor(since: number) {
    this.#since = since;
  }

  /** A call that reached the runtime settled (`enclave:call:end`). `code` is undefined when `ok`. */
  call(ok: boolean, code: string | undefined, fuel: number, durationMs: number, second: number): void {
    this.calls++;
    this.#rate.add(second);
    if (!ok) this.#error(code ?? 'internal');
    this.#latency.push(durationMs);
    this.#fuel.push(fuel);
  }

  /** A call the host refused before it reached the runtime. */
  refusal(code: string, second: number): void {
    this.calls++;
    this.#rate.add(second);
    this.#error(code);
  }

  #error(code: string): void {
    this.errors++;
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  }

  /** The profile as of second `now`: sorts copies of the rings (O(n log n), n <= 1024). */
  snapshot(now: number): OpStats {
    const latency = this.#latency.sorted();
    const fuel = this.#fuel.sorted();
    const window = Math.max(1, Math.min(RATE_WINDOW_SECONDS, now - this.#since + 1));
    // Keys are error codes (the bounded table), never caller text: a plain object is safe.
    const errorsByCode: Record<string, number> = {};
    for (const [code, n] of this.byCode) errorsByCode[code] = n;
    return {
      calls: this.calls,
      errors: this.errors,
      errorsByCode,
      callsPerSecond: this.#rate.count(now) / window,
      latencyMs: {
        p50: percentile(latency, 50),
        p90: percentile(latency, 90),
        p99: percentile(latency, 99),
        max: latency.length === 0 ? 0 : latency[latency.length - 1]!,
      },
      fuel: { mean: this.#fuel.mean(), p99: percentile(fuel, 99) },
    };
  }
}

/**
 * Whole seconds since it started, advanced by an unref'd 1 s timer: the hot path reads a field
 * instead of a clock (performance.now() costs ~50 ns, a sixth of the host's per-call budget).
 * `onTick` runs on each tick (the observer re-reads whether a tracer is installed there).
 * @example
 * const clock = new TickingClock(() => undefined);
 * clock.second; // 0, then 1 a second later
 * clock.stop();
 */
export class TickingClock {
  second = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(onTick: () => void) {
    this.#timer = setInterval(() => {
      this.second++;
      onTick();
    }, 1000);
    // A host's clock must never keep a service's process alive.
    this.#timer.unref();
  }

  /** Stops the timer (idempotent). */
  stop(): void {
    clearInterval(this.#timer);
  }
}
