import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { EnclaveError } from '../core/index.js';
import { checkMsgpack, createPackr, decodeReply, encodeCall, NOT_ENVELOPE, requestFrame, truncateUtf8, unpackr } from '../runtime/marshal.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true }),
    fc.string(),
    fc.uint8Array({ maxLength: 40 }),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  ),
  node: fc.oneof({ depthSize: 'small' }, tie('leaf'), fc.array(tie('node'), { maxLength: 5 }), fc.dictionary(fc.string(), tie('node'), { maxKeys: 5 })),
})).node;

function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + Math.max(0, ...v.map(depthOf));
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) return 1 + Math.max(0, ...Object.values(v).map(depthOf));
  return 0;
}

describe('checkMsgpack', () => {
  it('accepts whatever msgpackr encodes within the depth limit, and measures depth as it does', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = packr.pack(v);
        const depth = depthOf(v);
        expect(checkMsgpack(bytes, Math.max(depth, 1))).toBeUndefined();
        if (depth > 1) expect(checkMsgpack(bytes, depth - 1)).toMatch(/deeper/);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses every strict prefix of a valid message as truncated', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = packr.pack(v);
        for (let n = 0; n < bytes.length; n++) expect(checkMsgpack(bytes.subarray(0, n), 64)).toBeDefined();
      }),
      { numRuns: 100 },
    );
  });

  it('never throws on random bytes; an accepted reply decodes or fails as bad_reply, nothing else', () => {
    // Valid msgpack can still be undecodable as JS (a map as a map key: [0x82, 0x81, 0, 0, ...]),
    // so the structural check does not promise decodability; the host maps that case to bad_reply.
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const reply = Uint8Array.of(0x81, 0xa2, 0x6f, 0x6b, ...bytes);
        if (checkMsgpack(reply, 16) !== undefined) return;
        try {
          decodeReply(reply, 0, reply.length);
        } catch (err) {
          expect(err).toBeInstanceOf(EnclaveError);
          expect((err as EnclaveError).code).toBe('bad_reply');
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('a reply whose map key is itself a map is bad_reply (regression)', () => {
    const reply = Uint8Array.of(0x81, 0xa2, 0x6f, 0x6b, 0x82, 0x81, 0, 0, 0, 0, 0);
    expect(checkMsgpack(reply, 16)).toBeUndefined();
    expect(() => decodeReply(reply, 0, reply.length)).toThrow(expect.objectContaining({ code: 'bad_reply' }));
  });

  const refused: [string, number[], RegExp][] = [
    ['the reserved byte', [0xc1], /0xc1/],
    ['fixext', [0xd4, 0x01, 0x00], /extension/],
    ['ext8', [0xc7, 0x01, 0x05, 0x00], /extension/],
    ['timestamp', [0xd6, 0xff, 0, 0, 0, 0], /extension/],
    ['bin32 claiming 4 GiB', [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00], /past the end/],
    ['array32 claiming 4 billion items', [0xdd, 0xff, 0xff, 0xff, 0xff], /more elements/],
    ['map32 claiming 2 billion entries', [0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0], /more elements/],
    ['trailing bytes', [0xc0, 0xc0], /trailing/],
    ['nothing', [], /truncated/],
  ];
  for (const [what, bytes, message] of refused) {
    it(`refuses ${what}`, () => {
      expect(checkMsgpack(Uint8Array.from(bytes), 16)).toMatch(message);
    });
  }

  it('handles nesting of 100 000 without recursion', () => {
    const deep = new Uint8Array(100_001).fill(0x91);
    deep[100_000] = 0xc0;
    expect(checkMsgpack(deep, 32)).toMatch(/deeper than 32/);
    expect(checkMsgpack(deep, 200_000)).toBeUndefined();
  });

  it('checks only the given window of a larger buffer', () => {
    const buf = Uint8Array.from([0xc1, 0x92, 0x01, 0x02, 0xc1]);
    expect(checkMsgpack(buf, 4, 1, 4)).toBeUndefined();
    expect(checkMsgpack(buf, 4, 1, 3)).toMatch(/more elements/);
    expect(checkMsgpack(buf, 4, 2, 4)).toMatch(/trailing/);
  });
});

describe('encoding', () => {
  it('sends only a view’s own bytes, never its backing buffer', () => {
    const backing = new Uint8Array(1024).fill(0xaa);
    const view = backing.subarray(10, 14);
    const { buffer, start, end } = encodeCall(createPackr(), 'op', requestFrame('op'), () => undefined, view, { requestBytes: 1024, depth: 4 });
    const decoded = unpackr.unpack(buffer.subarray(start, end)) as { args: Uint8Array };
    expect([...decoded.args]).toEqual([0xaa, 0xaa, 0xaa, 0xaa]);
    expect(end - start).toBeLessThan(20);
  });

  it('decodes bins as copies that do not alias the source', () => {
    const bytes = new Uint8Array(packr.pack({ ok: new Uint8Array([1, 2, 3]) }));
    const out = unpackr.unpack(bytes) as { ok: Uint8Array };
    bytes.fill(0);
    expect([...out.ok]).toEqual([1, 2, 3]);
  });

  it('neuters a __proto__ key from a hostile reply', () => {
    const bytes = new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 0x81, 0xa5, ...new TextEncoder().encode('admin'), 0xc3]);
    const out = unpackr.unpack(bytes) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
  });
});

describe('request framing (encodeCall)', () => {
  const limits = { requestBytes: 1024, depth: 4 };
  const any = () => undefined;

  it('frames {op, args} exactly as a msgpack map would be encoded', () => {
    for (const args of [undefined, null, 7, 'x', new Uint8Array([1, 2]), { a: [1, { b: 2 }] }]) {
      const { buffer, start, end } = encodeCall(createPackr(), 'echo', requestFrame('echo'), any, args, limits);
      const decoded = unpackr.unpack(Buffer.from(buffer.subarray(start, end))) as Record<string, unknown>;
      expect(decoded.op).toBe('echo');
      if (args === undefined) expect(Object.keys(decoded)).toEqual(['op']);
      else expect(decoded.args).toEqual(args instanceof Uint8Array ? Buffer.from(args) : args);
    }
  });

  it('frames op names of every length up to 64 bytes', () => {
    const name = 'o'.repeat(64);
    const { buffer, start, end } = encodeCall(createPackr(), name, requestFrame(name), any, 1, limits);
    expect(unpackr.unpack(Buffer.from(buffer.subarray(start, end)))).toEqual({ op: name, args: 1 });
  });

  it('counts the envelope as a level of depth, and refuses what msgpack would need an extension for', () => {
    const frame = requestFrame('go');
    expect(() => encodeCall(createPackr(), 'go', frame, any, [[[1]]], limits)).not.toThrow();
    expect(() => encodeCall(createPackr(), 'go', frame, any, [[[[1]]]], limits)).toThrow(/deeper than 3/);
    expect(() => encodeCall(createPackr(), 'go', frame, any, new Date(0), limits)).toThrow(/a Date; only plain data/);
  });

  it('refuses a request over the byte limit as too_large', () => {
    expect(() => encodeCall(createPackr(), 'go', requestFrame('go'), any, 'x'.repeat(2000), limits)).toThrow(
      expect.objectContaining({ code: 'too_large' }),
    );
  });
});

describe('reply envelopes (decodeReply)', () => {
  const reply = (...bytes: number[]) => Uint8Array.from(bytes);
  const OK = [0xa2, 0x6f, 0x6b];
  const ERR = [0xa3, 0x65, 0x72, 0x72];
  const decode = (b: Uint8Array) => decodeReply(b, 0, b.length);

  it('returns the ok value, with one-byte values on a fast path that agrees with msgpackr', () => {
    for (const byte of [0x00, 0x05, 0x7f, 0xe0, 0xff, 0xc0, 0xc2, 0xc3]) {
      expect(decode(reply(0x81, ...OK, byte))).toEqual(unpackr.unpack(Uint8Array.of(byte)));
    }
    expect(decode(new Uint8Array(packr.pack({ ok: { a: [1, 'b'] } })))).toEqual({ a: [1, 'b'] });
  });

  it('accepts non-canonical headers: map16/map32 of one entry, str8 keys', () => {
    expect(decode(reply(0xde, 0x00, 0x01, ...OK, 0x07))).toBe(7);
    expect(decode(reply(0xdf, 0, 0, 0, 1, ...OK, 0x07))).toBe(7);
    expect(decode(reply(0x81, 0xd9, 0x02, 0x6f, 0x6b, 0x07))).toBe(7);
  });

  it('refuses extra entries, other keys and non-maps as not an envelope; duplicate and non-string keys as bad_reply', () => {
    expect(decode(reply(0x82, ...OK, 0x01, 0xa1, 0x78, 0x02))).toBe(NOT_ENVELOPE);
    expect(decode(reply(0x80))).toBe(NOT_ENVELOPE);
    expect(decode(reply(0x81, 0xa2, 0x6f, 0x6c, 0x01))).toBe(NOT_ENVELOPE);
    expect(decode(reply(0x91, 0x01))).toBe(NOT_ENVELOPE);
    expect(() => decode(reply(0x82, ...OK, 0x01, ...OK, 0x02))).toThrow(expect.objectContaining({ code: 'bad_reply' }));
    expect(() => decode(reply(0x81, 0x01, 0x01))).toThrow(expect.objectContaining({ code: 'bad_reply' }));
  });

  it('throws the enclave code for err replies, and bad_reply for codes outside the ABI', () => {
    const err = (value: unknown) => new Uint8Array(packr.pack({ err: value }));
    expect(() => decode(err({ code: 'denied', message: 'no' }))).toThrow(expect.objectContaining({ code: 'denied', detail: 'no' }));
    expect(() => decode(err({ code: 'trap' }))).toThrow(expect.objectContaining({ code: 'bad_reply' }));
    expect(() => decode(err('denied'))).toThrow(expect.objectContaining({ code: 'bad_reply' }));
    expect(() => decode(reply(0x81, ...ERR, 0xc0))).toThrow(expect.objectContaining({ code: 'bad_reply' }));
  });

  it('agrees with msgpackr on random ok values', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = new Uint8Array(packr.pack({ ok: v }));
        expect(decode(bytes)).toEqual(unpackr.unpack(bytes).ok);
      }),
      { numRuns: 300 },
    );
  });
});

describe('truncateUtf8 (an enclave error message is at most 256 bytes)', () => {
  it('keeps short text and cuts long text on a character boundary', () => {
    expect(truncateUtf8('short', 256)).toBe('short');
    expect(truncateUtf8('x'.repeat(300), 256)).toHaveLength(256);
    const cut = truncateUtf8('é'.repeat(200), 256); // 2 bytes each
    expect(cut).toBe('é'.repeat(128));
    const emoji = truncateUtf8('a' + '🙂'.repeat(100), 10); // 1 + 4 + 4 = 9 bytes fit
    expect(emoji).toBe('a🙂🙂');
    expect(new TextEncoder().encode(truncateUtf8('€'.repeat(1000), 256)).length).toBeLessThanOrEqual(256);
  });

  it('applies to the detail of an enclave error reply', () => {
    const reply = new Uint8Array(packr.pack({ err: { code: 'denied', message: '€'.repeat(200) } })); // 600 bytes of message
    const err = (() => {
      try {
        decodeReply(reply, 0, reply.length);
      } catch (e) {
        return e as EnclaveError;
      }
      throw new Error('expected a throw');
    })();
    expect(err.code).toBe('denied');
    expect(err.detail).toBe('€'.repeat(85)); // 255 bytes: the 86th would not fit
  });
});
