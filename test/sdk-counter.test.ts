// The counter module at the ABI level: state across calls, typed errors, unknown ops.

import { beforeAll, describe, expect, it } from 'vitest';
import { compileModule, instantiateRaw, request, decode, errCode, concat, mpStr, type RawEnclave } from './helpers/raw-abi.js';

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await compileModule('counter');
});

const call = (e: RawEnclave, op: string, args?: number[] | Uint8Array) => decode(e.call(request(op, args)));

describe('counter', () => {
  it('keeps state across calls in one instance', async () => {
    const e = await instantiateRaw(wasm);
    expect(call(e, 'get')).toEqual({ ok: 0 });
    expect(call(e, 'incr')).toEqual({ ok: 1 });
    expect(call(e, 'incr', [0xc0])).toEqual({ ok: 2 });
    expect(call(e, 'incr', concat([0x81], mpStr('by'), [0x05]))).toEqual({ ok: 7 });
    expect(call(e, 'incr', concat([0x81], mpStr('by'), [0xcd, 0x01, 0x00]))).toEqual({ ok: 263 });
    expect(call(e, 'get')).toEqual({ ok: 263 });
    expect(call(e, 'reset')).toEqual({ ok: null });
    expect(call(e, 'get')).toEqual({ ok: 0 });
    // A fresh instance starts from zero.
    const f = await instantiateRaw(wasm);
    expect(call(f, 'get')).toEqual({ ok: 0 });
    expect(e.aborts).toEqual([]);
  });

  it('answers bad_request for bad args and keeps the state', async () => {
    const e = await instantiateRaw(wasm);
    call(e, 'incr');
    expect(errCode(e.call(request('incr', concat([0x81], mpStr('by'), mpStr('x')))))).toBe('bad_request');
    expect(errCode(e.call(request('incr', concat([0x81], mpStr('by'), [0x00]))))).toBe('bad_request');
    expect(errCode(e.call(request('incr', concat([0x81], mpStr('by'), [0xff]))))).toBe('bad_request');
    expect(errCode(e.call(request('incr', [0x05])))).toBe('bad_request');
    expect(call(e, 'get')).toEqual({ ok: 1 });
  });

  it('answers limit instead of overflowing', async () => {
    const e = await instantiateRaw(wasm);
    const max = [0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    expect(call(e, 'incr', concat([0x81], mpStr('by'), max))).toEqual({ ok: 2n ** 63n - 1n });
    expect(errCode(e.call(request('incr')))).toBe('limit');
  });

  it('answers unknown_op with a message, and the next call works', async () => {
    const e = await instantiateRaw(wasm);
    expect(call(e, 'decr')).toEqual({ err: { code: 'unknown_op', message: 'no handler for this op' } });
    expect(call(e, 'incr')).toEqual({ ok: 1 });
  });

  it('enforces its own limits: depth 8, 1024 request bytes', async () => {
    const e = await instantiateRaw(wasm);
    const nest = (n: number) => concat(new Array(n).fill(0x91), [0xc0]);
    expect(errCode(e.call(request('get', nest(7))))).toBeUndefined();
    expect(errCode(e.call(request('get', nest(8))))).toBe('bad_request');
    expect(e.alloc(1024)).not.toBe(0);
    expect(e.alloc(1025)).toBe(0);
  });
});
