/**
 * The one benchmark harness: every suite is a list of cases timed by the `benchmark` package in
 * one run, so ratios between cases are measured side by side on the same machine state.
 *
 * A case body runs `batch` operations per invocation (awaited one after another when async), so
 * the harness's own per-invocation overhead, large for deferred benchmarks, is amortised.
 */
import Benchmark from 'benchmark';

/** One measured case. */
export interface Case {
  readonly name: string;
  /** Operations one invocation of `fn` performs. */
  readonly batch: number;
  readonly fn: () => unknown | Promise<unknown>;
}

/** What a case measured, per single operation. */
export interface CaseResult {
  readonly name: string;
  readonly opsPerSec: number;
  readonly meanNs: number;
  /** Relative margin of error, percent. */
  readonly rme: number;
  readonly samples: number;
}

/** Options for {@link runCases}. */
export interface RunOptions {
  /** Seconds per case (benchmark.js maxTime). */
  readonly maxTime?: number;
  readonly onCase?: (result: CaseResult) => void;
}

/** Runs the cases one after another and returns per-operation results. */
export async function runCases(cases: readonly Case[], options: RunOptions = {}): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const c of cases) {
    const isAsync = (await c.fn()) instanceof Promise || c.fn.constructor.name === 'AsyncFunction';
    const bench = await new Promise<Benchmark>((resolve, reject) => {
      const b = new Benchmark(c.name, {
        defer: isAsync,
        maxTime: options.maxTime ?? 2,
        minSamples: 10,
        fn: isAsync
          ? (deferred: { resolve(): void }) => {
              (c.fn() as Promise<unknown>).then(() => deferred.resolve(), reject);
            }
          : c.fn,
        onComplete: () => resolve(b),
        onError: (event: { target: { error: unknown } }) => reject(event.target.error),
      });
      b.run({ async: true });
    });
    const hz = bench.hz * c.batch;
    const result: CaseResult = {
      name: c.name,
      opsPerSec: hz,
      meanNs: 1e9 / hz,
      rme: bench.stats.rme,
      samples: bench.stats.sample.length,
    };
    options.onCase?.(result);
    results.push(result);
  }
  return results;
}

/** Formats nanoseconds for a table. */
export function formatNs(ns: number): string {
  return ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(0)} ns`;
}
