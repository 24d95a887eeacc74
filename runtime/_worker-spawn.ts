/**
 * Worker mode's plumbing on the host thread: starting an enclave worker and wiring its events
 * (ready, failed, logs, host calls, exit), finding its entry file, and reading what a worker
 * leaves in the shared buffer when a call fails. runtime/worker.ts drives calls over it.
 */
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EnclaveError } from '../core/index.js';
import { MAX_LIMITS, type Limits } from './contract.js';
import { LOG_LEVELS } from './abi.js';
import type { LogLevel, WorkerConfig } from './options.js';
import type { EnclavePlatform, ReportContext } from './platform.js';
import { deliverLogs } from './_live.js';
import { admitHostCall, answerHostCall, type HostCallQuota } from './_worker-hostcall.js';
import { dataBytes, DEAD, HEADER_BYTES, REQUEST, STATE, type ErrorJSON, type WorkerConfigData, type WorkerData, type WorkerMessage } from './_worker-protocol.js';

/** One running worker and its view of the shared buffer. */
export interface LiveWorker {
  readonly worker: Worker;
  readonly ctl: Int32Array;
  /** The header as f64, for the call's fuel (`CALL_FUEL_F64`). */
  readonly f64: Float64Array;
  /** The data area as a Buffer (the request is copied in with `Buffer.copy`). */
  readonly data: Buffer;
  /** Set by the 'error' event: why the worker died, for the message. */
  death: Error | undefined;
  /** Set when the worker broke the protocol and was stopped: what its call in flight fails with. */
  fault: EnclaveError | undefined;
  /** Its host calls since the current call began (`admitHostCall`); cleared at each call. */
  readonly hostCalls: HostCallQuota;
}

/** Everything a worker enclave runs under, settled once when it starts. */
export interface Settled extends WorkerConfig {
  readonly parts: unknown;
  /** The enclave's settled options, without what cannot cross a thread (onLog, the platform). */
  readonly config: WorkerConfigData;
  readonly onLog: ((level: LogLevel, message: string) => void) | undefined;
  /** The platform, which stays on this thread, and what evidence says about the enclave. */
  readonly attestation: { readonly provider: EnclavePlatform; readonly context: ReportContext } | undefined;
}

/** Makes the host's own waiter return now (close, worker exit): the worker will not answer. */
export function wake(live: LiveWorker): void {
  if (Atomics.compareExchange(live.ctl, STATE, REQUEST, DEAD) === REQUEST) Atomics.notify(live.ctl, STATE);
}

/**
 * The error a worker wrote in the shared data area (`len` bytes of `EnclaveError.toJSON()`), rebuilt by
 * `fromJSON`; an unreadable one (a bad length, not JSON) becomes `internal`. Never throws.
 */
export function readError(data: Buffer, len: number): EnclaveError {
  try {
    if (!(len >= 0 && len <= data.length)) throw new Error('length');
    return EnclaveError.fromJSON(JSON.parse(data.toString('utf8', 0, len)) as ErrorJSON);
  } catch {
    return new EnclaveError('internal', 'The enclave worker sent an unreadable error.');
  }
}

/** What a call (or, with `starting`, a start) is told when its worker stopped: out of memory, or stopped. */
export function workerDeathMessage(death: Error | undefined, starting = false): string {
  const code = (death as NodeJS.ErrnoException | undefined)?.code;
  if (starting) {
    return code === 'ERR_WORKER_OUT_OF_MEMORY'
      ? 'The enclave worker exceeded its resourceLimits while starting.'
      : 'The enclave worker stopped while starting.';
  }
  return code === 'ERR_WORKER_OUT_OF_MEMORY'
    ? 'The enclave worker exceeded its resourceLimits and was stopped; the next call gets a fresh instance.'
    : 'The enclave worker stopped during the call; the next call gets a fresh instance.';
}

const LEVELS: ReadonlySet<unknown> = new Set(LOG_LEVELS);

/**
 * A worker's message checked against the protocol (`WorkerMessage`), field by field; undefined
 * for anything else. Never throws: a structured clone holds plain data (no getters, no proxies).
 * A host call's own fields are checked by `answerHostCall`; a failure's error by `fromJSON`.
 */
function readMessage(value: unknown): WorkerMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const m = value as Partial<Record<string, unknown>>;
  switch (m.type) {
    case 'hostcall':
      return value as WorkerMessage;
    case 'failed':
      return typeof m.error === 'object' && m.error !== null ? (value as WorkerMessage) : undefined;
    case 'log': {
      const entries = m.entries;
      if (!Array.isArray(entries)) return undefined;
      for (const entry of entries as unknown[]) {
        if (!Array.isArray(entry) || entry.length !== 2 || !LEVELS.has(entry[0]) || typeof entry[1] !== 'string') return undefined;
      }
      return value as WorkerMessage;
    }
    case 'ready': {
      const { sab, limits } = m;
      if (!(sab instanceof SharedArrayBuffer) || typeof limits !== 'object' || limits === null) return undefined;
      // A copy of exactly the fields of Limits, each a number within its hard ceiling.
      const checked: Record<string, number> = {};
      for (const key of Object.keys(MAX_LIMITS) as (keyof Limits)[]) {
        const n = (limits as Partial<Record<string, unknown>>)[key];
        if (typeof n !== 'number' || !(n >= 0 && n <= MAX_LIMITS[key])) return undefined;
        checked[key] = n;
      }
      const frozen = Object.freeze(checked as unknown as Limits);
      // The host writes requests and reads replies of up to these limits in the data area.
      if (sab.byteLength < HEADER_BYTES + dataBytes(frozen)) return undefined;
      return { type: 'ready', sab, limits: frozen };
    }
    default:
      return undefined;
  }
}

/** Boots a worker, waits for its enclave to be instantiated, and wires its events. */
export function spawn(
  settled: Settled,
  onExit: (live: LiveWorker, exitCode: number) => void,
): Promise<{ live: LiveWorker; limits: Limits }> {
  const workerData: WorkerData = {
    parts: settled.parts,
    config: settled.config,
    forwardLogs: settled.onLog !== undefined,
    ...(settled.attestation === undefined ? {} : { hostCall: { platform: platformOf(settled.attestation.provider), timeoutMs: hostCallTimeout(settled) } }),
  };
  let worker: Worker;
  const start = (execArgv: string[]): Worker => new Worker(workerEntry(), { workerData, resourceLimits: settled.resourceLimits, execArgv });
  try {
    try {
      // Node flags carry over, except one a worker refuses (`node --input-type=module -e ...`).
      worker = start(process.execArgv.filter((arg) => !arg.startsWith('--input-type')));
    } catch (err) {
      // V8 and process-wide flags (`--expose-gc`, `--max-old-space-size`) are refused in a worker's
      // execArgv, and already apply to the whole process: start it without flags.
      if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
      worker = start([]);
    }
  } catch (err) {
    if ((err as Error).name === 'DataCloneError') {
      throw new EnclaveError('invalid_options', 'An option cannot be passed to a worker (functions other than onLog cannot cross threads).', {
        cause: err,
      });
    }
    throw err;
  }
  return new Promise((resolve, reject) => {
    let live: LiveWorker | undefined;
    let death: Error | undefined;
    const hostCalls: HostCallQuota = { used: new Map() };
    const timer = setTimeout(() => {
      fail(new EnclaveError('timeout', `The enclave worker did not start within ${settled.startDeadlineMs} ms.`));
      void worker.terminate().catch(() => undefined);
    }, settled.startDeadlineMs);
    const fail = (error: EnclaveError): void => {
      clearTimeout(timer);
      reject(error);
    };
    // A message outside the protocol (a bug, or a compromised worker: it runs hostile Wasm) ends
    // that worker, never the host: an exception thrown out of this listener would be uncaught.
    const malformed = (): void => {
      if (live === undefined) {
        fail(new EnclaveError('internal', 'The enclave worker sent a malformed message while starting; it was stopped.'));
      } else {
        live.fault ??= new EnclaveError('internal', 'The enclave worker sent a malformed message; it was stopped and the next call gets a fresh instance.');
      }
      void worker.terminate().catch(() => undefined);
    };
    worker.on('message', (value: unknown) => {
      try {
        const message = readMessage(value);
        if (message === undefined) {
          malformed();
        } else if (message.type === 'hostcall') {
          // A seal_key or report import waiting in the worker; this thread is idle in waitAsync.
          // answerHostCall checks the rest of the message and never throws.
          const attestation = settled.attestation;
          // A kind the host did not grant, or past its per-call bound: the worker's own checks would
          // never ask, so it is broken or compromised (it runs hostile Wasm).
          if (attestation === undefined || !admitHostCall(message, attestation.context.capabilities, hostCalls)) malformed();
          else answerHostCall(message, attestation.provider, attestation.context, live === undefined ? settled.startDeadlineMs : settled.deadlineMs);
        } else if (message.type === 'log') {
          // Untrusted text from the enclave, delivered after the call that produced it.
          if (settled.onLog !== undefined) deliverLogs(settled.onLog, message.entries);
        } else if (live !== undefined) {
          // 'ready' and 'failed' come once, before any call.
          malformed();
        } else if (message.type === 'ready') {
          clearTimeout(timer);
          const sab = message.sab;
          live = {
            worker,
            ctl: new Int32Array(sab, 0, HEADER_BYTES / 4),
            f64: new Float64Array(sab, 0, HEADER_BYTES / 8),
            data: Buffer.from(sab, HEADER_BYTES),
            death: undefined,
            fault: undefined,
            hostCalls,
          };
          worker.unref();
          resolve({ live, limits: message.limits });
        } else {
          fail(EnclaveError.fromJSON(message.error));
          void worker.terminate().catch(() => undefined);
        }
      } catch {
        // Not expected once the message is checked; whatever it was, the host thread survives it.
        malformed();
      }
    });
    // Without a listener, an error in the worker (out of memory) would be thrown on this thread.
    worker.on('error', (err) => {
      death = err;
      if (live !== undefined) live.death = err;
    });
    worker.on('exit', (exitCode: number) => {
      if (live === undefined) {
        fail(new EnclaveError('trap', workerDeathMessage(death, true), { cause: death }));
        return;
      }
      wake(live);
      onExit(live, exitCode);
    });
  });
}

/**
 * How long the worker waits for a host call: a backstop only, longer than any deadline, since the
 * host ends a call at its deadline (terminating the worker) whether or not it answered.
 */
function hostCallTimeout(settled: Settled): number {
  return Math.min(Math.max(settled.deadlineMs, settled.startDeadlineMs) + 1000, 2 ** 31 - 1);
}

function platformOf(provider: EnclavePlatform): string {
  try {
    return String(provider.platform);
  } catch {
    return 'unknown';
  }
}

let entry: URL | undefined;

/**
 * The worker's entry file. From `dist/` it sits next to this file. From the TypeScript sources
 * (vitest, which transforms `.ts` on the fly but not inside a raw worker) there is no `.js` next
 * to us, so the compiled copy in `dist/` runs; it is refused if any runtime or attest source is
 * newer than its compiled file, so stale code never runs unnoticed: `npm run build:ts` fixes it.
 */
function workerEntry(): URL {
  if (entry !== undefined) return entry;
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return (entry = new URL('./_worker-main.js', here));
  const root = new URL('../', here);
  const stale = staleSources(root, ['core', 'runtime', 'attest']);
  if (stale !== undefined) {
    throw new EnclaveError(
      'internal',
      `Worker mode from the TypeScript sources runs the compiled worker in dist/, but dist/${stale.replace(/\.ts$/, '.js')} is missing or older than ${stale}: run \`npm run build:ts\`.`,
    );
  }
  return (entry = new URL('dist/runtime/_worker-main.js', root));
}

/** The first source under `dirs` whose compiled `.js` in dist/ is missing or older, if any. */
function staleSources(root: URL, dirs: readonly string[]): string | undefined {
  const rootPath = fileURLToPath(root);
  const walk = (dir: string): string | undefined => {
    for (const item of readdirSync(`${rootPath}${dir}`, { withFileTypes: true })) {
      const rel = `${dir}/${item.name}`;
      if (item.isDirectory()) {
        const found = walk(rel);
        if (found !== undefined) return found;
      } else if (item.name.endsWith('.ts') && !item.name.endsWith('.d.ts')) {
        const js = statSync(`${rootPath}dist/${rel.slice(0, -3)}.js`, { throwIfNoEntry: false });
        if (js === undefined || js.mtimeMs < statSync(`${rootPath}${rel}`).mtimeMs) return rel;
      }
    }
    return undefined;
  };
  for (const dir of dirs) {
    const found = walk(dir);
    if (found !== undefined) return found;
  }
  return undefined;
}
