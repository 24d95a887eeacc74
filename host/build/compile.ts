/**
 * AssemblyScript to Wasm, in memory, with the built-in settings (./settings.ts).
 *
 * `enclave/...` imports resolve to the package that runs the build, wherever it runs: asc looks
 * for `node_modules/enclave/<path>` in every folder up from the module's directory, and the
 * `readFile` hook below serves any such path from this package's own root, so a module always gets
 * the SDK (and ABI) of the `enclave` that builds it, with or without an install next to it.
 *
 * The compiler is imported here, lazily: only `enclave build` (and `init`) load it.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnclaveError } from '../../core/index.js';
import { COMPONENT_CONSTANT, COMPONENT_ENTRY, componentEntrySource, limitArgs, SDK_ABORT, settingsArgs, type SdkLimits } from './settings.js';

/** What to compile. */
export interface CompileRequest {
  /** The directory asc works from; file names in the output (abort messages) are relative to it. */
  readonly baseDir: string;
  /** The entry file, relative to `baseDir`. */
  readonly entry: string;
  /** The contract's limits: memory maximum and the SDK's constants. Without them: asc's and the ABI's defaults. */
  readonly limits?: SdkLimits;
  /** More asc arguments, after the built-in ones (the SDK's own tests only). */
  readonly extraArgs?: readonly string[];
  /**
   * Compile for a component (./component.ts): asc compiles a generated entry importing `entry`, with
   * the SDK's component mode (`--use ENCLAVE_COMPONENT=1`). Needs `limits` (the abort alias).
   */
  readonly component?: boolean;
}

const SEP = path.sep;
const ENCLAVE_IN_NODE_MODULES = `${SEP}node_modules${SEP}enclave${SEP}`;

let root: Promise<string> | undefined;

/**
 * The root of the package that runs the build: the nearest folder up from this file holding the
 * package.json of `enclave` and the SDK (sdk/index.ts), from the sources and from dist/ alike.
 * @throws {EnclaveError} `build_failed` if the SDK is not there (a broken install).
 */
export function packageRoot(): Promise<string> {
  root ??= (async () => {
    let dir = path.dirname(fileURLToPath(import.meta.url));
    for (;;) {
      try {
        const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
        if (pkg.name === 'enclave' && (await stat(path.join(dir, 'sdk', 'index.ts'))).isFile()) return dir;
      } catch {
        // not here: go up
      }
      const up = path.dirname(dir);
      if (up === dir) {
        root = undefined;
        throw new EnclaveError('build_failed', 'The enclave SDK (sdk/index.ts) is missing from this installation of enclave: reinstall the package.');
      }
      dir = up;
    }
  })();
  return root;
}

/** Where a file asc asks for is read from: `.../node_modules/enclave/<rest>` is `<package>/<rest>`. */
export function mapToPackage(file: string, pkgRoot: string): string {
  const at = file.lastIndexOf(ENCLAVE_IN_NODE_MODULES);
  if (at < 0) return file;
  return path.join(pkgRoot, file.slice(at + ENCLAVE_IN_NODE_MODULES.length));
}

type Asc = typeof import('assemblyscript/asc');

/** The compiler, imported on first use. @throws {EnclaveError} `build_failed` when it is not installed. */
async function loadCompiler(): Promise<Asc> {
  try {
    return await import('assemblyscript/asc');
  } catch (err) {
    throw new EnclaveError(
      'build_failed',
      `The AssemblyScript compiler is not installed, and enclave build needs it: install it next to enclave (npm install ${await compilerSpec()}).`,
      { cause: err },
    );
  }
}

/** `assemblyscript@<the version this package pins>` (one copy of binaryen), or `assemblyscript`. */
async function compilerSpec(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(path.join(await packageRoot(), 'package.json'), 'utf8')) as Record<string, Record<string, unknown> | undefined>;
    const wanted = pkg.optionalDependencies?.assemblyscript ?? pkg.dependencies?.assemblyscript ?? pkg.peerDependencies?.assemblyscript;
    return typeof wanted === 'string' && /^\d+\.\d+\.\d+$/.test(wanted) ? `assemblyscript@${wanted}` : 'assemblyscript';
  } catch {
    return 'assemblyscript';
  }
}

/**
 * Compiles one entry with the built-in settings; returns the module's bytes. Nothing is written.
 * @throws {EnclaveError} `build_failed` with the compiler's diagnostics (no colours).
 * @example
 * const bytes = await compileAssemblyScript({ baseDir: '/work/kv', entry: 'index.ts', limits: contract.limits });
 */
export async function compileAssemblyScript(request: CompileRequest): Promise<Uint8Array> {
  const asc = await loadCompiler();
  const pkgRoot = await packageRoot();
  const baseDir = path.resolve(request.baseDir);
  // asc reads <baseDir>/asconfig.json unless told otherwise: never a user's (the settings are built in).
  const config = path.join(baseDir, 'asconfig.json');
  const component = request.component === true;
  const generated = path.join(baseDir, COMPONENT_ENTRY);
  const out = 'enclave-build-output.wasm';
  let binary: Uint8Array | undefined;
  const stdout = asc.createMemoryStream();
  const stderr = asc.createMemoryStream();
  const args = [
    component ? COMPONENT_ENTRY : request.entry,
    '--baseDir', baseDir,
    ...settingsArgs(),
    ...(request.limits === undefined ? [] : limitArgs(request.limits)),
    ...(component ? ['--use', `${COMPONENT_CONSTANT}=1`] : []),
    '--noColors',
    ...(request.extraArgs ?? []),
    '--outFile', out,
  ];
  let result: { error: Error | null };
  try {
    result = await asc.main(args, {
      stdout,
      stderr,
      readFile: async (name: string, dir: string) => {
        const file = path.resolve(dir, name);
        if (file === config) return null;
        if (component && file === generated) return componentEntrySource(request.entry);
        try {
          return await readFile(mapToPackage(file, pkgRoot), 'utf8');
        } catch {
          return null;
        }
      },
      writeFile: (name: string, contents: Uint8Array | string) => {
        if (path.basename(name) === out && typeof contents !== 'string') binary = contents;
      },
      listFiles: async () => [],
    });
  } catch (err) {
    throw new EnclaveError('build_failed', `The AssemblyScript compiler failed on ${path.join(baseDir, request.entry)}: ${(err as Error).message}`, { cause: err });
  }
  if (result.error !== null || binary === undefined) {
    const diagnostics = stderr.toString().trim();
    // A module that does not include the SDK's exports has no abort replacement to alias.
    const hint = diagnostics.includes(`'${SDK_ABORT}' not found`)
      ? '\nThe entry must re-export the ABI exports of the SDK: export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";'
      : '';
    throw new EnclaveError(
      'build_failed',
      `Compiling ${path.join(baseDir, request.entry)} failed (file names below are relative to ${baseDir}):\n${diagnostics || result.error?.message || 'no output'}${hint}`,
    );
  }
  return binary.slice();
}
