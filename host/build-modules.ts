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
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { CONTRACT_SECTION, EnclaveError, encodeCustomSection, MAX_CONTRACT_BYTES, readBoundedFile, UsageError } from '../core/index.js';
import { parseContract, type Contract } from '../runtime/index.js';
import { checkBuilt } from './build/check.js';
import { compileAssemblyScript } from './build/compile.js';

/** One built module. */
export interface BuiltModule {
  /** The contract's name. */
  readonly name: string;
  /** The module's directory, absolute. */
  readonly dir: string;
  /** The `.wasm` written, absolute. */
  readonly output: string;
  readonly bytes: number;
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
  const contractPath = path.join(dir, 'contract.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readContractText(contractPath));
  } catch (err) {
    if (err instanceof EnclaveError) throw err;
    throw new EnclaveError('invalid_contract', `${contractPath} is not readable JSON: ${(err as Error).message}`, { cause: err });
  }
  let contract: Contract;
  try {
    contract = parseContract(raw);
  } catch (err) {
    if (err instanceof EnclaveError) throw new EnclaveError(err.code, `${contractPath}: ${err.message}`, { cause: err });
    throw err;
  }
  // The SDK holds a request of up to requestBytes and a reply of up to replyBytes in the module's
  // memory: with limits they cannot fit in, the module would build, and a call its contract allows
  // would trap and lose the instance's state. (Necessary, not sufficient: the module's own data
  // needs room too.)
  const { requestBytes, replyBytes, memoryPages } = contract.limits;
  if (requestBytes + replyBytes > memoryPages * 65536) {
    throw new EnclaveError(
      'invalid_contract',
      `${contractPath}: limits.requestBytes (${requestBytes}) and limits.replyBytes (${replyBytes}) do not fit in limits.memoryPages ` +
        `(${memoryPages} pages of 64 KiB): the SDK holds a request and a reply in the module's memory; raise memoryPages above ` +
        `${Math.ceil((requestBytes + replyBytes) / 65536)}, or lower the byte limits.`,
    );
  }
  // Embedded as the author wrote it, validated and re-serialised without whitespace (the same bytes
  // every time); parseContract fills in the same defaults at load. The runtime refuses a section
  // over MAX_CONTRACT_BYTES: refused here, before anything compiles (re-serialising can grow it).
  const payload = new TextEncoder().encode(JSON.stringify(raw));
  if (payload.length > MAX_CONTRACT_BYTES) throw contractTooLarge(contractPath, `${payload.length} bytes re-serialised (without whitespace)`);
  return { dir, contract, payload };
}

function contractTooLarge(file: string, size: string): EnclaveError {
  return new EnclaveError(
    'invalid_contract',
    `${file} is ${size}, more than the 1 MiB (${MAX_CONTRACT_BYTES} bytes) a contract may hold: shorten it.`,
  );
}

/**
 * A contract.json's text, read with a bound ({@link readBoundedFile}): a regular file of at most
 * MAX_CONTRACT_BYTES. A FIFO, a device such as /dev/zero or a huge file is refused, never waited on
 * nor read whole.
 * @throws {EnclaveError} `invalid_contract`; the file system's error when it cannot be read.
 */
async function readContractText(file: string): Promise<string> {
  const read = await readBoundedFile(file, MAX_CONTRACT_BYTES);
  switch (read.kind) {
    case 'ok':
      return Buffer.from(read.bytes.buffer, read.bytes.byteOffset, read.bytes.length).toString('utf8');
    case 'not_regular':
      throw new EnclaveError('invalid_contract', `${file} is not a regular file: a contract is a JSON file.`);
    case 'too_large':
      throw contractTooLarge(file, read.atLeast ? `over ${MAX_CONTRACT_BYTES} bytes` : `${read.size} bytes`);
    case 'errno':
      throw read.error;
  }
}

/** Compiles, embeds the contract, checks: the module's final bytes. */
async function buildBytes(sources: ModuleSources): Promise<Uint8Array> {
  const { dir, contract, payload } = sources;
  const compiled = await compileAssemblyScript({ baseDir: dir, entry: 'index.ts', limits: contract.limits });
  const section = encodeCustomSection(CONTRACT_SECTION, payload);
  const out = new Uint8Array(compiled.length + section.length);
  out.set(compiled, 0);
  out.set(section, compiled.length);
  await checkBuilt(out, contract, dir);
  return out;
}

/**
 * Writes a file whole or not at all (a reader never sees half a module), through a temporary file
 * next to it, created new ('wx': a file or a link already at that name is refused, never written
 * through) and removed when anything fails.
 * @throws {UsageError} naming the file when it cannot be written (its folder is a file, no permission...).
 */
async function writeAtomic(file: string, bytes: Uint8Array): Promise<void> {
  // A random part: a temporary file a killed build left (same pid in a container) does not block the next.
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let created = false;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    const handle = await open(tmp, 'wx');
    created = true;
    try {
      await handle.writeFile(bytes);
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`Cannot write ${file}: ${code}: choose an --out directory this user can write.`, { cause: err });
  }
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
function outputOf(sources: ModuleSources, outDir: string | undefined): string {
  return path.join(outDir ?? path.join(sources.dir, 'build'), `${sources.contract.name}.wasm`);
}

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
    await writeAtomic(output, bytes);
    built.push({ name: sources.contract.name, dir: sources.dir, output, bytes: bytes.length });
  }
  return built;
}
