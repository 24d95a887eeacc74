/**
 * The WIT world of a component, as `enclave inspect` prints it: `componentWit` of jco-transpile's
 * wasm-tools, run in a worker thread that is stopped after {@link WIT_DEADLINE_MS}, with a bounded
 * heap, and whose text is cut to {@link MAX_WIT_CHARS}. The runtime has accepted the component
 * before this runs (the gate, the world check), but wasm-tools then decodes all of it again
 * (types included, which the gate only frames), unmetered: its own limits (wasmparser's bound on
 * the effective size of types, 1 000 000) keep the text small for what we tried, and the worker
 * keeps a case nobody tried from holding or crashing the CLI. Whatever happens in the worker,
 * inspect goes on without the WIT and says why.
 */
import { Worker } from 'node:worker_threads';

/** How long printing the WIT may take, ms: a real component's takes well under a second (loading wasm-tools included). */
export const WIT_DEADLINE_MS = 10_000;
/** The most characters of WIT kept: the enclave world's is about a thousand. */
export const MAX_WIT_CHARS = 64 * 1024;

/** The WIT text (cut to {@link MAX_WIT_CHARS}: `truncated`), or why there is none. */
export type ComponentWit = { readonly wit: string; readonly truncated: boolean } | { readonly wit: null; readonly why: string };

/**
 * The worker, plain JavaScript evaluated from this string (no file to find from the sources, dist/
 * or an installed package). workerData: the component's bytes, the URL of wasm-tools' entry and
 * the character bound. It posts `{wit, length}` or `{failed}`.
 */
const WIT_WORKER = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  try {
    const { componentWit } = await import(workerData.entry);
    const wit = await componentWit(workerData.bytes);
    parentPort.postMessage({ wit: wit.slice(0, workerData.max), length: wit.length });
  } catch (err) {
    parentPort.postMessage({ failed: String((err && err.message) || err).slice(0, 512) });
  }
})();
`;

/**
 * Prints a component's WIT world in a bounded worker.
 * @param deadlineMs - how long it may take (tests pass less).
 * @example
 * const printed = await componentWitBounded(bytes);
 * if (printed.wit !== null) console.log(printed.wit);
 */
export function componentWitBounded(bytes: Uint8Array, deadlineMs = WIT_DEADLINE_MS): Promise<ComponentWit> {
  return new Promise((resolve) => {
    let worker: Worker;
    try {
      const entry = import.meta.resolve('@bytecodealliance/jco-transpile/wasm-tools');
      worker = new Worker(WIT_WORKER, {
        eval: true,
        workerData: { bytes, entry, max: MAX_WIT_CHARS },
        resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 },
      });
    } catch (err) {
      resolve({ wit: null, why: `wasm-tools could not start: ${(err as Error).message}` });
      return;
    }
    let settled = false;
    const settle = (outcome: ComponentWit): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void worker.terminate();
      resolve(outcome);
    };
    const timer = setTimeout(() => settle({ wit: null, why: `wasm-tools did not print it within ${deadlineMs / 1000} s` }), deadlineMs);
    worker.on('message', (m: { wit: string; length: number } | { failed: string }) => {
      if ('failed' in m) settle({ wit: null, why: `wasm-tools could not print it: ${m.failed}` });
      else settle({ wit: m.wit, truncated: m.length > m.wit.length });
    });
    worker.once('error', (err) => settle({ wit: null, why: `wasm-tools failed: ${err.message}` }));
    worker.once('exit', (code) => settle({ wit: null, why: `wasm-tools stopped (exit code ${code})` }));
  });
}
