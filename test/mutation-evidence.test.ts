/**
 * verifyEvidence's decisions at their edges (issue 10, mutation testing): the time window (issued
 * in the future, too old, expiring before it was issued) at the exact second, each claim's own
 * check, the debug status, the measurement path's svn floor, several signers, a required enclave
 * key, report data, the platform key's selection, and the token's framing. The tokens are signed
 * here with a platform key of the test's own, so any claim can be given any value. The signer
 * floors and the nonce comparison are in evidence-decisions.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  AttestationError,
  CLAIMS,
  DBGSTAT,
  REPORT_DATA_MAX_BYTES,
  checkNonce,
  generateKeyPair,
  jwkThumbprint,
  signEvidenceClaims,
  verifyEvidence,
  type EvidenceClaims,
  type EvidencePolicy,
} from '../attest/index.js';

const platform = generateKeyPair();
const b64u = (u: Uint8Array): string => Buffer.from(u).toString('base64url');
const platformKey = { kty: 'OKP', crv: 'Ed25519', x: b64u(platform.publicKey) };
const nonce = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
const T0 = 1_767_268_800; // 2026-01-01T12:00:00Z, in seconds
const MEASUREMENT = 'aa'.repeat(32);
const SIGNER = 'bb'.repeat(32);
const OTHER = 'cc'.repeat(32);

function claims(over: Record<string, unknown> = {}): EvidenceClaims {
  return {
    eat_profile: 'urn:x-enclave:eat-profile:1',
    eat_nonce: b64u(nonce),
    iat: T0,
    exp: T0 + 300,
    dbgstat: DBGSTAT.disabled,
    [CLAIMS.platform]: 'software',
    [CLAIMS.measurement]: MEASUREMENT,
    [CLAIMS.signers]: [SIGNER],
    [CLAIMS.svn]: 3,
    [CLAIMS.name]: 'echo',
    [CLAIMS.version]: '1.0.0',
    [CLAIMS.runtime]: '0.1.0',
    [CLAIMS.limits]: { requestBytes: 1024 },
    [CLAIMS.capabilities]: ['random'],
    ...over,
  } as unknown as EvidenceClaims;
}

const byMeasurement: EvidencePolicy = { measurements: [MEASUREMENT] };

/** The code verifyEvidence refuses with, or 'ok'. `now` in seconds after T0. */
async function verdict(token: string, over: { policy?: EvidencePolicy; now?: number; reportData?: Uint8Array; key?: unknown } = {}): Promise<string> {
  try {
    await verifyEvidence(token, {
      platformKey: (over.key ?? platformKey) as never,
      policy: over.policy ?? byMeasurement,
      nonce,
      now: new Date((T0 + (over.now ?? 10)) * 1000),
      ...(over.reportData === undefined ? {} : { reportData: over.reportData }),
    });
    return 'ok';
  } catch (err) {
    if (!(err instanceof AttestationError)) throw err;
    return err.code;
  }
}

const sign = (over: Record<string, unknown> = {}): string => signEvidenceClaims(claims(over), platform);

describe('the time window, to the second', () => {
  it('issued up to clockSkewSeconds in the future is accepted, one second more is not_yet_valid', async () => {
    const token = sign();
    expect(await verdict(token, { now: -60 })).toBe('ok');
    expect(await verdict(token, { now: -61 })).toBe('not_yet_valid');
    const noSkew = { ...byMeasurement, clockSkewSeconds: 0 };
    expect(await verdict(token, { now: 0, policy: noSkew })).toBe('ok');
    expect(await verdict(token, { now: -1, policy: noSkew })).toBe('not_yet_valid');
  });

  it('older than maxAgeSeconds plus the skew is expired, even when exp is later', async () => {
    const token = sign({ exp: T0 + 3600 });
    const policy = { ...byMeasurement, maxAgeSeconds: 100, clockSkewSeconds: 5 };
    expect(await verdict(token, { now: 105, policy })).toBe('ok');
    expect(await verdict(token, { now: 106, policy })).toBe('expired');
  });

  it('evidence that expires before it was issued is malformed; expiring as issued is not', async () => {
    expect(await verdict(sign({ exp: T0 - 1 }), { now: 0, policy: { ...byMeasurement, clockSkewSeconds: 60 } })).toBe('malformed');
    expect(await verdict(sign({ exp: T0 }), { now: 0, policy: { ...byMeasurement, clockSkewSeconds: 60 } })).toBe('ok');
  });
});

describe('each claim is checked', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['eat_profile', { eat_profile: 'urn:other' }],
    ['eat_nonce', { eat_nonce: 5 }],
    ['iat', { iat: T0 + 0.5 }],
    ['exp', { exp: 'later' }],
    ['dbgstat above 4', { dbgstat: 5 }],
    ['dbgstat below 0', { dbgstat: -1 }],
    ['dbgstat not an integer', { dbgstat: 1.5 }],
    ['platform', { [CLAIMS.platform]: 7 }],
    ['measurement not hex', { [CLAIMS.measurement]: 'zz'.repeat(32) }],
    ['measurement short', { [CLAIMS.measurement]: 'aa'.repeat(31) }],
    ['signers not a list', { [CLAIMS.signers]: SIGNER }],
    ['a signer not hex', { [CLAIMS.signers]: [SIGNER, 'x'] }],
    ['svn negative', { [CLAIMS.svn]: -1 }],
    ['svn not an integer', { [CLAIMS.svn]: 1.5 }],
    ['name', { [CLAIMS.name]: 1 }],
    ['version', { [CLAIMS.version]: null }],
    ['runtime', { [CLAIMS.runtime]: [] }],
    ['limits not an object', { [CLAIMS.limits]: [1] }],
    ['a limit not a number', { [CLAIMS.limits]: { requestBytes: '1' } }],
    ['capabilities not a list', { [CLAIMS.capabilities]: 'random' }],
    ['a capability not a string', { [CLAIMS.capabilities]: ['random', 1] }],
    ['report data empty', { [CLAIMS.reportData]: '' }],
    ['report data too long', { [CLAIMS.reportData]: b64u(new Uint8Array(REPORT_DATA_MAX_BYTES + 1)) }],
    ['report data not base64url', { [CLAIMS.reportData]: 'a+b/' }],
    ['cnf not an object', { cnf: 'key' }],
    ['cnf with a second member', { cnf: { jwk: { kty: 'OKP', crv: 'X25519', x: b64u(new Uint8Array(32)) }, extra: 1 } }],
    ['cnf with a bad key', { cnf: { jwk: { kty: 'OKP', crv: 'X25519', x: 'short' } } }],
  ];
  for (const [what, over] of cases) {
    it(`malformed: ${what}`, async () => {
      expect(await verdict(sign(over))).toBe('malformed');
    });
  }

  it('the edges that are allowed: dbgstat 0 and 4 (with allowDebug), report data of 1 and of the maximum, svn 0', async () => {
    const debugOk = { ...byMeasurement, allowDebug: true };
    expect(await verdict(sign({ dbgstat: 0 }), { policy: debugOk })).toBe('ok');
    expect(await verdict(sign({ dbgstat: 4 }), { policy: debugOk })).toBe('ok');
    expect(await verdict(sign({ [CLAIMS.reportData]: b64u(new Uint8Array(1)) }))).toBe('ok');
    expect(await verdict(sign({ [CLAIMS.reportData]: b64u(new Uint8Array(REPORT_DATA_MAX_BYTES)) }))).toBe('ok');
    expect(await verdict(sign({ [CLAIMS.svn]: 0 }))).toBe('ok');
    expect(await verdict(sign({ cnf: { jwk: { kty: 'OKP', crv: 'X25519', x: b64u(new Uint8Array(32).fill(7)) } } }))).toBe('ok');
  });
});

describe('the policy', () => {
  it('debugging is refused unless allowed; other debug states pass', async () => {
    expect(await verdict(sign({ dbgstat: DBGSTAT.enabled }))).toBe('debug_not_allowed');
    expect(await verdict(sign({ dbgstat: DBGSTAT.enabled }), { policy: { ...byMeasurement, allowDebug: true } })).toBe('ok');
    expect(await verdict(sign({ dbgstat: DBGSTAT.disabled }))).toBe('ok');
  });

  it('an allowed measurement is held to minSvn at its edge', async () => {
    expect(await verdict(sign(), { policy: { measurements: [MEASUREMENT], minSvn: 3 } })).toBe('ok');
    expect(await verdict(sign(), { policy: { measurements: [MEASUREMENT], minSvn: 4 } })).toBe('svn_too_low');
  });

  it('a measurement not listed falls to the signers; with no signers it is measurement_not_allowed', async () => {
    expect(await verdict(sign(), { policy: { measurements: [OTHER] } })).toBe('measurement_not_allowed');
    expect(await verdict(sign(), { policy: { measurements: [OTHER], signers: [{ signer: SIGNER }] } })).toBe('ok');
    expect(await verdict(sign(), { policy: { measurements: [OTHER], signers: [{ signer: OTHER }] } })).toBe('signer_not_allowed');
  });

  it('any one matched signer whose floor the svn meets is enough', async () => {
    const token = sign({ [CLAIMS.signers]: [OTHER, SIGNER] });
    const policy = { signers: [{ signer: SIGNER, minSvn: 9 }, { signer: OTHER, minSvn: 3 }] };
    expect(await verdict(token, { policy })).toBe('ok');
    expect(await verdict(token, { policy: { signers: [{ signer: SIGNER, minSvn: 9 }, { signer: OTHER, minSvn: 4 }] } })).toBe('svn_too_low');
    // A floor of a signer that did not sign does not count.
    expect(await verdict(sign(), { policy: { signers: [{ signer: SIGNER, minSvn: 9 }, { signer: OTHER, minSvn: 0 }] } })).toBe('svn_too_low');
  });

  it('the platform must be listed', async () => {
    expect(await verdict(sign(), { policy: { ...byMeasurement, platforms: ['software', 'sgx'] } })).toBe('ok');
    expect(await verdict(sign(), { policy: { ...byMeasurement, platforms: ['sgx'] } })).toBe('platform_not_allowed');
  });

  it('requireEnclaveKey refuses evidence without cnf', async () => {
    const withKey = sign({ cnf: { jwk: { kty: 'OKP', crv: 'X25519', x: b64u(new Uint8Array(32).fill(7)) } } });
    const policy = { ...byMeasurement, requireEnclaveKey: true };
    expect(await verdict(sign(), { policy })).toBe('malformed');
    expect(await verdict(withKey, { policy })).toBe('ok');
  });

  it('expected report data must be there and equal', async () => {
    const data = new Uint8Array(8).fill(3);
    expect(await verdict(sign({ [CLAIMS.reportData]: b64u(data) }), { reportData: data })).toBe('ok');
    expect(await verdict(sign(), { reportData: data })).toBe('report_data_mismatch');
    expect(await verdict(sign({ [CLAIMS.reportData]: b64u(data) }), { reportData: new Uint8Array(8).fill(4) })).toBe('report_data_mismatch');
    // Report data the caller does not ask about is not compared.
    expect(await verdict(sign({ [CLAIMS.reportData]: b64u(data) }))).toBe('ok');
  });

  it('expected report data that is empty still needs the claim: evidence without report data does not match it', async () => {
    // An absent claim and empty expected data both encode as "": only the presence check tells them apart.
    expect(await verdict(sign(), { reportData: new Uint8Array(0) })).toBe('report_data_mismatch');
    expect(await verdict(sign({ [CLAIMS.reportData]: b64u(new Uint8Array(1)) }), { reportData: new Uint8Array(0) })).toBe('report_data_mismatch');
  });
});

describe('the platform key and the token', () => {
  it('a key is used only if it is an Ed25519 OKP key whose thumbprint is the token\'s kid', async () => {
    const token = sign();
    expect(await verdict(token, { key: [{ ...platformKey, kty: 'EC' }] })).toBe('bad_signature');
    expect(await verdict(token, { key: [{ ...platformKey, crv: 'X25519' }] })).toBe('bad_signature');
    expect(await verdict(token, { key: [{ ...platformKey, x: b64u(platform.publicKey.subarray(0, 31)) }] })).toBe('bad_signature');
    expect(await verdict(token, { key: [{ kty: 'OKP', crv: 'Ed25519', x: b64u(generateKeyPair().publicKey) }, platformKey] })).toBe('ok');
    expect(jwkThumbprint(platform.publicKey)).toBe(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid);
  });

  it('the options are checked: at least one key, each an object; a nonce of 8..64 bytes', async () => {
    await expect(verifyEvidence(sign(), { platformKey: [], policy: byMeasurement, nonce })).rejects.toBeInstanceOf(TypeError);
    await expect(verifyEvidence(sign(), { platformKey: [platformKey, null] as never, policy: byMeasurement, nonce })).rejects.toBeInstanceOf(TypeError);
    expect(checkNonce(new Uint8Array(8))).toHaveLength(8);
    expect(checkNonce(new Uint8Array(64))).toHaveLength(64);
    expect(() => checkNonce(new Uint8Array(7))).toThrow(AttestationError);
    expect(() => checkNonce(new Uint8Array(65))).toThrow(AttestationError);
    expect(() => checkNonce('0123456789')).toThrow(AttestationError);
  });

  it('a token must be three non-empty canonical base64url parts, of bounded size', async () => {
    const [h, p, s] = sign().split('.') as [string, string, string];
    expect(await verdict(`${h}.${p}.${s}`)).toBe('ok');
    for (const bad of [`${h}.${p}`, `${h}.${p}.${s}.${s}`, `.${p}.${s}`, `${h}..${s}`, `${h}.${p}.`, `${h}.${p}.${s}=`, `${h}.${p}+.${s}`]) {
      expect(await verdict(bad), bad.slice(-12)).toBe('malformed');
    }
    // Over 64 KiB of token is refused unread; a large token under it reaches the signature check.
    expect(await verdict(`${h}.${'A'.repeat(66_000)}.${s}`)).toBe('malformed');
    expect(await verdict(`${h}.${'A'.repeat(60_000)}.${s}`)).toBe('bad_signature');
  });

  it('a header without a string kid, or with an algorithm outside the list, is malformed', async () => {
    const [, p, s] = sign().split('.') as [string, string, string];
    const header = (o: object): string => b64u(Buffer.from(JSON.stringify(o)));
    expect(await verdict(`${header({ alg: 'EdDSA', typ: 'eat+jwt' })}.${p}.${s}`)).toBe('malformed');
    expect(await verdict(`${header({ alg: 'EdDSA', typ: 'eat+jwt', kid: 5 })}.${p}.${s}`)).toBe('malformed');
    expect(await verdict(`${header({ alg: 'ES256', typ: 'eat+jwt', kid: jwkThumbprint(platform.publicKey) })}.${p}.${s}`)).toBe('malformed');
    expect(await verdict(`${header({ typ: 'eat+jwt', kid: jwkThumbprint(platform.publicKey) })}.${p}.${s}`)).toBe('malformed');
  });

  it('an algorithm outside the list is malformed before any key is looked up (an unknown kid does not turn it into bad_signature)', async () => {
    // With the kid of a trusted key, jose's own algorithm list would refuse the token as well; with a
    // kid that names no key, only verifyEvidence's header check says malformed.
    const [, p, s] = sign().split('.') as [string, string, string];
    const header = (o: object): string => b64u(Buffer.from(JSON.stringify(o)));
    const unknownKid = jwkThumbprint(generateKeyPair().publicKey);
    expect(await verdict(`${header({ alg: 'EdDSA', typ: 'eat+jwt', kid: unknownKid })}.${p}.${s}`)).toBe('bad_signature');
    expect(await verdict(`${header({ alg: 'ES256', typ: 'eat+jwt', kid: unknownKid })}.${p}.${s}`)).toBe('malformed');
    expect(await verdict(`${header({ alg: 'none', typ: 'eat+jwt', kid: unknownKid })}.${p}.${s}`)).toBe('malformed');
    expect(await verdict(`${header({ alg: 7, typ: 'eat+jwt', kid: unknownKid })}.${p}.${s}`)).toBe('malformed');
    expect(await verdict(`${header({ typ: 'eat+jwt', kid: unknownKid })}.${p}.${s}`)).toBe('malformed');
  });

  it('every platform key must be an object: a string among valid keys is refused, not skipped', async () => {
    for (const bad of ['not a jwk', 42, true]) {
      await expect(verifyEvidence(sign(), { platformKey: [platformKey, bad] as never, policy: byMeasurement, nonce, now: new Date((T0 + 10) * 1000) })).rejects.toThrow(
        /platformKey: expected a JWK or an array of JWKs/,
      );
    }
    await expect(verifyEvidence(sign(), { platformKey: 'not a jwk' as never, policy: byMeasurement, nonce })).rejects.toThrow(/platformKey/);
    expect(await verdict(sign(), { key: [platformKey] })).toBe('ok');
  });
});
