/** `now() -> i64` (docs/ABI.md §3): wall-clock time, milliseconds since the epoch. */
import type { CapabilityModule } from './_capability.js';

/** The `clock` capability. */
export const clock: CapabilityModule<'clock'> = Object.freeze<CapabilityModule<'clock'>>({
  name: 'clock',
  importName: 'now',
  type: { params: [], results: ['i64'] },
  fuel: 1_000,
  crossing: 'in-worker',
  implement(ctx) {
    return (): bigint => {
      ctx.pay(clock.fuel);
      return BigInt(Date.now());
    };
  },
});
