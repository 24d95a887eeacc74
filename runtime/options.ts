/**
 * Options and their one settler. Both isolation modes settle their options here, once: defaults
 * filled in, every value checked, conflicts refused up front with `invalid_options`, and the result
 * frozen. Nothing downstream reads a caller's options object again.
 *
 * ```
 *  loadEnclave(src, options)
 *    settleCompileOptions ─► { trust, cacheDir }              (before any byte is read)
 *    settleHostOptions    ─► isolation, worker-only options    (before compiling)
 *    settleEnclaveOptions ─► EnclaveConfig: limits, grants...  (needs the contract)
 * ```
 */
import { defaultCacheDir, type FuelCacheDir } from './_fuel-cache.js';
import type { LogLevel } from './abi.js';
import { CAPABILITIES, type Capability, type Contract, type Limits } from './contract.js';
import { EnclaveError, quoteInput } from '../core/index.js';
import { MAX_FUEL, type FuelManifest } from './fuel.js';
import type { EnclavePlatform } from './platform.js';
import { DEFAULT_MAX_SESSIONS, STATE_POLICIES, type StatePolicy } from './state.js';
import type { TrustPolicy } from '../attest/index.js';

/** The host's own ceilings; a contract's limits are capped by these (docs/ABI.md §5). */
export const DEFAULT_POLICY: Limits = Object.freeze({
  // What one call may cost the host to copy and decode (docs/LIMITS.md, "Requests and replies").
  requestBytes: 2 * 1024 * 1024,
  replyBytes: 2 * 1024 * 1024,
  depth: 128,
  memoryPages: 256,
  // About 100 ms of host thread in-process, whatever the module (docs/LIMITS.md, "Fuel": the bound).
  fuel: 10_000_000,
  // 16 bytes of JS heap per entry (docs/LIMITS.md, "Tables"): 1.6 MB per instance at most.
  tableElements: 100_000,
  // About 10 ms and a few MB of host heap to decode, whatever the reply (docs/LIMITS.md).
  replyItems: 100_000,
});

// Severity of a logged line: defined with the ABI, where the `log` capability takes it from.
export type { LogLevel } from './abi.js';

/** Options for {@link EnclaveModule.create} and `loadEnclave`. */
export interface EnclaveOptions {
  /** Capabilities granted to the enclave; every one it declares must be granted. Default: none. */
  capabilities?: readonly Capability[];
  /** The host's limits; each effective limit is the lower of this and the contract's. */
  policy?: Partial<Limits>;
  /**
   * Receives what the enclave logs (`log` capability) and why it aborted. Called after the call
   * that produced it has returned, never while the enclave runs. Log lines come from the enclave:
   * treat them as untrusted text. What it throws, or the promise it rejects, is ignored.
   */
  onLog?: (level: LogLevel, message: string) => void;
  /**
   * The platform that attests and seals (attest/'s `SoftwareAttestationProvider`, or any object
   * with the methods of {@link EnclavePlatform}). Required to grant the `seal` and `attest`
   * capabilities and to call `attest`.
   */
  attestation?: EnclavePlatform;
  /**
   * Marks the enclave as inspectable in its evidence (`dbgstat`): set it when anything that can
   * see inside the enclave (memory dumps, tracing) is on. Default false.
   */
  debug?: boolean;
  /**
   * Which instance serves a call (docs/LIMITS.md, "State and tenants"): `'persistent'` (default)
   * keeps one instance and its memory between calls; `'per-session'` gives each
   * `call(op, args, { session })` id its own instance; `'per-call'` serves every call from a
   * pristine instance.
   */
  state?: StatePolicy;
  /** `per-session`: live sessions kept; the least recently used is dropped beyond it. Default 64. */
  maxSessions?: number;
  /**
   * Fuel metering (docs/LIMITS.md, "Fuel"): on by default, every call and the start function run
   * under `limits.fuel` and fail with `fuel_exhausted` past it. `false` runs the module as built,
   * unbounded: only for benchmarks and trusted code.
   */
  metering?: boolean;
}

/** Options for compiling a module (`compileEnclave`, `loadEnclave`). */
export interface CompileOptions {
  /**
   * Load only modules signed by one of these keys, each with a minimum svn. Refusals:
   * `untrusted_module` (no valid trusted signature), `rollback` (svn below the signer's floor).
   */
  trust?: TrustPolicy;
  /**
   * Where instrumented modules are cached on disk: a directory path, or `false` for no disk cache
   * (memory only). Default: `ENCLAVE_CACHE_DIR`, else `node_modules/.cache/enclave` under the
   * working directory when it has `node_modules`, else `$XDG_CACHE_HOME/enclave` or
   * `~/.cache/enclave`, as read once per compile (runtime/_fuel-cache.ts, `defaultCacheDir`).
   */
  cacheDir?: string | false;
}

/** Options of one call. */
export interface CallOptions {
  /** The session whose instance serves the call; required with `state: 'per-session'`, refused otherwise. */
  session?: string;
  /**
   * Filled in with what this call used, however many calls run at once: `fuel` as in
   * {@link CallStats}, 0 when the call never entered the enclave (refused before, queued and
   * refused, `timeout`, a dead worker). Not an object: `invalid_options`.
   * @example
   * const stats = { fuel: 0 };
   * await enclave.call('sum', 1000, { stats }); // stats.fuel: this call's fuel
   */
  stats?: { fuel: number };
}

/** What one call into an enclave used (the `{ stats }` call option). */
export interface CallStats {
  /** Fuel the call used (enclave_alloc and enclave_call together); 0 when metering is off. */
  readonly fuel: number;
}

/** V8 heap limits of an enclave's worker (Node's `Worker` `resourceLimits`). */
export interface WorkerResourceLimits {
  /** Old-generation JS heap, MiB. Does not bound Wasm linear memory (the module's maximum does). */
  maxOldGenerationSizeMb?: number;
  /** Young-generation JS heap, MiB. */
  maxYoungGenerationSizeMb?: number;
  /** Stack of the worker thread, MiB; bounds how deep enclave recursion goes before `stack_overflow`. */
  stackSizeMb?: number;
}

/** Options for an enclave in its own worker (`loadEnclave(src, { isolation: 'worker' })`). */
export interface WorkerEnclaveOptions extends EnclaveOptions {
  isolation: 'worker';
  /** Wall-clock limit of one call, ms, from the moment it is handed to the worker. Default 1000. */
  deadlineMs?: number;
  /** Wall-clock limit for a worker to boot and instantiate the module, ms. Default 10 000. */
  startDeadlineMs?: number;
  /** Heap limits of the worker; defaults in {@link DEFAULT_WORKER_LIMITS}. */
  resourceLimits?: WorkerResourceLimits;
  /**
   * Calls (and `endSession`s) that may wait behind the one in flight; a call beyond them is refused
   * at once with `overloaded`. 0 refuses every call made while another runs. Default
   * {@link DEFAULT_MAX_QUEUE}.
   */
  maxQueue?: number;
  /**
   * How long a call may wait in the queue before it is handed to the worker, ms; past it the call
   * fails with `overloaded`, having never run. Its own `deadlineMs` starts when it leaves the queue.
   * Default {@link DEFAULT_QUEUE_TIMEOUT_MS}.
   */
  queueTimeoutMs?: number;
}

/** Options of `createWorkerEnclave`: `isolation` may be left out there. */
export type WorkerStartOptions = Omit<WorkerEnclaveOptions, 'isolation'> & { isolation?: 'worker' };

/** Default per-call deadline in worker mode, ms. */
export const DEFAULT_DEADLINE_MS = 1000;
/** Default deadline for a worker to start (boot, load the runtime, instantiate), ms. */
export const DEFAULT_START_DEADLINE_MS = 10_000;
/**
 * Default bound of the calls waiting behind the one in flight, per enclave. A waiting call holds
 * its arguments and a promise; a service that needs more concurrency runs more enclaves.
 */
export const DEFAULT_MAX_QUEUE = 256;
/** Largest `maxQueue` accepted. */
const MAX_MAX_QUEUE = 1 << 20;
/** Default limit of the time a call may wait in the queue before it starts, ms (ten default deadlines). */
export const DEFAULT_QUEUE_TIMEOUT_MS = 10_000;
/** Default heap limits of an enclave worker. The worker's JS holds little: the runtime and logs. */
export const DEFAULT_WORKER_LIMITS: Readonly<Required<WorkerResourceLimits>> = Object.freeze({
  maxOldGenerationSizeMb: 64,
  maxYoungGenerationSizeMb: 16,
  stackSizeMb: 4,
});

/** @internal Options that mean something only in worker mode; refused in-process. */
export const WORKER_ONLY_OPTIONS: readonly string[] = Object.freeze(['deadlineMs', 'startDeadlineMs', 'resourceLimits', 'maxQueue', 'queueTimeoutMs']);

/** Settled compile options; internal to the runtime, not re-exported. */
export interface CompileConfig {
  readonly trust: TrustPolicy | undefined;
  readonly cacheDir: FuelCacheDir;
}

/** Settled worker options (worker mode only); internal to the runtime, not re-exported. */
export interface WorkerConfig {
  readonly deadlineMs: number;
  readonly startDeadlineMs: number;
  readonly resourceLimits: Readonly<Required<WorkerResourceLimits>>;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
}

/** Settled enclave options: what an instance runs under, in either mode; internal to the runtime, not re-exported. */
export interface EnclaveConfig {
  readonly limits: Limits;
  readonly capabilities: ReadonlySet<Capability>;
  readonly onLog: ((level: LogLevel, message: string) => void) | undefined;
  readonly attestation: EnclavePlatform | undefined;
  readonly debug: boolean;
  readonly state: StatePolicy;
  readonly maxSessions: number;
  readonly metering: boolean;
  /** What the instrumenter reported; undefined when the module runs unmetered. */
  readonly fuel?: FuelManifest | undefined;
}

function refuse(message: string): never {
  throw new EnclaveError('invalid_options', message);
}

function anObject(options: unknown): void {
  if (typeof options !== 'object' || options === null) refuse('The options must be an object.');
}

/**
 * @internal Settles compile options: `trust` as given (checked by `checkTrust`), `cacheDir`
 * defaulted from the environment once, here.
 * @throws {EnclaveError} `invalid_options`.
 */
export function settleCompileOptions(options: CompileOptions): CompileConfig {
  anObject(options);
  const cacheDir = options.cacheDir === undefined ? defaultCacheDir() : options.cacheDir;
  if (cacheDir !== false && (typeof cacheDir !== 'string' || cacheDir.length === 0)) {
    refuse('cacheDir must be a directory path or false.');
  }
  return Object.freeze({ trust: options.trust, cacheDir });
}

function positive(value: unknown, name: string, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    refuse(`${name} must be a positive number of at most ${max}.`);
  }
  return value;
}

/**
 * @internal Settles what does not depend on the module: the isolation mode and, in worker mode, its
 * deadlines, queue and heap limits. In-process, a worker-only option is a conflict, refused.
 * @returns the worker settings, or undefined in-process.
 * @throws {EnclaveError} `invalid_options`.
 */
export function settleHostOptions(options: object, isolation: unknown): WorkerConfig | undefined {
  anObject(options);
  const o = options as Partial<WorkerEnclaveOptions>;
  if (isolation !== 'in-process' && isolation !== 'worker') {
    refuse(`isolation must be 'in-process' or 'worker', not ${JSON.stringify(isolation)}.`);
  }
  if (isolation === 'in-process') {
    for (const key of WORKER_ONLY_OPTIONS) {
      if ((o as Record<string, unknown>)[key] !== undefined) refuse(`${key} needs isolation: 'worker'; an in-process call cannot be interrupted.`);
    }
    return undefined;
  }
  // setTimeout and Atomics.waitAsync take at most 2^31 - 1 ms.
  const deadlineMs = positive(o.deadlineMs ?? DEFAULT_DEADLINE_MS, 'deadlineMs', 2 ** 31 - 1);
  const startDeadlineMs = positive(o.startDeadlineMs ?? DEFAULT_START_DEADLINE_MS, 'startDeadlineMs', 2 ** 31 - 1);
  const queueTimeoutMs = positive(o.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS, 'queueTimeoutMs', 2 ** 31 - 1);
  const maxQueue = o.maxQueue ?? DEFAULT_MAX_QUEUE;
  if (!Number.isSafeInteger(maxQueue) || maxQueue < 0 || maxQueue > MAX_MAX_QUEUE) {
    refuse(`maxQueue must be an integer from 0 to ${MAX_MAX_QUEUE}.`);
  }
  const given = o.resourceLimits ?? {};
  if (typeof given !== 'object' || given === null) refuse('resourceLimits must be an object.');
  const resourceLimits = { ...DEFAULT_WORKER_LIMITS };
  for (const [key, value] of Object.entries(given)) {
    if (!(key in DEFAULT_WORKER_LIMITS)) refuse(`Unknown resourceLimits.${key}; known: ${Object.keys(DEFAULT_WORKER_LIMITS).join(', ')}.`);
    resourceLimits[key as keyof WorkerResourceLimits] = positive(value, `resourceLimits.${key}`, 1 << 20);
  }
  if (o.onLog !== undefined && typeof o.onLog !== 'function') refuse('onLog must be a function.');
  const settled: WorkerConfig = Object.freeze({ deadlineMs, startDeadlineMs, resourceLimits: Object.freeze(resourceLimits), maxQueue, queueTimeoutMs });
  SETTLED_HOST.add(settled);
  return settled;
}

/** The worker settings {@link settleHostOptions} returned: nothing else passes for settled. */
const SETTLED_HOST = new WeakSet<object>();

/**
 * @internal Whether `value` is worker settings {@link settleHostOptions} returned, not a look-alike
 * (`WorkerEnclave.start` is reachable from JavaScript: what it is handed as settled must be).
 */
export function isSettledHost(value: unknown): value is WorkerConfig {
  return typeof value === 'object' && value !== null && SETTLED_HOST.has(value);
}

/**
 * @internal Settles the options of an enclave of this contract: grants checked against what the
 * contract declares and what the platform can serve, limits capped by the host policy.
 * @throws {EnclaveError} `invalid_options`, `capability_denied`.
 */
export function settleEnclaveOptions(contract: Contract, options: EnclaveOptions, grantable: (c: Capability, options: EnclaveOptions) => void): EnclaveConfig {
  anObject(options);
  if (options.capabilities !== undefined && !Array.isArray(options.capabilities)) refuse('capabilities must be an array of capability names.');
  if (options.policy !== undefined && (typeof options.policy !== 'object' || options.policy === null || Array.isArray(options.policy))) {
    refuse('policy must be an object of limits.');
  }
  const granted = new Set<Capability>();
  for (const c of options.capabilities ?? []) {
    if (!(CAPABILITIES as readonly string[]).includes(c)) refuse(`Unknown capability ${quoteInput(c)}; known: ${CAPABILITIES.join(', ')}.`);
    // The capability's own grant rule (runtime/capabilities/): seal and attest need a platform.
    grantable(c, options);
    granted.add(c);
  }
  for (const c of contract.capabilities) {
    if (!granted.has(c)) {
      throw new EnclaveError(
        'capability_denied',
        `The enclave "${contract.name}" needs the "${c}" capability: grant it with { capabilities: ['${c}'] } if you trust it.`,
      );
    }
  }
  const limits = { ...contract.limits };
  for (const [key, value] of Object.entries({ ...DEFAULT_POLICY, ...options.policy })) {
    if (!Object.prototype.hasOwnProperty.call(DEFAULT_POLICY, key)) {
      refuse(`Unknown policy limit ${quoteInput(key)}; known: ${Object.keys(DEFAULT_POLICY).join(', ')}.`);
    }
    if (!Number.isSafeInteger(value) || value < 1) refuse(`policy.${key} must be a positive integer limit.`);
    const k = key as keyof Limits;
    limits[k] = Math.min(limits[k], value);
  }
  // The fuel counter is an i32 (runtime/fuel.ts): one call's budget is at most 2^31 - 1.
  limits.fuel = Math.min(limits.fuel, MAX_FUEL);
  if (options.onLog !== undefined && typeof options.onLog !== 'function') refuse('onLog must be a function.');
  if (options.debug !== undefined && typeof options.debug !== 'boolean') refuse('debug must be a boolean.');
  const state = options.state ?? 'persistent';
  if (!STATE_POLICIES.includes(state)) refuse(`state must be one of ${STATE_POLICIES.join(', ')}.`);
  const maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) refuse('maxSessions must be a positive integer.');
  if (options.maxSessions !== undefined && state !== 'per-session') refuse("maxSessions needs state: 'per-session'.");
  if (options.metering !== undefined && typeof options.metering !== 'boolean') refuse('metering must be a boolean.');
  return Object.freeze({
    limits: Object.freeze(limits),
    capabilities: granted,
    onLog: options.onLog,
    attestation: options.attestation,
    debug: options.debug === true,
    state,
    maxSessions,
    metering: options.metering !== false,
  });
}

/**
 * @internal Call options read once, each field once: `session`, and `stats` checked and zeroed
 * (undefined when not asked for). A caller's getter, proxy trap or frozen `stats` that throws is bad
 * input, never its own exception unwrapped.
 * @throws {EnclaveError} `invalid_options`.
 */
export function readCallOptions(options: CallOptions | undefined): { session: string | undefined; stats: { fuel: number } | undefined } {
  try {
    const session = options?.session;
    const stats = options?.stats;
    if (stats === undefined) return { session, stats };
    if (typeof stats !== 'object' || stats === null) refuse('stats must be an object; the call fills in its fuel.');
    stats.fuel = 0;
    return { session, stats };
  } catch (err) {
    throw err instanceof EnclaveError ? err : new EnclaveError('invalid_options', 'The call options cannot be read.', { cause: err });
  }
}
