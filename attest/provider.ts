/**
 * The platform interface. The software platform (attest/software-provider.ts) implements it today;
 * a hardware TEE backend (SGX, SEV-SNP, TDX, Nitro) would implement the same four duties with keys
 * that never leave the hardware, and name itself in `platform` so evidence says where it came from.
 *
 * Every method is synchronous: the runtime calls `getEvidence`, `getSealingSecret`, `sealingKey` and
 * the counters from inside WebAssembly imports (`report`, `seal_key`, `seal_key_at`, `counter_*`),
 * which cannot await. A backend that must do I/O does it when it is opened, before enclaves run, or
 * (the software platform's counters) as short synchronous file I/O.
 *
 * Sealing roots and monotonic counters are optional members: a hardware backend may not offer them
 * (the runtime then answers the imports that need them as unavailable).
 */
import type { ModuleIdentity } from './measure.js';
import type { EvidenceRequest } from './evidence.js';
import type { SealingOptions, SealingPolicy } from './sealing.js';

/** A platform's public verification key, as a JWK (RFC 8037 OKP Ed25519), `kid` = RFC 7638 thumbprint. */
export interface PlatformPublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

/** Which sealing root and svn {@link AttestationProvider.sealingKey} derives for. */
export interface SealingKeyRequest {
  /** The sealing root's key id (1..2^31-1); 0 or absent: the current root. */
  keyId?: number;
  /** For the `signer` policy only: the svn to derive for, ≤ the identity's own (default: its own). */
  svn?: number;
}

/** A sealing key and what it was derived for. */
export interface SealingKey {
  /** The 32-byte key. The caller zeroes it when done. */
  key: Uint8Array;
  /** The id of the sealing root it was derived from (never 0). */
  keyId: number;
  /** The svn it was derived for; 0 under the `measurement` policy. */
  svn: number;
}

/** One sealing root as {@link AttestationProvider.listSealingRoots} describes it (never its secret). */
export interface SealingRootInfo {
  /** The key id, 1..2^31-1, never reused. */
  id: number;
  /** `active` unseals (and, if current, seals); `revoked`: its secret was destroyed. */
  state: 'active' | 'revoked';
  /** Whether new data is sealed under this root. */
  current: boolean;
  /** When the root was made (ISO 8601). */
  createdAt: string;
}

/** A monotonic counter's state: its value and the 32-byte tag stored with its last advance. */
export interface CounterState {
  /** 0n if never advanced; at most 2^64-1. */
  value: bigint;
  /** 32 bytes; all zero if never advanced. */
  tag: Uint8Array;
}

/** What a platform (software stand-in or hardware TEE) provides to the runtime. */
export interface AttestationProvider {
  /** The platform's name, carried in evidence as `enclave.platform` (`"software"` for the stand-in). */
  readonly platform: string;
  /**
   * The measurement of a module: SHA-256 of its bytes without the signature section.
   * @throws {AttestationError} `invalid_module`, `malformed_signature`.
   */
  measure(bytes: Uint8Array): Uint8Array;
  /**
   * Signed evidence (a compact JWT) about a loaded enclave, bound to the relying party's nonce.
   * @throws {AttestationError} `invalid_nonce`, `invalid_report_data`, `invalid_evidence_request`, `platform_unavailable`.
   */
  getEvidence(request: EvidenceRequest): string;
  /**
   * A 32-byte sealing key bound to the enclave's measurement or signer.
   * @throws {AttestationError} `sealing_unavailable`, `platform_unavailable`.
   */
  getSealingSecret(identity: ModuleIdentity, policy: SealingPolicy, options?: SealingOptions): Uint8Array;
  /**
   * The public key relying parties verify evidence with.
   * @throws {AttestationError} `platform_unavailable`.
   */
  publicJwk(): PlatformPublicJwk;
  /**
   * A sealing key of a given root and svn (the `seal_key_at` import).
   * @throws {AttestationError} `sealing_key_unknown`, `sealing_key_revoked`, `sealing_unavailable`, `platform_unavailable`.
   */
  sealingKey?(identity: ModuleIdentity, policy: SealingPolicy, request?: SealingKeyRequest): SealingKey;
  /**
   * The sealing roots, revoked ones included, in id order.
   * @throws {AttestationError} `platform_unavailable`.
   */
  listSealingRoots?(): SealingRootInfo[];
  /**
   * Adds a sealing root and makes it current.
   * @throws {AttestationError} `platform_unavailable`.
   */
  rotateSealingRoot?(): { id: number };
  /**
   * Destroys a (non-current) sealing root's secret.
   * @throws {AttestationError} `sealing_key_unknown`, `platform_unavailable`; {@link EnclaveError} `invalid_options` for the current root.
   */
  revokeSealingRoot?(id: number): void;
  /**
   * A monotonic counter of the enclave's identity binding.
   * @throws {AttestationError} `sealing_unavailable`, `platform_unavailable`.
   */
  readCounter?(identity: ModuleIdentity, policy: SealingPolicy, id: bigint): CounterState;
  /**
   * Advances a counter from `expected` to `expected + 1` with `tag`, durably; false if its value was not `expected`.
   * @throws {AttestationError} `counter_limit`, `sealing_unavailable`, `platform_unavailable`.
   */
  advanceCounter?(identity: ModuleIdentity, policy: SealingPolicy, id: bigint, expected: bigint, tag: Uint8Array): boolean;
}
