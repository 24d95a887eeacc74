// @ts-check
/**
 * Mutation testing of the runtime's and the platform's decisions (trust, bounds, shape):
 * `npm run test:mutation` (test/mutation-run.mjs; a slow suite of its own, not part of `npm test`).
 * Reports go to reports/mutation/ (HTML and JSON); the sandbox is .stryker-tmp/. See README,
 * "Mutation testing". Only code that runs in the test's own process can kill a mutant: worker
 * mode, the CLI and fuel instrumentation (loadEnclave instruments in a worker thread) run the
 * sandbox's dist/, where no mutant is active; test/mutation-fuel.test.ts calls the instrumenter
 * in-process so that the instrumenter (runtime/fuel.ts and its runtime/_fuel-*.ts) can be added here.
 * @type {import('@stryker-mutator/api/core').PartialStrykerOptions}
 */
export default {
  testRunner: 'vitest',
  // Forks, as in `npm test`: the runner's default (threads) would put every test off the main
  // thread, where the platform reports an inspector and refuses to attest "not debugged".
  vitest: { configFile: 'test/mutation.vitest.config.ts', related: true, pool: 'forks' },
  // Each mutant runs only the tests that reached it in the dry run.
  coverageAnalysis: 'perTest',
  concurrency: 2,
  // The dry run runs every related test file one after another (Stryker runs vitest with one worker).
  dryRunTimeoutMinutes: 20,
  // A mutant in code that runs at import time would need every test file re-run; not worth it here.
  ignoreStatic: true,
  // The decision functions (trust, bounds, shape), by line range: whole files give about 5 400
  // mutants (most in encoders and error text), too many for a 2-core machine. Each range names its
  // function; re-check the ranges when these files change (a range that has drifted mutates the
  // wrong lines, and the score stops being comparable).
  mutate: [
    'attest/module-signature.ts:261-282', // verifyModule
    'attest/trust.ts:38-53', // checkTrust
    'attest/measure.ts:65-70', // moduleIdentity (the identity checkTrust built inline before the refactor)
    'attest/verify.ts:238-304', // verifyEvidence
    'attest/evidence.ts:157-171', // checkNonce
    'runtime/contract.ts:310-416', // compileInner: the argument shape checks
    'runtime/_msgpack-check.ts:76-241', // scan, whole: reply headers, lengths, containers, depth, map keys (was runtime/marshal.ts:773-938)
    'runtime/state.ts:151-179', // InstancePool #fresh/#restore: per-call snapshot and restore
    'runtime/instance.ts:324-362', // Enclave #enter: request and reply pointers and lengths
  ],
  mutator: {
    // Error-message text is most of the string literals and no decision depends on it; object and
    // array literals here are options bags and error details. Left out to keep the run bounded.
    excludedMutations: ['StringLiteral', 'ObjectLiteral', 'ArrayDeclaration', 'Regex'],
  },
  // dist/ is rebuilt in the sandbox from the instrumented sources (the worker and the fuel
  // instrumentation thread load it); the instrumented code does not type-check, hence disableTypeChecks.
  ignorePatterns: ['/dist', '/bench-out', '/.cache', '/reports', 'test/slow'],
  buildCommand: 'npx tsc -p tsconfig.json',
  disableTypeChecks: '{core,runtime,attest,host,bench}/**/*.ts',
  tempDirName: '.stryker-tmp',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 80, low: 60, break: null },
};
