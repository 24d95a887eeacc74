// The host supervisor's lifecycle (host/supervisor/host.ts, states.ts): every state change and its
// event, a failing self-check, a drain that lets accepted calls finish, the refusals that reveal
// nothing, and the options refused up front. Real worker-mode enclaves, one or two instances.

import { channel } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { EnclaveError, EnclaveHost, HOST_EVENTS, HOST_STATES, SoftwareAttestationProvider, type IntegrityEvent, type StateEvent } from '../host/index.js';
import { MAX_ENCLAVES } from '../host/supervisor/host.js';
import { TRANSITIONS } from '../host/supervisor/states.js';
import { HostObserver } from '../host/supervisor/observer.js';
import { InstancePool } from '../host/supervisor/pool.js';
import { supervisedHosts, supervisedModule } from './helpers/supervised.js';
import { codeOf } from './helpers/errors.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

let v1: Uint8Array;
beforeAll(async () => {
  v1 = await supervisedModule();
});

const ACCESS = {
  version: 1,
  callers: {
    app: { allow: { echo: '*', idle: '*' } },
    other: { allow: { secret: ['echo'] } },
  },
};

/** Hosts made by a test (newHost, or pushed on `hosts`), closed after it whatever happened. */
const { newHost, hosts } = supervisedHosts({ access: ACCESS, integrityIntervalMs: 0 });

/** Every `state` event of a host, as `enclave:from→to`. */
function recordStates(host: EnclaveHost): string[] {
  const seen: string[] = [];
  host.on('state', (e: StateEvent) => seen.push(`${e.enclave}:${e.from ?? '-'}→${e.to}`));
  return seen;
}

describe('states', () => {
  it('declares the lifecycle once: five states, and stop() is the only way out of ready but failure', () => {
    expect(HOST_STATES).toEqual(['starting', 'ready', 'draining', 'stopped', 'failed']);
    expect([...TRANSITIONS.get('ready')!]).toEqual(['draining', 'failed']);
    expect([...TRANSITIONS.get('starting')!]).toEqual(['ready', 'failed']);
    expect(HOST_EVENTS).toEqual(['state', 'swap', 'integrity', 'breaker', 'restart']);
  });

  it('start: starting → ready, with an event for each; stop: ready → draining → stopped', async () => {
    const host = newHost();
    const seen = recordStates(host);
    const pending = host.start('echo', { module: v1, instances: 2 });
    expect(host.state('echo')).toBe('starting');
    await pending;
    expect(host.state('echo')).toBe('ready');
    expect(await host.call('app', 'echo', 'echo', { hi: 1 })).toEqual({ hi: 1 });
    const stats = host.stats().enclaves.echo!;
    expect(stats).toMatchObject({ state: 'ready', instances: 2, queued: 0, inFlight: 0, breaker: 'closed', svn: 1 });
    expect(stats.measurement).toMatch(/^[0-9a-f]{64}$/);
    await host.stop('echo');
    expect(host.state('echo')).toBe('stopped');
    expect(seen).toEqual(['echo:-→starting', 'echo:starting→ready', 'echo:ready→draining', 'echo:draining→stopped']);
    // Stopped: calls are refused `unavailable`, and the name can be started again.
    expect(await codeOf(host.call('app', 'echo', 'echo', 1))).toBe('unavailable');
    await host.start('echo', { module: v1, instances: 1 });
    expect(seen.at(-2)).toBe('echo:stopped→starting');
    expect(host.state('echo')).toBe('ready');
  });

  it('a failing self-check: starting → failed, start rejects with its code, and nothing serves', async () => {
    const host = newHost();
    const seen = recordStates(host);
    const events: StateEvent[] = [];
    host.on('state', (e) => void events.push(e));
    expect(await codeOf(host.start('echo', { module: v1, instances: 2, selfCheck: { op: 'fail' } }))).toBe('internal');
    expect(host.state('echo')).toBe('failed');
    expect(seen).toEqual(['echo:-→starting', 'echo:starting→failed']);
    expect(events.at(-1)!.reason).toBe('internal');
    expect(await codeOf(host.call('app', 'echo', 'echo', 1))).toBe('unavailable');
    // A trap in the self-check fails the start too; a failed name starts again once fixed.
    expect(await codeOf(host.start('echo', { module: v1, instances: 1, selfCheck: { op: 'crash' } }))).toBe('trap');
    await host.start('echo', { module: v1, instances: 1 });
    expect(seen.slice(-2)).toEqual(['echo:failed→starting', 'echo:starting→ready']);
    // stop() of a failed enclave: failed → stopped.
    const h2 = newHost();
    const seen2 = recordStates(h2);
    await codeOf(h2.start('x', { module: v1, instances: 1, selfCheck: { op: 'fail' } }));
    await h2.stop('x');
    expect(seen2).toEqual(['x:-→starting', 'x:starting→failed', 'x:failed→stopped']);
  });

  it('a self-check that names no op of the contract is refused, and the enclave is failed', async () => {
    const host = newHost();
    expect(await codeOf(host.start('echo', { module: v1, instances: 1, selfCheck: { op: 'nope' } }))).toBe('invalid_options');
    expect(host.state('echo')).toBe('failed');
  });

  it('a module that does not load: starting → failed with the load code', async () => {
    const host = newHost();
    const seen = recordStates(host);
    expect(await codeOf(host.start('echo', { module: new Uint8Array([1, 2, 3, 4]), instances: 1 }))).toBe('invalid_module');
    expect(seen).toEqual(['echo:-→starting', 'echo:starting→failed']);
  });

  it('stop() drains: calls queued and in flight finish; calls made while draining are refused', async () => {
    const host = newHost();
    const seen = recordStates(host);
    await host.start('echo', { module: v1, instances: 1 });
    // One instance: the first call runs, the others wait in the host queue.
    const accepted = Array.from({ length: 6 }, (_, i) => host.call('app', 'echo', 'work', { n: 200_000 + i }));
    expect(host.stats().enclaves.echo).toMatchObject({ inFlight: 1, queued: 5 });
    const stopping = host.stop('echo');
    expect(host.state('echo')).toBe('draining');
    expect(await codeOf(host.call('app', 'echo', 'echo', 1))).toBe('unavailable');
    const results = await Promise.allSettled(accepted);
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('fulfilled'));
    for (const r of results) expect(typeof (r as PromiseFulfilledResult<unknown>).value).toBe('number');
    await stopping;
    expect(seen.slice(-2)).toEqual(['echo:ready→draining', 'echo:draining→stopped']);
    // A second stop() is a no-op.
    await host.stop('echo');
  });

  it('close() stops every enclave (each drains), then start() is refused `closed`', async () => {
    const host = newHost();
    await host.start('echo', { module: v1, instances: 1 });
    await host.start('idle', { module: v1, instances: 1, isolation: 'in-process' });
    const inFlight = host.call('app', 'echo', 'work', { n: 100_000 });
    await host.close();
    expect(typeof (await inFlight)).toBe('number');
    expect(host.state('echo')).toBe('stopped');
    expect(host.state('idle')).toBe('stopped');
    expect(await codeOf(host.start('echo', { module: v1 }))).toBe('closed');
    await host.close(); // idempotent
  });

  it('stop() while starting waits for the start, then stops', async () => {
    const host = newHost();
    const seen = recordStates(host);
    const starting = host.start('echo', { module: v1, instances: 1 });
    await host.stop('echo');
    await starting;
    expect(seen).toEqual(['echo:-→starting', 'echo:starting→ready', 'echo:ready→draining', 'echo:draining→stopped']);
  });
});

describe('hostile and re-entrant lifecycle calls (R3)', () => {
  it('a listener that stops the enclave as it starts: stop() waits for the start, then stops', async () => {
    const host = newHost();
    const seen = recordStates(host);
    let stopping: Promise<void> | undefined;
    host.on('state', (e) => {
      if (e.to === 'starting') stopping = host.stop(e.enclave);
    });
    await host.start('echo', { module: v1, isolation: 'in-process' });
    await stopping;
    expect(seen).toEqual(['echo:-→starting', 'echo:starting→ready', 'echo:ready→draining', 'echo:draining→stopped']);
  });

  it('a spec or upgrade options whose getter throws: `invalid_options`, never a bare error', async () => {
    const host = newHost();
    const throwing = (o: object, key: string) => Object.defineProperty(o, key, { enumerable: true, get: () => { throw new TypeError('no'); } });
    expect(await codeOf(host.start('echo', throwing({}, 'module') as never))).toBe('invalid_options');
    expect(await codeOf(host.start('echo', throwing({ module: v1 }, 'queue') as never))).toBe('invalid_options');
    await host.start('echo', { module: v1, isolation: 'in-process' });
    expect(await codeOf(host.upgrade('echo', throwing({}, 'instances') as never))).toBe('invalid_options');
    expect(await codeOf(host.upgrade('echo', { module: v1 }, throwing({}, 'strategy') as never))).toBe('invalid_options');
    expect(host.state('echo')).toBe('ready');
  });
});

describe('names (R3)', () => {
  it('names stopped make room for new ones: MAX_ENCLAVES bounds the enclaves running, not every name ever started', async () => {
    const host = newHost();
    for (let i = 0; i < MAX_ENCLAVES; i++) {
      await host.start(`e${i}`, { module: v1, isolation: 'in-process' });
      if (i > 0) await host.stop(`e${i}`);
    }
    // One more name: the oldest stopped one (e1) is forgotten; e0 still runs and is kept.
    await host.start('extra', { module: v1, isolation: 'in-process' });
    expect(host.state('extra')).toBe('ready');
    expect(host.state('e1')).toBeUndefined();
    expect(host.state('e2')).toBe('stopped');
    expect(host.state('e0')).toBe('ready');
    expect(Object.keys(host.stats().enclaves)).toHaveLength(MAX_ENCLAVES);
  });

  it('with every name running, one more is still refused', async () => {
    const host = newHost();
    for (let i = 0; i < MAX_ENCLAVES; i++) await host.start(`e${i}`, { module: v1, isolation: 'in-process' });
    expect(await codeOf(host.start('extra', { module: v1, isolation: 'in-process' }))).toBe('invalid_options');
  });
});

describe('integrity over time', () => {
  it('a module file rewritten under a running enclave: `integrity` event, ready → failed, calls refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-integrity-'));
    try {
      const file = join(dir, 'svc.wasm');
      writeFileSync(file, v1);
      const host = newHost();
      const seen = recordStates(host);
      const integrity: IntegrityEvent[] = [];
      host.on('integrity', (e) => void integrity.push(e));
      await host.start('echo', { module: file, instances: 1 });
      expect(await host.checkIntegrity('echo')).toBe(true);
      const measurement = host.stats().enclaves.echo!.measurement!;
      // The file changed under it: the contract's closing brace became a space.
      const tampered = v1.slice();
      tampered[tampered.length - 1] = 0x20;
      writeFileSync(file, tampered);
      expect(await host.checkIntegrity('echo')).toBe(false);
      expect(integrity).toHaveLength(1);
      expect(integrity[0]).toMatchObject({ enclave: 'echo', expected: measurement, where: 'file' });
      expect(integrity[0]!.found).not.toBe(measurement);
      expect(seen.slice(-1)).toEqual(['echo:ready→failed']);
      expect(await codeOf(host.call('app', 'echo', 'echo', 1))).toBe('unavailable');
      const metrics = await host.registry.metrics();
      expect(metrics).toMatch(/enclave_integrity_checks_total\{[^}]*enclave="echo"[^}]*result="mismatch"[^}]*\} 1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a module started from a relative path is checked at that file after the process changes directory (R1)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-integrity-'));
    const cwd = process.cwd();
    try {
      writeFileSync(join(dir, 'svc.wasm'), v1);
      const host = newHost();
      await host.start('echo', { module: relative(cwd, join(dir, 'svc.wasm')), instances: 1, isolation: 'in-process' });
      expect(await host.checkIntegrity('echo')).toBe(true);
      // The path re-resolved against the new directory named no file: a mismatch, and the enclave failed.
      process.chdir(tmpdir());
      expect(await host.checkIntegrity('echo')).toBe(true);
      expect(host.state('echo')).toBe('ready');
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('once a mismatch took an enclave out, every check says false: later ones, and one racing it (R3)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-integrity-'));
    try {
      const file = join(dir, 'svc.wasm');
      writeFileSync(file, v1);
      const host = newHost();
      await host.start('echo', { module: file, instances: 1, isolation: 'in-process' });
      const tampered = v1.slice();
      tampered[tampered.length - 1] = 0x20;
      writeFileSync(file, tampered);
      // Two checks at once (the schedule's and the operator's): the one that finds no version left must not say true.
      expect(await Promise.all([host.checkIntegrity('echo'), host.checkIntegrity('echo')])).toEqual([false, false]);
      expect(host.state('echo')).toBe('failed');
      expect(await host.checkIntegrity('echo')).toBe(false);
      // Started again from good bytes: checked afresh.
      writeFileSync(file, v1);
      await host.start('echo', { module: file, instances: 1, isolation: 'in-process' });
      expect(await host.checkIntegrity('echo')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the schedule checks by itself', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-integrity-'));
    try {
      const file = join(dir, 'svc.wasm');
      writeFileSync(file, v1);
      const host = new EnclaveHost({ access: ACCESS, integrityIntervalMs: 50 });
      hosts.push(host);
      const failed = new Promise<StateEvent>((resolve) => host.on('state', (e) => void (e.to === 'failed' && resolve(e))));
      await host.start('echo', { module: file, instances: 1 });
      writeFileSync(file, new Uint8Array([0, 97, 115, 109]));
      expect((await failed).reason).toBe('integrity');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('attestation', () => {
  /** The `dbgstat` claim of an evidence token (docs/ATTESTATION.md): 0 means inspectable. */
  const dbgstat = (token: string): number => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).dbgstat;

  it('host.attest: evidence from a serving instance, timed into the metrics; logPayloads shows in it as debug', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-platform-'));
    try {
      const attestation = new SoftwareAttestationProvider({ dir });
      const nonce = new Uint8Array(16).fill(7);
      const quiet = newHost();
      await quiet.start('echo', { module: v1, instances: 2, attestation });
      const token = await quiet.attest('echo', nonce);
      expect(dbgstat(token)).toBe(1);
      expect(await quiet.registry.metrics()).toMatch(/enclave_attestation_duration_seconds_count\{[^}]*enclave="echo"[^}]*\} 1/);
      // Payload logging is a way to see inside: every enclave of such a host says so in its evidence.
      const verbose = new EnclaveHost({ access: ACCESS, integrityIntervalMs: 0, logPayloads: true });
      hosts.push(verbose);
      await verbose.start('echo', { module: v1, instances: 1, attestation });
      expect(dbgstat(await verbose.attest('echo', nonce))).toBe(0);
      // Not serving: unavailable; no platform: the runtime's refusal.
      expect(await codeOf(quiet.attest('nope', nonce))).toBe('unavailable');
      await quiet.start('bare', { module: v1, instances: 1 });
      expect(await codeOf(quiet.attest('bare', nonce))).toBe('invalid_options');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a pool member replaced', () => {
  /** Starts `name` on `host` and returns the InstancePool the host made for it. */
  async function startCapturing(host: EnclaveHost, name: string, spec: Parameters<EnclaveHost['start']>[1]): Promise<InstancePool> {
    const start = vi.spyOn(InstancePool, 'start');
    try {
      await host.start(name, spec);
      return (await start.mock.results.at(-1)!.value) as InstancePool;
    } finally {
      start.mockRestore();
    }
  }

  it('host.attest answers from a serving member while members[0] is closed and being replaced', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-platform-'));
    try {
      const host = newHost();
      const pool = await startCapturing(host, 'echo', { module: v1, instances: 2, attestation: new SoftwareAttestationProvider({ dir }) });
      // Closed behind the pool's back: members[0] holds a closed handle until its replacement is in place.
      await pool.members[0]!.handle.close();
      expect(pool.members[0]!.handle.closed).toBe(true);
      expect(typeof (await host.attest('echo', new Uint8Array(16)))).toBe('string');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the replaced member's handle leaves the observer when it is replaced, not when its version closes", async () => {
    const host = newHost();
    const pool = await startCapturing(host, 'echo', { module: v1, instances: 2 });
    const detach = vi.spyOn(HostObserver.prototype, 'detach');
    try {
      const old = pool.members[1]!.handle;
      await old.close();
      const restarted = new Promise<void>((resolve) => host.once('restart', () => resolve()));
      // The host finds it closed when it next dispatches there (a session that maps to member 1).
      for (let i = 0; pool.members[1]!.handle === old && i < 200; i++) {
        await host.call('app', 'echo', 'echo', i, { session: `s${i}` }).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 5));
      }
      await restarted;
      expect(pool.members[1]!.handle).not.toBe(old);
      expect(detach.mock.calls.map(([handle]) => handle)).toEqual([old]);
      // The new member is counted: calls on it still serve.
      expect(await host.call('app', 'echo', 'echo', 'after')).toBe('after');
    } finally {
      detach.mockRestore();
    }
  });
});

describe('retries of an idempotent op', () => {
  /**
   * One idempotent op, `flaky`, that traps when the clock capability reads 0 ms and answers true
   * otherwise: the test decides which attempt fails by what Date.now returns (in-process, the
   * capability reads the host's Date.now; nothing else on the call path reads it).
   */
  const FLAKY_WAT = minimalWat({
    imports: '(import "enclave" "now" (func $now (result i64)))',
    exports: `(func (export "enclave_abi_version") (result i32) (i32.const 1))
      (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
      (func (export "enclave_call") (param i32 i32) (result i32)
        (if (i64.eqz (call $now)) (then unreachable))
        (i32.const 0x100))`,
  });
  let flaky: Uint8Array;
  beforeAll(async () => {
    flaky = await watModule(FLAKY_WAT, { ...MINIMAL_CONTRACT, capabilities: ['clock'], ops: { flaky: { idempotent: true } } });
  });
  const RETRY_ACCESS = { version: 1, callers: { app: { allow: { flaky: '*' } } } };

  it('an attempt that traps once is retried after a backoff and the call succeeds', async () => {
    const host = new EnclaveHost({ access: RETRY_ACCESS, integrityIntervalMs: 0 });
    hosts.push(host);
    await host.start('flaky', { module: flaky, isolation: 'in-process', capabilities: ['clock'], retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 20 } });
    const realNow = Date.now.bind(Date);
    let reads = 0;
    const now = vi.spyOn(Date, 'now').mockImplementation(() => (++reads === 1 ? 0 : realNow()));
    try {
      expect(await host.call('app', 'flaky', 'flaky')).toBe(true);
      // Two attempts: the first trapped (the clock read 0), the retry answered.
      expect(reads).toBe(2);
      // Without retries, the same first attempt is the caller's error.
      const once = new EnclaveHost({ access: RETRY_ACCESS, integrityIntervalMs: 0 });
      hosts.push(once);
      await once.start('flaky', { module: flaky, isolation: 'in-process', capabilities: ['clock'], retry: false });
      reads = 0;
      expect(await codeOf(once.call('app', 'flaky', 'flaky'))).toBe('trap');
      expect(reads).toBe(1);
    } finally {
      now.mockRestore();
    }
    expect(host.stats().enclaves.flaky?.ops.flaky).toMatchObject({ calls: 2 });
  });

  it('stop() does not wait out a retry backoff: the call waiting to be retried rejects unavailable at once', async () => {
    const host = new EnclaveHost({ access: RETRY_ACCESS, integrityIntervalMs: 0 });
    hosts.push(host);
    // Backoffs of up to a minute (the largest maxDelayMs), a draw that makes the first one ~54 s.
    await host.start('flaky', { module: flaky, isolation: 'in-process', capabilities: ['clock'], breaker: false, retry: { maxAttempts: 10, initialDelayMs: 60_000, maxDelayMs: 60_000 } });
    const now = vi.spyOn(Date, 'now').mockReturnValue(0);
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    let call: Promise<string>;
    try {
      call = codeOf(host.call('app', 'flaky', 'flaky'));
      // The first attempt trapped; its retry now waits out the backoff.
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      now.mockRestore();
      random.mockRestore();
    }
    const stopped = await Promise.race([host.stop('flaky').then(() => 'stopped'), new Promise((r) => setTimeout(() => r('stop waits'), 5000))]);
    expect(stopped).toBe('stopped');
    expect(await call).toBe('unavailable');
    expect(host.state('flaky')).toBe('stopped');
  });
});

describe('the access policy', () => {
  it('read from a file; an unreadable one holds every start back until a reload puts a valid one in force', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-access-'));
    try {
      const file = join(dir, 'access.json');
      writeFileSync(file, JSON.stringify(ACCESS));
      const fromFile = new EnclaveHost({ access: file, integrityIntervalMs: 0 });
      hosts.push(fromFile);
      await fromFile.start('echo', { module: v1, instances: 1, isolation: 'in-process' });
      expect(await fromFile.call('app', 'echo', 'echo', 1)).toBe(1);

      const missing = new EnclaveHost({ access: join(dir, 'missing.json'), integrityIntervalMs: 0 });
      hosts.push(missing);
      expect(await codeOf(missing.start('echo', { module: v1, instances: 1, isolation: 'in-process' }))).toBe('invalid_access_policy');
      // An invalid reload leaves things as they were; a valid one lets starts go on.
      expect(await codeOf(missing.reloadAccess({ version: 1, callers: { 'a b': { allow: {} } } }))).toBe('invalid_access_policy');
      await missing.reloadAccess(file);
      await missing.start('echo', { module: v1, instances: 1, isolation: 'in-process' });
      expect(await missing.call('app', 'echo', 'echo', 2)).toBe(2);
      // A reload that drops the caller takes its access away at once.
      await missing.reloadAccess({ version: 1, callers: { other: { allow: { echo: '*' } } } });
      expect(await codeOf(missing.call('app', 'echo', 'echo', 3))).toBe('unauthorized');
      expect(await missing.call('other', 'echo', 'echo', 4)).toBe(4);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('refusals reveal nothing', () => {
  it('an enclave that does not exist and one the caller may not call give the same code and message', async () => {
    const host = newHost();
    await host.start('echo', { module: v1, instances: 1, isolation: 'in-process' });
    await host.start('secret', { module: v1, instances: 1, isolation: 'in-process' });
    const errors: EnclaveError[] = [];
    for (const [enclave, op] of [
      ['secret', 'echo'], // exists, not allowed to `app`
      ['nowhere', 'echo'], // does not exist
      ['secret', 'nope'], // exists, op does not
      ['echo'.repeat(100_000), 'echo'], // hostile length
      [{ toString: () => 'echo' }, 'echo'], // not a string
    ] as const) {
      try {
        await host.call('app', enclave as string, op, 1);
        throw new Error('expected a refusal');
      } catch (err) {
        errors.push(err as EnclaveError);
      }
    }
    for (const err of errors) {
      expect(err).toBeInstanceOf(EnclaveError);
      expect(err.code).toBe('denied');
      expect(err.message).toBe(errors[0]!.message);
    }
    // Allowed, but not started: only now does the caller learn it does not serve.
    expect(await codeOf(host.call('app', 'idle', 'echo', 1))).toBe('unavailable');
    // Unknown and malformed callers: `unauthorized`, before anything about the enclave.
    for (const caller of ['stranger', '', 'a b', '__proto__', 'x'.repeat(10_000), 42, undefined]) {
      expect(await codeOf(host.call(caller as string, 'echo', 'echo', 1))).toBe('unauthorized');
    }
    // A caller allowed on `secret` reaches it.
    expect(await host.call('other', 'secret', 'echo', 'hi')).toBe('hi');
    // Refusals are counted under bounded labels only: the hostile names never reach the metrics.
    const metrics = await host.registry.metrics();
    expect(metrics).not.toContain('nowhere');
    expect(metrics).not.toContain('stranger');
    expect(metrics).toMatch(/enclave_refusals_total\{[^}]*enclave="secret"[^}]*code="denied"/);
  });

  it('hostile call options are refused `invalid_options`, never thrown', async () => {
    const host = newHost();
    await host.start('echo', { module: v1, instances: 1, isolation: 'in-process' });
    const throwing = Object.defineProperty({}, 'session', {
      get() {
        throw new Error('boom');
      },
    });
    for (const options of [throwing, { session: '' }, { session: 'x'.repeat(128) }, { session: '\ud800' }, { session: 5 }, { stats: 1 }, 7]) {
      expect(await codeOf(host.call('app', 'echo', 'echo', 1, options as never))).toBe('invalid_options');
    }
    const stats = { fuel: 0 };
    await host.call('app', 'echo', 'echo', 1, { session: 'x'.repeat(127), stats });
    expect(stats.fuel).toBeGreaterThan(0);
  });
});

describe('reloadAccess', () => {
  const REVOKED = { version: 1, callers: { app: { allow: { echo: '*' } }, revoked: { allow: { echo: '*' } } } };

  it('puts the policy of the last reload in force, even when an earlier one settles after it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-reload-'));
    try {
      const file = join(dir, 'old.json');
      writeFileSync(file, JSON.stringify(REVOKED));
      // Built from a file, reloaded with a document before the file was read.
      const host = new EnclaveHost({ access: file, integrityIntervalMs: 0 });
      hosts.push(host);
      await host.reloadAccess(ACCESS);
      await host.start('echo', { module: v1, instances: 1, isolation: 'in-process' });
      expect(await codeOf(host.call('revoked', 'echo', 'echo', 1))).toBe('unauthorized');
      expect(await host.call('app', 'echo', 'echo', 1)).toBe(1);
      // Two reloads: the file (slow) then a document (at once); both settle, the document stays.
      await Promise.all([host.reloadAccess(file), host.reloadAccess(ACCESS)]);
      expect(await codeOf(host.call('revoked', 'echo', 'echo', 1))).toBe('unauthorized');
      // Reloads in sequence still work both ways.
      await host.reloadAccess(file);
      expect(await host.call('revoked', 'echo', 'echo', 1)).toBe(1);
      await host.reloadAccess(ACCESS);
      expect(await codeOf(host.call('revoked', 'echo', 'echo', 1))).toBe('unauthorized');
      // An invalid reload leaves the policy in force, and an earlier valid one still lands.
      const pending = host.reloadAccess(file);
      expect(await codeOf(host.reloadAccess({ version: 2 }))).toBe('invalid_access_policy');
      await pending;
      expect(await host.call('revoked', 'echo', 'echo', 1)).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('options and events refused up front', () => {
  it('refuses bad names, unknown spec keys, and impossible pools', async () => {
    const host = newHost();
    for (const [name, spec] of [
      ['Bad', { module: v1 }],
      ['a'.repeat(65), { module: v1 }],
      ['__proto__', { module: v1 }],
      ['ok', { module: v1, instanses: 2 }],
      ['ok', { module: v1, isolation: 'in-process', instances: 2 }],
      ['ok', { module: v1, isolation: 'in-process', deadlineMs: 10 }],
      ['ok', { module: v1, instances: 0 }],
      ['ok', { module: v1, queue: { maxQueued: -1 } }],
      ['ok', { module: v1, retry: { maxAttempts: 99 } }],
      ['ok', { module: 42 }],
      ['ok', null],
    ] as const) {
      expect(await codeOf(host.start(name, spec as never))).toBe('invalid_options');
    }
    expect(host.state('ok')).toBeUndefined();
    await host.start('ok', { module: v1, instances: 1 });
    expect(await codeOf(host.start('ok', { module: v1 }))).toBe('invalid_options');
    expect(() => new EnclaveHost({} as never)).toThrow(EnclaveError);
    expect(() => new EnclaveHost({ access: { version: 2 } })).toThrow(expect.objectContaining({ code: 'invalid_access_policy' }));
  });

  it('a constructor that refuses leaves nothing behind: no metrics in the registry, no channel subscription', async () => {
    const callEnd = channel('enclave:call:end');
    expect(callEnd.hasSubscribers).toBe(false); // no host is open here
    const registry = new Registry();
    for (const options of [
      { access: { version: 2 }, registry },
      { access: { version: 1, callers: { x: 1 } }, registry },
      { access: ACCESS, registry, logger: {} },
      { access: ACCESS, registry, logger: null },
      { access: ACCESS, registry: {} },
    ]) {
      expect(() => new EnclaveHost(options as never)).toThrow(EnclaveError);
      expect(await registry.getMetricsAsJSON()).toEqual([]);
      expect(callEnd.hasSubscribers).toBe(false);
    }
    // The service's corrected second attempt on the same registry works.
    const host = new EnclaveHost({ access: ACCESS, registry, integrityIntervalMs: 0 });
    hosts.push(host);
    expect(await registry.metrics()).toContain('enclave_calls_total');
  });

  it('each host option is read once: a getter cannot pass the checks as one value and be used as another', async () => {
    const reads: Record<string, number> = {};
    const registry = new Registry();
    const count = (name: string, values: unknown[]) => () => values[Math.min((reads[name] = (reads[name] ?? 0) + 1) - 1, values.length - 1)];
    const options = {
      // A policy document to the checks, then a path (read from the disk) if read again.
      get access() { return count('access', [ACCESS, '/nonexistent/access.json'])(); },
      get registry() { return count('registry', [registry, {}])(); },
      get logger() { return count('logger', [undefined, {}])(); },
      get logPayloads() { return count('logPayloads', [false, 'yes'])(); },
      get integrityIntervalMs() { return count('integrityIntervalMs', [0, -1])(); },
    };
    const host = new EnclaveHost(options as never);
    hosts.push(host);
    expect(reads).toEqual({ access: 1, registry: 1, logger: 1, logPayloads: 1, integrityIntervalMs: 1 });
    // The policy read is the one in force: the enclave starts (a path would have failed to load).
    await host.start('echo', { module: v1, instances: 1, isolation: 'in-process' });
    expect(await host.call('app', 'echo', 'echo', 'hi')).toBe('hi');
    // A getter that throws is a refused option, not a bare error.
    const throwing = { get access(): unknown { throw new TypeError('getter'); } };
    expect(() => new EnclaveHost(throwing as never)).toThrow(expect.objectContaining({ code: 'invalid_options' }));
  });

  it('event names are checked; a listener that throws or rejects reaches nobody', async () => {
    const host = newHost();
    expect(() => host.on('bogus' as never, () => undefined)).toThrow(expect.objectContaining({ code: 'invalid_options' }));
    expect(() => host.on('state', 'not a function' as never)).toThrow(expect.objectContaining({ code: 'invalid_options' }));
    host.on('state', () => {
      throw new Error('listener bug');
    });
    host.on('state', () => Promise.reject(new Error('async listener bug')));
    const once: string[] = [];
    host.once('state', (e) => void once.push(e.to));
    await host.start('echo', { module: v1, instances: 1, isolation: 'in-process' });
    expect(host.state('echo')).toBe('ready');
    expect(once).toEqual(['starting']);
    const off = (e: StateEvent): void => void once.push(`off:${e.to}`);
    host.on('state', off);
    host.off('state', off);
    // A listener added with once() is removed by off() too, before it ever ran.
    const never = (e: StateEvent): void => void once.push(`once-off:${e.to}`);
    host.once('state', never);
    host.off('state', never);
    await host.stop('echo');
    expect(once).toEqual(['starting']);
  });
});

describe('close() after a failure (R3)', () => {
  it('close() called as integrity fails the enclave resolves only once its workers are gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-host-integrity-'));
    const exits = channel('enclave:worker:exit');
    let exited = 0;
    const onExit = () => void exited++;
    exits.subscribe(onExit);
    try {
      const file = join(dir, 'svc.wasm');
      writeFileSync(file, v1);
      const host = newHost();
      await host.start('echo', { module: file, instances: 2 });
      writeFileSync(file, new Uint8Array([0, 97, 115, 109]));
      let closed: Promise<void> | undefined;
      host.on('state', (e) => {
        if (e.to === 'failed') closed = host.close();
      });
      const checked = host.checkIntegrity('echo');
      while (closed === undefined) await new Promise((r) => setImmediate(r));
      await closed;
      // Both workers of the failed enclave exited before close() resolved.
      expect(exited).toBe(2);
      expect(await checked).toBe(false);
    } finally {
      exits.unsubscribe(onExit);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
