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
import { Vault } from '../host/index.js';
import { MemoryStore as BaseMemoryStore } from './helpers/memory-store.js';
import { codeOf } from './helpers/errors.js';

const root = mkdtempSync(join(tmpdir(), 'enclave-review-vault-answer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const platform = new SoftwareAttestationProvider({ dir: join(root, 'platform') }).open();

const throwing = { get version(): number { throw new Error('getter'); } };

class MemoryStore extends BaseMemoryStore {
  /** The next put stores, then answers with a throwing getter. */
  lieOnPut = false;
  /** The next put fails (conflict) and the next get answers with a throwing getter. */
  failPutThenLie = false;
  #lieOnGet = false;
  override async get(name: string) {
    if (this.#lieOnGet) {
      this.#lieOnGet = false;
      return throwing as never;
    }
    return super.get(name);
  }
  override async put(name: string, bytes: Uint8Array, options: { expectedVersion: number }) {
    if (this.failPutThenLie) {
      this.failPutThenLie = false;
      this.#lieOnGet = true;
      throw new EnclaveError('conflict', 'moved');
    }
    const stored = await super.put(name, bytes, options);
    if (this.lieOnPut) {
      this.lieOnPut = false;
      return throwing as never;
    }
    return stored;
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
