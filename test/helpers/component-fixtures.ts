/**
 * Builds component enclaves from hand-written WAT core modules, the way any toolchain would:
 * `parse` (WAT to a core module) → `componentEmbed` (the world's WIT, `enclave` by default) →
 * `componentNew` → the contract appended as the component's top-level `enclave.contract` custom
 * section (id 0, LEB size, LEB name length, name, payload: the same framing as a core module's,
 * core/wasm-sections.ts `encodeCustomSection`). The fixtures live in test/fixtures/components/:
 * `<name>.wat` with `<name>.contract.json`.
 */
import { readFileSync } from 'node:fs';
import { componentEmbed, componentNew, parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { CONTRACT_SECTION, encodeCustomSection } from '../../core/index.js';

const DIR = new URL('../fixtures/components/', import.meta.url);

/** wit/enclave.wit, the world every component enclave implements. */
export const ENCLAVE_WIT = readFileSync(new URL('../../wit/enclave.wit', import.meta.url), 'utf8');

export interface ComponentBuild {
  /** The WIT source to embed (default {@link ENCLAVE_WIT}). */
  readonly witSource?: string;
  /** The world in it (default `enclave`). */
  readonly world?: string;
}

const built = new Map<string, Promise<Uint8Array>>();

/** A component from `wat` (a core module implementing the world), without a contract. Memoized. */
export function componentOf(wat: string, build: ComponentBuild = {}): Promise<Uint8Array> {
  const witSource = build.witSource ?? ENCLAVE_WIT;
  const world = build.world ?? 'enclave';
  const key = JSON.stringify([wat, witSource, world]);
  let bytes = built.get(key);
  if (bytes === undefined) {
    bytes = (async () => {
      const core = await parse(wat);
      const embedded = await componentEmbed({ binary: core, witSource, world, stringEncoding: 'utf8' });
      return componentNew(embedded);
    })();
    built.set(key, bytes);
  }
  return bytes;
}

/** `bytes` with `contract` (an object, or raw payload bytes) appended as a top-level `enclave.contract` section. */
export function withContract(bytes: Uint8Array, contract: object | Uint8Array): Uint8Array {
  const payload = contract instanceof Uint8Array ? contract : new TextEncoder().encode(JSON.stringify(contract));
  const section = encodeCustomSection(CONTRACT_SECTION, payload);
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}

/** A component enclave from `wat` with `contract` appended (none when undefined). */
export async function watComponent(wat: string, contract?: object | Uint8Array, build: ComponentBuild = {}): Promise<Uint8Array> {
  const bytes = await componentOf(wat, build);
  return contract === undefined ? bytes.slice() : withContract(bytes, contract);
}

/** test/fixtures/components/<name>.wat */
export function fixtureWat(name: string): string {
  return readFileSync(new URL(`${name}.wat`, DIR), 'utf8');
}

/** test/fixtures/components/<name>.contract.json, parsed (a fresh copy each time: edit it freely). */
export function fixtureContract(name: string): Record<string, any> {
  return JSON.parse(readFileSync(new URL(`${name}.contract.json`, DIR), 'utf8'));
}

/** A fixture component: `<name>.wat` with `<name>.contract.json`, or with `contract` instead. */
export async function componentFixture(name: string, contract: object = fixtureContract(name)): Promise<Uint8Array> {
  return watComponent(fixtureWat(name), contract);
}

/**
 * An echo implementing the world by hand as a core module: calls `random.fill` (32 bytes at 4) and
 * returns the result area at 16 (ok, the list's pointer and length read from 36 and 40). With
 * `clock` it also imports `clock.now` (unused).
 */
export function randomEchoWat(clock = false): string {
  return `(module
  (import "enclave:runtime/random@1.0.0" "fill" (func $fill (param i32 i32)))${clock ? '\n  (import "enclave:runtime/clock@1.0.0" "now" (func $now (result i64)))' : ''}
  (memory (export "memory") 2 4)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    global.get $bump local.set $p
    global.get $bump local.get 3 i32.add global.set $bump
    local.get $p)
  (func (export "enclave:runtime/handler@1.0.0#call") (param $p i32) (param $n i32) (result i32)
    (call $fill (i32.const 4) (i32.const 32))
    (i32.store8 (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (i32.load (i32.const 36)))
    (i32.store (i32.const 24) (i32.load (i32.const 40)))
    (i32.const 16)))`;
}

/**
 * A minimal well-formed component enclave: every call answers ok(nil). Pieces are replaceable for
 * hostile variants (`imports`: extra core imports; `memory`: the memory declaration; `body`: extra
 * functions). Pair it with {@link MINIMAL_COMPONENT_CONTRACT}.
 */
export function minimalComponentWat(parts: { imports?: string; memory?: string; body?: string } = {}): string {
  return `(module
    ${parts.imports ?? ''}
    ${parts.memory ?? '(memory (export "memory") 1 1)'}
    (global $bump (mut i32) (i32.const 0x1000))
    (data (i32.const 0x200) "\\c0")
    (func (export "cabi_realloc") (param i32 i32 i32) (param $size i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $bump))
      (global.set $bump (i32.add (global.get $bump) (local.get $size)))
      (local.get $p))
    (func (export "cabi_post_enclave:runtime/handler@1.0.0#call") (param i32)
      (global.set $bump (i32.const 0x1000)))
    (func (export "enclave:runtime/handler@1.0.0#call") (param i32 i32) (result i32)
      (i32.store8 (i32.const 0x100) (i32.const 0))
      (i32.store (i32.const 0x104) (i32.const 0x200))
      (i32.store (i32.const 0x108) (i32.const 1))
      (i32.const 0x100))
    ${parts.body ?? ''}
  )`;
}

/** The contract matching {@link minimalComponentWat}: one op `ping` replying nil. */
export const MINIMAL_COMPONENT_CONTRACT = {
  abi: 1,
  name: 'wat-minimal',
  version: '0.0.1',
  svn: 0,
  capabilities: [] as string[],
  limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1, fuel: 100_000 },
  ops: { ping: {} },
};

/**
 * A WIT source with the enclave world plus a world `beyond` that also imports
 * `wasi:random/random@0.2.0` (defined in a nested package): a component of it imports an
 * interface outside the enclave world, which the runtime refuses at load.
 */
export const BEYOND_WIT = `${ENCLAVE_WIT}
world beyond {
  import wasi:random/random@0.2.0;
  export handler;
}

package wasi:random@0.2.0 {
  interface random {
    get-random-u64: func() -> u64;
  }
}
`;

/** A component importing `wasi:random/random@0.2.0` beside the world: refused at load (`invalid_module`). */
export function beyondWorldComponent(contract: object = MINIMAL_COMPONENT_CONTRACT): Promise<Uint8Array> {
  const wat = minimalComponentWat({
    imports: '(import "wasi:random/random@0.2.0" "get-random-u64" (func (result i64)))',
  });
  return watComponent(wat, contract, { witSource: BEYOND_WIT, world: 'beyond' });
}

/**
 * A component importing `enclave:runtime/seal@1.0.0` (`seal-key`): with a contract that does not
 * declare `seal` (the default) it is refused at load (`capability_denied`).
 */
export function sealImportingComponent(contract: object = MINIMAL_COMPONENT_CONTRACT): Promise<Uint8Array> {
  const wat = minimalComponentWat({
    imports: '(import "enclave:runtime/seal@1.0.0" "seal-key" (func (param i32 i32)))',
  });
  return watComponent(wat, contract);
}

/** jco-transpile's output for `component`: the glue `component.js` (as text) and every file by name (the core modules as `.wasm`). */
export interface TranspiledComponent {
  readonly files: Record<string, Uint8Array>;
  readonly glue: string;
}

/**
 * Transpiles `component` with jco-transpile the way the tests run it: async instantiation, no WASI
 * shim, every core module a separate file, no error wrapping, no TypeScript declarations.
 */
export async function transpileComponent(component: Uint8Array): Promise<TranspiledComponent> {
  const { transpileBytes } = await import('@bytecodealliance/jco-transpile');
  const out = await transpileBytes(component, {
    name: 'component',
    instantiation: { tag: 'async' },
    wasiShim: false,
    base64Cutoff: 0,
    nodejsCompat: false,
    tlaCompat: false,
    emitTypescriptDeclarations: false,
    noComponentErrorWrapping: true,
  } as Parameters<typeof transpileBytes>[1]);
  const files = out.files as Record<string, Uint8Array>;
  return { files, glue: new TextDecoder().decode(files['component.js']) };
}

/** What {@link RawComponent.call} read from the result area. */
export type RawResult = { tag: 'ok'; bytes: Uint8Array } | { tag: 'err'; code: number; message: Uint8Array };

/** A component run by jco-transpile's glue alone, with no runtime/ code: to test a fixture itself. */
export interface RawComponent {
  /** Allocates with `cabi_realloc`, copies `request` in, calls the core handler export, reads the result area strictly, runs post-return. */
  call(request: Uint8Array): RawResult;
  readonly memory: WebAssembly.Memory;
}

/**
 * Instantiates `component` through `transpileBytes`' glue with `imports` (keyed as jco wants them:
 * `enclave:runtime/random` ... unversioned) and calls the handler's core export directly, as
 * docs/DESIGN of issue 14 decision 5 says the runtime does. Throws on anything malformed.
 */
export async function rawComponent(component: Uint8Array, imports: Record<string, Record<string, unknown>> = {}): Promise<RawComponent> {
  const { files, glue } = await transpileComponent(component);
  const mod = await import(`data:text/javascript;base64,${Buffer.from(glue).toString('base64')}`);
  const modules = new Map<string, WebAssembly.Module>();
  for (const [name, bytes] of Object.entries(files)) if (name.endsWith('.wasm')) modules.set(name, new WebAssembly.Module(bytes));
  let main: WebAssembly.Instance | undefined;
  mod.instantiate(
    (name: string) => modules.get(name),
    imports,
    (module: WebAssembly.Module, imp: WebAssembly.Imports) => {
      const instance = new WebAssembly.Instance(module, imp);
      if ('enclave:runtime/handler@1.0.0#call' in instance.exports) main = instance;
      return instance;
    },
  );
  if (main === undefined) throw new Error('no core instance exports the handler');
  const ex = main.exports as Record<string, any>;
  const memory = ex.memory as WebAssembly.Memory;
  return {
    memory,
    call(request) {
      const ptr = ex.cabi_realloc(0, 0, 1, request.length) >>> 0;
      new Uint8Array(memory.buffer, ptr, request.length).set(request);
      const ret = ex['enclave:runtime/handler@1.0.0#call'](ptr, request.length) >>> 0;
      const view = new DataView(memory.buffer);
      if (ret % 4 !== 0 || ret + 16 > memory.buffer.byteLength) throw new Error(`result area at ${ret}`);
      const disc = view.getUint8(ret);
      const slice = (p: number, n: number) => {
        if (p + n > memory.buffer.byteLength) throw new Error(`list [${p}, +${n}) outside memory`);
        return new Uint8Array(memory.buffer, p, n).slice();
      };
      let result: RawResult;
      if (disc === 0) result = { tag: 'ok', bytes: slice(view.getUint32(ret + 4, true), view.getUint32(ret + 8, true)) };
      else if (disc === 1) result = { tag: 'err', code: view.getUint8(ret + 4), message: slice(view.getUint32(ret + 8, true), view.getUint32(ret + 12, true)) };
      else throw new Error(`discriminant ${disc}`);
      ex['cabi_post_enclave:runtime/handler@1.0.0#call']?.(ret);
      return result;
    },
  };
}
