/**
 * Observation points (runtime/diagnostics.ts) on node:diagnostics_channel, in both isolation modes:
 * the events and their fields for a good call, a failing one, a discard, a worker exit, and that no
 * message ever carries a payload (arguments, replies, log lines, session ids, an unknown op name).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DIAGNOSTICS_CHANNELS,
  diagnosticsIdOf,
  type CallEndMessage,
  type CallStartMessage,
  type EnclaveHandle,
  type InstanceDiscardMessage,
  type WorkerExitMessage,
} from '../host/index.js';
import { callStarted, diagnosticsSource } from '../runtime/diagnostics.js';
import { codeOf } from './helpers/errors.js';
import { loadIn, MODES } from './helpers/modes.js';
import { fixture, watModule } from './helpers/wat.js';

const ECHO = readFileSync(new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url));
const COUNTER = readFileSync(new URL('../enclave-modules/counter/build/counter.wasm', import.meta.url));

/** `l` logs its request bytes (op and args) through the log capability; `s` spins; others answer "fine". */
const LOG_WAT = `(module
  (import "enclave" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x6c)) (then (call $log (i32.const 1) (local.get $p) (local.get $l))))
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x73)) (then (loop $spin (br $spin))))
    (i32.const 0x100)))`;
const LOG_CONTRACT = {
  abi: 1,
  name: 'logger',
  version: '0.0.1',
  svn: 0,
  capabilities: ['log'],
  limits: { requestBytes: 4096, replyBytes: 1024, depth: 8, memoryPages: 1 },
  ops: { log: { args: { type: 'any' } }, ok: {}, spin: {} },
};

type Event = { channel: string; message: Record<string, unknown> };

/** Everything published on the runtime's channels while subscribed. */
const events: Event[] = [];
const listeners = Object.values(DIAGNOSTICS_CHANNELS).map((channel) => {
  const listener = (message: unknown) => events.push({ channel, message: message as Record<string, unknown> });
  return [channel, listener] as const;
});
const listen = () => listeners.forEach(([channel, listener]) => subscribe(channel, listener));
const stopListening = () => listeners.forEach(([channel, listener]) => unsubscribe(channel, listener));

/** The events of one handle, in order. */
const of = (handle: EnclaveHandle, channel?: string) =>
  events.filter((e) => e.message.enclave === diagnosticsIdOf(handle) && (channel === undefined || e.channel === channel)).map((e) => e.message);

describe('the channels', () => {
  it('are declared in one list, named enclave:<what>:<event>', () => {
    expect(Object.values(DIAGNOSTICS_CHANNELS)).toEqual(['enclave:call:start', 'enclave:call:end', 'enclave:instance:discard', 'enclave:worker:exit']);
    expect(Object.isFrozen(DIAGNOSTICS_CHANNELS)).toBe(true);
  });

  it('nothing is built for a call when nobody listens', () => {
    const source = diagnosticsSource({}, 'in-process', '00', { ok: {} });
    expect(callStarted(source, 'ok')).toBeUndefined();
    subscribe(DIAGNOSTICS_CHANNELS.callEnd, listeners[1]![1]);
    try {
      expect(callStarted(source, 'ok')).toBeDefined();
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.callEnd, listeners[1]![1]);
      events.length = 0;
    }
  });
});

describe.each(MODES)('$name', (mode) => {
  let echo: EnclaveHandle;
  let counter: EnclaveHandle;
  let hostile: EnclaveHandle;
  beforeAll(async () => {
    [echo, counter, hostile] = await Promise.all([loadIn(mode, ECHO), loadIn(mode, COUNTER), loadIn(mode, await fixture('hostile'))]);
    listen();
  });
  afterEach(() => {
    events.length = 0;
  });
  afterAll(async () => {
    stopListening();
    await Promise.all([echo, counter, hostile].map((h) => h?.close()));
  });

  it('each handle has its own id', () => {
    const ids = [echo, counter, hostile].map((h) => diagnosticsIdOf(h));
    for (const id of ids) expect(id).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(3);
    expect(diagnosticsIdOf({})).toBeUndefined();
  });

  it('a good call: start, then end with ok, its fuel and duration', async () => {
    const stats = { fuel: -1 };
    expect(await counter.call('incr', { by: 2 }, { stats })).toBeGreaterThan(0);
    const [start, end, ...rest] = of(counter);
    expect(rest).toEqual([]);
    const base = { enclave: diagnosticsIdOf(counter), mode: mode.name, measurement: counter.measurement };
    expect(start).toEqual({ ...base, call: expect.any(Number), op: 'incr' });
    expect(end).toEqual({ ...base, call: start!.call, op: 'incr', ok: true, code: undefined, fuel: stats.fuel, durationMs: expect.any(Number) });
    expect(stats.fuel).toBeGreaterThan(0);
    expect(end!.durationMs).toBeGreaterThanOrEqual(0);
    expect(events.map((e) => e.channel)).toEqual(['enclave:call:start', 'enclave:call:end']);
  });

  it('concurrent calls: each end carries its own call id and fuel', async () => {
    const stats = [{ fuel: -1 }, { fuel: -1 }, { fuel: -1 }];
    const args = [1, 'y'.repeat(3000), 2];
    await Promise.all(args.map((a, i) => echo.call('echo', a, { stats: stats[i] })));
    const starts = of(echo, 'enclave:call:start');
    const ends = of(echo, 'enclave:call:end');
    expect(starts).toHaveLength(3);
    expect(new Set(starts.map((s) => s.call)).size).toBe(3);
    expect(ends.map((e) => e.call).sort()).toEqual(starts.map((s) => s.call).sort());
    for (const [i, start] of starts.entries()) {
      expect(ends.find((e) => e.call === start.call)!.fuel).toBe(stats[i]!.fuel);
    }
  });

  it('a call refused before it ran: end with its code and no fuel, no discard', async () => {
    expect(await codeOf(counter.call('incr', { by: 0 }))).toBe('invalid_args');
    const [start, end] = of(counter);
    expect(start).toMatchObject({ op: 'incr' });
    expect(end).toMatchObject({ call: start!.call, op: 'incr', ok: false, code: 'invalid_args', fuel: 0 });
    expect(of(counter, 'enclave:instance:discard')).toEqual([]);
  });

  it('an enclave error: end with its code; the instance is kept (no discard)', async () => {
    expect(await codeOf(hostile.call('refuse'))).toBe('denied');
    const end = of(hostile, 'enclave:call:end')[0]!;
    expect(end).toMatchObject({ op: 'refuse', ok: false, code: 'denied' });
    expect(end.fuel).toBeGreaterThan(0);
    expect(of(hostile, 'enclave:instance:discard')).toEqual([]);
  });

  it('a trap: instance:discard with its code, then end', async () => {
    expect(await codeOf(hostile.call('unreachable'))).toBe('trap');
    const [start, discard, end] = of(hostile);
    const base = { enclave: diagnosticsIdOf(hostile), mode: mode.name, measurement: hostile.measurement };
    expect(discard).toEqual({ ...base, call: start!.call, code: 'trap' });
    expect(end).toMatchObject({ call: start!.call, ok: false, code: 'trap', fuel: hostile.limits.fuel });
    expect(events.map((e) => e.channel)).toEqual(['enclave:call:start', 'enclave:instance:discard', 'enclave:call:end']);
  });

  it('every discarding code is published: bad_reply, stack_overflow, fuel_exhausted', async () => {
    await codeOf(hostile.call('x_not_envelope'));
    await codeOf(hostile.call('call_forever'));
    const loop = await loadIn(mode, await watModule(LOG_WAT, LOG_CONTRACT), { capabilities: ['log'], policy: { fuel: 100_000 } });
    try {
      expect(await codeOf(loop.call('spin'))).toBe('fuel_exhausted');
      expect(of(loop, 'enclave:instance:discard').map((m) => m.code)).toEqual(['fuel_exhausted']);
    } finally {
      await loop.close();
    }
    expect(of(hostile, 'enclave:instance:discard').map((m) => m.code)).toEqual(['bad_reply', 'stack_overflow']);
  });

  it('an unknown op: published without its name', async () => {
    expect(await codeOf(counter.call('drop_tables'))).toBe('unknown_op');
    expect(await codeOf(counter.call(42 as never))).toBe('unknown_op');
    const ends = of(counter, 'enclave:call:end');
    expect(ends.map((e) => [e.op, e.code])).toEqual([
      [undefined, 'unknown_op'],
      [undefined, 'unknown_op'],
    ]);
  });

  it('a call on a closed enclave: end with closed', async () => {
    const e = await loadIn(mode, COUNTER);
    await e.close();
    events.length = 0;
    expect(await codeOf(e.call('get'))).toBe('closed');
    expect(of(e, 'enclave:call:end')).toMatchObject([{ ok: false, code: 'closed', fuel: 0 }]);
  });

  it('no message carries a payload: args, replies, log lines, session ids, error details, unknown op names', async () => {
    const marker = `MARKER-${Math.random().toString(36).slice(2)}`;
    const logs: string[] = [];
    const logger = await loadIn(mode, await watModule(LOG_WAT, LOG_CONTRACT), {
      capabilities: ['log'],
      state: 'per-session',
      onLog: (_level: string, message: string) => logs.push(message),
    });
    try {
      expect(await echo.call('echo', { secret: marker, bin: new TextEncoder().encode(marker) })).toMatchObject({ secret: marker });
      expect(await echo.call('echo', marker)).toBe(marker);
      expect(await codeOf(echo.call(marker))).toBe('unknown_op');
      expect(await codeOf(echo.call('echo', { [marker]: new Date() }))).toBe('invalid_args');
      expect(await codeOf(counter.call('get', undefined, { session: marker }))).toBe('invalid_options');
      expect(await logger.call('log', marker, { session: marker })).toBe('fine');
      expect(await logger.call('ok', undefined, { session: marker })).toBe('fine');
      expect(await logger.endSession(marker)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(logs.join('\n')).toContain(marker); // the log line did carry it, to onLog only
    } finally {
      await logger.close();
    }
    expect(events.length).toBeGreaterThanOrEqual(14);
    const published = JSON.stringify(events, (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('latin1') : value));
    expect(published).not.toContain(marker);
    expect(published).not.toContain(marker.slice(7)); // not even the random part
  });
});

describe('worker mode: worker exits', () => {
  const worker = MODES.find((m) => m.name === 'worker')!;
  beforeAll(listen);
  afterAll(stopListening);
  afterEach(() => {
    events.length = 0;
  });

  it('close() ends the worker: reason close', async () => {
    const e = await loadIn(worker, COUNTER);
    await e.call('incr');
    await e.close();
    await expect.poll(() => of(e, 'enclave:worker:exit').length).toBe(1);
    expect(of(e, 'enclave:worker:exit')[0]).toEqual({
      enclave: diagnosticsIdOf(e),
      mode: 'worker',
      measurement: e.measurement,
      exitCode: expect.any(Number),
      reason: 'close',
      error: undefined,
    } satisfies Record<keyof WorkerExitMessage, unknown>);
  });

  it('a call past its deadline: discard with timeout, the worker terminated, end with timeout', async () => {
    const e = await loadIn(worker, await watModule(LOG_WAT, LOG_CONTRACT), { capabilities: ['log'], metering: false, deadlineMs: 300 });
    try {
      expect(await codeOf(e.call('spin'))).toBe('timeout');
      await expect.poll(() => of(e, 'enclave:worker:exit').length).toBe(1);
      const [start, discard, end] = of(e).filter((m) => !('exitCode' in m));
      expect(discard).toMatchObject({ call: start!.call as number, code: 'timeout' } satisfies Partial<InstanceDiscardMessage>);
      expect(end).toMatchObject({ call: start!.call as number, ok: false, code: 'timeout', fuel: 0 } satisfies Partial<CallEndMessage>);
      expect(end!.durationMs).toBeGreaterThanOrEqual(290);
      expect(of(e, 'enclave:worker:exit')[0]).toMatchObject({ reason: 'terminated' });
      // The next call starts a fresh worker, and is observed as usual.
      events.length = 0;
      expect(await e.call('ok')).toBe('fine');
      expect(of(e).map((m) => (m as Partial<CallStartMessage>).op)).toEqual(['ok', 'ok']);
    } finally {
      await e.close();
    }
  });
});

describe.each(MODES)('only instance:discard listened to (a supervisor counting calls itself): $name', (mode) => {
  it('a call builds nothing and reads no clock until it fails; a discarding failure is still published', async () => {
    const hostile = await loadIn(mode, await fixture('hostile'));
    const seen: unknown[] = [];
    const onDiscard = (message: unknown) => void seen.push(message);
    subscribe(DIAGNOSTICS_CHANNELS.instanceDiscard, onDiscard);
    try {
      expect(callStarted(diagnosticsSource({}, 'in-process', '00', { ok: {} }), 'ok')).toBeUndefined();
      expect(await hostile.call('ok')).toBeDefined();
      expect(await codeOf(hostile.call('refuse'))).toBe('denied'); // an enclave error keeps the instance
      expect(seen).toEqual([]);
      expect(await codeOf(hostile.call('unreachable'))).toBe('trap');
      expect(seen).toEqual([{ enclave: diagnosticsIdOf(hostile), mode: mode.name, measurement: hostile.measurement, call: expect.any(Number), code: 'trap' }]);
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.instanceDiscard, onDiscard);
      await hostile.close();
    }
  });
});
