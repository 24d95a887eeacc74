/**
 * The host's observer (host/supervisor/observer.ts and its parts): the throughput profile's ring
 * and percentile code on known sequences; with real enclaves in both isolation modes, the
 * Prometheus text (calls by op and code, errors, restarts after a discard, fuel, refusals, state),
 * handles not attached or detached not counted, hostile names never in a label; spans through an
 * installed SDK (name, attributes, error status, nothing of the payload); pino logs without
 * payloads unless logPayloads; close() unsubscribing.
 */
import { channel } from 'node:diagnostics_channel';
import { Writable } from 'node:stream';
import { readFileSync } from 'node:fs';
import { ROOT_CONTEXT, context, trace, type Context, type ContextManager } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EnclaveError } from '../core/index.js';
import { DIAGNOSTICS_CHANNELS, EnclaveHost, type EnclaveHandle } from '../host/index.js';
import { BucketCounts } from '../host/supervisor/metrics.js';
import { HostObserver } from '../host/supervisor/observer.js';
import { OpRecorder, RateWindow, SampleRing, percentile, RING_SIZE } from '../host/supervisor/stats.js';
import { codeOf } from './helpers/errors.js';
import { loadIn, MODES } from './helpers/modes.js';
import { fixture } from './helpers/wat.js';

const ECHO = readFileSync(new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url));

/** The value of one sample line of the Prometheus text, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inner = line.slice(name.length + 1, line.indexOf('}'));
    const have = inner.split(',');
    if (have.length === want.length && want.every((w) => have.includes(w))) return Number(line.slice(line.indexOf('}') + 2));
  }
  return undefined;
}

/** A pino logger at `level` whose lines are captured, parsed. */
function capturedLogger(level: string): { logger: pino.Logger; lines: Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const logger = pino({ level }, stream);
  return {
    logger,
    get lines() {
      return chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    raw: () => chunks.join(''),
  };
}

describe('stats: rings, percentiles, rate', () => {
  it('percentile is nearest-rank on a known sequence', () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 90)).toBe(90);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 100)).toBe(100);
    expect(percentile(sorted, 0)).toBe(1);
    expect(percentile(Float64Array.of(7), 99)).toBe(7);
    expect(percentile(new Float64Array(0), 50)).toBe(0);
    expect(percentile(Float64Array.of(1, 2, 3, 4), 50)).toBe(2);
    expect(percentile(Float64Array.of(1, 2, 3, 4), 51)).toBe(3);
    expect(() => percentile(sorted, 101)).toThrow(RangeError);
    expect(() => percentile(sorted, Number.NaN)).toThrow(RangeError);
  });

  it('a ring keeps the last N samples, sorts numerically a copy, never the ring', () => {
    const ring = new SampleRing(4);
    expect(ring.sorted()).toEqual(new Float64Array(0));
    expect(ring.mean()).toBe(0);
    for (const v of [10, 9, 100, 2, 5, 1]) ring.push(v); // 10 and 9 overwritten
    expect(ring.size).toBe(4);
    expect([...ring.sorted()]).toEqual([1, 2, 5, 100]); // numeric order, not "1, 100, 2, 5"
    expect(ring.mean()).toBe(27);
    ring.push(3); // overwrites 100 (the oldest left): the ring kept push order
    expect([...ring.sorted()]).toEqual([1, 2, 3, 5]);
    expect(() => new SampleRing(0)).toThrow(RangeError);
  });

  it('latency percentiles are over the last 1024 calls', () => {
    const op = new OpRecorder(0);
    // 1000 slow calls, then 1024 calls of 1..1024 ms: the slow ones have left the ring.
    for (let i = 0; i < 1000; i++) op.call(true, undefined, 5, 10_000, 0);
    for (let i = 1; i <= RING_SIZE; i++) op.call(true, undefined, i, i, 0);
    const s = op.snapshot(0);
    expect(s.calls).toBe(2024);
    expect(s.latencyMs).toEqual({ p50: 512, p90: Math.ceil(0.9 * 1024), p99: Math.ceil(0.99 * 1024), max: 1024 });
    expect(s.fuel.mean).toBe((1024 * 1025) / 2 / 1024);
    expect(s.fuel.p99).toBe(Math.ceil(0.99 * 1024));
  });

  it('errors by code, refusals included; latency only of calls that reached the runtime', () => {
    const op = new OpRecorder(0);
    op.call(true, undefined, 100, 2, 0);
    op.call(false, 'trap', 50, 4, 0);
    op.refusal('overloaded', 0);
    op.refusal('overloaded', 0);
    const s = op.snapshot(0);
    expect(s).toMatchObject({ calls: 4, errors: 3, errorsByCode: { trap: 1, overloaded: 2 } });
    expect(s.latencyMs.max).toBe(4);
    expect(s.fuel.mean).toBe(75);
  });

  it('calls per second: over the last 60 s, or the record age when younger', () => {
    const op = new OpRecorder(100);
    for (let i = 0; i < 30; i++) op.call(true, undefined, 0, 1, 100);
    expect(op.snapshot(100).callsPerSecond).toBe(30); // one second old
    for (let i = 0; i < 30; i++) op.call(true, undefined, 0, 1, 109);
    expect(op.snapshot(109).callsPerSecond).toBe(6); // 60 calls in 10 s
    expect(op.snapshot(159).callsPerSecond).toBe(1); // 60 calls in the last 60 s
    expect(op.snapshot(160).callsPerSecond).toBe(0.5); // second 100 left the window
    expect(op.snapshot(169).callsPerSecond).toBe(0);
  });

  it('a rate bucket reused a window later starts from zero', () => {
    const w = new RateWindow(60);
    w.add(5, 10);
    w.add(65); // same bucket, 60 s later
    expect(w.count(65)).toBe(1);
    w.add(66);
    expect(w.count(66)).toBe(2);
  });

  it('histogram buckets: first bound >= value, the rest above every bound', () => {
    const b = new BucketCounts([0.1, 1]);
    for (const v of [0.05, 0.1, 0.5, 5]) b.observe(v);
    expect([...b.counts]).toEqual([2, 1, 1]);
    expect(b).toMatchObject({ count: 4, sum: 5.65 });
  });
});

describe('the registry', () => {
  it('one per host: a second observer on the same registry is refused until the first closes', () => {
    const registry = new Registry();
    const a = new HostObserver({ registry, logPayloads: false });
    expect(() => new HostObserver({ registry, logPayloads: false })).toThrow(EnclaveError);
    try {
      new HostObserver({ registry, logPayloads: false });
    } catch (err) {
      expect((err as EnclaveError).code).toBe('invalid_options');
    }
    a.close();
    a.close(); // idempotent
    const b = new HostObserver({ registry, logPayloads: false });
    b.close();
  });

  it('default: its own registry, never the global one', async () => {
    const { register } = await import('prom-client');
    const a = new HostObserver({ logPayloads: false });
    try {
      expect(a.registry).not.toBe(register);
      expect(register.getSingleMetric('enclave_calls_total')).toBeUndefined();
      expect(a.registry.getSingleMetric('enclave_calls_total')).toBeDefined();
    } finally {
      a.close();
    }
  });

  it('lifecycle series: state 1 for the current, 0 for the ones left; start, instances, queue, integrity; forget removes them', async () => {
    const o = new HostObserver({ logPayloads: false });
    try {
      o.state('signer', 'starting');
      o.started('signer', 120);
      o.instances('signer', 2);
      o.state('signer', 'ready');
      o.queueDepth('signer', 3);
      o.queueWait('signer', 2);
      o.attested('signer', 1.5);
      o.integrity('signer', true);
      o.integrity('signer', false);
      o.restart('signer', 'closed');
      o.restart('signer', '<script>'); // not a reason the runtime has: `other`
      let text = await o.registry.metrics();
      expect(sample(text, 'enclave_state', { enclave: 'signer', state: 'ready' })).toBe(1);
      expect(sample(text, 'enclave_state', { enclave: 'signer', state: 'starting' })).toBe(0);
      expect(sample(text, 'enclave_instances', { enclave: 'signer' })).toBe(2);
      expect(sample(text, 'enclave_queue_depth', { enclave: 'signer' })).toBe(3);
      expect(sample(text, 'enclave_queue_wait_seconds_count', { enclave: 'signer' })).toBe(1);
      expect(sample(text, 'enclave_queue_wait_seconds_bucket', { enclave: 'signer', le: '0.001' })).toBe(0);
      expect(sample(text, 'enclave_queue_wait_seconds_bucket', { enclave: 'signer', le: '0.005' })).toBe(1);
      expect(sample(text, 'enclave_start_duration_seconds_sum', { enclave: 'signer' })).toBeCloseTo(0.12);
      expect(sample(text, 'enclave_attestation_duration_seconds_count', { enclave: 'signer' })).toBe(1);
      expect(sample(text, 'enclave_integrity_checks_total', { enclave: 'signer', result: 'ok' })).toBe(1);
      expect(sample(text, 'enclave_integrity_checks_total', { enclave: 'signer', result: 'mismatch' })).toBe(1);
      expect(sample(text, 'enclave_restarts_total', { enclave: 'signer', reason: 'closed' })).toBe(1);
      expect(sample(text, 'enclave_restarts_total', { enclave: 'signer', reason: 'other' })).toBe(1);
      expect(text).not.toContain('<script>');
      o.forget('signer');
      text = await o.registry.metrics();
      expect(text).not.toContain('signer');
    } finally {
      o.close();
    }
  });

  it('refusals: counted by code; an enclave the host does not run and an undeclared op are (unknown), never the caller text', async () => {
    const o = new HostObserver({ logPayloads: false });
    try {
      o.state('echo', 'ready');
      const hostile = ['__proto__', 'drop_tables', 'x"} 1\nenclave_calls_total{evil="1', 'a'.repeat(10_000)];
      for (const name of hostile) {
        o.refused(name, 'echo', 'unauthorized');
        o.refused('echo', name, 'denied');
      }
      o.refused('echo', undefined, 'overloaded');
      o.refused('', undefined, 'unavailable');
      const text = await o.registry.metrics();
      expect(sample(text, 'enclave_refusals_total', { enclave: 'echo', code: 'denied' })).toBe(hostile.length);
      expect(sample(text, 'enclave_refusals_total', { enclave: 'echo', code: 'overloaded' })).toBe(1);
      expect(sample(text, 'enclave_refusals_total', { enclave: '(unknown)', code: 'unauthorized' })).toBe(hostile.length);
      expect(sample(text, 'enclave_refusals_total', { enclave: '(unknown)', code: 'unavailable' })).toBe(1);
      for (const name of hostile) expect(text).not.toContain(name.slice(0, 20));
      expect(text).not.toContain('evil');
      // The profile: refusals count as calls and errors, under (unknown) for an undeclared op.
      const stats = o.opStats('echo');
      expect(Object.keys(stats)).toEqual(['(unknown)']);
      expect(stats['(unknown)']).toMatchObject({ calls: hostile.length + 1, errors: hostile.length + 1, errorsByCode: { denied: hostile.length, overloaded: 1 } });
      expect(o.opStats('__proto__')).toEqual({});
    } finally {
      o.close();
    }
  });
});

describe.each(MODES)('with real enclaves: $name', (mode) => {
  let echo: EnclaveHandle;
  let hostile: EnclaveHandle;
  let foreign: EnclaveHandle;
  let observer: HostObserver;
  const restarts: string[] = [];
  beforeAll(async () => {
    [echo, hostile, foreign] = await Promise.all([loadIn(mode, ECHO), loadIn(mode, await fixture('hostile')), loadIn(mode, ECHO)]);
  });
  afterEach(() => {
    observer?.close();
    restarts.length = 0;
  });
  afterAll(async () => {
    await Promise.all([echo, hostile, foreign].map((h) => h?.close()));
  });
  const observe = () => {
    observer = new HostObserver({ logPayloads: false, onRestart: (enclave, reason) => restarts.push(`${enclave}:${reason}`) });
    observer.attach(echo, 'echo');
    observer.attach(hostile, 'hostile');
    return observer;
  };

  it('calls_total by op and code, duration, fuel; an unknown op under (unknown); a foreign handle not counted', async () => {
    const o = observe();
    const stats = { fuel: 0 };
    let fuel = 0;
    for (let i = 0; i < 5; i++) {
      await echo.call('echo', { i }, { stats });
      fuel += stats.fuel;
    }
    expect(await codeOf(echo.call('drop_tables'))).toBe('unknown_op');
    expect(await codeOf(echo.call('echo', { bad: new Date() }))).toBe('invalid_args');
    for (let i = 0; i < 7; i++) await foreign.call('echo', i); // same module, not attached
    const text = await o.registry.metrics();
    expect(sample(text, 'enclave_calls_total', { enclave: 'echo', op: 'echo', code: 'ok' })).toBe(5);
    expect(sample(text, 'enclave_calls_total', { enclave: 'echo', op: 'echo', code: 'invalid_args' })).toBe(1);
    expect(sample(text, 'enclave_calls_total', { enclave: 'echo', op: '(unknown)', code: 'unknown_op' })).toBe(1);
    expect(sample(text, 'enclave_call_duration_seconds_count', { enclave: 'echo', op: 'echo' })).toBe(6);
    expect(sample(text, 'enclave_call_duration_seconds_bucket', { enclave: 'echo', op: 'echo', le: '+Inf' })).toBe(6);
    expect(sample(text, 'enclave_fuel_used_total', { enclave: 'echo', op: 'echo' })).toBe(fuel);
    expect(fuel).toBeGreaterThan(0);
    expect(text).not.toContain('drop_tables');
    const profile = o.opStats('echo');
    expect(profile.echo).toMatchObject({ calls: 6, errors: 1, errorsByCode: { invalid_args: 1 } });
    expect(profile.echo!.latencyMs.max).toBeGreaterThan(0);
    expect(profile.echo!.latencyMs.p50).toBeLessThanOrEqual(profile.echo!.latencyMs.p99);
    expect(profile.echo!.callsPerSecond).toBeGreaterThan(0);
    expect(profile['(unknown)']).toMatchObject({ calls: 1, errorsByCode: { unknown_op: 1 } });
  });

  it('a trap: calls_total with code trap, a restart with reason trap, onRestart told', async () => {
    const o = observe();
    expect(await codeOf(hostile.call('unreachable'))).toBe('trap');
    expect(await codeOf(hostile.call('refuse'))).toBe('denied'); // an enclave error: no restart
    expect(await hostile.call('ok')).toBeDefined(); // the fresh instance serves
    const text = await o.registry.metrics();
    expect(sample(text, 'enclave_calls_total', { enclave: 'hostile', op: 'unreachable', code: 'trap' })).toBe(1);
    expect(sample(text, 'enclave_calls_total', { enclave: 'hostile', op: 'refuse', code: 'denied' })).toBe(1);
    expect(sample(text, 'enclave_restarts_total', { enclave: 'hostile', reason: 'trap' })).toBe(1);
    expect(sample(text, 'enclave_restarts_total', { enclave: 'hostile', reason: 'denied' })).toBeUndefined();
    expect(restarts).toEqual(['hostile:trap']);
  });

  it('detach: the handle is no longer counted; close(): nothing more is counted', async () => {
    const o = observe();
    await echo.call('echo', 1);
    o.detach(echo);
    await echo.call('echo', 2);
    expect(o.opStats('echo').echo?.calls).toBe(1);
    o.attach(echo, 'echo');
    await echo.call('echo', 3);
    expect(o.opStats('echo').echo?.calls).toBe(2);
    expect(() => o.attach({ contract: echo.contract } as EnclaveHandle, 'echo')).toThrow(EnclaveError); // no diagnostics id
    const channels = [DIAGNOSTICS_CHANNELS.callEnd, DIAGNOSTICS_CHANNELS.instanceDiscard, DIAGNOSTICS_CHANNELS.workerExit].map((name) => channel(name));
    expect(channels.map((c) => c.hasSubscribers)).toEqual([true, true, true]);
    o.close();
    // Nobody else listens in this file: the observer left every channel (and the runtime builds no message again).
    expect(channels.map((c) => c.hasSubscribers)).toEqual([false, false, false]);
    await echo.call('echo', 4);
    expect(await codeOf(hostile.call('unreachable'))).toBe('trap');
    expect(o.opStats('echo').echo?.calls).toBe(2);
    expect(o.opStats('hostile')).toEqual({});
    expect(restarts).toEqual([]);
    expect(o.registry.getSingleMetric('enclave_calls_total')).toBeUndefined();
  });

  it('two observers: each counts only its own handles', async () => {
    const a = observe();
    const b = new HostObserver({ logPayloads: false });
    try {
      b.attach(foreign, 'echo');
      await echo.call('echo', 1);
      await foreign.call('echo', 1);
      await foreign.call('echo', 2);
      expect(a.opStats('echo').echo?.calls).toBe(1);
      expect(b.opStats('echo').echo?.calls).toBe(2);
    } finally {
      b.close();
    }
  });
});

/**
 * The smallest context manager: the active context while `with`'s function runs synchronously (as
 * the SDK's StackContextManager). An SDK installs an async one (AsyncLocalStorage); this is enough
 * to see that a span made synchronously inside a lifecycle span is its child.
 */
class SyncContextManager implements ContextManager {
  #active: Context = ROOT_CONTEXT;
  active(): Context {
    return this.#active;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const previous = this.#active;
    this.#active = ctx;
    try {
      return fn.call(thisArg, ...args);
    } finally {
      this.#active = previous;
    }
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.#active = ROOT_CONTEXT;
    return this;
  }
}

describe('spans, with an SDK installed', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let echo: EnclaveHandle;
  beforeAll(async () => {
    echo = await loadIn(MODES[0]!, ECHO);
  });
  afterEach(() => {
    exporter.reset();
    trace.disable();
    context.disable();
  });
  afterAll(async () => {
    await echo?.close();
    await provider.shutdown();
  });

  it('without one: tracing is false and traceCall adds nothing', async () => {
    const o = new HostObserver({ logPayloads: false });
    try {
      expect(o.tracing).toBe(false);
      expect(await o.traceCall('echo', 'echo', () => Promise.resolve(7))).toBe(7);
    } finally {
      o.close();
    }
  });

  it('enclave.call with the enclave and the declared op; a failure: status ERROR and its code, no message, no args', async () => {
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    const o = new HostObserver({ logPayloads: false });
    try {
      expect(o.tracing).toBe(true);
      o.attach(echo, 'echo');
      const marker = `MARKER-${Math.random().toString(36).slice(2)}`;
      expect(await o.traceCall('echo', 'echo', () => echo.call('echo', marker))).toBe(marker);
      expect(await codeOf(o.traceCall('echo', marker, () => echo.call(marker)))).toBe('unknown_op');
      expect(await codeOf(o.traceCall(marker, 'echo', () => Promise.reject(new EnclaveError('denied', marker))))).toBe('denied');
      const spans = exporter.getFinishedSpans();
      expect(spans.map((s) => s.name)).toEqual(['enclave.call', 'enclave.call', 'enclave.call']);
      expect(spans[0]!.attributes).toEqual({ 'enclave.name': 'echo', 'enclave.op': 'echo' });
      expect(spans[0]!.status.code).toBe(0); // UNSET
      expect(spans[1]!.attributes).toEqual({ 'enclave.name': 'echo', 'enclave.op': '(unknown)', 'enclave.error_code': 'unknown_op' });
      expect(spans[1]!.status).toEqual({ code: 2, message: 'unknown_op' }); // ERROR
      expect(spans[2]!.attributes).toMatchObject({ 'enclave.name': '(unknown)', 'enclave.error_code': 'denied' });
      expect(JSON.stringify(spans.map((s) => [s.attributes, s.status, s.events]))).not.toContain(marker.slice(7));
    } finally {
      o.close();
    }
  });

  it('lifecycle spans: enclave.start is the parent of a call made inside it', async () => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new SyncContextManager());
    const o = new HostObserver({ logPayloads: false });
    try {
      o.attach(echo, 'echo');
      await o.traceLifecycle('start', 'echo', () => o.traceCall('echo', 'echo', () => echo.call('echo', 1)));
      await expect(o.traceLifecycle('attest', 'echo', () => Promise.reject(new EnclaveError('timeout')))).rejects.toThrow(EnclaveError);
      const spans = exporter.getFinishedSpans();
      const start = spans.find((s) => s.name === 'enclave.start')!;
      const call = spans.find((s) => s.name === 'enclave.call')!;
      expect(call.parentSpanContext?.spanId).toBe(start.spanContext().spanId);
      expect(spans.find((s) => s.name === 'enclave.attest')!.status).toEqual({ code: 2, message: 'timeout' });
    } finally {
      o.close();
    }
  });
});

describe('logs', () => {
  let echo: EnclaveHandle;
  beforeAll(async () => {
    echo = await loadIn(MODES[0]!, ECHO);
  });
  afterAll(async () => {
    await echo?.close();
  });

  /** A call through the observer as the host makes it: the reply or the error logged. */
  async function loggedCall(o: HostObserver, op: string, args: unknown): Promise<void> {
    try {
      const reply = await echo.call(op, args);
      if (o.logsCalls) o.logCall('echo', op, args, reply);
    } catch (error) {
      if (o.logsCalls) o.logCall('echo', op, args, undefined, error);
    }
  }

  it('default: silent; logsCalls false', () => {
    const o = new HostObserver({ logPayloads: false });
    try {
      expect(o.logger.level).toBe('silent');
      expect(o.logsCalls).toBe(false);
    } finally {
      o.close();
    }
  });

  it('logPayloads false: the call is logged (enclave, op, code), its args, reply and error message never', async () => {
    const log = capturedLogger('debug');
    const o = new HostObserver({ logger: log.logger, logPayloads: false });
    try {
      o.attach(echo, 'echo');
      const marker = `MARKER-${Math.random().toString(36).slice(2)}`;
      await loggedCall(o, 'echo', { secret: marker });
      await loggedCall(o, 'echo', { secret: new Date(), marker }); // invalid_args: its message names the field
      await loggedCall(o, marker, marker); // an unknown op is caller text too
      expect(log.lines.filter((l) => l.msg === 'enclave call')).toEqual([
        expect.objectContaining({ level: 20, enclave: 'echo', op: 'echo', ok: true }),
        expect.objectContaining({ enclave: 'echo', op: 'echo', ok: false, code: 'invalid_args' }),
        expect.objectContaining({ enclave: 'echo', op: '(unknown)', ok: false, code: 'unknown_op' }),
      ]);
      expect(log.raw()).not.toContain(marker.slice(7));
      expect(log.lines.some((l) => 'args' in l || 'reply' in l || 'error' in l)).toBe(false);
    } finally {
      o.close();
    }
  });

  it('logPayloads true: args, reply and the error message are logged', async () => {
    const log = capturedLogger('debug');
    const o = new HostObserver({ logger: log.logger, logPayloads: true });
    try {
      o.attach(echo, 'echo');
      const marker = `MARKER-${Math.random().toString(36).slice(2)}`;
      await loggedCall(o, 'echo', { secret: marker });
      await loggedCall(o, 'nope', 1);
      const [ok, failed] = log.lines.filter((l) => l.msg === 'enclave call');
      expect(ok).toMatchObject({ args: { secret: marker }, reply: { secret: marker } });
      expect(failed).toMatchObject({ code: 'unknown_op', args: 1, error: expect.any(String) });
    } finally {
      o.close();
    }
  });

  it('logPayloads true: binary shown as its length and first 64 bytes; every payload bounded, hostile shapes harmless', () => {
    const log = capturedLogger('debug');
    const o = new HostObserver({ logger: log.logger, logPayloads: true });
    try {
      o.attach(echo, 'echo');
      const bytes = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
      o.logCall('echo', 'echo', bytes, { sig: bytes.subarray(0, 10) });
      const [binaryLine] = log.lines;
      expect(binaryLine).toMatchObject({
        args: { bin: 1 << 20, base64: Buffer.from(bytes.subarray(0, 64)).toString('base64') },
        reply: { sig: { bin: 10, base64: Buffer.from(bytes.subarray(0, 10)).toString('base64') } },
      });
      // 1 MiB of text, of items, of keys, nested deep, and a 1 MiB error message: each line stays small.
      const keys = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]));
      let deep: unknown = 'bottom';
      for (let i = 0; i < 10_000; i++) deep = [deep];
      const huge = 'x'.repeat(1 << 20);
      for (const args of [huge, Array(1 << 20).fill(7), keys, deep, [huge, huge, huge], { a: huge, b: bytes }]) {
        o.logCall('echo', 'echo', args, args);
      }
      o.logCall('echo', 'echo', huge, undefined, new EnclaveError('internal', huge));
      const sizes = log.raw().split('\n').filter(Boolean).map((line) => line.length);
      expect(sizes).toHaveLength(8);
      for (const size of sizes) expect(size).toBeLessThan(12_000);
      const lines = log.lines;
      expect(String((lines[1]!.args as string).slice(0, 10))).toBe('xxxxxxxxxx');
      expect(lines[1]!.args).toMatch(/…\(\+\d+ chars\)$/);
      expect((lines[2]!.args as unknown[]).at(-1)).toMatch(/^…\(\+\d+ items\)$/);
      expect((lines[3]!.args as Record<string, unknown>)['…']).toMatch(/^\+\d+ keys$/);
      expect(lines[7]!.error).toMatch(/…\(\+\d+ chars\)$/);
      // A caller's key named __proto__ is logged as a key (never a prototype), a throwing getter or
      // toJSON does not escape, a bigint is its text.
      const hostile = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
      const trap = { get boom() { throw new Error('getter'); }, toJSON() { throw new Error('toJSON'); } };
      o.logCall('echo', 'echo', hostile, 12345678901234567890n);
      o.logCall('echo', 'echo', trap, undefined);
      const [proto, thrown] = log.lines.slice(8);
      expect(proto!.reply).toBe('12345678901234567890n');
      expect(Object.keys(proto!.args as object)).toEqual(['__proto__']);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(thrown!.args).toBe('(unreadable)');
    } finally {
      o.close();
    }
  });

  it('logsCalls follows the level set after the observer was made', () => {
    const log = capturedLogger('info');
    const o = new HostObserver({ logger: log.logger, logPayloads: false });
    try {
      expect(o.logsCalls).toBe(false);
      log.logger.level = 'debug';
      expect(o.logsCalls).toBe(true);
      o.logCall('echo', 'echo', 1, 1);
      expect(log.lines).toHaveLength(1);
    } finally {
      o.close();
    }
  });

  it("an enclave's log line is a field, never the message, at its level; lifecycle lines carry no payload", () => {
    const log = capturedLogger('debug');
    const o = new HostObserver({ logger: log.logger, logPayloads: false });
    try {
      const onLog = o.onLog('echo');
      onLog('error', '{"msg":"host compromised","level":60}\n\u001b[2J');
      onLog('info', 'x'.repeat(10_000));
      o.state('echo', 'failed');
      const [forged, long, state] = log.lines;
      expect(forged).toMatchObject({ level: 50, msg: 'enclave log', enclave: 'echo', line: '{"msg":"host compromised","level":60}\n\u001b[2J' });
      expect(log.raw()).not.toContain('\u001b'); // JSON-escaped
      expect((long!.line as string).length).toBe(4096);
      expect(long).toMatchObject({ truncated: true });
      expect(state).toMatchObject({ level: 50, msg: 'enclave state', enclave: 'echo', state: 'failed' });
    } finally {
      o.close();
    }
  });
});

describe.each(MODES)('the host counts its calls itself (callsFromHost): $name', (mode) => {
  it('calls by op and code, fuel as { stats } reports it, durations, a trap restart from the channel; call:end left alone', async () => {
    const isolation = mode.name === 'worker' ? 'worker' : 'in-process';
    const host = new EnclaveHost({ access: { version: 1, callers: { app: { allow: { echo: '*', hostile: '*' } } } }, integrityIntervalMs: 0 });
    try {
      await host.start('echo', { module: ECHO, isolation, instances: 1 });
      await host.start('hostile', { module: await fixture('hostile'), isolation, instances: 1, breaker: false, retry: false });
      // Nobody else listens in this file now: the runtime builds nothing and reads no clock for call:end.
      expect(channel(DIAGNOSTICS_CHANNELS.callEnd).hasSubscribers).toBe(false);
      expect(channel(DIAGNOSTICS_CHANNELS.instanceDiscard).hasSubscribers).toBe(true);
      const stats = { fuel: -1 };
      let fuel = 0;
      for (let i = 0; i < 3; i++) {
        await host.call('app', 'echo', 'echo', { i }, { stats });
        fuel += stats.fuel;
      }
      expect(await codeOf(host.call('app', 'echo', 'echo', { bad: new Date() }))).toBe('invalid_args');
      expect(await codeOf(host.call('app', 'echo', 'drop_tables'))).toBe('unknown_op');
      expect(await codeOf(host.call('app', 'hostile', 'unreachable'))).toBe('trap');
      const text = await host.registry.metrics();
      expect(sample(text, 'enclave_calls_total', { enclave: 'echo', op: 'echo', code: 'ok' })).toBe(3);
      expect(sample(text, 'enclave_calls_total', { enclave: 'echo', op: 'echo', code: 'invalid_args' })).toBe(1);
      expect(sample(text, 'enclave_calls_total', { enclave: 'echo', op: '(unknown)', code: 'unknown_op' })).toBe(1);
      expect(sample(text, 'enclave_call_duration_seconds_count', { enclave: 'echo', op: 'echo' })).toBe(4);
      expect(sample(text, 'enclave_fuel_used_total', { enclave: 'echo', op: 'echo' })).toBe(fuel);
      expect(fuel).toBeGreaterThan(0);
      expect(text).not.toContain('drop_tables');
      expect(sample(text, 'enclave_calls_total', { enclave: 'hostile', op: 'unreachable', code: 'trap' })).toBe(1);
      expect(sample(text, 'enclave_restarts_total', { enclave: 'hostile', reason: 'trap' })).toBe(1);
      const ops = host.stats().enclaves.echo!.ops;
      expect(ops.echo).toMatchObject({ calls: 4, errors: 1, errorsByCode: { invalid_args: 1 } });
      expect(ops.echo!.latencyMs.max).toBeGreaterThan(0);
      expect(ops.echo!.fuel.mean).toBeGreaterThan(0);
    } finally {
      await host.close();
    }
    expect(channel(DIAGNOSTICS_CHANNELS.instanceDiscard).hasSubscribers).toBe(false);
  });
});
