// A vault writer for test/vault-crash.test.ts: rotates one key for ever, printing each rotation
// once it is acknowledged, until the test kills it with SIGKILL.
// Plain JavaScript: the vault client comes from dist/ (built by test/global-setup.ts).
//
//   node vault-rotator.mjs <platform dir> <store dir>
//     opens the vault (the package's vault.wasm, measurement policy), creates the symmetric key `k`
//     unless the store has it, prints `ready`, then for ever: rotate, encrypt "v<version>" under
//     the new version and print `a <version> <ciphertext hex>` (the rotation was acknowledged:
//     stored and committed). Before the key would hold 64 live versions it retires and trims all
//     but the last 8, printing `t <min available>` before it starts (the trim may land even if the
//     kill comes before its acknowledgement). `err <code> <message>` and exit 1 on any failure.
import { FileStore, SoftwareAttestationProvider, Vault } from '../../dist/host/index.js';

const [platformDir, storeDir] = process.argv.slice(2);
try {
  const vault = await Vault.open({ store: new FileStore(storeDir), attestation: new SoftwareAttestationProvider({ dir: platformDir }).open() });
  if (vault.refused.length > 0) throw Object.assign(new Error(`refused at open: ${JSON.stringify(vault.refused)}`), { code: 'refused' });
  const key = (await vault.list()).includes('k') ? await vault.key('k') : await vault.create('k', { type: 'symmetric', sealPolicy: 'measurement' });
  process.stdout.write('ready\n');
  for (;;) {
    const meta = await key.describe();
    if (meta.latestVersion - meta.minAvailableVersion + 1 >= 56) {
      const keep = meta.latestVersion - 7;
      process.stdout.write(`t ${keep}\n`);
      await key.configure({ minDecryptionVersion: keep });
      await key.trim(keep);
    }
    const version = await key.rotate();
    const ct = await key.encrypt(new TextEncoder().encode(`v${version}`));
    process.stdout.write(`a ${version} ${Buffer.from(ct).toString('hex')}\n`);
  }
} catch (err) {
  process.stdout.write(`err ${err?.code ?? 'none'} ${String(err?.message ?? err).replace(/\s+/g, ' ')}\n`);
  process.exit(1);
}
