/**
 * Regression tests for per-call state (issue 10, mutation survivors): under `state: 'per-call'`
 * every call starts from the module's initial state, every mutable global included (the first
 * and the last of them: a restore loop off by one at either end is caught) and linear memory. Each test names the
 * bug it guards, and fails on that bug (checked by applying it by hand).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadEnclave, type Enclave } from '../host/index.js';
import { MINIMAL_CONTRACT, watModule } from './helpers/wat.js';

/**
 * Two mutable globals, both 0 at start. Every op replies "clean" if both are still 0, else
 * "dirty", then `first` sets $g0, `second` sets $g1, `both` sets both (`ok` sets none).
 */
const GLOBALS_WAT = `(module
  (memory (export "memory") 1 1)
  (global $g0 (mut i32) (i32.const 0))
  (global $g1 (mut i32) (i32.const 0))
  (data (i32.const 0x100) "\\00\\02\\00\\00\\0a\\00\\00\\00")
  (data (i32.const 0x108) "\\00\\03\\00\\00\\0a\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a5clean")
  (data (i32.const 0x300) "\\81\\a2ok\\a5dirty")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $c i32) (local $reply i32)
    (local.set $c (i32.load8_u offset=5 (local.get $p)))
    (local.set $reply (select (i32.const 0x108) (i32.const 0x100) (i32.or (global.get $g0) (global.get $g1))))
    (if (i32.or (i32.eq (local.get $c) (i32.const 0x66)) (i32.eq (local.get $c) (i32.const 0x62))) (then (global.set $g0 (i32.const 1))))
    (if (i32.or (i32.eq (local.get $c) (i32.const 0x73)) (i32.eq (local.get $c) (i32.const 0x62))) (then (global.set $g1 (i32.const 1))))
    (local.get $reply)))`;

const CONTRACT = { ...MINIMAL_CONTRACT, name: 'globals', ops: { ok: {}, first: {}, second: {}, both: {} } };

const open: Enclave[] = [];
afterEach(() => {
  for (const e of open.splice(0)) e.close();
});

async function load(state: 'persistent' | 'per-call', wat = GLOBALS_WAT, contract: object = CONTRACT): Promise<Enclave> {
  const e = await loadEnclave(await watModule(wat, contract), { state });
  open.push(e);
  return e;
}

describe("state: 'per-call' restores every mutable global", () => {
  it('the module remembers its globals when state persists (the test can see a dirty global)', async () => {
    const e = await load('persistent');
    expect(await e.call('first')).toBe('clean');
    expect(await e.call('ok')).toBe('dirty');
  });

  it('the first mutable global is restored after each call', async () => {
    const e = await load('per-call');
    for (let i = 0; i < 3; i++) expect(await e.call('first')).toBe('clean');
    expect(await e.call('ok')).toBe('clean');
  });

  it('the last mutable global is restored after each call', async () => {
    const e = await load('per-call');
    for (let i = 0; i < 3; i++) expect(await e.call('second')).toBe('clean');
    expect(await e.call('ok')).toBe('clean');
  });

  it('all mutable globals are restored after each call', async () => {
    const e = await load('per-call');
    for (let i = 0; i < 3; i++) expect(await e.call('both')).toBe('clean');
    expect(await e.call('ok')).toBe('clean');
  });
});

/**
 * One byte of linear memory at 0x500, 0 at start. Every op replies "clean" if it is still 0, else
 * "dirty"; `mark` then sets it (`ok` leaves it).
 */
const MEMORY_WAT = `(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\0a\\00\\00\\00")
  (data (i32.const 0x108) "\\00\\03\\00\\00\\0a\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a5clean")
  (data (i32.const 0x300) "\\81\\a2ok\\a5dirty")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $reply i32)
    (local.set $reply (select (i32.const 0x108) (i32.const 0x100) (i32.load8_u (i32.const 0x500))))
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x6d)) (then (i32.store8 (i32.const 0x500) (i32.const 1))))
    (local.get $reply)))`;

const MEMORY_CONTRACT = { ...MINIMAL_CONTRACT, name: 'memory', ops: { ok: {}, mark: {} } };

describe("state: 'per-call' restores linear memory", () => {
  const loadMemory = (state: 'persistent' | 'per-call'): Promise<Enclave> => load(state, MEMORY_WAT, MEMORY_CONTRACT);

  it('the module remembers its memory when state persists (the test can see a dirty byte)', async () => {
    const e = await loadMemory('persistent');
    expect(await e.call('mark')).toBe('clean');
    expect(await e.call('ok')).toBe('dirty');
  });

  it("a byte one call wrote is gone for the next (another tenant's call)", async () => {
    const e = await loadMemory('per-call');
    for (let i = 0; i < 3; i++) expect(await e.call('mark')).toBe('clean');
    expect(await e.call('ok')).toBe('clean');
  });
});
