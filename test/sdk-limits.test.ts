// The SDK's reply path, limits and capability imports, on a test fixture with small limits
// (requestBytes 256, replyBytes 128, depth 4).

import { beforeAll, describe, expect, it } from 'vitest';
import { compileEntry, instantiateRaw, request, decode, errCode, concat, mpStr, hex, type RawEnclave, RawAbort } from './helpers/raw-abi.js';

let wasm: Uint8Array;
let e: RawEnclave;
beforeAll(async () => {
  wasm = await compileEntry('test/sdk-fixtures/limits.ts', ['--maximumMemory', '4']);
  e = await instantiateRaw(wasm);
});

const int = (n: number) => (n < 128 ? [n] : [0xcd, n >> 8, n & 0xff]);

describe('reply limits', () => {
  it('sends a reply up to replyBytes and a limit error above', () => {
    // {ok: str(n)}: 4 + 2 + n bytes for 32 <= n < 256.
    expect(e.call(request('big', int(122))).length).toBe(128);
    expect(errCode(e.call(request('big', int(123))))).toBe('limit');
    expect(decode(e.call(request('big', int(3))))).toEqual({ ok: 'xxx' });
  });

  it('sends limit for a reply deeper than the depth limit, and for a value that contains itself', () => {
    // {ok: ...} is level 1, so 3 nested arrays (levels 2..4) fit and 4 do not.
    expect(decode(e.call(request('deep', [3])))).toEqual({ ok: [[[null]]] });
    expect(errCode(e.call(request('deep', [4])))).toBe('limit');
    expect(errCode(e.call(request('cycle')))).toBe('limit');
  });

  it('cuts an error message at 256 bytes on a character boundary, or drops it when it does not fit', async () => {
    const f = await instantiateRaw(wasm);
    // Under replyBytes 128 the message does not fit: the error goes without it.
    expect(decode(f.call(request('long_err')))).toEqual({ err: { code: 'denied' } });
    f.call(request('set_limits', [0x93, 0xcd, 0x01, 0x00, 0xcd, 0x04, 0x00, 0x04]));
    expect(decode(f.call(request('long_err')))).toEqual({ err: { code: 'denied', message: 'é'.repeat(128) } });
  });

  it('clamps limits: replyBytes at least 32, depth 2..512', async () => {
    const f = await instantiateRaw(wasm);
    f.call(request('set_limits', [0x93, 0x01, 0x01, 0x01]));
    // Even with the smallest limits an error reply still fits.
    expect(f.alloc(2)).toBe(0);
    expect(f.alloc(1)).not.toBe(0);
    expect(errCode(f.readReply(f.callAt(f.alloc(1), 1)))).toBe('bad_request');
  });

  it('refuses requests over requestBytes at alloc, and depth over the limit', () => {
    expect(e.alloc(256)).not.toBe(0);
    expect(e.alloc(257)).toBe(0);
    const nest = (n: number) => concat(new Array(n).fill(0x91), [0xc0]);
    expect(errCode(e.call(request('deep', nest(3))))).toBeUndefined();
    expect(errCode(e.call(request('deep', nest(4))))).toBe('bad_request');
  });
});

describe('values', () => {
  it('encodes every kind canonically, lone surrogates as U+FFFD, set replacing a key', () => {
    const reply = e.call(request('kinds'));
    expect(decode(reply)).toEqual({
      ok: {
        nil: null,
        t: false,
        i: -(2n ** 63n),
        u: 2n ** 64n - 1n,
        f: 0.1,
        h: 1.5,
        s: 'héllo ❤ 😀',
        lone: '\ufffd',
        b: new Uint8Array(3),
        7: 'seven',
      },
    });
    // 1.5 is exact in float32: ca-3f-c0-00-00.
    expect(hex(reply)).toContain('a168ca3fc00000');
  });

  it('reads typed fields: has, intOr, asString of a non-ASCII key, length, keyAt, out-of-range at', () => {
    const args = concat([0x82], mpStr('a'), [0x05], mpStr('é'), mpStr('ü'));
    expect(decode(e.call(request('get', args)))).toEqual({ ok: [true, 5, 'ü', -2, 2, 'a', null] });
    expect(decode(e.call(request('get', [0xc0])))).toEqual({ ok: [false, -1, '', -2, 0, null, null] });
  });

  it('edits decoded containers: push past their size, set replacing and adding, copies, byte views', () => {
    const args = concat(
      [0x84],
      mpStr('a'), [0x93, 1, 2, 3],
      mpStr('m'), [0x82], mpStr('x'), [0x05], mpStr('y'), [0xc0],
      mpStr('s'), mpStr('héllo'),
      mpStr('b'), [0xc4, 0x03, 7, 8, 9],
    );
    expect(decode(e.call(request('edit', args)))).toEqual({
      ok: [
        [1, 2, 3, 1000, 'pushed'],
        { x: 'replaced', y: null, added: -1 },
        { x: 5, y: null },
        5,
        3,
        6,
        new TextEncoder().encode('héllo'),
        new Uint8Array([8, 9]),
        3,
        'héllo',
        [],
        {},
        -1,
        'added',
        'pushed',
        null,
      ],
    });
    // Empty decoded containers grow from nothing (keyAt(0) of an empty map is nil, so "" is added).
    const empty = concat([0x84], mpStr('a'), [0x90], mpStr('m'), [0x80], mpStr('s'), mpStr(''), mpStr('b'), [0xc4, 0x00]);
    expect((decode(e.call(request('edit', empty))) as { ok: unknown[] }).ok.slice(0, 6)).toEqual([
      [1000, 'pushed'],
      { '': 'replaced', added: -1 },
      {},
      2,
      2,
      0,
    ]);
  });

  it('Value.copy survives the next request; a kept view does not (documented)', () => {
    expect(errCode(e.call(request('keep', concat([0x81], mpStr('v'), [0xc4, 0x04, 1, 2, 3, 4]))))).toBeUndefined();
    const reply = decode(e.call(request('kept', concat([0xc4, 0x04, 9, 9, 9, 9])))) as { ok: Uint8Array[] };
    expect(reply.ok[0]).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(reply.ok[1]).not.toEqual(new Uint8Array([1, 2, 3, 4]));
  });
});

describe('capabilities and abort', () => {
  it('imports only what it uses, only from the enclave module', () => {
    const imports = WebAssembly.Module.imports(new WebAssembly.Module(wasm));
    expect(imports.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { module: 'enclave', name: 'abort', kind: 'function' },
      { module: 'enclave', name: 'random', kind: 'function' },
    ]);
  });

  it('fills random bytes through the import, in 64 KiB chunks', () => {
    const v = decode(e.call(request('random', [16]))) as { ok: Uint8Array };
    expect(v.ok).toHaveLength(16);
  });

  it('routes assert failures to enclave.abort with file and line, never to env.abort', async () => {
    const f = await instantiateRaw(wasm);
    expect(() => f.call(request('panic'))).toThrow(RawAbort);
    expect(f.aborts).toHaveLength(1);
    expect(f.aborts[0]).toMatch(/^boom at test\/sdk-fixtures\/limits\.ts:\d+:\d+$/);
  });
});
