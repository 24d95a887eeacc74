/**
 * Encodes modules that are large in one dimension (functions, locals, globals, table entries)
 * straight to binary (core spec §5): test/module-bounds.test.ts and the measurement of
 * docs/LIMITS.md ("Module structure") use them. Each one is a valid enclave that answers the
 * minimal contract's `ping` with `true` (test/helpers/wat.ts) when it is within the bounds.
 */
import { encodeU32Leb } from '../../core/index.js';
import { I32, name, sleb } from './_binary.js';

/** Appends without spreading: a spread of millions of bytes overflows the call stack. */
function push(out: number[], bytes: readonly number[]): void {
  for (const b of bytes) out.push(b);
}

function section(id: number, count: number, items: readonly (readonly number[])[]): number[] {
  const payload = encodeU32Leb(count);
  for (const item of items) push(payload, item);
  const out = [id, ...encodeU32Leb(payload.length)];
  push(out, payload);
  return out;
}


export interface BigModule {
  /** Extra functions `() -> ()`, each with the body below. Default 0. */
  readonly functions?: number;
  /** i32 locals each extra function declares (one local group). Default 0. */
  readonly locals?: number;
  /** Body of each extra function, without the final `end`: default empty. */
  readonly body?: readonly number[];
  /** i32 globals (`i32.const 0`). Default 0. */
  readonly globals?: number;
  /** Whether those globals are mutable. */
  readonly mutable?: boolean;
  /** A funcref table of this many entries, `(table n n funcref)`, when set. */
  readonly table?: number;
  /** Exports of the extra functions (the first `exports` of them), named `f<i>`. Default 0. */
  readonly exports?: number;
}

/** A minimal enclave (ping → `true`) plus the given bulk, as module bytes without a contract. */
export function bigModule(spec: BigModule): Uint8Array {
  const functions = spec.functions ?? 0;
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0];
  push(out, section(1, 4, [
    [0x60, 0, 1, I32], // 0: () -> i32
    [0x60, 1, I32, 1, I32], // 1: (i32) -> i32
    [0x60, 2, I32, I32, 1, I32], // 2: (i32, i32) -> i32
    [0x60, 0, 0], // 3: () -> ()
  ]));
  const funcTypes: number[][] = [[0], [1], [2]];
  for (let i = 0; i < functions; i++) funcTypes.push([3]);
  push(out, section(3, funcTypes.length, funcTypes));
  if (spec.table !== undefined) push(out, section(4, 1, [[0x70, 0x01, ...encodeU32Leb(spec.table), ...encodeU32Leb(spec.table)]]));
  push(out, section(5, 1, [[0x01, 1, 1]]));
  if ((spec.globals ?? 0) > 0) {
    const g = [I32, spec.mutable === true ? 1 : 0, 0x41, 0, 0x0b];
    push(out, section(6, spec.globals!, Array.from({ length: spec.globals! }, () => g)));
  }
  const exports = [
    [...name('memory'), 0x02, 0],
    [...name('enclave_abi_version'), 0x00, 0],
    [...name('enclave_alloc'), 0x00, 1],
    [...name('enclave_call'), 0x00, 2],
  ];
  for (let i = 0; i < (spec.exports ?? 0); i++) exports.push([...name(`f${i}`), 0x00, ...encodeU32Leb(3 + i)]);
  push(out, section(7, exports.length, exports));
  const body = (locals: number, code: readonly number[]): number[] => {
    const inner = locals > 0 ? [1, ...encodeU32Leb(locals), I32] : [0];
    push(inner, code);
    inner.push(0x0b);
    return [...encodeU32Leb(inner.length), ...inner];
  };
  const extra = body(spec.locals ?? 0, spec.body ?? []);
  const bodies = [body(0, [0x41, 1]), body(0, [0x41, ...sleb(0x1000)]), body(0, [0x41, ...sleb(0x100)])];
  for (let i = 0; i < functions; i++) bodies.push(extra);
  push(out, section(10, bodies.length, bodies));
  const segment = (offset: number, bytes: number[]): number[] => [0, 0x41, ...sleb(offset), 0x0b, ...encodeU32Leb(bytes.length), ...bytes];
  push(out, section(11, 2, [
    segment(0x100, [0x00, 0x02, 0, 0, 5, 0, 0, 0]), // reply descriptor: 5 bytes at 0x200
    segment(0x200, [0x81, 0xa2, 0x6f, 0x6b, 0xc3]), // {ok: true}
  ]));
  return new Uint8Array(out);
}

/**
 * The largest straight-line code the module bounds admit, for measuring instrumentation time:
 * `functions` functions whose bodies together fill about `bytes` bytes with `i32.const 0; drop`.
 */
export function straightLineModule(bytes: number, functions = 1): Uint8Array {
  const perFunction = Math.floor(bytes / functions / 3);
  const code: number[] = [];
  for (let i = 0; i < perFunction; i++) code.push(0x41, 0, 0x1a);
  return bigModule({ functions, body: code });
}
