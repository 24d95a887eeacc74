// The msgpack boundary as a containment boundary (issue 9, findings 1, 5, 11, 12): nothing that
// reaches an enclave contains a byte the caller did not send, only plain data crosses, integers
// stay integers, and a reply costs the host at most its item and byte bounds to decode, checked
// before any object is built. Every case runs in both isolation modes.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_POLICY, EnclaveError, loadEnclave, type EnclaveHandle } from '../host/index.js';
import { compileShape } from '../runtime/contract.js';
import { checkReply, createPackr, encodeCall, requestFrame, unpackr } from '../runtime/marshal.js';
import { watModule } from './helpers/wat.js';

const ECHO = new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url);
const MODES = [
  ['in-process', {}],
  ['worker', { isolation: 'worker' as const, deadlineMs: 10_000 }],
] as const;

type Outcome = { code: string } | { value: unknown };
async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    return { value: await p };
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    return { code: err.code };
  }
}

/**
 * Replies with the raw bytes of its `args` bin: the request is `{op: "r", args: <bin>}` (fixmap,
 * "op", "r", "args": the bin header starts at byte 11), so a test chooses every reply byte.
 */
const REFLECT_WAT = `(module
  (memory (export "memory") 8 8)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
  (data (i32.const 0x108) "\\00\\00\\ff\\ff\\ff\\ff\\ff\\7f")
  (data (i32.const 0x200) "\\81\\a2ok\\c3")
  (func $be16 (param $p i32) (result i32)
    (i32.or (i32.shl (i32.load8_u (local.get $p)) (i32.const 8)) (i32.load8_u offset=1 (local.get $p))))
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $t i32)
    ;; op "x": a descriptor both outside memory and over the byte limit
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x78)) (then (return (i32.const 0x108))))
    (local.set $t (i32.load8_u offset=11 (local.get $p)))
    (if (i32.eq (local.get $t) (i32.const 0xc4)) (then
      (i32.store (i32.const 0x100) (i32.add (local.get $p) (i32.const 13)))
      (i32.store (i32.const 0x104) (i32.load8_u offset=12 (local.get $p)))))
    (if (i32.eq (local.get $t) (i32.const 0xc5)) (then
      (i32.store (i32.const 0x100) (i32.add (local.get $p) (i32.const 14)))
      (i32.store (i32.const 0x104) (call $be16 (i32.add (local.get $p) (i32.const 12))))))
    (if (i32.eq (local.get $t) (i32.const 0xc6)) (then
      (i32.store (i32.const 0x100) (i32.add (local.get $p) (i32.const 16)))
      (i32.store (i32.const 0x104) (i32.or
        (i32.shl (call $be16 (i32.add (local.get $p) (i32.const 12))) (i32.const 16))
        (call $be16 (i32.add (local.get $p) (i32.const 14)))))))
    (i32.const 0x100)))`;
const REFLECT_CONTRACT = {
  abi: 1,
  name: 'reflect',
  version: '0.0.1',
  svn: 0,
  capabilities: [] as string[],
  limits: { requestBytes: 400_000, replyBytes: 400_000, depth: 16, memoryPages: 8 },
  ops: { r: { args: { type: 'bin' } }, x: {} },
};

const be32 = (n: number) => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const str = (s: string) => {
  const b = new TextEncoder().encode(s);
  return [0xa0 | b.length, ...b];
};
const OK = str('ok');
/** `{ok: [nil × n]}` as an array32: n + 9 bytes that would decode into n values. */
const manyNils = (n: number) => {
  const out = new Uint8Array(9 + n).fill(0xc0);
  out.set([0x81, ...OK, 0xdd, ...be32(n)]);
  return out;
};

describe.each(MODES)('the msgpack boundary (%s)', (_mode, options) => {
  let echo: EnclaveHandle;
  let reflect: EnclaveHandle;
  let reflectBytes: Uint8Array;
  beforeAll(async () => {
    echo = await loadEnclave(await readFile(ECHO), options);
    reflectBytes = await watModule(REFLECT_WAT, REFLECT_CONTRACT);
    reflect = await loadEnclave(reflectBytes, options);
  });
  afterAll(async () => {
    await echo?.close();
    await reflect?.close();
  });

  /** Fills msgpackr's process-wide buffer with recognisable bytes, as another tenant's request would. */
  const prime = () => new Packr().pack({ secret: 'S'.repeat(8192) });

  describe('finding 1: no byte the caller did not send reaches the enclave', () => {
    const views: Array<[string, () => unknown]> = [
      ['Float64Array', () => new Float64Array([1, 2, 3])],
      ['Float32Array', () => new Float32Array([1, 2, 3])],
      ['Uint16Array', () => new Uint16Array([1, 2, 3])],
      ['Int32Array', () => new Int32Array([1, 2, 3])],
      ['BigInt64Array', () => new BigInt64Array([1n])],
      ['Uint8ClampedArray', () => new Uint8ClampedArray([1, 2, 3])],
      ['DataView', () => new DataView(new ArrayBuffer(24))],
      ['ArrayBuffer', () => new ArrayBuffer(24)],
      ['nested Float64Array', () => ({ a: [1, { b: new Float64Array(16) }] })],
    ];
    for (const [what, make] of views) {
      it(`${/^[AEIOU]/.test(what) ? 'an' : 'a'} ${what} argument is invalid_args, and the enclave never sees a stale byte`, async () => {
        prime();
        const got = await outcome(echo.call('echo', make()));
        if ('value' in got) {
          // What the enclave echoed is what it received: not one byte of the primed buffer.
          expect(Buffer.from(JSON.stringify(got.value, (_k, v) => (v instanceof Uint8Array ? [...v] : v))).includes('83,83,83')).toBe(false);
        }
        expect(got).toEqual({ code: 'invalid_args' });
      });
    }

    it('a Uint8Array and a Buffer cross byte for byte, with nothing after them', async () => {
      prime();
      const bytes = Uint8Array.of(1, 2, 3);
      const back = (await echo.call('echo', { u: bytes, b: Buffer.from([4, 5]) })) as { u: Uint8Array; b: Uint8Array };
      expect([...back.u]).toEqual([1, 2, 3]);
      expect([...back.b]).toEqual([4, 5]);
    });
  });

  describe('finding 11: only plain data crosses', () => {
    class Point {
      x = 1;
    }
    const refused: Array<[string, unknown]> = [
      ['a function', () => 1],
      ['a symbol', Symbol('s')],
      ['a RegExp', /x/],
      ['an Error', new Error('e')],
      ['a Set', new Set([1])],
      ['a Map', new Map([['a', 1]])],
      ['a Date', new Date(0)],
      ['a class instance', new Point()],
      ['a Promise', Promise.resolve(1)],
      ['a boxed number', Object(1)],
      ['a bigint beyond 64 bits', 2n ** 64n],
      ['a bigint below -2^63', -(2n ** 63n) - 1n],
      ['a function inside an array', [1, () => 1]],
      ['a RegExp inside a map', { a: { b: /x/ } }],
    ];
    for (const [what, value] of refused) {
      it(`${what} is invalid_args`, async () => {
        expect(await outcome(echo.call('echo', value))).toEqual({ code: 'invalid_args' });
      });
    }

    it('plain data crosses: null-prototype objects, nested arrays and maps, strings, booleans', async () => {
      const bare = Object.assign(Object.create(null) as object, { a: 1 });
      expect(await echo.call('echo', { bare, list: [null, true, 'é🙂', [[]], {}] })).toEqual({ bare: { a: 1 }, list: [null, true, 'é🙂', [[]], {}] });
    });

    it('undefined: an omitted map value (as the shape check treats it), nil in an array', async () => {
      expect(await echo.call('echo', { a: undefined, b: 1 })).toEqual({ b: 1 });
      // eslint-disable-next-line no-sparse-arrays
      expect(await echo.call('echo', [undefined, 1, , 2])).toEqual([null, 1, null, 2]);
    });

    it('a cyclic argument is invalid_args, not a stack overflow', async () => {
      const a: Record<string, unknown> = {};
      a.self = a;
      expect(await outcome(echo.call('echo', a))).toEqual({ code: 'invalid_args' });
      const list: unknown[] = [];
      list.push(list);
      expect(await outcome(echo.call('echo', list))).toEqual({ code: 'invalid_args' });
    });

    it('a sparse array of 2^32-1 holes is too_large at once, without walking it', async () => {
      expect(await outcome(echo.call('echo', new Array(2 ** 32 - 1)))).toEqual({ code: 'too_large' });
    });

    it('integers beyond 32 bits round-trip as integers: number up to 2^53, bigint beyond', async () => {
      for (const n of [2 ** 31, 2 ** 32, 2 ** 40, -(2 ** 40), Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
        expect(await echo.call('echo', n)).toBe(n);
      }
      expect(await echo.call('echo', 2 ** 60)).toBe(2n ** 60n);
      expect(await echo.call('echo', 2n ** 64n - 1n)).toBe(2n ** 64n - 1n);
      expect(await echo.call('echo', -(2n ** 63n))).toBe(-(2n ** 63n));
      expect(await echo.call('echo', 5n)).toBe(5);
      expect(await echo.call('echo', 1.5)).toBe(1.5);
      expect(Object.is(await echo.call('echo', -0), 0)).toBe(true);
    });

    it('bin replies are Uint8Array, never Buffer', async () => {
      const back = await echo.call('echo', Buffer.from([1, 2, 3]));
      expect(Object.getPrototypeOf(back)).toBe(Uint8Array.prototype);
      const nested = (await echo.call('echo', { a: [new Uint8Array(300)] })) as { a: Uint8Array[] };
      expect(Object.getPrototypeOf(nested.a[0])).toBe(Uint8Array.prototype);
    });
  });

  describe('finding 11: reply map keys are decoded faithfully or refused', () => {
    const replyWith = (bytes: number[]) => reflect.call('r', Uint8Array.from(bytes));

    it('a __proto__ key is an own property, not __proto_ and not the prototype', async () => {
      const value = (await replyWith([0x81, ...OK, 0x82, ...str('__proto__'), 0x81, ...str('admin'), 0xc3, ...str('__proto_'), 0x02])) as Record<string, unknown>;
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect(Object.keys(value)).toEqual(['__proto__', '__proto_']);
      expect(Object.getOwnPropertyDescriptor(value, '__proto__')?.value).toEqual({ admin: true });
      expect(value.__proto_).toBe(2);
      expect((value as { admin?: unknown }).admin).toBeUndefined();
      expect(({} as { admin?: unknown }).admin).toBeUndefined();
    });

    it('an integer key 1 beside a string key "1" is bad_reply, never merged', async () => {
      expect(await outcome(replyWith([0x81, ...OK, 0x82, 0x01, 0xa1, 0x61, ...str('1'), 0xa1, 0x62]))).toEqual({ code: 'bad_reply' });
    });

    it('any non-string key is bad_reply: int, nil, bin, array', async () => {
      for (const key of [[0x01], [0xc0], [0xc4, 0x01, 0x61], [0x90]]) {
        expect(await outcome(replyWith([0x81, ...OK, 0x81, ...key, 0x01]))).toEqual({ code: 'bad_reply' });
      }
    });

    it('a key twice in one map is bad_reply', async () => {
      expect(await outcome(replyWith([0x81, ...OK, 0x82, ...str('a'), 0x01, ...str('a'), 0x02]))).toEqual({ code: 'bad_reply' });
      // The same key in two different maps is fine.
      expect(await replyWith([0x81, ...OK, 0x92, 0x81, ...str('a'), 0x01, 0x81, ...str('a'), 0x02])).toEqual([{ a: 1 }, { a: 2 }]);
    });

    it('an err map with extra keys: the code and message count, the rest is ignored', async () => {
      const err = [0x81, ...str('err'), 0x83, ...str('code'), ...str('denied'), ...str('message'), ...str('no'), ...str('extra'), 0x01];
      await expect(replyWith(err)).rejects.toMatchObject({ code: 'denied', detail: 'no' });
    });
  });

  describe('finding 5: a reply costs the host at most its item bound, checked before decoding', () => {
    it(`a reply of more than the default ${DEFAULT_POLICY.replyItems} items is too_large, and msgpackr builds nothing`, async () => {
      const unpack = vi.spyOn(unpackr, 'unpack');
      try {
        expect(await outcome(reflect.call('r', manyNils(200_000)))).toEqual({ code: 'too_large' });
        expect(unpack).not.toHaveBeenCalled();
      } finally {
        unpack.mockRestore();
      }
      // The instance is kept (a limit, not a broken enclave).
      expect(await reflect.call('r', manyNils(10))).toEqual(new Array(10).fill(null));
    });

    it('the bound counts every value, the envelope included, and is settable by policy', async () => {
      const small = await loadEnclave(reflectBytes, { ...options, policy: { replyItems: 13 } });
      try {
        expect(await small.call('r', manyNils(10))).toHaveLength(10); // map, "ok", array, 10 nils
        expect(await outcome(small.call('r', manyNils(11)))).toEqual({ code: 'too_large' });
      } finally {
        await small.close();
      }
    });

    it('a reply both outside memory and over the byte limit is too_large (the length is checked first, nothing is read)', async () => {
      expect(await outcome(reflect.call('x'))).toEqual({ code: 'too_large' });
      expect(await reflect.call('r', manyNils(1))).toEqual([null]); // and the instance is kept
    });

    it('the first fault in the bytes decides, and the check stops at the bound: a fault past it is too_large, before it bad_reply', async () => {
      const late = manyNils(200_000);
      late[late.length - 1] = 0xc1;
      expect(await outcome(reflect.call('r', late))).toEqual({ code: 'too_large' });
      const early = manyNils(200_000);
      early[20] = 0xc1;
      expect(await outcome(reflect.call('r', early))).toEqual({ code: 'bad_reply' });
    });
  });
});

describe('the request encoder', () => {
  const limits = { requestBytes: 1 << 20, depth: 8 };
  const any = () => undefined;

  it("one enclave's encoded request is not changed by another enclave's encode (no shared buffer)", () => {
    const a = createPackr();
    const b = createPackr();
    const mine = encodeCall(a, 'echo', requestFrame('echo'), any, 'mine'.repeat(10), limits);
    const copy = Buffer.from(mine.buffer.subarray(mine.start, mine.end));
    encodeCall(b, 'echo', requestFrame('echo'), any, 'theirs'.repeat(100), limits);
    new Packr().pack('other'.repeat(1000));
    expect(Buffer.compare(mine.buffer.subarray(mine.start, mine.end), copy)).toBe(0);
  });

  it('an int shape takes a bigint within 64 bits (a reply beyond 2^53 can be sent back) and checks its bounds', () => {
    const int = compileShape({ type: 'int', min: 0 });
    expect(int(2n ** 60n)).toBeUndefined();
    expect(int(2n ** 64n - 1n)).toBeUndefined();
    expect(int(2n ** 64n)).toMatch(/integer/);
    expect(int(-1n)).toMatch(/at least 0/);
    expect(compileShape({ type: 'int' })(-(2n ** 63n))).toBeUndefined();
    expect(compileShape({ type: 'int' })(1.5)).toMatch(/integer/);
    expect(compileShape({ type: 'int' })(2 ** 53)).toMatch(/integer/); // not exact as a number: send a bigint
    expect(compileShape({ type: 'float' })(1n)).toMatch(/finite number/);
  });

  it("a getter or proxy of the caller's that throws is invalid_args, in the shape check as in the encoder", () => {
    const hostile = Object.defineProperty({}, 'by', {
      enumerable: true,
      get() {
        throw new RangeError('from a getter');
      },
    });
    const shaped = compileShape({ type: 'map', fields: { by: { type: 'int' } } });
    for (const check of [shaped, any]) {
      expect(() => encodeCall(createPackr(), 'go', requestFrame('go'), check, hostile, limits)).toThrow(expect.objectContaining({ code: 'invalid_args' }));
    }
    const proxy = new Proxy({}, { ownKeys: () => { throw new RangeError('from a trap'); } });
    expect(() => encodeCall(createPackr(), 'go', requestFrame('go'), any, proxy, limits)).toThrow(expect.objectContaining({ code: 'invalid_args' }));
  });

  it('a string that fits only just is not refused for its worst case, and one byte more is too_large', () => {
    const small = { requestBytes: 1000, depth: 8 };
    const header = requestFrame('go').withArgs.length;
    const fits = 'x'.repeat(1000 - header - 3); // str16 header: 3 bytes
    const { start, end } = encodeCall(createPackr(), 'go', requestFrame('go'), any, fits, small);
    expect(end - start).toBe(1000);
    expect(() => encodeCall(createPackr(), 'go', requestFrame('go'), any, `${fits}x`, small)).toThrow(expect.objectContaining({ code: 'too_large' }));
  });

  it('encodes integers as msgpack integers (int64/uint64 beyond 32 bits), never float64', () => {
    const enc = createPackr();
    const argsOf = (v: unknown) => {
      const { buffer, start, end } = encodeCall(enc, 'go', requestFrame('go'), any, v, limits);
      return [...buffer.subarray(start + requestFrame('go').withArgs.length, end)];
    };
    expect(argsOf(2 ** 31)).toEqual([0xce, 0x80, 0, 0, 0]);
    expect(argsOf(2 ** 40)).toEqual([0xcf, 0, 0, 1, 0, 0, 0, 0, 0]);
    expect(argsOf(-(2 ** 40))).toEqual([0xd3, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0]);
    expect(argsOf(2 ** 63)).toEqual([0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0]);
    expect(argsOf(-(2 ** 63))).toEqual([0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0]);
    expect(argsOf(2 ** 64)[0]).toBe(0xcb); // not representable as an integer: float64
    expect(argsOf(1.5)[0]).toBe(0xcb);
    expect(argsOf(-0)).toEqual([0x00]);
    expect(argsOf(-33)).toEqual([0xd0, 0xdf]);
    expect(argsOf(300n)).toEqual([0xcd, 0x01, 0x2c]);
  });

  it('agrees with msgpackr byte for byte on plain data it encodes canonically', () => {
    const enc = createPackr();
    const reference = new Packr({ useRecords: false, variableMapSize: true });
    const values = [null, true, 0, -1, 127, 128, 255, 256, 65535, 65536, -32, -129, -32769, 2 ** 31 - 1, -(2 ** 31), 0.5, 'a', 'x'.repeat(31), 'x'.repeat(32), 'é'.repeat(100), 'é'.repeat(30_000), '🙂'.repeat(40), 'y'.repeat(70_000), [1, [2]], { a: 1, b: [{}] }, new Uint8Array(300)];
    for (const v of values) {
      const { buffer, start, end } = encodeCall(enc, 'go', requestFrame('go'), any, v, limits);
      expect(Buffer.from(buffer.subarray(start, end)).toString('hex')).toBe(Buffer.from(reference.pack({ op: 'go', args: v })).toString('hex'));
    }
  });
});

describe('enclave run --input-file (finding 1, remote route)', () => {
  const run = promisify(execFile);
  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['dist/host/cli/main.js', ...args]);
      return { code: 0, stdout, stderr };
    } catch (err) {
      return err as { code: number; stdout: string; stderr: string };
    }
  }

  it('refuses msgpack extensions (0x74 would be a Float64Array): only plain data comes in', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'enclave-mp-'));
    const file = path.join(dir, 'args.msgpack');
    // {a: <ext 0x74: Float64Array [1, 2]>}, as msgpackr writes it with moreTypes.
    await writeFile(file, Buffer.from('81a161c7117408000000000000f03f0000000000000040', 'hex'));
    const r = await cli('run', ECHO.pathname, 'echo', '--input-file', file);
    expect(r.stdout).toBe('');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^error\[usage\][\s\S]*extension types are not allowed/);
    await writeFile(file, Buffer.from('81a9' + Buffer.from('__proto__').toString('hex') + '01', 'hex'));
    const ok = await cli('run', ECHO.pathname, 'echo', '--input-file', file, '--compact');
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim()).toBe('{"__proto__":1}');
  });
});

describe('checkReply: map keys a JS object would merge', () => {
  const enc = (v: unknown) => createPackr().pack(v);
  const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
  /** `{...}` with `extra` appended as one more raw key/value pair (the map header counts it). */
  const withKey = (n: number, key: number[]) => {
    const body = enc(keys(n));
    const head = n + 1 < 16 ? [0x80 | (n + 1)] : [0xde, (n + 1) >> 8, (n + 1) & 0xff];
    return Uint8Array.from([...head, ...body.subarray(n < 16 ? 1 : 3), ...key, 0xc0]);
  };

  it('finds a repeated key in small maps (bytes compared) and large ones (a set), at any position', () => {
    for (const n of [1, 5, 15, 16, 17, 40, 300]) {
      expect(checkReply(enc(keys(n)), 8)).toBeUndefined();
      expect(checkReply(withKey(n, [0xa2, 0x6b, 0x30]), 8)).toBe('a map has a key twice'); // "k0" again
      expect(checkReply(withKey(n, [0xa1, 0x6b]), 8)).toBeUndefined(); // "k" is new
    }
  });

  it('keys are per map: the same key in a parent and a child, or in two siblings, is fine', () => {
    expect(checkReply(enc({ a: { a: 1, b: { a: 2, b: 3 } }, b: [{ a: 1, b: 2 }, { a: 1, b: 2 }], c: keys(20), d: keys(20) }), 8)).toBeUndefined();
  });

  it('a key of invalid UTF-8 is refused (two such keys would decode to the same U+FFFD string)', () => {
    expect(checkReply(Uint8Array.from([0x82, 0xa1, 0xff, 0x01, 0xa1, 0xfe, 0x02]), 8)).toBe('a map key is not valid UTF-8');
    expect(checkReply(Uint8Array.from([0x81, 0xa2, 0xc3, 0xa9, 0x01]), 8)).toBeUndefined(); // "é"
  });
});
