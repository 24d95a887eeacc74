/**
 * JSON in and out of the CLI. msgpack has bytes and 64-bit integers that JSON lacks, so bytes are
 * written `{"$base64": "..."}` and integers beyond 2^53 as strings; `{"$base64": ...}` in JSON
 * input becomes bytes again. Output is escaped for a terminal (./_escape.ts `escapeJson`): the
 * reply is the enclave's text.
 */
import { UsageError } from '../../core/index.js';
import { escapeJson } from './_escape.js';

/** Standard base64 with its padding (RFC 4648 §4): Buffer.from would skip what is not base64 and decode the rest. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Parses JSON arguments, turning `{"$base64": s}` into bytes. @throws {UsageError} */
export function parseJsonArgs(text: string): unknown {
  try {
    return JSON.parse(text, (_key, value) => {
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const keys = Object.keys(value);
        if (keys.length === 1 && keys[0] === '$base64' && typeof value.$base64 === 'string') {
          if (!BASE64.test(value.$base64)) throw new UsageError('The arguments have a {"$base64": ...} that is not base64 (A-Z a-z 0-9 + /, padded with =).');
          return new Uint8Array(Buffer.from(value.$base64, 'base64'));
        }
      }
      return value;
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // The parser's reviver recurses: a document nested some thousands deep exhausts the stack
    // (the host refuses args nested deeper than its limit anyway).
    if (err instanceof RangeError) throw new UsageError('The arguments are nested too deep to parse.');
    throw new UsageError(`The arguments are not valid JSON: ${(err as Error).message}`);
  }
}

/** Formats a reply value as JSON, with controls and bidi characters in strings written as `\uXXXX`. */
export function formatJson(value: unknown, pretty = true): string {
  const text = JSON.stringify(
    value,
    (_key, v) => {
      if (v instanceof Uint8Array) return { $base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Map) return Object.fromEntries(v);
      return v;
    },
    pretty ? 2 : undefined,
  );
  return escapeJson(text);
}
