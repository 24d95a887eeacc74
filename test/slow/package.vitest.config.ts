// The package as a user installs it (npm pack, npm install, every CLI command), kept out of the
// default run because it packs, installs and compiles (about 40 s of CPU time):
//   npm run test:package
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/slow/package-*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
