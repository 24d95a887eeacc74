/**
 * The hostile corpus (test/hostile/corpus.ts) in worker mode. The worker runs the same Enclave,
 * metered, so every entry ends in the same code as in-process; with metering off, the entries that
 * fuel stops end at their deadline instead (`timeout`). Meanwhile the host thread stays free: an
 * in-process bystander answers while the hostile call runs in its worker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnclaveError, loadEnclave, type Enclave, type LoadOptions, type WorkerEnclave } from '../host/index.js';
import { HOSTILE_CORPUS, type HostileCase } from './hostile/corpus.js';
import { fixture } from './helpers/wat.js';

async function outcome(promise: Promise<unknown>): Promise<{ code: string } | { value: unknown }> {
  try {
    return { value: await promise };
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return { code: (err as EnclaveError).code };
  }
}

function inWorker(entry: HostileCase, extra: Record<string, unknown>): LoadOptions {
  return { ...(entry.options ?? {}), isolation: 'worker', ...extra } as LoadOptions;
}

/** Loads, checks the entry ends as expected, and that the next call succeeds on the same handle. */
async function runEntry(entry: HostileCase, options: LoadOptions, want: { code: string } | { value: unknown }, bystander: Enclave) {
  const loaded = await outcome(loadEnclave(await entry.module(), options));
  if (entry.expect.phase === 'load') {
    expect(loaded).toEqual(want);
    expect(await bystander.call('ok')).toBe('fine');
    return;
  }
  if (!('value' in loaded)) throw new Error(`the load failed with ${loaded.code}`);
  const enclave = loaded.value as WorkerEnclave;
  try {
    expect(await enclave.call('ok')).toBe('fine');
    const hostile = outcome(enclave.call(entry.op ?? 'attack', entry.args));
    // The host thread is free while the worker runs the hostile call.
    expect(await bystander.call('ok')).toBe('fine');
    expect(await hostile).toEqual(want);
    expect(await enclave.call('ok')).toBe('fine');
  } finally {
    await enclave.close();
  }
}

describe('hostile corpus, worker mode', () => {
  let bystander: Enclave;
  beforeAll(async () => {
    bystander = await loadEnclave(await fixture('hostile'));
  });
  afterAll(() => bystander?.close());

  for (const entry of HOSTILE_CORPUS) {
    const want = 'code' in entry.expect ? { code: entry.expect.code } : { value: entry.expect.value };
    it(`${entry.name} (${entry.what}): ${'code' in want ? want.code : 'returns its value'}, as in-process`, async () => {
      await runEntry(entry, inWorker(entry, { deadlineMs: 10_000 }), want, bystander);
    });
  }

  const fuelStopped = HOSTILE_CORPUS.filter((e) => 'code' in e.expect && e.expect.code === 'fuel_exhausted');
  for (const entry of fuelStopped) {
    it(`${entry.name}, unmetered: timeout at its deadline instead of fuel_exhausted`, async () => {
      const started = performance.now();
      const options =
        entry.expect.phase === 'load' ? { metering: false, startDeadlineMs: 300 } : { metering: false, deadlineMs: 300 };
      await runEntry(entry, inWorker(entry, options), { code: 'timeout' }, bystander);
      expect(performance.now() - started).toBeLessThan(10_000);
    });
  }

  it('the corpus has entries that fuel stops, so the unmetered runs above are not empty', () => {
    expect(fuelStopped.length).toBeGreaterThanOrEqual(2);
  });
});
