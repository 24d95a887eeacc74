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
 * stopped after {@link IDLE_MS} without work, so binaryen's memory is not held for nothing.
 */
import { Worker } from 'node:worker_threads';
import { EnclaveError } from '../core/index.js';
import { INSTRUMENTER_VERSION, type FuelManifest, type Instrumented } from './fuel.js';
import type { InstrumentRequest } from './_instrument-main.js';

/** Wall-clock limit of one instrumentation, from the moment the worker receives it. */
export const INSTRUMENT_DEADLINE_MS = 30_000;
/** An idle worker is stopped after this long. */
const IDLE_MS = 10_000;
/**
 * Modules waiting behind the one being instrumented; past it a load fails at once with
 * `overloaded`, so a flood of loads cannot grow the host's memory (each waiting job holds its bytes).
 */
export const INSTRUMENT_QUEUE = 64;

interface Job {
  readonly id: number;
  readonly bytes: Uint8Array;
  readonly deadlineMs: number;
  readonly resolve: (result: Instrumented) => void;
  readonly reject: (err: EnclaveError) => void;
}

type Reply =
  | { readonly id: number; readonly bytes: Uint8Array; readonly manifest: FuelManifest }
  /** `EnclaveError.toJSON()` in the worker; read here by `fromJSON`, which trusts none of it. */
  | { readonly id: number; readonly error: object };

const queue: Job[] = [];
let worker: Worker | undefined;
let current: { job: Job; timer: NodeJS.Timeout } | undefined;
let idleTimer: NodeJS.Timeout | undefined;
let nextId = 1;

/**
 * @internal Where the worker's entry is: next to this file, or in dist/ when this runs as
 * TypeScript (tests). The code that makes instrumented bytes is what this file imports
 * (runtime/_fuel-cache.ts fingerprints it).
 */
export function instrumenterEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/runtime/_instrument-main.js', here) : new URL('./_instrument-main.js', here);
}

/**
 * Instruments validated module bytes in the instrumentation worker.
 * @throws {EnclaveError} what `instrumentFuel` throws (`invalid_module`); `timeout` when the
 *   worker did not finish within `deadlineMs`; `overloaded` when {@link INSTRUMENT_QUEUE} modules
 *   are already waiting; `internal` when the worker could not run.
 * @example
 * const { bytes, manifest } = await instrumentOffThread(original);
 */
export function instrumentOffThread(original: Uint8Array, deadlineMs: number = INSTRUMENT_DEADLINE_MS): Promise<Instrumented> {
  if (queue.length >= INSTRUMENT_QUEUE) {
    return Promise.reject(new EnclaveError('overloaded', `${INSTRUMENT_QUEUE} modules are already waiting to be instrumented: retry the load later.`));
  }
  return new Promise<Instrumented>((resolve, reject) => {
    queue.push({ id: nextId++, bytes: original, deadlineMs, resolve, reject });
    pump();
  });
}

function pump(): void {
  if (current !== undefined) return;
  const job = queue.shift();
  if (job === undefined) {
    if (worker !== undefined) {
      worker.unref();
      clearTimeout(idleTimer);
      idleTimer = setTimeout(stop, IDLE_MS).unref();
    }
    return;
  }
  clearTimeout(idleTimer);
  let w: Worker;
  try {
    w = worker ?? start();
  } catch (err) {
    job.reject(new EnclaveError('internal', 'The instrumentation worker could not start.', { cause: err }));
    pump();
    return;
  }
  w.ref();
  const timer = setTimeout(() => {
    stop();
    finish(
      job,
      new EnclaveError('timeout', `The module was not instrumented within ${job.deadlineMs} ms: it is too complex to load (docs/LIMITS.md, "Module structure").`),
    );
  }, job.deadlineMs);
  current = { job, timer };
  w.postMessage({ id: job.id, bytes: job.bytes } satisfies InstrumentRequest);
}

function start(): Worker {
  let w: Worker;
  try {
    // Node flags carry over, except one a worker refuses (`node --input-type=module -e ...`).
    w = new Worker(instrumenterEntry(), { execArgv: process.execArgv.filter((arg) => !arg.startsWith('--input-type')) });
  } catch (err) {
    // V8 and process-wide flags (`--expose-gc`) are refused in a worker's execArgv, and already
    // apply to the whole process: start it without flags.
    if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
    w = new Worker(instrumenterEntry(), { execArgv: [] });
  }
  w.on('message', (value: unknown) => {
    // A reply outside the protocol (a bug, or a worker a hostile module compromised) fails the job
    // and replaces the worker; nothing thrown here may escape: it would be uncaught, a host crash.
    try {
      const job = current?.job;
      const reply = readReply(value);
      if (reply === undefined) {
        // A late message of a worker already stopped says nothing about the job of its successor.
        if (worker !== w) return;
        stop();
        if (job !== undefined) finish(job, new EnclaveError('internal', 'The instrumentation worker sent a malformed reply; it was stopped.'));
        return;
      }
      if (job === undefined || reply.id !== job.id) return;
      if ('error' in reply) finish(job, EnclaveError.fromJSON(reply.error));
      else if (reply.manifest.version !== INSTRUMENTER_VERSION) {
        // The worker runs the compiled copy (dist/ when this runs as TypeScript): a stale one must not
        // have its output cached under this version's key.
        finish(job, new EnclaveError('internal', `The instrumentation worker runs instrumenter version ${reply.manifest.version}, not ${INSTRUMENTER_VERSION}: rebuild (npm run build:ts).`));
      } else finish(job, undefined, { bytes: reply.bytes, manifest: reply.manifest });
    } catch {
      // Not expected once the reply is checked; the host thread survives it either way.
    }
  });
  const died = (cause: unknown): void => {
    if (worker !== w) return;
    worker = undefined;
    const job = current?.job;
    if (job !== undefined) finish(job, new EnclaveError('internal', 'The instrumentation worker stopped.', { cause }));
  };
  w.on('error', died);
  w.on('exit', died);
  worker = w;
  return w;
}

/**
 * A reply checked field by field, with a fresh copy of the bytes and of exactly the manifest's
 * fields; undefined for anything else. Never throws (a structured clone holds plain data).
 */
function readReply(value: unknown): Reply | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Partial<Record<string, unknown>>;
  if (typeof r.id !== 'number') return undefined;
  if ('error' in r) {
    // fromJSON reads any object's fields defensively.
    return typeof r.error === 'object' && r.error !== null ? { id: r.id, error: r.error } : undefined;
  }
  const { bytes, manifest } = r;
  if (!(bytes instanceof Uint8Array) || typeof manifest !== 'object' || manifest === null) return undefined;
  const m = manifest as Partial<Record<keyof FuelManifest, unknown>>;
  const count = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
  if (!count(m.version) || !count(m.mutableGlobals) || !count(m.chargePoints)) return undefined;
  if (typeof m.hasStart !== 'boolean' || typeof m.snapshotSafe !== 'boolean') return undefined;
  return {
    id: r.id,
    bytes: new Uint8Array(bytes),
    manifest: Object.freeze({ version: m.version, hasStart: m.hasStart, mutableGlobals: m.mutableGlobals, snapshotSafe: m.snapshotSafe, chargePoints: m.chargePoints }),
  };
}

function stop(): void {
  const w = worker;
  worker = undefined;
  void w?.terminate();
}

function finish(job: Job, error: EnclaveError | undefined, result?: Instrumented): void {
  if (current?.job !== job) return;
  clearTimeout(current.timer);
  current = undefined;
  if (error !== undefined) job.reject(error);
  else job.resolve(result!);
  pump();
}
