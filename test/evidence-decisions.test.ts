/**
 * Regression tests for the decisions of the evidence verifier (issue 10, mutation survivors): the
 * svn floor of a signer combined with the policy's, and the nonce compared whole. Each test names
 * the bug it guards, and fails on that bug (checked by applying it by hand).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attestationCodeOfAsync as codeOf } from './helpers/errors.js';
import {
  SoftwareAttestationProvider,
  checkNonce,
  checkTrust,
  encodeCustomSection,
  generateKeyPair,
  signModule,
  verifyEvidence,
  type EvidencePolicy,
  type EvidenceRequest,
  type ModuleIdentity,
  type PlatformPublicJwk,
} from '../attest/index.js';

const HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
const TYPE_SECTION = Uint8Array.of(0x01, 0x04, 0x01, 0x60, 0x00, 0x00);

function moduleWith(svn: number): Uint8Array {
  const contract = { abi: 1, name: 'evidence', version: '1.0.0', svn, capabilities: [], limits: {}, ops: { ok: {} } };
  const section = encodeCustomSection('enclave.contract', new TextEncoder().encode(JSON.stringify(contract)));
  const out = new Uint8Array(HEADER.length + TYPE_SECTION.length + section.length);
  out.set(HEADER);
  out.set(TYPE_SECTION, HEADER.length);
  out.set(section, HEADER.length + TYPE_SECTION.length);
  return out;
}

const signing = generateKeyPair();
/** The module under evidence has svn 3. */
const identity: ModuleIdentity = checkTrust(signModule(moduleWith(3), signing), { trusted: [{ publicKey: signing.publicKey }] });
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const limits = { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 4 };
/** 33 and 36 bytes: multiples of 3, so the base64url of the shorter is a prefix of the longer's. */
const nonce36 = Uint8Array.from({ length: 36 }, (_, i) => i + 1);
const nonce33 = nonce36.slice(0, 33);

function request(nonce: Uint8Array): EvidenceRequest {
  return { identity, nonce, runtimeVersion: '0.1.0', limits, capabilities: [], debug: false, now: T0 };
}

let dir: string;
let platform: SoftwareAttestationProvider;
let jwk: PlatformPublicJwk;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'evidence-decisions-'));
  platform = new SoftwareAttestationProvider({ dir: join(dir, 'p') });
  jwk = platform.publicJwk();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function verify(token: string, policy: EvidencePolicy, nonce: Uint8Array) {
  return verifyEvidence(token, { platformKey: jwk, policy, nonce, now: new Date(T0 + 10_000) });
}

describe('verifyEvidence: a signer is held to the higher of its own floor and the policy floor', () => {
  it("a signer's lower minSvn does not override the policy's minSvn", async () => {
    const token = platform.getEvidence(request(nonce33));
    const signer = identity.signer!;
    // svn 3: the signer's floor (1) admits it, the policy's (4) does not: the higher one wins.
    expect(await codeOf(verify(token, { signers: [{ signer, minSvn: 1 }], minSvn: 4 }, nonce33))).toBe('svn_too_low');
    // A signer with no floor of its own is still held to the policy's.
    expect(await codeOf(verify(token, { signers: [{ signer }], minSvn: 4 }, nonce33))).toBe('svn_too_low');
    // And the policy's lower floor does not lower the signer's.
    expect(await codeOf(verify(token, { signers: [{ signer, minSvn: 4 }], minSvn: 1 }, nonce33))).toBe('svn_too_low');
  });

  it('svn equal to the higher floor is accepted (boundary)', async () => {
    const token = platform.getEvidence(request(nonce33));
    const signer = identity.signer!;
    expect(await codeOf(verify(token, { signers: [{ signer, minSvn: 1 }], minSvn: 3 }, nonce33))).toBe('no error');
    expect(await codeOf(verify(token, { signers: [{ signer, minSvn: 3 }], minSvn: 1 }, nonce33))).toBe('no error');
  });
});

describe('verifyEvidence: the nonce is compared whole, never as a prefix', () => {
  const policy = (): EvidencePolicy => ({ measurements: [identity.measurement] });

  it('evidence for a longer nonce does not verify against its prefix', async () => {
    const token = platform.getEvidence(request(nonce36));
    expect(await codeOf(verify(token, policy(), nonce36))).toBe('no error');
    expect(await codeOf(verify(token, policy(), nonce33))).toBe('nonce_mismatch');
  });

  it('evidence for a nonce does not verify against a longer nonce that starts with it', async () => {
    const token = platform.getEvidence(request(nonce33));
    expect(await codeOf(verify(token, policy(), nonce33))).toBe('no error');
    expect(await codeOf(verify(token, policy(), nonce36))).toBe('nonce_mismatch');
  });

  it('a nonce differing only in its last byte does not verify', async () => {
    const token = platform.getEvidence(request(nonce36));
    const last = Uint8Array.from(nonce36);
    last[last.length - 1]! ^= 0x01;
    expect(await codeOf(verify(token, policy(), last))).toBe('nonce_mismatch');
  });

  it('checkNonce returns the nonce whole (the bytes the evidence is bound to)', () => {
    expect(Array.from(checkNonce(nonce36))).toEqual(Array.from(nonce36));
  });
});
