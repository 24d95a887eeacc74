/**
 * host/vault/ with a caller-supplied store that answers `get` carelessly or with hostile values:
 * `null` for an absent record (what a store over SQL returns for no row), a Proxy or a detached view
 * as bytes, a throwing getter, a Uint8Array subclass whose `length` lies. Each is absent, refused
 * by name, or `unavailable`: never a TypeError out of Vault.open.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { Vault, VAULT_LIMITS, type VaultStore } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { MemoryStore as BaseMemoryStore } from './helpers/memory-store.js';

const root = mkdtempSync(join(tmpdir(), 'enclave-review-vault-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const platform = new SoftwareAttestationProvider({ dir: join(root, 'platform') }).open();

/** A SealedStore in memory whose `get` answer can be replaced per name. */
class MemoryStore extends BaseMemoryStore {
  answer: ((name: string, real: { name: string; version: number; bytes: Uint8Array } | undefined) => unknown) | undefined;
  override async get(name: string) {
    const real = await super.get(name);
    return (this.answer === undefined ? real : this.answer(name, real)) as typeof real;
  }
}

const open = (store: VaultStore) => Vault.open({ store, attestation: platform });

/** A store holding the vault id and two keys, 'a' and 'b'. */
async function storeWithKeys(): Promise<MemoryStore> {
  const store = new MemoryStore();
  const vault = await open(store);
  await vault.create('a', { type: 'symmetric', sealPolicy: 'measurement' });
  await vault.create('b', { type: 'symmetric', sealPolicy: 'measurement' });
  await vault.close();
  return store;
}

describe('Vault.open over a store that answers get carelessly', () => {
  it('null is an absent record: a first open makes the vault id, a record answered null is skipped', async () => {
    const fresh = new MemoryStore();
    fresh.answer = (_name, real) => real ?? null;
    const vault = await open(fresh);
    await vault.create('k', { type: 'symmetric', sealPolicy: 'measurement' });
    await vault.close();

    const store = await storeWithKeys();
    store.answer = (name, real) => (name === 'vault/a' ? null : real);
    const reopened = await open(store);
    expect(await reopened.list()).toEqual(['b']);
    expect(reopened.refused).toEqual([]);
    await reopened.close();
  });

  it('bytes that are a Proxy, a detached view or behind a throwing getter are unavailable, not a TypeError', async () => {
    const store = await storeWithKeys();
    const detached = new Uint8Array(8);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    const answers: ((real: { name: string; version: number; bytes: Uint8Array }) => unknown)[] = [
      (real) => ({ ...real, bytes: new Proxy(real.bytes, {}) }),
      (real) => ({ ...real, bytes: detached }),
      (real) => ({
        version: real.version,
        get bytes(): Uint8Array {
          throw new Error('getter');
        },
      }),
      () => 'not a record',
    ];
    for (const answer of answers) {
      store.answer = (name, real) => (name === 'vault/a' ? answer(real!) : real);
      expect(await codeOf(open(store))).toBe('unavailable');
    }
    store.answer = undefined;
    const vault = await open(store);
    expect(await vault.list()).toEqual(['a', 'b']);
    await vault.close();
  });

  it('a record whose length getter lies is measured by its real length (too_large), not loaded', async () => {
    class Liar extends Uint8Array {
      override get length(): number {
        return 10;
      }
    }
    const store = await storeWithKeys();
    store.answer = (name, real) => (name === 'vault/a' ? { ...real!, bytes: new Liar(VAULT_LIMITS.recordBytes + 1) } : real);
    const vault = await open(store);
    expect(vault.refused).toEqual([{ name: 'vault/a', code: 'too_large' }]);
    expect(await vault.list()).toEqual(['b']);
    await vault.close();
  });

  it('a vault id answered as a Proxy or a string is store_corrupt, not a TypeError', async () => {
    const store = await storeWithKeys();
    store.answer = (name, real) => (name === 'vault.id' ? { ...real!, bytes: new Proxy(real!.bytes, {}) } : real);
    expect(await codeOf(open(store))).toBe('store_corrupt');
    store.answer = (name, real) => (name === 'vault.id' ? 'id' : real);
    expect(await codeOf(open(store))).toBe('store_corrupt');
  });
});
