/**
 * Cold `enclave run`: the whole process, from spawn to exit, of `enclave run echo.wasm echo 1` in
 * a folder without `node_modules` (the per-user fuel cache, warmed by one run first), against
 * `node -e 0` (the floor: Node's own start) and `enclave --version` (the CLI's own start). The aim
 * (issue 11): at most 300 ms on a 2-core machine. Never a timed test: a measurement.
 *
 * Besides the harness's mean, setup spawns each variant N times, interleaved so they share the
 * machine's state, and the notes give the median and p90 of each and their ratios.
 *
 * `ENCLAVE_BENCH_CLI_BASELINE=<path to another build's dist/host/cli/main.js>[,<another>...]` adds
 * each build's `enclave run` (with a warm cache of its own in ENCLAVE_CACHE_DIR, which every version
 * reads) as a reference, for before/after ratios in one run:
 *
 *   git clone -q . /tmp/old && (cd /tmp/old && git checkout -q <commit> && ln -s "$PWD/../<repo>/node_modules" && npx tsc -p tsconfig.json)
 *   ENCLAVE_BENCH_CLI_BASELINE=/tmp/old/dist/host/cli/main.js npm run bench -- cli-cold
 *   node dist/bench/cli-cold.js [runner options]
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defineSuite, isMain, runStandalone, type Case } from './_harness.js';

/** One process to time: its arguments to node, and the environment it needs. */
interface Variant {
  readonly name: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly role?: Case['role'];
}

function spawnOnce(v: Variant, cwd: string): Promise<void> {
  return new Promise((ok, fail) => {
    execFile(process.execPath, v.args, { cwd, env: v.env }, (err, stdout, stderr) => {
      if (err) fail(new Error(`${v.name}: ${stderr.trim() || err.message}`));
      else ok();
    });
  });
}

/**
 * CPU time (user + system, ms) of this process's waited-for children so far, from /proc/self/stat
 * (cutime + cstime, in clock ticks of 10 ms, as on every Linux this runs on); `undefined` elsewhere.
 * Under load, the wall time of a process grows with the machine's queue while its CPU time does not.
 */
function childrenCpuMs(): number | undefined {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 of proc(5); field 3 (state) is the first after the command name.
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return undefined;
  }
}

/** The value at quantile q of sorted samples (nearest rank). */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const suite = defineSuite({
  name: 'cli-cold',
  description: 'cold `enclave run` on echo, the whole process (spawn to exit), warm per-user fuel cache',
  maxTime: 4,
  quickMaxTime: 1,
  async setup(ctx) {
    const cli = join(ctx.root, 'dist/host/cli/main.js');
    const echo = join(ctx.root, 'enclave-modules/echo/build/echo.wasm');
    const tmp = await mkdtemp(join(tmpdir(), 'enclave-bench-cli-'));
    // A folder without node_modules, as a user's would be, and a cache home of our own.
    const cwd = join(tmp, 'work');
    await mkdir(cwd);
    const base: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache') };
    delete base.ENCLAVE_CACHE_DIR;
    const variants: Variant[] = [
      { name: 'node -e 0 (Node start)', args: ['-e', '0'], env: base, role: 'floor' },
      { name: 'enclave --version', args: [cli, '--version'], env: base },
      { name: 'enclave run echo.wasm echo 1', args: [cli, 'run', echo, 'echo', '1'], env: base },
    ];
    const notes: string[] = [];
    const baselines = (process.env.ENCLAVE_BENCH_CLI_BASELINE ?? '').split(',').filter((p) => p.trim() !== '');
    for (const [i, path] of baselines.entries()) {
      const main = resolve(path.trim());
      if (!existsSync(main)) throw new Error(`ENCLAVE_BENCH_CLI_BASELINE: ${main} does not exist`);
      variants.push({
        name: `baseline ${i + 1} enclave run echo.wasm echo 1`,
        args: [main, 'run', echo, 'echo', '1'],
        env: { ...base, ENCLAVE_CACHE_DIR: join(tmp, `baseline-cache-${i + 1}`) },
        role: 'reference',
      });
      notes.push(`baseline ${i + 1}: ${main}, its fuel cache warm in ENCLAVE_CACHE_DIR.`);
    }
    // Warm the disk caches (instrumenting echo is the cold path this does not measure).
    for (const v of variants) await spawnOnce(v, cwd);

    const n = ctx.quick ? 10 : 30;
    const samples = variants.map(() => [] as number[]);
    const cpu = variants.map(() => 0);
    for (let i = 0; i < n; i++) {
      for (const [k, v] of variants.entries()) {
        const c0 = childrenCpuMs();
        const t0 = performance.now();
        await spawnOnce(v, cwd);
        samples[k]!.push(performance.now() - t0);
        const c1 = childrenCpuMs();
        cpu[k]! += c0 === undefined || c1 === undefined ? Number.NaN : c1 - c0;
      }
    }
    const stats = samples.map((s) => {
      const sorted = [...s].sort((a, b) => a - b);
      return { median: quantile(sorted, 0.5), p90: quantile(sorted, 0.9) };
    });
    const ms = (x: number) => `${x.toFixed(0)} ms`;
    for (const [k, v] of variants.entries()) {
      const cpuMean = Number.isNaN(cpu[k]!) ? '' : `; CPU (user + system) ${ms(cpu[k]! / n)} a process on average`;
      notes.push(`${v.name}: median ${ms(stats[k]!.median)}, p90 ${ms(stats[k]!.p90)} (${n} spawns, interleaved)${cpuMean}`);
    }
    const run = stats[2]!;
    notes.push(`enclave run: ${run.median <= 300 ? 'meets' : 'misses'} the 300 ms aim (median); ${(run.median / stats[0]!.median).toFixed(2)}× Node's own start.`);
    for (const [i, s] of stats.slice(3).entries()) {
      const cpuRatio = Number.isNaN(cpu[3 + i]!) ? '' : `, CPU ${(cpu[3 + i]! / cpu[2]!).toFixed(2)}×`;
      notes.push(`before/after: baseline ${i + 1}'s median is ${(s.median / run.median).toFixed(2)}× this build's (p90 ${(s.p90 / run.p90).toFixed(2)}×${cpuRatio}).`);
    }

    const cases: Case[] = variants.map((v) => ({ name: v.name, group: 'process', batch: 1, role: v.role ?? 'subject', fn: () => spawnOnce(v, cwd) }));
    return { cases, notes, dispose: () => rm(tmp, { recursive: true, force: true }) };
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
