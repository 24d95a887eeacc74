/**
 * The files of a new enclave project (`enclave init`): a small key-value enclave written against
 * the SDK exactly as a user writes one, its contract, the AssemblyScript tsconfig, a host-side
 * example, a test and a README.
 *
 * Templates are TypeScript string constants, not files: tsc copies only what it compiles into
 * dist/, and the package ships dist/. The contract is built as an object and serialised, so that
 * the name is the only thing that varies and a test can parse it with the runtime's `parseContract`.
 */
import { typeBaseName } from '../contract-types.js';

/** One file of the scaffold: a path relative to the project folder (`/` separators) and its text. */
export interface ScaffoldFile {
  readonly path: string;
  readonly text: string;
  /** What the file is, one line (printed by `enclave init`, listed in the README). */
  readonly about: string;
}

/** What varies in the scaffold. */
export interface ScaffoldParams {
  /** The contract name: `[a-z][a-z0-9-]{0,63}` (runtime/contract.ts), so it is safe as a file name. */
  readonly name: string;
  /**
   * The name of the project folder (its last path segment): the README and the comments give
   * commands run from the folder that holds it.
   */
  readonly folder: string;
}

/** Caps the enclave keeps, echoed by the contract's shapes (the host checks them first). */
const MAX_KEY_BYTES = 256;
const MAX_VALUE_BYTES = 1024;
const MAX_ENTRIES = 256;

/**
 * The contract of the scaffold: `put`, `get`, `del`, `count`. Limits sized for it: a `put` of the
 * largest key and value fits `requestBytes`, `MAX_ENTRIES` of the largest entries (stored as UTF-16
 * strings, up to twice their UTF-8 bytes) fit `memoryPages` with room for the garbage of replaced
 * values. `fuel` is the default, written out so the author sees the knob.
 */
export function kvContract(name: string): Record<string, unknown> {
  const key = { type: 'str', maxLength: MAX_KEY_BYTES };
  return {
    abi: 1,
    name,
    version: '0.1.0',
    svn: 1,
    description: 'A small key-value store, kept in the memory of one instance.',
    capabilities: [],
    limits: { requestBytes: 4096, replyBytes: 2048, depth: 4, memoryPages: 32, fuel: 10_000_000 },
    ops: {
      put: {
        description: 'Stores v under k.',
        args: { type: 'map', fields: { k: key, v: { type: 'str', maxLength: MAX_VALUE_BYTES } } },
        reply: { type: 'nil' },
      },
      get: {
        description: 'The value under k, or nil.',
        args: { type: 'map', fields: { k: key } },
        reply: { type: 'str', nullable: true },
        idempotent: true,
      },
      del: {
        description: 'Removes k; true if it was there.',
        args: { type: 'map', fields: { k: key } },
        reply: { type: 'bool' },
      },
      count: {
        description: 'How many keys are stored.',
        args: { type: 'nil' },
        reply: { type: 'int', min: 0, max: MAX_ENTRIES },
        idempotent: true,
      },
    },
  };
}

const ENCLAVE_TS = `/// <reference types="assemblyscript/std/assembly/rt" />
// (For the editor: the runtime functions the SDK uses. The compiler ignores the line.)
//
// A small key-value store inside an enclave, written against the enclave SDK.
//
// Its state lives in the memory of this instance: it is lost when the instance is discarded (a trap,
// fuel running out, a host restart). Durable data belongs in sealed storage (the "seal" capability).
//
// contract.json is the one source of this enclave's limits: \`enclave build\` gives them to the SDK.
// The host checks every call's args against the contract's shapes before the enclave sees them; the
// checks in the handlers below are the second line.

import { Enclave, Value, Reply, ErrorCode } from "enclave/sdk";
export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";

/** Keep in step with contract.json: the maxLength of k and v (UTF-8 bytes). */
const MAX_KEY_BYTES: i32 = ${MAX_KEY_BYTES};
const MAX_VALUE_BYTES: i32 = ${MAX_VALUE_BYTES};
/**
 * The most entries kept. Past it, a put of a new key gets a \`limit\` error: running out of memory
 * instead would trap, and a trap discards the instance with every entry in it.
 */
const MAX_ENTRIES: i32 = ${MAX_ENTRIES};

// State first: AssemblyScript wants globals declared before the top-level code that registers the
// handlers using them.
const store = new Map<string, string>();

Enclave.op("put", put);
Enclave.op("get", get);
Enclave.op("del", del);
Enclave.op("count", count);

/**
 * The string under \`key\` in the args map if it is at most \`max\` UTF-8 bytes, else null.
 * \`asString()\` makes a string of its own: safe to keep after the call (the bytes of the request are not).
 */
function strArg(args: Value, key: string, max: i32): string | null {
  const v = args.get(key);
  if (!v.isStr() || v.length > max) return null;
  return v.asString();
}

/** \`{k: str, v: str}\` -> nil: stores v under k. */
function put(args: Value): Reply {
  const k = strArg(args, "k", MAX_KEY_BYTES);
  if (k === null) return Reply.badRequest("k must be a string of at most ${MAX_KEY_BYTES} bytes");
  const v = strArg(args, "v", MAX_VALUE_BYTES);
  if (v === null) return Reply.badRequest("v must be a string of at most ${MAX_VALUE_BYTES} bytes");
  if (!store.has(k) && store.size >= MAX_ENTRIES) return Reply.err(ErrorCode.Limit, "the store is full: delete a key first");
  store.set(k, v);
  return Reply.ok();
}

/** \`{k: str}\` -> str or nil: the value under k, nil when there is none. */
function get(args: Value): Reply {
  const k = strArg(args, "k", MAX_KEY_BYTES);
  if (k === null) return Reply.badRequest("k must be a string of at most ${MAX_KEY_BYTES} bytes");
  // Map.get traps on a missing key, and a trap discards the instance with all its state: has() first.
  if (!store.has(k)) return Reply.ok(Value.nil());
  return Reply.ok(Value.str(store.get(k)));
}

/** \`{k: str}\` -> bool: removes k; true if it was there. */
function del(args: Value): Reply {
  const k = strArg(args, "k", MAX_KEY_BYTES);
  if (k === null) return Reply.badRequest("k must be a string of at most ${MAX_KEY_BYTES} bytes");
  return Reply.ok(Value.bool(store.delete(k)));
}

/** nil -> int: how many keys are stored. */
function count(args: Value): Reply {
  return Reply.ok(Value.int(store.size));
}
`;

// Editors read this file (tsconfig.json accepts comments); \`enclave build\` does not (its compiler
// settings are built in).
const TSCONFIG = `{
  // The enclave is AssemblyScript, not TypeScript for Node: this config makes an editor check the
  // .ts files of this folder against AssemblyScript's standard library. Keep this folder out of
  // your host project's tsconfig ("exclude"), which would check it as Node TypeScript.
  "extends": "assemblyscript/std/assembly.json",
  "include": ["./**/*.ts"],
  "exclude": ["./build/**", "./test/**"]
}
`;

function hostExample(p: ScaffoldParams): string {
  const dir = shellWord(p.folder);
  const ops = `${typeBaseName(p.name)}Ops`;
  const handle = `${typeBaseName(p.name)}Enclave`;
  return `// @ts-check
// A host-side example: load the built enclave in this Node.js process and call it, with the calls
// typed by the contract (the editor checks this file; \`enclave types\` writes the types).
//
//   npx enclave build ${dir}
//   npx enclave types ${dir} --out ${dir}/build/${p.name}.d.ts
//   node ${dir}/host.example.mjs
//
// In TypeScript: import type { ${ops} } from './${p.folder}/build/${p.name}.js';
//                const enclave = await loadEnclave<${ops}>(path);
import { EnclaveError, loadEnclave } from 'enclave';

/** @type {import('./build/${p.name}.js').${handle}} */
const enclave = await loadEnclave(new URL('./build/${p.name}.wasm', import.meta.url));
try {
  await enclave.call('put', { k: 'greeting', v: 'hello' });
  const value = await enclave.call('get', { k: 'greeting' }); // string | null
  console.log('get greeting ->', value);
  console.log('count ->', await enclave.call('count'));
  try {
    // @ts-expect-error v must be a string: the type checker refuses this call, and so does the host.
    await enclave.call('put', { k: 'n', v: 42 });
  } catch (err) {
    // Match errors on their code, never on their message.
    console.log('put with v: 42 ->', err instanceof EnclaveError ? err.code : err); // invalid_args
  }
} finally {
  enclave.close();
}
`;
}

function testFile(p: ScaffoldParams): string {
  const dir = shellWord(p.folder);
  return `// The enclave, tested through the host API as a service uses it (node:test, no extra dependency).
//
//   npx enclave build ${dir}
//   node --test ${dir}/test/${p.name}.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEnclave } from 'enclave';

const MODULE = new URL('../build/${p.name}.wasm', import.meta.url);

let enclave;
before(async () => {
  enclave = await loadEnclave(MODULE);
});
after(() => enclave?.close());

test('put then get returns the value; a missing key is null', async () => {
  assert.equal(await enclave.call('put', { k: 'a', v: 'b' }), null);
  assert.equal(await enclave.call('get', { k: 'a' }), 'b');
  assert.equal(await enclave.call('get', { k: 'missing' }), null);
});

test('put replaces; del removes once; count follows', async () => {
  await enclave.call('put', { k: 'x', v: '1' });
  await enclave.call('put', { k: 'x', v: '2' });
  assert.equal(await enclave.call('get', { k: 'x' }), '2');
  const n = await enclave.call('count');
  assert.equal(await enclave.call('del', { k: 'x' }), true);
  assert.equal(await enclave.call('del', { k: 'x' }), false);
  assert.equal(await enclave.call('count'), n - 1);
});

test('arguments outside the contract are refused before the enclave runs', async () => {
  await assert.rejects(enclave.call('put', { k: 'a', v: 42 }), { code: 'invalid_args' });
  await assert.rejects(enclave.call('get', {}), { code: 'invalid_args' });
  await assert.rejects(enclave.call('get', { k: 'x'.repeat(${MAX_KEY_BYTES + 1}) }), { code: 'invalid_args' });
  await assert.rejects(enclave.call('drop_all'), { code: 'unknown_op' });
  // The instance and its entries survive refused calls.
  assert.equal(await enclave.call('get', { k: 'a' }), 'b');
});
`;
}

function readme(p: ScaffoldParams, files: readonly ScaffoldFile[]): string {
  const dir = shellWord(p.folder);
  const list = files.map((f) => `- \`${f.path}\`: ${f.about}`).join('\n');
  return `# ${p.name}

An enclave: AssemblyScript compiled to WebAssembly, run by the \`enclave\` runtime with the limits,
operations and argument shapes its contract declares. WebAssembly isolates the enclave's memory from
other code; it does not hide that memory from a hostile host.

## Commands

From the folder that holds \`${dir}/\`:

\`\`\`sh
# compile index.ts to ${dir}/build/${p.name}.wasm, with contract.json embedded
npx enclave build ${dir}
# load the module, make one call, print the reply as JSON
npx enclave run ${dir}/build/${p.name}.wasm put '{"k":"a","v":"b"}'
# TypeScript types of the ops, from contract.json, for host code (host.example.mjs uses them)
npx enclave types ${dir} --out ${dir}/build/${p.name}.d.ts
# the tests (node:test): build first
node --test ${dir}/test/${p.name}.test.mjs
\`\`\`

\`enclave run\` loads a fresh instance per command, so a \`get\` in a second command finds nothing:
state lives in one instance's memory. \`--ndjson\` sends several calls to one instance, one JSON line
each on stdin; \`node ${dir}/host.example.mjs\` does the same from code:

\`\`\`sh
printf '%s\\n' '{"op":"put","args":{"k":"a","v":"b"}}' '{"op":"get","args":{"k":"a"}}' |
  npx enclave run ${dir}/build/${p.name}.wasm --ndjson
\`\`\`

## Files

${list}

Edit \`index.ts\` and \`contract.json\` together: every op of the contract needs a handler
(\`Enclave.op\`), and the contract's \`limits\` are the enclave's (the build gives them to the SDK).
\`limits.fuel\` bounds the instructions of one call (\`fuel_exhausted\` past it): \`enclave run --stats\`
prints what a call used. Size it above your costliest call; here that is a \`put\` that runs a full
garbage collection near the memory limit (about 4 million of the 10 million).

\`tsconfig.json\` makes an editor check this folder as AssemblyScript (its own standard library,
types such as \`i32\`). Exclude this folder from your host project's tsconfig, which would check it as
Node.js TypeScript: \`"exclude": [${JSON.stringify(p.folder)}]\`.
`;
}

/**
 * `text` as one word of a POSIX shell command line: as it is when it holds only characters no shell
 * reads specially, else single-quoted.
 * @example
 * shellWord('kv'); // 'kv'
 * shellWord("my kv's"); // "'my kv'\\''s'"
 */
export function shellWord(text: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(text)) return text;
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * The files of a new project, README last (it lists the others).
 * @example
 * for (const f of scaffoldFiles({ name: 'kv', folder: 'kv' })) console.log(f.path);
 */
export function scaffoldFiles(p: ScaffoldParams): ScaffoldFile[] {
  const files: ScaffoldFile[] = [
    { path: 'index.ts', text: ENCLAVE_TS, about: 'the enclave (AssemblyScript): one handler per op' },
    {
      path: 'contract.json',
      text: `${JSON.stringify(kvContract(p.name), null, 2)}\n`,
      about: 'its contract: name, version, limits, ops and the shapes of their arguments and replies',
    },
    { path: 'tsconfig.json', text: TSCONFIG, about: 'the AssemblyScript settings an editor uses to check index.ts' },
    { path: 'host.example.mjs', text: hostExample(p), about: 'a host-side example: load the built module and call it, typed by the contract' },
    { path: `test/${p.name}.test.mjs`, text: testFile(p), about: 'tests of the built module through the host API (node:test)' },
  ];
  files.push({ path: 'README.md', text: readme(p, files), about: 'how to build, run and test it, and what each file is' });
  return files;
}
