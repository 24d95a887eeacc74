/**
 * The host's Prometheus metrics (prom-client), registered on one `Registry` per host, never the
 * global default one. Every metric is read at scrape time from plain counters the hot path keeps
 * (the observer's {@link EnclaveSeries}); nothing of prom-client runs per call.
 *
 * Why not prom-client's own per-call API: `counter.labels(e, op, code).inc()` hashes its label
 * object on every call (a pre-bound child included: it re-enters `inc(labels)`), measured at
 * ~300 ns, and `histogram.observe` at ~570 ns (Node 20) — either alone is more than the host's
 * whole per-call budget (0.3 µs over a 2 µs call). Here a call costs a few field increments and a
 * bucket search; a scrape costs O(series).
 *
 * ```
 *  hot path (observer)                      scrape: await registry.metrics()
 *  EnclaveSeries ── ops ── OpSeries          collect(): reset, then set every series from the counters
 *    ok++ / failed[code]++ / fuel += n       SeriesHistogram.get(): buckets from BucketCounts
 *    duration.observe(s)
 * ```
 *
 * Labels come only from bounded sets: enclave names the host started (or `(unknown)`), op names
 * the contract declares (or `(unknown)`), error codes, states, and restart reasons from the
 * runtime's table. Caller ids are never labels.
 */
import { Counter, Gauge, Histogram, type MetricType, type Registry } from 'prom-client';
import { EnclaveError } from '../../core/index.js';

/** The label value for an enclave name the host does not run, or an op the contract does not declare. */
export const UNKNOWN_LABEL = '(unknown)';

/** Buckets of `enclave_call_duration_seconds`: a call is ~2 µs in-process, up to its deadline in a worker. */
export const CALL_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);
/** Buckets of `enclave_queue_wait_seconds` (bounded by `queueTimeoutMs`, default 5 s). */
export const QUEUE_WAIT_BUCKETS: readonly number[] = Object.freeze([0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10]);
/** Buckets of `enclave_start_duration_seconds`: compile, instantiate and self-check, every instance. */
export const START_DURATION_BUCKETS: readonly number[] = Object.freeze([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
/** Buckets of `enclave_attestation_duration_seconds`. */
export const ATTESTATION_BUCKETS: readonly number[] = Object.freeze([0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1]);

/**
 * Every metric the host exports, with its labels: the table of docs/EMBEDDING.md ("Observability").
 * @example
 * Object.keys(HOST_METRICS); // ['enclave_calls_total', ...]
 */
const HOST_METRICS = Object.freeze({
  enclave_calls_total: ['enclave', 'op', 'code'],
  enclave_call_duration_seconds: ['enclave', 'op'],
  enclave_fuel_used_total: ['enclave', 'op'],
  enclave_queue_depth: ['enclave'],
  enclave_queue_wait_seconds: ['enclave'],
  enclave_instances: ['enclave'],
  enclave_restarts_total: ['enclave', 'reason'],
  enclave_start_duration_seconds: ['enclave'],
  enclave_attestation_duration_seconds: ['enclave'],
  enclave_state: ['enclave', 'state'],
  enclave_integrity_checks_total: ['enclave', 'result'],
  enclave_refusals_total: ['enclave', 'code'],
} as const);

/**
 * One histogram series as the hot path keeps it: a count per bucket (not cumulative; the last
 * slot is above every bound), the sum and the count.
 * @example
 * const b = new BucketCounts([0.1, 1]);
 * b.observe(0.05); b.observe(5);
 * b.counts; // Float64Array [1, 0, 1]
 */
export class BucketCounts {
  readonly bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Counts `value` in the first bucket whose bound is >= it (searched from the low end: most calls are fast). */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

/** What the metrics read of one op at scrape time. */
export interface OpSeries {
  /** The `op` label: a declared op name, or {@link UNKNOWN_LABEL}. */
  readonly op: string;
  /** Calls that reached the runtime and succeeded. */
  readonly ok: number;
  /** Calls that reached the runtime and failed, by code. */
  readonly failed: ReadonlyMap<string, number>;
  /** Their durations, seconds. */
  readonly duration: BucketCounts;
  /** Fuel they used, in total. */
  readonly fuel: number;
}

/** What the metrics read of one enclave at scrape time. */
export interface EnclaveSeries {
  /** The `enclave` label: a name the host started, or {@link UNKNOWN_LABEL}. */
  readonly name: string;
  readonly ops: Iterable<OpSeries>;
  readonly queueWait: BucketCounts;
  /** Undefined until the host reports it (then the series appears). */
  readonly queueDepth: number | undefined;
  readonly instances: number | undefined;
  /** The current state, and every state the enclave has been in (reported as 0). */
  readonly state: string | undefined;
  readonly statesSeen: ReadonlySet<string>;
  readonly restarts: ReadonlyMap<string, number>;
  readonly integrity: ReadonlyMap<string, number>;
  readonly refusals: ReadonlyMap<string, number>;
  readonly start: BucketCounts;
  readonly attestation: BucketCounts;
}

type Labels = Record<string, string>;
type MetricName = keyof typeof HOST_METRICS;
type Sample = { labels: Labels; value: number; metricName: string };

/**
 * A prom-client Histogram whose series are read, at scrape time, from {@link BucketCounts} kept
 * elsewhere: prom-client's registry formats it as any histogram (`_bucket` with `le`, `_sum`,
 * `_count`), the per-call cost is the BucketCounts' and not prom-client's.
 */
class SeriesHistogram extends Histogram<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #bounds: readonly number[];
  readonly #read: () => Iterable<readonly [Labels, BucketCounts]>;

  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[], bounds: readonly number[], read: () => Iterable<readonly [Labels, BucketCounts]>) {
    super({ name, help, labelNames, buckets: [...bounds], registers: [registry] });
    this.#name = name;
    this.#help = help;
    this.#bounds = bounds;
    this.#read = read;
  }

  #values(): Sample[] {
    const values: Sample[] = [];
    const bucket = `${this.#name}_bucket`;
    for (const [labels, series] of this.#read()) {
      if (series.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += series.counts[i]!;
        values.push({ labels: { ...labels, le: String(this.#bounds[i]) }, value: cumulative, metricName: bucket });
      }
      values.push({ labels: { ...labels, le: '+Inf' }, value: series.count, metricName: bucket });
      values.push({ labels, value: series.sum, metricName: `${this.#name}_sum` });
      values.push({ labels, value: series.count, metricName: `${this.#name}_count` });
    }
    return values;
  }

  override async get(): Promise<Awaited<ReturnType<Histogram<string>['get']>>> {
    // prom-client's typings declare `type` as a numeric enum, its registry reads the string every
    // metric of its own carries; `collect` is part of the declared shape, this one has none.
    return { name: this.#name, help: this.#help, type: 'histogram' as unknown as MetricType, aggregator: 'sum', values: this.#values(), collect: () => undefined };
  }

  /** What prom-client's registry reads for the text format (it prefers this to `get`). */
  async getForPromString(): Promise<Awaited<ReturnType<Histogram<string>['get']>>> {
    return this.get();
  }
}

/**
 * The host's metrics on `registry`, read from `source()` at every scrape.
 * @throws {EnclaveError} `invalid_options` when `registry` already holds a metric of the same name
 *   (another host's: give each host its own registry, or close the other first).
 * @example
 * const metrics = new HostMetrics(new Registry(), () => entries.values());
 * await registry.metrics(); // the /metrics body
 * metrics.unregister();
 */
export class HostMetrics {
  readonly #registry: Registry;
  readonly #names: string[] = [];

  constructor(registry: Registry, source: () => Iterable<EnclaveSeries>) {
    this.#registry = registry;
    for (const name of Object.keys(HOST_METRICS)) {
      if (registry.getSingleMetric(name) !== undefined) {
        throw new EnclaveError('invalid_options', `The registry already has a metric ${name}: give each EnclaveHost its own registry, or close the other host first.`);
      }
    }
    const names = this.#names;
    const labelsOf = (name: MetricName): string[] => {
      names.push(name);
      return [...HOST_METRICS[name]];
    };
    // Counters and gauges: reset, then every series set from the counters, at each scrape.
    const counter = (name: MetricName, help: string, fill: (add: (labels: Labels, value: number) => void) => void): void => {
      const metric: Counter<string> = new Counter({
        name,
        help,
        labelNames: labelsOf(name),
        registers: [registry],
        collect: () => {
          metric.reset();
          fill((labels, value) => metric.inc(labels, value));
        },
      });
    };
    const gauge = (name: MetricName, help: string, fill: (set: (labels: Labels, value: number) => void) => void): void => {
      const metric: Gauge<string> = new Gauge({
        name,
        help,
        labelNames: labelsOf(name),
        registers: [registry],
        collect: () => {
          metric.reset();
          fill((labels, value) => metric.set(labels, value));
        },
      });
    };
    const histogram = (name: MetricName, help: string, bounds: readonly number[], read: () => Iterable<readonly [Labels, BucketCounts]>): void => {
      new SeriesHistogram(registry, name, help, labelsOf(name), bounds, read);
    };

    counter('enclave_calls_total', 'Calls that reached the enclave runtime, by op and outcome code (ok, or the error code).', (add) => {
      for (const e of source()) {
        for (const s of e.ops) {
          if (s.ok > 0) add({ enclave: e.name, op: s.op, code: 'ok' }, s.ok);
          for (const [code, n] of s.failed) add({ enclave: e.name, op: s.op, code }, n);
        }
      }
    });
    histogram('enclave_call_duration_seconds', 'Time a call spent in the enclave runtime (worker mode: with its hand-over), seconds.', CALL_DURATION_BUCKETS, function* () {
      for (const e of source()) for (const s of e.ops) yield [{ enclave: e.name, op: s.op }, s.duration] as const;
    });
    counter('enclave_fuel_used_total', 'Fuel (metered instructions) used by calls, by op.', (add) => {
      for (const e of source()) for (const s of e.ops) if (s.duration.count > 0) add({ enclave: e.name, op: s.op }, s.fuel);
    });
    gauge('enclave_queue_depth', 'Calls waiting in the host queue of an enclave.', (set) => {
      for (const e of source()) if (e.queueDepth !== undefined) set({ enclave: e.name }, e.queueDepth);
    });
    histogram('enclave_queue_wait_seconds', 'Time a call waited in the host queue before an instance took it, seconds.', QUEUE_WAIT_BUCKETS, function* () {
      for (const e of source()) yield [{ enclave: e.name }, e.queueWait] as const;
    });
    gauge('enclave_instances', 'Instances (in-process enclaves or workers) serving an enclave.', (set) => {
      for (const e of source()) if (e.instances !== undefined) set({ enclave: e.name }, e.instances);
    });
    counter('enclave_restarts_total', 'Instances discarded and replaced, by reason (the error code that discarded it, or died).', (add) => {
      for (const e of source()) for (const [reason, n] of e.restarts) add({ enclave: e.name, reason }, n);
    });
    histogram('enclave_start_duration_seconds', 'Time to start an enclave: verify, compile, instantiate every instance, self-check, seconds.', START_DURATION_BUCKETS, function* () {
      for (const e of source()) yield [{ enclave: e.name }, e.start] as const;
    });
    histogram('enclave_attestation_duration_seconds', 'Time to produce attestation evidence, seconds.', ATTESTATION_BUCKETS, function* () {
      for (const e of source()) yield [{ enclave: e.name }, e.attestation] as const;
    });
    gauge('enclave_state', 'Lifecycle state of an enclave: 1 for the current one, 0 for states it was in before.', (set) => {
      for (const e of source()) for (const state of e.statesSeen) set({ enclave: e.name, state }, state === e.state ? 1 : 0);
    });
    counter('enclave_integrity_checks_total', 'Integrity checks (re-hash of the running bytes against the attested measurement), by result.', (add) => {
      for (const e of source()) for (const [result, n] of e.integrity) add({ enclave: e.name, result }, n);
    });
    counter('enclave_refusals_total', 'Calls the host refused before they reached the runtime, by code.', (add) => {
      for (const e of source()) for (const [code, n] of e.refusals) add({ enclave: e.name, code }, n);
    });
  }

  /** Removes this host's metrics from the registry (idempotent), so another host may register them. */
  unregister(): void {
    for (const name of this.#names.splice(0)) this.#registry.removeSingleMetric(name);
  }
}
