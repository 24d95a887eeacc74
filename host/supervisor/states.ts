/**
 * The lifecycle of an enclave the host runs, and the events the host emits, each declared once
 * here: the states with the transitions allowed between them, and the event names with what each
 * carries. The host (host/supervisor/host.ts) moves an enclave only along {@link TRANSITIONS} and
 * refuses a listener for a name not in {@link HOST_EVENTS}.
 *
 * ```
 *  start() ─► starting ──self-check ok──► ready ──stop()──► draining ──drained──► stopped
 *                │                          │                   │                   ▲
 *                └──── start failed ──► failed ◄── integrity mismatch / unrecoverable pool
 *                                         │                                         │
 *                                         └──────────────── stop() ─────────────────┘
 *  stopped or failed ── start() again ──► starting
 * ```
 *
 * What an event never carries: payloads (arguments, replies, enclave log lines or error details)
 * and caller ids. Only enclave names the host started, measurements, states and stable codes.
 */
import { EnclaveError, type ErrorCode } from '../../runtime/index.js';

/**
 * Every state an enclave of the host can be in, in lifecycle order.
 * @example
 * HOST_STATES.includes(host.state('signer')!); // true for an enclave the host knows
 */
export const HOST_STATES = Object.freeze(['starting', 'ready', 'draining', 'stopped', 'failed'] as const);

/** A state of {@link HOST_STATES}. */
export type HostState = (typeof HOST_STATES)[number];

/**
 * The transitions allowed, from each state to the states it may go to. `draining → failed`: an
 * integrity mismatch takes a draining enclave out at once; `failed → stopped`: `stop()` on a failed
 * enclave releases its name; `stopped`/`failed → starting`: a name is started again.
 * @example
 * TRANSITIONS.get('ready')!.has('draining'); // true
 */
export const TRANSITIONS: ReadonlyMap<HostState, ReadonlySet<HostState>> = new Map<HostState, ReadonlySet<HostState>>([
  ['starting', new Set<HostState>(['ready', 'failed'])],
  ['ready', new Set<HostState>(['draining', 'failed'])],
  ['draining', new Set<HostState>(['stopped', 'failed'])],
  ['stopped', new Set<HostState>(['starting'])],
  ['failed', new Set<HostState>(['stopped', 'starting'])],
]);

/**
 * Refuses a transition the lifecycle does not allow: a bug in the host, never a caller's doing.
 * @throws {EnclaveError} `internal` naming both states.
 * @example
 * checkTransition('ready', 'draining'); // fine
 * checkTransition('stopped', 'ready');  // throws `internal`
 */
export function checkTransition(from: HostState, to: HostState): void {
  if (TRANSITIONS.get(from)?.has(to) !== true) {
    throw new EnclaveError('internal', `The host moved an enclave from "${from}" to "${to}", which its lifecycle does not allow.`);
  }
}

/**
 * Every event name the host emits; `on`, `once` and `off` refuse any other.
 * @example
 * host.on('swap', (e) => console.log(e.enclave, e.from, '→', e.to, e.outcome));
 */
export const HOST_EVENTS = Object.freeze(['state', 'swap', 'integrity', 'breaker', 'restart'] as const);

/** An event name of {@link HOST_EVENTS}. */
export type HostEventName = (typeof HOST_EVENTS)[number];

/** `state`: an enclave changed state. */
export interface StateEvent {
  readonly enclave: string;
  /** Undefined for the first `starting` of a name. */
  readonly from: HostState | undefined;
  readonly to: HostState;
  /** Why, when it is not the plain lifecycle: an error code (`failed`) or `integrity`. */
  readonly reason?: string;
}

/** How an upgrade ended: see `EnclaveHost.upgrade`. */
export type SwapOutcome = 'switched' | 'promoted' | 'rolled-back' | 'refused';

/** `swap`: an upgrade switched, promoted, rolled back or was refused; both measurements always. */
export interface SwapEvent {
  readonly enclave: string;
  readonly strategy: 'blue-green' | 'canary';
  /** Measurement of the version serving before. */
  readonly from: string;
  /** Measurement of the version offered. */
  readonly to: string;
  readonly outcome: SwapOutcome;
  /** Why it was refused or rolled back: an error code, `error_rate`, `timeout` or `stopped`. */
  readonly reason?: string;
}

/** `integrity`: the bytes an enclave runs no longer hash to the measurement it attested. */
export interface IntegrityEvent {
  readonly enclave: string;
  readonly expected: string;
  readonly found: string;
  /** `memory`: the module's own copy of its bytes; `file`: the file it was started from. */
  readonly where: 'memory' | 'file';
}

/** `breaker`: an enclave's circuit breaker changed state. */
export interface BreakerEvent {
  readonly enclave: string;
  readonly state: 'open' | 'half-open' | 'closed';
}

/** `restart`: an instance of an enclave was discarded and replaced. */
export interface RestartEvent {
  readonly enclave: string;
  /** The error code that discarded the instance (`trap`, `timeout`, ...) or the pool's reason. */
  readonly reason: ErrorCode | string;
}

/** What each event's listener receives. */
export interface HostEvents {
  state: StateEvent;
  swap: SwapEvent;
  integrity: IntegrityEvent;
  breaker: BreakerEvent;
  restart: RestartEvent;
}

/** A listener of event `E`. What it throws or rejects is logged by the host and goes no further. */
export type HostListener<E extends HostEventName> = (event: HostEvents[E]) => unknown;
