/**
 * Encodes the many-functions corpus module straight to binary (core spec §5): parsing 100 000
 * functions of WAT takes jco longer than the whole rest of the corpus.
 */
import { encodeU32Leb } from '../../core/index.js';
import { I32, name, sleb } from './_binary.js';

function vec(items: number[][]): number[] {
  return [...encodeU32Leb(items.length), ...items.flat()];
}

function section(id: number, payload: number[]): number[] {
  return [id, ...encodeU32Leb(payload.length), ...payload];
}


/**
 * `count` functions `(param i32) (result i32)`, each `local.get 0; i32.const i; i32.add`, the last
 * returning the `ok` descriptor; then the three ABI exports; `attack` answers through the last one.
 */
export function manyFunctionsBinary(count: number): Uint8Array {
  const types = section(1, vec([
    [0x60, 1, I32, 1, I32], // 0: (i32) -> i32
    [0x60, 0, 1, I32], // 1: () -> i32
    [0x60, 2, I32, I32, 1, I32], // 2: (i32, i32) -> i32
  ]));
  const funcTypes: number[][] = [];
  for (let i = 0; i < count; i++) funcTypes.push([0]);
  funcTypes.push([1], [0], [2]);
  const funcs = section(3, vec(funcTypes));
  const memory = section(5, vec([[0x01, 1, 1]]));
  const exports = section(7, vec([
    [...name('memory'), 0x02, 0],
    [...name('enclave_abi_version'), 0x00, ...encodeU32Leb(count)],
    [...name('enclave_alloc'), 0x00, ...encodeU32Leb(count + 1)],
    [...name('enclave_call'), 0x00, ...encodeU32Leb(count + 2)],
  ]));
  const body = (code: number[]): number[] => {
    const withLocals = [0, ...code, 0x0b];
    return [...encodeU32Leb(withLocals.length), ...withLocals];
  };
  const bodies: number[][] = [];
  for (let i = 0; i < count - 1; i++) bodies.push(body([0x20, 0, 0x41, ...sleb(i), 0x6a]));
  bodies.push(body([0x41, ...sleb(0x100)]));
  bodies.push(body([0x41, 1]));
  bodies.push(body([0x41, ...sleb(0x1000)]));
  bodies.push(body([
    0x20, 0, 0x2d, 0, 5, // i32.load8_u offset=5 (local 0)
    0x41, ...sleb(0x61), 0x46, // i32.const 'a'; i32.eq
    0x04, 0x40, 0x41, 0, 0x10, ...encodeU32Leb(count - 1), 0x0f, 0x0b, // if: return call $last(0)
    0x41, ...sleb(0x100),
  ]));
  const code = section(10, vec(bodies));
  const segment = (offset: number, bytes: number[]): number[] => [0, 0x41, ...sleb(offset), 0x0b, ...encodeU32Leb(bytes.length), ...bytes];
  const data = section(11, vec([
    segment(0x100, [0x00, 0x02, 0, 0, 9, 0, 0, 0]),
    segment(0x200, [0x81, 0xa2, 0x6f, 0x6b, 0xa4, ...new TextEncoder().encode('fine')]),
  ]));
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...types, ...funcs, ...memory, ...exports, ...code, ...data]);
}
