/**
 * The deterministic signer (issue 13; docs/ATTESTATION.md §3): `checkTrust` binds the
 * admitted signer whose signature comes first in the module's own signature section, never the
 * first in the host's trust list, so two hosts listing the same keys in another order bind the same
 * signer and derive the same signer-bound sealing keys and counters.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTrust, generateKeyPair, signerId, signModule, SoftwareAttestationProvider, type SigningKeyPair } from '../attest/index.js';
import { makeModule } from './attest-fixtures.js';
import { attestationCodeOf } from './helpers/errors.js';

const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()] as [SigningKeyPair, SigningKeyPair, SigningKeyPair];
const id = (k: SigningKeyPair) => signerId(k.publicKey);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const trusted = (...entries: [SigningKeyPair, number?][]) => ({ trusted: entries.map(([k, minSvn]) => ({ publicKey: k.publicKey, minSvn: minSvn ?? 0 })) });

const module = (svn: number, ...signers: SigningKeyPair[]) => signers.reduce((bytes, k) => signModule(bytes, k), makeModule({ svn, name: 'vault' }));

describe('the bound signer is fixed by the module', () => {
  it('signed A then B: A under trust lists [A, B] and [B, A]; the sealing keys and counters agree', () => {
    const bytes = module(2, a, b);
    const ab = checkTrust(bytes, trusted([a], [b]));
    const ba = checkTrust(bytes, trusted([b], [a]));
    expect(ab.signer).toBe(id(a));
    expect(ba.signer).toBe(id(a));
    const p = new SoftwareAttestationProvider({ dir: join(mkdtempSync(join(tmpdir(), 'enclave-order-')), 'platform') });
    expect(hex(p.sealingKey(ab, 'signer').key)).toBe(hex(p.sealingKey(ba, 'signer').key));
    p.advanceCounter(ab, 'signer', 1n, 0n, new Uint8Array(32));
    expect(p.readCounter(ba, 'signer', 1n).value).toBe(1n);
  });

  it('signed B then A: B, in either trust order (so the module, not the key, decides)', () => {
    const bytes = module(2, b, a);
    expect(checkTrust(bytes, trusted([a], [b])).signer).toBe(id(b));
    expect(checkTrust(bytes, trusted([b], [a])).signer).toBe(id(b));
  });

  it('every permutation of three trusted signers binds the first signature', () => {
    const bytes = module(1, c, a, b);
    const perms: SigningKeyPair[][] = [[a, b, c], [a, c, b], [b, a, c], [b, c, a], [c, a, b], [c, b, a]];
    for (const order of perms) expect(checkTrust(bytes, trusted(...order.map((k) => [k] as [SigningKeyPair]))).signer).toBe(id(c));
  });

  it('a first signer whose floor is above the svn is skipped, in either order; a trusted key that did not sign changes nothing', () => {
    const bytes = module(2, a, b);
    expect(checkTrust(bytes, trusted([a, 3], [b])).signer).toBe(id(b));
    expect(checkTrust(bytes, trusted([b], [a, 3])).signer).toBe(id(b));
    expect(checkTrust(bytes, trusted([c], [b], [a])).signer).toBe(id(a));
    expect(attestationCodeOf(() => checkTrust(bytes, trusted([a, 3], [b, 3])))).toBe('rollback');
  });

  it('the same key listed twice (two floors) is one signer: the lower floor admits', () => {
    const bytes = module(2, a, b);
    expect(checkTrust(bytes, trusted([b], [a, 5], [a, 1])).signer).toBe(id(a));
  });
});
