/** Pieces of the Wasm binary format (core spec §5) shared by the modules generated here. */
import { encodeU32Leb } from '../../core/index.js';

/** A signed LEB128 (`i32.const` immediates, segment offsets). */
export function sleb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A name: its UTF-8 length, then its bytes. */
export function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...encodeU32Leb(bytes.length), ...bytes];
}

/** The i32 value type. */
export const I32 = 0x7f;
