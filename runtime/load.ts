/** The one-step entry: bytes or a path in, a running enclave out. */
import { readFile } from 'node:fs/promises';
import { Enclave, EnclaveModule, type CompileOptions, type EnclaveOptions } from './enclave.js';
import { EnclaveError } from './errors.js';

/** Where module bytes come from: the bytes themselves, or a file path or `file:` URL. */
export type ModuleSource = Uint8Array | ArrayBuffer | string | URL;

/**
 * Reads module bytes from a source.
 * @throws {EnclaveError} `invalid_module` when the file cannot be read.
 */
export async function readModuleBytes(source: ModuleSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (typeof source === 'string' || source instanceof URL) {
    try {
      return new Uint8Array(await readFile(source));
    } catch (err) {
      throw new EnclaveError('invalid_module', `Cannot read the module file: ${(err as NodeJS.ErrnoException).code ?? 'error'}.`, {
        cause: err,
      });
    }
  }
  throw new EnclaveError('invalid_options', 'The module source must be bytes, a path or a file URL.');
}

/**
 * Loads, validates, compiles and instantiates an enclave module.
 * @throws {EnclaveError} `invalid_module`, `invalid_contract`, `capability_denied`, `memory_limit`,
 *   `unsupported_abi`, `invalid_options`, `untrusted_module`, `rollback`.
 * @example
 * import { loadEnclave } from 'enclave';
 * const echo = await loadEnclave('enclave-modules/echo/build/echo.wasm');
 * console.log(await echo.call('echo', { hello: 'enclave' }));
 */
export async function loadEnclave(source: ModuleSource, options: EnclaveOptions & CompileOptions = {}): Promise<Enclave> {
  const { trust, ...enclaveOptions } = options;
  const mod = await EnclaveModule.compile(await readModuleBytes(source), trust === undefined ? {} : { trust });
  return mod.create(enclaveOptions);
}

/**
 * Validates and compiles a module once, to create many enclaves from it.
 * @example
 * const mod = await compileEnclave(bytes);
 * const a = mod.create(), b = mod.create(); // separate memories
 */
export async function compileEnclave(source: ModuleSource, options: CompileOptions = {}): Promise<EnclaveModule> {
  return EnclaveModule.compile(await readModuleBytes(source), options);
}
