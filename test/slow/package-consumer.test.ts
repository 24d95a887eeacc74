/**
 * What a new user does (issue 11, "Done when"), from an empty folder with only the packed tarball:
 * `npm install <tgz>`, `npx enclave init kv` (built and its own example and test run as they come),
 * edit one handler, `npx enclave build kv`,
 * `npx enclave run kv/build/kv.wasm put '{"k":"a","v":"b"}'`, `npx enclave types`, then a small
 * strict-TypeScript service (test/consumer/) that loads the new enclave with its generated types
 * and calls it, and a typed call with a wrong argument that fails to compile. Then a service's
 * install without the compiler (`npm install --omit=optional <tgz>`), which runs the enclave but
 * cannot build one. The install sizes of both are printed (du -sk), for the README's figures.
 *
 * Part of `npm run test:package` (run by .ci/run after `npm test`). The steps run in order, each
 * on the previous one's output. tsc and @types/node come from this repository's node_modules.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { installTarball, NPX, sh, userEnv, type Result } from './package-helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TEMPLATE = path.join(ROOT, 'test', 'consumer');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const TYPE_ROOTS = path.join(ROOT, 'node_modules', '@types');

let work: string;
let project: string; // the user's project: the package, the enclave kv/, the service
let env: NodeJS.ProcessEnv;

/** `npx enclave ...` from the project, as the user types it. */
function npx(...args: string[]): Promise<Result> {
  return sh(NPX, ['--no-install', 'enclave', ...args], project, env);
}

/** Every package.json under node_modules whose package is `name` (nested copies included). */
async function copiesOf(dir: string, name: string): Promise<string[]> {
  const entries = await readdir(path.join(dir, 'node_modules'), { recursive: true });
  return entries.filter((e) => e === `${name}/package.json` || e.endsWith(`/node_modules/${name}/package.json`)).sort();
}

async function kilobytes(dir: string): Promise<number> {
  const { stdout } = await promisify(execFile)('du', ['-sk', dir]);
  return Number.parseInt(stdout, 10);
}

const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'enclave-consumer-'));
  project = path.join(work, 'project');
  await mkdir(project);
  env = userEnv(work);
}, 30_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a new user, from an empty folder with the packed tarball', () => {
  it('npm install <tgz>: the package with the compiler, and one copy of binaryen', async () => {
    const started = performance.now();
    const mode = await installTarball(project, inject('packageTarball'), env);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    expect(existsSync(path.join(project, 'node_modules', 'assemblyscript', 'package.json'))).toBe(true);
    // The runtime's binaryen is the compiler's: one copy for both. jco-transpile (components) asks
    // for binaryen ^130 and gets its own nested copy, which only its unused `optimize` loads: the
    // install-size cost of components, in the closing note of issue 14 (no third copy, none elsewhere).
    expect(await copiesOf(project, 'binaryen')).toEqual(['@bytecodealliance/jco-transpile/node_modules/binaryen/package.json', 'binaryen/package.json']);
    console.info(`package-consumer: npm install <tgz> (${mode}) in ${seconds} s: node_modules ${mb(await kilobytes(path.join(project, 'node_modules')))}`);
  }, 240_000);

  it('npx enclave init kv: a working enclave project', async () => {
    const r = await npx('init', 'kv');
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['index.ts', 'contract.json', 'tsconfig.json']) expect(existsSync(path.join(project, 'kv', f)), f).toBe(true);
  });

  it('npx enclave build kv, then the scaffold’s own host example and test pass against the installed package', async () => {
    const build = await npx('build', 'kv');
    expect(build.code, build.stdout + build.stderr).toBe(0);
    const example = await sh(process.execPath, ['kv/host.example.mjs'], project, env);
    expect(example.code, example.stderr).toBe(0);
    const tests = await sh(process.execPath, ['--test', 'kv/test/kv.test.mjs'], project, env);
    expect(tests.code, tests.stdout + tests.stderr).toBe(0);
  }, 180_000);
  it('edit one handler: put stores "edited:" + v', async () => {
    const file = path.join(project, 'kv', 'index.ts');
    const before = await readFile(file, 'utf8');
    const after = before.replace('store.set(k, v);', 'store.set(k, "edited:" + v);');
    expect(after, 'the scaffold no longer has the line this test edits').not.toBe(before);
    await writeFile(file, after);
  });

  it('npx enclave build kv: compiles the edited enclave with the SDK of the installed package', async () => {
    const before = await readFile(path.join(project, 'kv', 'build', 'kv.wasm'));
    const r = await npx('build', 'kv');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(await readFile(path.join(project, 'kv', 'build', 'kv.wasm'))).not.toEqual(before);
  }, 120_000);

  it(`npx enclave run kv/build/kv.wasm put '{"k":"a","v":"b"}'`, async () => {
    const r = await npx('run', 'kv/build/kv.wasm', 'put', '{"k":"a","v":"b"}');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toBeNull();
    const refused = await npx('run', 'kv/build/kv.wasm', 'put', '{"k":"a","v":42}');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/invalid_args/);
  });

  it('npx enclave types kv/build/kv.wasm --out kv.d.ts: the ops as TypeScript types', async () => {
    const r = await npx('types', 'kv/build/kv.wasm', '--out', 'kv.d.ts');
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(path.join(project, 'kv.d.ts'), 'utf8')).toMatch(/\bKvOps\b/);
  });

  it('a strict TypeScript service compiles against the generated types, loads the enclave and calls it', async () => {
    for (const f of ['tsconfig.json', 'service.ts']) await copyFile(path.join(TEMPLATE, f), path.join(project, f));
    const tsc = await sh(process.execPath, [TSC, '-p', 'tsconfig.json', '--typeRoots', TYPE_ROOTS], project, env);
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
    const r = await sh(process.execPath, ['out/service.js'], project, env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      value: 'edited:b', // the edited handler ran
      missing: null,
      count: 1,
      removed: true,
      refused: 'invalid_args',
      echoed: { hello: 'enclave' }, // the bundled module, found through enclave/modules/echo.wasm
    });
  }, 60_000);

  it('a typed call with a wrong argument fails to compile, on that line', async () => {
    for (const f of ['tsconfig.wrong.json', 'wrong-call.ts']) await copyFile(path.join(TEMPLATE, f), path.join(project, f));
    const line = (await readFile(path.join(TEMPLATE, 'wrong-call.ts'), 'utf8')).split('\n').findIndex((l) => l.includes('// WRONG')) + 1;
    const tsc = await sh(process.execPath, [TSC, '-p', 'tsconfig.wrong.json', '--typeRoots', TYPE_ROOTS], project, env);
    expect(tsc.code).toBe(2); // tsc: errors, nothing emitted
    const errors = tsc.stdout.split('\n').filter((l) => / error TS\d+:/.test(l));
    expect(errors.length, tsc.stdout).toBeGreaterThan(0);
    for (const e of errors) expect(e, tsc.stdout).toMatch(new RegExp(`^wrong-call\\.ts\\(${line},\\d+\\): error TS\\d+:`));
  }, 60_000);

});

describe('a service that only runs enclaves: npm install --omit=optional <tgz>', () => {
  let service: string;

  it('installs without the compiler, one copy of binaryen', async () => {
    service = path.join(work, 'service');
    await mkdir(service);
    const mode = await installTarball(service, inject('packageTarball'), env, ['--omit=optional']);
    expect(existsSync(path.join(service, 'node_modules', 'assemblyscript'))).toBe(false);
    expect(await copiesOf(service, 'binaryen')).toEqual(['@bytecodealliance/jco-transpile/node_modules/binaryen/package.json', 'binaryen/package.json']);
    console.info(`package-consumer: npm install --omit=optional <tgz> (${mode}): node_modules ${mb(await kilobytes(path.join(service, 'node_modules')))}`);
  }, 240_000);

  it('runs the enclave the user built', async () => {
    const r = await sh(NPX, ['--no-install', 'enclave', 'run', path.join(project, 'kv', 'build', 'kv.wasm'), 'get', '{"k":"a"}'], service, env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toBeNull();
  });

  it('enclave build says the compiler is not installed and how to get it', async () => {
    const r = await sh(NPX, ['--no-install', 'enclave', 'build', path.join(project, 'kv'), '--out', path.join(work, 'out')], service, env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[build_failed\]: .*AssemblyScript compiler is not installed/);
    // The exact version the package pins: installing another would bring a second binaryen.
    const pinned = (JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> }).optionalDependencies.assemblyscript;
    expect(r.stderr).toContain(`npm install assemblyscript@${pinned}`);
    expect(existsSync(path.join(work, 'out'))).toBe(false);
  });
});
