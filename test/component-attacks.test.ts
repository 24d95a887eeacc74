/**
 * Hostile components against the runtime (review of issue 14, rev1): each case is a way a
 * component could make the host do work no fuel pays for, or crash it.
 */
import { describe, expect, it } from 'vitest';
import { EnclaveError } from '../core/index.js';
import { watComponent } from './helpers/component-fixtures.js';
import { MODES, loadIn } from './helpers/modes.js';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return (err as EnclaveError).code;
  }
  return 'ok';
}

/** A handler answering ok(nil), with `imports` and `body` (extra functions, a start) around it. */
function handlerWat(parts: { imports?: string; memory?: string; body?: string }): string {
  return `(module
    ${parts.imports ?? ''}
    ${parts.memory ?? '(memory (export "memory") 1 1)'}
    (data (i32.const 0x200) "\\c0")
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0x1000))
    (func (export "enclave:runtime/handler@1.0.0#call") (param i32 i32) (result i32)
      (i32.store8 (i32.const 0x100) (i32.const 0))
      (i32.store (i32.const 0x104) (i32.const 0x200))
      (i32.store (i32.const 0x108) (i32.const 1))
      (i32.const 0x100))
    ${parts.body ?? ''}
  )`;
}

function contract(capabilities: string[], fuel: number, memoryPages = 1): object {
  return {
    abi: 1,
    name: 'attack',
    version: '0.0.1',
    svn: 0,
    capabilities,
    limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages, fuel },
    ops: { ping: {} },
  };
}

describe.each(MODES)('a start function calling imports ($name)', (mode) => {
  // 20 000 crossings of jco's glue cost 20 000 × COMPONENT_IMPORT_FUEL, far over a budget of
  // 1 000 000; the loop itself costs about 100 000. Before the fix the crossings were free while a
  // start function ran (the import context's counter was set only once instantiation was over), so
  // a start could make budget / 5 import calls, each tens of microseconds of host work.
  it('pays for each crossing: over the budget, the load fails with fuel_exhausted', async () => {
    const wat = handlerWat({
      imports: '(import "enclave:runtime/clock@1.0.0" "now" (func $now (result i64)))',
      body: `(func $s (local $i i32)
        (loop $l
          (drop (call $now))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 20000)))))
        (start $s)`,
    });
    const bytes = await watComponent(wat, contract(['clock'], 1_000_000));
    expect(await codeOf(loadIn(mode, bytes, { capabilities: ['clock'], cacheDir: false }))).toBe('fuel_exhausted');
  });

  it('a start calling an import a few times within the budget loads and answers', async () => {
    const wat = handlerWat({
      imports: '(import "enclave:runtime/clock@1.0.0" "now" (func $now (result i64)))',
      body: '(func $s (drop (call $now)) (drop (call $now))) (start $s)',
    });
    const bytes = await watComponent(wat, contract(['clock'], 1_000_000));
    const enclave = await loadIn(mode, bytes, { capabilities: ['clock'], cacheDir: false });
    try {
      expect(await enclave.call('ping', null)).toBe(null);
    } finally {
      await enclave.close();
    }
  });
});
