/**
 * Regression tests for the trust decisions of signed modules (issue 10, mutation survivors): each
 * test names the bug it guards, and fails on that bug (checked by applying it by hand).
 */
import { describe, expect, it } from 'vitest';
import { concat, HEADER, TYPE_SECTION } from './attest-fixtures.js';
import { attestationCodeOf as codeOf } from './helpers/errors.js';
import {
  checkTrust,
  encodeCustomSection,
  generateKeyPair,
  readSignatures,
  signModule,
  signerId,
  verifyModule,
} from '../attest/index.js';

const alice = generateKeyPair();
const bob = generateKeyPair();

const DELIMITER = encodeCustomSection('signature_delimiter', new Uint8Array(16).fill(7));

/** A tiny module with a contract of the given svn, then `extra` sections. */
function moduleWith(svn: number, ...extra: Uint8Array[]): Uint8Array {
  const contract = { abi: 1, name: 'trust', version: '1.0.0', svn, capabilities: [], limits: {}, ops: { ok: {} } };
  return concat(HEADER, TYPE_SECTION, encodeCustomSection('enclave.contract', new TextEncoder().encode(JSON.stringify(contract))), ...extra);
}

describe('checkTrust: the svn floor is the floor of a key that signed the module', () => {
  it('rollback bypass: a trusted key that did not sign does not lend its lower floor', () => {
    // Signed by alice only (floor 5); bob is trusted with floor 0 but did not sign.
    const old = signModule(moduleWith(1), alice);
    const policy = { trusted: [{ publicKey: alice.publicKey, minSvn: 5 }, { publicKey: bob.publicKey, minSvn: 0 }] };
    expect(codeOf(() => checkTrust(old, policy))).toBe('rollback');
    // The same with the non-signer listed first.
    const reversed = { trusted: [{ publicKey: bob.publicKey, minSvn: 0 }, { publicKey: alice.publicKey, minSvn: 5 }] };
    expect(codeOf(() => checkTrust(old, reversed))).toBe('rollback');
  });

  it('the signer reported is the signer whose floor admitted the module, never a non-signer', () => {
    const mod = signModule(moduleWith(5), alice);
    const policy = { trusted: [{ publicKey: bob.publicKey, minSvn: 0 }, { publicKey: alice.publicKey, minSvn: 5 }] };
    const id = checkTrust(mod, policy);
    expect(id.signer).toBe(signerId(alice.publicKey));
    expect(id.signers).toEqual([signerId(alice.publicKey)]);
  });

  it('svn floor boundary: svn == minSvn admitted, svn == minSvn - 1 is rollback', () => {
    const policy = { trusted: [{ publicKey: alice.publicKey, minSvn: 3 }] };
    expect(checkTrust(signModule(moduleWith(3), alice), policy).svn).toBe(3);
    expect(codeOf(() => checkTrust(signModule(moduleWith(2), alice), policy))).toBe('rollback');
  });
});

describe('partial signatures: a hash set that covers only part of the module does not count', () => {
  // Signed up to a delimiter, then more sections appended: the signature's hash set is a strict
  // prefix of the module's hashes (Signatures.md: partial signatures are ignored by default).
  const signedPrefix = signModule(moduleWith(1, DELIMITER), alice);
  const extended = concat(signedPrefix, encodeCustomSection('extra', Uint8Array.of(1, 2, 3)));

  it('a signature over a prefix of the module is not reported as covering it (readSignatures)', () => {
    expect(readSignatures(signedPrefix).map((s) => s.coversModule)).toEqual([true]);
    expect(readSignatures(extended).map((s) => s.coversModule)).toEqual([false]);
  });

  it('a signature over a prefix of the module does not verify (verifyModule) nor admit it (checkTrust)', () => {
    expect(verifyModule(signedPrefix, [alice.publicKey])).toHaveLength(1);
    expect(verifyModule(extended, [alice.publicKey])).toEqual([]);
    expect(codeOf(() => checkTrust(extended, { trusted: [{ publicKey: alice.publicKey }] }))).toBe('untrusted_module');
  });

  it('a signature over more than the module (sections removed after signing) does not cover it', () => {
    // Signed over [contract, delimiter, extra]: two hashes. The module cut back to its first part has one.
    const extra = encodeCustomSection('extra', Uint8Array.of(9));
    const full = signModule(moduleWith(1, DELIMITER, extra), alice);
    const cut = full.subarray(0, full.length - extra.length);
    expect(readSignatures(full).map((s) => s.coversModule)).toEqual([true]);
    expect(readSignatures(cut).map((s) => s.coversModule)).toEqual([false]);
    expect(verifyModule(cut, [alice.publicKey])).toEqual([]);
    expect(codeOf(() => checkTrust(cut, { trusted: [{ publicKey: alice.publicKey }] }))).toBe('untrusted_module');
  });

  it('a hash set of the right length with a different last hash does not cover the module', () => {
    // [contract, delimiter, extra A] signed; extra A replaced by extra B: same count, last hash differs.
    const extraA = encodeCustomSection('extra', Uint8Array.of(1));
    const a = signModule(moduleWith(1, DELIMITER, extraA), alice);
    const b = concat(a.subarray(0, a.length - extraA.length), encodeCustomSection('extra', Uint8Array.of(2)));
    expect(b.length).toBe(a.length);
    expect(readSignatures(b).map((s) => s.coversModule)).toEqual([false]);
    expect(verifyModule(b, [alice.publicKey])).toEqual([]);
  });
});
