/**
 * Typed clients from contracts (host/contract-types.ts, `enclave types`, `EnclaveHandle<Ops>`):
 * the generated types are checked by the TypeScript compiler (strict) against snippets a caller
 * would write, the args types against the host's own check (a fast-check property: the compiler
 * accepts a value exactly when `encodeCall` does), the reply types against what the bundled
 * modules really return, and hostile names in a contract against injection.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import fc from 'fast-check';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contractOf, contractTypes, tsString, typeBaseName } from '../host/contract-types.js';
import { compileEnclave, createWorkerEnclave, EnclaveError, loadEnclave, parseContract, type Contract, type EnclaveHandle, type Shape } from '../host/index.js';
import { compileShape } from '../runtime/contract.js';
import { createPackr, encodeCall, requestFrame } from '../runtime/marshal.js';

const root = fileURLToPath(new URL('..', import.meta.url));
/** Where the snippets live (virtual files: nothing is written there). */
const dir = `${root}test/__contract-types/`;
const MODULES = {
  counter: `${root}enclave-modules/counter/build/counter.wasm`,
  echo: `${root}enclave-modules/echo/build/echo.wasm`,
  crypto: `${root}enclave-modules/crypto/build/crypto.wasm`,
};

/**
 * A consumer's strict compiler options; the snippets import 'enclave' as a user does (the package
 * resolves itself by name: its dist/ types, built by the global setup).
 */
function compilerOptions(extra: ts.CompilerOptions = {}): ts.CompilerOptions {
  return {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2022.d.ts'],
    types: ['node'],
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    noEmit: true,
    ...extra,
  };
}

interface Diagnostic {
  readonly line: number;
  readonly message: string;
}

let previous: ts.Program | undefined;

/** Type-checks virtual files (name -> code, under test/__contract-types/) in one program; the diagnostics of each. */
function typeCheck(files: Record<string, string>, extra: ts.CompilerOptions = {}): Record<string, Diagnostic[]> {
  const virtual = new Map(Object.entries(files).map(([name, code]) => [`${dir}${name}`, code]));
  const options = compilerOptions(extra);
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, language, ...rest) => {
    const code = virtual.get(file);
    return code !== undefined ? ts.createSourceFile(file, code, language) : getSourceFile(file, language, ...rest);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => virtual.has(file) || fileExists(file);
  const directoryExists = host.directoryExists?.bind(host);
  host.directoryExists = (d) => `${d}/` === dir || d === dir || (directoryExists?.(d) ?? true);
  const readFile = host.readFile.bind(host);
  host.readFile = (file) => virtual.get(file) ?? readFile(file);
  const program = ts.createProgram([...virtual.keys()], options, host, previous);
  previous = program;
  const out: Record<string, Diagnostic[]> = Object.fromEntries(Object.keys(files).map((name) => [name, []]));
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const name = d.file?.fileName.startsWith(dir) ? d.file.fileName.slice(dir.length) : `(elsewhere) ${d.file?.fileName ?? ''}`;
    const line = d.file === undefined || d.start === undefined ? 0 : d.file.getLineAndCharacterOfPosition(d.start).line + 1;
    (out[name] ??= []).push({ line, message: ts.flattenDiagnosticMessageText(d.messageText, '\n') });
  }
  return out;
}

const contracts: Record<keyof typeof MODULES, Contract> = {} as never;
beforeAll(async () => {
  for (const [name, file] of Object.entries(MODULES)) contracts[name as keyof typeof MODULES] = contractOf(await readFile(file));
});

/** A contract with one op of each kind of shape. */
const SHAPES = parseContract({
  abi: 1,
  name: 'all-shapes',
  version: '1',
  svn: 0,
  ops: {
    nil_op: { args: { type: 'nil' }, reply: { type: 'nil' } },
    any_op: { args: { type: 'any' }, reply: { type: 'any' } },
    int_op: { args: { type: 'int' }, reply: { type: 'int' } },
    bounded: { args: { type: 'int', min: 0, max: 10 }, reply: { type: 'int', min: -(2 ** 53) + 1, max: 2 ** 53 - 1 } },
    half_bounded: { args: { type: 'int', min: 0 }, reply: { type: 'int', min: 0 } },
    float_op: { args: { type: 'float' }, reply: { type: 'float', nullable: true } },
    str_op: { args: { type: 'str', maxLength: 4 }, reply: { type: 'str' } },
    bin_op: { args: { type: 'bin' }, reply: { type: 'bin' } },
    bool_op: { args: { type: 'bool', nullable: true }, reply: { type: 'bool' } },
    list: { args: { type: 'array', items: { type: 'str' } }, reply: { type: 'array', items: { type: 'int', nullable: true } } },
    list_any: { args: { type: 'array' }, reply: { type: 'array' } },
    fields: {
      args: {
        type: 'map',
        fields: { a: { type: 'str' }, b: { type: 'int', nullable: true }, c: { type: 'bool' }, d: { type: 'any' } },
        required: ['a', 'b', 'd'],
      },
      reply: { type: 'map', fields: { a: { type: 'str' }, c: { type: 'bool' } }, required: ['a'] },
    },
    open_map: { args: { type: 'map', fields: { a: { type: 'str' } }, additional: true }, reply: { type: 'map', additional: true } },
    empty_map: { args: { type: 'map' }, reply: { type: 'map' } },
    nested: {
      args: { type: 'map', fields: { rows: { type: 'array', items: { type: 'map', fields: { x: { type: 'float' } }, nullable: true } } } },
      reply: { type: 'any', nullable: true },
    },
  },
});

describe('enclave types: the generated types, checked by the TypeScript compiler (strict)', () => {
  let diagnostics: Record<string, Diagnostic[]>;
  let exactDiagnostics: Record<string, Diagnostic[]>;

  beforeAll(() => {
    const files = {
      'counter.ts': contractTypes(contracts.counter),
      'echo.ts': contractTypes(contracts.echo),
      'crypto.ts': contractTypes(contracts.crypto),
      'shapes.ts': contractTypes(SHAPES),
      'counter-use.ts': `
import { compileEnclave, createWorkerEnclave, loadEnclave, type EnclaveHandle } from 'enclave';
import type { CounterEnclave, CounterOps } from './counter.js';
import type { EchoOps } from './echo.js';
export async function use(path: string): Promise<void> {
  const c = await loadEnclave<CounterOps>(path);
  const n: number | bigint = await c.call('incr', { by: 2 });
  await c.call('incr', { by: 2n });
  await c.call('incr', {});
  await c.call('incr');
  await c.call('incr', null);
  await c.call('incr', { by: 1 }, { session: 's' });
  const g: number | bigint = await c.call('get');
  const r: null = await c.call('reset');
  const h: EnclaveHandle<CounterOps> = c;
  // @ts-expect-error a handle typed by one contract is not one of another
  const other: EnclaveHandle<EchoOps> = c;
  const typed: CounterEnclave = await loadEnclave(path);
  const cast = (await loadEnclave(path)) as CounterEnclave;
  const w = await loadEnclave<CounterOps>(path, { isolation: 'worker' });
  await w.call('incr', { by: 1 });
  const cw = await createWorkerEnclave<CounterOps>(await compileEnclave(path));
  await cw.call('get');
  const created: CounterEnclave = (await compileEnclave(path)).create();
  const typedModule = await compileEnclave<CounterOps>(path);
  const made = typedModule.create({ state: 'per-call' });
  await made.call('incr', { by: 3 });
  const fromTyped = await createWorkerEnclave<CounterOps>(typedModule);
  // @ts-expect-error compileEnclave<Ops> types what its create() returns
  await made.call('incr', { by: 'x' });
  // @ts-expect-error and a worker made from it, typed again
  await fromTyped.call('nope');
  // @ts-expect-error by must be an integer, not a string
  await c.call('incr', { by: '2' });
  // @ts-expect-error no such op
  await c.call('decr');
  // @ts-expect-error a field the contract does not declare
  await c.call('incr', { by: 1, extra: true });
  // @ts-expect-error an int reply may be a bigint (beyond 2^53)
  const s: number = await c.call('get');
  // @ts-expect-error get takes no args (nil)
  await c.call('get', { by: 1 });
  // @ts-expect-error the worker handle is typed too
  await w.call('incr', { by: '2' });
  // @ts-expect-error so is createWorkerEnclave's
  await cw.call('incr', { by: [] });
  // @ts-expect-error so is a handle typed by annotation
  await typed.call('incr', { by: true });
  // @ts-expect-error one op at a time: a union of names could pass one op's args to another
  await c.call(Math.random() > 0.5 ? 'get' : 'reset');
  const name: string = 'incr';
  // @ts-expect-error a name the type checker does not know
  await c.call(name);
  void [n, g, r, h, other, cast, created, s];
}
// A typed handle goes wherever any handle is taken (a helper, an array); through that view its call is untyped.
function close(e: EnclaveHandle): Promise<void> {
  return e.call('anything', { whatever: [1] }).then(() => e.close());
}
export async function asAnyHandle(path: string): Promise<void> {
  const c = await loadEnclave<CounterOps>(path);
  const w = await loadEnclave<CounterOps>(path, { isolation: 'worker' });
  const e = await loadEnclave<EchoOps>(path);
  const made = (await compileEnclave<CounterOps>(path)).create();
  const cw = await createWorkerEnclave<CounterOps>(await compileEnclave(path));
  const declared: CounterEnclave = c;
  const untyped = await loadEnclave(path);
  const all: EnclaveHandle[] = [c, w, e, made, cw, declared, untyped];
  const anyOps: EnclaveHandle<any> = c;
  await close(c);
  await Promise.all(all.map(close));
  const plain: EnclaveHandle = c;
  const x: number = await plain.call<number>('decr', { by: 'not an int' });
  const y: unknown = await plain.call('incr', new Date());
  await anyOps.call('nope');
  void [x, y];
}
export async function untyped(path: string): Promise<void> {
  // No Ops: today's signature, for every existing caller.
  const u = await loadEnclave(path);
  const x: number = await u.call<number>('anything', { whatever: [1, 2] });
  const y: unknown = await u.call('x');
  const handle: EnclaveHandle = u;
  void [x, y, handle];
}
`,
      'echo-use.ts': `
import { loadEnclave } from 'enclave';
import type { EchoOps } from './echo.js';
export async function use(path: string): Promise<void> {
  const e = await loadEnclave<EchoOps>(path);
  await e.call('echo');
  await e.call('echo', { a: [1, 2n, null, undefined, 'x', new Uint8Array(2), Buffer.from('b'), { deep: { er: true } }] });
  const nested: readonly (readonly number[])[] = [[1], [2]];
  await e.call('echo', nested);
  const reply = await e.call('echo', 1);
  if (typeof reply === 'object' && reply !== null && !(reply instanceof Uint8Array) && !Array.isArray(reply)) {
    const inner: null | boolean | number | bigint | string | Uint8Array | object = reply['k'] ?? null;
    void inner;
  }
  // @ts-expect-error a Date is not plain data (the host refuses it)
  await e.call('echo', new Date());
  // @ts-expect-error a Map is not plain data
  await e.call('echo', new Map([['a', 1]]));
  // @ts-expect-error a function is not plain data
  await e.call('echo', () => 1);
  // @ts-expect-error a symbol is not plain data
  await e.call('echo', { s: Symbol('x') });
  // @ts-expect-error a Uint16Array is not bytes
  await e.call('echo', new Uint16Array(2));
  // @ts-expect-error a reply of any is not a string
  const s: string = await e.call('echo', 'x');
  void s;
}
`,
      'crypto-use.ts': `
import { loadEnclave } from 'enclave';
import type { CryptoOps } from './crypto.js';
export async function use(path: string): Promise<void> {
  const c = await loadEnclave<CryptoOps>(path);
  const digest: Uint8Array = await c.call('sha256', { data: Buffer.from('abc') });
  const ok: boolean = await c.call('ed25519_verify', { public_key: digest, message: digest, signature: digest });
  const opened: Uint8Array | null = await c.call('aead_open', { alg: 'x', key: digest, nonce: digest, aad: digest, sealed: digest });
  await c.call('hkdf_sha256', { ikm: digest, salt: digest, info: digest, length: 32 });
  // @ts-expect-error data must be bytes, not a string
  await c.call('sha256', { data: 'abc' });
  // @ts-expect-error data is required
  await c.call('sha256', {});
  // @ts-expect-error the args are a map: not optional
  await c.call('sha256');
  // @ts-expect-error aead_open may reply nil
  const p: Uint8Array = await c.call('aead_open', { alg: 'x', key: digest, nonce: digest, aad: digest, sealed: digest });
  // @ts-expect-error a number[] is not bytes
  await c.call('sha512', { data: [1, 2] });
  void [ok, opened, p];
}
`,
      'shapes-use.ts': `
import type { AllShapesOps as S } from './shapes.js';
type A<K extends keyof S> = S[K]['args'];
type R<K extends keyof S> = S[K]['reply'];
export const ok = {
  nil: [null, undefined] satisfies A<'nil_op'>[],
  int: [1, -1, 2n ** 63n] satisfies A<'int_op'>[],
  float: [1.5] satisfies A<'float_op'>[],
  bool: [true, null, undefined] satisfies A<'bool_op'>[],
  list: [['a'], []] satisfies A<'list'>[],
  listAny: [[1, 'a', null, undefined, [new Uint8Array(1)]]] satisfies A<'list_any'>[],
  fields: [{ a: 'x', b: null, d: 1 }, { a: 'x', b: 1, c: true, d: [] }, { a: 'x', b: 2n, c: undefined, d: null }] satisfies A<'fields'>[],
  open: [{ a: 'x', z: 1 }, { a: 'x', z: undefined }] satisfies A<'open_map'>[],
  empty: [{}] satisfies A<'empty_map'>[],
  nested: [{ rows: [{ x: 1.5 }, null, undefined] }] satisfies A<'nested'>[],
};
// @ts-expect-error nil takes nothing else
export const e1: A<'nil_op'> = 0;
// @ts-expect-error float refuses a bigint
export const e2: A<'float_op'> = 1n;
// @ts-expect-error str
export const e3: A<'str_op'> = 1;
// @ts-expect-error bin
export const e4: A<'bin_op'> = 'ab';
// @ts-expect-error list items are strings
export const e5: A<'list'> = [1];
// @ts-expect-error list items are not nullable
export const e6: A<'list'> = [undefined];
// @ts-expect-error a required field may not be left out
export const e7: A<'fields'> = { a: 'x', b: 1 };
// @ts-expect-error a required nullable field may be null, not undefined (undefined is absent)
export const e8: A<'fields'> = { a: 'x', b: undefined, d: 1 };
// @ts-expect-error a required any field may not be undefined either
export const e9: A<'fields'> = { a: 'x', b: 1, d: undefined };
// @ts-expect-error an undeclared field
export const e10: A<'fields'> = { a: 'x', b: 1, d: 1, z: 1 };
// @ts-expect-error an empty map takes no field, not even an undefined one (the check lists keys)
export const e11: A<'empty_map'> = { z: undefined };
// @ts-expect-error a map is not an array
export const e12: A<'open_map'> = [];
// @ts-expect-error a non-nullable map is not null
export const e13: A<'fields'> = null;
// @ts-expect-error nested items are maps of float
export const e14: A<'nested'> = { rows: [{ x: 'a' }] };
// @ts-expect-error an empty map is not a string
export const e15: A<'empty_map'> = 'abc';
export const replies = {
  nil: null satisfies R<'nil_op'>,
  int: 2n ** 60n satisfies R<'int_op'>,
  bounded: 1 satisfies R<'bounded'>,
  list: [1, null, 2n] satisfies R<'list'>,
  fields: { a: 'x' } satisfies R<'fields'>,
  open: { any: [new Uint8Array(1)] } satisfies R<'open_map'>,
  empty: {} satisfies R<'empty_map'>,
  float: null satisfies R<'float_op'>,
};
// @ts-expect-error a reply int bounded within ±(2^53-1) is a number, never a bigint
export const r1: R<'bounded'> = 1n;
// @ts-expect-error a half-bounded reply int may be a bigint: not a number only
export const r2: number = null as unknown as R<'half_bounded'>;
// @ts-expect-error a reply nil is null, never undefined
export const r3: R<'nil_op'> = undefined;
`,
    };
    diagnostics = typeCheck(files);
    // The generated optional fields say \`| undefined\` themselves: they hold under exactOptionalPropertyTypes too.
    exactDiagnostics = typeCheck(files, { exactOptionalPropertyTypes: true });
  }, 120_000);

  for (const file of ['counter.ts', 'echo.ts', 'crypto.ts', 'shapes.ts', 'counter-use.ts', 'echo-use.ts', 'crypto-use.ts', 'shapes-use.ts']) {
    it(`${file}: every correct call compiles and every wrong one is an error (@ts-expect-error)`, () => {
      expect(diagnostics[file]).toEqual([]);
      expect(exactDiagnostics[file]).toEqual([]);
    });
  }

  it('nothing else in the program has errors (the snippets resolved "enclave")', () => {
    expect(Object.keys(diagnostics).filter((name) => name.startsWith('(elsewhere)'))).toEqual([]);
  });

  it('the @ts-expect-error lines are errors without their directive (the check can fail)', () => {
    // Drop every directive of counter-use.ts: each line it covered must now be an error.
    const files = {
      'counter.ts': contractTypes(contracts.counter),
      'probe.ts': `
import { loadEnclave } from 'enclave';
import type { CounterOps } from './counter.js';
export async function probe(path: string): Promise<void> {
  const c = await loadEnclave<CounterOps>(path);
  await c.call('incr', { by: '2' });
  await c.call('decr');
  await c.call('incr', { by: 1, extra: true });
}
`,
    };
    const found = typeCheck(files)['probe.ts']!;
    expect(found.map((d) => d.line)).toEqual([6, 7, 8]);
  }, 60_000);
});

describe('enclave types: what a generated file looks like', () => {
  it('names the types after the contract and imports only what it uses from "enclave"', () => {
    const text = contractTypes(contracts.counter);
    expect(text).toContain('export interface CounterOps {');
    expect(text).toContain('export type CounterEnclave = EnclaveHandle<CounterOps>;');
    expect(text).toContain('import type { EnclaveHandle } from "enclave";');
    expect(contractTypes(contracts.echo)).toContain('import type { ArgValue, EnclaveHandle, ReplyValue } from "enclave";');
    expect(typeBaseName('my-kv-2')).toBe('MyKv2');
    expect(contractTypes(contracts.counter, { name: 'Tally' })).toContain('export type TallyEnclave = EnclaveHandle<TallyOps>;');
  });

  it('refuses a --name that is not a PascalCase identifier, and an import it cannot quote', () => {
    for (const name of ['kv', 'Kv Ops', 'Kv;', 'Kv*/', 'K\u2028v', '', '1Kv', 'Ks'.repeat(40)]) {
      expect(() => contractTypes(contracts.counter, { name }), name).toThrow(expect.objectContaining({ code: 'usage' }) as unknown as Error);
    }
    expect(() => contractTypes(contracts.counter, { from: "enclave'; declare" })).toThrow(EnclaveError);
  });

  it('refuses a contract whose args types would double at each level (maps with additional, fields named like Object members)', () => {
    // Each level's index repeats the type of its field `x` (which admits Object['toString'] below):
    // 32 levels, a contract of under 3 KB, would be 2^32 copies of the innermost type.
    let shape: Record<string, unknown> = { type: 'nil' };
    for (let i = 0; i < 32; i++) shape = { type: 'map', additional: true, fields: { toString: { type: 'nil' }, x: shape }, required: ['x'] };
    const hostile = parseContract({ abi: 1, name: 'deep', version: '1.0.0', svn: 1, ops: { o: { args: shape } } });
    expect(() => contractTypes(hostile)).toThrow(expect.objectContaining({ code: 'invalid_contract' }) as unknown as Error);
    // Nor many ops each just under the bound (a 1 MiB contract holds hundreds: gigabytes of text).
    let wide: Record<string, unknown> = { type: 'nil' };
    for (let i = 0; i < 12; i++) wide = { type: 'map', additional: true, fields: { toString: { type: 'nil' }, x: wide }, required: ['x'] };
    const ops = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`o${i}`, { args: wide }]));
    const many = parseContract({ abi: 1, name: 'wide', version: '1.0.0', svn: 1, ops });
    expect(() => contractTypes(many)).toThrow(expect.objectContaining({ code: 'invalid_contract' }) as unknown as Error);
    // A few such levels are still written (and their text grows only as the contract does).
    let small: Record<string, unknown> = { type: 'nil' };
    for (let i = 0; i < 3; i++) small = { type: 'map', additional: true, fields: { toString: { type: 'nil' }, x: small }, required: ['x'] };
    expect(contractTypes(parseContract({ abi: 1, name: 'deep', version: '1.0.0', svn: 1, ops: { o: { args: small } } }))).toContain('Object["toString"]');
  });

  it('is the same text for the same contract (reproducible)', () => {
    expect(contractTypes(SHAPES)).toBe(contractTypes(parseContract(JSON.parse(JSON.stringify(SHAPES)))));
  });
});

describe('enclave types: hostile names in a contract', () => {
  const HOSTILE = [
    '*/ declare const pwned: 1; /*',
    '"; export const x = 1; "',
    "'; } export const y = 2; { '",
    'line\nbreak',
    'para\u2028graph\u2029',
    'back\\slash',
    '\ud800',
    '\u202e rtl',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    '',
    '} }; export default 1; //',
    '${injection}',
    '<\/script>',
  ];
  const SENDABLE = HOSTILE.filter((n) => !/\p{Cs}/u.test(n));
  const contract = parseContract({
    abi: 1,
    name: 'hostile',
    version: '*/ 1\n2 \u2028 "\'',
    svn: 0,
    ops: {
      op: {
        args: { type: 'map', fields: Object.fromEntries(HOSTILE.map((n) => [n, { type: 'str' }])), required: [] },
        reply: { type: 'map', fields: Object.fromEntries(HOSTILE.map((n) => [n, { type: 'int', nullable: true }])), required: [] },
      },
    },
  });
  const text = contractTypes(contract);

  it('writes printable ASCII only, one declaration per statement', () => {
    expect(text).toMatch(/^[\x20-\x7e\n]*$/);
    const file = ts.createSourceFile('h.ts', text, ts.ScriptTarget.ES2022, true);
    expect(file.statements.map((s) => ts.SyntaxKind[s.kind])).toEqual(['ImportDeclaration', 'InterfaceDeclaration', 'TypeAliasDeclaration']);
    // No comment holds contract text (it is in string literals only): the comments are the
    // generator's own, the same as for a harmless contract, but for the header's escaped version.
    const comments = (source: string): string[] => {
      const scanner = ts.createScanner(ts.ScriptTarget.ES2022, false, ts.LanguageVariant.Standard, source);
      const found: string[] = [];
      for (let kind = scanner.scan(); kind !== ts.SyntaxKind.EndOfFileToken; kind = scanner.scan()) {
        if (kind === ts.SyntaxKind.SingleLineCommentTrivia || kind === ts.SyntaxKind.MultiLineCommentTrivia) found.push(scanner.getTokenText());
      }
      return found;
    };
    const harmless = contractTypes(parseContract({ abi: 1, name: 'hostile', version: 'v', svn: 0, ops: { op: { args: { type: 'map', fields: { a: { type: 'str' } } } } } }));
    const [header, ...rest] = comments(text);
    const [harmlessHeader, ...harmlessRest] = comments(harmless);
    expect(rest).toEqual(harmlessRest);
    expect(header).toBe(harmlessHeader!.replace('"v"', '"*/ 1\\n2 \\u2028 \\"\'"'));
  });

  it('keeps every name exactly, as a quoted property key', () => {
    const file = ts.createSourceFile('h.ts', text, ts.ScriptTarget.ES2022, true);
    const ops = file.statements[1] as ts.InterfaceDeclaration;
    expect(ops.members.map((m) => (m.name as ts.StringLiteral).text)).toEqual(['op']);
    const op = (ops.members[0] as ts.PropertySignature).type as ts.TypeLiteralNode;
    const namesOf = (member: string): string[] => {
      const sig = op.members.find((m) => (m.name as ts.Identifier).text === member) as ts.PropertySignature;
      return (sig.type as ts.TypeLiteralNode).members.map((m) => {
        expect(ts.isStringLiteral(m.name!)).toBe(true);
        return (m.name as ts.StringLiteral).text;
      });
    };
    expect(namesOf('args')).toEqual(HOSTILE);
    expect(namesOf('reply')).toEqual(HOSTILE);
  });

  it('compiles, and a call with those names type-checks against them', () => {
    const found = typeCheck({
      'hostile.ts': text,
      'hostile-use.ts': `
import { loadEnclave } from 'enclave';
import type { HostileOps } from './hostile.js';
export async function use(path: string): Promise<void> {
  const h = await loadEnclave<HostileOps>(path);
  await h.call('op', { ${SENDABLE.map((n) => `${tsString(n)}: 'v'`).join(', ')} });
  await h.call('op', { ${tsString('\ud800')}: undefined });
  // @ts-expect-error each field is a string
  await h.call('op', { ${tsString(HOSTILE[0]!)}: 1 });
  // @ts-expect-error a key with a lone surrogate cannot be sent (the host refuses it): absent only
  await h.call('op', { ${tsString('\ud800')}: 'v' });
}
`,
    });
    expect(found['hostile.ts']).toEqual([]);
    expect(found['hostile-use.ts']).toEqual([]);
  }, 60_000);
});

describe('enclave types: the args types agree with the host check (property)', () => {
  const KEYS = ['a', 'b', 'constructor'] as const;
  type Plain = null | undefined | boolean | number | bigint | string | Uint8Array | Plain[] | { [k: string]: Plain };

  // Plain data of the kinds TypeScript can tell apart: integers only (a fraction in an int, a
  // range or a length are run-time checks the types do not claim to make).
  const plain: fc.Arbitrary<Plain> = fc.letrec<{ v: Plain }>((tie) => ({
    v: fc.oneof(
      { maxDepth: 3, depthIdentifier: 'plain' },
      fc.constantFrom(null, undefined, true, false),
      fc.integer({ min: -1000, max: 1000 }),
      fc.bigInt({ min: -1000n, max: 1000n }),
      fc.string({ maxLength: 3 }),
      fc.integer({ min: 0, max: 3 }).map((n) => new Uint8Array(n)),
      fc.array(tie('v'), { maxLength: 3 }),
      fc.dictionary(fc.constantFrom(...KEYS, 'z'), tie('v'), { maxKeys: 3 }),
    ),
  })).v;

  const shape: fc.Arbitrary<Shape> = fc.letrec<{ s: Shape }>((tie) => ({
    s: fc.oneof(
      { maxDepth: 3, depthIdentifier: 'shape' },
      fc.record({ type: fc.constantFrom('any', 'nil', 'bool', 'int', 'float', 'str', 'bin'), nullable: fc.boolean() }) as fc.Arbitrary<Shape>,
      fc.record({ type: fc.constant('array'), items: fc.option(tie('s'), { nil: undefined }), nullable: fc.boolean() }).map(
        ({ items, ...rest }) => (items === undefined ? rest : { ...rest, items }) as Shape,
      ),
      fc
        .record({ fields: fc.dictionary(fc.constantFrom(...KEYS), tie('s'), { maxKeys: 3 }), additional: fc.boolean(), nullable: fc.boolean(), all: fc.boolean() })
        .chain(({ fields, all, ...rest }) =>
          (all ? fc.constant(undefined) : fc.subarray(Object.keys(fields))).map(
            (required) => ({ type: 'map', fields, ...rest, ...(required === undefined ? {} : { required }) }) as Shape,
          ),
        ),
    ),
  })).s;

  /** A value built to nearly fit the shape: each part fits, or is left out, undefined, null, or anything. */
  function near(s: Shape, depth = 0): fc.Arbitrary<Plain> {
    const fits = ((): fc.Arbitrary<Plain> => {
      switch (s.type) {
        case 'any':
          return plain;
        case 'nil':
          return fc.constantFrom(null, undefined);
        case 'bool':
          return fc.boolean();
        case 'int':
          return fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }));
        case 'float':
          return fc.double({ noNaN: true, noDefaultInfinity: true });
        case 'str':
          return fc.string({ maxLength: 3 });
        case 'bin':
          return fc.integer({ min: 0, max: 3 }).map((n) => new Uint8Array(n));
        case 'array':
          return fc.array(s.items === undefined || depth > 4 ? plain : near(s.items, depth + 1), { maxLength: 3 });
        case 'map': {
          const fields = Object.entries(s.fields ?? {});
          const field = (f: Shape): fc.Arbitrary<Plain | typeof ABSENT> =>
            fc.oneof({ weight: 6, arbitrary: depth > 4 ? plain : near(f, depth + 1) }, { weight: 1, arbitrary: fc.constant(ABSENT) }, { weight: 1, arbitrary: fc.constant(undefined) });
          return fc
            .tuple(fc.tuple(...fields.map(([, f]) => field(f))), fc.option(plain, { freq: 4 }).map((z) => (z === null ? ABSENT : z)))
            .map(([values, extra]) => {
              const obj: Record<string, Plain> = {};
              fields.forEach(([name], i) => {
                if (values[i] !== ABSENT) obj[name] = values[i] as Plain;
              });
              if (extra !== ABSENT) obj.z = extra as Plain;
              return obj;
            });
        }
      }
    })();
    return fc.oneof({ weight: 5, arbitrary: fits }, { weight: 1, arbitrary: plain });
  }
  const ABSENT: unique symbol = Symbol('absent');

  /** The value as a TypeScript expression (a fresh literal: object literals get the excess-property check, as at a call). */
  function literal(v: Plain): string {
    if (v === null) return 'null';
    if (v === undefined) return 'undefined';
    if (typeof v === 'bigint') return `${v}n`;
    if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
    if (typeof v === 'string') return tsString(v);
    if (typeof v === 'boolean') return String(v);
    if (v instanceof Uint8Array) return `new Uint8Array(${v.length})`;
    if (Array.isArray(v)) return `[${v.map(literal).join(', ')}]`;
    return `{ ${Object.entries(v).map(([k, x]) => `${tsString(k)}: ${literal(x)}`).join(', ')} }`;
  }

  const limits = { requestBytes: 1 << 20, depth: 32 };
  const hostAccepts = (s: Shape, v: Plain): boolean => {
    try {
      encodeCall(createPackr(), 'p', requestFrame('p'), compileShape(s), v, limits);
      return true;
    } catch (err) {
      if (!(err instanceof EnclaveError) || err.code !== 'invalid_args') throw err;
      return false;
    }
  };

  it('TypeScript accepts a value exactly when the host does', () => {
    const batch = fc.array(shape.chain((s) => fc.tuple(fc.constant(s), near(s))), { minLength: 60, maxLength: 60 });
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(batch, (pairs) => {
        const contract = parseContract({ abi: 1, name: 'prop', version: '1', svn: 0, ops: Object.fromEntries(pairs.map(([s], i) => [`p${i}`, { args: s }])) });
        const lines = pairs.map(([, v], i) => `export const v${i}: A<'p${i}'> = ${literal(v)};`);
        const found = typeCheck({
          'prop.ts': contractTypes(contract),
          'prop-use.ts': `import type { PropOps } from './prop.js';\ntype A<K extends keyof PropOps> = PropOps[K]['args'];\n${lines.join('\n')}\n`,
        });
        expect(found['prop.ts']).toEqual([]);
        const badLines = new Set(found['prop-use.ts']!.map((d) => d.line));
        pairs.forEach(([s, v], i) => {
          const host = hostAccepts(contract.ops[`p${i}`]!.args, v);
          const typed = !badLines.has(i + 3);
          if (host) accepted++;
          else refused++;
          expect({ shape: s, value: literal(v), typed }).toEqual({ shape: s, value: literal(v), typed: host });
        });
      }),
      { numRuns: 4, endOnFailure: true },
    );
    // Both answers were exercised.
    expect(accepted).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(20);
  }, 240_000);
});

describe('enclave types: replies as the runtime returns them', () => {
  const opened: EnclaveHandle[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((e) => e.close()));
  });

  it('counter: int replies are number | bigint, nil is null (both isolation modes)', async () => {
    type CounterOps = {
      incr: { args: { readonly by?: number | bigint | undefined } | null | undefined; reply: number | bigint };
      get: { args: null | undefined; reply: number | bigint };
      reset: { args: null | undefined; reply: null };
    };
    // The generated CounterOps says the same (checked as text: the test's own alias must not drift).
    expect(contractTypes(contracts.counter).replace(/\s+/g, ' ')).toContain(
      '"incr": { args: { readonly "by"?: number | bigint | undefined; } | null | undefined; reply: number | bigint; };',
    );
    for (const isolation of ['in-process', 'worker'] as const) {
      const c = await loadEnclave<CounterOps>(MODULES.counter, { isolation });
      opened.push(c);
      const n = await c.call('incr', { by: Number.MAX_SAFE_INTEGER });
      expect(n).toBe(Number.MAX_SAFE_INTEGER);
      const big = await c.call('incr', { by: Number.MAX_SAFE_INTEGER });
      expect(typeof big).toBe('bigint'); // beyond 2^53: a bigint, as the type says it may be
      expect(await c.call('reset')).toBeNull();
      expect(typeof (await c.call('get'))).toBe('number');
    }
  }, 60_000);

  it('crypto: bin replies are Uint8Array (not Buffer), bool replies booleans, a nullable bin null', async () => {
    const mod = await compileEnclave(MODULES.crypto);
    const c = await createWorkerEnclave<{
      sha256: { args: { readonly data: Uint8Array }; reply: Uint8Array };
      equal_bytes: { args: { readonly a: Uint8Array; readonly b: Uint8Array }; reply: boolean };
      aead_open: {
        args: { readonly alg: string; readonly key: Uint8Array; readonly nonce: Uint8Array; readonly aad: Uint8Array; readonly sealed: Uint8Array };
        reply: Uint8Array | null;
      };
    }>(mod);
    opened.push(c);
    const digest = await c.call('sha256', { data: Buffer.from('abc') });
    expect(digest).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(digest)).toBe(false);
    expect(typeof (await c.call('equal_bytes', { a: digest, b: digest }))).toBe('boolean');
    const text = contractTypes(contracts.crypto).replace(/\s+/g, ' ');
    expect(text).toContain('"sha256": { args: { readonly "data": Uint8Array; }; reply: Uint8Array; };');
    expect(text).toContain('reply: Uint8Array | null;');
    const key = new Uint8Array(32);
    const opened1 = await c.call('aead_open', { alg: 'chacha20-poly1305', key, nonce: new Uint8Array(12), aad: new Uint8Array(0), sealed: new Uint8Array(16) }).catch((e: unknown) => e);
    expect(opened1 === null || opened1 instanceof EnclaveError).toBe(true);
  }, 60_000);

  it('echo: any replies are plain data (ReplyValue)', async () => {
    const e = await loadEnclave<{ echo: { args: unknown; reply: unknown } }>(MODULES.echo);
    opened.push(e);
    const reply = (await e.call('echo', { a: [1, 2n ** 60n, null, new Uint8Array(1)] })) as { a: unknown[] };
    expect(reply.a.map((x) => (x instanceof Uint8Array ? 'bin' : x === null ? 'null' : typeof x))).toEqual(['number', 'bigint', 'null', 'bin']);
  }, 60_000);

  it('a field whose name has a lone surrogate: the host refuses it present, as its type (never) does', async () => {
    const shape: Shape = { type: 'map', fields: { '\ud800': { type: 'str' }, ok: { type: 'str' } }, required: ['ok'] };
    const send = (v: unknown): unknown => {
      try {
        return encodeCall(createPackr(), 'p', requestFrame('p'), compileShape(shape), v, { requestBytes: 1024, depth: 8 }).end;
      } catch (err) {
        return (err as EnclaveError).code;
      }
    };
    expect(send({ ok: 'a', '\ud800': 'b' })).toBe('invalid_args');
    expect(typeof send({ ok: 'a' })).toBe('number');
    const text = contractTypes(parseContract({ abi: 1, name: 'x', version: '1', svn: 0, ops: { p: { args: shape } } }));
    expect(text).toContain('readonly "\\ud800"?: undefined;');
  });

  it('the typed call changes nothing at run time: the host still refuses what a cast let through', async () => {
    const c = await loadEnclave<{ incr: { args: { by: number }; reply: number } }>(MODULES.counter);
    opened.push(c);
    await expect(c.call('incr', { by: '2' } as unknown as { by: number })).rejects.toMatchObject({ code: 'invalid_args' });
  });
});

describe('enclave types (CLI)', () => {
  const exec = promisify(execFile);
  const CLI = `${root}dist/host/cli/main.js`;
  async function enclave(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await exec(process.execPath, [CLI, ...args]);
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('prints the types of a module, the same as of its contract.json or its folder', async () => {
    const fromModule = await enclave('types', MODULES.counter);
    expect(fromModule.code).toBe(0);
    expect(fromModule.stdout).toBe(contractTypes(contracts.counter));
    const fromJson = await enclave('types', `${root}enclave-modules/counter/contract.json`);
    expect(fromJson.stdout).toBe(fromModule.stdout);
    const fromDir = await enclave('types', `${root}enclave-modules/counter`);
    expect(fromDir.stdout).toBe(fromModule.stdout);
  }, 60_000);

  it('writes --out (making its folder) and --name', async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'enclave-types-'));
    const out = path.join(tmp, 'types', 'crypto.d.ts');
    const r = await enclave('types', MODULES.crypto, '--out', out, '--name', 'Crypt', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ out, ops: 'CryptOps', enclave: 'CryptEnclave' });
    expect(await readFile(out, 'utf8')).toBe(contractTypes(contracts.crypto, { name: 'Crypt' }));
  }, 60_000);

  it('fails clearly: a missing file (usage, exit 2, its path), not a contract (exit 1), a bad --name (exit 2)', async () => {
    const tmp = await mkdtemp(path.join(tmpdir(), 'enclave-types-'));
    const missing = await enclave('types', path.join(tmp, 'nope.wasm'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('error[usage]');
    expect(missing.stderr).toContain(path.join(tmp, 'nope.wasm'));
    await writeFile(path.join(tmp, 'bad.json'), '{"abi":1,"name":"Bad Name"}');
    const bad = await enclave('types', path.join(tmp, 'bad.json'), '--json');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stderr).error.code).toBe('invalid_contract');
    await writeFile(path.join(tmp, 'junk.bin'), Buffer.from([0xff, 0xfe, 0x00]));
    expect((await enclave('types', path.join(tmp, 'junk.bin'))).stderr).toContain('error[invalid_contract]');
    await writeFile(path.join(tmp, 'trunc.wasm'), Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01]));
    const trunc = await enclave('types', path.join(tmp, 'trunc.wasm'));
    expect(trunc.code).toBe(1);
    expect(trunc.stderr).toContain('error[invalid_module]');
    const name = await enclave('types', MODULES.counter, '--name', 'lower');
    expect(name.code).toBe(2);
    const unwritable = await enclave('types', MODULES.counter, '--out', tmp, '--json');
    expect(unwritable.code).toBe(2);
    expect(JSON.parse(unwritable.stderr).error).toMatchObject({ code: 'usage', message: expect.stringContaining(tmp) as unknown });
    const noContract = await enclave('types', tmp);
    expect(noContract.code).toBe(2);
    expect(noContract.stderr).toContain('contract.json');
  }, 60_000);
});
