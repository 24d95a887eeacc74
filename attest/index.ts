/**
 * `attest/`: the platform. Measurement and signatures of modules, evidence tokens and their
 * verifier, sealing keys, behind an {@link AttestationProvider} interface so a hardware TEE backend
 * can replace the software one. Imports nothing from `runtime/` or `host/`.
 *
 * The software platform is a stand-in: it gives integrity and identity checks, not confidentiality
 * against the host (docs/THREAT-MODEL.md, "Attestation").
 *
 * Every function and class is documented where it is defined, with `@throws` and `@example`.
 * @example
 * import { checkTrust, SoftwareAttestationProvider, verifyEvidence } from './attest/index.js';
 * const identity = checkTrust(bytes, { trusted: [{ publicKey, minSvn: 1 }] });
 * const token = new SoftwareAttestationProvider().getEvidence({ identity, nonce, runtimeVersion, limits, capabilities, debug: false });
 * const { claims } = await verifyEvidence(token, { platformKey, policy, nonce });
 */

// Errors (docs/ATTESTATION.md §7): AttestationError, its codes and their messages are declared in
// core/ (core/errors.ts, core/error-codes.ts) with the one error model, and re-exported here for the
// `enclave/attest` entry. Callers match on `code`, never on `message`: the codes are stable, the
// wording is not. Messages never carry key material, report data, nonces or enclave state.
export { AttestationError, ATTESTATION_ERROR_CODES, ATTESTATION_ERROR_MESSAGES, isAttestationError } from '../core/index.js';
export type { AttestationErrorCode } from '../core/index.js';

// Wasm framing (general WebAssembly reading lives in core/; re-exported for the `enclave/attest` subpath)
export {
  CONTRACT_SECTION,
  SIGNATURE_SECTION,
  SIGNATURE_DELIMITER_SECTION,
  WasmFormatError,
  listSections,
  encodeCustomSection,
  customSections,
  readU32Leb,
  encodeU32Leb,
} from '../core/index.js';
export type { WasmSection } from '../core/index.js';

// Identity
export { readContract } from './contract.js';
export type { ModuleContract } from './contract.js';
export { measure, moduleIdentity } from './measure.js';
export type { ModuleIdentity } from './measure.js';

// Keys and signed modules
export {
  generateKeyPair,
  keyPairFromSeed,
  signerId,
  publicKeyToJwk,
  privateKeyToJwk,
  parsePublicKey,
  parsePrivateKey,
  defaultPublicKeyPath,
  writeKeyPair,
  readPrivateKeyFile,
  readPublicKeyFile,
} from './keys.js';
export type { SigningKeyPair, Ed25519PublicJwk, Ed25519PrivateJwk, PublicKeyInput, KeyPairPaths } from './keys.js';
export { signModule, verifyModule, readSignatures, defaultKeyId } from './module-signature.js';
export type { SignOptions, VerifiedSigner, DeclaredSignature } from './module-signature.js';
export { checkTrust } from './trust.js';
export type { TrustedSigner, TrustPolicy } from './trust.js';

// Evidence
export {
  CLAIMS,
  DBGSTAT,
  EAT_PROFILE,
  EVIDENCE_ALG,
  EVIDENCE_TYP,
  NONCE_MIN_BYTES,
  NONCE_MAX_BYTES,
  REPORT_DATA_MAX_BYTES,
  DEFAULT_EVIDENCE_LIFETIME_SECONDS,
  MAX_EVIDENCE_LIFETIME_SECONDS,
  buildEvidenceClaims,
  checkNonce,
  jwkThumbprint,
  signEvidenceClaims,
} from './evidence.js';
export type { ComponentEvidence, EvidenceClaims, EvidenceHeader, EvidenceRequest, EnclavePublicJwk } from './evidence.js';
export { createReport, reportStatusFor, REPORT_STATUS } from './report.js';
export type { ReportContext } from './report.js';

// Platform
export type { AttestationProvider, PlatformPublicJwk, SealingKeyRequest, SealingKey, SealingRootInfo, CounterState } from './provider.js';
export {
  SoftwareAttestationProvider,
  PLATFORM_DIR_ENV,
  PLATFORM_KEY_FILE,
  MAX_SEALING_ROOTS,
  resolvePlatformDir,
} from './software-provider.js';
export type { SoftwareProviderOptions } from './software-provider.js';
export { deriveSealingKey, SEALING_POLICIES } from './sealing.js';
export { MAX_COUNTERS_PER_NAMESPACE, MAX_COUNTER_VALUE } from './counters.js';
export type { SealingPolicy, SealingOptions } from './sealing.js';

// Verifier
export { verifyEvidence, parsePolicy } from './verify.js';
export type { EvidencePolicy, PolicySigner, VerificationJwk, VerifyEvidenceOptions, VerifiedEvidence } from './verify.js';
