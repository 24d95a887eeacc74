/**
 * The non-AssemblyScript enclave: test/fixtures/components/echo.wat, a core module written by hand
 * against the world `enclave` (wit/enclave.wit), made a component by `parse` → `componentEmbed` →
 * `componentNew` → contract (test/helpers/component-fixtures.ts). First the fixture itself, run
 * by jco's glue alone (so the tests below test the runtime, not a broken fixture); then the
 * runtime serving it end to end under fuel and memory limits in both isolation modes; then the
 * hostile components (decision 5 of issue 14's design: the result area is read with the host's
 * bounds checks) and the ones refused at load (beyond the world, an undeclared capability).
 */
import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { componentFixture, rawComponent, type RawComponent } from './helpers/component-fixtures.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const pack = (v: unknown): Uint8Array => new Uint8Array(packr.pack(v));
const bytes = (...b: number[]) => new Uint8Array(b);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** The error-code enum of wit/enclave.wit, by index. */
const BAD_REQUEST = 0;
const UNKNOWN_OP = 1;
const LIMIT = 4;

describe('the WAT echo itself (jco glue only, no runtime)', () => {
  let raw: RawComponent;
  const logs: Array<[string, string]> = [];
  const fills: number[] = [];

  it('builds and instantiates with random and log imports', async () => {
    raw = await rawComponent(await componentFixture('echo'), {
      'enclave:runtime/random': {
        fill: (len: number) => {
          fills.push(len);
          return len > 65536 ? { tag: 'err', val: 'invalid' } : new Uint8Array(len).map((_, i) => i & 0xff);
        },
      },
      'enclave:runtime/log': { log: (level: string, message: string) => void logs.push([level, message]) },
    });
  });

  it.each([
    ['nil', null],
    ['true', true],
    ['an int', -129],
    ['a uint64', 2n ** 63n],
    ['a float', 1.5],
    ['a string', 'héllo ✓'],
    ['a bin', bytes(0, 1, 2, 255)],
    ['a nested value', { a: [1, { b: 'c' }, [[[]]]], d: new Uint8Array(300) }],
  ])('echo answers %s with the args bytes as they are', (_, value) => {
    const request = pack({ op: 'echo', args: value });
    expect(raw.call(request)).toEqual({ tag: 'ok', bytes: pack(value) });
  });

  it('echo without args answers nil; other keys are ignored, in any order, with a map16 header', () => {
    expect(raw.call(pack({ op: 'echo' }))).toEqual({ tag: 'ok', bytes: bytes(0xc0) });
    expect(raw.call(pack({ x: [1, 2], args: 7, op: 'echo', y: { z: 1 } }))).toEqual({ tag: 'ok', bytes: bytes(7) });
    // {op: "echo", args: 5} under a map16 header
    const map16 = bytes(0xde, 0, 2, 0xa2, 0x6f, 0x70, 0xa4, 0x65, 0x63, 0x68, 0x6f, 0xa4, 0x61, 0x72, 0x67, 0x73, 5);
    expect(raw.call(map16)).toEqual({ tag: 'ok', bytes: bytes(5) });
  });

  it('an unknown op is err(unknown-op) with a message', () => {
    const r = raw.call(pack({ op: 'nope', args: 1 }));
    expect(r.tag === 'err' && [r.code, text(r.message)]).toEqual([UNKNOWN_OP, 'no handler for this op']);
  });

  const op = (name: string) => [0xa0 | name.length, ...new TextEncoder().encode(name)];
  const OP = [0xa2, 0x6f, 0x70];
  const ARGS = [0xa4, 0x61, 0x72, 0x67, 0x73];
  it.each([
    ['empty', bytes()],
    ['not a map', bytes(0xc0)],
    ['a truncated map', bytes(0x82, ...OP)],
    ['a map without op', pack({ args: 1 })],
    ['an op that is not a str', pack({ op: 1 })],
    ['an op twice', bytes(0x82, ...OP, ...op('echo'), ...OP, ...op('echo'))],
    ['args twice', bytes(0x83, ...OP, ...op('echo'), ...ARGS, 1, ...ARGS, 2)],
    ['a key that is not a str', bytes(0x82, ...OP, ...op('echo'), 1, 2)],
    ['a trailing byte', bytes(0x81, ...OP, ...op('echo'), 0xc0)],
    ['an ext value in args', bytes(0x82, ...OP, ...op('echo'), ...ARGS, 0xd4, 1, 0)],
    ['the unused byte 0xc1 in args', bytes(0x82, ...OP, ...op('echo'), ...ARGS, 0xc1)],
    ['an array count beyond the bytes', bytes(0x82, ...OP, ...op('echo'), ...ARGS, 0xdd, 0xff, 0xff, 0xff, 0xff, 1)],
    ['a map32 count that overflows when doubled', bytes(0x82, ...OP, ...op('echo'), ...ARGS, 0xdf, 0x80, 0, 0, 0)],
    ['a str32 length beyond the bytes', bytes(0x82, ...OP, ...op('echo'), ...ARGS, 0xdb, 0xff, 0xff, 0xff, 0xf0, 0x61)],
    ['a map count beyond the entries', bytes(0x8f, ...OP, ...op('echo'))],
    ['a map32 request count beyond the entries', bytes(0xdf, 0xff, 0xff, 0xff, 0xff, ...OP, ...op('echo'))],
    ['random with str args', pack({ op: 'random', args: 'x' })],
    ['log with int args', pack({ op: 'log', args: 1 })],
  ])('a malformed request (%s) is err(bad-request)', (_, request) => {
    const r = raw.call(request);
    expect(r.tag === 'err' && r.code).toBe(BAD_REQUEST);
  });

  it('count counts the calls of the instance', () => {
    const first = raw.call(pack({ op: 'count' }));
    const second = raw.call(pack({ op: 'count' }));
    expect(first.tag === 'ok' && second.tag === 'ok').toBe(true);
    expect(packr.unpack((second as { bytes: Uint8Array }).bytes)).toBe(packr.unpack((first as { bytes: Uint8Array }).bytes) + 1);
  });

  it('random answers the bytes of random.fill as a bin; a refused length is err(limit)', () => {
    expect(raw.call(pack({ op: 'random', args: 3 }))).toEqual({ tag: 'ok', bytes: bytes(0xc4, 3, 0, 1, 2) });
    const big = raw.call(pack({ op: 'random', args: 300 }));
    expect(big.tag === 'ok' && [...big.bytes.subarray(0, 3)]).toEqual([0xc5, 1, 44]);
    expect(big.tag === 'ok' && big.bytes.length).toBe(303);
    const refused = raw.call(pack({ op: 'random', args: 65537 }));
    expect(refused.tag === 'err' && [refused.code, text(refused.message)]).toEqual([LIMIT, 'random.fill refused the length']);
    expect(fills).toEqual([3, 300, 65537]);
  });

  it('log logs its str at level info and answers nil', () => {
    expect(raw.call(pack({ op: 'log', args: 'hello ✓' }))).toEqual({ tag: 'ok', bytes: bytes(0xc0) });
    expect(logs).toEqual([['info', 'hello ✓']]);
  });

  it('grow answers the memory maximum in pages (3)', () => {
    expect(raw.call(pack({ op: 'grow' }))).toEqual({ tag: 'ok', bytes: bytes(3) });
    expect(raw.memory.buffer.byteLength).toBe(3 * 65536);
  });

  it('trap traps, deep overflows the stack', async () => {
    expect(() => raw.call(pack({ op: 'trap' }))).toThrow(WebAssembly.RuntimeError);
    const fresh = await rawComponent(await componentFixture('echo'), {
      'enclave:runtime/random': { fill: () => new Uint8Array() },
      'enclave:runtime/log': { log: () => {} },
    });
    expect(() => fresh.call(pack({ op: 'deep' }))).toThrow(RangeError);
  });
});
