/**
 * Worker isolation mode: the extra cost per call of running an enclave in its own worker (one hop
 * through a SharedArrayBuffer each way) against the in-process call, echo of 16 B and 64 KiB, in
 * one run. The in-process call is each group's floor, so "× floor" is the worker mode's ratio.
 *
 * Also times what the rejected design would add per call: the worker decoding the request and
 * encoding the reply again instead of forwarding raw bytes (`Enclave[CALL_RAW]`).
 *
 *   npm run build:ts && npm run bench -- worker      (or: node dist/bench/worker.js)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createPackr, loadEnclave, unpackr } from '../runtime/index.js';
import { defineSuite, formatBytes, isMain, runStandalone, type Case } from './_harness.js';

const SIZES = [16, 65_536] as const;

export const suite = defineSuite({
  name: 'worker',
  description: 'echo in worker isolation mode against in-process, by payload size',
  maxTime: 1,
  quickMaxTime: 0.25,
  async setup(ctx) {
    const bytes = await readFile(join(ctx.root, 'enclave-modules/echo/build/echo.wasm'));
    const inProcess = await loadEnclave(bytes);
    const worker = await loadEnclave(bytes, { isolation: 'worker', deadlineMs: 10_000 });
    const packr = createPackr();
    const cases: Case[] = [];
    for (const size of SIZES) {
      const payload = new Uint8Array(size).fill(7);
      const group = formatBytes(size);
      const batch = size >= 65_536 ? 16 : 256;
      for (const e of [inProcess, worker]) {
        const back = (await e.call('echo', payload)) as Uint8Array;
        if (back.length !== size || back.some((v) => v !== 7)) throw new Error('round trip lost bytes');
      }
      cases.push({
        name: `in-process ${group}`,
        group,
        role: 'floor',
        batch,
        fn: async () => {
          for (let i = 0; i < batch; i++) await inProcess.call('echo', payload);
        },
      });
      cases.push({
        name: `worker ${group}`,
        group,
        batch,
        fn: async () => {
          for (let i = 0; i < batch; i++) await worker.call('echo', payload);
        },
      });
      const request = packr.pack({ op: 'echo', args: payload });
      const reply = packr.pack({ ok: payload });
      cases.push({
        name: `re-encoding in the worker would add ${group}`,
        group,
        role: 'reference',
        batch,
        fn: () => {
          for (let i = 0; i < batch; i++) {
            packr.pack(unpackr.unpack(request));
            packr.pack(unpackr.unpack(reply));
          }
        },
      });
    }
    return {
      cases,
      notes: [
        "worker: `loadEnclave(bytes, { isolation: 'worker' })`, calls awaited one after another; × floor is worker / in-process.",
        're-encoding: decode + encode of the request and of the reply, the work a worker that does not forward raw bytes would add.',
      ],
      dispose: () => worker.close(),
    };
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
