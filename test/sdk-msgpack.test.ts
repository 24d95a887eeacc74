// The SDK's msgpack codec, through the echo module at the ABI level (docs/ABI.md §2, §4, §5).

import { beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import {
  compileModule,
  instantiateRaw,
  request,
  okReply,
  decode,
  errCode,
  hex,
  fromSuiteHex,
  concat,
  mpStr,
  type RawEnclave,
} from './helpers/raw-abi.js';

type SuiteCase = Record<string, unknown> & { msgpack: string[] };
const suite = createRequire(import.meta.url)('msgpack-test-suite') as Record<string, SuiteCase[]>;

let echoWasm: Uint8Array;
let echo: RawEnclave;

beforeAll(async () => {
  echoWasm = await compileModule('echo');
  echo = await instantiateRaw(echoWasm);
});

/** int family: fixints, uint8..64, int8..64; float: float32/64. */
function klass(b: Uint8Array): string {
  const t = b[0]!;
  if (t <= 0x7f || t >= 0xe0 || (t >= 0xcc && t <= 0xd3)) return 'int';
  if (t === 0xca || t === 0xcb) return 'float';
  return 'other';
}

/** The integer an int-family encoding holds. */
function intOf(b: Uint8Array): bigint {
  const t = b[0]!;
  if (t <= 0x7f) return BigInt(t);
  if (t >= 0xe0) return BigInt(t - 256);
  const dv = new DataView(b.buffer, b.byteOffset + 1);
  switch (t) {
    case 0xcc: return BigInt(dv.getUint8(0));
    case 0xcd: return BigInt(dv.getUint16(0));
    case 0xce: return BigInt(dv.getUint32(0));
    case 0xcf: return dv.getBigUint64(0);
    case 0xd0: return BigInt(dv.getInt8(0));
    case 0xd1: return BigInt(dv.getInt16(0));
    case 0xd2: return BigInt(dv.getInt32(0));
    default: return dv.getBigInt64(0);
  }
}

/** The canonical (smallest; unsigned for non-negative) encoding of an integer. */
function canonicalInt(v: bigint): Uint8Array {
  const be = (tag: number, bytes: number, x: bigint) => {
    const out = new Uint8Array(1 + bytes);
    out[0] = tag;
    for (let i = bytes; i >= 1; i--) {
      out[i] = Number(x & 0xffn);
      x >>= 8n;
    }
    return out;
  };
  if (v >= 0n) {
    if (v <= 0x7fn) return Uint8Array.of(Number(v));
    if (v <= 0xffn) return be(0xcc, 1, v);
    if (v <= 0xffffn) return be(0xcd, 2, v);
    if (v <= 0xffffffffn) return be(0xce, 4, v);
    return be(0xcf, 8, v);
  }
  if (v >= -32n) return Uint8Array.of(Number(v + 256n));
  if (v >= -128n) return be(0xd0, 1, v & 0xffn);
  if (v >= -32768n) return be(0xd1, 2, v & 0xffffn);
  if (v >= -2147483648n) return be(0xd2, 4, v & 0xffffffffn);
  return be(0xd3, 8, v & 0xffffffffffffffffn);
}

function smallestFloat(b: Uint8Array): Uint8Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const x = b[0] === 0xca ? dv.getFloat32(1) : dv.getFloat64(1);
  if (Math.fround(x) === x || Number.isNaN(x)) {
    if (!Number.isNaN(x)) {
      const out = new Uint8Array(5);
      out[0] = 0xca;
      new DataView(out.buffer).setFloat32(1, x);
      return out;
    }
  }
  const out = new Uint8Array(9);
  out[0] = 0xcb;
  new DataView(out.buffer).setFloat64(1, x);
  return out;
}

function expectedValue(c: SuiteCase): unknown {
  if ('bignum' in c) return BigInt(c.bignum as string);
  if ('binary' in c) return Buffer.from(fromSuiteHex(c.binary as string));
  for (const k of ['nil', 'bool', 'number', 'string', 'array', 'map']) if (k in c) return c[k];
  throw new Error('unknown case ' + JSON.stringify(c));
}

function normalize(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (v instanceof Uint8Array) return hex(v);
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

describe('msgpack-test-suite through echo', () => {
  for (const [file, cases] of Object.entries(suite)) {
    const rejected = file.includes('timestamp') || file.includes('ext');
    it(`${file}: ${rejected ? 'bad_request for extension types' : 'echoes every encoding canonically'}`, () => {
      for (const c of cases) {
        for (const enc of c.msgpack) {
          const bytes = fromSuiteHex(enc);
          const reply = echo.call(request('echo', bytes));
          if (rejected) {
            expect(errCode(reply), enc).toBe('bad_request');
            continue;
          }
          const v = (decode(reply) as { ok: unknown }).ok;
          if (!('bignum' in c) || klass(bytes) === 'int') {
            const want = expectedValue(c);
            const got = normalize(v);
            if ('bignum' in c) expect(got, enc).toEqual(normalize(want));
            else expect(got, enc).toEqual(normalize(want));
          }
          // Canonical: ints in the first (smallest) int encoding the suite lists; floats stay floats, as
          // float32 when that is exact (the suite does not always list the float32 form).
          // Positive ints use the unsigned forms (the suite lists d3-7f-ff.. first for 2^63-1, where
          // cf-7f-ff.. is as short), so for ints the smallest form comes from canonicalInt and must be
          // one the suite lists.
          let canonical: Uint8Array;
          if (klass(bytes) === 'float') canonical = smallestFloat(bytes);
          else if (klass(bytes) === 'int') {
            canonical = canonicalInt(intOf(bytes));
            expect(c.msgpack, enc).toContain(hex(canonical).replace(/(..)(?=.)/g, '$1-'));
            expect(canonical.length, enc).toBe(Math.min(...c.msgpack.map(fromSuiteHex).filter((b) => klass(b) === 'int').map((b) => b.length)));
          } else canonical = fromSuiteHex(c.msgpack[0]!);
          expect(hex(reply), enc).toBe(hex(okReply(canonical)));
        }
      }
    });
  }
});

describe('bounded decoding', () => {
  const valid = [
    request('echo', [0x93, 0x01, 0xa1, 0x61, 0xc4, 0x02, 0x01, 0x02]),
    request('echo', concat([0x82], mpStr('k'), [0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], mpStr('é'), [0x91, 0x80])),
    request('echo'),
    request('echo', concat([0xda, 0x00, 0x03], new TextEncoder().encode('abc'))),
  ];

  it('answers bad_request for every strict prefix of valid requests, and keeps working', () => {
    for (const req of valid) {
      expect(errCode(echo.call(req))).toBeUndefined();
      for (let n = 1; n < req.length; n++) {
        expect(errCode(echo.call(req.subarray(0, n))), `${hex(req)} prefix ${n}`).toBe('bad_request');
      }
      expect(errCode(echo.call(req))).toBeUndefined();
    }
    expect(echo.aborts).toEqual([]);
  });

  const bad: Array<[string, Uint8Array]> = [
    ['reserved 0xc1', request('echo', [0xc1])],
    ['fixext 1', request('echo', [0xd4, 0x01, 0x00])],
    ['ext 8', request('echo', [0xc7, 0x01, 0x05, 0x00])],
    ['ext 32 claiming 4 GiB', request('echo', [0xc9, 0xff, 0xff, 0xff, 0xff, 0x05])],
    ['timestamp 32', request('echo', [0xd6, 0xff, 0, 0, 0, 0])],
    ['bin32 claiming 4 GiB', request('echo', [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00])],
    ['str32 claiming 4 GiB', request('echo', [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])],
    ['array32 claiming 4G items', request('echo', [0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0])],
    ['map32 claiming 4G entries', request('echo', [0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0])],
    ['map32 with 2^31 entries (2n overflows u32)', request('echo', [0xdf, 0x80, 0x00, 0x00, 0x00, 0xc0, 0xc0])],
    ['bin8 one byte short', request('echo', [0xc4, 0x03, 0x01, 0x02])],
    ['invalid UTF-8 (lone continuation)', request('echo', [0xa1, 0x80])],
    ['invalid UTF-8 (overlong /)', request('echo', [0xa2, 0xc0, 0xaf])],
    ['invalid UTF-8 (surrogate)', request('echo', [0xa3, 0xed, 0xa0, 0x80])],
    ['invalid UTF-8 (above U+10FFFF)', request('echo', [0xa4, 0xf4, 0x90, 0x80, 0x80])],
    ['invalid UTF-8 (truncated sequence)', request('echo', [0xa2, 0xe2, 0x9d])],
    ['invalid UTF-8 in a map key', request('echo', [0x81, 0xa1, 0xff, 0xc0])],
    ['invalid UTF-8 in op', concat([0x81], mpStr('op'), [0xa1, 0xfe])],
    ['not a map', concat([0x92], mpStr('op'), mpStr('echo'))],
    ['non-string key', concat([0x82, 0x01], mpStr('echo'), mpStr('op'), mpStr('echo'))],
    ['missing op', concat([0x81], mpStr('args'), [0xc0])],
    ['empty op', concat([0x81], mpStr('op'), mpStr(''))],
    ['op over 64 bytes', concat([0x81], mpStr('op'), mpStr('e'.repeat(65)))],
    ['op not a string', concat([0x81], mpStr('op'), [0x01])],
    ['duplicate op', concat([0x82], mpStr('op'), mpStr('echo'), mpStr('op'), mpStr('echo'))],
    ['duplicate args', concat([0x83], mpStr('op'), mpStr('echo'), mpStr('args'), [1], mpStr('args'), [2])],
    ['trailing bytes', concat(request('echo', [0xc0]), [0xc0])],
    ['invalid value under an ignored key', concat([0x82], mpStr('op'), mpStr('echo'), mpStr('x'), [0xc1])],
    ['empty request', new Uint8Array([0x80])],
  ];
  for (const [name, req] of bad) {
    it(`bad_request: ${name}; the next call succeeds`, () => {
      expect(errCode(echo.call(req))).toBe('bad_request');
      expect(echo.call(request('echo', [0x2a]))).toEqual(okReply([0x2a]));
    });
  }

  it('counts depth: the envelope is level 1, so 31 nested arrays in args pass and 32 fail', () => {
    const nest = (n: number) => concat(new Array(n).fill(0x91), [0xc0]);
    expect(echo.call(request('echo', nest(31)))).toEqual(okReply(nest(31)));
    expect(errCode(echo.call(request('echo', nest(32))))).toBe('bad_request');
    expect(errCode(echo.call(request('echo', nest(100_000))))).toBe('bad_request');
    const maps = (n: number): Uint8Array => (n === 0 ? new Uint8Array([0xc0]) : concat([0x81, 0xa1, 0x6b], maps(n - 1)));
    expect(echo.call(request('echo', maps(31)))).toEqual(okReply(maps(31)));
    expect(errCode(echo.call(request('echo', maps(32))))).toBe('bad_request');
  });

  it('ignores unknown envelope keys, in any order', () => {
    const req = concat([0x83], mpStr('x'), [0x91, 0x01], mpStr('args'), [0x07], mpStr('op'), mpStr('echo'));
    expect(echo.call(req)).toEqual(okReply([0x07]));
  });

  it('answers unknown_op for an op without a handler', () => {
    expect(errCode(echo.call(request('nope', [0xc0])))).toBe('unknown_op');
    expect(errCode(echo.call(request('ech', [0xc0])))).toBe('unknown_op');
    expect(errCode(echo.call(request('echoo', [0xc0])))).toBe('unknown_op');
  });

  it('refuses alloc of 0 or over requestBytes, and a call outside the alloc buffer', () => {
    expect(echo.alloc(0)).toBe(0);
    expect(echo.alloc(-1)).toBe(0);
    expect(echo.alloc(1050001)).toBe(0);
    const p = echo.alloc(16);
    expect(p).not.toBe(0);
    expect(errCode(echo.readReply(echo.callAt(p + 8, 16)))).toBe('bad_request');
    expect(errCode(echo.readReply(echo.callAt(8, 4)))).toBe('bad_request');
    expect(errCode(echo.readReply(echo.callAt(p, 0)))).toBe('bad_request');
  });
});

describe('sizes', () => {
  for (const size of [0, 31, 32, 255, 256, 65535, 65536, 1 << 20]) {
    it(`echoes a ${size}-byte bin and str byte for byte`, () => {
      const data = new Uint8Array(size).map((_, i) => (i * 7 + 3) & 0xff);
      const bin =
        size < 256 ? concat([0xc4, size], data) : size < 65536 ? concat([0xc5, size >> 8, size & 0xff], data) : concat([0xc6, size >>> 24, (size >> 16) & 0xff, (size >> 8) & 0xff, size & 0xff], data);
      expect(hex(echo.call(request('echo', bin)))).toBe(hex(okReply(bin)));
      const str = mpStr('x'.repeat(size));
      expect(hex(echo.call(request('echo', str)))).toBe(hex(okReply(str)));
    });
  }

  it('refuses, with bad_request and no trap, requests within the byte limit that decode into more objects than memory allows', () => {
    const array32 = (n: number, item: number[]) =>
      concat([0xdd, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff], new Uint8Array(n * item.length).map((_, i) => item[i % item.length]!));
    // 300 000 uint8 values (600 kB on the wire, ~19 MB as objects) and 1 000 000 nils (4 MB of slots).
    expect(errCode(echo.call(request('echo', array32(300_000, [0xcc, 0xff]))))).toBe('bad_request');
    expect(errCode(echo.call(request('echo', array32(1_000_000, [0xc0]))))).toBe('bad_request');
    // Within the budget: 10 000 values.
    const ok = array32(10_000, [0xcd, 0x12, 0x34]);
    expect(hex(echo.call(request('echo', ok)))).toBe(hex(okReply(concat([0xdc, 0x27, 0x10], ok.subarray(5)))));
    expect(echo.aborts).toEqual([]);
  });
});
