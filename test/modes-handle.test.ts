/**
 * The handle both isolation modes implement (EnclaveHandle): contract, measurement, identity,
 * limits, attest, drain, close, with the same values and signatures in both modes
 * (test/helpers/modes.ts).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttestationError,
  DEFAULT_POLICY,
  EnclaveError,
  measure,
  signModule,
  SoftwareAttestationProvider,
  verifyEvidence,
  type EnclaveHandle,
} from '../host/index.js';
import { keyPairFromSeed } from '../attest/index.js';
import { ATTEST_CONTRACT, ATTEST_WAT } from './helpers/attest-wat.js';
import { codeOf } from './helpers/errors.js';
import { loadIn, MODES, type Mode } from './helpers/modes.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

const COUNTER = new Uint8Array(readFileSync(new URL('../enclave-modules/counter/build/counter.wasm', import.meta.url)));
const COUNTER_CONTRACT = JSON.parse(readFileSync(new URL('../enclave-modules/counter/contract.json', import.meta.url), 'utf8'));
const CAPS = ['seal', 'attest'];
const NONCE = new Uint8Array(16).fill(9);

let provider: SoftwareAttestationProvider;
let attester: Uint8Array;
beforeAll(async () => {
  provider = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-platform-')) });
  attester = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
});

/** The claims of a token without the ones that change with time or the nonce. */
async function claimsOf(token: string, measurement: string, nonce: Uint8Array): Promise<Record<string, unknown>> {
  const verified = await verifyEvidence(token, { platformKey: provider.publicJwk(), policy: { measurements: [measurement], allowDebug: true }, nonce });
  const claims: Record<string, unknown> = { ...verified.claims };
  for (const key of ['iat', 'exp', 'nbf', 'jti', 'eat_nonce']) delete claims[key];
  return claims;
}

describe.each(MODES)('$name', (mode) => {
  let counter: EnclaveHandle;
  let attesting: EnclaveHandle;
  beforeAll(async () => {
    [counter, attesting] = await Promise.all([
      loadIn(mode, COUNTER, { policy: { replyBytes: 512, fuel: 5_000_000 } }),
      loadIn(mode, attester, { capabilities: CAPS, attestation: provider }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([counter?.close(), attesting?.close()]);
  });

  it('contract: the module contract, as parsed', () => {
    expect(counter.contract.name).toBe('counter');
    expect(counter.contract.version).toBe(COUNTER_CONTRACT.version);
    expect(counter.contract.svn).toBe(COUNTER_CONTRACT.svn);
    expect(Object.keys(counter.contract.ops).sort()).toEqual(['get', 'incr', 'reset']);
    expect(counter.contract.ops.reset?.requires).toEqual(['incr']);
  });

  it('measurement: SHA-256 of the module bytes, hex', () => {
    expect(counter.measurement).toBe(Buffer.from(measure(COUNTER)).toString('hex'));
  });

  it('identity: measurement and svn; the signer when a trust policy admitted the module', async () => {
    expect(counter.identity.measurement).toBe(counter.measurement);
    expect(counter.identity.svn).toBe(COUNTER_CONTRACT.svn);
    expect(counter.identity.signer).toBeUndefined();
    // A fixed key: Ed25519 signs deterministically, so the signed bytes are instrumented once and cached.
    const keys = keyPairFromSeed(new Uint8Array(32).fill(42));
    const minimal = await watModule(minimalWat(), { ...MINIMAL_CONTRACT, svn: 3 });
    const signed = await loadIn(mode, signModule(minimal, keys), { trust: { trusted: [{ publicKey: keys.publicKey, minSvn: 3 }] } });
    try {
      expect(signed.identity.signer).toMatch(/^[0-9a-f]{64}$/);
      expect(signed.identity.svn).toBe(3);
      // The signature section is not measured: the measurement is the unsigned module's.
      expect(signed.identity.measurement).toBe(Buffer.from(measure(minimal)).toString('hex'));
      expect(signed.measurement).toBe(signed.identity.measurement);
    } finally {
      await signed.close();
    }
  });

  it('limits: the contract capped by the host policy', () => {
    expect(counter.limits.requestBytes).toBe(COUNTER_CONTRACT.limits.requestBytes);
    expect(counter.limits.replyBytes).toBe(512);
    expect(counter.limits.memoryPages).toBe(COUNTER_CONTRACT.limits.memoryPages);
    expect(counter.limits.fuel).toBe(5_000_000);
    expect(counter.limits.tableElements).toBeLessThanOrEqual(DEFAULT_POLICY.tableElements);
  });

  it('attest: evidence about this enclave, bound to the nonce, which verifies (a Promise in both modes)', async () => {
    const pending = attesting.attest(NONCE);
    expect(pending).toBeInstanceOf(Promise);
    const claims = await claimsOf(await pending, attesting.measurement, NONCE);
    expect(claims['enclave.measurement']).toBe(attesting.measurement);
    expect(claims['enclave.svn']).toBe(ATTEST_CONTRACT.svn);
    expect(claims['enclave.capabilities']).toEqual(['attest', 'seal']);
  });

  it('attest: a bad nonce rejects with AttestationError invalid_nonce; no provider with invalid_options; never a synchronous throw', async () => {
    const bad = attesting.attest(new Uint8Array(0));
    expect(bad).toBeInstanceOf(Promise);
    await expect(bad).rejects.toBeInstanceOf(AttestationError);
    await expect(attesting.attest(new Uint8Array(0))).rejects.toMatchObject({ code: 'invalid_nonce' });
    await expect(attesting.attest('nonce' as never)).rejects.toMatchObject({ code: 'invalid_nonce' });
    const none = counter.attest(NONCE);
    expect(none).toBeInstanceOf(Promise);
    await expect(none).rejects.toBeInstanceOf(EnclaveError);
    await expect(counter.attest(NONCE)).rejects.toMatchObject({ code: 'invalid_options' });
  });

  it('drain: resolves once the calls made before it have settled, and serves on', async () => {
    const settled: number[] = [];
    const calls = [1, 2, 3].map((by) => counter.call('incr', { by }).then(() => settled.push(by)));
    const draining = counter.drain();
    expect(draining).toBeInstanceOf(Promise);
    await draining;
    expect(settled.sort()).toEqual([1, 2, 3]);
    await Promise.all(calls);
    await counter.drain(); // idle: resolves at once
    expect(typeof (await counter.call('get'))).toBe('number');
  });

  it('close: then call, attest and endSession are closed or false; close is idempotent', async () => {
    const e = await loadIn(mode, attester, { capabilities: CAPS, attestation: provider });
    await e.close();
    expect(e.closed).toBe(true);
    expect(await codeOf(e.call('key'))).toBe('closed');
    await expect(e.attest(NONCE)).rejects.toBeInstanceOf(EnclaveError);
    await expect(e.attest(NONCE)).rejects.toMatchObject({ code: 'closed' });
    expect(await e.endSession('a')).toBe(false);
    await e.drain();
    await e.close();
  });

  it('offers every member of EnclaveHandle, the interface a supervisor depends on', () => {
    const members: (keyof EnclaveHandle)[] = ['call', 'attest', 'endSession', 'drain', 'close', 'contract', 'measurement', 'identity', 'limits', 'closed'];
    for (const member of members) expect(counter[member], member).toBeDefined();
  });
});

describe('both modes describe the same enclave alike', () => {
  const [inProcess, worker] = MODES as [Mode, Mode];
  let handles: [EnclaveHandle, EnclaveHandle];
  const options = () => ({ capabilities: CAPS, attestation: provider, policy: { replyBytes: 4096, fuel: 3_000_000 } });
  beforeAll(async () => {
    handles = await Promise.all([loadIn(inProcess, attester, options()), loadIn(worker, attester, options())]);
  });
  afterAll(async () => {
    await Promise.all(handles?.map((h) => h.close()) ?? []);
  });

  it('contract, measurement, identity, limits', () => {
    const [a, b] = handles;
    expect(b.contract).toEqual(a.contract);
    expect(b.measurement).toBe(a.measurement);
    expect(b.identity).toEqual(a.identity);
    expect(b.limits).toEqual(a.limits);
    expect(Object.isFrozen(b.limits)).toBe(Object.isFrozen(a.limits));
  });

  it('attest: the same claims apart from time and nonce', async () => {
    const [a, b] = handles;
    const other = new Uint8Array(32).fill(1);
    const ca = await claimsOf(await a.attest(NONCE), a.measurement, NONCE);
    const cb = await claimsOf(await b.attest(other), b.measurement, other);
    expect(cb).toEqual(ca);
    expect(ca['enclave.limits']).toMatchObject({ replyBytes: 4096, fuel: 3_000_000 });
  });

  it('attest for a debug enclave: the same claims, debug marked in both', async () => {
    const debug = await Promise.all([loadIn(inProcess, attester, { ...options(), debug: true }), loadIn(worker, attester, { ...options(), debug: true })]);
    try {
      const ca = await claimsOf(await debug[0].attest(NONCE), debug[0].measurement, NONCE);
      const cb = await claimsOf(await debug[1].attest(NONCE), debug[1].measurement, NONCE);
      expect(cb).toEqual(ca);
      expect(ca).not.toEqual(await claimsOf(await handles[0].attest(NONCE), handles[0].measurement, NONCE));
    } finally {
      await Promise.all(debug.map((h) => h.close()));
    }
  });

  it('attest with an enclave key: carried in cnf alike', async () => {
    const [a, b] = handles;
    const enclaveKey = { kty: 'OKP', crv: 'X25519', x: Buffer.alloc(32, 5).toString('base64url') } as never;
    const ca = await claimsOf(await a.attest(NONCE, { enclaveKey }), a.measurement, NONCE);
    const cb = await claimsOf(await b.attest(NONCE, { enclaveKey }), b.measurement, NONCE);
    expect(ca.cnf).toBeDefined();
    expect(cb).toEqual(ca);
  });
});
