// The fuel the SDK's call path spends per value (runtime/fuel.ts charges a function or a loop body
// whole when it is entered, whatever path runs): echoing an array costs a small constant per item,
// the same for n and 2n items, and 1000 ints fit the default budget. Fuel is deterministic on a
// fresh instance (same code path, same GC state), so each measurement loads its own enclave.

import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { loadEnclave, type Enclave, type WorkerEnclave } from '../host/index.js';

const ECHO = readFileSync(new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url));

const open: (Enclave | WorkerEnclave)[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) await e.close();
});

const MODES = [
  ['in-process', {}],
  ['worker', { isolation: 'worker', deadlineMs: 10_000 }],
] as const;

const ints = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

for (const [mode, options] of MODES) {
  describe(`SDK fuel per value, ${mode}`, () => {
    /** Fuel of echoing `args` as the first call of a fresh echo enclave (default policy). */
    async function echoFuel(args: unknown): Promise<number> {
      const e = await loadEnclave(ECHO, options);
      open.push(e);
      const stats = { fuel: 0 };
      expect(await e.call('echo', args, { stats })).toEqual(args);
      await e.close();
      return stats.fuel;
    }

    it('echoes 1000 ints (0..999) within the default fuel budget', async () => {
      expect(await echoFuel(ints(1000, (i) => i))).toBeLessThan(10_000_000);
    });

    it('echoes 4000 fixints within the default fuel budget', async () => {
      expect(await echoFuel(ints(4000, (i) => i % 100))).toBeLessThan(10_000_000);
    });

    it('charges a small constant per fixint and per allocated int', async () => {
      const base = await echoFuel([]);
      // Before: about 6 000 fuel per fixint and 13 000 per int that needs a Value of its own.
      expect((await echoFuel(ints(1000, (i) => i % 100)) - base) / 1000).toBeLessThan(2_000);
      expect((await echoFuel(ints(1000, (i) => 1000 + i)) - base) / 1000).toBeLessThan(9_000);
    });

    it('uses at most 2.3x the fuel for twice the items', async () => {
      for (const f of [(i: number) => i % 100, (i: number) => 1000 + i, (i: number) => -1000 - i]) {
        const one = await echoFuel(ints(400, f));
        const two = await echoFuel(ints(800, f));
        expect(two).toBeLessThanOrEqual(one * 2.3);
      }
    });
  });
}
