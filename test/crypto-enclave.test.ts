// The crypto test enclave (enclave-modules/crypto/) across the real boundary: the public host
// API, msgpack, contract checks and limits. A sample of the Wycheproof and RFC vectors (the full
// sets run against the harness in crypto.test.ts) plus error mapping.

import { beforeAll, describe, expect, it } from 'vitest';
import { sha256 as nSha256 } from '@noble/hashes/sha2.js';
import { ed25519 as nEd } from '@noble/curves/ed25519.js';
import { loadEnclave, type Enclave } from '../host/index.js';
import { buildModule } from '../host/build-modules.js';
import { ROOT, hex, unhex, wycheproof } from './crypto/harness-loader.js';

let enc: Enclave;

beforeAll(async () => {
  // Build from the current sources so that the test never runs a stale module.
  const built = await buildModule(`${ROOT}enclave-modules/crypto`);
  // Hashing 1 MB takes more than the default policy's fuel (about 100 ms of worst-case work):
  // the host grants what the contract asks for, knowingly (docs/LIMITS.md, "Fuel").
  enc = await loadEnclave(built.output, { policy: { fuel: 500_000_000 } });
});

const utf8 = (s: string) => new TextEncoder().encode(s);
const bytes = (v: unknown) => hex(new Uint8Array(v as Uint8Array));

/** Every `step`-th test of a Wycheproof file, with its group. */
function sample(file: string, step: number): Array<{ group: any; t: any }> {
  const out: Array<{ group: any; t: any }> = [];
  let i = 0;
  for (const group of wycheproof(file).testGroups) for (const t of group.tests) if (i++ % step === 0) out.push({ group, t });
  return out;
}

describe('crypto enclave: known answers across the boundary', () => {
  it('hashes, HMAC and HKDF', async () => {
    expect(bytes(await enc.call('sha256', { data: utf8('abc') }))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(bytes(await enc.call('sha512', { data: utf8('abc') }))).toBe('ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f');
    expect(bytes(await enc.call('hmac_sha256', { key: utf8('Jefe'), data: utf8('what do ya want for nothing?') }))).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    expect(bytes(await enc.call('hmac_sha512', { key: utf8('Jefe'), data: utf8('what do ya want for nothing?') }))).toBe('164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737');
    const okm = await enc.call('hkdf_sha256', { ikm: new Uint8Array(22).fill(11), salt: unhex('000102030405060708090a0b0c'), info: unhex('f0f1f2f3f4f5f6f7f8f9'), length: 42 });
    expect(bytes(okm)).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
  });

  it('a 1 MB message hashes like @noble', async () => {
    const big = new Uint8Array(1_000_000).map((_, i) => (i * 31) & 0xff);
    expect(bytes(await enc.call('sha256', { data: big }))).toBe(hex(nSha256(big)));
  });

  it('X25519 (RFC 7748 §6.1) and Ed25519 (RFC 8032 §7.1 test 2)', async () => {
    const a = unhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const b = unhex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const bPub = await enc.call('x25519_public_key', { secret_key: b });
    expect(bytes(bPub)).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    expect(bytes(await enc.call('x25519', { secret_key: a, public_key: bPub }))).toBe('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742');
    const seed = unhex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb');
    const pub = await enc.call('ed25519_public_key', { seed });
    expect(bytes(pub)).toBe('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c');
    const sig = await enc.call('ed25519_sign', { seed, message: unhex('72') });
    expect(bytes(sig)).toBe('92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00');
    expect(await enc.call('ed25519_verify', { public_key: pub, message: unhex('72'), signature: sig })).toBe(true);
    expect(nEd.verify(new Uint8Array(sig as Uint8Array), unhex('72'), new Uint8Array(pub as Uint8Array))).toBe(true);
  });
});

describe('crypto enclave: Wycheproof samples across the boundary', () => {
  for (const [file, alg] of [['chacha20_poly1305_test.json', 'chacha20poly1305'], ['xchacha20_poly1305_test.json', 'xchacha20poly1305']] as const) {
    it(`${file} (every 8th vector)`, async () => {
      const cases = sample(file, 8);
      expect(cases.length).toBeGreaterThan(35);
      for (const { t } of cases) {
        const key = unhex(t.key), nonce = unhex(t.iv), aad = unhex(t.aad);
        const opened = await enc.call('aead_open', { alg, key, nonce, aad, sealed: unhex(t.ct + t.tag) });
        if (t.result === 'valid') {
          expect(bytes(await enc.call('aead_seal', { alg, key, nonce, aad, plaintext: unhex(t.msg) })), `tcId ${t.tcId}`).toBe(t.ct + t.tag);
          expect(bytes(opened), `tcId ${t.tcId}`).toBe(t.msg);
        } else {
          expect(opened, `tcId ${t.tcId}`).toBeNull();
        }
      }
    });
  }

  it('hmac_sha256_test.json and hmac_sha512_test.json (every 6th vector)', async () => {
    for (const [file, op] of [['hmac_sha256_test.json', 'hmac_sha256'], ['hmac_sha512_test.json', 'hmac_sha512']] as const) {
      for (const { group, t } of sample(file, 6)) {
        const tag = bytes(await enc.call(op, { key: unhex(t.key), data: unhex(t.msg) })).slice(0, group.tagSize / 4);
        if (t.result === 'valid') expect(tag, `${op} tcId ${t.tcId}`).toBe(t.tag);
        else expect(tag, `${op} tcId ${t.tcId}`).not.toBe(t.tag);
      }
    }
  });

  it('hkdf_sha256_test.json (every 4th vector)', async () => {
    for (const { t } of sample('hkdf_sha256_test.json', 4)) {
      if (t.result !== 'valid') {
        // Lengths over 255 * 32 are refused by the contract before the enclave runs.
        await expect(enc.call('hkdf_sha256', { ikm: unhex(t.ikm), salt: unhex(t.salt), info: unhex(t.info), length: t.size })).rejects.toMatchObject({ code: 'invalid_args' });
        continue;
      }
      expect(bytes(await enc.call('hkdf_sha256', { ikm: unhex(t.ikm), salt: unhex(t.salt), info: unhex(t.info), length: t.size })), `tcId ${t.tcId}`).toBe(t.okm);
    }
  });

  it('x25519_test.json (every 10th vector)', async () => {
    for (const { t } of sample('x25519_test.json', 10)) {
      const shared = await enc.call('x25519', { secret_key: unhex(t.private), public_key: unhex(t.public) });
      if (/^0+$/.test(t.shared)) expect(shared, `tcId ${t.tcId}`).toBeNull();
      else expect(bytes(shared), `tcId ${t.tcId}`).toBe(t.shared);
    }
  });

  it('ed25519_test.json (every 3rd vector)', async () => {
    for (const { group, t } of sample('ed25519_test.json', 3)) {
      const ok = await enc.call('ed25519_verify', { public_key: unhex(group.publicKey.pk), message: unhex(t.msg), signature: unhex(t.sig) });
      expect(ok, `tcId ${t.tcId}`).toBe(t.result === 'valid');
    }
  });
});

describe('crypto enclave: errors', () => {
  it('the contract refuses a wrong-size key before the call; the enclave refuses a wrong nonce length', async () => {
    const base = { alg: 'chacha20poly1305', key: new Uint8Array(32), nonce: new Uint8Array(12), aad: new Uint8Array(0), plaintext: utf8('hi') };
    await expect(enc.call('aead_seal', { ...base, key: new Uint8Array(31) })).rejects.toMatchObject({ code: 'invalid_args' });
    await expect(enc.call('aead_seal', { ...base, nonce: new Uint8Array(13) })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(enc.call('aead_seal', { ...base, alg: 'aes' })).rejects.toMatchObject({ code: 'bad_request' });
    // And the instance keeps serving (a bad request is not a trap).
    const sealed = await enc.call('aead_seal', base);
    const { plaintext: _pt, ...openArgs } = base;
    expect(bytes(await enc.call('aead_open', { ...openArgs, sealed }))).toBe(hex(utf8('hi')));
  });

  it('equal_bytes', async () => {
    expect(await enc.call('equal_bytes', { a: utf8('tag'), b: utf8('tag') })).toBe(true);
    expect(await enc.call('equal_bytes', { a: utf8('tag'), b: utf8('taG') })).toBe(false);
    expect(await enc.call('equal_bytes', { a: utf8('tag'), b: utf8('ta') })).toBe(false);
  });
});
