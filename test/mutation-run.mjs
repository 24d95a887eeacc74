/**
 * Runs StrykerJS with stryker.config.mjs (`npm run test:mutation`).
 *
 * Stryker 10's command line refuses to start on Node < 22 (a guard in its CLI module), while this
 * project supports Node >= 20.19 and runs on 20; the mutation run itself works on 20, so this starts
 * Stryker's runner class directly. Exit code: 0 when the run completed, 1 when it failed.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const core = dirname(createRequire(import.meta.url).resolve('@stryker-mutator/core/package.json'));
const { Stryker } = await import(pathToFileURL(join(core, 'dist/src/stryker.js')).href);
try {
  await new Stryker({ configFile: 'stryker.config.mjs', ...cliOptions(process.argv.slice(2)) }).runMutationTest();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}

/** `--dryRunOnly`, `--concurrency N`, `--mutate a,b` (the few options worth passing by hand). */
function cliOptions(args) {
  const out = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--dryRunOnly') out.dryRunOnly = true;
    else if (a === '--concurrency') out.concurrency = Number(args[++i]);
    else if (a === '--mutate') out.mutate = String(args[++i]).split(',');
    else throw new Error(`unknown option ${a} (use --dryRunOnly, --concurrency N, --mutate a,b)`);
  }
  return out;
}
