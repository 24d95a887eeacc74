// The SDK's echo against a raw ABI echo without the SDK (test/sdk-fixtures/raw.ts): both through
// the same lean host loop (alloc, copy in, call, read the descriptor, copy out). Targets: a 16 B echo
// at most 10x the raw round trip, a 64 KiB echo at most 2x.

import { expect, it } from 'vitest';
import { compileEntry, compileModule, instantiateRaw, request, concat, type RawEnclave } from '../helpers/raw-abi.js';

function lean(e: RawEnclave): (req: Uint8Array) => Uint8Array {
  const ex = e.instance.exports as {
    memory: WebAssembly.Memory;
    enclave_alloc(n: number): number;
    enclave_call(p: number, n: number): number;
  };
  return (req) => {
    const p = ex.enclave_alloc(req.length);
    new Uint8Array(ex.memory.buffer).set(req, p);
    const d = ex.enclave_call(p, req.length);
    const dv = new DataView(ex.memory.buffer);
    const rp = dv.getUint32(d, true);
    return new Uint8Array(ex.memory.buffer).slice(rp, rp + dv.getUint32(d + 4, true));
  };
}

function nsPerCall(f: (req: Uint8Array) => Uint8Array, req: Uint8Array, n: number): number {
  for (let i = 0; i < n / 10; i++) f(req);
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f(req);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / n);
  }
  return best;
}

it('echo costs at most 10x a raw round trip at 16 B and 2x at 64 KiB', async () => {
  const raw = lean(await instantiateRaw(await compileEntry('test/sdk-fixtures/raw.ts', ['--maximumMemory', '64'])));
  const echo = lean(await instantiateRaw(await compileModule('echo')));
  const ratios: Record<number, number> = {};
  for (const size of [16, 1024, 65536, 1 << 20]) {
    const data = new Uint8Array(size).fill(7);
    const bin = size < 256 ? concat([0xc4, size], data) : concat([0xc6, 0, (size >> 16) & 0xff, (size >> 8) & 0xff, size & 0xff], data);
    const req = request('echo', bin);
    const n = size >= 1 << 20 ? 200 : size >= 65536 ? 2000 : 50_000;
    const a = nsPerCall(raw, req, n);
    const b = nsPerCall(echo, req, n);
    ratios[size] = b / a;
    console.log(`${size} B: raw ${a.toFixed(0)} ns, sdk echo ${b.toFixed(0)} ns, ratio ${(b / a).toFixed(2)}`);
  }
  expect(ratios[16]).toBeLessThanOrEqual(10);
  expect(ratios[65536]).toBeLessThanOrEqual(2);
});
