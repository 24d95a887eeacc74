// Review (helper R3) of the request encoder and the reply checker (issue 9, findings 1, 5, 11):
// hostile callers and hostile enclaves against runtime/marshal.ts. Each test is named after what
// it guards and failed before its fix.

import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadEnclave } from '../host/index.js';
import { compileShape } from '../runtime/contract.js';
import { EnclaveError } from '../core/index.js';
import { encodeCall, RequestEncoder, requestFrame } from '../runtime/marshal.js';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    return err.code;
  }
}

describe('request encoder: work bounded by requestBytes', () => {
  it('keys whose value is undefined count against the limit, so a shared object of such keys cannot make the walk quadratic', () => {
    // An object of 200 keys whose values are undefined writes only its header; an array of
    // 1 000 references to it was walked ~300 times (58 000 reads for a 1 KiB request; with the
    // default 64 KiB, 16 384 keys x 21 845 references held the host thread 40 s).
    let reads = 0;
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const target: Record<string, undefined> = Object.fromEntries(keys.map((k) => [k, undefined]));
    const shared = new Proxy(target, {
      get(t, k) {
        reads++;
        return Reflect.get(t, k);
      },
    });
    const args = new Array<unknown>(1000).fill(shared);
    const code = codeOf(() => new RequestEncoder().encode('op', new Uint8Array(0), args, { requestBytes: 1024, depth: 32 }));
    expect(code).toBe('too_large');
    expect(reads).toBeLessThanOrEqual(1024 + 256);
  });
});

describe('request encoder: an object referenced many times', () => {
  it('lists the keys of an object a bounded number of times per request, so hidden (non-enumerable or symbol) properties cannot multiply the walk', () => {
    // Object.keys costs every own property, enumerable or not: 100 000 hidden properties on one
    // object referenced 2 000 times held the host thread 10 s (about 5 min for a 64 KiB request)
    // while writing one byte per reference.
    let listed = 0;
    const target = { a: 1 };
    const shared = new Proxy(target, {
      ownKeys(t) {
        listed++;
        return Reflect.ownKeys(t);
      },
    });
    const encoded = new RequestEncoder().encode('op', new Uint8Array(0), new Array<unknown>(500).fill(shared), { requestBytes: 65_536, depth: 32 });
    expect(encoded.end).toBeGreaterThan(500 * 4);
    expect(listed).toBeLessThanOrEqual(17); // the first 16 maps of a request are listed directly, then once each
  });

  it('sends a shared object the same at every reference', () => {
    const shared = { x: 1, y: 'two' };
    const value = new RequestEncoder().pack([shared, { in: shared }, shared]);
    expect(value).toEqual(new RequestEncoder().pack([{ x: 1, y: 'two' }, { in: { x: 1, y: 'two' } }, { x: 1, y: 'two' }]));
  });
});

describe('shape check: work bounded by requestBytes', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const limits = { requestBytes: 1024, depth: 32 };

  it('refuses a sparse array under an array shape without reading its holes (too_large, as the encoder would)', () => {
    // The check read every hole before the encoder's byte bound was reached: 2^32 - 1 holes under
    // an array of nullable ints held the host thread about 6 minutes.
    const check = compileShape({ type: 'array', items: { type: 'int', nullable: true } });
    const reads = vi.spyOn(Object, 'getOwnPropertyDescriptor');
    const code = codeOf(() => encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, new Array(1_000_000), limits));
    expect(code).toBe('too_large');
    expect(reads.mock.calls.length).toBeLessThanOrEqual(4 * 1024);
  });

  it('lists the keys of a map referenced many times once per call', () => {
    // One object of 100 000 non-enumerable properties in 1 000 places of an array of maps held the
    // host thread 2.6 s: the undeclared-key check listed all its properties at every place.
    const check = compileShape({ type: 'array', items: { type: 'map', fields: { a: { type: 'int' } } } });
    const shared = { a: 1 };
    const keys = vi.spyOn(Object, 'keys');
    const encoded = encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, new Array(100).fill(shared), { requestBytes: 65_536, depth: 32 });
    expect(encoded.end - encoded.start).toBeGreaterThan(100 * 4);
    // Once by the check; by the encoder, directly for the first 16 maps and then once.
    expect(keys.mock.calls.filter(([o]) => o === shared).length).toBeLessThanOrEqual(1 + 17);
  });

  it('counts the strings it measures against the request size, so a long string in many places is measured a bounded number of times', () => {
    // A str shape of maxLength 65 536 measures a 30 000-unit string by encoding it; 100 000 places
    // of one such string were each measured (a second per call at the default 64 KiB limit, and
    // far more under a larger one) before the encoder's byte bound refused the request.
    const check = compileShape({ type: 'array', items: { type: 'str', maxLength: 65_536 } });
    const measured = vi.spyOn(TextEncoder.prototype, 'encode');
    const code = codeOf(() => encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, new Array(1000).fill('x'.repeat(30_000)), { requestBytes: 65_536, depth: 32 }));
    expect(code).toBe('too_large');
    expect(measured.mock.calls.length).toBeLessThanOrEqual(5);
  });

  it('still accepts a request that fits, whatever it checks', () => {
    const check = compileShape({ type: 'array', items: { type: 'map', fields: { a: { type: 'int' }, b: { type: 'int' } }, required: ['a'] } });
    const args = Array.from({ length: 100 }, (_, i) => ({ a: i, b: undefined }));
    const encoded = encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, args, { requestBytes: 1024, depth: 32 });
    expect(encoded.end - encoded.start).toBeLessThanOrEqual(1024);
  });
});

describe('request encoder: map keys', () => {
  it('refuses a map key with a lone surrogate, which as U+FFFD could repeat another key of the map', () => {
    // {"\ud800": 1, "\udc00": 2} was sent as a map with the key EF BF BD twice: the guest sees
    // one key twice where the host checked two different ones.
    expect(codeOf(() => new RequestEncoder().pack({ '\ud800': 1, '\udc00': 2 }))).toBe('invalid_args');
    expect(codeOf(() => new RequestEncoder().pack({ a: { 'x\udbff': 1 } }))).toBe('invalid_args');
    expect(codeOf(() => new RequestEncoder().pack({ ['y'.repeat(70) + '\udc00']: 1 }))).toBe('invalid_args');
    // A shape check passes "\ufffd" <= 10; the second key would have reached the guest as "\ufffd" too.
    const check = compileShape({ type: 'map', fields: { '\ufffd': { type: 'int', max: 10 } }, additional: true });
    const args = { '\ufffd': 5, '\ud800': 1_000_000 };
    expect(codeOf(() => encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, args, { requestBytes: 1024, depth: 32 }))).toBe('invalid_args');
  });

  it('still sends keys of well-formed text, astral characters included, and values with a lone surrogate as U+FFFD', () => {
    const packed = new RequestEncoder().pack({ '😀': '\ud800', ['é'.repeat(70)]: 1 });
    expect(packed.includes(Buffer.from('😀'))).toBe(true);
    expect(packed.includes(Buffer.from([0xef, 0xbf, 0xbd]))).toBe(true);
  });
});

describe('shape check: what it passes is what is sent', () => {
  it('measures a bin by its own bytes, not by a length property the caller set on it', () => {
    // A Uint8Array of 1 000 bytes with an own "length" of 16 passed a bin of maxLength 32 and was
    // sent whole: the encoder rightly reads the intrinsic length.
    const check = compileShape({ type: 'bin', maxLength: 32 });
    const big = new Uint8Array(1000);
    Object.defineProperty(big, 'length', { value: 16 });
    expect(codeOf(() => encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, big, { requestBytes: 65_536, depth: 32 }))).toBe('invalid_args');
    const shadowed = new (class extends Uint8Array {
      override get length(): number {
        return 1;
      }
    })(64);
    expect(codeOf(() => encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, shadowed, { requestBytes: 65_536, depth: 32 }))).toBe('invalid_args');
    expect(encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, new Uint8Array(32), { requestBytes: 65_536, depth: 32 }).end).toBeGreaterThan(32);
  });

  it('does not take a Uint8Array whose prototype was changed for a map (the encoder sends it as a bin)', () => {
    const check = compileShape({ type: 'map', additional: true });
    const bytes = Object.setPrototypeOf(new Uint8Array(8), Object.prototype) as object;
    expect(codeOf(() => encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, bytes, { requestBytes: 65_536, depth: 32 }))).toBe('invalid_args');
  });
});

describe('shape check: a field it passes is a field that is sent', () => {
  it('treats a non-enumerable field as absent, as the encoder does (it sends own enumerable keys only)', () => {
    // A required field defined non-enumerable passed the check and was not sent: the guest got {}.
    const check = compileShape({ type: 'map', fields: { a: { type: 'int', max: 10 } } });
    const args = Object.defineProperty({}, 'a', { value: 5, enumerable: false });
    expect(codeOf(() => encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, args, { requestBytes: 1024, depth: 32 }))).toBe('invalid_args');
    expect(encodeCall(new RequestEncoder(), 'op', requestFrame('op'), check, { a: 5 }, { requestBytes: 1024, depth: 32 }).end).toBeGreaterThan(0);
  });
});

describe('re-entrancy: an argument getter', () => {
  const ECHO = new URL('../enclave-modules/echo/build/echo.wasm', import.meta.url);
  for (const [mode, options] of [
    ['in-process', {}],
    ['worker', { isolation: 'worker' as const, deadlineMs: 10_000 }],
  ] as const) {
    it(`that closes the enclave ends the call with closed, and no instance is made after close (${mode})`, async () => {
      // In-process, the call went on: a fresh instance was made for a closed enclave and answered.
      const enclave = await loadEnclave(await readFile(ECHO), options);
      try {
        const args = {
          get x(): number {
            void enclave.close();
            return 1;
          },
        };
        await expect(enclave.call('echo', args)).rejects.toMatchObject({ code: 'closed' });
      } finally {
        await enclave.close();
      }
    });

    it(`that calls the same enclave gets invalid_args for that inner call, and the outer call is sent intact (${mode})`, async () => {
      const enclave = await loadEnclave(await readFile(ECHO), options);
      try {
        let inner: Promise<unknown> | undefined;
        const args = {
          a: 'outer',
          get b(): string {
            inner = enclave.call('echo', { c: 'inner'.repeat(50) });
            inner.catch(() => undefined);
            return 'b';
          },
          d: [1, 2, 3],
        };
        expect(await enclave.call('echo', args)).toEqual({ a: 'outer', b: 'b', d: [1, 2, 3] });
        const settled = await inner!.then(
          (value) => ({ value }),
          (err: EnclaveError) => ({ code: err.code }),
        );
        // In-process the inner call meets the busy encoder; in worker mode it waits its turn.
        expect(settled).toEqual(mode === 'worker' ? { value: { c: 'inner'.repeat(50) } } : { code: 'invalid_args' });
      } finally {
        await enclave.close();
      }
    });
  }
});

describe('reply decoding: the same value whichever msgpackr string path runs', () => {
  it('keeps a leading U+FEFF in keys and values, so two keys the check found different are never merged (msgpackr without its native extractor)', async () => {
    // msgpackr's JS string path (msgpackr-extract missing on the platform, or disabled) decodes a
    // str over 64 bytes with a default TextDecoder, which drops a leading BOM: the keys
    // "\ufeff" + "a" x 100 and "a" x 100, checked as two keys, became one (the second value won).
    const script = `
      const { decodeReply } = await import(${JSON.stringify(new URL('../dist/runtime/marshal.js', import.meta.url).href)});
      const str = (s) => { const b = Buffer.from(s); return Buffer.concat([Buffer.from([0xd9, b.length]), b]); };
      const bytes = Buffer.concat([Buffer.from([0x81, 0xa2, 0x6f, 0x6b, 0x83]), str('\\ufeff' + 'a'.repeat(100)), Buffer.from([1]),
        str('a'.repeat(100)), Buffer.from([2]), Buffer.from([0xa1, 0x76]), str('\\ufeff' + 'b'.repeat(100))]);
      const value = decodeReply(new Uint8Array(bytes), 0, bytes.length, { depth: 32, replyItems: 100 });
      console.log(JSON.stringify({ keys: Object.keys(value).length, first: Object.keys(value)[0].charCodeAt(0), v: value.v.length }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: 'true' },
    });
    expect(JSON.parse(stdout)).toEqual({ keys: 3, first: 0xfeff, v: 101 });
  });
});
