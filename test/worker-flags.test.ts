/**
 * Worker mode under Node flags a worker refuses in its `execArgv` (V8 options such as
 * `--expose-gc`, which apply to the whole process anyway): loading never fails with Node's raw
 * ERR_WORKER_INVALID_EXEC_ARGV.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
/** A child process starts Node, loads (and may instrument) a module, and starts a worker: slow on a loaded machine. */
const CHILD_TIMEOUT_MS = 90_000;
const ROOT = new URL('..', import.meta.url).pathname;

const SCRIPT = `
import { readFileSync } from 'node:fs';
const { loadEnclave } = await import(${JSON.stringify(`${ROOT}dist/host/index.js`)});
const e = await loadEnclave(readFileSync(${JSON.stringify(`${ROOT}enclave-modules/counter/build/counter.wasm`)}), { isolation: 'worker' });
console.log(JSON.stringify(await e.call('incr', { by: 2 })));
await e.close();
`;

const dir = mkdtempSync(path.join(tmpdir(), 'enclave-flags-'));
const script = path.join(dir, 'script.mjs');
writeFileSync(script, SCRIPT);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('worker mode under process-wide Node flags', () => {
  for (const flags of [['--expose-gc'], ['--max-old-space-size=256'], ['--expose-gc', '--no-warnings']]) {
    it(`loads and answers under ${flags.join(' ')}`, async () => {
      const { stdout } = await run(process.execPath, [...flags, script], { cwd: ROOT, timeout: 60_000 });
      expect(stdout.trim()).toBe('2');
    }, CHILD_TIMEOUT_MS);
  }
});
