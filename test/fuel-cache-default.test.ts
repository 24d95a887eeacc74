/**
 * Where the fuel cache lives by default (runtime/_fuel-cache.ts, `defaultCacheDir`): ENCLAVE_CACHE_DIR,
 * else `node_modules/.cache/enclave` in the working directory, else the user's cache
 * (`$XDG_CACHE_HOME/enclave` or `~/.cache/enclave`), so `enclave run` from any folder starts warm;
 * and the per-user directory passes the same ownership and mode checks as any other.
 */
import { chmod, mkdir, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultCacheDir } from '../runtime/_fuel-cache.js';
import { enclaveCli } from './helpers/cli.js';

const ECHO = path.resolve('enclave-modules/echo/build/echo.wasm');
const KEYS = ['ENCLAVE_CACHE_DIR', 'XDG_CACHE_HOME', 'HOME'] as const;
const saved = Object.fromEntries(KEYS.map((k) => [k, process.env[k]]));
const cwd = process.cwd();
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'enclave-cache-default-'));
  await mkdir(path.join(tmp, 'bare'));
  await mkdir(path.join(tmp, 'project', 'node_modules'), { recursive: true });
  await mkdir(path.join(tmp, 'home'));
});

afterEach(() => {
  process.chdir(cwd);
  for (const k of KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

function at(dir: string, env: Partial<Record<(typeof KEYS)[number], string>>): ReturnType<typeof defaultCacheDir> {
  process.chdir(dir);
  for (const k of KEYS) {
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  return defaultCacheDir();
}

describe('defaultCacheDir', () => {
  it('ENCLAVE_CACHE_DIR wins; off or empty is no disk cache', () => {
    expect(at(path.join(tmp, 'project'), { ENCLAVE_CACHE_DIR: '/x/y', XDG_CACHE_HOME: '/c' })).toBe('/x/y');
    expect(at(path.join(tmp, 'bare'), { ENCLAVE_CACHE_DIR: 'off' })).toBe(false);
    expect(at(path.join(tmp, 'bare'), { ENCLAVE_CACHE_DIR: '' })).toBe(false);
  });

  it('node_modules in the working directory: node_modules/.cache/enclave', () => {
    expect(at(path.join(tmp, 'project'), { XDG_CACHE_HOME: '/c', HOME: path.join(tmp, 'home') })).toBe(path.join(tmp, 'project', 'node_modules', '.cache', 'enclave'));
  });

  it('no node_modules: $XDG_CACHE_HOME/enclave, else ~/.cache/enclave', () => {
    expect(at(path.join(tmp, 'bare'), { XDG_CACHE_HOME: '/c', HOME: path.join(tmp, 'home') })).toBe(path.join('/c', 'enclave'));
    expect(at(path.join(tmp, 'bare'), { HOME: path.join(tmp, 'home') })).toBe(path.join(tmp, 'home', '.cache', 'enclave'));
    // The XDG spec: a relative XDG_CACHE_HOME is invalid and ignored.
    expect(at(path.join(tmp, 'bare'), { XDG_CACHE_HOME: 'rel/cache', HOME: path.join(tmp, 'home') })).toBe(path.join(tmp, 'home', '.cache', 'enclave'));
  });

  it('a home directory that does not exist gives no disk cache (nothing is created for it)', () => {
    expect(at(path.join(tmp, 'bare'), { HOME: path.join(tmp, 'no-such-home') })).toBe(false);
  });
});

describe('enclave run outside a project uses the per-user cache', () => {
  const env = (xdg: string) => {
    const e: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: xdg };
    delete e.ENCLAVE_CACHE_DIR;
    return e;
  };

  it('the first run writes one private entry under $XDG_CACHE_HOME/enclave, the next reads it', async () => {
    const xdg = path.join(tmp, 'xdg');
    const first = await enclaveCli(['run', ECHO, 'echo', '1'], { cwd: path.join(tmp, 'bare'), env: env(xdg) });
    expect(first.code, first.stderr).toBe(0);
    const dir = path.join(xdg, 'enclave');
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const entries = (await readdir(dir)).filter((n) => n.endsWith('.bin'));
    expect(entries).toHaveLength(1);
    const before = await stat(path.join(dir, entries[0]!));
    expect(before.mode & 0o777).toBe(0o600);
    const second = await enclaveCli(['run', ECHO, 'echo', '2'], { cwd: path.join(tmp, 'bare'), env: env(xdg) });
    expect(second.code, second.stderr).toBe(0);
    // A hit reads the entry; a miss would have written a new file in its place (a rename: another inode).
    const after = await stat(path.join(dir, entries[0]!));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('a per-user cache others can write is not used (the usual checks), with one warning', async () => {
    const xdg = path.join(tmp, 'shared');
    await mkdir(path.join(xdg, 'enclave'), { recursive: true });
    await chmod(path.join(xdg, 'enclave'), 0o777);
    await writeFile(path.join(xdg, 'marker'), '');
    const r = await enclaveCli(['run', ECHO, 'echo', '1'], { cwd: path.join(tmp, 'bare'), env: env(xdg) });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('ENCLAVE_FUEL_CACHE_UNTRUSTED');
    expect((await readdir(path.join(xdg, 'enclave'))).filter((n) => n.endsWith('.bin'))).toEqual([]);
  });
});
