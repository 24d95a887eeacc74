/**
 * The package as a user gets it (issue 10, "the package installed from `npm pack` has a working CLI
 * for every command it lists"): `npm pack` of this checkout, installed into an empty project with
 * `npm install` (offline from npm's cache when the cache has everything, else preferring it), then,
 * from that project, every command the installed `enclave --help` lists: its `--help` and one real
 * run. Nothing here reaches the repository's node_modules: a file of the package that imported a
 * devDependency (as `enclave bench` did) fails here. Also checks what the package ships: no
 * benchmarks, no `@internal` declarations, and type declarations a strict consumer compiles against.
 *
 * A slow suite (`npm run test:package`, run by .ci/run after `npm test`), not part of `npm test`.
 * The tarball is packed once for the package suites (package-pack.ts, a global setup) from a clean
 * build of this checkout; this suite checks that every file it ships under dist/ has its source here.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CONTRACT_SECTION, listSections } from '../../core/index.js';
import { installTarball, NPX, sh as run, userEnv, type Result } from './package-helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NONCE = '00112233445566778899aabbccddeeff';
/** What the shipped CLI offers; `bench` is not one (benchmarks need the repository and its devDependencies). */
const COMMANDS = ['run', 'inspect', 'build', 'embed-contract', 'init', 'keygen', 'sign', 'verify-module', 'attest', 'verify', 'platform-key', 'types', 'keys'];

let work: string; // temp root: the installed project, a module author's project
let project: string; // where the package is installed
let bin: string; // node_modules/.bin/enclave, as npm linked it
let pkg: string; // the installed package
let env: NodeJS.ProcessEnv;

function sh(file: string, args: string[], cwd = project): Promise<Result> {
  return run(file, args, cwd, env);
}

/** The installed CLI, run through the bin link npm made (its shebang and mode included). */
function enclave(...args: string[]): Promise<Result> {
  return sh(bin, args);
}

beforeAll(async () => {
  const started = performance.now();
  work = await mkdtemp(path.join(tmpdir(), 'enclave-package-'));
  project = path.join(work, 'project');
  await mkdir(project);
  env = userEnv(work);
  // Packed once for every package suite, from a clean build of this checkout (package-pack.ts).
  const mode = await installTarball(project, inject('packageTarball'), env);
  bin = path.join(project, 'node_modules', '.bin', 'enclave');
  pkg = path.join(project, 'node_modules', 'enclave');
  console.info(`package-install: installed (${mode}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}, 240_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the installed CLI', () => {
  it('npx enclave --help lists exactly the shipped commands, and no bench', async () => {
    const r = await sh(NPX, ['--no-install', 'enclave', '--help']);
    expect(r.code, r.stderr).toBe(0);
    const listed = [...r.stdout.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(listed.sort()).toEqual([...COMMANDS].sort());
    expect((await enclave('bench')).code).toBe(2); // unknown command: usage error
  });

  it.concurrent.each(COMMANDS)('enclave %s --help', async (command) => {
    const r = await enclave(command, '--help');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Usage: enclave ${command}`);
  });

  // One real run per command, in the order a user would go: each command is covered (checked last).
  const ran = new Set<string>();
  const echo = () => path.join(pkg, 'enclave-modules', 'echo', 'build', 'echo.wasm');

  it('run: calls the packaged echo module', async () => {
    const r = await enclave('run', echo(), 'echo', '{"hello":"enclave"}', '--compact');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ hello: 'enclave' });
    ran.add('run');
  });

  it('inspect: prints the measurement and the contract', async () => {
    const r = await enclave('inspect', echo(), '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.measurement).toMatch(/^[0-9a-f]{64}$/);
    expect(report.contract.name).toBe('echo');
    ran.add('inspect');
  });

  it('keygen, sign, verify-module: a key, a signed module, the trust check', async () => {
    const keygen = await enclave('keygen', '--out', 'dev.key.json', '--json');
    expect(keygen.code, keygen.stderr).toBe(0);
    expect(JSON.parse(keygen.stdout).signer).toMatch(/^[0-9a-f]{64}$/);
    ran.add('keygen');
    const sign = await enclave('sign', echo(), '--key', 'dev.key.json', '--out', 'echo.signed.wasm', '--json');
    expect(sign.code, sign.stderr).toBe(0);
    ran.add('sign');
    const verified = await enclave('verify-module', 'echo.signed.wasm', '--key', 'dev.pub.json', '--min-svn', '0', '--json');
    expect(verified.code, verified.stderr).toBe(0);
    expect(JSON.parse(verified.stdout).signer).toBe(JSON.parse(keygen.stdout).signer);
    const untrusted = await enclave('verify-module', echo(), '--key', 'dev.pub.json');
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/untrusted_module/);
    ran.add('verify-module');
  });

  it('attest, platform-key, verify: evidence checked with the platform key alone', async () => {
    const attest = await enclave('attest', 'echo.signed.wasm', '--nonce', NONCE, '--key', 'dev.pub.json');
    expect(attest.code, attest.stderr).toBe(0);
    await writeFile(path.join(project, 'token.jwt'), attest.stdout.trim());
    ran.add('attest');
    const key = await enclave('platform-key');
    expect(key.code, key.stderr).toBe(0);
    expect(JSON.parse(key.stdout)).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    await writeFile(path.join(project, 'platform.jwk.json'), key.stdout);
    ran.add('platform-key');
    const inspect = JSON.parse((await enclave('inspect', echo(), '--json')).stdout);
    await writeFile(path.join(project, 'policy.json'), JSON.stringify({ measurements: [inspect.measurement] }));
    const verify = await enclave('verify', '@token.jwt', '--policy', 'policy.json', '--nonce', NONCE, '--platform-key', 'platform.jwk.json', '--json');
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(inspect.measurement);
    ran.add('verify');
  });

  it('keys: lists, rotates and revokes the software platform’s sealing roots', async () => {
    const dir = path.join(work, 'keys-platform');
    const listed = await enclave('keys', 'list', '--json', '--platform-dir', dir);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ current: 1, roots: [{ id: 1, state: 'active', current: true }] });
    const rotated = await enclave('keys', 'rotate', '--json', '--platform-dir', dir);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout)).toEqual({ id: 2, current: true });
    expect((await enclave('keys', 'revoke', '1', '--platform-dir', dir)).code).toBe(2); // no --yes: usage, nothing destroyed
    const revoked = await enclave('keys', 'revoke', '1', '--yes', '--json', '--platform-dir', dir);
    expect(revoked.code, revoked.stderr).toBe(0);
    const after = JSON.parse((await enclave('keys', 'list', '--json', '--platform-dir', dir)).stdout) as { roots: { id: number; state: string }[] };
    expect(after.roots.map((r) => `${r.id} ${r.state}`)).toEqual(['1 revoked', '2 active']);
    ran.add('keys');
  });

  it('build: compiles a module author’s sources to the bytes the package ships', async () => {
    // The echo module's sources, anywhere: they import the SDK as `enclave/sdk`, from the install.
    const author = path.join(work, 'author', 'echo');
    await mkdir(author, { recursive: true });
    for (const f of ['index.ts', 'contract.json']) {
      await cp(path.join(ROOT, 'enclave-modules', 'echo', f), path.join(author, f));
    }
    const r = await enclave('build', author, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ name: 'echo' })]);
    // Reproducible from an install too: the same sources give the same bytes.
    expect(await readFile(path.join(author, 'build', 'echo.wasm'))).toEqual(await readFile(echo()));
    // Where there is nothing to build (the consumer project itself), a usage error that says why.
    const nothing = await enclave('build');
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/^error\[usage\]: No enclave-modules\/ directory in /);
    ran.add('build');
  }, 120_000);

  it('components: build --component from the install gives the shipped echo.component.wasm; a consumer loads enclave/modules/echo.component.wasm', async () => {
    const author = path.join(work, 'author-component', 'echo');
    await mkdir(author, { recursive: true });
    for (const f of ['index.ts', 'contract.json']) {
      await cp(path.join(ROOT, 'enclave-modules', 'echo', f), path.join(author, f));
    }
    // wit/enclave.wit and the SDK's component mode come from the install; nothing is fetched.
    const r = await enclave('build', '--component', author, '--json');
    expect(r.code, r.stderr).toBe(0);
    const shipped = path.join(pkg, 'enclave-modules', 'echo', 'build', 'echo.component.wasm');
    expect(await readFile(path.join(author, 'build', 'echo.component.wasm'))).toEqual(await readFile(shipped));
    // The package's export of the components, from a consumer's ESM code, in both isolation modes.
    await writeFile(
      path.join(project, 'component.mjs'),
      [
        "import { readFileSync } from 'node:fs';",
        "import { fileURLToPath } from 'node:url';",
        "import { loadEnclave } from 'enclave';",
        "const bytes = readFileSync(fileURLToPath(import.meta.resolve('enclave/modules/echo.component.wasm')));",
        "for (const isolation of ['in-process', 'worker']) {",
        '  const e = await loadEnclave(bytes, { isolation });',
        "  console.log(JSON.stringify(await e.call('echo', { isolation })));",
        '  await e.close();',
        '}',
      ].join('\n'),
    );
    const consumer = await sh(process.execPath, ['component.mjs']);
    expect(consumer.code, consumer.stderr).toBe(0);
    expect(consumer.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([{ isolation: 'in-process' }, { isolation: 'worker' }]);
    const inspect = await enclave('inspect', shipped, '--json');
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ kind: 'component', wit: expect.stringContaining('export enclave:runtime/handler@1.0.0;') });
  }, 180_000);

  it('embed-contract: the packaged echo module without its contract, given it back: the same bytes, and it runs', async () => {
    // A module as another toolchain leaves it: the echo module's sections before its contract (the last one).
    const packaged = new Uint8Array(await readFile(echo()));
    const contract = listSections(packaged).at(-1)!;
    expect(contract.name).toBe(CONTRACT_SECTION);
    await writeFile(path.join(project, 'bare.wasm'), packaged.subarray(0, contract.start));
    const r = await enclave('embed-contract', 'bare.wasm', path.join(ROOT, 'enclave-modules', 'echo', 'contract.json'), '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ output: path.join(project, 'bare.enclave.wasm'), kind: 'module', handlers: { checked: true } });
    expect(new Uint8Array(await readFile(path.join(project, 'bare.enclave.wasm')))).toEqual(packaged);
    const run = await enclave('run', 'bare.enclave.wasm', 'echo', '"again"');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toBe('again');
    // Never a second contract.
    const twice = await enclave('embed-contract', echo(), path.join(ROOT, 'enclave-modules', 'echo', 'contract.json'), '--out', 'twice.wasm');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(/^error\[invalid_contract\]: The module already carries an enclave\.contract section/);
    ran.add('embed-contract');
  }, 60_000);

  it('init, types: a new enclave project, and the types of a contract', async () => {
    const init = await enclave('init', 'fresh');
    expect(init.code, init.stderr).toBe(0);
    expect(existsSync(path.join(project, 'fresh', 'contract.json'))).toBe(true);
    ran.add('init');
    const types = await enclave('types', 'fresh/contract.json');
    expect(types.code, types.stderr).toBe(0);
    expect(types.stdout).toMatch(/\bFreshOps\b/);
    ran.add('types');
  });

  it('every listed command had a real run above', () => {
    expect([...ran].sort()).toEqual([...COMMANDS].sort());
  });
});

describe('what the package ships', () => {
  async function files(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => path.relative(pkg, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
  }

  it('no benchmarks and no tests', async () => {
    const shipped = await files(pkg);
    expect(shipped.filter((f) => /^(dist\/)?(bench|test)\//.test(f))).toEqual([]);
    expect(shipped).toContain('dist/host/cli/main.js');
  });

  it('every file under dist/ is compiled from a source of this checkout (nothing left over from a deleted one)', async () => {
    const compiled = await files(path.join(pkg, 'dist'));
    expect(compiled.length).toBeGreaterThan(10);
    const orphans: string[] = [];
    for (const f of compiled) {
      const source = f.replace(/^dist\//, '').replace(/(\.d)?\.ts\.map$|\.js\.map$|\.d\.ts$|\.js$/, '.ts');
      if (!source.endsWith('.ts') || source === f || !existsSync(path.join(ROOT, source))) orphans.push(f);
    }
    expect(orphans).toEqual([]);
  });

  it('source maps work from the package alone: a stack trace names the TypeScript source, a map holds its text', async () => {
    // An error thrown inside the package (a module that is not Wasm), run with source maps on.
    const script = "import('enclave').then((m) => m.loadEnclave(new Uint8Array([1, 2, 3]))).catch((e) => console.log(e.stack))";
    const r = await sh(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', script]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/invalid_module|not a WebAssembly module|magic/i);
    expect(r.stdout).toMatch(/node_modules\/enclave\/(runtime|core|host)\/[\w-]+\.ts:\d+:\d+/);
    expect(r.stdout).not.toMatch(/node_modules\/enclave\/dist\/.*\.js:\d+/);
    const maps = (await files(path.join(pkg, 'dist'))).filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const f of maps) {
      const map = JSON.parse(await readFile(path.join(pkg, f), 'utf8')) as { sources: string[]; sourcesContent?: unknown[] };
      expect(map.sourcesContent?.length, f).toBe(map.sources.length);
    }
  });

  it('no @internal declaration in the published .d.ts files (stripInternal)', async () => {
    const dts = (await files(path.join(pkg, 'dist'))).filter((f) => f.endsWith('.d.ts'));
    expect(dts.length).toBeGreaterThan(10);
    const leaks: string[] = [];
    for (const f of dts) {
      const text = await readFile(path.join(pkg, f), 'utf8');
      if (text.includes('@internal')) leaks.push(f);
      if (/declare const CALL_RAW\b/.test(text)) leaks.push(`${f}: CALL_RAW`);
    }
    expect(leaks).toEqual([]);
  });

  it('a strict TypeScript consumer compiles against both entries (no declaration refers to a stripped one)', async () => {
    await writeFile(
      path.join(project, 'consumer.ts'),
      [
        "import * as api from 'enclave';",
        "import * as attest from 'enclave/attest';",
        'export type Surface = [typeof api, typeof attest, api.EnclaveOptions, api.CallOptions, attest.ModuleIdentity, attest.TrustPolicy];',
        'export async function use(bytes: Uint8Array): Promise<unknown> {',
        '  const enclave = await api.loadEnclave(bytes);',
        "  try { return await enclave.call('echo', { hello: 'enclave' }); } finally { await enclave.close(); }",
        '}',
        'export const id: attest.ModuleIdentity = attest.moduleIdentity(new Uint8Array(0));',
        '',
      ].join('\n'),
    );
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = await sh(process.execPath, [
      tsc, '--noEmit', '--strict', '--skipLibCheck', 'false', '--target', 'es2022', '--lib', 'es2022', '--module', 'nodenext',
      '--moduleResolution', 'nodenext', '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), 'consumer.ts',
    ]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
