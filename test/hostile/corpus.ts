/**
 * The hostile corpus as a table: each entry builds a module that misbehaves in one way and says
 * which stable code it must end in. test/hostile.test.ts runs it in-process; worker mode runs the
 * same table (import {@link HOSTILE_CORPUS}), overriding `expect` where the mode differs.
 *
 * Every module that loads answers `ok` with `"fine"`, so a runner can check that the next call
 * after the failure succeeds. The hand-written modules are the `.wat` files next to this one;
 * the two that are mostly repetition are generated here.
 */
import { readFileSync } from 'node:fs';
import type { ErrorCode, LoadOptions } from '../../runtime/index.js';
import { CONTRACT_SECTION, encodeCustomSection } from '../../core/index.js';
import { watModule } from '../helpers/wat.js';
import { bigModule } from './_big-modules.js';
import { manyFunctionsBinary } from './_many-functions.js';

/** How an entry must end. */
export type HostileExpectation =
  /** The load itself fails with this code (nothing to call). */
  | { readonly phase: 'load'; readonly code: ErrorCode }
  /** The load succeeds; calling `op` fails with this code; the next `ok` call returns "fine". */
  | { readonly phase: 'call'; readonly code: ErrorCode }
  /** The load succeeds; calling `op` returns this value (the limit held inside the enclave). */
  | { readonly phase: 'call'; readonly value: unknown };

export interface HostileCase {
  /** Short, stable name (also the `.wat` file name for hand-written entries). */
  readonly name: string;
  /** What the module does. */
  readonly what: string;
  /** The module bytes, with their contract section. */
  readonly module: () => Promise<Uint8Array>;
  /** Load options the case needs (capabilities, policy), in-process and in a worker alike. */
  readonly options?: LoadOptions;
  /** The op that misbehaves; `attack` unless said otherwise. */
  readonly op?: string;
  readonly args?: unknown;
  readonly expect: HostileExpectation;
}

/** Fuel budget of the corpus contracts: small, so infinite loops end in milliseconds. */
export const CORPUS_FUEL = 2_000_000;

/** The contract every corpus module carries, with per-case overrides. */
export function corpusContract(overrides: { name?: string; capabilities?: string[]; limits?: object; ops?: object } = {}): object {
  return {
    abi: 1,
    name: overrides.name ?? 'hostile-corpus',
    version: '0.0.1',
    svn: 0,
    capabilities: overrides.capabilities ?? [],
    limits: { requestBytes: 4096, replyBytes: 4096, depth: 16, memoryPages: 4, fuel: CORPUS_FUEL, ...overrides.limits },
    ops: overrides.ops ?? { ok: {}, attack: {}, grow: {} },
  };
}

/** A `.wat` file of this directory with a corpus contract. */
function watFile(name: string, contract: object = corpusContract({ name })): () => Promise<Uint8Array> {
  return () => watModule(readFileSync(new URL(`./${name}.wat`, import.meta.url), 'utf8'), contract);
}

/** The shared skeleton of the generated modules: `ok` at 0x100, `attack` returns `attackDesc`. */
function skeleton(parts: { memory?: string; data?: string; funcs?: string; attack?: string }): string {
  return `(module
  ${parts.memory ?? '(memory (export "memory") 1 1)'}
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  ${parts.data ?? ''}
  ${parts.funcs ?? ''}
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61)) (then ${parts.attack ?? 'nop'}))
    (i32.const 0x100)))`;
}

/** Module bytes with a contract section appended (for modules encoded without WAT). */
function withContract(bytes: Uint8Array, contract: object): Uint8Array {
  const section = encodeCustomSection(CONTRACT_SECTION, new TextEncoder().encode(JSON.stringify(contract)));
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}

/** A reply that is valid msgpack nested `depth` deep: `{ok: [[[...nil...]]]}`. */
export function deepReplyWat(depth = 100_000): string {
  const pages = Math.ceil((0x1_0000 + depth + 16) / 65_536);
  return skeleton({
    memory: `(memory (export "memory") ${pages} ${pages})`,
    data: `(data (i32.const 0x108) "\\00\\00\\01\\00${le32(4 + depth + 1)}")
  (data (i32.const 0x10000) "\\81\\a2ok${'\\91'.repeat(depth)}\\c0")`,
    attack: '(return (i32.const 0x108))',
  });
}

/** A reply of `n` empty maps in one array, `{ok: [{}, {}, ...]}`: one byte each, one object each. */
export function manyItemsReplyWat(n = 150_000): string {
  const pages = Math.ceil((0x1_0000 + n + 16) / 65_536);
  const be = [24, 16, 8, 0].map((s) => `\\${((n >>> s) & 0xff).toString(16).padStart(2, '0')}`).join('');
  return skeleton({
    memory: `(memory (export "memory") ${pages} ${pages})`,
    data: `(data (i32.const 0x108) "\\00\\00\\01\\00${le32(9 + n)}")
  (data (i32.const 0x10000) "\\81\\a2ok\\dd${be}${'\\80'.repeat(n)}")`,
    attack: '(return (i32.const 0x108))',
  });
}

function le32(n: number): string {
  return [0, 8, 16, 24].map((s) => `\\${((n >>> s) & 0xff).toString(16).padStart(2, '0')}`).join('');
}

export const HOSTILE_CORPUS: readonly HostileCase[] = [
  {
    name: 'infinite-loop',
    what: 'loops forever in enclave_call',
    module: watFile('infinite-loop'),
    expect: { phase: 'call', code: 'fuel_exhausted' },
  },
  {
    name: 'nested-loop-import',
    what: 'a loop inside a loop that calls enclave.now (clock granted) on every iteration, forever',
    module: watFile('nested-loop-import', corpusContract({ name: 'nested-loop-import', capabilities: ['clock'] })),
    options: { capabilities: ['clock'] },
    expect: { phase: 'call', code: 'fuel_exhausted' },
  },
  {
    name: 'recursion',
    what: 'unbounded recursion',
    module: watFile('recursion'),
    expect: { phase: 'call', code: 'stack_overflow' },
  },
  {
    name: 'grow-bomb',
    what: 'memory.grow in an endless loop, ignoring the -1 it gets at the maximum',
    module: watFile('grow-bomb'),
    expect: { phase: 'call', code: 'fuel_exhausted' },
  },
  {
    name: 'grow-report',
    what: 'grows memory until refused and reports what memory.grow returned',
    module: watFile('grow-bomb'),
    op: 'grow',
    // 1..4 pages: three grows succeed, the fourth and a 65536-page request return -1.
    expect: { phase: 'call', value: [3, -1, -1] },
  },
  {
    name: 'start-loop',
    what: 'a start function that never returns',
    module: watFile('start-loop'),
    expect: { phase: 'load', code: 'fuel_exhausted' },
  },
  {
    name: 'fill-loop',
    what: 'memory.fill of 16 MiB in an endless loop (one instruction, 16 MiB of work)',
    module: watFile('fill-loop', corpusContract({ name: 'fill-loop', limits: { memoryPages: 256 } })),
    options: { policy: { memoryPages: 256 } },
    expect: { phase: 'call', code: 'fuel_exhausted' },
  },
  {
    name: 'start-fill',
    what: 'a start function that fills 16 MiB with memory.fill in an endless loop',
    module: watFile('start-fill', corpusContract({ name: 'start-fill', limits: { memoryPages: 256 } })),
    options: { policy: { memoryPages: 256 } },
    expect: { phase: 'load', code: 'fuel_exhausted' },
  },
  {
    name: 'indirect-random',
    what: 'enclave.random of 64 KiB through call_indirect, forever (random granted)',
    module: watFile('indirect-random', corpusContract({ name: 'indirect-random', capabilities: ['random'] })),
    options: { capabilities: ['random'] },
    expect: { phase: 'call', code: 'fuel_exhausted' },
  },
  {
    name: 'reply-4gib',
    what: 'a reply length of 4 GiB',
    module: watFile('reply-4gib'),
    expect: { phase: 'call', code: 'too_large' },
  },
  {
    name: 'reply-ptr-oob',
    what: 'a reply pointer past the end of memory',
    module: watFile('reply-ptr-oob'),
    expect: { phase: 'call', code: 'bad_reply' },
  },
  {
    name: 'alloc-oob',
    what: 'an allocator that returns an out-of-bounds pointer',
    module: watFile('alloc-oob'),
    args: 'x'.repeat(64),
    expect: { phase: 'call', code: 'bad_reply' },
  },
  {
    name: 'wasi-import',
    what: 'imports wasi_snapshot_preview1.fd_write',
    module: watFile('wasi-import'),
    expect: { phase: 'load', code: 'invalid_module' },
  },
  {
    name: 'many-functions',
    what: 'a module with 100 000 functions, the most the runtime accepts: it loads (instrumented, within the test timeout) and answers',
    // 99 997 plus enclave_abi_version, enclave_alloc and enclave_call (MODULE_BOUNDS.functions).
    module: async () => withContract(manyFunctionsBinary(99_997), corpusContract({ name: 'many-functions' })),
    expect: { phase: 'call', value: 'fine' },
  },
  {
    name: 'deep-reply',
    what: 'a reply that is valid msgpack nested 100 000 deep',
    module: () =>
      watModule(deepReplyWat(), corpusContract({ name: 'deep-reply', limits: { replyBytes: 200_000, memoryPages: 4 } })),
    expect: { phase: 'call', code: 'bad_reply' },
  },
  {
    name: 'many-items-reply',
    what: 'a 150 kB reply of 150 000 empty maps (issue 9 finding 5): over the default replyItems, refused before decoding',
    module: () =>
      watModule(manyItemsReplyWat(), corpusContract({ name: 'many-items-reply', limits: { replyBytes: 200_000, memoryPages: 4 } })),
    expect: { phase: 'call', code: 'too_large' },
  },
  {
    name: 'data-oob',
    what: 'a data segment beyond the initial memory',
    module: () => watModule(skeleton({ data: '(data (i32.const 0xfffc) "\\01\\02\\03\\04\\05\\06\\07\\08")' }), corpusContract({ name: 'data-oob' })),
    expect: { phase: 'load', code: 'invalid_module' },
  },
  {
    name: 'huge-initial-memory',
    what: 'a module whose initial memory is 65 536 pages (4 GiB)',
    module: () => watModule(skeleton({ memory: '(memory (export "memory") 65536 65536)' }), corpusContract({ name: 'huge-initial-memory' })),
    expect: { phase: 'load', code: 'memory_limit' },
  },
  {
    name: 'huge-table',
    what: 'a one-page module with a table of 10 000 000 entries (~150 MiB of host heap per instance)',
    module: () => watModule(skeleton({ funcs: '(table 10000000 funcref)' }), corpusContract({ name: 'huge-table' })),
    expect: { phase: 'load', code: 'memory_limit' },
  },
  {
    name: 'elem-oob',
    what: 'an element segment past the end of its table',
    module: () => watModule(skeleton({ funcs: '(table 2 funcref) (func $f) (elem (i32.const 1) $f $f)' }), corpusContract({ name: 'elem-oob' })),
    expect: { phase: 'load', code: 'invalid_module' },
  },
  {
    name: 'many-locals',
    what: 'a 13 KB module of 1 000 functions with 49 000 locals each (seconds of instrumentation if admitted)',
    module: async () => withContract(bigModule({ functions: 1000, locals: 49_000 }), corpusContract({ name: 'many-locals' })),
    expect: { phase: 'load', code: 'invalid_module' },
  },
  {
    name: 'bom-memory',
    what: 'exports its memory as "\\uFEFFmemory", a name a BOM-stripping decoder reads as "memory"',
    module: () => watModule(skeleton({ memory: '(memory (export "\\u{feff}memory") 1 1)' }), corpusContract({ name: 'bom-memory' })),
    expect: { phase: 'load', code: 'invalid_module' },
  },
  {
    name: 'terminal-escapes',
    what: 'an error detail, an export name and a contract version of ESC sequences and U+202E (the CLI escapes them)',
    module: watFile('terminal-escapes', { ...corpusContract({ name: 'terminal-escapes' }), version: '1.0\u001b[2K\u001b[1Asigner 3f1c\u202e7 nvs' }),
    expect: { phase: 'call', code: 'denied' },
  },
  {
    name: 'grow-touch',
    what: 'grows 255 pages, stores once per 4 KiB of them (4 080 page faults, 10+ ms, for 49 000 fuel unless a grow pays per page), then loops',
    module: () =>
      watModule(
        skeleton({
          memory: '(memory (export "memory") 1 256)',
          funcs: `(func $touch (local $p i32)
            (drop (memory.grow (i32.const 255)))
            (local.set $p (i32.const 0x10000))
            (loop $l
              (i32.store (local.get $p) (local.get $p))
              (local.set $p (i32.add (local.get $p) (i32.const 4096)))
              (br_if $l (i32.lt_u (local.get $p) (i32.const 0x1000000))))
            (loop $forever (br $forever)))`,
          attack: '(call $touch)',
        }),
        corpusContract({ name: 'grow-touch', limits: { memoryPages: 256, fuel: 100_000 } }),
      ),
    expect: { phase: 'call', code: 'fuel_exhausted' },
  },
  {
    name: 'compile-bomb',
    what: 'a 60 KB function of 9 000 locals and 20 000 loops: V8 compiles it on its first call, 16 s on the host thread, for 40 000 fuel',
    module: () =>
      watModule(
        skeleton({ funcs: `(func $big ${'(local i32)'.repeat(9_000)} ${'(loop)'.repeat(20_000)})`, attack: '(call $big)' }),
        corpusContract({ name: 'compile-bomb' }),
      ),
    expect: { phase: 'load', code: 'invalid_module' },
  },
];
