/**
 * Worker mode's queue (docs/LIMITS.md, "Queue"): one call (or endSession) in flight per enclave,
 * the others waiting in order, bounded in number (`maxQueue`) and in time (`queueTimeoutMs`). A
 * call refused here never ran, so nothing else (the calls around it, the instance's state) is
 * affected. Also what `drain()` waits for.
 */
import { EnclaveError } from '../core/index.js';

/** A call waiting in an enclave's queue. */
interface Queued {
  readonly run: () => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** @internal The queue of one worker enclave. */
export class CallQueue {
  readonly #maxQueue: number;
  readonly #queueTimeoutMs: number;
  /** True while a call is in flight: handed to the worker, or waiting for a fresh one. */
  #busy = false;
  #closed = false;
  /** Calls waiting behind it, oldest first; at most `maxQueue`, each for at most `queueTimeoutMs`. */
  readonly #waiting = new Set<Queued>();
  /** Every call accepted and not yet settled, for drain(). */
  readonly #accepted = new Set<Promise<unknown>>();

  constructor(maxQueue: number, queueTimeoutMs: number) {
    this.#maxQueue = maxQueue;
    this.#queueTimeoutMs = queueTimeoutMs;
  }

  /**
   * Runs `run` now if nothing is in flight, or queues it: a full queue refuses it at once and a
   * call that waits past `queueTimeoutMs` is taken out of the queue, both with `overloaded`.
   * After close, `run` runs at once (it answers `closed` itself).
   */
  enqueue(run: () => Promise<unknown>): Promise<unknown> {
    const result = this.#admit(run);
    // A caller that handles the outcome later (after awaiting close(), say) does not get an
    // unhandled rejection meanwhile.
    result.catch(() => undefined);
    // Until it settles, drain() waits for it.
    this.#accepted.add(result);
    const forget = (): void => void this.#accepted.delete(result);
    result.then(forget, forget);
    return result;
  }

  /** Resolves when every call accepted so far has settled. Never rejects. */
  drain(): Promise<void> {
    return Promise.allSettled([...this.#accepted]).then(() => undefined);
  }

  /** Closes the queue: the waiting calls run now (each answers `closed`), not after the one in flight. */
  close(): void {
    this.#closed = true;
    for (const job of this.#waiting) {
      clearTimeout(job.timer);
      job.run().then(job.resolve, job.reject);
    }
    this.#waiting.clear();
  }

  #admit(run: () => Promise<unknown>): Promise<unknown> {
    if (this.#closed) return run();
    if (!this.#busy) return this.#start(run);
    const maxQueue = this.#maxQueue;
    const queueTimeoutMs = this.#queueTimeoutMs;
    if (this.#waiting.size >= maxQueue) {
      return Promise.reject(
        new EnclaveError('overloaded', `${maxQueue} calls are already waiting for this enclave (maxQueue): retry later, or spread calls over more enclaves.`),
      );
    }
    return new Promise((resolve, reject) => {
      const job: Queued = { run, resolve, reject, timer: undefined };
      job.timer = setTimeout(() => {
        this.#waiting.delete(job);
        reject(new EnclaveError('overloaded', `The call waited ${queueTimeoutMs} ms (queueTimeoutMs) behind earlier calls and never started: retry later.`));
      }, queueTimeoutMs);
      // A waiting call does not keep the process alive; the call in flight does (its worker is referenced).
      job.timer.unref();
      this.#waiting.add(job);
    });
  }

  #start(run: () => Promise<unknown>): Promise<unknown> {
    this.#busy = true;
    const result = run();
    // Registered before the caller's own reactions: the next call is handed over first.
    result.then(this.#next, this.#next);
    return result;
  }

  /** The call in flight has settled: start the oldest waiting one, if any. */
  readonly #next = (): void => {
    this.#busy = false;
    for (const job of this.#waiting) {
      this.#waiting.delete(job);
      clearTimeout(job.timer);
      this.#start(job.run).then(job.resolve, job.reject);
      return;
    }
  };
}
