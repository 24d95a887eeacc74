/**
 * The sealed-blob store (docs/STORE.md): the `SealedStore` interface and `FileStore`,
 * its implementation in a private directory of the local file system.
 *
 * @example
 * import { FileStore } from './store/index.js';
 * const store = new FileStore('/var/lib/myservice/sealed');
 * await store.put('vault/k1', blob, { expectedVersion: 0 });
 */
export { STORE_LIMITS } from './store.js';
export type { SealedStore, StoredBlob, PutOptions, ListOptions } from './store.js';
export { FileStore, FILE_STORE_DEFAULTS } from './file-store.js';
export type { FileStoreOptions } from './file-store.js';
