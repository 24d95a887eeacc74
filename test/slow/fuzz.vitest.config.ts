// The boundary fuzz campaign (test/slow/boundary-fuzz.test.ts), kept out of the default run:
//   npx vitest run --config test/slow/fuzz.vitest.config.ts
//   FUZZ_MESSAGES=20000 npx vitest run --config test/slow/fuzz.vitest.config.ts   (smoke)
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/slow/boundary-*.test.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 120_000,
    pool: 'forks',
    globalSetup: ['test/global-setup.ts'],
  },
});
