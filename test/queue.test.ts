/**
 * The call queue (docs/LIMITS.md, "Queue"). Worker mode queues calls behind the one in flight: the
 * queue is bounded (`maxQueue`) and so is the time a call may wait in it (`queueTimeoutMs`); both
 * end a call with `overloaded`, and a refused call takes nothing from the others or from the
 * enclave's state. In-process there is no queue: a call runs to its end inside `call()`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadEnclave, type Enclave, type WorkerEnclave } from '../host/index.js';
import { DEFAULT_MAX_QUEUE, DEFAULT_QUEUE_TIMEOUT_MS } from '../runtime/index.js';
import { watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

/** How long `slow` keeps the worker busy, ms: far longer than the queue timeouts used below. */
const SLOW_MS = 1500;

/**
 * ops: `ok` answers "fine"; `slow` spins on the clock for SLOW_MS, then answers "fine"; `incr`
 * adds one to a counter in memory and answers it; `get` answers the counter. Ops are told apart by
 * the first letter of the op name, at byte 5 of the request.
 */
const QUEUE_WAT = `(module
  (import "enclave" "now" (func $now (result i64)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\03\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x110) "\\00\\02\\00\\00\\05\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\00")
  (data (i32.const 0x300) "\\81\\a2ok\\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $op i32) (local $until i64)
    (local.set $op (i32.load8_u offset=5 (local.get $p)))
    (if (i32.eq (local.get $op) (i32.const 0x73))
      (then
        (local.set $until (i64.add (call $now) (i64.const ${SLOW_MS})))
        (loop $wait (br_if $wait (i64.lt_s (call $now) (local.get $until))))))
    (if (i32.eq (local.get $op) (i32.const 0x69))
      (then
        (i32.store8 (i32.const 0x204) (i32.add (i32.load8_u (i32.const 0x204)) (i32.const 1)))
        (return (i32.const 0x110))))
    (if (i32.eq (local.get $op) (i32.const 0x67)) (then (return (i32.const 0x110))))
    (i32.const 0x100)))`;

const QUEUE_CONTRACT = {
  abi: 1,
  name: 'queue',
  version: '0.0.1',
  svn: 0,
  capabilities: ['clock'],
  limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1 },
  ops: { ok: {}, slow: {}, incr: {}, get: {} },
};

/** The slow op spins on the clock: unmetered, so only its own clock ends it. */
const BASE = { capabilities: ['clock'], metering: false } as const;

const open: (Enclave | WorkerEnclave)[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

async function worker(options: Record<string, unknown> = {}): Promise<WorkerEnclave> {
  const e = (await loadEnclave(await watModule(QUEUE_WAT, QUEUE_CONTRACT), {
    ...BASE,
    isolation: 'worker',
    deadlineMs: 30_000,
    ...options,
  })) as WorkerEnclave;
  open.push(e);
  return e;
}

describe('worker mode: the queue is bounded (maxQueue)', () => {
  it('a call beyond maxQueue behind a slow op is overloaded at once; the queued ones run and the state is intact', async () => {
    const e = await worker({ maxQueue: 2 });
    expect(await e.call('incr')).toBe(1);
    const slow = e.call('slow');
    const queued = [e.call('incr'), e.call('incr')];
    const extra = e.call('incr');
    // Refused without waiting for the slow op: it settles first.
    const first = await Promise.race([codeOf(extra), slow.then(() => 'the slow op finished first')]);
    expect(first).toBe('overloaded');
    expect(await slow).toBe('fine');
    expect(await Promise.all(queued)).toEqual([2, 3]);
    // The refused call never ran, and cost the instance nothing.
    expect(await e.call('get')).toBe(3);
  });

  it('frees its slots as calls finish: after the queue drains, calls are accepted again', async () => {
    const e = await worker({ maxQueue: 1 });
    const slow = e.call('slow');
    const queued = e.call('incr');
    expect(await codeOf(e.call('incr'))).toBe('overloaded');
    expect(await slow).toBe('fine');
    expect(await queued).toBe(1);
    expect(await Promise.all([e.call('incr'), e.call('incr')])).toEqual([2, 3]);
  });

  it('endSession waits in the same queue and is bounded by it too', async () => {
    const e = await worker({ maxQueue: 1, state: 'per-session' });
    expect(await e.call('incr', undefined, { session: 'a' })).toBe(1);
    const slow = e.call('slow', undefined, { session: 'b' });
    const queued = e.call('incr', undefined, { session: 'a' });
    expect(await codeOf(e.endSession('a'))).toBe('overloaded');
    expect(await slow).toBe('fine');
    expect(await queued).toBe(2);
    // The refused endSession dropped nothing.
    expect(await e.call('get', undefined, { session: 'a' })).toBe(2);
  });

  it('queued calls fail with closed when the enclave is closed, without waiting for the call in flight', async () => {
    const e = await worker({ maxQueue: 4 });
    const slow = codeOf(e.call('slow'));
    const queued = codeOf(e.call('incr'));
    await e.close();
    expect(await queued).toBe('closed');
    expect(await slow).toBe('closed');
  });

  it('has a default bound', async () => {
    expect(DEFAULT_MAX_QUEUE).toBeGreaterThan(0);
    const e = await worker();
    const slow = e.call('slow');
    const queued: Promise<unknown>[] = [];
    for (let i = 0; i < DEFAULT_MAX_QUEUE; i++) queued.push(e.call('ok'));
    expect(await codeOf(e.call('ok'))).toBe('overloaded');
    expect(await slow).toBe('fine');
    expect((await Promise.all(queued)).every((v) => v === 'fine')).toBe(true);
  });

  it('refuses a maxQueue that is not a non-negative integer', async () => {
    for (const maxQueue of [-1, 1.5, Number.NaN, '4', 2 ** 32]) {
      expect(await codeOf(worker({ maxQueue }))).toBe('invalid_options');
    }
  });

  it('maxQueue: 0 refuses every call made while another is in flight', async () => {
    const e = await worker({ maxQueue: 0 });
    const slow = e.call('slow');
    expect(await codeOf(e.call('ok'))).toBe('overloaded');
    expect(await slow).toBe('fine');
    expect(await e.call('ok')).toBe('fine');
  });
});

describe('worker mode: the wait in the queue is bounded (queueTimeoutMs)', () => {
  it('a call that waits longer than queueTimeoutMs ends with overloaded; the call in flight and the state are unaffected', async () => {
    const e = await worker({ queueTimeoutMs: 50 });
    expect(await e.call('incr')).toBe(1);
    const slow = e.call('slow');
    const waiting = codeOf(e.call('incr'));
    expect(await waiting).toBe('overloaded');
    expect(await slow).toBe('fine');
    // The expired call never ran; the next one finds the state as it was.
    expect(await e.call('incr')).toBe(2);
  });

  it('an expired call frees its slot in the queue', async () => {
    const e = await worker({ maxQueue: 1, queueTimeoutMs: 50 });
    const slow = e.call('slow');
    expect(await codeOf(e.call('incr'))).toBe('overloaded');
    // The slot is free again while the slow op still runs: the next call is queued (and expires
    // later), so the one after it is the call refused at once, and settles first.
    const queued = codeOf(e.call('incr')).then((code) => `queued: ${code}`);
    const refused = codeOf(e.call('incr')).then((code) => `refused: ${code}`);
    expect(await Promise.race([queued, refused])).toBe('refused: overloaded');
    expect(await queued).toBe('queued: overloaded');
    expect(await slow).toBe('fine');
    expect(await e.call('incr')).toBe(1);
  });

  it('has a default, and refuses a queueTimeoutMs that is not a positive number', async () => {
    expect(DEFAULT_QUEUE_TIMEOUT_MS).toBeGreaterThan(0);
    for (const queueTimeoutMs of [0, -5, Number.NaN, '10', 2 ** 31]) {
      expect(await codeOf(worker({ queueTimeoutMs }))).toBe('invalid_options');
    }
  });
});

describe('in-process: nothing queues', () => {
  it('a call runs to its end inside call(): more concurrent calls than any queue bound all succeed, none is overloaded', async () => {
    const e = await loadEnclave(await watModule(QUEUE_WAT, QUEUE_CONTRACT), BASE);
    open.push(e);
    const n = DEFAULT_MAX_QUEUE + 100;
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) calls.push(e.call('ok'));
    expect((await Promise.all(calls)).every((v) => v === 'fine')).toBe(true);
  });

  it('refuses maxQueue and queueTimeoutMs, which only worker mode has', async () => {
    const bytes = await watModule(QUEUE_WAT, QUEUE_CONTRACT);
    expect(await codeOf(loadEnclave(bytes, { ...BASE, maxQueue: 4 } as never))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(bytes, { ...BASE, queueTimeoutMs: 4 } as never))).toBe('invalid_options');
  });
});
