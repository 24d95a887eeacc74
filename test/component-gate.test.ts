/**
 * The component gate (core/component-binary.ts) and the world check (runtime/_component-world.ts):
 * real components made by wit-component (jco-transpile's wasm-tools), components written in WAT,
 * and hostile binaries built byte by byte or mutated from real ones; the names jco pastes into its
 * JavaScript glue (a core export named `0'+(code)+'` ran code on the host). Everything the gate refuses is
 * `invalid_module`, never another error; a capability the contract does not declare is
 * `capability_denied`.
 */
import { readFileSync } from 'node:fs';
import { componentEmbed, componentNew, parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  COMPONENT_HEADER,
  CONTRACT_SECTION,
  EnclaveError,
  MAX_CORE_MODULES,
  MAX_NESTED_COMPONENTS,
  MODULE_BOUNDS,
  encodeCustomSection,
  encodeU32Leb,
  isComponent,
  listSections,
  readComponentInfo,
  readModuleInfo,
  type ComponentInfo,
} from '../core/index.js';
import {
  HANDLER_CALL_EXPORT,
  HANDLER_EXPORT,
  INTERFACE_CAPABILITY,
  POST_RETURN_EXPORT,
  REALLOC_EXPORT,
  WORLD_PACKAGE,
  WORLD_VERSION,
  checkWorld,
  importedCapabilities,
  interfaceName,
} from '../runtime/_component-world.js';
import { moduleContract } from '../runtime/contract.js';
import { concat, contractJson } from './attest-fixtures.js';
import { randomEchoWat, transpileComponent } from './helpers/component-fixtures.js';

const WIT = readFileSync(new URL('../wit/enclave.wit', import.meta.url), 'utf8');
const CORE_HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
const utf8 = new TextEncoder();
const hex2 = (v: number) => `0x${v.toString(16).padStart(2, '0')}`;

/** A real component: WAT → core module → embedded world → wit-component, then the contract appended. */
async function realComponent(wat: string, capabilities: string[] = ['random']): Promise<Uint8Array> {
  const core = await parse(wat);
  const embedded = await componentEmbed({ binary: core, witSource: WIT, world: 'enclave', stringEncoding: 'utf8' });
  const component = await componentNew(embedded);
  return concat(component, encodeCustomSection(CONTRACT_SECTION, contractJson({ capabilities })));
}

// Byte builders for hand-made components.
const leb = (n: number) => Uint8Array.from(encodeU32Leb(n));
const bytes = (...parts: (number | Uint8Array | number[])[]) =>
  concat(...parts.map((p) => (typeof p === 'number' ? Uint8Array.of(p) : Array.isArray(p) ? Uint8Array.from(p) : p)));
const name = (s: string) => bytes(leb(utf8.encode(s).length), utf8.encode(s));
const section = (id: number, ...payload: (number | Uint8Array | number[])[]) => {
  const body = bytes(...payload);
  return bytes(id, leb(body.length), body);
};
const component = (...sections: Uint8Array[]) => concat(COMPONENT_HEADER, ...sections);
/** An import of an instance of type 0: `00 name 05 00`. */
const instanceImport = (n: string) => bytes(0x00, name(n), 0x05, 0x00);
const importSection = (...names: string[]) => section(10, leb(names.length), ...names.map(instanceImport));
/** A core module with nothing but its header and the given sections. */
const coreModule = (...sections: Uint8Array[]) => concat(CORE_HEADER, ...sections);
/** A core memory section defining one memory of `pages` pages. */
const memorySection = (pages = 1) => section(5, 0x01, 0x00, leb(pages));

type Outcome = string;
/** The code of what `fn` throws, `ok` when it returns, `other: <name>` for anything not an EnclaveError. */
function outcome(fn: () => unknown): Outcome {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof EnclaveError ? err.code : `other: ${(err as Error)?.name}: ${(err as Error)?.message}`;
  }
}
function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EnclaveError) return `${err.code}: ${err.message}`;
    throw err;
  }
  throw new Error('expected an EnclaveError');
}

let echo: Uint8Array; // a real component (random), with its contract
let echoInfo: ComponentInfo;

beforeAll(async () => {
  echo = await realComponent(randomEchoWat());
  echoInfo = readComponentInfo(echo);
});

/** `parse` is async; the WAT texts below are parsed once, up front. */
const parsed = new Map<string, Uint8Array>();
function parseSync(wat: string): Uint8Array {
  const b = parsed.get(wat);
  if (b === undefined) throw new Error(`not parsed up front: ${wat.slice(0, 60)}`);
  return b;
}
const WATS = {
  start: `(component
      (core module $m (func (export "f") (result i32) i32.const 0))
      (core instance $i (instantiate $m))
      (func $f (result u32) (canon lift (core func $i "f")))
      (start $f (result (value $v)))
      (export "v" (value $v)))`,
  resourceNew: '(component (type $r (resource (rep i32))) (core func (canon resource.new $r)))',
  resourceDrop: '(component (type $r (resource (rep i32))) (core func (canon resource.drop $r)))',
  taskReturn: '(component (core func (canon task.return)))',
  streamNew: '(component (type $s (stream u8)) (core func (canon stream.new $s)))',
  waitableSetNew: '(component (core func (canon waitable-set.new)))',
  contextGet: '(component (core func (canon context.get i32 0)))',
  errorContextDrop: '(component (core func (canon error-context.drop)))',
  lowerAsync: '(component (import "f" (func $f)) (core func (canon lower (func $f) async)))',
  lowerUtf16: `(component (import "f" (func $f (param "s" string)))
      (core module $m (memory (export "memory") 1)) (core instance $i (instantiate $m))
      (alias core export $i "memory" (core memory $mem))
      (core func (canon lower (func $f) (memory $mem) string-encoding=utf16)))`,
  lowerLatin1: `(component (import "f" (func $f (param "s" string)))
      (core module $m (memory (export "memory") 1)) (core instance $i (instantiate $m))
      (alias core export $i "memory" (core memory $mem))
      (core func (canon lower (func $f) (memory $mem) string-encoding=latin1+utf16)))`,
  lowerUtf8: `(component (import "f" (func $f (param "s" string)))
      (core module $m (memory (export "memory") 1)) (core instance $i (instantiate $m))
      (alias core export $i "memory" (core memory $mem))
      (core func (canon lower (func $f) (memory $mem) string-encoding=utf8)))`,
  nineModules: `(component ${'(core module)'.repeat(MAX_CORE_MODULES + 1)})`,
  eightModules: `(component ${'(core module)'.repeat(MAX_CORE_MODULES)})`,
  twoMemories: '(component (core module (memory 1)) (core module (memory 1)))',
  twoMemoriesOneModule: '(component (core module (memory 1) (memory 1)))',
  importedMemory: '(component (core module (import "env" "memory" (memory 1))))',
  beyondWorld: '(component (import "wasi:cli/stdout@0.2.0" (instance)))',
};
beforeAll(async () => {
  for (const wat of Object.values(WATS)) parsed.set(wat, await parse(wat));
});

describe('the component header', () => {
  it('isComponent knows a component from a core module and from anything else', () => {
    expect(isComponent(echo)).toBe(true);
    expect(isComponent(COMPONENT_HEADER)).toBe(true);
    expect(isComponent(CORE_HEADER)).toBe(false);
    expect(isComponent(COMPONENT_HEADER.subarray(0, 7))).toBe(false);
    expect(isComponent(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0c, 0x00, 0x01, 0x00))).toBe(false); // an older layer-1 version
    expect(isComponent('\0asm' as unknown as Uint8Array)).toBe(false);
  });

  it('readComponentInfo refuses a core module, and readModuleInfo refuses a component (each reader its own format)', () => {
    const core = coreModule(memorySection());
    expect(messageOf(() => readComponentInfo(core))).toMatch(/^invalid_module: .*component header/);
    expect(messageOf(() => readModuleInfo(echo))).toMatch(/^invalid_module: .*a component, not a core module/);
    expect(messageOf(() => readModuleInfo(COMPONENT_HEADER))).toMatch(/^invalid_module: .*a component, not a core module/);
    expect(outcome(() => readModuleInfo(core))).toBe('ok');
  });

  it('listSections reads the top-level framing of a component, and still refuses other headers', () => {
    const ids = listSections(echo).map((s) => s.id);
    expect(ids).toContain(1);
    expect(ids).toContain(4); // the handler's export shim
    expect(listSections(echo).at(-1)!.name).toBe(CONTRACT_SECTION);
    expect(() => listSections(Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x02, 0x00))).toThrow(/bad magic or version/);
  });
});

describe('a real component (wit-component output)', () => {
  it('reads its imports, export, core modules and custom sections', () => {
    expect(echoInfo.imports).toEqual([
      { name: 'enclave:runtime/types@1.0.0', kind: 'instance' },
      { name: 'enclave:runtime/random@1.0.0', kind: 'instance' },
    ]);
    expect(echoInfo.exports).toEqual([{ name: HANDLER_EXPORT, kind: 'instance' }]);
    // main, the indirection shim and its fixup (a table imported from "shim", a function from "actual")
    expect(echoInfo.coreModules).toHaveLength(3);
    expect(echoInfo.coreModuleInfo.map((m) => m.memories.length)).toEqual([1, 0, 0]);
    expect(echoInfo.coreModuleInfo[2]!.imports.map((i) => `${i.module}.${i.name}:${i.kind}`)).toEqual(['actual.0:function', 'shim.$imports:table']);
    const main = echoInfo.coreModuleInfo[0]!;
    expect(main.exports.map((e) => e.name)).toEqual(['memory', REALLOC_EXPORT, HANDLER_CALL_EXPORT]);
    for (const m of echoInfo.coreModules) expect(WebAssembly.validate(m)).toBe(true);
    const contract = echoInfo.customSections.find((s) => s.name === CONTRACT_SECTION);
    expect(contract?.size).toBe(contractJson({ capabilities: ['random'] }).length);
    expect(echoInfo.customSections.map((s) => s.name)).toContain('component-name');
  });

  it('passes the world check with its contract', () => {
    expect(importedCapabilities(echoInfo)).toEqual(['random']);
    expect(outcome(() => checkWorld(echoInfo, moduleContract(echo)))).toBe('ok');
  });

  it('the world constants name what wit-component writes', () => {
    expect(`${WORLD_PACKAGE}@${WORLD_VERSION}`).toBe('enclave:runtime@1.0.0');
    expect(HANDLER_CALL_EXPORT).toBe('enclave:runtime/handler@1.0.0#call');
    expect(POST_RETURN_EXPORT).toBe('cabi_post_enclave:runtime/handler@1.0.0#call');
    expect(interfaceName('random')).toBe('enclave:runtime/random@1.0.0');
    expect(Object.keys(INTERFACE_CAPABILITY)).toEqual(['types', 'random', 'clock', 'log', 'seal', 'counter', 'attest']);
    // every interface of the WIT world is in the table
    for (const iface of WIT.matchAll(/^interface ([a-z-]+) \{/gm)) {
      if (iface[1] !== 'handler') expect(Object.keys(INTERFACE_CAPABILITY)).toContain(iface[1]);
    }
  });
});

describe('truncated and mutated components', () => {
  it('every prefix is invalid_module, except one that ends where a top-level section ends', () => {
    const boundaries = new Set([8, ...listSections(echo).map((s) => s.end)]);
    let refusedCount = 0;
    for (let i = 0; i < echo.length; i++) {
      const got = outcome(() => readComponentInfo(echo.subarray(0, i)));
      if (boundaries.has(i)) expect(['ok', 'invalid_module'], `prefix ${i}`).toContain(got);
      else expect(got, `prefix ${i}`).toBe('invalid_module');
      if (got === 'invalid_module') refusedCount++;
    }
    expect(refusedCount).toBeGreaterThan(echo.length - boundaries.size - 1);
  });

  it('every byte changed to 0x00, 0x7f, 0x80, 0xff or by one either parses or is refused with a code, never crashes', () => {
    const seen = new Set<string>();
    const copy = new Uint8Array(echo);
    for (let i = 0; i < echo.length; i++) {
      for (const v of [0x00, 0x7f, 0x80, 0xff, (echo[i]! + 1) & 0xff, (echo[i]! - 1) & 0xff]) {
        copy[i] = v;
        const got = outcome(() => readComponentInfo(copy));
        expect(['ok', 'invalid_module', 'memory_limit'], `byte ${i} = ${v}: ${got}`).toContain(got);
        seen.add(got);
      }
      copy[i] = echo[i]!;
    }
    expect(seen).toContain('invalid_module');
  });
});

describe('hostile lengths and counts', () => {
  it('a section size past the end, or an overlong or overflowing LEB128, is invalid_module', () => {
    expect(messageOf(() => readComponentInfo(component(bytes(10, [0xff, 0xff, 0xff, 0xff, 0x0f]))))).toMatch(/runs past its section/);
    expect(messageOf(() => readComponentInfo(component(bytes(10, [0x80, 0x80, 0x80, 0x80, 0x80, 0x00]))))).toMatch(/overflows u32/);
    expect(messageOf(() => readComponentInfo(component(bytes(10, [0xff, 0xff, 0xff, 0xff, 0x1f]))))).toMatch(/overflows u32/);
    expect(messageOf(() => readComponentInfo(component(bytes(10))))).toMatch(/ends early/);
  });

  it('a vector count above what its section holds is refused before anything is allocated for it', () => {
    for (const id of [10, 11, 8]) {
      expect(messageOf(() => readComponentInfo(component(section(id, [0xff, 0xff, 0xff, 0xff, 0x0f]))))).toMatch(/claims more elements/);
    }
    // canonical options: a lift claiming 2^32-1 of them
    expect(messageOf(() => readComponentInfo(component(section(8, 0x01, 0x00, 0x00, 0x00, [0xff, 0xff, 0xff, 0xff, 0x0f]))))).toMatch(/claims more elements/);
  });

  it('more imports or exports than the bound are refused even when the bytes hold them', () => {
    const many = Array.from({ length: MODULE_BOUNDS.imports + 1 }, (_, i) => `i${i}`);
    expect(messageOf(() => readComponentInfo(component(importSection(...many))))).toMatch(/has 101 imports; at most 100/);
    // split over two sections: still counted together
    const half = many.slice(0, 60);
    const rest = many.slice(60);
    expect(messageOf(() => readComponentInfo(component(importSection(...half), importSection(...rest))))).toMatch(/more than 100 imports/);
    expect(readComponentInfo(component(importSection(...many.slice(0, 100)))).imports).toHaveLength(100);
  });

  it('a name longer than its section, or not UTF-8, is invalid_module', () => {
    expect(messageOf(() => readComponentInfo(component(section(10, 0x01, 0x00, [0xff, 0xff, 0x03], 0x61))))).toMatch(/runs past its section/);
    expect(messageOf(() => readComponentInfo(component(section(10, 0x01, 0x00, 0x02, [0xc3, 0x28], 0x05, 0x00))))).toMatch(/not UTF-8/);
    expect(messageOf(() => readComponentInfo(component(section(0, 0x02, [0xc3, 0x28]))))).toMatch(/not UTF-8/);
  });

  it('more sections than MODULE_BOUNDS.sections, or more bytes than moduleBytes, are refused', () => {
    const empty = encodeCustomSection('x', new Uint8Array(0));
    const many = component(...Array.from({ length: MODULE_BOUNDS.sections + 1 }, () => empty));
    expect(messageOf(() => readComponentInfo(many))).toMatch(/more than 1000 sections/);
    const big = component(encodeCustomSection('pad', new Uint8Array(MODULE_BOUNDS.moduleBytes)));
    expect(messageOf(() => readComponentInfo(big))).toMatch(/^invalid_module: The component is \d+ bytes; the runtime accepts at most 2097152/);
  });

  it('a section with bytes after its entries is invalid_module', () => {
    expect(messageOf(() => readComponentInfo(component(section(10, importSection('a').subarray(2), 0x00))))).toMatch(/bytes after its imports/);
    expect(messageOf(() => readComponentInfo(component(section(8, 0x00, 0x00))))).toMatch(/bytes after its definitions/);
    expect(messageOf(() => readComponentInfo(component(section(11, 0x00, 0x00))))).toMatch(/bytes after its exports/);
  });
});

describe('refused sections', () => {
  it.each([
    [9, /a start section/],
    [12, /a value section/],
    [13, /unknown id 13/],
    [0x7f, /unknown id 127/],
  ])('section id %i is refused', (id, message) => {
    expect(messageOf(() => readComponentInfo(component(section(id, 0x00))))).toMatch(message);
  });

  it('a start section written in WAT is refused', () => {
    expect(messageOf(() => readComponentInfo(parseSync(WATS.start)))).toMatch(/has a start section/);
  });

  it('a nested component holding code (a core module, instance, type, canon, component, instance, start) is refused', () => {
    const nested = (...inner: Uint8Array[]) => section(4, COMPONENT_HEADER, ...inner);
    for (const [id, what] of [
      [1, 'core module'],
      [2, 'core instance'],
      [3, 'core type'],
      [4, 'nested component'],
      [5, 'instance'],
      [8, 'canon'],
      [9, 'start'],
      [12, 'value'],
    ] as const) {
      expect(messageOf(() => readComponentInfo(component(nested(section(id, 0x00)))))).toMatch(new RegExp(`a ${what} section inside a nested component`));
    }
    // what wit-component writes there: types, aliases, imports and exports
    expect(outcome(() => readComponentInfo(component(nested(section(7, 0x00), section(6, 0x00), section(10, 0x00), section(11, 0x00), section(0, name('n'))))))).toBe('ok');
    // its imports are not the component's
    expect(readComponentInfo(component(nested(importSection('wasi:cli/stdout@0.2.0')))).imports).toEqual([]);
  });

  it('a nested component without a component header, or running past its section, is invalid_module', () => {
    expect(messageOf(() => readComponentInfo(component(section(4, CORE_HEADER))))).toMatch(/no component header/);
    expect(messageOf(() => readComponentInfo(component(section(4, COMPONENT_HEADER.subarray(0, 6)))))).toMatch(/no component header/);
    expect(messageOf(() => readComponentInfo(component(section(4, COMPONENT_HEADER, 0x07, 0x05, 0x00))))).toMatch(/runs past its section/);
  });

  it(`more than ${MAX_NESTED_COMPONENTS} nested components are refused`, () => {
    const nested = section(4, COMPONENT_HEADER);
    expect(outcome(() => readComponentInfo(component(...Array.from({ length: MAX_NESTED_COMPONENTS }, () => nested))))).toBe('ok');
    expect(messageOf(() => readComponentInfo(component(...Array.from({ length: MAX_NESTED_COMPONENTS + 1 }, () => nested))))).toMatch(/more than 4 nested components/);
  });
});

describe('canonical definitions', () => {
  // Built-ins by opcode (component model Binary.md `canon`): each refused, named.
  const BUILTINS: [number, string][] = [
    [0x02, 'resource.new'],
    [0x03, 'resource.drop'],
    [0x04, 'resource.rep'],
    [0x05, 'task.cancel'],
    [0x06, 'subtask.cancel'],
    [0x09, 'task.return'],
    [0x0a, 'context.get'],
    [0x0b, 'context.set'],
    [0x0c, 'thread.yield'],
    [0x0d, 'subtask.drop'],
    [0x0e, 'stream.new'],
    [0x0f, 'stream.read'],
    [0x10, 'stream.write'],
    [0x15, 'future.new'],
    [0x16, 'future.read'],
    [0x1c, 'error-context.new'],
    [0x1e, 'error-context.drop'],
    [0x1f, 'waitable-set.new'],
    [0x20, 'waitable-set.wait'],
    [0x23, 'waitable.join'],
    [0x24, 'backpressure.inc'],
    [0x26, 'thread.index'],
    [0x27, 'thread.new-indirect'],
    [0x40, 'thread.spawn-ref'],
    [0x42, 'thread.available-parallelism'],
    [0x30, 'unknown (0x30)'],
    [0xff, 'unknown (0xff)'],
  ];
  it.each(BUILTINS)('built-in %i (%s) is refused by name', (op, what) => {
    const msg = messageOf(() => readComponentInfo(component(section(8, 0x01, op, 0x00, 0x00))));
    expect(msg).toMatch(/^invalid_module: /);
    expect(msg).toContain(`the canonical built-in ${what}`);
  });

  it.each([
    [[0x01], 'string-encoding=utf16'],
    [[0x02], 'string-encoding=latin1+utf16'],
    [[0x06], 'async'],
    [[0x07, 0x00], 'callback'],
    [[0x00, 0x0a], 'unknown (0x0a)'],
  ])('option %j on a lift or a lower is refused by name (%s)', (opts, what) => {
    const lift = section(8, 0x01, 0x00, 0x00, 0x00, leb(opts.length), opts, 0x00);
    const lower = section(8, 0x01, 0x01, 0x00, 0x00, leb(opts.length), opts);
    expect(messageOf(() => readComponentInfo(component(lift)))).toContain(`the canonical option ${what} on a canon lift`);
    expect(messageOf(() => readComponentInfo(component(lower)))).toContain(`the canonical option ${what} on a canon lower`);
  });

  it('lift and lower with utf8, memory, realloc and post-return pass', () => {
    const opts = [0x04, 0x00, 0x03, 0x01, 0x04, 0x02, 0x05, 0x03];
    const lift = bytes(0x00, 0x00, 0x05, 0x04, opts, 0x07);
    const lower = bytes(0x01, 0x00, 0x02, 0x02, 0x00, 0x03, 0x00);
    expect(outcome(() => readComponentInfo(component(section(8, 0x02, lift, lower))))).toBe('ok');
    expect(outcome(() => readComponentInfo(parseSync(WATS.lowerUtf8)))).toBe('ok');
  });

  it('a lift or lower of something other than a function is invalid_module', () => {
    expect(messageOf(() => readComponentInfo(component(section(8, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00))))).toMatch(/canon lift does not name a function/);
    expect(messageOf(() => readComponentInfo(component(section(8, 0x01, 0x01, 0x02, 0x00, 0x00))))).toMatch(/canon lower does not name a function/);
  });

  it.each([
    ['resourceNew', 'resource.new'],
    ['resourceDrop', 'resource.drop'],
    ['taskReturn', 'task.return'],
    ['streamNew', 'stream.new'],
    ['waitableSetNew', 'waitable-set.new'],
    ['contextGet', 'context.get'],
    ['errorContextDrop', 'error-context.drop'],
    ['lowerAsync', 'option async'],
    ['lowerUtf16', 'option string-encoding=utf16'],
    ['lowerLatin1', 'option string-encoding=latin1+utf16'],
  ] as const)('as wasm-tools encodes it: %s is refused (%s)', (key, what) => {
    const msg = messageOf(() => readComponentInfo(parseSync(WATS[key])));
    expect(msg).toMatch(/^invalid_module: /);
    expect(msg).toContain(what);
  });
});

describe('core modules', () => {
  it(`at most ${MAX_CORE_MODULES}`, () => {
    expect(readComponentInfo(parseSync(WATS.eightModules)).coreModules).toHaveLength(MAX_CORE_MODULES);
    expect(messageOf(() => readComponentInfo(parseSync(WATS.nineModules)))).toMatch(/more than 8 core modules/);
  });

  it('at most one memory across them, and none imported', () => {
    expect(messageOf(() => readComponentInfo(parseSync(WATS.twoMemories)))).toMatch(/more than one memory/);
    expect(messageOf(() => readComponentInfo(parseSync(WATS.twoMemoriesOneModule)))).toMatch(/more than one memory/);
    expect(messageOf(() => readComponentInfo(parseSync(WATS.importedMemory)))).toMatch(/core module 0 importing a memory \("env" "memory"\)/);
  });

  it('each goes through readModuleInfo: a malformed or oversized one is refused, naming it', () => {
    const bad = component(section(1, CORE_HEADER), section(1, CORE_HEADER, 0x01, 0x05));
    expect(messageOf(() => readComponentInfo(bad))).toMatch(/^invalid_module: Core module 1 of the component: The module is malformed/);
    expect(messageOf(() => readComponentInfo(component(section(1, COMPONENT_HEADER))))).toMatch(/Core module 0 .*a component, not a core module/);
    const table = coreModule(section(4, 0x01, 0x70, 0x00, leb(MODULE_BOUNDS.tableElements + 1)));
    expect(outcome(() => readComponentInfo(component(section(1, table))))).toBe('memory_limit');
  });
});

describe('import and export names', () => {
  it('names with attributes (implements, versionsuffix, external-id) are refused; an unknown form is invalid_module', () => {
    const withAttr = section(10, 0x01, 0x02, name('enclave:runtime/random@1'), 0x01, 0x01, name('.0.0'), 0x05, 0x00);
    expect(messageOf(() => readComponentInfo(component(withAttr)))).toMatch(/gives the import "enclave:runtime\/random@1" name attributes/);
    expect(messageOf(() => readComponentInfo(component(section(10, 0x01, 0x03, name('a'), 0x05, 0x00))))).toMatch(/unknown form 0x03/);
    // the legacy 0x01 form is the same plain name
    expect(readComponentInfo(component(section(10, 0x01, 0x01, name('a'), 0x05, 0x00))).imports).toEqual([{ name: 'a', kind: 'instance' }]);
  });

  it('reads every kind of import; refuses values', () => {
    const imports = section(
      10,
      0x05,
      [0x00, ...name('m'), 0x00, 0x11, 0x00],
      [0x00, ...name('f'), 0x01, 0x00],
      [0x00, ...name('t'), 0x03, 0x01],
      [0x00, ...name('c'), 0x04, 0x00],
      [0x00, ...name('i'), 0x05, 0x00],
    );
    expect(readComponentInfo(component(imports)).imports.map((i) => i.kind)).toEqual(['core-module', 'func', 'type', 'component', 'instance']);
    expect(messageOf(() => readComponentInfo(component(section(10, 0x01, 0x00, name('v'), 0x02, 0x01, 0x79))))).toMatch(/the value import "v"/);
    expect(messageOf(() => readComponentInfo(component(section(10, 0x01, 0x00, name('x'), 0x06, 0x00))))).toMatch(/unknown kind 0x06/);
    expect(messageOf(() => readComponentInfo(component(section(10, 0x01, 0x00, name('x'), 0x00, 0x10, 0x00))))).toMatch(/core type other than a module/);
    expect(messageOf(() => readComponentInfo(component(section(10, 0x01, 0x00, name('x'), 0x03, 0x02))))).toMatch(/unknown bound 0x02/);
  });

  it('reads exports with and without a declared type; refuses values and mismatched types', () => {
    const exports = section(11, 0x02, [0x00, ...name('a'), 0x05, 0x00, 0x00], [0x00, ...name('b'), 0x01, 0x00, 0x01, 0x01, 0x00]);
    expect(readComponentInfo(component(exports)).exports).toEqual([
      { name: 'a', kind: 'instance' },
      { name: 'b', kind: 'func' },
    ]);
    expect(messageOf(() => readComponentInfo(component(section(11, 0x01, 0x00, name('v'), 0x02, 0x00, 0x00))))).toMatch(/the value export "v"/);
    expect(messageOf(() => readComponentInfo(component(section(11, 0x01, 0x00, name('b'), 0x01, 0x00, 0x01, 0x05, 0x00))))).toMatch(/declares a type of another kind/);
    expect(messageOf(() => readComponentInfo(component(section(11, 0x01, 0x00, name('b'), 0x01, 0x00, 0x02))))).toMatch(/malformed optional type/);
    expect(messageOf(() => readComponentInfo(component(section(11, 0x01, 0x00, name('b'), 0x00, 0x00, 0x00, 0x00))))).toMatch(/core item other than a module/);
  });

  it('a hostile name is quoted and cut in messages', () => {
    const evil = `x\u001b[31m\u202e${'a'.repeat(200)}`;
    const msg = messageOf(() => readComponentInfo(component(section(10, 0x01, 0x00, name(evil), 0x02, 0x01, 0x79))));
    expect(msg).not.toContain('\u001b');
    expect(msg).not.toContain('\u202e');
    expect(msg).toContain('\\u001b');
    expect(msg.length).toBeLessThan(300);
  });
});

describe('the world check', () => {
  const contract = (...capabilities: string[]) => ({ capabilities }) as unknown as Parameters<typeof checkWorld>[1];
  const handler = [{ name: HANDLER_EXPORT, kind: 'instance' as const }];
  const info = (imports: ComponentInfo['imports'], exports: ComponentInfo['exports'] = handler) => ({ imports, exports });

  it('accepts every interface of the world when the contract declares its capability', () => {
    const all = Object.keys(INTERFACE_CAPABILITY).map((i) => ({ name: interfaceName(i), kind: 'instance' as const }));
    expect(outcome(() => checkWorld(info(all), contract('random', 'clock', 'log', 'seal', 'counter', 'attest')))).toBe('ok');
    expect(importedCapabilities(info(all))).toEqual(['random', 'clock', 'log', 'seal', 'counter', 'attest']);
    expect(outcome(() => checkWorld(info([{ name: interfaceName('types'), kind: 'instance' }]), contract()))).toBe('ok');
    expect(outcome(() => checkWorld(info([]), contract()))).toBe('ok');
  });

  it.each([
    'wasi:cli/stdout@0.2.0',
    'enclave:runtime/random@1.0.1',
    'enclave:runtime/random@1.0.0-rc',
    'enclave:runtime/random',
    'enclave:runtime/random@1',
    'Enclave:runtime/random@1.0.0',
    'enclave:runtime/handler@1.0.0',
    'enclave:runtime/__proto__@1.0.0',
    'enclave:runtime/toString@1.0.0',
    'enclave:runtime/@1.0.0',
    'enclave:runtime/random/x@1.0.0',
    'random',
  ])('an import of %s is beyond the world: invalid_module', (n) => {
    const msg = messageOf(() => checkWorld(info([{ name: n, kind: 'instance' }]), contract('random')));
    expect(msg).toMatch(/^invalid_module: The component imports .*, beyond the enclave world \(wit\/enclave\.wit\)/);
    expect(importedCapabilities(info([{ name: n, kind: 'instance' }]))).toEqual([]);
  });

  it.each(['func', 'type', 'component', 'core-module'] as const)('an import of the right name but of kind %s is beyond the world', (kind) => {
    expect(messageOf(() => checkWorld(info([{ name: interfaceName('random'), kind }]), contract('random')))).toMatch(/beyond the enclave world/);
  });

  it('a real component importing beyond the world passes the gate and fails the world check', () => {
    const beyond = readComponentInfo(parseSync(WATS.beyondWorld));
    expect(beyond.imports).toEqual([{ name: 'wasi:cli/stdout@0.2.0', kind: 'instance' }]);
    expect(messageOf(() => checkWorld(beyond, contract()))).toMatch(/imports "wasi:cli\/stdout@0\.2\.0" \(instance\), beyond the enclave world/);
  });

  it('an interface whose capability the contract does not declare is capability_denied', async () => {
    expect(messageOf(() => checkWorld(echoInfo, contract()))).toMatch(/^capability_denied: .*"enclave:runtime\/random@1\.0\.0".*"random"/);
    expect(messageOf(() => checkWorld(echoInfo, contract('clock', 'log')))).toMatch(/^capability_denied/);
    const withClock = readComponentInfo(await realComponent(randomEchoWat(true), ['random']));
    expect(importedCapabilities(withClock)).toEqual(['random', 'clock']);
    expect(messageOf(() => checkWorld(withClock, contract('random')))).toMatch(/^capability_denied: .*clock/);
    expect(outcome(() => checkWorld(withClock, contract('random', 'clock')))).toBe('ok');
  });

  it('an interface imported twice is invalid_module', () => {
    const twice = [interfaceName('random'), interfaceName('random')].map((n) => ({ name: n, kind: 'instance' as const }));
    expect(messageOf(() => checkWorld(info(twice), contract('random')))).toMatch(/imports "enclave:runtime\/random@1\.0\.0" twice/);
  });

  it.each([
    ['nothing', []],
    ['two exports', [...handler, { name: 'other', kind: 'instance' }]],
    ['the handler twice', [...handler, ...handler]],
    ['another name', [{ name: 'enclave:runtime/handler@1.0.1', kind: 'instance' }]],
    ['the handler as a function', [{ name: HANDLER_EXPORT, kind: 'func' }]],
    ['the call function alone', [{ name: 'call', kind: 'func' }]],
  ] as const)('exporting %s is invalid_module', (_what, exports) => {
    expect(messageOf(() => checkWorld(info([], exports), contract()))).toMatch(/^invalid_module: The component exports .*; it must export exactly the instance "enclave:runtime\/handler@1\.0\.0"/);
  });
});

describe('the contract of a component', () => {
  const main = coreModule(memorySection());
  const contractOf = (b: Uint8Array) => {
    try {
      return moduleContract(b).svn;
    } catch (err) {
      return (err as EnclaveError).code;
    }
  };

  it('is its one top-level enclave.contract section', () => {
    expect(moduleContract(echo).capabilities).toEqual(['random']);
    expect(contractOf(component(section(1, main), encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 7 }))))).toBe(7);
  });

  it('none, or two, at the top level is invalid_contract', () => {
    const one = encodeCustomSection(CONTRACT_SECTION, contractJson());
    expect(contractOf(component(section(1, main)))).toBe('invalid_contract');
    expect(contractOf(component(section(1, main), one, one))).toBe('invalid_contract');
    expect(contractOf(component(one, section(1, main), one))).toBe('invalid_contract');
  });

  it("a core module's own enclave.contract is never read: not as the contract, not as a second one", () => {
    const inner = coreModule(memorySection(), encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 99 })));
    expect(contractOf(component(section(1, inner)))).toBe('invalid_contract');
    const outer = component(section(1, inner), encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 3 })));
    expect(contractOf(outer)).toBe(3);
    expect(readComponentInfo(outer).customSections.map((s) => s.name)).toEqual([CONTRACT_SECTION]);
    // nor a nested component's
    const nested = section(4, COMPONENT_HEADER, encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 98 })));
    expect(contractOf(component(nested, encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 4 }))))).toBe(4);
  });
});

describe('names jco pastes into the JavaScript it generates', () => {
  // jco-transpile 0.15.0 writes core names into the glue's source unescaped, in quotes: a core export
  // named like this, lifted by the component, runs the expression on the host when the glue instantiates.
  const PWNED = '__enclaveGateNamePwned';
  const EVIL = `0'+(globalThis.${PWNED}=1)+'`;
  /** A component of the world's shape (no imports, the handler instance exported) whose `call` lifts a core export named `exportName`. */
  const hostileWat = (exportName: string) => `(component
    (core module $m
      (memory (export "memory") 1 1)
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
      (func (export "enclave:runtime/handler@1.0.0#call") (param i32 i32) (result i32) i32.const 0)
      (func (export "${exportName}") (result i32) i32.const 7))
    (core instance $i (instantiate $m))
    (func $call (result u32) (canon lift (core func $i "${exportName}")))
    (instance $h (export "call" (func $call)))
    (export "enclave:runtime/handler@1.0.0" (instance $h)))`;
  const withContract = async (wat: string) =>
    concat(await parse(wat), encodeCustomSection(CONTRACT_SECTION, contractJson({ capabilities: [] })));
  const g = globalThis as Record<string, unknown>;

  it('the hostile component really is one: jco glue alone runs the name as JavaScript (the gate is what stops it)', async () => {
    const hostile = await withContract(hostileWat(EVIL));
    const { files, glue } = await transpileComponent(hostile);
    expect(glue).toContain(`globalThis.${PWNED}=1`);
    const mod = await import(`data:text/javascript;base64,${Buffer.from(glue).toString('base64')}`);
    delete g[PWNED];
    try {
      mod.instantiate(
        (file: string) => new WebAssembly.Module(files[file]!),
        {},
        (module: WebAssembly.Module, imports: WebAssembly.Imports) => new WebAssembly.Instance(module, imports),
      );
      expect(g[PWNED]).toBe(1);
    } finally {
      delete g[PWNED];
    }
  });

  it('the gate refuses it (invalid_module, naming the core module and quoting the name); the same component with a plain name passes the gate and the world check', async () => {
    const hostile = await withContract(hostileWat(EVIL));
    const msg = messageOf(() => readComponentInfo(hostile));
    // wasm-tools writes the lift's core function as an alias of the core instance's export: refused there first
    expect(msg).toMatch(/^invalid_module: The component has the name ".*" in its alias section \(an alias of the export of a core instance\); names may hold only/);
    expect(msg).toContain(JSON.stringify(EVIL));
    const plain = await withContract(hostileWat('lifted_call'));
    const info = readComponentInfo(plain);
    expect(outcome(() => checkWorld(info, moduleContract(plain)))).toBe('ok');
  });

  it('loading it through the runtime refuses it with invalid_module and never runs the name', async () => {
    const { loadEnclave } = await import('../runtime/index.js');
    const hostile = await withContract(hostileWat(EVIL));
    delete g[PWNED];
    for (const isolation of ['in-process', 'worker'] as const) {
      const err = await loadEnclave(hostile, { isolation }).then(
        async (e) => {
          await e.close?.();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err, isolation).toBeInstanceOf(EnclaveError);
      expect((err as EnclaveError).code, isolation).toBe('invalid_module');
      expect(g[PWNED], isolation).toBeUndefined();
    }
  });

  // Every name wit-component writes, and names just outside the allowlist.
  const ACCEPTED = [
    '0',
    '12',
    '$imports',
    'actual',
    'shim',
    'memory',
    'cabi_realloc',
    'enclave:runtime/random@1.0.0',
    'seal-key-at',
    'enclave:runtime/handler@1.0.0#call',
    'cabi_post_enclave:runtime/handler@1.0.0#call',
    'import-type-error0',
    'a'.repeat(256),
  ];
  const REFUSED = [
    '',
    'a'.repeat(257),
    "a'b",
    'a"b',
    'a\\b',
    'a`b',
    'a${b}',
    'a\nb',
    'a\rb',
    'a\u2028b',
    'a\u2029b',
    'a b',
    'a\tb',
    'a\0b',
    'a{b',
    'a}b',
    'a(b',
    'a)b',
    'a+b',
    'a=b',
    'a;b',
    'a,b',
    'a[b',
    'a]b',
    'a<b',
    'a*b',
    'a!b',
    'a%b',
    'a&b',
    'a|b',
    'a?b',
    'é',
    '\u202e',
    '__proto__',
    EVIL,
  ];
  const REFUSAL = /^invalid_module: The component has the name .* in (.*); names may hold only 1 to 256 letters, digits and _ \. : @ \/ # \$ - \(jco pastes them/;
  const whereOf = (fn: () => unknown) => {
    const m = REFUSAL.exec(messageOf(fn));
    if (m === null) throw new Error(`not a name refusal: ${messageOf(fn)}`);
    return m[1];
  };

  // Each place a name is written, as a function of the name: the component, and where the refusal says it is.
  const core = (...sections: Uint8Array[]) => section(1, coreModule(...sections));
  const PLACES: [string, (n: string) => Uint8Array, string][] = [
    // core module: import section `vec(module name, field name, 0x00 typeidx)`, with a type section for it
    ['a core import module name', (n) => component(core(section(1, 0x01, 0x60, 0x00, 0x00), section(2, 0x01, name(n), name('f'), 0x00, 0x00))), 'core module 0 (an import module name)'],
    ['a core import name', (n) => component(core(section(1, 0x01, 0x60, 0x00, 0x00), section(2, 0x01, name('m'), name(n), 0x00, 0x00))), 'core module 0 (an import name)'],
    ['a core export name', (n) => component(core(memorySection(), section(7, 0x01, name(n), 0x02, 0x00))), 'core module 0 (an export name)'],
    // core instance section: `0x00 moduleidx vec(name 0x12 instanceidx)`, `0x01 vec(name core:sortidx)`
    ['a core instantiation argument', (n) => component(section(2, 0x01, 0x00, 0x00, 0x01, name(n), 0x12, 0x00)), 'its core instance section (an instantiation argument)'],
    ['a core inline export', (n) => component(section(2, 0x01, 0x01, 0x01, name(n), 0x00, 0x00)), 'its core instance section (an export of a core instance)'],
    // alias section: `sort 0x01 core:instanceidx name` and `sort 0x00 instanceidx name`
    ['a core export alias', (n) => component(section(6, 0x01, 0x00, 0x00, 0x01, 0x00, name(n))), 'its alias section (an alias of the export of a core instance)'],
    ['an instance export alias', (n) => component(section(6, 0x01, 0x01, 0x00, 0x00, name(n))), 'its alias section (an alias of the export of an instance)'],
    // instance section: `0x00 componentidx vec(name sortidx)`, `0x01 vec(exportname sortidx)`
    ['an instantiation argument', (n) => component(section(5, 0x01, 0x00, 0x00, 0x01, name(n), 0x01, 0x00)), 'its instance section (an instantiation argument)'],
    ['an instance inline export', (n) => component(section(5, 0x01, 0x01, 0x01, 0x00, name(n), 0x01, 0x00)), 'its instance section (an export of an instance)'],
    ['an import', (n) => component(section(10, 0x01, instanceImport(n))), 'its import section (an import)'],
    ['an export', (n) => component(section(11, 0x01, 0x00, name(n), 0x05, 0x00, 0x00)), 'its export section (an export)'],
    // the same inside the code-free nested component
    ['a nested alias', (n) => component(section(4, COMPONENT_HEADER, section(6, 0x01, 0x01, 0x00, 0x00, name(n)))), 'its alias section (an alias of the export of an instance)'],
    ['a nested import', (n) => component(section(4, COMPONENT_HEADER, section(10, 0x01, instanceImport(n)))), 'its import section (an import)'],
    ['a nested export', (n) => component(section(4, COMPONENT_HEADER, section(11, 0x01, 0x00, name(n), 0x05, 0x00, 0x00))), 'its export section (an export)'],
  ];

  it.each(PLACES)('%s: every accepted name passes, every other is refused naming the place', (_what, build, where) => {
    for (const n of ACCEPTED) expect(outcome(() => readComponentInfo(build(n))), JSON.stringify(n)).toBe('ok');
    for (const n of REFUSED) expect(whereOf(() => readComponentInfo(build(n))), JSON.stringify(n)).toBe(where);
  });

  it('the same places written by wasm-tools from WAT are refused', async () => {
    const cases: [string, string][] = [
      ['(component (core module (import "a\'b" "f" (func))))', 'core module 0 (an import module name)'],
      ['(component (core module (import "m" "a\'b" (func))))', 'core module 0 (an import name)'],
      ['(component (core module $m) (core instance $i (instantiate $m)) (core instance (instantiate $m (with "a\'b" (instance $i)))))', 'its core instance section (an instantiation argument)'],
      ['(component (core module $m (func (export "f"))) (core instance $i (instantiate $m)) (alias core export $i "f" (core func $f)) (core instance (export "a\'b" (func $f))))', 'its core instance section (an export of a core instance)'],
    ];
    for (const [wat, where] of cases) {
      const b = await parse(wat);
      expect(whereOf(() => readComponentInfo(b)), wat).toBe(where);
    }
  });

  it('a core type section is refused (wit-component never writes one; module types carry names of their own)', async () => {
    expect(messageOf(() => readComponentInfo(component(section(3, 0x00))))).toMatch(/^invalid_module: The component has a core type section; module types carry core import and export names/);
    const wat = '(component (core type (module (import "a\'b" "f" (func)))))';
    const b = await parse(wat);
    expect(messageOf(() => readComponentInfo(b))).toMatch(/has a core type section/);
  });

  it('aliasing a core module (or a value) is refused: every core module instantiated is one of its own sections', () => {
    expect(messageOf(() => readComponentInfo(component(section(6, 0x01, 0x00, 0x11, 0x00, 0x00, name('m')))))).toMatch(/aliases a core module/);
    expect(messageOf(() => readComponentInfo(component(section(6, 0x01, 0x00, 0x11, 0x02, 0x01, 0x00))))).toMatch(/aliases a core module/);
    expect(messageOf(() => readComponentInfo(component(section(6, 0x01, 0x02, 0x00, 0x00, name('v')))))).toMatch(/aliases a value/);
    // other sorts are aliased as wit-component does: core funcs, memories, types, instances' exports, outer types
    const ok = section(6, 0x04, [0x00, 0x00, 0x01, 0x00, ...name('f')], [0x00, 0x02, 0x01, 0x00, ...name('memory')], [0x03, 0x00, 0x00, ...name('failure')], [0x03, 0x02, 0x01, 0x00]);
    expect(outcome(() => readComponentInfo(component(ok)))).toBe('ok');
  });

  it('malformed core instance, instance and alias sections are invalid_module', () => {
    const cases: [Uint8Array, RegExp][] = [
      [section(2, 0x01, 0x02), /core instance has the unknown form 0x02/],
      [section(2, 0x01, 0x00, 0x00, 0x01, name('a'), 0x11, 0x00), /core instantiation argument "a" is not a core instance/],
      [section(2, 0x01, 0x01, 0x01, name('a'), 0x05, 0x00), /core instance export "a" has the core sort 0x05/],
      [section(2, 0x01, 0x00, 0x00, 0x00, 0x00), /bytes after its instances/],
      [section(2, [0xff, 0xff, 0xff, 0xff, 0x0f]), /claims more elements/],
      [section(2, 0x01, 0x00, 0x00, [0xff, 0xff, 0xff, 0xff, 0x0f]), /claims more elements/],
      [section(5, 0x01, 0x03), /an instance has the unknown form 0x03/],
      [section(5, 0x01, 0x00, 0x00, 0x01, name('a'), 0x06, 0x00), /instantiation argument "a" has the unknown sort 0x06/],
      [section(5, 0x01, 0x00, 0x00, 0x01, name('a'), 0x00, 0x20, 0x00), /instantiation argument "a" has the unknown core sort 0x20/],
      [section(5, 0x01, 0x01, 0x01, 0x05, name('a'), 0x01, 0x00), /unknown form 0x05/],
      [section(5, 0x01, 0x01, 0x00, 0x00), /bytes after its instances/],
      [section(6, 0x01, 0x07, 0x00, 0x00, name('a')), /an alias has the unknown sort 0x07/],
      [section(6, 0x01, 0x00, 0x20, 0x00, 0x00, name('a')), /an alias has the unknown core sort 0x20/],
      [section(6, 0x01, 0x01, 0x03, 0x00), /an alias has the unknown target 0x03/],
      [section(6, 0x01, 0x01, 0x00, 0x00, [0xff, 0xff, 0x03]), /runs past its section/],
      [section(6, 0x01, 0x01, 0x00, 0x00, 0x02, [0xc3, 0x28]), /not UTF-8/],
      [section(6, 0x00, 0x00), /bytes after its aliases/],
    ];
    for (const [s, message] of cases) {
      const msg = messageOf(() => readComponentInfo(component(s)));
      expect(msg, String(message)).toMatch(/^invalid_module: /);
      expect(msg).toMatch(message);
    }
  });

  const REAL = ['echo', 'vault', 'counter', 'crypto'].map((n) => [n, `enclave-modules/${n}/build/${n}.component.wasm`] as const);
  it.each(REAL)('the real build %s.component.wasm passes the gate, every name it writes within the allowlist', (_n, file) => {
    const info = readComponentInfo(new Uint8Array(readFileSync(file)));
    expect(info.exports).toEqual([{ name: HANDLER_EXPORT, kind: 'instance' }]);
    for (const m of info.coreModuleInfo) {
      for (const i of m.imports) expect(`${i.module} ${i.name}`).toMatch(/^[A-Za-z0-9_.:@/#$-]+ [A-Za-z0-9_.:@/#$-]+$/);
    }
  });

  it("the fixtures of test/fixtures/components and the helpers' components pass the gate", async () => {
    const fixtures = await import('./helpers/component-fixtures.js');
    const built: [string, Uint8Array][] = [
      ['echo', await fixtures.componentFixture('echo')],
      ['hostile', await fixtures.componentFixture('hostile')],
      ['minimal', await fixtures.watComponent(fixtures.minimalComponentWat(), fixtures.MINIMAL_COMPONENT_CONTRACT)],
      ['seal-importing', await fixtures.sealImportingComponent()],
      ['beyond the world', await fixtures.beyondWorldComponent()],
    ];
    for (const [n, b] of built) expect(outcome(() => readComponentInfo(b)), n).toBe('ok');
  });

  /**
   * Where each structural name of a real component is: for every length-prefixed occurrence of a
   * name the gate read, whether the gate must refuse it when one of its bytes changes (a name of a
   * core import or export, a core instance, an alias, an instance, an import, an export) or need not
   * (inside a custom section, a core module's code or data, a type section).
   */
  function nameSites(component: Uint8Array, names: Iterable<string>): { at: number; len: number; checked: boolean }[] {
    const spans: { start: number; end: number; checked: boolean }[] = [];
    const walk = (bytes: Uint8Array, base: number, kind: 'component' | 'core') => {
      for (const s of listSections(bytes)) {
        const start = base + s.payloadStart;
        const end = base + s.end;
        if (kind === 'core') spans.push({ start, end, checked: s.id === 2 || s.id === 7 });
        else if (s.id === 1) walk(bytes.subarray(s.payloadStart, s.end), start, 'core');
        else if (s.id === 4) walk(bytes.subarray(s.payloadStart, s.end), start, 'component');
        else spans.push({ start, end, checked: [2, 5, 6, 10, 11].includes(s.id) });
      }
    };
    walk(component, 0, 'component');
    const sites: { at: number; len: number; checked: boolean }[] = [];
    for (const n of new Set(names)) {
      const needle = name(n);
      for (let i = component.indexOf(needle[0]!); i >= 0 && i + needle.length <= component.length; i = component.indexOf(needle[0]!, i + 1)) {
        if (!needle.every((v, k) => component[i + k] === v)) continue;
        const span = spans.find((sp) => i >= sp.start && i + needle.length <= sp.end);
        if (span !== undefined) sites.push({ at: i + needle.length - utf8.encode(n).length, len: utf8.encode(n).length, checked: span.checked });
      }
    }
    return sites;
  }

  it.each(['echo', 'vault'])(
    'fuzz: every byte of every name in %s.component.wasm changed to a quote, backslash, line break, space, brace, NUL or a non-UTF-8 byte is refused where jco can see it, and never crashes',
    (n) => {
      const real = new Uint8Array(readFileSync(`enclave-modules/${n}/build/${n}.component.wasm`));
      const info = readComponentInfo(real);
      const names = [
        ...info.imports.map((i) => i.name),
        ...info.exports.map((e) => e.name),
        ...info.coreModuleInfo.flatMap((m) => [...m.imports.flatMap((i) => [i.module, i.name]), ...m.exports.map((e) => e.name)]),
        'actual',
        'shim',
        'import-func-call',
        'import-type-error',
        'call',
        'failure',
        'policy',
        'error',
      ].filter((x) => x.length >= 3);
      const sites = nameSites(real, names);
      expect(sites.filter((s) => s.checked).length).toBeGreaterThan(10);
      const copy = new Uint8Array(real);
      let refusedCount = 0;
      for (const site of sites) {
        for (let k = 0; k < site.len; k++) {
          const i = site.at + k;
          for (const v of [0x27, 0x22, 0x5c, 0x0a, 0x20, 0x7b, 0x28, 0x2b, 0x00, 0x80, 0xff]) {
            copy[i] = v;
            const got = outcome(() => readComponentInfo(copy));
            if (site.checked) expect(got, `${n}: byte ${i} = ${hex2(v)} in a checked name`).toBe('invalid_module');
            else expect(['ok', 'invalid_module', 'memory_limit'], `${n}: byte ${i} = ${hex2(v)}: ${got}`).toContain(got);
            if (got === 'invalid_module') refusedCount++;
          }
          copy[i] = real[i]!;
        }
      }
      expect(refusedCount).toBeGreaterThan(0);
      expect(copy).toEqual(real);
    },
  );
});
