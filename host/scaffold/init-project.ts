/**
 * `enclave init`: writes a new enclave project (./kv-template.ts) into a folder, safely.
 *
 * The folder and the name come from the command line, so they are checked before anything is
 * written: the name must be a valid contract name (then it is also a safe file name); the folder
 * must be a real directory (not a file, not a symbolic link) and empty unless `force`; no existing
 * file is ever overwritten, even with `force`; nothing is written outside the folder, and no
 * symbolic link inside it is followed (files are created with O_EXCL, which refuses an existing
 * path, link or not). If a write fails, the files and folders this call created are removed again.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { EnclaveError, UsageError } from '../../core/index.js';
import { parseContract } from '../../runtime/index.js';
import { kvContract, scaffoldFiles, type ScaffoldFile } from './kv-template.js';

/** Options of {@link initProject}. */
export interface InitOptions {
  /** The contract name; default: the folder's last path segment. */
  name?: string | undefined;
  /** Scaffold into a non-empty folder (existing files are still never overwritten). */
  force?: boolean | undefined;
}

/** What {@link initProject} wrote. */
export interface InitResult {
  /** The contract name. */
  readonly name: string;
  /** The project folder, absolute. */
  readonly dir: string;
  /** The files written, relative to `dir`, with what each is. */
  readonly files: readonly { readonly path: string; readonly about: string }[];
}

/** A string shown in a message: JSON-quoted, so a name with controls or quotes reads as what it is. */
const q = (s: string): string => JSON.stringify(s);

/** The contract name pattern, as parseContract checks it: validated by building the contract. */
function checkName(name: string, fromFolder: boolean): void {
  try {
    parseContract(kvContract(name));
  } catch (err) {
    if (!(err instanceof EnclaveError) || err.code !== 'invalid_contract') throw err;
    const hint = fromFolder ? `The folder name ${q(name)} is not a valid enclave name; pass --name <name>` : `The name ${q(name)} (--name) is not a valid enclave name`;
    throw new UsageError(`${hint}: a name is 1 to 64 characters of a-z, 0-9 and '-', starting with a letter (for example "kv" or "my-store").`);
  }
}

async function lstatOrNull(file: string): Promise<Stats | null> {
  try {
    return await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw cannot('read', file, err);
  }
}

function cannot(what: 'read' | 'write' | 'create', file: string, err: unknown): UsageError {
  const code = (err as NodeJS.ErrnoException).code ?? 'error';
  return new UsageError(`Cannot ${what} ${file}: ${code}.`, { cause: err });
}

/** Refuses anything at `dir` but a real directory: a file, a symbolic link (even to a directory), nothing. */
function checkIsDirectory(dir: string, stat: Stats | null): void {
  if (stat === null) throw new UsageError(`${dir} disappeared while enclave init was creating it: try again.`);
  if (stat.isSymbolicLink()) {
    throw new UsageError(`${dir} is a symbolic link: enclave init writes only into a real directory; name the directory it points to, or a new one.`);
  }
  if (!stat.isDirectory()) throw new UsageError(`${dir} exists and is not a directory: name a new or an empty directory.`);
}

/** Refuses an existing folder another user owns, or that others may write into (not sticky). */
function checkOwnFolder(dir: string, stat: Stats): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid !== undefined && stat.uid !== uid) {
    throw new UsageError(`${dir} belongs to another user (uid ${stat.uid}): enclave init writes only into a folder of your own; name a new one.`);
  }
  if (process.platform !== 'win32' && (stat.mode & 0o002) !== 0 && (stat.mode & 0o1000) === 0) {
    throw new UsageError(`${dir} may be written by any user (mode ${(stat.mode & 0o7777).toString(8)}): enclave init writes only into a folder others cannot change; name a new one, or chmod o-w it.`);
  }
}

/**
 * Writes a new enclave project into `dir` (created if missing).
 * @throws {UsageError} `usage` for an invalid name, a `dir` that is a file or a symbolic link, a
 *   non-empty `dir` without `force`, a file of the scaffold that already exists (listed), or a
 *   folder or file that cannot be created (with its absolute path).
 * @example
 * const { name, files } = await initProject('kv');
 */
export async function initProject(dir: string, options: InitOptions = {}): Promise<InitResult> {
  if (typeof dir !== 'string' || dir.length === 0) throw new UsageError('Name the directory of the new enclave: enclave init <dir>.');
  const abs = path.resolve(dir);
  const folder = path.basename(abs);
  // The folder's name is written into the README and into comments of the files: a line break
  // (U+2028 and U+2029 end a line in JavaScript too) would end a comment and start code.
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u.test(folder)) {
    throw new UsageError(`The folder name ${q(folder)} holds control or invisible characters: name the folder with printable characters.`);
  }
  const name = options.name ?? folder;
  checkName(name, options.name === undefined);
  const files = scaffoldFiles({ name, folder });

  // The folder: created if missing (and then removed again if a write fails), else checked.
  const created: string[] = []; // what this call created, removed in reverse order on failure
  const existing = await lstatOrNull(abs);
  if (existing === null) {
    let first: string | undefined;
    try {
      first = await mkdir(abs, { recursive: true });
    } catch (err) {
      throw cannot('create', abs, err);
    }
    // mkdir made `first` and every folder below it down to abs: all ours to remove on failure.
    if (first !== undefined) for (let d = abs; ; d = path.dirname(d)) {
      created.push(d);
      if (d === first || path.dirname(d) === d) break;
    }
    created.reverse();
  }
  // Checked again after mkdir: something else may have put a link there in between.
  const stat = await lstatOrNull(abs);
  checkIsDirectory(abs, stat);
  // Node has no openat: the checks below (no link at test/, O_EXCL) and the writes are separate
  // steps, so whoever else can write into the folder can swap test/ for a link in between and have
  // a file created outside it. And what another user can change there, they can change after init
  // too (the test, the host example). So a folder that already existed must be this user's and not
  // writable by others (unless sticky): as git's safe.directory, for the files a user will run.
  if (existing !== null) checkOwnFolder(abs, stat!);
  if (existing !== null && options.force !== true) {
    let entries: string[];
    try {
      entries = await readdir(abs);
    } catch (err) {
      throw cannot('read', abs, err);
    }
    if (entries.length > 0) {
      throw new UsageError(`${abs} is not empty: enclave init writes into a new or an empty directory (--force writes into this one, and still never overwrites a file).`);
    }
  }

  // Every path of the scaffold is checked before anything is written, so a refusal leaves no half project.
  const taken: string[] = [];
  for (const sub of new Set(files.map((f) => path.posix.dirname(f.path)).filter((d) => d !== '.'))) {
    const stat = await lstatOrNull(path.join(abs, sub));
    if (stat !== null && (stat.isSymbolicLink() || !stat.isDirectory())) taken.push(sub);
  }
  for (const f of files) if ((await lstatOrNull(path.join(abs, f.path))) !== null) taken.push(f.path);
  if (taken.length > 0) {
    throw new UsageError(
      `${abs} already holds ${taken.map(q).join(', ')}: enclave init never overwrites a file or follows a link; move ${taken.length === 1 ? 'it' : 'them'} away first.`,
    );
  }

  try {
    for (const f of files) await writeNew(abs, f, created);
  } catch (err) {
    // Remove what this call created, newest first: files, then folders (only while empty).
    for (const p of created.reverse()) await rm(p, { force: true }).catch(() => rmdir(p).catch(() => undefined));
    throw err;
  }
  return { name, dir: abs, files: files.map(({ path: p, about }) => ({ path: p, about })) };
}

// O_EXCL with O_CREAT fails on any existing path, a symbolic link included (it is not followed);
// O_NOFOLLOW says so again where the platform has it.
const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

async function writeNew(root: string, f: ScaffoldFile, created: string[]): Promise<void> {
  const file = path.join(root, ...f.path.split('/'));
  const parent = path.dirname(file);
  if (parent !== root) {
    try {
      await mkdir(parent);
      created.push(parent);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw cannot('create', parent, err);
    }
    // Whether made now or before: a link or a file in its place is refused, not followed.
    const stat = await lstatOrNull(parent);
    if (stat === null || stat.isSymbolicLink() || !stat.isDirectory()) {
      throw new UsageError(`${parent} is not a directory: enclave init never follows a link; move it away first.`);
    }
  }
  let handle;
  try {
    handle = await open(file, CREATE_NEW, 0o644);
  } catch (err) {
    throw cannot('create', file, err);
  }
  created.push(file);
  try {
    await handle.writeFile(f.text, 'utf8');
  } catch (err) {
    throw cannot('write', file, err);
  } finally {
    await handle.close();
  }
}
