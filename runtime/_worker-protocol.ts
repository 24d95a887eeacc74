/**
 * What the host thread and an enclave worker agree on: the layout of the shared buffer that
 * carries every call, the states of its control word, and the few messages that go through
 * `postMessage` (start-up and logs only, never a call).
 *
 * ```
 *  SharedArrayBuffer, one per worker
 *  ┌──────────────── header: 64 bytes ─────────────────────────┬──────── data area ─────────┐
 *  │ i32: STATE OP LEN SETTLE SEQ SESSION_LEN · f64 at 40:      │ request bytes + session id, │
 *  │ CALL_FUEL, at 48: FUEL                                     │                             │
 *  │                                                            │ or reply bytes, or an error │
 *  │                                                            │ as JSON                     │
 *  └────────────────────────────────────────────────────────────┴─────────────────────────────┘
 *   0                                                         64    64 + max(request, reply, 4 KiB)
 *                                                                       + 1 KiB (session id)
 *
 *  host                                 worker (blocked in Atomics.wait while STATE != REQUEST)
 *   write request to data, OP, LEN,
 *   SETTLE; STATE = REQUEST; notify ──►  wakes; settles the previous call; runs the enclave
 *   Atomics.waitAsync(STATE, REQUEST,    writes reply (or error JSON) to data, LEN;
 *                     deadline)     ◄──  STATE = REPLY (or ERROR); notify
 *   reads data[0, LEN)
 *   on timeout: terminate the worker, reject with `timeout`
 *   on worker exit: the host itself sets STATE = DEAD and notifies its own waiter
 * ```
 */
import type { ErrorCode } from '../core/index.js';
import type { Limits } from './contract.js';
import type { EnclaveConfig, LogLevel } from './options.js';

/** Bytes before the data area; a multiple of 8 so the data area stays aligned. */
export const HEADER_BYTES = 64;

/** Indexes of the header's i32 slots. */
export const STATE = 0;
/** Index of the op in `Object.keys(contract.ops)`; both threads parse the same contract bytes. */
export const OP = 1;
/** Length of the bytes in the data area (request, then reply or error). */
export const LEN = 2;
/** What the host learned from the previous reply, applied by the worker before the next call. */
export const SETTLE = 3;
/** Call counter, for debugging a stuck protocol. */
export const SEQ = 4;
/** UTF-8 length of the call's session id, written right after the request bytes; -1 for none. */
export const SESSION_LEN = 5;
// The f64 slot at byte 48 is unused (it carried the fuel of the last call for `lastCall`, removed: a
// getter a concurrent call overwrites; each call's own fuel is CALL_FUEL_F64).
/** Index of the f64 slot (byte 40) where the worker leaves this call's own fuel (0 if it never entered), for `{ stats }`. */
export const CALL_FUEL_F64 = 5;

/** `OP` value of the one command that is not a call: `endSession(session)`; LEN answers 1 or 0. */
export const OP_END_SESSION = -1;
/** Room for a session id: `MAX_SESSION_ID` UTF-16 units are at most 3 UTF-8 bytes each. */
export const SESSION_BYTES = 1024;

/** Values of `STATE`. */
export const IDLE = 0;
export const REQUEST = 1;
export const REPLY = 2;
export const ERROR = 3;
/** Written by the host, never by the worker: the worker exited while a call was in flight. */
export const DEAD = 4;

/**
 * Values of `SETTLE`. The host opens the reply envelope, so only it knows whether the previous
 * call succeeded (its op then counts for `requires`) or returned something that is not an
 * envelope (the instance is then discarded, as in-process).
 */
export const SETTLE_NONE = 0;
export const SETTLE_OK = 1;
export const SETTLE_DISCARD = 2;

/**
 * How long the worker polls the state word after a reply before it sleeps in `Atomics.wait`, ms.
 * Bounded CPU (at most this much per call) for a hop without a thread wake-up on back-to-back calls.
 */
export const SPIN_MS = 0.05;

/** Room for an error crossing as JSON; messages are ours and `detail` is at most 256 bytes. */
export const ERROR_BYTES = 4096;

/** Size of the data area for an enclave's effective limits. */
export function dataBytes(limits: Limits): number {
  return Math.max(limits.requestBytes, limits.replyBytes, ERROR_BYTES) + SESSION_BYTES;
}

/** An error as it crosses threads (`EnclaveError.toJSON`). */
export interface ErrorJSON {
  code: ErrorCode;
  message: string;
  detail?: string;
}

/**
 * Host calls (runtime/_worker-hostcall.ts): the enclave in the worker asks the host thread for
 * what only it holds, the attestation provider, from inside a synchronous import (`seal_key`,
 * `report`). A second, small shared buffer, one per worker, allocated by the worker:
 *
 * ```
 *  ┌── header: 16 bytes ──────────┬──── data area: HOSTCALL_DATA_BYTES ────┐
 *  │ i32: HC_STATE HC_STATUS HC_LEN│ answer: key or token bytes, or an error │
 *  │                               │ code as UTF-8                           │
 *  └───────────────────────────────┴─────────────────────────────────────────┘
 *  worker: HC_STATE = seq; postMessage {type: 'hostcall', seq, ...}; Atomics.wait(HC_STATE, seq)
 *  host (idle in waitAsync, so the message is handled): runs the provider, writes data, HC_STATUS,
 *  HC_LEN, then HC_STATE: seq -> -seq (compareExchange: a stale or forged seq changes nothing); notify
 *  worker: on -seq reads the answer; on its own timeout takes HC_STATE back (seq -> 0) and fails
 * ```
 */
export const HC_STATE = 0;
/** {@link HC_OK}, or {@link HC_FAILED} with the platform error's code (or nothing) in the data area. */
export const HC_STATUS = 1;
export const HC_LEN = 2;
export const HC_OK = 0;
export const HC_FAILED = 1;
export const HOSTCALL_HEADER_BYTES = 16;
/** Room for an answer: a sealing key is 32 bytes, a token a few KiB. */
export const HOSTCALL_DATA_BYTES = 32 * 1024;
/** Longest report data or nonce a host call carries (REPORT_DATA_MAX_BYTES). */
export const HOSTCALL_MAX_INPUT = 64;

/** A host call as posted by the worker; the host checks every field before using it. */
export type HostCallMessage =
  | { readonly type: 'hostcall'; readonly sab: SharedArrayBuffer; readonly seq: number; readonly kind: 'seal'; readonly policy: string }
  | {
      readonly type: 'hostcall';
      readonly sab: SharedArrayBuffer;
      readonly seq: number;
      readonly kind: 'seal_at';
      readonly policy: string;
      readonly keyId: number;
      readonly svn: number | undefined;
    }
  | { readonly type: 'hostcall'; readonly sab: SharedArrayBuffer; readonly seq: number; readonly kind: 'counter_read'; readonly policy: string; readonly id: bigint }
  | {
      readonly type: 'hostcall';
      readonly sab: SharedArrayBuffer;
      readonly seq: number;
      readonly kind: 'counter_advance';
      readonly policy: string;
      readonly id: bigint;
      readonly expected: bigint;
      readonly tag: Uint8Array;
    }
  | {
      readonly type: 'hostcall';
      readonly sab: SharedArrayBuffer;
      readonly seq: number;
      readonly kind: 'evidence';
      readonly nonce: Uint8Array;
      readonly reportData: Uint8Array | undefined;
    };

/** Settled enclave options as they cross to a worker: the platform and `onLog` stay on the host thread. */
export type WorkerConfigData = Omit<EnclaveConfig, 'onLog' | 'attestation'>;

/** What the worker receives once, as `workerData`. */
export interface WorkerData {
  /** Set when the host holds an attestation provider: the worker's enclave gets a proxy to it. */
  readonly hostCall?: { readonly platform: string; readonly timeoutMs: number };
  /** `EnclaveModule[MODULE_PARTS]()`: the compiled module and what was read from it. */
  readonly parts: unknown;
  /** The enclave's options, settled on the host thread, without what cannot cross a thread. */
  readonly config: WorkerConfigData;
  /** Whether to send log lines back (the host has an `onLog`). */
  readonly forwardLogs: boolean;
}

/** Messages from the worker to the host. Calls never travel this way. */
export type WorkerMessage =
  | { readonly type: 'ready'; readonly sab: SharedArrayBuffer; readonly limits: Limits }
  | { readonly type: 'failed'; readonly error: ErrorJSON }
  | { readonly type: 'log'; readonly entries: readonly (readonly [LogLevel, string])[] }
  | HostCallMessage;
