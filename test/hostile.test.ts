/**
 * The hostile corpus (test/hostile/corpus.ts), in-process: each entry ends in its own stable code
 * within its limit, the host keeps serving another enclave meanwhile, and the next call succeeds.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { EnclaveError, loadEnclave, type Enclave } from '../host/index.js';
import { HOSTILE_CORPUS } from './hostile/corpus.js';
import { fixture } from './helpers/wat.js';

async function outcome(promise: Promise<unknown>): Promise<{ code: string } | { value: unknown }> {
  try {
    return { value: await promise };
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return { code: (err as EnclaveError).code };
  }
}

describe('hostile corpus, in-process', () => {
  let bystander: Enclave;
  beforeAll(async () => {
    bystander = await loadEnclave(await fixture('hostile'));
  });

  for (const entry of HOSTILE_CORPUS) {
    const want = 'code' in entry.expect ? entry.expect.code : `returns ${JSON.stringify(entry.expect.value)}`;
    it(`${entry.name} (${entry.what}): ${want}`, async () => {
      const bytes = await entry.module();
      const started = performance.now();
      const loaded = await outcome(loadEnclave(bytes, entry.options ?? {}));
      if (entry.expect.phase === 'load') {
        expect(loaded).toEqual({ code: entry.expect.code });
        expect(await bystander.call('ok')).toBe('fine');
        return;
      }
      if (!('value' in loaded)) throw new Error(`the load failed with ${loaded.code}`);
      const enclave = loaded.value as Enclave;
      expect(await enclave.call('ok')).toBe('fine');
      // The bystander is served between the hostile enclave's calls.
      const [result, other] = await Promise.all([outcome(enclave.call(entry.op ?? 'attack', entry.args)), bystander.call('ok')]);
      expect(other).toBe('fine');
      expect(result).toEqual('code' in entry.expect ? { code: entry.expect.code } : { value: entry.expect.value });
      expect(await enclave.call('ok')).toBe('fine');
      expect(performance.now() - started).toBeLessThan(20_000);
    });
  }

  it('the corpus covers every case of the brief and names are unique', () => {
    const names = HOSTILE_CORPUS.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const required of [
      'infinite-loop', 'nested-loop-import', 'recursion', 'grow-bomb', 'start-loop', 'reply-4gib', 'reply-ptr-oob',
      'alloc-oob', 'wasi-import', 'many-functions', 'deep-reply',
    ]) {
      expect(names).toContain(required);
    }
  });
});
