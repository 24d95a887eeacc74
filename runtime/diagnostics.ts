/**
 * Observation points: the runtime publishes what happens to an enclave on `node:diagnostics_channel`
 * (as undici does in `lib/core/diagnostics.js`), so a supervisor, metrics or traces can listen
 * without the runtime importing any of them.
 *
 * ```
 *  call(op, args) ──► enclave:call:start  { enclave, mode, measurement, call, op }
 *        │ runs (worker mode: queued, handed over, deadline)
 *        ├─ a code that discards the instance ──► enclave:instance:discard { ..., call, code }
 *        ▼
 *  settled ─────────► enclave:call:end    { ..., call, op, ok, code, fuel, durationMs }
 *  worker mode: a worker ends (close, timeout, died) ──► enclave:worker:exit { ..., exitCode, reason, error }
 * ```
 *
 * What is never on a channel: payloads. No arguments, replies, log lines, error messages or
 * details (an enclave writes those), session ids (a caller may use a user or tenant id as one),
 * and an op name only when it is one the contract declares (an unknown one is caller input).
 *
 * Messages are built only when a channel has subscribers: with nobody listening a call costs one
 * `hasSubscribers` read per channel, no allocation and no clock read; with only
 * `enclave:instance:discard` listened to, the same until a call fails. The clock is read (twice a
 * call) only for `enclave:call:end`'s `durationMs`. Subscribers run
 * synchronously on the thread of the host that owns the enclave (in worker mode, the host thread,
 * never the worker), after the enclave has returned: a subscriber never runs inside a call. A
 * subscriber that throws does not reach the caller (diagnostics_channel reports it on
 * `process.nextTick` as an uncaught exception, as for any subscriber).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { DISCARDING_CODES, EnclaveError, type ErrorCode } from '../core/index.js';

/**
 * Every channel the runtime publishes on, declared once (what each carries: this file's header).
 * @example
 * import { subscribe } from 'node:diagnostics_channel';
 * import { DIAGNOSTICS_CHANNELS, type CallEndMessage } from 'enclave';
 * subscribe(DIAGNOSTICS_CHANNELS.callEnd, (message) => {
 *   const { op, code, fuel, durationMs } = message as CallEndMessage;
 *   histogram.record(durationMs, { op, code: code ?? 'ok' });
 * });
 */
export const DIAGNOSTICS_CHANNELS = Object.freeze({
  callStart: 'enclave:call:start',
  callEnd: 'enclave:call:end',
  instanceDiscard: 'enclave:instance:discard',
  workerExit: 'enclave:worker:exit',
} as const);

/** A channel name of {@link DIAGNOSTICS_CHANNELS}. */
export type DiagnosticsChannelName = (typeof DIAGNOSTICS_CHANNELS)[keyof typeof DIAGNOSTICS_CHANNELS];

/** The isolation mode of the enclave an event is about. */
export type IsolationMode = 'in-process' | 'worker';

/** Fields every message carries: which enclave. */
export interface EnclaveEventBase {
  /** Process-unique id of the enclave handle (1, 2, ...); {@link diagnosticsIdOf} gives a handle's. */
  readonly enclave: number;
  readonly mode: IsolationMode;
  /** The module's measurement (SHA-256, hex), as `enclave.measurement`. */
  readonly measurement: string;
}

/** `enclave:call:start`: a call was made (before any check; in worker mode, before it queues). */
export interface CallStartMessage extends EnclaveEventBase {
  /** Process-unique id of the call, the same in its `enclave:call:end`. */
  readonly call: number;
  /** The op, when the contract declares it; `undefined` for any other value the caller passed. */
  readonly op: string | undefined;
}

/** `enclave:call:end`: the call settled. */
export interface CallEndMessage extends CallStartMessage {
  readonly ok: boolean;
  /** The stable code the call failed with (`EnclaveError.code`); `undefined` when `ok`. */
  readonly code: ErrorCode | undefined;
  /** Fuel the call used, as its `{ stats }` option reports (0 when it never entered the enclave). */
  readonly fuel: number;
  /** Wall-clock time from `call()` to settling, ms (in worker mode it includes the time queued). */
  readonly durationMs: number;
}

/** `enclave:instance:discard`: a call ended in a code that discards the instance (the next call gets a fresh one). */
export interface InstanceDiscardMessage extends EnclaveEventBase {
  /** The call that caused it. */
  readonly call: number;
  /** Why: `trap`, `stack_overflow`, `fuel_exhausted`, `bad_reply` or `timeout`. */
  readonly code: ErrorCode;
}

/** Why an enclave's worker ended. */
export type WorkerExitReason =
  /** `close()` terminated it. */
  | 'close'
  /** The host terminated it: a call passed its deadline (`timeout`), or its worker can no longer be trusted. */
  | 'terminated'
  /** It stopped by itself: out of memory (`resourceLimits`), or a crash. */
  | 'died';

/**
 * `enclave:worker:exit`: a worker of an enclave in worker mode ended. Not published for a worker
 * that stops before its enclave exists (the load, or the call that started a fresh worker, fails
 * with its code instead).
 */
export interface WorkerExitMessage extends EnclaveEventBase {
  readonly mode: 'worker';
  /** The worker's exit code (`Worker` 'exit' event). */
  readonly exitCode: number;
  readonly reason: WorkerExitReason;
  /** Node's error code when it died of an error (`ERR_WORKER_OUT_OF_MEMORY`); never a message. */
  readonly error: string | undefined;
}

/** The message type of each channel. */
export interface DiagnosticsMessages {
  'enclave:call:start': CallStartMessage;
  'enclave:call:end': CallEndMessage;
  'enclave:instance:discard': InstanceDiscardMessage;
  'enclave:worker:exit': WorkerExitMessage;
}

// Messages are plain literals of one shape each, never spreads: a message built by spreading the
// base fields then adding more cost about 15 us per call end (measured, Node 20), a literal 0.1 us.

// Acquired once, at load: `channel()` by name on every call would cost a map lookup (Node docs).
const callStart = diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.callStart);
const callEnd = diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.callEnd);
const instanceDiscard = diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.instanceDiscard);
const workerExit = diagnosticsChannel.channel(DIAGNOSTICS_CHANNELS.workerExit);

let nextEnclave = 0;
let nextCall = 0;
const ids = new WeakMap<object, number>();

/**
 * The id a handle's events carry in `enclave`, to tell its events from others'.
 * @returns undefined for an object that is not an enclave handle.
 * @example
 * import { subscribe } from 'node:diagnostics_channel';
 * const id = diagnosticsIdOf(enclave);
 * subscribe('enclave:call:end', (m) => { if ((m as CallEndMessage).enclave === id) record(m); });
 */
export function diagnosticsIdOf(handle: object): number | undefined {
  return ids.get(handle);
}

/**
 * @internal What an enclave's events say about it, made once per handle (in worker mode, on the
 * host thread: the worker's own Enclave publishes into its thread, where nobody listens).
 */
export interface DiagnosticsSource extends EnclaveEventBase {
  /** The contract's op names: only these are published. */
  readonly ops: object;
}

/** @internal Registers a handle and describes it for its events. */
export function diagnosticsSource(handle: object, mode: IsolationMode, measurement: string, ops: object): DiagnosticsSource {
  const enclave = ++nextEnclave;
  ids.set(handle, enclave);
  return Object.freeze({ enclave, mode, measurement, ops });
}

/** @internal One observed call; `undefined` when nobody listened to its start or end. */
export interface CallObservation {
  readonly source: DiagnosticsSource;
  readonly call: number;
  readonly op: string | undefined;
  /** performance.now() at the start; NaN when nobody listened to `enclave:call:end` then (no clock read, no end published). */
  readonly startedAt: number;
}

/**
 * @internal At the start of `call()`: publishes `enclave:call:start` and returns what its end
 * needs, or undefined (nothing allocated, no clock read) when neither `enclave:call:start` nor
 * `enclave:call:end` has subscribers. A call that started before anyone listened to its end
 * publishes no end. With only `enclave:instance:discard` listened to (a supervisor that counts
 * calls itself and wants only restarts), a call costs nothing until it fails: see
 * {@link discardsWatched} and {@link callDiscarded}.
 */
export function callStarted(source: DiagnosticsSource, op: unknown): CallObservation | undefined {
  const ends = callEnd.hasSubscribers;
  if (!ends && !callStart.hasSubscribers) return undefined;
  const observation: CallObservation = {
    source,
    call: ++nextCall,
    // Only a declared op: any other string is caller input, perhaps not meant for a log.
    op: typeof op === 'string' && Object.prototype.hasOwnProperty.call(source.ops, op) ? op : undefined,
    // The clock only for a duration someone will read: a read costs 50-120 ns on the VMs measured.
    startedAt: ends ? performance.now() : Number.NaN,
  };
  if (callStart.hasSubscribers) {
    const message: CallStartMessage = { enclave: source.enclave, mode: source.mode, measurement: source.measurement, call: observation.call, op: observation.op };
    callStart.publish(message);
  }
  return observation;
}

/**
 * @internal Whether a call that {@link callStarted} did not observe must still have its failure
 * looked at: someone listens to `enclave:instance:discard`.
 */
export function discardsWatched(): boolean {
  return instanceDiscard.hasSubscribers;
}

/**
 * @internal A call that was not observed (nobody listened to its start or end) failed with
 * `error`: publishes `enclave:instance:discard` if its code discards the instance. Its `call` id
 * is a fresh one (no `enclave:call:start` carried one).
 */
export function callDiscarded(source: DiagnosticsSource, error: unknown): void {
  publishDiscard(source, ++nextCall, error instanceof EnclaveError ? error.code : 'internal');
}

/** Publishes `enclave:instance:discard` for a call that failed with `code`, if the code discards and anyone listens. */
function publishDiscard(source: DiagnosticsSource, call: number, code: ErrorCode): void {
  if (!DISCARDING_CODES.has(code) || !instanceDiscard.hasSubscribers) return;
  const message: InstanceDiscardMessage = { enclave: source.enclave, mode: source.mode, measurement: source.measurement, call, code };
  instanceDiscard.publish(message);
}

/**
 * @internal When the call settles: publishes `enclave:instance:discard` if its code discards the
 * instance (DISCARDING_CODES, in both modes), then `enclave:call:end`. `error` is what the call
 * rejected with (undefined on success).
 */
export function callEnded(observation: CallObservation | undefined, error: unknown, fuel: number): void {
  if (observation === undefined) return;
  const { source } = observation;
  const code = error === undefined ? undefined : error instanceof EnclaveError ? error.code : 'internal';
  if (code !== undefined) publishDiscard(source, observation.call, code);
  if (callEnd.hasSubscribers && !Number.isNaN(observation.startedAt)) {
    const message: CallEndMessage = {
      enclave: source.enclave,
      mode: source.mode,
      measurement: source.measurement,
      call: observation.call,
      op: observation.op,
      ok: error === undefined,
      code,
      fuel: Number.isFinite(fuel) ? fuel : 0,
      durationMs: performance.now() - observation.startedAt,
    };
    callEnd.publish(message);
  }
}

/** @internal A worker of the enclave ended: publishes `enclave:worker:exit` if anyone listens. */
export function workerExited(source: DiagnosticsSource, exitCode: number, reason: WorkerExitReason, error: unknown): void {
  if (!workerExit.hasSubscribers) return;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message: WorkerExitMessage = {
    enclave: source.enclave,
    mode: 'worker',
    measurement: source.measurement,
    exitCode,
    reason,
    error: typeof code === 'string' ? code : undefined,
  };
  workerExit.publish(message);
}
