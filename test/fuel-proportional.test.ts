/**
 * Fuel is proportional to work (issue 9, finding 2): bulk memory operations pay by length, and
 * capability imports are charged by the host-side import itself, by size, whatever route reaches
 * them (a direct `call` or a `call_indirect` through a table). In-process and in a worker alike.
 * Assertions are on fuel, never on time (the time bound is measured by bench/fuel-bound.ts).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { loadEnclave } from '../host/index.js';
import { watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

type Mode = { isolation?: 'worker' };
const MODES: [string, Mode][] = [
  ['in-process', {}],
  ['worker', { isolation: 'worker' }],
];

/** A loose floor on the bulk charge rate: whatever the rate, a byte costs at least this much fuel. */
const BYTES_PER_FUEL_AT_MOST = 256;

function contract(ops: string[], extra: { capabilities?: string[]; memoryPages?: number; fuel?: number } = {}): object {
  return {
    abi: 1,
    name: 'fuel-proportional',
    version: '0.0.1',
    svn: 0,
    capabilities: extra.capabilities ?? [],
    limits: { requestBytes: 256, replyBytes: 256, depth: 8, memoryPages: extra.memoryPages ?? 16, fuel: extra.fuel ?? 100_000_000 },
    ops: Object.fromEntries(ops.map((op) => [op, {}])),
  };
}

/** Dispatch on the first letter of the op name (request `{op}`: the name starts at byte 5); no two ops may share it. */
function dispatcher(cases: Record<string, string>, parts: { imports?: string; memory?: string; more?: string } = {}): string {
  // Each op in its own function: a function body is charged whole on entry, all its branches.
  const entries = Object.entries(cases);
  const funcs = entries.map(([op, body]) => `(func $op_${op} (local $i i32) ${body})`).join('\n    ');
  const arms = entries
    .map(([op]) => `(if (i32.eq (local.get $c) (i32.const ${op.charCodeAt(0)})) (then (call $op_${op})))`)
    .join('\n      ');
  return `(module
    ${parts.imports ?? ''}
    ${parts.memory ?? '(memory (export "memory") 16 16)'}
    (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
    (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
    ${parts.more ?? ''}
    ${funcs}
    (func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
      (local $c i32)
      (local.set $c (i32.load8_u offset=5 (local.get $p)))
      ${arms}
      (i32.const 0x100)))`;
}

// 15 MiB past the first 64 KiB (where the request and reply live), 16 times: 240 MiB of work.
const BULK_LEN = 15 * 1024 * 1024;
const BULK_TIMES = 16;
const bulkLoop = (op: string) => `(local.set $i (i32.const 0))
        (loop $l
          ${op}
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const ${BULK_TIMES}))))`;

const BULK_WAT = dispatcher(
  {
    fill: bulkLoop(`(memory.fill (i32.const 0x10000) (i32.const 7) (i32.const ${BULK_LEN}))`),
    copy: bulkLoop(`(memory.copy (i32.const 0x10000) (i32.const 0x20000) (i32.const ${BULK_LEN - 0x10000}))`),
    init: bulkLoop(`(memory.init $seg (i32.const 0x10000) (i32.const 0) (i32.const 65536))`),
    zero: bulkLoop(`(memory.fill (i32.const 0x10000) (i32.const 7) (i32.const 0))`),
    ok: 'nop',
  },
  { memory: '(memory (export "memory") 256 256)', more: `(data $seg "${'\\00'.repeat(65536)}")` },
);
const BULK_OPS = ['fill', 'copy', 'init', 'zero', 'ok'];

describe.each(MODES)('fuel: bulk memory operations pay by length (%s)', (_name, mode) => {
  it('a loop of memory.fill, memory.copy and memory.init uses fuel in proportion to the bytes it moves', async () => {
    const e = await loadEnclave(await watModule(BULK_WAT, contract(BULK_OPS, { memoryPages: 256, fuel: 2_000_000_000 })), {
      ...mode,
      policy: { fuel: 2_000_000_000, memoryPages: 256 },
    });
    try {
      const stats = { fuel: 0 };
      await e.call('zero', undefined, { stats });
      const base = stats.fuel;
      for (const [op, bytes] of [
        ['fill', BULK_LEN],
        ['copy', BULK_LEN - 0x10000],
        ['init', 65536],
      ] as const) {
        expect(await e.call(op, undefined, { stats })).toBe('fine');
        expect(stats.fuel - base).toBeGreaterThanOrEqual((BULK_TIMES * bytes) / BYTES_PER_FUEL_AT_MOST);
      }
    } finally {
      await e.close();
    }
  });

  it('an endless loop of 16 MiB memory.fill ends in fuel_exhausted under a budget a few fills exceed', async () => {
    const wat = dispatcher(
      { attack: `(loop $l (memory.fill (i32.const 0x10000) (i32.const 7) (i32.const ${BULK_LEN})) (br $l))`, ok: 'nop' },
      { memory: '(memory (export "memory") 256 256)' },
    );
    // 100 000 fuel covers 12 500 unmetered iterations of this loop, but not 2 MiB of filling.
    const fuel = Math.floor((2 * 1024 * 1024) / BYTES_PER_FUEL_AT_MOST);
    const e = await loadEnclave(await watModule(wat, contract(['attack', 'ok'], { memoryPages: 256, fuel })), mode);
    try {
      const stats = { fuel: 0 };
      expect(await codeOf(e.call('attack', undefined, { stats }))).toBe('fuel_exhausted');
      expect(stats.fuel).toBe(fuel);
      expect(await e.call('ok')).toBe('fine');
    } finally {
      await e.close();
    }
  });

  it('bulk operations in a start function are charged by length too: the load fails with fuel_exhausted', async () => {
    const start = (times: number) =>
      dispatcher(
        { ok: 'nop' },
        {
          memory: '(memory (export "memory") 256 256)',
          more: `(func $s (local $i i32)
            (loop $l
              (memory.fill (i32.const 0x10000) (i32.const 7) (i32.const ${BULK_LEN}))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br_if $l (i32.lt_u (local.get $i) (i32.const ${times})))))
            (start $s)`,
        },
      );
    const fuel = Math.floor((4 * BULK_LEN) / BYTES_PER_FUEL_AT_MOST);
    // Before: 1 000 fills of 15 MiB fitted in the start budget.
    expect(await codeOf(loadEnclave(await watModule(start(1000), contract(['ok'], { memoryPages: 256, fuel })), mode))).toBe(
      'fuel_exhausted',
    );
  });
});

const CAPS_WAT = dispatcher(
  {
    // Each pair has the same instruction count: a direct call and an unused i32.const, or call_indirect
    // (whose table index is the extra i32.const) and a nop.
    d: '(drop (call $random (i32.const 0x10000) (i32.const 65536))) (drop (i32.const 0))',
    i: '(drop (call_indirect (type $rt) (i32.const 0x10000) (i32.const 65536) (i32.const 0))) (nop)',
    s: '(drop (call $random (i32.const 0x10000) (i32.const 16))) (drop (i32.const 0))',
    l: '(call $log (i32.const 1) (i32.const 0x10000) (i32.const 1024)) (drop (i32.const 1))',
    k: '(call_indirect (type $lt) (i32.const 1) (i32.const 0x10000) (i32.const 1024) (i32.const 1)) (nop)',
    r: '(drop (call $report (i32.const 0x10000) (i32.const 32) (i32.const 0x11000) (i32.const 0x2000))) (drop (i32.const 2))',
    q: '(drop (call_indirect (type $qt) (i32.const 0x10000) (i32.const 32) (i32.const 0x11000) (i32.const 0x2000) (i32.const 2))) (nop)',
    n: '(drop (call $now)) (drop (i32.const 3))',
    m: '(drop (call_indirect (type $nt) (i32.const 3))) (nop)',
    // New report data every iteration: the host signs fresh evidence each time (no cached token).
    x: `(loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (i32.store (i32.const 0x10000) (local.get $i))
      (drop (call_indirect (type $qt) (i32.const 0x10000) (i32.const 32) (i32.const 0x11000) (i32.const 0x2000) (i32.const 2)))
      (br $l))`,
    ok: 'nop',
  },
  {
    imports: `(type $rt (func (param i32 i32) (result i32)))
      (type $lt (func (param i32 i32 i32)))
      (type $qt (func (param i32 i32 i32 i32) (result i32)))
      (type $nt (func (result i64)))
      (import "enclave" "random" (func $random (type $rt)))
      (import "enclave" "log" (func $log (type $lt)))
      (import "enclave" "report" (func $report (type $qt)))
      (import "enclave" "now" (func $now (type $nt)))`,
    memory: '(memory (export "memory") 2 2)',
    more: '(table 4 4 funcref) (elem (i32.const 0) $random $log $report $now)',
  },
);
const CAPS_OPS = ['d', 'i', 's', 'l', 'k', 'r', 'q', 'n', 'm', 'x', 'ok'];

describe.each(MODES)('fuel: capability imports are charged by the host, by size, on every route (%s)', (_name, mode) => {
  let provider: SoftwareAttestationProvider;
  beforeAll(async () => {
    provider = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-platform-')) });
  });
  const load = async (fuel = 100_000_000) =>
    loadEnclave(await watModule(CAPS_WAT, contract(CAPS_OPS, { capabilities: ['random', 'log', 'attest', 'clock'], memoryPages: 2, fuel })), {
      ...mode,
      capabilities: ['random', 'log', 'attest', 'clock'],
      attestation: provider,
      onLog: () => undefined,
    });
  const fuelOf = async (e: Awaited<ReturnType<typeof load>>, op: string) => {
    const stats = { fuel: 0 };
    expect(await e.call(op, undefined, { stats })).toBe('fine');
    return stats.fuel;
  };

  it('random, log, report and now cost the same through call_indirect as through a direct call', async () => {
    const e = await load();
    try {
      for (const [direct, indirect] of [
        ['d', 'i'],
        ['l', 'k'],
        ['r', 'q'],
        ['n', 'm'],
      ] as const) {
        expect(await fuelOf(e, indirect)).toBe(await fuelOf(e, direct));
      }
      // report signs evidence: far dearer than a few instructions, on either route.
      expect(await fuelOf(e, 'q')).toBeGreaterThan(10_000);
    } finally {
      await e.close();
    }
  });

  it('random pays by length: 64 KiB costs more than 16 bytes by at least a unit per 256 bytes', async () => {
    const e = await load();
    try {
      const small = await fuelOf(e, 's');
      const big = await fuelOf(e, 'd');
      expect(big - small).toBeGreaterThanOrEqual((65536 - 16) / BYTES_PER_FUEL_AT_MOST);
    } finally {
      await e.close();
    }
  });

  it('a loop of report through call_indirect ends in fuel_exhausted within a small budget', async () => {
    // Before: 1 000 000 fuel was about 40 000 indirect reports (tens of seconds); now a few dozen.
    const e = await load(1_000_000);
    try {
      const stats = { fuel: 0 };
      expect(await codeOf(e.call('x', undefined, { stats }))).toBe('fuel_exhausted');
      expect(stats.fuel).toBe(1_000_000);
      expect(await e.call('ok')).toBe('fine');
    } finally {
      await e.close();
    }
  });
});
