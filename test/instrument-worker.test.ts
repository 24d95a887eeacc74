/**
 * Instrumentation off the host thread with a deadline (issue 9, finding 4): runtime/_instrument-worker.ts.
 */
import { describe, expect, it } from 'vitest';
import { EnclaveError } from '../host/index.js';
import { instrumentOffThread } from '../runtime/_instrument-worker.js';
import { instrumentFuel } from '../runtime/fuel.js';
import { bigModule } from './hostile/_big-modules.js';
import { minimalWat, watModule } from './helpers/wat.js';

async function failure(promise: Promise<unknown>): Promise<EnclaveError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return err as EnclaveError;
  }
  throw new Error('it succeeded');
}

describe('instrumentation worker', () => {
  it('gives the same bytes and manifest as instrumenting in the thread', async () => {
    const bytes = bigModule({ functions: 10, globals: 3, mutable: true, table: 4 });
    const [off, here] = await Promise.all([instrumentOffThread(bytes), instrumentFuel(bytes)]);
    expect(Buffer.from(off.bytes).equals(Buffer.from(here.bytes))).toBe(true);
    expect(off.manifest).toEqual(here.manifest);
  });

  it('the host event loop keeps turning while a large module is instrumented', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      await instrumentOffThread(bigModule({ functions: 20_000 }));
    } finally {
      clearInterval(timer);
    }
    // In the host thread, binaryen's rewrite is one synchronous stretch: no timer could fire.
    expect(ticks).toBeGreaterThan(1);
  });

  it('a job past its deadline ends with timeout, the worker is replaced and the next job succeeds', async () => {
    const err = await failure(instrumentOffThread(bigModule({ functions: 50_000 }), 1));
    expect(err.code).toBe('timeout');
    const again = await instrumentOffThread(bigModule({ functions: 1 }));
    expect(again.manifest.chargePoints).toBeGreaterThan(0);
  });

  it('a refusal of the instrumenter crosses as its code (invalid_module)', async () => {
    const grow = await watModule(minimalWat({ body: '(table 1 funcref) (func (drop (table.grow (ref.null func) (i32.const 1))))' }));
    expect((await failure(instrumentOffThread(grow))).code).toBe('invalid_module');
  });

  it('jobs queued together all finish, in order', async () => {
    const results = await Promise.all([1, 2, 3, 4].map((n) => instrumentOffThread(bigModule({ functions: n }))));
    expect(results.map((r) => r.manifest.chargePoints)).toEqual([4, 5, 6, 7]);
  });
});
