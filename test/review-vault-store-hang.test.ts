/**
 * host/vault/ over a caller's store that never answers: every store call is bounded
 * (`storeTimeoutMs`), so a hung put is `unavailable` (may or may not have happened), `close` returns,
 * a hung list or get fails Vault.open instead of hanging it, and a put that lands late loses
 * nothing acknowledged.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { Vault, type VaultStore } from '../host/index.js';
import { MemoryStore as BaseMemoryStore } from './helpers/memory-store.js';
import { codeOf } from './helpers/errors.js';

const root = mkdtempSync(join(tmpdir(), 'enclave-review-vault-hang-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const platform = new SoftwareAttestationProvider({ dir: join(root, 'platform') }).open();

/** A SealedStore in memory whose calls can be held until released. */
class MemoryStore extends BaseMemoryStore {
  hold: 'get' | 'put' | 'list' | undefined;
  #release: (() => void)[] = [];
  release(): void {
    this.hold = undefined;
    for (const r of this.#release.splice(0)) r();
  }
  async #gate(op: 'get' | 'put' | 'list'): Promise<void> {
    if (this.hold === op) await new Promise<void>((resolve) => this.#release.push(resolve));
  }
  override async get(name: string) {
    await this.#gate('get');
    return super.get(name);
  }
  override async put(name: string, bytes: Uint8Array, options: { expectedVersion: number }) {
    await this.#gate('put');
    return super.put(name, bytes, options);
  }
  override async list(options: { prefix?: string; after?: string; limit?: number } = {}) {
    await this.#gate('list');
    return super.list(options);
  }
}

const open = (store: VaultStore, storeTimeoutMs = 300) => Vault.open({ store, attestation: platform, storeTimeoutMs });

describe('a store that never answers', () => {
  it('a hung put is unavailable after storeTimeoutMs; close returns; the late put loses nothing acknowledged', async () => {
    const store = new MemoryStore();
    const vault = await open(store);
    const kept = await vault.create('kept', { type: 'symmetric', sealPolicy: 'measurement' });
    const ciphertext = await kept.encrypt(new Uint8Array([1, 2, 3]));
    store.hold = 'put';
    const started = Date.now();
    expect(await codeOf(vault.create('late', { type: 'symmetric', sealPolicy: 'measurement' }))).toBe('unavailable');
    expect(Date.now() - started).toBeLessThan(10_000);
    // Other keys still work, and close does not wait for the hung put.
    expect(await kept.decrypt(ciphertext)).toEqual(new Uint8Array([1, 2, 3]));
    await vault.close();
    store.release(); // the put lands now, after the vault gave up on it

    const reopened = await open(store);
    expect(reopened.refused).toEqual([]);
    expect(await (await reopened.key('kept')).decrypt(ciphertext)).toEqual(new Uint8Array([1, 2, 3]));
    // The late record "may or may not have happened": either way it is whole and usable.
    const names = await reopened.list();
    expect(names).toContain('kept');
    if (names.includes('late')) await (await reopened.key('late')).encrypt(new Uint8Array(1));
    await reopened.close();
  });

  it('a hung list or get makes Vault.open unavailable instead of hanging it', async () => {
    const store = new MemoryStore();
    const vault = await open(store);
    await vault.create('k', { type: 'symmetric', sealPolicy: 'measurement' });
    await vault.close();
    for (const op of ['list', 'get'] as const) {
      store.hold = op;
      expect(await codeOf(open(store))).toBe('unavailable');
      store.release();
    }
    const again = await open(store);
    expect(await again.list()).toEqual(['k']);
    await again.close();
  });

  it('storeTimeoutMs must be a whole number of milliseconds', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '100', 2 ** 31]) {
      expect(await codeOf(Vault.open({ store: new MemoryStore(), attestation: platform, storeTimeoutMs: bad as number }))).toBe('invalid_options');
    }
  });
});
