/**
 * The vitest configuration StrykerJS runs (stryker.config.mjs, `npm run test:mutation`); not part of
 * `npm test`. It differs from test/vitest.config.ts in two ways, both for the sandbox Stryker runs in:
 * - no global setup: Stryker's `buildCommand` compiles the instrumented sources into the sandbox's
 *   dist/ once, before the dry run. The global setup would run tsc again in every test-runner process
 *   (two at a time, and again whenever Stryker restarts one), rewriting dist/ under a running worker.
 * - the fuel disk cache is off: the sandbox's node_modules is a link to the real one, so its cache
 *   would be shared with the project's own runs.
 * Worker mode and the CLI run the compiled dist/ in another thread or process, where no mutant is
 * active, so only what runs in the test's own process can kill a mutant.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    // Also left out: suites that only drive the CLI, the package or the bench in a child process
    // (no mutant is active there, so they cannot kill one and would only slow the dry run).
    exclude: [
      '**/node_modules/**',
      'test/slow/**',
      'test/cli*.test.ts',
      'test/package.test.ts',
      'test/bench-compare.test.ts',
      'test/worker-flags.test.ts',
      'test/dbgstat.test.ts',
      'test/sdk-build.test.ts',
      // Its entries assert a 20 s wall time per load; the largest (100 000 functions) takes longer
      // with Stryker's coverage counters on every byte the module reader reads.
      'test/hostile.test.ts',
      // Worker mode decides in the worker, on dist/: these only slow every mutant they reach.
      'test/worker*.test.ts',
      'test/queue.test.ts',
    ],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { ENCLAVE_CACHE_DIR: 'off' },
  },
});
