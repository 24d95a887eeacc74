/**
 * One `worker_threads` worker that runs load-time jobs off the host thread, one at a time, each
 * with a deadline: the instrumenter (runtime/_instrument-worker.ts, binaryen) and the component
 * transpiler (runtime/_component-transpile.ts, jco). Both are load steps whose cost a hostile
 * module can grow, so the host's event loop never waits for them, and a job past its deadline ends
 * with `timeout` and the worker is terminated (the next job gets a fresh one).
 *
 * ```
 *  run(request) ──► queue ──► worker (its tool loaded once) ──► reply, read field by field
 *                     one job at a time; each job's deadline starts when the worker gets it
 *                     more than `queue` waiting ──► `overloaded` at once
 *                     deadline passed ──► worker terminated, job fails with `timeout`
 * ```
 *
 * The worker is started on first use, unref'd while idle (it never keeps the process alive) and
 * stopped after `idleMs` without work, so the tool's memory is not held for nothing.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { EnclaveError } from '../core/index.js';

/** What distinguishes one kind of job worker. */
export interface JobWorkerSpec<Result> {
  /** The worker's entry module. */
  entry(): URL;
  /** What the worker does, for messages: "instrumentation", "transpile". */
  readonly what: string;
  /** Jobs waiting behind the running one; past it `run` fails at once with {@link overloaded}. */
  readonly queue: number;
  /** An idle worker is stopped after this long. */
  readonly idleMs: number;
  readonly resourceLimits?: ResourceLimits;
  /** The job's result from a reply that is not an error (its `id` checked already): a fresh copy, an error, or undefined when malformed. Must not throw. */
  readResult(reply: Partial<Record<string, unknown>>): Result | EnclaveError | undefined;
  /** The error of a job past its deadline. */
  timeout(deadlineMs: number): EnclaveError;
  /** The error of a job refused because `queue` jobs are waiting. */
  overloaded(): EnclaveError;
}

interface Job<Result> {
  readonly id: number;
  readonly request: object;
  readonly deadlineMs: number;
  readonly resolve: (result: Result) => void;
  readonly reject: (err: EnclaveError) => void;
}

/** A queue of jobs and the one worker that runs them. */
export class JobWorker<Result> {
  readonly #spec: JobWorkerSpec<Result>;
  readonly #queue: Job<Result>[] = [];
  #worker: Worker | undefined;
  #current: { job: Job<Result>; timer: NodeJS.Timeout } | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #nextId = 1;

  constructor(spec: JobWorkerSpec<Result>) {
    this.#spec = spec;
  }

  /**
   * Runs one job: posts `{ id, ...request }` to the worker and resolves with what
   * `readResult` makes of its reply.
   * @throws {EnclaveError} the worker's error (`EnclaveError.fromJSON` of its `{ error }`),
   *   `timeout` past `deadlineMs`, `overloaded`, `internal` when the worker could not run or broke
   *   the protocol.
   */
  run(request: object, deadlineMs: number): Promise<Result> {
    if (this.#queue.length >= this.#spec.queue) return Promise.reject(this.#spec.overloaded());
    return new Promise<Result>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, request, deadlineMs, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#current !== undefined) return;
    const job = this.#queue.shift();
    if (job === undefined) {
      const worker = this.#worker;
      if (worker !== undefined) {
        worker.unref();
        clearTimeout(this.#idleTimer);
        this.#idleTimer = setTimeout(() => this.#stop(), this.#spec.idleMs).unref();
      }
      return;
    }
    clearTimeout(this.#idleTimer);
    let w: Worker;
    try {
      w = this.#worker ?? this.#start();
    } catch (err) {
      job.reject(new EnclaveError('internal', `The ${this.#spec.what} worker could not start.`, { cause: err }));
      this.#pump();
      return;
    }
    w.ref();
    const timer = setTimeout(() => {
      this.#stop();
      this.#finish(job, this.#spec.timeout(job.deadlineMs));
    }, job.deadlineMs);
    this.#current = { job, timer };
    w.postMessage({ ...job.request, id: job.id });
  }

  #start(): Worker {
    const { resourceLimits } = this.#spec;
    let w: Worker;
    try {
      // Node flags carry over, except one a worker refuses (`node --input-type=module -e ...`).
      w = new Worker(this.#spec.entry(), { execArgv: process.execArgv.filter((arg) => !arg.startsWith('--input-type')), ...(resourceLimits ? { resourceLimits } : {}) });
    } catch (err) {
      // V8 and process-wide flags (`--expose-gc`) are refused in a worker's execArgv, and already
      // apply to the whole process: start it without flags.
      if ((err as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err;
      w = new Worker(this.#spec.entry(), { execArgv: [], ...(resourceLimits ? { resourceLimits } : {}) });
    }
    w.on('message', (value: unknown) => {
      // A reply outside the protocol (a bug, or a worker a hostile input compromised) fails the job
      // and replaces the worker; nothing thrown here may escape: it would be uncaught, a host crash.
      try {
        if (this.#worker !== w) return; // a late message of a worker already stopped
        const job = this.#current?.job;
        if (job === undefined) return;
        const outcome = this.#read(value);
        if (outcome === undefined) {
          this.#stop();
          this.#finish(job, new EnclaveError('internal', `The ${this.#spec.what} worker sent a malformed reply; it was stopped.`));
          return;
        }
        if (outcome.id !== job.id) return;
        if (outcome.result instanceof EnclaveError) this.#finish(job, outcome.result);
        else this.#finish(job, undefined, outcome.result);
      } catch {
        // Not expected once the reply is checked; the host thread survives it either way.
      }
    });
    const died = (cause: unknown): void => {
      if (this.#worker !== w) return;
      this.#worker = undefined;
      const job = this.#current?.job;
      if (job !== undefined) this.#finish(job, new EnclaveError('internal', `The ${this.#spec.what} worker stopped.`, { cause }));
    };
    w.on('error', died);
    w.on('exit', died);
    this.#worker = w;
    return w;
  }

  /** A reply's id and result (or error), or undefined for anything outside the protocol. Never throws. */
  #read(value: unknown): { id: number; result: Result | EnclaveError } | undefined {
    if (typeof value !== 'object' || value === null) return undefined;
    const r = value as Partial<Record<string, unknown>>;
    if (typeof r.id !== 'number') return undefined;
    if ('error' in r) {
      // fromJSON reads any object's fields defensively.
      return typeof r.error === 'object' && r.error !== null ? { id: r.id, result: EnclaveError.fromJSON(r.error) } : undefined;
    }
    const result = this.#spec.readResult(r);
    return result === undefined ? undefined : { id: r.id, result };
  }

  #stop(): void {
    const w = this.#worker;
    this.#worker = undefined;
    void w?.terminate();
  }

  #finish(job: Job<Result>, error: EnclaveError | undefined, result?: Result): void {
    if (this.#current?.job !== job) return;
    clearTimeout(this.#current.timer);
    this.#current = undefined;
    if (error !== undefined) job.reject(error);
    else job.resolve(result!);
    this.#pump();
  }
}
