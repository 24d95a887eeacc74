/**
 * FileStore (host/store/) under a caller's burst: thousands of calls at once must not hold a file
 * descriptor each (the process's whole supply: EMFILE for every other part of it). Run in a child
 * whose descriptor limit is 256 (`ulimit -n`), where an unbounded store fails most of 1000 puts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'enclave-review-store-burst-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const STORE = fileURLToPath(new URL('../dist/host/store/index.js', import.meta.url));

const CHILD = `
import { readdirSync } from 'node:fs';
const { FileStore } = await import(process.env.STORE_MODULE);
const store = new FileStore(process.env.STORE_DIR);
let maxFds = 0;
const timer = setInterval(() => { try { maxFds = Math.max(maxFds, readdirSync('/proc/self/fd').length); } catch { maxFds = Infinity; } }, 2);
const results = await Promise.allSettled(Array.from({ length: 1000 }, (_, i) => store.put('n' + i, new Uint8Array(64), { expectedVersion: 0 })));
clearInterval(timer);
const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason.code);
const listed = [];
for (let page = await store.list({ limit: 1000 }); page.length > 0; page = await store.list({ after: page.at(-1), limit: 1000 })) listed.push(...page);
process.stdout.write(JSON.stringify({ failed: failed.length, codes: [...new Set(failed)], listed: listed.length, maxFds }));
`;

describe('FileStore: a burst of calls is bounded in file descriptors', () => {
  it.skipIf(process.platform !== 'linux')('1000 puts at once under a 256-descriptor limit all succeed', () => {
    const run = spawnSync('/bin/sh', ['-c', 'ulimit -n 256 && exec "$0" --input-type=module -e "$1"', process.execPath, CHILD], {
      env: { ...process.env, STORE_MODULE: STORE, STORE_DIR: join(root, 'store') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { failed: number; codes: string[]; listed: number; maxFds: number };
    expect(out.codes).toEqual([]);
    expect(out.failed).toBe(0);
    expect(out.listed).toBe(1000);
    expect(out.maxFds).toBeLessThan(200);
  });
});
