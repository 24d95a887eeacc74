/**
 * Regression tests for the bounds checks on what the enclave hands back (issue 10, mutation
 * survivors): the reply descriptor is 8 bytes and must lie wholly inside enclave memory
 * (`d + 8 > length` refused, not only `d > length`). Each test names the bug it guards, and fails
 * on that bug (checked by applying it by hand).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnclaveError, loadEnclave, type Enclave } from '../host/index.js';
import { MINIMAL_CONTRACT, watModule } from './helpers/wat.js';

const PAGE = 65_536;

/**
 * One page of memory. `enclave_call` returns a descriptor address chosen by the op's first letter
 * (offset 5 of the request `{op: ...}`): `at_end` the last 8 bytes of memory (a valid descriptor of
 * the reply `{ok: true}`), `straddle` one byte further (the last byte outside), `half` 4 bytes
 * from the end (the length outside), `past` exactly the memory's length; `ok` an ordinary one.
 */
const DESCRIPTOR_WAT = `(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\c3")
  (data (i32.const ${PAGE - 8}) "\\00\\02\\00\\00\\05\\00\\00\\00")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $c i32)
    (local.set $c (i32.load8_u offset=5 (local.get $p)))
    (if (i32.eq (local.get $c) (i32.const 0x61)) (then (return (i32.const ${PAGE - 8}))))
    (if (i32.eq (local.get $c) (i32.const 0x73)) (then (return (i32.const ${PAGE - 7}))))
    (if (i32.eq (local.get $c) (i32.const 0x68)) (then (return (i32.const ${PAGE - 4}))))
    (if (i32.eq (local.get $c) (i32.const 0x70)) (then (return (i32.const ${PAGE}))))
    (i32.const 0x100)))`;

let enclave: Enclave;
beforeAll(async () => {
  const contract = { ...MINIMAL_CONTRACT, ops: { ok: {}, at_end: {}, straddle: {}, half: {}, past: {} } };
  enclave = await loadEnclave(await watModule(DESCRIPTOR_WAT, contract));
});
afterAll(() => {
  enclave?.close();
});

async function outcome(op: string): Promise<unknown> {
  try {
    return { value: await enclave.call(op) };
  } catch (err) {
    return err instanceof EnclaveError ? { code: err.code } : { thrown: String(err) };
  }
}

describe('reply descriptor bounds (docs/ABI.md: 8 bytes, wholly inside enclave memory)', () => {
  it('a descriptor in the last 8 bytes of memory is read (the bound is inclusive)', async () => {
    expect(await outcome('at_end')).toEqual({ value: true });
  });

  it('a descriptor whose last byte lies outside memory is bad_reply (d + 8 > length, not d > length)', async () => {
    expect(await outcome('straddle')).toEqual({ code: 'bad_reply' });
    expect(await outcome('ok')).toEqual({ value: true });
  });

  it('a descriptor whose length field lies outside memory is bad_reply', async () => {
    expect(await outcome('half')).toEqual({ code: 'bad_reply' });
    expect(await outcome('ok')).toEqual({ value: true });
  });

  it('a descriptor at exactly the memory length is bad_reply', async () => {
    expect(await outcome('past')).toEqual({ code: 'bad_reply' });
    expect(await outcome('ok')).toEqual({ value: true });
  });
});
