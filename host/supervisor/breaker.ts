/**
 * The circuit breaker in front of one enclave: after `failures` consecutive failures of the enclave
 * itself it opens, and every call is refused `unavailable` without reaching the enclave; after
 * `halfOpenAfterMs` one probe call is let through: its success closes the breaker, its failure opens
 * it again.
 *
 * ```
 *  closed ──N consecutive enclave failures──► open ──halfOpenAfterMs──► half-open
 *    ▲                                          ▲                          │ one probe
 *    └──────────────── probe answered ──────────┼──────────────────────────┤
 *                                               └─── probe failed ─────────┘
 * ```
 *
 * Why our own breaker and not cockatiel's `circuitBreaker` (cockatiel gives the retries' backoff, retry.ts):
 * the breaker runs on every call (the hot path), retry only after a call failed. Measured with
 * node 20.20 on the shared 2-core build machine (load ~6), 1e6 awaited calls of an async function
 * that returns at once, bare and wrapped in one process, median of 9 rounds, ns per call:
 *
 *   bare call                                                   58
 *   cockatiel 3.2.1 circuitBreaker(handleWhen(..), { breaker:
 *     new ConsecutiveBreaker(5), halfOpenAfter }).execute(fn)  233   (+175)
 *   this Breaker's run(fn)                                       95   (+37)
 *   withRetry(fn) (retry.ts: first attempt bare)                104   (+45)
 *   withRetry(() => breaker.run(fn))                            130   (+72)
 *   cockatiel retry(...).execute(fn) on every call     ~+390 (a separate run: bare 90, 481)
 *
 * The issue's budget for the whole host is about 0.3 us over a 2 us bare call: cockatiel's breaker
 * alone would take more than half of it, and its retry policy more than all of it, so the host
 * keeps its own breaker, and its retries build nothing until a first retryable failure. Cockatiel's
 * half-open state also differs from what the host needs: while its probe runs, cockatiel makes
 * every other call wait for the probe and then run, so a stalled enclave gathers an unbounded line
 * of waiting calls; here they are refused `unavailable` at once.
 */
import { EnclaveError, type ErrorCode } from '../../runtime/index.js';

/** The breaker's states, in one list. */
const BREAKER_STATES = Object.freeze(['closed', 'open', 'half-open'] as const);

/** A state of {@link Breaker}. */
export type BreakerState = (typeof BREAKER_STATES)[number];

/** How a breaker trips and recovers. */
export interface BreakerOptions {
  /** Consecutive enclave failures that open the breaker: an integer 1..1_000_000. */
  readonly failures: number;
  /** Time open before one probe call is let through, ms: 0..2_147_483_647 (what a timer can wait). */
  readonly halfOpenAfterMs: number;
}

/**
 * The codes that count as a failure of the enclave or of its instance, not of the caller; only
 * these open the breaker. Each code of the call path, decided:
 *
 * - `trap`: counted. The enclave hit `unreachable` or another fault, or its worker died (the
 *   runtime reports a dead worker as `trap`). A correct enclave answers a bad request with an
 *   `err` reply, never a trap; a caller who can make it trap has found a bug of the module.
 * - `bad_reply`: counted. The enclave broke the reply format: the module's bug.
 * - `internal`: counted. The enclave says it failed internally, or its worker broke the protocol.
 * - `timeout`: counted. The instance did not answer within its deadline and its worker was
 *   stopped: repeated, the enclave is not serving (hung, or too slow for its deadline).
 * - `stack_overflow`: counted. The module recursed past the engine's stack; a correct module
 *   bounds its recursion by what its contract lets a request hold, and every one discards an
 *   instance, a cost every caller bears.
 * - `fuel_exhausted`: not counted. The meter did its job on one request that cost more than the
 *   policy's budget: any caller could send legal but expensive requests and open the breaker for
 *   everyone.
 * - `invalid_args`, `too_large`: not counted. The caller's arguments, refused on the host side
 *   before anything crossed (a reply over the contract's item bound is `too_large` too: the request
 *   chose what it asked for).
 * - `overloaded`: not counted. The queue's state, not the enclave's health; counting it would turn
 *   load shedding into a whole outage.
 *
 * A hostile caller who can make an enclave trap or time out can still open the breaker for every
 * caller: its per-caller rate limit (the access policy) bounds how fast, and the open state lasts
 * `halfOpenAfterMs` at a time. An enclave that traps on a request has a bug worth the outage.
 * @example
 * BREAKER_FAILURE_CODES.has('trap'); // true
 * BREAKER_FAILURE_CODES.has('invalid_args'); // false
 */
export const BREAKER_FAILURE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['trap', 'bad_reply', 'internal', 'timeout', 'stack_overflow']);

/**
 * The codes by which the enclave itself answered (an `err` reply of a working enclave): like a reply,
 * they show the enclave serving, so they reset the count and a probe ending with one closes the
 * breaker. Every other code (`invalid_args`, `too_large`, `fuel_exhausted`, `overloaded`, `closed`,
 * `unavailable`, ...) says nothing about the enclave's health: it neither counts nor resets, and a
 * probe ending with one leaves the breaker half-open for the next call to probe.
 *
 * Not `unknown_op` nor `state`: the runtime refuses an op the contract does not declare
 * (`unknown_op`) and an op whose `requires` have not run on the instance (`state`) itself, before
 * any enclave code runs. As healthy codes they let any caller close a half-open breaker with a
 * made-up op name, and keep a closed one from ever opening by sending one between failures.
 * @example
 * BREAKER_HEALTHY_CODES.has('denied'); // true
 * BREAKER_HEALTHY_CODES.has('unknown_op'); // false
 */
export const BREAKER_HEALTHY_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['bad_request', 'denied', 'limit']);

/**
 * What {@link Breaker.enter} answers: refuse the call (`unavailable`), let it through (closed), or
 * let it through as the half-open probe.
 * @example
 * if (breaker.enter() === BREAKER_REFUSED) throw new EnclaveError('unavailable');
 */
export const BREAKER_REFUSED = 0;
/**
 * {@link Breaker.enter}: the breaker is closed, the call passes.
 * @example
 * breaker.settle(BREAKER_PASS, true, undefined);
 */
export const BREAKER_PASS = 1;
/**
 * {@link Breaker.enter}: the breaker is half-open and this call is its probe.
 * @example
 * if (pass === BREAKER_PROBE) log.info('probing the enclave');
 */
const BREAKER_PROBE = 2;
/** A pass of {@link Breaker.enter}. */
export type BreakerPass = typeof BREAKER_REFUSED | typeof BREAKER_PASS | typeof BREAKER_PROBE;

/**
 * The refusal of an open breaker (or of a half-open one whose probe is in flight).
 * @example
 * if (breaker.enter() === BREAKER_REFUSED) throw breakerOpen();
 */
export function breakerOpen(): EnclaveError {
  return new EnclaveError('unavailable', 'The enclave failed repeatedly and its circuit breaker is open: retry later, or check the host events.');
}

const MAX_FAILURES = 1_000_000;
/** The longest a Node timer waits; a longer delay would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

type Outcome = 'failure' | 'healthy' | 'neutral';

/** What a call's error says of the enclave's health. */
function outcomeOf(err: unknown): Outcome {
  if (!(err instanceof EnclaveError)) return 'neutral';
  if (BREAKER_FAILURE_CODES.has(err.code)) return 'failure';
  return BREAKER_HEALTHY_CODES.has(err.code) ? 'healthy' : 'neutral';
}

function checkOptions(options: BreakerOptions): void {
  if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_options', 'The breaker options must be an object.');
  const { failures, halfOpenAfterMs } = options;
  if (!Number.isInteger(failures) || failures < 1 || failures > MAX_FAILURES) {
    throw new EnclaveError('invalid_options', `breaker.failures must be an integer from 1 to ${MAX_FAILURES}.`);
  }
  if (typeof halfOpenAfterMs !== 'number' || !(halfOpenAfterMs >= 0 && halfOpenAfterMs <= MAX_TIMER_MS)) {
    throw new EnclaveError('invalid_options', `breaker.halfOpenAfterMs must be a number of ms from 0 to ${MAX_TIMER_MS}.`);
  }
}

/**
 * A consecutive-failure circuit breaker (see the file's comment for the states). One per enclave
 * version; `onState` hears every change (the host turns it into its `breaker` event).
 *
 * Calls started while closed and ending after the breaker opened change nothing: only the probe
 * decides a half-open breaker. A listener that throws is ignored: the breaker's state never
 * depends on it.
 * @example
 * const breaker = new Breaker({ failures: 5, halfOpenAfterMs: 5000 }, (state) => host.emit('breaker', { enclave, state }));
 * const reply = await breaker.run(() => handle.call('echo', 'hi'));
 */
export class Breaker {
  readonly #failures: number;
  readonly #halfOpenAfterMs: number;
  readonly #onState: (state: BreakerState) => void;
  #state: BreakerState = 'closed';
  /** Consecutive enclave failures seen while closed. */
  #consecutive = 0;
  /** True while the half-open probe is in flight. */
  #probing = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #disposed = false;

  /**
   * @throws {EnclaveError} `invalid_options` for failures outside 1..1_000_000 or a delay outside
   *   0..2_147_483_647 ms.
   * @example
   * const breaker = new Breaker({ failures: 5, halfOpenAfterMs: 5000 }, () => undefined);
   */
  constructor(options: BreakerOptions, onState: (state: BreakerState) => void) {
    checkOptions(options);
    if (typeof onState !== 'function') throw new EnclaveError('invalid_options', 'The breaker needs an onState function.');
    this.#failures = options.failures;
    this.#halfOpenAfterMs = options.halfOpenAfterMs;
    this.#onState = onState;
  }

  /** `closed` (calls pass), `open` (calls refused) or `half-open` (one probe call passes). */
  get state(): BreakerState {
    return this.#state;
  }

  /**
   * Runs `fn` unless the breaker is open, and learns from its outcome. Closed, this costs one
   * promise reaction. (The host's call path uses {@link Breaker.enter} and {@link Breaker.settle}
   * instead: no promise or closure of its own.)
   * @throws {EnclaveError} `unavailable` (rejected, `fn` not called) while open, or half-open with
   *   its probe in flight; otherwise whatever `fn` rejects with, unchanged.
   * @example
   * await breaker.run(() => handle.call('health', null));
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const pass = this.enter();
    if (pass === BREAKER_REFUSED) return Promise.reject(breakerOpen());
    let pending: Promise<T>;
    try {
      pending = fn();
    } catch (err) {
      pending = Promise.reject(err);
    }
    if (pass === BREAKER_PASS) return pending.then(this.#onValue as (value: T) => T, this.#onError);
    return pending.then(
      (value) => {
        this.settle(BREAKER_PROBE, true, undefined);
        return value;
      },
      (err: unknown) => {
        this.settle(BREAKER_PROBE, false, err);
        throw err;
      },
    );
  }

  /**
   * Asks to let one call through, without running it: the caller runs the call and then reports
   * its outcome with {@link Breaker.settle} and the pass this returned (every pass other than
   * `BREAKER_REFUSED` must be settled exactly once). Closed: `BREAKER_PASS`, nothing to allocate.
   * Half-open with no probe running: `BREAKER_PROBE` (this call is the probe). Open, or its probe
   * in flight: `BREAKER_REFUSED` (refuse the call `unavailable` without running it).
   * @example
   * const pass = breaker.enter();
   * if (pass === BREAKER_REFUSED) throw new EnclaveError('unavailable');
   * try { const v = await call(); breaker.settle(pass, true, undefined); return v; }
   * catch (err) { breaker.settle(pass, false, err); throw err; }
   */
  enter(): BreakerPass {
    if (this.#state === 'closed') return BREAKER_PASS;
    if (this.#state === 'open' || this.#probing) return BREAKER_REFUSED;
    this.#probing = true;
    return BREAKER_PROBE;
  }

  /**
   * The outcome of a call {@link Breaker.enter} let through: `ok` true for a reply, else `err` is
   * what it failed with (its code decides: see BREAKER_FAILURE_CODES). A `BREAKER_PASS` that ends
   * after the breaker opened changes nothing: only the probe decides a half-open breaker.
   * @example
   * breaker.settle(pass, false, new EnclaveError('trap'));
   */
  settle(pass: BreakerPass, ok: boolean, err: unknown): void {
    if (pass === BREAKER_PROBE) this.#probed(ok ? 'healthy' : outcomeOf(err));
    else if (pass === BREAKER_PASS && this.#state === 'closed') {
      if (ok) this.#consecutive = 0;
      else this.#failedWhileClosed(err);
    }
  }

  /**
   * Stops the half-open timer; from then on the state never changes and `onState` is never called
   * (the enclave is stopped). Idempotent.
   * @example
   * breaker.dispose();
   */
  dispose(): void {
    this.#disposed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // Bound once, not per call: a closure per call is what the hot path cannot afford.
  readonly #onValue = (value: unknown): unknown => {
    if (this.#state === 'closed') this.#consecutive = 0;
    return value;
  };

  readonly #onError = (err: unknown): never => {
    if (this.#state === 'closed') this.#failedWhileClosed(err);
    throw err;
  };

  #failedWhileClosed(err: unknown): void {
    const outcome = outcomeOf(err);
    if (outcome === 'healthy') this.#consecutive = 0;
    else if (outcome === 'failure' && ++this.#consecutive >= this.#failures) this.#open();
  }

  #probed(outcome: Outcome): void {
    this.#probing = false;
    if (this.#state !== 'half-open') return;
    if (outcome === 'healthy') {
      this.#consecutive = 0;
      this.#set('closed');
    } else if (outcome === 'failure') {
      this.#open();
    }
    // neutral: the probe proved nothing; the breaker stays half-open and the next call probes.
  }

  #open(): void {
    this.#consecutive = 0;
    if (this.#disposed) return;
    this.#set('open');
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === 'open') this.#set('half-open');
    }, this.#halfOpenAfterMs);
    // An open breaker must not keep a service's process alive.
    this.#timer.unref?.();
  }

  #set(state: BreakerState): void {
    if (this.#disposed) return;
    this.#state = state;
    try {
      this.#onState(state);
    } catch {
      // The listener's failure is its own; the breaker's state must not depend on it.
    }
  }
}
