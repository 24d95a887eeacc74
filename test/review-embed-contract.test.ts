/**
 * `enclave embed-contract` against hostile modules (review of issue 14): what the handler probe's
 * worker keeps of each reply, and the module files and output paths the command is given.
 */
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { beforeAll, describe, expect, it } from 'vitest';
import { PROBE_REPLY_KEEP, probeHandlers } from '../host/build/check.js';
import { parseContract } from '../runtime/index.js';
import { componentOf, withContract } from './helpers/component-fixtures.js';

/** A bin32 of `n` bytes (zeros) in msgpack: c6, length big-endian, then the bytes (zero in memory). */
const bin32Header = (n: number) => `\\c6\\${((n >>> 24) & 0xff).toString(16).padStart(2, '0')}\\${((n >>> 16) & 0xff).toString(16).padStart(2, '0')}\\${((n >>> 8) & 0xff).toString(16).padStart(2, '0')}\\${(n & 0xff).toString(16).padStart(2, '0')}`;

/** A core module whose `enclave_call` answers every request with `len` bytes at 0x1000 (`head` first). */
function bigReplyWat(head: string, len: number): string {
  return `(module
  (memory (export "memory") 2 2)
  (data (i32.const 0x1000) "${head}")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x800))
  (func (export "enclave_call") (param i32 i32) (result i32)
    (i32.store (i32.const 0x100) (i32.const 0x1000))
    (i32.store (i32.const 0x104) (i32.const ${len}))
    (i32.const 0x100)))`;
}

const LEN = 100_000;
const rawContract = (ops: number) => ({
  abi: 1,
  name: 'big',
  version: '1.0.0',
  svn: 0,
  capabilities: [],
  limits: { requestBytes: 1024, replyBytes: 120_000, depth: 8, memoryPages: 2 },
  ops: Object.fromEntries(Array.from({ length: ops }, (_, i) => [`op${i}`, {}])),
});
const contract = (ops: number) => parseContract(rawContract(ops));

describe('the handler probe keeps no long reply (one per op, up to limits.replyBytes each: gigabytes for a hostile module)', () => {
  it('a core module answering every probe with 100 000 bytes: reported by size, not kept', async () => {
    const garbage = await parse(bigReplyWat('\\ff', LEN));
    const probe = await probeHandlers(garbage, contract(3));
    expect(probe.failed).toBeUndefined();
    expect(probe.answers).toEqual(['op0', 'op1', 'op2'].map((op) => ({ op, kind: 'other', why: `it answered ${LEN} bytes, not the probe's answer` })));
    expect(LEN).toBeGreaterThan(PROBE_REPLY_KEEP);
  });

  it('a long {ok: ...} still says the op has a handler (a module that runs its handler for the probe)', async () => {
    const ok = await parse(bigReplyWat(`\\81\\a2ok${bin32Header(LEN - 9)}`, LEN));
    const probe = await probeHandlers(ok, contract(2));
    expect(probe.answers).toEqual([{ op: 'op0', kind: 'handler' }, { op: 'op1', kind: 'handler' }]);
  });

  it('a component answering every probe with ok(100 000 bytes): a handler each, through the runtime', async () => {
    const n = LEN - 4;
    const wat = `(module
    (memory (export "memory") 2 2)
    (data (i32.const 0x1000) "${bin32Header(n - 5)}")
    (global $bump (mut i32) (i32.const 0x800))
    (func (export "cabi_realloc") (param i32 i32 i32) (param $size i32) (result i32) (i32.const 0x800))
    (func (export "enclave:runtime/handler@1.0.0#call") (param i32 i32) (result i32)
      (i32.store8 (i32.const 0x100) (i32.const 0))
      (i32.store (i32.const 0x104) (i32.const 0x1000))
      (i32.store (i32.const 0x108) (i32.const ${n}))
      (i32.const 0x100)))`;
    const probe = await probeHandlers(withContract(await componentOf(wat), rawContract(2)), contract(2));
    expect(probe.failed).toBeUndefined();
    expect(probe.answers).toEqual([{ op: 'op0', kind: 'handler' }, { op: 'op1', kind: 'handler' }]);
  }, 120_000);
});
