// `enclave build` as a module author meets it: any folder, relative and absolute paths, --out, the
// compiler's own diagnostics, reproducible bytes, a user's asconfig.json ignored, the load check (a
// contract op without a handler), and the contract's limits given to the SDK (they cannot drift).

import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnclaveError, MAX_CONTRACT_BYTES } from '../core/index.js';
import { buildModules } from '../host/build-modules.js';
import { checkBuilt } from '../host/build/check.js';
import { loadEnclave, parseContract } from '../runtime/index.js';
import { ROOT } from './helpers/raw-abi.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

const execFileP = promisify(execFile);
const CLI = path.join(ROOT, 'dist/host/cli/main.js');

async function enclave(cwd: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP(process.execPath, [CLI, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<EnclaveError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnclaveError);
  return err as EnclaveError;
}

const KV_SOURCE = `import { Enclave, Value, Reply } from "enclave/sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

let stored: Value = Value.nil();
Enclave.op("put", put);
Enclave.op("get", get);

function put(args: Value): Reply {
  stored = args.get("v");
  return Reply.ok();
}

function get(args: Value): Reply {
  return Reply.ok(stored);
}
`;

const KV_CONTRACT = {
  abi: 1,
  name: 'kv',
  version: '0.1.0',
  svn: 1,
  capabilities: [],
  limits: { requestBytes: 4096, replyBytes: 4096, depth: 8, memoryPages: 4 },
  ops: {
    put: { args: { type: 'map', fields: { v: { type: 'str', maxLength: 100 } }, required: ['v'] }, reply: { type: 'nil' } },
    get: { args: { type: 'nil' }, reply: { type: 'str', nullable: true } },
  },
};

/** A module directory: `index.ts` and `contract.json`. */
async function moduleDir(dir: string, source = KV_SOURCE, contract: unknown = KV_CONTRACT): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'index.ts'), source);
  await writeFile(path.join(dir, 'contract.json'), `${JSON.stringify(contract, null, 2)}\n`);
  return dir;
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'enclave-build-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('enclave build: where and what', () => {
  it('a missing directory is a usage error naming its absolute path (exit 2), and nothing is built', async () => {
    const r = await enclave(work, 'build', 'no-such-dir');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error[usage]: ${path.join(work, 'no-such-dir')} does not exist: pass a module directory holding index.ts and contract.json.\n`);
    const json = await enclave(work, 'build', path.join(work, 'nope'), '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stderr).error.code).toBe('usage');
    expect(JSON.parse(json.stderr).error.message).toContain(path.join(work, 'nope'));
  });

  it('a directory without index.ts, or a file given as the directory, is a usage error naming the path', async () => {
    const dir = path.join(work, 'no-entry');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'contract.json'), JSON.stringify(KV_CONTRACT));
    const r = await enclave(work, 'build', 'no-entry');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error[usage]: ${path.join(dir, 'index.ts')} does not exist`);
    const file = await enclave(work, 'build', 'no-entry/contract.json');
    expect(file.code).toBe(2);
    expect(file.stderr).toContain(`${path.join(dir, 'contract.json')} is not a directory`);
  });

  it('a bad or missing contract is invalid_contract naming the file (exit 1), before anything compiles', async () => {
    const bad = await moduleDir(path.join(work, 'bad-contract'), KV_SOURCE, { ...KV_CONTRACT, limits: { depth: 1 } });
    const r = await enclave(work, 'build', bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[invalid_contract\]: .*bad-contract\/contract\.json: .*limits\.depth/);
    const none = path.join(work, 'no-contract');
    await mkdir(none, { recursive: true });
    await writeFile(path.join(none, 'index.ts'), KV_SOURCE);
    const r2 = await enclave(work, 'build', 'no-contract');
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain(`error[invalid_contract]: ${path.join(none, 'contract.json')} is not readable JSON`);
  });

  it('a contract.json that is a FIFO, a device or over 1 MiB is invalid_contract, never waited on nor read whole, before anything compiles', async () => {
    const fifo = await moduleDir(path.join(work, 'fifo-contract'));
    await rm(path.join(fifo, 'contract.json'));
    await execFileP('mkfifo', [path.join(fifo, 'contract.json')]);
    // A failsafe only (the assertion is the code): without the bound the build waited on the FIFO forever.
    const r = await execFileP(process.execPath, [CLI, 'build', fifo], { cwd: work, timeout: 60_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error[invalid_contract]: ${path.join(fifo, 'contract.json')} is not a regular file`);
    const dev = await moduleDir(path.join(work, 'dev-contract'));
    await rm(path.join(dev, 'contract.json'));
    await symlink('/dev/zero', path.join(dev, 'contract.json'));
    let err = await rejection(buildModules({ dirs: [dev] }));
    expect(err.code).toBe('invalid_contract');
    expect(err.message).toContain(`${path.join(dev, 'contract.json')} is not a regular file`);
    // Valid JSON and a valid contract, but more than the runtime accepts as a contract section:
    // refused as a contract (not build_failed after compiling), and nothing is written.
    const big = await moduleDir(path.join(work, 'big-contract'), KV_SOURCE, { ...KV_CONTRACT, description: 'x'.repeat(MAX_CONTRACT_BYTES) });
    err = await rejection(buildModules({ dirs: [big] }));
    expect(err.code).toBe('invalid_contract');
    expect(err.message).toContain(`${path.join(big, 'contract.json')} is`);
    expect(err.message).toContain('1 MiB');
    await expect(readdir(big)).resolves.not.toContain('build');
    // Under 1 MiB as written, over it as embedded (numbers re-serialised longer): refused too.
    const grown = await moduleDir(path.join(work, 'grown-contract'));
    const contract = JSON.stringify({ ...KV_CONTRACT, description: '@' }).replace('"@"', `[${'1e9,'.repeat(200_000)}1]`);
    await writeFile(path.join(grown, 'contract.json'), contract);
    expect(Buffer.byteLength(contract)).toBeLessThan(MAX_CONTRACT_BYTES);
    err = await rejection(buildModules({ dirs: [grown] }));
    expect(err.code).toBe('invalid_contract');
    expect(err.message).toContain('1 MiB');
    await expect(readdir(grown)).resolves.not.toContain('build');
  });

  it('limits whose request and reply cannot fit in the memory are invalid_contract, before anything compiles', async () => {
    // Built, such a module trapped on a request its contract allows, losing its state.
    const dir = await moduleDir(path.join(work, 'tight-memory'), KV_SOURCE, {
      ...KV_CONTRACT,
      limits: { requestBytes: 1_000_000, replyBytes: 2048, depth: 8, memoryPages: 2 },
    });
    const err = await rejection(buildModules({ dirs: [dir] }));
    expect(err.code).toBe('invalid_contract');
    expect(err.message).toContain(
      `${path.join(dir, 'contract.json')}: limits.requestBytes (1000000) and limits.replyBytes (2048) do not fit in limits.memoryPages (2 pages`,
    );
    await expect(readdir(dir)).resolves.not.toContain('build');
  });

  it('an output that cannot be written is a usage error naming it (exit 2), not internal, and leaves no temporary file', async () => {
    // An --out below a file: the directory cannot be created.
    const dir = await moduleDir(path.join(work, 'out-below-file'));
    const file = path.join(work, 'out-below-file.txt');
    await writeFile(file, 'not a directory');
    const r = await enclave(work, 'build', dir, '--out', path.join(file, 'sub'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error[usage]: Cannot write ${path.join(file, 'sub', 'kv.wasm')}: ENOTDIR`);
    await expect(readFile(file, 'utf8')).resolves.toBe('not a directory');
    // A directory where the .wasm goes: the temporary file is written, the rename fails, and it is removed.
    const out = path.join(work, 'out-dir-in-the-way');
    await mkdir(path.join(out, 'kv.wasm', 'inside'), { recursive: true });
    const err = await rejection(buildModules({ dirs: [dir], out }));
    expect(err.code).toBe('usage');
    expect(err.message).toMatch(new RegExp(`^Cannot write ${path.join(out, 'kv.wasm')}: E[A-Z]+`));
    expect(await readdir(out)).toEqual(['kv.wasm']);
  }, 120_000);

  it('with no directories and no enclave-modules/ here: a usage error that says what to pass', async () => {
    const r = await enclave(work, 'build');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[usage\]: No enclave-modules\/ directory in .*: pass the module directories/);
  });

  it('an --out that is a file is a usage error naming it, before anything compiles', async () => {
    const dir = await moduleDir(path.join(work, 'out-file'));
    await writeFile(path.join(work, 'a-file'), 'x');
    const r = await enclave(work, 'build', dir, '--out', 'a-file');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error[usage]: --out ${path.join(work, 'a-file')} is not a directory: pass a directory for the .wasm files.\n`);
  });

  it('two modules of one name to one --out are refused before either is built', async () => {
    const a = await moduleDir(path.join(work, 'twin-a'));
    const b = await moduleDir(path.join(work, 'twin-b'));
    const err = await rejection(buildModules({ dirs: [a, b], out: path.join(work, 'twins') }));
    expect(err.code).toBe('usage');
    expect(err.message).toContain(path.join(work, 'twins', 'kv.wasm'));
    await expect(readdir(path.join(work, 'twins'))).rejects.toThrow();
  });
});

describe('enclave build: failures say what and where', () => {
  it('a compile error is build_failed with the compiler diagnostics, no colours (exit 1); --json carries them too', async () => {
    const dir = await moduleDir(path.join(work, 'typo'), KV_SOURCE.replace('Reply.ok(stored)', 'Reply.ok(storred)'));
    const r = await enclave(work, 'build', 'typo');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[build_failed\]: Compiling .*typo\/index\.ts failed/);
    expect(r.stderr).toContain("ERROR TS2304: Cannot find name 'storred'.");
    expect(r.stderr).toContain('└─ in index.ts(14,19)');
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr).not.toContain('\\x1b');
    const json = await enclave(work, 'build', dir, '--json');
    expect(json.code, json.stderr).toBe(1);
    const { error } = JSON.parse(json.stderr) as { error: { code: string; message: string } };
    expect(error.code, json.stderr).toBe('build_failed');
    expect(error.message).toContain("Cannot find name 'storred'");
    await expect(readdir(path.join(dir, 'build'))).rejects.toThrow();
  });

  it('a contract op without a handler is build_failed naming the op, and nothing is written', async () => {
    const dir = await moduleDir(path.join(work, 'unhandled'), KV_SOURCE.replace('Enclave.op("get", get);\n', ''));
    const err = await rejection(buildModules({ dirs: [dir] }));
    expect(err.code).toBe('build_failed');
    expect(err.message).toContain('no handler for the contract op "get"');
    expect(err.message).not.toContain('"put"');
    await expect(readdir(path.join(dir, 'build'))).rejects.toThrow();
  });

  it('a module that does not load or start with the runtime is build_failed with the runtime\'s reason', async () => {
    // Top-level code that never ends: stopped by the contract's fuel, the build does not hang.
    const loop = await moduleDir(path.join(work, 'loop'), KV_SOURCE.replace('let stored', 'let n: i32 = 0;\nwhile (n >= 0) n = (n + 1) & 0xffff;\nlet stored'));
    const stuck = await rejection(buildModules({ dirs: [loop] }));
    expect(stuck.code).toBe('build_failed');
    expect(stuck.message).toContain(`The module built from ${loop} does not load (fuel_exhausted): The start function used more than`);
    // A capability the module uses and its contract does not declare.
    const random = await moduleDir(
      path.join(work, 'random'),
      KV_SOURCE.replace('{ Enclave, Value, Reply }', '{ Enclave, Value, Reply, randomBytes }').replace('Reply.ok(stored)', 'Reply.ok(Value.bin(randomBytes(4)))'),
    );
    const denied = await rejection(buildModules({ dirs: [random] }));
    expect(denied.code).toBe('build_failed');
    expect(denied.message).toMatch(/does not load \(capability_denied\): .*"random"/);
    await expect(readdir(path.join(random, 'build'))).rejects.toThrow();
    // Declared, but called from top-level code, before the host can serve it: a trap at start, explained.
    const early = await moduleDir(
      path.join(work, 'random-early'),
      KV_SOURCE.replace('{ Enclave, Value, Reply }', '{ Enclave, Value, Reply, randomBytes }').replace('let stored', 'const key = randomBytes(4);\nlet stored'),
      { ...KV_CONTRACT, capabilities: ['random'] },
    );
    const trapped = await rejection(buildModules({ dirs: [early] }));
    expect(trapped.code).toBe('build_failed');
    expect(trapped.message).toMatch(/does not load \(trap\): .*a capability \(randomBytes, .*\) called at top level/);
  }, 90_000);

  it('an enclave_call that never returns fails the load check (build_failed) in time, instead of hanging the build', async () => {
    // The probe runs the module unmetered (the runtime would stop the call at its fuel): it runs in a
    // worker stopped at a deadline. Checked with a short one (the build's own is LOAD_CHECK_DEADLINE_MS).
    const wat = minimalWat({
      exports: `(func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (func (export "enclave_call") (param i32 i32) (result i32) (loop $spin (br $spin)) (i32.const 0))`,
    });
    const bytes = await watModule(wat, MINIMAL_CONTRACT);
    const err = await rejection(checkBuilt(bytes, parseContract(MINIMAL_CONTRACT), '/m/spin', 2_000));
    expect(err.code).toBe('build_failed');
    expect(err.message).toBe(
      'The load check of the module built from /m/spin failed probing "ping": it did not finish in time (2 s): a loop that never ends? ' +
        "(the runtime stops one at the contract's fuel, fuel_exhausted)",
    );
  }, 30_000);

  it('a probe reply that is not {ok} is build_failed quoting it, a 64-bit integer too (not internal)', async () => {
    // enclave_call's reply: the descriptor at 0x180 points at 0xcf + 8 bytes (uint64 max, a BigInt decoded).
    const wat = minimalWat({
      exports: `(func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (func (export "enclave_call") (param i32 i32) (result i32) (i32.const 0x180))`,
      body: '(data (i32.const 0x180) "\\00\\03\\00\\00\\09\\00\\00\\00") (data (i32.const 0x300) "\\cf\\ff\\ff\\ff\\ff\\ff\\ff\\ff\\ff")',
    });
    const bytes = await watModule(wat, MINIMAL_CONTRACT);
    const err = await rejection(checkBuilt(bytes, parseContract(MINIMAL_CONTRACT), '/m/big'));
    expect(err.code).toBe('build_failed');
    expect(err.message).toBe('The load check of the module built from /m/big failed probing "ping": it answered 18446744073709551615n');
  });

  it('an entry without the SDK exports (so no abort replacement) is refused, not built importing env.abort', async () => {
    const source = 'export function enclave_abi_version(): i32 { return 1; }\n';
    const dir = await moduleDir(path.join(work, 'no-sdk'), source);
    const err = await rejection(buildModules({ dirs: [dir] }));
    expect(err.code).toBe('build_failed');
    expect(err.message).toContain('export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports"');
  });
});

describe('enclave build: output', () => {
  it('is byte-identical from two folders, relative or absolute, with --out, with a user asconfig.json, from another location', async () => {
    const dir = await moduleDir(path.join(work, 'repro', 'kv'));
    // 1: from the module's parent, relative path, default output.
    const r1 = await enclave(path.join(work, 'repro'), 'build', 'kv', '--json');
    expect(r1.code, r1.stderr).toBe(0);
    const [built] = JSON.parse(r1.stdout) as Array<{ name: string; dir: string; output: string; bytes: number }>;
    expect(built).toEqual({ name: 'kv', dir, output: path.join(dir, 'build', 'kv.wasm'), bytes: expect.any(Number) });
    const first = await readFile(built!.output);
    expect(first.length).toBe(built!.bytes);

    // 2: from the root, absolute path, --out, and an asconfig.json that would change everything if read.
    await writeFile(
      path.join(dir, 'asconfig.json'),
      JSON.stringify({ targets: { release: { optimizeLevel: 0, noAssert: true, use: ['abort='] } }, options: { runtime: 'stub', debug: true } }),
    );
    const out = path.join(work, 'repro-out');
    const r2 = await enclave('/', 'build', dir, '--out', out);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toContain(`${path.join(out, 'kv.wasm').slice(1)} (${first.length} bytes)`);
    expect(await readFile(path.join(out, 'kv.wasm'))).toEqual(first);

    // 3: the same sources somewhere else (no path enters the output), through the API.
    const elsewhere = path.join(work, 'elsewhere', 'deeper', 'module');
    await cp(dir, elsewhere, { recursive: true });
    const [again] = await buildModules({ dirs: ['module'], cwd: path.join(work, 'elsewhere', 'deeper') });
    expect(await readFile(again!.output)).toEqual(first);
    expect(first.includes(Buffer.from(work))).toBe(false);
    expect(first.includes(Buffer.from('repro'))).toBe(false);

    // And it runs: the contract is embedded, the SDK's limits are the contract's.
    const kv = await loadEnclave(first);
    try {
      await kv.call('put', { v: 'b' });
      expect(await kv.call('get')).toBe('b');
    } finally {
      await kv.close();
    }
  }, 120_000);
});

describe('enclave build: the contract is the one source of limits', () => {
  // Reads the SDK's limits (internal module, tests only) so the test sees what the SDK enforces.
  const LIMITS_SOURCE = `import { Enclave, Value, Reply } from "enclave/sdk";
import { requestBytesLimit, replyBytesLimit, depthLimit, memoryPagesLimit } from "enclave/enclave-modules/sdk/limits";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";
Enclave.op("limits", limits);
function limits(args: Value): Reply {
  return Reply.ok(Value.array()
    .push(Value.int(requestBytesLimit)).push(Value.int(replyBytesLimit))
    .push(Value.int(depthLimit)).push(Value.int(memoryPagesLimit)));
}
`;
  const contract = (limits: Record<string, number>) => ({
    abi: 1, name: 'limits', version: '1.0.0', svn: 1, capabilities: [], limits,
    ops: { limits: { args: { type: 'nil' }, reply: { type: 'array', items: { type: 'int' } } } },
  });

  it.each([
    [{ requestBytes: 3000, replyBytes: 2000, depth: 5, memoryPages: 3 }, [3000, 2000, 5, 3]],
    [{}, [65536, 65536, 32, 16]],
  ])('contract limits %j: the SDK enforces %j and the memory maximum is the contract memoryPages', async (limits, expected) => {
    const dir = await moduleDir(path.join(work, `limits-${expected.join('-')}`), LIMITS_SOURCE, contract(limits));
    const [built] = await buildModules({ dirs: [dir] });
    const bytes = await readFile(built!.output);
    const memory = WebAssembly.Module.exports(new WebAssembly.Module(bytes)).find((e) => e.kind === 'memory');
    expect(memory).toBeDefined();
    const enclave = await loadEnclave(bytes, { policy: { memoryPages: expected[3]! } });
    try {
      expect(await enclave.call('limits')).toEqual(expected);
    } finally {
      await enclave.close();
    }
    // The declared maximum is the contract's: one page less in the policy refuses the module.
    await expect(loadEnclave(bytes, { policy: { memoryPages: expected[3]! - 1 } })).rejects.toMatchObject({ code: 'memory_limit' });
  }, 60_000);

  it('the SDK has no setLimits any more: a module cannot state other limits than its contract', async () => {
    const dir = await moduleDir(path.join(work, 'set-limits'), KV_SOURCE.replace('Enclave.op("put", put);', 'Enclave.setLimits(1, 1, 2, 1);\nEnclave.op("put", put);'));
    const err = await rejection(buildModules({ dirs: [dir] }));
    expect(err.code).toBe('build_failed');
    expect(err.message).toMatch(/Property 'setLimits' does not exist/);
  });
});
