/**
 * Regression tests from the review of the issue 10 restructuring of runtime/ (reviewer R2), each
 * named after what it guards. Public API only (host/index.ts), both isolation modes where the
 * behaviour is shared.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { compileEnclave, DIAGNOSTICS_CHANNELS, WorkerEnclave, type EnclavePlatform } from '../host/index.js';
import { ATTEST_CONTRACT, ATTEST_WAT } from './helpers/attest-wat.js';
import { loadIn, MODES } from './helpers/modes.js';
import { watModule } from './helpers/wat.js';

const CAPS = ['seal', 'attest'];
/** REPORT_STATUS.unavailable and SEAL_STATUS.unavailable (docs/ABI.md §3). */
const UNAVAILABLE = -3;

/** Lets Node's unhandled-rejection check run (it runs after the microtask queue drains). */
const settleTicks = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

describe.each(MODES)('a platform that answers with a Promise ($name)', (mode) => {
  let provider: SoftwareAttestationProvider;
  let bytes: Uint8Array;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  beforeAll(async () => {
    provider = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-platform-')) });
    bytes = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
  });
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  /** The real provider, with its sealing and evidence methods made asynchronous. */
  const asyncPlatform = (how: 'reject' | 'resolve'): EnclavePlatform =>
    ({
      platform: provider.platform,
      getSealingSecret: (identity: never, policy: never) =>
        how === 'reject' ? Promise.reject(new Error('async platform')) : Promise.resolve(provider.getSealingSecret(identity, policy)),
      getEvidence: (order: never) => (how === 'reject' ? Promise.reject(new Error('async platform')) : Promise.resolve(provider.getEvidence(order))),
    }) as unknown as EnclavePlatform;

  it('report and seal_key answer unavailable, and a rejected promise never ends the process as an unhandled rejection', async () => {
    const enclave = await loadIn(mode, bytes, { capabilities: CAPS, attestation: asyncPlatform('reject') });
    try {
      expect(await enclave.call('m_seal')).toBe(UNAVAILABLE);
      expect(await enclave.call('report')).toBe(UNAVAILABLE);
      await settleTicks();
      expect(unhandled).toEqual([]);
    } finally {
      await enclave.close();
    }
  }, 30_000);

  it('report never writes a pending promise as evidence ("[object Promise]"): an import cannot wait, so unavailable', async () => {
    const enclave = await loadIn(mode, bytes, { capabilities: CAPS, attestation: asyncPlatform('resolve') });
    try {
      expect(await enclave.call('report')).toBe(UNAVAILABLE);
      expect(await enclave.call('m_seal')).toBe(UNAVAILABLE);
      // attest() itself may wait: the same platform issues evidence through it.
      const token = await enclave.attest(new Uint8Array(16).fill(7));
      expect(token.split('.')).toHaveLength(3);
      await settleTicks();
      expect(unhandled).toEqual([]);
    } finally {
      await enclave.close();
    }
  }, 30_000);

  it('report answers unavailable for a token that is not a string, in both modes alike', async () => {
    const platform = { platform: 'stub', getSealingSecret: () => new Uint8Array(32), getEvidence: () => 42 } as unknown as EnclavePlatform;
    const enclave = await loadIn(mode, bytes, { capabilities: CAPS, attestation: platform });
    try {
      expect(await enclave.call('report')).toBe(UNAVAILABLE);
    } finally {
      await enclave.close();
    }
  }, 30_000);
});

/**
 * ops by the first letter of their name (byte 5 of the request): `slow` spins on the clock for
 * SLOW_MS; `loop` never returns (only a deadline ends it); anything else answers 0.
 */
const SLOW_MS = 800;
const RACE_WAT = `(module
  (import "enclave" "now" (func $now (result i64)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\00")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $op i32) (local $until i64)
    (local.set $op (i32.load8_u offset=5 (local.get $p)))
    (if (i32.eq (local.get $op) (i32.const 0x73))
      (then
        (local.set $until (i64.add (call $now) (i64.const ${SLOW_MS})))
        (loop $wait (br_if $wait (i64.lt_s (call $now) (local.get $until))))))
    (if (i32.eq (local.get $op) (i32.const 0x6c)) (then (loop $forever (br $forever))))
    (i32.const 0x100)))`;
const RACE_CONTRACT = {
  abi: 1,
  name: 'race',
  version: '0.0.1',
  svn: 0,
  capabilities: ['clock'],
  limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1 },
  ops: { slow: {}, loop: {}, ok: {} },
};

/** What a promise settled with: the value, or the rejection's code. */
const outcome = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    (value) => ({ value }),
    (err: { code?: unknown }) => ({ code: err?.code }),
  );

/** Fails (rather than hangs) when `p` has not settled within `ms`. */
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms).unref())]);

describe('worker mode: the handle under races (drain, close, endSession, attest with calls in flight and queued)', () => {
  let bytes: Uint8Array;
  beforeAll(async () => {
    bytes = await watModule(RACE_WAT, RACE_CONTRACT);
  });
  const load = (extra: Record<string, unknown> = {}) =>
    loadIn(MODES[1]!, bytes, { capabilities: ['clock'], metering: false, state: 'per-session', ...extra });

  it('close during drain: the call in flight, the queued calls and endSession all settle (closed, false), drain resolves', async () => {
    const enclave = await load();
    const inFlight = outcome(enclave.call('slow', undefined, { session: 'a' }));
    const queued = [outcome(enclave.call('ok', undefined, { session: 'a' })), outcome(enclave.call('ok', undefined, { session: 'b' }))];
    const ended = outcome(enclave.endSession('a'));
    const draining = enclave.drain();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await within(enclave.close(), 5_000, 'close');
    await within(draining, 5_000, 'drain');
    expect(await inFlight).toEqual({ code: 'closed' });
    expect(await Promise.all(queued)).toEqual([{ code: 'closed' }, { code: 'closed' }]);
    expect(await ended).toEqual({ value: false });
    await within(enclave.drain(), 1_000, 'drain after close');
  }, 30_000);

  it('a call that times out with calls queued behind it: the queued ones run on a fresh worker; drain resolves and never rejects', async () => {
    const enclave = await load({ deadlineMs: 300 });
    try {
      const first = outcome(enclave.call('loop', undefined, { session: 'a' }));
      const next = outcome(enclave.call('ok', undefined, { session: 'a' }));
      const ended = outcome(enclave.endSession('a'));
      await within(enclave.drain(), 15_000, 'drain');
      expect(await first).toEqual({ code: 'timeout' });
      expect(await next).toEqual({ value: 0 });
      expect(await ended).toEqual({ value: true });
    } finally {
      await enclave.close();
    }
  }, 30_000);

  it('close while the next call waits for a fresh worker: the call settles closed and drain resolves', async () => {
    const enclave = await load({ deadlineMs: 300 });
    const first = outcome(enclave.call('loop', undefined, { session: 'a' }));
    const second = outcome(enclave.call('ok', undefined, { session: 'a' }));
    expect(await first).toEqual({ code: 'timeout' });
    // The second call is now starting a fresh worker.
    await within(enclave.close(), 5_000, 'close');
    await within(enclave.drain(), 15_000, 'drain');
    expect(await second).toEqual({ code: 'closed' });
  }, 30_000);

  it('endSession with hostile ids resolves false in both modes, never throws or rejects', async () => {
    for (const mode of MODES) {
      const enclave = await loadIn(mode, bytes, { capabilities: ['clock'], metering: false, state: 'per-session' });
      try {
        const hostile = [undefined, null, 42, '', 'x'.repeat(10_000), '\ud800', { toString: () => { throw new Error('no'); } }, Object.create(null), '__proto__', 'constructor'];
        for (const id of hostile) expect(await enclave.endSession(id as never), `${mode.name} ${String(typeof id)}`).toBe(false);
        await enclave.call('ok', undefined, { session: '__proto__' });
        expect(await enclave.endSession('__proto__')).toBe(true);
      } finally {
        await enclave.close();
      }
    }
  }, 30_000);
});

describe('worker mode: close() resolves once the worker has stopped, however often it is called', () => {
  let bytes: Uint8Array;
  beforeAll(async () => {
    bytes = await watModule(RACE_WAT, RACE_CONTRACT);
  });

  it('a second close() made while the first is stopping the worker waits for the same stop', async () => {
    const exits: unknown[] = [];
    const onExit = (message: unknown): void => void exits.push(message);
    subscribe(DIAGNOSTICS_CHANNELS.workerExit, onExit);
    try {
      const enclave = await loadIn(MODES[1]!, bytes, { capabilities: ['clock'], metering: false });
      const first = enclave.close();
      await enclave.close();
      expect(exits).toMatchObject([{ reason: 'close' }]);
      await first;
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.workerExit, onExit);
    }
  }, 30_000);

  it('close() while a call waits for a fresh worker resolves only once that worker has stopped too', async () => {
    const exits: { reason: string }[] = [];
    const onExit = (message: unknown): void => void exits.push(message as { reason: string });
    subscribe(DIAGNOSTICS_CHANNELS.workerExit, onExit);
    try {
      const enclave = await loadIn(MODES[1]!, bytes, { capabilities: ['clock'], metering: false, deadlineMs: 300 });
      expect(await outcome(enclave.call('loop'))).toEqual({ code: 'timeout' });
      const second = outcome(enclave.call('ok'));
      await new Promise((resolve) => setTimeout(resolve, 5));
      await enclave.close();
      // The fresh worker, stopped by close (the timed-out one is stopped apart: not waited for).
      expect(exits.map((e) => e.reason)).toContain('close');
      expect(await second).toEqual({ code: 'closed' });
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.workerExit, onExit);
    }
  }, 30_000);
});

describe('the report token cache serves retries within one call only, enclave_alloc included', () => {
  // enclave_alloc and enclave_call both ask for evidence on the same 32 bytes of report data.
  const ALLOC_REPORT_WAT = `(module
    (import "enclave" "report" (func $report (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1 1)
    (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
    (data (i32.const 0x200) "\\81\\a2ok\\00")
    (data (i32.const 0x500) "abcdefghijklmnopqrstuvwxyz012345")
    (func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32)
      (drop (call $report (i32.const 0x500) (i32.const 32) (i32.const 0x1000) (i32.const 0x2000)))
      (i32.const 0x8000))
    (func (export "enclave_call") (param i32 i32) (result i32)
      (drop (call $report (i32.const 0x500) (i32.const 32) (i32.const 0x1000) (i32.const 0x2000)))
      (i32.const 0x100)))`;
  const CONTRACT = {
    abi: 1,
    name: 'alloc-report',
    version: '0.0.1',
    svn: 0,
    capabilities: ['attest'],
    limits: { requestBytes: 1024, replyBytes: 1024, depth: 4, memoryPages: 1 },
    ops: { go: {} },
  };

  it.each(['persistent', 'per-call'])('%s: each call gets evidence issued during it, never the previous call\'s token', async (state) => {
    let issued = 0;
    const platform = {
      platform: 'stub',
      getSealingSecret: () => new Uint8Array(32),
      getEvidence: () => `token.${++issued}.sig`,
    } as unknown as EnclavePlatform;
    const enclave = await loadIn(MODES[0]!, await watModule(ALLOC_REPORT_WAT, CONTRACT), { capabilities: ['attest'], attestation: platform, state });
    try {
      for (let n = 1; n <= 3; n++) {
        expect(await enclave.call('go')).toBe(0);
        // One issue per call: alloc's request is fresh, and the call's retry reuses it.
        expect(issued).toBe(n);
      }
    } finally {
      await enclave.close();
    }
  }, 30_000);
});

describe('WorkerEnclave.start settles its worker options unless settleHostOptions did', () => {
  it('a look-alike of the settled worker options (from JavaScript, past the .d.ts) is settled again, never trusted', async () => {
    const mod = await compileEnclave(await watModule(RACE_WAT, RACE_CONTRACT));
    // What the old start(mod, options) could not be given: deadlines and heap limits unchecked.
    const forged = { deadlineMs: -5, startDeadlineMs: 10_000, maxQueue: 0, queueTimeoutMs: 1, resourceLimits: {} };
    const start = WorkerEnclave.start as unknown as (m: unknown, o: unknown, h: unknown) => Promise<WorkerEnclave>;
    const enclave = await start.call(WorkerEnclave, mod, { capabilities: ['clock'], metering: false }, forged);
    try {
      expect(await outcome(enclave.call('ok'))).toEqual({ value: 0 });
    } finally {
      await enclave.close();
    }
  }, 30_000);
});
