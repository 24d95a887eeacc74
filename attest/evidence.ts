/**
 * Evidence: an Entity Attestation Token (RFC 9711) in a JWT (RFC 7519), signed by the platform's
 * attestation key with EdDSA/Ed25519 (RFC 8037). The profile (header, claims, encodings) is in
 * docs/ATTESTATION.md §4; the names below are its single source.
 *
 * Signing is synchronous on purpose: the `report` capability import is called from inside
 * WebAssembly, which cannot await. The compact JWS is three base64url segments (RFC 7515 §7.1);
 * every verification path goes through `jose` (attest/verify.ts), and the tests check that plain
 * `jose.jwtVerify` accepts what this file produces.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, fromBase64url, HEX64, isPlainObject, toBase64url, utf8Encode } from './_bytes.js';
import { AttestationError, MAX_CORE_MODULES } from '../core/index.js';
import type { ModuleIdentity } from './measure.js';

/** JWS `typ` of evidence: the EAT media type `application/eat+jwt` (registered by RFC 9711), shortened per RFC 7515 §4.1.9. */
export const EVIDENCE_TYP = 'eat+jwt';
/** JWS `alg` of evidence (RFC 8037 §3.1). Verifiers also accept the fully-specified `Ed25519` (RFC 9864). */
export const EVIDENCE_ALG = 'EdDSA';
/** Value of the `eat_profile` claim (RFC 9711 §4.3.2): this document's profile, version 1. */
export const EAT_PROFILE = 'urn:x-enclave:eat-profile:1';

/**
 * Names of the private claims. They are namespaced with `enclave.` so they cannot collide with
 * registered JWT/EAT claims (RFC 7519 §4.3), the way EAR uses `ear.`.
 */
export const CLAIMS = Object.freeze({
  platform: 'enclave.platform',
  measurement: 'enclave.measurement',
  signers: 'enclave.signers',
  svn: 'enclave.svn',
  name: 'enclave.name',
  version: 'enclave.version',
  runtime: 'enclave.runtime',
  limits: 'enclave.limits',
  capabilities: 'enclave.capabilities',
  reportData: 'enclave.report_data',
  component: 'enclave.component',
} as const);

/** RFC 9711 §4.2.9 debug status values (`dbgstat`). */
export const DBGSTAT = Object.freeze({
  enabled: 0,
  disabled: 1,
  disabledSinceBoot: 2,
  disabledPermanently: 3,
  disabledFullyAndPermanently: 4,
} as const);

/** RFC 9711 §4.1: a nonce is 8 to 64 bytes. */
export const NONCE_MIN_BYTES = 8;
export const NONCE_MAX_BYTES = 64;
/** Report data is at most 64 bytes, like SGX REPORTDATA. */
export const REPORT_DATA_MAX_BYTES = 64;
/** Default and maximum evidence lifetime (`exp - iat`). */
export const DEFAULT_EVIDENCE_LIFETIME_SECONDS = 300;
export const MAX_EVIDENCE_LIFETIME_SECONDS = 3600;

/** A public key held inside the enclave, for the `cnf` claim (RFC 7800 §3.2). */
export interface EnclavePublicJwk {
  kty: 'OKP';
  crv: 'X25519' | 'Ed25519';
  x: string;
  kid?: string;
  use?: string;
  alg?: string;
}

/**
 * What a component's evidence says about how its limits differ from a core module's (issue 14,
 * docs/ATTESTATION.md §4.2, `enclave.component`). Absent from a core module's evidence.
 */
export interface ComponentEvidence {
  /** Core modules in the component: each runs under its own fuel counter, set to `limits.fuel` before a call. */
  coreModules: number;
  /**
   * The most fuel-metered work one call can do across its core modules: `coreModules × limits.fuel`
   * (a core module's is `limits.fuel`). The fuel a call is charged is still at most `limits.fuel`.
   */
  fuelBound: number;
  /** The JavaScript glue that wires the core modules and serves the imports: `"jco-transpile@<version>"`. */
  glue: string;
}

/** `glue` of {@link ComponentEvidence}: printable ASCII, bounded. */
const GLUE_RE = /^[\x21-\x7e]{1,128}$/;

/** The claims set of evidence, exactly as it appears in the token. */
export interface EvidenceClaims {
  eat_profile: string;
  /** The relying party's nonce (or, for `report`, the enclave's report data), base64url. */
  eat_nonce: string;
  iat: number;
  exp: number;
  dbgstat: number;
  cnf?: { jwk: EnclavePublicJwk };
  'enclave.platform': string;
  'enclave.measurement': string;
  'enclave.signers': string[];
  'enclave.svn': number;
  'enclave.name': string;
  'enclave.version': string;
  'enclave.runtime': string;
  'enclave.limits': Record<string, number>;
  'enclave.capabilities': string[];
  'enclave.report_data'?: string;
  /** Present only when the enclave is a component (see {@link ComponentEvidence}). */
  'enclave.component'?: ComponentEvidence;
}

/** The protected header of evidence. */
export interface EvidenceHeader {
  alg: string;
  typ: string;
  /** RFC 7638 thumbprint of the platform's public JWK. */
  kid: string;
}

/** What a platform needs to issue evidence about one loaded enclave. */
export interface EvidenceRequest {
  /** The enclave's identity ({@link moduleIdentity} or {@link checkTrust}). */
  identity: ModuleIdentity;
  /** The relying party's nonce, 8..64 bytes. Evidence is never issued without one. */
  nonce: Uint8Array;
  /** The runtime's version string (for example the package version). */
  runtimeVersion: string;
  /** The limits in force for this enclave (after host policy lowered the contract's). */
  limits: Readonly<Record<string, number>>;
  /** The capabilities granted to this enclave. */
  capabilities: readonly string[];
  /**
   * True if any debugging, tracing or inspection that can see inside the enclave is on
   * (debug logs of guest memory, an inspector, instruction tracing). Sets `dbgstat` to `enabled`.
   */
  debug: boolean;
  /** A public key that lives inside the enclave, placed in `cnf` so clients can encrypt to it. */
  enclaveKey?: EnclavePublicJwk;
  /** Enclave-supplied report data, 1..64 bytes, placed in `enclave.report_data`. */
  reportData?: Uint8Array;
  /**
   * Only for a component: its core modules, the fuel bound of a call (`coreModules × limits.fuel`)
   * and its glue, placed in `enclave.component`.
   */
  component?: ComponentEvidence;
  /** `exp - iat` in seconds, 1..3600; default 300. */
  lifetimeSeconds?: number;
  /** Issue time in milliseconds since the epoch; default `Date.now()` (for tests). */
  now?: number;
}


function bad(detail: string): AttestationError {
  return new AttestationError('invalid_evidence_request', `the evidence request is invalid (${detail}); see docs/ATTESTATION.md`);
}

/**
 * Checks and copies an enclave public JWK for `cnf`: only public members of an OKP X25519 or
 * Ed25519 key; a key with private members (`d`) is refused rather than leaked into a token.
 * @internal
 */
export function checkEnclaveJwk(jwk: unknown, onError: (detail: string) => Error = bad): EnclavePublicJwk {
  if (!isPlainObject(jwk)) throw onError('cnf key must be a JWK object');
  if ('d' in jwk) throw onError('cnf key must be public: it has a private member');
  if (jwk.kty !== 'OKP' || (jwk.crv !== 'X25519' && jwk.crv !== 'Ed25519')) throw onError('cnf key must be OKP X25519 or Ed25519');
  const x = fromBase64url(jwk.x);
  if (!x || x.length !== 32) throw onError('cnf key "x" must be 32 bytes base64url');
  const out: EnclavePublicJwk = { kty: 'OKP', crv: jwk.crv, x: jwk.x as string };
  for (const k of ['kid', 'use', 'alg'] as const) {
    if (jwk[k] !== undefined) {
      if (typeof jwk[k] !== 'string') throw onError(`cnf key "${k}" must be a string`);
      out[k] = jwk[k] as string;
    }
  }
  return out;
}

/**
 * Checks and copies the component facts of a request for `enclave.component`: 1..MAX_CORE_MODULES
 * core modules, a fuel bound equal to `coreModules × limits.fuel` (so the token can never claim a
 * bound its own limits contradict), a short printable glue name; only these members are copied.
 */
function checkComponent(component: unknown, limits: Readonly<Record<string, number>>): ComponentEvidence {
  if (!isPlainObject(component)) throw bad('component must be an object');
  const { coreModules, fuelBound, glue } = component;
  if (!Number.isSafeInteger(coreModules) || (coreModules as number) < 1 || (coreModules as number) > MAX_CORE_MODULES) {
    throw bad(`component.coreModules must be an integer in 1..${MAX_CORE_MODULES}`);
  }
  const fuel = limits.fuel as number;
  if (!Number.isSafeInteger(fuel) || fuel < 0) throw bad('a component needs limits.fuel, an integer ≥ 0');
  if (!Number.isSafeInteger(fuelBound) || fuelBound !== (coreModules as number) * fuel) {
    throw bad('component.fuelBound must be component.coreModules × limits.fuel');
  }
  if (typeof glue !== 'string' || !GLUE_RE.test(glue)) throw bad('component.glue must be 1..128 printable ASCII characters');
  return { coreModules: coreModules as number, fuelBound: fuelBound as number, glue };
}

/**
 * Validates a nonce from a relying party (RFC 9711 §4.1: 8..64 bytes).
 * @throws {AttestationError} `invalid_nonce`.
 * @example
 * checkNonce(Buffer.from(hexNonce, 'hex'));
 */
export function checkNonce(nonce: unknown): Uint8Array {
  if (!(nonce instanceof Uint8Array) || nonce.length < NONCE_MIN_BYTES || nonce.length > NONCE_MAX_BYTES) {
    throw new AttestationError('invalid_nonce');
  }
  return nonce;
}

/**
 * Builds and validates the claims set for a request. Pure: no key, no I/O.
 * @param request - see {@link EvidenceRequest}.
 * @param platform - the platform name for `enclave.platform` (`"software"` for the software platform).
 * @throws {AttestationError} `invalid_nonce`, `invalid_report_data`, `invalid_evidence_request`
 *   (also for a `component` whose members have other types or disagree with `limits.fuel`).
 * @example
 * const claims = buildEvidenceClaims({ identity, nonce, runtimeVersion: '0.1.0', limits, capabilities: [], debug: false }, 'software');
 */
export function buildEvidenceClaims(request: EvidenceRequest, platform: string): EvidenceClaims {
  if (typeof request !== 'object' || request === null) throw bad('not an object');
  const nonce = checkNonce(request.nonce);
  const id = request.identity;
  if (!id || typeof id !== 'object') throw bad('identity missing');
  if (!HEX64.test(id.measurement)) throw bad('identity.measurement must be 64 lowercase hex digits');
  if (!Array.isArray(id.signers) || !id.signers.every((s) => HEX64.test(s))) throw bad('identity.signers must be signer ids');
  if (!Number.isSafeInteger(id.svn) || id.svn < 0) throw bad('identity.svn must be an integer ≥ 0');
  if (typeof id.name !== 'string' || typeof id.version !== 'string') throw bad('identity.name and version must be strings');
  if (typeof request.runtimeVersion !== 'string' || request.runtimeVersion.length === 0) throw bad('runtimeVersion must be a non-empty string');
  if (!isPlainObject(request.limits) || !Object.values(request.limits).every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw bad('limits must map names to finite numbers');
  }
  if (!Array.isArray(request.capabilities) || !request.capabilities.every((c) => typeof c === 'string')) {
    throw bad('capabilities must be strings');
  }
  if (typeof request.debug !== 'boolean') throw bad('debug must be a boolean');
  const lifetime = request.lifetimeSeconds ?? DEFAULT_EVIDENCE_LIFETIME_SECONDS;
  if (!Number.isSafeInteger(lifetime) || lifetime < 1 || lifetime > MAX_EVIDENCE_LIFETIME_SECONDS) {
    throw bad('lifetimeSeconds must be 1..3600');
  }
  const nowMs = request.now ?? Date.now();
  if (!Number.isFinite(nowMs)) throw bad('now must be a number of milliseconds');
  const iat = Math.floor(nowMs / 1000);

  const claims: EvidenceClaims = {
    eat_profile: EAT_PROFILE,
    eat_nonce: toBase64url(nonce),
    iat,
    exp: iat + lifetime,
    // RFC 9711 §4.2.9: anything that can look inside makes the status "enabled"; a software
    // platform cannot promise more than "disabled" (not "since boot" or "permanently").
    dbgstat: request.debug ? DBGSTAT.enabled : DBGSTAT.disabled,
    'enclave.platform': platform,
    'enclave.measurement': id.measurement,
    'enclave.signers': [...id.signers],
    'enclave.svn': id.svn,
    'enclave.name': id.name,
    'enclave.version': id.version,
    'enclave.runtime': request.runtimeVersion,
    'enclave.limits': { ...request.limits },
    'enclave.capabilities': [...new Set(request.capabilities)].sort(),
  };
  if (request.reportData !== undefined) {
    const rd = request.reportData;
    if (!(rd instanceof Uint8Array) || rd.length < 1 || rd.length > REPORT_DATA_MAX_BYTES) {
      throw new AttestationError('invalid_report_data', 'report data must be 1 to 64 bytes');
    }
    claims[CLAIMS.reportData] = toBase64url(rd);
  }
  if (request.enclaveKey !== undefined) claims.cnf = { jwk: checkEnclaveJwk(request.enclaveKey) };
  if (request.component !== undefined) claims[CLAIMS.component] = checkComponent(request.component, claims[CLAIMS.limits]);
  return claims;
}

/**
 * The RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key: the `kid` of evidence.
 * @example
 * jwkThumbprint(platformPublicKey) === header.kid;
 */
export function jwkThumbprint(publicKey: Uint8Array): string {
  abytes(publicKey, 'publicKey', 32);
  // RFC 7638 §3.2: required members only, lexicographic order, no whitespace.
  const canonical = `{"crv":"Ed25519","kty":"OKP","x":"${toBase64url(publicKey)}"}`;
  return toBase64url(sha256(utf8Encode(canonical)));
}

/**
 * Signs a claims set as a compact JWS (JWT) with an Ed25519 attestation key. Synchronous, so the
 * runtime can call it from a WebAssembly import.
 * @param claims - from {@link buildEvidenceClaims}.
 * @param key - the platform's attestation key pair (32-byte seed and public key).
 * @returns the token: `base64url(header).base64url(claims).base64url(signature)`.
 * @throws {RangeError} if the key is not 32-byte Ed25519 material.
 * @example
 * const token = signEvidenceClaims(claims, platformKeys);
 */
export function signEvidenceClaims(claims: EvidenceClaims, key: { secretKey: Uint8Array; publicKey: Uint8Array }): string {
  abytes(key.secretKey, 'secretKey', 32);
  const header: EvidenceHeader = { alg: EVIDENCE_ALG, typ: EVIDENCE_TYP, kid: jwkThumbprint(key.publicKey) };
  const signingInput = `${toBase64url(utf8Encode(JSON.stringify(header)))}.${toBase64url(utf8Encode(JSON.stringify(claims)))}`;
  const signature = ed25519.sign(utf8Encode(signingInput), key.secretKey);
  return `${signingInput}.${toBase64url(signature)}`;
}
