/**
 * Hostile components against the runtime (review of issue 14, rev1): each case is a way a
 * component could make the host do work no fuel pays for, or crash it.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { COMPONENT_HEADER, EnclaveError, encodeU32Leb, importTypes, liftedTypes, readComponentInfo } from '../core/index.js';
import { transpileNow } from '../runtime/_component-glue.js';
import { checkImportTypes, checkLiftedTypes, HANDLER_CALL_TYPE, WORLD_FUNCTIONS } from '../runtime/_component-world.js';
import { ENCLAVE_WIT, watComponent, withContract } from './helpers/component-fixtures.js';
import { MODES, loadIn } from './helpers/modes.js';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return (err as EnclaveError).code;
  }
  return 'ok';
}

/** A handler answering ok(nil), with `imports` and `body` (extra functions, a start) around it. */
function handlerWat(parts: { imports?: string; memory?: string; body?: string; call?: string }): string {
  return `(module
    ${parts.imports ?? ''}
    ${parts.memory ?? '(memory (export "memory") 1 1)'}
    (data (i32.const 0x200) "\\c0")
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0x1000))
    (func (export "enclave:runtime/handler@1.0.0#call") (param i32 i32) (result i32)
      ${parts.call ?? ''}
      (i32.store8 (i32.const 0x100) (i32.const 0))
      (i32.store (i32.const 0x104) (i32.const 0x200))
      (i32.store (i32.const 0x108) (i32.const 1))
      (i32.const 0x100))
    ${parts.body ?? ''}
  )`;
}

function contract(capabilities: string[], fuel: number, memoryPages = 1): object {
  return {
    abi: 1,
    name: 'attack',
    version: '0.0.1',
    svn: 0,
    capabilities,
    limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages, fuel },
    ops: { ping: {} },
  };
}

describe.each(MODES)('a start function calling imports ($name)', (mode) => {
  // 20 000 crossings of jco's glue cost 20 000 × COMPONENT_IMPORT_FUEL, far over a budget of
  // 1 000 000; the loop itself costs about 100 000. Before the fix the crossings were free while a
  // start function ran (the import context's counter was set only once instantiation was over), so
  // a start could make budget / 5 import calls, each tens of microseconds of host work.
  it('pays for each crossing: over the budget, the load fails with fuel_exhausted', async () => {
    const wat = handlerWat({
      imports: '(import "enclave:runtime/clock@1.0.0" "now" (func $now (result i64)))',
      body: `(func $s (local $i i32)
        (loop $l
          (drop (call $now))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 20000)))))
        (start $s)`,
    });
    const bytes = await watComponent(wat, contract(['clock'], 1_000_000));
    expect(await codeOf(loadIn(mode, bytes, { capabilities: ['clock'], cacheDir: false }))).toBe('fuel_exhausted');
  });

  it('a start calling an import a few times within the budget loads and answers', async () => {
    const wat = handlerWat({
      imports: '(import "enclave:runtime/clock@1.0.0" "now" (func $now (result i64)))',
      body: '(func $s (drop (call $now)) (drop (call $now))) (start $s)',
    });
    const bytes = await watComponent(wat, contract(['clock'], 1_000_000));
    const enclave = await loadIn(mode, bytes, { capabilities: ['clock'], cacheDir: false });
    try {
      expect(await enclave.call('ping', null)).toBe(null);
    } finally {
      await enclave.close();
    }
  });
});

/** A core import of each world function, as wit-component's canonical ABI lowers it. */
const ALL_IMPORTS = `
  (import "enclave:runtime/random@1.0.0" "fill" (func (param i32 i32)))
  (import "enclave:runtime/clock@1.0.0" "now" (func (result i64)))
  (import "enclave:runtime/log@1.0.0" "log" (func (param i32 i32 i32)))
  (import "enclave:runtime/seal@1.0.0" "seal-key" (func (param i32 i32)))
  (import "enclave:runtime/seal@1.0.0" "seal-key-at" (func (param i32 i32 i32 i32 i32)))
  (import "enclave:runtime/counter@1.0.0" "read" (func (param i32 i64 i32)))
  (import "enclave:runtime/counter@1.0.0" "advance" (func (param i32 i64 i64 i32 i32 i32)))
  (import "enclave:runtime/attest@1.0.0" "report" (func (param i32 i32 i32)))`;
const ALL_CAPABILITIES = ['random', 'clock', 'log', 'seal', 'counter', 'attest'];

describe('the types of imported functions', () => {
  it('WORLD_FUNCTIONS is what a component of wit/enclave.wit importing every function declares', async () => {
    const bytes = await watComponent(handlerWat({ imports: ALL_IMPORTS }));
    const found = Object.fromEntries(
      [...importTypes(bytes)].map(([name, t]) => {
        expect(t.resolved, name).toBe(true);
        const functions = t.resolved ? Object.fromEntries(t.functions.map((f) => [f.name, f.type])) : {};
        return [name.slice('enclave:runtime/'.length, -'@1.0.0'.length), functions];
      }),
    );
    expect(found).toEqual(WORLD_FUNCTIONS);
    expect(() => checkImportTypes(bytes)).not.toThrow();
  });

  it('every component the build makes passes (the AS modules, the WAT fixtures)', async () => {
    for (const name of ['echo', 'vault', 'counter', 'crypto']) {
      const file = new URL(`../enclave-modules/${name}/build/${name}.component.wasm`, import.meta.url);
      if (!existsSync(file)) continue; // built by `enclave build --component` (npm run build)
      expect(() => checkImportTypes(readFileSync(file)), name).not.toThrow();
    }
  });

  /**
   * jco's glue lifts the arguments as the component declares them, unmetered, before the host
   * function runs. `message: list<string>` with mem/8 entries each (0, memory size) made one call
   * decode memory²/8 bytes: with 4 pages the in-process host aborted (JavaScript heap out of
   * memory); with 1 page one call took 19 s and 800 MB. Now refused at load.
   */
  it.each(MODES)('log(level, message: list<string>), the amplifier, is refused at load with invalid_module ($name)', async (mode) => {
    const wit = ENCLAVE_WIT.replace('log: func(level: level, message: string);', 'log: func(level: level, message: list<string>);');
    const pages = 4;
    const n = (pages * 65536) / 8 - 1;
    const wat = handlerWat({
      imports: '(import "enclave:runtime/log@1.0.0" "log" (func $log (param i32 i32 i32)))',
      memory: `(memory (export "memory") ${pages} ${pages})`,
      call: `(local.set 0 (i32.const 0))
        (loop $l
          (i32.store (i32.mul (local.get 0) (i32.const 8)) (i32.const 0))
          (i32.store offset=4 (i32.mul (local.get 0) (i32.const 8)) (i32.const ${pages * 65536}))
          (local.set 0 (i32.add (local.get 0) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get 0) (i32.const ${n}))))
        (call $log (i32.const 0) (i32.const 0) (i32.const ${n}))`,
    });
    const bytes = await watComponent(wat, contract(['log'], 10_000_000, pages), { witSource: wit });
    let message = '';
    const code = await codeOf(
      loadIn(mode, bytes, { capabilities: ['log'], cacheDir: false }).catch((err: unknown) => {
        message = (err as Error).message;
        throw err;
      }),
    );
    expect(code).toBe('invalid_module');
    expect(message).toMatch(/declares "enclave:runtime\/log@1\.0\.0#log" as .*list<string.*wit\/enclave\.wit says func\(level: enum\{debug, info, warn, error\}, message: string\)/);
  });

  it.each([
    ['random.fill(len: u64)', 'fill: func(len: u32)', 'fill: func(len: u64)', '(import "enclave:runtime/random@1.0.0" "fill" (func (param i64 i32)))'],
    ['random.fill -> list<u64>', 'fill: func(len: u32) -> result<list<u8>, failure>', 'fill: func(len: u32) -> result<list<u64>, failure>', '(import "enclave:runtime/random@1.0.0" "fill" (func (param i32 i32)))'],
    ['log(level: u32, message: list<u8>)', 'log: func(level: level, message: string)', 'log: func(level: u32, message: list<u8>)', '(import "enclave:runtime/log@1.0.0" "log" (func (param i32 i32 i32)))'],
    ['seal-key -> string', 'seal-key: func(policy: policy) -> result<list<u8>, failure>', 'seal-key: func(policy: policy) -> result<string, failure>', '(import "enclave:runtime/seal@1.0.0" "seal-key" (func (param i32 i32)))'],
    ['a record field renamed', 'key-id: u32,', 'key-ident: u32,', '(import "enclave:runtime/seal@1.0.0" "seal-key-at" (func (param i32 i32 i32 i32 i32)))'],
    ['an enum case renamed', '    unavailable,', '    unavail,', '(import "enclave:runtime/random@1.0.0" "fill" (func (param i32 i32)))'],
    ['attest.report(data: string)', 'report: func(data: list<u8>)', 'report: func(data: string)', '(import "enclave:runtime/attest@1.0.0" "report" (func (param i32 i32 i32)))'],
    ['a function the world lacks', 'now: func() -> s64;', 'now: func() -> s64;\n  later: func(x: list<list<u8>>);', '(import "enclave:runtime/clock@1.0.0" "later" (func (param i32 i32)))'],
  ])('%s is refused at load (invalid_module)', async (_what, from, to, imp) => {
    expect(ENCLAVE_WIT).toContain(from);
    const bytes = await watComponent(handlerWat({ imports: imp }), contract(ALL_CAPABILITIES, 1_000_000), { witSource: ENCLAVE_WIT.replace(from, to) });
    expect(() => checkImportTypes(bytes)).toThrow(EnclaveError);
    expect(await codeOf(loadIn(MODES[0]!, bytes, { capabilities: ALL_CAPABILITIES, cacheDir: false }))).toBe('invalid_module');
  });

  it('a function in the types interface is refused', async () => {
    const wit = ENCLAVE_WIT.replace('interface types {', 'interface types {\n  sneak: func(x: list<string>);');
    const bytes = await watComponent(handlerWat({ imports: '(import "enclave:runtime/types@1.0.0" "sneak" (func (param i32 i32)))' }), contract([], 1_000_000), { witSource: wit });
    expect(() => checkImportTypes(bytes)).toThrow(/declares the function "sneak", which the world's interface does not have/);
  });

  // Hand-made binaries: the reader follows only what it reads exactly, and never loops.
  const leb = (n: number): number[] => [...encodeU32Leb(n)];
  const str = (s: string): number[] => [...leb(s.length), ...new TextEncoder().encode(s)];
  const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
  const comp = (...sections: number[][]): Uint8Array => Uint8Array.from([...COMPONENT_HEADER, ...sections.flat()]);
  const importOf = (typeIdx: number): number[] => section(10, [1, 0x00, ...str('enclave:runtime/clock@1.0.0'), 0x05, ...leb(typeIdx)]);
  const why = (bytes: Uint8Array): string => {
    const t = importTypes(bytes).get('enclave:runtime/clock@1.0.0')!;
    return t.resolved ? `resolved: ${JSON.stringify(t.functions)}` : t.why;
  };

  it('an instance import whose type is missing, not an instance, forward, cyclic or too deep is unresolved, never a hang', () => {
    // The canonical now: (instance (type (func (result s64))) (export "now" (func (type 0)))).
    const nowType = [0x42, 2, 0x01, 0x40, 0, 0x00, 0x78, 0x04, 0x00, ...str('now'), 0x01, 0];
    expect(why(comp(section(7, [1, ...nowType]), importOf(0)))).toBe('resolved: [{"name":"now","type":"func() -> s64"}]');
    expect(why(comp(importOf(0)))).toMatch(/not defined/);
    expect(why(comp(section(7, [1, 0x79]), importOf(0)))).toMatch(/not an instance type/);
    // A function type referring to itself (index 0 inside the instance type).
    const selfRef = [0x42, 2, 0x01, 0x40, 0, 0x00, 0x00, 0x04, 0x00, ...str('now'), 0x01, 0];
    expect(why(comp(section(7, [1, ...selfRef]), importOf(0)))).toMatch(/refers forward/);
    // An outer alias of a type not defined before the instance type.
    const outerFwd = [0x42, 3, 0x02, 0x03, 0x02, 1, 5, 0x01, 0x40, 0, 0x00, 0x00, 0x04, 0x00, ...str('now'), 0x01, 1];
    expect(why(comp(section(7, [1, ...outerFwd]), importOf(0)))).toMatch(/alias this reader does not follow/);
    // 40 nested lists: deeper than any type of the world.
    const deep = [0x42, 42, 0x01, 0x70, 0x79, ...Array.from({ length: 39 }, (_, i) => [0x01, 0x70, i]).flat(), 0x01, 0x40, 0, 0x00, 39, 0x04, 0x00, ...str('now'), 0x01, 40];
    expect(why(comp(section(7, [1, ...deep]), importOf(0)))).toMatch(/nest too deeply/);
    // An async function type (0x43) and a resource: not read, so never accepted.
    expect(why(comp(section(7, [1, 0x42, 2, 0x01, 0x43, 0, 0x00, 0x78, 0x04, 0x00, ...str('now'), 0x01, 0]), importOf(0)))).toMatch(/0x43 is not read/);
    const own = [0x42, 4, 0x04, 0x00, ...str('r'), 0x03, 0x01, 0x01, 0x69, 0x00, 0x01, 0x40, 1, ...str('x'), 0x01, 0x01, 0x00, 0x04, 0x00, ...str('now'), 0x01, 2];
    expect(why(comp(section(7, [1, ...own]), importOf(0)))).toMatch(/own is used/);
  });

  it('a component with an unresolved import type is refused by checkImportTypes', () => {
    expect(() => checkImportTypes(comp(importOf(0)))).toThrow(/with a type the runtime does not read/);
  });
});

describe('a function the component lifts and lowers itself', () => {
  // jco (wasmtime's translation) compiles a fused adapter for it: a core module the component does
  // not have, never read by the gate nor instrumented. Refused; the code is the hostile
  // component's (invalid_module), not a runtime fault (internal).
  const WAT = `(component
    (core module $A
      (memory (export "memory") 1 1)
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0x1000))
      (func (export "f") (param i32 i32)))
    (core instance $a (instantiate $A))
    (type $ft (func (param "x" (list string))))
    (func $lifted (type $ft) (canon lift (core func $a "f") (memory (core memory $a "memory")) (realloc (core func $a "cabi_realloc"))))
    (core func $lowered (canon lower (func $lifted) (memory (core memory $a "memory")) (realloc (core func $a "cabi_realloc"))))
    (core module $B
      (import "x" "f" (func (param i32 i32)))
      (func (export "g") (param i32 i32) (result i32) (i32.const 0)))
    (core instance $xi (export "f" (func $lowered)))
    (core instance $b (instantiate $B (with "x" (instance $xi))))
  )`;

  it('is refused by the transpile step with invalid_module', async () => {
    const bytes = await parse(WAT);
    const info = readComponentInfo(bytes);
    expect(info.coreModules).toHaveLength(2);
    let code = 'ok';
    try {
      await transpileNow(bytes, info.coreModules);
    } catch (err) {
      code = (err as EnclaveError).code;
    }
    expect(code).toBe('invalid_module');
  });
});

describe.each(MODES)('a component that never instantiates the core module exporting the handler ($name)', (mode) => {
  // Its handler is lifted from another core module (a `func()`: the gate and the world check read
  // the export's name, not its type), so the main core module, which passes every check, never
  // runs. The bytes' fault: invalid_module (it was internal).
  it('is refused at load with invalid_module', async () => {
    const wat = `(component
      (core module $Main
        (memory (export "memory") 1 1)
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0x1000))
        (func (export "enclave:runtime/handler@1.0.0#call") (param i32 i32) (result i32) (i32.const 0)))
      (core module $B (func (export "c")))
      (core instance $b (instantiate $B))
      (type $ft (func))
      (func $call (type $ft) (canon lift (core func $b "c")))
      (instance $h (export "call" (func $call)))
      (export "enclave:runtime/handler@1.0.0" (instance $h))
    )`;
    const bytes = withContract(await parse(wat), contract([], 1_000_000));
    expect(await codeOf(loadIn(mode, bytes, { cacheDir: false }))).toBe('invalid_module');
  });
});

describe('the functions a component lifts', () => {
  it('HANDLER_CALL_TYPE is the lift of a component of wit/enclave.wit; every built component lifts exactly it', async () => {
    const bytes = await watComponent(handlerWat({ imports: ALL_IMPORTS }));
    expect(liftedTypes(bytes)).toEqual([{ resolved: true, type: HANDLER_CALL_TYPE }]);
    expect(() => checkLiftedTypes(bytes)).not.toThrow();
    for (const name of ['echo', 'vault', 'counter', 'crypto']) {
      const file = new URL(`../enclave-modules/${name}/build/${name}.component.wasm`, import.meta.url);
      if (existsSync(file)) expect(() => checkLiftedTypes(readFileSync(file)), name).not.toThrow();
    }
  });

  /** The handler interface of wit/enclave.wit with `defs` added and `call` replaced by `fns`. */
  function handlerWit(defs: string, fns: string): string {
    const call = 'call: func(request: list<u8>) -> result<list<u8>, error>;';
    expect(ENCLAVE_WIT).toContain(call);
    return ENCLAVE_WIT.replace(call, `${defs}\n${fns}`);
  }
  const doubling = (depth: number): string =>
    ['type t0 = u8;', ...Array.from({ length: depth }, (_, i) => `type t${i + 1} = tuple<t${i}, t${i}>;`)].join('\n  ');

  // A handler whose request is a list of a type of 2^depth leaves: a few bytes of types, glue code
  // for every leaf (depth 16: a 2.6 KB component, 9.7 MB of glue, 700 ms to parse on the host
  // thread, 136 MB kept for the process's life). The core export keeps the canonical (i32, i32) -> i32.
  it.each(MODES)('a handler call of another type (a type doubling 12 times) is refused at load, before jco runs ($name)', async (mode) => {
    const wit = handlerWit(doubling(12), 'call: func(request: list<t12>) -> result<list<u8>, error>;');
    const bytes = await watComponent(handlerWat({}), contract([], 1_000_000), { witSource: wit });
    const lifted = liftedTypes(bytes);
    expect(lifted).toHaveLength(1);
    expect(lifted[0]!.resolved && lifted[0]!.type.length > 1000).toBe(false); // too long to be written out
    expect(await codeOf(loadIn(mode, bytes, { cacheDir: false }))).toBe('invalid_module');
  });

  it('a handler with a second function is refused (two lifts)', async () => {
    const wit = handlerWit('', 'call: func(request: list<u8>) -> result<list<u8>, error>;\n  other: func(x: list<u8>) -> list<u8>;');
    const wat = handlerWat({ body: '(func (export "enclave:runtime/handler@1.0.0#other") (param i32 i32) (result i32) (i32.const 0x100))' });
    const bytes = await watComponent(wat, contract([], 1_000_000), { witSource: wit });
    expect(liftedTypes(bytes)).toHaveLength(2);
    expect(() => checkLiftedTypes(bytes)).toThrow(/lifts 2 functions; an enclave lifts exactly one/);
  });
});

describe('the type reader bounds its work', () => {
  it('resolves at most 16 lifted functions and refuses an imported instance type of more than 16 functions', async () => {
    const { COMPONENT_HEADER: H, encodeU32Leb: u } = await import('../core/index.js');
    const leb = (n: number): number[] => [...u(n)];
    const str = (s: string): number[] => [...leb(s.length), ...new TextEncoder().encode(s)];
    const section = (id: number, body: number[]): number[] => [id, ...leb(body.length), ...body];
    // type 0: func() -> s64; 40 lifts of it.
    const lifts = [...leb(40), ...Array.from({ length: 40 }, () => [0x00, 0x00, 0x00, 0x00, 0x00]).flat()];
    const lifted = liftedTypes(Uint8Array.from([...H, ...section(7, [1, 0x40, 0, 0x00, 0x78]), ...section(8, lifts)]));
    expect(lifted).toHaveLength(40);
    expect(lifted.filter((l) => l.resolved)).toHaveLength(16);
    // An instance type exporting 17 functions of type 0.
    const decls = [0x01, 0x40, 0, 0x00, 0x78, ...Array.from({ length: 17 }, (_, i) => [0x04, 0x00, ...str(`f${i}`), 0x01, 0]).flat()];
    const imp = section(10, [1, 0x00, ...str('enclave:runtime/clock@1.0.0'), 0x05, 0]);
    const types = importTypes(Uint8Array.from([...H, ...section(7, [1, 0x42, 18, ...decls]), ...imp])).get('enclave:runtime/clock@1.0.0')!;
    expect(types.resolved ? 'resolved' : types.why).toBe('the instance type has 17 functions');
  });
});

describe('errors from inside the glue', () => {
  // Stack frames in the glue named the module by its data: URL (the whole base64 glue): a start
  // that trapped gave an error whose stack was ~390 KB, and its cause's as much again. Run on
  // dist/ with plain Node (vitest's module runner evaluates a data: module itself, under its own
  // name): in a child process for in-process isolation, in the enclave's worker for worker mode.
  async function stacksOf(isolation: 'in-process' | 'worker'): Promise<{ code: string; length: number; dataUrls: number }> {
    const wat = handlerWat({ body: '(func $s unreachable) (start $s)' });
    const bytes = await watComponent(wat, contract([], 1_000_000));
    const script = `
      import { loadEnclave } from ${JSON.stringify(new URL('../dist/runtime/index.js', import.meta.url).href)};
      const bytes = Buffer.from(process.argv[1], 'base64');
      try { await loadEnclave(bytes, { cacheDir: false, isolation: ${JSON.stringify(isolation)} }); console.log('{}'); }
      catch (e) {
        const all = [e.stack ?? '', e.cause?.stack ?? ''].join('\\n');
        console.log(JSON.stringify({ code: e.code, length: all.length, dataUrls: all.split('data:text/javascript').length - 1 }));
      }`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, Buffer.from(bytes).toString('base64')], { maxBuffer: 16 << 20 });
    return JSON.parse(stdout.trim().split('\n').pop()!);
  }

  it.each(['in-process', 'worker'] as const)('carry short stacks that do not hold the glue (%s)', async (isolation) => {
    const found = await stacksOf(isolation);
    expect(found.code).toBe('trap');
    expect(found.dataUrls).toBe(0);
    expect(found.length).toBeLessThan(20_000);
  });
});
