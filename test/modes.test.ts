/**
 * The same behaviour, in both isolation modes (test/helpers/modes.ts): call results of the shipped
 * modules, and every error code a caller or an enclave can cause at call or load time. What differs
 * by design (deadlines, worker death, the queue, worker-only options) stays in test/worker*.test.ts;
 * state policies and stats are in test/modes-state.test.ts, the handle's other members in
 * test/modes-handle.test.ts.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed } from '../attest/index.js';
import { EnclaveError, signModule, type EnclaveHandle } from '../host/index.js';
import { ATTEST_CONTRACT, ATTEST_WAT } from './helpers/attest-wat.js';
import { codeOf } from './helpers/errors.js';
import { loadIn, MODES } from './helpers/modes.js';
import { fixture, MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';
import { HOSTILE_CORPUS } from './hostile/corpus.js';

const module = (name: string) => readFileSync(new URL(`../enclave-modules/${name}/build/${name}.wasm`, import.meta.url));
const ECHO = module('echo');
const COUNTER = module('counter');
const CRYPTO = module('crypto');
const corpus = (name: string) => HOSTILE_CORPUS.find((c) => c.name === name)!.module();

const bytes = (text: string) => new TextEncoder().encode(text);

/** `o`ne logs "line" at warn; `f`lood logs it 300 times. Ops are told apart by byte 5 of the request. */
const LOG_WAT = `(module
  (import "enclave" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  (data (i32.const 0x300) "line")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $i i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x6f)) (then (call $log (i32.const 2) (i32.const 0x300) (i32.const 4))))
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x66))
      (then (loop $more
        (call $log (i32.const 2) (i32.const 0x300) (i32.const 4))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $i) (i32.const 300))))))
    (i32.const 0x100)))`;
const LOG_CONTRACT = {
  ...MINIMAL_CONTRACT,
  name: 'logger',
  capabilities: ['log'],
  ops: { one: {}, flood: {} },
};

describe.each(MODES)('$name', (mode) => {
  let echo: EnclaveHandle;
  let counter: EnclaveHandle;
  let crypto: EnclaveHandle;
  /** test/fixtures/hostile.wat: each op misbehaves in its own way; `ok` answers "fine". */
  let hostile: EnclaveHandle;
  let hostileBytes: Uint8Array;
  const opened: EnclaveHandle[] = [];
  /** A fresh enclave for a test that changes its state, closed after the suite. */
  const fresh = async (source: Uint8Array, extra: Record<string, unknown> = {}) => {
    const handle = await loadIn(mode, source, extra);
    opened.push(handle);
    return handle;
  };

  beforeAll(async () => {
    hostileBytes = await fixture('hostile');
    [echo, counter, crypto, hostile] = await Promise.all([fresh(ECHO), fresh(COUNTER), fresh(CRYPTO), fresh(hostileBytes)]);
  });
  afterAll(async () => {
    await Promise.all(opened.map((handle) => handle.close()));
  });

  describe('call results of the shipped modules', () => {
    it('echo returns what it was sent, every msgpack type', async () => {
      const value = { s: 'héllo ✓ 𝄞', n: [0, -1, 127, 128, 65_536, -2_147_483_648, 2 ** 40, 1.5], b: true, z: null, nested: { a: [[], {}] } };
      expect(await echo.call('echo', value)).toEqual(value);
      expect(await echo.call('echo', 'x'.repeat(10_000))).toBe('x'.repeat(10_000));
      const bin = (await echo.call('echo', new Uint8Array([0, 1, 255]))) as Uint8Array;
      expect(bin).toBeInstanceOf(Uint8Array);
      expect([...bin]).toEqual([0, 1, 255]);
      expect(await echo.call('echo')).toBe(null);
    });

    it('counter keeps its count across calls (persistent)', async () => {
      const c = await fresh(COUNTER);
      expect(await c.call('incr')).toBe(1);
      expect(await c.call('incr', { by: 41 })).toBe(42);
      expect(await c.call('get')).toBe(42);
      expect(await c.call('reset')).toBe(null);
      expect(await c.call('get')).toBe(0);
    });

    it('crypto hashes and MACs as node:crypto does', async () => {
      const data = bytes('abc');
      const key = bytes('k'.repeat(40));
      expect(Buffer.from((await crypto.call('sha256', { data })) as Uint8Array).toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      expect(Buffer.from((await crypto.call('sha512', { data })) as Uint8Array).toString('hex')).toBe(createHash('sha512').update(data).digest('hex'));
      expect(Buffer.from((await crypto.call('hmac_sha256', { key, data })) as Uint8Array).toString('hex')).toBe(
        createHmac('sha256', key).update(data).digest('hex'),
      );
    });

    it('crypto seals and opens, signs and verifies', async () => {
      const key = new Uint8Array(32).fill(7);
      const nonce = new Uint8Array(12).fill(1);
      const aad = bytes('header');
      const plaintext = bytes('the secret');
      const sealed = (await crypto.call('aead_seal', { alg: 'chacha20poly1305', key, nonce, aad, plaintext })) as Uint8Array;
      expect(sealed.length).toBe(plaintext.length + 16);
      const opened = (await crypto.call('aead_open', { alg: 'chacha20poly1305', key, nonce, aad, sealed })) as Uint8Array;
      expect(Buffer.from(opened).toString()).toBe('the secret');
      const tampered = sealed.slice();
      tampered[0]! ^= 1;
      expect(await crypto.call('aead_open', { alg: 'chacha20poly1305', key, nonce, aad, sealed: tampered })).toBe(null);

      const seed = new Uint8Array(32).fill(3);
      const publicKey = (await crypto.call('ed25519_public_key', { seed })) as Uint8Array;
      const message = bytes('signed');
      const signature = (await crypto.call('ed25519_sign', { seed, message })) as Uint8Array;
      expect(await crypto.call('ed25519_verify', { public_key: publicKey, message, signature })).toBe(true);
      expect(await crypto.call('ed25519_verify', { public_key: publicKey, message: bytes('other'), signature })).toBe(false);
    });

    it('answers concurrent calls each with its own reply', async () => {
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => echo.call('echo', { i })));
      expect(replies).toEqual(Array.from({ length: 20 }, (_, i) => ({ i })));
    });
  });

  describe('logs', () => {
    it('log lines reach onLog after the call, in order, with their levels; a flood is cut at 256 lines', async () => {
      const lines: [string, string][] = [];
      const logger = await fresh(await watModule(LOG_WAT, LOG_CONTRACT), { capabilities: ['log'], onLog: (level: string, text: string) => lines.push([level, text]) });
      expect(await logger.call('one')).toBe('fine');
      await expect.poll(() => lines.length).toBe(1);
      expect(lines).toEqual([['warn', 'line']]);
      lines.length = 0;
      expect(await logger.call('flood')).toBe('fine');
      await expect.poll(() => lines.length).toBe(257);
      expect(lines.slice(0, 256).every(([level, text]) => level === 'warn' && text === 'line')).toBe(true);
      expect(lines[256]).toEqual(['warn', 'enclave log flood: 44 more lines in this call were dropped']);
    });

    it('a logger that throws does not reach the caller', async () => {
      const logger = await fresh(await watModule(LOG_WAT, LOG_CONTRACT), {
        capabilities: ['log'],
        onLog: () => {
          throw new Error('logger broke');
        },
      });
      expect(await logger.call('one')).toBe('fine');
      expect(await logger.call('one')).toBe('fine');
    });
  });

  describe('errors a caller causes (refused before the enclave runs)', () => {
    it('unknown_op: an op the contract does not list, or not a string', async () => {
      expect(await codeOf(counter.call('launch_missiles'))).toBe('unknown_op');
      expect(await codeOf(counter.call(42 as unknown as string))).toBe('unknown_op');
      expect(await codeOf(counter.call('__proto__'))).toBe('unknown_op');
    });

    it('invalid_args: against the contract shape, or not encodable', async () => {
      expect(await codeOf(counter.call('incr', { by: 0 }))).toBe('invalid_args');
      expect(await codeOf(counter.call('incr', { by: 'one' }))).toBe('invalid_args');
      expect(await codeOf(counter.call('get', 5))).toBe('invalid_args');
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      expect(await codeOf(echo.call('echo', cyclic))).toBe('invalid_args');
      expect(await codeOf(echo.call('echo', new Date(0)))).toBe('invalid_args');
      expect(await codeOf(echo.call('echo', () => 1))).toBe('invalid_args');
      let deep: unknown = 1;
      for (let i = 0; i < 40; i++) deep = [deep];
      expect(await codeOf(echo.call('echo', deep))).toBe('invalid_args');
    });

    it('too_large: a request over the contract limit', async () => {
      expect(await codeOf(hostile.call('ok', 'x'.repeat(20_000)))).toBe('too_large');
      expect(await hostile.call('ok')).toBe('fine');
    });

    it('too_large and invalid_args under a host policy tighter than the contract', async () => {
      const tight = await fresh(ECHO, { policy: { requestBytes: 256, replyBytes: 128, depth: 4 } });
      expect(await codeOf(tight.call('echo', 'x'.repeat(300)))).toBe('too_large');
      expect(await codeOf(tight.call('echo', [[[[[1]]]]]))).toBe('invalid_args');
      // The reply is checked against the policy's replyBytes (the request fits, the reply does not).
      expect(await tight.call('echo', 'x'.repeat(100))).toBe('x'.repeat(100));
      expect(await codeOf(tight.call('echo', 'x'.repeat(200)))).toBe('too_large');
      expect(await tight.call('echo', 'y')).toBe('y');
    });

    it('invalid_options: a session id without per-session, stats that is not an object', async () => {
      expect(await codeOf(counter.call('get', undefined, { session: 'alice' }))).toBe('invalid_options');
      expect(await codeOf(counter.call('get', undefined, { stats: null as never }))).toBe('invalid_options');
      expect(await codeOf(counter.call('get', undefined, { stats: Object.freeze({ fuel: 1 }) }))).toBe('invalid_options');
      const throwing = {
        get session(): string {
          throw new Error('getter');
        },
      };
      expect(await codeOf(counter.call('get', undefined, throwing))).toBe('invalid_options');
    });

    it('the error is an EnclaveError with a stable code and no detail', async () => {
      const err = (await counter.call('incr', { by: 0 }).catch((e: unknown) => e)) as EnclaveError;
      expect(err).toBeInstanceOf(EnclaveError);
      expect(err.code).toBe('invalid_args');
      expect(err.detail).toBeUndefined();
    });
  });

  describe('errors an enclave causes', () => {
    it('its own codes with its message in detail: bad_request, denied', async () => {
      const args = { alg: 'rot13', key: new Uint8Array(32), nonce: new Uint8Array(12), aad: new Uint8Array(0), plaintext: new Uint8Array(1) };
      const bad = (await crypto.call('aead_seal', args).catch((e: unknown) => e)) as EnclaveError;
      expect(bad).toBeInstanceOf(EnclaveError);
      expect(bad.code).toBe('bad_request');
      expect(bad.detail).toMatch(/chacha20poly1305/);
      const denied = (await hostile.call('refuse').catch((e: unknown) => e)) as EnclaveError;
      expect(denied.code).toBe('denied');
      expect(denied.detail).toBe('no');
      // An enclave's refusal keeps the instance: nothing is discarded.
      expect(await hostile.call('ok')).toBe('fine');
    });

    it('state: an op whose requires did not succeed first on this instance', async () => {
      const c = await fresh(COUNTER);
      expect(await codeOf(c.call('reset'))).toBe('state');
      await c.call('incr');
      expect(await c.call('reset')).toBe(null);
    });

    it('limit: the enclave could not allocate the request buffer (the instance is kept)', async () => {
      const h = await fresh(hostileBytes);
      await h.call('fail_alloc');
      expect(await codeOf(h.call('ok'))).toBe('limit');
      expect(await codeOf(h.call('ok'))).toBe('limit');
    });

    it('internal: no reply at all', async () => {
      expect(await codeOf(hostile.call('zero_reply'))).toBe('internal');
      expect(await hostile.call('ok')).toBe('fine');
    });

    const discarding: [op: string, code: string][] = [
      ['huge_len', 'too_large'],
      ['ptr_oob', 'bad_reply'],
      ['desc_oob', 'bad_reply'],
      ['truncated', 'bad_reply'],
      ['x_not_envelope', 'bad_reply'],
      ['weird_code', 'bad_reply'],
      ['unreachable', 'trap'],
      ['bail', 'trap'],
      ['call_forever', 'stack_overflow'],
    ];
    for (const [op, code] of discarding) {
      it(`${code} (${op}), and the next call succeeds`, async () => {
        expect(await codeOf(hostile.call(op))).toBe(code);
        expect(await hostile.call('ok')).toBe('fine');
      });
    }

    it('a discarded instance forgets what succeeded: requires start over', async () => {
      const h = await fresh(hostileBytes);
      await h.call('ok');
      expect(await h.call('order')).toBe('fine');
      expect(await codeOf(h.call('unreachable'))).toBe('trap');
      expect(await codeOf(h.call('order'))).toBe('state');
      await h.call('ok');
      expect(await codeOf(h.call('x_not_envelope'))).toBe('bad_reply');
      expect(await codeOf(h.call('order'))).toBe('state');
    });

    it('fuel_exhausted: an endless loop stops at its budget, charged in full, and the next call succeeds', async () => {
      const loop = await fresh(await corpus('infinite-loop'));
      const stats = { fuel: -1 };
      expect(await codeOf(loop.call('attack', undefined, { stats }))).toBe('fuel_exhausted');
      expect(stats.fuel).toBe(loop.limits.fuel);
      expect(await loop.call('ok')).toBe('fine');
    });
  });

  describe('errors at load time', () => {
    it('capability_denied: a declared capability the host does not grant', async () => {
      const attester = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
      expect(await codeOf(loadIn(mode, attester))).toBe('capability_denied');
    });

    it('invalid_options: bad options, and seal/attest without a provider', async () => {
      const attester = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
      expect(await codeOf(loadIn(mode, attester, { capabilities: ['seal', 'attest'] }))).toBe('invalid_options');
      expect(await codeOf(loadIn(mode, COUNTER, { capabilities: ['root'] }))).toBe('invalid_options');
      expect(await codeOf(loadIn(mode, COUNTER, { policy: { depth: -1 } }))).toBe('invalid_options');
      expect(await codeOf(loadIn(mode, COUNTER, { state: 'shared' }))).toBe('invalid_options');
      expect(await codeOf(loadIn(mode, COUNTER, { maxSessions: 4 }))).toBe('invalid_options');
      expect(await codeOf(loadIn(mode, COUNTER, { onLog: 'console' }))).toBe('invalid_options');
    });

    it('invalid_module, invalid_contract, unsupported_abi: bytes that are not an enclave of this ABI', async () => {
      expect(await codeOf(loadIn(mode, new TextEncoder().encode('#!/bin/sh\n')))).toBe('invalid_module');
      expect(await codeOf(loadIn(mode, await watModule(minimalWat({ imports: '(import "env" "f" (func))' }), MINIMAL_CONTRACT)))).toBe('invalid_module');
      expect(await codeOf(loadIn(mode, await watModule(minimalWat())))).toBe('invalid_contract');
      const v2 = minimalWat({
        exports: `(func (export "enclave_abi_version") (result i32) (i32.const 2))
        (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
        (func (export "enclave_call") (param i32 i32) (result i32) (i32.const 0x100))`,
      });
      expect(await codeOf(loadIn(mode, await watModule(v2, MINIMAL_CONTRACT)))).toBe('unsupported_abi');
    });

    it('untrusted_module and rollback: a trust policy the module does not meet', async () => {
      const keys = keyPairFromSeed(new Uint8Array(32).fill(42));
      const stranger = keyPairFromSeed(new Uint8Array(32).fill(43));
      const minimal = await watModule(minimalWat(), { ...MINIMAL_CONTRACT, svn: 3 });
      const signed = signModule(minimal, keys);
      expect(await codeOf(loadIn(mode, minimal, { trust: { trusted: [{ publicKey: keys.publicKey }] } }))).toBe('untrusted_module');
      expect(await codeOf(loadIn(mode, signed, { trust: { trusted: [{ publicKey: stranger.publicKey }] } }))).toBe('untrusted_module');
      expect(await codeOf(loadIn(mode, signed, { trust: { trusted: [{ publicKey: keys.publicKey, minSvn: 4 }] } }))).toBe('rollback');
      const admitted = await loadIn(mode, signed, { trust: { trusted: [{ publicKey: keys.publicKey, minSvn: 3 }] } });
      expect(await admitted.call('ping')).toBe(true);
      await admitted.close();
    });

    it('memory_limit: a policy below the module maximum', async () => {
      expect(await codeOf(loadIn(mode, COUNTER, { policy: { memoryPages: 1 } }))).toBe('memory_limit');
    });

    it('trap and fuel_exhausted: a start function that traps or loops', async () => {
      const trapping = await watModule(minimalWat({ body: '(func $s unreachable) (start $s)' }), MINIMAL_CONTRACT);
      expect(await codeOf(loadIn(mode, trapping))).toBe('trap');
      expect(await codeOf(loadIn(mode, await corpus('start-loop')))).toBe('fuel_exhausted');
    });
  });

  describe('close', () => {
    it('close() then call: closed; close is idempotent and async in both modes', async () => {
      const c = await loadIn(mode, COUNTER);
      expect(c.closed).toBe(false);
      expect(await c.call('incr')).toBe(1);
      const closing = c.close();
      expect(closing).toBeInstanceOf(Promise);
      await closing;
      expect(c.closed).toBe(true);
      expect(await codeOf(c.call('get'))).toBe('closed');
      // closed comes before any check of the call itself.
      expect(await codeOf(c.call('nope', { by: 0 }))).toBe('closed');
      await c.close();
      expect(c.closed).toBe(true);
    });

    it('calls already waiting when close() is called end with closed, never hang', async () => {
      const c = await loadIn(mode, COUNTER);
      const calls = Array.from({ length: 5 }, () => c.call('incr').then(() => 'ok', (err: EnclaveError) => err.code));
      await c.close();
      const outcomes = await Promise.all(calls);
      for (const outcome of outcomes) expect(['ok', 'closed']).toContain(outcome);
    });
  });
});

describe('both modes fail alike: the same code, message and detail', () => {
  it('for every failing call of the hostile fixture, the counter and crypto', async () => {
    const hostileBytes = await fixture('hostile');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const calls: [source: Uint8Array, op: string, args?: unknown][] = [
      ...['ptr_oob', 'huge_len', 'span_oob', 'desc_oob', 'truncated', 'ext', 'nested', 'weird_code', 'x_not_envelope', 'refuse', 'junk_after', 'zero_reply', 'unreachable', 'bail', 'call_forever', 'order', 'nope'].map(
        (op) => [hostileBytes, op] as [Uint8Array, string],
      ),
      [hostileBytes, 'ok', 'x'.repeat(20_000)],
      [hostileBytes, 'ok', cyclic],
      [COUNTER, 'incr', { by: 0 }],
      [COUNTER, 'reset'],
      [CRYPTO, 'aead_seal', { alg: 'rot13', key: new Uint8Array(32), nonce: new Uint8Array(12), aad: new Uint8Array(0), plaintext: new Uint8Array(1) }],
    ];
    const outcomes = async (mode: (typeof MODES)[number]) => {
      const handles = new Map<Uint8Array, EnclaveHandle>();
      const out: unknown[] = [];
      try {
        for (const [source, op, args] of calls) {
          if (!handles.has(source)) handles.set(source, await loadIn(mode, source));
          const err = (await handles.get(source)!.call(op, args).catch((e: unknown) => e)) as EnclaveError;
          expect(err, op).toBeInstanceOf(EnclaveError);
          out.push({ op, name: err.name, class: err.constructor.name, code: err.code, message: err.message, detail: err.detail });
        }
      } finally {
        await Promise.all([...handles.values()].map((h) => h.close()));
      }
      return out;
    };
    const [inProcess, worker] = await Promise.all(MODES.map(outcomes));
    expect(worker).toEqual(inProcess);
  });
});
