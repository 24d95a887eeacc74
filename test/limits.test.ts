/**
 * Memory and size caps hold by every route (docs/LIMITS.md): memory.grow past the maximum is a
 * value inside the enclave, data segments must fit the initial memory, an oversized initial or
 * maximum memory is refused before instantiation, memory64 and shared memories are refused, and
 * requests and replies over the contract limits are refused before a byte is copied.
 */
import { describe, expect, it } from 'vitest';
import { loadEnclave } from '../host/index.js';
import { HOSTILE_CORPUS } from './hostile/corpus.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

const contract = (memoryPages: number, extra: object = {}) => ({
  ...MINIMAL_CONTRACT,
  limits: { ...MINIMAL_CONTRACT.limits, memoryPages, ...extra },
});

describe('linear memory caps', () => {
  it('memory.grow past the maximum returns -1 inside the enclave, and the host keeps serving', async () => {
    const entry = HOSTILE_CORPUS.find((c) => c.name === 'grow-report')!;
    const e = await loadEnclave(await entry.module());
    expect(await e.call('grow')).toEqual([3, -1, -1]);
    expect(await e.call('ok')).toBe('fine');
    // Grown to its maximum already: nothing more to grow, still a value.
    expect(await e.call('grow')).toEqual([0, -1, -1]);
  });

  it('refuses at load a data segment beyond the initial memory, even when it fits the maximum', async () => {
    for (const offset of ['0xfffc', '0x1fff0', '0xfffffff0']) {
      const bytes = await watModule(
        minimalWat({ memory: '(memory (export "memory") 1 2)', body: `(data (i32.const ${offset}) "\\01\\02\\03\\04\\05\\06\\07\\08")` }),
        contract(2),
      );
      expect(await codeOf(loadEnclave(bytes))).toBe('invalid_module');
    }
    // The same segment at the last bytes of the initial memory is fine.
    const ok = await watModule(
      minimalWat({ memory: '(memory (export "memory") 1 2)', body: '(data (i32.const 0xfff8) "\\01\\02\\03\\04\\05\\06\\07\\08")' }),
      contract(2),
    );
    expect(await (await loadEnclave(ok)).call('ping')).toBe(true);
  });

  it('refuses an initial memory above the cap before instantiating (no 4 GiB allocation)', async () => {
    const huge = HOSTILE_CORPUS.find((c) => c.name === 'huge-initial-memory')!;
    const t0 = performance.now();
    expect(await codeOf(loadEnclave(await huge.module()))).toBe('memory_limit');
    expect(performance.now() - t0).toBeLessThan(5000);
    // initial <= max <= contract <= policy: each step refuses on its own.
    const three = await watModule(minimalWat({ memory: '(memory (export "memory") 3 3)' }), contract(2));
    expect(await codeOf(loadEnclave(three))).toBe('memory_limit');
    const two = await watModule(minimalWat({ memory: '(memory (export "memory") 2 2)' }), contract(2));
    expect(await (await loadEnclave(two)).call('ping')).toBe(true);
    expect(await codeOf(loadEnclave(two, { policy: { memoryPages: 1 } }))).toBe('memory_limit');
  });

  it('refuses memory64 and shared memories', async () => {
    const shared = await watModule(minimalWat({ memory: '(memory (export "memory") 1 1 shared)' }), contract(1));
    expect(await codeOf(loadEnclave(shared))).toBe('invalid_module');
    const mem64 = await watModule(minimalWat({ memory: '(memory (export "memory") i64 1 1)' }).replace(/\(i32\.const (0x[0-9a-f]+)\) "/g, '(i64.const $1) "'), contract(1));
    expect(await codeOf(loadEnclave(mem64))).toBe('invalid_module');
  });
});

describe('request and reply byte limits', () => {
  // Counts enclave_alloc calls; `count` replies {ok: n}. `big` replies exactly replyBytes (64)
  // bytes of valid msgpack; `over` claims one byte more.
  const wat = `(module
    (memory (export "memory") 1 1)
    (global $allocs (mut i32) (i32.const 0))
    (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
    (data (i32.const 0x108) "\\00\\03\\00\\00\\40\\00\\00\\00")
    (data (i32.const 0x110) "\\00\\03\\00\\00\\41\\00\\00\\00")
    (data (i32.const 0x200) "\\81\\a2ok\\00")
    (data (i32.const 0x300) "\\81\\a2ok\\c4\\3a")
    (func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32)
      (global.set $allocs (i32.add (global.get $allocs) (i32.const 1))) (i32.const 0x1000))
    (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
      (local $c i32)
      (local.set $c (i32.load8_u offset=5 (local.get $p)))
      (if (i32.eq (local.get $c) (i32.const 0x62)) (then (return (i32.const 0x108)))) ;; b: big
      (if (i32.eq (local.get $c) (i32.const 0x6f)) (then (return (i32.const 0x110)))) ;; o: over
      (i32.store8 (i32.const 0x204) (global.get $allocs))
      (i32.const 0x100)))`;
  const limitsContract = {
    ...MINIMAL_CONTRACT,
    limits: { requestBytes: 64, replyBytes: 64, depth: 8, memoryPages: 1 },
    ops: { count: { args: { type: 'any' } }, big: {}, over: {} },
  };

  it('refuses a request over requestBytes before the enclave allocates or sees a byte', async () => {
    const e = await loadEnclave(await watModule(wat, limitsContract));
    expect(await e.call('count')).toBe(1);
    expect(await codeOf(e.call('count', 'x'.repeat(100)))).toBe('too_large');
    expect(await e.call('count')).toBe(2); // one more alloc: the refused request made none
    expect(await e.call('count', 'x'.repeat(40))).toBe(3); // under the limit: passes
  });

  it('accepts a reply of exactly replyBytes and refuses one byte more, before copying it', async () => {
    const e = await loadEnclave(await watModule(wat, limitsContract));
    const big = (await e.call('big')) as Uint8Array;
    expect(big).toBeInstanceOf(Uint8Array);
    expect(big.length).toBe(58);
    expect(await codeOf(e.call('over'))).toBe('too_large');
    expect(await e.call('count')).toBeGreaterThan(0);
  });
});
