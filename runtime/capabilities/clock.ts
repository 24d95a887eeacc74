/** `now() -> i64` (docs/ABI.md §3): wall-clock time, milliseconds since the epoch. */
import type { CapabilityImport, CapabilityModule } from './_capability.js';

/** The `now` import. */
const now: CapabilityImport = Object.freeze<CapabilityImport>({
  name: 'now',
  type: { params: [], results: ['i64'] },
  fuel: 1_000,
  implement(ctx) {
    return (): bigint => {
      ctx.pay(now.fuel);
      return BigInt(Date.now());
    };
  },
});

/** The `clock` capability. */
export const clock: CapabilityModule<'clock'> = Object.freeze<CapabilityModule<'clock'>>({
  name: 'clock',
  imports: Object.freeze([now]),
  crossing: 'in-worker',
});
