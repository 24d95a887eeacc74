/**
 * The platform interface. The software platform (attest/software-provider.ts) implements it today;
 * a hardware TEE backend (SGX, SEV-SNP, TDX, Nitro) would implement the same four duties with keys
 * that never leave the hardware, and name itself in `platform` so evidence says where it came from.
 *
 * Every method is synchronous: the runtime calls `getEvidence` and `getSealingSecret` from inside
 * WebAssembly imports (`report`, `seal_key`), which cannot await. A backend that must do I/O does it
 * when it is opened, before enclaves run.
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
}
