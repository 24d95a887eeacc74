/**
 * Host-thread listeners of a worker's messages (runtime/_worker-spawn.ts, runtime/_instrument-worker.ts):
 * a malformed message, from a bug or a compromised worker, ends that worker with a stable code and
 * never throws out of a listener (an exception there is uncaught: it would crash the host process).
 *
 * The messages go through the real listeners: `node:worker_threads` is wrapped so the test reaches
 * each Worker the runtime starts, and emits on it what a broken worker could post.
 */
import type { Worker as NodeWorker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadEnclave } from '../host/index.js';
import { instrumentOffThread } from '../runtime/_instrument-worker.js';
import { INSTRUMENTER_VERSION } from '../runtime/fuel.js';
import { HEADER_BYTES } from '../runtime/_worker-protocol.js';
import { codeOf } from './helpers/errors.js';
import { bigModule } from './hostile/_big-modules.js';
import { SPIN_CONTRACT, SPIN_WAT, watModule } from './helpers/wat.js';

const hooks = vi.hoisted(() => ({
  /** Every Worker the runtime started, in order. */
  workers: [] as NodeWorker[],
  /** Called with each new Worker once its constructor returned (the runtime wires it in the same tick). */
  onStart: undefined as ((worker: NodeWorker) => void) | undefined,
  /** Sees each message the runtime posts to a worker; true = swallow it (the test answers instead). */
  onPost: undefined as ((worker: NodeWorker, message: unknown) => boolean) | undefined,
}));

vi.mock('node:worker_threads', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:worker_threads')>();
  class Worker extends real.Worker {
    constructor(...args: ConstructorParameters<typeof real.Worker>) {
      super(...args);
      hooks.workers.push(this);
      hooks.onStart?.(this);
    }

    override postMessage(...args: Parameters<NodeWorker['postMessage']>): void {
      if (hooks.onPost?.(this, args[0]) === true) return;
      super.postMessage(...args);
    }
  }
  return { ...real, Worker, default: { ...real, Worker } };
});

afterEach(() => {
  hooks.onStart = undefined;
  hooks.onPost = undefined;
});

const OPTIONS = { isolation: 'worker', metering: false, deadlineMs: 5000, onLog: () => undefined } as const;

const goodLimits = { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1, fuel: 1, tableElements: 1, replyItems: 1 };

/** Messages a worker could post before `ready`, each outside the protocol. */
const BEFORE_READY: [string, unknown][] = [
  ['not an object', 'ready'],
  ['null', null],
  ['an unknown type', { type: 'hello' }],
  ['ready without a SharedArrayBuffer', { type: 'ready' }],
  ['ready with an ArrayBuffer', { type: 'ready', sab: new ArrayBuffer(1 << 16), limits: goodLimits }],
  ['ready without limits', { type: 'ready', sab: new SharedArrayBuffer(1 << 16) }],
  ['ready with a limit that is not a number', { type: 'ready', sab: new SharedArrayBuffer(1 << 16), limits: { ...goodLimits, replyBytes: '1024' } }],
  ['ready with a negative limit', { type: 'ready', sab: new SharedArrayBuffer(1 << 16), limits: { ...goodLimits, requestBytes: -1 } }],
  ['ready with a buffer smaller than its limits', { type: 'ready', sab: new SharedArrayBuffer(HEADER_BYTES), limits: goodLimits }],
  ['log whose entries are not a list', { type: 'log', entries: 5 }],
  ['failed without an error', { type: 'failed', error: 'boom' }],
  ['a host call without an attestation provider', { type: 'hostcall', seq: 1, kind: 'seal', policy: 'x' }],
];

/** Messages a worker could post while a call runs, each outside the protocol. */
const DURING_CALL: [string, unknown][] = [
  ['null', null],
  ['an unknown type', { type: 'hello' }],
  ['a second ready', { type: 'ready' }],
  ['log whose entries are not a list', { type: 'log', entries: 5 }],
  ['log whose entry is not a pair', { type: 'log', entries: [7] }],
  ['log with an unknown level', { type: 'log', entries: [['loud', 'x']] }],
  ['log with a message that is not a string', { type: 'log', entries: [['info', { toString: 1 }]] }],
  ['failed after ready', { type: 'failed', error: { code: 'trap', message: 'x' } }],
  ['a host call without an attestation provider', { type: 'hostcall', seq: 1, kind: 'evidence' }],
];

describe('enclave worker: a malformed message ends that worker with a code, never throws on the host thread', () => {
  for (const [what, message] of BEFORE_READY) {
    it(`while starting: ${what} -> the load fails with internal`, async () => {
      const bytes = await watModule(SPIN_WAT, SPIN_CONTRACT);
      hooks.onStart = (worker) => process.nextTick(() => worker.emit('message', message));
      const failed = await loadEnclave(bytes, OPTIONS).then(
        async (enclave) => {
          await enclave.close();
          return 'loaded';
        },
        (err: unknown) => err,
      );
      expect(failed).toMatchObject({ code: 'internal' });
      expect((failed as Error).message).toMatch(/malformed/);
      // The worker that broke the protocol was stopped.
      const worker = hooks.workers.at(-1)!;
      await new Promise((resolve) => (worker.threadId === -1 ? resolve(undefined) : worker.once('exit', resolve)));
    });
  }

  for (const [what, message] of DURING_CALL) {
    it(`during a call: ${what} -> the call fails with internal, the next call gets a fresh worker`, async () => {
      const enclave = await loadEnclave(await watModule(SPIN_WAT, SPIN_CONTRACT), OPTIONS);
      try {
        const worker = hooks.workers.at(-1)!;
        const call = enclave.call('spin');
        await new Promise((resolve) => setTimeout(resolve, 50));
        worker.emit('message', message);
        const started = Date.now();
        expect(await codeOf(call)).toBe('internal');
        expect(Date.now() - started).toBeLessThan(4000); // not the 5 s deadline
        expect(await enclave.call('ok')).toBe('fine');
        expect(hooks.workers.at(-1)).not.toBe(worker);
      } finally {
        await enclave.close();
      }
    });
  }

  it('between calls: a malformed message stops the idle worker; the next call gets a fresh one', async () => {
    const enclave = await loadEnclave(await watModule(SPIN_WAT, SPIN_CONTRACT), OPTIONS);
    try {
      const worker = hooks.workers.at(-1)!;
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.emit('message', { type: 'log', entries: null });
      await exited;
      expect(await enclave.call('ok')).toBe('fine');
      expect(hooks.workers.at(-1)).not.toBe(worker);
    } finally {
      await enclave.close();
    }
  });
});

describe('instrumentation worker: a malformed reply fails the job with internal and replaces the worker', () => {
  const manifest = { version: INSTRUMENTER_VERSION, hasStart: false, mutableGlobals: 0, snapshotSafe: true, chargePoints: 1 };
  const REPLIES: [string, (id: unknown) => unknown][] = [
    ['not an object', () => 'done'],
    ['null', () => null],
    ['no manifest', (id) => ({ id, bytes: new Uint8Array(8) })],
    ['a manifest that is not an object', (id) => ({ id, bytes: new Uint8Array(8), manifest: 1 })],
    ['a manifest without its fields', (id) => ({ id, bytes: new Uint8Array(8), manifest: { version: INSTRUMENTER_VERSION } })],
    ['a manifest field of the wrong type', (id) => ({ id, bytes: new Uint8Array(8), manifest: { ...manifest, hasStart: 'no' } })],
    ['bytes that are not bytes', (id) => ({ id, bytes: 'wasm', manifest })],
    ['no bytes', (id) => ({ id, manifest })],
    ['an error that is not an object', (id) => ({ id, error: 'boom' })],
  ];
  for (const [what, reply] of REPLIES) {
    it(`a reply with ${what}`, async () => {
      hooks.onPost = (worker, message) => {
        hooks.onPost = undefined;
        const id = (message as { id: unknown }).id;
        process.nextTick(() => worker.emit('message', reply(id)));
        return true;
      };
      const err = await instrumentOffThread(bigModule({ functions: 1 })).then(
        () => 'instrumented',
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'internal' });
      expect((err as Error).message).toMatch(/malformed/);
      // The next job runs in a fresh worker and succeeds.
      const again = await instrumentOffThread(bigModule({ functions: 1 }));
      expect(again.manifest.chargePoints).toBeGreaterThan(0);
    });
  }

  it('a malformed message from a worker already stopped (late) leaves the job of its successor alone', async () => {
    // The first job times out: its worker is stopped, and the next job gets a fresh one.
    expect(await codeOf(instrumentOffThread(bigModule({ functions: 50_000 }), 1))).toBe('timeout');
    const stopped = hooks.workers.at(-1)!;
    const next = instrumentOffThread(bigModule({ functions: 1 }));
    expect(hooks.workers.at(-1)).not.toBe(stopped);
    stopped.emit('message', null);
    expect((await next).manifest.chargePoints).toBeGreaterThan(0);
  });
});
