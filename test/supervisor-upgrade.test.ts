// Upgrades through the host supervisor (host/supervisor/host.ts, upgrade.ts): a blue-green swap and
// a canary under concurrent calls with zero failed calls, a failing canary rolled back, a lower svn
// refused unless forced, a new version that fails its self-check refused while the old one serves.
// Every outcome is a `swap` event with both measurements. Real worker-mode enclaves, 1-2 instances.

import { beforeAll, describe, expect, it } from 'vitest';
import { compileEnclave, EnclaveHost, generateKeyPair, signModule, type SwapEvent } from '../host/index.js';
import { CanaryTrial, checkSvn, settleUpgrade } from '../host/supervisor/upgrade.js';
import { supervisedHosts, supervisedModule } from './helpers/supervised.js';
import { codeOf } from './helpers/errors.js';

let v1: Uint8Array;
let v2: Uint8Array;
let v2failing: Uint8Array;
let m1: string;
let m2: string;
let m2failing: string;
beforeAll(async () => {
  [v1, v2, v2failing] = await Promise.all([
    supervisedModule({ version: '1.0.0', svn: 1 }),
    supervisedModule({ version: '2.0.0', svn: 2 }),
    supervisedModule({ version: '2.0.0', svn: 2, failing: true }),
  ]);
  [m1, m2, m2failing] = await Promise.all([v1, v2, v2failing].map(async (b) => (await compileEnclave(b, { cacheDir: false })).measurement));
});

const ACCESS = { version: 1, callers: { app: { allow: { svc: '*' } }, other: { allow: { svc: '*' } } } };
const QUEUE = { maxQueued: 4096, maxQueuedPerCaller: 2048, queueTimeoutMs: 20_000 };

const hosts = supervisedHosts({ access: ACCESS, integrityIntervalMs: 0 });
/** A host closed after the test, with every `swap` event it emits. */
function newHost(): { host: EnclaveHost; swaps: SwapEvent[] } {
  const host = hosts.newHost();
  const swaps: SwapEvent[] = [];
  host.on('swap', (e) => void swaps.push(e));
  return { host, swaps };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `during` while calls keep arriving from two callers (10 every 2 ms, at least `min` in all,
 * the last ones after `during` settled), and returns its outcome with every call's.
 */
async function underLoad<T>(host: EnclaveHost, during: () => Promise<T>, min = 200): Promise<{ outcome: T; calls: PromiseSettledResult<unknown>[]; after: number }> {
  const calls: Promise<unknown>[] = [];
  let done = false;
  let after = 0;
  const load = (async () => {
    for (let i = 0; !done || calls.length < min || after < 20; i++) {
      for (let k = 0; k < 10; k++) {
        const n = calls.length;
        calls.push(host.call(k % 2 === 0 ? 'app' : 'other', 'svc', 'echo', { n, pad: 'x'.repeat(16) }));
        if (done) after++;
      }
      await sleep(2);
    }
  })();
  // Some calls are in flight and queued before the upgrade begins.
  await sleep(10);
  const outcome = await during();
  done = true;
  await load;
  return { outcome, calls: await Promise.allSettled(calls), after };
}

function failures(calls: PromiseSettledResult<unknown>[]): string[] {
  return calls.filter((c): c is PromiseRejectedResult => c.status === 'rejected').map((c) => String((c.reason as { code?: string }).code ?? c.reason));
}

describe('blue-green', () => {
  it('swaps under ~200 concurrent calls with zero failed calls, and a `swap` event with both measurements', async () => {
    const { host, swaps } = newHost();
    await host.start('svc', { module: v1, instances: 2, queue: QUEUE });
    const { outcome, calls, after } = await underLoad(host, () => host.upgrade('svc', { module: v2 }));
    expect(outcome).toEqual({ outcome: 'switched', from: m1, to: m2 });
    expect(calls.length).toBeGreaterThanOrEqual(200);
    expect(after).toBeGreaterThanOrEqual(20);
    expect(failures(calls)).toEqual([]);
    // Every call answered its own args: nothing crossed between calls during the swap.
    calls.forEach((c, n) => expect((c as PromiseFulfilledResult<{ n: number }>).value.n).toBe(n));
    expect(swaps).toEqual([{ enclave: 'svc', strategy: 'blue-green', from: m1, to: m2, outcome: 'switched' }]);
    expect(host.stats().enclaves.svc).toMatchObject({ state: 'ready', measurement: m2, svn: 2, instances: 2 });
  });

  it('calls in flight at the switch finish on the old version; the old one is closed only after them', async () => {
    const { host } = newHost();
    await host.start('svc', { module: v1, instances: 1, queue: QUEUE });
    // Enough work queued to keep the one old instance busy for longer than the new version takes to
    // start: at the switch, a call is in flight on the old one (and the rest go to the new one).
    const long = Array.from({ length: 600 }, () => host.call('app', 'svc', 'work', { n: 300_000 }));
    const upgraded = host.upgrade('svc', { module: v2 });
    const results = await Promise.allSettled([...long, upgraded]);
    expect(failures(results)).toEqual([]);
    expect(host.stats().enclaves.svc!.queued).toBe(0);
    expect(await host.call('app', 'svc', 'echo', 'after')).toBe('after');
  });

  it('a new version that fails its self-check is refused; the old one keeps serving', async () => {
    const { host, swaps } = newHost();
    await host.start('svc', { module: v1, instances: 1 });
    expect(await codeOf(host.upgrade('svc', { module: v2, selfCheck: { op: 'fail' } }))).toBe('internal');
    expect(swaps).toEqual([{ enclave: 'svc', strategy: 'blue-green', from: m1, to: m2, outcome: 'refused', reason: 'internal' }]);
    expect(host.state('svc')).toBe('ready');
    expect(host.stats().enclaves.svc!.measurement).toBe(m1);
    expect(await host.call('app', 'svc', 'echo', 1)).toBe(1);
  });

  it('an upgrade cut by stop() while its version starts is a `refused` swap too (R3)', async () => {
    const { host, swaps } = newHost();
    await host.start('svc', { module: v1, instances: 1 });
    const upgrading = host.upgrade('svc', { module: v2 });
    const stopped = host.stop('svc');
    expect(await codeOf(upgrading)).toBe('unavailable');
    await stopped;
    expect(swaps).toEqual([{ enclave: 'svc', strategy: 'blue-green', from: m1, to: m2, outcome: 'refused', reason: 'unavailable' }]);
  });

  it('refuses an upgrade while another is in progress, of an enclave not ready, and bad options', async () => {
    const { host } = newHost();
    await host.start('svc', { module: v1, instances: 1 });
    const first = host.upgrade('svc', { module: v2 });
    expect(await codeOf(host.upgrade('svc', { module: v2 }))).toBe('state');
    await first;
    expect(await codeOf(host.upgrade('svc', { module: v2 }, { strategy: 'blue-green', share: 0.5 }))).toBe('invalid_options');
    expect(await codeOf(host.upgrade('svc', { module: v2 }, { strategy: 'canary', share: 1 }))).toBe('invalid_options');
    expect(await codeOf(host.upgrade('svc', { module: v2, queue: { maxQueued: 1 } }))).toBe('invalid_options');
    expect(await codeOf(host.upgrade('nope', { module: v2 }))).toBe('invalid_options');
    await host.stop('svc');
    expect(await codeOf(host.upgrade('svc', { module: v2 }))).toBe('unavailable');
  });
});

describe('svn', () => {
  it('a lower svn is refused (`rollback`, a `refused` swap) unless forced', async () => {
    const { host, swaps } = newHost();
    await host.start('svc', { module: v2, instances: 1 });
    expect(await codeOf(host.upgrade('svc', { module: v1 }))).toBe('rollback');
    expect(swaps).toEqual([{ enclave: 'svc', strategy: 'blue-green', from: m2, to: m1, outcome: 'refused', reason: 'rollback' }]);
    expect(host.stats().enclaves.svc!.measurement).toBe(m2);
    expect(await host.upgrade('svc', { module: v1 }, { force: true })).toEqual({ outcome: 'switched', from: m2, to: m1 });
    expect(swaps.at(-1)).toEqual({ enclave: 'svc', strategy: 'blue-green', from: m2, to: m1, outcome: 'switched' });
    expect(host.stats().enclaves.svc!.svn).toBe(1);
    // The same svn is no rollback.
    expect((await host.upgrade('svc', { module: v1 })).outcome).toBe('switched');
  });

  it('checkSvn: lower refused, equal and higher accepted, force overrides', () => {
    expect(() => checkSvn(2, 1, false)).toThrow(expect.objectContaining({ code: 'rollback' }));
    expect(() => checkSvn(2, 1, true)).not.toThrow();
    expect(() => checkSvn(2, 2, false)).not.toThrow();
    expect(() => checkSvn(2, 3, false)).not.toThrow();
  });

  it('an unknown upgrade option is named in the message as hostile input: quoted, cut, no bidi or control character', () => {
    const key = `\u202e${'k'.repeat(100)}\u0085`;
    let message = '';
    try {
      settleUpgrade({ [key]: 1 } as never);
    } catch (err) {
      expect(err).toMatchObject({ code: 'invalid_options' });
      message = (err as Error).message;
    }
    expect(message).toContain('Unknown upgrade option "\\u202e');
    expect(message).not.toMatch(/[\u202e\u0085]/);
    expect(message).not.toContain('k'.repeat(65));
  });
});

describe('canary', () => {
  it('takes a share of concurrent calls, is promoted with zero failed calls, and the swap carries both measurements', async () => {
    const { host, swaps } = newHost();
    await host.start('svc', { module: v1, instances: 1, queue: QUEUE });
    let sawCanary = false;
    const { outcome, calls } = await underLoad(host, async () => {
      const upgrading = host.upgrade('svc', { module: v2, instances: 1 }, { strategy: 'canary', share: 0.5, minCalls: 40, maxErrorRate: 0, timeoutMs: 20_000 });
      // While on trial, stats() shows the canary and its counts.
      for (let i = 0; i < 200 && !sawCanary; i++) {
        const canary = host.stats().enclaves.svc!.canary;
        if (canary !== undefined) {
          expect(canary).toMatchObject({ measurement: m2, share: 0.5, errors: 0 });
          sawCanary = true;
        }
        await sleep(5);
      }
      return upgrading;
    });
    expect(sawCanary).toBe(true);
    expect(outcome).toEqual({ outcome: 'promoted', from: m1, to: m2 });
    expect(calls.length).toBeGreaterThanOrEqual(200);
    expect(failures(calls)).toEqual([]);
    expect(swaps).toEqual([{ enclave: 'svc', strategy: 'canary', from: m1, to: m2, outcome: 'promoted' }]);
    expect(host.stats().enclaves.svc).toMatchObject({ measurement: m2 });
    expect(host.stats().enclaves.svc!.canary).toBeUndefined();
  });

  it('a failing canary is rolled back on its error rate; its failed idempotent calls ran again on the current version', async () => {
    const { host, swaps } = newHost();
    await host.start('svc', { module: v1, instances: 1, queue: QUEUE });
    const { outcome, calls } = await underLoad(host, () =>
      host.upgrade('svc', { module: v2failing, instances: 1 }, { strategy: 'canary', share: 0.5, minCalls: 50, maxErrorRate: 0.01, timeoutMs: 20_000 }),
    );
    expect(outcome).toEqual({ outcome: 'rolled-back', from: m1, to: m2failing, reason: 'error_rate' });
    expect(swaps).toEqual([{ enclave: 'svc', strategy: 'canary', from: m1, to: m2failing, outcome: 'rolled-back', reason: 'error_rate' }]);
    expect(failures(calls)).toEqual([]);
    expect(host.stats().enclaves.svc).toMatchObject({ state: 'ready', measurement: m1 });
    // A non-idempotent call the canary fails is the caller's failure: `fail` is not idempotent.
    expect(await host.call('app', 'svc', 'echo', 'still v1')).toBe('still v1');
  });

  it('a failing canary whose breaker opens is rolled back at once, and its calls never see the open breaker', async () => {
    const { host, swaps } = newHost();
    const breakers: string[] = [];
    host.on('breaker', (e) => void breakers.push(e.state));
    await host.start('svc', { module: v1, instances: 1, queue: QUEUE, breaker: { failures: 3, halfOpenAfterMs: 60_000 } });
    const { outcome, calls } = await underLoad(host, () =>
      // An error budget the trial alone would not exhaust before its breaker opens (3 consecutive failures).
      host.upgrade('svc', { module: v2failing, instances: 1 }, { strategy: 'canary', share: 0.5, minCalls: 1000, maxErrorRate: 0.5, timeoutMs: 20_000 }),
    );
    expect(outcome).toEqual({ outcome: 'rolled-back', from: m1, to: m2failing, reason: 'error_rate' });
    expect(breakers).toEqual(['open']);
    expect(swaps.at(-1)).toMatchObject({ outcome: 'rolled-back', reason: 'error_rate' });
    expect(failures(calls)).toEqual([]);
    expect(host.stats().enclaves.svc).toMatchObject({ measurement: m1, breaker: 'closed' });
  });

  it('a canary that does not reach minCalls in time is rolled back (`timeout`)', async () => {
    const { host, swaps } = newHost();
    await host.start('svc', { module: v1, instances: 1 });
    const result = await host.upgrade('svc', { module: v2 }, { strategy: 'canary', minCalls: 1000, timeoutMs: 50 });
    expect(result).toEqual({ outcome: 'rolled-back', from: m1, to: m2, reason: 'timeout' });
    expect(swaps.at(-1)).toMatchObject({ outcome: 'rolled-back', reason: 'timeout' });
    expect(host.stats().enclaves.svc!.measurement).toBe(m1);
  });

  it('stop() during a trial rolls the canary back (`stopped`) and drains', async () => {
    const { host, swaps } = newHost();
    await host.start('svc', { module: v1, instances: 1 });
    const upgrading = host.upgrade('svc', { module: v2 }, { strategy: 'canary', minCalls: 1000, timeoutMs: 20_000 });
    while (host.stats().enclaves.svc!.canary === undefined) await sleep(5);
    await host.stop('svc');
    expect(await upgrading).toEqual({ outcome: 'rolled-back', from: m1, to: m2, reason: 'stopped' });
    expect(swaps.at(-1)).toMatchObject({ outcome: 'rolled-back', reason: 'stopped' });
    expect(host.state('svc')).toBe('stopped');
  });

  it('CanaryTrial: which sessions a trial takes is its own secret, not a function of the ids (R3)', () => {
    const options = settleUpgrade({ strategy: 'canary', share: 0.5 });
    const keys = Array.from({ length: 64 }, (_, i) => `app|s${i}`);
    const taken = () => {
      const trial = new CanaryTrial(options, () => undefined);
      const picked = keys.filter((k) => trial.takes(k)).join(',');
      trial.abort();
      return picked;
    };
    // Two trials agreeing on 64 keys at share 0.5 by chance: 2^-64.
    expect(taken()).not.toBe(taken());
  });

  it('CanaryTrial: a session stays on one side; the verdict comes once, at minCalls or past the error budget', () => {
    const verdicts: unknown[] = [];
    const trial = new CanaryTrial(settleUpgrade({ strategy: 'canary', share: 0.3, minCalls: 10, maxErrorRate: 0.1 }), (v) => verdicts.push(v));
    for (const key of ['a|s1', 'b|s2', 'c|s3']) expect(new Set(Array.from({ length: 20 }, () => trial.takes(key))).size).toBe(1);
    const taken = Array.from({ length: 10_000 }, (_, i) => trial.takes(`k|${i}`)).filter(Boolean).length;
    expect(taken).toBeGreaterThan(2500);
    expect(taken).toBeLessThan(3500);
    for (let i = 0; i < 9; i++) trial.record(false);
    expect(verdicts).toEqual([]);
    trial.record(true); // 1 error in 10: within 0.1
    expect(verdicts).toEqual([{ outcome: 'promoted' }]);
    trial.record(true);
    expect(verdicts).toHaveLength(1);
    const failing = new CanaryTrial(settleUpgrade({ strategy: 'canary', minCalls: 100, maxErrorRate: 0.01 }), (v) => verdicts.push(v));
    failing.record(true);
    expect(verdicts).toHaveLength(1); // 1 error: within 1% of 100
    failing.record(true);
    expect(verdicts.at(-1)).toEqual({ outcome: 'rolled-back', reason: 'error_rate' });
  });
});

describe('what an upgrade leaves out (R3)', () => {
  it('is what the running version was started with: not start()\'s module, and a field given as undefined is left out too', async () => {
    const [v201, v202] = await Promise.all([supervisedModule({ version: '2.0.1', svn: 2 }), supervisedModule({ version: '2.0.2', svn: 2 })]);
    const alice = generateKeyPair();
    const trust = { trusted: [{ publicKey: alice.publicKey }] };
    const signed201 = signModule(v201, alice);
    const m201 = (await compileEnclave(signed201, { cacheDir: false })).measurement;
    const { host } = newHost();
    await host.start('svc', { module: signModule(v2, alice), isolation: 'in-process', trust });
    // A fixed build of the same svn (2.0.2 after 2.0.0): a later upgrade without `module` keeps it.
    expect((await host.upgrade('svc', { module: signed201 })).to).toBe(m201);
    expect((await host.upgrade('svc', { selfCheck: { op: 'health' } })).to).toBe(m201);
    expect(host.stats().enclaves.svc!.measurement).toBe(m201);
    // `{ ...config, module }` with no trust in config: the signature check stays.
    expect(await codeOf(host.upgrade('svc', { module: v202, trust: undefined }))).toBe('untrusted_module');
    expect(host.stats().enclaves.svc!.measurement).toBe(m201);
  });

  it('a per-session enclave upgraded with `state: undefined` keeps its sessions working', async () => {
    const { host } = newHost();
    await host.start('svc', { module: v1, isolation: 'in-process', state: 'per-session' });
    expect(await host.call('app', 'svc', 'count', null, { session: 'a' })).toBe(1);
    await host.upgrade('svc', { module: v2, state: undefined });
    expect(await host.call('app', 'svc', 'count', null, { session: 'a' })).toBe(1);
    expect(await host.call('app', 'svc', 'count', null, { session: 'a' })).toBe(2);
  });
});

describe('a session across versions (R3)', () => {
  it("does not carry its state: an op that requires another is refused `state` on the new version until the session does that one again", async () => {
    for (const state of [undefined, 'per-session'] as const) {
      const { host } = newHost();
      await host.start('svc', { module: v1, isolation: 'in-process', ...(state === undefined ? {} : { state }) });
      expect(await host.call('app', 'svc', 'open', null, { session: 's' })).toBe(true);
      expect(await host.call('app', 'svc', 'use', null, { session: 's' })).toBe(true);
      await host.upgrade('svc', { module: v2 });
      // What the TSDoc and docs/EMBEDDING.md say, not "no failed call".
      expect(await codeOf(host.call('app', 'svc', 'use', null, { session: 's' }))).toBe('state');
      expect(await host.call('app', 'svc', 'open', null, { session: 's' })).toBe(true);
      expect(await host.call('app', 'svc', 'use', null, { session: 's' })).toBe(true);
    }
  });
});
