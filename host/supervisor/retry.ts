/**
 * Retries of the ops a contract marks `idempotent`: capped attempts, jittered exponential backoff
 * with a maximum delay, and only for the codes in {@link RETRY_CODES}.
 *
 * The policy is cockatiel's (`retry`, `handleWhen`, `ExponentialBackoff` with its decorrelated
 * jitter): a well-kept library beats a hand-written backoff. It stays off the hot path: the first
 * attempt runs bare (`attempt().catch(...)`, one promise reaction: +45 ns a call measured, where
 * cockatiel's `execute` on every call cost about +390 ns), and cockatiel's policy is built only
 * after a first retryable failure, when a delay of milliseconds follows anyway. The breaker, which
 * runs on every call, is the host's own (breaker.ts, with the measured figures).
 */
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
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

/** The retries after a first failure `err`, through cockatiel's policy. */
async function retryAfter<T>(err: unknown, attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  if (!retryable(err)) throw err;
  checkRetryOptions(options);
  if (options.maxAttempts === 1) throw err;
  const policy = retry(
    handleWhen((e) => retryable(e)),
    {
      // cockatiel counts retries, not attempts.
      maxAttempts: options.maxAttempts - 1,
      backoff: new ExponentialBackoff({ initialDelay: options.initialDelayMs, maxDelay: options.maxDelayMs }),
    },
  );
  const { onRetry } = options;
  if (onRetry !== undefined) {
    policy.onRetry((event) => {
      try {
        const code = 'error' in event && event.error instanceof EnclaveError ? event.error.code : 'internal';
        onRetry(code, event.attempt, event.delay);
      } catch {
        // A metrics listener's failure must not change the call's outcome.
      }
    });
  }
  // cockatiel's attempt 0 replays the failure already seen, so its backoff starts from it.
  return policy.execute(({ attempt: n }) => (n === 0 ? Promise.reject(err) : attempt()));
}
