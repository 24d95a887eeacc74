/**
 * Per-call stats: `call(op, args, { stats })` fills `stats.fuel` with what that call used, whatever
 * other calls ran meanwhile. (A `lastCall` getter, the last call that finished, was removed: with
 * concurrent calls it could belong to another one in worker mode.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadEnclave, type Enclave, type WorkerEnclave } from '../host/index.js';
import { watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

/**
 * ops: `ok` answers at once; `work` runs a loop of 1000 iterations first (more fuel); `spin` loops
 * forever. Ops are told apart by the first letter of the op name, at byte 5 of the request.
 */
const STATS_WAT = `(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $op i32) (local $i i32)
    (local.set $op (i32.load8_u offset=5 (local.get $p)))
    (if (i32.eq (local.get $op) (i32.const 0x77))
      (then (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))))
    (if (i32.eq (local.get $op) (i32.const 0x73)) (then (loop $spin (br $spin))))
    (i32.const 0x100)))`;

const STATS_CONTRACT = {
  abi: 1,
  name: 'stats',
  version: '0.0.1',
  svn: 0,
  capabilities: [],
  limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1, fuel: 1_000_000 },
  ops: { ok: {}, work: {}, spin: {} },
};

const open: (Enclave | WorkerEnclave)[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

const MODES = [
  ['in-process', {}],
  ['worker', { isolation: 'worker', deadlineMs: 10_000 }],
] as const;

for (const [mode, options] of MODES) {
  describe(`per-call stats, ${mode}`, () => {
    async function load(): Promise<Enclave | WorkerEnclave> {
      const e = await loadEnclave(await watModule(STATS_WAT, STATS_CONTRACT), options as never);
      open.push(e);
      return e;
    }

    it('concurrent calls each get their own fuel in { stats }, whatever finished last', async () => {
      const e = await load();
      const ok = { fuel: 0 };
      await e.call('ok', undefined, { stats: ok });
      const okFuel = ok.fuel;
      const work = { fuel: 0 };
      await e.call('work', undefined, { stats: work });
      const workFuel = work.fuel;
      expect(workFuel).toBeGreaterThan(okFuel);

      const stats = Array.from({ length: 6 }, () => ({ fuel: -1 }));
      const ops = ['work', 'ok', 'work', 'ok', 'ok', 'work'];
      const calls = ops.map((op, i) => e.call(op, undefined, { stats: stats[i] }));
      // Read after the first call's await, another call may have finished too: stats are each call's own.
      await calls[0];
      expect(stats[0]!.fuel).toBe(workFuel);
      await Promise.all(calls);
      expect(stats.map((s) => s.fuel)).toEqual(ops.map((op) => (op === 'work' ? workFuel : okFuel)));
    });

    it('a call that runs out of fuel reports its whole budget; one refused before entering reports 0', async () => {
      const e = await load();
      const spent = { fuel: -1 };
      expect(await codeOf(e.call('spin', undefined, { stats: spent }))).toBe('fuel_exhausted');
      expect(spent.fuel).toBe(e.limits.fuel);
      const refused = { fuel: -1 };
      expect(await codeOf(e.call('nope', undefined, { stats: refused }))).toBe('unknown_op');
      expect(refused.fuel).toBe(0);
    });

    it('refuses stats that is not an object', async () => {
      const e = await load();
      for (const stats of [null, 1, 'x']) {
        expect(await codeOf(e.call('ok', undefined, { stats } as never))).toBe('invalid_options');
      }
    });
  });
}

describe('per-call stats, metering off', () => {
  it('reports 0 in both modes', async () => {
    for (const [, options] of MODES) {
      const e = await loadEnclave(await watModule(STATS_WAT, STATS_CONTRACT), { ...options, metering: false } as never);
      open.push(e);
      const stats = { fuel: -1 };
      expect(await e.call('work', undefined, { stats })).toBe('fine');
      expect(stats.fuel).toBe(0);
    }
  });
});
