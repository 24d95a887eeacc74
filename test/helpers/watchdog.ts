/**
 * A backstop for every test file (a vitest setup file): if the test thread's event loop stops
 * turning for {@link STALL_MS}, the test process is killed with a message naming the test, so the
 * run fails instead of hanging. In-process, a loop the runtime fails to stop (fuel metering broken)
 * blocks the thread it runs on, and vitest's own timeout, which needs that thread, can never fire.
 * Tests that run such loops on purpose should also bound them themselves (test/helpers/bounded.ts),
 * which fails just that test; this catches the ones that do not, at the cost of their whole file.
 *
 * A watchdog thread waits on a heartbeat the test thread bumps every second; it writes straight to
 * file descriptor 2 (the test thread, which would relay a worker's stderr, is stuck) and kills the process.
 */
import { Worker } from 'node:worker_threads';
import { beforeEach } from 'vitest';

/** No heartbeat for this long is a hang: above vitest's testTimeout (30 s), below any sane run. */
const STALL_MS = Number(process.env.ENCLAVE_TEST_STALL_MS ?? 90_000);
const NAME_BYTES = 1024;

interface Watchdog {
  readonly beat: Int32Array;
  readonly name: Uint8Array;
}

const KEY = Symbol.for('enclave.test.watchdog');
const g = globalThis as typeof globalThis & { [KEY]?: Watchdog };

function start(): Watchdog {
  const sab = new SharedArrayBuffer(8 + NAME_BYTES);
  const dog: Watchdog = { beat: new Int32Array(sab, 0, 2), name: new Uint8Array(sab, 8, NAME_BYTES) };
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const { writeSync } = require('node:fs');
     const beat = new Int32Array(workerData.sab, 0, 2);
     const name = new Uint8Array(workerData.sab, 8, ${NAME_BYTES});
     for (;;) {
       const seen = Atomics.load(beat, 0);
       if (Atomics.wait(beat, 0, seen, workerData.stallMs) === 'timed-out' && Atomics.load(beat, 0) === seen) {
         const test = new TextDecoder().decode(name.slice(0, Atomics.load(beat, 1)));
         writeSync(2, '\\n[watchdog] the test thread has not run for ' + workerData.stallMs + ' ms (a loop nothing stopped?) in: ' + test + '; killing the test process\\n');
         process.kill(process.pid, 'SIGKILL');
       }
     }`,
    { eval: true, workerData: { sab, stallMs: STALL_MS } },
  );
  worker.unref();
  const timer = setInterval(() => {
    Atomics.add(dog.beat, 0, 1);
    Atomics.notify(dog.beat, 0);
  }, 1000);
  timer.unref();
  return dog;
}

const dog = (g[KEY] ??= start());

beforeEach(({ task }) => {
  const label = new TextEncoder().encode(`${task.file?.name ?? '?'} > ${task.name}`).subarray(0, NAME_BYTES);
  dog.name.set(label);
  Atomics.store(dog.beat, 1, label.length);
  // A new test is progress too.
  Atomics.add(dog.beat, 0, 1);
  Atomics.notify(dog.beat, 0);
});
