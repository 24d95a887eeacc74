/**
 * The compiled module: bytes checked against the ABI (docs/ABI.md §2, §3), measured, instrumented
 * and compiled once; `create` makes as many running enclaves from it as needed.
 *
 * ```
 *  bytes ──compile──► EnclaveModule ──create(options)──► Enclave (runtime/instance.ts)
 *        read, validate,                settle options,
 *        contract, identity,            check memory and table limits
 *        instrument, compile
 * ```
 */
import { createHash } from 'node:crypto';
import { EnclaveError, formatFuncType, isComponent, quoteInput, readModuleInfo } from '../core/index.js';
import type { ModuleIdentity } from '../attest/index.js';
import { instrumentCached } from './_fuel-cache.js';
import { ABORT_IMPORT, IMPORT_MODULE, MEMORY_EXPORT, REQUIRED_EXPORTS } from './abi.js';
import { CAPABILITY_BY_IMPORT, checkGrant } from './capabilities/index.js';
import { moduleContract, type Contract } from './contract.js';
import type { FuelManifest } from './fuel.js';
import { Enclave } from './instance.js';
import { plainProgram, type ComponentParts, type ComponentProgram } from './_component-live.js';
import type { ModuleParts } from './_module-parts.js';
import type { FuncType, ModuleInfo } from '../core/index.js';
import { settleCompileOptions, settleEnclaveOptions, type CompileOptions, type EnclaveConfig, type EnclaveOptions } from './options.js';
import { RESERVED_EXPORT_PREFIX } from './fuel.js';

/*
 * Internals shared with worker mode (runtime/worker.ts, runtime/_worker-main.ts), kept off the
 * public surface behind symbols. Whoever adds state to EnclaveModule extends MODULE_PARTS and
 * FROM_PARTS, so a worker rebuilds the same module without compiling it again.
 */
/** @internal `EnclaveModule[MODULE_PARTS]()`: what a worker needs, structured-cloneable. */
export const MODULE_PARTS: unique symbol = Symbol('enclave.moduleParts');
/** @internal `EnclaveModule[FROM_PARTS](parts)`: the module rebuilt in another thread. */
export const FROM_PARTS: unique symbol = Symbol('enclave.fromParts');
/** @internal `EnclaveModule[CREATE_SETTLED](config)`: `create` from options settled already (worker mode). */
export const CREATE_SETTLED: unique symbol = Symbol('enclave.createSettled');

/** @internal The parts of a compiled module that cross to a worker (runtime/_module-parts.ts). */
export type { ModuleParts } from './_module-parts.js';

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

/** The import's capability and type, or undefined for a name that is no capability. */
function importSpec(name: string): { capability: string | undefined; type: FuncType } | undefined {
  if (name === ABORT_IMPORT.name) return { capability: undefined, type: ABORT_IMPORT.type };
  const capability = Object.prototype.hasOwnProperty.call(CAPABILITY_BY_IMPORT, name) ? CAPABILITY_BY_IMPORT[name] : undefined;
  return capability === undefined ? undefined : { capability: capability.capability, type: capability.type };
}

/** Checks imports and exports against docs/ABI.md §2, §3. */
function validateShape(info: ModuleInfo, contract: Contract): void {
  for (const imp of info.imports) {
    // Names from the module are hostile text: quoted and cut short in messages.
    const where = `${quoteInput(imp.module)}.${quoteInput(imp.name)}`;
    if (imp.module !== IMPORT_MODULE) {
      invalid(`The module imports ${where}: enclaves may import only from "${IMPORT_MODULE}" (docs/ABI.md §3).`);
    }
    const spec = importSpec(imp.name);
    if (spec === undefined || imp.kind !== 'function') {
      invalid(`The module imports ${where} (${imp.kind}), which is not an enclave capability.`);
    }
    if (!sameType(imp.type!, spec.type)) {
      invalid(`The import ${where} has type ${formatFuncType(imp.type)}; the ABI says ${formatFuncType(spec.type)}.`);
    }
    if (spec.capability !== undefined && !(contract.capabilities as readonly string[]).includes(spec.capability)) {
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
  const memExport = info.exports.find((e) => e.name === MEMORY_EXPORT);
  if (memExport === undefined || memExport.kind !== 'memory') invalid(`The module does not export its "${MEMORY_EXPORT}".`);
  if (info.memories.length !== 1) invalid('The module must define exactly one memory of its own.');
  const mem = info.memories[0]!;
  if (mem.shared || mem.memory64) invalid('The module memory must be a plain (unshared, 32-bit) memory.');
  if (mem.maximum === undefined) {
    throw new EnclaveError('memory_limit', 'The module memory declares no maximum: build it with one (docs/ABI.md §2).');
  }
}

/**
 * @internal The options of an enclave of this contract settled, as `create` settles them; worker
 * mode settles on the host thread with it and sends the result to the worker.
 * @throws {EnclaveError} `invalid_options`, `capability_denied`.
 */
export function settleFor(contract: Contract, options: EnclaveOptions): EnclaveConfig {
  return settleEnclaveOptions(contract, options, checkGrant);
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
  /** A component's parts and the program its enclaves run (runtime/_component-live.ts). */
  readonly #component: ComponentParts | undefined;
  readonly #program: ComponentProgram | undefined;
  #plainProgram: ComponentProgram | undefined;
  readonly #tableElements: number;

  private constructor(parts: ModuleParts, program?: ComponentProgram) {
    this.#module = parts.module;
    this.info = parts.info;
    this.contract = parts.contract;
    this.identity = parts.identity;
    this.measurement = parts.identity.measurement;
    this.#memoryMaximum = parts.info.memories[0]!.maximum!;
    this.#fuel = parts.fuel;
    this.#original = parts.original;
    this.#component = parts.component;
    this.#program = program;
    this.#tableElements = parts.component?.tableElements ?? parts.info.tables.reduce((n, t) => n + t.initial, 0);
  }

  /**
   * Validates and compiles module bytes. The bytes are copied first, so changing them afterwards
   * changes nothing.
   * @throws {EnclaveError} `invalid_module`, `invalid_contract`, `capability_denied`, `memory_limit`,
   *   `untrusted_module`, `rollback`, `invalid_options`; `timeout` when instrumentation passes its deadline.
   * @example
   * const mod = await EnclaveModule.compile(bytes, { cacheDir: false });
   */
  static async compile(source: Uint8Array, options: CompileOptions = {}): Promise<EnclaveModule> {
    const { trust, cacheDir } = settleCompileOptions(options);
    const bytes = source.slice();
    if (isComponent(bytes)) {
      // A component (issue 14): its own gate and glue, then the same module, enclaves and limits.
      const { compileComponent } = await import('./_component-module.js');
      const { parts, program } = await compileComponent(bytes, trust, cacheDir);
      return new EnclaveModule(parts, program);
    }
    const info = readModuleInfo(bytes);
    if (!WebAssembly.validate(bytes)) {
      throw new EnclaveError('invalid_module', 'The module does not validate as WebAssembly: rebuild it.');
    }
    // Read from the original bytes: they are what is measured and what the contract belongs to.
    const contract = moduleContract(bytes);
    validateShape(info, contract);
    // Loaded here, not at the top: a worker thread imports this file to rebuild the module but never
    // measures, and attest/index.js brings jose and the whole platform with it (+60 ms per worker start).
    const { identify } = await import('./_identify.js');
    const identity = identify(bytes, trust);
    // Instrumented after measuring (runtime/fuel.ts); cached by the hash of the exact bytes, which,
    // unlike the measurement, covers the signature section too.
    const hash = createHash('sha256').update(bytes).digest('hex');
    const { bytes: metered, manifest } = await instrumentCached(bytes, hash, cacheDir);
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(metered);
    } catch (err) {
      throw new EnclaveError('invalid_module', `The instrumented module does not compile: ${(err as Error).message}.`);
    }
    return new EnclaveModule({ module, info, contract, identity, fuel: manifest, original: bytes });
  }

  /**
   * The measurement of the bytes this module keeps, recomputed now: SHA-256 of its private copy of
   * the module bytes (taken at compile, the bytes `measurement` was computed from and that
   * `metering: false` compiles), without the signature section, through attest's `measure`. Equal
   * to `measurement` unless that copy changed in memory since (the host's integrity check compares
   * them on a schedule).
   *
   * What it does not cover: the code V8 runs. The compiled `WebAssembly.Module` (from the
   * instrumented bytes) and the machine code V8 made of it cannot be read back from JavaScript,
   * so they are not re-hashable; nor are the instrumented bytes, which are not kept. A change to
   * those in memory (an attacker writing the process's memory) is outside what this sees: it
   * detects the kept bytes changing, by a bug or an attacker reaching the JavaScript heap, and,
   * with the module's file re-read and measured beside it, the file changing on disk.
   *
   * attest/ is loaded on the first call (as `compile` loads it), so a worker, which rebuilds a
   * module without ever calling this, never loads it.
   * @throws {EnclaveError} `invalid_module` if the kept bytes no longer parse as a module (then
   *   they changed: a mismatch for the caller as much as a different hash).
   * @example
   * if ((await mod.remeasure()) !== mod.measurement) takeOutOfService();
   */
  async remeasure(): Promise<string> {
    const { measurementOf } = await import('./_identify.js');
    try {
      return measurementOf(this.#original);
    } catch (err) {
      throw new EnclaveError('invalid_module', 'The module bytes kept in memory no longer parse as a module: they changed since compile.', { cause: err });
    }
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
    return this[CREATE_SETTLED](settleFor(this.contract, options));
  }

  /**
   * @internal Creates an enclave from settled options.
   * @throws {EnclaveError} as {@link EnclaveModule.create}.
   */
  [CREATE_SETTLED](config: EnclaveConfig): Enclave {
    if (this.#memoryMaximum > config.limits.memoryPages) {
      throw new EnclaveError(
        'memory_limit',
        `The module memory may grow to ${this.#memoryMaximum} pages; the limit is ${config.limits.memoryPages}.`,
      );
    }
    // Before any instance exists (in worker mode too, where this runs in the worker): a table is
    // allocated whole at instantiation, and one large allocation is more than a worker's
    // resourceLimits can contain (docs/LIMITS.md, "Tables").
    const tableElements = this.#tableElements;
    if (tableElements > config.limits.tableElements) {
      throw new EnclaveError('memory_limit', `The module table holds ${tableElements} elements; the limit is ${config.limits.tableElements}.`);
    }
    const program = this.#program;
    if (program !== undefined) {
      if (!config.metering) {
        this.#plainProgram ??= plainProgram(this.#original, this.#component!, program.instantiate);
        return new Enclave(this.#plainProgram, this.contract, this.identity, config);
      }
      return new Enclave(program, this.contract, this.identity, { ...config, fuel: this.#fuel });
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
      ...(this.#component === undefined ? {} : { component: this.#component }),
    };
  }

  /** @internal Rebuilds a module from its parts in a worker: validated and measured already. */
  static [FROM_PARTS](parts: unknown, program?: ComponentProgram): EnclaveModule {
    return new EnclaveModule(parts as ModuleParts, program);
  }
}
