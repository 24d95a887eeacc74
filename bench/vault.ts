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
import { ed25519 } from '@noble/curves/ed25519.js';
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

      // The vault's mac key is a subkey of the key's material (HKDF), so its tag cannot be checked
      // against an HMAC under the raw material: its own verify_mac is the check, and the floors
      // compute HMAC-SHA-256 under a 32-byte key of the same length over the same data.
      const tag = await sym.mac(message);
      if (tag.length !== 36 || !(await sym.verifyMac(message, tag))) throw new Error('vault: mac does not verify');
      const M = 32;
      cases.push(
        { name: 'node:crypto hmac-sha256 64 B', group: 'hmac-sha256 64 B', role: 'floor', batch: M, fn: () => { for (let i = 0; i < M; i++) crypto.createHmac('sha256', symKey).update(message).digest(); } },
        { name: '@noble hmac-sha256 64 B', group: 'hmac-sha256 64 B', role: 'peer', batch: M, fn: () => { for (let i = 0; i < M; i++) hmac(sha256, symKey, message); } },
        { name: 'vault mac 64 B', group: 'hmac-sha256 64 B', peer: '@noble hmac-sha256 64 B', batch: M, fn: async () => { for (let i = 0; i < M; i++) await sym.mac(message); } },
      );

      const dk = await sym.datakey({ plaintext: true });
      if (!same(await sym.decrypt(dk.ciphertext), dk.plaintext!)) throw new Error('vault: the datakey does not unwrap to its plaintext');
      cases.push(
        { name: 'node:crypto randomBytes(32) + seal', group: 'datakey', role: 'floor', batch: M, fn: () => { for (let i = 0; i < M; i++) nodeSeal(symKey, crypto.randomBytes(32)); } },
        { name: 'vault datakey', group: 'datakey', batch: M, fn: async () => { for (let i = 0; i < M; i++) await sym.datakey({ plaintext: true }); } },
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
        'vault mac: the tag is HMAC-SHA-256 under a subkey HKDF-derived from the key version (enclave-modules/vault/crypto-ops.ts); the floors compute HMAC-SHA-256 under a 32-byte key over the same 64 bytes.',
      );
      return { cases, notes, dispose };
    } catch (err) {
      await dispose();
      throw err;
    }
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
