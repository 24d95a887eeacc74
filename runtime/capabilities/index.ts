/**
 * The capability imports (docs/ABI.md §3), one module each. Adding a capability: one new file in
 * this folder and one line in {@link CAPABILITY_MODULES}; the names a contract may declare
 * ({@link CAPABILITIES}) and the type {@link Capability} are read from that list.
 */
import type { FuncType } from '../../core/index.js';
import type { CapabilityModule, GrantOptions, HostCallAnswer, ImportContext } from './_capability.js';
import { attest } from './attest.js';
import { clock } from './clock.js';
import { counter } from './counter.js';
import { log } from './log.js';
import { random } from './random.js';
import { seal } from './seal.js';

export type { CapabilityImport, CapabilityModule, Crossing, GrantOptions, HostCallAnswer, HostCallRoom, ImportContext } from './_capability.js';

/** Every capability, in the order of docs/ABI.md §3 (the order of {@link CAPABILITIES}). */
export const CAPABILITY_MODULES = Object.freeze([random, clock, log, seal, counter, attest] as const);

/** A capability an enclave may declare and a host may grant: the name of one of {@link CAPABILITY_MODULES}. */
export type Capability = (typeof CAPABILITY_MODULES)[number]['name'];

/**
 * The capabilities an enclave may declare (docs/ABI.md §3), in the order of
 * {@link CAPABILITY_MODULES}, from whose names it is made.
 * @example
 * ```ts
 * CAPABILITIES.includes('random'); // true
 * ```
 */
export const CAPABILITIES: NamesOf<typeof CAPABILITY_MODULES> =
  // map() types its result as an array; what it holds is the tuple: one literal per module, in order.
  Object.freeze(CAPABILITY_MODULES.map((c) => c.name)) as unknown as NamesOf<typeof CAPABILITY_MODULES>;

/** The names of a tuple of capability modules, as a tuple of literals. */
type NamesOf<T extends readonly CapabilityModule[]> = { readonly [I in keyof T]: T[I] extends CapabilityModule<infer Name> ? Name : never };

/** An import's capability and WebAssembly type, by the name of the import. */
export const CAPABILITY_BY_IMPORT: Readonly<Record<string, { readonly capability: Capability; readonly type: FuncType }>> = Object.freeze(
  Object.fromEntries(CAPABILITY_MODULES.flatMap((c) => c.imports.map((i) => [i.name, Object.freeze({ capability: c.name, type: i.type })]))),
);

const BY_NAME: ReadonlyMap<string, CapabilityModule<Capability>> = new Map(CAPABILITY_MODULES.map((c) => [c.name, c]));

/** @internal The host sides of the host-call capabilities, by message kind (runtime/_worker-hostcall.ts). */
export const HOST_CALLS: ReadonlyMap<string, HostCallAnswer> = new Map(
  CAPABILITY_MODULES.flatMap((c) => c.imports.flatMap((i) => (i.hostCall === undefined ? [] : [[i.hostCall.kind, i.hostCall] as const]))),
);

/** @internal The capability each host-call kind belongs to: the host answers only those it granted. */
export const HOST_CALL_CAPABILITY: ReadonlyMap<string, Capability> = new Map(
  CAPABILITY_MODULES.flatMap((c) => c.imports.flatMap((i) => (i.hostCall === undefined ? [] : [[i.hostCall.kind, c.name] as const]))),
);

/**
 * A capability's grant rule (runtime/options.ts calls it for every capability granted).
 * @throws {EnclaveError} `invalid_options` when the options cannot serve it.
 */
export function checkGrant(capability: Capability, options: GrantOptions): void {
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
    for (const imp of capability.imports) {
      const fn = imp.implement(ctx);
      if (fn !== undefined) env[imp.name] = fn;
    }
  }
  return env;
}
