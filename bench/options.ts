/**
 * The benchmark runner's options (`npm run bench -- ...`, bench/run.ts), kept apart from the runner
 * so they read as the runner's whole interface.
 */
import { Command, Option } from 'commander';

/** Parsed options (commander's camel-cased names). */
export interface BenchOptions {
  readonly quick?: boolean;
  readonly maxTime?: string;
  readonly filter?: string;
  readonly json?: string;
  readonly report?: string;
  readonly compare?: string;
  readonly maxRegression: string;
  readonly results?: string;
  readonly peers: boolean;
  readonly list?: boolean;
}

/** Adds the runner's arguments and options to a command. */
export function addBenchOptions(command: Command): Command {
  return command
    .argument('[suite...]', 'suites to run (default: all; --list shows them)')
    .option('--quick', 'short runs (0.25 s per case): indicative numbers, for a smoke test')
    .option('--max-time <seconds>', 'seconds per case, overriding each suite\'s own')
    .option('--filter <regex>', 'only cases whose name matches')
    .option('--json <file>', 'write the results as JSON (schema enclave-bench/1, see bench/README.md)')
    .option('--report <dir>', 'write summary.md and one SVG chart per suite into <dir>')
    .option('--compare <baseline.json>', 'compare with a baseline; exit 1 on a regression')
    .addOption(new Option('--max-regression <percent>', 'allowed slowdown beyond the margins of error').default('10%'))
    .option('--results <file>', 'do not run: load results from a JSON file (to report or compare them)')
    .option('--no-peers', 'skip third-party peers (no npm install, no plugin build)')
    .option('--list', 'list the suites and exit');
}
