/**
 * What an upgrade decides on its own, apart from the host that carries it out
 * (host/supervisor/host.ts): the upgrade options settled once, the svn rule, and a canary's trial:
 * which calls it takes and, from their outcomes, whether it is promoted or rolled back.
 *
 * ```
 *  blue-green: start new ─ self-check ─► switch (calls dispatched from now: new) ─► old drained, closed
 *  canary:     start new ─ self-check ─► trial: a share of calls to new
 *                 ├─ minCalls reached, error rate ≤ maxErrorRate ─► promoted: as a switch
 *                 ├─ errors past what maxErrorRate allows of minCalls ─► rolled back at once
 *                 └─ timeoutMs without minCalls ─► rolled back (`timeout`)
 *  svn of new < svn of current, without force ─► refused (`rollback`), nothing started
 * ```
 */
import { randomBytes } from 'node:crypto';
import { quoteInput } from '../../core/index.js';
import { EnclaveError } from '../../runtime/index.js';

/** Options of `EnclaveHost.upgrade`. */
export interface UpgradeOptions {
  /** `blue-green` (default): switch every call at once. `canary`: a share first, then promote or roll back. */
  readonly strategy?: 'blue-green' | 'canary';
  /** Canary: the share of calls the new version takes during its trial, (0, 1). Default 0.1. */
  readonly share?: number;
  /** Canary: calls the new version must answer before it is judged. Default 100. */
  readonly minCalls?: number;
  /** Canary: the highest share of failed calls (enclave failures, not callers' mistakes) that still promotes. Default 0.01. */
  readonly maxErrorRate?: number;
  /** Canary: how long the trial may take to reach `minCalls`; past it, rolled back. Default 60 000. */
  readonly timeoutMs?: number;
  /** Accept a new version whose svn is lower than the running one's. Default false. */
  readonly force?: boolean;
}

/** Settled upgrade options: every field present and checked. */
export interface SettledUpgrade {
  readonly strategy: 'blue-green' | 'canary';
  readonly share: number;
  readonly minCalls: number;
  readonly maxErrorRate: number;
  readonly timeoutMs: number;
  readonly force: boolean;
}

/**
 * Largest canary `minCalls`: a trial is a sample, not a soak.
 * @example
 * await host.upgrade('signer', spec, { strategy: 'canary', minCalls: Math.min(5000, MAX_CANARY_CALLS) });
 */
const MAX_CANARY_CALLS = 1_000_000;

const UPGRADE_KEYS: ReadonlySet<string> = new Set(['strategy', 'share', 'minCalls', 'maxErrorRate', 'timeoutMs', 'force']);

function refuse(message: string): never {
  throw new EnclaveError('invalid_options', message);
}

function numberIn(value: unknown, name: string, min: number, max: number, fallback: number, integer = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isSafeInteger(value))) {
    refuse(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}.`);
  }
  return value;
}

/**
 * Settles upgrade options once: defaults filled in, every value checked, unknown keys refused.
 * @throws {EnclaveError} `invalid_options` naming the first bad field.
 * @example
 * settleUpgrade({ strategy: 'canary', share: 0.2 }); // { strategy: 'canary', share: 0.2, minCalls: 100, ... }
 */
export function settleUpgrade(options: UpgradeOptions | undefined): SettledUpgrade {
  const o = options ?? {};
  if (typeof o !== 'object' || o === null) refuse('The upgrade options must be an object.');
  for (const key of Object.keys(o)) {
    if (!UPGRADE_KEYS.has(key)) refuse(`Unknown upgrade option ${quoteInput(key)}; known: ${[...UPGRADE_KEYS].join(', ')}.`);
  }
  const strategy = o.strategy ?? 'blue-green';
  if (strategy !== 'blue-green' && strategy !== 'canary') refuse("strategy must be 'blue-green' or 'canary'.");
  if (strategy === 'blue-green') {
    for (const key of ['share', 'minCalls', 'maxErrorRate', 'timeoutMs'] as const) {
      if (o[key] !== undefined) refuse(`${key} needs strategy: 'canary'.`);
    }
  }
  if (o.force !== undefined && typeof o.force !== 'boolean') refuse('force must be a boolean.');
  const share = numberIn(o.share, 'share', 0, 1, 0.1);
  if (share <= 0 || share >= 1) refuse('share must be above 0 and below 1: the canary takes some calls, never all.');
  return Object.freeze({
    strategy,
    share,
    minCalls: numberIn(o.minCalls, 'minCalls', 1, MAX_CANARY_CALLS, 100, true),
    maxErrorRate: numberIn(o.maxErrorRate, 'maxErrorRate', 0, 1, 0.01),
    // setTimeout takes at most 2^31 - 1 ms.
    timeoutMs: numberIn(o.timeoutMs, 'timeoutMs', 1, 2 ** 31 - 1, 60_000, true),
    force: o.force === true,
  });
}

/**
 * The svn rule of an upgrade: a version with a lower svn than the running one may carry a fixed
 * vulnerability again, so it is refused unless the operator says `force`.
 * @throws {EnclaveError} `rollback` when `to < from` and not forced.
 * @example
 * checkSvn(3, 2, false); // throws `rollback`
 * checkSvn(3, 2, true);  // fine: forced
 */
export function checkSvn(from: number, to: number, force: boolean): void {
  if (to < from && !force) {
    throw new EnclaveError('rollback', `The new module's svn (${to}) is below the running one's (${from}): deploy a newer build, or upgrade with { force: true }.`);
  }
}

/** How a canary's trial ended. */
export type TrialOutcome = { readonly outcome: 'promoted' } | { readonly outcome: 'rolled-back'; readonly reason: 'error_rate' | 'timeout' | 'stopped' };

/**
 * FNV-1a, 32 bits, from a trial's secret seed: a cheap hash of an affinity key to a share in
 * [0, 1), stable within one trial. Unseeded, the same key landed on the canary in every trial and
 * anyone could compute which: a caller choosing its session ids steered all its calls to the
 * canary (to promote a broken one with cheap successful calls) or away from it.
 */
function shareOf(key: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}

/**
 * A canary's trial: which calls it takes, its counts, and its verdict, delivered once to `decide`.
 * Calls with an affinity key (a session) go to the canary by a hash of the key, so a session stays
 * on one version for the whole trial; the others by chance, at `share`.
 * @example
 * const trial = new CanaryTrial(settleUpgrade({ strategy: 'canary' }), (v) => console.log(v.outcome));
 * if (trial.takes(undefined)) { ... } // about one call in ten
 * trial.record(false);                  // one answered call
 */
export class CanaryTrial {
  readonly share: number;
  /** Secret per trial: which sessions the canary takes cannot be known from their ids. */
  readonly #seed = randomBytes(4).readUInt32LE(0);
  #calls = 0;
  #errors = 0;
  readonly #minCalls: number;
  /** Errors beyond this fail the trial whatever comes after: maxErrorRate of minCalls. */
  readonly #errorBudget: number;
  readonly #maxErrorRate: number;
  #decide: ((outcome: TrialOutcome) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: SettledUpgrade, decide: (outcome: TrialOutcome) => void) {
    this.share = options.share;
    this.#minCalls = options.minCalls;
    this.#maxErrorRate = options.maxErrorRate;
    this.#errorBudget = options.maxErrorRate * options.minCalls;
    this.#decide = decide;
    this.#timer = setTimeout(() => this.#end({ outcome: 'rolled-back', reason: 'timeout' }), options.timeoutMs);
    // A trial in progress does not keep the process alive on its own.
    this.#timer.unref();
  }

  /** Calls the canary answered so far. */
  get calls(): number {
    return this.#calls;
  }

  /** Of those, the ones that failed by the enclave's fault. */
  get errors(): number {
    return this.#errors;
  }

  /** True while no verdict has been given. */
  get open(): boolean {
    return this.#decide !== undefined;
  }

  /** Whether a call with this affinity key (or none) goes to the canary. */
  takes(key: string | undefined): boolean {
    return (key === undefined ? Math.random() : shareOf(key, this.#seed)) < this.share;
  }

  /** Counts one answered call; gives the verdict once it is certain. */
  record(failed: boolean): void {
    if (this.#decide === undefined) return;
    this.#calls++;
    if (failed) this.#errors++;
    if (this.#errors > this.#errorBudget) this.#end({ outcome: 'rolled-back', reason: 'error_rate' });
    else if (this.#calls >= this.#minCalls) {
      this.#end(this.#errors <= this.#maxErrorRate * this.#calls ? { outcome: 'promoted' } : { outcome: 'rolled-back', reason: 'error_rate' });
    }
  }

  /** Ends the trial at once, rolled back for its failures (its breaker opened). Idempotent. */
  fail(): void {
    this.#end({ outcome: 'rolled-back', reason: 'error_rate' });
  }

  /** Ends the trial before its verdict (the enclave stops or fails): rolled back, `stopped`. Idempotent. */
  abort(): void {
    this.#end({ outcome: 'rolled-back', reason: 'stopped' });
  }

  #end(outcome: TrialOutcome): void {
    const decide = this.#decide;
    this.#decide = undefined;
    clearTimeout(this.#timer);
    decide?.(outcome);
  }
}
