/** `enclave keygen`: an Ed25519 key pair for signing modules. */
import { Command } from 'commander';
import { generateKeyPair, signerId, writeKeyPair } from '../../../attest/index.js';
import { handleError } from '../handle-error.js';

export const keygenCommand = new Command('keygen')
  .description('generate an Ed25519 key pair for signing enclave modules (private key file mode 0600)')
  .option('--out <file>', 'private key file', 'enclave-signing.key.json')
  .option('--public-out <file>', 'public key file (default: <out> with .pub.json)')
  .option('--force', 'overwrite existing key files')
  .option('--json', 'print the result as JSON')
  .action(async (opts) => {
    try {
      const keys = generateKeyPair();
      let paths: { privateKeyPath: string; publicKeyPath: string };
      try {
        paths = await writeKeyPair(
          keys,
          { privateKeyPath: opts.out, ...(opts.publicOut ? { publicKeyPath: opts.publicOut } : {}) },
          { overwrite: opts.force === true },
        );
      } finally {
        keys.secretKey.fill(0); // the seed lives in the file now; not in this process
      }
      const signer = signerId(keys.publicKey);
      if (opts.json) process.stdout.write(`${JSON.stringify({ signer, ...paths })}\n`);
      else process.stdout.write(`private key  ${paths.privateKeyPath} (mode 0600)\npublic key   ${paths.publicKeyPath}\nsigner       ${signer}\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
