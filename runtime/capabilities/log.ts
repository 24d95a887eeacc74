/**
 * `log(level, ptr, len)` (docs/ABI.md §3): a line for the host's `onLog`, delivered after the
 * call. Bounded per call, so a looping enclave cannot fill the host heap with log lines; nothing
 * is read from enclave memory at all when nobody listens. In a worker, lines travel back to the
 * host thread by message after the call (runtime/_worker-main.ts).
 */
import { importFuel } from '../fuel.js';
import { LOG_LEVELS } from '../abi.js';
import type { CapabilityImport, CapabilityModule } from './_capability.js';

/** The longest line kept; the rest is cut. */
const MAX_LOG_MESSAGE = 1024;

/** The `log` import. */
const logImport: CapabilityImport = Object.freeze<CapabilityImport>({
  name: 'log',
  type: { params: ['i32', 'i32', 'i32'], results: [] },
  fuel: 500,
  implement(ctx) {
    const listening = ctx.listening;
    return (level: number, ptr: number, len: number): void => {
      ctx.pay(importFuel(logImport.fuel, Math.min(len >>> 0, MAX_LOG_MESSAGE)));
      if (!listening || !ctx.admitLog()) return;
      // `level` 0..3 names a level; anything else is `info`.
      ctx.log(LOG_LEVELS[level] ?? 'info', ctx.readText(ptr, len, MAX_LOG_MESSAGE));
    };
  },
});

/** The `log` capability. */
export const log: CapabilityModule<'log'> = Object.freeze<CapabilityModule<'log'>>({
  name: 'log',
  imports: Object.freeze([logImport]),
  crossing: 'in-worker',
});
