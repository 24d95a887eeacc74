/**
 * The reply scanner's bounds, header by header (issue 10, mutation testing). Every msgpack header
 * the scanner knows is written here in each of its widths (a 16- or 32-bit length is valid for a
 * short value too), and each encoding is checked four ways: accepted alone; every strict prefix
 * refused (a length or count read one byte wrong would accept a truncation); one trailing byte
 * refused; and followed by another value inside an array (a length skipped one byte wrong would
 * misread that value). Then depth, the item limit, map keys, and the envelope decodeReply reads.
 */
import { describe, expect, it } from 'vitest';
import { EnclaveError } from '../host/index.js';
import { checkMsgpack, checkReply, decodeReply, NOT_ENVELOPE, scannedItems, TOO_MANY_ITEMS } from '../runtime/marshal.js';

const u16 = (n: number): number[] => [n >>> 8, n & 0xff];
const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** One value per header form: its bytes and its number of msgpack values (keys and elements count). */
const VALUES: readonly (readonly [name: string, bytes: readonly number[], items: number])[] = [
  ['nil', [0xc0], 1],
  ['false', [0xc2], 1],
  ['true', [0xc3], 1],
  ['positive fixint', [0x7f], 1],
  ['negative fixint', [0xe0], 1],
  ['uint8', [0xcc, 0xff], 1],
  ['uint16', [0xcd, 1, 2], 1],
  ['uint32', [0xce, 1, 2, 3, 4], 1],
  ['uint64', [0xcf, 0, 0, 0, 0, 1, 2, 3, 4], 1],
  ['int8', [0xd0, 0x80], 1],
  ['int16', [0xd1, 0x80, 0], 1],
  ['int32', [0xd2, 0x80, 0, 0, 0], 1],
  ['int64', [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], 1],
  ['float32', [0xca, 0x3f, 0x80, 0, 0], 1],
  ['float64', [0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], 1],
  ['fixstr', [0xa3, ...ascii('abc')], 1],
  ['empty fixstr', [0xa0], 1],
  ['str8', [0xd9, 3, ...ascii('abc')], 1],
  ['str16', [0xda, ...u16(3), ...ascii('abc')], 1],
  ['str32', [0xdb, ...u32(3), ...ascii('abc')], 1],
  ['bin8', [0xc4, 2, 9, 9], 1],
  ['bin16', [0xc5, ...u16(2), 9, 9], 1],
  ['bin32', [0xc6, ...u32(2), 9, 9], 1],
  ['fixarray', [0x92, 1, 2], 3],
  ['empty fixarray', [0x90], 1],
  ['array16', [0xdc, ...u16(2), 1, 2], 3],
  ['array32', [0xdd, ...u32(2), 1, 2], 3],
  ['fixmap', [0x81, 0xa1, 0x61, 1], 3],
  ['empty fixmap', [0x80], 1],
  ['map16', [0xde, ...u16(1), 0xa1, 0x61, 1], 3],
  ['map32', [0xdf, ...u32(1), 0xa1, 0x61, 1], 3],
  ['map with two keys', [0x82, 0xa1, 0x61, 1, 0xa1, 0x62, 2], 5],
  ['map with a str8 key', [0x81, 0xd9, 1, 0x61, 1], 3],
  ['map with a str16 key', [0x81, 0xda, ...u16(1), 0x61, 1], 3],
  ['map with a str32 key', [0x81, 0xdb, ...u32(1), 0x61, 1], 3],
  ['nested', [0x92, 0x91, 0x81, 0xa1, 0x6b, 0x90, 0xc0], 6],
];

describe('each header, in each width', () => {
  for (const [name, value, items] of VALUES) {
    it(`${name}: accepted whole, refused truncated or with a trailing byte, skipped exactly`, () => {
      const bytes = Uint8Array.from(value);
      expect(checkReply(bytes, 8)).toBeUndefined();
      expect(scannedItems).toBe(items);
      expect(checkMsgpack(bytes, 8)).toBeUndefined();
      for (let n = 0; n < bytes.length; n++) expect(checkReply(bytes.subarray(0, n), 8), `prefix of ${n} bytes`).toBeDefined();
      expect(checkReply(Uint8Array.from([...value, 0xc0]), 8)).toBe('trailing bytes after the value');
      // Followed by a value the scanner must read from exactly the right byte.
      const pair = Uint8Array.from([0x92, ...value, 0xc3]);
      expect(checkReply(pair, 8)).toBeUndefined();
      expect(scannedItems).toBe(items + 2);
      // The same bytes in the middle of a larger buffer, scanned between offsets.
      const framed = Uint8Array.from([0xc1, 0xc1, ...value, 0xc1]);
      expect(checkReply(framed, 8, 2, 2 + value.length)).toBeUndefined();
      expect(checkMsgpack(framed, 8, 2, 2 + value.length)).toBeUndefined();
    });
  }
});

describe('lengths and counts that lie', () => {
  it('a str or bin length one past the bytes left is refused, the exact length accepted', () => {
    for (const head of [[0xa4], [0xd9, 4], [0xda, ...u16(4)], [0xdb, ...u32(4)], [0xc4, 4], [0xc5, ...u16(4)], [0xc6, ...u32(4)]]) {
      expect(checkMsgpack(Uint8Array.from([...head, 1, 2, 3]), 8), String(head)).toBe('a length runs past the end');
      expect(checkMsgpack(Uint8Array.from([...head, 1, 2, 3, 4]), 8), String(head)).toBeUndefined();
    }
  });

  it('a container counting more elements than bytes left is refused before anything is pushed', () => {
    expect(checkMsgpack(Uint8Array.from([0xdc, ...u16(3), 1, 2]), 8)).toBe('a container claims more elements than there are bytes');
    expect(checkMsgpack(Uint8Array.from([0xdd, 0xff, 0xff, 0xff, 0xff, 1]), 8)).toBe('a container claims more elements than there are bytes');
    expect(checkMsgpack(Uint8Array.from([0xdf, 0x7f, 0xff, 0xff, 0xff, 1]), 8)).toBe('a container claims more elements than there are bytes');
    expect(checkMsgpack(Uint8Array.from([0xde, ...u16(2), 1, 2]), 8)).toBe('a container claims more elements than there are bytes');
    // Exactly as many elements as bytes is possible (one-byte elements).
    expect(checkMsgpack(Uint8Array.from([0xdc, ...u16(3), 1, 2, 3]), 8)).toBeUndefined();
  });

  it('a header whose length field is cut short is truncated', () => {
    for (const head of [[0xd9], [0xda, 0], [0xdb, 0, 0, 0], [0xc4], [0xc5, 0], [0xc6, 0, 0, 0], [0xdc, 0], [0xdd, 0, 0, 0], [0xde, 0], [0xdf, 0, 0, 0]]) {
      expect(checkMsgpack(Uint8Array.from(head), 8), String(head)).toBe('truncated');
    }
  });

  it('refuses the reserved byte and every extension type', () => {
    expect(checkMsgpack(Uint8Array.from([0xc1]), 8)).toBe('reserved byte 0xc1');
    for (const b of [0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8]) {
      expect(checkMsgpack(Uint8Array.from([b, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), 8), b.toString(16)).toBe('extension types are not allowed');
    }
  });
});

describe('depth and the number of values', () => {
  /** `levels` arrays, one inside the other, the innermost holding `inner`. */
  const nested = (levels: number, inner: number[]): Uint8Array => Uint8Array.from([...Array(levels).fill(0x91), ...inner]);

  it('containers nested exactly maxDepth deep are accepted, one more is refused (empty or not)', () => {
    for (const inner of [[0x01], [0x90], [0x80]]) {
      expect(checkMsgpack(nested(3, inner).subarray(0, 3 + inner.length), 3 + (inner[0] === 0x01 ? 0 : 1))).toBeUndefined();
      expect(checkMsgpack(nested(3, inner), 2 + (inner[0] === 0x01 ? 0 : 1))).toBe(`nested deeper than ${2 + (inner[0] === 0x01 ? 0 : 1)}`);
    }
    expect(checkMsgpack(Uint8Array.from([0x01]), 0)).toBeUndefined();
    expect(checkMsgpack(Uint8Array.from([0x90]), 0)).toBe('nested deeper than 0');
    expect(checkMsgpack(Uint8Array.from([0x90]), 1)).toBeUndefined();
  });

  it('stops at value maxItems + 1', () => {
    const bytes = Uint8Array.from([0x93, 1, 2, 3]); // 4 values
    expect(checkReply(bytes, 8, 0, bytes.length, 4)).toBeUndefined();
    expect(checkReply(bytes, 8, 0, bytes.length, 3)).toBe(TOO_MANY_ITEMS);
    const map = Uint8Array.from([0x81, 0xa1, 0x61, 1]); // 3 values
    expect(checkReply(map, 8, 0, map.length, 3)).toBeUndefined();
    expect(checkReply(map, 8, 0, map.length, 2)).toBe(TOO_MANY_ITEMS);
  });
});

describe('map keys (checkReply only)', () => {
  const map = (...entries: number[][]): Uint8Array => Uint8Array.from([0x80 | entries.length, ...entries.flat()]);
  const key = (s: string): number[] => [0xa0 | s.length, ...ascii(s)];

  it('a key must be a str; checkMsgpack does not look', () => {
    const intKey = map([1, 1]);
    expect(checkReply(intKey, 8)).toBe('a map key is not a string');
    expect(checkMsgpack(intKey, 8)).toBeUndefined();
    expect(checkReply(map([0xc4, 1, 0x61, 1]), 8)).toBe('a map key is not a string');
  });

  it('a key whose length runs past the end, or whose length field is cut, is refused', () => {
    expect(checkReply(Uint8Array.from([0x81, 0xa3, 0x61]), 8)).toBe('a length runs past the end');
    expect(checkReply(Uint8Array.from([0x82, 0xa1, 0x61, 1, 0xd9]), 8)).toBe('truncated');
    expect(checkReply(Uint8Array.from([0x81, 0xda, 0]), 8)).toBe('truncated');
    expect(checkReply(Uint8Array.from([0x81, 0xdb, 0, 0, 0]), 8)).toBe('truncated');
  });

  it('an empty str, bin, array or map whose length field ends the message is accepted (the field fits exactly)', () => {
    for (const v of [[0xd9, 0], [0xda, 0, 0], [0xdb, 0, 0, 0, 0], [0xc4, 0], [0xc5, 0, 0], [0xc6, 0, 0, 0, 0], [0xdc, 0, 0], [0xdd, 0, 0, 0, 0], [0xde, 0, 0], [0xdf, 0, 0, 0, 0]]) {
      expect(checkReply(Uint8Array.from(v), 8), v.map((b) => b.toString(16)).join(' ')).toBeUndefined();
    }
  });

  it('a key length field that ends the message is read whole (the key then runs past the end)', () => {
    // The length field fits exactly: the reason is the key's bytes, not a cut length field.
    expect(checkReply(Uint8Array.from([0x81, 0xd9, 1]), 8)).toBe('a length runs past the end');
    expect(checkReply(Uint8Array.from([0x81, 0xda, 0, 1]), 8)).toBe('a length runs past the end');
    expect(checkReply(Uint8Array.from([0x81, 0xdb, 0, 0, 0, 1]), 8)).toBe('a length runs past the end');
    // One byte of the field short (the second key of a map): truncated.
    const first = [0x82, 0xa1, 0x61, 1];
    expect(checkReply(Uint8Array.from([...first, 0xda, 0]), 8)).toBe('truncated');
    expect(checkReply(Uint8Array.from([...first, 0xdb, 0, 0, 0]), 8)).toBe('truncated');
  });

  it('a key of any other type is not a string, however many bytes follow it (never read as a str32 length)', () => {
    const tail = [0xa1, 0x61, 2, 0xa1, 0x62, 3];
    for (const b of [0x01, 0x7f, 0xc0, 0xc2, 0xc4, 0xcc, 0xd0, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff]) {
      expect(checkReply(Uint8Array.from([0x83, b, 0, 0, 0, 1, ...tail]), 8), b.toString(16)).toBe('a map key is not a string');
      expect(checkReply(Uint8Array.from([0x81, b, 1]), 8), `${b.toString(16)} then one byte`).toBe('a map key is not a string');
    }
  });

  it('a key must be valid UTF-8 (multi-byte keys accepted)', () => {
    expect(checkReply(map([0xa2, 0xc3, 0xa9, 1]), 8)).toBeUndefined(); // "é"
    expect(checkReply(map([0xa2, 0xc3, 0x28, 1]), 8)).toBe('a map key is not valid UTF-8');
    expect(checkReply(map([0xa1, 0xff, 1]), 8)).toBe('a map key is not valid UTF-8');
  });

  it('no key twice, in a small map and in a large one (where a Set keeps them); equal lengths, other bytes are fine', () => {
    expect(checkReply(map([...key('ab'), 1], [...key('ab'), 2]), 8)).toBe('a map has a key twice');
    expect(checkReply(map([...key('ab'), 1], [...key('ac'), 2]), 8)).toBeUndefined();
    expect(checkReply(map([...key('a'), 1], [...key('ab'), 2]), 8)).toBeUndefined();
    const many = (n: number, dup: boolean): Uint8Array => {
      const entries: number[] = [];
      for (let i = 0; i < n; i++) entries.push(...key(`k${i}`), 1);
      if (dup) entries.push(...key('k0'), 2);
      return Uint8Array.from([0xde, ...u16(dup ? n + 1 : n), ...entries]);
    };
    for (const n of [15, 16, 17, 40]) {
      expect(checkReply(many(n, false), 8), `${n}`).toBeUndefined();
      expect(checkReply(many(n, true), 8), `${n} + a repeat`).toBe('a map has a key twice');
    }
  });

  it('the same key in two different maps is not a repeat; a repeat in an inner map is', () => {
    const inner = [0x81, ...key('a'), 1];
    expect(checkReply(Uint8Array.from([0x82, ...key('a'), ...inner, ...key('b'), ...inner]), 8)).toBeUndefined();
    expect(checkReply(Uint8Array.from([0x81, ...key('x'), 0x82, ...key('a'), 1, ...key('a'), 2]), 8)).toBe('a map has a key twice');
    // Keys of a finished inner map are forgotten: the outer map may use them after it.
    expect(checkReply(Uint8Array.from([0x83, ...key('m'), 0x82, ...key('a'), 1, ...key('b'), 2, ...key('a'), 1, ...key('b'), 2]), 8)).toBeUndefined();
  });
});

describe('decodeReply: the envelope', () => {
  const reply = (bytes: number[]): unknown => decodeReply(Uint8Array.from(bytes), 0, bytes.length);
  const ok = [0xa2, 0x6f, 0x6b];
  const err = [0xa3, 0x65, 0x72, 0x72];

  it('reads {ok: value} with a map header of any width and the key as a fixstr or a str8', () => {
    for (const head of [[0x81], [0xde, 0, 1], [0xdf, 0, 0, 0, 1]]) {
      expect(reply([...head, ...ok, 0x92, 1, 2]), String(head)).toEqual([1, 2]);
    }
    expect(reply([0x81, 0xd9, 2, 0x6f, 0x6b, 0x05])).toBe(5);
  });

  it('one-byte values take the fast path and decode like any other', () => {
    expect(reply([0x81, ...ok, 0x00])).toBe(0);
    expect(reply([0x81, ...ok, 0x7f])).toBe(127);
    expect(reply([0x81, ...ok, 0xe0])).toBe(-32);
    expect(reply([0x81, ...ok, 0xff])).toBe(-1);
    expect(reply([0x81, ...ok, 0xc0])).toBeNull();
    expect(reply([0x81, ...ok, 0xc2])).toBe(false);
    expect(reply([0x81, ...ok, 0xc3])).toBe(true);
    expect(reply([0x81, ...ok, 0xcc, 0x80])).toBe(128);
    expect(reply([0x81, ...ok, 0xa1, 0x61])).toBe('a');
  });

  it('anything but a one-entry map keyed ok or err is not an envelope', () => {
    expect(reply([0x80])).toBe(NOT_ENVELOPE);
    expect(reply([0x82, ...ok, 1, ...err, 2])).toBe(NOT_ENVELOPE);
    expect(reply([0xde, 0, 2, ...ok, 1, ...err, 2])).toBe(NOT_ENVELOPE);
    expect(reply([0x91, 1])).toBe(NOT_ENVELOPE);
    expect(reply([0x81, 0xa2, 0x6f, 0x6c, 1])).toBe(NOT_ENVELOPE); // "ol"
    expect(reply([0x81, 0xa2, 0x70, 0x6b, 1])).toBe(NOT_ENVELOPE); // "pk"
    expect(reply([0x81, 0xa3, 0x6f, 0x6b, 0x6b, 1])).toBe(NOT_ENVELOPE); // "okk"
    expect(reply([0x81, 0xa3, 0x65, 0x72, 0x73, 1])).toBe(NOT_ENVELOPE); // "ers"
    expect(reply([0x81, 0xa3, 0x66, 0x72, 0x72, 1])).toBe(NOT_ENVELOPE); // "frr"
    expect(reply([0x81, 0xa3, 0x65, 0x73, 0x72, 1])).toBe(NOT_ENVELOPE); // "esr"
    expect(reply([0x81, 0xa2, 0x65, 0x72, 1])).toBe(NOT_ENVELOPE); // "er"
    expect(reply([0x81, 0xda, 0, 2, 0x6f, 0x6b, 1])).toBe(NOT_ENVELOPE); // a str16 key
  });

  it('{err: {code, message}} throws the enclave\'s code with its message as detail; anything else is bad_reply', () => {
    const errReply = (value: number[]): unknown => {
      try {
        return reply([0x81, ...err, ...value]);
      } catch (e) {
        expect(e).toBeInstanceOf(EnclaveError);
        return { code: (e as EnclaveError).code, detail: (e as EnclaveError).detail };
      }
    };
    const codeDenied = [0xa4, ...ascii('code'), 0xa6, ...ascii('denied')];
    expect(errReply([0x82, ...codeDenied, 0xa7, ...ascii('message'), 0xa2, ...ascii('no')])).toEqual({ code: 'denied', detail: 'no' });
    expect(errReply([0x81, ...codeDenied])).toEqual({ code: 'denied', detail: undefined });
    expect(errReply([0x81, 0xa4, ...ascii('code'), 0xa4, ...ascii('trap')])).toMatchObject({ code: 'bad_reply' });
    expect(errReply([0x81, 0xa4, ...ascii('code'), 0x01])).toMatchObject({ code: 'bad_reply' });
    expect(errReply([0xc0])).toMatchObject({ code: 'bad_reply' });
    expect(errReply([0xa6, ...ascii('denied')])).toMatchObject({ code: 'bad_reply' });
  });

  it('a reply the scanner refuses is bad_reply, one over the item limit too_large', () => {
    const code = (bytes: number[], limits?: { depth: number; replyItems: number }): unknown => {
      try {
        decodeReply(Uint8Array.from(bytes), 0, bytes.length, limits);
        return 'decoded';
      } catch (e) {
        return (e as EnclaveError).code;
      }
    };
    expect(code([0x81, ...ok, 0xc1])).toBe('bad_reply');
    expect(code([0x81, ...ok, 0x92, 1])).toBe('bad_reply');
    expect(code([0x81, ...ok, 0x92, 1, 2], { depth: 8, replyItems: 5 })).toBe('decoded');
    expect(code([0x81, ...ok, 0x92, 1, 2], { depth: 8, replyItems: 4 })).toBe('too_large');
    expect(code([0x81, ...ok, 0x91, 0x91, 1], { depth: 3, replyItems: 100 })).toBe('decoded');
    expect(code([0x81, ...ok, 0x91, 0x91, 1], { depth: 2, replyItems: 100 })).toBe('bad_reply');
  });

  it('decodes from between offsets, and a __proto__ key is an own key', () => {
    const bytes = Uint8Array.from([0xc1, 0x81, ...ok, 0x81, 0xa9, ...ascii('__proto__'), 1, 0xc1]);
    const value = decodeReply(bytes, 1, bytes.length - 1) as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(value, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toBe(1);
  });
});
