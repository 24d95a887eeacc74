/** The one-step entry: bytes or a path in, a running enclave out. */
import { EnclaveError, MODULE_BOUNDS, readBoundedFile } from '../core/index.js';
import type { AnyOps, EnclaveHandle, OpsTypes, WithOps } from './handle.js';
import type { Enclave } from './instance.js';
import { EnclaveModule } from './module.js';
import { settleHostOptions, type CompileOptions, type EnclaveOptions, type WorkerEnclaveOptions } from './options.js';
import { WorkerEnclave } from './worker.js';

/** Options of an enclave in the host's thread (the default isolation). */
export type InProcessOptions = EnclaveOptions & CompileOptions & { isolation?: 'in-process' };
/** Options of {@link loadEnclave}: in-process (the default) or in its own worker (docs/LIMITS.md). */
export type LoadOptions = InProcessOptions | (WorkerEnclaveOptions & CompileOptions);

/** Where module bytes come from: the bytes themselves, or a file path or `file:` URL. */
export type ModuleSource = Uint8Array | ArrayBuffer | string | URL;

function tooLarge(size: number): never {
  throw new EnclaveError(
    'invalid_module',
    `The module file is ${size} bytes or more; the runtime accepts at most ${MODULE_BOUNDS.moduleBytes} (docs/LIMITS.md, "Module structure").`,
  );
}

/**
 * Reads module bytes from a source. A path must name a regular file: a FIFO or a device
 * (`/dev/zero`) would hang the read or grow memory without end, and a file larger than
 * `MODULE_BOUNDS.moduleBytes` is refused before it is read.
 * @throws {EnclaveError} `invalid_module` when the file cannot be read, is not a regular file or is too large.
 */
export async function readModuleBytes(source: ModuleSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (typeof source === 'string' || source instanceof URL) {
    const read = await readBoundedFile(source, MODULE_BOUNDS.moduleBytes);
    switch (read.kind) {
      case 'ok':
        return read.bytes;
      case 'too_large':
        return tooLarge(read.size);
      case 'not_regular':
      case 'errno': {
        // The cause carries the system's code (or 'not a regular file'): the CLI names it.
        const code = read.kind === 'errno' ? read.code : 'not a regular file';
        const cause = read.kind === 'errno' ? read.error : Object.assign(new Error(code), { code });
        throw new EnclaveError('invalid_module', `Cannot read the module file: ${code}.`, { cause });
      }
    }
  }
  throw new EnclaveError('invalid_options', 'The module source must be bytes, a path or a file URL.');
}

/**
 * Loads, validates, compiles and instantiates an enclave module.
 * @throws {EnclaveError} `invalid_module`, `invalid_contract`, `capability_denied`, `memory_limit`,
 *   `unsupported_abi`, `invalid_options`, `untrusted_module`, `rollback`; `trap`, `stack_overflow` or
 *   `fuel_exhausted` when the start function fails; `timeout` when instrumenting the module takes
 *   longer than its deadline, `overloaded` when too many modules wait to be instrumented
 *   (docs/LIMITS.md, "Module structure").
 * @example
 * import { loadEnclave } from 'enclave';
 * const echo = await loadEnclave('enclave-modules/echo/build/echo.wasm');
 * console.log(await echo.call('echo', { hello: 'enclave' }));
 * @example
 * // Typed calls: `Ops` as written by `enclave types kv.wasm --out kv-types.d.ts` (types only: the
 * // runtime checks the args against the contract whatever the type checker was told).
 * const kv = await loadEnclave<KvOps>('kv.wasm');
 */
export async function loadEnclave<Ops extends OpsTypes<Ops> = AnyOps>(source: ModuleSource, options?: InProcessOptions): Promise<WithOps<Enclave, Ops>>;
/**
 * Loads an enclave into its own worker thread, with a deadline per call (docs/LIMITS.md).
 * @throws {EnclaveError} as above, and `timeout` when the worker does not start in time.
 * @example
 * const enclave = await loadEnclave('counter.wasm', { isolation: 'worker', deadlineMs: 500 });
 */
export async function loadEnclave<Ops extends OpsTypes<Ops> = AnyOps>(
  source: ModuleSource,
  options: WorkerEnclaveOptions & CompileOptions,
): Promise<WithOps<WorkerEnclave, Ops>>;
export async function loadEnclave<Ops extends OpsTypes<Ops> = AnyOps>(source: ModuleSource, options?: LoadOptions): Promise<EnclaveHandle<Ops>>;
export async function loadEnclave(source: ModuleSource, options: LoadOptions = {}): Promise<EnclaveHandle> {
  if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_options', 'The options must be an object.');
  const { trust, cacheDir, isolation = 'in-process', ...enclaveOptions } = options;
  // Conflicts that need no module (isolation, worker-only options in-process) are refused before
  // anything is read; the rest is settled against the contract (runtime/options.ts).
  const host = settleHostOptions(options, isolation);
  const compile: CompileOptions = { ...(trust === undefined ? {} : { trust }), ...(cacheDir === undefined ? {} : { cacheDir }) };
  const mod = await EnclaveModule.compile(await readModuleBytes(source), compile);
  return isolation === 'worker' ? WorkerEnclave.start(mod, { ...enclaveOptions, isolation }, host) : mod.create(enclaveOptions);
}

/**
 * A compiled module whose `create` returns enclaves typed by `Ops` (`compileEnclave<Ops>`); still
 * an `EnclaveModule` (for `createWorkerEnclave`), and exactly one when `Ops` is {@link AnyOps}.
 */
export type TypedModule<Ops> = string extends keyof Ops ? EnclaveModule : { create(options?: EnclaveOptions): WithOps<Enclave, Ops> } & EnclaveModule;

/**
 * Validates and compiles a module once, to create many enclaves from it.
 * @example
 * const mod = await compileEnclave(bytes);
 * const a = mod.create(), b = mod.create(); // separate memories
 * const kv = (await compileEnclave<KvOps>('kv.wasm')).create(); // calls typed by `enclave types`
 */
export async function compileEnclave<Ops extends OpsTypes<Ops> = AnyOps>(source: ModuleSource, options: CompileOptions = {}): Promise<TypedModule<Ops>> {
  // Types only: the module is the same whatever `Ops` says.
  return (await EnclaveModule.compile(await readModuleBytes(source), options)) as TypedModule<Ops>;
}
