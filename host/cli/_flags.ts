/** Numeric flags of the CLI, parsed strictly. */
import { UsageError, quoteInput } from '../../core/index.js';

/**
 * Parses a whole decimal number from `min` to `max`, or fails as bad usage naming the flag.
 * Stricter than `Number()`, which would take `''`, `1e3`, `0x10`, `-0`, `1.0` or ` 2 `.
 * @example
 * parseWhole('500', '--deadline-ms', 1, 2 ** 31 - 1); // 500
 * parseWhole('1e3', '--fuel', 1, 100);                // throws UsageError
 */
export function parseWhole(value: string, flag: string, min: number, max: number): number {
  const n = /^(?:0|[1-9][0-9]{0,15})$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, not ${quoteInput(value)}.`);
  }
  return n;
}
