import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnclave, parseContract } from '../runtime/index.js';

// `enclave init` as users run it: the built CLI (dist/, compiled by test/global-setup.ts), in a
// temporary folder outside the repository.
const execFileP = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..');
const CLI = path.join(REPO, 'dist/host/cli/main.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(cwd: string, file: string, args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileP(file, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const enclave = (cwd: string, ...args: string[]): Promise<Run> => exec(cwd, process.execPath, [CLI, ...args]);

const SCAFFOLD = ['README.md', 'contract.json', 'host.example.mjs', 'index.ts', 'test', 'tsconfig.json'];

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'enclave-init-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A fresh folder under the test's temporary folder. */
let n = 0;
async function fresh(): Promise<string> {
  const dir = path.join(tmp, `case-${++n}`);
  await mkdir(dir);
  return dir;
}

describe('enclave init', () => {
  it('scaffolds a project whose contract parses, and prints the next commands', async () => {
    const cwd = await fresh();
    const r = await enclave(cwd, 'init', 'kv');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const dir = path.join(cwd, 'kv');
    expect((await readdir(dir)).sort()).toEqual(SCAFFOLD);
    expect(await readdir(path.join(dir, 'test'))).toEqual(['kv.test.mjs']);
    const contract = parseContract(JSON.parse(await readFile(path.join(dir, 'contract.json'), 'utf8')));
    expect(contract.name).toBe('kv');
    expect(contract.capabilities).toEqual([]);
    expect(Object.keys(contract.ops).sort()).toEqual(['count', 'del', 'get', 'put']);
    // The enclave is written as a user writes one: the package's SDK, no limits of its own.
    const index = await readFile(path.join(dir, 'index.ts'), 'utf8');
    expect(index).toContain('from "enclave/sdk"');
    expect(index).toContain('export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports"');
    expect(index).not.toContain('setLimits');
    for (const op of Object.keys(contract.ops)) expect(index).toContain(`Enclave.op("${op}", `);
    expect(JSON.parse(stripComments(await readFile(path.join(dir, 'tsconfig.json'), 'utf8'))).extends).toBe('assemblyscript/std/assembly.json');
    expect(r.stdout).toContain('created enclave "kv" in ' + dir);
    expect(r.stdout).toContain('\n  npx enclave build kv\n');
    expect(r.stdout).toContain(`\n  npx enclave run kv/build/kv.wasm put '{"k":"a","v":"b"}'\n`);
    expect(r.stdout).toContain('\n  node --test kv/test/kv.test.mjs\n');
  });

  it('names the enclave with --name, and quotes a folder with spaces in the commands it prints', async () => {
    const cwd = await fresh();
    const r = await enclave(cwd, 'init', 'My Store', '--name', 'store', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.name).toBe('store');
    expect(out.dir).toBe(path.join(cwd, 'My Store'));
    expect(out.next[0]).toBe("npx enclave build 'My Store'");
    expect(out.files.map((f: { path: string }) => f.path)).toContain('test/store.test.mjs');
    const contract = parseContract(JSON.parse(await readFile(path.join(cwd, 'My Store', 'contract.json'), 'utf8')));
    expect(contract.name).toBe('store');
    expect(await readFile(path.join(cwd, 'My Store', 'README.md'), 'utf8')).toContain("npx enclave build 'My Store'\n");
  });

  it('creates missing parent folders and accepts an absolute path', async () => {
    const cwd = await fresh();
    const dir = path.join(cwd, 'a', 'b', 'kv2');
    const r = await enclave(cwd, 'init', dir);
    expect(r.code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(SCAFFOLD);
    expect(parseContract(JSON.parse(await readFile(path.join(dir, 'contract.json'), 'utf8'))).name).toBe('kv2');
  });

  it('refuses a folder name that is not a contract name, and writes nothing', async () => {
    const cwd = await fresh();
    for (const bad of ['KV', 'my_kv', '1kv', 'k'.repeat(65)]) {
      const r = await enclave(cwd, 'init', bad);
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toMatch(/^error\[usage\]: The folder name .* is not a valid enclave name; pass --name <name>/);
    }
    expect(await readdir(cwd)).toEqual([]);
  });

  it('refuses an invalid --name, and writes nothing', async () => {
    const cwd = await fresh();
    for (const bad of ['', 'Bad', '../x', 'a/b', 'kv\n', 'k'.repeat(65), '-kv']) {
      const r = await enclave(cwd, 'init', 'ok', '--name', bad);
      expect(r.code, JSON.stringify(bad)).toBe(2);
      expect(r.stderr).toMatch(/^error\[usage\]: The name .* \(--name\) is not a valid enclave name/);
      expect(r.stderr).not.toContain('\n  '); // one line: the newline of 'kv\n' is quoted, not printed
    }
    expect(await readdir(cwd)).toEqual([]);
  });

  it('refuses a folder name with a line break or an invisible character, even with --name', async () => {
    const cwd = await fresh();
    // The folder's name goes into comments of the scaffold's .mjs files: a line break would end one.
    for (const bad of ['kv\nprocess.exit(1)', 'kv\u2028x', 'k\u202ev']) {
      const r = await enclave(cwd, 'init', bad, '--name', 'kv');
      expect(r.code, JSON.stringify(bad)).toBe(2);
      expect(r.stderr).toMatch(/^error\[usage\]: The folder name .* holds control or invisible characters/);
      expect(r.stderr.trimEnd()).not.toContain('\n'); // printed escaped, on one line
    }
    expect(await readdir(cwd)).toEqual([]);
  });

  it('refuses a non-empty folder without --force', async () => {
    const cwd = await fresh();
    await mkdir(path.join(cwd, 'kv'));
    await writeFile(path.join(cwd, 'kv', 'notes.txt'), 'mine');
    const r = await enclave(cwd, 'init', 'kv', '--json');
    expect(r.code).toBe(2);
    const err = JSON.parse(r.stderr).error;
    expect(err.code).toBe('usage');
    expect(err.message).toContain(`${path.join(cwd, 'kv')} is not empty`);
    expect(await readdir(path.join(cwd, 'kv'))).toEqual(['notes.txt']);
  });

  it('--force writes beside other files but never overwrites one, and then writes nothing at all', async () => {
    const cwd = await fresh();
    const dir = path.join(cwd, 'kv');
    await mkdir(dir);
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    expect((await enclave(cwd, 'init', 'kv', '--force')).code).toBe(0);
    expect((await readdir(dir)).sort()).toEqual([...SCAFFOLD, 'notes.txt'].sort());
    expect(await readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');

    const other = path.join(cwd, 'other');
    await mkdir(other);
    await writeFile(path.join(other, 'index.ts'), '// my own enclave');
    await writeFile(path.join(other, 'README.md'), 'my own readme');
    const r = await enclave(cwd, 'init', 'other', '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${other} already holds "index.ts", "README.md"`);
    expect(await readFile(path.join(other, 'index.ts'), 'utf8')).toBe('// my own enclave');
    expect((await readdir(other)).sort()).toEqual(['README.md', 'index.ts']);
  });

  it('refuses a path that is a file, naming it', async () => {
    const cwd = await fresh();
    await writeFile(path.join(cwd, 'kv'), 'a file');
    const r = await enclave(cwd, 'init', 'kv', '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error[usage]: ${path.join(cwd, 'kv')} exists and is not a directory`);
    expect(await readFile(path.join(cwd, 'kv'), 'utf8')).toBe('a file');
  });

  it('refuses a symbolic link, even to an empty directory', async () => {
    const cwd = await fresh();
    await mkdir(path.join(cwd, 'target'));
    await symlink(path.join(cwd, 'target'), path.join(cwd, 'kv'), 'dir');
    for (const args of [['kv'], ['kv', '--force']]) {
      const r = await enclave(cwd, 'init', ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`error[usage]: ${path.join(cwd, 'kv')} is a symbolic link`);
    }
    expect(await readdir(path.join(cwd, 'target'))).toEqual([]);
  });

  it('follows no symbolic link inside the folder and writes nothing outside it', async () => {
    const cwd = await fresh();
    const outside = path.join(cwd, 'outside');
    await mkdir(outside);
    // test/ is a link to a folder outside: the test file would land there.
    const a = path.join(cwd, 'a');
    await mkdir(a);
    await symlink(outside, path.join(a, 'test'), 'dir');
    let r = await enclave(cwd, 'init', 'a', '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('already holds "test"');
    // index.ts is a dangling link to a file outside: writing through it would create that file.
    const b = path.join(cwd, 'b');
    await mkdir(b);
    await symlink(path.join(outside, 'planted.ts'), path.join(b, 'index.ts'));
    r = await enclave(cwd, 'init', 'b', '--force');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('already holds "index.ts"');
    expect(await readdir(outside)).toEqual([]);
    expect((await readdir(a)).sort()).toEqual(['test']);
    expect((await readdir(b)).sort()).toEqual(['index.ts']);
    expect((await lstat(path.join(b, 'index.ts'))).isSymbolicLink()).toBe(true);
  });

  it('refuses an existing folder any user may write into (one could swap test/ for a link mid-write), and writes nothing', async () => {
    const cwd = await fresh();
    const open = path.join(cwd, 'kv');
    await mkdir(open);
    await chmod(open, 0o777);
    const r = await enclave(cwd, 'init', 'kv');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error[usage]: ${open} may be written by any user (mode 777)`);
    expect(await readdir(open)).toEqual([]);
    // Sticky (as /tmp): others cannot rename what this user creates there.
    await chmod(open, 0o1777);
    expect((await enclave(cwd, 'init', 'kv')).code).toBe(0);
  });

  it('exits 2 without a directory', async () => {
    const cwd = await fresh();
    expect((await enclave(cwd, 'init')).code).toBe(2);
    expect(existsSync(path.join(cwd, 'kv'))).toBe(false);
  });
});

// What a new user does after `enclave init kv`, in a folder whose node_modules holds only this
// package (a link to the repository) and, for the editor check, the compiler it depends on. One
// build, reused by every test here (the compile takes seconds).
describe('enclave init, then enclave build, run and types, and the scaffold\'s own test and example', () => {
  let cwd: string;
  let dir: string;
  const tsc = (...args: string[]): Promise<Run> =>
    exec(cwd, process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), ...args]);

  beforeAll(async () => {
    cwd = await fresh();
    dir = path.join(cwd, 'kv');
    await mkdir(path.join(cwd, 'node_modules'));
    await symlink(REPO, path.join(cwd, 'node_modules', 'enclave'), 'dir');
    await symlink(path.join(REPO, 'node_modules', 'assemblyscript'), path.join(cwd, 'node_modules', 'assemblyscript'), 'dir');
    expect((await enclave(cwd, 'init', 'kv')).code).toBe(0);
    const built = await enclave(cwd, 'build', 'kv');
    expect(built.stderr).toBe('');
    expect(built.code).toBe(0);
    const types = await enclave(cwd, 'types', 'kv', '--out', 'kv/build/kv.d.ts');
    expect(types.stderr).toBe('');
    expect(types.code).toBe(0);
  }, 180_000);

  it('enclave run calls the built module', async () => {
    const put = await enclave(cwd, 'run', 'kv/build/kv.wasm', 'put', '{"k":"a","v":"b"}');
    expect(put.stderr).toBe('');
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout)).toBeNull();
    // A fresh instance per command: nothing stored by the previous one.
    const get = await enclave(cwd, 'run', 'kv/build/kv.wasm', 'get', '{"k":"a"}');
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toBeNull();
    const bad = await enclave(cwd, 'run', 'kv/build/kv.wasm', 'put', '{"k":1,"v":"b"}', '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stderr).error.code).toBe('invalid_args');
  });

  it("the scaffold's node:test test passes", async () => {
    const r = await exec(cwd, process.execPath, ['--test', 'kv/test/kv.test.mjs']);
    expect(r.stdout).toMatch(/^# pass 3$/m);
    expect(r.stdout).toMatch(/^# fail 0$/m);
    expect(r.code).toBe(0);
  });

  it('the host example runs, and type-checks with the generated types, which refuse a wrong argument', async () => {
    const r = await exec(cwd, process.execPath, ['kv/host.example.mjs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('get greeting -> hello\ncount -> 1\nput with v: 42 -> invalid_args\n');
    const flags = ['--noEmit', '--allowJs', '--checkJs', '--strict', '--module', 'nodenext', '--target', 'es2022', '--skipLibCheck'];
    const types = ['--types', 'node', '--typeRoots', path.join(REPO, 'node_modules/@types')];
    const ok = await tsc(...flags, ...types, 'kv/host.example.mjs');
    expect(ok.stdout).toBe('');
    expect(ok.code).toBe(0);
    // Without its @ts-expect-error, the example's wrong call is a type error.
    const example = await readFile(path.join(dir, 'host.example.mjs'), 'utf8');
    await writeFile(path.join(dir, 'wrong.mjs'), example.replace(/^\s*\/\/ @ts-expect-error.*$/m, ''));
    const wrong = await tsc(...flags, ...types, 'kv/wrong.mjs');
    await rm(path.join(dir, 'wrong.mjs'));
    expect(wrong.stdout).toMatch(/wrong\.mjs\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/);
    expect(wrong.code).not.toBe(0);
  });

  it("the enclave's tsconfig checks index.ts as AssemblyScript", async () => {
    const r = await tsc('-p', 'kv/tsconfig.json', '--noEmit');
    expect(r.stdout).toBe('');
    expect(r.code).toBe(0);
  });

  it('holds its most entries of the largest size, refuses one more with limit, and survives churn', async () => {
    const kv = await loadEnclave(path.join(dir, 'build', 'kv.wasm'));
    try {
      const key = (i: number) => String(i).padStart(256, 'k'); // 256 bytes: the contract's maxLength
      const v = 'v'.repeat(1024); // ASCII: the most UTF-16 units (memory) for its UTF-8 bytes
      for (let i = 0; i < 256; i++) await kv.call('put', { k: key(i), v });
      expect(await kv.call('count')).toBe(256);
      await expect(kv.call('put', { k: 'one more', v })).rejects.toMatchObject({ code: 'limit' });
      await kv.call('put', { k: key(0), v: 'replaced' }); // an existing key may still change
      // Replaced values are garbage the collector must keep up with inside the memory limit.
      for (let j = 0; j < 2000; j++) await kv.call('put', { k: key(j % 256), v: `${j}${v}`.slice(0, 1024) });
      expect(await kv.call('count')).toBe(256);
      expect(await kv.call('get', { k: key(7) })).toBe(`1799${v}`.slice(0, 1024)); // 1799 = 7 + 7 * 256, the last j for key 7
      expect(await kv.call('del', { k: key(7) })).toBe(true);
      expect(await kv.call('get', { k: key(7) })).toBeNull(); // a missing key: nil, not a trap
      await kv.call('put', { k: 'one more', v });
      expect(await kv.call('count')).toBe(256);
    } finally {
      kv.close();
    }
  });
});

/** tsconfig.json may hold // comments (JSONC); the scaffold's do not sit inside strings. */
function stripComments(text: string): string {
  return text.replace(/^\s*\/\/.*$/gm, '');
}
