// A retry's backoff holds one listener on the enclave's shared AbortSignal: many at once is load, not a leak.
import { afterEach, describe, expect, it } from 'vitest';
import { EnclaveError } from '../runtime/index.js';
import { withRetry } from '../host/supervisor/retry.js';
import { codeOf } from './helpers/errors.js';

describe('retry backoff on a shared signal', () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  afterEach(() => {
    process.off('warning', onWarning);
  });
  it('many calls waiting out a backoff at once: no MaxListenersExceededWarning', async () => {
    process.on('warning', onWarning);
    const controller = new AbortController();
    const calls = Array.from({ length: 20 }, () =>
      withRetry(() => Promise.reject(new EnclaveError('trap')), { maxAttempts: 2, initialDelayMs: 60_000, maxDelayMs: 60_000, signal: controller.signal }),
    );
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    for (const call of calls) expect(await codeOf(call)).toBe('unavailable');
    await new Promise((r) => setImmediate(r));
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });
});
