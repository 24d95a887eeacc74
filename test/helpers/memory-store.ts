/**
 * A vault store in memory, for tests of the vault client: the SealedStore contract's
 * compare-and-set put and sorted, paged list, with nothing durable. Tests that need a hostile or
 * failing store extend it and override one method (calling `super` for the real answer).
 */
import { EnclaveError } from '../../core/index.js';
import type { VaultStore } from '../../host/index.js';

/** One stored record. */
export interface MemoryEntry {
  version: number;
  bytes: Uint8Array;
}

/**
 * @example
 * const vault = await Vault.open({ store: new MemoryStore(), attestation: platform });
 */
export class MemoryStore implements VaultStore {
  readonly entries = new Map<string, MemoryEntry>();

  async get(name: string): Promise<{ name: string; version: number; bytes: Uint8Array } | undefined> {
    const e = this.entries.get(name);
    return e === undefined ? undefined : { name, version: e.version, bytes: e.bytes.slice() };
  }

  async put(name: string, bytes: Uint8Array, options: { expectedVersion: number }): Promise<{ name: string; version: number; bytes: Uint8Array }> {
    const current = this.entries.get(name)?.version ?? 0;
    if (current !== options.expectedVersion) throw new EnclaveError('conflict', 'moved');
    this.entries.set(name, { version: current + 1, bytes: bytes.slice() });
    return { name, version: current + 1, bytes };
  }

  /** Names in code-unit order: the tests' names are ASCII, where it equals the contract's UTF-8 byte order. */
  async list(options: { prefix?: string; after?: string; limit?: number } = {}): Promise<string[]> {
    return [...this.entries.keys()]
      .filter((n) => n.startsWith(options.prefix ?? '') && (options.after === undefined || n > options.after))
      .sort()
      .slice(0, options.limit ?? 100);
  }
}
