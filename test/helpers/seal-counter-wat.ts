/**
 * A hand-written enclave that calls `seal_key_at`, `counter_read` and `counter_advance` with
 * arguments the test chooses (any i32/i64, hostile pointers included), for
 * test/capability-seal-at.test.ts and test/capability-counter.test.ts.
 *
 * One op `x` takes a 72-byte bin; the host's request ends with it (args is the last key), so the
 * module reads it from the last 72 bytes of the request:
 *
 * ```
 * off len
 * 0   1   selector: 1 seal_key_at, 2 counter_read, 3 counter_advance, 4 counter_advance × count
 * 4   4   policy (i32)        8  4  key_id (i32)      12 4  svn (i32)      16 4  out_ptr / tag_ptr (i32)
 * 20  8   counter id (i64)    28 8  expected (i64)    36 4  count (selector 4)
 * 40  32  tag, copied to 0x2100 before the import runs (pass TAG_PTR to use it)
 * ```
 *
 * It zeroes [0x2000, 0x2028) first, and replies `{ok: bin(44)}`: the import's return value (i32
 * LE) ‖ the 40 bytes at 0x2000 (OUT_PTR: where a test points out_ptr to read what was written).
 * Selector 4 calls counter_advance with expected, expected+1, ... until one returns non-zero or
 * `count` are done, and writes how many returned 0 at 0x2000 (u32 LE).
 */
import { watModule } from './wat.js';

export const OUT_PTR = 0x2000;
export const TAG_PTR = 0x2100;
/** Memory is one page: [0, 0x10000). */
export const MEMORY_BYTES = 0x10000;

export interface Capabilities {
  readonly seal: boolean;
  readonly counter: boolean;
}

/** The WAT of the module, with the imports of the capabilities asked for (and only those). */
export function sealCounterWat({ seal, counter }: Capabilities): string {
  const a = '(local.get $a)';
  const policy = `(i32.load offset=4 ${a})`;
  const ptr = `(i32.load offset=16 ${a})`;
  const id = `(i64.load offset=20 ${a})`;
  return `(module
  ${seal ? '(import "enclave" "seal_key_at" (func $seal_key_at (param i32 i32 i32 i32) (result i32)))' : ''}
  ${counter ? '(import "enclave" "counter_read" (func $counter_read (param i32 i64 i32) (result i32)))' : ''}
  ${counter ? '(import "enclave" "counter_advance" (func $counter_advance (param i32 i64 i64 i32) (result i32)))' : ''}
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\03\\00\\00\\32\\00\\00\\00")
  (data (i32.const 0x300) "\\81\\a2ok\\c4\\2c")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x8000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $a i32) (local $sel i32) (local $s i32) (local $i i32) (local $n i32)
    (local.set $a (i32.sub (i32.add (local.get $p) (local.get $l)) (i32.const 72)))
    (i64.store (i32.const 0x2000) (i64.const 0))
    (i64.store (i32.const 0x2008) (i64.const 0))
    (i64.store (i32.const 0x2010) (i64.const 0))
    (i64.store (i32.const 0x2018) (i64.const 0))
    (i64.store (i32.const 0x2020) (i64.const 0))
    (i64.store (i32.const 0x2100) (i64.load offset=40 ${a}))
    (i64.store (i32.const 0x2108) (i64.load offset=48 ${a}))
    (i64.store (i32.const 0x2110) (i64.load offset=56 ${a}))
    (i64.store (i32.const 0x2118) (i64.load offset=64 ${a}))
    (local.set $sel (i32.load8_u ${a}))
    (local.set $s (i32.const 0x7f))
    ${
      seal
        ? `(if (i32.eq (local.get $sel) (i32.const 1)) (then
      (local.set $s (call $seal_key_at ${policy} (i32.load offset=8 ${a}) (i32.load offset=12 ${a}) ${ptr}))))`
        : ''
    }
    ${
      counter
        ? `(if (i32.eq (local.get $sel) (i32.const 2)) (then
      (local.set $s (call $counter_read ${policy} ${id} ${ptr}))))
    (if (i32.eq (local.get $sel) (i32.const 3)) (then
      (local.set $s (call $counter_advance ${policy} ${id} (i64.load offset=28 ${a}) ${ptr}))))
    (if (i32.eq (local.get $sel) (i32.const 4)) (then
      (local.set $n (i32.load offset=36 ${a}))
      (local.set $s (i32.const 0))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $s (call $counter_advance ${policy} ${id} (i64.add (i64.load offset=28 ${a}) (i64.extend_i32_u (local.get $i))) ${ptr}))
        (br_if $done (local.get $s))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
      (i32.store (i32.const 0x2000) (local.get $i))))`
        : ''
    }
    (i32.store (i32.const 0x306) (local.get $s))
    (i64.store (i32.const 0x30a) (i64.load (i32.const 0x2000)))
    (i64.store (i32.const 0x312) (i64.load (i32.const 0x2008)))
    (i64.store (i32.const 0x31a) (i64.load (i32.const 0x2010)))
    (i64.store (i32.const 0x322) (i64.load (i32.const 0x2018)))
    (i64.store (i32.const 0x32a) (i64.load (i32.const 0x2020)))
    (i32.const 0x100))
)`;
}

/** The module with a contract declaring the capabilities asked for. */
export function sealCounterModule(caps: Capabilities, contract: { name?: string; svn?: number; version?: string } = {}): Promise<Uint8Array> {
  return watModule(sealCounterWat(caps), {
    abi: 1,
    name: contract.name ?? 'seal-counter',
    version: contract.version ?? '1.0.0',
    svn: contract.svn ?? 3,
    capabilities: [...(caps.seal ? ['seal'] : []), ...(caps.counter ? ['counter'] : [])],
    // Room for 65 counter_advance calls in one call (2 000 000 each).
    limits: { requestBytes: 1024, replyBytes: 1024, depth: 4, memoryPages: 1, fuel: 500_000_000 },
    ops: { x: { args: { type: 'bin' } } },
  });
}

/** The arguments of one call (numbers are written as their low 32 or 64 bits). */
export interface CallArgs {
  readonly sel: 1 | 2 | 3 | 4;
  readonly policy?: number;
  readonly keyId?: number;
  readonly svn?: number;
  readonly ptr?: number;
  readonly id?: bigint;
  readonly expected?: bigint;
  readonly count?: number;
  readonly tag?: Uint8Array;
}

/** The 72-byte args bin of {@link sealCounterWat}. */
export function encodeArgs(args: CallArgs): Uint8Array {
  const out = new Uint8Array(72);
  const view = new DataView(out.buffer);
  out[0] = args.sel;
  view.setInt32(4, args.policy ?? 0, true);
  view.setInt32(8, args.keyId ?? 0, true);
  view.setInt32(12, args.svn ?? -1, true);
  view.setUint32(16, (args.ptr ?? (args.sel === 3 || args.sel === 4 ? TAG_PTR : OUT_PTR)) >>> 0, true);
  view.setBigUint64(20, BigInt.asUintN(64, args.id ?? 0n), true);
  view.setBigUint64(28, BigInt.asUintN(64, args.expected ?? 0n), true);
  view.setUint32(36, args.count ?? 0, true);
  if (args.tag !== undefined) out.set(args.tag.subarray(0, 32), 40);
  return out;
}

/** A reply of the module: the import's return value and the 40 bytes at OUT_PTR. */
export interface Answer {
  readonly status: number;
  readonly out: Uint8Array;
}

/** Reads a reply of {@link sealCounterWat}. */
export function decodeAnswer(reply: unknown): Answer {
  if (!(reply instanceof Uint8Array) || reply.length !== 44) throw new Error(`unexpected reply ${String(reply)}`);
  return { status: new DataView(reply.buffer, reply.byteOffset).getInt32(0, true), out: reply.slice(4) };
}
