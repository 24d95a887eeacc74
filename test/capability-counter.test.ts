/**
 * The `counter` capability (docs/ABI.md §3, issue 13): `counter_read` and `counter_advance`, every
 * return value, in both isolation modes, against the software platform (durable: a new instance
 * and a new provider see the same counters) and against fake platforms that throw, answer garbage
 * or a Promise. i64 arguments are read as u64. Errors are values: never a trap, never a host crash.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestationError, generateKeyPair, signModule, SoftwareAttestationProvider } from '../attest/index.js';
import type { EnclaveHandle } from '../host/index.js';
import { admitHostCall } from '../runtime/_worker-hostcall.js';
import { codeOf } from './helpers/errors.js';
import { hostCallChannel } from './helpers/hostcall.js';
import { loadIn, MODES } from './helpers/modes.js';
import { decodeAnswer, encodeArgs, MEMORY_BYTES, sealCounterModule, type Answer, type CallArgs } from './helpers/seal-counter-wat.js';

const U64_MAX = (1n << 64n) - 1n;
const ZERO32 = new Uint8Array(32);
const tagOf = (n: number): Uint8Array => new Uint8Array(32).map((_, i) => (n * 31 + i) & 0xff);

async function run(enclave: EnclaveHandle, args: CallArgs): Promise<Answer> {
  return decodeAnswer(await enclave.call('x', encodeArgs(args)));
}

/** counter_read's output: value ‖ tag. */
function counterOf(answer: Answer): { value: bigint; tag: Uint8Array } {
  expect(answer.status).toBe(0);
  return { value: new DataView(answer.out.buffer, answer.out.byteOffset).getBigUint64(0, true), tag: answer.out.slice(8) };
}

/** A platform of the test's making, with counter methods as given. */
function fakePlatform(methods: Record<string, unknown>): Record<string, unknown> {
  return { platform: 'fake', getSealingSecret: () => new Uint8Array(32), getEvidence: () => 'a.b.c', ...methods };
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
let unsigned: Uint8Array;
let keys: ReturnType<typeof generateKeyPair>;

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  unsigned = await sealCounterModule({ seal: false, counter: true });
  keys = generateKeyPair();
});

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe.each(MODES)('counter ($name)', (mode) => {
  let dir: string;
  let provider: SoftwareAttestationProvider;
  let enclave: EnclaveHandle;

  beforeAll(async () => {
    dir = join(mkdtempSync(join(tmpdir(), 'enclave-counter-')), 'platform');
    provider = new SoftwareAttestationProvider({ dir });
    // The host's policy allows the fuel of 65 advances in one call (the contract asks for it).
    enclave = await loadIn(mode, unsigned, { capabilities: ['counter'], attestation: provider, policy: { fuel: 500_000_000 } });
  });

  afterAll(async () => {
    await enclave.close();
  });

  it('a counter never advanced reads 0 and a zero tag', async () => {
    expect(counterOf(await run(enclave, { sel: 2, policy: 0, id: 1n }))).toEqual({ value: 0n, tag: ZERO32 });
  });

  it('advance: expected → expected+1 with the tag; a stale expected is a conflict (-4) that changes nothing', async () => {
    expect((await run(enclave, { sel: 3, policy: 0, id: 2n, expected: 0n, tag: tagOf(1) })).status).toBe(0);
    expect(counterOf(await run(enclave, { sel: 2, policy: 0, id: 2n }))).toEqual({ value: 1n, tag: tagOf(1) });
    for (const expected of [0n, 2n, 5n, U64_MAX]) {
      expect((await run(enclave, { sel: 3, policy: 0, id: 2n, expected, tag: tagOf(9) })).status, `expected ${expected}`).toBe(-4);
    }
    expect(counterOf(await run(enclave, { sel: 2, policy: 0, id: 2n }))).toEqual({ value: 1n, tag: tagOf(1) });
    expect((await run(enclave, { sel: 3, policy: 0, id: 2n, expected: 1n, tag: tagOf(2) })).status).toBe(0);
    expect(counterOf(await run(enclave, { sel: 2, policy: 0, id: 2n }))).toEqual({ value: 2n, tag: tagOf(2) });
    // What the platform holds, asked directly.
    const state = provider.readCounter(enclave.identity, 'measurement', 2n);
    expect(state.value).toBe(2n);
    expect(new Uint8Array(state.tag)).toEqual(tagOf(2));
  });

  it('ids and expected values are u64: -1 is 2^64-1, its own counter', async () => {
    expect((await run(enclave, { sel: 3, policy: 0, id: U64_MAX, expected: 0n, tag: tagOf(3) })).status).toBe(0);
    expect(provider.readCounter(enclave.identity, 'measurement', U64_MAX).value).toBe(1n);
    expect(counterOf(await run(enclave, { sel: 2, policy: 0, id: U64_MAX }))).toEqual({ value: 1n, tag: tagOf(3) });
    expect(counterOf(await run(enclave, { sel: 2, policy: 0, id: 1n << 63n })).value).toBe(0n);
    expect(counterOf(await run(enclave, { sel: 2, policy: 0, id: 0n })).value).toBe(0n);
  });

  it('counters survive a new instance and a new provider over the same directory', async () => {
    expect((await run(enclave, { sel: 3, policy: 0, id: 7n, expected: 0n, tag: tagOf(7) })).status).toBe(0);
    const again = await loadIn(mode, unsigned, { capabilities: ['counter'], attestation: new SoftwareAttestationProvider({ dir }) });
    try {
      expect(counterOf(await run(again, { sel: 2, policy: 0, id: 7n }))).toEqual({ value: 1n, tag: tagOf(7) });
      expect((await run(again, { sel: 3, policy: 0, id: 7n, expected: 0n, tag: tagOf(8) })).status).toBe(-4);
      expect((await run(again, { sel: 3, policy: 0, id: 7n, expected: 1n, tag: tagOf(8) })).status).toBe(0);
    } finally {
      await again.close();
    }
    expect(counterOf(await run(enclave, { sel: 2, policy: 0, id: 7n }))).toEqual({ value: 2n, tag: tagOf(8) });
  });

  it('another module (another measurement) has its own counters', async () => {
    const other = await loadIn(mode, await sealCounterModule({ seal: false, counter: true }, { version: '1.0.1' }), { capabilities: ['counter'], attestation: provider });
    try {
      expect(counterOf(await run(other, { sel: 2, policy: 0, id: 2n }))).toEqual({ value: 0n, tag: ZERO32 });
    } finally {
      await other.close();
    }
  });

  it('signer: an upgrade (higher svn, same signer and name) keeps the counters; unsigned is -3', async () => {
    const trust = { trusted: [{ publicKey: keys.publicKey }] };
    const v1 = await loadIn(mode, signModule(await sealCounterModule({ seal: false, counter: true }, { svn: 1 }), keys), { capabilities: ['counter'], attestation: provider, trust });
    const v2 = await loadIn(mode, signModule(await sealCounterModule({ seal: false, counter: true }, { svn: 2, version: '2.0.0' }), keys), { capabilities: ['counter'], attestation: provider, trust });
    try {
      expect(v1.measurement).not.toBe(v2.measurement);
      expect((await run(v1, { sel: 3, policy: 1, id: 3n, expected: 0n, tag: tagOf(4) })).status).toBe(0);
      expect(counterOf(await run(v2, { sel: 2, policy: 1, id: 3n }))).toEqual({ value: 1n, tag: tagOf(4) });
      // The measurement binding is another namespace.
      expect(counterOf(await run(v2, { sel: 2, policy: 0, id: 3n })).value).toBe(0n);
    } finally {
      await v1.close();
      await v2.close();
    }
    expect((await run(enclave, { sel: 2, policy: 1, id: 1n })).status).toBe(-3);
    expect((await run(enclave, { sel: 3, policy: 1, id: 1n, expected: 0n })).status).toBe(-3);
  });

  it('-2 for an unknown policy, read and advance', async () => {
    for (const policy of [2, -1, 0x7fffffff]) {
      expect((await run(enclave, { sel: 2, policy, id: 1n })).status).toBe(-2);
      expect((await run(enclave, { sel: 3, policy, id: 1n, expected: 0n })).status).toBe(-2);
    }
  });

  it('-1 for an output or a tag that does not fit, near the end of memory and near 2^32; the counter is untouched', async () => {
    expect((await run(enclave, { sel: 2, policy: 0, id: 1n, ptr: MEMORY_BYTES - 40 })).status).toBe(0);
    expect((await run(enclave, { sel: 3, policy: 0, id: 11n, expected: 0n, ptr: MEMORY_BYTES - 32 })).status).toBe(0);
    for (const ptr of [MEMORY_BYTES - 39, MEMORY_BYTES, 0x7fffffff, 0x80000000, 0xffffffe0, 0xfffffff0, 0xffffffff]) {
      expect((await run(enclave, { sel: 2, policy: 0, id: 1n, ptr })).status, `read at ${ptr.toString(16)}`).toBe(-1);
    }
    for (const ptr of [MEMORY_BYTES - 31, MEMORY_BYTES, 0x80000000, 0xffffffe0, 0xffffffff]) {
      expect((await run(enclave, { sel: 3, policy: 0, id: 11n, expected: 1n, ptr })).status, `tag at ${ptr.toString(16)}`).toBe(-1);
    }
    expect(provider.readCounter(enclave.identity, 'measurement', 11n).value).toBe(1n);
  });

  it('at most 64 advances per call (-5 for the 65th, which changes nothing); the next call may advance again', async () => {
    const answer = await run(enclave, { sel: 4, policy: 0, id: 20n, expected: 0n, count: 65, tag: tagOf(5) });
    expect(answer.status).toBe(-5);
    expect(new DataView(answer.out.buffer, answer.out.byteOffset).getUint32(0, true)).toBe(64);
    expect(provider.readCounter(enclave.identity, 'measurement', 20n).value).toBe(64n);
    const next = await run(enclave, { sel: 4, policy: 0, id: 20n, expected: 64n, count: 3, tag: tagOf(5) });
    expect(next.status).toBe(0);
    expect(provider.readCounter(enclave.identity, 'measurement', 20n).value).toBe(67n);
    // Conflicts count too: each reached the platform.
    const conflicts = await run(enclave, { sel: 4, policy: 0, id: 20n, expected: 0n, count: 1 });
    expect(conflicts.status).toBe(-4);
  });

  it('pays its fuel before any work: advance more than read', async () => {
    const read = { fuel: 0 };
    const advance = { fuel: 0 };
    await enclave.call('x', encodeArgs({ sel: 2, policy: 9 }), { stats: read });
    await enclave.call('x', encodeArgs({ sel: 3, policy: 9 }), { stats: advance });
    expect(read.fuel).toBeGreaterThanOrEqual(500_000);
    expect(advance.fuel).toBeGreaterThan(read.fuel);
  });

  describe('a platform that fails or lies', () => {
    const good = { readCounter: () => ({ value: 5n, tag: tagOf(6) }), advanceCounter: () => true };
    const readCases: [string, number, unknown][] = [
      ['throws', -3, () => { throw new Error('disk on fire'); }],
      ['throws counter_limit', -3, () => { throw new AttestationError('counter_limit'); }],
      ['answers a Promise', -3, () => Promise.resolve({ value: 1n, tag: ZERO32 })],
      ['answers a rejected Promise', -3, () => Promise.reject(new Error('later'))],
      ['answers null', -3, () => null],
      ['answers a number value', -3, () => ({ value: 1, tag: ZERO32 })],
      ['answers a negative value', -3, () => ({ value: -1n, tag: ZERO32 })],
      ['answers a value past 2^64-1', -3, () => ({ value: 1n << 64n, tag: ZERO32 })],
      ['answers a 31-byte tag', -3, () => ({ value: 1n, tag: new Uint8Array(31) })],
      ['answers a tag that is an array', -3, () => ({ value: 1n, tag: Array(32).fill(0) })],
      ['answers a throwing getter', -3, () => ({ get value(): never { throw new Error('getter'); }, tag: ZERO32 })],
      ['answers 2^64-1 and a tag', 0, () => ({ value: U64_MAX, tag: tagOf(6) })],
    ];
    it.each(readCases)('readCounter %s: %i', async (_why, status, readCounter) => {
      const e = await loadIn(mode, unsigned, { capabilities: ['counter'], attestation: fakePlatform({ ...good, readCounter }) });
      try {
        const answer = await run(e, { sel: 2, policy: 0, id: 1n });
        expect(answer.status).toBe(status);
        if (status === 0) expect(counterOf(answer)).toEqual({ value: U64_MAX, tag: tagOf(6) });
        else expect(answer.out).toEqual(new Uint8Array(40));
        expect((await run(e, { sel: 2, policy: 9 })).status).toBe(-2);
      } finally {
        await e.close();
      }
    });

    const advanceCases: [string, number, unknown][] = [
      ['throws', -3, () => { throw new Error('disk on fire'); }],
      ['throws counter_limit', -5, () => { throw new AttestationError('counter_limit'); }],
      ['throws sealing_unavailable', -3, () => { throw new AttestationError('sealing_unavailable'); }],
      ['throws counter_limit with a throwing code getter', -3, () => { throw Object.defineProperty(new AttestationError('counter_limit'), 'code', { get() { throw new Error('getter'); } }); }],
      ['answers a Promise of true', -3, () => Promise.resolve(true)],
      ['answers a rejected Promise', -3, () => Promise.reject(new Error('later'))],
      ['answers 1', -3, () => 1],
      ['answers "true"', -3, () => 'true'],
      ['answers undefined', -3, () => undefined],
      ['answers false', -4, () => false],
      ['answers true', 0, () => true],
    ];
    it.each(advanceCases)('advanceCounter %s: %i', async (_why, status, advanceCounter) => {
      const e = await loadIn(mode, unsigned, { capabilities: ['counter'], attestation: fakePlatform({ ...good, advanceCounter }) });
      try {
        expect((await run(e, { sel: 3, policy: 0, id: 1n, expected: 0n })).status).toBe(status);
        expect((await run(e, { sel: 2, policy: 9 })).status).toBe(-2);
      } finally {
        await e.close();
      }
    });

    it('gets u64 BigInts, a 32-byte copy of the tag, the policy and the identity the host computed', async () => {
      const seen: unknown[][] = [];
      const e = await loadIn(mode, unsigned, {
        capabilities: ['counter'],
        attestation: fakePlatform({
          readCounter: (...args: unknown[]) => (seen.push(args), { value: 0n, tag: ZERO32 }),
          advanceCounter: (...args: unknown[]) => (seen.push(args), true),
        }),
      });
      try {
        await run(e, { sel: 2, policy: 0, id: -2n });
        await run(e, { sel: 3, policy: 0, id: -1n, expected: -3n, tag: tagOf(9) });
        expect(seen).toHaveLength(2);
        const [[who, policy, id], [who2, policy2, id2, expected, tag]] = seen as unknown[][];
        expect((who as { measurement: string }).measurement).toBe(e.identity.measurement);
        expect((who2 as { measurement: string }).measurement).toBe(e.identity.measurement);
        expect([policy, policy2]).toEqual(['measurement', 'measurement']);
        expect(id).toBe(U64_MAX - 1n);
        expect(id2).toBe(U64_MAX);
        expect(expected).toBe(U64_MAX - 2n);
        expect(tag).toBeInstanceOf(Uint8Array);
        expect(new Uint8Array(tag as Uint8Array)).toEqual(tagOf(9));
      } finally {
        await e.close();
      }
    });

    it('no unhandled rejection from a Promise it could not wait for', async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    });
  });
});

describe('grant', () => {
  it.each(MODES)('needs a platform with readCounter and advanceCounter ($name)', async (mode) => {
    expect(await codeOf(loadIn(mode, unsigned, { capabilities: ['counter'] }))).toBe('invalid_options');
    expect(await codeOf(loadIn(mode, unsigned, { capabilities: ['counter'], attestation: fakePlatform({}) }))).toBe('invalid_options');
    expect(await codeOf(loadIn(mode, unsigned, { capabilities: ['counter'], attestation: fakePlatform({ readCounter: () => null }) }))).toBe('invalid_options');
    const hostile = fakePlatform({});
    Object.defineProperty(hostile, 'readCounter', { get() { throw new Error('getter'); } });
    expect(await codeOf(loadIn(mode, unsigned, { capabilities: ['counter'], attestation: hostile }))).toBe('invalid_options');
  });

  it('a module importing counter_read without declaring counter is refused', async () => {
    const { watModule } = await import('./helpers/wat.js');
    const { sealCounterWat } = await import('./helpers/seal-counter-wat.js');
    const undeclared = await watModule(sealCounterWat({ seal: false, counter: true }), {
      abi: 1,
      name: 'sneaky',
      version: '1.0.0',
      svn: 0,
      capabilities: [],
      limits: { requestBytes: 1024, replyBytes: 1024, depth: 4, memoryPages: 1 },
      ops: { x: {} },
    });
    expect(await codeOf(loadIn(MODES[0]!, undeclared, {}))).toBe('capability_denied');
  });
});

describe("the host side of a worker's counter host calls", () => {
  it('refuses hostile fields as an error answer, without asking the platform, and never throws', () => {
    let calls = 0;
    const { send, status } = hostCallChannel(fakePlatform({
      readCounter: () => (calls++, { value: 0n, tag: ZERO32 }),
      advanceCounter: () => (calls++, true),
    }), 0);
    const tag = new Uint8Array(32);
    for (const fields of [
      { kind: 'counter_read', policy: 'everything', id: 1n },
      { kind: 'counter_read', policy: 'measurement', id: -1n },
      { kind: 'counter_read', policy: 'measurement', id: 1n << 64n },
      { kind: 'counter_read', policy: 'measurement', id: 1 },
      { kind: 'counter_read', policy: 'measurement' },
      { kind: 'counter_advance', policy: 'measurement', id: 1n, expected: -1n, tag },
      { kind: 'counter_advance', policy: 'measurement', id: 1n, expected: 0n, tag: new Uint8Array(31) },
      { kind: 'counter_advance', policy: 'measurement', id: 1n, expected: 0n, tag: new Uint8Array(1 << 20) },
      { kind: 'counter_advance', policy: 'measurement', id: 1n, expected: 0n, tag: Array(32).fill(0) },
      { kind: 'counter_advance', policy: 'measurement', id: 1n, expected: 0, tag },
      { kind: 'counter_advance', policy: 1, id: 1n, expected: 0n, tag },
    ]) {
      send(fields);
      expect(status(), String(fields.kind)).toBe(1);
    }
    expect(calls).toBe(0);
    send({ kind: 'counter_read', policy: 'measurement', id: U64_MAX });
    send({ kind: 'counter_advance', policy: 'signer', id: 0n, expected: U64_MAX, tag });
    expect(status()).toBe(0);
    expect(calls).toBe(2);
  });
});

describe("the host's own checks of a worker's host calls (a compromised worker posts anything)", () => {
  const advance = { type: 'hostcall', kind: 'counter_advance', policy: 'measurement', id: 1n, expected: 0n, tag: new Uint8Array(32) };

  it('a kind of a capability the host did not grant is refused: no counter (or seal, or report) for an enclave without it', () => {
    const quota = { used: new Map<string, number>() };
    expect(admitHostCall(advance, ['seal'], quota)).toBe(false);
    expect(admitHostCall({ ...advance, kind: 'counter_read' }, ['attest'], quota)).toBe(false);
    expect(admitHostCall({ type: 'hostcall', kind: 'seal_at', policy: 'signer', keyId: 0 }, ['counter'], quota)).toBe(false);
    expect(admitHostCall({ type: 'hostcall', kind: 'seal', policy: 'signer' }, ['counter', 'attest'], quota)).toBe(false);
    expect(admitHostCall({ type: 'hostcall', kind: 'evidence', nonce: new Uint8Array(8) }, ['seal', 'counter'], quota)).toBe(false);
    expect(admitHostCall({ ...advance, kind: 'counter_read' }, ['counter'], quota)).toBe(true);
    expect(admitHostCall({ type: 'hostcall', kind: 'seal_at', policy: 'signer', keyId: 0 }, ['seal'], quota)).toBe(true);
  });

  it('at most 64 counter_advance per call on the host thread too (each is an fsync there); the count starts again at the next call', () => {
    const quota = { used: new Map<string, number>() };
    for (let i = 0; i < 64; i++) expect(admitHostCall(advance, ['counter'], quota)).toBe(true);
    expect(admitHostCall(advance, ['counter'], quota)).toBe(false);
    expect(admitHostCall({ ...advance, kind: 'counter_read' }, ['counter'], quota)).toBe(true); // reads are not bounded per call
    quota.used.clear(); // what the host does when it starts the next call
    expect(admitHostCall(advance, ['counter'], quota)).toBe(true);
  });

  it('never throws on what a worker posts', () => {
    const hostile = new Proxy({}, { get: () => { throw new Error('trap'); } });
    for (const message of [null, undefined, 42, 'x', {}, hostile, { kind: 7 }, { kind: 'unknown' }]) {
      expect(() => admitHostCall(message, ['counter'], { used: new Map() })).not.toThrow();
    }
  });
});

describe('the codes an enclave sends about sealed state (issue 13)', () => {
  const CODES = ['unseal_failed', 'rollback', 'not_found', 'conflict', 'decrypt_failed'];

  /** Op `<code>` replies `{err: {code, message: "m"}}`; op `ping` counts the calls this instance served. */
  function codesWat(): string {
    const hexOf = (bytes: number[]): string => bytes.map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
    const enc = (s: string): number[] => [...Buffer.from(s, 'utf8')];
    const bytes = CODES.map((code) => [0x81, 0xa3, ...enc('err'), 0x82, 0xa4, ...enc('code'), 0xa0 + code.length, ...enc(code), 0xa7, ...enc('message'), 0xa1, ...enc('m')]);
    const data = bytes.map((r, i) => `(data (i32.const ${0x400 + i * 0x40}) "${hexOf(r)}")`).join('\n  ');
    const lens = bytes.map((r) => r.length);
    const descs = lens.map((len, i) => `(data (i32.const ${0x100 + i * 8}) "${hexOf([...le32(0x400 + i * 0x40), ...le32(len)])}")`).join('\n  ');
    const dispatch = CODES.map((code, i) => `(if (i32.eq (local.get $c) (i32.const ${code.charCodeAt(0)})) (then (return (i32.const ${0x100 + i * 8}))))`).join('\n    ');
    return `(module
  (memory (export "memory") 1 1)
  (global $calls (mut i32) (i32.const 0))
  ${descs}
  ${data}
  (data (i32.const 0x200) "\\00\\06\\00\\00\\06\\00\\00\\00")
  (data (i32.const 0x600) "\\81\\a2ok\\cc\\00")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x8000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $c i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (local.set $c (i32.load8_u offset=5 (local.get $p)))
    ${dispatch}
    (i32.store8 (i32.const 0x605) (global.get $calls))
    (i32.const 0x200))
)`;
  }
  function le32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
  }

  it.each(MODES)('reach the caller with their code and the enclave\'s detail; the instance is kept ($name)', async (mode) => {
    const { watModule } = await import('./helpers/wat.js');
    const bytes = await watModule(codesWat(), {
      abi: 1,
      name: 'codes',
      version: '1.0.0',
      svn: 0,
      capabilities: [],
      limits: { requestBytes: 1024, replyBytes: 1024, depth: 4, memoryPages: 1 },
      ops: Object.fromEntries([...CODES, 'ping'].map((op) => [op, {}])),
    });
    const e = await loadIn(mode, bytes);
    try {
      for (const code of CODES) {
        const err = await e.call(code).then(
          () => undefined,
          (error: unknown) => error as { code: string; detail?: string; flags: { discards: boolean } },
        );
        expect(err?.code, code).toBe(code);
        expect(err?.detail).toBe('m');
        expect(err?.flags.discards).toBe(false);
      }
      // Every call ran on the same instance: none was discarded.
      expect(await e.call('ping')).toBe(CODES.length + 1);
    } finally {
      await e.close();
    }
  });
});
