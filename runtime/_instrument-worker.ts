/**
 * Fuel instrumentation (runtime/fuel.ts) off the host thread, with a deadline.
 *
 * Instrumenting is the one load step whose cost grows with what a module contains rather than with
 * its bytes alone: binaryen took 16–27 s for a 13 KB module before the structure bounds of
 * core/module-info.ts, and still takes seconds for the largest module they admit
 * (docs/LIMITS.md, "Module structure"). So it runs in one shared `worker_threads` worker: the host's
 * event loop never waits for it, and a job that passes its deadline ends with `timeout` and the
 * worker is terminated (the next job gets a fresh one).
 *
 * ```
 *  instrumentOffThread ──► queue ──► worker (binaryen, loaded once) ──► bytes + manifest
 *                            one job at a time; each job's deadline starts when the worker gets it
 *                            more than INSTRUMENT_QUEUE waiting ──► `overloaded` at once
 *                            deadline passed ──► worker terminated, job fails with `timeout`
 * ```
 *
 * The worker is started on first use, unref'd while idle (it never keeps the process alive) and
 * stopped after {@link IDLE_MS} without work, so binaryen's memory is not held for nothing. The
 * queue and the worker are runtime/_job-worker.ts, shared with the component transpiler.
 */
import { EnclaveError } from '../core/index.js';
import { INSTRUMENTER_VERSION, type FuelManifest, type Instrumented } from './fuel.js';
import type { InstrumentRequest } from './_instrument-main.js';
import { JobWorker } from './_job-worker.js';

/** Wall-clock limit of one instrumentation, from the moment the worker receives it. */
export const INSTRUMENT_DEADLINE_MS = 30_000;
/** An idle worker is stopped after this long. */
const IDLE_MS = 10_000;
/**
 * Modules waiting behind the one being instrumented; past it a load fails at once with
 * `overloaded`, so a flood of loads cannot grow the host's memory (each waiting job holds its bytes).
 */
export const INSTRUMENT_QUEUE = 64;

/**
 * @internal Where the worker's entry is: next to this file, or in dist/ when this runs as
 * TypeScript (tests). The code that makes instrumented bytes is what this file imports
 * (runtime/_fuel-cache.ts fingerprints it).
 */
export function instrumenterEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/runtime/_instrument-main.js', here) : new URL('./_instrument-main.js', here);
}

const worker = new JobWorker<Instrumented>({
  entry: instrumenterEntry,
  what: 'instrumentation',
  queue: INSTRUMENT_QUEUE,
  idleMs: IDLE_MS,
  readResult,
  timeout: (ms) => new EnclaveError('timeout', `The module was not instrumented within ${ms} ms: it is too complex to load (docs/LIMITS.md, "Module structure").`),
  overloaded: () => new EnclaveError('overloaded', `${INSTRUMENT_QUEUE} modules are already waiting to be instrumented: retry the load later.`),
});

/**
 * Instruments validated module bytes in the instrumentation worker.
 * @throws {EnclaveError} what `instrumentFuel` throws (`invalid_module`); `timeout` when the
 *   worker did not finish within `deadlineMs`; `overloaded` when {@link INSTRUMENT_QUEUE} modules
 *   are already waiting; `internal` when the worker could not run.
 * @example
 * const { bytes, manifest } = await instrumentOffThread(original);
 */
export function instrumentOffThread(original: Uint8Array, deadlineMs: number = INSTRUMENT_DEADLINE_MS): Promise<Instrumented> {
  return worker.run({ bytes: original } satisfies Omit<InstrumentRequest, 'id'>, deadlineMs);
}

/**
 * The bytes and manifest of a reply, a fresh copy of the bytes and of exactly the manifest's
 * fields; undefined for anything else. Never throws (a structured clone holds plain data).
 */
function readResult(r: Partial<Record<string, unknown>>): Instrumented | EnclaveError | undefined {
  const { bytes, manifest } = r;
  if (!(bytes instanceof Uint8Array) || typeof manifest !== 'object' || manifest === null) return undefined;
  const m = manifest as Partial<Record<keyof FuelManifest, unknown>>;
  const count = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!count(m.version) || !count(m.mutableGlobals) || !count(m.chargePoints)) return undefined;
  if (typeof m.hasStart !== 'boolean' || typeof m.snapshotSafe !== 'boolean') return undefined;
  if (m.version !== INSTRUMENTER_VERSION) {
    // The worker runs the compiled copy (dist/ when this runs as TypeScript): a stale one must not
    // have its output cached under this version's key.
    return new EnclaveError('internal', `The instrumentation worker runs instrumenter version ${m.version}, not ${INSTRUMENTER_VERSION}: rebuild (npm run build:ts).`);
  }
  return {
    bytes: new Uint8Array(bytes),
    manifest: Object.freeze({ version: m.version, hasStart: m.hasStart, mutableGlobals: m.mutableGlobals, snapshotSafe: m.snapshotSafe, chargePoints: m.chargePoints }),
  };
}
