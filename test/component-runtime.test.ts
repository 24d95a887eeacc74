/**
 * Components served by the runtime's own call path (issue 14, decisions 4 to 6): the same Enclave,
 * API, limits, state policies and error codes as a core module, in both isolation modes. The
 * result area a component hands back is hostile: a "rigged" component answers whatever result area
 * the test asks for (out of bounds, misaligned, bad discriminant, error codes, huge lengths), and
 * the runtime must turn each into the core ABI's codes without reading past enclave memory.
 * The transpile cache holds JavaScript the runtime runs: reuse, tampering and foreign entries.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileEnclave, EnclaveModule, loadEnclave, type EnclaveHandle } from '../runtime/index.js';
import { patchGlue } from '../runtime/_component-glue.js';
import { COMPONENT_ERROR_CODES, componentFuelLeft, componentFuelUsed, startCounters } from '../runtime/_component-live.js';
import { clearTranspileMemoryCache, readTranspiled, transpileOffThread, transpilerFingerprint } from '../runtime/_component-transpile.js';
import { sealEntry } from '../runtime/_disk-cache.js';
import { componentFixture, watComponent, withContract } from './helpers/component-fixtures.js';
import { MODES, loadIn } from './helpers/modes.js';

/**
 * A component whose handler answers the result area its request describes: the args are a 24-byte
 * bin, read from the end of the request: u32 ret, u8 disc, u8 code, 2 unused, u32 ptr, u32 len,
 * u32 flags (bit 0: write nothing, just return `ret`; bit 1: call `random.fill` first, with
 * `cabi_realloc` calling it again from inside the glue's lowering). Post-return counts its calls
 * into byte 0x380 (a msgpack fixint), so a reply pointing there shows how often it ran.
 */
const RIGGED_WAT = `(module
  (import "enclave:runtime/random@1.0.0" "fill" (func $fill (param i32 i32)))
  (memory (export "memory") 1 2)
  (global $bump (mut i32) (i32.const 0x1000))
  (global $reenter (mut i32) (i32.const 0))
  (global $posts (mut i32) (i32.const 0))
  (data (i32.const 0x300) "\\c0")
  (data (i32.const 0x310) "\\a5hello")
  (data (i32.const 0x380) "\\00")
  (data (i32.const 0x400) "a message from the enclave")
  (func (export "cabi_realloc") (param i32 i32 i32) (param $size i32) (result i32)
    (local $p i32)
    (if (global.get $reenter) (then
      (global.set $reenter (i32.const 0))
      (call $fill (i32.const 4) (i32.const 0x3c0))))
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (local.get $size)))
    (if (i32.gt_u (global.get $bump) (i32.const 0xf000)) (then (global.set $bump (i32.const 0x1000))))
    (local.get $p))
  (func (export "cabi_post_enclave:runtime/handler@1.0.0#call") (param i32)
    (global.set $posts (i32.and (i32.add (global.get $posts) (i32.const 1)) (i32.const 0x7f)))
    (i32.store8 (i32.const 0x380) (global.get $posts))
    (global.set $bump (i32.const 0x1000)))
  (func (export "enclave:runtime/handler@1.0.0#call") (param $p i32) (param $n i32) (result i32)
    (local $a i32) (local $ret i32) (local $flags i32)
    (local.set $a (i32.sub (i32.add (local.get $p) (local.get $n)) (i32.const 24)))
    (local.set $ret (i32.load (local.get $a)))
    (local.set $flags (i32.load offset=16 (local.get $a)))
    (if (i32.and (local.get $flags) (i32.const 2)) (then
      (global.set $reenter (i32.const 1))
      (call $fill (i32.const 4) (i32.const 0x3a0))))
    (if (i32.eqz (i32.and (local.get $flags) (i32.const 1))) (then
      (i32.store8 (local.get $ret) (i32.load8_u offset=4 (local.get $a)))
      (if (i32.eq (i32.load8_u offset=4 (local.get $a)) (i32.const 1))
        (then
          (i32.store8 offset=4 (local.get $ret) (i32.load8_u offset=5 (local.get $a)))
          (i32.store offset=8 (local.get $ret) (i32.load offset=8 (local.get $a)))
          (i32.store offset=12 (local.get $ret) (i32.load offset=12 (local.get $a))))
        (else
          (i32.store offset=4 (local.get $ret) (i32.load offset=8 (local.get $a)))
          (i32.store offset=8 (local.get $ret) (i32.load offset=12 (local.get $a)))))))
    (local.get $ret))
)`;

const RIGGED_CONTRACT = {
  abi: 1,
  name: 'rigged',
  version: '1.0.0',
  svn: 0,
  capabilities: ['random'],
  limits: { requestBytes: 1024, replyBytes: 64, depth: 8, memoryPages: 2, fuel: 200_000 },
  ops: { area: { args: { type: 'bin' } } },
};

interface Area {
  ret?: number;
  disc?: number;
  code?: number;
  ptr?: number;
  len?: number;
  skip?: boolean;
  reenter?: boolean;
}

/** The rigged component's args for a result area (defaults: ok nil at 0x300, area at 0x100). */
function area(a: Area): Uint8Array {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(a.ret ?? 0x100, 0);
  b[4] = a.disc ?? 0;
  b[5] = a.code ?? 0;
  b.writeUInt32LE(a.ptr ?? 0x300, 8);
  b.writeUInt32LE(a.len ?? 1, 12);
  b.writeUInt32LE((a.skip ? 1 : 0) | (a.reenter ? 2 : 0), 16);
  return new Uint8Array(b);
}

const PAGE = 65_536;

/** Every discarded instance must not break the process: no unhandled rejection from jco's glue. */
const rejections: unknown[] = [];
const onRejection = (reason: unknown): void => void rejections.push(reason);
beforeAll(() => void process.on('unhandledRejection', onRejection));
afterAll(() => {
  process.off('unhandledRejection', onRejection);
  expect(rejections).toEqual([]);
});

describe.each(MODES)('a component enclave ($name)', (mode) => {
  let rigged: EnclaveHandle;
  beforeAll(async () => {
    rigged = await loadIn(mode, await watComponent(RIGGED_WAT, RIGGED_CONTRACT), { cacheDir: false, capabilities: ['random'] });
  });
  afterAll(() => rigged.close());

  it('answers a call: ok bytes become the reply value', async () => {
    expect(await rigged.call('area', area({}))).toBe(null);
    expect(await rigged.call('area', area({ ptr: 0x310, len: 6 }))).toBe('hello');
  });

  it('runs post-return after every answered call', async () => {
    const before = (await rigged.call('area', area({ ptr: 0x380, len: 1 }))) as number;
    await rigged.call('area', area({}));
    expect(await rigged.call('area', area({ ptr: 0x380, len: 1 }))).toBe((before + 2) & 0x7f);
  });

  it.each(COMPONENT_ERROR_CODES.map((code, index) => [index, code] as const))('err code %i answers %s, as a core enclave would', async (index, code) => {
    const err = await rigged.call('area', area({ disc: 1, code: index, ptr: 0x400, len: 26 })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code, detail: 'a message from the enclave' });
    // An enclave's own error leaves the instance in place: the next call answers.
    expect(await rigged.call('area', area({}))).toBe(null);
  });

  it('an err message is read to 1024 bytes at most and kept to 256', async () => {
    const err = (await rigged.call('area', area({ disc: 1, code: 0, ptr: 0x1000, len: 5000 })).catch((e: unknown) => e)) as { code: string; detail?: string };
    expect(err.code).toBe('bad_request');
    expect(Buffer.byteLength(err.detail ?? '')).toBeLessThanOrEqual(256);
  });

  const hostile: [string, string, Area][] = [
    ['a result area running past the end of memory', 'bad_reply', { ret: PAGE - 12, skip: true }],
    ['a result area far outside memory', 'bad_reply', { ret: 0xfffffff0, skip: true }],
    ['a misaligned result area', 'bad_reply', { ret: 0x102 }],
    ['discriminant 2', 'bad_reply', { disc: 2 }],
    ['discriminant 255', 'bad_reply', { disc: 255 }],
    ['error code 11', 'bad_reply', { disc: 1, code: 11, ptr: 0x400, len: 4 }],
    ['error code 255', 'bad_reply', { disc: 1, code: 255, ptr: 0x400, len: 4 }],
    ['an ok list outside memory', 'bad_reply', { ptr: PAGE - 10, len: 20 }],
    ['an ok list at a huge pointer', 'bad_reply', { ptr: 0xffffff00, len: 8 }],
    ['an ok list over the reply limit', 'too_large', { len: 61 }],
    ['an ok list of 2^32-1 bytes', 'too_large', { ptr: 0, len: 0xffffffff }],
    ['too large and outside memory: too_large first, nothing read', 'too_large', { ptr: 0xfffffff0, len: 1000 }],
    ['an empty ok list (no msgpack value)', 'bad_reply', { len: 0 }],
    ['an ok list of two msgpack values', 'bad_reply', { ptr: 0x300, len: 2 }],
    ['an err message outside memory', 'bad_reply', { disc: 1, code: 0, ptr: 0x400, len: 0xffffffff }],
    ['an err message at a huge pointer', 'bad_reply', { disc: 1, code: 2, ptr: 0xfffffff0, len: 1 }],
  ];
  it.each(hostile)('%s: %s', async (_what, code, a) => {
    await expect(rigged.call('area', area(a))).rejects.toMatchObject({ code });
    // bad_reply discards the instance; either way the next call is served.
    expect(await rigged.call('area', area({}))).toBe(null);
  });

  it('an ok list exactly at the reply limit (with its 4 bytes of envelope) answers', async () => {
    // 60 bytes of memory at 0x300: not one msgpack value, so bad_reply, not too_large: the size passed.
    await expect(rigged.call('area', area({ len: 60 }))).rejects.toMatchObject({ code: 'bad_reply' });
  });

  it('an import called again from cabi_realloc inside the glue breaks nothing (and nothing rejects unhandled)', async () => {
    const outcome = await rigged.call('area', area({ reenter: true })).then(
      (v) => v,
      (e: { code: string }) => e.code,
    );
    expect([null, 'trap', 'stack_overflow']).toContain(outcome);
    expect(await rigged.call('area', area({}))).toBe(null);
  });

  describe('limits and traps (the hand-written echo component)', () => {
    let echo: EnclaveHandle;
    beforeAll(async () => {
      echo = await loadIn(mode, await componentFixture('echo'), { cacheDir: false, capabilities: ['random', 'log'] });
    });
    afterAll(() => echo.close());

    it('echoes, keeps state, and reports the fuel of a call', async () => {
      const stats = { fuel: 0 };
      expect(await echo.call('echo', { a: [1, 'x'] }, { stats })).toEqual({ a: [1, 'x'] });
      expect(stats.fuel).toBeGreaterThan(0);
      expect(stats.fuel).toBeLessThanOrEqual(echo.limits.fuel);
      const n = (await echo.call('count')) as number;
      expect(await echo.call('count')).toBe(n + 1);
    });

    it('an infinite loop is fuel_exhausted, charged the whole budget, and the instance is fresh after', async () => {
      const stats = { fuel: 0 };
      await expect(echo.call('spin', null, { stats })).rejects.toMatchObject({ code: 'fuel_exhausted' });
      expect(stats.fuel).toBe(echo.limits.fuel);
      expect(await echo.call('count')).toBe(1);
    });

    it('a trap is trap, a recursion without end is stack_overflow', async () => {
      await expect(echo.call('trap')).rejects.toMatchObject({ code: 'trap' });
      await expect(echo.call('deep')).rejects.toMatchObject({ code: 'stack_overflow' });
      expect(await echo.call('echo', 7)).toBe(7);
    });

    it('memory.grow stops at the memory maximum, within the limit', async () => {
      expect(await echo.call('grow')).toBe(3);
      expect(await echo.call('echo', 'still here')).toBe('still here');
    });

    it('an op the component does not know is its own unknown_op', async () => {
      await expect(echo.call('missing', 1)).rejects.toMatchObject({ code: 'unknown_op' });
    });
  });

  it('per-call state: every call gets a pristine instance', async () => {
    const e = await loadIn(mode, await componentFixture('echo'), { cacheDir: false, capabilities: ['random', 'log'], state: 'per-call' });
    try {
      expect(await e.call('count')).toBe(1);
      expect(await e.call('count')).toBe(1);
      expect(await e.call('grow')).toBe(3);
      expect(await e.call('count')).toBe(1);
    } finally {
      await e.close();
    }
  });

  it('per-session state: one instance per session', async () => {
    const e = await loadIn(mode, await componentFixture('echo'), { cacheDir: false, capabilities: ['random', 'log'], state: 'per-session' });
    try {
      expect(await e.call('count', null, { session: 'a' })).toBe(1);
      expect(await e.call('count', null, { session: 'a' })).toBe(2);
      expect(await e.call('count', null, { session: 'b' })).toBe(1);
      expect(await e.endSession('a')).toBe(true);
      expect(await e.call('count', null, { session: 'a' })).toBe(1);
    } finally {
      await e.close();
    }
  });

});

describe('worker isolation', () => {
  it('an unmetered component spinning is stopped by the deadline (timeout), and the next call gets a fresh worker', async () => {
    const e = await loadEnclave(await componentFixture('echo'), {
      cacheDir: false,
      capabilities: ['random', 'log'],
      isolation: 'worker',
      metering: false,
      deadlineMs: 5000, // the next call runs on a fresh worker within it, on a loaded 2-core machine too
    });
    try {
      await expect(e.call('spin')).rejects.toMatchObject({ code: 'timeout' });
      expect(await e.call('count')).toBe(1);
    } finally {
      await e.close();
    }
  });
});

describe('fuel over several core instances', () => {
  const counters = (...left: number[]) => ({ counters: left.map((value) => ({ value }) as unknown as WebAssembly.Global), postReturn: undefined });

  it('is the sum of what each counter used', () => {
    expect(componentFuelUsed(counters(100, 90, 75), 100)).toBe(35);
    expect(componentFuelLeft(counters(100, 90, 75), 100)).toBe(65);
  });

  it('is exhausted when the sum passes the budget, though no counter ran out', () => {
    expect(componentFuelUsed(counters(40, 40, 100), 100)).toBe(-1);
    expect(componentFuelLeft(counters(40, 40, 100), 100)).toBe(-1);
  });

  it('is exhausted when any counter is below zero', () => {
    expect(componentFuelUsed(counters(100, -1, 100), 100)).toBe(-1);
  });

  it('sets every counter to the budget before a call', () => {
    const c = counters(1, 2, 3);
    startCounters(c, 77);
    expect(c.counters.map((g) => g.value)).toEqual([77, 77, 77]);
  });
});

describe('module-level checks', () => {
  it('metering: false runs the uninstrumented core modules', async () => {
    const mod = await compileEnclave(await componentFixture('echo'), { cacheDir: false });
    const e = mod.create({ capabilities: ['random', 'log'], metering: false });
    const stats = { fuel: -1 };
    expect(await e.call('echo', 3, { stats })).toBe(3);
    expect(stats.fuel).toBe(0);
  });

  it('a memory limit below the component memory maximum is memory_limit at create', async () => {
    const mod = await EnclaveModule.compile(await componentFixture('echo'), { cacheDir: false });
    expect(() => mod.create({ capabilities: ['random', 'log'], policy: { memoryPages: 2 } })).toThrow(expect.objectContaining({ code: 'memory_limit' }));
  });

  it('a component instantiating one of its core modules twice is invalid_module (each instance is memory and tables the limits did not count)', async () => {
    const { parse, print } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    const bytes = await watComponent(RIGGED_WAT);
    const text = await print(bytes);
    const line = /\(core instance \$wit-component-shim-instance \(;0;\) \(instantiate \$wit-component-shim-module\)\)/;
    expect(text).toMatch(line);
    const twice = await parse(text.replace(line, (m) => `${m}\n  (core instance $again (instantiate $wit-component-shim-module))`));
    const mod = await compileEnclave(withContract(twice, RIGGED_CONTRACT), { cacheDir: false });
    expect(() => mod.create({ capabilities: ['random'] })).toThrow(expect.objectContaining({ code: 'invalid_module', message: expect.stringContaining('more than once') }));
  });

  it('the measurement of a component is its own, and the same in both modes', async () => {
    const bytes = await componentFixture('echo');
    const a = await loadEnclave(bytes, { cacheDir: false, capabilities: ['random', 'log'] });
    const b = await loadEnclave(bytes, { cacheDir: false, capabilities: ['random', 'log'], isolation: 'worker' });
    try {
      expect(a.measurement).toBe(b.measurement);
      expect(a.measurement).toMatch(/^[0-9a-f]{64}$/);
      expect(a.contract.name).toBe('wat-echo');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('the glue patches', () => {
  it('apply to a glue with imports, each exactly once', async () => {
    const { transpileBytes } = await import('@bytecodealliance/jco-transpile');
    const { TRANSPILE_OPTIONS } = await import('../runtime/_component-glue.js');
    const out = await transpileBytes(await watComponent(RIGGED_WAT, RIGGED_CONTRACT), { ...TRANSPILE_OPTIONS, instantiation: { tag: 'async' } });
    const glue = new TextDecoder().decode(out.files['component.js']);
    const patched = patchGlue(glue);
    expect(patched).toContain('createdTask.resolve([syncRes]); createdTask.exit();');
    expect(patched).not.toContain('async function _clearCurrentTask(');
    expect(patched).not.toContain('process?.env?.JCO_DEBUG');
    // A glue that is not what this jco writes is refused, not run half-patched.
    expect(() => patchGlue(glue.replace('if (createdTask) { createdTask.resolve([syncRes]); }', ''))).toThrow(expect.objectContaining({ code: 'internal' }));
    expect(() => patchGlue(`${glue}\n// async function _clearCurrentTask(args) {`)).toThrow(expect.objectContaining({ code: 'internal' }));
    expect(() => patchGlue('export const x = 1;')).toThrow(expect.objectContaining({ code: 'internal' }));
  });
});

describe('transpiling', () => {
  it('past its deadline is timeout', async () => {
    const bytes = await componentFixture('echo');
    await expect(transpileOffThread(bytes, 3, 1)).rejects.toMatchObject({ code: 'timeout' });
  });

  it('bytes jco cannot transpile are invalid_module', async () => {
    await expect(transpileOffThread(Uint8Array.of(0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 0x42), 0)).rejects.toMatchObject({ code: 'invalid_module' });
  });
});

describe('the transpile cache on disk (it holds JavaScript the runtime runs)', () => {
  let dir: string;
  let bytes: Uint8Array;
  let file: string;
  const marker = '__enclaveTranspileCacheMarker';
  const g = globalThis as Record<string, unknown>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'enclave-jco-cache-'));
    bytes = await componentFixture('echo');
    file = join(dir, `${createHash('sha256').update(bytes).digest('hex')}-jco-v1.bin`);
  });

  /** The entry rewritten with `glue` (its hash recomputed: a file of ours that checks). */
  function plant(glue: string): void {
    const raw = readFileSync(file);
    const body = raw.subarray(8 + 32);
    const len = body.readUInt32LE(0);
    const manifest = body.subarray(0, 4 + len);
    writeFileSync(file, sealEntry(new TextEncoder().encode('ENCJCO01'), Buffer.concat([manifest, Buffer.from(glue, 'utf8')])));
  }

  async function load(): Promise<void> {
    clearTranspileMemoryCache();
    const e = await loadEnclave(bytes, { cacheDir: dir, capabilities: ['random', 'log'] });
    expect(await e.call('echo', 1)).toBe(1);
  }

  it('a load writes one entry, with the transpiler fingerprint and the module names', async () => {
    await load();
    expect(readdirSync(dir)).toContain(file.slice(dir.length + 1));
    const entry = await readTranspiled(file, createHash('sha256').update(bytes).digest('hex'), 3);
    expect(entry?.modules).toEqual(['component.core.wasm', 'component.core2.wasm', 'component.core3.wasm']);
    expect(entry?.glue).toContain('export function instantiate(');
    expect(transpilerFingerprint()).toMatch(/^[0-9a-f]{16}$/);
    // Another component's hash, or another module count, is a miss.
    expect(await readTranspiled(file, '0'.repeat(64), 3)).toBeUndefined();
    expect(await readTranspiled(file, createHash('sha256').update(bytes).digest('hex'), 2)).toBeUndefined();
  });

  it('the next load (memory cache cleared) runs the entry from disk', async () => {
    const glue = (await readTranspiled(file, createHash('sha256').update(bytes).digest('hex'), 3))!.glue;
    plant(`${glue}\nglobalThis.${marker} = 1;\n`);
    delete g[marker];
    await load();
    expect(g[marker]).toBe(1);
    plant(glue);
  });

  it('a tampered entry (contents not matching its hash) is ignored, and rewritten', async () => {
    const raw = readFileSync(file);
    const glue = (await readTranspiled(file, createHash('sha256').update(bytes).digest('hex'), 3))!.glue;
    const at = raw.lastIndexOf(Buffer.from('export function instantiate('));
    const tampered = Buffer.concat([raw.subarray(0, at), Buffer.from(`globalThis.${marker} = 2;\n`), raw.subarray(at)]);
    writeFileSync(file, tampered);
    delete g[marker];
    await load();
    expect(g[marker]).toBeUndefined();
    expect((await readTranspiled(file, createHash('sha256').update(bytes).digest('hex'), 3))?.glue).toBe(glue);
  });

  it('an entry group or others can write is ignored', async () => {
    const glue = (await readTranspiled(file, createHash('sha256').update(bytes).digest('hex'), 3))!.glue;
    plant(`${glue}\nglobalThis.${marker} = 3;\n`);
    chmodSync(file, 0o666);
    delete g[marker];
    await load();
    expect(g[marker]).toBeUndefined();
  });

  it('an entry of another transpiler (fingerprint) is ignored', async () => {
    const raw = readFileSync(file);
    const body = raw.subarray(8 + 32);
    const len = body.readUInt32LE(0);
    const manifest = JSON.parse(body.subarray(4, 4 + len).toString('utf8'));
    manifest.transpiler = '0123456789abcdef';
    const m = Buffer.from(JSON.stringify(manifest));
    const l = Buffer.alloc(4);
    l.writeUInt32LE(m.length);
    writeFileSync(file, sealEntry(new TextEncoder().encode('ENCJCO01'), Buffer.concat([l, m, Buffer.from(`globalThis.${marker} = 4;\n`), body.subarray(4 + len)])), { mode: 0o600 });
    chmodSync(file, 0o600);
    delete g[marker];
    await load();
    expect(g[marker]).toBeUndefined();
  });
});
