// The supervisor's test enclave (test/helpers/supervised.ts) does what the supervisor tests rely
// on: every op once, in process and in a worker, and each variant is its own measurement.
import { beforeAll, describe, expect, it } from 'vitest';
import { compileEnclave, createWorkerEnclave, type EnclaveModule } from '../runtime/index.js';
import { supervisedModule } from './helpers/supervised.js';

let v1: EnclaveModule;
let v2: EnclaveModule;
let failing: EnclaveModule;

beforeAll(async () => {
  // Sequential: a cold cache compiles each once (asc is heavy on a shared 2-core machine).
  v1 = await compileEnclave(await supervisedModule(), { cacheDir: false });
  v2 = await compileEnclave(await supervisedModule({ version: '2.0.0', svn: 2 }), { cacheDir: false });
  failing = await compileEnclave(await supervisedModule({ version: '2.0.0', svn: 2, failing: true }), { cacheDir: false });
});

describe('supervised fixture', () => {
  it('is cached: the same options give the same bytes', async () => {
    expect(await supervisedModule()).toEqual(await supervisedModule({ version: '1.0.0', svn: 1, failing: false }));
  });

  it('answers every op in process', async () => {
    const e = v1.create({ state: 'per-session' });
    try {
      const s = { session: 's1' };
      expect(await e.call('health', null, s)).toBe(true);
      expect(await e.call('echo', { hello: 'world', n: [1, 2] }, s)).toEqual({ hello: 'world', n: [1, 2] });
      const w = await e.call('work', { n: 300_000 }, s); // the largest fits the default fuel
      expect(typeof w).toBe('number');
      expect(await e.call('work', { n: 300_000 }, s)).toBe(w); // deterministic
      expect(await e.call('work', { n: 1000 }, s)).not.toBe(w);
      await expect(e.call('work', { n: 300_001 }, s)).rejects.toMatchObject({ code: 'invalid_args' });
      expect(await e.call('count', null, s)).toBe(1);
      expect(await e.call('count', null, s)).toBe(2);
      await expect(e.call('use', null, s)).rejects.toMatchObject({ code: 'state' }); // requires open
      expect(await e.call('open', null, s)).toBe(true);
      expect(await e.call('use', null, s)).toBe(true);
      await expect(e.call('fail', null, s)).rejects.toMatchObject({ code: 'internal' });
      await expect(e.call('crash', null, s)).rejects.toMatchObject({ code: 'trap' });
      expect(await e.call('count', null, s)).toBe(1); // the trap discarded the instance and its state
      await expect(e.call('spin', null, s)).rejects.toMatchObject({ code: 'fuel_exhausted' });
    } finally {
      await e.close();
    }
  });

  it('spins until the worker deadline, and the worker answers again after it', async () => {
    // Unmetered, nothing but the deadline ends it.
    const w = await createWorkerEnclave(v1, { deadlineMs: 300, metering: false });
    try {
      expect(await w.call('echo', 'x')).toBe('x');
      await expect(w.call('spin', null)).rejects.toMatchObject({ code: 'timeout' });
      expect(await w.call('health', null)).toBe(true);
    } finally {
      await w.close();
    }
  });

  it('the failing variant fails echo only', async () => {
    const e = failing.create();
    try {
      await expect(e.call('echo', 'x')).rejects.toMatchObject({ code: 'internal' });
      expect(await e.call('health', null)).toBe(true);
      expect(await e.call('work', { n: 10 })).toBeTypeOf('number');
    } finally {
      await e.close();
    }
  });

  it('each variant is its own measurement and svn', () => {
    expect(new Set([v1.measurement, v2.measurement, failing.measurement]).size).toBe(3);
    expect(v1.contract.svn).toBe(1);
    expect(v2.contract.svn).toBe(2);
    expect(v2.contract.version).toBe('2.0.0');
    expect(v1.contract.ops.health?.idempotent).toBe(true);
    expect(v1.contract.ops.use?.requires).toEqual(['open']);
  });
});
