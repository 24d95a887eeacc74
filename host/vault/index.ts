/**
 * The key vault's host side (host/vault/vault.ts): `Vault`, `VaultKey` and their types.
 *
 * @example
 * import { Vault } from './vault/index.js';
 * const vault = await Vault.open({ store, attestation: platform });
 */
export { Vault, VaultKey, VAULT_LIMITS, VAULT_STORE_PREFIX, VAULT_ID_RECORD, VAULT_FUEL } from './vault.js';
export type { VaultOpenOptions, VaultCreateOptions, VaultStore, RefusedRecord, ResealReport, DataKey, DerivedKey } from './vault.js';
export type { VaultKeyType, VaultSealPolicy, VaultKeyMetadata, VaultBatchItem } from './_ops.js';
