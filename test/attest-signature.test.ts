import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttestationError,
  checkTrust,
  defaultKeyId,
  encodeCustomSection,
  generateKeyPair,
  listSections,
  measure,
  moduleIdentity,
  parsePrivateKey,
  parsePublicKey,
  publicKeyToJwk,
  readContract,
  readPrivateKeyFile,
  readPublicKeyFile,
  readSignatures,
  signModule,
  signerId,
  verifyModule,
  writeKeyPair,
  type AttestationErrorCode,
} from '../attest/index.js';
import { HEADER, concat, makeModule } from './attest-fixtures.js';

function codeOf(fn: () => unknown): AttestationErrorCode | 'no error' | 'other error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof AttestationError ? err.code : 'other error';
  }
}

const alice = generateKeyPair();
const bob = generateKeyPair();
const mallory = generateKeyPair();

describe('measurement', () => {
  it('is SHA-256 of the unsigned module and does not change when signed, or signed again', () => {
    const mod = makeModule();
    const m = measure(mod);
    expect(bytesToHex(m)).toBe(bytesToHex(sha256(mod)));
    const once = signModule(mod, alice);
    const twice = signModule(once, bob);
    expect(bytesToHex(measure(once))).toBe(bytesToHex(m));
    expect(bytesToHex(measure(twice))).toBe(bytesToHex(m));
  });

  it('covers the contract: changing the contract changes the measurement', () => {
    expect(bytesToHex(measure(makeModule({ svn: 1 })))).not.toBe(bytesToHex(measure(makeModule({ svn: 2 }))));
  });

  it('moduleIdentity reports measurement, contract fields and verified signers', () => {
    const signed = signModule(makeModule({ name: 'counter', version: '2.1.0', svn: 7 }), alice);
    const id = moduleIdentity(signed, [alice.publicKey, mallory.publicKey]);
    expect(id).toEqual({
      measurement: bytesToHex(measure(signed)),
      signers: [signerId(alice.publicKey)],
      svn: 7,
      name: 'counter',
      version: '2.1.0',
    });
    expect(moduleIdentity(signed).signers).toEqual([]);
  });

  it('refuses bytes that are not a module', () => {
    expect(codeOf(() => measure(Uint8Array.of(1, 2, 3)))).toBe('invalid_module');
    expect(codeOf(() => measure(concat(HEADER, Uint8Array.of(0x00, 0x10))))).toBe('invalid_module');
  });
});

describe('contract', () => {
  it('reads the contract', () => {
    expect(readContract(makeModule({ svn: 3 })).svn).toBe(3);
  });
  it.each([
    ['missing', concat(HEADER)],
    ['duplicated', makeModule({}, encodeCustomSection('enclave.contract', new TextEncoder().encode('{}')))],
    ['not JSON', concat(HEADER, encodeCustomSection('enclave.contract', new TextEncoder().encode('{nope')))],
    ['not UTF-8', concat(HEADER, encodeCustomSection('enclave.contract', Uint8Array.of(0xff, 0xfe)))],
    ['negative svn', makeModule({ svn: -1 })],
    ['fractional svn', makeModule({ svn: 1.5 })],
    ['no name', makeModule({ name: '' })],
    ['capabilities not strings', makeModule({ capabilities: [1] as unknown as string[] })],
    ['ops missing', makeModule({ ops: undefined })],
  ])('refuses a contract that is %s', (_, mod) => {
    expect(codeOf(() => readContract(mod))).toBe('invalid_contract');
  });
});

describe('signature format (tool-conventions Signatures.md, as wasmsign2 writes it)', () => {
  it('puts one signature section first, with the documented layout and an Ed25519 signature over "wasmsig" ‖ 01 01 01 ‖ hashes', () => {
    const mod = makeModule();
    const signed = signModule(mod, alice);
    const sections = listSections(signed);
    expect(sections[0]!.name).toBe('signature');
    expect(sections.filter((s) => s.name === 'signature')).toHaveLength(1);
    // Content is untouched and follows the signature section.
    expect(bytesToHex(signed.subarray(sections[0]!.end))).toBe(bytesToHex(mod.subarray(8)));

    const p = signed.subarray(sections[0]!.payloadStart, sections[0]!.end);
    const hash = sha256(mod.subarray(8)); // all sections after the signature section, header excluded
    const keyId = hmac(sha256, alice.publicKey, new TextEncoder().encode('key_id')).slice(0, 12);
    const expectedPrefix = concat(
      Uint8Array.of(0x01, 0x01, 0x01), // spec_version, content_type, hash_fn
      Uint8Array.of(0x01), // one signed-hashes set
      Uint8Array.of(1 + 32 + 1 + 1 + (1 + 12 + 1 + 1 + 64)), // its length
      Uint8Array.of(0x01), // one hash
      hash,
      Uint8Array.of(0x01), // one signature
      Uint8Array.of(1 + 12 + 1 + 1 + 64), // its length
      Uint8Array.of(12),
      keyId,
      Uint8Array.of(0x01), // Ed25519
      Uint8Array.of(64),
    );
    expect(p.length).toBe(expectedPrefix.length + 64);
    expect(bytesToHex(p.subarray(0, expectedPrefix.length))).toBe(bytesToHex(expectedPrefix));
    const msg = concat(new TextEncoder().encode('wasmsig'), Uint8Array.of(1, 1, 1), hash);
    expect(ed25519.verify(p.subarray(expectedPrefix.length), msg, alice.publicKey)).toBe(true);
    expect(bytesToHex(defaultKeyId(alice.publicKey))).toBe(bytesToHex(keyId));
  });

  it('can omit the key id', () => {
    const signed = signModule(makeModule(), alice, { keyId: null });
    expect(readSignatures(signed)).toEqual([{ keyId: '', algorithm: 'ed25519', coversModule: true }]);
    expect(verifyModule(signed, [alice.publicKey])).toHaveLength(1);
  });

  it('hashes at each signature_delimiter (rolling hash) and verifies such modules', () => {
    const delim = encodeCustomSection('signature_delimiter', new Uint8Array(16).fill(7));
    const mod = makeModule({}, delim);
    const signed = signModule(mod, alice);
    expect(verifyModule(signed, [alice.publicKey])).toHaveLength(1);
    // A part appended later (a partial signature for the signer) is not accepted as a whole-module signature.
    const extended = concat(signed, encodeCustomSection('extra', Uint8Array.of(1)), delim);
    expect(verifyModule(extended, [alice.publicKey])).toEqual([]);
  });
});

describe('verifyModule and checkTrust', () => {
  const trusted = { trusted: [{ publicKey: alice.publicKey, minSvn: 1 }] };

  it('accepts a module signed by a trusted key and reports the signer', () => {
    const signed = signModule(makeModule({ svn: 1 }), alice);
    expect(verifyModule(signed, [alice.publicKey, bob.publicKey])).toEqual([
      { signer: signerId(alice.publicKey), publicKey: bytesToHex(alice.publicKey) },
    ]);
    const id = checkTrust(signed, trusted);
    expect(id.signer).toBe(signerId(alice.publicKey));
    expect(id.measurement).toBe(bytesToHex(measure(signed)));
  });

  it('refuses an unsigned module (untrusted_module)', () => {
    expect(verifyModule(makeModule(), [alice.publicKey])).toEqual([]);
    expect(codeOf(() => checkTrust(makeModule(), trusted))).toBe('untrusted_module');
  });

  it('refuses a module signed by another key (untrusted_module)', () => {
    expect(codeOf(() => checkTrust(signModule(makeModule(), mallory), trusted))).toBe('untrusted_module');
  });

  it('refuses a module whose signature section was replaced by another key (untrusted_module)', () => {
    const signed = signModule(makeModule(), alice);
    const s = listSections(signed)[0]!;
    const stripped = concat(signed.subarray(0, 8), signed.subarray(s.end));
    expect(codeOf(() => checkTrust(signModule(stripped, mallory), trusted))).toBe('untrusted_module');
  });

  it('refuses a signature section appended by a different key (malformed_signature)', () => {
    const signed = signModule(makeModule(), alice);
    const foreign = listSections(signModule(makeModule(), mallory))[0]!;
    const malloryModule = signModule(makeModule(), mallory);
    const appended = concat(signed, malloryModule.subarray(foreign.start, foreign.end));
    expect(codeOf(() => checkTrust(appended, trusted))).toBe('malformed_signature');
    expect(codeOf(() => measure(appended))).toBe('malformed_signature');
  });

  it('refuses a module with any single byte changed, except the unauthenticated key id hint', () => {
    const signed = signModule(makeModule({ svn: 1 }), alice);
    const keyId = readSignatures(signed)[0]!.keyId;
    const refused = new Set<string>();
    for (let i = 0; i < signed.length; i++) {
      const bad = Uint8Array.from(signed);
      bad[i]! ^= 0x01;
      const code = codeOf(() => checkTrust(bad, trusted));
      refused.add(code);
      if (code === 'no error') {
        // Signatures.md: the key id is a hint outside what is signed. Changing it changes neither
        // the measured content nor who signed it.
        expect(readSignatures(bad)[0]!.keyId).not.toBe(keyId);
        expect(bytesToHex(measure(bad))).toBe(bytesToHex(measure(signed)));
        continue;
      }
      expect(['untrusted_module', 'invalid_module', 'invalid_contract', 'malformed_signature']).toContain(code);
    }
    expect(refused.has('untrusted_module')).toBe(true);
  });

  it('keeps every signature valid when a module is signed twice, in either order', () => {
    const ab = signModule(signModule(makeModule(), alice), bob);
    const ba = signModule(signModule(makeModule(), bob), alice);
    for (const m of [ab, ba]) {
      expect(verifyModule(m, [alice.publicKey, bob.publicKey]).map((v) => v.signer)).toEqual([
        signerId(alice.publicKey),
        signerId(bob.publicKey),
      ]);
      expect(checkTrust(m, trusted).signer).toBe(signerId(alice.publicKey));
    }
    expect(readSignatures(ab)).toHaveLength(2);
  });

  it('refuses to sign twice with the same key (duplicate_signature)', () => {
    expect(codeOf(() => signModule(signModule(makeModule(), alice), alice))).toBe('duplicate_signature');
  });

  it('refuses an svn below the signer floor (rollback), and applies each signer its own floor', () => {
    const old = signModule(makeModule({ svn: 1 }), alice);
    expect(codeOf(() => checkTrust(old, { trusted: [{ publicKey: alice.publicKey, minSvn: 2 }] }))).toBe('rollback');
    expect(checkTrust(old, { trusted: [{ publicKey: alice.publicKey, minSvn: 1 }] }).svn).toBe(1);
    const both = signModule(old, bob);
    const id = checkTrust(both, {
      trusted: [
        { publicKey: alice.publicKey, minSvn: 5 },
        { publicKey: bob.publicKey, minSvn: 0 },
      ],
    });
    expect(id.signer).toBe(signerId(bob.publicKey));
  });

  it('refuses garbage in the signature section (malformed_signature)', () => {
    const bad = concat(HEADER, encodeCustomSection('signature', Uint8Array.of(1, 1, 1, 5)), makeModule().subarray(8));
    expect(codeOf(() => verifyModule(bad, [alice.publicKey]))).toBe('malformed_signature');
    const v2 = concat(HEADER, encodeCustomSection('signature', Uint8Array.of(2, 1, 1, 0)), makeModule().subarray(8));
    expect(codeOf(() => signModule(v2, alice))).toBe('malformed_signature');
  });
});

describe('keys', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'attest-keys-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes JWK key files, private 0600 and public 0644, and reads them back', async () => {
    const keys = generateKeyPair();
    const { privateKeyPath, publicKeyPath } = await writeKeyPair(keys, { privateKeyPath: join(dir, 'release.key.json') });
    expect(publicKeyPath).toBe(join(dir, 'release.pub.json'));
    expect((await stat(privateKeyPath)).mode & 0o777).toBe(0o600);
    expect((await stat(publicKeyPath)).mode & 0o777).toBe(0o644);
    const jwk = JSON.parse(await readFile(privateKeyPath, 'utf8'));
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: signerId(keys.publicKey) });
    expect(JSON.parse(await readFile(publicKeyPath, 'utf8')).d).toBeUndefined();
    const back = await readPrivateKeyFile(privateKeyPath);
    expect(bytesToHex(back.secretKey)).toBe(bytesToHex(keys.secretKey));
    expect(bytesToHex(await readPublicKeyFile(publicKeyPath))).toBe(bytesToHex(keys.publicKey));
    await expect(writeKeyPair(keys, { privateKeyPath })).rejects.toMatchObject({ code: 'key_exists' });
  });

  it('refuses a private key file others can read (insecure_key_file)', async () => {
    const { privateKeyPath } = await writeKeyPair(generateKeyPair(), { privateKeyPath: join(dir, 'open.key.json') });
    await chmod(privateKeyPath, 0o644);
    await expect(readPrivateKeyFile(privateKeyPath)).rejects.toMatchObject({ code: 'insecure_key_file' });
    await expect(readPrivateKeyFile(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'key_unavailable' });
  });

  it('accepts public keys as raw, hex, base64url, JWK, JWK text and wasmsign2 raw; refuses garbage', async () => {
    const pk = alice.publicKey;
    const jwk = publicKeyToJwk(pk);
    for (const form of [pk, bytesToHex(pk), jwk.x, jwk, JSON.stringify(jwk), concat(Uint8Array.of(1), pk)]) {
      expect(bytesToHex(parsePublicKey(form))).toBe(bytesToHex(pk));
    }
    expect(codeOf(() => parsePublicKey('nope'))).toBe('invalid_key');
    expect(codeOf(() => parsePublicKey(new Uint8Array(31)))).toBe('invalid_key');
    expect(codeOf(() => parsePublicKey({ kty: 'OKP', crv: 'X25519', x: jwk.x } as never))).toBe('invalid_key');
    // A wasmsign2 raw secret key file is accepted for signing.
    const wasmsign2 = concat(Uint8Array.of(0x81), alice.secretKey, alice.publicKey);
    const file = join(dir, 'wasmsign2.key');
    await writeFile(file, wasmsign2, { mode: 0o600 });
    expect(bytesToHex((await readPrivateKeyFile(file)).publicKey)).toBe(bytesToHex(pk));
    // A private JWK whose x does not match d is refused.
    const other = publicKeyToJwk(bob.publicKey);
    expect(codeOf(() => parsePrivateKey({ ...other, d: jwk.x }))).toBe('invalid_key');
  });

  it('key files that are not regular files are refused without reading or blocking (/dev/zero, a FIFO, a directory)', async () => {
    const fifo = join(dir, 'key.fifo');
    execFileSync('mkfifo', [fifo]);
    await chmod(fifo, 0o600);
    for (const path of ['/dev/zero', fifo, dir]) {
      await expect(readPublicKeyFile(path)).rejects.toMatchObject({ code: 'invalid_key' });
    }
    await expect(readPrivateKeyFile(fifo)).rejects.toMatchObject({ code: 'invalid_key' });
  });

  it('writeKeyPair refuses the same path for both keys, and leaves no orphan private key when the public one cannot be written', async () => {
    const privateKeyPath = join(dir, 'same.key.json');
    await expect(writeKeyPair(generateKeyPair(), { privateKeyPath, publicKeyPath: privateKeyPath }, { overwrite: true })).rejects.toMatchObject({
      code: 'key_unavailable',
    });
    const orphan = join(dir, 'orphan.key.json');
    await writeFile(join(dir, 'orphan.pub.json'), 'taken');
    await expect(writeKeyPair(generateKeyPair(), { privateKeyPath: orphan })).rejects.toMatchObject({ code: 'key_exists' });
    await expect(stat(orphan)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writeKeyPair with overwrite replaces a key file but never writes through a symlink', async () => {
    const victim = join(dir, 'victim.txt');
    await writeFile(victim, 'keep me');
    const link = join(dir, 'link.key.json');
    await symlink(victim, link);
    await expect(writeKeyPair(generateKeyPair(), { privateKeyPath: link }, { overwrite: true })).rejects.toMatchObject({
      code: 'key_unavailable',
    });
    expect(await readFile(victim, 'utf8')).toBe('keep me');
  });
});

describe('hostile signature sections (fuzz)', () => {
  it('never throws anything but AttestationError, and never accepts, for random signature payloads', async () => {
    const fc = await import('fast-check');
    const content = makeModule().subarray(8);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (payload) => {
        const mod = concat(HEADER, encodeCustomSection('signature', Uint8Array.from([1, 1, 1, ...payload])), content);
        const code = codeOf(() => verifyModule(mod, [alice.publicKey]));
        const ok = code === 'no error' ? verifyModule(mod, [alice.publicKey]).length === 0 : code === 'malformed_signature';
        return ok;
      }),
      { numRuns: 2000 },
    );
  });
});
