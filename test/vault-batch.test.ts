// Batches of the vault enclave's crypto ops (enclave-modules/vault/crypto-ops.ts, docs/VAULT.md §5)
// through the real runtime: `batch: [...]` of up to 256 items, each answered `{ok: value}` or
// `{err: code}` in order, one bad item never failing the others; the batch bounded as a whole (its
// work by the ops' budget, so that no batch the contract admits runs out of fuel and loses the
// instance's keyring; its reply by the contract's reply limit).

import { createHmac, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { EnclaveHandle } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { MODES } from './helpers/modes.js';
import { vaultContract, vaultModule, vaultRig, type Persist } from './helpers/vault.js';

let vault: EnclaveHandle;
const limits = vaultContract().limits as { requestBytes: number; replyBytes: number; fuel: number };

type Item = { ok?: unknown; err?: string };
const commit = (p: Persist) => vault.call('commit', { name: p.name, version: p.version });
let names = 0;
async function createKey(type: 'symmetric' | 'ed25519' | 'x25519'): Promise<{ handle: Uint8Array; name: string }> {
  const name = `batch-${type}-${++names}`;
  const r = (await vault.call('create', { name, type, exportable: true, seal_policy: 'measurement' })) as { handle: Uint8Array; persist: Persist };
  await commit(r.persist);
  return { handle: r.handle, name };
}
async function rotate(handle: Uint8Array): Promise<number> {
  const r = (await vault.call('rotate', { handle })) as { version: number; persist: Persist };
  await commit(r.persist);
  return r.version;
}
async function mutate(op: string, args: Record<string, unknown>): Promise<void> {
  await commit(((await vault.call(op, args)) as { persist: Persist }).persist);
}
const exportKey = async (handle: Uint8Array, version?: number) => (await vault.call('export', { handle, version })) as Uint8Array;
const batch = async (op: string, args: Record<string, unknown>) => (await vault.call(op, args)) as Item[];

const te = (s: string) => new TextEncoder().encode(s);
const EMPTY = new Uint8Array(0);
const bytes = (v: unknown) => Buffer.from(v as Uint8Array).toString('hex');
function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
const concat = (...p: Uint8Array[]) => new Uint8Array(Buffer.concat(p));
const versionOf = (b: Uint8Array, off = 0) => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
function withU32(b: Uint8Array, off: number, v: number): Uint8Array {
  const c = b.slice();
  new DataView(c.buffer).setUint32(off, v, true);
  return c;
}
function flip(b: Uint8Array, i: number): Uint8Array {
  const c = b.slice();
  c[i]! ^= 0x01;
  return c;
}
/** Opens a vault ciphertext with @noble/ciphers (format: docs/VAULT.md §6.1). */
function nobleOpen(key: Uint8Array, name: string, ct: Uint8Array, aad = EMPTY): Uint8Array {
  const ad = concat(te('enclave-vault/v1\0'), u32le(name.length), te(name), ct.subarray(3, 7), aad);
  return xchacha20poly1305(key, ct.subarray(7, 31), ad).decrypt(ct.subarray(31));
}
/** The items' codes, `ok` for a success. */
const outcomes = (items: Item[]) => items.map((i) => (i.err !== undefined ? i.err : 'ok'));

describe.each(MODES)('vault batch ($name)', (mode) => {
  beforeAll(async () => {
    // Each mode its own platform and instance; compiled from the current sources (cached by their hash).
    const rig = await vaultRig();
    vault = await rig.load(mode, rig.sign(await vaultModule()));
  });

  describe('mixed good and bad items, each answered in order', () => {
    it('encrypt, then decrypt a batch mixing good, tampered, malformed, unknown, denied and wrong-aad ciphertexts', async () => {
      const { handle, name } = await createKey('symmetric');
      const old = (await vault.call('encrypt', { handle, plaintext: te('v1') })) as Uint8Array;
      await rotate(handle);
      await mutate('configure', { handle, min_decryption_version: 2 });
      const plaintexts = Array.from({ length: 6 }, (_, i) => randomBytes(i * 97));
      const enc = await batch('encrypt', { handle, batch: plaintexts.map((plaintext, i) => (i % 2 === 0 ? { plaintext } : { plaintext, aad: te(`row ${i}`) })) });
      expect(outcomes(enc)).toEqual(Array(6).fill('ok'));
      const key = await exportKey(handle, 2);
      const cts = enc.map((i) => i.ok as Uint8Array);
      cts.forEach((ct, i) => expect(bytes(nobleOpen(key, name, ct, i % 2 === 0 ? EMPTY : te(`row ${i}`)))).toBe(bytes(plaintexts[i])));
      expect(new Set(cts.map((c) => bytes(c.subarray(7, 31)))).size).toBe(6); // a nonce per item

      await rotate(handle); // version 3: rewrap moves to it
      const v3 = (await vault.call('encrypt', { handle, plaintext: te('v3') })) as Uint8Array;
      const items = [
        { ciphertext: cts[0]! },
        { ciphertext: flip(cts[0]!, 40) },
        { ciphertext: cts[1]!, aad: te('row 1') },
        { ciphertext: cts[1]! }, // its aad missing
        { ciphertext: cts[0]!.subarray(0, 46) },
        { ciphertext: withU32(v3, 3, 0) },
        { ciphertext: withU32(v3, 3, 4) },
        { ciphertext: old }, // version 1: below min_decryption_version
        { ciphertext: v3 },
        { ciphertext: concat(te('EVX'), v3.subarray(3)) },
      ];
      const dec = await batch('decrypt', { handle, batch: items });
      expect(outcomes(dec)).toEqual(['ok', 'decrypt_failed', 'ok', 'decrypt_failed', 'bad_request', 'bad_request', 'not_found', 'denied', 'ok', 'bad_request']);
      expect(bytes(dec[0]!.ok)).toBe(bytes(plaintexts[0]));
      expect(bytes(dec[2]!.ok)).toBe(bytes(plaintexts[1]));
      expect(bytes(dec[8]!.ok)).toBe(bytes(te('v3')));
      // Every item is a map of exactly one key.
      for (const item of dec) expect(Object.keys(item)).toHaveLength(1);

      const re = await batch('rewrap', { handle, batch: items });
      expect(outcomes(re)).toEqual(outcomes(dec));
      expect(versionOf(re[0]!.ok as Uint8Array, 3)).toBe(3);
      expect(bytes(nobleOpen(await exportKey(handle, 3), name, re[2]!.ok as Uint8Array, te('row 1')))).toBe(bytes(plaintexts[1]));
    });

    it('sign and verify: every signature checks with noble; bad, malformed and unknown-version items fail alone', async () => {
      const { handle } = await createKey('ed25519');
      const pub = ed25519.getPublicKey(await exportKey(handle));
      const messages = Array.from({ length: 40 }, (_, i) => randomBytes(i * 13));
      const signed = await batch('sign', { handle, batch: messages.map((message) => ({ message })) });
      expect(outcomes(signed)).toEqual(Array(40).fill('ok'));
      const sigs = signed.map((s) => s.ok as Uint8Array);
      sigs.forEach((sig, i) => expect(ed25519.verify(sig.subarray(4), messages[i]!, pub)).toBe(true));

      const checks = await batch('verify', {
        handle,
        batch: [
          { message: messages[3]!, signature: sigs[3]! },
          { message: messages[3]!, signature: sigs[4]! },
          { message: messages[5]!, signature: sigs[5]!.subarray(0, 67) },
          { message: messages[6]!, signature: withU32(sigs[6]!, 0, 0) },
          { message: messages[7]!, signature: withU32(sigs[7]!, 0, 9) },
          { message: messages[8]!, signature: flip(sigs[8]!, 10) },
          { message: messages[9]!, signature: sigs[9]! },
        ],
      });
      expect(checks.map((c) => (c.err !== undefined ? c.err : c.ok))).toEqual([true, false, 'bad_request', 'bad_request', false, false, true]);
    });

    it('mac and verify_mac: tags equal node:crypto HMAC under the subkey; bad items fail alone', async () => {
      const { handle } = await createKey('symmetric');
      const sub = hkdf(sha256, await exportKey(handle), EMPTY, te('enclave-vault/mac'), 32);
      const data = Array.from({ length: 20 }, (_, i) => randomBytes(i * 31));
      const macs = await batch('mac', { handle, batch: data.map((d) => ({ data: d })) });
      expect(outcomes(macs)).toEqual(Array(20).fill('ok'));
      macs.forEach((m, i) => expect(bytes((m.ok as Uint8Array).subarray(4))).toBe(createHmac('sha256', sub).update(data[i]!).digest('hex')));
      const tags = macs.map((m) => m.ok as Uint8Array);
      const checks = await batch('verify_mac', {
        handle,
        batch: [
          { data: data[1]!, mac: tags[1]! },
          { data: data[1]!, mac: tags[2]! },
          { data: data[2]!, mac: tags[2]!.subarray(1) },
          { data: data[3]!, mac: withU32(tags[3]!, 0, 2) },
          { data: data[4]!, mac: tags[4]! },
        ],
      });
      expect(checks.map((c) => (c.err !== undefined ? c.err : c.ok))).toEqual([true, false, 'bad_request', false, true]);
    });

    it('the batch itself: empty, beside single-item fields, over 256 items, on the wrong key type or a bad handle', async () => {
      const { handle } = await createKey('symmetric');
      const ed = await createKey('ed25519');
      expect(await codeOf(vault.call('encrypt', { handle, batch: [] }))).toBe('bad_request');
      expect(await codeOf(vault.call('encrypt', { handle, plaintext: te('x'), batch: [{ plaintext: te('y') }] }))).toBe('bad_request');
      expect(await codeOf(vault.call('decrypt', { handle, aad: te('x'), batch: [{ ciphertext: EMPTY }] }))).toBe('bad_request');
      expect(await codeOf(vault.call('encrypt', { handle, batch: Array.from({ length: 257 }, () => ({ plaintext: EMPTY })) }))).toBe('invalid_args');
      expect(await codeOf(vault.call('encrypt', { handle, batch: [{ aad: EMPTY }] }))).toBe('invalid_args'); // the contract: plaintext required
      expect(await codeOf(vault.call('sign', { handle, batch: [{ message: EMPTY }] }))).toBe('bad_request');
      expect(await codeOf(vault.call('encrypt', { handle: ed.handle, batch: [{ plaintext: EMPTY }] }))).toBe('bad_request');
      expect(await codeOf(vault.call('mac', { handle: flip(handle, 15), batch: [{ data: EMPTY }] }))).toBe('not_found');
      const full = await batch('encrypt', { handle, batch: Array.from({ length: 256 }, () => ({ plaintext: EMPTY })) });
      expect(outcomes(full)).toEqual(Array(256).fill('ok'));
      // A request over the contract's byte limit never reaches the enclave.
      const over = Array.from({ length: 4 }, () => ({ plaintext: new Uint8Array(Math.ceil(limits.requestBytes / 4)) }));
      expect(await codeOf(vault.call('encrypt', { handle, batch: over }))).toBe('too_large');
    });
  });

  describe('bounded as a whole', () => {
    it('a batch whose replies would pass the reply limit answers the last items limit, not the whole call', async () => {
      const { handle, name } = await createKey('symmetric');
      // 256 plaintexts that fill the request: each ciphertext is 47 bytes longer, so the replies do not fit.
      const size = Math.floor((limits.requestBytes - 256) / 256) - 16;
      const pts = Array.from({ length: 256 }, (_, i) => new Uint8Array(size).fill(i));
      const out = await batch('encrypt', { handle, batch: pts.map((plaintext) => ({ plaintext })) });
      const ok = out.filter((i) => i.ok !== undefined).length;
      expect(ok).toBeGreaterThan(200);
      expect(ok).toBeLessThan(256);
      expect(outcomes(out)).toEqual([...Array(ok).fill('ok'), ...Array(256 - ok).fill('limit')]);
      const key = await exportKey(handle);
      for (const i of [0, ok - 1]) expect(bytes(nobleOpen(key, name, out[i]!.ok as Uint8Array))).toBe(bytes(pts[i]));
    });

    it('256 signatures (the worst batch) stop at the work budget: no fuel_exhausted, the keyring survives', async () => {
      const { handle } = await createKey('ed25519');
      const pub = ed25519.getPublicKey(await exportKey(handle));
      const sym = await createKey('symmetric');
      const kept = (await vault.call('encrypt', { handle: sym.handle, plaintext: te('still here') })) as Uint8Array;
      const message = randomBytes(Math.floor((limits.requestBytes - 4096) / 256) - 16);
      const stats = { fuel: 0 };
      const out = (await vault.call('sign', { handle, batch: Array.from({ length: 256 }, () => ({ message })) }, { stats })) as Item[];
      const ok = out.filter((i) => i.ok !== undefined).length;
      expect(ok).toBeGreaterThan(50);
      expect(ok).toBeLessThan(256);
      expect(outcomes(out)).toEqual([...Array(ok).fill('ok'), ...Array(256 - ok).fill('limit')]);
      for (const i of [0, ok - 1]) expect(ed25519.verify((out[i]!.ok as Uint8Array).subarray(4), message, pub)).toBe(true);
      expect(stats.fuel).toBeLessThan(limits.fuel);
      // The instance was kept: the same handles still work, and the rest can be sent in another call.
      expect(bytes(await vault.call('decrypt', { handle: sym.handle, ciphertext: kept }))).toBe(bytes(te('still here')));
      const rest = await batch('sign', { handle, batch: Array.from({ length: 256 - ok }, () => ({ message })) });
      expect(rest.every((i) => i.ok !== undefined || i.err === 'limit')).toBe(true);
    });

    it('verify over 64 versions with full messages, mac and rewrap of full batches: all within the contract fuel', async () => {
      const { handle } = await createKey('ed25519');
      const message = randomBytes(Math.floor((limits.requestBytes - 40_000) / 256) - 16);
      const sigs: Uint8Array[] = [(await vault.call('sign', { handle, message })) as Uint8Array];
      for (let v = 2; v <= 64; v++) {
        expect(await rotate(handle)).toBe(v);
        sigs.push((await vault.call('sign', { handle, message })) as Uint8Array);
      }
      const stats = { fuel: 0 };
      const out = (await vault.call('verify', { handle, batch: Array.from({ length: 256 }, (_, i) => ({ message, signature: sigs[i % 64]! })) }, { stats })) as Item[];
      const ok = out.filter((i) => i.ok === true).length;
      expect(ok).toBeGreaterThan(50);
      expect(outcomes(out)).toEqual([...Array(ok).fill('ok'), ...Array(256 - ok).fill('limit')]);
      expect(stats.fuel).toBeLessThan(limits.fuel);

      const sym = await createKey('symmetric');
      const data = randomBytes(Math.floor((limits.requestBytes - 4096) / 256) - 64);
      const macs = await batch('mac', { handle: sym.handle, batch: Array.from({ length: 256 }, () => ({ data })) });
      expect(outcomes(macs)).toEqual(Array(256).fill('ok'));
      const cts = await batch('encrypt', { handle: sym.handle, batch: Array.from({ length: 256 }, () => ({ plaintext: data })) });
      await rotate(sym.handle);
      const re = await batch('rewrap', { handle: sym.handle, batch: cts.map((c) => ({ ciphertext: c.ok as Uint8Array })) });
      expect(outcomes(re)).toEqual(Array(256).fill('ok'));
      expect(re.every((r) => versionOf(r.ok as Uint8Array, 3) === 2)).toBe(true);
    });
  });
});
