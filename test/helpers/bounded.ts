/**
 * Runs an in-process scenario on a thread of its own, terminated after a bound, so a regression
 * that makes it loop (fuel metering broken: an enclave's loop is then never stopped, and it blocks
 * its thread, vitest's timeout included) fails the test with a clear message instead of hanging the
 * run. Issue 10: "every hostile test bounded by its own timeout so a regression fails rather than hangs".
 *
 * The scenario runs against the compiled runtime (`dist/host/index.js`, which test/global-setup.ts
 * builds from the sources before the run: a worker cannot load `.ts`). It is passed as the source
 * of a function, so it must be self-contained: it may use only its two parameters (the host module
 * and `input`) and globals, never a variable or an import of the test file. Its input and result
 * cross by structured clone (no functions, no class instances: report an error as its `code`).
 */
import { Worker } from 'node:worker_threads';
import type * as Host from '../../host/index.js';

/** The compiled public entry the scenario receives. */
export type HostModule = typeof Host;

const WORKER = new URL('./_bounded-worker.mjs', import.meta.url);
const HOST = new URL('../../dist/host/index.js', import.meta.url).href;

/** Default bound: below vitest's testTimeout (30 s), so the bound, not vitest, ends a stuck test. */
export const DEFAULT_BOUND_MS = 20_000;

/**
 * Runs `scenario(host, input)` in a worker thread and resolves with its result; terminates the
 * worker and rejects if it has not finished after `boundMs`.
 * @throws {Error} `<name>: did not finish within <boundMs> ms ...` past the bound; the scenario's
 *   own error (name, message and code kept) if it threw.
 * @example
 * const code = await runBounded('infinite loop', async (host, bytes) => {
 *   const e = await host.loadEnclave(bytes);
 *   try { await e.call('attack'); return 'no error'; } catch (err) { return err.code; }
 * }, bytes);
 */
export function runBounded<I, R>(
  name: string,
  scenario: (host: HostModule, input: I) => Promise<R>,
  input: I,
  boundMs = DEFAULT_BOUND_MS,
): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: { source: scenario.toString(), input, hostUrl: HOST } });
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
      // Whatever the scenario left open (enclaves, their workers) goes with the thread.
      void worker.terminate();
    };
    const timer = setTimeout(() => {
      finish(() =>
        reject(
          new Error(
            `${name}: did not finish within ${boundMs} ms and was terminated: ` +
              'a loop the runtime should have stopped (fuel, deadline) ran on unchecked',
          ),
        ),
      );
    }, boundMs);
    worker.once('message', (msg: { value?: R; error?: { name?: string; message: string; code?: string; stack?: string } }) => {
      finish(() => {
        if (msg.error === undefined) return resolve(msg.value as R);
        const err = Object.assign(new Error(`${name}: ${msg.error.message}`), { code: msg.error.code, scenarioStack: msg.error.stack });
        err.name = msg.error.name ?? 'Error';
        reject(err);
      });
    });
    worker.once('error', (err) => finish(() => reject(err)));
    worker.once('exit', (code) => finish(() => reject(new Error(`${name}: the scenario's thread exited (${code}) without a result`))));
  });
}
