// The package as a user installs it: packed once (package-pack.ts), then installed into empty
// projects: every CLI command (package-install), a new user's path from `enclave init` to a typed
// service (package-consumer). Kept out of `npm test` because it packs, installs and compiles;
// .ci/run runs it after `npm test`:
//   npm run test:package
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/slow/package-*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // No tsc of this checkout's dist/ (test/global-setup.ts): the suites run the packed package only.
    globalSetup: ['test/slow/package-pack.ts'],
  },
});
