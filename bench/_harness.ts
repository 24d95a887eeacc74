/**
 * The one benchmark harness: every suite is a list of cases timed by the `benchmark` package in
 * one run, so ratios between cases are measured side by side on the same machine state.
 *
 * A case body runs `batch` operations per invocation (awaited one after another when async), so
 * the harness's own per-invocation overhead, large for deferred benchmarks, is amortised.
 *
 * ## Adding a suite (one small file, nothing else to edit)
 *
 * Write `bench/<name>.ts` that exports `suite` and does nothing at import time:
 *
 * ```ts
 * import { defineSuite, isMain, runStandalone, type Case } from './_harness.js';
 *
 * export const suite = defineSuite({
 *   name: 'fuel',                       // what `npm run bench -- fuel` and the JSON call it
 *   description: 'fuel metering cost',  // one line, shown above the suite's table
 *   maxTime: 1,                         // seconds per case (`--quick` and `--max-time` override)
 *   async setup(ctx) {
 *     const cases: Case[] = [
 *       { name: 'uninstrumented', group: 'loop 1e4', role: 'floor', batch: 16, fn: () => {...} },
 *       { name: 'fuel metered',   group: 'loop 1e4', batch: 16, fn: async () => {...} },
 *     ];
 *     return { cases, notes: ['fuel: ...'], dispose: async () => {...} };
 *   },
 * });
 *
 * if (isMain(import.meta.url)) await runStandalone(suite); // optional: `node dist/bench/fuel.js`
 * ```
 *
 * `bench/run.ts` finds it by file name (any `dist/bench/*.js` not starting with `_` whose text
 * exports `suite`; the file is only imported when it does). Cases of one `group` are one row
 * group in the report; the case with `role: 'floor'` is the denominator of the "× floor" column
 * for its group, and `peer: '<case name>'` names the case a "× peer" ratio is taken against
 * (Extism, noble, node:crypto...). `role: 'peer'` and `role: 'reference'` mark cases that are
 * not our code: `--compare` reports them but never fails on them.
 *
 * Plain `runCases(cases, opts)` still works for a quick script that wants numbers only.
 */
import Benchmark from 'benchmark';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * What a case is in its group. `subject` (the default) is our code, the only role `--compare`
 * gates on; `floor` is the physical lower bound ratios are taken to; `peer` is third-party code
 * doing the same work; `reference` is any other yardstick (a plain JS function, say).
 */
export type Role = 'subject' | 'floor' | 'peer' | 'reference';

/** One measured case. */
export interface Case {
  readonly name: string;
  /** Operations one invocation of `fn` performs. */
  readonly batch: number;
  readonly fn: () => unknown | Promise<unknown>;
  /** Row group in the report (for example `16 B`); cases of a group are compared with each other. */
  readonly group?: string;
  /** Default `subject`. */
  readonly role?: Role;
  /** The case name the "× peer" ratio of this case is taken against. */
  readonly peer?: string;
}

/** What a case measured, per single operation. */
export interface CaseResult {
  readonly name: string;
  readonly opsPerSec: number;
  readonly meanNs: number;
  /** Relative margin of error, percent. */
  readonly rme: number;
  readonly samples: number;
  readonly group?: string;
  readonly role?: Role;
  readonly peer?: string;
  readonly batch?: number;
}

/** Options for {@link runCases}. */
export interface RunOptions {
  /** Seconds per case (benchmark.js maxTime). */
  readonly maxTime?: number;
  /** Seconds of untimed calls before timing (default maxTime / 5). */
  readonly warmup?: number;
  /** Minimum samples per case (default 10; `--quick` uses 5). */
  readonly minSamples?: number;
  readonly onCase?: (result: CaseResult) => void;
  /** Called before each case starts: index (0-based), count and name. For a progress line. */
  readonly onStart?: (index: number, count: number, name: string) => void;
  /**
   * Multiplies the work of a case: its body runs `factor` times per invocation while the harness
   * still counts `batch` operations, so the case reads `factor` times slower. Used to prove that
   * `--compare` catches a regression (`ENCLAVE_BENCH_SLOWDOWN`, see bench/README.md).
   */
  readonly slowdown?: (caseName: string) => number;
}

/** Runs the cases one after another and returns per-operation results. */
export async function runCases(cases: readonly Case[], options: RunOptions = {}): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const [index, c] of cases.entries()) {
    options.onStart?.(index, cases.length, c.name);
    const factor = Math.max(1, Math.round(options.slowdown?.(c.name) ?? 1));
    const body = factor === 1 ? c.fn : slowed(c.fn, factor);
    // The first call tells a sync body from an async one; then warm up (JIT tiers, caches) for
    // a fifth of maxTime, so the first samples are not of colder code than the rest.
    const first = body();
    const isAsync = first instanceof Promise || body.constructor.name === 'AsyncFunction';
    await first;
    const warmUntil = performance.now() + (options.warmup ?? (options.maxTime ?? 2) / 5) * 1000;
    while (performance.now() < warmUntil) await body();
    const bench = await new Promise<Benchmark>((resolve, reject) => {
      const b = new Benchmark(c.name, {
        defer: isAsync,
        maxTime: options.maxTime ?? 2,
        minSamples: options.minSamples ?? 10,
        fn: isAsync
          ? (deferred: { resolve(): void }) => {
              (body() as Promise<unknown>).then(() => deferred.resolve(), reject);
            }
          : body,
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
      batch: c.batch,
      ...(c.group === undefined ? {} : { group: c.group }),
      ...(c.role === undefined ? {} : { role: c.role }),
      ...(c.peer === undefined ? {} : { peer: c.peer }),
    };
    options.onCase?.(result);
    results.push(result);
  }
  return results;
}

/**
 * A body that does `factor` times the work of `fn` (ENCLAVE_BENCH_SLOWDOWN: the artificially
 * slowed build that proves `--compare` fails). Sync bodies stay sync; a body returning a promise
 * has each run awaited before the next starts.
 */
export function slowed(fn: Case['fn'], factor: number): Case['fn'] {
  return () => {
    const first = fn();
    if (!(first instanceof Promise)) {
      for (let i = 1; i < factor; i++) fn();
      return first;
    }
    return (async () => {
      await first;
      for (let i = 1; i < factor; i++) await fn();
    })();
  };
}

/** Formats nanoseconds for a table. */
export function formatNs(ns: number): string {
  return ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(0)} ns`;
}

/** Formats a byte count the way case names spell it (16 B, 4 KiB, 64 KiB). */
export function formatBytes(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024} KiB` : `${n} B`;
}

/** What a suite's `setup` gets from the runner. */
export interface SuiteContext {
  /** Absolute path of the repository root (the directory holding package.json). */
  readonly root: string;
  /** `--quick`: fewer sizes or iterations are fine, the numbers are only indicative. */
  readonly quick: boolean;
  /** `--no-peers`: skip third-party peers (no install, no build). */
  readonly peers: boolean;
  /** Writes a progress or diagnostic line to stderr. */
  readonly log: (line: string) => void;
}

/** What a suite's `setup` returns. */
export interface SuitePlan {
  readonly cases: readonly Case[];
  /**
   * Lines for the report under the suite's table: what could not be measured and why (for
   * example "worker mode: not available in this build"), never a silent hole.
   */
  readonly notes?: readonly string[];
  /** Releases what setup created (workers, temp dirs). Called once after the cases ran. */
  readonly dispose?: () => unknown | Promise<unknown>;
}

/** A benchmark suite: one file in bench/, one table and one chart in the report. */
export interface Suite {
  /** Lowercase, `[a-z0-9-]+`; the file is usually `bench/<name>.ts`. */
  readonly name: string;
  readonly description: string;
  /** Seconds per case in a full run (default 1). */
  readonly maxTime?: number;
  /** Seconds per case under `--quick` (default 0.25). */
  readonly quickMaxTime?: number;
  /** What the "× peer" column is called in the report (default `peer`; for example `Extism`). */
  readonly peerLabel?: string;
  setup(ctx: SuiteContext): Promise<SuitePlan>;
}

const SUITE_NAME = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Checks a suite's shape once, where it is defined.
 * @throws {TypeError} when the name or setup is missing or malformed.
 * @example
 * export const suite = defineSuite({ name: 'fuel', description: 'fuel metering cost', setup: async () => ({ cases }) });
 */
export function defineSuite(suite: Suite): Suite {
  if (typeof suite?.name !== 'string' || !SUITE_NAME.test(suite.name)) {
    throw new TypeError(`suite name: expected [a-z0-9-]+, got ${JSON.stringify(suite?.name)}`);
  }
  if (typeof suite.setup !== 'function') throw new TypeError(`suite ${suite.name}: setup must be a function`);
  return Object.freeze({ ...suite });
}

/** The directory holding the repository's package.json (from dist/bench/ or bench/). */
export function repoRoot(from = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(`cannot find the repository root above ${from}`);
}

/** True when the module with this `import.meta.url` is the script node was started with. */
export function isMain(metaUrl: string): boolean {
  return process.argv[1] !== undefined && metaUrl === pathToFileURL(process.argv[1]).href;
}

/**
 * Runs one suite as a script (`node dist/bench/<name>.js [runner options]`), with the same
 * options and output as `npm run bench -- <name>`.
 */
export async function runStandalone(suite: Suite): Promise<void> {
  // A computed specifier: the harness stays importable without pulling the runner in.
  const runner = (await import(new URL('./run.js', import.meta.url).href)) as {
    main(argv: readonly string[], suites?: readonly Suite[]): Promise<number>;
  };
  process.exitCode = await runner.main(process.argv.slice(2), [suite]);
}
