// The vault enclave's crypto ops (enclave-modules/vault/crypto-ops.ts, docs/VAULT.md §4.2) through the
// real runtime, each against an independent oracle: @noble/ciphers opens the vault's ciphertexts
// (and makes ones the vault opens) with the exported key of an exportable key, @noble/curves checks
// signatures, public keys and X25519, node:crypto's HMAC and @noble/hashes' HKDF check macs and
// derive. Then rotation (encrypt uses the latest version, old ciphertexts decrypt until
// min_decryption_version passes them, rewrap moves them, trim removes them) and every hostile
// ciphertext, signature and mac the ops must refuse, each with its stated code.
// Batches are in test/vault-batch.test.ts.

import { createHmac, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { EnclaveHandle } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { MODES } from './helpers/modes.js';
import { vaultModule, vaultRig, type Persist } from './helpers/vault.js';

let vault: EnclaveHandle;

beforeAll(async () => {
  // Compiled from the current sources (cached by their hash), on a fresh platform, signed by a trusted key.
  const rig = await vaultRig();
  vault = await rig.load(MODES[0]!, rig.sign(await vaultModule()));
});

// ---- the vault's key management (H5a's ops), each mutation committed at once ----

const commit = (p: Persist) => vault.call('commit', { name: p.name, version: p.version });

let names = 0;
/** A new committed key (exportable unless told otherwise; measurement policy: no signer needed). */
async function createKey(type: 'symmetric' | 'ed25519' | 'x25519', opts: Record<string, unknown> = {}): Promise<{ handle: Uint8Array; name: string }> {
  const name = `${type}-${++names}`;
  const r = (await vault.call('create', { name, type, exportable: true, seal_policy: 'measurement', ...opts })) as { handle: Uint8Array; persist: Persist };
  await commit(r.persist);
  return { handle: r.handle, name };
}
async function rotate(handle: Uint8Array): Promise<number> {
  const r = (await vault.call('rotate', { handle })) as { version: number; persist: Persist };
  await commit(r.persist);
  return r.version;
}
async function configure(handle: Uint8Array, args: Record<string, unknown>): Promise<void> {
  await commit(((await vault.call('configure', { handle, ...args })) as { persist: Persist }).persist);
}
async function trim(handle: Uint8Array, minAvailable: number): Promise<void> {
  await commit(((await vault.call('trim', { handle, min_available_version: minAvailable })) as { persist: Persist }).persist);
}
const exportKey = async (handle: Uint8Array, version?: number) => (await vault.call('export', { handle, version })) as Uint8Array;

// ---- the formats of docs/VAULT.md §6, written from the spec ----

const te = (s: string) => new TextEncoder().encode(s);
const EMPTY = new Uint8Array(0);
function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
const versionOf = (b: Uint8Array, off = 0) => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
/** A copy of `b` with the u32 LE at `off` set to `v`. */
function withU32(b: Uint8Array, off: number, v: number): Uint8Array {
  const c = b.slice();
  new DataView(c.buffer).setUint32(off, v, true);
  return c;
}
/** A copy of `b` with byte `i` flipped. */
function flip(b: Uint8Array, i: number): Uint8Array {
  const c = b.slice();
  c[i]! ^= 0x01;
  return c;
}
/** "enclave-vault/v1\0" ‖ u32 len(name) ‖ name ‖ version u32 ‖ aad. */
const aeadAad = (name: string, version: number, aad: Uint8Array) => concat(te('enclave-vault/v1\0'), u32le(name.length), te(name), u32le(version), aad);
/** Opens a vault ciphertext with @noble/ciphers: "EV1" ‖ version ‖ nonce[24] ‖ ct ‖ tag. */
function nobleOpen(key: Uint8Array, name: string, ct: Uint8Array, aad = EMPTY): Uint8Array {
  expect(Buffer.from(ct.subarray(0, 3)).toString('latin1')).toBe('EV1');
  return xchacha20poly1305(key, ct.subarray(7, 31), aeadAad(name, versionOf(ct, 3), aad)).decrypt(ct.subarray(31));
}
/** Makes a vault ciphertext with @noble/ciphers. */
function nobleSeal(key: Uint8Array, name: string, version: number, pt: Uint8Array, aad = EMPTY): Uint8Array {
  const nonce = randomBytes(24);
  return concat(te('EV1'), u32le(version), nonce, xchacha20poly1305(key, nonce, aeadAad(name, version, aad)).encrypt(pt));
}
const macSubkey = (key: Uint8Array) => hkdf(sha256, key, EMPTY, te('enclave-vault/mac'), 32);
const bytes = (v: unknown) => Buffer.from(v as Uint8Array).toString('hex');

describe('vault crypto: encrypt and decrypt against @noble/ciphers', () => {
  it('a vault ciphertext opens with noble under the exported key, and a noble one opens in the vault', async () => {
    const { handle, name } = await createKey('symmetric');
    const key = await exportKey(handle);
    for (const [pt, aad] of [[te('hello'), te('context')], [EMPTY, EMPTY], [randomBytes(70_000), randomBytes(1000)]] as const) {
      const ct = (await vault.call('encrypt', { handle, plaintext: pt, aad })) as Uint8Array;
      expect(ct.length).toBe(pt.length + 47);
      expect(versionOf(ct, 3)).toBe(1);
      expect(bytes(nobleOpen(key, name, ct, aad))).toBe(bytes(pt));
      expect(bytes(await vault.call('decrypt', { handle, ciphertext: ct, aad }))).toBe(bytes(pt));
      const mine = nobleSeal(key, name, 1, pt, aad);
      expect(bytes(await vault.call('decrypt', { handle, ciphertext: mine, aad }))).toBe(bytes(pt));
    }
  });

  it('a 1 MiB plaintext round-trips; absent aad is the empty aad; every encrypt draws a new nonce', async () => {
    const { handle, name } = await createKey('symmetric');
    const key = await exportKey(handle);
    const big = randomBytes(1 << 20);
    const ct = (await vault.call('encrypt', { handle, plaintext: big })) as Uint8Array;
    expect(bytes(nobleOpen(key, name, ct))).toBe(bytes(big));
    expect(bytes(await vault.call('decrypt', { handle, ciphertext: ct, aad: EMPTY }))).toBe(bytes(big));
    const a = (await vault.call('encrypt', { handle, plaintext: te('same') })) as Uint8Array;
    const b = (await vault.call('encrypt', { handle, plaintext: te('same') })) as Uint8Array;
    expect(bytes(a.subarray(7, 31))).not.toBe(bytes(b.subarray(7, 31)));
  });

  it('the name and the version are bound: another key, another aad or an edited version does not authenticate', async () => {
    const a = await createKey('symmetric');
    const b = await createKey('symmetric');
    const ct = (await vault.call('encrypt', { handle: a.handle, plaintext: te('secret'), aad: te('x') })) as Uint8Array;
    expect(await codeOf(vault.call('decrypt', { handle: b.handle, ciphertext: ct, aad: te('x') }))).toBe('decrypt_failed');
    expect(await codeOf(vault.call('decrypt', { handle: a.handle, ciphertext: ct, aad: te('y') }))).toBe('decrypt_failed');
    expect(await codeOf(vault.call('decrypt', { handle: a.handle, ciphertext: ct }))).toBe('decrypt_failed');
    // The same key material under another name still does not open it: the name is in the aad.
    const key = await exportKey(a.handle);
    expect(() => xchacha20poly1305(key, ct.subarray(7, 31), aeadAad(b.name, 1, te('x'))).decrypt(ct.subarray(31))).toThrow();
    await rotate(a.handle);
    expect(await codeOf(vault.call('decrypt', { handle: a.handle, ciphertext: withU32(ct, 3, 2), aad: te('x') }))).toBe('decrypt_failed');
  });

  it('hostile ciphertexts: each refused with its code, and the key still works after', async () => {
    const { handle } = await createKey('symmetric');
    await rotate(handle);
    await rotate(handle); // versions 1..3
    await configure(handle, { min_decryption_version: 2 });
    const ct = (await vault.call('encrypt', { handle, plaintext: te('payload') })) as Uint8Array; // version 3
    const cases: Array<[string, Uint8Array, string]> = [
      ['empty', EMPTY, 'bad_request'],
      ['header only', ct.subarray(0, 31), 'bad_request'],
      ['one byte short of the minimum (46)', ct.subarray(0, 46), 'bad_request'],
      ['wrong magic', flip(ct, 0), 'bad_request'],
      ['magic "EV2"', concat(te('EV2'), ct.subarray(3)), 'bad_request'],
      ['version 0', withU32(ct, 3, 0), 'bad_request'],
      ['version above latest', withU32(ct, 3, 4), 'not_found'],
      ['version 2^32-1', withU32(ct, 3, 0xffffffff), 'not_found'],
      ['version below min_decryption_version', withU32(ct, 3, 1), 'denied'],
      ['a flipped nonce byte', flip(ct, 10), 'decrypt_failed'],
      ['a flipped ciphertext byte', flip(ct, 31), 'decrypt_failed'],
      ['a flipped tag byte', flip(ct, ct.length - 1), 'decrypt_failed'],
      ['one byte appended', concat(ct, new Uint8Array([0])), 'decrypt_failed'],
      ['one byte cut', ct.subarray(0, ct.length - 1), 'decrypt_failed'],
      ['47 bytes, all zero after EV1 v3', concat(ct.subarray(0, 7), new Uint8Array(40)), 'decrypt_failed'],
    ];
    for (const [what, ciphertext, code] of cases) {
      expect(await codeOf(vault.call('decrypt', { handle, ciphertext })), what).toBe(code);
      expect(await codeOf(vault.call('rewrap', { handle, ciphertext })), `rewrap: ${what}`).toBe(code);
    }
    expect(await codeOf(vault.call('decrypt', { handle, ciphertext: new Uint8Array((1 << 20) + 48) }))).toBe('invalid_args'); // the contract's bound
    expect(bytes(await vault.call('decrypt', { handle, ciphertext: ct }))).toBe(bytes(te('payload')));
  });

  it('a trimmed version is not_found; a wrong key type is bad_request; a bad or destroyed handle is not_found', async () => {
    const { handle } = await createKey('symmetric', { deletion_allowed: true });
    const v1 = (await vault.call('encrypt', { handle, plaintext: te('old') })) as Uint8Array;
    await rotate(handle);
    await configure(handle, { min_decryption_version: 2 });
    await trim(handle, 2);
    expect(await codeOf(vault.call('decrypt', { handle, ciphertext: v1 }))).toBe('not_found');
    expect(await codeOf(vault.call('rewrap', { handle, ciphertext: v1 }))).toBe('not_found');

    const ed = await createKey('ed25519');
    const x = await createKey('x25519');
    for (const h of [ed.handle, x.handle]) {
      expect(await codeOf(vault.call('encrypt', { handle: h, plaintext: te('m') }))).toBe('bad_request');
      expect(await codeOf(vault.call('decrypt', { handle: h, ciphertext: v1 }))).toBe('bad_request');
      expect(await codeOf(vault.call('rewrap', { handle: h, ciphertext: v1 }))).toBe('bad_request');
      expect(await codeOf(vault.call('datakey', { handle: h }))).toBe('bad_request');
      expect(await codeOf(vault.call('mac', { handle: h, data: te('m') }))).toBe('bad_request');
    }
    expect(await codeOf(vault.call('encrypt', { handle: flip(handle, 12), plaintext: te('m') }))).toBe('not_found');
    expect(await codeOf(vault.call('encrypt', { handle: handle.subarray(0, 15), plaintext: te('m') }))).toBe('not_found');
    const d = (await vault.call('destroy', { handle })) as { persist: Persist };
    await commit(d.persist);
    expect(await codeOf(vault.call('encrypt', { handle, plaintext: te('m') }))).toBe('not_found');
    expect(await codeOf(vault.call('decrypt', { handle, ciphertext: v1 }))).toBe('not_found');
  });
});

describe('vault crypto: rotation', () => {
  it('encrypt uses the latest version; old ciphertexts decrypt until min_decryption_version passes them; rewrap moves them', async () => {
    const { handle, name } = await createKey('symmetric');
    const aad = te('row 7');
    const c1 = (await vault.call('encrypt', { handle, plaintext: te('one'), aad })) as Uint8Array;
    expect(await rotate(handle)).toBe(2);
    const c2 = (await vault.call('encrypt', { handle, plaintext: te('two'), aad })) as Uint8Array;
    expect(versionOf(c1, 3)).toBe(1);
    expect(versionOf(c2, 3)).toBe(2);
    expect(bytes(nobleOpen(await exportKey(handle, 2), name, c2, aad))).toBe(bytes(te('two')));
    expect(bytes(await vault.call('decrypt', { handle, ciphertext: c1, aad }))).toBe(bytes(te('one')));

    const moved = (await vault.call('rewrap', { handle, ciphertext: c1, aad })) as Uint8Array;
    expect(versionOf(moved, 3)).toBe(2);
    expect(bytes(nobleOpen(await exportKey(handle, 2), name, moved, aad))).toBe(bytes(te('one')));
    expect(await codeOf(vault.call('rewrap', { handle, ciphertext: c1, aad: te('row 8') }))).toBe('decrypt_failed');

    await configure(handle, { min_decryption_version: 2 });
    expect(await codeOf(vault.call('decrypt', { handle, ciphertext: c1, aad }))).toBe('denied');
    expect(await codeOf(vault.call('rewrap', { handle, ciphertext: c1, aad }))).toBe('denied');
    expect(bytes(await vault.call('decrypt', { handle, ciphertext: moved, aad }))).toBe(bytes(te('one')));
    // Lowering it again lets version 1 decrypt again (it was never trimmed).
    await configure(handle, { min_decryption_version: 1 });
    expect(bytes(await vault.call('decrypt', { handle, ciphertext: c1, aad }))).toBe(bytes(te('one')));
  });

  it('while a rotation is pending, encrypt stays on the committed version, so an abort loses nothing', async () => {
    const { handle } = await createKey('symmetric');
    const r = (await vault.call('rotate', { handle })) as { persist: Persist };
    const ct = (await vault.call('encrypt', { handle, plaintext: te('during') })) as Uint8Array;
    expect(versionOf(ct, 3)).toBe(1);
    await vault.call('abort', { name: r.persist.name, version: r.persist.version });
    expect(bytes(await vault.call('decrypt', { handle, ciphertext: ct }))).toBe(bytes(te('during')));
    expect(((await vault.call('describe', { handle })) as { latest_version: number }).latest_version).toBe(1);
  });
});

describe('vault crypto: datakey', () => {
  it('wraps a fresh 32-byte key as encrypt does; the plaintext only when asked for', async () => {
    const { handle, name } = await createKey('symmetric');
    const key = await exportKey(handle);
    const withPlain = (await vault.call('datakey', { handle, plaintext: true })) as { ciphertext: Uint8Array; plaintext: Uint8Array };
    expect(withPlain.plaintext.length).toBe(32);
    expect(withPlain.ciphertext.length).toBe(32 + 47);
    expect(bytes(nobleOpen(key, name, withPlain.ciphertext))).toBe(bytes(withPlain.plaintext));
    expect(bytes(await vault.call('decrypt', { handle, ciphertext: withPlain.ciphertext }))).toBe(bytes(withPlain.plaintext));
    const without = (await vault.call('datakey', { handle, aad: te('bucket') })) as Record<string, Uint8Array>;
    expect(Object.keys(without)).toEqual(['ciphertext']);
    expect(nobleOpen(key, name, without.ciphertext!, te('bucket')).length).toBe(32);
    const other = (await vault.call('datakey', { handle, plaintext: true })) as { plaintext: Uint8Array };
    expect(bytes(other.plaintext)).not.toBe(bytes(withPlain.plaintext));
  });
});

describe('vault crypto: sign and verify against @noble/curves', () => {
  it('signatures verify with noble under the public key; the vault verifies noble signatures', async () => {
    const { handle } = await createKey('ed25519');
    const seed = await exportKey(handle);
    const pub = (await vault.call('public_key', { handle })) as Uint8Array;
    expect(bytes(pub)).toBe(bytes(ed25519.getPublicKey(seed)));
    for (const msg of [EMPTY, te('message'), randomBytes(100_000)]) {
      const sig = (await vault.call('sign', { handle, message: msg })) as Uint8Array;
      expect(sig.length).toBe(68);
      expect(versionOf(sig)).toBe(1);
      expect(ed25519.verify(sig.subarray(4), msg, pub)).toBe(true);
      expect(bytes(sig.subarray(4))).toBe(bytes(ed25519.sign(msg, seed))); // deterministic (RFC 8032)
      expect(await vault.call('verify', { handle, message: msg, signature: sig })).toBe(true);
      const noble = concat(u32le(1), ed25519.sign(msg, seed));
      expect(await vault.call('verify', { handle, message: msg, signature: noble })).toBe(true);
      expect(await vault.call('verify', { handle, message: concat(msg, te('!')), signature: sig })).toBe(false);
      expect(await vault.call('verify', { handle, message: msg, signature: flip(sig, 40) })).toBe(false);
    }
    const sig1 = (await vault.call('sign', { handle, message: te('m') })) as Uint8Array;
    // A signature from another key's seed does not verify here.
    const stranger = concat(u32le(1), ed25519.sign(te('m'), randomBytes(32)));
    expect(await vault.call('verify', { handle, message: te('m'), signature: stranger })).toBe(false);

    // Rotation: sign uses the latest; old signatures verify until retired (denied) and trimmed (false).
    expect(await rotate(handle)).toBe(2);
    const sig2 = (await vault.call('sign', { handle, message: te('m') })) as Uint8Array;
    expect(versionOf(sig2)).toBe(2);
    expect(ed25519.verify(sig2.subarray(4), te('m'), (await vault.call('public_key', { handle, version: 2 })) as Uint8Array)).toBe(true);
    expect(bytes(await vault.call('public_key', { handle, version: 1 }))).toBe(bytes(pub));
    // Re-labelled with the other version, a signature does not verify.
    expect(await vault.call('verify', { handle, message: te('m'), signature: withU32(sig1, 0, 2) })).toBe(false);
    await configure(handle, { min_decryption_version: 2 });
    // Retired (below min_decryption_version): denied, as transit's ErrTooOld, not a verdict.
    expect(await codeOf(vault.call('verify', { handle, message: te('m'), signature: sig1 }))).toBe('denied');
    expect(await vault.call('verify', { handle, batch: [{ message: te('m'), signature: sig1 }, { message: te('m'), signature: sig2 }] })).toEqual([{ err: 'denied' }, { ok: true }]);
    await trim(handle, 2);
    expect(await vault.call('verify', { handle, message: te('m'), signature: sig1 })).toBe(false);
    expect(await codeOf(vault.call('public_key', { handle, version: 1 }))).toBe('not_found');
    expect(await vault.call('verify', { handle, message: te('m'), signature: sig2 })).toBe(true);
  });

  it('hostile signatures: malformed is bad_request, an unknown version is false; wrong key types are bad_request', async () => {
    const { handle } = await createKey('ed25519');
    const sig = (await vault.call('sign', { handle, message: te('m') })) as Uint8Array;
    for (const [what, signature] of [['empty', EMPTY], ['64 bytes (no version)', sig.subarray(4)], ['67 bytes', sig.subarray(0, 67)], ['69 bytes', concat(sig, new Uint8Array(1))], ['version 0', withU32(sig, 0, 0)]] as const) {
      expect(await codeOf(vault.call('verify', { handle, message: te('m'), signature })), what).toBe('bad_request');
    }
    expect(await vault.call('verify', { handle, message: te('m'), signature: withU32(sig, 0, 2) })).toBe(false);
    expect(await vault.call('verify', { handle, message: te('m'), signature: withU32(sig, 0, 0xffffffff) })).toBe(false);
    expect(await vault.call('verify', { handle, message: te('m'), signature: concat(u32le(1), new Uint8Array(64)) })).toBe(false);
    expect(await codeOf(vault.call('verify', { handle, message: te('m'), signature: new Uint8Array(129) }))).toBe('invalid_args');
    const sym = await createKey('symmetric');
    const x = await createKey('x25519');
    for (const h of [sym.handle, x.handle]) {
      expect(await codeOf(vault.call('sign', { handle: h, message: te('m') }))).toBe('bad_request');
      expect(await codeOf(vault.call('verify', { handle: h, message: te('m'), signature: sig }))).toBe('bad_request');
    }
    expect(await codeOf(vault.call('public_key', { handle: sym.handle }))).toBe('bad_request');
    expect(await codeOf(vault.call('public_key', { handle, version: 2 }))).toBe('not_found');
  });
});

describe('vault crypto: mac and verify_mac against node:crypto', () => {
  it('the tag is HMAC-SHA-256 under the HKDF subkey, never under the key itself', async () => {
    const { handle } = await createKey('symmetric');
    const key = await exportKey(handle);
    for (const data of [EMPTY, te('data'), randomBytes(200_000)]) {
      const mac = (await vault.call('mac', { handle, data })) as Uint8Array;
      expect(mac.length).toBe(36);
      expect(versionOf(mac)).toBe(1);
      expect(bytes(mac.subarray(4))).toBe(createHmac('sha256', macSubkey(key)).update(data).digest('hex'));
      expect(bytes(mac.subarray(4))).not.toBe(createHmac('sha256', key).update(data).digest('hex'));
      expect(await vault.call('verify_mac', { handle, data, mac })).toBe(true);
      expect(await vault.call('verify_mac', { handle, data: concat(data, te('x')), mac })).toBe(false);
      expect(await vault.call('verify_mac', { handle, data, mac: flip(mac, 35) })).toBe(false);
    }
  });

  it('rotation, trim and hostile macs', async () => {
    const { handle } = await createKey('symmetric');
    const m1 = (await vault.call('mac', { handle, data: te('d') })) as Uint8Array;
    await rotate(handle);
    const m2 = (await vault.call('mac', { handle, data: te('d') })) as Uint8Array;
    expect(versionOf(m2)).toBe(2);
    expect(bytes(m2.subarray(4))).toBe(createHmac('sha256', macSubkey(await exportKey(handle, 2))).update('d').digest('hex'));
    expect(await vault.call('verify_mac', { handle, data: te('d'), mac: m1 })).toBe(true);
    expect(await vault.call('verify_mac', { handle, data: te('d'), mac: withU32(m1, 0, 2) })).toBe(false);
    for (const [what, mac] of [['empty', EMPTY], ['32 bytes (no version)', m1.subarray(4)], ['35 bytes', m1.subarray(0, 35)], ['37 bytes', concat(m1, new Uint8Array(1))], ['version 0', withU32(m1, 0, 0)]] as const) {
      expect(await codeOf(vault.call('verify_mac', { handle, data: te('d'), mac })), what).toBe('bad_request');
    }
    expect(await vault.call('verify_mac', { handle, data: te('d'), mac: withU32(m1, 0, 3) })).toBe(false);
    await configure(handle, { min_decryption_version: 2 });
    expect(await codeOf(vault.call('verify_mac', { handle, data: te('d'), mac: m1 }))).toBe('denied');
    expect(await vault.call('verify_mac', { handle, batch: [{ data: te('d'), mac: m1 }, { data: te('d'), mac: m2 }] })).toEqual([{ err: 'denied' }, { ok: true }]);
    await trim(handle, 2);
    expect(await vault.call('verify_mac', { handle, data: te('d'), mac: m1 })).toBe(false);
    expect(await vault.call('verify_mac', { handle, data: te('d'), mac: m2 })).toBe(true);
    const ed = await createKey('ed25519');
    expect(await codeOf(vault.call('verify_mac', { handle: ed.handle, data: te('d'), mac: m2 }))).toBe('bad_request');
  });
});

describe('vault crypto: derive and public_key against @noble', () => {
  it('symmetric: HKDF-SHA-256(key, salt "enclave-vault/derive", info = context)', async () => {
    const { handle } = await createKey('symmetric');
    const key = await exportKey(handle);
    for (const length of [undefined, 1, 16, 64]) {
      const r = (await vault.call('derive', { handle, context: te('tenant 42'), length })) as { key: Uint8Array; version: number };
      expect(r.version).toBe(1);
      expect(bytes(r.key)).toBe(bytes(hkdf(sha256, key, te('enclave-vault/derive'), te('tenant 42'), length ?? 32)));
    }
    await rotate(handle);
    const latest = (await vault.call('derive', { handle, context: EMPTY })) as { key: Uint8Array; version: number };
    expect(latest.version).toBe(2);
    expect(bytes(latest.key)).toBe(bytes(hkdf(sha256, await exportKey(handle, 2), te('enclave-vault/derive'), EMPTY, 32)));
    const old = (await vault.call('derive', { handle, context: EMPTY, version: 1 })) as { key: Uint8Array };
    expect(bytes(old.key)).toBe(bytes(hkdf(sha256, key, te('enclave-vault/derive'), EMPTY, 32)));
    await configure(handle, { min_decryption_version: 2 });
    expect(await codeOf(vault.call('derive', { handle, context: EMPTY, version: 1 }))).toBe('denied');
    expect(await codeOf(vault.call('derive', { handle, context: EMPTY, version: 3 }))).toBe('not_found');
    expect(await codeOf(vault.call('derive', { handle, context: EMPTY, peer_public_key: x25519.getPublicKey(randomBytes(32)) }))).toBe('bad_request');
    for (const length of [0, 65]) expect(await codeOf(vault.call('derive', { handle, context: EMPTY, length }))).toBe('invalid_args');
  });

  it('x25519: HKDF over X25519(key, peer), as noble computes it from either side; all-zero shared secrets refused', async () => {
    const { handle } = await createKey('x25519');
    const secret = await exportKey(handle);
    const pub = (await vault.call('public_key', { handle })) as Uint8Array;
    expect(bytes(pub)).toBe(bytes(x25519.getPublicKey(secret)));
    const peerSecret = randomBytes(32);
    const peer = x25519.getPublicKey(peerSecret);
    const r = (await vault.call('derive', { handle, context: te('session'), peer_public_key: peer, length: 48 })) as { key: Uint8Array };
    // The peer computes the same from its side: X25519(peer secret, our public key).
    expect(bytes(r.key)).toBe(bytes(hkdf(sha256, x25519.getSharedSecret(peerSecret, pub), te('enclave-vault/derive'), te('session'), 48)));
    expect(bytes(r.key)).toBe(bytes(hkdf(sha256, x25519.getSharedSecret(secret, peer), te('enclave-vault/derive'), te('session'), 48)));

    // Small-order points (RFC 7748 §6.1: the all-zero shared secret): 0, 1, and an order-8 point.
    const smallOrder = ['0000000000000000000000000000000000000000000000000000000000000000', '0100000000000000000000000000000000000000000000000000000000000000', 'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800'];
    for (const hex of smallOrder) {
      expect(await codeOf(vault.call('derive', { handle, context: EMPTY, peer_public_key: Buffer.from(hex, 'hex') })), hex).toBe('bad_request');
    }
    for (const bad of [undefined, peer.subarray(0, 31), concat(peer, new Uint8Array(1))]) {
      expect(await codeOf(vault.call('derive', { handle, context: EMPTY, peer_public_key: bad }))).toBe('bad_request');
    }
    const ed = await createKey('ed25519');
    expect(await codeOf(vault.call('derive', { handle: ed.handle, context: EMPTY, peer_public_key: peer }))).toBe('bad_request');

    await rotate(handle);
    expect(bytes(await vault.call('public_key', { handle, version: 2 }))).toBe(bytes(x25519.getPublicKey(await exportKey(handle, 2))));
    expect(bytes(await vault.call('public_key', { handle, version: 1 }))).toBe(bytes(pub));
  });
});
