/**
 * The host supervisor's public surface (docs/ARCHITECTURE.md, "Inside host/supervisor/"): the
 * package root (host/index.ts) re-exports these names.
 * @example
 * import { EnclaveHost, HOST_STATES, parseAccessPolicy } from 'enclave';
 */
export { EnclaveHost, HOST_DEFAULTS, MAX_HOST_SESSION, MAX_INSTANCES, MAX_ENCLAVES } from './host.js';
export type { HostOptions, EnclaveSpec, HostCallOptions, UpgradeResult, HostStats, EnclaveStats } from './host.js';
export { HOST_STATES, HOST_EVENTS, TRANSITIONS } from './states.js';
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
export { parseAccessPolicy, readAccessPolicy, isAccessPolicy, accessPolicyJsonSchema, ACCESS_POLICY_LIMITS } from './access.js';
export type { AccessPolicy, CallerPolicy, RateLimit, CallQuota } from './access.js';
export { BREAKER_FAILURE_CODES } from './breaker.js';
export { RETRY_CODES } from './retry.js';
export type { OpStats } from './observer.js';
