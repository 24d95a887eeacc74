// `enclave build --component` (issue 14, decision 8): the same AssemblyScript sources built as the
// core module and as a component of the world `enclave` (wit/enclave.wit). Both files written, the
// core module unchanged by the flag, the component reproducible, carrying the core module's contract
// as its one top-level section, its core module free of the core ABI (no `enclave` import, no
// enclave_alloc/enclave_call, no inner contract); refusals as the core build's. Then the SDK's
// component mode itself, run through jco-transpile's glue with capabilities of the test's making:
// every capability wrapper, its failures mapped back to the core statuses, the lists the host
// returns freed, error replies, abort as a trap, and the allocator's contract.

import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Packr, Unpackr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_SECTION, customSections, EnclaveError, isComponent, readComponentInfo } from '../core/index.js';
import { buildModules } from '../host/build-modules.js';
import { CALL_EXPORT, renameExport } from '../host/build/component.js';
import { componentEntrySource, SDK_CALL_EXPORT } from '../host/build/settings.js';
import { generateKeyPair, signModule, SoftwareAttestationProvider } from '../attest/index.js';
import type { EnclaveHandle } from '../host/index.js';
import { transpileComponent } from './helpers/component-fixtures.js';
import { loadIn, MODES } from './helpers/modes.js';
import { ROOT } from './helpers/raw-abi.js';
import { vaultRig } from './helpers/vault.js';

const execFileP = promisify(execFile);
const CLI = path.join(ROOT, 'dist/host/cli/main.js');
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });

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
  stored = args.get("v").copy();
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

// Every capability wrapper of the SDK, each op answering what the wrapper returned.
const CAPS_SOURCE = `import { Enclave, Value, Reply, ErrorCode, fillRandom, nowMillis, log, LogLevel, sealKey, SealPolicy,
  sealKeyAt, counterRead, counterAdvance, report, SEAL_KEY_AT_BYTES, COUNTER_BYTES } from "enclave/sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

Enclave.op("random", random);
Enclave.op("now", now);
Enclave.op("log", doLog);
Enclave.op("seal_key", doSealKey);
Enclave.op("seal_key_at", doSealKeyAt);
Enclave.op("counter_read", doCounterRead);
Enclave.op("counter_advance", doCounterAdvance);
Enclave.op("report", doReport);
Enclave.op("fail", fail);
Enclave.op("big", big);
Enclave.op("trap", trap);

function random(args: Value): Reply {
  let out = new Uint8Array(<i32>args.get("n").intOr(0));
  if (!fillRandom(out)) return Reply.ok(Value.bool(false));
  return Reply.ok(Value.bin(out));
}

function now(args: Value): Reply {
  return Reply.ok(Value.int(nowMillis()));
}

function doLog(args: Value): Reply {
  log(<LogLevel>args.get("level").intOr(1), args.get("msg").asString());
  return Reply.ok();
}

function rcAnd(rc: i32, out: Uint8Array): Reply {
  return Reply.ok(Value.map().set("rc", Value.int(rc)).set("out", Value.bin(out)));
}

function doSealKey(args: Value): Reply {
  let out = new Uint8Array(32);
  return rcAnd(sealKey(<SealPolicy>args.get("policy").intOr(0), out), out);
}

function doSealKeyAt(args: Value): Reply {
  let out = new Uint8Array(SEAL_KEY_AT_BYTES);
  let rc = sealKeyAt(<SealPolicy>args.get("policy").intOr(0), <u32>args.get("keyId").intOr(0), <i32>args.get("svn").intOr(-1), out);
  return rcAnd(rc, out);
}

function doCounterRead(args: Value): Reply {
  let out = new Uint8Array(COUNTER_BYTES);
  return rcAnd(counterRead(<SealPolicy>args.get("policy").intOr(0), <u64>args.get("id").intOr(0), out), out);
}

function doCounterAdvance(args: Value): Reply {
  let tag = new Uint8Array(32);
  for (let i = 0; i < 32; i++) tag[i] = <u8>(i + 1);
  let rc = counterAdvance(<SealPolicy>args.get("policy").intOr(0), <u64>args.get("id").intOr(0), <u64>args.get("expected").intOr(0), tag);
  return Reply.ok(Value.int(rc));
}

function doReport(args: Value): Reply {
  let evidence = report(args.get("data").asBytes());
  if (evidence === null) return Reply.ok();
  return Reply.ok(Value.bin(evidence));
}

function fail(args: Value): Reply {
  return Reply.err(<ErrorCode>args.get("code").intOr(0), args.get("message").asString());
}

function big(args: Value): Reply {
  return Reply.ok(Value.str("x".repeat(<i32>args.get("n").intOr(0))));
}

function trap(args: Value): Reply {
  assert(args.get("never").isStr(), "the trap op trapped");
  return Reply.ok();
}
`;

const ANY = { args: { type: 'any' }, reply: { type: 'any' } };
const CAPS_CONTRACT = {
  abi: 1,
  name: 'caps',
  version: '0.1.0',
  svn: 1,
  capabilities: ['random', 'clock', 'log', 'seal', 'counter', 'attest'],
  limits: { requestBytes: 8192, replyBytes: 200_000, depth: 8, memoryPages: 32 },
  ops: Object.fromEntries(
    ['random', 'now', 'log', 'seal_key', 'seal_key_at', 'counter_read', 'counter_advance', 'report', 'fail', 'big', 'trap'].map((op) => [op, ANY]),
  ),
};

/** A module directory: `index.ts` and `contract.json`. */
async function moduleDir(dir: string, source: string, contract: unknown): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'index.ts'), source);
  await writeFile(path.join(dir, 'contract.json'), `${JSON.stringify(contract, null, 2)}\n`);
  return dir;
}

let work: string;
let kvDir: string;
let kvCore: Uint8Array;
let kvComponent: Uint8Array;
let capsCore: Uint8Array;
let capsComponent: Uint8Array;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'enclave-build-component-'));
  kvDir = await moduleDir(path.join(work, 'kv'), KV_SOURCE, KV_CONTRACT);
  const capsDir = await moduleDir(path.join(work, 'caps'), CAPS_SOURCE, CAPS_CONTRACT);
  const built = await buildModules({ dirs: [kvDir, capsDir], out: path.join(work, 'out'), component: true });
  expect(built.map((b) => [b.name, path.basename(b.output), path.basename(b.component?.output ?? '')])).toEqual([
    ['kv', 'kv.wasm', 'kv.component.wasm'],
    ['caps', 'caps.wasm', 'caps.component.wasm'],
  ]);
  kvCore = new Uint8Array(await readFile(built[0]!.output));
  kvComponent = new Uint8Array(await readFile(built[0]!.component!.output));
  capsCore = new Uint8Array(await readFile(built[1]!.output));
  capsComponent = new Uint8Array(await readFile(built[1]!.component!.output));
  expect(built[1]!.component!.bytes).toBe(capsComponent.length);
}, 300_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** The core module inside a component that exports the handler's call (the SDK's module). */
function mainCoreModule(component: Uint8Array): Uint8Array {
  const mains = readComponentInfo(component).coreModules.filter((m) =>
    WebAssembly.Module.exports(new WebAssembly.Module(m)).some((e) => e.name === CALL_EXPORT),
  );
  expect(mains).toHaveLength(1);
  return mains[0]!;
}

describe('enclave build --component: the files', () => {
  it('the CLI flag writes <name>.wasm and <name>.component.wasm; the core module is the one a build without the flag writes', async () => {
    const withFlag = await enclave(work, 'build', '--component', 'kv', '--out', 'cli-a', '--json');
    expect(withFlag.code, withFlag.stderr).toBe(0);
    const [entry] = JSON.parse(withFlag.stdout) as [{ output: string; bytes: number; component: { output: string; bytes: number } }];
    expect(entry.output).toBe(path.join(work, 'cli-a', 'kv.wasm'));
    expect(entry.component.output).toBe(path.join(work, 'cli-a', 'kv.component.wasm'));
    const text = await enclave(work, 'build', '--component', 'kv', '--out', 'cli-b');
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(/^built .*cli-b\/kv\.wasm \(\d+ bytes\)$/),
      expect.stringMatching(/^built .*cli-b\/kv\.component\.wasm \(\d+ bytes\)$/),
    ]);
    const without = await enclave(work, 'build', 'kv', '--out', 'cli-c');
    expect(without.code, without.stderr).toBe(0);
    expect(await readdir(path.join(work, 'cli-c'))).toEqual(['kv.wasm']);
    const plain = new Uint8Array(await readFile(path.join(work, 'cli-c', 'kv.wasm')));
    expect(new Uint8Array(await readFile(entry.output))).toEqual(plain);
    expect(kvCore).toEqual(plain);
    expect(isComponent(plain)).toBe(false);
    expect(new Uint8Array(await readFile(entry.component.output))).toEqual(kvComponent);
    expect(entry.component.bytes).toBe(kvComponent.length);
  }, 240_000);

  it('is reproducible: built again, from another working directory, the component is byte-identical', async () => {
    const elsewhere = path.join(work, 'elsewhere');
    await mkdir(elsewhere, { recursive: true });
    const [again] = await buildModules({ dirs: ['../kv'], out: 'again', cwd: elsewhere, component: true });
    expect(new Uint8Array(await readFile(again!.component!.output))).toEqual(kvComponent);
    expect(new Uint8Array(await readFile(again!.output))).toEqual(kvCore);
  }, 240_000);

  it('carries the contract of the core module as its one top-level enclave.contract section', () => {
    for (const [core, component] of [
      [kvCore, kvComponent],
      [capsCore, capsComponent],
    ] as const) {
      expect(isComponent(component)).toBe(true);
      const info = readComponentInfo(component);
      expect(info.customSections.filter((s) => s.name === CONTRACT_SECTION)).toHaveLength(1);
      const [ours] = customSections(component, CONTRACT_SECTION);
      const [theirs] = customSections(core, CONTRACT_SECTION);
      expect(ours).toEqual(theirs);
      expect(Buffer.from(ours!).toString()).toBe(JSON.stringify(core === kvCore ? KV_CONTRACT : CAPS_CONTRACT));
      // The last section: appended after componentNew.
      expect(Buffer.from(component.subarray(component.length - ours!.length)).toString()).toBe(Buffer.from(ours!).toString());
    }
  });

  it('its core modules carry no contract and import nothing from enclave; the SDK module exports only the world\'s functions', () => {
    for (const component of [kvComponent, capsComponent]) {
      const info = readComponentInfo(component);
      expect(info.coreModules.length).toBeGreaterThan(0);
      for (const core of info.coreModules) {
        expect(customSections(core, CONTRACT_SECTION)).toEqual([]);
        const mod = new WebAssembly.Module(core);
        expect(WebAssembly.Module.imports(mod).filter((i) => i.module === 'enclave' || i.module === 'env')).toEqual([]);
      }
      const main = new WebAssembly.Module(mainCoreModule(component));
      expect(WebAssembly.Module.exports(main).map((e) => e.name).sort()).toEqual([CALL_EXPORT, 'cabi_realloc', 'memory'].sort());
      for (const imp of WebAssembly.Module.imports(main)) expect(imp.module).toMatch(/^enclave:runtime\/(random|clock|log|seal|counter|attest)@1\.0\.0$/);
    }
    // kv uses no capability: its component imports only the world's types (the error its handler returns).
    expect(readComponentInfo(kvComponent).imports).toEqual([{ kind: 'instance', name: 'enclave:runtime/types@1.0.0' }]);
    // caps uses every one: each interface of the world, as an instance.
    const names = readComponentInfo(capsComponent).imports.map((i) => `${i.kind} ${i.name}`);
    for (const iface of ['random', 'clock', 'log', 'seal', 'counter', 'attest']) expect(names).toContain(`instance enclave:runtime/${iface}@1.0.0`);
    expect(readComponentInfo(capsComponent).exports.map((e) => `${e.kind} ${e.name}`)).toEqual(['instance enclave:runtime/handler@1.0.0']);
  });

  it('an invalid contract fails as the core build does, before anything compiles, and nothing is written', async () => {
    const bad = await moduleDir(path.join(work, 'bad'), KV_SOURCE, { ...KV_CONTRACT, limits: { ...KV_CONTRACT.limits, memoryPages: 0 } });
    const core = await rejection(buildModules({ dirs: [bad], out: path.join(work, 'bad-core') }));
    const both = await rejection(buildModules({ dirs: [bad], out: path.join(work, 'bad-both'), component: true }));
    expect(both.code).toBe('invalid_contract');
    expect(both.code).toBe(core.code);
    expect(both.message).toBe(core.message);
    await expect(readdir(path.join(work, 'bad-both'))).rejects.toThrow();
  });

  it('a source that does not compile fails as the core build does', async () => {
    const broken = await moduleDir(path.join(work, 'broken'), `${KV_SOURCE}\nlet x: i32 = "not a number";\n`, KV_CONTRACT);
    const core = await rejection(buildModules({ dirs: [broken], out: path.join(work, 'broken-core') }));
    const both = await rejection(buildModules({ dirs: [broken], out: path.join(work, 'broken-both'), component: true }));
    expect(both.code).toBe('build_failed');
    expect(both.message).toBe(core.message);
  }, 120_000);

  it('a module importing outside the world is refused, naming the import, and its component is not written', async () => {
    const own = `import { Enclave, Value, Reply } from "enclave/sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";
// @ts-ignore: decorator
@external("enclave", "random")
declare function rawRandom(ptr: usize, len: i32): i32;
Enclave.op("r", r);
function r(args: Value): Reply {
  let out = new Uint8Array(4);
  return Reply.ok(Value.int(rawRandom(out.dataStart, 4)));
}
`;
    const dir = await moduleDir(path.join(work, 'own-import'), own, { ...KV_CONTRACT, name: 'own', capabilities: ['random'], ops: { r: ANY } });
    // The core build accepts it: enclave.random is the core ABI's.
    await buildModules({ dirs: [dir], out: path.join(work, 'own-core') });
    const err = await rejection(buildModules({ dirs: [dir], out: path.join(work, 'own-both'), component: true }));
    expect(err.code).toBe('build_failed');
    expect(err.message).toContain('"enclave.random"');
    expect(err.message).toContain('not in the enclave world');
    await expect(readdir(path.join(work, 'own-both'))).rejects.toThrow();
  }, 120_000);
});

describe('the generated entry and the export rename', () => {
  it('the entry imports the module\'s entry and exports the SDK\'s component functions', () => {
    expect(componentEntrySource('index.ts')).toBe(
      'import "./index";\nexport { cabi_realloc, enclave_component_call } from "enclave/enclave-modules/sdk/component";\n',
    );
    expect(componentEntrySource('src\\main.ts')).toContain('import "./src/main";');
  });

  /** A core module exporting `names` (functions, all the same one) and a memory. */
  function withExports(names: string[]): Uint8Array {
    const enc = new TextEncoder();
    const exps: number[] = [names.length + 1];
    for (const n of names) exps.push(n.length, ...enc.encode(n), 0, 0);
    exps.push(6, ...enc.encode('memory'), 2, 0);
    return Uint8Array.from([
      0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
      1, 4, 1, 0x60, 0, 0, // type: () -> ()
      3, 2, 1, 0, // func 0: type 0
      5, 3, 1, 0, 1, // memory min 1
      7, exps.length, ...exps,
      10, 4, 1, 2, 0, 0x0b, // code
      0, 4, 3, 0x61, 0x62, 0x63, // custom "abc", empty, after the exports
    ]);
  }

  it('renames one function export and keeps every other byte', () => {
    const before = withExports(['a', SDK_CALL_EXPORT, 'b']);
    const after = renameExport(before, SDK_CALL_EXPORT, CALL_EXPORT);
    const mod = new WebAssembly.Module(after);
    expect(WebAssembly.Module.exports(mod).map((e) => e.name)).toEqual(['a', CALL_EXPORT, 'b', 'memory']);
    expect(after.subarray(0, 22)).toEqual(before.subarray(0, 22));
    expect(after.subarray(after.length - 12)).toEqual(before.subarray(before.length - 12));
    expect(after.length - before.length).toBe(CALL_EXPORT.length - SDK_CALL_EXPORT.length);
  });

  it('refuses a module without the export, with the target name already, or malformed', () => {
    const codeOf = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (err) {
        return err instanceof EnclaveError ? err.code : 'not an EnclaveError';
      }
      return undefined;
    };
    expect(codeOf(() => renameExport(withExports(['a']), SDK_CALL_EXPORT, CALL_EXPORT))).toBe('build_failed');
    expect(codeOf(() => renameExport(withExports([SDK_CALL_EXPORT, CALL_EXPORT]), SDK_CALL_EXPORT, CALL_EXPORT))).toBe('build_failed');
    const good = withExports([SDK_CALL_EXPORT]);
    // A section size past the end, and a truncated module.
    const overrun = good.slice();
    overrun[23] = 0x7f;
    expect(codeOf(() => renameExport(overrun, SDK_CALL_EXPORT, CALL_EXPORT))).toBe('build_failed');
    // Cut anywhere up to the end of the export section (the sections after it are copied as they are).
    const exportEnd = 22 + 2 + good[23]!;
    for (let cut = 9; cut < exportEnd; cut++) {
      expect(codeOf(() => renameExport(good.subarray(0, cut), SDK_CALL_EXPORT, CALL_EXPORT))).toBe('build_failed');
    }
  });
});

// ---- the SDK's component mode, through jco-transpile's glue ----

type Imports = Record<string, Record<string, (...args: any[]) => unknown>>;

/** What a call answered: the ok value (decoded), or the error's code index and message. */
type Answer = { ok: unknown } | { err: { code: number; message: string } };

interface Running {
  call(op: string, args?: unknown): Answer;
  readonly exports: Record<string, any>;
  readonly memory: WebAssembly.Memory;
}

/** Instantiates `component` with `imports` (jco's keys: `enclave:runtime/<iface>`) and calls the core handler export directly. */
async function run(component: Uint8Array, imports: Imports): Promise<Running> {
  const transpiled = await transpileComponent(component);
  const files = transpiled.files;
  const glue = await import(`data:text/javascript;base64,${Buffer.from(transpiled.glue).toString('base64')}`);
  let main: WebAssembly.Instance | undefined;
  glue.instantiate(
    (name: string) => new WebAssembly.Module(files[name]!),
    imports,
    (module: WebAssembly.Module, imp: WebAssembly.Imports) => {
      const instance = new WebAssembly.Instance(module, imp);
      if (CALL_EXPORT in instance.exports) main = instance;
      return instance;
    },
  );
  const exports = main!.exports as Record<string, any>;
  const memory = exports.memory as WebAssembly.Memory;
  return {
    exports,
    memory,
    call(op, args) {
      const request = packr.pack(args === undefined ? { op } : { op, args }) as Uint8Array;
      const ptr = exports.cabi_realloc(0, 0, 1, request.length) >>> 0;
      expect(ptr).not.toBe(0);
      new Uint8Array(memory.buffer, ptr, request.length).set(request);
      const ret = exports[CALL_EXPORT](ptr, request.length) >>> 0;
      expect(ret % 4).toBe(0);
      const view = new DataView(memory.buffer);
      const bytes = (p: number, n: number): Uint8Array => new Uint8Array(memory.buffer, p, n).slice();
      const disc = view.getUint8(ret);
      if (disc === 0) return { ok: unpackr.unpack(bytes(view.getUint32(ret + 4, true), view.getUint32(ret + 8, true))) };
      expect(disc).toBe(1);
      const message = new TextDecoder('utf-8', { fatal: true }).decode(bytes(view.getUint32(ret + 8, true), view.getUint32(ret + 12, true)));
      return { err: { code: view.getUint8(ret + 4), message } };
    },
  };
}

/** What a fake capability answers instead of its default: a value, or a failure by name. */
type Given = { ok: unknown } | { err: string };

/** Capabilities of the test's making, recording what they were asked. */
function fakeCapabilities(): { imports: Imports; asked: unknown[][]; answers: Record<string, Given | undefined> } {
  const asked: unknown[][] = [];
  const answers: Record<string, Given | undefined> = {};
  const answer = (name: string, ok: () => unknown): unknown => {
    const given = answers[name];
    if (given === undefined) return ok();
    // A failure is thrown, as jco's glue takes it: the payload of `err`.
    if ('err' in given) throw given.err;
    return given.ok;
  };
  const imports: Imports = {
    'enclave:runtime/random': {
      fill: (len: number) => {
        asked.push(['fill', len]);
        return answer('fill', () => Uint8Array.from({ length: len }, (_, i) => (i * 7 + len) & 0xff));
      },
    },
    'enclave:runtime/clock': { now: () => (asked.push(['now']), 1_700_000_000_123n) },
    'enclave:runtime/log': { log: (level: string, message: string) => void asked.push(['log', level, message]) },
    'enclave:runtime/seal': {
      sealKey: (policy: string) => (asked.push(['sealKey', policy]), answer('sealKey', () => new Uint8Array(32).fill(policy === 'signer' ? 2 : 1))),
      sealKeyAt: (policy: string, keyId: number, svn: number | undefined) => {
        asked.push(['sealKeyAt', policy, keyId, svn]);
        return answer('sealKeyAt', () => ({ key: new Uint8Array(32).fill(9), keyId: keyId || 4, svn: svn ?? 1 }));
      },
    },
    'enclave:runtime/counter': {
      read: (policy: string, id: bigint) => {
        asked.push(['read', policy, id]);
        return answer('read', () => ({ value: 0x0102030405060708n, tag: new Uint8Array(32).fill(0xaa) }));
      },
      advance: (policy: string, id: bigint, expected: bigint, tag: Uint8Array) => {
        asked.push(['advance', policy, id, expected, Array.from(tag)]);
        return answer('advance', () => undefined);
      },
    },
    'enclave:runtime/attest': {
      report: (data: Uint8Array) => (asked.push(['report', Array.from(data)]), answer('report', () => 'eyJhbGciOiJFZERTQSJ9.e30.c2ln')),
    },
  };
  return { imports, asked, answers };
}

describe('the SDK in component mode (through jco-transpile\'s glue)', () => {
  it('answers a call as the core module does: the value without the {ok} envelope, errors as code index and message', async () => {
    const kv = await run(kvComponent, {});
    expect(kv.call('get')).toEqual({ ok: null });
    expect(kv.call('put', { v: 'héllo' })).toEqual({ ok: null });
    expect(kv.call('get')).toEqual({ ok: 'héllo' });
    expect(kv.call('nope')).toEqual({ err: { code: 1, message: 'no handler for this op' } });
    // Not a request map: the SDK's own bad_request.
    const ptr = kv.exports.cabi_realloc(0, 0, 1, 1) >>> 0;
    new Uint8Array(kv.memory.buffer)[ptr] = 0xc0;
    const ret = kv.exports[CALL_EXPORT](ptr, 1) >>> 0;
    const view = new DataView(kv.memory.buffer);
    expect([view.getUint8(ret), view.getUint8(ret + 4)]).toEqual([1, 0]);
  });

  it('every error code keeps its index in types.error-code; one out of range is internal; the message is cut at 256 bytes on a character', async () => {
    const caps = await run(capsComponent, fakeCapabilities().imports);
    for (let code = 0; code <= 10; code++) expect(caps.call('fail', { code, message: `m${code}` })).toEqual({ err: { code, message: `m${code}` } });
    expect(caps.call('fail', { code: 99, message: 'x' })).toEqual({ err: { code: 5, message: 'x' } });
    expect(caps.call('fail', { code: 3, message: '' })).toEqual({ err: { code: 3, message: '' } });
    // 255 ASCII bytes then a 2-byte character: cut before it, at 255.
    const long = `${'a'.repeat(255)}é${'b'.repeat(100)}`;
    expect(caps.call('fail', { code: 2, message: long })).toEqual({ err: { code: 2, message: 'a'.repeat(255) } });
    for (const n of [31, 32, 255, 256, 300]) {
      expect(caps.call('fail', { code: 4, message: 'z'.repeat(n) })).toEqual({ err: { code: 4, message: 'z'.repeat(Math.min(n, 256)) } });
    }
  });

  it('a reply over limits.replyBytes is the core ABI\'s limit error; one at the limit (with its 4 envelope bytes) passes', async () => {
    const caps = await run(capsComponent, fakeCapabilities().imports);
    // {ok: str} = 4 + 5 (str32 header) + n bytes.
    const fits = 200_000 - 4 - 5;
    const ok = caps.call('big', { n: fits });
    expect('ok' in ok && (ok.ok as string).length).toBe(fits);
    expect(caps.call('big', { n: fits + 1 })).toEqual({ err: { code: 4, message: 'reply over the byte limit' } });
  });

  it('random: the host\'s list copied, in chunks of 65536, each freed (a long run stays within the memory maximum)', async () => {
    const fake = fakeCapabilities();
    const caps = await run(capsComponent, fake.imports);
    const r = caps.call('random', { n: 70_000 }) as { ok: Uint8Array };
    expect(fake.asked).toEqual([
      ['fill', 65536],
      ['fill', 4464],
    ]);
    expect(r.ok.length).toBe(70_000);
    expect(r.ok[0]).toBe(65536 & 0xff);
    expect(r.ok[65536 + 1]).toBe((7 + 4464) & 0xff);
    // 60 KB lists 300 times: 18 MB if they were not freed, far more than the 2 MiB memory maximum
    // (32 pages): an allocation would fail and trap.
    for (let i = 0; i < 300; i++) expect((caps.call('random', { n: 60_000 }) as { ok: Uint8Array }).ok.length).toBe(60_000);
    expect(caps.memory.buffer.byteLength).toBeLessThanOrEqual(32 * 65536);
    fake.answers.fill = { err: 'invalid' };
    expect(caps.call('random', { n: 8 })).toEqual({ ok: false });
  });

  it('clock and log: the value; the level by name (outside 0..3: info), the message cut to 1024 bytes on a character', async () => {
    const fake = fakeCapabilities();
    const caps = await run(capsComponent, fake.imports);
    expect(caps.call('now')).toEqual({ ok: 1_700_000_000_123n });
    caps.call('log', { level: 0, msg: 'debug line' });
    caps.call('log', { level: 3, msg: 'error line' });
    caps.call('log', { level: 9, msg: 'odd level' });
    caps.call('log', { level: 2, msg: `${'a'.repeat(1023)}é tail` });
    caps.call('log', { level: 1, msg: 'é'.repeat(600) });
    expect(fake.asked).toEqual([
      ['now'],
      ['log', 'debug', 'debug line'],
      ['log', 'error', 'error line'],
      ['log', 'info', 'odd level'],
      ['log', 'warn', 'a'.repeat(1023)],
      ['log', 'info', 'é'.repeat(512)],
    ]);
  });

  it('seal: keys copied, policies by name, svn as an option, failures mapped to the core statuses', async () => {
    const fake = fakeCapabilities();
    const caps = await run(capsComponent, fake.imports);
    const bin = (v: unknown): number[] => Array.from(v as Uint8Array);
    let r = caps.call('seal_key', { policy: 1 }) as { ok: { rc: number; out: Uint8Array } };
    expect([r.ok.rc, bin(r.ok.out)]).toEqual([0, new Array(32).fill(2)]);
    // An unknown policy is the core import's -2, without asking the host.
    expect((caps.call('seal_key', { policy: 7 }) as { ok: { rc: number } }).ok.rc).toBe(-2);
    r = caps.call('seal_key_at', { policy: 1, keyId: 0, svn: -1 }) as typeof r;
    expect(r.ok.rc).toBe(0);
    expect(bin(r.ok.out)).toEqual([...new Array(32).fill(9), 4, 0, 0, 0, 1, 0, 0, 0]);
    r = caps.call('seal_key_at', { policy: 1, keyId: 3, svn: 0 }) as typeof r;
    expect(bin(r.ok.out).slice(32)).toEqual([3, 0, 0, 0, 0, 0, 0, 0]);
    expect((caps.call('seal_key_at', { policy: 1, svn: -2 }) as typeof r).ok.rc).toBe(-5);
    expect((caps.call('seal_key_at', { policy: 2 }) as typeof r).ok.rc).toBe(-2);
    expect(fake.asked).toEqual([
      ['sealKey', 'signer'],
      ['sealKeyAt', 'signer', 0, undefined],
      ['sealKeyAt', 'signer', 3, 0],
    ]);
    const statuses: Array<[string, number]> = [
      ['invalid', -1],
      ['unavailable', -3],
      ['unknown-root', -4],
      ['svn-not-allowed', -5],
    ];
    for (const [failure, rc] of statuses) {
      fake.answers.sealKey = { err: failure };
      fake.answers.sealKeyAt = { err: failure };
      const key = caps.call('seal_key', { policy: 0 }) as typeof r;
      expect([key.ok.rc, bin(key.ok.out)]).toEqual([rc, new Array(32).fill(0)]);
      expect((caps.call('seal_key_at', { policy: 0 }) as typeof r).ok.rc).toBe(rc);
    }
  });

  it('counter: value and tag copied, the tag passed as 32 bytes, conflict and limit mapped', async () => {
    const fake = fakeCapabilities();
    const caps = await run(capsComponent, fake.imports);
    const r = caps.call('counter_read', { policy: 0, id: 7 }) as { ok: { rc: number; out: Uint8Array } };
    expect(r.ok.rc).toBe(0);
    expect(Array.from(r.ok.out)).toEqual([8, 7, 6, 5, 4, 3, 2, 1, ...new Array(32).fill(0xaa)]);
    expect(caps.call('counter_advance', { policy: 1, id: 7, expected: 41 })).toEqual({ ok: 0 });
    expect(fake.asked).toEqual([
      ['read', 'measurement', 7n],
      ['advance', 'signer', 7n, 41n, Array.from({ length: 32 }, (_, i) => i + 1)],
    ]);
    for (const [failure, rc] of [
      ['conflict', -4],
      ['limit', -5],
      ['unavailable', -3],
    ] as const) {
      fake.answers.advance = { err: failure };
      fake.answers.read = { err: failure };
      expect(caps.call('counter_advance', { policy: 0, id: 1, expected: 0 })).toEqual({ ok: rc });
      expect((caps.call('counter_read', { policy: 0, id: 1 }) as typeof r).ok.rc).toBe(rc);
    }
    expect((caps.call('counter_read', { policy: 5, id: 1 }) as typeof r).ok.rc).toBe(-2);
  });

  it('attest: the evidence string\'s bytes, an empty one, a refusal as null', async () => {
    const fake = fakeCapabilities();
    const caps = await run(capsComponent, fake.imports);
    const data = new Uint8Array(32).fill(5);
    const evidence = caps.call('report', { data }) as { ok: Uint8Array };
    expect(Buffer.from(evidence.ok).toString()).toBe('eyJhbGciOiJFZERTQSJ9.e30.c2ln');
    expect(fake.asked).toEqual([['report', Array.from(data)]]);
    fake.answers.report = { err: 'unavailable' };
    expect(caps.call('report', { data })).toEqual({ ok: null });
    // Over 64 bytes: refused by the SDK, the host not asked.
    expect(caps.call('report', { data: new Uint8Array(65) })).toEqual({ ok: null });
    expect(fake.asked).toHaveLength(2);
    fake.answers.report = { ok: '' };
    expect(Array.from((caps.call('report', { data }) as { ok: Uint8Array }).ok)).toEqual([]);
  });

  it('abort is a trap (unreachable), with no import to report it', async () => {
    const caps = await run(capsComponent, fakeCapabilities().imports);
    let thrown: unknown;
    try {
      caps.call('trap', {});
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(WebAssembly.RuntimeError);
    expect((thrown as Error).message).toMatch(/unreachable/);
  });

  it('cabi_realloc: outside a call the request buffer (0 above requestBytes); only fresh allocations of an alignment up to 16', async () => {
    const kv = await run(kvComponent, {});
    const a = kv.exports.cabi_realloc(0, 0, 1, 100) >>> 0;
    expect(a).not.toBe(0);
    expect(kv.exports.cabi_realloc(0, 0, 1, 50) >>> 0).toBe(a); // the same buffer while it is big enough
    const b = kv.exports.cabi_realloc(0, 0, 16, 4096) >>> 0;
    expect(b % 16).toBe(0);
    expect(b).not.toBe(0);
    expect(kv.exports.cabi_realloc(0, 0, 1, 4097)).toBe(0); // over limits.requestBytes
    expect(kv.exports.cabi_realloc(0, 0, 1, -1)).toBe(0); // 2^32-1
    expect(kv.exports.cabi_realloc(0, 0, 1, 0)).toBe(0);
    for (const [old, oldSize, align] of [
      [a, 100, 1],
      [0, 8, 1],
      [0, 0, 0],
      [0, 0, 3],
      [0, 0, 32],
    ]) {
      expect(() => kv.exports.cabi_realloc(old, oldSize, align, 8)).toThrow(WebAssembly.RuntimeError);
    }
  });
});

// ---- the built components under the runtime: the same answers as the core modules ----

const ECHO_DIR = path.join(ROOT, 'enclave-modules/echo/build');

/** What a call came to: the result, or the error's code and message. */
async function outcome(enclave: EnclaveHandle, op: string, args?: unknown): Promise<unknown> {
  try {
    return { ok: await enclave.call(op, args) };
  } catch (err) {
    return { code: (err as EnclaveError).code, message: (err as Error).message };
  }
}

describe.each(MODES)('the built components under the runtime ($name)', (mode) => {
  it('enclave-modules/echo/build/echo.component.wasm (the default build\'s) answers echo as echo.wasm does', async () => {
    const core = await loadIn(mode, path.join(ECHO_DIR, 'echo.wasm'));
    const component = await loadIn(mode, path.join(ECHO_DIR, 'echo.component.wasm'));
    try {
      const cases: Array<[string, unknown]> = [
        ['echo', { hello: 'enclave' }],
        ['echo', null],
        ['echo', [1, -1, 2 ** 40, 0.5, true, 'héllo ✓', new Uint8Array([0, 1, 255])]],
        ['echo', { nested: { deeper: { list: Array.from({ length: 100 }, (_, i) => i) } } }],
        ['echo', 'x'.repeat(100_000)],
        ['nope', {}],
      ];
      for (const [op, args] of cases) expect(await outcome(component, op, args)).toEqual(await outcome(core, op, args));
      expect(await outcome(component, 'nope', {})).toMatchObject({ code: 'unknown_op' });
    } finally {
      await core.close();
      await component.close();
    }
  }, 60_000);

  it('the capabilities answer the component as they answer the core module (same signer: the same keys and counters)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'enclave-build-component-platform-'));
    const provider = new SoftwareAttestationProvider({ dir }).open();
    const signer = generateKeyPair();
    const logs: Array<[string, unknown[]]> = [];
    const load = (bytes: Uint8Array, kind: string) =>
      loadIn(mode, signModule(bytes, signer), {
        capabilities: ['random', 'clock', 'log', 'seal', 'counter', 'attest'],
        attestation: provider,
        trust: { trusted: [{ publicKey: signer.publicKey }] },
        onLog: (level: string, message: string) => void logs.push([kind, [level, message]]),
      });
    const core = await load(capsCore, 'core');
    const component = await load(capsComponent, 'component');
    try {
      const both = async (op: string, args?: unknown): Promise<[unknown, unknown]> => [await outcome(core, op, args), await outcome(component, op, args)];
      const same = async (op: string, args?: unknown): Promise<unknown> => {
        const [a, b] = await both(op, args);
        expect(b, `${op} ${JSON.stringify(args)}`).toEqual(a);
        return b;
      };
      // Random bytes: as many, and not the same.
      const [r1, r2] = (await both('random', { n: 70_000 })) as Array<{ ok: Uint8Array }>;
      expect([r1!.ok.length, r2!.ok.length]).toEqual([70_000, 70_000]);
      expect(Buffer.compare(Buffer.from(r1!.ok), Buffer.from(r2!.ok))).not.toBe(0);
      const [t1, t2] = (await both('now')) as Array<{ ok: number }>;
      expect(Math.abs(t2!.ok - t1!.ok)).toBeLessThan(60_000);
      await same('log', { level: 2, msg: `${'a'.repeat(1023)}é tail` });
      await same('log', { level: 9, msg: 'odd level' });
      // Under `signer`, the key belongs to the signer and the contract's name: the same for both builds.
      const key = (await same('seal_key', { policy: 1 })) as { ok: { rc: number } };
      expect(key.ok.rc).toBe(0);
      await same('seal_key_at', { policy: 1, keyId: 0, svn: -1 });
      await same('seal_key_at', { policy: 1, keyId: 0, svn: 0 });
      await same('seal_key_at', { policy: 1, keyId: 0, svn: 2 }); // above its own svn: -5
      await same('seal_key_at', { policy: 0, keyId: 0, svn: 0 }); // any svn under measurement: -5
      await same('seal_key_at', { policy: 1, keyId: 999, svn: -1 }); // unknown root: -4
      await same('seal_key_at', { policy: 1, svn: -2 });
      await same('seal_key', { policy: 7 });
      // One counter of the signer's binding, advanced by each in turn.
      await same('counter_read', { policy: 1, id: 3 });
      expect(await outcome(core, 'counter_advance', { policy: 1, id: 3, expected: 0 })).toEqual({ ok: 0 });
      expect(await outcome(component, 'counter_advance', { policy: 1, id: 3, expected: 0 })).toEqual({ ok: -4 }); // conflict
      expect(await outcome(component, 'counter_advance', { policy: 1, id: 3, expected: 1 })).toEqual({ ok: 0 });
      await same('counter_read', { policy: 1, id: 3 });
      // Evidence binds the measurement, which differs: both are compact JWTs.
      const [e1, e2] = (await both('report', { data: new Uint8Array(32).fill(1) })) as Array<{ ok: Uint8Array }>;
      for (const e of [e1!, e2!]) expect(Buffer.from(e.ok).toString().split('.')).toHaveLength(3);
      await same('report', { data: new Uint8Array(4) }); // under 8 bytes: refused (null)
      // Errors and limits.
      for (let code = 0; code <= 10; code++) await same('fail', { code, message: `m${code}` });
      await same('fail', { code: 99, message: 'é'.repeat(200) });
      await same('big', { n: 200_000 - 9 });
      await same('big', { n: 200_000 - 8 });
      const trap = await same('trap', {});
      expect(trap).toMatchObject({ code: 'trap' });
      await same('fail', { code: 2, message: 'after the trap, a fresh instance' });
    } finally {
      await core.close();
      await component.close();
    }
    // The same lines but two, both the world's rules: a line cut inside a character is cut before it
    // (a string of the world is whole UTF-8; the core line ends in U+FFFD where the host decoded the
    // half character), and abort traps with no line (the world has no abort import).
    const lines = (kind: string): unknown[] => logs.filter(([k]) => k === kind).map(([, line]) => line);
    expect(lines('core')).toEqual([
      ['warn', `${'a'.repeat(1023)}\ufffd`],
      ['info', 'odd level'],
      ['error', expect.stringMatching(/^enclave aborted: the trap op trapped at index\.ts:\d+:\d+$/)],
    ]);
    expect(lines('component')).toEqual([
      ['warn', 'a'.repeat(1023)],
      ['info', 'odd level'],
    ]);
  }, 120_000);

  it('the vault as a component (enclave-modules/vault/build/vault.component.wasm): keys, ciphertexts and sealed keys interchange with the core vault', async () => {
    const vaultCore = new Uint8Array(await readFile(path.join(ROOT, 'enclave-modules/vault/build/vault.wasm')));
    const vaultComponent = new Uint8Array(await readFile(path.join(ROOT, 'enclave-modules/vault/build/vault.component.wasm')));
    expect(isComponent(vaultComponent)).toBe(true);
    const rig = await vaultRig();
    const core = await rig.load(mode, rig.sign(vaultCore));
    const component = await rig.load(mode, rig.sign(vaultComponent));
    try {
      type Persist = { name: string; version: number };
      // A mutation answers what to persist; the host commits it (docs/VAULT.md).
      const mutate = async (e: EnclaveHandle, op: string, args: Record<string, unknown>): Promise<{ handle: Uint8Array }> => {
        const r = (await e.call(op, args)) as { handle: Uint8Array; persist: Persist };
        await e.call('commit', { name: r.persist.name, version: r.persist.version });
        return r;
      };
      const created = await mutate(component, 'create', { name: 'k', type: 'symmetric', exportable: true, seal_policy: 'signer' });
      const aad = new Uint8Array([9]);
      const ct = (await component.call('encrypt', { handle: created.handle, plaintext: new Uint8Array([1, 2, 3]), aad })) as Uint8Array;
      expect(Array.from((await component.call('decrypt', { handle: created.handle, ciphertext: ct, aad })) as Uint8Array)).toEqual([1, 2, 3]);
      expect(await outcome(component, 'decrypt', { handle: created.handle, ciphertext: ct, aad: new Uint8Array([8]) })).toMatchObject({ code: 'decrypt_failed' });
      // Sealed by the component under `signer`, opened by the core vault of the same signer and name
      // (imported under the same key name: a ciphertext binds it).
      const sealed = (await component.call('export_sealed', { handle: created.handle, policy: 'signer' })) as Uint8Array;
      const imported = await mutate(core, 'import_sealed', { blob: sealed, name: 'k' });
      expect(Array.from((await core.call('decrypt', { handle: imported.handle, ciphertext: ct, aad })) as Uint8Array)).toEqual([1, 2, 3]);
      // And back: a signing key made by the core vault, its signature checked by the component.
      const signing = await mutate(core, 'create', { name: 's', type: 'ed25519', seal_policy: 'signer' });
      const signature = (await core.call('sign', { handle: signing.handle, message: new Uint8Array([7]) })) as Uint8Array;
      const blob = (await core.call('export_sealed', { handle: signing.handle, policy: 'signer' })) as Uint8Array;
      const back = await mutate(component, 'import_sealed', { blob, name: 's' });
      expect(await component.call('verify', { handle: back.handle, message: new Uint8Array([7]), signature })).toBe(true);
    } finally {
      await core.close();
      await component.close();
    }
  }, 180_000);
});
