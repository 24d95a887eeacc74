/**
 * `enclave inspect` on a component (issue 14, decision 10): the measurement, signer and contract as
 * for a core module, plus the component's WIT world (wasm-tools' `componentWit`, escaped, in a
 * bounded worker: host/cli/_component-wit.ts), its core modules, its imports with the capability
 * each needs, and the fuel bound of a call across its core modules (decision 6). A component the
 * runtime refuses (an import beyond the enclave world, a capability its contract lacks) is refused
 * with the runtime's code. Fixtures: hand-written WAT through parse → componentEmbed → componentNew
 * (test/helpers/component-fixtures.ts).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { measure } from '../attest/index.js';
import { encodeCustomSection, readComponentInfo } from '../core/index.js';
import { componentWitBounded, MAX_WIT_CHARS } from '../host/cli/_component-wit.js';
import { enclaveCli, jsonError } from './helpers/cli.js';
import { beyondWorldComponent, componentFixture, fixtureContract, sealImportingComponent } from './helpers/component-fixtures.js';

let dir: string;
let echo: Uint8Array;
const env: NodeJS.ProcessEnv = { ...process.env };
const cli = (...args: string[]) => enclaveCli(args, { cwd: dir, env });

function append(bytes: Uint8Array, name: string, payload: Uint8Array): Uint8Array {
  const section = encodeCustomSection(name, payload);
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'enclave-cli-inspect-component-'));
  env.ENCLAVE_CACHE_DIR = path.join(dir, '.cache');
  echo = await componentFixture('echo');
  await writeFile(path.join(dir, 'echo.component.wasm'), echo);
  await writeFile(path.join(dir, 'beyond.wasm'), await beyondWorldComponent());
  await writeFile(path.join(dir, 'seal.wasm'), await sealImportingComponent());
  // A custom section whose name carries a bidi override and an escape: printed escaped.
  await writeFile(path.join(dir, 'named.wasm'), append(echo, 'x\u202e\u001b[2J', Uint8Array.of(1)));
}, 120_000);

describe('enclave inspect <component>', () => {
  it('--json: kind, the WIT world, core modules, imports with their capability, the fuel bound, the contract', async () => {
    const r = await cli('inspect', 'echo.component.wasm', '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const info = readComponentInfo(echo);
    const contract = fixtureContract('echo');
    const count = info.coreModules.length;
    expect(count).toBeGreaterThan(1); // wit-component's shim and fixup beside the main module
    expect(report).toMatchObject({
      module: 'echo.component.wasm',
      kind: 'component',
      bytes: echo.length,
      measurement: Buffer.from(measure(echo)).toString('hex'),
      signer: null,
      signatures: 0,
      name: 'wat-echo',
      version: '1.0.0',
      svn: 1,
      memory: { initialPages: 1, maximumPages: 3 },
      fuel: { coreModules: count, budget: contract.limits.fuel, callBound: count * contract.limits.fuel },
      exports: [{ name: 'enclave:runtime/handler@1.0.0', kind: 'instance' }],
      contract: { name: 'wat-echo', capabilities: ['random', 'log'] },
    });
    expect(report.coreModules).toEqual(
      info.coreModules.map((m, i) => ({ index: i, bytes: m.length, memory: i === report.coreModules.findIndex((c: { memory: unknown }) => c.memory !== null) ? { initialPages: 1, maximumPages: 3 } : null })),
    );
    expect(report.coreModules.filter((m: { memory: unknown }) => m.memory !== null)).toHaveLength(1);
    const capabilities = Object.fromEntries(report.imports.map((i: { name: string; capability: string | null }) => [i.name, i.capability]));
    expect(capabilities).toEqual({
      'enclave:runtime/types@1.0.0': null,
      'enclave:runtime/random@1.0.0': 'random',
      'enclave:runtime/log@1.0.0': 'log',
    });
    expect(report.imports.every((i: { kind: string }) => i.kind === 'instance')).toBe(true);
    expect(report.wit).toMatch(/^package [^\n]+;\n/);
    expect(report.wit).toContain('import enclave:runtime/random@1.0.0;');
    expect(report.wit).toContain('import enclave:runtime/log@1.0.0;');
    expect(report.wit).toContain('export enclave:runtime/handler@1.0.0;');
    expect(report.customSections).toContain('enclave.contract');
  }, 120_000);

  it('text: the kind, the fuel bound, core modules, imports with capabilities, ops, and the WIT indented', async () => {
    const r = await cli('inspect', 'echo.component.wasm');
    expect(r.code, r.stderr).toBe(0);
    const count = readComponentInfo(echo).coreModules.length;
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe(`module       echo.component.wasm (${echo.length} bytes)`);
    expect(lines[1]).toBe(`kind         component (${count} core modules)`);
    expect(r.stdout).toContain(`\nmeasurement  sha256:${Buffer.from(measure(echo)).toString('hex')}\n`);
    expect(r.stdout).toContain('\ncapabilities random, log\n');
    expect(r.stdout).toContain('\nmemory       1 pages initial, 3 maximum\n');
    expect(r.stdout).toContain(`\nfuel         a call may run up to ${count} × its fuel budget (${count} × 1000000 = ${count * 1_000_000} at limits.fuel) across its ${count} core modules`);
    expect(r.stdout).toMatch(/\ncore modules\n {2}#0 {2}\d+ bytes/);
    expect(r.stdout).toMatch(/\n {2}enclave:runtime\/types@1\.0\.0 +instance, no capability\n/);
    expect(r.stdout).toMatch(/\n {2}enclave:runtime\/random@1\.0\.0 +instance, capability random\n/);
    expect(r.stdout).toMatch(/\nops\n {2}echo /);
    expect(r.stdout).toMatch(/\nwit\n {2}package [^\n]+;\n/);
    expect(r.stdout).toContain('\n    export enclave:runtime/handler@1.0.0;\n');
  }, 120_000);

  it('refuses a component importing beyond the enclave world: exit 1 with the runtime\'s code and message', async () => {
    const r = await cli('inspect', 'beyond.wasm');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[invalid_module\]: The component imports "wasi:random\/random@0\.2\.0" \(instance\), beyond the enclave world/);
    expect(r.stdout).toBe('');
    const json = await cli('inspect', 'beyond.wasm', '--json');
    expect(json.code).toBe(1);
    expect(jsonError(json.stderr).code).toBe('invalid_module');
    expect(json.stdout).toBe('');
  }, 120_000);

  it('refuses a component importing a capability its contract does not declare: capability_denied', async () => {
    const r = await cli('inspect', 'seal.wasm', '--json');
    expect(r.code).toBe(1);
    expect(jsonError(r.stderr)).toMatchObject({ code: 'capability_denied', message: expect.stringContaining('"seal"') });
  }, 120_000);

  it('text the component chose is escaped: a custom section name with a bidi override and an escape', async () => {
    const r = await cli('inspect', 'named.wasm', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/[\u202e\u001b]/);
    expect(r.stdout).toContain('"x\\u202e\\u001b[2J"');
    expect(JSON.parse(r.stdout).customSections).toContain('x\u202e\u001b[2J');
  }, 120_000);

  it('a core module: kind module and no WIT', async () => {
    const r = await cli('inspect', path.resolve('enclave-modules/echo/build/echo.wasm'), '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'module', wit: null, contract: { name: 'echo' } });
    const text = await cli('inspect', path.resolve('enclave-modules/echo/build/echo.wasm'));
    expect(text.stdout).not.toMatch(/^(kind|wit|fuel) /m);
  }, 120_000);
});

describe('componentWitBounded (host/cli/_component-wit.ts)', () => {
  it('prints the world of a component', async () => {
    const printed = await componentWitBounded(echo);
    expect(printed).toEqual({ wit: expect.stringContaining('export enclave:runtime/handler@1.0.0;'), truncated: false });
    expect(printed.wit!.length).toBeLessThan(MAX_WIT_CHARS);
  });

  it('bytes wasm-tools cannot decode, or a deadline passed: no WIT, and why (never a throw)', async () => {
    const bad = await componentWitBounded(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x09));
    expect(bad).toEqual({ wit: null, why: expect.stringMatching(/^wasm-tools could not print it: .*unexpected end-of-file/s) });
    const late = await componentWitBounded(echo, 1);
    expect(late).toEqual({ wit: null, why: 'wasm-tools did not print it within 0.001 s' });
  });
});
