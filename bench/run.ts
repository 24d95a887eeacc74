/**
 * The benchmark runner: finds the suites in bench/, runs them with one harness, prints one
 * Markdown summary, and writes the JSON document, the report and the comparison asked for.
 *
 *   npm run build:ts && npm run bench -- [suite...] [--quick] [--json out.json] [--report out/]
 *       [--compare baseline.json --max-regression 10%]
 *
 * Not a command of the shipped CLI: the benchmarks need devDependencies (benchmark, jco) and the
 * repository's sources, and dist/bench is left out of the package.
 *
 * Exit codes: 0 done, 1 a regression (or a suite failed), 2 bad usage.
 * `ENCLAVE_BENCH_SLOWDOWN=<suite>[/<case substring>]:<factor>[,...]` multiplies the work of the
 * matching cases, to prove the `--compare` gate catches a slower build (bench/self-test.sh).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { BenchUsageError, printBenchError } from './_errors.js';
import { formatNs, isMain, repoRoot, runCases, type CaseResult, type Suite, type SuiteContext } from './_harness.js';
import { assertReport, compareMarkdown, compareReports, parseThreshold } from './_compare.js';
import { SCHEMA, gitInfo, machineInfo, reportMarkdown, suiteSvg, withRatios, type BenchReport, type SuiteReport } from './_report.js';
import { addBenchOptions, type BenchOptions } from './options.js';

/** Suites in this order first (the rest alphabetically). */
const ORDER = ['boundary', 'marshal', 'instantiate', 'attest', 'crypto', 'limits', 'worker', 'supervisor', 'cli-cold'];
/** Files in bench/ that are never suites. */
const NOT_SUITE_FILES = new Set(['run', 'options']);
/** How a compiled (or source) suite file exports its suite. */
const EXPORTS_SUITE = /^export\s+(?:const|let|var)\s+suite\b|^export\s*\{[^}]*\bsuite\b[^}]*\}/m;

const here = dirname(fileURLToPath(import.meta.url));

function usage(message: string): BenchUsageError {
  return new BenchUsageError(message);
}

/**
 * Lists suite files next to this runner without importing them (a plain script would run on
 * import): `<name>.js` not starting with `_` whose text exports `suite`.
 */
export function discoverSuites(dir = here): { suites: Map<string, string>; notSuites: string[] } {
  const ext = extname(fileURLToPath(import.meta.url)); // .js in dist, .ts under vitest
  const suites = new Map<string, string>();
  const notSuites: string[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith(ext) || file.endsWith(`.d${ext}`) || file.startsWith('_') || file.startsWith('.')) continue;
    const name = file.slice(0, -ext.length);
    if (NOT_SUITE_FILES.has(name)) continue;
    if (EXPORTS_SUITE.test(readFileSync(join(dir, file), 'utf8'))) suites.set(name, join(dir, file));
    else notSuites.push(file);
  }
  const rank = (n: string) => (ORDER.includes(n) ? ORDER.indexOf(n) : ORDER.length);
  return { suites: new Map([...suites].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))), notSuites };
}

async function importSuite(path: string): Promise<Suite> {
  const mod = (await import(pathToFileURL(path).href)) as { suite?: Suite };
  if (typeof mod.suite?.setup !== 'function') throw new Error(`${path} exports no valid suite`);
  return mod.suite;
}

/** Parses `ENCLAVE_BENCH_SLOWDOWN` into a lookup `(suite, case) -> factor`. */
export function parseSlowdown(spec: string | undefined): (suite: string, caseName: string) => number {
  if (spec === undefined || spec.trim() === '') return () => 1;
  const rules = spec.split(',').map((part) => {
    const m = /^\s*([a-z0-9-]+)(?:\/([^:]*))?:(\d+(?:\.\d+)?)\s*$/.exec(part);
    if (m === null) throw usage(`ENCLAVE_BENCH_SLOWDOWN: expected <suite>[/<case substring>]:<factor>, got "${part}"`);
    return { suite: m[1]!, match: m[2] ?? '', factor: Number(m[3]) };
  });
  return (suite, caseName) =>
    rules.filter((r) => r.suite === suite && caseName.includes(r.match)).reduce((f, r) => f * r.factor, 1);
}

function progress(): { start(line: string): void; done(line: string): void } {
  const tty = process.stderr.isTTY === true;
  return {
    start: (line) => {
      if (tty) process.stderr.write(`\r\x1b[K${line} …`);
    },
    done: (line) => process.stderr.write(`${tty ? '\r\x1b[K' : ''}${line}\n`),
  };
}

async function runSuites(suites: readonly Suite[], opts: BenchOptions, notSuites: string[]): Promise<{ report: BenchReport; failed: number }> {
  const root = repoRoot();
  const quick = opts.quick === true;
  const maxTimeOverride = opts.maxTime === undefined ? undefined : Number(opts.maxTime);
  if (maxTimeOverride !== undefined && !(maxTimeOverride > 0)) throw usage('--max-time: expected a positive number of seconds');
  let filter: RegExp | undefined;
  try {
    filter = opts.filter === undefined ? undefined : new RegExp(opts.filter);
  } catch {
    throw usage(`--filter: not a regular expression: ${opts.filter}`);
  }
  const slowdownSpec = process.env.ENCLAVE_BENCH_SLOWDOWN?.trim() || undefined;
  const slowdown = parseSlowdown(slowdownSpec);
  const bar = progress();
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const ctx: SuiteContext = { root, quick, peers: opts.peers !== false, log };
  const reports: SuiteReport[] = [];
  let failed = 0;
  for (const suite of suites) {
    const t0 = performance.now();
    const maxTime = maxTimeOverride ?? (quick ? (suite.quickMaxTime ?? 0.25) : (suite.maxTime ?? 1));
    bar.start(`[${suite.name}] setting up`);
    let notes: string[] = [];
    let results: SuiteReport['results'] = [];
    try {
      const plan = await suite.setup(ctx);
      notes = [...(plan.notes ?? [])];
      const selected = filter === undefined ? plan.cases : plan.cases.filter((c) => filter.test(c.name));
      // Keep each group together (in order of first appearance), whatever order setup pushed them in.
      const groups = [...new Set(selected.map((c) => c.group))];
      const cases = [...selected].sort((a, b) => groups.indexOf(a.group) - groups.indexOf(b.group));
      try {
        const raw: CaseResult[] = [];
        // One case at a time, so a case that throws (a worker deadline under load, say) is
        // reported and the others still run.
        for (const [i, c] of cases.entries()) {
          try {
            raw.push(
              ...(await runCases([c], {
                maxTime,
                minSamples: quick ? 5 : 10,
                slowdown: (name) => slowdown(suite.name, name),
                onStart: (_, __, name) => bar.start(`[${suite.name} ${i + 1}/${cases.length}] ${name}`),
                onCase: (r) =>
                  bar.done(`  ${suite.name.padEnd(12)} ${r.name.padEnd(40)} ${formatNs(r.meanNs).padStart(10)} ±${r.rme.toFixed(1)}% (${r.samples} samples)`),
              })),
            );
          } catch (err) {
            failed++;
            const message = err instanceof Error ? err.message : String(err);
            notes.push(`**${c.name} failed**: ${message}`);
            bar.done(`  ${suite.name.padEnd(12)} ${c.name.padEnd(40)} FAILED: ${message}`);
          }
        }
        results = withRatios(raw);
      } finally {
        await plan.dispose?.();
      }
    } catch (err) {
      failed++;
      const message = err instanceof Error ? err.message : String(err);
      notes.push(`**the suite failed**: ${message}`);
      bar.done(`  ${suite.name}: FAILED: ${process.env.ENCLAVE_DEBUG && err instanceof Error ? err.stack : message}`);
    }
    reports.push({
      name: suite.name,
      description: suite.description,
      peerLabel: suite.peerLabel ?? 'peer',
      maxTime,
      seconds: Math.round(performance.now() - t0) / 1000,
      notes,
      results,
    });
  }
  const report: BenchReport = {
    schema: SCHEMA,
    createdAt: new Date().toISOString(),
    git: gitInfo(root),
    machine: machineInfo(),
    options: { quick, maxTime: maxTimeOverride ?? null, filter: opts.filter ?? null, slowdown: slowdownSpec ?? null },
    suites: reports,
    ...(notSuites.length > 0 ? { notSuites } : {}),
  };
  return { report, failed };
}

async function readReport(file: string, what: string): Promise<BenchReport> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw usage(`${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    assertReport(json, `${what} ${file}`);
  } catch (err) {
    throw usage((err as Error).message);
  }
  return json;
}

/**
 * Runs the named suites (all when empty) with the given options; `given` replaces discovery
 * (a suite file run as a script). Resolves with the exit code.
 * @throws {BenchUsageError} for bad usage.
 */
export async function runBench(names: readonly string[], opts: BenchOptions, given?: readonly Suite[]): Promise<number> {
  const threshold = parseThreshold(opts.maxRegression ?? '10%');
  const found = given === undefined ? discoverSuites() : { suites: new Map<string, string>(), notSuites: [] };
  if (opts.list) {
    for (const name of found.suites.keys()) process.stdout.write(`${name}\n`);
    for (const file of found.notSuites) process.stderr.write(`(not a suite: bench/${file} has no \`suite\` export)\n`);
    return 0;
  }
  let report: BenchReport;
  let failed = 0;
  if (opts.results !== undefined) {
    report = await readReport(opts.results, '--results');
  } else {
    let suites: Suite[];
    if (given !== undefined) {
      suites = [...given];
    } else {
      const unknown = names.filter((n) => !found.suites.has(n));
      if (unknown.length > 0) {
        throw usage(`Unknown suite${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}. Suites: ${[...found.suites.keys()].join(', ')}.`);
      }
      const paths = names.length === 0 ? [...found.suites.values()] : names.map((n) => found.suites.get(n)!);
      suites = await Promise.all(paths.map(importSuite));
    }
    ({ report, failed } = await runSuites(suites, opts, names.length === 0 ? found.notSuites : []));
  }

  let markdown = reportMarkdown(report, opts.report !== undefined);
  let regressions = 0;
  if (opts.compare !== undefined) {
    const base = await readReport(opts.compare, '--compare');
    const result = compareReports(base, report, threshold);
    regressions = result.regressions;
    const label = `${opts.compare}${base.git ? ` (${base.git.commit.slice(0, 12)})` : ''}`;
    markdown += `\n${compareMarkdown(result, label)}`;
  }
  if (opts.json !== undefined) {
    await mkdir(dirname(opts.json), { recursive: true });
    await writeFile(opts.json, `${JSON.stringify(report, null, 2)}\n`);
  }
  if (opts.report !== undefined) {
    await mkdir(opts.report, { recursive: true });
    await writeFile(join(opts.report, 'summary.md'), markdown);
    for (const s of report.suites) await writeFile(join(opts.report, `${s.name}.svg`), suiteSvg(s));
  }
  process.stdout.write(markdown);
  if (regressions > 0) process.stderr.write(`bench: ${regressions} regression${regressions === 1 ? '' : 's'} beyond ${(threshold * 100).toFixed(0)}% and the margins of error\n`);
  return regressions > 0 || failed > 0 ? 1 : 0;
}

/**
 * Parses runner arguments (as after `npm run bench --`) and runs. Resolves with the exit code;
 * errors are printed, never thrown.
 */
export async function main(argv: readonly string[], given?: readonly Suite[]): Promise<number> {
  const command = addBenchOptions(new Command('bench').description('run the benchmarks')).exitOverride();
  try {
    command.parse([...argv], { from: 'user' });
    return await runBench(command.args, command.opts<BenchOptions>(), given);
  } catch (err) {
    return printBenchError(err);
  }
}

if (isMain(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
