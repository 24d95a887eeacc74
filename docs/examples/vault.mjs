// The key vault, end to end, as an application uses it. Run it from the repository root, after
// `npm install` (README.md, "Keys and sealed storage"):
//
//   node docs/examples/vault.mjs            # in a fresh temporary directory, removed at the end
//   node docs/examples/vault.mjs ./my-vault # in ./my-vault, kept: run it again and the keys are
//                                           # reopened, rotated once more
//
// The story, in two processes:
//   1. Sign the vault module with a release key (`enclave keygen`, `enclave sign`): key records are
//      sealed to that signer, so a later build signed by the same key opens them. Open a vault: the
//      vault enclave (the signer trusted), a FileStore for its sealed records, the software platform
//      (sealing roots and monotonic counters in its own directory). Create a symmetric key and an
//      Ed25519 key inside the enclave; encrypt a card number, sign a release. The application keeps
//      the ciphertext and the signature; the keys never leave the enclave.
//   2. A new process (this script again, with `--restart`): the vault reloads every record from the
//      store and the keys are back: the ciphertext decrypts, the signature verifies. Then the
//      platform's sealing root is rotated (`enclave keys rotate`, the CLI an operator uses), the
//      key is rotated (its record is now sealed under the new root), the old ciphertext is rewrapped
//      to the new version, and the old version is retired. The other key's record is moved to the
//      new root too (`resealStale`), so the old root can be revoked (`enclave keys revoke`: its
//      secret is destroyed) and a fresh vault still opens every key.
//
// stdout carries the story, one line per step (test/vault-example.test.ts reads it).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vault, FileStore, SoftwareAttestationProvider, EnclaveError } from 'enclave';

const SELF = fileURLToPath(import.meta.url);
// The `enclave` CLI of this package (what `npx enclave` runs).
const CLI = join(dirname(fileURLToPath(import.meta.resolve('enclave/package.json'))), 'dist', 'host', 'cli', 'main.js');
// The vault module shipped with the package.
const VAULT_MODULE = fileURLToPath(import.meta.resolve('enclave/modules/vault.wasm'));

const restart = process.argv[2] === '--restart';
const given = restart ? process.argv[3] : process.argv[2];
const temporary = given === undefined;
const dir = resolve(given ?? mkdtempSync(join(tmpdir(), 'enclave-vault-example-')));
const paths = {
  platform: join(dir, 'platform'),
  store: join(dir, 'store'),
  app: join(dir, 'app-data.json'),
  releaseKey: join(dir, 'release.key.json'),
  releasePub: join(dir, 'release.pub.json'),
  module: join(dir, 'vault.signed.wasm'),
};
const step = (line) => console.log(`[${restart ? 2 : 1}] ${line}`);
const enc = new TextEncoder();
const dec = new TextDecoder();
const hex = (b) => Buffer.from(b).toString('hex');
const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'));

/** The sealing root a stored record was sealed under: bytes 8..12 of the sealed blob (docs/SEALING.md). */
async function rootOf(store, name) {
  const blob = await store.get(`vault/${name}`);
  return new DataView(blob.bytes.buffer, blob.bytes.byteOffset).getUint32(8, true);
}

/** Runs the `enclave` CLI (`enclave keys …` on this example's platform directory); returns its stdout. */
function cli(...args) {
  const platform = args[0] === 'keys' ? ['--platform-dir', paths.platform] : [];
  const run = spawnSync(process.execPath, [CLI, ...args, ...platform], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`enclave ${args.join(' ')} failed (${run.status}): ${run.stderr}`);
  return run.stdout.trim();
}

async function openVault() {
  mkdirSync(paths.platform, { recursive: true, mode: 0o700 });
  // The platform directory holds the sealing roots and the counters: the same directory at every
  // start, or nothing opens (a copy of the store alone is useless, and an old copy is refused).
  const platform = new SoftwareAttestationProvider({ dir: paths.platform }).open();
  const store = new FileStore(paths.store);
  // Only a vault module signed by the release key loads, and key records are sealed to that signer.
  const trust = { trusted: [{ publicKey: JSON.parse(readFileSync(paths.releasePub, 'utf8')), minSvn: 1 }] };
  const vault = await Vault.open({ store, attestation: platform, module: paths.module, trust });
  // A record that does not open is never skipped silently.
  for (const { name, code } of vault.refused) step(`refused ${name}: ${code}`);
  return { vault, store };
}

async function first() {
  // Your release key signs the vault module (once per build; in CI, not here).
  mkdirSync(dir, { recursive: true });
  if (!existsSync(paths.releaseKey)) cli('keygen', '--out', paths.releaseKey, '--public-out', paths.releasePub);
  cli('sign', VAULT_MODULE, '--key', paths.releaseKey, '--out', paths.module);
  step('signed the vault module with the release key');
  const { vault, store } = await openVault();
  step(`vault opened in process ${process.pid}: ${(await vault.list()).length} keys, ${vault.refused.length} refused`);

  // Keys are made inside the enclave; a second run on a kept directory finds them there.
  const exists = (await vault.list()).includes('payments');
  const payments = exists ? await vault.key('payments') : await vault.create('payments', { type: 'symmetric' });
  const releases = exists ? await vault.key('releases') : await vault.create('releases', { type: 'ed25519' });
  step(`${exists ? 'reopened' : 'created'} payments (symmetric) and releases (ed25519); payments sealed under root ${await rootOf(store, 'payments')}`);

  const aad = enc.encode('customer:42');
  const ciphertext = await payments.encrypt(enc.encode('4111 1111 1111 1111'), aad);
  const signature = await releases.sign(enc.encode('release v1.0.0'));
  const publicKey = await releases.publicKey();
  const version = (await payments.describe()).latestVersion;
  step(`encrypted a card number: ${ciphertext.length}-byte ciphertext under payments v${version}`);
  step(`signed "release v1.0.0": public key ${hex(publicKey).slice(0, 16)}…`);

  // What the application keeps: the ciphertext, the signature. Never a key.
  writeFileSync(paths.app, JSON.stringify({ ciphertext: hex(ciphertext), version, signature: hex(signature), publicKey: hex(publicKey) }));
  await vault.close();
  await store.close();

  step('restarting in a new process');
  const child = spawnSync(process.execPath, [SELF, '--restart', dir], { stdio: 'inherit' });
  if (temporary) rmSync(dir, { recursive: true, force: true });
  if (child.status !== 0) throw new Error(`the restarted process failed (${child.status ?? child.signal})`);
  step('done');
}

async function second() {
  const app = JSON.parse(readFileSync(paths.app, 'utf8'));
  const { vault, store } = await openVault();
  step(`vault opened in process ${process.pid}: ${(await vault.list()).join(', ')}; ${vault.refused.length} refused`);

  const payments = await vault.key('payments');
  const releases = await vault.key('releases');
  const aad = enc.encode('customer:42');
  const ciphertext = unhex(app.ciphertext);
  step(`decrypted after the restart: ${dec.decode(await payments.decrypt(ciphertext, aad))}`);
  step(`signature verifies after the restart: ${await releases.verify(enc.encode('release v1.0.0'), unhex(app.signature))}`);
  try {
    await payments.decrypt(ciphertext, enc.encode('customer:43'));
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    step(`decrypt with another customer's aad: ${err.code}`);
  }

  // The operator rotates the platform's sealing root; the running vault sees it at its next seal.
  const rotated = cli('keys', 'rotate').split('\n')[0];
  step(`enclave keys rotate: ${rotated} (${JSON.parse(cli('keys', 'list', '--json')).roots.length} roots listed)`);

  // Rotating the key adds version 2 and stores its record again: sealed under the new root.
  const version = await payments.rotate();
  step(`payments rotated to v${version}; its record is now sealed under root ${await rootOf(store, 'payments')}`);

  // Move the old ciphertext forward without its plaintext leaving the enclave (a vault ciphertext
  // names its version: bytes 3..7), then retire the old version.
  const rewrapped = await payments.rewrap(ciphertext, aad);
  const now = new DataView(rewrapped.buffer, rewrapped.byteOffset).getUint32(3, true);
  step(`rewrapped the old ciphertext: v${app.version} -> v${now}, decrypts to ${dec.decode(await payments.decrypt(rewrapped, aad))}`);
  await payments.configure({ minDecryptionVersion: version });
  try {
    await payments.decrypt(ciphertext, aad);
    step(`the v${app.version} ciphertext still decrypts: unexpected`);
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    step(`the v${app.version} ciphertext after retiring v${app.version}: ${err.code}`);
  }

  // Every record still sealed under an old root is rewritten under the current one; then the old
  // roots can be revoked (crypto-shredded) without losing a key.
  // (Destroyed keys' tombstones move too.) Revoke only when nothing failed: a record left behind
  // never opens again.
  const { moved, failed } = await vault.resealStale();
  step(`moved the records still under an old root: ${moved.join(', ') || 'none'}`);
  if (failed.length > 0) throw new Error(`not moved: ${failed.map((f) => `${f.name} (${f.code})`).join(', ')}`);
  for (const root of JSON.parse(cli('keys', 'list', '--json')).roots) {
    if (root.state === 'active' && !root.current) step(`enclave keys revoke ${root.id} --yes: ${cli('keys', 'revoke', String(root.id), '--yes')}`);
  }
  await vault.close();
  await store.close();

  const { vault: fresh, store: freshStore } = await openVault();
  step(`a fresh vault after the revocation: ${(await fresh.list()).join(', ')}; ${fresh.refused.length} refused`);
  await fresh.close();
  await freshStore.close();
}

try {
  await (restart ? second() : first());
} catch (err) {
  console.error(err instanceof EnclaveError ? `${err.code}: ${err.message}` : err);
  process.exitCode = 1;
}
