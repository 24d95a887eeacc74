/** `enclave attest <module> --nonce <hex>`: evidence (an EAT in a JWT) about a loaded enclave. */
import { Command, Option } from 'commander';
import { readPublicKeyFile, SoftwareAttestationProvider } from '../../../attest/index.js';
import { CAPABILITIES, loadEnclave, type Capability } from '../../../runtime/index.js';
import { parseHex } from '../_hex.js';
import { parseSvn } from '../_svn.js';
import { handleError } from '../handle-error.js';

export const attestCommand = new Command('attest')
  .description('load a module and print signed evidence about it, bound to a relying party nonce')
  .argument('<module>', 'path to the .wasm module')
  .requiredOption('--nonce <hex>', 'the relying party nonce, 8..64 bytes as hex')
  .addOption(new Option('--grant <capability...>', 'capabilities to grant').choices(CAPABILITIES))
  .option('--key <file...>', 'trusted signer public key(s): the module must be signed by one, which the evidence names')
  .option('--min-svn <n>', 'lowest svn accepted from those signers', '0')
  .option('--platform-dir <dir>', 'software platform key directory (default $ENCLAVE_PLATFORM_DIR or ~/.enclave)')
  .option('--json', 'print {token, platformKey} as JSON')
  .action(async (module: string, opts) => {
    try {
      const nonce = parseHex(opts.nonce, '--nonce');
      const minSvn = parseSvn(opts.minSvn, '--min-svn');
      const attestation = new SoftwareAttestationProvider(opts.platformDir === undefined ? {} : { dir: opts.platformDir });
      const keys = await Promise.all(((opts.key ?? []) as string[]).map((file) => readPublicKeyFile(file)));
      const enclave = await loadEnclave(module, {
        capabilities: (opts.grant ?? []) as Capability[],
        attestation,
        ...(keys.length > 0 ? { trust: { trusted: keys.map((publicKey) => ({ publicKey, minSvn })) } } : {}),
      });
      let token: string;
      try {
        token = await enclave.attest(nonce);
      } finally {
        enclave.close();
      }
      if (opts.json) process.stdout.write(`${JSON.stringify({ token, platformKey: attestation.publicJwk() }, null, 2)}\n`);
      else process.stdout.write(`${token}\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });

export const platformKeyCommand = new Command('platform-key')
  .description("print the software platform's public key (JWK) that verifiers check evidence with")
  .option('--platform-dir <dir>', 'software platform key directory (default $ENCLAVE_PLATFORM_DIR or ~/.enclave)')
  .option('--json', 'print errors as JSON too (the key is always printed as JSON)')
  .action((opts) => {
    try {
      const provider = new SoftwareAttestationProvider(opts.platformDir === undefined ? {} : { dir: opts.platformDir });
      process.stdout.write(`${JSON.stringify(provider.publicJwk(), null, 2)}\n`);
    } catch (err) {
      handleError(err, opts.json);
    }
  });
