/**
 * host/vault/ driven by a careless or hostile caller: wrong types where options and batch items
 * belong. Every one is an EnclaveError with a stable code (never a TypeError from inside the
 * client), and a closed vault answers `closed` whatever the call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { Vault, type VaultKey } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { MemoryStore } from './helpers/memory-store.js';

const root = mkdtempSync(join(tmpdir(), 'enclave-review-vault-caller-'));
const platform = new SoftwareAttestationProvider({ dir: join(root, 'platform') }).open();

let vault: Vault;
let sym: VaultKey;
let ed: VaultKey;
beforeAll(async () => {
  vault = await Vault.open({ store: new MemoryStore(), attestation: platform });
  sym = await vault.create('sym', { type: 'symmetric', sealPolicy: 'measurement' });
  ed = await vault.create('ed', { type: 'ed25519', sealPolicy: 'measurement' });
});
afterAll(async () => {
  await vault.close();
  rmSync(root, { recursive: true, force: true });
});

// What a caller not using TypeScript (or casting) can pass.
const any = (value: unknown) => value as never;

describe('VaultKey: wrong types are invalid_args', () => {
  it('a null or number item in a batch of objects', async () => {
    for (const item of [null, 5, 'x']) {
      expect(await codeOf(sym.encryptBatch([any(item)]))).toBe('invalid_args');
      expect(await codeOf(sym.decryptBatch([any(item)]))).toBe('invalid_args');
      expect(await codeOf(sym.rewrapBatch([any(item)]))).toBe('invalid_args');
      expect(await codeOf(sym.verifyMacBatch([any(item)]))).toBe('invalid_args');
      expect(await codeOf(ed.verifyBatch([any(item)]))).toBe('invalid_args');
    }
    // The key still works.
    const [one] = await sym.encryptBatch([{ plaintext: new Uint8Array([1]) }]);
    expect(one?.ok).toBe(true);
  });

  it('derive and datakey with options that are not an object', async () => {
    for (const options of [null, 5, 'x']) {
      expect(await codeOf(sym.derive(new Uint8Array(1), any(options)))).toBe('invalid_args');
      expect(await codeOf(sym.datakey(any(options)))).toBe('invalid_args');
    }
  });

  it("datakey's plaintext flag is a boolean: 'yes' or 1 is refused, never read as no (or as yes)", async () => {
    for (const flag of ['yes', 1, 'false', 0]) expect(await codeOf(sym.datakey({ plaintext: any(flag) }))).toBe('invalid_args');
    expect((await sym.datakey({ plaintext: true })).plaintext?.length).toBe(32);
    expect((await sym.datakey({ plaintext: false })).plaintext).toBeUndefined();
  });
});

describe('a closed vault', () => {
  it('create answers closed (not sealing_unavailable for the default signer policy)', async () => {
    const other = await Vault.open({ store: new MemoryStore(), attestation: platform });
    await other.close();
    expect(await codeOf(other.create('k', { type: 'symmetric' }))).toBe('closed');
    expect(await codeOf(other.create('k', { type: 'symmetric', sealPolicy: 'measurement' }))).toBe('closed');
  });
});
