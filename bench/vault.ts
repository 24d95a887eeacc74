/**
 * The key vault (host/vault/, enclave-modules/vault): each vault operation as an application calls
 * it, through the client and the enclave boundary, against node:crypto doing the same cryptography
 * on the same inputs in the same process, side by side in one run (issue 13, "Performance").
 *
 * - `vault …` (subject): `VaultKey` methods on a vault opened with `Vault.open` (in-process
 *   isolation, fuel metered, a FileStore and the software platform in a temporary directory): the
 *   client's checks, request packing, the copy in, the op (handle check, key lookup, the
 *   primitive in AssemblyScript, random nonce), the copy out, reply unpacking.
 * - `node:crypto …` (floor): the same primitive, native (OpenSSL), key already in memory:
 *   ChaCha20-Poly1305 (IETF, 12-byte nonce) with a fresh random nonce for encrypt; Ed25519 sign and
 *   verify with `KeyObject`s made once; HMAC-SHA-256. node:crypto has no XChaCha20-Poly1305 (the
 *   vault's AEAD, 24-byte nonce), so the floor of the AEAD groups is the IETF variant: the same
 *   cipher and MAC, one HChaCha20 block less per message.
 * - `@noble …` (peer; the "× @noble" column): @noble/ciphers `xchacha20poly1305` (exactly the
 *   vault's AEAD, in portable JS) for the AEAD groups, @noble/curves ed25519 and @noble/hashes hmac
 *   elsewhere: a second floor for what node:crypto does not have.
 * - `datakey`: the vault makes 32 random bytes and encrypts them under the key (the plaintext key
 *   returned too); the floor is `randomBytes(32)` + ChaCha20-Poly1305 of them.
 * - `mac`, `verify_mac`: HMAC-SHA-256 under the key's MAC subkey (derived once here; the vault
 *   derives it per call), `verify_mac` with a constant-time comparison. `rewrap`: open + seal.
 *   `derive`: HKDF-SHA-256 from the symmetric material, and X25519 with a peer key + HKDF.
 *   `public_key`: Ed25519 from the seed. A batch: `encryptBatch` of 256 × 64 B in one call
 *   against 256 seals (per item).
 * - `export_sealed`: the key's record sealed by the platform; the floor is an AEAD seal of the
 *   32-byte material alone (fair: the same kind of work on the least data; the record adds its
 *   metadata and the platform its key derivation). `import_sealed` (unseal, then stored and
 *   committed as a create) against an AEAD open of that material + `FileStore.put` of a record of
 *   the same size.
 * - `rotate + persist`: `key.rotate()`, the whole durable change: the enclave's rotate (new
 *   material, the record sealed), `FileStore.put` (temp file, fsync, rename, fsync the dir), then
 *   `commit` (the platform's monotonic counter advanced and fsynced). The floor is the
 *   `FileStore.put` alone of a record of the same size: what any durable store pays. Keys are
 *   taken from a pool made at setup (a key holds at most 64 live versions); once the pool is used
 *   up, a key is retired and trimmed inside the timed body (two more durable changes, noted).
 *
 * Every vault output is checked against node:crypto or @noble before anything is timed.
 *
 *   npm run build && npm run bench -- vault [--quick]      (or: node dist/bench/vault.js)
 */
import crypto from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { equalBytes } from '@noble/ciphers/utils.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { FileStore, generateKeyPair, signModule, SoftwareAttestationProvider, Vault, type VaultKey } from '../host/index.js';
import { defineSuite, formatBytes, isMain, runStandalone, type Case } from './_harness.js';

/** Plaintext sizes of the AEAD groups. */
const SIZES = [64, 65_536] as const;
/** Keys rotated by the `rotate + persist` case before one has to be trimmed. */
const ROTATION_POOL = 24;
/** Rotations per key of the pool (a key holds at most 64 live versions). */
const ROTATIONS_PER_KEY = 60;
/** Keys the `import_sealed` case may create in one run (the vault holds at most 1024 live keys). */
const MAX_IMPORTS = 900;

const rand = (n: number): Uint8Array => new Uint8Array(crypto.randomBytes(n));
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));

function nodeSeal(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const ct = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([nonce, ct, cipher.getAuthTag()]);
}

function nodeOpen(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  const decipher = crypto.createDecipheriv('chacha20-poly1305', key, sealed.subarray(0, 12), { authTagLength: 16 });
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const pt = decipher.update(sealed.subarray(12, sealed.length - 16));
  decipher.final();
  return pt;
}

function nobleSeal(key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const nonce = rand(24);
  const sealed = xchacha20poly1305(key, nonce).encrypt(plaintext);
  const out = new Uint8Array(24 + sealed.length);
  out.set(nonce);
  out.set(sealed, 24);
  return out;
}

function nobleOpen(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, sealed.subarray(0, 24)).decrypt(sealed.subarray(24));
}

/**
 * HKDF-SHA-256 (RFC 5869) for an output of at most 32 bytes with node:crypto's HMAC: extract, then
 * one expand block. The least node:crypto work for the vault's derive: `crypto.hkdfSync` computes
 * the same bytes (checked) but sets up an OpenSSL KDF context per call, slower than the two HMACs.
 */
function nodeHkdf32(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  const prk = crypto.createHmac('sha256', salt).update(ikm).digest();
  return crypto.createHmac('sha256', prk).update(info).update(ONE).digest().subarray(0, length);
}
const ONE = new Uint8Array([1]);

/** Operations per timed invocation: enough to amortise the harness and the async call. */
const batchFor = (size: number): number => (size <= 64 ? 32 : 4);

export const suite = defineSuite({
  name: 'vault',
  description: 'the key vault through the enclave boundary (Vault, VaultKey) against node:crypto (floor) and @noble (peer) on the same inputs; rotate + persist against the store put alone',
  maxTime: 1,
  quickMaxTime: 0.25,
  peerLabel: '@noble',
  async setup(ctx) {
    const wasm = join(ctx.root, 'enclave-modules', 'vault', 'build', 'vault.wasm');
    if (!existsSync(wasm)) throw new Error(`${wasm} is missing: run \`npm run build\` first`);
    const dir = mkdtempSync(join(tmpdir(), 'enclave-bench-vault-'));
    const platform = new SoftwareAttestationProvider({ dir: join(dir, 'platform') }).open();
    const store = new FileStore(join(dir, 'store'));
    const floorStore = new FileStore(join(dir, 'floor-store'));
    // Signed by a throwaway release key and trusted, as deployed: records sealed to the signer.
    const release = generateKeyPair();
    const module = signModule(new Uint8Array(readFileSync(wasm)), release);
    const vault = await Vault.open({ store, attestation: platform, module, trust: { trusted: [{ publicKey: release.publicKey }] } });
    const dispose = async (): Promise<void> => {
      await vault.close();
      await store.close();
      await floorStore.close();
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      const notes: string[] = [
        'node:crypto has no XChaCha20-Poly1305: its AEAD floor is ChaCha20-Poly1305 (12-byte nonce); @noble/ciphers `xchacha20poly1305` is the exact primitive (the × @noble column).',
        'Vault calls are in-process (`isolation: "in-process"`, fuel metered); the keys stay in the enclave, so the floors hold theirs in the host: what the boundary costs is the ratio.',
      ];
      // One exportable symmetric key and one exportable Ed25519 key: their material is exported
      // once, so the floors compute with exactly the vault's key (and every output is checked).
      const sym = await vault.create('bench-sym', { type: 'symmetric', exportable: true });
      const signer = await vault.create('bench-ed', { type: 'ed25519', exportable: true });
      const symKey = await sym.exportKey();
      const seed = await signer.exportKey();
      const publicKey = await signer.publicKey();
      if (!same(ed25519.getPublicKey(seed), publicKey)) throw new Error('vault: the Ed25519 public key differs from @noble\'s for its seed');
      const edPrivate = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
      const edPublic = crypto.createPublicKey(edPrivate);

      const cases: Case[] = [];
      for (const size of SIZES) {
        const label = formatBytes(size);
        const plaintext = rand(size);
        const batch = batchFor(size);
        // Checked before timing: the vault's ciphertext opens (and the floors' open themselves).
        const vaultCt = await sym.encrypt(plaintext);
        if (!same(await sym.decrypt(vaultCt), plaintext)) throw new Error(`vault: decrypt(encrypt(${label})) differs`);
        const nodeCt = nodeSeal(symKey, plaintext);
        const nobleCt = nobleSeal(symKey, plaintext);
        if (!same(nodeOpen(symKey, nodeCt), plaintext) || !same(nobleOpen(symKey, nobleCt), plaintext)) throw new Error('floor AEAD round trip failed');
        const enc = `encrypt ${label}`;
        const dec = `decrypt ${label}`;
        cases.push(
          { name: `node:crypto chacha20-poly1305 seal ${label}`, group: enc, role: 'floor', batch, fn: () => { for (let i = 0; i < batch; i++) nodeSeal(symKey, plaintext); } },
          { name: `@noble xchacha20-poly1305 seal ${label}`, group: enc, role: 'peer', batch, fn: () => { for (let i = 0; i < batch; i++) nobleSeal(symKey, plaintext); } },
          { name: `vault encrypt ${label}`, group: enc, peer: `@noble xchacha20-poly1305 seal ${label}`, batch, fn: async () => { for (let i = 0; i < batch; i++) await sym.encrypt(plaintext); } },
          { name: `node:crypto chacha20-poly1305 open ${label}`, group: dec, role: 'floor', batch, fn: () => { for (let i = 0; i < batch; i++) nodeOpen(symKey, nodeCt); } },
          { name: `@noble xchacha20-poly1305 open ${label}`, group: dec, role: 'peer', batch, fn: () => { for (let i = 0; i < batch; i++) nobleOpen(symKey, nobleCt); } },
          { name: `vault decrypt ${label}`, group: dec, peer: `@noble xchacha20-poly1305 open ${label}`, batch, fn: async () => { for (let i = 0; i < batch; i++) await sym.decrypt(vaultCt); } },
        );
      }

      const message = rand(64);
      const vaultSig = await signer.sign(message);
      const rawSig = vaultSig.subarray(4);
      if (!same(rawSig, crypto.sign(null, message, edPrivate)) || !same(rawSig, ed25519.sign(message, seed))) throw new Error('vault: the Ed25519 signature differs from node:crypto\'s');
      if (!(await signer.verify(message, vaultSig)) || !crypto.verify(null, message, edPublic, rawSig)) throw new Error('vault: the signature does not verify');
      const OPS = 8;
      cases.push(
        { name: 'node:crypto ed25519 sign 64 B', group: 'ed25519 sign', role: 'floor', batch: OPS, fn: () => { for (let i = 0; i < OPS; i++) crypto.sign(null, message, edPrivate); } },
        { name: '@noble ed25519 sign 64 B', group: 'ed25519 sign', role: 'peer', batch: OPS, fn: () => { for (let i = 0; i < OPS; i++) ed25519.sign(message, seed); } },
        { name: 'vault sign 64 B', group: 'ed25519 sign', peer: '@noble ed25519 sign 64 B', batch: OPS, fn: async () => { for (let i = 0; i < OPS; i++) await signer.sign(message); } },
        { name: 'node:crypto ed25519 verify 64 B', group: 'ed25519 verify', role: 'floor', batch: OPS, fn: () => { for (let i = 0; i < OPS; i++) crypto.verify(null, message, edPublic, rawSig); } },
        { name: '@noble ed25519 verify 64 B', group: 'ed25519 verify', role: 'peer', batch: OPS, fn: () => { for (let i = 0; i < OPS; i++) ed25519.verify(rawSig, message, publicKey); } },
        { name: 'vault verify 64 B', group: 'ed25519 verify', peer: '@noble ed25519 verify 64 B', batch: OPS, fn: async () => { for (let i = 0; i < OPS; i++) await signer.verify(message, vaultSig); } },
      );

      // The vault's MAC key is a subkey of the key's material (VAULT.md §6.3: HKDF-SHA-256, empty
      // salt, info "enclave-vault/mac"); derived here once, so the floors compute exactly the
      // vault's tag (checked) with the least work: HMAC-SHA-256 under a key already in memory (the
      // vault derives the subkey on every call: part of what the ratio shows).
      const macKey = new Uint8Array(crypto.hkdfSync('sha256', symKey, new Uint8Array(0), 'enclave-vault/mac', 32));
      const tag = await sym.mac(message);
      const rawTag = tag.subarray(4);
      if (tag.length !== 36 || !(await sym.verifyMac(message, tag))) throw new Error('vault: mac does not verify');
      if (!same(rawTag, crypto.createHmac('sha256', macKey).update(message).digest()) || !same(rawTag, hmac(sha256, macKey, message))) throw new Error('vault: the mac differs from HMAC-SHA-256 under the HKDF subkey');
      const M = 32;
      cases.push(
        { name: 'node:crypto hmac-sha256 64 B', group: 'hmac-sha256 64 B', role: 'floor', batch: M, fn: () => { for (let i = 0; i < M; i++) crypto.createHmac('sha256', macKey).update(message).digest(); } },
        { name: '@noble hmac-sha256 64 B', group: 'hmac-sha256 64 B', role: 'peer', batch: M, fn: () => { for (let i = 0; i < M; i++) hmac(sha256, macKey, message); } },
        { name: 'vault mac 64 B', group: 'hmac-sha256 64 B', peer: '@noble hmac-sha256 64 B', batch: M, fn: async () => { for (let i = 0; i < M; i++) await sym.mac(message); } },
        { name: 'node:crypto hmac-sha256 + timingSafeEqual 64 B', group: 'verify_mac 64 B', role: 'floor', batch: M, fn: () => { for (let i = 0; i < M; i++) crypto.timingSafeEqual(crypto.createHmac('sha256', macKey).update(message).digest(), rawTag); } },
        { name: '@noble hmac-sha256 + equalBytes 64 B', group: 'verify_mac 64 B', role: 'peer', batch: M, fn: () => { for (let i = 0; i < M; i++) equalBytes(hmac(sha256, macKey, message), rawTag); } },
        { name: 'vault verifyMac 64 B', group: 'verify_mac 64 B', peer: '@noble hmac-sha256 + equalBytes 64 B', batch: M, fn: async () => { for (let i = 0; i < M; i++) await sym.verifyMac(message, tag); } },
      );

      const dk = await sym.datakey({ plaintext: true });
      if (!same(await sym.decrypt(dk.ciphertext), dk.plaintext!)) throw new Error('vault: the datakey does not unwrap to its plaintext');
      cases.push(
        { name: 'node:crypto randomBytes(32) + seal', group: 'datakey', role: 'floor', batch: M, fn: () => { for (let i = 0; i < M; i++) nodeSeal(symKey, crypto.randomBytes(32)); } },
        { name: 'vault datakey', group: 'datakey', batch: M, fn: async () => { for (let i = 0; i < M; i++) await sym.datakey({ plaintext: true }); } },
      );

      // rewrap 64 B: open under the ciphertext's version, seal under the latest (here the same
      // version: the work is the same). Floors: open + seal with the key in memory.
      {
        const plaintext = rand(64);
        const vaultCt = await sym.encrypt(plaintext);
        if (!same(await sym.decrypt(await sym.rewrap(vaultCt)), plaintext)) throw new Error('vault: rewrap does not decrypt to the plaintext');
        const nodeCt = nodeSeal(symKey, plaintext);
        const nobleCt = nobleSeal(symKey, plaintext);
        cases.push(
          { name: 'node:crypto chacha20-poly1305 open + seal 64 B', group: 'rewrap 64 B', role: 'floor', batch: M, fn: () => { for (let i = 0; i < M; i++) nodeSeal(symKey, nodeOpen(symKey, nodeCt)); } },
          { name: '@noble xchacha20-poly1305 open + seal 64 B', group: 'rewrap 64 B', role: 'peer', batch: M, fn: () => { for (let i = 0; i < M; i++) nobleSeal(symKey, nobleOpen(symKey, nobleCt)); } },
          { name: 'vault rewrap 64 B', group: 'rewrap 64 B', peer: '@noble xchacha20-poly1305 open + seal 64 B', batch: M, fn: async () => { for (let i = 0; i < M; i++) await sym.rewrap(vaultCt); } },
        );
      }

      // A batch: 256 encrypts of 64 B in one crossing against 256 seals (per item in the table).
      {
        const B = 256;
        const plaintext = rand(64);
        const items = Array.from({ length: B }, () => ({ plaintext }));
        const out = await sym.encryptBatch(items);
        if (out.length !== B || !out.every((r) => r.ok)) throw new Error('vault: encryptBatch of 256 × 64 B did not encrypt every item');
        const first = out[0]!;
        if (!first.ok || !same(await sym.decrypt(first.value), plaintext)) throw new Error('vault: a batch ciphertext does not decrypt');
        cases.push(
          { name: 'node:crypto chacha20-poly1305 seal 256 × 64 B', group: 'encrypt batch 256 × 64 B', role: 'floor', batch: B, fn: () => { for (let i = 0; i < B; i++) nodeSeal(symKey, plaintext); } },
          { name: '@noble xchacha20-poly1305 seal 256 × 64 B', group: 'encrypt batch 256 × 64 B', role: 'peer', batch: B, fn: () => { for (let i = 0; i < B; i++) nobleSeal(symKey, plaintext); } },
          { name: 'vault encryptBatch 256 × 64 B', group: 'encrypt batch 256 × 64 B', peer: '@noble xchacha20-poly1305 seal 256 × 64 B', batch: B, fn: async () => { await sym.encryptBatch(items); } },
        );
      }

      // derive: HKDF-SHA-256 (salt "enclave-vault/derive", info = context, 32 bytes; VAULT.md §6.4),
      // from the symmetric key's material, and from X25519(the vault key, a peer's public key).
      const SALT = new TextEncoder().encode('enclave-vault/derive');
      const context = new TextEncoder().encode('session:7');
      {
        const derived = await sym.derive(context);
        const hkdfSync = new Uint8Array(crypto.hkdfSync('sha256', symKey, SALT, context, 32));
        if (!same(derived.key, nodeHkdf32(symKey, SALT, context, 32)) || !same(derived.key, hkdfSync) || !same(derived.key, hkdf(sha256, symKey, SALT, context, 32))) throw new Error('vault: derive differs from HKDF-SHA-256');
        cases.push(
          { name: 'node:crypto hkdf-sha256 32 B (two HMACs)', group: 'derive (HKDF-SHA-256)', role: 'floor', batch: M, fn: () => { for (let i = 0; i < M; i++) nodeHkdf32(symKey, SALT, context, 32); } },
          { name: 'node:crypto hkdfSync 32 B', group: 'derive (HKDF-SHA-256)', role: 'reference', batch: M, fn: () => { for (let i = 0; i < M; i++) crypto.hkdfSync('sha256', symKey, SALT, context, 32); } },
          { name: '@noble hkdf-sha256 32 B', group: 'derive (HKDF-SHA-256)', role: 'peer', batch: M, fn: () => { for (let i = 0; i < M; i++) hkdf(sha256, symKey, SALT, context, 32); } },
          { name: 'vault derive (symmetric)', group: 'derive (HKDF-SHA-256)', peer: '@noble hkdf-sha256 32 B', batch: M, fn: async () => { for (let i = 0; i < M; i++) await sym.derive(context); } },
        );
      }
      {
        const agreer = await vault.create('bench-x25519', { type: 'x25519', exportable: true });
        const secret = await agreer.exportKey();
        const xPrivate = crypto.createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), secret]), format: 'der', type: 'pkcs8' });
        const peerPair = crypto.generateKeyPairSync('x25519');
        const peerPublic = new Uint8Array(peerPair.publicKey.export({ format: 'der', type: 'spki' }).subarray(12));
        if (!same(await agreer.publicKey(), x25519.getPublicKey(secret))) throw new Error('vault: the X25519 public key differs from @noble\'s');
        const nodeDerive = (): Uint8Array => nodeHkdf32(crypto.diffieHellman({ privateKey: xPrivate, publicKey: peerPair.publicKey }), SALT, context, 32);
        const nobleDerive = (): Uint8Array => hkdf(sha256, x25519.getSharedSecret(secret, peerPublic), SALT, context, 32);
        const derived = await agreer.derive(context, { peerPublicKey: peerPublic });
        if (!same(derived.key, nodeDerive()) || !same(derived.key, nobleDerive())) throw new Error('vault: x25519 derive differs from HKDF(X25519)');
        const X = 8;
        cases.push(
          { name: 'node:crypto x25519 + hkdf-sha256', group: 'derive (X25519 + HKDF)', role: 'floor', batch: X, fn: () => { for (let i = 0; i < X; i++) nodeDerive(); } },
          { name: '@noble x25519 + hkdf-sha256', group: 'derive (X25519 + HKDF)', role: 'peer', batch: X, fn: () => { for (let i = 0; i < X; i++) nobleDerive(); } },
          { name: 'vault derive (x25519, peer key)', group: 'derive (X25519 + HKDF)', peer: '@noble x25519 + hkdf-sha256', batch: X, fn: async () => { for (let i = 0; i < X; i++) await agreer.derive(context, { peerPublicKey: peerPublic }); } },
        );
      }

      // public_key: the enclave computes it from the seed on every call (no cache for this op);
      // node:crypto's floor is the same scalar multiplication, done while loading the seed as a JWK
      // (OpenSSL ignores `x` of a private JWK and computes it; a PKCS#8 DER load costs ~10× more in
      // OpenSSL 3's decoders, which would flatter the vault).
      {
        const d = Buffer.from(seed).toString('base64url');
        const nodePublic = (): Uint8Array => new Uint8Array(Buffer.from(crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d, x: '' }, format: 'jwk' }).export({ format: 'jwk' }).x!, 'base64url'));
        if (!same(nodePublic(), publicKey)) throw new Error('vault: the Ed25519 public key differs from node:crypto\'s');
        cases.push(
          { name: 'node:crypto ed25519 public key from seed', group: 'public_key (Ed25519)', role: 'floor', batch: OPS, fn: () => { for (let i = 0; i < OPS; i++) nodePublic(); } },
          { name: '@noble ed25519 getPublicKey', group: 'public_key (Ed25519)', role: 'peer', batch: OPS, fn: () => { for (let i = 0; i < OPS; i++) ed25519.getPublicKey(seed); } },
          { name: 'vault publicKey', group: 'public_key (Ed25519)', peer: '@noble ed25519 getPublicKey', batch: OPS, fn: async () => { for (let i = 0; i < OPS; i++) await signer.publicKey(); } },
        );
      }

      // export_sealed: the enclave encodes the key's whole record and seals it (the platform's
      // sealing key for the policy, AEAD); the floor is an AEAD seal of the 32-byte material alone.
      // import_sealed: unseal, decode, then stored and committed as a create is; its floor is an
      // AEAD open of that material plus a FileStore.put of a record of the same size (fsync).
      const exported = await sym.exportSealed();
      const imports: string[] = [];
      const firstImport = await vault.importSealed(exported, 'bench-imp-0');
      imports.push(firstImport.name);
      if (!same(await firstImport.exportKey(), symKey)) throw new Error('vault: the imported key holds other material');
      const importRecord = (await store.get('vault/bench-imp-0'))!.bytes;
      const sealedMaterial = nodeSeal(symKey, symKey);
      let importFloorVersion = 0;
      cases.push(
        { name: 'node:crypto chacha20-poly1305 seal 32 B', group: 'export_sealed', role: 'floor', batch: M, fn: () => { for (let i = 0; i < M; i++) nodeSeal(symKey, symKey); } },
        { name: 'vault exportSealed', group: 'export_sealed', batch: M, fn: async () => { for (let i = 0; i < M; i++) await sym.exportSealed(); } },
        {
          name: `node:crypto open 32 B + FileStore.put ${importRecord.length} B (fsync)`,
          group: 'import_sealed',
          role: 'floor',
          batch: 1,
          fn: async () => {
            nodeOpen(symKey, sealedMaterial);
            importFloorVersion = (await floorStore.put('vault/import-floor', importRecord, { expectedVersion: importFloorVersion })).version;
          },
        },
        {
          name: 'vault importSealed (op + put + commit)',
          group: 'import_sealed',
          batch: 1,
          fn: async () => {
            // Each import is a new key (a new name): a live key and a counter each, far under the
            // vault's 1024 live keys at this suite's times; refuse rather than hit that bound.
            if (imports.length >= MAX_IMPORTS) throw new Error(`vault importSealed: more than ${MAX_IMPORTS} imports in one run (lower --max-time)`);
            imports.push((await vault.importSealed(exported, `bench-imp-${imports.length}`)).name);
          },
        },
      );

      // rotate + persist: a pool of keys, each rotated up to ROTATIONS_PER_KEY times.
      const pool: VaultKey[] = [];
      for (let i = 0; i < ROTATION_POOL; i++) pool.push(await vault.create(`bench-rot-${i}`, { type: 'symmetric' }));
      const record = (await store.get('vault/bench-rot-0'))!.bytes;
      let turn = 0;
      let floorVersion = 0;
      const rotations = new Array<number>(ROTATION_POOL).fill(1);
      cases.push(
        {
          name: `FileStore.put ${record.length} B (fsync)`,
          group: 'rotate + persist',
          role: 'floor',
          batch: 1,
          fn: async () => {
            floorVersion = (await floorStore.put('vault/floor', record, { expectedVersion: floorVersion })).version;
          },
        },
        {
          name: 'vault rotate (op + put + commit)',
          group: 'rotate + persist',
          batch: 1,
          fn: async () => {
            const i = turn++ % ROTATION_POOL;
            const key = pool[i]!;
            if (rotations[i]! >= ROTATIONS_PER_KEY) {
              // Retire everything but the latest version and erase it: room for more rotations.
              await key.configure({ minDecryptionVersion: rotations[i]! });
              await key.trim(rotations[i]!);
              rotations[i] = 1;
            }
            await key.rotate();
            rotations[i] = rotations[i]! + 1;
          },
        },
      );
      notes.push(
        `rotate + persist: ${ROTATION_POOL} keys rotated in turn; once each holds ${ROTATIONS_PER_KEY} versions, the next rotation of it first retires and trims the old ones (two more durable changes inside the timed body, one rotation in ${ROTATIONS_PER_KEY} at most). Store and counters in ${tmpdir()}, the same disk as the floor's store.`,
        'vault mac, verify_mac: the tag is HMAC-SHA-256 under a subkey HKDF-derived from the key version (VAULT.md §6.3), derived on every call by the vault and once here: the floors compute exactly the vault\'s tag (checked) under the subkey held in memory.',
        'export_sealed: the floor is an AEAD seal (ChaCha20-Poly1305) of the 32-byte key material alone, a fair floor: the vault seals the whole record (material and metadata) under the platform\'s sealing key. import_sealed: every import is a new key (bench-imp-N), stored and committed; the floor is an AEAD open of that material + FileStore.put (fsync) of a record of the same size.',
        'public_key: the vault computes the Ed25519 public key from the seed on each call; node:crypto\'s floor loads the seed as a JWK (OpenSSL computes the public key) and exports it (a PKCS#8 DER load would cost ~10× more in OpenSSL 3\'s decoders).',
      );
      return { cases, notes, dispose };
    } catch (err) {
      await dispose();
      throw err;
    }
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
