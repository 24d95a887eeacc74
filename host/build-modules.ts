/**
 * `enclave build`: enclave modules from AssemblyScript sources, self-contained. Each module is a
 * directory holding `index.ts` and `contract.json`; it is compiled with the built-in settings
 * (host/build/settings.ts, never an asconfig.json) against the SDK of this package (`enclave/sdk`,
 * host/build/compile.ts), given its contract's limits as the SDK's constants, then the contract is
 * embedded as the `enclave.contract` custom section (docs/ABI.md §6), so the contract is covered by
 * the module's measurement. Last, a load check (host/build/check.ts): the module loads with the
 * runtime and every contract op has a handler.
 *
 * Reproducible: the compiler is pinned by package-lock.json, asc works from the module's own
 * directory (so the file names that reach abort messages are relative to it), the contract is
 * re-serialised from its parsed JSON, and no path, time or host detail enters the output: the same
 * sources give byte-identical `.wasm` files from any working directory (test/build.test.ts).
 *
 * With `component`, each module is also built as a component of the world `enclave`
 * (wit/enclave.wit) from the same sources, to `<name>.component.wasm` next to the core module
 * (host/build/component.ts), as reproducibly (test/build-component.test.ts).
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../core/index.js';
import type { Contract } from '../runtime/index.js';
import { checkBuilt } from './build/check.js';
import { checkComponent, makeComponent } from './build/component.js';
import { appendContract, readContractFile } from './build/contract-file.js';
import { compileAssemblyScript } from './build/compile.js';
import { writeAtomic } from './build/write-atomic.js';

/** One built module. */
export interface BuiltModule {
  /** The contract's name. */
  readonly name: string;
  /** The module's directory, absolute. */
  readonly dir: string;
  /** The `.wasm` written, absolute. */
  readonly output: string;
  readonly bytes: number;
  /** With `component`: the `<name>.component.wasm` written, absolute, and its size. */
  readonly component?: { readonly output: string; readonly bytes: number };
}

/** Options of {@link buildModules}. */
export interface BuildOptions {
  /**
   * Module directories, absolute or relative to `cwd`. Default: every `enclave-modules/<name>/`
   * under `cwd` holding a contract.json.
   */
  dirs?: readonly string[];
  /** Where to write `<name>.wasm`, absolute or relative to `cwd`. Default: each module's `build/`. */
  out?: string;
  /** The directory relative paths start from. Default: `process.cwd()`. */
  cwd?: string;
  /** Also build each module as a component, `<name>.component.wasm` next to `<name>.wasm`. */
  component?: boolean;
}

/** The sources of one module, read and checked. */
interface ModuleSources {
  readonly dir: string;
  readonly contract: Contract;
  /** The contract as the author wrote it (parsed JSON), re-serialised: the bytes embedded. */
  readonly payload: Uint8Array;
}

async function findModules(cwd: string): Promise<string[]> {
  const base = path.join(cwd, 'enclave-modules');
  let entries;
  try {
    entries = await readdir(base, { withFileTypes: true });
  } catch (err) {
    // Run in the wrong directory (a project with its modules elsewhere): say where we looked.
    throw new UsageError(
      `No enclave-modules/ directory in ${cwd}: pass the module directories to build (enclave build <dir>...), ` +
        'each holding index.ts and contract.json.',
      { cause: err },
    );
  }
  const found: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!entry.isDirectory()) continue;
    const dir = path.join(base, entry.name);
    if (await isFile(path.join(dir, 'contract.json'))) found.push(dir);
  }
  return found;
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/**
 * Reads and checks a module directory's sources.
 * @throws {UsageError} for a missing directory or index.ts; {@link EnclaveError} `invalid_contract`.
 */
async function readSources(dir: string): Promise<ModuleSources> {
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    throw new UsageError(`${dir} does not exist: pass a module directory holding index.ts and contract.json.`, { cause: err });
  }
  if (!info.isDirectory()) throw new UsageError(`${dir} is not a directory: pass a module directory holding index.ts and contract.json.`);
  const entry = path.join(dir, 'index.ts');
  if (!(await isFile(entry))) throw new UsageError(`${entry} does not exist: a module directory holds index.ts (its entry) and contract.json.`);
  const { contract, payload } = await readContractFile(path.join(dir, 'contract.json'));
  return { dir, contract, payload };
}

/** Compiles, embeds the contract, checks: the module's final bytes. */
async function buildBytes(sources: ModuleSources): Promise<Uint8Array> {
  const { dir, contract, payload } = sources;
  const compiled = await compileAssemblyScript({ baseDir: dir, entry: 'index.ts', limits: contract.limits });
  const out = appendContract(compiled, payload);
  await checkBuilt(out, contract, dir);
  return out;
}

/**
 * Compiles the same sources for a component (the SDK's component mode), makes the component with the
 * contract as its top-level section, checks it: the component's final bytes.
 */
async function buildComponentBytes(sources: ModuleSources): Promise<Uint8Array> {
  const { dir, contract, payload } = sources;
  const compiled = await compileAssemblyScript({ baseDir: dir, entry: 'index.ts', limits: contract.limits, component: true });
  const component = await makeComponent(compiled, payload, dir);
  await checkComponent(component, contract, dir);
  return component;
}

/**
 * Builds one module directory (`index.ts` + `contract.json`) to `<dir>/build/<name>.wasm`, or to
 * `<outDir>/<name>.wasm`.
 * @throws {UsageError} for a missing directory or index.ts, an output that cannot be written; {@link EnclaveError} `invalid_contract`
 *   for a bad contract, `build_failed` for a compile error or a failed load check.
 * @example
 * const built = await buildModule('/work/kv');
 */
export async function buildModule(dir: string, outDir?: string): Promise<BuiltModule> {
  return (await buildModules({ dirs: [dir], ...(outDir === undefined ? {} : { out: outDir }) }))[0]!;
}

/** Where a module's `.wasm` goes: `<outDir>/<name>.wasm`, else `<dir>/build/<name>.wasm`. */
function outputOf(sources: ModuleSources, outDir: string | undefined, suffix = '.wasm'): string {
  return path.join(outDir ?? path.join(sources.dir, 'build'), `${sources.contract.name}${suffix}`);
}

/** The suffix of a component's file: `<name>.component.wasm`. */
const COMPONENT_SUFFIX = '.component.wasm';

/** Refuses an --out that exists and is not a directory, before anything compiles. */
async function checkOutDir(outDir: string): Promise<void> {
  let info;
  try {
    info = await stat(outDir);
  } catch {
    return; // created when the first module is written
  }
  if (!info.isDirectory()) throw new UsageError(`--out ${outDir} is not a directory: pass a directory for the .wasm files.`);
}

/**
 * Builds the modules named (or every `enclave-modules/*` with a contract.json under `cwd`). Every
 * directory and contract is checked before anything compiles; modules are built one after another.
 * @throws {UsageError} as {@link buildModule}, and when two modules would write the same file;
 *   {@link EnclaveError} `invalid_contract`, `build_failed`.
 * @example
 * const built = await buildModules({ dirs: ['kv'], out: 'dist/enclaves' });
 */
export async function buildModules(options: BuildOptions = {}): Promise<BuiltModule[]> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const dirs = options.dirs === undefined || options.dirs.length === 0 ? await findModules(cwd) : options.dirs.map((d) => path.resolve(cwd, d));
  const outDir = options.out === undefined ? undefined : path.resolve(cwd, options.out);
  if (outDir !== undefined) await checkOutDir(outDir);
  const all: ModuleSources[] = [];
  const outputs = new Map<string, string>();
  for (const dir of dirs) {
    const sources = await readSources(dir);
    const output = outputOf(sources, outDir);
    const other = outputs.get(output);
    if (other !== undefined && other !== sources.dir) {
      throw new UsageError(`${other} and ${sources.dir} would both be written to ${output}: build them to different --out directories.`);
    }
    if (other === undefined) all.push(sources);
    outputs.set(output, sources.dir);
  }
  const built: BuiltModule[] = [];
  for (const sources of all) {
    const bytes = await buildBytes(sources);
    const output = outputOf(sources, outDir);
    // Both built before either is written: a module is never left with a component of other sources.
    const component = options.component === true ? await buildComponentBytes(sources) : undefined;
    await writeAtomic(output, bytes);
    if (component === undefined) {
      built.push({ name: sources.contract.name, dir: sources.dir, output, bytes: bytes.length });
      continue;
    }
    const componentOutput = outputOf(sources, outDir, COMPONENT_SUFFIX);
    await writeAtomic(componentOutput, component);
    built.push({ name: sources.contract.name, dir: sources.dir, output, bytes: bytes.length, component: { output: componentOutput, bytes: component.length } });
  }
  return built;
}
