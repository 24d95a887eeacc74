// The SDK's slow tests (long fuzz, performance ratios), kept out of the default run:
//   npx vitest run --config test/slow/sdk.vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/slow/sdk-*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
