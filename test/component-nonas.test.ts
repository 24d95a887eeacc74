/**
 * The non-AssemblyScript enclave: test/fixtures/components/echo.wat, a core module written by hand
 * against the world `enclave` (wit/enclave.wit), made a component by `parse` → `componentEmbed` →
 * `componentNew` → contract (test/helpers/component-fixtures.ts). First the fixture itself, run
 * by jco's glue alone (so the tests below test the runtime, not a broken fixture); then the
 * runtime serving it end to end under fuel and memory limits in both isolation modes; then the
 * hostile components (decision 5 of issue 14's design: the result area is read with the host's
 * bounds checks) and the ones refused at load (beyond the world, an undeclared capability).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { DISCARDING_CODES, EnclaveError, type ErrorCode } from '../core/index.js';
import type { EnclaveHandle } from '../host/index.js';
import {
  beyondWorldComponent,
  componentFixture,
  fixtureContract,
  fixtureWat,
  MINIMAL_COMPONENT_CONTRACT,
  minimalComponentWat,
  rawComponent,
  sealImportingComponent,
  watComponent,
  type RawComponent,
} from './helpers/component-fixtures.js';
import { codeOf } from './helpers/errors.js';
import { loadIn, MODES } from './helpers/modes.js';

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

  it('the handler probe: nil for an op with a handler, without running it; unknown-op otherwise', () => {
    const nil = { tag: 'ok', bytes: bytes(0xc0) };
    for (const op of ['echo', 'count', 'spin', 'grow', 'deep', 'trap', 'random', 'log']) {
      expect(raw.call(pack({ op, probe: true }))).toEqual(nil);
    }
    const r = raw.call(pack({ op: 'missing', probe: true }));
    expect(r.tag === 'err' && r.code).toBe(UNKNOWN_OP);
    // a probe of any other value is an ignored key: the op runs
    expect(raw.call(pack({ op: 'echo', args: 5, probe: 1 }))).toEqual({ tag: 'ok', bytes: bytes(5) });
    expect(raw.call(pack({ op: 'echo', args: 6, probe: false }))).toEqual({ tag: 'ok', bytes: bytes(6) });
    // and a malformed request is still bad-request
    const truncated = raw.call(bytes(0x82, 0xa5, ...new TextEncoder().encode('probe'), 0xc3, 0xa2, 0x6f, 0x70));
    expect(truncated.tag === 'err' && truncated.code).toBe(BAD_REQUEST);
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

describe('the hostile fixture itself (jco glue only)', () => {
  it('each op of its contract has its own first letter, the byte the WAT dispatches on', () => {
    const letters = Object.keys(fixtureContract('hostile').ops).map((op) => op[0]);
    expect(new Set(letters).size).toBe(letters.length);
  });

  it.each([
    ['ok', undefined, 'ok 5'],
    ['edge', undefined, 'ok 5'],
    ['misaligned', undefined, 'Error: result area at 258'],
    ['area_oob', undefined, 'Error: result area at 65528'],
    ['disc_bad', undefined, 'Error: discriminant 2'],
    ['disc_bad', 7, 'Error: discriminant 7'],
    ['fail', 9, 'err 9 19'],
    ['list_oob', undefined, 'Error: list [65532, +100) outside memory'],
    ['reply_size', 300, 'ok 300'],
    ['nowhere_message', undefined, 'Error: list [65536, +4) outside memory'],
    ['so_long_message', undefined, 'err 2 2000'],
    ['utf8_bad', undefined, 'err 2 17'],
  ])('%s %s: %s', async (op, args, expected) => {
    const raw = await rawComponent(await componentFixture('hostile'));
    let got: string;
    try {
      const r = raw.call(pack(args === undefined ? { op } : { op, args }));
      got = r.tag === 'ok' ? `ok ${r.bytes.length}` : `err ${r.code} ${r.message.length}`;
    } catch (err) {
      got = String(err);
    }
    expect(got).toBe(expected);
  });
});

/** The value a call resolved with, or `{code, detail}` of the EnclaveError it rejected with. */
async function outcome(call: Promise<unknown>): Promise<unknown> {
  try {
    return await call;
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    return { code: err.code, detail: err.detail };
  }
}

const ECHO_CAPS = { capabilities: ['random', 'log'] };

describe.each(MODES)('the WAT echo served by the runtime ($name)', (mode) => {
  let echo: EnclaveHandle;
  const logs: Array<[string, string]> = [];

  beforeAll(async () => {
    echo = await loadIn(mode, await componentFixture('echo'), {
      ...ECHO_CAPS,
      onLog: (level: string, message: string) => void logs.push([level, message]),
    });
  });
  afterAll(() => echo?.close());

  it.each([
    ['nil', null],
    ['false', false],
    ['an int', -(2 ** 31)],
    ['a uint64 beyond 2^53', 2n ** 64n - 1n],
    ['a float', -0.125],
    ['an empty string', ''],
    ['a unicode string', 'ünïcødé ✓ 🦀'],
    ['a bin', new Uint8Array([0, 255, 7])],
    ['a nested value', { a: [1, { b: 'c' }, [[[]]]], d: new Uint8Array(300), e: { f: null } }],
  ])('echo answers %s unchanged', async (_, value) => {
    expect(await echo.call('echo', value)).toEqual(value);
  });

  it('an op of the contract without a handler is the enclave\'s unknown_op, and the instance is kept', async () => {
    const before = (await echo.call('count')) as number;
    expect(await outcome(echo.call('missing', 1))).toEqual({ code: 'unknown_op', detail: 'no handler for this op' });
    expect(await echo.call('count')).toBe(before + 2);
  });

  it('the host refuses what the contract refuses before the enclave runs', async () => {
    expect(await codeOf(echo.call('log', 1))).toBe('invalid_args');
    expect(await codeOf(echo.call('nope'))).toBe('unknown_op');
    let deep: unknown = 0;
    for (let i = 0; i < 20; i++) deep = [deep];
    expect(await codeOf(echo.call('echo', deep))).toBe('invalid_args');
    expect(await codeOf(echo.call('echo', 'x'.repeat(5000)))).toBe('too_large');
  });

  it('spin ends in fuel_exhausted, and the next call runs on a fresh instance', async () => {
    await echo.call('count');
    expect(await codeOf(echo.call('spin'))).toBe('fuel_exhausted');
    expect(await echo.call('count')).toBe(1);
    expect(await echo.call('echo', 'after')).toBe('after');
  });

  it('deep ends in stack_overflow, trap in trap; each discards the instance', async () => {
    await echo.call('count');
    expect(await codeOf(echo.call('deep'))).toBe('stack_overflow');
    expect(await echo.call('count')).toBe(1);
    expect(await codeOf(echo.call('trap'))).toBe('trap');
    expect(await echo.call('count')).toBe(1);
  });

  it('grow stops at the memory maximum, the contract\'s memoryPages (3), and the instance lives on', async () => {
    expect(await echo.call('grow')).toBe(3);
    expect(await echo.call('grow')).toBe(3);
    expect(await echo.call('echo', 'still here')).toBe('still here');
  });

  it('random answers fresh bytes from the host; a length random.fill refuses is the enclave\'s limit', async () => {
    const a = (await echo.call('random', 32)) as Uint8Array;
    const b = (await echo.call('random', 32)) as Uint8Array;
    expect(a).toBeInstanceOf(Uint8Array);
    expect(a.length).toBe(32);
    expect(a).not.toEqual(b);
    expect(await echo.call('random', 0)).toEqual(new Uint8Array(0));
    expect(await outcome(echo.call('random', 65537))).toEqual({ code: 'limit', detail: 'random.fill refused the length' });
    // 4093 bytes make a reply of 4096 + 4 with the envelope: past replyBytes
    expect(await codeOf(echo.call('random', 4093))).toBe('too_large');
    expect(((await echo.call('random', 4089)) as Uint8Array).length).toBe(4089);
  });

  it('log hands the line to onLog at level info; a long line is cut to its first 1024 bytes', async () => {
    logs.length = 0;
    expect(await echo.call('log', 'hello from WAT ✓')).toBe(null);
    expect(await echo.call('log', 'é'.repeat(1000))).toBe(null);
    // in a worker the lines cross after the reply (as a core module's do)
    await expect.poll(() => logs.length).toBe(2);
    expect(logs[0]).toEqual(['info', 'hello from WAT ✓']);
    // 2000 bytes of UTF-8 in, the first 1024 kept: 512 characters of 2 bytes
    expect(logs[1]).toEqual(['info', 'é'.repeat(512)]);
    expect(logs).toHaveLength(2);
  });

  it('per-call state serves every call from a pristine instance', async () => {
    const e = await loadIn(mode, await componentFixture('echo'), { ...ECHO_CAPS, state: 'per-call' });
    try {
      expect(await e.call('count')).toBe(1);
      expect(await e.call('count')).toBe(1);
      expect(await e.call('echo', [1, 2])).toEqual([1, 2]);
    } finally {
      await e.close();
    }
  });

  it('a lower fuel policy stops a call the contract\'s fuel lets through', async () => {
    const many = Array.from({ length: 1000 }, (_, i) => i);
    expect(await echo.call('echo', many)).toEqual(many);
    const e = await loadIn(mode, await componentFixture('echo'), { ...ECHO_CAPS, policy: { fuel: 10_000 } });
    try {
      expect(await e.call('echo', 1)).toBe(1);
      expect(await codeOf(e.call('echo', many))).toBe('fuel_exhausted');
      expect(await e.call('count')).toBe(1);
    } finally {
      await e.close();
    }
  });
});

describe.each(MODES)('the WAT echo refused at load ($name)', (mode) => {
  it('without the capabilities it declares granted: capability_denied', async () => {
    const bytes = await componentFixture('echo');
    expect(await codeOf(loadIn(mode, bytes))).toBe('capability_denied');
    expect(await codeOf(loadIn(mode, bytes, { capabilities: ['random'] }))).toBe('capability_denied');
  });

  it('importing log without declaring it: capability_denied', async () => {
    const contract = fixtureContract('echo');
    contract.capabilities = ['random'];
    expect(await codeOf(loadIn(mode, await componentFixture('echo', contract), ECHO_CAPS))).toBe('capability_denied');
  });

  it('a memory maximum above the contract\'s memoryPages or the host policy: memory_limit', async () => {
    const contract = fixtureContract('echo');
    contract.limits.memoryPages = 2;
    expect(await codeOf(loadIn(mode, await componentFixture('echo', contract), ECHO_CAPS))).toBe('memory_limit');
    expect(await codeOf(loadIn(mode, await componentFixture('echo'), { ...ECHO_CAPS, policy: { memoryPages: 2 } }))).toBe('memory_limit');
  });

  it('a memory without a maximum: memory_limit', async () => {
    const wat = minimalComponentWat({ memory: '(memory (export "memory") 1)' });
    expect(await codeOf(loadIn(mode, await watComponent(wat, MINIMAL_COMPONENT_CONTRACT)))).toBe('memory_limit');
  });

  it('the same echo with a smaller maximum grows to it', async () => {
    const contract = fixtureContract('echo');
    contract.limits.memoryPages = 2;
    const wat = fixtureWat('echo').replace('(memory (export "memory") 1 3)', '(memory (export "memory") 1 2)');
    expect(wat).not.toBe(fixtureWat('echo'));
    const e = await loadIn(mode, await watComponent(wat, contract), ECHO_CAPS);
    try {
      expect(await e.call('grow')).toBe(2);
    } finally {
      await e.close();
    }
  });

  it('a component importing an interface beyond the world (wasi:random): invalid_module', async () => {
    expect(await codeOf(loadIn(mode, await beyondWorldComponent()))).toBe('invalid_module');
  });

  it('a component importing seal without declaring it: capability_denied', async () => {
    expect(await codeOf(loadIn(mode, await sealImportingComponent()))).toBe('capability_denied');
    // the minimal component without that import loads: the refusal is the import's
    const ok = await loadIn(mode, await watComponent(minimalComponentWat(), MINIMAL_COMPONENT_CONTRACT));
    try {
      expect(await ok.call('ping')).toBe(null);
    } finally {
      await ok.close();
    }
  });

  it('a component without a contract: invalid_contract', async () => {
    expect(await codeOf(loadIn(mode, await watComponent(minimalComponentWat())))).toBe('invalid_contract');
  });
});

/** The error-code enum of wit/enclave.wit in order, as the caller sees each code. */
const ENCLAVE_CODES: ErrorCode[] = [
  'bad_request', 'unknown_op', 'denied', 'state', 'limit', 'internal', 'unseal_failed', 'rollback', 'not_found', 'conflict', 'decrypt_failed',
] as ErrorCode[];

describe.each(MODES)('a hostile component\'s result area ($name)', (mode) => {
  let hostile: EnclaveHandle;
  beforeAll(async () => {
    hostile = await loadIn(mode, await componentFixture('hostile'));
  });
  afterAll(() => hostile?.close());

  const count = async () => (await hostile.call('count')) as number;

  /** Calls `op`, checks what it gives, and that the instance was discarded exactly when the code says so. */
  async function expectOutcome(op: string, args: unknown, expected: unknown): Promise<void> {
    const before = await count();
    expect(await outcome(hostile.call(op, args))).toEqual(expected);
    const code = (expected as { code?: ErrorCode }).code;
    const discards = code !== undefined && DISCARDING_CODES.has(code);
    expect(await count()).toBe(discards ? 1 : before + 2);
  }

  const badReply = { code: 'bad_reply', detail: undefined };
  const tooLarge = { code: 'too_large', detail: undefined };
  it.each([
    ['ok', undefined, 'fine'],
    ['edge', undefined, 'fine'],
    ['area_oob', undefined, badReply],
    ['wrap_area', undefined, badReply],
    ['misaligned', undefined, badReply],
    ['disc_bad', undefined, badReply],
    ['disc_bad', 255, badReply],
    ['list_oob', undefined, badReply],
    ['ptr_wrap', undefined, badReply],
    ['value_bad', undefined, badReply],
    ['reply_size', 1020, new Uint8Array(1017)],
    ['reply_size', 1021, tooLarge],
    ['huge', undefined, tooLarge],
    ['fail', 11, badReply],
    ['fail', 255, badReply],
    ['nowhere_message', undefined, badReply],
    ['y_huge_message', undefined, badReply],
    ['x_trap', undefined, { code: 'trap', detail: undefined }],
    ['trap_in_post_return', undefined, { code: 'trap', detail: undefined }],
    ['q_spin_in_post_return', undefined, { code: 'fuel_exhausted', detail: undefined }],
  ])('%s %s', async (op, args, expected) => {
    await expectOutcome(op, args, expected);
  });

  it.each(ENCLAVE_CODES.map((code, index) => [index, code]))('err code index %i is %s, with its message', async (index, code) => {
    await expectOutcome('fail', index, { code, detail: 'the enclave says no' });
  });

  it('a message of 2000 bytes is cut to 256; one that is not UTF-8 keeps U+FFFD for the bad bytes', async () => {
    await expectOutcome('so_long_message', undefined, { code: 'denied', detail: 'x'.repeat(256) });
    await expectOutcome('utf8_bad', undefined, { code: 'denied', detail: 'refused: \uFFFD\uFFFD bytes' });
  });

  it('cabi_realloc answering a pointer past memory fails the next call with bad_reply', async () => {
    expect(await hostile.call('bad_alloc')).toBe('fine');
    expect(await codeOf(hostile.call('ok'))).toBe('bad_reply');
    expect(await count()).toBe(1);
  });

  it('cabi_realloc answering 0 fails the next call with limit, as enclave_alloc does', async () => {
    expect(await hostile.call('zero_alloc')).toBe('fine');
    expect(await codeOf(hostile.call('ok'))).toBe('limit');
  });
});
