/**
 * Module signature and trust decisions at their edges (issue 10, mutation testing): verifyModule
 * reports each valid signer once, in the order of the keys given, and nobody for an unsigned or
 * changed module; checkTrust validates each floor, admits an svn equal to a signer's floor, and
 * names the signer it admitted by. The floor of a trusted key that did not sign, and partial
 * hash sets, are in trust-decisions.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { AttestationError, checkTrust, generateKeyPair, moduleIdentity, signModule, signerId, verifyModule } from '../attest/index.js';
import { encodeCustomSection } from '../core/index.js';
import { concat, HEADER, makeModule } from './attest-fixtures.js';

const alice = generateKeyPair();
const bob = generateKeyPair();
const carol = generateKeyPair();
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof AttestationError) return err.code;
    return (err as Error).name;
  }
}

describe('verifyModule', () => {
  const both = signModule(signModule(makeModule({ svn: 4 }), alice), bob);

  it('lists each valid signer once, in the order of the keys given', () => {
    expect(verifyModule(both, [alice.publicKey, bob.publicKey]).map((s) => s.publicKey)).toEqual([hex(alice.publicKey), hex(bob.publicKey)]);
    expect(verifyModule(both, [bob.publicKey, alice.publicKey]).map((s) => s.publicKey)).toEqual([hex(bob.publicKey), hex(alice.publicKey)]);
    expect(verifyModule(both, [alice.publicKey, alice.publicKey, hex(alice.publicKey)])).toHaveLength(1);
    expect(verifyModule(both, [carol.publicKey, bob.publicKey])).toEqual([{ signer: signerId(bob.publicKey), publicKey: hex(bob.publicKey) }]);
  });

  it('lists nobody for an unsigned module, keys that did not sign, or a module changed after signing', () => {
    expect(verifyModule(makeModule({ svn: 4 }), [alice.publicKey])).toEqual([]);
    expect(verifyModule(both, [carol.publicKey])).toEqual([]);
    expect(verifyModule(both, [])).toEqual([]);
    const changed = Uint8Array.from(both);
    changed[changed.length - 1]! ^= 1;
    expect(verifyModule(changed, [alice.publicKey, bob.publicKey])).toEqual([]);
  });
});

describe('checkTrust', () => {
  const signed = signModule(makeModule({ svn: 4 }), alice);

  it('refuses a policy without a list of keys, and a floor that is not an integer >= 0', () => {
    expect(code(() => checkTrust(signed, undefined as never))).toBe('TypeError');
    expect(code(() => checkTrust(signed, { trusted: 'key' } as never))).toBe('TypeError');
    expect(code(() => checkTrust(signed, { trusted: [{ publicKey: alice.publicKey, minSvn: -1 }] }))).toBe('RangeError');
    expect(code(() => checkTrust(signed, { trusted: [{ publicKey: alice.publicKey, minSvn: 1.5 }] }))).toBe('RangeError');
    expect(code(() => checkTrust(signed, { trusted: [{ publicKey: alice.publicKey, minSvn: 0 }] }))).toBe('ok');
    expect(code(() => checkTrust(signed, { trusted: [{ publicKey: alice.publicKey }] }))).toBe('ok');
  });

  it('a trusted list that is not an array is refused by name, not read as "no trusted key"', () => {
    // Array-likes with a map method (a typed array, a look-alike object) would otherwise pass
    // through as an empty list of floors and end as untrusted_module.
    for (const trusted of [new Uint8Array(0), { map: () => [] }, 'key', null]) {
      expect(() => checkTrust(signed, { trusted } as never), String(trusted)).toThrow(/policy\.trusted: expected an array/);
    }
    expect(() => checkTrust(signed, null as never)).toThrow(/policy\.trusted: expected an array/);
  });

  it('an svn equal to the floor loads, one below is rollback; no trusted signer is untrusted_module', () => {
    expect(checkTrust(signed, { trusted: [{ publicKey: alice.publicKey, minSvn: 4 }] }).svn).toBe(4);
    expect(code(() => checkTrust(signed, { trusted: [{ publicKey: alice.publicKey, minSvn: 5 }] }))).toBe('rollback');
    expect(code(() => checkTrust(signed, { trusted: [{ publicKey: bob.publicKey }] }))).toBe('untrusted_module');
    expect(code(() => checkTrust(signed, { trusted: [] }))).toBe('untrusted_module');
  });

  it('names the signer whose signature comes first in the module among those trusted and admitted, whatever the trust list order', () => {
    const both = signModule(signed, bob); // alice's signature first, then bob's
    const trusted = [
      { publicKey: alice.publicKey, minSvn: 1 },
      { publicKey: bob.publicKey, minSvn: 1 },
    ];
    expect(checkTrust(both, { trusted }).signer).toBe(signerId(alice.publicKey));
    expect(checkTrust(both, { trusted: [...trusted].reverse() }).signer).toBe(signerId(alice.publicKey));
    expect(checkTrust(signModule(signModule(makeModule({ svn: 2 }), bob), alice), { trusted }).signer).toBe(signerId(bob.publicKey));
    expect(checkTrust(both, { trusted: [{ ...trusted[0]!, minSvn: 9 }, trusted[1]!] }).signer).toBe(signerId(bob.publicKey));
    const id = checkTrust(both, { trusted });
    expect(id.signers).toEqual(expect.arrayContaining([signerId(alice.publicKey), signerId(bob.publicKey)]));
    expect(Object.isFrozen(id)).toBe(true);
  });
});

describe('moduleIdentity', () => {
  it('without keys reads no signature: a garbage signature section leaves signers empty; with a key it is malformed_signature', () => {
    // Only keys the caller holds make a signature worth decoding (the runtime builds an identity
    // without keys when no trust policy is set); with one, the section must decode.
    const garbage = concat(HEADER, encodeCustomSection('signature', Uint8Array.of(1, 1, 1, 5)), makeModule({ svn: 2 }).subarray(8));
    const id = moduleIdentity(garbage);
    expect(id.signers).toEqual([]);
    expect(id.svn).toBe(2);
    expect(moduleIdentity(garbage, [])).toEqual(id);
    expect(code(() => moduleIdentity(garbage, [alice.publicKey]))).toBe('malformed_signature');
    const signed = signModule(makeModule({ svn: 2 }), alice);
    expect(moduleIdentity(signed, [bob.publicKey, alice.publicKey]).signers).toEqual([signerId(alice.publicKey)]);
    expect(moduleIdentity(signed).signers).toEqual([]);
  });
});
