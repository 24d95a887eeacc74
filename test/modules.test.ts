import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileEnclave, EnclaveError, loadEnclave, type Enclave, type EnclaveModule } from '../host/index.js';

const ECHO = 'enclave-modules/echo/build/echo.wasm';
const COUNTER = 'enclave-modules/counter/build/counter.wasm';

describe('echo', () => {
  let echo: Enclave;
  beforeAll(async () => {
    echo = await loadEnclave(ECHO);
  });

  const values: [string, unknown][] = [
    ['nil', null],
    ['true', true],
    ['small int', 7],
    ['negative int', -123456],
    ['2^53 - 1', Number.MAX_SAFE_INTEGER],
    ['float', 3.25],
    ['empty string', ''],
    ['unicode string', 'héllo ✓ 🙂'],
    ['nested', { a: [1, { b: 'c' }, null], d: { e: { f: [] } } }],
    ['bytes', new Uint8Array([0, 1, 2, 255])],
    ['64 KiB of bytes', new Uint8Array(65_536).map((_, i) => i & 0xff)],
    ['1 MiB string', 'x'.repeat(1_000_000)],
  ];
  for (const [what, value] of values) {
    it(`round-trips ${what}`, async () => {
      const back = await echo.call('echo', value);
      if (value instanceof Uint8Array) expect(new Uint8Array(back as Uint8Array)).toEqual(value);
      else expect(back).toEqual(value);
    });
  }

  it('returns bytes the caller owns: later calls do not change earlier replies', async () => {
    const first = (await echo.call('echo', new Uint8Array(32).fill(1))) as Uint8Array;
    await echo.call('echo', new Uint8Array(32).fill(2));
    expect([...first].every((b) => b === 1)).toBe(true);
  });

  it('refuses a request over its byte limit before copying, then serves the next call', async () => {
    await expect(echo.call('echo', new Uint8Array(2_000_000))).rejects.toMatchObject({ code: 'too_large' });
    expect(await echo.call('echo', 'still here')).toBe('still here');
  });

  it('refuses nesting deeper than its limit, then serves the next call', async () => {
    let deep: unknown = 0;
    for (let i = 0; i < 40; i++) deep = [deep];
    await expect(echo.call('echo', deep)).rejects.toMatchObject({ code: 'invalid_args' });
    expect(await echo.call('echo', [[1]])).toEqual([[1]]);
  });
});

describe('counter', () => {
  let mod: EnclaveModule;
  beforeAll(async () => {
    mod = await compileEnclave(await readFile(COUNTER));
  });

  it('keeps state across calls in one instance', async () => {
    const counter = mod.create();
    expect(await counter.call('get')).toBe(0);
    expect(await counter.call('incr')).toBe(1);
    expect(await counter.call('incr', { by: 41 })).toBe(42);
    expect(await counter.call('get')).toBe(42);
    expect(await counter.call('reset')).toBeNull();
    expect(await counter.call('get')).toBe(0);
  });

  it('gives every enclave its own memory', async () => {
    const a = mod.create();
    const b = mod.create();
    await a.call('incr', { by: 5 });
    expect(await b.call('get')).toBe(0);
    expect(await a.call('get')).toBe(5);
  });

  it('checks arguments against the contract before calling', async () => {
    const counter = mod.create();
    for (const bad of [{ by: 0 }, { by: 'one' }, { by: 1.5 }, { by: 1, extra: true }, [1]]) {
      const err = await counter.call('incr', bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EnclaveError);
      expect((err as EnclaveError).code).toBe('invalid_args');
    }
    expect(await counter.call('get')).toBe(0);
  });

  it('refuses an op the contract does not have', async () => {
    await expect(mod.create().call('decr')).rejects.toMatchObject({ code: 'unknown_op' });
  });
});
