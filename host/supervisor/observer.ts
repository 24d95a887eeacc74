/**
 * What the host sees of its enclaves, without leaking what they compute: metrics (metrics.ts),
 * spans (tracing.ts), logs (logging.ts) and the throughput profile (stats.ts), fed by the
 * runtime's diagnostics channels and by the host itself (see "Who counts the calls" below).
 *
 * ```
 *  runtime (any handle, any thread's host side)           host.ts
 *   enclave:call:end (standalone only) ─┐                  called() (callsFromHost),
 *   enclave:instance:discard ───────────┼─► by handle id   refused(), queueWait(), state(), ...
 *   enclave:worker:exit ────────────────┘   ─► entry ◄──────┘
 *                                 (attach(handle, name))     ├─► counters ─► HostMetrics (read at scrape)
 *                                                            └─► OpRecorder ─► opStats()
 * ```
 *
 * One subscription per channel per observer, made in the constructor and removed by `close()`.
 * A message is counted only for a handle attached to this observer (`diagnosticsIdOf`): another
 * host's enclaves, or a handle detached after a swap, are ignored.
 *
 * Who counts the calls (`callsFromHost`). Standalone (the default), `enclave:call:end` feeds the
 * calls, codes, fuel and durations of the attached handles. The host (`callsFromHost: true`)
 * feeds them itself through {@link HostObserver.called}, from its own end of each call: it knows
 * the enclave, the op and the code, gets the fuel through the runtime's `{ stats }`, and times the
 * call from dispatch to settling with the clock read it already made at admission; it subscribes
 * only to `enclave:instance:discard` and `enclave:worker:exit` (restarts: what only the runtime
 * sees, and rare). Why: any `enclave:call:end` subscriber makes the runtime build an observation
 * and read the clock twice on every call of every handle; with the host's own clock reads that is
 * three reads a call, and the budget (1.15× a bare 2.4 µs in-process call, ~0.36 µs for
 * the whole host) cannot hold them. Measured side by side (echo 16 B in-process, interleaved A/B,
 * medians of 11 rounds, SCHED_FIFO, load ~4 on 2 cores, the same host call path otherwise):
 * channel-fed 1.32-1.43× a bare Enclave by wall time (1.16-1.20× by CPU time), host-fed
 * 1.24-1.31× (1.16-1.20× CPU); the host code path itself, with the enclave call stubbed, costs
 * ~100 ns more host-fed (its end-of-call clock read and counting) but the runtime's publishing it
 * removes cost 0.3-0.5 µs. What the numbers mean is unchanged: counts, codes and fuel per call
 * that reached the runtime (self-checks included), duration from dispatch to settling.
 *
 * Bounds (every name may be hostile): an entry exists per enclave name the host reports through
 * the lifecycle methods (`attach`, `state`, `started`, ...), which it calls only for names it
 * runs; the per-call methods (`refused`, `traceCall`, `logCall`) map a name without an entry to
 * `(unknown)`, and an op the attached contracts do not declare to `(unknown)`. Per entry, one
 * record per declared op plus one for `(unknown)`.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import {
  DIAGNOSTICS_CHANNELS,
  EnclaveError,
  diagnosticsIdOf,
  isErrorCode,
  type CallEndMessage,
  type EnclaveHandle,
  type ErrorCode,
  type InstanceDiscardMessage,
  type LogLevel,
  type WorkerExitMessage,
} from '../../runtime/index.js';
import { HostLog, LOG_MESSAGES } from './logging.js';
import {
  ATTESTATION_BUCKETS,
  BucketCounts,
  CALL_DURATION_BUCKETS,
  HostMetrics,
  QUEUE_WAIT_BUCKETS,
  START_DURATION_BUCKETS,
  UNKNOWN_LABEL,
  type EnclaveSeries,
  type OpSeries,
} from './metrics.js';
import { OpRecorder, TickingClock, type OpStats } from './stats.js';
import type { HostState } from './states.js';
import { HostTracer, tracerInstalled, type LifecycleSpan } from './tracing.js';

export type { OpStats } from './stats.js';

/** Ops kept per enclave (declared ones; a contract declares far fewer): the rest count as `(unknown)`. */
const MAX_OPS = 1024;

/** Restart reasons kept as labels: the runtime's discarding codes and worker exits; any other is `other`. */
const WORKER_EXIT_REASONS: ReadonlySet<string> = new Set(['close', 'terminated', 'died']);

/** Options of {@link HostObserver}. */
export interface HostObserverOptions {
  /** Where the metrics are registered. Default: a new Registry (never prom-client's global one). */
  readonly registry?: Registry;
  /** Where the logs go. Default: `pino({ level: 'silent' })`. */
  readonly logger?: Logger;
  /** Log arguments, replies and error messages of calls (at debug level). Default false. */
  readonly logPayloads: boolean;
  /**
   * An instance of an enclave was replaced, as the runtime's channels tell (a discard: `reason` is
   * its code; a worker that died by itself: `died`). The host emits its `restart` event from it.
   * Calls to {@link HostObserver.restart} do not come back here.
   */
  readonly onRestart?: (enclave: string, reason: string) => void;
  /**
   * Who reports the calls of attached handles: `false` (default), the runtime's `enclave:call:end`
   * channel; `true`, the owner through {@link HostObserver.called} (the host does: see the file's
   * comment), and the observer does not subscribe to `enclave:call:end`. Restarts come from the
   * channels either way.
   */
  readonly callsFromHost?: boolean;
}

/** One op's counters, as {@link HostObserver.recordOf} hands them out (opaque to its caller). */
export interface CallRecord {
  readonly op: string;
}

/** One op of one enclave: the counters the metrics read and the profile. */
class OpEntry implements OpSeries, CallRecord {
  ok = 0;
  readonly failed = new Map<string, number>();
  readonly duration = new BucketCounts(CALL_DURATION_BUCKETS);
  fuel = 0;
  readonly stats: OpRecorder;
  constructor(
    readonly op: string,
    second: number,
  ) {
    this.stats = new OpRecorder(second);
  }
}

/** One enclave name of the host. */
class EnclaveEntry implements EnclaveSeries {
  /** Op label → its record. */
  readonly opMap = new Map<string, OpEntry>();
  /** Ops the attached handles' contracts declare. */
  readonly declared = new Set<string>();
  readonly queueWait = new BucketCounts(QUEUE_WAIT_BUCKETS);
  queueDepth: number | undefined;
  instances: number | undefined;
  state: HostState | undefined;
  readonly statesSeen = new Set<HostState>();
  readonly restarts = new Map<string, number>();
  readonly integrity = new Map<string, number>();
  readonly refusals = new Map<string, number>();
  readonly start = new BucketCounts(START_DURATION_BUCKETS);
  readonly attestation = new BucketCounts(ATTESTATION_BUCKETS);
  constructor(readonly name: string) {}

  get ops(): Iterable<OpEntry> {
    return this.opMap.values();
  }

  /**
   * The record of an op the runtime published (`undefined` unless the contract declares it): one
   * Map lookup on the hot path, the declared check only when the record is made.
   */
  published(op: string | undefined, second: number): OpEntry {
    return this.opMap.get(op ?? UNKNOWN_LABEL) ?? this.op(op, second);
  }

  /** The record of `op` (a declared name, or any other string or undefined for `(unknown)`), made on first use. */
  op(op: string | undefined, second: number): OpEntry {
    const key = op !== undefined && this.declared.has(op) ? op : UNKNOWN_LABEL;
    let entry = this.opMap.get(key);
    if (entry === undefined) {
      entry = new OpEntry(key, second);
      this.opMap.set(key, entry);
    }
    return entry;
  }
}

/** What the observer calls on a registry and a logger it is given. */
const REGISTRY_METHODS = ['getSingleMetric', 'registerMetric', 'removeSingleMetric', 'metrics'] as const;
const LOGGER_METHODS = ['isLevelEnabled', 'on', 'off', 'debug', 'info', 'warn', 'error'] as const;

function hasMethods(value: unknown, names: readonly string[]): boolean {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  try {
    return names.every((name) => typeof (value as Record<string, unknown>)[name] === 'function');
  } catch {
    return false;
  }
}

function increment(map: Map<string, number>, key: string, n = 1): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

/**
 * The host's observability: Prometheus metrics, OpenTelemetry spans, pino logs and the
 * throughput profile of every enclave it runs, fed from the runtime's diagnostics channels (for
 * the handles attached) and from the host (refusals, queue, lifecycle).
 * @throws {EnclaveError} `invalid_options` from the constructor when the registry already holds
 *   the host's metrics (another host's), or `registry` / `logger` is not a prom-client Registry /
 *   pino Logger (nothing is left registered then).
 * @example
 * const observer = new HostObserver({ logPayloads: false });
 * observer.state('echo', 'starting');
 * const handle = await loadEnclave('echo.wasm');
 * observer.attach(handle, 'echo');
 * await handle.call('echo', 'hi');
 * await observer.registry.metrics(); // enclave_calls_total{enclave="echo",op="echo",code="ok"} 1
 * observer.opStats('echo').echo.calls; // 1
 * observer.close();
 */
export class HostObserver {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly #log: HostLog;
  readonly #metrics: HostMetrics;
  readonly #tracer = new HostTracer();
  readonly #clock: TickingClock;
  readonly #onRestart: ((enclave: string, reason: string) => void) | undefined;
  /** Enclave name → its entry: only names the host reported through a lifecycle method. */
  readonly #entries = new Map<string, EnclaveEntry>();
  /** Where refusals of names the host does not run are counted (made on first use). */
  #unknown: EnclaveEntry | undefined;
  /** Diagnostics id of an attached handle → its enclave's entry. */
  readonly #byId = new Map<number, EnclaveEntry>();
  #tracing = tracerInstalled();
  #closed = false;
  readonly #callsFromHost: boolean;

  constructor(options: HostObserverOptions) {
    // Checked before anything is registered: a constructor that throws half-way would leave its
    // metrics in the service's registry (a second host on it refused for good) or a bare TypeError.
    if (options.registry !== undefined && !hasMethods(options.registry, REGISTRY_METHODS)) {
      throw new EnclaveError('invalid_options', 'registry must be a prom-client Registry.');
    }
    if (options.logger !== undefined && !hasMethods(options.logger, LOGGER_METHODS)) {
      throw new EnclaveError('invalid_options', 'logger must be a pino Logger.');
    }
    this.registry = options.registry ?? new Registry();
    this.logger = options.logger ?? pino({ level: 'silent' });
    this.#onRestart = options.onRestart;
    this.#metrics = new HostMetrics(this.registry, () => this.#series());
    try {
      this.#log = new HostLog(this.logger, options.logPayloads === true);
    } catch (error) {
      this.#metrics.unregister();
      throw new EnclaveError('invalid_options', 'logger must be a pino Logger.', { cause: error });
    }
    this.#clock = new TickingClock(() => {
      this.#tracing = tracerInstalled();
    });
    this.#callsFromHost = options.callsFromHost === true;
    if (!this.#callsFromHost) subscribe(DIAGNOSTICS_CHANNELS.callEnd, this.#onCallEnd);
    subscribe(DIAGNOSTICS_CHANNELS.instanceDiscard, this.#onDiscard);
    subscribe(DIAGNOSTICS_CHANNELS.workerExit, this.#onWorkerExit);
  }

  /**
   * Whether an OpenTelemetry SDK is installed (a real TracerProvider registered): call
   * {@link HostObserver.traceCall} only then. Re-read once a second (an SDK installed later is
   * seen within a second).
   */
  get tracing(): boolean {
    return this.#tracing;
  }

  /** Whether {@link HostObserver.logCall} writes anything (the logger is at debug level): call it only then. */
  get logsCalls(): boolean {
    return this.#log.callsEnabled;
  }

  // --- the runtime's channels (hot path: a Map lookup by id, then counters) ---

  readonly #onCallEnd = (message: unknown): void => {
    const m = message as CallEndMessage;
    const entry = this.#byId.get(m.enclave);
    if (entry === undefined) return;
    this.#count(entry, m.op, m.ok ? undefined : (m.code ?? 'internal'), m.fuel, m.durationMs);
  };

  /** One call that reached the runtime: counters, histogram, profile. `code` undefined: it succeeded. */
  #count(entry: EnclaveEntry, op: string | undefined, code: string | undefined, fuel: number, ms: number): void {
    const second = this.#clock.second;
    const record = entry.published(op, second);
    if (code === undefined) record.ok++;
    else increment(record.failed, code);
    record.fuel += fuel;
    record.duration.observe(ms / 1000);
    record.stats.call(code === undefined, code, fuel, ms, second);
  }

  readonly #onDiscard = (message: unknown): void => {
    const m = message as InstanceDiscardMessage;
    const entry = this.#byId.get(m.enclave);
    if (entry === undefined) return;
    this.#restarted(entry, m.code, undefined);
  };

  readonly #onWorkerExit = (message: unknown): void => {
    const m = message as WorkerExitMessage;
    // `close` is a planned end, `terminated` follows a discard already counted (timeout, or a
    // worker the runtime no longer trusts after a failed call); only a death by itself is new.
    if (m.reason !== 'died') return;
    const entry = this.#byId.get(m.enclave);
    if (entry === undefined) return;
    this.#restarted(entry, 'died', m.error);
  };

  #restarted(entry: EnclaveEntry, reason: string, error: string | undefined): void {
    increment(entry.restarts, reason);
    this.#log.event('warn', LOG_MESSAGES.restart, { enclave: entry.name, reason, error });
    if (this.#onRestart !== undefined) {
      try {
        this.#onRestart(entry.name, reason);
      } catch {
        // A listener's failure must not reach the runtime's publish (it would surface as an
        // uncaught exception on the next tick).
      }
    }
  }

  // --- handles ---

  /**
   * Counts the runtime events of `handle` for the enclave `enclave` from now on, and learns the ops
   * its contract declares (their names become `op` labels). Every member of a pool is attached
   * under its enclave's name; the new version's handles too during an upgrade.
   * @throws {EnclaveError} `invalid_options` when `handle` is not an enclave handle (it has no diagnostics id).
   * @example
   * observer.attach(await loadEnclave('echo.wasm'), 'echo');
   */
  attach(handle: EnclaveHandle, enclave: string): void {
    const id = diagnosticsIdOf(handle);
    if (id === undefined) throw new EnclaveError('invalid_options', 'attach: not an enclave handle (loadEnclave, createWorkerEnclave or EnclaveModule.create returns one).');
    const entry = this.#entry(enclave);
    for (const op of Object.keys(handle.contract.ops)) if (entry.declared.size < MAX_OPS) entry.declared.add(op);
    this.#byId.set(id, entry);
  }

  /**
   * Stops counting `handle`'s events (a replaced pool member, the old version after a swap).
   * Idempotent; an unknown handle is ignored.
   * @example
   * observer.detach(oldHandle);
   */
  detach(handle: EnclaveHandle): void {
    const id = diagnosticsIdOf(handle);
    if (id !== undefined) this.#byId.delete(id);
  }

  // --- from the host: per call ---

  /**
   * A call the host refused before it reached the runtime (access, rate, quota, state, breaker,
   * queue). `enclave` may be any string (pass '' for a name the host does not run): a name without
   * an entry counts under `(unknown)`; so does an op the contract does not declare.
   * @example
   * observer.refused('signer', 'sign', 'rate_limited');
   */
  refused(enclave: string, op: string | undefined, code: ErrorCode): void {
    const entry = this.#entries.get(enclave) ?? (this.#unknown ??= new EnclaveEntry(UNKNOWN_LABEL));
    const label = isErrorCode(code) ? code : 'internal';
    increment(entry.refusals, label);
    entry.op(op, this.#clock.second).stats.refusal(label, this.#clock.second);
  }

  /**
   * A call the host dispatched to a handle of `enclave` settled (with `callsFromHost`; otherwise
   * ignored: the channel counts it). What `enclave:call:end` would carry: `code` undefined for a
   * reply, else the code it failed with; the fuel the runtime reported in `{ stats }`; the time
   * from dispatch to settling, ms. `enclave` without an entry is ignored; an op the contracts do
   * not declare counts as `(unknown)`.
   * @example
   * observer.called('signer', 'sign', undefined, stats.fuel, performance.now() - dispatchedAt);
   */
  called(enclave: string, op: string, code: ErrorCode | undefined, fuel: number, ms: number): void {
    const record = this.recordOf(enclave, op);
    if (record !== undefined) this.count(record, code, fuel, ms);
  }

  /**
   * What {@link HostObserver.called} counts into, looked up once: the record of `op` (or of
   * `(unknown)`) of `enclave`, for a caller that reports many calls of one op (the host keeps one
   * per pool member). `undefined` without `callsFromHost`, or for a name without an entry. A
   * record stays valid until {@link HostObserver.forget} of its enclave.
   * @example
   * const record = observer.recordOf('signer', 'sign');
   * if (record !== undefined) observer.count(record, undefined, stats.fuel, ms);
   */
  recordOf(enclave: string, op: string): CallRecord | undefined {
    if (!this.#callsFromHost) return undefined;
    return this.#entries.get(enclave)?.published(op, this.#clock.second);
  }

  /**
   * One call into a record from {@link HostObserver.recordOf}: `code` undefined for a reply, the
   * fuel from `{ stats }`, the time from dispatch to settling, ms.
   * @example
   * observer.count(record, 'trap', stats.fuel, 0.8);
   */
  count(record: CallRecord, code: ErrorCode | undefined, fuel: number, ms: number): void {
    const counted = Number.isFinite(fuel) ? fuel : 0;
    const second = this.#clock.second;
    const op = record as OpEntry;
    if (code === undefined) op.ok++;
    else increment(op.failed, code);
    op.fuel += counted;
    op.duration.observe(ms / 1000);
    op.stats.call(code === undefined, code, counted, ms, second);
  }

  /**
   * How long a call waited in the host queue before an instance took it, ms.
   * @example
   * observer.queueWait('signer', performance.now() - job.queuedAt);
   */
  queueWait(enclave: string, ms: number): void {
    if (!(ms >= 0)) return;
    this.#entries.get(enclave)?.queueWait.observe(ms / 1000);
  }

  /**
   * Runs `fn` (the whole call through the host) in an `enclave.call` span. With no SDK
   * installed, calls `fn` with nothing around it. `enclave`/`op` may be any strings: names the host
   * does not run or the contract does not declare are `(unknown)` in the span.
   * @throws what `fn` throws, unchanged.
   * @example
   * const reply = await observer.traceCall('signer', 'sign', () => dispatch());
   */
  traceCall<T>(enclave: string, op: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (!this.#tracing) return fn();
    const entry = this.#entries.get(enclave);
    return this.#tracer.call(entry?.name ?? UNKNOWN_LABEL, op !== undefined && entry?.declared.has(op) === true ? op : UNKNOWN_LABEL, fn);
  }

  /**
   * Runs `fn` (a start, an attestation, an upgrade, an integrity check) in its lifecycle span.
   * @throws what `fn` throws, unchanged.
   * @example
   * await observer.traceLifecycle('start', 'signer', () => startPool());
   */
  traceLifecycle<T>(what: LifecycleSpan, enclave: string, fn: () => Promise<T>): Promise<T> {
    return this.#tracer.lifecycle(what, this.#entry(enclave).name, fn);
  }

  /**
   * Logs a call at debug level (nothing unless the logger is at debug: see `logsCalls`): the
   * enclave, the op and the outcome code; the arguments, the reply and the error's message only
   * with `logPayloads`. `error` undefined means the call succeeded with `reply`.
   * @example
   * if (observer.logsCalls) observer.logCall('signer', 'sign', args, reply, undefined);
   */
  logCall(enclave: string, op: string | undefined, args: unknown, reply: unknown, error?: unknown): void {
    if (!this.#log.callsEnabled) return;
    const entry = this.#entries.get(enclave);
    this.#log.call(entry?.name ?? UNKNOWN_LABEL, op !== undefined && entry?.declared.has(op) === true ? op : UNKNOWN_LABEL, args, reply, error);
  }

  /**
   * An `onLog` for the enclave `enclave`'s options: its lines go to the logger at their level, the
   * text in the `line` field (untrusted text, never the message).
   * @example
   * const pool = await InstancePool.start(mod, { ...opts, enclave: { onLog: observer.onLog('signer') } });
   */
  onLog(enclave: string): (level: LogLevel, message: string) => void {
    const name = this.#entry(enclave).name;
    return (level, message) => this.#log.enclaveLine(name, level, message);
  }

  // --- from the host: lifecycle (names the host runs) ---

  /**
   * Calls waiting in the host queue of `enclave` now.
   * @example
   * observer.queueDepth('signer', queue.size);
   */
  queueDepth(enclave: string, n: number): void {
    this.#entry(enclave).queueDepth = n;
  }

  /**
   * Instances serving `enclave` now.
   * @example
   * observer.instances('signer', pool.size);
   */
  instances(enclave: string, n: number): void {
    this.#entry(enclave).instances = n;
  }

  /**
   * A restart the host saw itself (a pool member whose handle closed and was replaced).
   * Instance discards and worker deaths come from the runtime's channels: do not report them here.
   * `reason`: an error code or a worker exit reason, else counted as `other`.
   * @example
   * observer.restart('signer', 'closed');
   */
  restart(enclave: string, reason: string): void {
    const label = isErrorCode(reason) || WORKER_EXIT_REASONS.has(reason) ? reason : 'other';
    const entry = this.#entry(enclave);
    increment(entry.restarts, label);
    this.#log.event('warn', LOG_MESSAGES.restart, { enclave: entry.name, reason: label });
  }

  /**
   * `enclave` started (every instance, self-check included) in `ms`.
   * @example
   * observer.started('signer', performance.now() - t0);
   */
  started(enclave: string, ms: number): void {
    const entry = this.#entry(enclave);
    if (ms >= 0) entry.start.observe(ms / 1000);
    this.#log.event('info', LOG_MESSAGES.started, { enclave: entry.name, ms });
  }

  /**
   * Evidence for `enclave` was produced in `ms`.
   * @example
   * observer.attested('signer', performance.now() - t0);
   */
  attested(enclave: string, ms: number): void {
    if (ms >= 0) this.#entry(enclave).attestation.observe(ms / 1000);
  }

  /**
   * `enclave` is now in `state` (`enclave_state` is 1 for it, 0 for the states it left).
   * @example
   * observer.state('signer', 'ready');
   */
  state(enclave: string, state: HostState): void {
    const entry = this.#entry(enclave);
    entry.state = state;
    entry.statesSeen.add(state);
    this.#log.event(state === 'failed' ? 'error' : 'info', LOG_MESSAGES.state, { enclave: entry.name, state });
  }

  /**
   * An integrity check of `enclave` ended: `ok` false is a mismatch.
   * @example
   * observer.integrity('signer', result.ok);
   */
  integrity(enclave: string, ok: boolean): void {
    const entry = this.#entry(enclave);
    const result = ok ? 'ok' : 'mismatch';
    increment(entry.integrity, result);
    this.#log.event(ok ? 'info' : 'error', LOG_MESSAGES.integrity, { enclave: entry.name, result });
  }

  // --- reading ---

  /**
   * The throughput profile of `enclave`, per op (declared ops that were called, and `(unknown)`
   * for calls of other names). Sorts copies of the rings: call it per `stats()`, not per call.
   * @returns an empty record for a name the host does not run.
   * @example
   * observer.opStats('signer').sign.latencyMs.p99;
   */
  opStats(enclave: string): Record<string, OpStats> {
    const out: Record<string, OpStats> = {};
    const entry = this.#entries.get(enclave);
    if (entry === undefined) return out;
    // Keys are declared op names ([a-z_][a-z0-9_]*, the contract's rule) or `(unknown)`: none can
    // be `__proto__`; defineProperty regardless, so no key ever reaches a setter.
    for (const [name, op] of entry.opMap) Object.defineProperty(out, name, { value: op.stats.snapshot(this.#clock.second), enumerable: true, writable: true, configurable: true });
    return out;
  }

  /**
   * Removes `enclave` (after its stop): its series leave the metrics, its profile is dropped, its
   * handles are detached.
   * @example
   * await host.stop('signer'); // calls observer.forget('signer')
   */
  forget(enclave: string): void {
    const entry = this.#entries.get(enclave);
    if (entry === undefined) return;
    this.#entries.delete(enclave);
    for (const [id, e] of this.#byId) if (e === entry) this.#byId.delete(id);
  }

  /**
   * Unsubscribes from every channel, stops the clock and the logger listener, and removes the
   * metrics from the registry (so another host may register them). Idempotent.
   * @example
   * await host.close(); // calls observer.close()
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#callsFromHost) unsubscribe(DIAGNOSTICS_CHANNELS.callEnd, this.#onCallEnd);
    unsubscribe(DIAGNOSTICS_CHANNELS.instanceDiscard, this.#onDiscard);
    unsubscribe(DIAGNOSTICS_CHANNELS.workerExit, this.#onWorkerExit);
    this.#clock.stop();
    this.#log.close();
    this.#metrics.unregister();
    this.#byId.clear();
  }

  /** The entry of a name the host runs, made on first report. */
  #entry(enclave: string): EnclaveEntry {
    let entry = this.#entries.get(enclave);
    if (entry === undefined) {
      entry = new EnclaveEntry(enclave);
      this.#entries.set(enclave, entry);
    }
    return entry;
  }

  *#series(): Iterable<EnclaveSeries> {
    yield* this.#entries.values();
    if (this.#unknown !== undefined) yield this.#unknown;
  }
}
