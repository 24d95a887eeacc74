/**
 * The capability imports (docs/ABI.md §3), one module each. Adding a capability: one new file in
 * this folder and one line in {@link CAPABILITY_MODULES} (and its name in `CAPABILITIES` of
 * runtime/contract.ts, which this list is checked against when the runtime loads).
 */
import { CAPABILITIES, type Capability } from '../contract.js';
import type { EnclaveOptions } from '../options.js';
import type { CapabilityModule, HostCallAnswer, ImportContext } from './_capability.js';
import { attest } from './attest.js';
import { clock } from './clock.js';
import { log } from './log.js';
import { random } from './random.js';
import { seal } from './seal.js';

export type { CapabilityModule, Crossing, HostCallAnswer, HostCallRoom, ImportContext } from './_capability.js';

/** Every capability, in the order of `CAPABILITIES`. */
export const CAPABILITY_MODULES: readonly CapabilityModule[] = Object.freeze([random, clock, log, seal, attest]);

// The contract's list and this one must name the same capabilities, in the same order.
if (CAPABILITY_MODULES.map((c) => c.name).join() !== CAPABILITIES.join()) {
  throw new Error(`runtime/capabilities: the modules (${CAPABILITY_MODULES.map((c) => c.name).join()}) and CAPABILITIES (${CAPABILITIES.join()}) differ.`);
}

/** A capability's module by the name of its import. */
export const CAPABILITY_BY_IMPORT: Readonly<Record<string, CapabilityModule>> = Object.freeze(
  Object.fromEntries(CAPABILITY_MODULES.map((c) => [c.importName, c])),
);

const BY_NAME: ReadonlyMap<string, CapabilityModule> = new Map(CAPABILITY_MODULES.map((c) => [c.name, c]));

/** @internal The host sides of the host-call capabilities, by message kind (runtime/_worker-hostcall.ts). */
export const HOST_CALLS: ReadonlyMap<string, HostCallAnswer> = new Map(
  CAPABILITY_MODULES.flatMap((c) => (c.hostCall === undefined ? [] : [[c.hostCall.kind, c.hostCall] as const])),
);

/**
 * A capability's grant rule (runtime/options.ts calls it for every capability granted).
 * @throws {EnclaveError} `invalid_options` when the options cannot serve it.
 */
export function checkGrant(capability: Capability, options: EnclaveOptions): void {
  BY_NAME.get(capability)?.grant?.(options);
}

/**
 * The imports of the granted capabilities for one instance, by import name: what
 * `new WebAssembly.Instance` gets under `enclave`. A capability that cannot serve this instance
 * (no platform) is left out, and the instance then fails to link if the module imports it.
 */
export function importsFor(granted: ReadonlySet<Capability>, ctx: ImportContext): Record<string, (...args: never[]) => unknown> {
  const env: Record<string, (...args: never[]) => unknown> = {};
  for (const capability of CAPABILITY_MODULES) {
    if (!granted.has(capability.name)) continue;
    const fn = capability.implement(ctx);
    if (fn !== undefined) env[capability.importName] = fn;
  }
  return env;
}
