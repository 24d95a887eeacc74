/**
 * The feature gate matches docs/ABI.md §2 (issue 9, finding 11): a module using each WebAssembly
 * feature either loads or is refused with `invalid_module`, exactly as the document lists it,
 * in-process and in a worker. Fuel metering must understand every instruction it lets through.
 */
import { describe, expect, it } from 'vitest';
import { EnclaveError, loadEnclave } from '../host/index.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

/** A minimal enclave plus `body` (functions, tables, globals...), with `ping` calling `$use` when given. */
function withFeature(body: string, use = false): Promise<Uint8Array> {
  return watModule(
    minimalWat({
      exports: `(func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (func (export "enclave_call") (param i32 i32) (result i32) ${use ? '(call $use)' : ''} (i32.const 0x100))`,
      body,
    }),
    MINIMAL_CONTRACT,
  );
}

async function outcome(bytes: Promise<Uint8Array>, options: { isolation?: 'worker' }): Promise<string> {
  let e;
  try {
    e = await loadEnclave(await bytes, options);
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return (err as EnclaveError).code;
  }
  try {
    return (await e.call('ping')) === true ? 'loads' : 'wrong reply';
  } finally {
    await e.close();
  }
}

/** In docs/ABI.md §2: these load, and run metered. */
const ALLOWED: [string, string][] = [
  ['bulk memory: memory.fill, memory.copy', '(func $use (memory.fill (i32.const 0x2000) (i32.const 1) (i32.const 16)) (memory.copy (i32.const 0x3000) (i32.const 0x2000) (i32.const 16)))'],
  ['bulk memory: memory.init, data.drop', '(data $d "abcd") (func $use (memory.init $d (i32.const 0x2000) (i32.const 0) (i32.const 4)) (data.drop $d))'],
  ['sign extension', '(func $use (drop (i32.extend8_s (i32.const 255))))'],
  ['non-trapping float-to-int', '(func $use (drop (i32.trunc_sat_f32_s (f32.const 1e30))))'],
  ['simd128', '(func $use (drop (i32x4.extract_lane 0 (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 1 1 1 1)))))'],
  ['mutable globals', '(global $g (mut i32) (i32.const 0)) (func $use (global.set $g (i32.add (global.get $g) (i32.const 1))))'],
  ['multi-value: a function with two results', '(func $two (result i32 i32) (i32.const 1) (i32.const 2)) (func $use (drop (i32.add (call $two))))'],
  ['multi-value: a block with a parameter', '(func $use (i32.const 1) (block (param i32) (result i32) (i32.const 2) (i32.add)) (drop))'],
  ['a funcref table with call_indirect', '(type $v (func)) (table 1 1 funcref) (elem (i32.const 0) $nop) (func $nop) (func $use (call_indirect (type $v) (i32.const 0)))'],
];

/** Outside docs/ABI.md §2: refused with invalid_module, never loaded unmetered. */
const REFUSED: [string, string][] = [
  ['tail calls: return_call', '(func $f (return_call $g)) (func $g) (func $use (call $f))'],
  ['tail calls: return_call_indirect', '(type $v (func)) (table 1 1 funcref) (elem (i32.const 0) $g) (func $g) (func $use (return_call_indirect (type $v) (i32.const 0)))'],
  ['table bulk operations: table.copy', '(table 2 2 funcref) (elem (i32.const 0) $use) (func $use (table.copy (i32.const 1) (i32.const 0) (i32.const 1)))'],
  ['table bulk operations: table.init', '(table 2 2 funcref) (elem $e func $use) (func $use (table.init $e (i32.const 0) (i32.const 0) (i32.const 1)))'],
  ['table bulk operations: elem.drop', '(table 2 2 funcref) (elem $e func $use) (func $use (elem.drop $e))'],
  ['reference types: table.get', '(table 1 1 funcref) (func $use (drop (table.get (i32.const 0))))'],
  ['reference types: table.size', '(table 1 1 funcref) (func $use (drop (table.size)))'],
  ['reference types: table.grow', '(table 1 2 funcref) (func $use (drop (table.grow (ref.null func) (i32.const 1))))'],
  ['reference types: ref.func', '(func $use (drop (ref.func $use))) (elem declare func $use)'],
  ['reference types: an externref table', '(table 1 1 externref)'],
  ['reference types: an externref parameter', '(func $f (param externref)) (func $use)'],
  ['reference types: a funcref local', '(func $use (local funcref))'],
  ['reference types: an externref global', '(global $g (mut externref) (ref.null extern))'],
];

describe.each([
  ['in-process', {}],
  ['worker', { isolation: 'worker' as const }],
])('the feature gate matches docs/ABI.md (%s)', (_mode, options) => {
  it.each(ALLOWED)('loads a module that uses %s', async (_name, body) => {
    expect(await outcome(withFeature(body, true), options)).toBe('loads');
  });

  it.each(REFUSED)('refuses a module that uses %s with invalid_module', async (_name, body) => {
    expect(await outcome(withFeature(body, body.includes('$use')), options)).toBe('invalid_module');
  });
});
