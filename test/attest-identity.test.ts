/**
 * One identity for a module, built in one place (issue 10): `moduleIdentity` builds it, `checkTrust`
 * only adds the admitting signer, and both accept every contract the runtime accepts.
 */
import { describe, expect, it } from 'vitest';
import { checkTrust, generateKeyPair, moduleIdentity, readContract, signModule, signerId } from '../attest/index.js';
import { makeModule } from './attest-fixtures.js';

const alice = generateKeyPair();
const bob = generateKeyPair();

describe('module identity', () => {
  it('checkTrust returns what moduleIdentity returns for the trusted keys, plus the admitting signer', () => {
    const signed = signModule(signModule(makeModule({ svn: 4 }), alice), bob);
    const trusted = { trusted: [{ publicKey: bob.publicKey, minSvn: 5 }, { publicKey: alice.publicKey, minSvn: 4 }] };
    const admitted = checkTrust(signed, trusted);
    const plain = moduleIdentity(signed, [bob.publicKey, alice.publicKey]);
    expect(admitted).toEqual({ ...plain, signer: signerId(alice.publicKey) });
    expect(Object.keys(admitted).sort()).toEqual(['measurement', 'name', 'signer', 'signers', 'svn', 'version']);
    expect(Object.isFrozen(admitted)).toBe(true);
    expect(Object.isFrozen(admitted.signers)).toBe(true);
    expect('signer' in moduleIdentity(signed)).toBe(false);
  });

  // docs/ABI.md §6: `capabilities` and `limits` may be left out (none granted, the default limits).
  // The runtime loads such a module, so attestation must give it an identity, with or without trust.
  it('a contract without capabilities or limits has an identity, and loads under a trust policy', () => {
    const bare = makeModule({ capabilities: undefined, limits: undefined, svn: 2 });
    expect(readContract(bare)).toMatchObject({ capabilities: [], limits: {}, svn: 2 });
    expect(moduleIdentity(bare)).toMatchObject({ name: 'echo', version: '1.0.0', svn: 2, signers: [] });
    const id = checkTrust(signModule(bare, alice), { trusted: [{ publicKey: alice.publicKey }] });
    expect(id.signer).toBe(signerId(alice.publicKey));
    expect(id.measurement).toBe(moduleIdentity(bare).measurement);
  });
});
