/**
 * What a capability module declares (one file per capability in this folder, listed in
 * `index.ts`), and what the instance gives each import it builds.
 *
 * ```
 *  capabilities/<name>.ts ── name ──────────────────────► contract.ts (the names a contract declares)
 *                         ── grant rule ────────────────► options.ts (settleEnclaveOptions)
 *                         ── crossing ──────────────────► worker mode: runs in the worker, or host calls
 *                         ── imports[]: one per import (a capability may have several):
 *                              name and type ───────────► module.ts (validateShape)
 *                              fuel ────────────────────► paid by the import before any work
 *                              implement(ctx) ──────────► instance.ts (#instantiate), both modes
 *                              hostCall ────────────────► answered by `answerHostCall` (host-call crossing)
 * ```
 */
import type { ModuleIdentity } from '../../attest/index.js';
import type { FuncType } from '../../core/index.js';
import type { LogLevel } from '../abi.js';
import type { EnclavePlatform, ReportContext } from '../platform.js';

// Nothing here or in a capability's file imports contract.ts or options.ts: contract.ts takes the
// list of capability names from this folder (index.ts), so an import back would be a cycle.

/** What a grant rule reads of the host's options (`EnclaveOptions` is one). */
export interface GrantOptions {
  readonly attestation?: EnclavePlatform | undefined;
}

/**
 * What one instance offers the imports it builds. Every pointer and length an import receives
 * comes from the enclave and is hostile: check it with `inBounds` before touching memory.
 */
export interface ImportContext {
  /** The instance's memory as it is now (a fresh view after it grew). */
  memory(): Uint8Array;
  /** Whether `[ptr, ptr + len)` lies in memory, both read as unsigned 32-bit values. */
  inBounds(ptr: number, len: number): boolean;
  /** Up to `max` bytes at `ptr` as UTF-8 (malformed: U+FFFD), or `<out of bounds>`. */
  readText(ptr: number, len: number, max: number): string;
  /**
   * Charges `fuel` to the running call, before the import does any work, so every route to it
   * (`call`, `call_indirect`) pays. Past the budget it throws, which unwinds the enclave
   * (`fuel_exhausted`). A no-op when unmetered.
   */
  pay(fuel: number): void;
  /**
   * Whether one more log line fits this call's bound; when it does not, the line is counted as
   * dropped (reported as one line after the call) and the import reads nothing.
   */
  admitLog(): boolean;
  /** Queues a log line for `onLog` (after `admitLog`); delivered after the call, never during it. */
  log(level: LogLevel, message: string): void;
  /** Whether anyone listens to the log (`onLog`): nothing is read from memory otherwise. */
  readonly listening: boolean;
  /** The enclave's identity (sealing keys are bound to it). */
  readonly identity: ModuleIdentity;
  /** The platform (`attestation` option); in a worker, a proxy to the host thread's. */
  readonly platform: EnclavePlatform | undefined;
  /** What evidence says about this enclave besides the nonce. */
  reportContext(): ReportContext;
  /** False at the start of each call into the enclave; an import may cache within one call. */
  sameCall: boolean;
  /**
   * A number that changes at the start of each call into the enclave (an import counts what one
   * call asks of it: `counter_advance`'s per-call bound). Imports of one instance share it.
   */
  callSerial(): number;
}

/** How a capability's import crosses to a worker. */
export type Crossing =
  /** It runs in the worker, as in-process (it needs nothing the host thread holds). */
  | 'in-worker'
  /** It runs in the worker against a platform proxy that asks the host thread (runtime/_worker-hostcall.ts). */
  | 'host-call';

/**
 * One capability, everything about it in one place. `Name` is its name as a literal type: the
 * type `Capability` is the union of the names in the list (index.ts).
 */
export interface CapabilityModule<Name extends string = string> {
  /** The name a contract declares and a host grants. */
  readonly name: Name;
  /** Its imports in the `enclave` module (docs/ABI.md §3), at least one; granting the capability grants them all. */
  readonly imports: readonly CapabilityImport[];
  /**
   * The grant rule beyond being declared and listed: throws `invalid_options` when the options
   * cannot serve it (seal, counter and attest need a platform).
   */
  grant?(options: GrantOptions): void;
  /** How its imports cross to a worker. */
  readonly crossing: Crossing;
}

/** One import of a capability. */
export interface CapabilityImport {
  /** The name of the import in the `enclave` module (docs/ABI.md §3), unique across capabilities. */
  readonly name: string;
  /** The import's WebAssembly type; any other type refuses the module. */
  readonly type: FuncType;
  /** Fuel the import charges per call, before any work (docs/LIMITS.md, "Fuel"). */
  readonly fuel: number;
  /** The import for one instance; undefined when this instance cannot serve it. */
  implement(ctx: ImportContext): ((...args: never[]) => unknown) | undefined;
  /** Its capability's `crossing` is `'host-call'`: how the host thread answers the worker's platform proxy. */
  readonly hostCall?: HostCallAnswer;
}

/** The host side of a host-call capability (runtime/_worker-hostcall.ts dispatches by `kind`). */
export interface HostCallAnswer {
  /** The `kind` of the host-call message the worker's platform proxy posts for it. */
  readonly kind: string;
  /**
   * At most this many answered per call into the enclave: the import's own per-call bound, kept
   * again on the host thread (runtime/_worker-hostcall.ts `admitHostCall`), since the worker that
   * counts it first runs hostile code.
   */
  readonly maxPerCall?: number;
  /**
   * The answer bytes for one message, from the real platform and the context the host computed
   * itself. Every field of `message` is hostile: checked here. Throws when there is no answer;
   * an error with a bad-input code (runtime/platform.ts, `isBadInput`) crosses back as such.
   */
  answer(platform: EnclavePlatform, context: ReportContext, message: Readonly<Record<string, unknown>>, room: HostCallRoom): Uint8Array;
}

/** Bounds of a host call: the largest input field and the largest answer, bytes. */
export interface HostCallRoom {
  readonly maxInput: number;
  readonly maxAnswer: number;
}
