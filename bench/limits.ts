/**
 * The cost of execution limits: calls per second with and without fuel metering on a loop-heavy
 * enclave (bench/fixtures/sum.wat: a loop of n iterations), and the cost of the per-call state
 * policy (snapshot restore) against a persistent instance and against a fresh instance per call.
 * The cold instrumentation time of echo (binaryen, no cache) and the warm compile are in the notes.
 *
 *   npm run build:ts && npm run bench -- limits       (or: node dist/bench/limits.js)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from '@bytecodealliance/jco';
import { CONTRACT_SECTION, encodeCustomSection } from '../core/index.js';
import { clearFuelMemoryCache, compileEnclave } from '../runtime/index.js';
import { echoBytes } from './_enclaves.js';
import { defineSuite, isMain, runStandalone, type Case } from './_harness.js';

/** The sum fixture with its contract section. */
export async function sumBytes(root: string): Promise<Uint8Array> {
  const dir = join(root, 'bench', 'fixtures');
  const wasm = await parse(readFileSync(join(dir, 'sum.wat'), 'utf8'));
  const section = encodeCustomSection(CONTRACT_SECTION, readFileSync(join(dir, 'sum.contract.json')));
  const out = new Uint8Array(wasm.length + section.length);
  out.set(wasm);
  out.set(section, wasm.length);
  return out;
}

/** Milliseconds one run of `fn` takes. */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export const suite = defineSuite({
  name: 'limits',
  description: 'fuel metering on a loop-heavy enclave; per-call state reset',
  maxTime: 1,
  quickMaxTime: 0.25,
  async setup(ctx) {
    const notes: string[] = [];

    // Cold and warm compile of echo, with a private cache directory so nothing is cached yet.
    const echo = await echoBytes(ctx.root);
    const cacheDir = mkdtempSync(join(tmpdir(), 'enclave-bench-cache-'));
    const previousDir = process.env.ENCLAVE_CACHE_DIR;
    process.env.ENCLAVE_CACHE_DIR = cacheDir;
    try {
      clearFuelMemoryCache();
      // binaryen is imported on the first cache miss only; timed apart from the instrumentation.
      const load = await timed(() => import('binaryen'));
      const cold = await timed(() => compileEnclave(echo));
      clearFuelMemoryCache();
      const disk = await timed(() => compileEnclave(echo));
      const memory = await timed(() => compileEnclave(echo));
      notes.push(
        `compileEnclave(echo, ${echo.length} B): loading binaryen (first cache miss of a process) ${load.toFixed(0)} ms; ` +
          `cold (instrumentation + compile) ${cold.toFixed(0)} ms; ` +
          `warm from the disk cache ${disk.toFixed(1)} ms; warm from the memory cache ${memory.toFixed(1)} ms`,
      );
    } finally {
      if (previousDir === undefined) delete process.env.ENCLAVE_CACHE_DIR;
      else process.env.ENCLAVE_CACHE_DIR = previousDir;
      rmSync(cacheDir, { recursive: true, force: true });
    }

    const sum = await compileEnclave(await sumBytes(ctx.root));
    // The loop of a million iterations needs more than the default policy's fuel (about 100 ms of
    // worst-case work, docs/LIMITS.md): granted here, as a host would for a trusted enclave.
    const metered = sum.create({ policy: { fuel: 2 ** 31 - 1 } });
    const unmetered = sum.create({ metering: false });
    const cases: Case[] = [];
    for (const n of ctx.quick ? [10_000] : [100, 10_000, 1_000_000]) {
      const want = ((n * (n - 1)) / 2) % 2 ** 32;
      const stats = { fuel: 0 };
      if ((await metered.call('sum', n, { stats })) !== want || (await unmetered.call('sum', n)) !== want) {
        throw new Error('sum disagrees between metered and unmetered');
      }
      notes.push(`sum ${n}: ${stats.fuel} fuel per call`);
      const batch = n >= 1_000_000 ? 1 : n >= 10_000 ? 16 : 256;
      const group = `sum loop ${n.toLocaleString('en-US')}`;
      cases.push(
        {
          name: `unmetered (${group})`,
          group,
          role: 'floor',
          batch,
          fn: async () => {
            for (let i = 0; i < batch; i++) await unmetered.call('sum', n);
          },
        },
        {
          name: `fuel metered (${group})`,
          group,
          batch,
          fn: async () => {
            for (let i = 0; i < batch; i++) await metered.call('sum', n);
          },
        },
      );
    }

    const counter = await compileEnclave(readFileSync(join(ctx.root, 'enclave-modules', 'counter', 'build', 'counter.wasm')));
    const persistent = counter.create();
    const perCall = counter.create({ state: 'per-call' });
    const args = { by: 1 };
    cases.push(
      {
        name: 'persistent incr',
        group: 'counter incr, state policy',
        role: 'floor',
        batch: 64,
        fn: async () => {
          for (let i = 0; i < 64; i++) await persistent.call('incr', args);
        },
      },
      {
        name: "state: 'per-call' (snapshot restore)",
        group: 'counter incr, state policy',
        batch: 64,
        fn: async () => {
          for (let i = 0; i < 64; i++) await perCall.call('incr', args);
        },
      },
      {
        name: 'fresh instance per call (create + incr)',
        group: 'counter incr, state policy',
        role: 'reference',
        batch: 16,
        fn: async () => {
          for (let i = 0; i < 16; i++) {
            const e = counter.create();
            await e.call('incr', args);
            e.close();
          }
        },
      },
    );
    return { cases, notes };
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);

