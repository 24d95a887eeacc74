/**
 * What the package suites share: running a command in a project, an environment without the
 * developer's ENCLAVE_* settings, and installing the packed tarball into an empty project as a user
 * would (`npm install <tgz>`: offline from npm's cache when it has everything, else preferring it).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a file with its arguments; never rejects (a failure is a non-zero code). */
export async function sh(file: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(file, args, { cwd, env, maxBuffer: 32 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

export const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
export const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/**
 * The environment of a user's shell: none of the developer's ENCLAVE_* or npm's npm_* variables,
 * and the platform key and the fuel cache inside the suite's temp dir.
 */
export function userEnv(work: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ENCLAVE_') && !k.startsWith('npm_')));
  env.ENCLAVE_PLATFORM_DIR = path.join(work, 'platform');
  env.ENCLAVE_CACHE_DIR = path.join(work, 'cache');
  return env;
}

/**
 * Writes an empty ESM project's package.json in `project` (an existing empty folder) unless told
 * not to, then `npm install <tarball> ...extra` there.
 * @returns how it installed: `offline`, or `prefer-offline` when npm's cache lacked something.
 */
export async function installTarball(project: string, tarball: string, env: NodeJS.ProcessEnv, extra: readonly string[] = [], writePackageJson = true): Promise<string> {
  if (writePackageJson) {
    await writeFile(path.join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`);
  }
  const install = ['install', '--no-audit', '--no-fund', '--no-update-notifier', ...extra, tarball];
  let installed = await sh(NPM, ['--offline', ...install], project, env);
  let mode = 'offline';
  if (installed.code !== 0 && /ENOTCACHED/.test(installed.stderr)) {
    // npm's cache lacks a dependency's metadata (a fresh machine): take what is missing from the registry.
    installed = await sh(NPM, ['--prefer-offline', ...install], project, env);
    mode = 'prefer-offline';
  }
  if (installed.code !== 0) throw new Error(`npm install ${tarball} failed (${mode}):\n${installed.stderr}`);
  return mode;
}
