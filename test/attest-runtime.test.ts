import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, measure, signModule, SoftwareAttestationProvider, verifyEvidence } from '../attest/index.js';
import { EnclaveError, loadEnclave } from '../host/index.js';
import { RUNTIME_VERSION } from '../runtime/version.js';
import { ATTEST_CONTRACT, ATTEST_WAT } from './helpers/attest-wat.js';
import { watModule } from './helpers/wat.js';
import { codeOf } from './helpers/errors.js';

const COUNTER = 'enclave-modules/counter/build/counter.wasm';

describe('trusted modules', () => {
  const trusted = generateKeyPair();
  const stranger = generateKeyPair();
  let unsigned: Uint8Array;
  let signed: Uint8Array;
  beforeAll(async () => {
    unsigned = new Uint8Array(await readFile(COUNTER));
    signed = signModule(unsigned, trusted);
  });

  it('loads a module signed by a trusted key and names the signer', async () => {
    const enclave = await loadEnclave(signed, { trust: { trusted: [{ publicKey: trusted.publicKey, minSvn: 1 }] } });
    expect(enclave.identity.signer).toMatch(/^[0-9a-f]{64}$/);
    expect(await enclave.call('incr')).toBe(1);
  });

  it('measures the same bytes with or without the signature section', async () => {
    const a = await loadEnclave(unsigned);
    const b = await loadEnclave(signed);
    expect(b.measurement).toBe(a.measurement);
    expect(a.measurement).toBe(Buffer.from(measure(unsigned)).toString('hex'));
  });

  it('refuses an unsigned module with untrusted_module', async () => {
    expect(await codeOf(loadEnclave(unsigned, { trust: { trusted: [{ publicKey: trusted.publicKey }] } }))).toBe('untrusted_module');
  });

  it('refuses a module signed by another key with untrusted_module', async () => {
    const other = signModule(unsigned, stranger);
    expect(await codeOf(loadEnclave(other, { trust: { trusted: [{ publicKey: trusted.publicKey }] } }))).toBe('untrusted_module');
  });

  it('refuses a signed module with one byte changed with untrusted_module', async () => {
    const tampered = signed.slice();
    const at = Buffer.from(tampered).lastIndexOf('"1.0.0"');
    expect(at).toBeGreaterThan(0);
    tampered[at + 5] = '1'.charCodeAt(0); // "1.0.0" -> "1.0.1": still a valid module and contract
    expect(await codeOf(loadEnclave(tampered, { trust: { trusted: [{ publicKey: trusted.publicKey }] } }))).toBe('untrusted_module');
    // Without a trust policy the same bytes load: the refusal is the signature's doing.
    await expect(loadEnclave(tampered)).resolves.toBeDefined();
  });

  it('refuses an svn below the signer floor with rollback', async () => {
    expect(await codeOf(loadEnclave(signed, { trust: { trusted: [{ publicKey: trusted.publicKey, minSvn: 2 }] } }))).toBe('rollback');
  });

  it('refuses a malformed trust policy as invalid_options', async () => {
    expect(await codeOf(loadEnclave(signed, { trust: { trusted: 'everyone' as never } }))).toBe('invalid_options');
  });
});

describe('the seal and attest capabilities', () => {
  let provider: SoftwareAttestationProvider;
  let bytes: Uint8Array;
  beforeAll(async () => {
    provider = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-platform-')) });
    bytes = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
  });

  it('cannot be granted without a provider', async () => {
    expect(await codeOf(loadEnclave(bytes, { capabilities: ['seal', 'attest'] }))).toBe('invalid_options');
  });

  it('seal_key writes the key bound to the measurement, and the same key every time', async () => {
    const enclave = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider });
    expect(await enclave.call('m_seal')).toBe(0);
    const key = new Uint8Array((await enclave.call('key')) as Uint8Array);
    expect(key).toEqual(provider.getSealingSecret(enclave.identity, 'measurement'));
    const again = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider });
    await again.call('m_seal');
    expect(new Uint8Array((await again.call('key')) as Uint8Array)).toEqual(key);
  });

  it('a different module gets a different sealing key', async () => {
    const other = await watModule(ATTEST_WAT, { ...ATTEST_CONTRACT, version: '1.0.1' });
    const a = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider });
    const b = await loadEnclave(other, { capabilities: ['seal', 'attest'], attestation: provider });
    await a.call('m_seal');
    await b.call('m_seal');
    expect(new Uint8Array((await a.call('key')) as Uint8Array)).not.toEqual(new Uint8Array((await b.call('key')) as Uint8Array));
  });

  it('seal_key reports errors as values: -3 signer policy unsigned, -2 unknown policy, -1 out of bounds', async () => {
    const enclave = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider });
    expect(await enclave.call('s_seal')).toBe(-3);
    expect(await enclave.call('u_seal')).toBe(-2);
    expect(await enclave.call('o_seal')).toBe(-1);
    expect(await enclave.call('m_seal')).toBe(0);
  });

  it('seal_key with the signer policy works for a trusted signed module', async () => {
    const keys = generateKeyPair();
    const signed = signModule(bytes, keys);
    const enclave = await loadEnclave(signed, {
      capabilities: ['seal', 'attest'],
      attestation: provider,
      trust: { trusted: [{ publicKey: keys.publicKey }] },
    });
    expect(await enclave.call('s_seal')).toBe(0);
    expect(new Uint8Array((await enclave.call('key')) as Uint8Array)).toEqual(provider.getSealingSecret(enclave.identity, 'signer'));
  });

  it('report issues evidence binding the enclave data, which verifies', async () => {
    const enclave = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider });
    const token = Buffer.from((await enclave.call('report')) as Uint8Array).toString('ascii');
    const data = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz012345');
    const verified = await verifyEvidence(token, {
      platformKey: provider.publicJwk(),
      policy: { measurements: [enclave.measurement] },
      nonce: data,
      reportData: data,
    });
    expect(verified.claims['enclave.measurement']).toBe(enclave.measurement);
    expect(verified.claims['enclave.svn']).toBe(4);
    expect(verified.claims['enclave.runtime']).toBe(RUNTIME_VERSION);
    expect(verified.claims['enclave.capabilities']).toEqual(['attest', 'seal']);
  });

  it('report with a buffer too small returns the length needed and writes nothing', async () => {
    const enclave = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider });
    const needed = (await enclave.call('tiny_report')) as number;
    expect(needed).toBeGreaterThan(100);
    const token = (await enclave.call('report')) as Uint8Array;
    expect(Math.abs(token.length - needed)).toBeLessThan(4); // a fresh token; only iat digits may differ
  });

  it('report refuses bad report data and bad pointers as values, never traps', async () => {
    const enclave = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider });
    expect(await enclave.call('big_data')).toBe(-2);
    expect(await enclave.call('zero_data')).toBe(-2);
    expect(await enclave.call('x_data')).toBe(-1);
    expect(await enclave.call('m_seal')).toBe(0);
  });

  it('evidence from the host names the enclave and its limits, and needs a nonce', async () => {
    const enclave = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider, policy: { replyBytes: 4096 } });
    const nonce = new Uint8Array(16).fill(9);
    const verified = await verifyEvidence(await enclave.attest(nonce), {
      platformKey: provider.publicJwk(),
      policy: { measurements: [enclave.measurement] },
      nonce,
    });
    expect(verified.claims['enclave.limits']).toMatchObject({ replyBytes: 4096 });
    await expect(enclave.attest(new Uint8Array(0))).rejects.toThrow();
    const plain = await loadEnclave(bytes.slice(), { capabilities: ['seal', 'attest'], attestation: provider });
    plain.close();
    await expect(plain.attest(nonce)).rejects.toThrow(EnclaveError);
  });
});

describe('a misbehaving attestation provider', () => {
  it('a sealing key of the wrong type or size is -3, never a trap or a short key', async () => {
    const bytes = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
    const real = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-platform-')) });
    for (const wrong of ['not bytes', new Uint8Array(16), null]) {
      const provider = Object.assign(Object.create(real) as SoftwareAttestationProvider, {
        getSealingSecret: () => wrong as unknown as Uint8Array,
      });
      const enclave = await loadEnclave(bytes, { capabilities: ['seal', 'attest'], attestation: provider });
      expect(await enclave.call('m_seal')).toBe(-3);
      expect(await enclave.call('u_seal')).toBe(-2); // and the instance serves on
    }
  });
});

describe('RUNTIME_VERSION', () => {
  it('matches package.json', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    expect(RUNTIME_VERSION).toBe(pkg.version);
  });
});
