/**
 * JSON in and out of the CLI. msgpack has bytes and 64-bit integers that JSON lacks, so bytes are
 * written `{"$base64": "..."}` and integers beyond 2^53 as strings; `{"$base64": ...}` in JSON
 * input becomes bytes again. Output is escaped for a terminal (./_escape.ts `escapeJson`): the
 * reply is the enclave's text.
 */
import { UsageError } from '../../core/index.js';
import { escapeJson } from './_escape.js';

/** Parses JSON arguments, turning `{"$base64": s}` into bytes. */
export function parseJsonArgs(text: string): unknown {
  try {
    return JSON.parse(text, (_key, value) => {
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const keys = Object.keys(value);
        if (keys.length === 1 && keys[0] === '$base64' && typeof value.$base64 === 'string') {
          return new Uint8Array(Buffer.from(value.$base64, 'base64'));
        }
      }
      return value;
    });
  } catch (err) {
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
