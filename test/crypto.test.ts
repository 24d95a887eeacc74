// Cryptography inside the enclave (issue 5): the AssemblyScript primitives of
// enclave-modules/sdk/crypto/, driven through a test harness over linear memory.
//  - every vector of the matching Wycheproof files (test/vectors/wycheproof/),
//  - the RFC / FIPS known-answer tests,
//  - differential property tests against @noble/* on random inputs.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sha256 as nSha256, sha512 as nSha512 } from '@noble/hashes/sha2.js';
import { hmac as nHmac } from '@noble/hashes/hmac.js';
import { hkdf as nHkdf } from '@noble/hashes/hkdf.js';
import { chacha20 as nChaCha20, chacha20poly1305 as nChaPoly, xchacha20poly1305 as nXChaPoly } from '@noble/ciphers/chacha.js';
import { ed25519 as nEd, x25519 as nX } from '@noble/curves/ed25519.js';
import { Harness, ROOT, buildHarness, hex, unhex, wycheproof } from './crypto/harness-loader.js';

let wasm: Uint8Array;
let h: Harness;

beforeAll(async () => {
  wasm = await buildHarness();
  h = await Harness.create(wasm);
});

const utf8 = (s: string) => new TextEncoder().encode(s);

// ---- thin wrappers over the harness (public Uint8Array API of the SDK) ----
function sha256(m: Uint8Array) { h.x.sha256Api(h.out, h.put(0, m), m.length); return h.get(h.out, 32); }
function sha512(m: Uint8Array) { h.x.sha512Api(h.out, h.put(0, m), m.length); return h.get(h.out, 64); }
function hmac256(k: Uint8Array, m: Uint8Array) { h.x.hmacSha256Api(h.out, h.put(0, k), k.length, h.put(1, m), m.length); return h.get(h.out, 32); }
function hmac512(k: Uint8Array, m: Uint8Array) { h.x.hmacSha512Api(h.out, h.put(0, k), k.length, h.put(1, m), m.length); return h.get(h.out, 64); }
function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, len: number): Uint8Array | null {
  const ok = h.x.hkdfSha256Api(h.out, len, h.put(0, ikm), ikm.length, h.put(1, salt), salt.length, h.put(2, info), info.length);
  return ok ? h.get(h.out, len) : null;
}
/** alg 0 = ChaCha20-Poly1305, 1 = XChaCha20-Poly1305; returns ct || tag. */
function seal(alg: number, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array) {
  h.x.sealApi(alg, h.out, h.put(0, key), h.put(1, nonce), nonce.length, h.put(2, aad), aad.length, h.put(3, pt), pt.length);
  return h.get(h.out, pt.length + 16);
}
function open(alg: number, key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
  const ok = h.x.openApi(alg, h.out, h.put(0, key), key.length, h.put(1, nonce), nonce.length, h.put(2, aad), aad.length, h.put(3, sealed), sealed.length);
  return ok ? h.get(h.out, Math.max(0, sealed.length - 16)) : null;
}
function x25519(k: Uint8Array, u: Uint8Array): Uint8Array | null {
  const ok = h.x.x25519Api(h.out, h.put(0, k), h.put(1, u));
  return ok ? h.get(h.out, 32) : null;
}
function x25519Raw(k: Uint8Array, u: Uint8Array): Uint8Array {
  h.x.x25519Raw(h.out, h.put(0, k), h.put(1, u));
  return h.get(h.out, 32);
}
function x25519Pub(k: Uint8Array) { h.x.x25519PublicKeyApi(h.out, h.put(0, k)); return h.get(h.out, 32); }
function edPub(seed: Uint8Array) { h.x.ed25519PublicKeyApi(h.out, h.put(0, seed)); return h.get(h.out, 32); }
function edSign(m: Uint8Array, seed: Uint8Array) { h.x.ed25519SignApi(h.out, h.put(0, seed), h.put(1, m), m.length); return h.get(h.out, 64); }
function edVerify(sig: Uint8Array, m: Uint8Array, pub: Uint8Array): boolean {
  return h.x.ed25519VerifyApi(h.put(0, sig), sig.length, h.put(1, pub), pub.length, h.put(2, m), m.length) === 1;
}

// ---- Wycheproof ----

function cases(file: string): Array<{ group: any; t: any }> {
  const j = wycheproof(file);
  const out: Array<{ group: any; t: any }> = [];
  for (const group of j.testGroups) for (const t of group.tests) out.push({ group, t });
  expect(out.length).toBe(j.numberOfTests);
  return out;
}

describe('Wycheproof', () => {
  for (const [file, alg] of [['chacha20_poly1305_test.json', 0], ['xchacha20_poly1305_test.json', 1]] as const) {
    it(`${file}: every vector`, () => {
      let n = 0;
      for (const { t } of cases(file)) {
        const key = unhex(t.key), iv = unhex(t.iv), aad = unhex(t.aad), msg = unhex(t.msg);
        const sealed = unhex(t.ct + t.tag);
        const got = open(alg, key, iv, aad, sealed);
        if (t.result === 'valid') {
          expect(hex(seal(alg, key, iv, aad, msg)), `tcId ${t.tcId}`).toBe(t.ct + t.tag);
          expect(got && hex(got), `tcId ${t.tcId}`).toBe(t.msg);
        } else {
          expect(got, `tcId ${t.tcId} must be rejected`).toBeNull();
        }
        n++;
      }
      expect(n).toBeGreaterThan(300);
    });
  }

  for (const [file, fn, len] of [['hmac_sha256_test.json', hmac256, 32], ['hmac_sha512_test.json', hmac512, 64]] as const) {
    it(`${file}: every vector`, () => {
      for (const { group, t } of cases(file)) {
        const tag = fn(unhex(t.key), unhex(t.msg)).slice(0, group.tagSize / 8);
        expect(tag.length).toBeLessThanOrEqual(len);
        if (t.result === 'valid') expect(hex(tag), `tcId ${t.tcId}`).toBe(t.tag);
        else expect(hex(tag), `tcId ${t.tcId}`).not.toBe(t.tag);
      }
    });
  }

  it('hkdf_sha256_test.json: every vector', () => {
    for (const { t } of cases('hkdf_sha256_test.json')) {
      const okm = hkdf(unhex(t.ikm), unhex(t.salt), unhex(t.info), t.size);
      if (t.result === 'valid') expect(okm && hex(okm), `tcId ${t.tcId}`).toBe(t.okm);
      else expect(okm, `tcId ${t.tcId}`).toBeNull();
    }
  });

  it('x25519_test.json: every vector (valid and acceptable give the expected secret)', () => {
    for (const { t } of cases('x25519_test.json')) {
      expect(['valid', 'acceptable']).toContain(t.result);
      const k = unhex(t.private), u = unhex(t.public);
      expect(hex(x25519Raw(k, u)), `tcId ${t.tcId}`).toBe(t.shared);
      // The public API refuses an all-zero result (RFC 7748 §6.1), and only that.
      const api = x25519(k, u);
      if (/^0+$/.test(t.shared)) expect(api, `tcId ${t.tcId}`).toBeNull();
      else expect(api && hex(api), `tcId ${t.tcId}`).toBe(t.shared);
    }
  });

  it('ed25519_test.json: every vector', () => {
    for (const { group, t } of cases('ed25519_test.json')) {
      const ok = edVerify(unhex(t.sig), unhex(t.msg), unhex(group.publicKey.pk));
      expect(ok, `tcId ${t.tcId} (${t.comment})`).toBe(t.result === 'valid');
    }
  });
});

// ---- RFC / FIPS known answers ----

describe('known-answer tests', () => {
  it('SHA-256 and SHA-512 (FIPS 180-4 examples)', () => {
    expect(hex(sha256(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex(sha256(new Uint8Array(0)))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(sha256(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
    expect(hex(sha512(utf8('abc')))).toBe('ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f');
    expect(hex(sha512(utf8('abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu')))).toBe('8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909');
    // One million 'a' (FIPS 180-4 long message example).
    const million = new Uint8Array(1_000_000).fill(0x61);
    expect(hex(sha256(million))).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  it('HMAC-SHA-256/512 (RFC 4231 §4.2, §4.3, §4.7)', () => {
    const k1 = new Uint8Array(20).fill(0x0b);
    expect(hex(hmac256(k1, utf8('Hi There')))).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
    expect(hex(hmac512(k1, utf8('Hi There')))).toBe('87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854');
    expect(hex(hmac256(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    expect(hex(hmac512(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe('164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737');
    const k6 = new Uint8Array(131).fill(0xaa); // longer than a block: hashed first (RFC 2104 §2)
    const m6 = utf8('Test Using Larger Than Block-Size Key - Hash Key First');
    expect(hex(hmac256(k6, m6))).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
    expect(hex(hmac512(k6, m6))).toBe('80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598');
  });

  it('HKDF-SHA-256 (RFC 5869 A.1, A.3) and the 255*HashLen limit (§2.3)', () => {
    const ikm = new Uint8Array(22).fill(0x0b);
    expect(hex(hkdf(ikm, unhex('000102030405060708090a0b0c'), unhex('f0f1f2f3f4f5f6f7f8f9'), 42)!)).toBe('3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865');
    expect(hex(hkdf(ikm, new Uint8Array(0), new Uint8Array(0), 42)!)).toBe('8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8');
    expect(hkdf(ikm, new Uint8Array(0), new Uint8Array(0), 255 * 32)).not.toBeNull();
    expect(hkdf(ikm, new Uint8Array(0), new Uint8Array(0), 255 * 32 + 1)).toBeNull();
    expect(hkdf(ikm, new Uint8Array(0), new Uint8Array(0), 0)).toEqual(new Uint8Array(0));
  });

  const sunscreen = utf8("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");

  it('ChaCha20 (RFC 8439 §2.4.2), Poly1305 (§2.5.2), HChaCha20 (xchacha draft §2.2.1)', () => {
    const key = unhex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    h.x.chacha20Api(h.out, h.put(0, key), h.put(1, unhex('000000000000004a00000000')), 1, h.put(2, sunscreen), sunscreen.length);
    expect(hex(h.get(h.out, sunscreen.length))).toBe('6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab77937365af90bbf74a35be6b40b8eedf2785e42874d');
    const pkey = unhex('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b');
    const pmsg = utf8('Cryptographic Forum Research Group');
    h.x.poly1305Api(h.out, h.put(0, pkey), h.put(1, pmsg), pmsg.length);
    expect(hex(h.get(h.out, 16))).toBe('a8061dc1305136c6c22b8baf0c0127a9');
    h.x.hchacha20Api(h.out, h.put(0, key), h.put(1, unhex('000000090000004a0000000031415927')));
    expect(hex(h.get(h.out, 32))).toBe('82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
  });

  it('ChaCha20-Poly1305 AEAD (RFC 8439 §2.8.2), and a flipped bit anywhere is rejected', () => {
    const key = unhex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
    const nonce = unhex('070000004041424344454647');
    const aad = unhex('50515253c0c1c2c3c4c5c6c7');
    const sealed = seal(0, key, nonce, aad, sunscreen);
    expect(hex(sealed)).toBe('d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116' + '1ae10b594f09e26a7e902ecbd0600691');
    expect(open(0, key, nonce, aad, sealed)).toEqual(sunscreen);
    for (const i of [0, 57, sealed.length - 17, sealed.length - 16, sealed.length - 1]) {
      const bad = sealed.slice();
      bad[i]! ^= 0x01;
      expect(open(0, key, nonce, aad, bad), `byte ${i}`).toBeNull();
    }
    const badAad = aad.slice();
    badAad[0]! ^= 0x80;
    expect(open(0, key, nonce, badAad, sealed)).toBeNull();
    expect(open(0, key, nonce, aad, sealed.slice(0, 15))).toBeNull(); // shorter than a tag
  });

  it('X25519 (RFC 7748 §5.2 and §6.1)', () => {
    expect(hex(x25519(unhex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'), unhex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'))!)).toBe('c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552');
    expect(hex(x25519(unhex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'), unhex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'))!)).toBe('95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957');
    // §5.2 iteration: k, u <- X25519(k, u), k after 1 and 1000 iterations.
    let k = unhex('09' + '00'.repeat(31));
    let u = k;
    for (let i = 1; i <= 1000; i++) {
      const r = x25519Raw(k, u);
      u = k;
      k = r;
      if (i === 1) expect(hex(k)).toBe('422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
    }
    expect(hex(k)).toBe('684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
    const a = unhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const b = unhex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    expect(hex(x25519Pub(a))).toBe('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
    expect(hex(x25519Pub(b))).toBe('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    expect(hex(x25519(a, x25519Pub(b))!)).toBe(shared);
    expect(hex(x25519(b, x25519Pub(a))!)).toBe(shared);
  });

  it('Ed25519 (RFC 8032 §7.1 tests 1-3)', () => {
    const tests = [
      ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '', 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
      ['4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', '72', '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'],
      ['c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', 'af82', '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a'],
    ] as const;
    for (const [sk, pk, msg, sig] of tests) {
      expect(hex(edPub(unhex(sk)))).toBe(pk);
      expect(hex(edSign(unhex(msg), unhex(sk)))).toBe(sig);
      expect(edVerify(unhex(sig), unhex(msg), unhex(pk))).toBe(true);
    }
  });
});

// ---- rejection rules that Wycheproof covers only partly ----

describe('strictness', () => {
  const seed = unhex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
  const msg = utf8('strict');
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const le = (n: bigint) => unhex(n.toString(16).padStart(64, '0')).reverse();
  const be = (b: Uint8Array) => BigInt('0x' + hex(b.slice().reverse()));

  it('Ed25519 verify rejects S + L (malleability), small-order keys, non-canonical and wrong-length input', () => {
    const pub = edPub(seed);
    const sig = edSign(msg, seed);
    expect(edVerify(sig, msg, pub)).toBe(true);
    const s = be(sig.slice(32));
    const mall = new Uint8Array([...sig.slice(0, 32), ...le(s + L)]);
    expect(edVerify(mall, msg, pub)).toBe(false);
    // The identity (y = 1) and the point of order 4 (y = 0) as public keys.
    expect(edVerify(sig, msg, unhex('01' + '00'.repeat(31)))).toBe(false);
    expect(edVerify(sig, msg, unhex('00'.repeat(32)))).toBe(false);
    // y = p + 1, a non-canonical encoding of the identity.
    expect(edVerify(sig, msg, le((1n << 255n) - 19n + 1n))).toBe(false);
    expect(edVerify(sig.slice(0, 63), msg, pub)).toBe(false);
    expect(edVerify(sig, msg, pub.slice(0, 31))).toBe(false);
  });

  it('Ed25519 verify rejects signatures that only hold because A or R has small order', () => {
    const m = utf8('torsion');
    // A = identity: [S]B = R + [k]A holds for R = [S]B and any message.
    const S = 12345n;
    const R = nEd.Point.BASE.multiply(S).toBytes();
    const forged = new Uint8Array([...R, ...le(S)]);
    expect(edVerify(forged, m, unhex('01' + '00'.repeat(31)))).toBe(false);
    // R = identity with a real key: S = k * a makes [S]B - [k]A the identity.
    const { scalar, pointBytes } = nEd.utils.getExtendedPublicKey(seed);
    const Rid = unhex('01' + '00'.repeat(31));
    const k = BigInt('0x' + hex(nSha512(new Uint8Array([...Rid, ...pointBytes, ...m])).reverse())) % L;
    const sig = new Uint8Array([...Rid, ...le((k * scalar) % L)]);
    expect(nEd.verify(sig, m, pointBytes, { zip215: false })).toBe(true); // RFC 8032 alone accepts it
    expect(edVerify(sig, m, pointBytes)).toBe(false);
  });

  it('AEAD open with a wrong key or nonce length fails instead of aborting', () => {
    const key = new Uint8Array(32), nonce = new Uint8Array(12);
    const sealed = seal(0, key, nonce, new Uint8Array(0), utf8('x'));
    expect(open(0, key, nonce, new Uint8Array(0), sealed)).toEqual(utf8('x'));
    expect(open(0, key.slice(1), nonce, new Uint8Array(0), sealed)).toBeNull();
    expect(open(0, key, new Uint8Array(24), new Uint8Array(0), sealed)).toBeNull();
    expect(open(1, key, nonce, new Uint8Array(0), sealed)).toBeNull();
  });

  it('seal with a wrong nonce length aborts (a programming error), in a throwaway instance', async () => {
    const fresh = await Harness.create(wasm);
    const x = fresh.x;
    expect(() => x.sealApi(0, fresh.out, fresh.put(0, new Uint8Array(32)), fresh.put(1, new Uint8Array(8)), 8, fresh.put(2, new Uint8Array(0)), 0, fresh.put(3, new Uint8Array(1)), 1)).toThrow(/abort/);
  });

  it('equalBytes compares contents and lengths; wipe zeroes', () => {
    const eq = (a: Uint8Array, b: Uint8Array) => h.x.equalBytesApi(h.put(0, a), a.length, h.put(1, b), b.length) === 1;
    const a = crypto.getRandomValues(new Uint8Array(37));
    expect(eq(a, a.slice())).toBe(true);
    for (const i of [0, 7, 8, 36]) {
      const b = a.slice();
      b[i]! ^= 0x40;
      expect(eq(a, b), `byte ${i}`).toBe(false);
    }
    expect(eq(a, a.slice(0, 36))).toBe(false);
    expect(eq(new Uint8Array(0), new Uint8Array(0))).toBe(true);
    expect(h.x.wipeApi(h.put(0, a), a.length)).toBe(1);
  });

  it('the Ed25519 base-point table regenerates byte for byte (test/crypto/gen-ed25519-table.mjs)', () => {
    const generated = execFileSync(process.execPath, [`${ROOT}test/crypto/gen-ed25519-table.mjs`], { cwd: ROOT, encoding: 'utf8' });
    expect(generated.trim()).toBe(readFileSync(`${ROOT}enclave-modules/sdk/crypto/_ed25519-table.ts`, 'utf8').trim());
  });

  it('the unrolled field multiplication matches its generator (test/crypto/gen-field.mjs)', () => {
    const generated = execFileSync(process.execPath, [`${ROOT}test/crypto/gen-field.mjs`], { cwd: ROOT, encoding: 'utf8' });
    const source = readFileSync(`${ROOT}enclave-modules/sdk/crypto/_field25519.ts`, 'utf8');
    expect(generated.length).toBeGreaterThan(5000);
    expect(source.endsWith(generated) || source.trimEnd().endsWith(generated.trimEnd())).toBe(true);
  });
});

// ---- wiping: secrets derived inside an operation do not survive it ----

describe('no derived secret remains in linear memory after an operation', () => {
  // Values the SDK derives from a key are searched for in the whole memory afterwards. The
  // caller's own copies (inputs) are the caller's business; derived ones must have been wiped.
  let w: Harness;
  beforeAll(async () => {
    w = await Harness.create(wasm);
  });
  const found = (needle: Uint8Array) => Buffer.from(w.x.memory.buffer).indexOf(Buffer.from(needle)) >= 0;

  it('Ed25519 sign: the clamped scalar and the nonce prefix (SHA-512 of the seed)', () => {
    const seed = crypto.getRandomValues(new Uint8Array(32));
    const az = nSha512(seed);
    az[0]! &= 248; az[31]! &= 127; az[31]! |= 64;
    w.x.ed25519SignRaw(w.out, w.put(0, seed), w.put(1, utf8('m')), 1);
    expect(hex(w.get(w.out, 64))).toBe(hex(nEd.sign(utf8('m'), seed)));
    expect(found(az.slice(0, 32))).toBe(false);
    expect(found(az.slice(32, 64))).toBe(false);
    expect(found(seed)).toBe(true); // sanity: the search does find the caller's input
  });

  it('HMAC: the ipad and opad key blocks', () => {
    const key = crypto.getRandomValues(new Uint8Array(32));
    w.x.hmacSha256Raw(w.out, w.put(0, key), 32, w.put(1, utf8('m')), 1);
    expect(found(key.map((b) => b ^ 0x36))).toBe(false);
    expect(found(key.map((b) => b ^ 0x5c))).toBe(false);
  });

  it('ChaCha20-Poly1305: the Poly1305 one-time key; XChaCha20: the HChaCha20 subkey', () => {
    const key = crypto.getRandomValues(new Uint8Array(32)), nonce = crypto.getRandomValues(new Uint8Array(12));
    const otk = nChaCha20(key, nonce, new Uint8Array(64), undefined, 0).slice(0, 32);
    w.x.sealRaw(0, w.out, w.put(0, key), w.put(1, nonce), w.put(2, new Uint8Array(0)), 0, w.put(3, utf8('hello')), 5);
    expect(found(otk)).toBe(false);
    // HChaCha20 test vector (xchacha draft §2.2.1): this key and nonce give a known subkey.
    const xkey = unhex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const xnonce = unhex('000000090000004a0000000031415927' + '0001020304050607');
    w.x.sealRaw(1, w.out, w.put(0, xkey), w.put(1, xnonce), w.put(2, new Uint8Array(0)), 0, w.put(3, utf8('hello')), 5);
    expect(found(unhex('82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc'))).toBe(false);
  });

  it('X25519: the clamped scalar', () => {
    const k = crypto.getRandomValues(new Uint8Array(32));
    k[0]! |= 7; k[31]! |= 0x80; // so that clamping changes the first and last bytes
    const clamped = k.slice();
    clamped[0]! &= 248; clamped[31]! = (clamped[31]! & 127) | 64;
    w.x.x25519Raw(w.out, w.put(0, k), w.put(1, nX.getPublicKey(crypto.getRandomValues(new Uint8Array(32)))));
    expect(found(clamped)).toBe(false);
  });
});

// ---- differential property tests against @noble ----

// Lengths cluster around block boundaries of SHA-256 (64), SHA-512 (128), ChaCha20 (64)
// and Poly1305 (16), plus 0 and arbitrary sizes.
const edge = [0, 1, 15, 16, 17, 31, 32, 33, 55, 56, 57, 63, 64, 65, 111, 112, 113, 127, 128, 129, 191, 192, 193, 255, 256, 257];
const lengthArb = fc.oneof(fc.constantFrom(...edge), fc.integer({ min: 0, max: 2100 }));
const bytesArb = (len = lengthArb) => len.chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
const bytesN = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });

describe('differential against @noble', () => {
  it('SHA-256 and SHA-512', () => {
    fc.assert(fc.property(bytesArb(), (m) => {
      expect(hex(sha256(m))).toBe(hex(nSha256(m)));
      expect(hex(sha512(m))).toBe(hex(nSha512(m)));
    }), { numRuns: 300 });
  });

  it('incremental Sha256/Sha512/HmacSha256/HmacSha512 fed in random chunks equal the one-shot result', () => {
    fc.assert(fc.property(bytesArb(), fc.integer({ min: 1, max: 200 }), bytesN(40), (m, chunk, key) => {
      const run = (which: number, len: number) => {
        h.x.chunkedApi(which, h.out, h.put(0, key), key.length, h.put(1, m), m.length, chunk);
        return hex(h.get(h.out, len));
      };
      expect(run(0, 32)).toBe(hex(nSha256(m)));
      expect(run(1, 64)).toBe(hex(nSha512(m)));
      expect(run(2, 32)).toBe(hex(nHmac(nSha256, key, m)));
      expect(run(3, 64)).toBe(hex(nHmac(nSha512, key, m)));
    }), { numRuns: 150 });
  });

  it('HMAC-SHA-256 and HMAC-SHA-512 (keys shorter than, equal to and longer than a block)', () => {
    const keyArb = bytesArb(fc.oneof(fc.constantFrom(0, 1, 32, 63, 64, 65, 127, 128, 129), fc.integer({ min: 0, max: 300 })));
    fc.assert(fc.property(keyArb, bytesArb(), (k, m) => {
      expect(hex(hmac256(k, m))).toBe(hex(nHmac(nSha256, k, m)));
      expect(hex(hmac512(k, m))).toBe(hex(nHmac(nSha512, k, m)));
    }), { numRuns: 200 });
  });

  it('HKDF-SHA-256', () => {
    fc.assert(fc.property(bytesArb(fc.integer({ min: 0, max: 100 })), bytesArb(fc.integer({ min: 0, max: 100 })),
      bytesArb(fc.integer({ min: 0, max: 100 })), fc.oneof(fc.constantFrom(0, 1, 31, 32, 33, 64, 65, 8160), fc.integer({ min: 0, max: 1000 })),
      (ikm, salt, info, len) => {
        expect(hex(hkdf(ikm, salt, info, len)!)).toBe(hex(nHkdf(nSha256, ikm, salt, info, len)));
      }), { numRuns: 150 });
  });

  it('ChaCha20-Poly1305 and XChaCha20-Poly1305: seal matches, open round-trips, tampering fails', () => {
    fc.assert(fc.property(bytesN(32), bytesN(24), bytesArb(fc.integer({ min: 0, max: 80 })), bytesArb(), fc.nat(),
      (key, nonce24, aad, pt, flip) => {
        const nonce12 = nonce24.slice(0, 12);
        const s0 = seal(0, key, nonce12, aad, pt);
        expect(hex(s0)).toBe(hex(nChaPoly(key, nonce12, aad).encrypt(pt)));
        expect(hex(open(0, key, nonce12, aad, s0)!)).toBe(hex(pt));
        const s1 = seal(1, key, nonce24, aad, pt);
        expect(hex(s1)).toBe(hex(nXChaPoly(key, nonce24, aad).encrypt(pt)));
        expect(hex(open(1, key, nonce24, aad, s1)!)).toBe(hex(pt));
        const bad = s1.slice();
        bad[flip % bad.length]! ^= 1 << (flip % 8);
        expect(open(1, key, nonce24, aad, bad)).toBeNull();
      }), { numRuns: 200 });
  });

  it('X25519 (random scalars and peer keys, including u with bit 255 set)', () => {
    fc.assert(fc.property(bytesN(32), bytesN(32), (k, u) => {
      expect(hex(x25519Raw(k, u))).toBe(hex(nX.scalarMult(k, u)));
      expect(hex(x25519Pub(k))).toBe(hex(nX.getPublicKey(k)));
    }), { numRuns: 60 });
  });

  it('Ed25519 keys and signatures are identical; each verifies the other', () => {
    fc.assert(fc.property(bytesN(32), bytesArb(fc.oneof(fc.constantFrom(0, 1, 63, 64, 65, 127, 128, 129), fc.integer({ min: 0, max: 500 }))), (seed, m) => {
      const pub = edPub(seed);
      expect(hex(pub)).toBe(hex(nEd.getPublicKey(seed)));
      const sig = edSign(m, seed);
      expect(hex(sig)).toBe(hex(nEd.sign(m, seed)));
      expect(edVerify(sig, m, pub)).toBe(true);
      const bad = sig.slice();
      bad[m.length % 64]! ^= 0x10;
      expect(edVerify(bad, m, pub)).toBe(nEd.verify(bad, m, pub));
    }), { numRuns: 60 });
  });

  it('Ed25519 verify agrees with noble on random (mostly invalid) signatures and keys', () => {
    fc.assert(fc.property(bytesN(64), bytesN(32), bytesArb(fc.integer({ min: 0, max: 64 })), (sig, pub, m) => {
      let expected = false;
      try { expected = nEd.verify(sig, m, pub, { zip215: false }); } catch { expected = false; }
      expect(edVerify(sig, m, pub)).toBe(expected);
    }), { numRuns: 100 });
  });
});
