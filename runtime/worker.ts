/**
 * Worker isolation mode: one enclave per `worker_threads` worker, so a call can be given a
 * wall-clock deadline. A WebAssembly call on the host thread cannot be interrupted; a worker can
 * be terminated. Same API and error codes as the in-process {@link Enclave}.
 *
 * ```
 *  host thread                                   worker (own V8 isolate and heap, resourceLimits)
 *  WorkerEnclave.call(op, args)                   Enclave (the same class as in-process)
 *   op known? args shape? encode, size, depth      │
 *   bytes ──► SharedArrayBuffer ──notify──────────► [CALL_RAW]: requires, copy in, enclave_call,
 *   Atomics.waitAsync(deadline)                    │  bounds-check, size, msgpack check
 *   decode, open envelope ◄────────notify───────── reply bytes (or error JSON) ──► SharedArrayBuffer
 *   deadline passed: terminate the worker, `timeout`; the next call starts a fresh worker
 * ```
 *
 * The layout of the shared buffer and the protocol are in `_worker-protocol.ts`; starting a worker
 * and wiring its events in `_worker-spawn.ts`.
 */
import type { ModuleIdentity } from '../attest/index.js';
import { EnclaveError } from '../core/index.js';
import { issueEvidence, reportContextOf } from './capabilities/attest.js';
import type { Contract, Limits } from './contract.js';
import type { AnyOps, EnclaveHandle, OpsTypes, WithOps } from './handle.js';
import { compileOps, createPackr, decodeReply, encodeCall, NOT_ENVELOPE, opFor, type OpCall, type RequestEncoder } from './marshal.js';
import { MODULE_PARTS, settleFor, type EnclaveModule } from './module.js';
import { isSettledHost, readCallOptions, settleHostOptions, type CallOptions, type WorkerConfig, type WorkerStartOptions } from './options.js';
import type { EnclaveKeyJwk } from './platform.js';
import { isSessionId, MAX_SESSION_ID } from './state.js';
import {
  CALL_FUEL_F64,
  ERROR,
  LEN,
  OP,
  OP_END_SESSION,
  REPLY,
  REQUEST,
  SEQ,
  SESSION_LEN,
  SETTLE,
  SETTLE_DISCARD,
  SETTLE_NONE,
  SETTLE_OK,
  STATE,
} from './_worker-protocol.js';
import { callDiscarded, callEnded, callStarted, diagnosticsSource, discardsWatched, workerExited, type DiagnosticsSource } from './diagnostics.js';
import { CallQueue } from './_call-queue.js';
import { readError, spawn, wake, workerDeathMessage, type LiveWorker, type Settled } from './_worker-spawn.js';

export type { EnclaveHandle } from './handle.js';
export {
  DEFAULT_DEADLINE_MS,
  DEFAULT_MAX_QUEUE,
  DEFAULT_QUEUE_TIMEOUT_MS,
  DEFAULT_START_DEADLINE_MS,
  DEFAULT_WORKER_LIMITS,
} from './options.js';
export type { WorkerEnclaveOptions, WorkerResourceLimits, WorkerStartOptions } from './options.js';

/** Node 20 has `Atomics.waitAsync`; TypeScript's ES2022 lib does not declare it. */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      array: Int32Array,
      index: number,
      value: number,
      timeout?: number,
    ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
  }
).waitAsync;

/**
 * Settles a worker enclave's options on the host thread, with the settler of both modes
 * (runtime/options.ts): the worker gets the result, never the caller's options.
 */
function settle(mod: EnclaveModule, options: WorkerStartOptions, host: WorkerConfig | undefined): Settled {
  if (typeof options !== 'object' || options === null) {
    throw new EnclaveError('invalid_options', 'The options must be an object.');
  }
  if (options.isolation !== undefined && options.isolation !== 'worker') {
    throw new EnclaveError('invalid_options', "isolation must be 'worker' here.");
  }
  // Settled already when loadEnclave checked the options before compiling (and only then: a
  // look-alike handed to start() from JavaScript is settled again, never trusted).
  const worker = isSettledHost(host) ? host : settleHostOptions(options, 'worker')!;
  const { onLog, attestation: provider, ...config } = settleFor(mod.contract, options);
  // The platform holds keys and methods a structured clone would drop: it stays here, and the
  // worker's seal_key and report imports reach it through host calls (_worker-hostcall.ts). The
  // claims of its evidence come from the same settled options as in the worker.
  // A component's evidence also says how many core modules it has: the same count as the worker's.
  const parts = mod[MODULE_PARTS]();
  const attestation =
    provider === undefined ? undefined : Object.freeze({ provider, context: reportContextOf(mod.identity, config, parts.component?.modules.length) });
  return Object.freeze({ ...worker, parts, config, onLog, attestation });
}

/**
 * An enclave that runs in its own worker thread, with a wall-clock deadline per call. Created by
 * `loadEnclave(source, { isolation: 'worker' })` or {@link createWorkerEnclave}.
 *
 * Calls are queued and run one at a time. The queue is bounded: beyond `maxQueue` waiting calls,
 * or after `queueTimeoutMs` in the queue, a call fails with `overloaded` without having run (docs/LIMITS.md,
 * "Queue"). When a call passes its deadline, the worker is
 * terminated and the call fails with `timeout`; when the worker dies (for example its JS heap
 * exceeds `resourceLimits`), the call fails with `trap`. Either way the instance and its state are
 * lost, as after a trap in-process, and the next call starts a fresh worker.
 */
export class WorkerEnclave implements EnclaveHandle {
  readonly contract: Contract;
  /** SHA-256 of the module bytes without the signature section, hex. */
  readonly measurement: string;
  /** Measurement, svn and, when a trust policy admitted the module, its signer. */
  readonly identity: ModuleIdentity;
  /** The limits in force: the contract's, capped by the host policy. */
  readonly limits: Limits;
  readonly #settled: Settled;
  readonly #ops: ReadonlyMap<string, OpCall>;
  readonly #packr: RequestEncoder;
  #live: LiveWorker | undefined;
  #closed = false;
  /** Calls and endSessions: one in flight, the others waiting (runtime/_call-queue.ts). */
  readonly #queue: CallQueue;
  /** What the worker must apply before the next call (SETTLE_*). */
  #settle = SETTLE_NONE;
  #seq = 0;
  /** Plain memory the reply is copied into before decoding; grows to the largest reply seen. */
  #scratch = Buffer.allocUnsafe(4096);
  /** What this enclave's diagnostics events say about it (runtime/diagnostics.ts). */
  readonly #source: DiagnosticsSource;
  /** Workers this enclave terminated as untrustworthy (timeout, death), for `enclave:worker:exit`. */
  readonly #terminated = new WeakSet<LiveWorker>();
  /** Workers close() stopped, and a fresh one starting for a call: close() resolves once these have stopped. */
  readonly #stopping = new Set<Promise<unknown>>();
  #starting: Promise<unknown> | undefined;

  private constructor(mod: EnclaveModule, settled: Settled, first: LiveWorker, limits: Limits) {
    this.contract = mod.contract;
    this.measurement = mod.measurement;
    this.identity = mod.identity;
    this.limits = limits;
    this.#settled = settled;
    this.#queue = new CallQueue(settled.maxQueue, settled.queueTimeoutMs);
    this.#packr = createPackr();
    this.#ops = compileOps(mod.contract);
    this.#live = first;
    this.#source = diagnosticsSource(this, 'worker', mod.measurement, mod.contract.ops);
  }

  /**
   * @internal Use {@link createWorkerEnclave} or `loadEnclave`.
   * @param host - the worker options as `settleHostOptions` settled them, when the caller did.
   */
  static async start(mod: EnclaveModule, options: WorkerStartOptions, host?: WorkerConfig): Promise<WorkerEnclave> {
    const settled = settle(mod, options, host);
    let self: WorkerEnclave | undefined;
    // The worker's 'exit' event needs the enclave; the first worker starts before it exists.
    const { live, limits } = await spawn(settled, (l, exitCode) => {
      if (self !== undefined) self.#onExit(l, exitCode);
    });
    self = new WorkerEnclave(mod, settled, live, limits);
    return self;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Calls an operation and resolves with its `ok` value. Concurrent calls wait their turn.
   * @throws {EnclaveError} the codes of {@link Enclave.call}, `timeout` when the deadline passed, and
   *   `overloaded` when `maxQueue` calls already wait or this one waited `queueTimeoutMs` (it never ran).
   * @example
   * const enclave = await loadEnclave(bytes, { isolation: 'worker', deadlineMs: 500 });
   * await enclave.call('incr', { by: 2 });
   */
  call<T = unknown>(op: string, args?: unknown, options?: CallOptions): Promise<T> {
    // Observed (runtime/diagnostics.ts) only when someone listens: otherwise one check, nothing built.
    const observation = callStarted(this.#source, op);
    let read: ReturnType<typeof readCallOptions>;
    try {
      read = readCallOptions(options);
    } catch (err) {
      callEnded(observation, err, 0);
      return Promise.reject(err);
    }
    const { session, stats } = read;
    if (observation === undefined) {
      const unobserved = this.#queue.enqueue(() => this.#call(op, args, session, stats));
      // Only discards listened to: its failure is looked at, as it settles (before the caller's reactions).
      if (discardsWatched()) unobserved.then(undefined, (err: unknown) => callDiscarded(this.#source, err));
      return unobserved as Promise<T>;
    }
    // The call's own fuel, kept apart from the caller's `stats` (whose setter is the caller's code).
    const record = { fuel: 0 };
    const result = this.#queue.enqueue(() => this.#call(op, args, session, stats, record));
    // Registered before the caller's reactions: the end is published as the call settles.
    result.then(
      () => callEnded(observation, undefined, record.fuel),
      (err: unknown) => callEnded(observation, err, record.fuel),
    );
    return result as Promise<T>;
  }

  /**
   * `per-session`: drops a session's instance and its memory now (as `Enclave.endSession`), after
   * the calls queued before it. Resolves with whether the session existed.
   */
  endSession(session: string): Promise<boolean> {
    return this.#queue.enqueue(async () => {
      const live = this.#live;
      // No worker (closed, or replaced after a timeout): no session survives.
      if (this.#closed || live === undefined || !isSessionId(session)) return false;
      const state = await this.#hop(live, OP_END_SESSION, 0, session);
      if (state === REPLY) return live.ctl[LEN] === 1;
      if (state === ERROR) throw readError(live.data, live.ctl[LEN]!);
      throw this.#lost(live, state, 'endSession');
    }) as Promise<boolean>;
  }

  /**
   * Signed evidence about this enclave for a relying party, bound to its nonce, as
   * `Enclave.attest`: issued on this thread by the provider, with the same claims.
   * @throws {EnclaveError} (as a rejection) `invalid_options` without an attestation provider, `closed`.
   * @throws {AttestationError} (as a rejection) `invalid_nonce`, `invalid_evidence_request`, `platform_unavailable`.
   * @example
   * const token = await enclave.attest(nonceFromRelyingParty);
   */
  attest(nonce: Uint8Array, options?: { enclaveKey?: EnclaveKeyJwk }): Promise<string> {
    const attestation = this.#settled.attestation;
    return issueEvidence(this.#closed, attestation?.provider, () => attestation!.context, nonce, options);
  }

  /**
   * Resolves when every call and endSession accepted before it has settled (answered, refused,
   * timed out or closed). Never rejects.
   * @example
   * void enclave.call('work'); await enclave.drain(); // 'work' has settled
   */
  drain(): Promise<void> {
    return this.#queue.drain();
  }

  /**
   * Terminates the worker; a call in flight and every later call fail with `closed`. Resolves
   * when the worker has stopped. Idempotent.
   */
  async close(): Promise<void> {
    this.#closed = true;
    // Waiting calls settle now, as after close (`closed`; endSession: false), not after the one in flight.
    this.#queue.close();
    const live = this.#live;
    this.#live = undefined;
    if (live !== undefined) {
      wake(live);
      this.#stop(live);
    }
    // A second close(), or one made while a call starts a fresh worker (which #call stops once it
    // has started, or which failed to start), resolves only when that worker has stopped too.
    await this.#starting?.catch(() => undefined);
    await Promise.all(this.#stopping);
  }

  /** Terminates the enclave's worker on close; every close() waits for it. */
  #stop(live: LiveWorker): void {
    const stopped = live.worker.terminate().catch(() => undefined);
    this.#stopping.add(stopped);
    void stopped.then(() => this.#stopping.delete(stopped));
  }

  async #call(
    op: string,
    args: unknown,
    session: string | undefined,
    stats: { fuel: number } | undefined,
    record?: { fuel: number },
  ): Promise<unknown> {
    if (this.#closed) throw new EnclaveError('closed');
    // Caller-side checks, on this thread before the hop, exactly as in-process. `requires` is
    // checked by the worker's Enclave, which owns the instance and knows when it was replaced.
    const spec = opFor(this.#ops, this.contract.name, op);
    let request = encodeCall(this.#packr, op, spec.frame, spec.check, args, this.limits);
    if (session !== undefined && !isSessionId(session)) {
      // Whatever the state policy, in-process refuses these with invalid_options too.
      throw new EnclaveError('invalid_options', `A session id must be a well-formed string of 1..${MAX_SESSION_ID} characters.`);
    }

    let live = this.#live;
    if (live === undefined) {
      // The previous worker timed out or died: start a fresh one. The encoded request lies in this
      // enclave's encoder buffer, which its next encode overwrites: keep a copy across the wait,
      // or another call's request would be sent here.
      const saved = Buffer.from(request.buffer.subarray(request.start, request.end));
      request = { buffer: saved, start: 0, end: saved.length };
      const starting = spawn(this.#settled, (l, exitCode) => this.#onExit(l, exitCode));
      this.#starting = starting;
      let started: Awaited<typeof starting>;
      try {
        started = await starting;
      } finally {
        if (this.#starting === starting) this.#starting = undefined;
      }
      if (this.#closed) {
        this.#stop(started.live);
        throw new EnclaveError('closed');
      }
      live = this.#live = started.live;
      this.#settle = SETTLE_NONE;
    }

    request.buffer.copy(live.data, 0, request.start, request.end);
    const state = await this.#hop(live, spec.index, request.end - request.start, session);
    // The worker's figure for this call, read before the next call can use the buffer.
    if (record !== undefined && (state === REPLY || state === ERROR)) record.fuel = live.f64[CALL_FUEL_F64]!;
    if (stats !== undefined && (state === REPLY || state === ERROR)) {
      try {
        stats.fuel = live.f64[CALL_FUEL_F64]!;
      } catch {
        // The caller's setter threw: the call ran, and its reply (and whether the instance is
        // discarded) must not be lost to it.
      }
    }
    if (state === REPLY) return this.#openReply(live.data, live.ctl[LEN]!);
    if (state === ERROR) throw readError(live.data, live.ctl[LEN]!);
    throw this.#lost(live, state, `The call to "${op}"`);
  }

  /**
   * Hands the request already in the data area to the worker and waits, without blocking this
   * thread, for its answer or the deadline. Returns the final state: REPLY or ERROR (answered),
   * REQUEST (deadline passed) or DEAD (the worker exited). Throws `closed` if closed meanwhile.
   */
  async #hop(live: LiveWorker, op: number, len: number, session: string | undefined): Promise<number> {
    const { ctl, data } = live;
    ctl[OP] = op;
    ctl[LEN] = len;
    ctl[SESSION_LEN] = session === undefined ? -1 : data.write(session, len, 'utf8');
    // The settlement of the previous call travels with the next call, the only command that applies
    // it (CALL_RAW); endSession leaves it pending, or what the previous call taught would be lost.
    if (op === OP_END_SESSION) {
      ctl[SETTLE] = SETTLE_NONE;
    } else {
      ctl[SETTLE] = this.#settle;
      this.#settle = SETTLE_NONE;
    }
    ctl[SEQ] = ++this.#seq;
    // A new call: its host calls are counted afresh (the per-call bounds, kept on this thread too).
    live.hostCalls.used.clear();
    Atomics.store(ctl, STATE, REQUEST);
    Atomics.notify(ctl, STATE);

    // A pending waitAsync does not keep the event loop alive; the worker does while referenced.
    live.worker.ref();
    // A wake-up is not an answer: re-wait until the state changes or the deadline has really
    // passed (a notify can arrive while the state is still REQUEST).
    const deadline = performance.now() + this.#settled.deadlineMs;
    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0 || Atomics.load(ctl, STATE) !== REQUEST) break;
      const waiting = waitAsync(ctl, STATE, REQUEST, left);
      if (waiting.async) await waiting.value;
    }
    live.worker.unref();

    const state = Atomics.load(ctl, STATE);
    if (this.#closed) throw new EnclaveError('closed');
    return state;
  }

  /** The error for a call whose worker timed out (state REQUEST) or died (DEAD); replaces it. */
  #lost(live: LiveWorker, state: number, what: string): EnclaveError {
    this.#replace(live);
    if (state === REQUEST) {
      return new EnclaveError(
        'timeout',
        `${what} did not finish within ${this.#settled.deadlineMs} ms; its worker was terminated and the next call gets a fresh instance.`,
      );
    }
    // A worker stopped for breaking the protocol (_worker-spawn.ts) is not the enclave trapping.
    if (live.fault !== undefined) return live.fault;
    return new EnclaveError('trap', workerDeathMessage(live.death), { cause: live.death });
  }

  #openReply(data: Buffer, len: number): unknown {
    if (!(len >= 0 && len <= data.length)) {
      this.#settle = SETTLE_DISCARD;
      throw new EnclaveError('bad_reply', 'The enclave reply length is out of range.');
    }
    // One bulk copy out of the shared buffer first: V8 reads a SharedArrayBuffer element by element
    // (racy memory), so decoding straight from it costs about 5x decoding from plain memory.
    let scratch = this.#scratch;
    if (scratch.length < len) scratch = this.#scratch = Buffer.allocUnsafe(Math.max(len, scratch.length * 2));
    scratch.set(data.subarray(0, len), 0);
    // The worker checked the size of these bytes before copying them here, and nothing writes the
    // data area until the next request. decodeReply checks their msgpack (depth, keys, item count)
    // here, on the host thread, before msgpackr builds anything; bins are copied out, so nothing
    // decoded aliases the scratch buffer.
    let value: unknown;
    try {
      value = decodeReply(scratch, 0, len, this.limits);
    } catch (err) {
      // An enclave error reply leaves the instance as it is; a reply we cannot read does not.
      this.#settle = (err as EnclaveError).code === 'bad_reply' ? SETTLE_DISCARD : SETTLE_NONE;
      throw err;
    }
    if (value === NOT_ENVELOPE) {
      this.#settle = SETTLE_DISCARD;
      throw new EnclaveError('bad_reply', 'The enclave reply is neither {ok} nor {err}.');
    }
    this.#settle = SETTLE_OK;
    return value;
  }

  /** Terminates a worker that can no longer be trusted; the next call starts a fresh one. */
  #replace(live: LiveWorker): void {
    if (this.#live === live) this.#live = undefined;
    this.#settle = SETTLE_NONE;
    this.#terminated.add(live);
    // Not awaited by close(): a worker in a long bulk memory operation can take seconds to stop
    // after terminate() (unmetered modules), and it no longer serves this enclave.
    void live.worker.terminate().catch(() => undefined);
  }

  #onExit(live: LiveWorker, exitCode: number): void {
    if (this.#live === live) this.#live = undefined;
    workerExited(this.#source, exitCode, this.#terminated.has(live) ? 'terminated' : this.#closed ? 'close' : 'died', live.death);
  }
}

/**
 * Starts an enclave in its own worker from a compiled module.
 * @throws {EnclaveError} the load-time codes of `EnclaveModule.create` (`capability_denied`,
 *   `memory_limit`, `unsupported_abi`, `invalid_options`, `trap`, `stack_overflow`,
 *   `fuel_exhausted`), and `timeout` when the worker does not start within `startDeadlineMs`.
 * @example
 * const mod = await compileEnclave(bytes);
 * const a = await createWorkerEnclave(mod, { deadlineMs: 200 });
 */
export function createWorkerEnclave<Ops extends OpsTypes<Ops> = AnyOps>(
  mod: EnclaveModule,
  options: WorkerStartOptions = {},
): Promise<WithOps<WorkerEnclave, Ops>> {
  // Types only: `Ops` narrows what the type checker lets a caller pass; the contract's check runs anyway.
  return WorkerEnclave.start(mod, options) as Promise<WithOps<WorkerEnclave, Ops>>;
}
