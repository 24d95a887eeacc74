/**
 * Worker isolation mode: the extra cost per call of running an enclave in its own worker (one hop
 * through a SharedArrayBuffer each way) against the in-process call, echo of 16 B and 64 KiB.
 *
 * Also times what the rejected design would add: the worker decoding the request and encoding
 * the reply again instead of forwarding raw bytes (`Enclave[CALL_RAW]`).
 *
 *   npm run build && node dist/bench/worker.js
 */
import { readFile } from 'node:fs/promises';
import { loadEnclave } from '../runtime/load.js';
import { createPackr, unpackr } from '../runtime/marshal.js';
import { formatNs, runCases, type Case } from './_harness.js';

const SIZES = [16, 65_536] as const;

export async function workerCases(sizes: readonly number[] = SIZES): Promise<{ cases: Case[]; close: () => Promise<void> }> {
  const bytes = await readFile(new URL('../../enclave-modules/echo/build/echo.wasm', import.meta.url));
  const inProcess = await loadEnclave(bytes);
  const worker = await loadEnclave(bytes, { isolation: 'worker', deadlineMs: 10_000 });
  const packr = createPackr();
  const cases: Case[] = [];
  for (const size of sizes) {
    const payload = new Uint8Array(size).fill(7);
    const batch = size >= 65_536 ? 16 : 256;
    for (const e of [inProcess, worker]) {
      const back = (await e.call('echo', payload)) as Uint8Array;
      if (back.length !== size) throw new Error('round trip lost bytes');
    }
    cases.push({
      name: `in-process echo ${size} B`,
      batch,
      fn: async () => {
        for (let i = 0; i < batch; i++) await inProcess.call('echo', payload);
      },
    });
    cases.push({
      name: `worker echo ${size} B`,
      batch,
      fn: async () => {
        for (let i = 0; i < batch; i++) await worker.call('echo', payload);
      },
    });
    const request = packr.pack({ op: 'echo', args: payload });
    const reply = packr.pack({ ok: payload });
    cases.push({
      name: `re-encode in worker ${size} B`,
      batch,
      fn: () => {
        for (let i = 0; i < batch; i++) {
          packr.pack(unpackr.unpack(request));
          packr.pack(unpackr.unpack(reply));
        }
      },
    });
  }
  return { cases, close: () => worker.close() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { cases, close } = await workerCases();
  const results = await runCases(cases, {
    maxTime: Number(process.env.BENCH_TIME ?? 2),
    onCase: (r) => process.stderr.write(`  ${r.name}: ${formatNs(r.meanNs)} ±${r.rme.toFixed(1)}%\n`),
  });
  await close();
  const byName = new Map(results.map((r) => [r.name, r]));
  console.log('| payload | in-process | worker | extra per call | ratio | re-encoding would add |');
  console.log('|---|---|---|---|---|---|');
  for (const size of SIZES) {
    const a = byName.get(`in-process echo ${size} B`)!;
    const w = byName.get(`worker echo ${size} B`)!;
    const r = byName.get(`re-encode in worker ${size} B`)!;
    console.log(
      `| ${size} B | ${formatNs(a.meanNs)} | ${formatNs(w.meanNs)} | ${formatNs(w.meanNs - a.meanNs)} | ${(w.meanNs / a.meanNs).toFixed(1)}× | ${formatNs(r.meanNs)} |`,
    );
  }
}
