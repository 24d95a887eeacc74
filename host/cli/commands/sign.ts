/** `enclave sign <module> --key <file>`: add an Ed25519 signature (tool-conventions Signatures.md). */
import { randomBytes } from 'node:crypto';
import { rename, unlink, writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { readPrivateKeyFile, signerId, signModule } from '../../../attest/index.js';
import { UsageError } from '../../../core/index.js';
import { readModuleBytes } from '../../../runtime/index.js';
import { handleError } from '../handle-error.js';

export const signCommand = new Command('sign')
  .description('sign a module with an Ed25519 key; earlier signatures stay valid; the measurement does not change')
  .argument('<module>', 'path to the .wasm module')
  .requiredOption('--key <file>', 'private key file from `enclave keygen`')
  .option('--out <file>', 'where to write the signed module (default: replace the input)')
  .option('--key-id <id>', 'key id stored with the signature (a hint for verifiers)')
  .option('--json', 'print the result as JSON')
  .action(async (module: string, opts) => {
    try {
      const bytes = await readModuleBytes(module);
      const keys = await readPrivateKeyFile(opts.key);
      let signed: Uint8Array;
      try {
        signed = signModule(bytes, keys, opts.keyId ? { keyId: new TextEncoder().encode(opts.keyId) } : {});
      } finally {
        keys.secretKey.fill(0); // the seed is not needed past this point
      }
      const out: string = opts.out ?? module;
      // Write then rename, so a failure never leaves a half-written module behind. The temp name is
      // unguessable and created exclusively ('wx'), so a file or symlink planted there is never followed.
      const tmp = `${out}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(tmp, signed, { flag: 'wx' });
        await rename(tmp, out);
      } catch (err) {
        await unlink(tmp).catch(() => {});
        throw new UsageError(`Cannot write the signed module ${out}: ${(err as NodeJS.ErrnoException).code ?? 'error'}.`, { cause: err });
      }
      const signer = signerId(keys.publicKey);
      if (opts.json) process.stdout.write(`${JSON.stringify({ module: out, signer, bytes: signed.length })}\n`);
      else process.stdout.write(`signed ${out} (${signed.length} bytes) by ${signer}\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
