/**
 * Attestation in worker mode: the provider stays on the host thread and the worker's seal_key and
 * report imports reach it through host calls (runtime/_worker-hostcall.ts). Everything here is
 * compared with the in-process mode on the same module and provider.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AttestationError, generateKeyPair, signModule, SoftwareAttestationProvider, verifyEvidence } from '../attest/index.js';
import type { AttestationProvider } from '../attest/provider.js';
import { EnclaveError, loadEnclave } from '../host/index.js';
import { answerHostCall } from '../runtime/_worker-hostcall.js';
import { HC_STATE, HOSTCALL_DATA_BYTES, HOSTCALL_HEADER_BYTES } from '../runtime/_worker-protocol.js';
import { ATTEST_CONTRACT, ATTEST_WAT } from './helpers/attest-wat.js';
import { watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

const CAPS = ['seal', 'attest'] as ('seal' | 'attest')[];
const DATA = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz012345');

/** The claims of a token without the ones that change with time. */
async function claimsOf(token: string, provider: AttestationProvider, measurement: string, nonce: Uint8Array, reportData?: Uint8Array) {
  const verified = await verifyEvidence(token, {
    platformKey: provider.publicJwk(),
    policy: { measurements: [measurement], allowDebug: true },
    nonce,
    ...(reportData ? { reportData } : {}),
  });
  const claims: Record<string, unknown> = { ...verified.claims };
  for (const key of ['iat', 'exp', 'nbf', 'jti']) delete claims[key];
  return claims;
}

/** A provider whose methods are replaced per test; the real one underneath. */
function wrap(real: AttestationProvider, over: Partial<AttestationProvider>): AttestationProvider {
  return {
    get platform() {
      return real.platform;
    },
    measure: (b) => real.measure(b),
    getEvidence: (r) => real.getEvidence(r),
    getSealingSecret: (i, p, o) => real.getSealingSecret(i, p, o),
    publicJwk: () => real.publicJwk(),
    ...over,
  };
}

describe('attestation in worker mode', () => {
  let provider: SoftwareAttestationProvider;
  let bytes: Uint8Array;
  const worker = (extra: Record<string, unknown> = {}) => ({ isolation: 'worker' as const, capabilities: CAPS, attestation: provider, ...extra });
  beforeAll(async () => {
    provider = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-platform-')) });
    bytes = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
  });

  it('accepts the attestation option; seal_key gives the same key as in-process', async () => {
    const w = await loadEnclave(bytes, worker());
    const p = await loadEnclave(bytes, { capabilities: CAPS, attestation: provider });
    try {
      expect(await w.call('m_seal')).toBe(0);
      expect(await p.call('m_seal')).toBe(0);
      const key = new Uint8Array((await w.call('key')) as Uint8Array);
      expect(key).toEqual(new Uint8Array((await p.call('key')) as Uint8Array));
      expect(key).toEqual(provider.getSealingSecret(w.identity, 'measurement'));
    } finally {
      await w.close();
    }
  });

  it('seal_key returns the same error values: -3 signer unsigned, -2 unknown policy, -1 out of bounds', async () => {
    const w = await loadEnclave(bytes, worker());
    try {
      expect(await w.call('s_seal')).toBe(-3);
      expect(await w.call('u_seal')).toBe(-2);
      expect(await w.call('o_seal')).toBe(-1);
      expect(await w.call('m_seal')).toBe(0);
    } finally {
      await w.close();
    }
  });

  it('seal_key with the signer policy gives the signer key for a trusted signed module', async () => {
    const keys = generateKeyPair();
    const signed = signModule(bytes, keys);
    const w = await loadEnclave(signed, worker({ trust: { trusted: [{ publicKey: keys.publicKey }] } }));
    try {
      expect(await w.call('s_seal')).toBe(0);
      expect(new Uint8Array((await w.call('key')) as Uint8Array)).toEqual(provider.getSealingSecret(w.identity, 'signer'));
    } finally {
      await w.close();
    }
  });

  it('report issues a token that verifies and carries the same claims as in-process', async () => {
    const options = { policy: { replyBytes: 8192 }, debug: true };
    const w = await loadEnclave(bytes, worker(options));
    const p = await loadEnclave(bytes, { capabilities: CAPS, attestation: provider, ...options });
    try {
      const wt = Buffer.from((await w.call('report')) as Uint8Array).toString('ascii');
      const pt = Buffer.from((await p.call('report')) as Uint8Array).toString('ascii');
      const wc = await claimsOf(wt, provider, w.measurement, DATA, DATA);
      expect(wc).toEqual(await claimsOf(pt, provider, p.measurement, DATA, DATA));
      expect(wc['enclave.capabilities']).toEqual(['attest', 'seal']);
      expect(wc['enclave.limits']).toMatchObject({ replyBytes: 8192 });
      // Too small a buffer: the length needed; bad data and pointers: the same values.
      const needed = (await w.call('tiny_report')) as number;
      expect(Math.abs(needed - wt.length)).toBeLessThan(4);
      expect(await w.call('big_data')).toBe(-2);
      expect(await w.call('zero_data')).toBe(-2);
      expect(await w.call('x_data')).toBe(-1);
    } finally {
      await w.close();
    }
  });

  it('attest() issues evidence on the host thread with the same claims as in-process', async () => {
    const options = { policy: { replyBytes: 4096 } };
    const w = await loadEnclave(bytes, worker(options));
    const p = await loadEnclave(bytes, { capabilities: CAPS, attestation: provider, ...options });
    const nonce = new Uint8Array(16).fill(9);
    const wc = await claimsOf(await w.attest(nonce), provider, w.measurement, nonce);
    expect(wc).toEqual(await claimsOf(await p.attest(nonce), provider, p.measurement, nonce));
    expect(wc['enclave.limits']).toMatchObject({ replyBytes: 4096 });
    await expect(w.attest(new Uint8Array(0))).rejects.toThrow(AttestationError);
    await w.close();
    await expect(w.attest(nonce)).rejects.toThrow(EnclaveError);
    const plain = await loadEnclave(bytes.slice(), { isolation: 'worker', capabilities: [] as never[] }).catch((err: unknown) => err);
    // The module needs seal and attest: without them it is refused as in-process.
    expect((plain as EnclaveError).code).toBe('capability_denied');
  });

  it('refuses seal/attest without a provider, as in-process', async () => {
    expect(await codeOf(loadEnclave(bytes, { isolation: 'worker', capabilities: CAPS }))).toBe('invalid_options');
  });

  it('a provider that throws gives the same values as in-process and never breaks the host', async () => {
    const cases: Partial<AttestationProvider>[] = [
      {
        getSealingSecret: () => {
          throw new AttestationError('platform_unavailable');
        },
        getEvidence: () => {
          throw new AttestationError('invalid_nonce');
        },
      },
      {
        getSealingSecret: () => {
          throw new TypeError('boom');
        },
        getEvidence: () => {
          throw 'not an error';
        },
      },
    ];
    for (const over of cases) {
      const bad = wrap(provider, over);
      const w = await loadEnclave(bytes, { isolation: 'worker', capabilities: CAPS, attestation: bad });
      const p = await loadEnclave(bytes, { capabilities: CAPS, attestation: bad });
      try {
        for (const op of ['m_seal', 'report']) expect(await w.call(op)).toEqual(await p.call(op));
      } finally {
        await w.close();
      }
    }
    // A provider that breaks its contract (wrong types) cannot harm the host either: -3.
    const wrong = wrap(provider, { getSealingSecret: () => 'not bytes' as never, getEvidence: () => 42 as never });
    const x = await loadEnclave(bytes, { isolation: 'worker', capabilities: CAPS, attestation: wrong });
    expect(await x.call('m_seal')).toBe(-3);
    expect(await x.call('report')).toBe(-3);
    await x.close();
    // The first case, checked by value: -3 for the seal, -2 for a refused nonce.
    const w = await loadEnclave(bytes, { isolation: 'worker', capabilities: CAPS, attestation: wrap(provider, cases[0]!) });
    expect(await w.call('m_seal')).toBe(-3);
    expect(await w.call('report')).toBe(-2);
    await w.close();
  });

  it('a provider that runs past the deadline ends the call with timeout; the next call works', async () => {
    let slow = true;
    const hanging = wrap(provider, {
      getSealingSecret: (i, p) => {
        const until = Date.now() + 300;
        while (slow && Date.now() < until);
        return provider.getSealingSecret(i, p);
      },
    });
    const w = await loadEnclave(bytes, { isolation: 'worker', deadlineMs: 100, capabilities: CAPS, attestation: hanging });
    try {
      expect(await codeOf(w.call('m_seal'))).toBe('timeout');
      slow = false;
      expect(await w.call('m_seal')).toBe(0);
      expect(new Uint8Array((await w.call('key')) as Uint8Array)).toEqual(provider.getSealingSecret(w.identity, 'measurement'));
    } finally {
      await w.close();
    }
  });

  it('answerHostCall ignores malformed, forged and stale messages without throwing', () => {
    const context = {
      identity: { measurement: '00'.repeat(32), svn: 1 },
      runtimeVersion: '0',
      limits: {},
      capabilities: [],
      debug: false,
    } as never;
    let calls = 0;
    const counting = wrap(provider, {
      getSealingSecret: () => {
        calls++;
        return new Uint8Array(32);
      },
    });
    const sab = new SharedArrayBuffer(HOSTCALL_HEADER_BYTES + HOSTCALL_DATA_BYTES);
    const ctl = new Int32Array(sab, 0, 4);
    Atomics.store(ctl, HC_STATE, 7);
    const hostile = new Proxy({}, { get: () => { throw new Error('trap'); } });
    for (const message of [
      null,
      undefined,
      42,
      'x',
      {},
      hostile,
      { type: 'hostcall', sab: new SharedArrayBuffer(8), seq: 7, kind: 'seal', policy: 'measurement' },
      { type: 'hostcall', sab: new ArrayBuffer(HOSTCALL_HEADER_BYTES + HOSTCALL_DATA_BYTES), seq: 7, kind: 'seal', policy: 'measurement' },
      { type: 'hostcall', sab, seq: 8, kind: 'seal', policy: 'measurement' },
      { type: 'hostcall', sab, seq: -7, kind: 'seal', policy: 'measurement' },
      { type: 'hostcall', sab, seq: 7.5, kind: 'seal', policy: 'measurement' },
      { type: 'hostcall', sab, seq: 7, kind: 'unknown' },
    ]) {
      expect(() => answerHostCall(message, counting, context, 1000)).not.toThrow();
    }
    expect(calls).toBe(0);
    expect(Atomics.load(ctl, HC_STATE)).toBe(7);
    // Bad fields of a well-addressed call are refused as errors, never passed on.
    answerHostCall({ type: 'hostcall', sab, seq: 7, kind: 'seal', policy: 'everything' }, counting, context, 1000);
    expect(calls).toBe(0);
    expect(Atomics.load(ctl, HC_STATE)).toBe(-7);
    Atomics.store(ctl, HC_STATE, 9);
    answerHostCall({ type: 'hostcall', sab, seq: 9, kind: 'evidence', nonce: new Uint8Array(1 << 20), reportData: undefined }, counting, context, 1000);
    expect(Atomics.load(ctl, HC_STATE)).toBe(-9);
    Atomics.store(ctl, HC_STATE, 10);
    answerHostCall({ type: 'hostcall', sab, seq: 10, kind: 'seal', policy: 'measurement' }, counting, context, 1000);
    expect(calls).toBe(1);
    expect(Atomics.load(ctl, HC_STATE)).toBe(-10);
  });
});
