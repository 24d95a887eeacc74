import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { calculateJwkThumbprint, importJWK, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attestationCodeOf as codeOf, attestationCodeOfAsync as codeOfAsync } from './helpers/errors.js';
import {
  ATTESTATION_ERROR_CODES,
  ATTESTATION_ERROR_MESSAGES,
  AttestationError,
  CLAIMS,
  REPORT_STATUS,
  SoftwareAttestationProvider,
  checkTrust,
  createReport,
  generateKeyPair,
  moduleIdentity,
  parsePolicy,
  reportStatusFor,
  signEvidenceClaims,
  signModule,
  signerId,
  verifyEvidence,
  type EvidencePolicy,
  type EvidenceRequest,
  type ModuleIdentity,
  type PlatformPublicJwk,
  type ReportContext,
} from '../attest/index.js';
import { makeModule } from './attest-fixtures.js';

const signing = generateKeyPair();
const signedModule = signModule(makeModule({ svn: 3 }), signing);
const identity: ModuleIdentity = checkTrust(signedModule, { trusted: [{ publicKey: signing.publicKey }] });
const nonce = Uint8Array.from({ length: 32 }, (_, i) => i);
const limits = { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 4 };
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const at = (seconds: number) => new Date(T0 + seconds * 1000);
const b64u = (u: Uint8Array) => Buffer.from(u).toString('base64url');

function request(over: Partial<EvidenceRequest> = {}): EvidenceRequest {
  return { identity, nonce, runtimeVersion: '0.1.0', limits, capabilities: ['random', 'attest'], debug: false, now: T0, ...over };
}

const policy: EvidencePolicy = { signers: [{ signer: identity.signer!, minSvn: 2 }] };

let dir: string;
let platform: SoftwareAttestationProvider;
let jwk: PlatformPublicJwk;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'attest-platform-'));
  platform = new SoftwareAttestationProvider({ dir: join(dir, 'p') });
  jwk = platform.publicJwk();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function verify(token: string, over: Partial<Parameters<typeof verifyEvidence>[1]> = {}) {
  return verifyEvidence(token, { platformKey: jwk, policy, nonce, now: at(10), ...over });
}

/** Re-encodes the payload of a token with one change, keeping the original signature. */
function withPayload(token: string, change: (claims: Record<string, unknown>) => void): string {
  const [h, p, s] = token.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  change(claims);
  return `${h}.${b64u(Buffer.from(JSON.stringify(claims)))}.${s}`;
}

describe('software platform key', () => {
  it('is created on first use with mode 0600 in a 0700 directory, and reused', async () => {
    const path = join(dir, 'p', 'platform-key.json');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'p'))).mode & 0o777).toBe(0o700);
    const again = new SoftwareAttestationProvider({ dir: join(dir, 'p') });
    expect(again.publicJwk()).toEqual(jwk);
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ version: 1, platform: 'software' });
  });

  it('honours ENCLAVE_PLATFORM_DIR, with the option taking precedence', () => {
    const saved = process.env.ENCLAVE_PLATFORM_DIR;
    try {
      process.env.ENCLAVE_PLATFORM_DIR = join(dir, 'from-env');
      expect(new SoftwareAttestationProvider().dir).toBe(join(dir, 'from-env'));
      expect(new SoftwareAttestationProvider({ dir: join(dir, 'opt') }).dir).toBe(join(dir, 'opt'));
    } finally {
      if (saved === undefined) delete process.env.ENCLAVE_PLATFORM_DIR;
      else process.env.ENCLAVE_PLATFORM_DIR = saved;
    }
  });

  it('exports its public key as a JWK whose kid is the RFC 7638 thumbprint, with no private part', async () => {
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(jwk).not.toHaveProperty('d');
    expect(jwk.kid).toBe(await calculateJwkThumbprint(jwk));
  });

  it('refuses a platform key file that others can read', async () => {
    const p = new SoftwareAttestationProvider({ dir: join(dir, 'loose') }).open();
    await chmod(p.keyPath, 0o640);
    expect(codeOf(() => new SoftwareAttestationProvider({ dir: join(dir, 'loose') }).publicJwk())).toBe('insecure_key_file');
  });

  it('refuses a platform directory others can write to, and a key file that is a symlink', async () => {
    const shared = join(dir, 'shared');
    await mkdir(shared, { mode: 0o700 });
    await chmod(shared, 0o777);
    expect(codeOf(() => new SoftwareAttestationProvider({ dir: shared }).open())).toBe('insecure_key_file');
    await expect(stat(join(shared, 'platform-key.json'))).rejects.toMatchObject({ code: 'ENOENT' });

    // A planted symlink to a key file someone else controls (here: a valid one) is not followed.
    const linked = join(dir, 'linked');
    await mkdir(linked, { mode: 0o700 });
    await symlink(platform.keyPath, join(linked, 'platform-key.json'));
    expect(codeOf(() => new SoftwareAttestationProvider({ dir: linked }).open())).toBe('insecure_key_file');
  });
});

describe('evidence', () => {
  it('round-trips through verifyEvidence with the documented claims', async () => {
    const token = platform.getEvidence(request());
    const { header, claims, enclaveKey } = await verify(token);
    expect(header).toEqual({ alg: 'EdDSA', typ: 'eat+jwt', kid: jwk.kid });
    expect(claims).toEqual({
      eat_profile: 'urn:x-enclave:eat-profile:1',
      eat_nonce: b64u(nonce),
      iat: T0 / 1000,
      exp: T0 / 1000 + 300,
      dbgstat: 1,
      'enclave.platform': 'software',
      'enclave.measurement': identity.measurement,
      'enclave.signers': [signerId(signing.publicKey)],
      'enclave.svn': 3,
      'enclave.name': 'echo',
      'enclave.version': '1.0.0',
      'enclave.runtime': '0.1.0',
      'enclave.limits': limits,
      'enclave.capabilities': ['attest', 'random'],
    });
    expect(enclaveKey).toBeUndefined();
  });

  it('verifies with plain jose, as a relying party in any language would', async () => {
    const token = platform.getEvidence(request({ now: Date.now() }));
    const key = await importJWK(jwk, 'EdDSA');
    const { payload, protectedHeader } = await jwtVerify(token, key, { typ: 'eat+jwt', algorithms: ['EdDSA'], maxTokenAge: '5m' });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload.eat_nonce).toBe(b64u(nonce));
    expect(payload[CLAIMS.measurement]).toBe(identity.measurement);
  });

  it('is never issued without a valid nonce (8..64 bytes)', () => {
    for (const bad of [undefined, new Uint8Array(0), new Uint8Array(7), new Uint8Array(65), 'nonce']) {
      expect(codeOf(() => platform.getEvidence(request({ nonce: bad as never })))).toBe('invalid_nonce');
    }
    for (const ok of [new Uint8Array(8), new Uint8Array(64)]) {
      expect(codeOf(() => platform.getEvidence(request({ nonce: ok })))).toBe('no error');
    }
  });

  it('sets dbgstat to enabled (0) when debugging can see inside, and the verifier refuses it unless allowed', async () => {
    const token = platform.getEvidence(request({ debug: true }));
    expect(await codeOfAsync(verify(token))).toBe('debug_not_allowed');
    const { claims } = await verify(token, { policy: { ...policy, allowDebug: true } });
    expect(claims.dbgstat).toBe(0);
  });

  it('carries an enclave-held public key in cnf (RFC 7800), and refuses a private one', async () => {
    const x = b64u(x25519.getPublicKey(x25519.utils.randomSecretKey()));
    const token = platform.getEvidence(request({ enclaveKey: { kty: 'OKP', crv: 'X25519', x } }));
    const { enclaveKey } = await verify(token, { policy: { ...policy, requireEnclaveKey: true } });
    expect(enclaveKey).toEqual({ kty: 'OKP', crv: 'X25519', x });
    const d = b64u(new Uint8Array(32));
    expect(codeOf(() => platform.getEvidence(request({ enclaveKey: { kty: 'OKP', crv: 'X25519', x, d } as never })))).toBe(
      'invalid_evidence_request',
    );
    expect(await codeOfAsync(verify(platform.getEvidence(request()), { policy: { ...policy, requireEnclaveKey: true } }))).toBe('malformed');
  });
});

describe('verifier refusals', () => {
  let token: string;
  beforeAll(() => {
    token = platform.getEvidence(request());
  });

  it('refuses a mismatched or replayed nonce (nonce_mismatch)', async () => {
    const other = Uint8Array.from(nonce);
    other[0]! ^= 1;
    expect(await codeOfAsync(verify(token, { nonce: other }))).toBe('nonce_mismatch');
    // Replay: evidence obtained for an earlier request is presented for a new nonce.
    expect(await codeOfAsync(verify(token, { nonce: new Uint8Array(16).fill(9) }))).toBe('nonce_mismatch');
  });

  it('requires the caller to say which nonce it sent', async () => {
    expect(await codeOfAsync(verify(token, { nonce: undefined as never }))).toBe('invalid_nonce');
  });

  it('refuses expired and not-yet-valid evidence, with clock skew', async () => {
    expect(await codeOfAsync(verify(token, { now: at(300 + 59) }))).toBe('no error'); // within skew (60 s)
    expect(await codeOfAsync(verify(token, { now: at(300 + 61) }))).toBe('expired');
    expect(await codeOfAsync(verify(token, { now: at(-59) }))).toBe('no error');
    expect(await codeOfAsync(verify(token, { now: at(-61) }))).toBe('not_yet_valid');
    // maxAgeSeconds caps the age even when exp is further away.
    const long = platform.getEvidence(request({ lifetimeSeconds: 3600 }));
    expect(await codeOfAsync(verify(long, { now: at(200), policy: { ...policy, maxAgeSeconds: 100, clockSkewSeconds: 0 } }))).toBe('expired');
  });

  it('refuses any changed claim (bad_signature)', async () => {
    const { claims } = await verify(token);
    for (const name of Object.keys(claims)) {
      const forged = withPayload(token, (c) => {
        const v = c[name];
        c[name] = typeof v === 'number' ? v + 1 : typeof v === 'string' ? `${v}x` : Array.isArray(v) ? [...v, 'x'] : { ...(v as object), x: 1 };
      });
      expect([name, await codeOfAsync(verify(forged))]).toEqual([name, 'bad_signature']);
    }
    const added = withPayload(token, (c) => {
      c.extra = true;
    });
    expect(await codeOfAsync(verify(added))).toBe('bad_signature');
  });

  it('refuses a token with any character of header, payload or signature changed', async () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const codes = new Set<string>();
    for (let i = 0; i < token.length; i++) {
      if (token[i] === '.') continue;
      const c = alphabet[(alphabet.indexOf(token[i]!) + 1) % 64]!;
      const code = await codeOfAsync(verify(token.slice(0, i) + c + token.slice(i + 1)));
      codes.add(code);
      expect(['bad_signature', 'malformed']).toContain(code);
    }
    expect(codes).toEqual(new Set(['bad_signature', 'malformed']));
  });

  it('refuses evidence signed by another key, or unsigned (alg none)', async () => {
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
    const rogue = signEvidenceClaims(claims, generateKeyPair());
    expect(await codeOfAsync(verify(rogue))).toBe('bad_signature');
    // A rogue key that claims the platform's kid still fails the signature.
    const [, p, s] = rogue.split('.');
    const h = b64u(Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'eat+jwt', kid: jwk.kid })));
    expect(await codeOfAsync(verify(`${h}.${p}.${s}`))).toBe('bad_signature');
    const none = `${b64u(Buffer.from(JSON.stringify({ alg: 'none', typ: 'eat+jwt', kid: jwk.kid })))}.${p}.`;
    expect(await codeOfAsync(verify(none))).toBe('malformed');
    const hs = `${b64u(Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'eat+jwt', kid: jwk.kid })))}.${p}.${s}`;
    expect(await codeOfAsync(verify(hs))).toBe('malformed');
    expect(await codeOfAsync(verify('not a token'))).toBe('malformed');
  });

  it('refuses a token of the wrong type even if correctly signed', async () => {
    const [h, p] = token.split('.');
    const header = JSON.parse(Buffer.from(h!, 'base64url').toString('utf8'));
    expect(header.typ).toBe('eat+jwt');
    // Signed by the platform key but with typ JWT: made via the internal signer on a copy of the key file.
    const file = JSON.parse(await readFile(platform.keyPath, 'utf8'));
    const seed = Buffer.from(file.attestationKey.d, 'base64url');
    const h2 = b64u(Buffer.from(JSON.stringify({ ...header, typ: 'JWT' })));
    const sig = ed25519.sign(new TextEncoder().encode(`${h2}.${p}`), seed);
    expect(await codeOfAsync(verify(`${h2}.${p}.${b64u(sig)}`))).toBe('malformed');
  });

  it('an nbf that is not a number is malformed, not not_yet_valid; a future nbf is not_yet_valid', async () => {
    const file = JSON.parse(await readFile(platform.keyPath, 'utf8'));
    const seed = new Uint8Array(Buffer.from(file.attestationKey.d, 'base64url'));
    const platformKeys = { secretKey: seed, publicKey: ed25519.getPublicKey(seed) };
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
    const withNbf = (nbf: unknown) => signEvidenceClaims({ ...claims, nbf } as never, platformKeys);
    expect(await codeOfAsync(verify(withNbf('soon')))).toBe('malformed');
    expect(await codeOfAsync(verify(withNbf(claims.iat + 120)))).toBe('not_yet_valid');
    expect(await codeOfAsync(verify(withNbf(claims.iat)))).toBe('no error');
  });

  it('applies the policy: measurement, signer, svn and platform', async () => {
    const m = identity.measurement;
    const otherHex = 'ab'.repeat(32);
    expect(await codeOfAsync(verify(token, { policy: { measurements: [m] } }))).toBe('no error');
    expect(await codeOfAsync(verify(token, { policy: { measurements: [otherHex] } }))).toBe('measurement_not_allowed');
    expect(await codeOfAsync(verify(token, { policy: { signers: [{ signer: otherHex }] } }))).toBe('signer_not_allowed');
    expect(await codeOfAsync(verify(token, { policy: { signers: [{ signer: identity.signer!, minSvn: 4 }] } }))).toBe('svn_too_low');
    expect(await codeOfAsync(verify(token, { policy: { measurements: [m], minSvn: 4 } }))).toBe('svn_too_low');
    expect(await codeOfAsync(verify(token, { policy: { ...policy, platforms: ['sgx'] } }))).toBe('platform_not_allowed');
  });

  it('selects the platform key by kid among several', async () => {
    const other = new SoftwareAttestationProvider({ dir: join(dir, 'other') }).publicJwk();
    expect(await codeOfAsync(verify(token, { platformKey: [other, jwk] }))).toBe('no error');
    expect(await codeOfAsync(verify(token, { platformKey: [other] }))).toBe('bad_signature');
  });
});

describe('policy files', () => {
  it('fills defaults', () => {
    expect(parsePolicy({ version: 1, measurements: ['00'.repeat(32)] })).toEqual({
      platforms: ['software'],
      measurements: ['00'.repeat(32)],
      signers: [],
      minSvn: 0,
      allowDebug: false,
      maxAgeSeconds: 300,
      clockSkewSeconds: 60,
      requireEnclaveKey: false,
    });
  });
  it.each([
    ['not an object', []],
    ['empty: trusts nothing', {}],
    ['unknown key (a typo)', { measurements: ['00'.repeat(32)], allowDebugg: true }],
    ['bad measurement', { measurements: ['XYZ'] }],
    ['uppercase measurement', { measurements: ['AB'.repeat(32)] }],
    ['bad signer', { signers: [{ signer: 'ab' }] }],
    ['negative minSvn', { measurements: ['00'.repeat(32)], minSvn: -1 }],
    ['string allowDebug', { measurements: ['00'.repeat(32)], allowDebug: 'yes' }],
    ['version 2', { version: 2, measurements: ['00'.repeat(32)] }],
  ])('refuses a policy that is %s', (_, json) => {
    expect(codeOf(() => parsePolicy(json))).toBe('invalid_policy');
  });
  it('is JSON-serialisable', () => {
    expect(parsePolicy(JSON.parse(JSON.stringify(policy)))).toMatchObject({ signers: policy.signers });
  });
});

describe('report (the `report` import)', () => {
  const context: ReportContext = { identity, runtimeVersion: '0.1.0', limits, capabilities: ['attest'], debug: false };

  it('binds 8..64 bytes of report data as both eat_nonce and enclave.report_data', async () => {
    const data = new Uint8Array(64).fill(0x5a);
    const bytes = createReport(platform, context, data);
    const token = new TextDecoder().decode(bytes);
    const { claims } = await verifyEvidence(token, { platformKey: jwk, policy, nonce: data, reportData: data });
    expect(claims['enclave.report_data']).toBe(b64u(data));
    expect(await codeOfAsync(verifyEvidence(token, { platformKey: jwk, policy, nonce: data, reportData: new Uint8Array(64) }))).toBe(
      'report_data_mismatch',
    );
  });

  it('refuses report data outside 8..64 bytes, mapped to the import status -2', () => {
    for (const n of [0, 7, 65]) {
      let status = 0;
      try {
        createReport(platform, context, new Uint8Array(n));
      } catch (err) {
        expect((err as AttestationError).code).toBe('invalid_report_data');
        status = reportStatusFor(err);
      }
      expect(status).toBe(REPORT_STATUS.badReportData);
    }
    expect(reportStatusFor(new Error('disk'))).toBe(REPORT_STATUS.unavailable);
  });
});

describe('sealing keys', () => {
  const v3 = checkTrust(signModule(makeModule({ svn: 3, version: '3.0.0' }), signing), { trusted: [{ publicKey: signing.publicKey }] });
  const v4 = checkTrust(signModule(makeModule({ svn: 4, version: '4.0.0' }), signing), { trusted: [{ publicKey: signing.publicKey }] });
  const hex = (u: Uint8Array) => bytesToHex(u);

  it('binds to the measurement: a different module gets a different key; same module, same key', () => {
    const k = platform.getSealingSecret(v3, 'measurement');
    expect(k).toHaveLength(32);
    expect(hex(platform.getSealingSecret(v3, 'measurement'))).toBe(hex(k));
    expect(hex(platform.getSealingSecret(v4, 'measurement'))).not.toBe(hex(k));
  });

  it('binds to the signer and svn: a newer version can derive older svn keys, never newer ones', () => {
    const old = platform.getSealingSecret(v3, 'signer');
    expect(hex(platform.getSealingSecret(v4, 'signer', { svn: 3 }))).toBe(hex(old));
    expect(hex(platform.getSealingSecret(v4, 'signer'))).not.toBe(hex(old));
    expect(codeOf(() => platform.getSealingSecret(v3, 'signer', { svn: 4 }))).toBe('sealing_unavailable');
  });

  it('has no signer key for a module without an accepted signer', () => {
    const unsigned: ModuleIdentity = moduleIdentity(makeModule());
    expect(codeOf(() => platform.getSealingSecret(unsigned, 'signer'))).toBe('sealing_unavailable');
  });

  it('persists with the platform directory, and differs between platforms', () => {
    const k = hex(platform.getSealingSecret(v3, 'measurement'));
    expect(hex(new SoftwareAttestationProvider({ dir: platform.dir }).getSealingSecret(v3, 'measurement'))).toBe(k);
    expect(hex(new SoftwareAttestationProvider({ dir: join(dir, 'other') }).getSealingSecret(v3, 'measurement'))).not.toBe(k);
  });
});

describe('AttestationError', () => {
  it.each(ATTESTATION_ERROR_CODES)('%s has a fixed name, its code and a default message', (code) => {
    const err = new AttestationError(code);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('AttestationError');
    expect(err.code).toBe(code);
    expect(err.message).toBe(ATTESTATION_ERROR_MESSAGES[code]);
    expect(JSON.parse(JSON.stringify(err))).toEqual({ name: 'AttestationError', code, message: err.message });
  });
});
