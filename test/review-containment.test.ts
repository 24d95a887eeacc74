/**
 * Review of the containment fixes (issue 9) from a hostile caller's side: what the review found
 * still open, each test named after what it guards.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { compileShape } from '../runtime/contract.js';
import { EnclaveError, loadEnclave, type EnclaveHandle } from '../host/index.js';
import { listSections, MODULE_BOUNDS } from '../core/index.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

class Sentinel extends Error {
  override name = 'Sentinel';
}

const open: EnclaveHandle[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

async function enclaveIn(isolation: 'in-process' | 'worker'): Promise<EnclaveHandle> {
  const e = await loadEnclave(await watModule(minimalWat(), MINIMAL_CONTRACT), isolation === 'worker' ? { isolation } : {});
  open.push(e);
  return e;
}

/** The call's outcome: 'ok', an EnclaveError's code, or what else came back; a synchronous throw is its own outcome. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  let p: Promise<unknown>;
  try {
    p = call();
  } catch (err) {
    return `thrown synchronously: ${(err as Error).name}`;
  }
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof EnclaveError ? err.code : `not an EnclaveError: ${(err as Error).name}`;
  }
}

for (const isolation of ['in-process', 'worker'] as const) {
describe(`${isolation}: a caller's hostile call options come back as invalid_options`, () => {
  it('a throwing options.session getter is invalid_options, never thrown from call() nor unwrapped', async () => {
    const e = await enclaveIn(isolation);
    const options = Object.defineProperty({}, 'session', {
      enumerable: true,
      get() {
        throw new Sentinel('options.session');
      },
    });
    expect(await outcome(() => e.call('ping', undefined, options))).toBe('invalid_options');
    // The enclave is unaffected.
    expect(await e.call('ping')).toBe(true);
  });

  it('an options proxy whose traps throw is invalid_options', async () => {
    const e = await enclaveIn(isolation);
    const options = new Proxy(
      {},
      {
        get() {
          throw new Sentinel('options proxy');
        },
      },
    );
    expect(await outcome(() => e.call('ping', undefined, options))).toBe('invalid_options');
  });

  it('a frozen stats object is invalid_options, not a raw TypeError', async () => {
    const e = await enclaveIn(isolation);
    expect(await outcome(() => e.call('ping', undefined, { stats: Object.freeze({ fuel: 1 }) }))).toBe('invalid_options');
  });

  it("a stats setter that throws once the call has run does not take the call's reply away", async () => {
    const e = await enclaveIn(isolation);
    let writes = 0;
    const stats = {
      get fuel(): number {
        return 0;
      },
      set fuel(_v: number) {
        if (writes++ > 0) throw new Sentinel('stats.fuel');
      },
    };
    expect(await e.call('ping', undefined, { stats })).toBe(true);
    expect(writes).toBe(2);
  });
});
}

/** `bytes` followed by `n` empty custom sections (id 0, size 1, an empty name): three bytes each. */
function withEmptyCustomSections(bytes: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(bytes.length + 3 * n);
  out.set(bytes);
  for (let i = 0; i < n; i++) out.set([0, 1, 0], bytes.length + 3 * i);
  return out;
}

describe('module structure: the number of sections is bounded before the host lists them', () => {
  // 700 000 empty custom sections fit in the 2 MiB a module may have: each pass over them (listing,
  // measuring, cloning the module's info to a worker) held the host thread for hundreds of ms.
  it('a module of 700 000 empty custom sections is invalid_module, in both modes', async () => {
    const base = await watModule(minimalWat(), MINIMAL_CONTRACT);
    const hostile = withEmptyCustomSections(base, Math.floor((MODULE_BOUNDS.moduleBytes - base.length) / 3));
    for (const options of [{}, { isolation: 'worker' as const }]) {
      const err = await loadEnclave(hostile, options).then(
        (e) => (open.push(e), undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EnclaveError);
      expect((err as EnclaveError).code).toBe('invalid_module');
      expect((err as EnclaveError).message).toMatch(/sections/);
    }
  });

  it('a module with exactly MODULE_BOUNDS.sections sections loads; one more is invalid_module', async () => {
    const base = await watModule(minimalWat(), MINIMAL_CONTRACT);
    const fill = MODULE_BOUNDS.sections - listSections(base).length;
    const e = await loadEnclave(withEmptyCustomSections(base, fill));
    open.push(e);
    expect(await e.call('ping')).toBe(true);
    await expect(loadEnclave(withEmptyCustomSections(base, fill + 1))).rejects.toMatchObject({ code: 'invalid_module' });
  });
});

describe('fuel cache: the in-memory entries are bounded in bytes, not only in number', () => {
  // Instrumenting multiplies a module's size up to about 8: 64 entries of the largest admitted
  // modules kept about 1 GiB of instrumented code in the host after their enclaves were closed.
  it('instrumented bytes held in memory stay within the budget; the oldest entries go first', async () => {
    const { fuelMemoryCacheBytes, clearFuelMemoryCache, instrumentCached } = await import('../runtime/_fuel-cache.js');
    const { bigModule } = await import('./hostile/_big-modules.js');
    const { createHash } = await import('node:crypto');
    const saved = fuelMemoryCacheBytes().budget;
    clearFuelMemoryCache();
    try {
      fuelMemoryCacheBytes(512 * 1024);
      let total = 0;
      for (let i = 0; i < 4; i++) {
        const bytes = bigModule({ functions: 10_000 + i });
        const got = await instrumentCached(bytes, createHash('sha256').update(bytes).digest('hex'), false);
        total += got.bytes.length;
        await Promise.resolve();
        expect(fuelMemoryCacheBytes().held).toBeLessThanOrEqual(512 * 1024);
      }
      expect(total).toBeGreaterThan(512 * 1024); // the budget was really exceeded by what was instrumented
    } finally {
      fuelMemoryCacheBytes(saved);
      clearFuelMemoryCache();
    }
  }, 120_000);
});

describe('the args the shape check passed are the args the enclave gets', () => {
  const counter = readFileSync(new URL('../enclave-modules/counter/build/counter.wasm', import.meta.url));
  for (const isolation of ['in-process', 'worker'] as const) {
    it(`${isolation}: a getter that answers the check with 1 and the encoder with "x" is invalid_args`, async () => {
      const e = await loadEnclave(counter, isolation === 'worker' ? { isolation } : {});
      open.push(e);
      let reads = 0;
      const args = Object.defineProperty({}, 'by', {
        enumerable: true,
        get() {
          return reads++ === 0 ? 1 : 'x';
        },
      });
      expect(await outcome(() => e.call('incr', args))).toBe('invalid_args');
      const proxied = new Proxy({ by: 1 }, {});
      expect(await outcome(() => e.call('incr', proxied))).toBe('invalid_args');
      expect(await outcome(() => e.call('incr', { by: 2 }))).toBe('ok');
    });
  }

  it('an array item behind a getter is refused when the shape checks items', () => {
    const check = compileShape({ type: 'array', items: { type: 'int', max: 10 } });
    const items = [1, 2];
    Object.defineProperty(items, 1, { get: () => 3, enumerable: true });
    expect(check(items)).toMatch(/plain data/);
    expect(check([1, 2])).toBeUndefined();
  });
});
