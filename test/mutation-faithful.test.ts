/**
 * Which replies the faithful decoder takes (issue 10, mutation testing). msgpackr without its native
 * extractor decodes a str over 64 bytes with a default TextDecoder, which drops a leading U+FEFF:
 * two map keys the scanner found different could then merge, and a value would lose a character.
 * So the scanner flags every str that starts with the bytes EF BB BF, as a value or as a map key,
 * in each str width, and the reply goes to the faithful decoder (test/review-marshal.test.ts shows
 * the merge itself, in a child process without the extractor). In-process, with the extractor,
 * both decoders agree, so these tests read the scanner's flag: a flag not raised would pass every
 * decode here and merge keys on a platform without the extractor.
 */
import { describe, expect, it } from 'vitest';
import { checkReply, decodeReply } from '../runtime/marshal.js';
import { scannedUnfaithful } from '../runtime/_msgpack-check.js';

const u16 = (n: number): number[] => [n >>> 8, n & 0xff];
const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const BOM = [0xef, 0xbb, 0xbf];
const utf8 = (s: string): number[] => [...Buffer.from(s)];

/** A str of the given bytes in each width msgpack has for it. */
function strs(bytes: number[]): [width: string, encoded: number[]][] {
  const out: [string, number[]][] = [];
  if (bytes.length < 32) out.push(['fixstr', [0xa0 | bytes.length, ...bytes]]);
  out.push(['str8', [0xd9, bytes.length, ...bytes]], ['str16', [0xda, ...u16(bytes.length), ...bytes]], ['str32', [0xdb, ...u32(bytes.length), ...bytes]]);
  return out;
}

/** Whether checkReply accepted `bytes` and sent them to the faithful decoder. */
function faithful(bytes: number[]): boolean {
  expect(checkReply(Uint8Array.from(bytes), 8)).toBeUndefined();
  return scannedUnfaithful;
}

describe('a str that starts with U+FEFF takes the faithful decoder', () => {
  it('as a value, in every str width, even when it is only the U+FEFF; inside containers too', () => {
    // 31 bytes: the longest fixstr (header 0xbf).
    for (const body of [[...BOM], [...BOM, 0x61], [...BOM, ...utf8('a'.repeat(28))], [...BOM, ...utf8('a'.repeat(100))]]) {
      for (const [width, str] of strs(body)) {
        expect(faithful(str), `${width} of ${body.length}`).toBe(true);
        expect(faithful([0x92, 0x01, ...str]), `${width} in an array`).toBe(true);
        expect(faithful([0x81, 0xa1, 0x76, ...str]), `${width} as a map value`).toBe(true);
      }
    }
  });

  it('as a map key, in every str width, even when it is only the U+FEFF', () => {
    for (const body of [[...BOM], [...BOM, 0x6b], [...BOM, ...utf8('k'.repeat(100))]]) {
      for (const [width, key] of strs(body)) {
        expect(faithful([0x81, ...key, 0x01]), `${width} key of ${body.length}`).toBe(true);
        expect(faithful([0x82, 0xa1, 0x61, 0x01, ...key, 0x02]), `${width} second key`).toBe(true);
      }
    }
  });

  it('not for other strs, other first characters, U+FEFF later in the str, or bin bytes EF BB BF', () => {
    // U+FEFE is EF BB BE and U+FC3F is EF B0 BF: each differs from the BOM in one byte.
    const others = [utf8('abc'), utf8('\ufefe'), utf8('\ufc3f'), utf8('\ufeff').slice(0, 2).concat(0x80), utf8('a\ufeff'), utf8('é'), utf8('x'.repeat(100))];
    for (const body of others) {
      for (const [width, str] of strs(body)) {
        expect(faithful(str), `${width} ${JSON.stringify(body)}`).toBe(false);
        expect(faithful([0x81, ...str, 0x01]), `${width} key ${JSON.stringify(body)}`).toBe(false);
      }
    }
    // A bin, an array of the byte values, or an ext-free number: not a str, nothing to drop.
    expect(faithful([0xc4, 3, ...BOM])).toBe(false);
    expect(faithful([0x93, 0xcc, 0xef, 0xcc, 0xbb, 0xcc, 0xbf])).toBe(false);
    // Each reply starts unflagged: a flagged reply does not leave the flag on for the next.
    expect(faithful([0xa3, ...BOM])).toBe(true);
    expect(faithful([0xa3, ...utf8('abc')])).toBe(false);
  });

  it('a __proto__ key takes it too, and no other key of nine bytes does', () => {
    const key9 = (s: string): number[] => [0xa9, ...utf8(s)];
    expect(faithful([0x81, ...key9('__proto__'), 1])).toBe(true);
    for (const other of ['__proto_x', 'x_proto__', '_________', 'aaaaaaaaa', 'prototype']) {
      expect(faithful([0x81, ...key9(other), 1]), other).toBe(false);
    }
  });

  it('decodes keys and values that start with U+FEFF whole, next to the same text without it', () => {
    const str8 = (s: string): number[] => {
      const b = utf8(s);
      return [0xd9, b.length, ...b];
    };
    const long = 'a'.repeat(100);
    const bytes = [0x81, 0xa2, 0x6f, 0x6b, 0x83, ...str8(`\ufeff${long}`), 1, ...str8(long), 2, 0xa1, 0x76, ...str8(`\ufeff${long}`)];
    const value = decodeReply(Uint8Array.from(bytes), 0, bytes.length) as Record<string, unknown>;
    expect(Object.keys(value)).toEqual([`\ufeff${long}`, long, 'v']);
    expect(value).toEqual({ [`\ufeff${long}`]: 1, [long]: 2, v: `\ufeff${long}` });
  });
});
