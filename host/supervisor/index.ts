/**
 * The host supervisor's public surface (docs/ARCHITECTURE.md, "Inside host/supervisor/"): the
 * package root (host/index.ts) re-exports these names. Kept to what an embedder calls or reads
 * (the host, its states/events/defaults, the policy parser and its bounds); the internal tables
 * (transitions, breaker/retry codes, the MAX_* bounds, the policy's type guard and JSON Schema) stay
 * in their modules, named by docs/LIMITS.md and docs/EMBEDDING.md.
 * @example
 * import { EnclaveHost, HOST_STATES, parseAccessPolicy } from 'enclave';
 */
export { EnclaveHost, HOST_DEFAULTS } from './host.js';
export type { HostOptions, EnclaveSpec, HostCallOptions, UpgradeResult, HostStats, EnclaveStats } from './host.js';
export { HOST_STATES, HOST_EVENTS } from './states.js';
export type {
  HostState,
  HostEventName,
  HostEvents,
  HostListener,
  StateEvent,
  SwapEvent,
  SwapOutcome,
  IntegrityEvent,
  BreakerEvent,
  RestartEvent,
} from './states.js';
export type { UpgradeOptions } from './upgrade.js';
export { parseAccessPolicy, readAccessPolicy, ACCESS_POLICY_LIMITS } from './access.js';
export type { AccessPolicy, CallerPolicy, RateLimit, CallQuota } from './access.js';
export type { OpStats } from './observer.js';
