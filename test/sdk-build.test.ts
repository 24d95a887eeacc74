// The SDK modules as built artefacts: reproducible bytes, only `enclave` imports, exactly the ABI
// exports, and a declared memory maximum equal to the contract's `limits.memoryPages` (ABI §2-3, §5).
// The SDK as a package subpath (`enclave/sdk`) that plain asc resolves from node_modules, with the
// top-level asconfig.json equal to the build's built-in settings; and the SDK's handler probe
// (ABI §4.1), which only `enclave build` sends.

import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import asc from 'assemblyscript/asc';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ABORT_ALIAS, COMPILER_SETTINGS, LIMIT_CONSTANTS, settingsArgs } from '../host/build/settings.js';
import { mapToPackage } from '../host/build/compile.js';
import { requestFrame } from '../runtime/index.js';
import { compileModule, decode, errCode, instantiateRaw, ROOT } from './helpers/raw-abi.js';

/** The memory section's limits of a module that defines one memory. */
function memoryLimits(bytes: Uint8Array): { min: number; max?: number } {
  let at = 8;
  const leb = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++]!;
      v |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return v >>> 0;
      shift += 7;
    }
  };
  while (at < bytes.length) {
    const id = bytes[at++]!;
    const size = leb();
    const end = at + size;
    if (id === 5) {
      expect(leb()).toBe(1);
      const flags = leb();
      const min = leb();
      return flags & 1 ? { min, max: leb() } : { min };
    }
    at = end;
  }
  throw new Error('no memory section');
}

const ABI_EXPORTS = ['function:enclave_abi_version', 'function:enclave_alloc', 'function:enclave_call', 'memory:memory'];

describe.each(['echo', 'counter'])('%s module', (name) => {
  it('compiles to identical bytes twice, with only enclave.abort imported and the ABI exports', async () => {
    const [a, b] = [await compileModule(name, [], { cache: false }), await compileModule(name, [], { cache: false })];
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);

    const mod = new WebAssembly.Module(a);
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'enclave', name: 'abort', kind: 'function' }]);
    expect(WebAssembly.Module.exports(mod).map((e) => `${e.kind}:${e.name}`).sort()).toEqual(ABI_EXPORTS);
    const contract = JSON.parse(readFileSync(`${ROOT}enclave-modules/${name}/contract.json`, 'utf8'));
    expect(memoryLimits(a).max).toBe(contract.limits.memoryPages);
    expect(memoryLimits(a).min).toBeLessThanOrEqual(contract.limits.memoryPages);
  });

  it('imports the SDK as a user does (enclave/sdk), registers every contract op, and states no limits of its own', () => {
    const src = readFileSync(`${ROOT}enclave-modules/${name}/index.ts`, 'utf8');
    const contract = JSON.parse(readFileSync(`${ROOT}enclave-modules/${name}/contract.json`, 'utf8'));
    expect(src).toContain('from "enclave/sdk"');
    expect(src).toContain('export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";');
    expect(src).not.toMatch(/\.\.\/sdk|setLimits/);
    expect(Object.keys(contract.ops).every((op) => src.includes(`Enclave.op("${op}"`))).toBe(true);
  });
});

describe('the SDK surface', () => {
  it('type-checks with TypeScript as an editor sees it (enclave-modules/tsconfig.json maps enclave/* onto this checkout)', () => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'enclave-modules/tsconfig.json'), '--noEmit'], {
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);

  it('has no Enclave.setLimits: the limits are the contract\'s, given by the build as constants', () => {
    const dispatch = readFileSync(`${ROOT}enclave-modules/sdk/dispatch.ts`, 'utf8');
    const limits = readFileSync(`${ROOT}enclave-modules/sdk/limits.ts`, 'utf8');
    expect(dispatch).not.toMatch(/static setLimits/);
    expect(readFileSync(`${ROOT}enclave-modules/sdk/index.ts`, 'utf8')).not.toMatch(/setLimits/);
    for (const constant of Object.values(LIMIT_CONSTANTS)) expect(limits).toContain(`isDefined(${constant}) ? ${constant} :`);
  });

  it('maps node_modules/enclave/<path> onto the package root, and nothing else', () => {
    expect(mapToPackage('/p/node_modules/enclave/sdk/index.ts', '/pkg')).toBe('/pkg/sdk/index.ts');
    expect(mapToPackage('/p/node_modules/enclave/node_modules/enclave/enclave-modules/sdk/env.ts', '/pkg')).toBe('/pkg/enclave-modules/sdk/env.ts');
    expect(mapToPackage('/p/node_modules/enclave-x/sdk/index.ts', '/pkg')).toBe('/p/node_modules/enclave-x/sdk/index.ts');
    expect(mapToPackage('/p/enclave/sdk/index.ts', '/pkg')).toBe('/p/enclave/sdk/index.ts');
  });
});

describe('asconfig.json and plain asc', () => {
  it('states exactly the built-in settings of enclave build (they cannot diverge)', () => {
    const config = JSON.parse(readFileSync(`${ROOT}asconfig.json`, 'utf8'));
    const { use, maximumMemory, ...release } = config.targets.release;
    expect(release).toEqual(COMPILER_SETTINGS);
    expect(use).toEqual([ABORT_ALIAS]);
    expect(maximumMemory).toBeGreaterThan(0);
    expect(config.options).toEqual({ bindings: false });
    expect(settingsArgs()).toEqual(['--optimizeLevel', '3', '--shrinkLevel', '0', '--runtime', 'incremental']);
  });

  it('a project with the package in node_modules compiles an enclave with plain asc and asconfig.json', async () => {
    const project = await mkdtemp(path.join(tmpdir(), 'enclave-plain-asc-'));
    try {
      await mkdir(path.join(project, 'node_modules'));
      await symlink(ROOT, path.join(project, 'node_modules', 'enclave'), 'dir');
      await mkdir(path.join(project, 'kv'));
      await writeFile(
        path.join(project, 'kv', 'index.ts'),
        [
          'import { Enclave, Value, Reply } from "enclave/sdk";',
          'import { sha256 } from "enclave/sdk/crypto";',
          'export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";',
          'Enclave.op("hash", hash);',
          'function hash(args: Value): Reply { return Reply.ok(Value.bin(sha256(args.asBytes()))); }',
          '',
        ].join('\n'),
      );
      const stderr = asc.createMemoryStream();
      const { error } = await asc.main(
        ['kv/index.ts', '--baseDir', project, '--config', 'node_modules/enclave/asconfig.json', '--outFile', 'kv/kv.wasm', '--noColors'],
        { stderr },
      );
      expect(error, stderr.toString()).toBeNull();
      const mod = new WebAssembly.Module(await readFile(path.join(project, 'kv', 'kv.wasm')));
      // The abort alias of asconfig.json names the SDK where asc finds it: no env.abort.
      expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'enclave', name: 'abort', kind: 'function' }]);
      expect(WebAssembly.Module.exports(mod).map((e) => `${e.kind}:${e.name}`).sort()).toEqual(ABI_EXPORTS);
    } finally {
      await rm(project, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('the handler probe (ABI §4.1)', () => {
  const req = (value: unknown) => new Uint8Array(pack(value));

  it('answers ok(nil) for a registered op without calling its handler, unknown_op otherwise', async () => {
    const counter = await instantiateRaw(await compileModule('counter'));
    expect(decode(counter.call(req({ op: 'incr', probe: true })))).toEqual({ ok: null });
    expect(decode(counter.call(req({ probe: true, op: 'reset', args: { by: 3 } })))).toEqual({ ok: null });
    expect(decode(counter.call(req({ op: 'get' })))).toEqual({ ok: 0 }); // incr never ran
    expect(errCode(counter.call(req({ op: 'nope', probe: true })))).toBe('unknown_op');
    expect(errCode(counter.call(req({ probe: true })))).toBe('bad_request'); // still needs an op
  });

  it('is only `probe: true`: any other value is an ignored key and the handler runs', async () => {
    const counter = await instantiateRaw(await compileModule('counter'));
    for (const probe of [false, 1, 'true', null, [true], { probe: true }]) counter.call(req({ op: 'incr', probe }));
    expect(decode(counter.call(req({ op: 'get' })))).toEqual({ ok: 6 });
  });

  it('is never sent by the host: its request frame holds op and args only, whatever the args', () => {
    const frame = requestFrame('incr');
    expect(decode(frame.withoutArgs)).toEqual({ op: 'incr' });
    expect(decode(new Uint8Array([...frame.withArgs, ...pack({ probe: true })]))).toEqual({ op: 'incr', args: { probe: true } });
  });
});
