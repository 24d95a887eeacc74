/**
 * `EnclaveHost`: the supervisor a Node service embeds to run named enclaves. It owns their
 * lifecycle (host/supervisor/states.ts), and every call goes through it: the caller's access, the
 * enclave's state, the contract's order, the breaker, the fair queue in front of a pool of
 * instances, retries of idempotent ops, and the observer. Upgrades switch versions with no failed
 * call. Built only on the runtime's public surface (runtime/index.ts).
 *
 * ```
 *  host.call(caller, enclave, op, args, { session, stats })
 *   1-3 AccessGate.admit: caller id, may it call enclave.op, rate, quota   unauthorized / denied / rate_limited / quota_exceeded
 *   4   enclave known and `ready`?                                           unavailable (after access: names are not probed)
 *   5   contract order (op.requires) in this (caller, session)              state
 *   6   breaker of the version open?                                         unavailable
 *   7   version: the canary's share, or the current one
 *   8   pool.acquire(affinity): idle member and nobody queued ─► dispatch now (the fast path)
 *       else FairQueue.push(caller, job, weight)                             overloaded (full, caller's share full, waited too long)
 *   9   member.handle.call(op, args, { session: caller|session (per-session state), stats }) under the breaker
 *       ─► release the member, pump the queue; success: the op counts for `requires`;
 *          idempotent op + trap/timeout: retried with backoff (retry.ts)
 *  10   observer: span (when an SDK is installed), refusals counted; each call that reached the
 *       runtime counted from here (code, fuel, time from dispatch); restarts from the runtime's
 *       diagnostics channels
 * ```
 *
 * A version is chosen when a call is dispatched, not when it is queued: a call queued across a
 * switch runs on the version serving when its turn comes; a call in flight finishes on its own
 * version, which is closed only once nothing runs on it.
 *
 * Attack surface: everything a caller passes (caller id, enclave name, op, session, args, options)
 * is hostile. Strings are bounded before use and are only ever `Map` keys or `Map` lookups, never
 * plain-object keys or metric labels; a caller's session is namespaced by its caller id before it
 * reaches the runtime, so a caller can never name another's session.
 */
import os from 'node:os';
import { resolve } from 'node:path';
import { quoteInput } from '../../core/index.js';
import {
  compileEnclave,
  DEFAULT_MAX_SESSIONS,
  EnclaveError,
  type CallOptions,
  type Capability,
  type EnclaveHandle,
  type EnclaveModule,
  type EnclaveOptions,
  type EnclavePlatform,
  type ErrorCode,
  type Limits,
  type StatePolicy,
  type WorkerResourceLimits,
} from '../../runtime/index.js';
import type { TrustPolicy } from '../../attest/index.js';
import { AccessGate, FairRecentMap, isAccessPolicy, parseAccessPolicy, readAccessPolicy, SessionSequences, type AccessPolicy } from './access.js';
import { Breaker, BREAKER_FAILURE_CODES, BREAKER_PASS, BREAKER_REFUSED, breakerOpen, type BreakerPass, type BreakerState } from './breaker.js';
import { FairQueue, type FairQueueOptions } from './fair-queue.js';
import { checkIntegrity } from './integrity.js';
import { HostObserver, type CallRecord, type OpStats } from './observer.js';
import { InstancePool, type PoolMember } from './pool.js';
import { checkRetryOptions, RETRY_CODES, withRetry, type RetryOptions } from './retry.js';
import { checkTransition, HOST_EVENTS, type HostEventName, type HostEvents, type HostListener, type HostState, type SwapEvent } from './states.js';
import { CanaryTrial, checkSvn, settleUpgrade, type SettledUpgrade, type TrialOutcome, type UpgradeOptions } from './upgrade.js';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';

/** An enclave name: what `start` accepts, and what may appear in metrics, events and stats. */
const ENCLAVE_NAME = /^[a-z][a-z0-9-]{0,63}$/;
/** Longest enclave name (ENCLAVE_NAME) and op name (the contract's rule). */
const MAX_NAME = 64;
/**
 * Longest session id a caller may pass, UTF-16 units. The runtime's own bound is 256 and the host
 * prefixes the caller id (at most 128) and a separator: 256 - 128 - 1.
 * @example
 * await host.call('billing', 'kv', 'get', { k: 'a' }, { session: orderId.slice(0, MAX_HOST_SESSION) });
 */
export const MAX_HOST_SESSION = 127;
/**
 * Instances of one enclave at most: a pool, not a fleet.
 * @example
 * await host.start('signer', { module: 'signer.wasm', instances: Math.min(8, MAX_INSTANCES) });
 */
export const MAX_INSTANCES = 64;
/**
 * Enclaves one host runs at most (each is a metric label value, so the set must stay bounded).
 * Names stopped count until a new name needs their room: the oldest stopped one is forgotten then.
 * @example
 * if (names.length > MAX_ENCLAVES) throw new Error('split the enclaves across hosts');
 */
export const MAX_ENCLAVES = 256;
/** What separates the caller id from its session id: no caller id contains it (access.ts). */
const SESSION_SEPARATOR = '|';
/** The session the self-check runs in for `per-session` enclaves: starts with the separator, so no caller's session can be it. */
const SELF_CHECK_SESSION = '|self-check';

/**
 * Defaults of `queue`, `breaker`, `retry` and the integrity schedule (docs/LIMITS.md, "The host supervisor").
 * @example
 * await host.start('echo', { module: 'echo.wasm', queue: { ...HOST_DEFAULTS.queue, queueTimeoutMs: 1000 } });
 */
export const HOST_DEFAULTS = Object.freeze({
  queue: Object.freeze({ maxQueued: 1024, maxQueuedPerCaller: 64, queueTimeoutMs: 5000 }),
  breaker: Object.freeze({ failures: 5, halfOpenAfterMs: 5000 }),
  retry: Object.freeze({ maxAttempts: 2, initialDelayMs: 10, maxDelayMs: 200 }),
  integrityIntervalMs: 60_000,
});

/** Options of {@link EnclaveHost}. */
export interface HostOptions {
  /**
   * Who may call what (docs/ACCESS-POLICY.md): a policy document, one `parseAccessPolicy` returned,
   * or the path of a JSON file (read bounded; until it is read and valid, every call is refused and
   * `start` waits for it).
   */
  readonly access: unknown;
  /** Where the metrics go. Default: a new Registry owned by this host (never prom-client's global one). */
  readonly registry?: Registry;
  /** Where the host logs. Default: pino at level `silent`. */
  readonly logger?: Logger;
  /**
   * Log call arguments and replies (debug level), and start every enclave with `debug: true`, which
   * its evidence then shows (`dbgstat`). Default false.
   */
  readonly logPayloads?: boolean;
  /** How often the bytes of every enclave are hashed again, ms; 0: never on a schedule. Default 60 000. */
  readonly integrityIntervalMs?: number;
}

/** How to start (or upgrade to) an enclave: the module, its pool, its queue and its policies. */
export interface EnclaveSpec {
  /** The module: a file path, or its bytes. */
  readonly module: string | Uint8Array;
  /** `worker` (default): each instance in its own worker thread; `in-process`: one instance on this thread. */
  readonly isolation?: 'worker' | 'in-process';
  /** Instances (workers) in the pool, 1..64 (`MAX_INSTANCES`). Default: `os.availableParallelism()` in worker mode, 1 in-process (the only value there). */
  readonly instances?: number;
  /** Load only modules signed by these keys (checked at start and at every upgrade). */
  readonly trust?: TrustPolicy;
  /** Where instrumented modules are cached (as `compileEnclave`). */
  readonly cacheDir?: string | false;
  readonly capabilities?: readonly Capability[];
  /** The host's limits (as `EnclaveOptions.policy`). */
  readonly policy?: Partial<Limits>;
  readonly attestation?: EnclavePlatform;
  readonly state?: StatePolicy;
  readonly maxSessions?: number;
  readonly metering?: boolean;
  /** Worker mode: one call's deadline, ms (as `createWorkerEnclave`). */
  readonly deadlineMs?: number;
  readonly startDeadlineMs?: number;
  readonly resourceLimits?: WorkerResourceLimits;
  /** The queue in front of the pool; set at `start`, kept across upgrades. */
  readonly queue?: Partial<FairQueueOptions>;
  /** The circuit breaker; `false`: none. */
  readonly breaker?: { readonly failures?: number; readonly halfOpenAfterMs?: number } | false;
  /** Retries of the contract's idempotent ops; `false`: none. */
  readonly retry?: { readonly maxAttempts?: number; readonly initialDelayMs?: number; readonly maxDelayMs?: number } | false;
  /** The call that proves an instance serves. Default: the contract's `health` op if it declares one, else instantiation only. */
  readonly selfCheck?: { readonly op: string; readonly args?: unknown };
}

/** Options of one call through the host. */
export interface HostCallOptions {
  /** The caller's session: 1..127 characters; the same session always reaches the same instance. */
  readonly session?: string;
  /** Filled in with the fuel the call used (as the runtime's `{ stats }`). */
  readonly stats?: { fuel: number };
}

/** What an upgrade ended in; `refused` upgrades reject instead. */
export interface UpgradeResult {
  readonly outcome: 'switched' | 'promoted' | 'rolled-back';
  /** Measurement of the version serving before. */
  readonly from: string;
  /** Measurement of the version offered. */
  readonly to: string;
  /** Why a canary was rolled back: `error_rate`, `timeout` or `stopped`. */
  readonly reason?: string;
}

/** One enclave in {@link HostStats}. */
export interface EnclaveStats {
  readonly state: HostState;
  readonly measurement: string | undefined;
  readonly svn: number | undefined;
  readonly instances: number;
  readonly queued: number;
  readonly inFlight: number;
  readonly breaker: BreakerState | 'none';
  readonly restarts: number;
  readonly canary?: { readonly measurement: string; readonly share: number; readonly calls: number; readonly errors: number };
  readonly ops: Record<string, OpStats>;
}

/** `host.stats()`: every enclave the host knows, by name. */
export interface HostStats {
  readonly enclaves: Record<string, EnclaveStats>;
}

/** The settled form of an {@link EnclaveSpec}: checked once, frozen, never read from the caller again. */
interface Settings {
  readonly raw: Readonly<Record<string, unknown>>;
  readonly module: string | Uint8Array;
  readonly compile: { trust?: TrustPolicy; cacheDir?: string | false };
  readonly isolation: 'worker' | 'in-process';
  readonly instances: number;
  readonly enclave: EnclaveOptions;
  readonly worker: { deadlineMs?: number; startDeadlineMs?: number; resourceLimits?: WorkerResourceLimits } | undefined;
  readonly queue: FairQueueOptions;
  readonly breaker: { readonly failures: number; readonly halfOpenAfterMs: number } | false;
  readonly retry: RetryOptions | false;
  readonly selfCheck: { readonly op: string; readonly args: unknown } | undefined;
}

/** What the host needs of one op, read once from a version's contract. */
interface OpInfo {
  readonly requires: readonly string[];
  readonly idempotent: boolean;
  /** Some op requires this one: its success is recorded for the caller's session. */
  readonly required: boolean;
}

/** One version of an enclave: a module and its running pool. */
interface Version {
  /** The settings it was started with: the enclave's settings once it serves (an upgrade's defaults). */
  readonly settings: Settings;
  readonly mod: EnclaveModule;
  readonly pool: InstancePool;
  readonly measurement: string;
  readonly svn: number;
  readonly ops: ReadonlyMap<string, OpInfo>;
  /** The contract has a `requires`: ops in it are recorded, checked and routed by caller. */
  readonly sequenced: boolean;
  /** The file the module came from (its integrity is checked there too). */
  readonly file: string | undefined;
  readonly breaker: Breaker | undefined;
  readonly retry: RetryOptions | undefined;
  /** Handles the observer counts for this enclave (members are replaced over time). */
  readonly attached: Set<EnclaveHandle>;
  /**
   * `per-session` only: per member, the sessions live in it as the host started them, at most the
   * member's maxSessions, grouped by caller. A new session that would make the runtime push out
   * its least recent one (anyone's) is preceded by the end of the one {@link FairRecentMap} picks:
   * the caller's own oldest once it holds its share, so one caller's sessions never end another's.
   */
  readonly sessions: FairRecentMap<true>[] | undefined;
  /** Per member index, the record of the call it runs (reused call after call: see {@link Dispatch}). */
  readonly dispatches: (Dispatch | undefined)[];
  /** Calls dispatched to this version and not settled. */
  inFlight: number;
  /** Set while this version is a canary on trial. */
  trial: CanaryTrial | undefined;
  /** Resolves `retire` once nothing runs on it. */
  onIdle: (() => void) | undefined;
}

/** A call waiting in the queue, or between retries. */
interface Job {
  readonly caller: string;
  readonly weight: number;
  readonly op: string;
  readonly args: unknown;
  readonly options: CallOptions | undefined;
  readonly affinity: string | undefined;
  readonly seqKey: string | undefined;
  readonly queuedAt: number;
  /** A retry's attempt (#retry): its failure ends in withRetry, which counts attempts, never in a series of its own. */
  readonly retried?: boolean;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

/**
 * The call a pool member runs, and what its settlement needs. A member runs one host call at a
 * time (the pool hands out idle members only), so each member has one of these, made once and
 * reused: no closure, no options object and no stats object per call on the hot path (each is an
 * allocation the GC then pays for, at a few tens of ns a call).
 */
interface Dispatch {
  readonly m: Managed;
  readonly v: Version;
  readonly member: PoolMember;
  /** Between dispatch and settlement. A second call on a busy member (none is) would get a Dispatch of its own. */
  busy: boolean;
  op: string;
  args: unknown;
  /** The call's options as the host read them (the runtime session, the caller's stats). */
  options: CallOptions | undefined;
  seqKey: string | undefined;
  caller: string;
  weight: number;
  affinity: string | undefined;
  retried: boolean;
  pass: BreakerPass;
  /** When the call was dispatched (hostNow()): its duration in the metrics runs from here. */
  startedAt: number;
  /** What the runtime fills in: the call's fuel (the caller's `stats` gets a copy). */
  readonly record: { fuel: number };
  /** The observer's counters of the last op this member ran, and that op: looked up again only when the op changes. */
  counted: CallRecord | undefined;
  countedOp: string | undefined;
  /** The options handed to the runtime: this record, and the session under `per-session` state. */
  readonly runtimeOptions: { session: string | undefined; stats: { fuel: number } };
  readonly onReply: (reply: unknown) => unknown;
  readonly onError: (err: unknown) => Promise<unknown>;
}

/** One named enclave: its state, its versions and its queue. */
interface Managed {
  readonly name: string;
  state: HostState;
  settings: Settings;
  /** `state: 'per-session'`: sessions reach the runtime (set at start, kept across upgrades). */
  readonly perSession: boolean;
  current: Version | undefined;
  canary: Version | undefined;
  /** The identity of the version serving last, for stats() after its module was released. */
  served: { readonly measurement: string; readonly svn: number } | undefined;
  readonly queue: FairQueue<Job>;
  /** Calls dispatched and not settled, across versions. */
  inFlight: number;
  /** Calls between a failed attempt and their retry. */
  retrying: number;
  /** Aborted when the enclave stops or fails: a retry's backoff ends at once, the call `unavailable`. */
  readonly retries: AbortController;
  restarts: number;
  /** The running start(), for stop() made meanwhile. */
  starting: Promise<void> | undefined;
  /** An upgrade in progress (one at a time); stop() waits for it, so nothing it started outlives the stop. */
  upgrading: Promise<unknown> | undefined;
  /** Versions being drained and closed. */
  readonly retiring: Set<Promise<void>>;
  /** Resolves stop() once nothing is queued, in flight or retrying. */
  onDrained: (() => void) | undefined;
  stopping: Promise<void> | undefined;
  integrityRunning: boolean;
  /** A check found bytes that are not the ones attested: every later check says so (until a new start). */
  tampered: boolean;
}

function refuse(message: string): never {
  throw new EnclaveError('invalid_options', message);
}

/** The code of whatever a call rejected with: an EnclaveError's, else `internal`. */
function codeOf(err: unknown): ErrorCode {
  return err instanceof EnclaveError ? err.code : 'internal';
}

/** What reaches a caller: an EnclaveError as it is, anything else (a bug) as `internal`. */
function asEnclaveError(err: unknown): EnclaveError {
  return err instanceof EnclaveError ? err : new EnclaveError('internal', undefined, { cause: err });
}

/** Every refusal `unavailable` says the same, whatever the reason: nothing is revealed. */
function unavailable(): EnclaveError {
  return new EnclaveError('unavailable');
}

/**
 * Reads an options object the service gave: a getter or a proxy trap that throws is
 * `invalid_options`, never a bare error out of start() or upgrade().
 */
function readGiven<T>(read: () => T, what: string): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof EnclaveError) throw err;
    throw new EnclaveError('invalid_options', `${what} cannot be read.`, { cause: err });
  }
}

function intIn(value: unknown, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) refuse(`${name} must be an integer from ${min} to ${max}.`);
  return value;
}

function plainObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse(`${name} must be an object.`);
  return value as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, known: ReadonlySet<string>, name: string): void {
  for (const key of Object.keys(o)) {
    if (!known.has(key)) refuse(`Unknown ${name} option ${quoteInput(key)}; known: ${[...known].join(', ')}.`);
  }
}

const SPEC_KEYS: ReadonlySet<string> = new Set([
  'module',
  'isolation',
  'instances',
  'trust',
  'cacheDir',
  'capabilities',
  'policy',
  'attestation',
  'state',
  'maxSessions',
  'metering',
  'deadlineMs',
  'startDeadlineMs',
  'resourceLimits',
  'queue',
  'breaker',
  'retry',
  'selfCheck',
]);
const WORKER_KEYS = ['deadlineMs', 'startDeadlineMs', 'resourceLimits'] as const;
const ENCLAVE_KEYS = ['capabilities', 'policy', 'attestation', 'state', 'maxSessions', 'metering'] as const;

/**
 * Settles a spec once: every field read once, checked, defaulted, frozen. The enclave and worker
 * options are checked again by the runtime, against the contract.
 * @throws {EnclaveError} `invalid_options`.
 */
function settleSpec(spec: unknown, debug: boolean): Settings {
  const raw = { ...plainObject(spec, 'The enclave spec') };
  onlyKeys(raw, SPEC_KEYS, 'enclave spec');
  const given = raw.module;
  if (typeof given !== 'string' && !(given instanceof Uint8Array)) refuse('module must be a file path or the module bytes.');
  let module: string | Uint8Array = given;
  if (typeof module === 'string') {
    if (module.length === 0) refuse('module must not be an empty path.');
    // Absolute now: the integrity schedule re-reads this file for as long as the enclave runs, and
    // a relative path re-resolved after a process.chdir() names another file (a false mismatch
    // that takes the enclave out of service), as would an upgrade that keeps the module.
    raw.module = module = resolve(module);
  }
  const isolation = raw.isolation ?? 'worker';
  if (isolation !== 'worker' && isolation !== 'in-process') refuse("isolation must be 'worker' or 'in-process'.");
  if (isolation === 'in-process' && raw.instances !== undefined && raw.instances !== 1) {
    refuse("instances must be 1 in-process (one thread runs one call at a time): use isolation: 'worker' for more.");
  }
  const instances = intIn(raw.instances, 'instances', 1, MAX_INSTANCES, isolation === 'in-process' ? 1 : Math.min(MAX_INSTANCES, os.availableParallelism()));
  const compile: { trust?: TrustPolicy; cacheDir?: string | false } = {};
  if (raw.trust !== undefined) compile.trust = raw.trust as TrustPolicy;
  if (raw.cacheDir !== undefined) compile.cacheDir = raw.cacheDir as string | false;
  const enclave: Record<string, unknown> = { debug };
  for (const key of ENCLAVE_KEYS) if (raw[key] !== undefined) enclave[key] = raw[key];
  let worker: Record<string, unknown> | undefined;
  if (isolation === 'worker') {
    worker = {};
    for (const key of WORKER_KEYS) if (raw[key] !== undefined) worker[key] = raw[key];
  } else {
    for (const key of WORKER_KEYS) if (raw[key] !== undefined) refuse(`${key} needs isolation: 'worker'.`);
  }
  const q = raw.queue === undefined ? {} : plainObject(raw.queue, 'queue');
  onlyKeys(q, new Set(['maxQueued', 'maxQueuedPerCaller', 'queueTimeoutMs']), 'queue');
  const maxQueued = intIn(q.maxQueued, 'queue.maxQueued', 0, 1 << 20, HOST_DEFAULTS.queue.maxQueued);
  const queue: FairQueueOptions = Object.freeze({
    maxQueued,
    maxQueuedPerCaller: intIn(q.maxQueuedPerCaller, 'queue.maxQueuedPerCaller', 0, 1 << 20, Math.min(maxQueued, HOST_DEFAULTS.queue.maxQueuedPerCaller)),
    queueTimeoutMs: intIn(q.queueTimeoutMs, 'queue.queueTimeoutMs', 1, 2 ** 31 - 1, HOST_DEFAULTS.queue.queueTimeoutMs),
  });
  let breaker: Settings['breaker'] = false;
  if (raw.breaker !== false) {
    const b = raw.breaker === undefined ? {} : plainObject(raw.breaker, 'breaker');
    onlyKeys(b, new Set(['failures', 'halfOpenAfterMs']), 'breaker');
    breaker = Object.freeze({
      failures: intIn(b.failures, 'breaker.failures', 1, 1_000_000, HOST_DEFAULTS.breaker.failures),
      halfOpenAfterMs: intIn(b.halfOpenAfterMs, 'breaker.halfOpenAfterMs', 0, 2 ** 31 - 1, HOST_DEFAULTS.breaker.halfOpenAfterMs),
    });
  }
  let retry: RetryOptions | false = false;
  if (raw.retry !== false) {
    const r = raw.retry === undefined ? {} : plainObject(raw.retry, 'retry');
    onlyKeys(r, new Set(['maxAttempts', 'initialDelayMs', 'maxDelayMs']), 'retry');
    retry = Object.freeze({ ...HOST_DEFAULTS.retry, ...r }) as RetryOptions;
    checkRetryOptions(retry);
  }
  let selfCheck: Settings['selfCheck'];
  if (raw.selfCheck !== undefined) {
    const s = plainObject(raw.selfCheck, 'selfCheck');
    onlyKeys(s, new Set(['op', 'args']), 'selfCheck');
    if (typeof s.op !== 'string' || s.op.length === 0 || s.op.length > MAX_NAME) refuse('selfCheck.op must name an op of the contract.');
    selfCheck = Object.freeze({ op: s.op, args: s.args });
  }
  return Object.freeze({
    raw: Object.freeze(raw),
    module,
    compile: Object.freeze(compile),
    isolation,
    instances,
    enclave: Object.freeze(enclave) as EnclaveOptions,
    worker: worker === undefined ? undefined : Object.freeze(worker),
    queue,
    breaker,
    retry,
    selfCheck,
  });
}

/** The ops of a contract as the host needs them, in a Map (op names are never plain-object keys here). */
function opsOf(mod: EnclaveModule): { ops: Map<string, OpInfo>; sequenced: boolean } {
  const declared = Object.entries(mod.contract.ops);
  const required = new Set<string>();
  for (const [, op] of declared) for (const r of op.requires) required.add(r);
  const ops = new Map<string, OpInfo>();
  for (const [name, op] of declared) ops.set(name, Object.freeze({ requires: op.requires, idempotent: op.idempotent, required: required.has(name) }));
  return { ops, sequenced: required.size > 0 };
}

/** A `per-session` member's live sessions, grouped by caller (`caller|session`: the caller is up to the first separator). */
function liveSessions(enclave: EnclaveOptions): FairRecentMap<true> {
  return new FairRecentMap<true>(enclave.maxSessions ?? DEFAULT_MAX_SESSIONS, (key) => key.slice(0, key.indexOf(SESSION_SEPARATOR) + 1));
}

/** A sequence key's group, `enclave|caller|`: neither name contains the separator (a session id may). */
function sequenceGroupOf(key: string): string {
  return key.slice(0, key.indexOf(SESSION_SEPARATOR, key.indexOf(SESSION_SEPARATOR) + 1) + 1);
}

/** The access policy given to the host or to `reloadAccess`, parsed (a path is read first). */
async function loadPolicy(source: unknown): Promise<AccessPolicy> {
  if (typeof source === 'string') return readAccessPolicy(source);
  return isAccessPolicy(source) ? source : parseAccessPolicy(source);
}

/**
 * The host supervisor: starts named enclaves from modules, runs each as a pool of instances behind
 * a fair, bounded queue, lets callers in by an access policy, upgrades with no failed call, and
 * reports what happens (events, metrics, spans, logs, stats). See docs/EMBEDDING.md.
 *
 * Nothing a caller or an enclave does crashes the host: every call settles with an `EnclaveError`
 * of a stable code, and the host's own promises are all handled.
 * @example
 * import { EnclaveHost } from 'enclave';
 * const host = new EnclaveHost({ access: { version: 1, callers: { billing: { allow: { signer: ['sign'] } } } } });
 * host.on('state', (e) => console.log(e.enclave, e.from, '→', e.to));
 * await host.start('signer', { module: 'signer.wasm', instances: 2 });
 * const signature = await host.call('billing', 'signer', 'sign', { msg: 'hi' });
 * await host.close();
 */
export class EnclaveHost {
  readonly #observer: HostObserver;
  readonly #gate: AccessGate;
  /** Sequences grouped per enclave and caller (`enclave|caller|`): one caller's sessions never push out another's. */
  readonly #sequences = new SessionSequences(undefined, undefined, sequenceGroupOf);
  readonly #enclaves = new Map<string, Managed>();
  readonly #listeners = new Map<HostEventName, Set<HostListener<HostEventName>>>();
  /** The listener each `once` wrapper stands for, so `off(listener)` removes it too. */
  readonly #onceOf = new WeakMap<HostListener<HostEventName>, unknown>();
  readonly #debug: boolean;
  /** The access policy given as a path, being read; start() waits for it (and fails with its error until a reload succeeds). */
  #policyReady: Promise<void>;
  /**
   * Policy loads in the order they were asked for: the number of the last one asked for, and of
   * the one in force. A load (a file read) can settle after a later one: it then changes nothing,
   * or a policy the service has since replaced (a caller it revoked) would come back.
   */
  #policyAsked = 0;
  #policyInForce = 0;
  readonly #integrityTimer: NodeJS.Timeout | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * @throws {EnclaveError} `invalid_options` for a bad option; `invalid_access_policy` for an
   *   access policy given as a document or parsed policy that is not valid (a path's content is
   *   checked when it has been read: `start` rejects with its error).
   * @example
   * const host = new EnclaveHost({ access: 'access.json', logger: pino(), integrityIntervalMs: 300_000 });
   */
  constructor(options: HostOptions) {
    // Each option read once, here: a getter could answer a string to one read and an object to
    // the next (a policy checked as one thing and used as another). One that throws: invalid_options.
    const { access, registry, logger, logPayloads, integrityIntervalMs } = readGiven(() => {
      const o = plainObject(options, 'The host options');
      onlyKeys(o, new Set(['access', 'registry', 'logger', 'logPayloads', 'integrityIntervalMs']), 'host');
      return { access: o.access, registry: o.registry, logger: o.logger, logPayloads: o.logPayloads, integrityIntervalMs: o.integrityIntervalMs };
    }, 'The host options');
    if (logPayloads !== undefined && typeof logPayloads !== 'boolean') refuse('logPayloads must be a boolean.');
    if (access === undefined) refuse('access is required: the policy of who may call which op (docs/ACCESS-POLICY.md).');
    const interval = integrityIntervalMs === undefined ? HOST_DEFAULTS.integrityIntervalMs : intIn(integrityIntervalMs, 'integrityIntervalMs', 0, 2 ** 31 - 1, 0);
    // The policy before the observer: a document that does not parse must leave nothing behind
    // (the observer subscribes to the runtime's channels and registers its metrics in `registry`).
    const given = typeof access === 'string' ? undefined : isAccessPolicy(access) ? access : parseAccessPolicy(access);
    this.#debug = logPayloads === true;
    this.#observer = new HostObserver({
      ...(registry === undefined ? {} : { registry: registry as Registry }),
      ...(logger === undefined ? {} : { logger: logger as Logger }),
      logPayloads: this.#debug,
      // Calls are counted from this end (#replied, #rejected, #selfCheck): see observer.ts.
      callsFromHost: true,
      // An instance discarded or a worker dead, as the runtime's channels tell.
      onRestart: (enclave, reason) => {
        const m = this.#enclaves.get(enclave);
        if (m !== undefined) this.#restarted(m, reason);
      },
    });
    if (given === undefined) {
      // Until the file is read, nobody may call anything; start() waits for it and fails with its error.
      this.#gate = new AccessGate(parseAccessPolicy({ version: 1, callers: {} }), hostNow);
      const path = access as string;
      const ticket = ++this.#policyAsked;
      this.#policyReady = readAccessPolicy(path).then((policy) => this.#installPolicy(ticket, policy));
      // Handled here too: a host that never starts anything must not leave a rejection unhandled.
      this.#policyReady.catch((err: unknown) => this.#observer.logger.error({ code: codeOf(err) }, 'the access policy could not be loaded'));
    } else {
      this.#gate = new AccessGate(given, hostNow);
      this.#policyReady = Promise.resolve();
    }
    if (interval > 0) {
      this.#integrityTimer = setInterval(() => this.#checkAllIntegrity(), interval);
      // The schedule alone never keeps a service's process alive.
      this.#integrityTimer.unref();
    }
  }

  /**
   * The prom-client registry with the host's metrics.
   * @example
   * res.setHeader('content-type', host.registry.contentType);
   * res.end(await host.registry.metrics()); // the /metrics body
   */
  get registry(): Registry {
    return this.#observer.registry;
  }

  /**
   * Listens to one of {@link HOST_EVENTS}. A listener that throws (or rejects) is logged and ignored.
   * @throws {EnclaveError} `invalid_options` for a name not in HOST_EVENTS or a listener that is not a function.
   * @example
   * host.on('swap', (e) => audit.write(e));
   */
  on<E extends HostEventName>(event: E, listener: HostListener<E>): this {
    this.#listenersOf(event, listener).add(listener as HostListener<HostEventName>);
    return this;
  }

  /**
   * Listens to the next event of that name only.
   * @throws {EnclaveError} as {@link on}.
   * @example
   * host.once('state', (e) => console.log(e.to));
   */
  once<E extends HostEventName>(event: E, listener: HostListener<E>): this {
    const set = this.#listenersOf(event, listener);
    const wrapper: HostListener<HostEventName> = (e) => {
      set.delete(wrapper);
      return (listener as HostListener<HostEventName>)(e);
    };
    this.#onceOf.set(wrapper, listener);
    set.add(wrapper);
    return this;
  }

  /**
   * Stops a listener added with {@link on} or {@link once}.
   * @throws {EnclaveError} as {@link on}.
   * @example
   * host.off('swap', onSwap);
   */
  off<E extends HostEventName>(event: E, listener: HostListener<E>): this {
    const set = this.#listenersOf(event, listener);
    set.delete(listener as HostListener<HostEventName>);
    for (const added of set) if (this.#onceOf.get(added) === listener) set.delete(added);
    return this;
  }

  #listenersOf(event: unknown, listener: unknown): Set<HostListener<HostEventName>> {
    if (typeof event !== 'string' || !(HOST_EVENTS as readonly string[]).includes(event)) {
      refuse(`Unknown host event; known: ${HOST_EVENTS.join(', ')}.`);
    }
    if (typeof listener !== 'function') refuse('A listener must be a function.');
    let set = this.#listeners.get(event as HostEventName);
    if (set === undefined) this.#listeners.set(event as HostEventName, (set = new Set()));
    return set;
  }

  #emit<E extends HostEventName>(event: E, payload: HostEvents[E]): void {
    const set = this.#listeners.get(event);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        const result = listener(payload);
        if (typeof (result as Promise<unknown> | undefined)?.then === 'function') {
          (result as Promise<unknown>).then(undefined, (err: unknown) => this.#listenerFailed(event, err));
        }
      } catch (err) {
        this.#listenerFailed(event, err);
      }
    }
  }

  #listenerFailed(event: string, err: unknown): void {
    this.#observer.logger.warn({ event, code: codeOf(err) }, 'a host event listener failed');
  }

  /**
   * The state of an enclave, or undefined for a name the host does not know.
   * @example
   * if (host.state('signer') !== 'ready') res.statusCode = 503; // a readiness probe
   */
  state(name: string): HostState | undefined {
    return this.#enclaves.get(bounded(name))?.state;
  }

  #transition(m: Managed, to: HostState, reason?: string): void {
    const from = m.state;
    checkTransition(from, to);
    m.state = to;
    this.#observer.state(m.name, to);
    this.#emit('state', reason === undefined ? { enclave: m.name, from, to } : { enclave: m.name, from, to, reason });
  }

  /**
   * Starts an enclave under a name: compiles (signature and trust checked, measured), starts its
   * pool, runs the self-check on every instance, and only then makes it `ready`.
   * @throws {EnclaveError} `invalid_options` (a bad name or spec, a name already running or
   *   starting, too many enclaves), `closed` after `close()`; `invalid_access_policy` when the
   *   policy file given to the host is not valid; the load codes of `compileEnclave` and
   *   `createWorkerEnclave`; the self-check's code. On any failure after `starting`, the enclave is
   *   `failed`.
   * @example
   * await host.start('echo', { module: 'echo.wasm', instances: 2, queue: { maxQueued: 256 } });
   */
  async start(name: string, spec: EnclaveSpec): Promise<void> {
    if (this.#closed) throw new EnclaveError('closed', 'The host is closed.');
    if (typeof name !== 'string' || !ENCLAVE_NAME.test(name)) refuse('An enclave name is 1..64 characters of a-z, 0-9 and -, starting with a letter.');
    const settings = readGiven(() => settleSpec(spec, this.#debug), 'The enclave spec');
    const previous = this.#enclaves.get(name);
    if (previous !== undefined && previous.state !== 'stopped' && previous.state !== 'failed') refuse(`The enclave "${name}" is ${previous.state}: stop it first.`);
    if (previous === undefined && this.#enclaves.size >= MAX_ENCLAVES && !this.#forgetOneStopped()) refuse(`A host runs at most ${MAX_ENCLAVES} enclaves.`);
    const m: Managed = {
      name,
      state: 'starting',
      settings,
      perSession: settings.enclave.state === 'per-session',
      current: undefined,
      canary: undefined,
      served: undefined,
      queue: new FairQueue<Job>(settings.queue, (job) => this.#expired(m, job)),
      inFlight: 0,
      retrying: 0,
      retries: new AbortController(),
      restarts: 0,
      starting: undefined,
      upgrading: undefined,
      retiring: new Set(),
      onDrained: undefined,
      stopping: undefined,
      integrityRunning: false,
      tampered: false,
    };
    this.#enclaves.set(name, m);
    this.#observer.state(name, 'starting');
    // In an `enclave.start` span (a no-op without an OpenTelemetry SDK); the self-check calls are its children.
    const starting = this.#observer.traceLifecycle('start', name, () => this.#start(m));
    m.starting = starting;
    // Only now: a listener that calls stop() must find the start to wait for (else stop() moved
    // `starting` straight to `draining`, a transition the lifecycle refuses: `internal`, no stop).
    this.#emit('state', { enclave: name, from: previous?.state, to: 'starting' });
    try {
      await starting;
    } finally {
      m.starting = undefined;
    }
  }

  /**
   * Makes room for a new name: the least recently started name that is `stopped` (its pools closed,
   * its series already forgotten by the observer) leaves state() and stats(). Without it, names
   * stopped long ago counted against MAX_ENCLAVES for ever: a service starting enclaves under new
   * names (`signer-v3`, a tenant's) was refused after 256 starts, with nothing running.
   */
  #forgetOneStopped(): boolean {
    for (const [name, m] of this.#enclaves) {
      if (m.state === 'stopped' && m.stopping === undefined && m.retiring.size === 0) {
        this.#enclaves.delete(name);
        return true;
      }
    }
    return false;
  }

  async #start(m: Managed): Promise<void> {
    const began = performance.now();
    let version: Version;
    try {
      await this.#policyReady;
      version = await this.#startVersion(m, m.settings);
    } catch (err) {
      if (m.state === 'starting') this.#transition(m, 'failed', codeOf(err));
      throw asEnclaveError(err);
    }
    if (m.state !== 'starting' || this.#closed) {
      // close() came while it started: nothing may keep running.
      await this.#closeVersion(version);
      if (m.state === 'starting') this.#transition(m, 'failed', 'closed');
      throw new EnclaveError('closed', 'The host closed while the enclave started.');
    }
    m.current = version;
    m.served = { measurement: version.measurement, svn: version.svn };
    this.#observer.started(m.name, performance.now() - began);
    this.#observer.instances(m.name, version.pool.size);
    this.#transition(m, 'ready');
  }

  /** Compiles, starts a pool, self-checks every member: a version ready to serve, or its error (nothing left running). */
  async #startVersion(m: Managed, settings: Settings, compiled?: EnclaveModule): Promise<Version> {
    const mod = compiled ?? (await compileEnclave(settings.module, settings.compile));
    const { ops, sequenced } = opsOf(mod);
    const check = settings.selfCheck ?? (ops.has('health') ? { op: 'health', args: undefined } : undefined);
    if (check !== undefined && !ops.has(check.op)) refuse('selfCheck.op must name an op of the contract.');
    // Filled in below; the pool reports replaced members through it.
    let version: Version | undefined;
    const pool = await InstancePool.start(mod, {
      size: settings.instances,
      isolation: settings.isolation,
      // What the enclave logs goes to the host's logger, as untrusted text in a field of its own.
      enclave: { ...settings.enclave, onLog: this.#observer.onLog(m.name) },
      ...(settings.worker === undefined ? {} : { worker: settings.worker }),
      onMemberReplaced: (index, reason) => {
        if (version !== undefined) this.#memberReplaced(m, version, index, reason);
      },
      onReplaceFailed: (index, error) => {
        this.#observer.logger.warn({ enclave: m.name, index, code: error.code }, 'an instance could not be replaced yet; the pool tries again');
      },
    });
    const v: Version = {
      settings,
      mod,
      pool,
      measurement: mod.measurement,
      svn: mod.identity.svn,
      ops,
      sequenced,
      file: typeof settings.module === 'string' ? settings.module : undefined,
      breaker:
        settings.breaker === false
          ? undefined
          : new Breaker(settings.breaker, (state) => {
              if (version === undefined) return;
              // A canary whose breaker opens has failed its trial: rolled back now, not at its timeout.
              if (m.canary === version && state === 'open') version.trial?.fail();
              if (m.current === version || m.canary === version) this.#emit('breaker', { enclave: m.name, state });
            }),
      retry: settings.retry === false ? undefined : settings.retry,
      attached: new Set(),
      sessions: m.perSession ? pool.members.map(() => liveSessions(settings.enclave)) : undefined,
      dispatches: [],
      inFlight: 0,
      trial: undefined,
      onIdle: undefined,
    };
    for (const member of pool.members) this.#attach(m, v, member.handle);
    if (check !== undefined) {
      try {
        await Promise.all(pool.members.map((member) => this.#selfCheck(m.name, member.handle, check, settings.enclave.state)));
      } catch (err) {
        await this.#closeVersion(v);
        throw err;
      }
    }
    version = v;
    return v;
  }

  async #selfCheck(name: string, handle: EnclaveHandle, check: { op: string; args: unknown }, state: StatePolicy | undefined): Promise<void> {
    const session = state === 'per-session' ? SELF_CHECK_SESSION : undefined;
    // Counted as every call on the enclave's handles is (HostObserver.called).
    const stats = { fuel: 0 };
    const began = performance.now();
    let reply: unknown;
    try {
      reply = await handle.call(check.op, check.args, { session, stats });
    } catch (err) {
      this.#observer.called(name, check.op, codeOf(err), stats.fuel, performance.now() - began);
      throw err;
    }
    this.#observer.called(name, check.op, undefined, stats.fuel, performance.now() - began);
    if (session !== undefined) await handle.endSession(session);
    // `false` is a health op saying no; anything else it answers is a working instance.
    if (reply === false) throw new EnclaveError('internal', `The self-check "${check.op}" answered false.`);
  }

  #attach(m: Managed, v: Version, handle: EnclaveHandle): void {
    if (v.attached.has(handle)) return;
    v.attached.add(handle);
    this.#observer.attach(handle, m.name);
  }

  /** A member whose handle closed was replaced by the pool (the runtime's own replacements come through the observer). */
  #memberReplaced(m: Managed, v: Version, index: number, reason: string): void {
    // A new member holds no session.
    if (v.sessions !== undefined) v.sessions[index] = liveSessions(v.settings.enclave);
    const member = v.pool.members[index];
    if (member !== undefined) this.#attach(m, v, member.handle);
    // The replaced handle leaves the observer now, not when its version closes (an entry per
    // replacement otherwise, for the version's life). Replacements are rare: a scan of the pool.
    if (v.attached.size > v.pool.members.length) {
      const serving = new Set(v.pool.members.map((each) => each.handle));
      for (const handle of v.attached) {
        if (serving.has(handle)) continue;
        v.attached.delete(handle);
        this.#observer.detach(handle);
      }
    }
    this.#restarted(m, reason);
    this.#observer.restart(m.name, reason);
    // Calls queued for that member's sessions can run now.
    this.#pump(m);
  }

  #restarted(m: Managed, reason: string): void {
    m.restarts++;
    this.#emit('restart', { enclave: m.name, reason });
  }

  /** Drains a version's pool and closes it; its handles leave the observer. Never rejects. */
  async #closeVersion(v: Version): Promise<void> {
    v.breaker?.dispose();
    // A canary closed under its trial (the enclave failed): its upgrade() ends, rolled back.
    v.trial?.abort();
    try {
      await v.pool.close();
    } catch (err) {
      this.#observer.logger.warn({ code: codeOf(err) }, 'an enclave pool did not close cleanly');
    }
    for (const handle of v.attached) this.#observer.detach(handle);
    v.attached.clear();
  }

  /**
   * Calls `op` of enclave `enclave` for `caller` (the identity the service authenticated), through
   * the access policy, the contract's order, the breaker and the fair queue.
   * @throws {EnclaveError} (as a rejection, never thrown) `unauthorized`, `denied`, `rate_limited`,
   *   `quota_exceeded` (access, before anything else: an enclave's existence is not revealed),
   *   `unavailable` (not ready, breaker open), `state` (an op called before the ops it requires in
   *   this session), `overloaded` (queue full, this caller's share full, waited past its time),
   *   `invalid_options` (a bad session or stats), and every code of the enclave's call.
   * @example
   * const reply = await host.call('billing', 'signer', 'sign', { msg: 'hi' }, { session: 'order-42' });
   */
  call<T = unknown>(caller: string, enclave: string, op: string, args?: unknown, options?: HostCallOptions): Promise<T> {
    if (this.#observer.tracing) {
      // The observer puts only names the host runs and ops their contracts declare in the span.
      // Bounded before the observer looks them up: longer than any enclave name or op is neither.
      return this.#observer.traceCall(bounded(enclave), bounded(op), () =>
        this.#call(caller, enclave, op, args, options),
      ) as Promise<T>;
    }
    return this.#call(caller, enclave, op, args, options) as Promise<T>;
  }

  #call(caller: string, enclave: string, op: string, args: unknown, options: HostCallOptions | undefined): Promise<unknown> {
    let m: Managed | undefined;
    let v: Version | undefined;
    try {
      // The one clock read of a call before it settles: its rate bucket, its time queued, and its
      // duration from dispatch (the fast path dispatches now) all use it.
      const now = hostNow();
      // 1-3: who is calling, may it, has it tokens and quota left. Before anything about the enclave.
      const weight = this.#gate.admit(caller, enclave, op, now);
      // 4: only now may the caller learn whether the enclave serves.
      m = this.#enclaves.get(enclave);
      if (m === undefined || m.state !== 'ready') throw unavailable();
      let session: string | undefined;
      let affinity: string | undefined;
      let callOptions: CallOptions | undefined;
      if (options !== undefined) ({ session, affinity, callOptions } = this.#readOptions(caller, options, m.perSession));
      // 7 (chosen before 5: the version's contract says what the op requires).
      v = m.canary === undefined ? m.current! : this.#versionFor(m, affinity);
      // 5: the contract's order, in this caller's session.
      let seqKey: string | undefined;
      if (v.sequenced) {
        const info = v.ops.get(op);
        if (info !== undefined && (info.requires.length > 0 || info.required)) {
          seqKey = `${enclave}${SESSION_SEPARATOR}${caller}${SESSION_SEPARATOR}${session ?? ''}`;
          if (info.requires.length > 0) this.#sequences.check(seqKey, op, info.requires);
          // A sessionless call in a sequence stays on one instance per caller: the runtime's own
          // `requires` is per instance.
          affinity ??= `${caller}${SESSION_SEPARATOR}`;
        }
      }
      // 6: the breaker; an open one refuses here rather than after a wait in the queue.
      if (v.breaker !== undefined && v.breaker.state === 'open') throw unavailable();
      // 8: the fast path: an idle member and nobody waiting.
      if (m.queue.size === 0) {
        const member = v.pool.acquire(affinity);
        if (member !== undefined) return this.#run(m, v, member, op, args, callOptions, seqKey, caller, weight, affinity, false, now);
      }
      return this.#enqueue(m, { caller, weight, op, args, options: callOptions, affinity, seqKey, queuedAt: now, resolve: noop, reject: noop });
    } catch (err) {
      return this.#refused(m, v, enclave, op, err);
    }
  }

  /** A call refused before it reached an enclave: counted (bounded labels only) and rejected. */
  #refused(m: Managed | undefined, v: Version | undefined, enclave: unknown, op: unknown, err: unknown): Promise<never> {
    const error = asEnclaveError(err);
    // Refused by access before the enclave was looked up: counted under its name if the host runs it
    // (a name longer than any the host accepts is not even hashed).
    m ??= typeof enclave === 'string' && enclave.length <= MAX_NAME ? this.#enclaves.get(enclave) : undefined;
    const version = v ?? m?.current;
    this.#observer.refused(m === undefined ? '' : m.name, version !== undefined && typeof op === 'string' && version.ops.has(op) ? op : undefined, error.code);
    return Promise.reject(error);
  }

  /**
   * The call options read once, each field once. The session, namespaced by the caller, is the
   * call's affinity key, and reaches the runtime only under `per-session` state (which alone takes one).
   */
  #readOptions(
    caller: string,
    options: HostCallOptions,
    perSession: boolean,
  ): { session: string | undefined; affinity: string | undefined; callOptions: CallOptions | undefined } {
    let session: unknown;
    let stats: unknown;
    try {
      if (typeof options !== 'object' || options === null) refuse('The call options must be an object.');
      session = options.session;
      stats = options.stats;
    } catch (err) {
      throw err instanceof EnclaveError ? err : new EnclaveError('invalid_options', 'The call options cannot be read.');
    }
    if (session !== undefined) {
      if (
        typeof session !== 'string' ||
        session.length === 0 ||
        session.length > MAX_HOST_SESSION ||
        !(session as string & { isWellFormed(): boolean }).isWellFormed()
      ) {
        refuse(`A session id must be a well-formed string of 1..${MAX_HOST_SESSION} characters.`);
      }
    }
    if (stats !== undefined && (typeof stats !== 'object' || stats === null)) refuse('stats must be an object; the call fills in its fuel.');
    // The caller's id cannot contain the separator, so `caller|session` names one caller's session only.
    const affinity = session === undefined ? undefined : `${caller}${SESSION_SEPARATOR}${session as string}`;
    let callOptions: { session?: string; stats?: { fuel: number } } | undefined;
    if (affinity !== undefined && perSession) callOptions = { session: affinity };
    if (stats !== undefined) (callOptions ??= {}).stats = stats as { fuel: number };
    return { session: session as string | undefined, affinity, callOptions };
  }

  /** The version a call dispatched now goes to: the canary's share, or the current one. */
  #versionFor(m: Managed, affinity: string | undefined): Version {
    const canary = m.canary;
    // A canary whose breaker is not closed takes nothing: its calls would be refused.
    return canary !== undefined && canary.trial?.open === true && canary.breaker?.state !== 'open' && canary.trial.takes(affinity) ? canary : m.current!;
  }

  #enqueue(m: Managed, job: Job): Promise<unknown> {
    const pending = new Promise<unknown>((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
    // Throws `overloaded` (full, or this caller's share full): the caller's refusal, counted there.
    m.queue.push(job.caller, job, job.weight);
    this.#observer.queueDepth(m.name, m.queue.size);
    return pending;
  }

  /** A queued call waited past queueTimeoutMs: the queue removed it. */
  #expired(m: Managed, job: Job): void {
    this.#observer.refused(m.name, m.current?.ops.has(job.op) === true ? job.op : undefined, 'overloaded');
    this.#observer.queueDepth(m.name, m.queue.size);
    job.reject(new EnclaveError('overloaded', 'The call waited in the queue past its time (queueTimeoutMs): retry later, with backoff.'));
    this.#settled(m);
  }

  /** Dispatches queued calls while members are free for them. */
  #pump(m: Managed): void {
    const queue = m.queue;
    if (queue.size === 0) return;
    let chosen: PoolMember | undefined;
    let chosenVersion: Version | undefined;
    const accept = (job: Job): boolean => {
      const v = this.#versionFor(m, job.affinity);
      const member = v.pool.acquire(job.affinity);
      if (member === undefined) return false;
      chosen = member;
      chosenVersion = v;
      return true;
    };
    const now = hostNow();
    while (queue.size > 0) {
      // No member free in any version: no head can be accepted. Without this check every settled
      // call asked every queued caller's head (shift is O(callers)), each an acquire and an affinity
      // hash: O(queued callers) per call, quadratic in a full queue of many callers (R1).
      if (!this.#anyIdle(m)) break;
      chosen = undefined;
      const job = queue.shift(accept);
      if (job === undefined) break;
      this.#observer.queueWait(m.name, now - job.queuedAt);
      job.resolve(this.#run(m, chosenVersion!, chosen!, job.op, job.args, job.options, job.seqKey, job.caller, job.weight, job.affinity, job.retried === true, now));
    }
    this.#observer.queueDepth(m.name, queue.size);
  }

  /** Whether a call could be dispatched now: some member of the current version or of a canary on trial is idle. */
  #anyIdle(m: Managed): boolean {
    return (m.current !== undefined && m.current.pool.idle() > 0) || (m.canary !== undefined && m.canary.pool.idle() > 0);
  }

  /**
   * Runs one call on a member of a version (9), and settles everything after it: the breaker,
   * the call's metrics, the member's release, the canary's count, the queue's next call, a drain
   * in progress. Not an async function, no closure: one promise reaction per call, through the
   * member's {@link Dispatch}.
   */
  #run(
    m: Managed,
    v: Version,
    member: PoolMember,
    op: string,
    args: unknown,
    options: CallOptions | undefined,
    seqKey: string | undefined,
    caller: string,
    weight: number,
    affinity: string | undefined,
    retried: boolean,
    now: number,
  ): Promise<unknown> {
    const session = options?.session;
    if (v.sessions !== undefined && session !== undefined) {
      // Queued on the member ahead of this call: the runtime never has to push out a session itself.
      const live = v.sessions[member.index]!;
      const pushedOut = live.get(session) === undefined ? live.add(session, true) : undefined;
      if (pushedOut !== undefined) member.handle.endSession(pushedOut).catch(() => false);
    }
    const d = this.#dispatchFor(m, v, member);
    d.busy = true;
    d.op = op;
    d.args = args;
    d.options = options;
    d.seqKey = seqKey;
    d.caller = caller;
    d.weight = weight;
    d.affinity = affinity;
    d.retried = retried;
    d.startedAt = now;
    d.runtimeOptions.session = session;
    // The previous call's fuel must not outlive it: a call refused before the runtime reads its
    // options (a caller's stats setter that throws on 0) would count it, and copy it to that caller.
    d.record.fuel = 0;
    v.inFlight++;
    m.inFlight++;
    const pass = v.breaker === undefined ? BREAKER_PASS : v.breaker.enter();
    d.pass = pass;
    let pending: Promise<unknown>;
    if (pass === BREAKER_REFUSED) {
      pending = Promise.reject(breakerOpen());
    } else {
      try {
        const stats = options?.stats;
        // The caller's stats reads 0 until the call has run, as the runtime sets it (its setter
        // may throw: the runtime's refusal, word for word).
        if (stats !== undefined) zeroFuel(stats);
        pending = member.handle.call(op, args, d.runtimeOptions);
      } catch (err) {
        // A handle's call rejects rather than throws; a bug must still release the member.
        pending = Promise.reject(err);
      }
    }
    return pending.then(d.onReply, d.onError);
  }

  /** The Dispatch of `member` (made on its first call, and again for a member that replaced it). */
  #dispatchFor(m: Managed, v: Version, member: PoolMember): Dispatch {
    const index = member.index;
    const kept = v.dispatches[index];
    if (kept !== undefined && kept.member === member && !kept.busy) return kept;
    const record = { fuel: 0 };
    const d: Dispatch = {
      m,
      v,
      member,
      busy: false,
      op: '',
      args: undefined,
      options: undefined,
      seqKey: undefined,
      caller: '',
      weight: 1,
      affinity: undefined,
      retried: false,
      pass: BREAKER_PASS,
      startedAt: 0,
      record,
      counted: undefined,
      countedOp: undefined,
      runtimeOptions: { session: undefined, stats: record },
      onReply: (reply) => this.#replied(d, reply),
      onError: (err) => this.#rejected(d, err),
    };
    // A busy one stays with its call; this one serves the call at hand (never happens: a member
    // runs one host call at a time) and is kept only when the slot was free.
    if (kept === undefined || !kept.busy) v.dispatches[index] = d;
    return d;
  }

  /** Counts a dispatched call that settled (HostObserver.count): its code, its fuel, its time from dispatch. */
  #count(d: Dispatch, code: ErrorCode | undefined): void {
    const ms = hostNow() - d.startedAt;
    let record = d.counted;
    if (d.countedOp !== d.op || record === undefined) {
      record = this.#observer.recordOf(d.m.name, d.op);
      d.counted = record;
      d.countedOp = d.op;
    }
    if (record !== undefined) this.#observer.count(record, code, d.record.fuel, ms);
  }

  /** A dispatched call answered. */
  #replied(d: Dispatch, reply: unknown): unknown {
    const { m, v, member, op, seqKey } = d;
    v.breaker?.settle(d.pass, true, undefined);
    this.#count(d, undefined);
    const stats = d.options?.stats;
    if (stats !== undefined) copyFuel(stats, d.record.fuel);
    if (seqKey !== undefined && v.ops.get(op)?.required === true) this.#sequences.record(seqKey, op);
    if (this.#observer.logsCalls) this.#observer.logCall(m.name, op, d.args, reply);
    d.busy = false;
    d.args = undefined;
    this.#release(m, v, member, false);
    return reply;
  }

  /** A dispatched call failed (in the enclave, the runtime, or refused by a half-open breaker). */
  #rejected(d: Dispatch, err: unknown): Promise<unknown> {
    const { m, v, member } = d;
    const job: Job = { caller: d.caller, weight: d.weight, op: d.op, args: d.args, options: d.options, affinity: d.affinity, seqKey: d.seqKey, queuedAt: 0, retried: d.retried, resolve: noop, reject: noop };
    if (d.pass !== BREAKER_REFUSED) {
      v.breaker?.settle(d.pass, false, err);
      this.#count(d, codeOf(err));
      const stats = d.options?.stats;
      if (stats !== undefined) copyFuel(stats, d.record.fuel);
    }
    d.busy = false;
    d.args = undefined;
    return this.#failed(m, v, member, err, job);
  }

  /** A call's failure: the member released, then a retry, a canary's call run again, or the caller's error. */
  #failed(m: Managed, v: Version, member: PoolMember, err: unknown, job: Job): Promise<unknown> {
    const code = codeOf(err);
    const failed = BREAKER_FAILURE_CODES.has(code);
    if (this.#observer.logsCalls) this.#observer.logCall(m.name, job.op, job.args, undefined, err);
    let next: Promise<unknown> | undefined;
    if (v.ops.get(job.op)?.idempotent === true) {
      // A canary's failure is not the caller's: an idempotent call runs again on the current version.
      if (failed && v.trial !== undefined && m.current !== undefined && m.current !== v) next = this.#again(m, job, m.current);
      // Counted in `retrying` before the member is released, so a drain never sees it settled.
      // Not for a retry's own attempt: a series started per failed attempt never ends.
      else if (job.retried !== true && v.retry !== undefined && RETRY_CODES.has(code)) next = this.#retry(m, v.retry, job, err);
    }
    this.#release(m, v, member, failed);
    if (next !== undefined) return next;
    // The pool of a failed or stopped enclave was closed under its calls: say so as the host does.
    if (code === 'closed' && m.state !== 'ready' && m.state !== 'draining') return Promise.reject(unavailable());
    return Promise.reject(asEnclaveError(err));
  }

  /** After a call on `member` settled: counts, the canary's verdict, a retiring version, the queue, a drain. */
  #release(m: Managed, v: Version, member: PoolMember, failed: boolean): void {
    v.pool.release(member);
    v.inFlight--;
    m.inFlight--;
    v.trial?.record(failed);
    if (v.inFlight === 0 && v.onIdle !== undefined) v.onIdle();
    if (m.queue.size > 0) this.#pump(m);
    if (m.onDrained !== undefined) this.#settled(m);
  }

  /** A retryable failure of an idempotent op: again after a jittered backoff (retry.ts), through the queue. */
  #retry(m: Managed, retry: RetryOptions, job: Job, first: unknown): Promise<unknown> {
    m.retrying++;
    let replayed = false;
    const attempt = (): Promise<unknown> => {
      // withRetry's first attempt is the one that just failed: its backoff starts from it.
      if (!replayed) {
        replayed = true;
        return Promise.reject(first);
      }
      if (m.state !== 'ready' && m.state !== 'draining') return Promise.reject(unavailable());
      return this.#again(m, { ...job, retried: true }, undefined);
    };
    const retried = withRetry(attempt, { ...retry, signal: m.retries.signal });
    return retried.finally(() => {
      m.retrying--;
      this.#settled(m);
    });
  }

  /** A call accepted once already, dispatched again: on `version` if given, else as a new call would be. */
  #again(m: Managed, job: Job, version: Version | undefined): Promise<unknown> {
    try {
      const v = version ?? this.#versionFor(m, job.affinity);
      if (m.queue.size === 0) {
        const member = v.pool.acquire(job.affinity);
        if (member !== undefined) return this.#run(m, v, member, job.op, job.args, job.options, job.seqKey, job.caller, job.weight, job.affinity, job.retried === true, hostNow());
      }
      return this.#enqueue(m, { ...job, queuedAt: hostNow() });
    } catch (err) {
      return Promise.reject(asEnclaveError(err));
    }
  }

  /** After a call settles or leaves the queue: a stop() waiting for the drain may go on. */
  #settled(m: Managed): void {
    if (m.onDrained !== undefined && m.inFlight === 0 && m.retrying === 0 && m.queue.size === 0) {
      const drained = m.onDrained;
      m.onDrained = undefined;
      drained();
    }
  }

  /**
   * Evidence from one instance of the enclave, bound to the relying party's nonce; timed into the
   * attestation histogram.
   * @throws {EnclaveError} (as a rejection) `unavailable` when the enclave is not ready; the codes of `EnclaveHandle.attest`.
   * @example
   * const token = await host.attest('signer', nonce);
   */
  async attest(name: string, nonce: Uint8Array, options?: Parameters<EnclaveHandle['attest']>[1]): Promise<string> {
    const m = this.#enclaves.get(bounded(name));
    if (m === undefined || m.state !== 'ready' || m.current === undefined) throw unavailable();
    // Any member that serves: one whose handle closed is being replaced and cannot attest.
    const member = m.current.pool.members.find((candidate) => !candidate.handle.closed);
    if (member === undefined) throw unavailable();
    const began = performance.now();
    const token = await this.#observer.traceLifecycle('attest', m.name, () => member.handle.attest(nonce, options));
    this.#observer.attested(m.name, performance.now() - began);
    return token;
  }

  /**
   * Ends a caller's session: its `requires` record, and its instance under `per-session` state.
   * Resolves with whether an instance held the session.
   * @throws {EnclaveError} (as a rejection) `unauthorized`, `denied`, `rate_limited`,
   *   `quota_exceeded` (the access policy, as for a call: the caller must be granted some op of the
   *   enclave; one token and one quota unit); `invalid_options` for a bad session id; `unavailable`
   *   for an enclave that is not ready or draining (or that this host does not run).
   * @example
   * await host.endSession('billing', 'signer', 'order-42');
   */
  async endSession(caller: string, enclave: string, session: string): Promise<boolean> {
    // The access policy first, as for a call: a caller not granted this enclave learns nothing of
    // it and reaches nothing in it (an endSession sits in a member's own queue, ahead of calls).
    this.#gate.admitSession(caller, enclave);
    const m = this.#enclaves.get(enclave);
    if (caller.includes(SESSION_SEPARATOR)) throw new EnclaveError('unauthorized');
    const { affinity } = this.#readOptions(caller, { session }, true);
    if (m === undefined || (m.state !== 'ready' && m.state !== 'draining')) throw unavailable();
    this.#sequences.end(`${enclave}${SESSION_SEPARATOR}${caller}${SESSION_SEPARATOR}${session}`);
    // Only `per-session` enclaves keep an instance per session: on the one member its key maps to, in each version.
    if (!m.perSession) return false;
    const key = affinity!;
    const versions = [m.current, m.canary].filter((v): v is Version => v !== undefined);
    const ended = await Promise.all(
      versions.map((v) => {
        const index = v.pool.indexOf(key);
        v.sessions?.[index]?.delete(key);
        return v.pool.members[index]!.handle.endSession(key).catch(() => false);
      }),
    );
    return ended.includes(true);
  }

  /**
   * Replaces the access policy, validated first: an invalid one leaves the old in force. Rate
   * buckets of callers whose limits are unchanged are kept.
   * Reloads take effect in the order they were called: one that settles after a later one
   * already put its policy in force changes nothing (a slow file read cannot bring back a policy
   * the service replaced since).
   * @throws {EnclaveError} `invalid_access_policy` naming the first bad field.
   * @example
   * await host.reloadAccess('access.json');
   */
  async reloadAccess(source: unknown): Promise<void> {
    const ticket = ++this.#policyAsked;
    const policy = await loadPolicy(source);
    this.#installPolicy(ticket, policy);
    // A policy file that could not be read at construction held every start back; a policy is in force now.
    this.#policyReady = Promise.resolve();
  }

  /** Puts the policy of load number `ticket` in force, unless a later load's is already. */
  #installPolicy(ticket: number, policy: AccessPolicy): void {
    if (ticket < this.#policyInForce) return;
    this.#policyInForce = ticket;
    this.#gate.reload(policy);
  }

  /**
   * Hashes again the bytes an enclave runs (the module's copy, and its file when it was started
   * from one) and compares them with the measurement it attested. A mismatch emits `integrity` and
   * takes the enclave out of service (`failed`).
   * @returns whether every version of the enclave matched; false for an enclave a check took out
   *   of service (this one, the schedule's, or one running at the same time), until it is started again.
   * @throws {EnclaveError} `invalid_options` for a name the host does not run.
   * @example
   * if (!(await host.checkIntegrity('signer'))) alert('signer tampered with');
   */
  async checkIntegrity(name: string): Promise<boolean> {
    const m = this.#enclaves.get(bounded(name));
    if (m === undefined) refuse('No enclave of that name runs here.');
    return this.#checkIntegrity(m);
  }

  #checkIntegrity(m: Managed): Promise<boolean> {
    return this.#observer.traceLifecycle('integrity', m.name, () => this.#checkVersions(m));
  }

  async #checkVersions(m: Managed): Promise<boolean> {
    const versions = [m.current, m.canary].filter((v): v is Version => v !== undefined);
    for (const v of versions) {
      const result = await checkIntegrity(v.mod, v.measurement, v.file);
      if (m.current !== v && m.canary !== v) continue;
      this.#observer.integrity(m.name, result.ok);
      if (!result.ok) {
        m.tampered = true;
        this.#observer.logger.error({ enclave: m.name, expected: v.measurement, found: result.found, where: result.where }, 'integrity mismatch: enclave taken out of service');
        this.#emit('integrity', { enclave: m.name, expected: v.measurement, found: result.found, where: result.where });
        await this.#fail(m, 'integrity');
        return false;
      }
    }
    // Not `true` when nothing was left to check because a mismatch just took the versions out (a
    // check racing the schedule's) or took them out earlier: `if (!ok) alert()` must still alert.
    return !m.tampered;
  }

  /** The schedule: every enclave that serves, one check at a time each. Never rejects. */
  #checkAllIntegrity(): void {
    for (const m of this.#enclaves.values()) {
      if ((m.state !== 'ready' && m.state !== 'draining') || m.integrityRunning) continue;
      m.integrityRunning = true;
      this.#checkIntegrity(m)
        .catch((err: unknown) => this.#observer.logger.warn({ enclave: m.name, code: codeOf(err) }, 'integrity check could not run'))
        .finally(() => {
          m.integrityRunning = false;
        });
    }
  }

  /** Takes an enclave out of service now: queued calls refused, pools closed (calls on them end `unavailable`). */
  async #fail(m: Managed, reason: string): Promise<void> {
    if (m.state !== 'ready' && m.state !== 'draining') return;
    const versions = [m.current, m.canary].filter((v): v is Version => v !== undefined);
    m.canary = undefined;
    // Out of service for good: its modules (bytes and compiled code) are released with it.
    m.current = undefined;
    // Among the versions retiring before the `failed` event: a stop() (or close()) made then, by a
    // listener or later, waits for these pools instead of resolving while their workers still run.
    const closing = Promise.all(versions.map((v) => this.#closeVersion(v))).then(() => undefined);
    m.retiring.add(closing);
    this.#transition(m, 'failed', reason);
    m.retries.abort();
    m.queue.clear((job) => job.reject(unavailable()));
    this.#observer.queueDepth(m.name, 0);
    try {
      await closing;
    } finally {
      m.retiring.delete(closing);
    }
    this.#observer.instances(m.name, 0);
    this.#settled(m);
  }

  /**
   * Replaces an enclave's module with no failed call, but for a session's state, which stays with
   * the version it was built on: a `per-session` instance, and the ops a session did for the
   * contract's `requires`. A session in progress at the switch starts again on the new version (its
   * next op that requires another is refused `state` until it calls that one there). `blue-green`: the new version starts and
   * passes its self-check, then every call dispatched from then on goes to it; the old one finishes
   * its calls in flight and is closed. `canary`: the new version takes `share` of the calls until it
   * has answered `minCalls` (promoted, as a switch) or failed more than `maxErrorRate` allows
   * (rolled back); a canary's failed call of an idempotent op runs again on the current version.
   * Spec fields left out are those of the running version (`queue` stays that of `start`).
   * Every outcome is a `swap` event with both measurements.
   * @returns how it ended: `switched`, `promoted` or `rolled-back` (with its reason).
   * @throws {EnclaveError} (as a rejection) `rollback` for a lower svn without `force` (a `refused`
   *   swap); the start codes of the new version (`refused`, the old one keeps serving);
   *   `unavailable` when the enclave is not ready; `state` when another upgrade is in progress;
   *   `invalid_options`.
   * @example
   * await host.upgrade('signer', { module: 'signer-v2.wasm' }, { strategy: 'canary', share: 0.1, minCalls: 200 });
   */
  async upgrade(name: string, spec: Partial<EnclaveSpec>, options?: UpgradeOptions): Promise<UpgradeResult> {
    const m = this.#enclaves.get(bounded(name));
    if (m === undefined) refuse('No enclave of that name runs here.');
    const upgrade = readGiven(() => settleUpgrade(options), 'The upgrade options');
    // A field given as undefined is left out, as one not given: `{ ...config, module }` with no
    // `trust` in config must not drop the running version's signature check (nor its state policy).
    const given: Record<string, unknown> = {};
    for (const [key, value] of readGiven(() => Object.entries(plainObject(spec, 'The enclave spec')), 'The enclave spec')) if (value !== undefined) given[key] = value;
    if (given.queue !== undefined) refuse('queue is set at start() and kept across upgrades.');
    if (given.state !== undefined && given.state !== m.settings.enclave.state) refuse('state is set at start() and kept across upgrades.');
    const settings = settleSpec({ ...m.settings.raw, ...given }, this.#debug);
    if (m.state !== 'ready' || m.current === undefined) throw unavailable();
    if (m.upgrading !== undefined) throw new EnclaveError('state', 'Another upgrade of this enclave is in progress: wait for its outcome.');
    const upgrading = this.#observer.traceLifecycle('upgrade', m.name, () => this.#upgrade(m, settings, upgrade));
    m.upgrading = upgrading;
    try {
      return await upgrading;
    } finally {
      m.upgrading = undefined;
    }
  }

  async #upgrade(m: Managed, settings: Settings, upgrade: SettledUpgrade): Promise<UpgradeResult> {
    const strategy = upgrade.strategy;
    const from = m.current!;
    let next: Version;
    // Unknown until the new module compiles: a module that does not is refused with `to: ''`.
    let to = '';
    try {
      const mod = await compileEnclave(settings.module, settings.compile);
      to = mod.measurement;
      checkSvn(from.svn, mod.identity.svn, upgrade.force);
      next = await this.#startVersion(m, settings, mod);
    } catch (err) {
      this.#emit('swap', { enclave: m.name, strategy, from: from.measurement, to, outcome: 'refused', reason: codeOf(err) });
      throw asEnclaveError(err);
    }
    if (m.state !== 'ready' || m.current !== from) {
      // Stopped or failed while the new version started: an outcome too, for the audit log.
      this.#emit('swap', { enclave: m.name, strategy, from: from.measurement, to: next.measurement, outcome: 'refused', reason: 'unavailable' });
      await this.#closeVersion(next);
      throw unavailable();
    }
    if (strategy === 'blue-green') {
      await this.#switch(m, from, next, { enclave: m.name, strategy, from: from.measurement, to: next.measurement, outcome: 'switched' });
      return { outcome: 'switched', from: from.measurement, to: next.measurement };
    }
    const verdict = await new Promise<TrialOutcome | { outcome: 'rolled-back'; reason: 'stopped' }>((resolve) => {
      next.trial = new CanaryTrial(upgrade, resolve);
      m.canary = next;
      // Calls waiting in the queue may go to the canary now.
      this.#pump(m);
    });
    // `next.trial` stays (ended): a canary call still in flight that fails runs again on the current version.
    m.canary = undefined;
    const event: SwapEvent = { enclave: m.name, strategy, from: from.measurement, to: next.measurement, outcome: verdict.outcome };
    if (verdict.outcome === 'promoted' && m.state === 'ready' && m.current === from) {
      await this.#switch(m, from, next, event);
      return { outcome: 'promoted', from: from.measurement, to: next.measurement };
    }
    const reason = verdict.outcome === 'rolled-back' ? verdict.reason : 'stopped';
    this.#emit('swap', { ...event, outcome: 'rolled-back', reason });
    await this.#retire(m, next);
    return { outcome: 'rolled-back', from: from.measurement, to: next.measurement, reason };
  }

  /** Makes `next` the version every call dispatched from now goes to; `from` finishes its calls and closes. */
  async #switch(m: Managed, from: Version, next: Version, event: SwapEvent): Promise<void> {
    m.current = next;
    // The running version's settings are what a later upgrade leaves out: not those of start().
    m.settings = next.settings;
    m.served = { measurement: next.measurement, svn: next.svn };
    this.#observer.instances(m.name, next.pool.size);
    this.#emit('swap', event);
    // Calls queued at the switch go to the new version now, if it has members free.
    this.#pump(m);
    await this.#retire(m, from);
  }

  /** Closes a version once nothing runs on it (its in-flight calls finish there first). */
  async #retire(m: Managed, v: Version): Promise<void> {
    const retiring = (async () => {
      if (v.inFlight > 0) await new Promise<void>((resolve) => (v.onIdle = resolve));
      v.onIdle = undefined;
      await this.#closeVersion(v);
    })();
    m.retiring.add(retiring);
    try {
      await retiring;
    } finally {
      m.retiring.delete(retiring);
    }
  }

  /**
   * Stops an enclave: `draining` (new calls `unavailable`), then the calls accepted (queued, in
   * flight) finish or hit their deadline (a call waiting to be retried rejects `unavailable` at
   * once: a backoff is not waited out), then its pools close and it is
   * `stopped`. A canary on trial is rolled back. Resolves once stopped; a second stop() waits for
   * the first.
   * @throws {EnclaveError} `invalid_options` for a name the host does not run.
   * @example
   * await host.stop('signer');
   */
  async stop(name: string): Promise<void> {
    const m = this.#enclaves.get(bounded(name));
    if (m === undefined) refuse('No enclave of that name runs here.');
    if (m.starting !== undefined) await m.starting.catch(() => undefined);
    if (m.stopping !== undefined) return m.stopping;
    if (m.state === 'stopped') return;
    if (m.state === 'failed') {
      this.#transition(m, 'stopped');
      await Promise.all(m.retiring);
      this.#observer.forget(m.name);
      return;
    }
    m.stopping = this.#stop(m);
    try {
      await m.stopping;
    } finally {
      m.stopping = undefined;
    }
  }

  async #stop(m: Managed): Promise<void> {
    this.#transition(m, 'draining');
    // A canary's verdict will not come now: no more calls go to it, and its upgrade() ends rolled back.
    const canary = m.canary;
    m.canary = undefined;
    canary?.trial?.abort();
    // A retry waiting out its backoff (up to maxDelayMs, 60 s at most, per attempt) is not
    // waited for: it rejects `unavailable` now. An attempt already running finishes.
    m.retries.abort();
    if (m.inFlight > 0 || m.retrying > 0 || m.queue.size > 0) {
      await new Promise<void>((resolve) => (m.onDrained = resolve));
    }
    // An upgrade under way ends now (its new version closed, or its trial rolled back): wait for it.
    await m.upgrading?.catch(() => undefined);
    await Promise.all(m.retiring);
    // The canary too: its upgrade() may not have closed it yet (closing twice is harmless).
    const versions = [m.current, canary].filter((v): v is Version => v !== undefined);
    await Promise.all(versions.map((v) => this.#closeVersion(v)));
    // A stopped name keeps its state for state() and stats(), not its modules.
    m.current = undefined;
    this.#observer.instances(m.name, 0);
    // failed meanwhile (integrity): it stays failed; stop() on it later releases the name.
    if (m.state === 'draining') this.#transition(m, 'stopped');
    if (m.state === 'stopped') this.#observer.forget(m.name);
  }

  /**
   * Stops every enclave (each drains), clears the schedule, unsubscribes the observer from the
   * runtime's channels. Later `start` calls reject with `closed`. Idempotent.
   * @example
   * process.on('SIGTERM', () => void host.close());
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    if (this.#integrityTimer !== undefined) clearInterval(this.#integrityTimer);
    await Promise.all([...this.#enclaves.keys()].map((name) => this.stop(name).catch(() => undefined)));
    this.#observer.close();
  }

  /**
   * The throughput profile and the state of every enclave: calls/s, latency percentiles and fuel
   * per op (from the observer), queue, instances, breaker, restarts, a canary on trial.
   * @example
   * const { enclaves } = host.stats();
   * console.log(enclaves.signer?.ops.sign?.latencyMs.p99);
   */
  stats(): HostStats {
    const enclaves: Record<string, EnclaveStats> = {};
    for (const [name, m] of this.#enclaves) {
      const v = m.current;
      const canary = m.canary;
      const entry: EnclaveStats = {
        state: m.state,
        measurement: m.served?.measurement,
        svn: m.served?.svn,
        instances: v === undefined || m.state === 'stopped' || m.state === 'failed' ? 0 : v.pool.size,
        queued: m.queue.size,
        inFlight: m.inFlight,
        breaker: v?.breaker?.state ?? 'none',
        restarts: m.restarts,
        ...(canary?.trial === undefined
          ? {}
          : { canary: { measurement: canary.measurement, share: canary.trial.share, calls: canary.trial.calls, errors: canary.trial.errors } }),
        ops: this.#observer.opStats(name),
      };
      // Enclave names match ENCLAVE_NAME: never `__proto__` or another special key.
      enclaves[name] = entry;
    }
    return { enclaves };
  }
}

function noop(): void {}

/**
 * The host's clock, ms, monotonic (process.hrtime). The call path reads it twice a call (at
 * admission, shared by the rate bucket, the queue and the call's duration; and when the call
 * settles): `performance.now()` validates its receiver first and costs 80-110 ns a read on the
 * loaded 2-core VM measured, this 60-65 ns. Every time the host compares (the gate's buckets, the
 * queue wait, a call's duration) is on this one clock.
 */
function hostNow(): number {
  const t = process.hrtime();
  return t[0] * 1e3 + t[1] / 1e6;
}

/** A caller's `stats` before its call runs (as the runtime's readCallOptions): a setter that throws refuses the call. */
function zeroFuel(stats: { fuel: number }): void {
  try {
    stats.fuel = 0;
  } catch (err) {
    throw new EnclaveError('invalid_options', 'The call options cannot be read.', { cause: err });
  }
}

/** The call's fuel into the caller's `stats`: a setter that throws once the call has run changes nothing of its outcome. */
function copyFuel(stats: { fuel: number }, fuel: number): void {
  try {
    stats.fuel = fuel;
  } catch {
    // The caller's own code failed; the call's reply or error stands.
  }
}

/** A caller's string as a name to look up: itself when it could be an enclave or op name, else ''. */
function bounded(value: unknown): string {
  return typeof value === 'string' && value.length <= MAX_NAME ? value : '';
}
