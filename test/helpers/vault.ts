/**
 * The vault enclave (enclave-modules/vault/) for tests: compiled as `enclave build` compiles it
 * (compileModule: the contract's limits, cached in test/build/ by a hash of the sources), with its
 * contract embedded, optionally edited (another `version` is another measurement; another `svn` an
 * upgrade), and a rig: a fresh software platform in a temporary directory, a signing key the loads
 * trust, and a loader in either isolation mode.
 *
 * The load check of `enclave build` is not run here (the vault's own build runs it).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair, signModule, SoftwareAttestationProvider, type SigningKeyPair, type TrustPolicy } from '../../attest/index.js';
import type { EnclaveHandle } from '../../host/index.js';
import { compileModule, ROOT } from './raw-abi.js';
import { withContractSection } from './fixture-build.js';
import { loadIn, type Mode } from './modes.js';

/** The vault's contract as committed (enclave-modules/vault/contract.json). */
export function vaultContract(): Record<string, unknown> {
  return JSON.parse(readFileSync(`${ROOT}enclave-modules/vault/contract.json`, 'utf8')) as Record<string, unknown>;
}

/** Options of {@link vaultModule}. */
export interface VaultModuleOptions {
  /** The contract's `version` (default: the committed one); another version is another measurement. */
  version?: string;
  /** The contract's `svn` (default: the committed one). */
  svn?: number;
}

/**
 * The vault module's bytes, unsigned.
 * @example const v2 = await vaultModule({ version: '0.2.0', svn: 2 });
 */
export async function vaultModule(opts: VaultModuleOptions = {}): Promise<Uint8Array> {
  const raw = { ...vaultContract(), ...(opts.version === undefined ? {} : { version: opts.version }), ...(opts.svn === undefined ? {} : { svn: opts.svn }) };
  return withContractSection(await compileModule('vault'), new TextEncoder().encode(JSON.stringify(raw)));
}

/** A test platform, a signer the loads trust, and a loader. */
export interface VaultRig {
  /** The platform directory (its key file and counters/). */
  readonly dir: string;
  readonly provider: SoftwareAttestationProvider;
  readonly signer: SigningKeyPair;
  /** The vault id every load `init`s with unless told otherwise (random per rig: one vault). */
  readonly vaultId: Uint8Array;
  /** `module` signed with the rig's signer (or `key`). */
  sign(module: Uint8Array, key?: SigningKeyPair): Uint8Array;
  /**
   * Loads `bytes` in `mode` with capabilities random, seal and counter on this platform, trusting
   * the rig's signer (`trust: null`: no trust check, so no signer and no signer policy), state
   * persistent, fuel up to 2e9 (the contract's), then calls `init` with `vaultId` (default the
   * rig's; `null`: no init, for tests of an uninitialized instance).
   */
  load(mode: Mode, bytes: Uint8Array, options?: { trust?: TrustPolicy | null; extra?: Record<string, unknown>; vaultId?: Uint8Array | null }): Promise<EnclaveHandle>;
}

/**
 * A rig on a new temporary platform directory.
 * @example
 * const rig = await vaultRig();
 * const vault = await rig.load(MODES[0]!, rig.sign(await vaultModule()));
 */
export async function vaultRig(): Promise<VaultRig> {
  const dir = await mkdtemp(join(tmpdir(), 'enclave-vault-'));
  const provider = new SoftwareAttestationProvider({ dir }).open();
  const signer = generateKeyPair();
  const trust: TrustPolicy = { trusted: [{ publicKey: signer.publicKey }] };
  const vaultId = new Uint8Array(randomBytes(16));
  return {
    dir,
    provider,
    signer,
    vaultId,
    sign: (module, key = signer) => signModule(module, key),
    load: async (mode, bytes, options = {}) => {
      const enclave = await loadIn(mode, bytes, {
        capabilities: ['random', 'seal', 'counter'],
        attestation: provider,
        state: 'persistent',
        policy: { fuel: 2_000_000_000 },
        ...(options.trust === null ? {} : { trust: options.trust ?? trust }),
        ...options.extra,
      });
      const id = options.vaultId === undefined ? vaultId : options.vaultId;
      if (id !== null) await enclave.call('init', { vault_id: id });
      return enclave;
    },
  };
}

/** A `persist` value of a mutation's reply. */
export interface Persist {
  name: string;
  version: number;
  blob: Uint8Array;
}

/** Key metadata (`describe`, `key` of create/open/configure/trim). */
export interface KeyMeta {
  name: string;
  type: 'ed25519' | 'x25519' | 'symmetric';
  latest_version: number;
  min_decryption_version: number;
  min_available_version: number;
  exportable: boolean;
  deletion_allowed: boolean;
  seal_policy: 'measurement' | 'signer';
}
