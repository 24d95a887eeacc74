/**
 * `random(ptr, len) -> i32` (docs/ABI.md §3): fills `len` bytes at `ptr` with cryptographically
 * secure random bytes. 0 on success; -1 when the span is out of memory or longer than 64 KiB.
 */
import { getRandomValues } from 'node:crypto';
import { importFuel } from '../fuel.js';
import type { CapabilityImport, CapabilityModule } from './_capability.js';

/** Most bytes one call fills (the Web Crypto bound of `getRandomValues`). */
const MAX_RANDOM = 65_536;

/** The `random` import. */
const randomImport: CapabilityImport = Object.freeze<CapabilityImport>({
  name: 'random',
  type: { params: ['i32', 'i32'], results: ['i32'] },
  fuel: 4_000,
  implement(ctx) {
    return (ptr: number, len: number): number => {
      ctx.pay(importFuel(randomImport.fuel, Math.min(len >>> 0, MAX_RANDOM)));
      if (len >>> 0 > MAX_RANDOM || !ctx.inBounds(ptr, len)) return -1;
      getRandomValues(ctx.memory().subarray(ptr, ptr + len));
      return 0;
    };
  },
});

/** The `random` capability. */
export const random: CapabilityModule<'random'> = Object.freeze<CapabilityModule<'random'>>({
  name: 'random',
  imports: Object.freeze([randomImport]),
  crossing: 'in-worker',
});
