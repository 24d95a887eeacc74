/**
 * A hand-written component enclave that calls each import of the world's capability interfaces
 * with arguments the test chooses (hostile ones included), for test/component-capabilities.test.ts.
 * The core module speaks the canonical ABI itself (issue 14, the table of core signatures), so
 * what the test reads back is what jco's glue lowered into the guest, at the offsets the canonical
 * ABI gives.
 *
 * One op `x` takes a 96-byte bin; the request ends with it (args is the last key), so the module
 * reads it from the last 96 bytes of the request (a raw call may pass the 96 bytes alone):
 *
 * ```
 * off len
 * 0   1   selector (SEL)          4  4  a0: len / level / policy      8  4  a1: key-id / ptr
 * 12  4   a2: option disc / len   16 4  a3: option value              20 4  listAt (-1: none)
 * 24  8   x: counter id (i64)     32 8  y: expected (i64)             40 4  count (the loops)
 * 44  52  data, copied to DATA_PTR before the import runs (log message, tag, report data)
 * ```
 *
 * The import's result area is AREA (32 bytes, zeroed first; `now` stores its i64 there). The reply
 * is `{ok: bin}`: the 32 bytes of the area ‖ the list the area points to at `listAt` (its u32 ptr,
 * u32 len), when listAt is not -1. The loops call an import `count` times: advance with expected
 * y, y+1, ... until one fails (how many succeeded: u32 at area+24), log and fill as they are.
 * Memory: 8 pages; realloc bumps from 0x40000 and is reset by post-return.
 */
import type { Capability } from '../../runtime/capabilities/index.js';
import { watComponent } from './component-fixtures.js';

export const SEL = Object.freeze({
  fill: 1,
  now: 2,
  log: 3,
  sealKey: 4,
  sealKeyAt: 5,
  read: 6,
  advance: 7,
  report: 8,
  advanceLoop: 9,
  logLoop: 10,
  fillLoop: 11,
} as const);

export const AREA = 0x2000;
export const DATA_PTR = 0x3000;
export const MEMORY_BYTES = 8 * 65_536;
const ARGS_BYTES = 96;

const IMPORTS: Record<Capability, string> = {
  random: '(import "enclave:runtime/random@1.0.0" "fill" (func $fill (param i32 i32)))',
  clock: '(import "enclave:runtime/clock@1.0.0" "now" (func $now (result i64)))',
  log: '(import "enclave:runtime/log@1.0.0" "log" (func $log (param i32 i32 i32)))',
  seal: `(import "enclave:runtime/seal@1.0.0" "seal-key" (func $sk (param i32 i32)))
  (import "enclave:runtime/seal@1.0.0" "seal-key-at" (func $ska (param i32 i32 i32 i32 i32)))`,
  counter: `(import "enclave:runtime/counter@1.0.0" "read" (func $cr (param i32 i64 i32)))
  (import "enclave:runtime/counter@1.0.0" "advance" (func $ca (param i32 i64 i64 i32 i32 i32)))`,
  attest: '(import "enclave:runtime/attest@1.0.0" "report" (func $rep (param i32 i32 i32)))',
};

export const ALL_CAPABILITIES: readonly Capability[] = Object.freeze(['random', 'clock', 'log', 'seal', 'counter', 'attest']);

/** The core module's WAT, importing the interfaces of `capabilities` (and only those). */
export function capsWat(capabilities: readonly Capability[] = ALL_CAPABILITIES): string {
  const has = (c: Capability): boolean => capabilities.includes(c);
  const a = '(local.get $a)';
  const a0 = `(i32.load offset=4 ${a})`;
  const a1 = `(i32.load offset=8 ${a})`;
  const a2 = `(i32.load offset=12 ${a})`;
  const a3 = `(i32.load offset=16 ${a})`;
  const x = `(i64.load offset=24 ${a})`;
  const y = `(i64.load offset=32 ${a})`;
  const count = `(i32.load offset=40 ${a})`;
  const area = `(i32.const ${AREA})`;
  const when = (sel: number, body: string): string => `(if (i32.eq (local.get $sel) (i32.const ${sel})) (then ${body}))`;
  const loop = (body: string, stop = ''): string => `(local.set $i (i32.const 0))
      (block $done (loop $next
        (br_if $done (i32.ge_u (local.get $i) ${count}))
        ${body}
        ${stop}
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))`;
  return `(module
  ${capabilities.map((c) => IMPORTS[c]).join('\n  ')}
  (memory (export "memory") 8 8)
  (global $bump (mut i32) (i32.const 0x40000))
  (func (export "cabi_realloc") (param i32 i32 i32) (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.const 7)) (i32.const -8)))
    (global.set $bump (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "cabi_post_enclave:runtime/handler@1.0.0#call") (param i32)
    (global.set $bump (i32.const 0x40000)))
  (func (export "enclave:runtime/handler@1.0.0#call") (param $p i32) (param $l i32) (result i32)
    (local $a i32) (local $sel i32) (local $i i32) (local $at i32) (local $lp i32) (local $ll i32)
    (local.set $a (i32.sub (i32.add (local.get $p) (local.get $l)) (i32.const ${ARGS_BYTES})))
    (memory.fill ${area} (i32.const 0) (i32.const 32))
    (memory.copy (i32.const ${DATA_PTR}) (i32.add ${a} (i32.const 44)) (i32.const 52))
    (local.set $sel (i32.load8_u ${a}))
    ${has('random') ? when(SEL.fill, `(call $fill ${a0} ${area})`) : ''}
    ${has('random') ? when(SEL.fillLoop, loop(`(call $fill ${a0} ${area})`)) : ''}
    ${has('clock') ? when(SEL.now, `(i64.store ${area} (call $now))`) : ''}
    ${has('log') ? when(SEL.log, `(call $log ${a0} ${a1} ${a2})`) : ''}
    ${has('log') ? when(SEL.logLoop, loop(`(call $log ${a0} ${a1} ${a2})`)) : ''}
    ${has('seal') ? when(SEL.sealKey, `(call $sk ${a0} ${area})`) : ''}
    ${has('seal') ? when(SEL.sealKeyAt, `(call $ska ${a0} ${a1} ${a2} ${a3} ${area})`) : ''}
    ${has('counter') ? when(SEL.read, `(call $cr ${a0} ${x} ${area})`) : ''}
    ${has('counter') ? when(SEL.advance, `(call $ca ${a0} ${x} ${y} ${a1} ${a2} ${area})`) : ''}
    ${
      has('counter')
        ? when(
            SEL.advanceLoop,
            `${loop(
              `(call $ca ${a0} ${x} (i64.add ${y} (i64.extend_i32_u (local.get $i))) ${a1} ${a2} ${area})`,
              `(br_if $done (i32.load8_u ${area}))`,
            )}
      (i32.store (i32.const ${AREA + 24}) (local.get $i))`,
          )
        : ''
    }
    ${has('attest') ? when(SEL.report, `(call $rep ${a1} ${a2} ${area})`) : ''}
    ;; The reply at 0x10000: bin32 header, the area, the list at listAt.
    (local.set $at (i32.load offset=20 ${a}))
    (if (i32.ne (local.get $at) (i32.const -1)) (then
      (local.set $lp (i32.load (i32.add ${area} (local.get $at))))
      (local.set $ll (i32.load offset=4 (i32.add ${area} (local.get $at))))))
    (i32.store8 (i32.const 0x10000) (i32.const 0xc6))
    (i32.store8 (i32.const 0x10001) (i32.shr_u (i32.add (local.get $ll) (i32.const 32)) (i32.const 24)))
    (i32.store8 (i32.const 0x10002) (i32.shr_u (i32.add (local.get $ll) (i32.const 32)) (i32.const 16)))
    (i32.store8 (i32.const 0x10003) (i32.shr_u (i32.add (local.get $ll) (i32.const 32)) (i32.const 8)))
    (i32.store8 (i32.const 0x10004) (i32.add (local.get $ll) (i32.const 32)))
    (memory.copy (i32.const 0x10005) ${area} (i32.const 32))
    (memory.copy (i32.const 0x10025) (local.get $lp) (local.get $ll))
    (i32.store8 (i32.const 0x1000) (i32.const 0))
    (i32.store (i32.const 0x1004) (i32.const 0x10000))
    (i32.store (i32.const 0x1008) (i32.add (local.get $ll) (i32.const 37)))
    (i32.const 0x1000))
)`;
}

/** The contract of the component: the capabilities it imports, room for 65 advances and a 64 KiB fill. */
export function capsContract(capabilities: readonly Capability[] = ALL_CAPABILITIES, name = 'component-caps', fuel = 500_000_000): object {
  return {
    abi: 1,
    name,
    version: '1.0.0',
    svn: 3,
    capabilities: [...capabilities],
    limits: { requestBytes: 1024, replyBytes: 128 * 1024, depth: 4, memoryPages: 8, fuel },
    ops: { x: { args: { type: 'bin' }, reply: { type: 'bin' } } },
  };
}

/** The component, with its contract (none when `contract` is null). */
export function capsComponent(capabilities: readonly Capability[] = ALL_CAPABILITIES, contract: object | null = capsContract(capabilities)): Promise<Uint8Array> {
  return watComponent(capsWat(capabilities), contract ?? undefined);
}

/** The arguments of one call (numbers written as their low 32 or 64 bits). */
export interface CapsArgs {
  readonly sel: number;
  readonly a0?: number;
  readonly a1?: number;
  readonly a2?: number;
  readonly a3?: number;
  /** The offset in the area of a (ptr, len) pair whose list is replied; undefined: none. */
  readonly listAt?: number;
  readonly x?: bigint;
  readonly y?: bigint;
  readonly count?: number;
  /** At most 52 bytes, copied to DATA_PTR. */
  readonly data?: Uint8Array;
}

/** The 96-byte args bin. */
export function encodeCapsArgs(args: CapsArgs): Uint8Array {
  const out = new Uint8Array(ARGS_BYTES);
  const view = new DataView(out.buffer);
  out[0] = args.sel;
  view.setInt32(4, args.a0 ?? 0, true);
  view.setInt32(8, args.a1 ?? 0, true);
  view.setInt32(12, args.a2 ?? 0, true);
  view.setInt32(16, args.a3 ?? 0, true);
  view.setInt32(20, args.listAt ?? -1, true);
  view.setBigUint64(24, BigInt.asUintN(64, args.x ?? 0n), true);
  view.setBigUint64(32, BigInt.asUintN(64, args.y ?? 0n), true);
  view.setUint32(40, args.count ?? 0, true);
  if (args.data !== undefined) {
    if (args.data.length > 52) throw new RangeError('data: at most 52 bytes');
    out.set(args.data, 44);
  }
  return out;
}

/** What a call answered: the result area and the list it pointed to. */
export interface CapsAnswer {
  readonly area: Uint8Array;
  readonly view: DataView;
  readonly list: Uint8Array;
}

/** The reply's bin payload (what a call through the runtime answers) as a {@link CapsAnswer}. */
export function decodeCapsAnswer(payload: Uint8Array): CapsAnswer {
  const area = payload.slice(0, 32);
  return { area, view: new DataView(area.buffer), list: payload.slice(32) };
}

/** The reply's msgpack bytes (what the handler's ok list holds: a bin32) as a {@link CapsAnswer}. */
export function decodeRawCapsAnswer(msgpack: Uint8Array): CapsAnswer {
  if (msgpack[0] !== 0xc6) throw new Error('not a bin32');
  return decodeCapsAnswer(msgpack.subarray(5));
}
