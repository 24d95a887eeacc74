// A process that makes keys in the vault and exports them sealed, for test/vault-acceptance.test.ts
// (the "done when": a key made and exported sealed in one process is used in another).
// Plain JavaScript: the vault client comes from dist/ (built by test/global-setup.ts).
//
//   node vault-process.mjs <json>
//     json: {platform, store, module, signer (hex public key), out}
//     opens a vault on the FileStore `store` and the platform directory `platform`, with `module`
//     trusted under `signer`; creates `release` (ed25519, signer policy) and `pinned` (symmetric,
//     measurement policy); signs and encrypts MESSAGE; exports both sealed (each under its own
//     policy); writes {pid, publicKey, signature, ciphertext, exportRelease, exportPinned} (hex) to
//     `out`, closes everything and exits 0 (1 with the error on stderr).
import { writeFileSync } from 'node:fs';
import { FileStore, SoftwareAttestationProvider, Vault } from '../../dist/host/index.js';

export const MESSAGE = 'pay 10 to alice';

const hex = (b) => Buffer.from(b).toString('hex');

async function main(json) {
  const o = JSON.parse(json);
  const platform = new SoftwareAttestationProvider({ dir: o.platform }).open();
  const store = new FileStore(o.store);
  const trust = { trusted: [{ publicKey: new Uint8Array(Buffer.from(o.signer, 'hex')) }] };
  const vault = await Vault.open({ store, attestation: platform, module: o.module, trust });
  const release = await vault.create('release', { type: 'ed25519' });
  const pinned = await vault.create('pinned', { type: 'symmetric', sealPolicy: 'measurement' });
  const message = new TextEncoder().encode(MESSAGE);
  const out = {
    pid: process.pid,
    publicKey: hex(await release.publicKey()),
    signature: hex(await release.sign(message)),
    ciphertext: hex(await pinned.encrypt(message)),
    exportRelease: hex(await release.exportSealed()),
    exportPinned: hex(await pinned.exportSealed()),
  };
  await vault.close();
  await store.close();
  writeFileSync(o.out, JSON.stringify(out));
}

main(process.argv[2]).catch((err) => {
  process.stderr.write(`${err?.code ?? 'error'}: ${err?.stack ?? err}\n`);
  process.exit(1);
});
