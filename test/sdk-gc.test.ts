// The SDK's forced collections near the memory maximum (dispatch.ts, collectIfNeeded): a module that
// once grew past 75% of its maximum goes back to calls without a full collection, and big requests
// after many small calls still fit in a tight maximum (16 pages, requests and replies up to 200 000 B).

import { beforeAll, describe, expect, it } from 'vitest';
import { compileEntry, instantiateRaw, request, decode, concat, mpStr, type RawEnclave } from './helpers/raw-abi.js';

let wasm: Uint8Array;
beforeAll(async () => {
  wasm = await compileEntry('test/sdk-fixtures/gc.ts', ['--maximumMemory', '16']);
});

const MAX_PAGES = 16;
const pages = (e: RawEnclave) => e.memory.buffer.byteLength / 65536;
const collections = (e: RawEnclave) => (e.instance.exports.sdk_collections as () => number)();
const uint32 = (n: number) => [n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const bin = (n: number, seed: number) => concat([0xc6, ...uint32(n)], new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff));
const incr = request('incr', concat([0x81], mpStr('by'), [0x01]));
const garbage = (n: number) => request('garbage', [0xce, ...uint32(n)]);

function echoBig(e: RawEnclave, n: number, seed: number): void {
  const b = bin(n, seed);
  const reply = e.call(request('echo', b)) ;
  expect(reply.length).toBe(4 + b.length);
  expect(decode(reply)).toEqual({ ok: b.subarray(5) });
}

/** Grows `e` past 75% of its maximum with a big request and garbage. */
function grow(e: RawEnclave): void {
  echoBig(e, 150_000, 1);
  for (let i = 0; i < 4 && pages(e) * 4 < MAX_PAGES * 3; i++) e.call(garbage(100_000));
  expect(pages(e) * 4).toBeGreaterThanOrEqual(MAX_PAGES * 3);
}

describe('forced collections near the memory maximum', () => {
  it('stop running before every call once a module that grew past 75% settles', async () => {
    const e = await instantiateRaw(wasm);
    grow(e);
    // Settling: at most a few collections while memory still moves.
    for (let i = 0; i < 10; i++) e.call(incr);
    const before = collections(e);
    const n = 2000;
    for (let i = 0; i < n; i++) expect(decode(e.call(incr))).toEqual({ ok: 11 + i });
    const forced = collections(e) - before;
    // Before the change this was n (a full collection per call); now one every ~200 small calls
    // (an eighth of the maximum, at 256 + decode bytes each), and at least every 1024 calls.
    expect(forced).toBeGreaterThanOrEqual(2);
    expect(forced).toBeLessThanOrEqual(n / 100);
    expect(e.aborts).toEqual([]);
  });

  it('still collects before a request that may decode into more than the allowance left', async () => {
    const e = await instantiateRaw(wasm);
    grow(e);
    for (let i = 0; i < 10; i++) e.call(incr);
    const before = collections(e);
    // 4 000 one-byte values (each decodes into a 64-byte Value): 256 000 B of possible heap.
    const arr = concat([0xdd, ...uint32(4000)], new Uint8Array(4000).fill(0xc0));
    expect((decode(e.call(request('echo', arr))) as { ok: unknown[] }).ok).toHaveLength(4000);
    expect(collections(e) - before).toBeGreaterThanOrEqual(1);
  });

  it('big requests, many small calls and garbage, then big requests again: all within memoryPages', async () => {
    const e = await instantiateRaw(wasm);
    grow(e);
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 300; i++) e.call(incr);
      for (let i = 0; i < 5; i++) expect(decode(e.call(garbage(100_000)))).toEqual({ ok: 102_400 });
      // Requests that decode into about the decode budget each (64 B per 2-byte uint8 value): without
      // a collection before each, the garbage of the one before does not leave room for the next.
      for (let i = 0; i < 10; i++) {
        const n = 4000 + i * 50;
        const vals = concat([0xdd, ...uint32(n)], new Uint8Array(2 * n).map((_, j) => (j & 1 ? 0xff : 0xcc)));
        expect((decode(e.call(request('echo', vals))) as { ok: unknown[] }).ok).toHaveLength(n);
      }
      echoBig(e, 190_000 - round * 7_000, round);
      echoBig(e, 120_000 + round * 11_000, round + 1);
      expect(pages(e)).toBeLessThanOrEqual(MAX_PAGES);
    }
    expect(e.aborts).toEqual([]);
  });
});
