/**
 * The relying party's side: verify evidence against the platform key, a nonce and a policy.
 * Signature checking goes through `jose` (`jwtVerify`), so the profile stays verifiable by any
 * standard JWT library (docs/ATTESTATION.md §8 shows the few lines).
 *
 * Checks, in this order; the first failure decides the reason code:
 *  1. shape of the compact JWS (canonical base64url, size)         → `malformed`
 *  2. header `alg` (EdDSA/Ed25519), `kid` selects a trusted key     → `malformed` / `bad_signature`
 *  3. signature with the platform's public JWK                      → `bad_signature`
 *  4. `typ`, `eat_profile`, claim types                             → `malformed`
 *  5. `exp`, `nbf`, `iat` + max age, with clock skew                → `expired` / `not_yet_valid`
 *  6. `eat_nonce` equals the nonce this relying party sent          → `nonce_mismatch`
 *  7. platform allowed                                              → `platform_not_allowed`
 *  8. `dbgstat` is not `enabled` unless allowed                     → `debug_not_allowed`
 *  9. measurement allowed, or signer allowed at or above its svn    → `measurement_not_allowed` / `signer_not_allowed` / `svn_too_low`
 * 10. enclave-held key present if required; report data if expected → `malformed` / `report_data_mismatch`
 * A component's evidence carries `enclave.component` (checked in step 4, exposed as `component`).
 */
// jose is loaded by verifyEvidence, when it runs: a host that only loads enclaves (`enclave run`,
// the runtime measuring a module through attest/index.ts) never pays for its ~50 files.
import type { JWTPayload } from 'jose';
import { equalStrings, fromBase64url, HEX64, isPlainObject, toBase64url } from './_bytes.js';
import { AttestationError } from '../core/index.js';
import {
  CLAIMS,
  DBGSTAT,
  EAT_PROFILE,
  EVIDENCE_TYP,
  REPORT_DATA_MAX_BYTES,
  checkEnclaveJwk,
  checkNonce,
  jwkThumbprint,
  type ComponentEvidence,
  type EnclavePublicJwk,
  type EvidenceClaims,
  type EvidenceHeader,
} from './evidence.js';

/** One allowed signer in a policy. */
export interface PolicySigner {
  /** Signer id: SHA-256 of the raw Ed25519 public key, 64 lowercase hex digits (`enclave inspect` prints it). */
  signer: string;
  /** Lowest svn accepted from this signer (default: the policy's `minSvn`). */
  minSvn?: number;
}

/**
 * A verification policy: a JSON-serialisable object, loaded by the CLI from a file.
 * At least one of `measurements` or `signers` must be non-empty. Unknown keys are refused, so a
 * typo cannot silently weaken a policy.
 */
export interface EvidencePolicy {
  /** Schema version; must be 1 if present. */
  version?: 1;
  /** Accepted platforms (`enclave.platform`); default `["software"]`. */
  platforms?: string[];
  /** Accepted measurements (64 lowercase hex digits each). A match admits the enclave by exact identity. */
  measurements?: string[];
  /** Accepted signers, each with an optional svn floor. */
  signers?: PolicySigner[];
  /** Global svn floor, applied to every admitted enclave (default 0). */
  minSvn?: number;
  /** Accept evidence whose `dbgstat` is `enabled` (default false). */
  allowDebug?: boolean;
  /** Maximum age of evidence (`now - iat`), seconds (default 300). */
  maxAgeSeconds?: number;
  /** Tolerated clock difference, seconds (default 60). */
  clockSkewSeconds?: number;
  /** Require a `cnf` enclave key (default false). */
  requireEnclaveKey?: boolean;
}

type Jose = typeof import('jose');
type ImportedKey = Exclude<Awaited<ReturnType<Jose['importJWK']>>, Uint8Array>;

const POLICY_KEYS = new Set([
  'version', 'platforms', 'measurements', 'signers', 'minSvn', 'allowDebug', 'maxAgeSeconds', 'clockSkewSeconds', 'requireEnclaveKey',
]);
const MAX_TOKEN_CHARS = 64 * 1024;
const ALGORITHMS = ['EdDSA', 'Ed25519'];

function badPolicy(detail: string): AttestationError {
  return new AttestationError('invalid_policy', `the verification policy is malformed (${detail}); see docs/ATTESTATION.md`);
}

function isSvn(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

/**
 * Validates a policy (for example the parsed JSON of a policy file) and fills in defaults.
 * @param json - the candidate policy.
 * @returns a frozen, complete policy.
 * @throws {AttestationError} `invalid_policy` naming the offending field.
 * @example
 * const policy = parsePolicy(JSON.parse(await readFile('policy.json', 'utf8')));
 */
export function parsePolicy(json: unknown): Readonly<Required<Omit<EvidencePolicy, 'version'>>> {
  if (!isPlainObject(json)) throw badPolicy('not a JSON object');
  for (const k of Object.keys(json)) if (!POLICY_KEYS.has(k)) throw badPolicy(`unknown field "${k}"`);
  if (json.version !== undefined && json.version !== 1) throw badPolicy('"version" must be 1');
  const strings = (k: string, re?: RegExp): string[] | undefined => {
    const v = json[k];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string' && (!re || re.test(s)))) {
      throw badPolicy(`"${k}" must be an array of ${re ? '64-digit lowercase hex strings' : 'strings'}`);
    }
    return [...v];
  };
  const platforms = strings('platforms') ?? ['software'];
  const measurements = strings('measurements', HEX64) ?? [];
  let signers: PolicySigner[] = [];
  if (json.signers !== undefined) {
    if (!Array.isArray(json.signers)) throw badPolicy('"signers" must be an array');
    signers = json.signers.map((s, i) => {
      if (!isPlainObject(s) || typeof s.signer !== 'string' || !HEX64.test(s.signer)) {
        throw badPolicy(`"signers[${i}].signer" must be a 64-digit lowercase hex signer id`);
      }
      for (const k of Object.keys(s)) if (k !== 'signer' && k !== 'minSvn') throw badPolicy(`unknown field "signers[${i}].${k}"`);
      if (s.minSvn !== undefined && !isSvn(s.minSvn)) throw badPolicy(`"signers[${i}].minSvn" must be an integer ≥ 0`);
      return s.minSvn === undefined ? { signer: s.signer } : { signer: s.signer, minSvn: s.minSvn as number };
    });
  }
  if (measurements.length === 0 && signers.length === 0) throw badPolicy('give at least one of "measurements" or "signers"');
  const num = (k: string, dflt: number, min: number, max: number): number => {
    const v = json[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badPolicy(`"${k}" must be an integer in ${min}..${max}`);
    return v;
  };
  const bool = (k: string): boolean => {
    const v = json[k] ?? false;
    if (typeof v !== 'boolean') throw badPolicy(`"${k}" must be a boolean`);
    return v;
  };
  const minSvn = json.minSvn ?? 0;
  if (!isSvn(minSvn)) throw badPolicy('"minSvn" must be an integer ≥ 0');
  return Object.freeze({
    platforms,
    measurements,
    signers,
    minSvn,
    allowDebug: bool('allowDebug'),
    maxAgeSeconds: num('maxAgeSeconds', 300, 1, 86_400),
    clockSkewSeconds: num('clockSkewSeconds', 60, 0, 3600),
    requireEnclaveKey: bool('requireEnclaveKey'),
  });
}

/** A platform verification key as a JWK (`kty` OKP, `crv` Ed25519, `x`); other members are ignored. */
export interface VerificationJwk {
  kty?: string;
  crv?: string;
  x?: string;
  kid?: string;
}

/** Options of {@link verifyEvidence}. */
export interface VerifyEvidenceOptions {
  /** The platform's public JWK, or several (selected by the token's `kid`). Private members are ignored. */
  platformKey: VerificationJwk | readonly VerificationJwk[];
  /** The policy (validated with {@link parsePolicy}). */
  policy: EvidencePolicy;
  /** The nonce this relying party sent for this evidence, 8..64 bytes. Required: without it a replayed token would pass. */
  nonce: Uint8Array;
  /** If given, `enclave.report_data` must equal it. */
  reportData?: Uint8Array;
  /** The current time (for tests); default now. */
  now?: Date;
}

/** What a successful verification returns. */
export interface VerifiedEvidence {
  readonly header: EvidenceHeader;
  readonly claims: EvidenceClaims;
  /** The enclave-held public key from `cnf`, if any: encrypt to it to reach the enclave. */
  readonly enclaveKey: EnclavePublicJwk | undefined;
  /**
   * `enclave.component`: present when the enclave is a component, whose call may do up to
   * `fuelBound` (its core modules × `limits.fuel`) of fuel-metered work; undefined for a core module.
   */
  readonly component: ComponentEvidence | undefined;
}

function fail(code: ConstructorParameters<typeof AttestationError>[0], detail?: string, cause?: unknown): never {
  throw new AttestationError(code, detail, cause === undefined ? undefined : { cause });
}

function checkShape(token: unknown): void {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS) fail('malformed');
  const parts = token.split('.');
  // Canonical base64url only: one token has one spelling, so changing any character is detected.
  if (parts.length !== 3 || parts.some((p) => p.length === 0 || fromBase64url(p) === undefined)) fail('malformed');
}

function checkClaims(p: JWTPayload): EvidenceClaims {
  const c = p as Record<string, unknown>;
  const bad = (name: string): never => fail('malformed', `the evidence claim "${name}" is missing or invalid`);
  if (c.eat_profile !== EAT_PROFILE) bad('eat_profile');
  if (typeof c.eat_nonce !== 'string') bad('eat_nonce');
  if (!Number.isSafeInteger(c.iat)) bad('iat');
  if (!Number.isSafeInteger(c.exp)) bad('exp');
  if (!Number.isInteger(c.dbgstat) || (c.dbgstat as number) < 0 || (c.dbgstat as number) > 4) bad('dbgstat');
  if (typeof c[CLAIMS.platform] !== 'string') bad(CLAIMS.platform);
  if (typeof c[CLAIMS.measurement] !== 'string' || !HEX64.test(c[CLAIMS.measurement] as string)) bad(CLAIMS.measurement);
  const signers = c[CLAIMS.signers];
  if (!Array.isArray(signers) || !signers.every((s) => typeof s === 'string' && HEX64.test(s))) bad(CLAIMS.signers);
  if (!isSvn(c[CLAIMS.svn])) bad(CLAIMS.svn);
  for (const k of [CLAIMS.name, CLAIMS.version, CLAIMS.runtime]) if (typeof c[k] !== 'string') bad(k);
  const limits = c[CLAIMS.limits];
  if (!isPlainObject(limits) || !Object.values(limits).every((v) => typeof v === 'number')) bad(CLAIMS.limits);
  const caps = c[CLAIMS.capabilities];
  if (!Array.isArray(caps) || !caps.every((s) => typeof s === 'string')) bad(CLAIMS.capabilities);
  if (c[CLAIMS.reportData] !== undefined) {
    const rd = fromBase64url(c[CLAIMS.reportData]);
    if (!rd || rd.length < 1 || rd.length > REPORT_DATA_MAX_BYTES) bad(CLAIMS.reportData);
  }
  const component = c[CLAIMS.component];
  if (component !== undefined) {
    // Exactly its three members; the bound agrees with the limits it is made from (§4.2).
    if (!isPlainObject(component) || Object.keys(component).length !== 3) bad(CLAIMS.component);
    const { coreModules, fuelBound, glue } = component as Record<string, unknown>;
    const fuel = (limits as Record<string, unknown>).fuel;
    if (!Number.isSafeInteger(coreModules) || (coreModules as number) < 1) bad(CLAIMS.component);
    if (!Number.isSafeInteger(fuel) || !Number.isSafeInteger(fuelBound) || fuelBound !== (coreModules as number) * (fuel as number)) {
      bad(CLAIMS.component);
    }
    if (typeof glue !== 'string' || glue.length === 0) bad(CLAIMS.component);
  }
  if (c.cnf !== undefined) {
    if (!isPlainObject(c.cnf) || Object.keys(c.cnf).length !== 1) bad('cnf');
    checkEnclaveJwk((c.cnf as Record<string, unknown>).jwk, () => new AttestationError('malformed', 'the evidence claim "cnf" is invalid'));
  }
  return c as unknown as EvidenceClaims;
}

async function selectKey(importJWK: Jose['importJWK'], keys: readonly Record<string, unknown>[], kid: unknown): Promise<ImportedKey> {
  const candidates = keys.filter((k) => {
    const x = fromBase64url(k.x);
    return k.kty === 'OKP' && k.crv === 'Ed25519' && x?.length === 32 && jwkThumbprint(x) === kid;
  });
  if (candidates.length === 0) fail('bad_signature', 'the evidence was not signed by a trusted platform key');
  const k = candidates[0]!;
  // Import only the public members.
  return (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: k.x as string }, 'EdDSA')) as ImportedKey;
}

/**
 * Verifies evidence: signature, freshness, nonce, platform, debug status and identity against a policy.
 * @param token - the compact JWT.
 * @param options - platform key(s), policy, the expected nonce, optionally expected report data.
 * @returns the verified header and claims.
 * @throws {AttestationError} with one of the reason codes `malformed`, `bad_signature`, `expired`,
 *   `not_yet_valid`, `nonce_mismatch`, `platform_not_allowed`, `debug_not_allowed`,
 *   `measurement_not_allowed`, `signer_not_allowed`, `svn_too_low`, `report_data_mismatch`;
 *   `invalid_policy` or `invalid_nonce` for bad options.
 * @example
 * const { claims } = await verifyEvidence(token, { platformKey: jwk, policy, nonce });
 * console.log(claims['enclave.measurement']);
 */
export async function verifyEvidence(token: string, options: VerifyEvidenceOptions): Promise<VerifiedEvidence> {
  const policy = parsePolicy(options.policy);
  const expectedNonce = checkNonce(options.nonce);
  const keys = (Array.isArray(options.platformKey) ? options.platformKey : [options.platformKey]) as Record<string, unknown>[];
  if (keys.length === 0 || !keys.every((k) => isPlainObject(k))) throw new TypeError('platformKey: expected a JWK or an array of JWKs');
  const now = options.now ?? new Date();
  const nowSec = Math.floor(now.getTime() / 1000);
  const skew = policy.clockSkewSeconds;

  checkShape(token);
  const { decodeProtectedHeader, errors: joseErrors, importJWK, jwtVerify } = await import('jose');
  let header: ReturnType<Jose['decodeProtectedHeader']>;
  try {
    header = decodeProtectedHeader(token);
  } catch (err) {
    fail('malformed', undefined, err);
  }
  if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg) || typeof header.kid !== 'string') fail('malformed');
  const key = await selectKey(importJWK, keys, header.kid);

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: ALGORITHMS,
      typ: EVIDENCE_TYP,
      currentDate: now,
      clockTolerance: skew,
      requiredClaims: ['iat', 'exp', 'eat_nonce'],
    }));
  } catch (err) {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) fail('bad_signature', undefined, err);
    if (err instanceof joseErrors.JWTExpired) fail('expired', undefined, err);
    // Only a well-formed `nbf` in the future is "not yet valid"; a non-numeric one is malformed.
    if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'nbf' && err.reason === 'check_failed') {
      fail('not_yet_valid', undefined, err);
    }
    fail('malformed', undefined, err);
  }
  const claims = checkClaims(payload);

  if (claims.iat > nowSec + skew) fail('not_yet_valid');
  if (nowSec - claims.iat > policy.maxAgeSeconds + skew) fail('expired');
  if (claims.exp < claims.iat) fail('malformed', 'the evidence expires before it was issued');

  if (!equalStrings(claims.eat_nonce, toBase64url(expectedNonce))) fail('nonce_mismatch');

  if (!policy.platforms.includes(claims[CLAIMS.platform])) fail('platform_not_allowed');
  if (claims.dbgstat === DBGSTAT.enabled && !policy.allowDebug) fail('debug_not_allowed');

  const svn = claims[CLAIMS.svn];
  if (policy.measurements.includes(claims[CLAIMS.measurement])) {
    if (svn < policy.minSvn) fail('svn_too_low');
  } else if (policy.signers.length === 0) {
    fail('measurement_not_allowed');
  } else {
    const matched = policy.signers.filter((s) => claims[CLAIMS.signers].includes(s.signer));
    if (matched.length === 0) fail('signer_not_allowed');
    if (!matched.some((s) => svn >= Math.max(s.minSvn ?? 0, policy.minSvn))) fail('svn_too_low');
  }

  const enclaveKey = claims.cnf?.jwk;
  if (policy.requireEnclaveKey && !enclaveKey) fail('malformed', 'the evidence carries no enclave key (cnf) but the policy requires one');
  if (options.reportData !== undefined) {
    const got = claims[CLAIMS.reportData];
    if (got === undefined || !equalStrings(got, toBase64url(options.reportData))) fail('report_data_mismatch');
  }
  return Object.freeze({ header: header as unknown as EvidenceHeader, claims, enclaveKey, component: claims[CLAIMS.component] });
}
