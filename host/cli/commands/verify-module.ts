/** `enclave verify-module <module> --key <pub>...`: check a module's signatures against trusted keys. */
import { Command } from 'commander';
import { checkTrust, readPublicKeyFile } from '../../../attest/index.js';
import { readModuleBytes } from '../../../runtime/index.js';
import { parseSvn } from '../_svn.js';
import { escapeText, stringifyForTerminal } from '../_escape.js';
import { handleError } from '../handle-error.js';

export const verifyModuleCommand = new Command('verify-module')
  .description('verify that a module is signed by a trusted key at or above a minimum svn')
  .argument('<module>', 'path to the .wasm module')
  .requiredOption('--key <file...>', 'trusted public key file(s)')
  .option('--min-svn <n>', 'lowest svn accepted from these signers', '0')
  .option('--json', 'print the result as JSON')
  .action(async (module: string, opts) => {
    try {
      const bytes = await readModuleBytes(module);
      const minSvn = parseSvn(opts.minSvn, '--min-svn');
      const keys = await Promise.all((opts.key as string[]).map((file) => readPublicKeyFile(file)));
      const identity = checkTrust(bytes, { trusted: keys.map((publicKey) => ({ publicKey, minSvn })) });
      if (opts.json) process.stdout.write(`${stringifyForTerminal(identity, 2)}\n`);
      else {
        process.stdout.write(
          `ok           ${escapeText(identity.name)} ${escapeText(identity.version)} (svn ${identity.svn})\nmeasurement  sha256:${identity.measurement}\nsigned by    ${identity.signers.join(', ')}\n`,
        );
      }
    } catch (err) {
      handleError(err, opts.json);
    }
  });
