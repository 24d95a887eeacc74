/**
 * Bytes to a running enclave: validate, compile once, instantiate many, and the call path.
 *
 * ```
 *  bytes ──compileEnclave──► EnclaveModule ──create(options)──► Enclave ──call──► value
 *          validate, measure,                 settle policy,          │ trap
 *          read contract                      check grants            ▼
 *                                                         instance discarded, next call
 *                                                         instantiates a fresh one
 * ```
 */
import { createHash, getRandomValues } from 'node:crypto';
import { isAttestationError } from '../attest/errors.js';
import { NONCE_MIN_BYTES, REPORT_DATA_MAX_BYTES, type EnclavePublicJwk } from '../attest/evidence.js';
import { measure, type ModuleIdentity } from '../attest/measure.js';
import { checkTrust, type TrustPolicy } from '../attest/module-signature.js';
import type { AttestationProvider } from '../attest/provider.js';
import { createReport, REPORT_STATUS, reportStatusFor, type ReportContext } from '../attest/report.js';
import { SEALING_POLICIES } from '../attest/sealing.js';
import { CONTRACT_SECTION, customSections } from '../attest/wasm-sections.js';
import { instrumentCached } from './_fuel-cache.js';
import { CAPABILITIES, parseContractBytes, type Capability, type Contract, type Limits } from './contract.js';
import { DISCARDING_CODES, EnclaveError, quoteInput } from './errors.js';
import { FUEL_EXPORT, GLOBAL_EXPORT_PREFIX, importFuel, MAX_FUEL, RESERVED_EXPORT_PREFIX, START_EXPORT, type FuelManifest } from './fuel.js';
import { compileOps, createPackr, decodeReply, encodeCall, NOT_ENVELOPE, opFor, type Encoded, type OpCall, type RequestEncoder } from './marshal.js';
import { formatFuncType, readModuleInfo, type FuncType, type ModuleInfo } from './module-info.js';
import { DEFAULT_MAX_SESSIONS, InstancePool, STATE_POLICIES, type StatePolicy } from './state.js';
import { RUNTIME_VERSION } from './version.js';

/** The ABI versions this runtime speaks (docs/ABI.md §8). */
export const SUPPORTED_ABI_VERSIONS: readonly number[] = [1];

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

/** Severity of a message an enclave logs through the `log` capability. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

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
   * The platform that measures, attests and seals (attest/). Required to grant the `seal` and
   * `attest` capabilities and to call {@link Enclave.attest}.
   */
  attestation?: AttestationProvider;
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

/** Options of one call. */
export interface CallOptions {
  /** The session whose instance serves the call; required with `state: 'per-session'`, refused otherwise. */
  session?: string;
  /**
   * Filled in with what this call used, however many calls run at once (`lastCall` is whichever
   * finished last): `fuel` as in {@link CallStats}, 0 when the call never entered the enclave
   * (refused before, queued and refused, `timeout`, a dead worker). Not an object: `invalid_options`.
   * @example
   * const stats = { fuel: 0 };
   * await enclave.call('sum', 1000, { stats }); // stats.fuel: this call's fuel
   */
  stats?: { fuel: number };
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
    if (typeof stats !== 'object' || stats === null) throw new EnclaveError('invalid_options', 'stats must be an object; the call fills in its fuel.');
    stats.fuel = 0;
    return { session, stats };
  } catch (err) {
    throw err instanceof EnclaveError ? err : new EnclaveError('invalid_options', 'The call options cannot be read.', { cause: err });
  }
}

/** What the last call into an enclave used (`enclave.lastCall`). */
export interface CallStats {
  /** Fuel the call used (enclave_alloc and enclave_call together); 0 when metering is off. */
  readonly fuel: number;
}

/** Options for compiling a module (`compileEnclave`, `loadEnclave`). */
export interface CompileOptions {
  /**
   * Load only modules signed by one of these keys, each with a minimum svn. Refusals:
   * `untrusted_module` (no valid trusted signature), `rollback` (svn below the signer's floor).
   */
  trust?: TrustPolicy;
}

const I32: FuncType['params'] = ['i32'];
const REQUIRED_EXPORTS: Record<string, FuncType> = {
  enclave_abi_version: { params: [], results: I32 },
  enclave_alloc: { params: I32, results: I32 },
  enclave_call: { params: ['i32', 'i32'], results: I32 },
};

/** Capability imports (docs/ABI.md §3): name to capability and signature. */
const IMPORTS: Record<string, { capability: Capability | undefined; type: FuncType }> = {
  abort: { capability: undefined, type: { params: ['i32', 'i32'], results: [] } },
  random: { capability: 'random', type: { params: ['i32', 'i32'], results: I32 } },
  now: { capability: 'clock', type: { params: [], results: ['i64'] } },
  log: { capability: 'log', type: { params: ['i32', 'i32', 'i32'], results: [] } },
  seal_key: { capability: 'seal', type: { params: ['i32', 'i32'], results: I32 } },
  report: { capability: 'attest', type: { params: ['i32', 'i32', 'i32', 'i32'], results: I32 } },
};

const MAX_ABORT_MESSAGE = 256;
const MAX_LOG_MESSAGE = 1024;
/** Log lines kept per call; the rest are counted and reported as one line (log flooding). */
const MAX_LOG_LINES = 256;
const MAX_RANDOM = 65_536;
/** Decodes what an enclave logs; malformed UTF-8 becomes U+FFFD, never an exception. */
const utf8 = new TextDecoder();

/*
 * Internals shared with worker mode (runtime/worker.ts, runtime/_worker-main.ts), kept off the
 * public surface behind symbols. Whoever adds state to EnclaveModule extends MODULE_PARTS and
 * FROM_PARTS, so a worker rebuilds the same module without compiling it again.
 */
/** @internal `Enclave[CALL_RAW](op, request, settle, session, stats)`: one call from request bytes to reply bytes. */
export const CALL_RAW: unique symbol = Symbol('enclave.callRaw');
/** @internal `EnclaveModule[MODULE_PARTS]()`: what a worker needs, structured-cloneable. */
export const MODULE_PARTS: unique symbol = Symbol('enclave.moduleParts');
/** @internal `EnclaveModule[FROM_PARTS](parts)`: the module rebuilt in another thread. */
export const FROM_PARTS: unique symbol = Symbol('enclave.fromParts');

/** The parts of a compiled module that cross to a worker. */
interface ModuleParts {
  readonly module: WebAssembly.Module;
  readonly info: ModuleInfo;
  readonly contract: Contract;
  readonly identity: ModuleIdentity;
  readonly fuel: FuelManifest;
  /** The original (uninstrumented) bytes, compiled only for `metering: false`. */
  readonly original: Uint8Array;
}

function sameType(a: FuncType, b: FuncType): boolean {
  return (
    a.params.length === b.params.length &&
    a.results.length === b.results.length &&
    a.params.every((t, i) => t === b.params[i]) &&
    a.results.every((t, i) => t === b.results[i])
  );
}

function invalid(message: string): never {
  throw new EnclaveError('invalid_module', message);
}

/** Checks imports and exports against docs/ABI.md §2, §3. */
function validateShape(info: ModuleInfo, contract: Contract): void {
  for (const imp of info.imports) {
    // Names from the module are hostile text: quoted and cut short in messages.
    const where = `${quoteInput(imp.module)}.${quoteInput(imp.name)}`;
    if (imp.module !== 'enclave') {
      invalid(`The module imports ${where}: enclaves may import only from "enclave" (docs/ABI.md §3).`);
    }
    const spec = Object.prototype.hasOwnProperty.call(IMPORTS, imp.name) ? IMPORTS[imp.name] : undefined;
    if (spec === undefined || imp.kind !== 'function') {
      invalid(`The module imports ${where} (${imp.kind}), which is not an enclave capability.`);
    }
    if (!sameType(imp.type!, spec.type)) {
      invalid(`The import ${where} has type ${formatFuncType(imp.type)}; the ABI says ${formatFuncType(spec.type)}.`);
    }
    if (spec.capability !== undefined && !contract.capabilities.includes(spec.capability)) {
      throw new EnclaveError(
        'capability_denied',
        `The module imports ${where} but its contract does not declare the "${spec.capability}" capability.`,
      );
    }
  }
  for (const [name, type] of Object.entries(REQUIRED_EXPORTS)) {
    const exp = info.exports.find((e) => e.name === name);
    if (exp === undefined || exp.kind !== 'function') invalid(`The module does not export the function "${name}".`);
    if (!sameType(exp.type!, type)) {
      invalid(`The export "${name}" has type ${formatFuncType(exp.type)}; the ABI says ${formatFuncType(type)}.`);
    }
  }
  const reserved = info.exports.find((e) => e.name.startsWith(RESERVED_EXPORT_PREFIX));
  if (reserved !== undefined) invalid(`The export ${quoteInput(reserved.name)} uses the prefix "${RESERVED_EXPORT_PREFIX}", reserved for the runtime.`);
  const memExport = info.exports.find((e) => e.name === 'memory');
  if (memExport === undefined || memExport.kind !== 'memory') invalid('The module does not export its "memory".');
  if (info.memories.length !== 1) invalid('The module must define exactly one memory of its own.');
  const mem = info.memories[0]!;
  if (mem.shared || mem.memory64) invalid('The module memory must be a plain (unshared, 32-bit) memory.');
  if (mem.maximum === undefined) {
    throw new EnclaveError('memory_limit', 'The module memory declares no maximum: build it with one (docs/ABI.md §2).');
  }
}

/**
 * A validated, compiled and measured enclave module. Compile once, then `create` as many running
 * enclaves from it as needed; each has its own linear memory.
 */
export class EnclaveModule {
  /** SHA-256 of the module bytes without its signature section, hex (docs/ATTESTATION.md §1). */
  readonly measurement: string;
  /** Measurement, svn and (when a trust policy admitted it) the signer. */
  readonly identity: ModuleIdentity;
  readonly contract: Contract;
  readonly info: ModuleInfo;
  readonly #module: WebAssembly.Module;
  readonly #memoryMaximum: number;
  readonly #fuel: FuelManifest;
  readonly #original: Uint8Array;
  /** The uninstrumented module, compiled on the first `create({ metering: false })`. */
  #plain: WebAssembly.Module | undefined;

  private constructor(parts: ModuleParts) {
    this.#module = parts.module;
    this.info = parts.info;
    this.contract = parts.contract;
    this.identity = parts.identity;
    this.measurement = parts.identity.measurement;
    this.#memoryMaximum = parts.info.memories[0]!.maximum!;
    this.#fuel = parts.fuel;
    this.#original = parts.original;
  }

  /**
   * Validates and compiles module bytes. The bytes are copied first, so changing them afterwards
   * changes nothing.
   * @throws {EnclaveError} `invalid_module`, `invalid_contract`, `capability_denied`, `memory_limit`,
   *   `untrusted_module`, `rollback`; `timeout` when instrumentation passes its deadline.
   */
  static async compile(source: Uint8Array, options: CompileOptions = {}): Promise<EnclaveModule> {
    const bytes = source.slice();
    const info = readModuleInfo(bytes);
    if (!WebAssembly.validate(bytes)) {
      throw new EnclaveError('invalid_module', 'The module does not validate as WebAssembly: rebuild it.');
    }
    // Read from the original bytes: they are what is measured and what the contract belongs to.
    const sections = customSections(bytes, CONTRACT_SECTION);
    if (sections.length !== 1) {
      throw new EnclaveError(
        'invalid_contract',
        sections.length === 0
          ? 'The module has no enclave.contract section: build it with `enclave build`.'
          : 'The module has more than one enclave.contract section.',
      );
    }
    const contract = parseContractBytes(new Uint8Array(sections[0]!));
    validateShape(info, contract);
    const identity = identify(bytes, contract, options.trust);
    // Instrumented after measuring (runtime/fuel.ts); cached by the hash of the exact bytes, which,
    // unlike the measurement, covers the signature section too.
    const { bytes: metered, manifest } = await instrumentCached(bytes, createHash('sha256').update(bytes).digest('hex'));
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(metered);
    } catch (err) {
      throw new EnclaveError('invalid_module', `The instrumented module does not compile: ${(err as Error).message}.`);
    }
    return new EnclaveModule({ module, info, contract, identity, fuel: manifest, original: bytes });
  }

  /**
   * Creates a running enclave under the given policy and grants, and instantiates it once to
   * check its ABI version.
   * @throws {EnclaveError} `capability_denied`, `memory_limit`, `unsupported_abi`, `invalid_options`;
   *   `trap`, `stack_overflow` or `fuel_exhausted` when the start function fails.
   * @example
   * const counter = mod.create({ policy: { memoryPages: 16 } });
   */
  create(options: EnclaveOptions = {}): Enclave {
    const config = settleOptions(this.contract, options);
    if (this.#memoryMaximum > config.limits.memoryPages) {
      throw new EnclaveError(
        'memory_limit',
        `The module memory may grow to ${this.#memoryMaximum} pages; the limit is ${config.limits.memoryPages}.`,
      );
    }
    // Before any instance exists (in worker mode too, where this runs in the worker): a table is
    // allocated whole at instantiation, and one large allocation is more than a worker's
    // resourceLimits can contain (docs/LIMITS.md, "Tables").
    const tableElements = this.info.tables.reduce((n, t) => n + t.initial, 0);
    if (tableElements > config.limits.tableElements) {
      throw new EnclaveError('memory_limit', `The module table holds ${tableElements} elements; the limit is ${config.limits.tableElements}.`);
    }
    if (!config.metering) {
      this.#plain ??= new WebAssembly.Module(this.#original);
      return new Enclave(this.#plain, this.contract, this.identity, config);
    }
    return new Enclave(this.#module, this.contract, this.identity, { ...config, fuel: this.#fuel });
  }

  /** @internal The compiled module and what was read from it, to cross to a worker. */
  [MODULE_PARTS](): ModuleParts {
    return {
      module: this.#module,
      info: this.info,
      contract: this.contract,
      identity: this.identity,
      fuel: this.#fuel,
      original: this.#original,
    };
  }

  /** @internal Rebuilds a module from its parts in a worker: validated and measured already. */
  static [FROM_PARTS](parts: unknown): EnclaveModule {
    return new EnclaveModule(parts as ModuleParts);
  }
}

/** Measures the module and, under a trust policy, checks its signature and svn floor. */
function identify(bytes: Uint8Array, contract: Contract, trust: TrustPolicy | undefined): ModuleIdentity {
  try {
    if (trust !== undefined) return checkTrust(bytes, trust);
    const measurement = Buffer.from(measure(bytes)).toString('hex');
    return Object.freeze({ measurement, signers: Object.freeze([]), svn: contract.svn, name: contract.name, version: contract.version });
  } catch (err) {
    if (isAttestationError(err, 'untrusted_module')) throw new EnclaveError('untrusted_module', undefined, { cause: err });
    if (isAttestationError(err, 'rollback')) throw new EnclaveError('rollback', undefined, { cause: err });
    if (err instanceof TypeError || err instanceof RangeError || isAttestationError(err, 'invalid_key')) {
      throw new EnclaveError('invalid_options', `The trust policy is not valid: ${(err as Error).message}.`, { cause: err });
    }
    throw new EnclaveError('invalid_module', `The module signature section is not valid: ${(err as Error).message}.`, { cause: err });
  }
}

interface Config {
  readonly limits: Limits;
  readonly capabilities: ReadonlySet<Capability>;
  readonly onLog: ((level: LogLevel, message: string) => void) | undefined;
  readonly attestation: AttestationProvider | undefined;
  readonly debug: boolean;
  readonly state: StatePolicy;
  readonly maxSessions: number;
  readonly metering: boolean;
  /** What the instrumenter reported; undefined when the module runs unmetered. */
  readonly fuel?: FuelManifest | undefined;
}

function settleOptions(contract: Contract, options: EnclaveOptions): Config {
  if (typeof options !== 'object' || options === null) {
    throw new EnclaveError('invalid_options', 'The options must be an object.');
  }
  if (options.capabilities !== undefined && !Array.isArray(options.capabilities)) {
    throw new EnclaveError('invalid_options', 'capabilities must be an array of capability names.');
  }
  if (options.policy !== undefined && (typeof options.policy !== 'object' || options.policy === null || Array.isArray(options.policy))) {
    throw new EnclaveError('invalid_options', 'policy must be an object of limits.');
  }
  const granted = new Set<Capability>();
  for (const c of options.capabilities ?? []) {
    if (!(CAPABILITIES as readonly string[]).includes(c)) {
      throw new EnclaveError('invalid_options', `Unknown capability ${quoteInput(c)}; known: ${CAPABILITIES.join(', ')}.`);
    }
    if ((c === 'seal' || c === 'attest') && options.attestation === undefined) {
      throw new EnclaveError('invalid_options', `The "${c}" capability needs an attestation provider: pass { attestation }.`);
    }
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
      throw new EnclaveError('invalid_options', `Unknown policy limit ${quoteInput(key)}; known: ${Object.keys(DEFAULT_POLICY).join(', ')}.`);
    }
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new EnclaveError('invalid_options', `policy.${key} must be a positive integer limit.`);
    }
    const k = key as keyof Limits;
    limits[k] = Math.min(limits[k], value);
  }
  // The fuel counter is an i32 (runtime/fuel.ts): one call's budget is at most 2^31 - 1.
  limits.fuel = Math.min(limits.fuel, MAX_FUEL);
  if (options.onLog !== undefined && typeof options.onLog !== 'function') {
    throw new EnclaveError('invalid_options', 'onLog must be a function.');
  }
  if (options.debug !== undefined && typeof options.debug !== 'boolean') {
    throw new EnclaveError('invalid_options', 'debug must be a boolean.');
  }
  const state = options.state ?? 'persistent';
  if (!STATE_POLICIES.includes(state)) {
    throw new EnclaveError('invalid_options', `state must be one of ${STATE_POLICIES.join(', ')}.`);
  }
  const maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
    throw new EnclaveError('invalid_options', 'maxSessions must be a positive integer.');
  }
  if (options.maxSessions !== undefined && state !== 'per-session') {
    throw new EnclaveError('invalid_options', "maxSessions needs state: 'per-session'.");
  }
  if (options.metering !== undefined && typeof options.metering !== 'boolean') {
    throw new EnclaveError('invalid_options', 'metering must be a boolean.');
  }
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

/** What an enclave's evidence says about it besides the nonce (identity, runtime, limits, capabilities, debug). */
function reportContextOf(identity: ModuleIdentity, config: Config): ReportContext {
  return {
    identity,
    runtimeVersion: RUNTIME_VERSION,
    limits: config.limits as unknown as Record<string, number>,
    capabilities: [...config.capabilities],
    debug: config.debug,
  };
}

/**
 * @internal The report context an {@link Enclave} created from this contract, identity and options
 * puts in its evidence. Worker mode issues evidence on the host thread with it, so both modes make
 * the same claims. Validates the options as `EnclaveModule.create` does (same codes).
 */
export function reportContextFor(contract: Contract, identity: ModuleIdentity, options: EnclaveOptions): ReportContext {
  return reportContextOf(identity, settleOptions(contract, options));
}

/** Thrown inside an import to unwind the enclave; never escapes the runtime. */
class EnclaveAbort extends Error {}

/** The exports of one live instance, looked up once. */
interface Live {
  readonly memory: WebAssembly.Memory;
  readonly alloc: (len: number) => number;
  readonly call: (ptr: number, len: number) => number;
  /** View over `memory.buffer`; replaced when the memory grows. */
  u8: Uint8Array;
  view: DataView;
  /** Ops that have succeeded on this instance, for `requires`. */
  readonly done: Set<string>;
  /** False at the start of each call: a cached `report` token serves retries within one call only. */
  reportsValid: boolean;
  /** The fuel counter (runtime/fuel.ts); undefined when unmetered. */
  readonly fuel: WebAssembly.Global | undefined;
  /** The module's mutable globals, for per-call snapshots; empty when unmetered. */
  readonly globals: readonly WebAssembly.Global[];
}

/**
 * A running enclave: one linear memory at a time, calls strictly sequential. Created by
 * `loadEnclave` or {@link EnclaveModule.create}.
 */
export class Enclave {
  readonly contract: Contract;
  /** SHA-256 of the module bytes without the signature section, hex. */
  readonly measurement: string;
  /** Measurement, svn and, when a trust policy admitted the module, its signer. */
  readonly identity: ModuleIdentity;
  /** The limits in force: the contract's, capped by the host policy. */
  readonly limits: Limits;
  readonly #module: WebAssembly.Module;
  readonly #config: Config;
  readonly #packr: RequestEncoder;
  readonly #ops: ReadonlyMap<string, OpCall>;
  #live: Live | undefined;
  #closed = false;
  #pendingLogs: [LogLevel, string][] = [];
  #droppedLogs = 0;
  /** Where {@link Enclave.#enter} leaves the checked reply span. */
  #replyStart = 0;
  #replyEnd = 0;
  /** The last call made through CALL_RAW, until the host settles it (three fields: no allocation per call). */
  #rawLive: Live | undefined;
  #rawOp = '';
  #rawSession: string | undefined;
  /** Instances for `per-session` and `per-call`; `persistent` uses #live alone (the hot path). */
  readonly #pool: InstancePool<Live> | undefined;
  /** Fuel per call (and for the start function); also what `lastCall.fuel` is measured from. */
  readonly #budget: number;
  #lastFuel = 0;
  /** Calls that entered the enclave (reached {@link Enclave.#enter}): tells a call whether `#lastFuel` is its own. */
  #entries = 0;

  /** @internal Use `loadEnclave` or `EnclaveModule.create`. */
  constructor(module: WebAssembly.Module, contract: Contract, identity: ModuleIdentity, config: Config) {
    this.#module = module;
    this.contract = contract;
    this.identity = identity;
    this.measurement = identity.measurement;
    this.#config = config;
    this.limits = config.limits;
    this.#packr = createPackr();
    this.#ops = compileOps(contract);
    this.#budget = config.limits.fuel;
    if (config.state === 'persistent') {
      this.#live = this.#instantiate();
    } else {
      const snapshots = config.fuel?.snapshotSafe === true;
      this.#pool = new InstancePool<Live>(config.state, config.maxSessions, () => this.#instantiate(), snapshots);
      // Instantiated once now, so a broken module fails here, as in persistent mode.
      if (config.state === 'per-call') this.#pool.acquire(undefined);
      else this.#instantiate();
    }
  }

  /**
   * Calls an operation of the enclave and resolves with its `ok` value.
   * @throws {EnclaveError} with a stable `code` (docs/ABI.md §4.2, §4.3); the enclave's own codes
   *   (`bad_request`, `denied`, `state`, ...) carry its message in `detail`.
   * @example
   * const value = await counter.call('incr', { by: 2 });
   */
  async call<T = unknown>(op: string, args?: unknown, options?: CallOptions): Promise<T> {
    const { session, stats } = readCallOptions(options);
    const entries = this.#entries;
    try {
      return this.#call(op, args, session) as T;
    } finally {
      if (stats !== undefined && this.#entries !== entries) {
        try {
          stats.fuel = this.#lastFuel;
        } catch {
          // A setter of the caller's that throws once the call has run: the call's outcome stands.
        }
      }
      if (this.#pendingLogs.length > 0) this.#flushLogs();
    }
  }

  /**
   * What the last call that entered the enclave used: `fuel` is the same for the same call on the
   * same state (docs/LIMITS.md, "Fuel"). A call refused before entering (bad arguments, unknown op)
   * leaves it unchanged. Read after an `await`, it may belong to another call made meanwhile: for
   * one call's own figures, pass `{ stats }` to {@link Enclave.call}.
   * @example
   * await enclave.call('sum', { n: 1000 });
   * enclave.lastCall.fuel; // e.g. 9012
   */
  get lastCall(): CallStats {
    return { fuel: this.#lastFuel };
  }

  /**
   * `per-session`: drops a session's instance and its memory now, rather than waiting for it to
   * be evicted. Returns whether the session existed.
   */
  endSession(session: string): boolean {
    return this.#pool?.endSession(session) ?? false;
  }

  /**
   * Signed evidence about this enclave for a relying party, bound to its nonce (docs/ATTESTATION.md).
   * @param nonce - 8..64 bytes chosen by the relying party; evidence is never issued without one.
   * @param options.enclaveKey - a public key held inside the enclave, carried in `cnf`.
   * @returns a compact JWT (EdDSA) from the configured attestation provider.
   * @throws {EnclaveError} `invalid_options` without an attestation provider, `closed`.
   * @throws {AttestationError} `invalid_nonce`, `invalid_evidence_request`, `platform_unavailable`.
   * @example
   * const token = enclave.attest(nonceFromRelyingParty);
   */
  attest(nonce: Uint8Array, options: { enclaveKey?: EnclavePublicJwk } = {}): string {
    if (this.#closed) throw new EnclaveError('closed');
    const provider = this.#config.attestation;
    if (provider === undefined) throw new EnclaveError('invalid_options', 'Attestation needs a provider: pass { attestation }.');
    return provider.getEvidence({ ...this.#reportContext(), nonce, ...(options.enclaveKey ? { enclaveKey: options.enclaveKey } : {}) });
  }

  #reportContext(): ReportContext {
    return reportContextOf(this.identity, this.#config);
  }

  /** Drops the instance and its memory; later calls fail with `closed`. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#live = undefined;
    this.#pool?.clear();
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #call(op: string, args: unknown, session: string | undefined): unknown {
    if (this.#closed) throw new EnclaveError('closed');
    const spec = opFor(this.#ops, this.contract.name, op);
    const request = encodeCall(this.#packr, op, spec.frame, spec.check, args, this.#config.limits);
    // A getter in the args may have closed the enclave: no instance is made after close.
    if (this.#closed) throw new EnclaveError('closed');

    const live = this.#acquire(session);
    checkRequires(op, spec, live);
    let value: unknown;
    try {
      value = this.#roundTrip(live, request);
    } catch (err) {
      throw this.#fail(err, live);
    }
    live.done.add(op);
    // per-call: reset after the op is recorded, so the reset forgets it too.
    this.#pool?.release(live);
    return value;
  }

  /** The instance for a call: the persistent one, or the pool's for this session (or call). */
  #acquire(session: string | undefined): Live {
    const pool = this.#pool;
    if (pool !== undefined) return pool.acquire(session);
    if (session !== undefined) throw new EnclaveError('invalid_options', "A session id needs state: 'per-session'.");
    return this.#live ?? (this.#live = this.#instantiate());
  }

  /** Settles a failed call: a code that breaks trust drops the instance, others hand it back. */
  #fail(err: unknown, live: Live): EnclaveError {
    const error = this.#toError(err, live);
    if (DISCARDING_CODES.has(error.code)) this.#discard(live);
    else this.#pool?.release(live);
    return error;
  }

  #discard(live: Live): void {
    if (this.#pool === undefined) this.#live = undefined;
    else this.#pool.discard(live);
  }

  /**
   * Maps what a call threw to a code, after settling its fuel: an instance whose counter is below
   * zero stopped because its budget ran out, whatever the engine reported (an `unreachable` trap).
   */
  #toError(err: unknown, live: Live): EnclaveError {
    const fuel = live.fuel;
    if (fuel !== undefined) {
      const left = fuel.value as number;
      if (left < 0) {
        this.#lastFuel = this.#budget;
        return new EnclaveError('fuel_exhausted', `The call used more than its ${this.#budget} units of fuel.`, { cause: err });
      }
      const error = toEnclaveError(err);
      // A trap stops the enclave mid-function, where its counter lives in a local: what it spent
      // since its last call or return is lost (docs/LIMITS.md, "Fuel"). So a call that trapped is
      // charged its whole budget: deterministic, and never less than it ran.
      this.#lastFuel = error.code === 'trap' || error.code === 'stack_overflow' ? this.#budget : this.#budget - left;
      return error;
    }
    return toEnclaveError(err);
  }

  /**
   * @internal The worker's entry (runtime/_worker-main.ts): one call from request bytes the host
   * already checked, to the reply bytes (bounds and byte limit checked) as a view of enclave memory,
   * valid until the next call. The host checks their msgpack and opens the envelope (`decodeReply`,
   * on the host thread, where the objects are built), so it tells the next call what
   * it found in `settle`: 1, the previous op succeeded (it counts for `requires`); 2, the reply was
   * not an envelope (the instance is discarded, as in-process).
   *
   * It is `#call` minus the caller-side checks and the decoding, which the host thread does:
   * anything added to the instance's life around a call (state policies, per-call set-up) must be
   * added to both, or worker mode stops behaving like in-process (test/worker.test.ts compares them).
   * `stats.fuel` gets this call's fuel, as `call`'s `stats` option.
   * @throws {EnclaveError} as {@link Enclave.call}.
   */
  [CALL_RAW](op: string, request: Encoded, settle: number, session?: string, stats?: { fuel: number }): Uint8Array {
    const entries = this.#entries;
    if (stats !== undefined) stats.fuel = 0;
    const previous = this.#rawLive;
    this.#rawLive = undefined;
    const pool = this.#pool;
    if (previous !== undefined && (pool === undefined ? previous === this.#live : pool.holds(previous, this.#rawSession))) {
      if (settle === 1) previous.done.add(this.#rawOp);
      else if (settle === 2) this.#discard(previous);
    }
    try {
      if (this.#closed) throw new EnclaveError('closed');
      const spec = opFor(this.#ops, this.contract.name, op);
      const size = request.end - request.start;
      const limit = this.#config.limits.requestBytes;
      if (size > limit) throw new EnclaveError('too_large', `The request is ${size} bytes; the limit is ${limit}.`);
      const live = this.#acquire(session);
      checkRequires(op, spec, live);
      let u8: Uint8Array;
      try {
        u8 = this.#enter(live, request);
      } catch (err) {
        throw this.#fail(err, live);
      }
      if (pool === undefined || this.#config.state !== 'per-call') {
        this.#rawLive = live;
        this.#rawOp = op;
        this.#rawSession = session;
        return u8.subarray(this.#replyStart, this.#replyEnd);
      }
      // per-call: the reset below overwrites enclave memory, so the reply is copied out first, and
      // there is nothing to settle: the reset forgets which ops succeeded and undoes a bad reply.
      const reply = u8.slice(this.#replyStart, this.#replyEnd);
      pool.release(live);
      return reply;
    } finally {
      if (stats !== undefined && this.#entries !== entries) stats.fuel = this.#lastFuel;
      if (this.#pendingLogs.length > 0) this.#flushLogs();
    }
  }

  /** Copy in, call, bounds-check, decode out (see {@link Enclave.#enter}). */
  #roundTrip(live: Live, request: Encoded): unknown {
    const u8 = this.#enter(live, request);
    // Checked (structure, map keys, item count) then decoded straight from enclave memory: strings
    // become JS strings and bins are copied, so the caller never holds a view of enclave memory.
    const value = decodeReply(u8, this.#replyStart, this.#replyEnd, this.#config.limits);
    if (value === NOT_ENVELOPE) throw new EnclaveError('bad_reply', 'The enclave reply is neither {ok} nor {err}.');
    return value;
  }

  /**
   * Copy in, call, bounds-check the reply and its byte size; leaves the reply span in
   * #replyStart/#replyEnd and returns the memory view it lies in. Its msgpack (structure, keys,
   * items) is checked by `decodeReply`, on the host thread in both modes, before anything is
   * built. Every number read from the enclave is hostile. Runs with no user code in between, so enclave memory cannot change while
   * it is read. Both call paths (`call` and `CALL_RAW`, worker mode) enter the enclave here only.
   */
  #enter(live: Live, request: Encoded): Uint8Array {
    this.#entries++;
    const len = request.end - request.start;
    // One budget covers enclave_alloc and enclave_call: one global set now, one get after.
    const fuel = live.fuel;
    if (fuel !== undefined) fuel.value = this.#budget;
    const ptr = live.alloc(len) >>> 0;
    if (ptr === 0) throw new EnclaveError('limit', 'The enclave could not allocate the request buffer.');
    let u8 = live.u8;
    // Growing a (non-shared) memory detaches its old buffer, so a view of length 0 means "grown".
    if (u8.length === 0) u8 = refreshViews(live);
    if (ptr + len > u8.length) {
      throw new EnclaveError('bad_reply', 'The enclave allocated a request buffer outside its memory.');
    }
    copyInto(u8, ptr, request.buffer, request.start, request.end);

    live.reportsValid = false;
    const d = live.call(ptr, len) >>> 0;
    if (fuel !== undefined) {
      const left = fuel.value as number;
      this.#lastFuel = this.#budget - left;
      if (left < 0) throw new EnclaveError('fuel_exhausted', `The call used more than its ${this.#budget} units of fuel.`);
    }
    if (u8.length === 0) u8 = refreshViews(live);
    if (d === 0) throw new EnclaveError('internal', 'The enclave produced no reply.');
    if (d + 8 > u8.length) throw new EnclaveError('bad_reply', 'The reply descriptor lies outside enclave memory.');
    const replyPtr = live.view.getUint32(d, true);
    const replyLen = live.view.getUint32(d + 4, true);
    // The length is checked against the limit first: a reply both over the limit and outside
    // memory is too_large, and nothing is read (docs/ABI.md §4.3).
    const limit = this.#config.limits.replyBytes;
    if (replyLen > limit) throw new EnclaveError('too_large', `The reply is ${replyLen} bytes; the limit is ${limit}.`);
    const end = replyPtr + replyLen;
    if (end > u8.length) throw new EnclaveError('bad_reply', 'The reply lies outside enclave memory.');
    this.#replyStart = replyPtr;
    this.#replyEnd = end;
    return u8;
  }


  #instantiate(): Live {
    let live: Live | undefined;
    const memoryOf = (): Uint8Array => {
      if (live === undefined) throw new EnclaveAbort('called before the instance exists');
      return live.u8.buffer === live.memory.buffer ? live.u8 : refreshViews(live);
    };
    const inBounds = (ptr: number, len: number): boolean => ptr >>> 0 === ptr && len >>> 0 === len && ptr + len <= memoryOf().length;
    const readText = (ptr: number, len: number, max: number): string => {
      const n = Math.min(len >>> 0, max);
      return inBounds(ptr, n) ? utf8.decode(memoryOf().subarray(ptr, ptr + n)) : '<out of bounds>';
    };
    const granted = this.#config.capabilities;
    // Capability imports charge their own fuel (runtime/fuel.ts, importFuel) before doing any work,
    // so every route to them pays, `call_indirect` as well as `call`. Running out ends the call as
    // an instruction charge does: the counter below zero, then a trap (`fuel_exhausted`).
    let counter: WebAssembly.Global | undefined;
    const pay = (name: string, bytes?: number): void => {
      if (counter === undefined) return;
      const left = (counter.value as number) - importFuel(name, bytes);
      counter.value = left < 0 ? -1 : left;
      if (left < 0) throw new EnclaveAbort('out of fuel');
    };
    const env: Record<string, (...args: never[]) => unknown> = {
      abort: (ptr: number, len: number) => {
        this.#pendingLogs.push(['error', `enclave aborted: ${readText(ptr, len, MAX_ABORT_MESSAGE)}`]);
        throw new EnclaveAbort();
      },
    };
    if (granted.has('random')) {
      env.random = (ptr: number, len: number) => {
        pay('random', Math.min(len >>> 0, MAX_RANDOM));
        if (len >>> 0 > MAX_RANDOM || !inBounds(ptr, len)) return -1;
        getRandomValues(memoryOf().subarray(ptr, ptr + len));
        return 0;
      };
    }
    if (granted.has('clock')) {
      env.now = () => {
        pay('now');
        return BigInt(Date.now());
      };
    }
    const provider = this.#config.attestation;
    if (granted.has('seal') && provider !== undefined) {
      // docs/ABI.md §3: seal_key(policy, out_ptr) -> 0 | -1 out of bounds | -2 unknown policy | -3 unavailable
      env.seal_key = (policy: number, outPtr: number) => {
        pay('seal_key');
        if (!inBounds(outPtr, 32)) return -1;
        const name = SEALING_POLICIES[policy];
        if (name === undefined) return -2;
        let key: unknown;
        try {
          key = provider.getSealingSecret(this.identity, name);
        } catch {
          return -3;
        }
        // A provider is code of the host's choosing, but a wrong answer is still an error value here,
        // never a trap (and never fewer than 32 bytes written as if they were a key).
        if (!(key instanceof Uint8Array) || key.length !== 32) return -3;
        memoryOf().set(key, outPtr);
        key.fill(0);
        return 0;
      };
    }
    if (granted.has('attest') && provider !== undefined) {
      // docs/ABI.md §3: report(data_ptr, data_len, out_ptr, out_cap) -> evidence length | negative error.
      // The token is kept until the call ends so a retry with a bigger buffer gets the same bytes.
      let last: { data: string; token: Uint8Array } | undefined;
      env.report = (dataPtr: number, dataLen: number, outPtr: number, outCap: number) => {
        pay('report');
        if (!inBounds(dataPtr, dataLen) || !inBounds(outPtr, outCap)) return REPORT_STATUS.outOfBounds;
        // Refused before copying: data_len may be the whole memory, and this runs in a loop.
        if (dataLen < NONCE_MIN_BYTES || dataLen > REPORT_DATA_MAX_BYTES) return REPORT_STATUS.badReportData;
        const data = memoryOf().slice(dataPtr, dataPtr + dataLen);
        const key = Buffer.from(data).toString('hex');
        if (last === undefined || last.data !== key || live?.reportsValid !== true) {
          try {
            last = { data: key, token: createReport(provider, this.#reportContext(), data) };
          } catch (err) {
            return reportStatusFor(err);
          }
          if (live !== undefined) live.reportsValid = true;
        }
        if (last.token.length <= outCap) memoryOf().set(last.token, outPtr);
        return last.token.length;
      };
    }
    if (granted.has('log')) {
      // Bounded per call, so a looping enclave cannot fill the host heap with log lines; nothing
      // is read from enclave memory at all when nobody listens.
      const listening = this.#config.onLog !== undefined;
      env.log = (level: number, ptr: number, len: number) => {
        pay('log', Math.min(len >>> 0, MAX_LOG_MESSAGE));
        if (!listening) return;
        if (this.#pendingLogs.length >= MAX_LOG_LINES) {
          this.#droppedLogs++;
          return;
        }
        this.#pendingLogs.push([LOG_LEVELS[level] ?? 'info', readText(ptr, len, MAX_LOG_MESSAGE)]);
      };
    }

    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(this.#module, { enclave: env });
    } catch (err) {
      throw new EnclaveError(isStackOverflow(err) ? 'stack_overflow' : 'trap', 'The enclave trapped while starting.', { cause: err });
    }
    const exports = instance.exports as Record<string, unknown>;
    const memory = exports.memory as WebAssembly.Memory;
    const metered = this.#config.fuel;
    const fuel = metered === undefined ? undefined : (exports[FUEL_EXPORT] as WebAssembly.Global);
    counter = fuel;
    const globals: WebAssembly.Global[] = [];
    for (let i = 0; i < (metered?.mutableGlobals ?? 0); i++) globals.push(exports[`${GLOBAL_EXPORT_PREFIX}${i}`] as WebAssembly.Global);
    let version: number;
    try {
      // The deferred start function (runtime/fuel.ts) and the version check share one start budget.
      if (fuel !== undefined) fuel.value = this.#budget;
      if (metered?.hasStart === true) (exports[START_EXPORT] as () => void)();
      version = (exports.enclave_abi_version as () => number)();
    } catch (err) {
      if (fuel !== undefined && (fuel.value as number) < 0) {
        throw new EnclaveError('fuel_exhausted', `The start function used more than its ${this.#budget} units of fuel.`, { cause: err });
      }
      throw toEnclaveError(err);
    }
    if (!SUPPORTED_ABI_VERSIONS.includes(version)) {
      throw new EnclaveError('unsupported_abi', `The module speaks ABI version ${version}; this runtime speaks ${SUPPORTED_ABI_VERSIONS.join(', ')}.`);
    }
    live = {
      memory,
      alloc: exports.enclave_alloc as Live['alloc'],
      call: exports.enclave_call as Live['call'],
      u8: new Uint8Array(memory.buffer),
      view: new DataView(memory.buffer),
      done: new Set(),
      reportsValid: false,
      fuel,
      globals,
    };
    return live;
  }

  #flushLogs(): void {
    const logs = this.#pendingLogs;
    this.#pendingLogs = [];
    if (this.#droppedLogs > 0) {
      logs.push(['warn', `enclave log flood: ${this.#droppedLogs} more lines in this call were dropped`]);
      this.#droppedLogs = 0;
    }
    const onLog = this.#config.onLog;
    if (onLog === undefined) return;
    // After the call, never inside it: user code must not run while the enclave is entered.
    queueMicrotask(() => deliverLogs(onLog, logs));
  }
}

/**
 * @internal Hands log lines to the host's `onLog` (both isolation modes). A logger that throws,
 * or an async one that rejects, must not break the enclave's caller nor surface as an uncaught
 * exception or an unhandled rejection, which would end the process.
 */
export function deliverLogs(onLog: (level: LogLevel, message: string) => void, entries: readonly (readonly [LogLevel, string])[]): void {
  for (const [level, message] of entries) {
    try {
      const result: unknown = onLog(level, message);
      if (result instanceof Promise) result.catch(() => undefined);
    } catch {
      // Ignored, as above.
    }
  }
}

/** Copies `src[start, end)` to `dst` at `at`: a plain loop for small copies (no call overhead). */
function copyInto(dst: Uint8Array, at: number, src: Buffer, start: number, end: number): void {
  if (end - start <= 64) {
    for (let i = start; i < end; i++) dst[at++] = src[i]!;
  } else {
    src.copy(dst, at, start, end);
  }
}

function refreshViews(live: Live): Uint8Array {
  live.u8 = new Uint8Array(live.memory.buffer);
  live.view = new DataView(live.memory.buffer);
  return live.u8;
}

function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

/** Maps anything thrown while the enclave ran to a stable code. */
function toEnclaveError(err: unknown): EnclaveError {
  if (err instanceof EnclaveError) return err;
  if (isStackOverflow(err)) return new EnclaveError('stack_overflow', undefined, { cause: err });
  return new EnclaveError('trap', undefined, { cause: err });
}

function checkRequires(op: string, spec: OpCall, live: Live): void {
  for (const required of spec.requires) {
    if (!live.done.has(required)) {
      throw new EnclaveError('state', `"${op}" requires "${required}" to have succeeded first on this enclave.`);
    }
  }
}

