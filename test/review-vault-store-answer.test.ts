/**
 * host/vault/ over a caller's store whose answers to put (and to the read-back after a failed put)
 * are hostile objects: a `version` getter that throws. The change is `unavailable`, the vault
 * reloads, and the key is usable again at once (it was wedged in `conflict` until a restart).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { EnclaveError } from '../core/index.js';
import { Vault, type VaultStore } from '../host/index.js';
import { codeOf } from './helpers/errors.js';

const root = mkdtempSync(join(tmpdir(), 'enclave-review-vault-answer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const platform = new SoftwareAttestationProvider({ dir: join(root, 'platform') }).open();

const throwing = { get version(): number { throw new Error('getter'); } };

class MemoryStore implements VaultStore {
  readonly entries = new Map<string, { version: number; bytes: Uint8Array }>();
  /** The next put stores, then answers with a throwing getter. */
  lieOnPut = false;
  /** The next put fails (conflict) and the next get answers with a throwing getter. */
  failPutThenLie = false;
  #lieOnGet = false;
  async get(name: string) {
    if (this.#lieOnGet) {
      this.#lieOnGet = false;
      return throwing as never;
    }
    const e = this.entries.get(name);
    return e === undefined ? undefined : { name, version: e.version, bytes: e.bytes.slice() };
  }
  async put(name: string, bytes: Uint8Array, options: { expectedVersion: number }) {
    if (this.failPutThenLie) {
      this.failPutThenLie = false;
      this.#lieOnGet = true;
      throw new EnclaveError('conflict', 'moved');
    }
    const current = this.entries.get(name)?.version ?? 0;
    if (current !== options.expectedVersion) throw new EnclaveError('conflict', 'moved');
    this.entries.set(name, { version: current + 1, bytes: bytes.slice() });
    if (this.lieOnPut) {
      this.lieOnPut = false;
      return throwing as never;
    }
    return { name, version: current + 1, bytes };
  }
  async list(options: { prefix?: string; after?: string; limit?: number } = {}) {
    return [...this.entries.keys()]
      .filter((n) => n.startsWith(options.prefix ?? '') && (options.after === undefined || n > options.after))
      .sort()
      .slice(0, options.limit ?? 100);
  }
}

describe('a store that answers a put with a throwing getter', () => {
  it('the change is unavailable (not the raw error), the vault reloads, and the key takes changes again', async () => {
    const store = new MemoryStore();
    const vault = await Vault.open({ store, attestation: platform });
    const key = await vault.create('k', { type: 'symmetric', sealPolicy: 'measurement' });
    store.lieOnPut = true;
    expect(await codeOf(key.rotate())).toBe('unavailable');
    // The record was stored: the reload commits it; the next rotation follows it (not conflict forever).
    const next = await key.rotate();
    expect(next).toBe((await key.describe()).latestVersion);
    await vault.close();
    const reopened = await Vault.open({ store, attestation: platform });
    expect(reopened.refused).toEqual([]);
    expect((await (await reopened.key('k')).describe()).latestVersion).toBe(next);
    await reopened.close();
  });

  it("a failed put keeps its own error when the read-back's answer throws", async () => {
    const store = new MemoryStore();
    const vault = await Vault.open({ store, attestation: platform });
    const key = await vault.create('k', { type: 'symmetric', sealPolicy: 'measurement' });
    store.failPutThenLie = true;
    expect(await codeOf(key.rotate())).toBe('conflict');
    expect(await key.rotate()).toBe(2);
    await vault.close();
  });
});
