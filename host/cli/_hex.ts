/** Hex arguments of the CLI (nonces, report data). */
import { UsageError } from '../../core/index.js';

/** Parses an even-length hex string into bytes, or fails as bad usage naming the option. */
export function parseHex(value: string, what: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(value)) {
    throw new UsageError(`${what} must be hex digits, two per byte.`);
  }
  return new Uint8Array(Buffer.from(value, 'hex'));
}
