// The sealed blob format (docs/SEALING.md §2-3, §5-6) through the real SDK code, the real runtime
// and the software platform, checked against the TypeScript reference in test/helpers/sealer.ts:
// the reference opens the enclave's blobs, the enclave opens the reference's, and every byte an
// attacker can change is refused with one code, unseal_failed.
import { beforeAll, describe, expect, it } from 'vitest';
import type { EnclaveHandle } from '../host/index.js';
import { deriveSealingKey, generateKeyPair } from '../attest/index.js';
import { codeOf } from './helpers/errors.js';
import {
  bareSealer, blobDigest, buildSealed, contains, HEADER, MAGIC, openSealed, parseSealed, referenceKey, rootSecret, sealerModule, sealerOps, sealerRig,
  TAG, type SealerRig,
} from './helpers/sealer.js';

const te = new TextEncoder();
const PT = te.encode('the sealed secret: 0123456789');
const AAD = te.encode('enclave-test/aad\0name');

let rig: SealerRig;
let v1: Uint8Array; // signed, svn 1
let enclave: EnclaveHandle;
let ops: ReturnType<typeof sealerOps>;

beforeAll(async () => {
  rig = await sealerRig();
  v1 = rig.sign(await sealerModule());
  enclave = await rig.load(v1);
  ops = sealerOps(enclave);
});

const policyName = (p: 0 | 1) => (p === 0 ? 'measurement' : 'signer') as 'measurement' | 'signer';

describe('the enclave seals what the reference reads', () => {
  for (const policy of [0, 1] as const) {
    it(`policy ${policyName(policy)}: every header field as specified, and the reference opens it`, async () => {
      const s = await ops.seal(PT, AAD, policy);
      expect(s.blob.length).toBe(HEADER + PT.length + TAG);
      const h = parseSealed(s.blob);
      if (typeof h === 'string') throw new Error(h);
      expect([...s.blob.subarray(0, 4)]).toEqual([...MAGIC]);
      expect(h).toMatchObject({ version: 1, policy, flags: 0, reserved: 0, keyId: 1, svn: policy === 1 ? 1 : 0, counterId: 0n, counter: 0n, length: PT.length });
      expect(s).toMatchObject({ policy, key_id: 1, svn: policy === 1 ? 1 : 0, pending: false, stale: false });
      const key = referenceKey(rig.dir, enclave.identity, policyName(policy), 1);
      expect(openSealed(s.blob, AAD, key)).toEqual(PT);
      expect(openSealed(s.blob, te.encode('other aad'), key)).toBeUndefined();
      // the ciphertext is not the plaintext
      expect(Buffer.from(s.blob).indexOf(Buffer.from(PT))).toBe(-1);
    });
  }

  it('a fresh random nonce per blob: the same plaintext seals to different blobs', async () => {
    const a = await ops.seal(PT, AAD, 0);
    const b = await ops.seal(PT, AAD, 0);
    expect(Buffer.from(a.blob.subarray(32, 56)).equals(Buffer.from(b.blob.subarray(32, 56)))).toBe(false);
    expect(Buffer.from(a.blob).equals(Buffer.from(b.blob))).toBe(false);
  });

  it('an empty plaintext and an empty aad round-trip', async () => {
    const s = await ops.seal(new Uint8Array(0), new Uint8Array(0), 1);
    expect(s.blob.length).toBe(HEADER + TAG);
    expect((await ops.unseal(s.blob, new Uint8Array(0))).plaintext).toEqual(new Uint8Array(0));
  });

  it('a large plaintext (512 KiB) round-trips and the reference agrees', async () => {
    const big = crypto.getRandomValues(new Uint8Array(65536)).slice();
    const pt = new Uint8Array(512 * 1024);
    for (let i = 0; i < 8; i++) pt.set(big, i * 65536);
    const s = await ops.seal(pt, AAD, 1);
    expect(openSealed(s.blob, AAD, referenceKey(rig.dir, enclave.identity, 'signer', 1))).toEqual(pt);
    expect((await ops.unseal(s.blob, AAD, pt.length)).plaintext).toEqual(pt);
    expect(await codeOf(ops.unseal(s.blob, AAD, pt.length - 1))).toBe('unseal_failed'); // the caller's bound
  });
});

describe('the reference seals what the enclave reads', () => {
  for (const policy of [0, 1] as const) {
    it(`policy ${policyName(policy)}: a blob built in TypeScript opens in the enclave`, async () => {
      const key = referenceKey(rig.dir, enclave.identity, policyName(policy), 1);
      const blob = buildSealed({ key, plaintext: PT, aad: AAD, policy, keyId: 1, svn: policy === 1 ? 1 : 0 });
      const u = await ops.unseal(blob, AAD);
      expect(u.plaintext).toEqual(PT);
      expect(u).toMatchObject({ policy, key_id: 1, pending: false, stale: false });
      expect(await codeOf(ops.unseal(blob, te.encode('another name')))).toBe('unseal_failed');
      expect(await codeOf(ops.unseal(blob, new Uint8Array(0)))).toBe('unseal_failed');
    });
  }

  it('the other policy key does not open it (policy byte and key agree or nothing opens)', async () => {
    const mKey = referenceKey(rig.dir, enclave.identity, 'measurement', 1);
    const blob = buildSealed({ key: mKey, plaintext: PT, aad: AAD, policy: 1, keyId: 1, svn: 1 });
    expect(await codeOf(ops.unseal(blob, AAD))).toBe('unseal_failed');
  });
});

describe('hostile blobs: one code, unseal_failed', () => {
  let blobs: Record<string, Uint8Array>;
  beforeAll(async () => {
    // an unversioned measurement blob, and a versioned signer blob that is committed (so the
    // untouched blob opens as current and every change must fail before the counter is consulted)
    const m = await ops.seal(PT, AAD, 0);
    const v = await ops.seal(PT, AAD, 1, 77);
    await ops.commit(v.blob);
    blobs = { measurement: m.blob, 'signer, versioned': v.blob };
  });

  for (const name of ['measurement', 'signer, versioned']) {
    it(`${name}: every single-byte change (each header byte, nonce, ciphertext, tag) is refused`, async () => {
      const blob = blobs[name]!;
      expect((await ops.unseal(blob, AAD)).plaintext).toEqual(PT); // the control opens
      const refused: number[] = [];
      for (let i = 0; i < blob.length; i++) {
        for (const mask of [0x01, 0x80]) {
          const bad = blob.slice();
          bad[i]! ^= mask;
          if ((await codeOf(ops.unseal(bad, AAD))) === 'unseal_failed') refused.push(i);
          else throw new Error(`byte ${i} ^ ${mask} was not refused with unseal_failed`);
        }
      }
      expect(refused.length).toBe(blob.length * 2);
    });

    it(`${name}: every truncation and several extensions are refused`, async () => {
      const blob = blobs[name]!;
      for (let n = 0; n < blob.length; n++) {
        expect(await codeOf(ops.unseal(blob.slice(0, n), AAD)), `truncated to ${n}`).toBe('unseal_failed');
      }
      for (const extra of [Uint8Array.of(0), Uint8Array.of(0xff), new Uint8Array(16), blob]) {
        const longer = new Uint8Array(blob.length + extra.length);
        longer.set(blob);
        longer.set(extra, blob.length);
        expect(await codeOf(ops.unseal(longer, AAD))).toBe('unseal_failed');
      }
    });
  }

  // Authenticated lies: the reference builds each blob with the right key over the lying header, so
  // the AEAD would accept it; only the strict parse can refuse it. Each case has its control.
  describe('authenticated header lies are refused by the strict parse', () => {
    let key: Uint8Array;
    beforeAll(() => {
      key = referenceKey(rig.dir, enclave.identity, 'measurement', 1);
    });
    const ok = { plaintext: PT, aad: AAD, policy: 0, keyId: 1 };

    it('the control: the same builder with honest fields opens', async () => {
      expect((await ops.unseal(buildSealed({ key, ...ok }), AAD)).plaintext).toEqual(PT);
    });

    const lies: Array<[string, Record<string, unknown>]> = [
      ['magic', { magic: te.encode('ENCT') }],
      ['magic (lower case)', { magic: te.encode('encs') }],
      ['version 0', { version: 0 }],
      ['version 2', { version: 2 }],
      ['policy 2', { policy: 2 }],
      ['policy 255', { policy: 255 }],
      ...[1, 2, 3, 4, 5, 6, 7].map((b): [string, Record<string, unknown>] => [`flag bit ${b}`, { flags: 1 << b }]),
      ['flags 0xff', { flags: 0xff }],
      ['reserved 1', { reserved: 1 }],
      ['reserved 0x80', { reserved: 0x80 }],
      ['key id 0', { keyId: 0 }],
      ['svn 1 under measurement', { svn: 1 }],
      ['unversioned with a counter id', { counterId: 5n, flags: 0 }],
      ['unversioned with a counter value', { counter: 5n, flags: 0 }],
      ['versioned with value 0', { counterId: 5n, counter: 0n, flags: 1 }],
      ['versioned with counter id 0', { counterId: 0n, counter: 1n, flags: 1 }],
      ['length n-1', { length: PT.length - 1 }],
      ['length n+1', { length: PT.length + 1 }],
      ['length 0', { length: 0 }],
      ['length 2^32-1', { length: 0xffffffff }],
      ['length 16 MiB + 1', { length: (16 << 20) + 1 }],
    ];
    for (const [what, fields] of lies) {
      it(`${what}`, async () => {
        const blob = buildSealed({ key, ...ok, ...fields } as Parameters<typeof buildSealed>[0]);
        expect(typeof parseSealed(blob)).toBe('string'); // the reference refuses it too
        expect(await codeOf(ops.unseal(blob, AAD))).toBe('unseal_failed');
      });
    }

    it('a plaintext above the caller bound is refused before decryption, at the bound it opens', async () => {
      const blob = buildSealed({ key, ...ok });
      expect(await codeOf(ops.unseal(blob, AAD, PT.length - 1))).toBe('unseal_failed');
      expect(await codeOf(ops.unseal(blob, AAD, 0))).toBe('unseal_failed');
      expect(await codeOf(ops.unseal(blob, AAD, -1))).toBe('unseal_failed');
      expect((await ops.unseal(blob, AAD, PT.length)).plaintext).toEqual(PT);
    });

    it('a signer svn above 2^31-1 and a key id above 2^31-1 are refused', async () => {
      const sKey = referenceKey(rig.dir, enclave.identity, 'signer', 1);
      expect(await codeOf(ops.unseal(buildSealed({ key: sKey, ...ok, policy: 1, svn: 0x80000000 }), AAD))).toBe('unseal_failed');
      expect(await codeOf(ops.unseal(buildSealed({ key, ...ok, keyId: 0x80000000 }), AAD))).toBe('unseal_failed');
    });

    it('an unknown root id is refused like any other failure', async () => {
      expect(await codeOf(ops.unseal(buildSealed({ key, ...ok, keyId: 99 }), AAD))).toBe('unseal_failed');
    });
  });

  it('random bytes and empty input are refused', async () => {
    expect(await codeOf(ops.unseal(new Uint8Array(0), AAD))).toBe('unseal_failed');
    for (let i = 0; i < 20; i++) {
      const junk = crypto.getRandomValues(new Uint8Array(76 + i * 7));
      junk.set(MAGIC, 0);
      junk[4] = 1;
      expect(await codeOf(ops.unseal(junk, AAD))).toBe('unseal_failed');
    }
  });

  it('the digest the counter keeps is SHA-256 of the whole blob (the reference agrees)', async () => {
    const v = blobs['signer, versioned']!;
    const state = rig.provider.readCounter!(enclave.identity, 'signer', 77n);
    expect(state.value).toBe(1n);
    expect(Buffer.from(state.tag).equals(Buffer.from(blobDigest(v)))).toBe(true);
  });
});

describe('identity: measurement, signer, svn', () => {
  it('a module with one byte changed cannot open a measurement blob; the signer blob needs the signer', async () => {
    const m = await ops.seal(PT, AAD, 0);
    const s = await ops.seal(PT, AAD, 1);
    const tampered = v1.slice();
    const at = Buffer.from(tampered).lastIndexOf('"1.0.0"');
    expect(at).toBeGreaterThan(0);
    tampered[at + 5] = '1'.charCodeAt(0); // "1.0.0" -> "1.0.1": one byte, a valid module, another measurement
    const other = await rig.load(tampered, { trust: null }); // the signature no longer verifies: no signer
    expect(other.measurement).not.toBe(enclave.measurement);
    const o = sealerOps(other);
    expect(await codeOf(o.unseal(m.blob, AAD))).toBe('unseal_failed');
    expect(await codeOf(o.unseal(s.blob, AAD))).toBe('unseal_failed');
    // and it cannot seal under signer at all
    expect(await codeOf(o.seal(PT, AAD, 1))).toBe('state');
  });

  it('the same bytes loaded again open a measurement blob', async () => {
    const m = await ops.seal(PT, AAD, 0);
    const again = sealerOps(await rig.load(v1));
    expect((await again.unseal(m.blob, AAD)).plaintext).toEqual(PT);
  });

  it('another signer (same name, same svn) cannot open a signer blob', async () => {
    const s = await ops.seal(PT, AAD, 1);
    const mallory = generateKeyPair();
    const forged = rig.sign(await sealerModule(), mallory);
    const other = sealerOps(await rig.load(forged, { trust: { trusted: [{ publicKey: mallory.publicKey }] } }));
    expect(await codeOf(other.unseal(s.blob, AAD))).toBe('unseal_failed');
  });

  it('an upgrade (same signer, svn 2, other bytes) opens the svn-1 blob as stale and reseals it forward; svn 1 cannot open the result', async () => {
    const old = await ops.seal(PT, AAD, 1);
    const m = await ops.seal(PT, AAD, 0);
    const v2bytes = rig.sign(await sealerModule({ svn: 2, version: '2.0.0', variant: true }));
    const v2 = await rig.load(v2bytes);
    expect(v2.measurement).not.toBe(enclave.measurement);
    expect(await v2.call('variant')).toBe(1);
    const o2 = sealerOps(v2);
    const before = await o2.unseal(old.blob, AAD);
    expect(before).toMatchObject({ svn: 1, stale: true, key_id: 1 });
    expect(before.plaintext).toEqual(PT);
    const moved = await o2.reseal(old.blob, AAD);
    expect(moved).toMatchObject({ svn: 2, key_id: 1, stale: false, pending: false });
    const after = await o2.unseal(moved.blob, AAD);
    expect(after).toMatchObject({ svn: 2, stale: false });
    expect(after.plaintext).toEqual(PT);
    // the reference opens it with the svn-2 key, not the svn-1 key
    expect(openSealed(moved.blob, AAD, referenceKey(rig.dir, v2.identity, 'signer', 1, 2))).toEqual(PT);
    expect(openSealed(moved.blob, AAD, referenceKey(rig.dir, v2.identity, 'signer', 1, 1))).toBeUndefined();
    // the lower svn cannot derive the higher svn's key
    expect(await codeOf(ops.unseal(moved.blob, AAD))).toBe('unseal_failed');
    // and a blob claiming svn 2 built for svn 1's identity is refused in v1 as well
    expect(await codeOf(ops.unseal(buildSealed({ key: referenceKey(rig.dir, enclave.identity, 'signer', 1, 1), plaintext: PT, aad: AAD, policy: 1, svn: 2 }), AAD))).toBe('unseal_failed');
    // measurement blobs do not survive an upgrade
    expect(await codeOf(o2.unseal(m.blob, AAD))).toBe('unseal_failed');
  });
});

describe('sealing roots: rotation, reseal, revocation', () => {
  it('after a rotation old blobs open as stale, new ones go to the new root, reseal moves old ones forward, and revoking the old root shreds what was not moved', async () => {
    const r = await sealerRig();
    const e = await r.load(r.sign(await sealerModule()));
    const o = sealerOps(e);
    const old = await o.seal(PT, AAD, 1);
    const oldM = await o.seal(PT, AAD, 0);
    const keep = await o.seal(te.encode('left behind'), AAD, 1);
    expect(old.key_id).toBe(1);

    const { id } = r.provider.rotateSealingRoot!();
    expect(id).toBe(2);
    const u = await o.unseal(old.blob, AAD); // the running enclave sees the rotation
    expect(u).toMatchObject({ key_id: 1, stale: true });
    expect(u.plaintext).toEqual(PT);
    expect(await o.unseal(oldM.blob, AAD)).toMatchObject({ key_id: 1, stale: true });
    const fresh = await o.seal(PT, AAD, 1);
    expect(fresh).toMatchObject({ key_id: 2, stale: false });
    expect(await o.unseal(fresh.blob, AAD)).toMatchObject({ key_id: 2, stale: false });

    const moved = await o.reseal(old.blob, AAD);
    const movedM = await o.reseal(oldM.blob, AAD);
    expect(moved).toMatchObject({ key_id: 2, svn: 1 });
    expect(movedM).toMatchObject({ key_id: 2, svn: 0 });
    expect(openSealed(moved.blob, AAD, referenceKey(r.dir, e.identity, 'signer', 2))).toEqual(PT);
    expect(openSealed(moved.blob, AAD, referenceKey(r.dir, e.identity, 'signer', 1))).toBeUndefined();
    expect(Buffer.from(rootSecret(r.dir, 2)).equals(Buffer.from(rootSecret(r.dir, 1)))).toBe(false);

    r.provider.revokeSealingRoot!(1);
    expect(() => rootSecret(r.dir, 1)).toThrow(); // the secret is gone from the key file
    expect(await codeOf(o.unseal(keep.blob, AAD))).toBe('unseal_failed');
    expect(await codeOf(o.unseal(old.blob, AAD))).toBe('unseal_failed');
    expect(await codeOf(o.reseal(old.blob, AAD))).toBe('unseal_failed');
    expect((await o.unseal(moved.blob, AAD)).plaintext).toEqual(PT);
    expect((await o.unseal(movedM.blob, AAD)).plaintext).toEqual(PT);
    // another enclave on a new provider of the same directory agrees
    const { SoftwareAttestationProvider } = await import('../attest/index.js');
    const o3 = sealerOps(await r.load(r.sign(await sealerModule()), { provider: new SoftwareAttestationProvider({ dir: r.dir }) }));
    expect(await codeOf(o3.unseal(old.blob, AAD))).toBe('unseal_failed');
    expect((await o3.unseal(moved.blob, AAD)).plaintext).toEqual(PT);
  });
});

describe('secrets do not linger in linear memory (a bare instance, its memory read after each call)', () => {
  it('no sealing key stays after seal, unseal, reseal; a plaintext refused as rollback is wiped', async () => {
    const identity = enclave.identity;
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const bare = await bareSealer(await sealerModule(), identity, secret);
    const key = (svn = 1) => deriveSealingKey(secret, identity, 'signer', { svn });
    const pt = () => crypto.getRandomValues(new Uint8Array(48));

    const sealed = bare.call('seal', { plaintext: pt(), aad: AAD, policy: 1 }).ok!;
    const sealedM = bare.call('seal', { plaintext: pt(), aad: AAD, policy: 0 }).ok!;
    expect(bare.call('unseal', { blob: sealed.blob, aad: AAD }).ok).toBeTruthy();
    expect(bare.call('reseal', { blob: sealedM.blob, aad: AAD }).ok).toBeTruthy();
    expect(bare.call('unseal', { blob: buildSealed({ key: key(0), plaintext: pt(), aad: AAD, policy: 1, svn: 0 }), aad: AAD }).ok).toMatchObject({ stale: true });
    expect(bare.call('unseal', { blob: (sealed.blob as Uint8Array).slice(0, 70), aad: AAD }).err?.code).toBe('unseal_failed');
    expect(bare.keysHandedOut.length).toBeGreaterThanOrEqual(8);
    const memory = bare.memory();
    for (const k of bare.keysHandedOut) expect(contains(memory, k)).toBe(false);

    // Two versions built here (their plaintexts never enter the enclave in the clear), both committed.
    const id = 9n;
    const secretA = pt();
    const secretB = pt();
    const a = buildSealed({ key: key(), plaintext: secretA, aad: AAD, policy: 1, svn: 1, counterId: id, counter: 1n });
    const b = buildSealed({ key: key(), plaintext: secretB, aad: AAD, policy: 1, svn: 1, counterId: id, counter: 2n });
    expect(bare.call('commit', { blob: a }).ok).toBeNull();
    expect(bare.call('commit', { blob: b }).ok).toBeNull();
    expect(bare.call('unseal', { blob: a, aad: AAD }).err?.code).toBe('rollback');
    expect(contains(bare.memory(), secretA)).toBe(false); // decrypted, refused, wiped
    // the control: the scan does find a plaintext that is there (the reply of a successful unseal)
    expect(bare.call('unseal', { blob: b, aad: AAD }).ok).toMatchObject({ pending: false });
    expect(contains(bare.memory(), secretB)).toBe(true);
  });
});

