/**
 * Retries of the ops a contract marks `idempotent`: capped attempts, jittered exponential backoff
 * with a maximum delay, and only for the codes in {@link RETRY_CODES}.
 *
 * The delays are cockatiel's (`ExponentialBackoff` with its decorrelated jitter): a well-kept
 * library beats a hand-written backoff. The loop around them is ours, because a stop must not wait
 * out a backoff: cockatiel 3.2's `RetryPolicy.execute(fn, signal)` takes an AbortSignal but its
 * delay is a plain `setTimeout` that ignores it (and, after an abort, it still calls `fn` once
 * more when the delay ends), so with `maxDelayMs` up to 60 s and `maxAttempts` up to 10 a stop()
 * could wait minutes. Here an abort ends the wait at once (its timer cleared) and the call rejects
 * `unavailable`. It stays off the hot path: the first attempt runs bare (`attempt().catch(...)`,
 * one promise reaction: +45 ns a call measured, where cockatiel's `execute` on every call cost
 * about +390 ns), and nothing of the retry is built until a first retryable failure, when a delay
 * of milliseconds follows anyway. The breaker, which runs on every call, is the host's own
 * (breaker.ts, with the measured figures).
 */
import { setMaxListeners } from 'node:events';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { EnclaveError, type ErrorCode } from '../../runtime/index.js';

/**
 * The codes retried for an idempotent op: a fault of the instance that a fresh instance may not
 * repeat. Each code, decided:
 *
 * - `trap`: retried. A worker that died during the call (a crash, its resourceLimits) is reported
 *   as `trap`, and the retry runs on a fresh instance. A deterministic trap costs one more fresh
 *   instance per admitted call at most (`maxAttempts`, default 2), bounded by the caller's rate
 *   limit; both attempts count for the breaker, which then opens sooner.
 * - `timeout`: retried. A worker stalled or starved on a loaded machine is stopped at its deadline
 *   and replaced; the same cost bound holds for a request that is simply too expensive.
 * - `overloaded`: not retried. The host's own queue refused the call: retrying inside the host
 *   would double a flood and hold back the immediate answer overload needs; the caller sees the
 *   code's `retryable` flag and backs off itself.
 * - `unavailable`, `rate_limited`: not retried. A breaker opens for seconds, a stopped enclave for
 *   good, a rate limit refills at the caller's rate: a retry within `maxDelayMs` cannot help.
 * - `fuel_exhausted`, `stack_overflow`, `bad_reply`, `internal`, `invalid_args`, `too_large`, the
 *   enclave's own `err` codes, and every `usage` code (`invalid_options`...) or access code
 *   (`unauthorized`, `denied`, `quota_exceeded`): not retried. The same request fails the same way.
 *
 * The core table's `retryable` flag is the caller's view and leaves `trap` and `timeout` out: a
 * caller does not know which ops are idempotent; the host does, from the contract.
 * @example
 * RETRY_CODES.has('timeout'); // true
 * RETRY_CODES.has('invalid_args'); // false
 */
export const RETRY_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['trap', 'timeout']);

/** How an idempotent op is retried. */
export interface RetryOptions {
  /** Attempts in all, the first included: an integer 1..10 (1: never retried). */
  readonly maxAttempts: number;
  /** The scale of the first delay, ms (the first delay is jittered between 0 and about 1.4x it): 0..60_000. */
  readonly initialDelayMs: number;
  /** No delay is longer, ms: initialDelayMs..60_000. */
  readonly maxDelayMs: number;
  /** Told before each retry's delay (for metrics); a listener that throws is ignored. */
  readonly onRetry?: (code: ErrorCode, attempt: number, delayMs: number) => void;
  /**
   * Aborted: no further attempt; a backoff under way ends at once (its timer cleared) and the
   * call rejects `unavailable` (the host aborts it when the enclave stops or fails).
   */
  readonly signal?: AbortSignal;
}

const MAX_ATTEMPTS = 10;
const MAX_DELAY_MS = 60_000;

/**
 * Checks retry options; the host calls it when an enclave starts, so a bad option is refused then,
 * not at the first failure.
 * @throws {EnclaveError} `invalid_options` naming the bad field.
 * @example
 * checkRetryOptions({ maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 200 });
 */
export function checkRetryOptions(options: RetryOptions): void {
  if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_options', 'The retry options must be an object.');
  const { maxAttempts, initialDelayMs, maxDelayMs, onRetry } = options;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS) {
    throw new EnclaveError('invalid_options', `retry.maxAttempts must be an integer from 1 to ${MAX_ATTEMPTS}.`);
  }
  if (typeof initialDelayMs !== 'number' || !(initialDelayMs >= 0 && initialDelayMs <= MAX_DELAY_MS)) {
    throw new EnclaveError('invalid_options', `retry.initialDelayMs must be a number of ms from 0 to ${MAX_DELAY_MS}.`);
  }
  if (typeof maxDelayMs !== 'number' || !(maxDelayMs >= initialDelayMs && maxDelayMs <= MAX_DELAY_MS)) {
    throw new EnclaveError('invalid_options', `retry.maxDelayMs must be a number of ms from retry.initialDelayMs to ${MAX_DELAY_MS}.`);
  }
  if (onRetry !== undefined && typeof onRetry !== 'function') throw new EnclaveError('invalid_options', 'retry.onRetry must be a function.');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new EnclaveError('invalid_options', 'retry.signal must be an AbortSignal.');
}

/** True for an error the retry policy retries. */
function retryable(err: unknown): err is EnclaveError {
  return err instanceof EnclaveError && RETRY_CODES.has(err.code);
}

/**
 * Runs `attempt`, and again after a jittered, growing delay while it fails with a code in
 * {@link RETRY_CODES}, `maxAttempts` times in all. Use it only for ops the contract marks
 * `idempotent`: an attempt may have run before it failed.
 * @throws {EnclaveError} `invalid_options` (rejected) for bad options, checked when a first
 *   retryable failure needs them (the host checks them at start with {@link checkRetryOptions});
 *   otherwise the last attempt's error, unchanged: at once for a code not retried.
 * @example
 * const reply = await withRetry(() => breaker.run(() => handle.call('echo', 'hi')), { maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 200 });
 */
export function withRetry<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  let first: Promise<T>;
  try {
    first = attempt();
  } catch (err) {
    first = Promise.reject(err);
  }
  // The hot path: one reaction; nothing of cockatiel's is built unless a retry follows.
  return first.catch((err: unknown) => retryAfter(err, attempt, options));
}

/** The refusal of a call whose retries were cut by the signal. */
function stopped(last: unknown): EnclaveError {
  return new EnclaveError('unavailable', 'The enclave stopped before the call could be retried.', { cause: last });
}

/** Waits `ms`; an abort ends the wait at once, clears its timer, and rejects `unavailable`. */
function backoff(ms: number, signal: AbortSignal | undefined, last: unknown): Promise<void> {
  if (signal === undefined) return new Promise((resolve) => setTimeout(resolve, ms));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(stopped(last));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    // One listener per call waiting out a backoff, on the enclave's one signal: more than 10 at
    // once is normal load, not a leak (Node would print MaxListenersExceededWarning).
    setMaxListeners(0, signal);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The retries after a first failure `err`: cockatiel's jittered delays, cut short by the signal. */
async function retryAfter<T>(err: unknown, attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  if (!retryable(err)) throw err;
  checkRetryOptions(options);
  const { maxAttempts, onRetry, signal } = options;
  let last: unknown = err;
  const cut = (): boolean => signal?.aborted === true;
  let delays: IBackoff<unknown> = new ExponentialBackoff({ initialDelay: options.initialDelayMs, maxDelay: options.maxDelayMs }).next();
  for (let n = 1; n < maxAttempts; n++) {
    if (cut()) throw stopped(last);
    const delayMs = delays.duration;
    delays = delays.next(undefined);
    if (onRetry !== undefined) {
      try {
        onRetry((last as EnclaveError).code, n, delayMs);
      } catch {
        // A metrics listener's failure must not change the call's outcome.
      }
    }
    await backoff(delayMs, signal, last);
    if (cut()) throw stopped(last);
    try {
      return await attempt();
    } catch (e) {
      if (!retryable(e)) throw e;
      last = e;
    }
  }
  throw last;
}
