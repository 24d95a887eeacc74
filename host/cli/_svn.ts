/** The `--min-svn` argument of the CLI. */
import { UsageError } from '../../core/index.js';

/**
 * Parses a decimal svn (an integer ≥ 0), or fails as bad usage naming the option. Stricter than
 * `Number()`, which would take `''`, `1e3`, `0x10` or ` 2 `.
 */
export function parseSvn(value: string, what: string): number {
  const n = /^(?:0|[1-9][0-9]*)$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new UsageError(`${what} must be a whole number ≥ 0.`);
  return n;
}
