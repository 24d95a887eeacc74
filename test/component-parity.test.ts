/**
 * Parity of the two forms of one enclave: the echo built as a core module
 * (enclave-modules/echo/build/echo.wasm) and as a component (echo.component.wasm, the same
 * AssemblyScript sources in the SDK's component mode, `enclave build --component`). The same calls
 * must give identical replies (deep-equal) and identical error codes, in both isolation modes: a
 * caller cannot tell which form serves it. Each row also says what the reply must be, so a
 * difference that both forms shared would still fail.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnclaveError, isComponent } from '../core/index.js';
import type { EnclaveHandle } from '../host/index.js';
import { loadIn, MODES } from './helpers/modes.js';

const BUILD = new URL('../enclave-modules/echo/build/', import.meta.url);
const FORMS = [
  ['core', new URL('echo.wasm', BUILD)],
  ['component', new URL('echo.component.wasm', BUILD)],
] as const;

/** The echo contract's limits (enclave-modules/echo/contract.json). */
const REQUEST_BYTES = 1_050_000;
const DEPTH = 32;
/** Request bytes around a bin of n bytes: {op: "echo", args: bin32}: 1 + 3 + 5 + 5 + 5. */
const REQUEST_OVERHEAD = 19;

/** What a call gave: the value, or `{code, detail}` of the EnclaveError. */
type Outcome = { value: unknown } | { code: string; detail: string | undefined };

async function outcome(call: Promise<unknown>): Promise<Outcome> {
  try {
    return { value: await call };
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    return { code: err.code, detail: err.detail };
  }
}

/**
 * A large top-level bin as its length and digest: vitest's deep equality walks a typed array
 * element by element (seconds for a megabyte); equal digests are equal bytes. The type is kept:
 * a Buffer or another view would not be a Uint8Array's equal.
 */
function comparable(o: unknown): unknown {
  const v = (o as { value?: unknown }).value;
  if (!(v instanceof Uint8Array) || v.length < 4096) return o;
  return { value: { type: Object.getPrototypeOf(v).constructor.name, length: v.length, sha256: createHash('sha256').update(v).digest('hex') } };
}

/** `depth` arrays nested around 1: `nested(2)` is `[[1]]`. */
function nested(depth: number, wrap: (v: unknown) => unknown = (v) => [v]): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = wrap(v);
  return v;
}

const obj = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
const bin = (n: number) => new Uint8Array(n).map((_, i) => (i * 31 + 7) & 0xff);
const cyclic: Record<string, unknown> = {};
cyclic.self = cyclic;

/**
 * A row: a label, the op, the args, and what must come back: `echo` (the args, deep-equal),
 * `{value}` (that value), `{code}` (that error code).
 */
type Row = readonly [string, string, unknown, 'echo' | { value: unknown } | { code: string }];

const ROWS: Row[] = [
  // nil, bool, absent args
  ['nil', 'echo', null, 'echo'],
  ['no args', 'echo', undefined, { value: null }],
  ['true', 'echo', true, 'echo'],
  ['false', 'echo', false, 'echo'],
  // ints at every width boundary, both signs
  ...[0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1].map((n): Row => [`uint ${n}`, 'echo', n, 'echo']),
  ...[-1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53) + 1].map((n): Row => [`int ${n}`, 'echo', n, 'echo']),
  ['uint 2^53 as a bigint', 'echo', 2n ** 53n, { value: 2 ** 53 }],
  ['uint 2^63', 'echo', 2n ** 63n, 'echo'],
  ['uint 2^64 - 1', 'echo', 2n ** 64n - 1n, 'echo'],
  ['int -2^63', 'echo', -(2n ** 63n), 'echo'],
  ['-0 (sent as the integer 0)', 'echo', -0, { value: 0 }],
  // floats
  ...[0.5, -1.5, 1e308, 5e-324, -2.5e-10, Math.PI].map((f): Row => [`float ${f}`, 'echo', f, 'echo']),
  ['NaN', 'echo', NaN, 'echo'],
  ['Infinity', 'echo', Infinity, 'echo'],
  ['-Infinity', 'echo', -Infinity, 'echo'],
  // strings: every header width, unicode, a lone surrogate (sent as U+FFFD)
  ...[0, 1, 31, 32, 255, 256, 65535, 65536].map((n): Row => [`str of ${n} bytes`, 'echo', 'x'.repeat(n), 'echo']),
  ['unicode', 'echo', 'é ✓ 日本語 🦀 \u0000 \uFEFF', 'echo'],
  ['a lone surrogate', 'echo', 'a\uD800b', { value: 'a\uFFFDb' }],
  // bins: every header width
  ...[0, 1, 255, 256, 65535, 65536].map((n): Row => [`bin of ${n} bytes`, 'echo', bin(n), 'echo']),
  // arrays and maps: every header width, nesting
  ['empty array', 'echo', [], 'echo'],
  ['array of 15', 'echo', Array.from({ length: 15 }, (_, i) => i), 'echo'],
  ['array of 16', 'echo', Array.from({ length: 16 }, (_, i) => i), 'echo'],
  ['array of 1000', 'echo', Array.from({ length: 1000 }, (_, i) => i), 'echo'],
  ['empty map', 'echo', {}, 'echo'],
  ['map of 15', 'echo', obj(15), 'echo'],
  ['map of 16', 'echo', obj(16), 'echo'],
  ['map of 200', 'echo', obj(200), 'echo'],
  ['a __proto__ key', 'echo', JSON.parse('{"__proto__": 1, "a": {"__proto__": [2]}}'), 'echo'],
  ['unicode keys', 'echo', { 'é': 1, '🦀': [2], '': 3 }, 'echo'],
  ['mixed', 'echo', { a: [1, -2, 'three', { four: new Uint8Array([4]) }], b: null, c: [[[], {}]], d: 1.5, e: 2n ** 60n }, 'echo'],
  // depth: args start at level 2 (the envelope is level 1)
  [`arrays nested ${DEPTH - 1} deep (at the limit)`, 'echo', nested(DEPTH - 1), 'echo'],
  [`maps nested ${DEPTH - 1} deep (at the limit)`, 'echo', nested(DEPTH - 1, (v) => ({ v })), 'echo'],
  [`arrays nested ${DEPTH} deep (past it)`, 'echo', nested(DEPTH), { code: 'invalid_args' }],
  [`maps nested ${DEPTH} deep (past it)`, 'echo', nested(DEPTH, (v) => ({ v })), { code: 'invalid_args' }],
  // sizes near the byte limits: the request is the larger, so it bites first
  ['a bin filling requestBytes', 'echo', bin(REQUEST_BYTES - REQUEST_OVERHEAD), 'echo'],
  ['a bin one byte past requestBytes', 'echo', bin(REQUEST_BYTES - REQUEST_OVERHEAD + 1), { code: 'too_large' }],
  ['a str filling requestBytes', 'echo', 'y'.repeat(REQUEST_BYTES - REQUEST_OVERHEAD), 'echo'],
  // fuel: the echo spends about 1 400 units per int of an array and 15 000 per map entry (the
  // contract's 10 000 000 covers neither of these, by a wide margin either way); array32 and map32
  // headers need 65 536 entries, which no call can echo within its fuel
  ['an array of 65536 (array32)', 'echo', Array.from({ length: 65536 }, (_, i) => i & 0x7f), { code: 'fuel_exhausted' }],
  ['a map of 65536 (map32)', 'echo', obj(65536), { code: 'fuel_exhausted' }],
  ['after fuel_exhausted, a fresh instance answers', 'echo', 'fresh', 'echo'],
  // the host refuses before the enclave runs
  ['an unknown op', 'nope', 1, { code: 'unknown_op' }],
  ['a function', 'echo', () => 1, { code: 'invalid_args' }],
  ['a Map', 'echo', new Map([[1, 2]]), { code: 'invalid_args' }],
  ['a Date', 'echo', new Date(0), { code: 'invalid_args' }],
  ['a bigint past 64 bits', 'echo', 2n ** 64n, { code: 'invalid_args' }],
  ['a cycle', 'echo', cyclic, { code: 'invalid_args' }],
  ['a key with a lone surrogate', 'echo', { '\uD800': 1 }, { code: 'invalid_args' }],
  ['a Float32Array', 'echo', new Float32Array(2), { code: 'invalid_args' }],
];

describe.each(MODES)('core and component echo give the same answers ($name)', (mode) => {
  const handles = new Map<string, EnclaveHandle>();

  beforeAll(async () => {
    for (const [form, url] of FORMS) handles.set(form, await loadIn(mode, url));
  });
  afterAll(async () => {
    for (const h of handles.values()) await h.close();
  });

  it('both forms loaded: a core module and a component', () => {
    expect([...handles.keys()]).toEqual(['core', 'component']);
    expect(FORMS.map(([, url]) => isComponent(readFileSync(url)))).toEqual([false, true]);
  });

  it.each(ROWS)('%s', async (_, op, args, expected) => {
    const got: Outcome[] = [];
    for (const [form] of FORMS) got.push(await outcome(handles.get(form)!.call(op, args)));
    const [core, component] = got.map(comparable) as [Outcome, Outcome];
    expect(component).toEqual(core);
    if (expected === 'echo') expect(core).toEqual(comparable({ value: args }));
    else if ('value' in expected) expect(core).toEqual({ value: expected.value });
    else expect(core).toMatchObject({ code: expected.code });
  });

  it('after every row, both still answer (no row left a form broken)', async () => {
    for (const [form] of FORMS) expect(await handles.get(form)!.call('echo', form)).toBe(form);
  });
});
