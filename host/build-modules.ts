/**
 * Builds enclave modules: AssemblyScript to Wasm with the settings of asconfig.json, then the
 * contract embedded as the `enclave.contract` custom section (docs/ABI.md §6), so the contract is
 * covered by the module's measurement.
 *
 * Reproducible: the compiler is pinned by package-lock.json, the contract is re-serialised from
 * its parsed form, and no path, time or host detail enters the output; the same sources give
 * byte-identical `.wasm` files (checked by test/build.test.ts).
 */
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import asc from 'assemblyscript/asc';
import { CONTRACT_SECTION, EnclaveError, encodeCustomSection, UsageError } from '../core/index.js';
import { parseContract } from '../runtime/index.js';

/** One built module. */
export interface BuiltModule {
  readonly name: string;
  readonly output: string;
  readonly bytes: number;
}

/** Options of {@link buildModules}. */
export interface BuildOptions {
  /** Project root holding asconfig.json and enclave-modules/; default: the working directory. */
  root?: string;
  /** Module directories (relative to root) to build; default: every enclave-modules/* with a contract.json. */
  modules?: string[];
}


async function findModules(root: string): Promise<string[]> {
  const base = path.join(root, 'enclave-modules');
  let entries;
  try {
    entries = await readdir(base, { withFileTypes: true });
  } catch (err) {
    // Run in the wrong directory (an installed package's user, a typo in --root): say where we looked.
    throw new UsageError(
      `No enclave-modules/ directory in ${root}: run enclave build in a project holding enclave-modules/<name>/ ` +
        '(index.ts and contract.json) and asconfig.json, or pass --root.',
      { cause: err },
    );
  }
  const found: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isDirectory()) continue;
    const dir = path.join('enclave-modules', entry.name);
    if (await exists(path.join(root, dir, 'contract.json'))) found.push(dir);
  }
  return found;
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Compiles one module directory (`index.ts` + `contract.json`) to `build/<name>.wasm`.
 * @throws {EnclaveError} `invalid_contract` for a bad contract, `invalid_module` when asc fails.
 */
export async function buildModule(root: string, dir: string): Promise<BuiltModule> {
  const contractPath = path.join(root, dir, 'contract.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(contractPath, 'utf8'));
  } catch (err) {
    throw new EnclaveError('invalid_contract', `${contractPath} is not readable JSON: ${(err as Error).message}`);
  }
  const contract = parseContract(raw);
  const wasmRel = path.join(dir, 'build', `${contract.name}.wasm`);
  const stdout = asc.createMemoryStream();
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main(
    [
      path.join(dir, 'index.ts'),
      '--config', 'asconfig.json',
      '--target', 'release',
      '--maximumMemory', String(contract.limits.memoryPages),
      '--outFile', wasmRel,
      '--baseDir', root,
    ],
    { stdout, stderr },
  );
  if (error) {
    throw new EnclaveError('invalid_module', `asc failed for ${dir}:\n${stderr.toString()}`);
  }
  const wasmPath = path.join(root, wasmRel);
  const compiled = new Uint8Array(await readFile(wasmPath));
  // Embed what the author wrote, validated and re-serialised without whitespace (the same bytes
  // every time); parseContract fills in the same defaults at load.
  const section = encodeCustomSection(CONTRACT_SECTION, new TextEncoder().encode(JSON.stringify(raw)));
  const out = new Uint8Array(compiled.length + section.length);
  out.set(compiled, 0);
  out.set(section, compiled.length);
  await mkdir(path.dirname(wasmPath), { recursive: true });
  await writeFile(wasmPath, out);
  return { name: contract.name, output: wasmRel, bytes: out.length };
}

/**
 * Builds every enclave module of a project (or the ones named).
 * @throws {UsageError} when `root` has no enclave-modules/ directory (and no modules are named);
 *   {@link EnclaveError} `invalid_contract` or `invalid_module` from {@link buildModule}.
 * @example
 * const built = await buildModules({ root: process.cwd() });
 */
export async function buildModules(options: BuildOptions = {}): Promise<BuiltModule[]> {
  const root = path.resolve(options.root ?? process.cwd());
  const dirs = options.modules ?? (await findModules(root));
  const built: BuiltModule[] = [];
  for (const dir of dirs) built.push(await buildModule(root, dir));
  return built;
}
