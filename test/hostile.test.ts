/**
 * The hostile corpus (test/hostile/corpus.ts), in-process: each entry ends in its own stable code
 * within its limit, the host keeps serving another enclave meanwhile, and the next call succeeds.
 *
 * Each entry runs on a thread of its own (test/helpers/bounded.ts), bounded: in-process, a loop the
 * runtime fails to stop blocks the thread it runs on, so on the test's thread it would hang the run
 * (vitest's timeout cannot fire); on its own thread it is terminated and the test fails.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { HOSTILE_CORPUS } from './hostile/corpus.js';
import { fixture } from './helpers/wat.js';
import { runBounded, type HostModule } from './helpers/bounded.js';

/** The bound of one entry: under vitest's 30 s, above the 20 s the entry itself is allowed. */
const BOUND_MS = 25_000;

type Outcome = { code: string } | { value: unknown } | { thrown: string };

interface EntryInput {
  bytes: Uint8Array;
  bystander: Uint8Array;
  options: object;
  loadPhase: boolean;
  op: string;
  args: unknown;
}

interface EntryResult {
  /** The load's outcome; `{ value: 'loaded' }` when it succeeded. */
  loaded: Outcome;
  /** The bystander's answer after a refused load. */
  bystanderAfterLoad?: unknown;
  okBefore?: Outcome;
  result?: Outcome;
  /** The bystander's answer to a call made while the hostile call ran. */
  other?: unknown;
  okAfter?: Outcome;
  elapsedMs: number;
}

/**
 * One entry, run in the bounded thread against the compiled runtime. Self-contained (its source is
 * what crosses): it uses only its parameters. An error that is not an EnclaveError is reported as
 * `thrown`, which no expectation matches.
 */
async function hostileEntry(host: HostModule, input: EntryInput): Promise<EntryResult> {
  const outcome = async (promise: Promise<unknown>): Promise<Outcome> => {
    try {
      const value = await promise;
      return { value: value instanceof host.Enclave ? 'loaded' : value };
    } catch (err) {
      return err instanceof host.EnclaveError ? { code: err.code } : { thrown: String(err) };
    }
  };
  const bystander = await host.loadEnclave(input.bystander);
  const started = performance.now();
  let enclave: InstanceType<HostModule['Enclave']> | undefined;
  const loaded = await outcome(
    host.loadEnclave(input.bytes, input.options).then((e) => {
      enclave = e;
      return e;
    }),
  );
  if (input.loadPhase || enclave === undefined) {
    return { loaded, bystanderAfterLoad: await bystander.call('ok'), elapsedMs: performance.now() - started };
  }
  const okBefore = await outcome(enclave.call('ok'));
  // The bystander is served between the hostile enclave's calls.
  const [result, other] = await Promise.all([outcome(enclave.call(input.op, input.args)), bystander.call('ok')]);
  const okAfter = await outcome(enclave.call('ok'));
  return { loaded, okBefore, result, other, okAfter, elapsedMs: performance.now() - started };
}

describe('hostile corpus, in-process', () => {
  let bystander: Uint8Array;
  beforeAll(async () => {
    bystander = await fixture('hostile');
  });

  for (const entry of HOSTILE_CORPUS) {
    const want = 'code' in entry.expect ? entry.expect.code : `returns ${JSON.stringify(entry.expect.value)}`;
    it(`${entry.name} (${entry.what}): ${want}`, async () => {
      const input: EntryInput = {
        bytes: await entry.module(),
        bystander,
        options: entry.options ?? {},
        loadPhase: entry.expect.phase === 'load',
        op: entry.op ?? 'attack',
        args: entry.args,
      };
      const run = await runBounded(`hostile entry ${entry.name}`, hostileEntry, input, BOUND_MS);
      if (entry.expect.phase === 'load') {
        expect(run.loaded).toEqual({ code: entry.expect.code });
        expect(run.bystanderAfterLoad).toBe('fine');
        return;
      }
      expect(run.loaded, 'the load failed').toEqual({ value: 'loaded' });
      expect(run.okBefore).toEqual({ value: 'fine' });
      expect(run.other).toBe('fine');
      expect(run.result).toEqual('code' in entry.expect ? { code: entry.expect.code } : { value: entry.expect.value });
      expect(run.okAfter).toEqual({ value: 'fine' });
      expect(run.elapsedMs).toBeLessThan(20_000);
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

  it('a scenario that never ends fails at its bound instead of hanging the run', async () => {
    // The bound itself, on a loop nothing meters (the test's own code, not an enclave).
    const started = performance.now();
    const run = runBounded('endless scenario', async () => {
      for (;;);
    }, undefined, 500);
    await expect(run).rejects.toThrow(/endless scenario: did not finish within 500 ms and was terminated/);
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});
