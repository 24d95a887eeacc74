/**
 * Boundary round trip: an echo through the enclave against the physical floor, a raw Wasm call
 * that copies the same bytes in and out with no envelope and no checks.
 *
 *   npm run build && node dist/bench/boundary.js
 */
import { readFile } from 'node:fs/promises';
import { parse } from '@bytecodealliance/jco';
import { loadEnclave } from '../runtime/load.js';
import { formatNs, runCases, type Case } from './_harness.js';

const FLOOR_WAT = `(module
  (memory (export "memory") 64 64)
  (func (export "alloc") (param i32) (result i32) (i32.const 0x10000))
  ;; copy the request to the reply area and return its length: what echo does, minus everything else
  (func (export "call") (param $p i32) (param $l i32) (result i32)
    (memory.copy (i32.const 0x200000) (local.get $p) (local.get $l))
    (local.get $l)))`;

const BATCH = 256;

/** The floor: copy in, call, copy out. */
async function floorCall(): Promise<(payload: Uint8Array) => Uint8Array> {
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(await parse(FLOOR_WAT)), {});
  const memory = exports.memory as WebAssembly.Memory;
  const alloc = exports.alloc as (n: number) => number;
  const call = exports.call as (p: number, n: number) => number;
  const u8 = new Uint8Array(memory.buffer);
  return (payload) => {
    const p = alloc(payload.length);
    u8.set(payload, p);
    const n = call(p, payload.length);
    return u8.slice(0x200000, 0x200000 + n);
  };
}

export async function boundaryCases(sizes: readonly number[] = [16, 65_536]): Promise<Case[]> {
  const echo = await loadEnclave(await readFile(new URL('../../enclave-modules/echo/build/echo.wasm', import.meta.url)));
  const floor = await floorCall();
  const cases: Case[] = [];
  for (const size of sizes) {
    const payload = new Uint8Array(size).fill(7);
    const batch = size >= 65_536 ? 16 : BATCH;
    // Check once that both really round-trip the payload.
    const back = (await echo.call('echo', payload)) as Uint8Array;
    if (back.length !== size || floor(payload).length !== size) throw new Error('round trip lost bytes');
    cases.push({
      name: `floor ${size} B`,
      batch,
      fn: () => {
        for (let i = 0; i < batch; i++) floor(payload);
      },
    });
    cases.push({
      name: `enclave echo ${size} B`,
      batch,
      fn: async () => {
        for (let i = 0; i < batch; i++) await echo.call('echo', payload);
      },
    });
  }
  return cases;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await runCases(await boundaryCases(), {
    maxTime: Number(process.env.BENCH_TIME ?? 2),
    onCase: (r) => process.stderr.write(`  ${r.name}: ${formatNs(r.meanNs)} ±${r.rme.toFixed(1)}%\n`),
  });
  const byName = new Map(results.map((r) => [r.name, r]));
  console.log('| payload | floor | enclave echo | ratio |');
  console.log('|---|---|---|---|');
  for (const size of [16, 65_536]) {
    const f = byName.get(`floor ${size} B`)!;
    const e = byName.get(`enclave echo ${size} B`)!;
    console.log(`| ${size} B | ${formatNs(f.meanNs)} | ${formatNs(e.meanNs)} | ${(e.meanNs / f.meanNs).toFixed(1)}× |`);
  }
}
