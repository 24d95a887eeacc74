/**
 * Compiles the TypeScript once before the tests: the CLI tests run `dist/host/cli/main.js` and
 * worker mode runs `dist/runtime/_worker-main.js` (a worker cannot load `.ts`), so both must be
 * built from the sources under test, never from a stale `dist/`.
 */
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
