/**
 * `enclave bench [suite...]`: the benchmarks (bench/README.md). The runner, its suites and the
 * peers load only when the command runs, so they cost the other commands nothing.
 */
import { Command } from 'commander';
import { addBenchOptions, type BenchOptions } from '../../../bench/options.js';
import { handleError } from '../handle-error.js';

export const benchCommand = addBenchOptions(
  new Command('bench').description('run the benchmarks; --json, --report, and --compare to gate on a regression (exit 1)'),
).action(async (suites: string[], opts: BenchOptions) => {
  try {
    const { runBench } = await import('../../../bench/run.js');
    process.exitCode = await runBench(suites, opts);
  } catch (err) {
    handleError(err);
  }
});
