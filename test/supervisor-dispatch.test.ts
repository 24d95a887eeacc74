// A pool member's Dispatch is reused call after call: one call's fuel must not reach the next call's
// caller or metrics.
import { beforeAll, describe, expect, it } from 'vitest';
import { supervisedHosts, supervisedModule } from './helpers/supervised.js';
import { codeOf } from './helpers/errors.js';

let v1: Uint8Array;
beforeAll(async () => {
  v1 = await supervisedModule();
});

const ACCESS = { version: 1, callers: { alice: { allow: { echo: '*' } }, mallory: { allow: { echo: '*' } } } };
const { newHost } = supervisedHosts({ access: ACCESS, integrityIntervalMs: 0 });

describe('a member reused call after call', () => {
  it("a call refused for its stats learns nothing of the previous caller's fuel, and counts none", async () => {
    const host = newHost();
    await host.start('echo', { module: v1, instances: 1, isolation: 'in-process' });
    const alice = { fuel: 0 };
    await host.call('alice', 'echo', 'work', { n: 100_000 }, { stats: alice });
    expect(alice.fuel).toBeGreaterThan(1000);
    // mallory's setter refuses the runtime's zero, and keeps any other value it is given.
    const seen: number[] = [];
    const stats = Object.defineProperty({}, 'fuel', {
      set(value: number) {
        if (value === 0) throw new Error('no');
        seen.push(value);
      },
      get: () => 0,
    }) as { fuel: number };
    expect(await codeOf(host.call('mallory', 'echo', 'echo', 1, { stats }))).toBe('invalid_options');
    expect(seen).toEqual([]);
    const ops = host.stats().enclaves.echo!.ops;
    // Only alice's call used fuel: the refused echo counted none.
    expect(ops.echo?.fuel.max ?? 0).toBe(0);
  });
});
