/**
 * Instrumentation off the host thread with a deadline (issue 9, finding 4): runtime/_instrument-worker.ts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { encodeCustomSection } from '../core/index.js';
import { EnclaveError, loadEnclave } from '../host/index.js';
import { INSTRUMENT_QUEUE, instrumentOffThread } from '../runtime/_instrument-worker.js';
import { instrumentFuel } from '../runtime/fuel.js';
import { bigModule } from './hostile/_big-modules.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

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
    // In the host thread, binaryen's rewrite is one synchronous stretch of seconds: no timer fires (0 ticks measured).
    expect(ticks).toBeGreaterThan(50);
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

  for (const isolation of ['in-process', 'worker'] as const) {
    it(`${isolation}: loading a module that takes seconds to instrument leaves the host event loop free`, async () => {
      // A fresh module (its own custom section) and no disk cache: the load must instrument it.
      const previous = process.env.ENCLAVE_CACHE_DIR;
      process.env.ENCLAVE_CACHE_DIR = 'off';
      const bytes = bigModule({ functions: 20_000 });
      const unique = encodeCustomSection('unique', randomBytes(16));
      const contract = encodeCustomSection('enclave.contract', new TextEncoder().encode(JSON.stringify(MINIMAL_CONTRACT)));
      const module = Buffer.concat([bytes, unique, contract]);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      try {
        const enclave = await loadEnclave(module, isolation === 'worker' ? { isolation } : {});
        clearInterval(timer);
        expect(await enclave.call('ping')).toBe(true);
        await enclave.close();
      } finally {
        clearInterval(timer);
        if (previous === undefined) delete process.env.ENCLAVE_CACHE_DIR;
        else process.env.ENCLAVE_CACHE_DIR = previous;
      }
      expect(ticks).toBeGreaterThan(50);
    });
  }

  it(`more than ${INSTRUMENT_QUEUE} waiting modules: the rest are refused at once with overloaded, the queued ones finish`, async () => {
    const jobs = Array.from({ length: INSTRUMENT_QUEUE + 10 }, () => instrumentOffThread(bigModule({ functions: 1 })).then(() => 'ok', (err: EnclaveError) => err.code));
    const results = await Promise.all(jobs);
    expect(results.filter((r) => r === 'ok')).toHaveLength(INSTRUMENT_QUEUE + 1);
    expect(results.filter((r) => r === 'overloaded')).toHaveLength(9);
  });

  for (const flags of [['--input-type=module'], ['--expose-gc', '--input-type=module']]) {
    it(`a script run as \`node ${flags.join(' ')} -e\` loads a module that must be instrumented, and exits`, async () => {
      const entry = fileURLToPath(new URL('../dist/host/index.js', import.meta.url));
      const script = `
        import { loadEnclave } from ${JSON.stringify(entry)};
        const e = await loadEnclave(${JSON.stringify(fileURLToPath(new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url)))});
        console.log(await e.call('echo', 'hi'));`;
      const { stdout } = await promisify(execFile)(process.execPath, [...flags, '-e', script], {
        timeout: 60_000,
        env: { ...process.env, ENCLAVE_CACHE_DIR: 'off' },
      });
      expect(stdout.trim()).toBe('hi');
    });
  }

  it('jobs queued together all finish, in order', async () => {
    const results = await Promise.all([1, 2, 3, 4].map((n) => instrumentOffThread(bigModule({ functions: n }))));
    expect(results.map((r) => r.manifest.chargePoints)).toEqual([4, 5, 6, 7]);
  });
});
