/** `enclave verify <token> --policy <file> --nonce <hex>`: the relying party's check of evidence. */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { AttestationError } from '../../../attest/errors.js';
import { SoftwareAttestationProvider } from '../../../attest/software-provider.js';
import { parsePolicy, verifyEvidence, type VerificationJwk } from '../../../attest/verify.js';
import { EnclaveError } from '../../../runtime/errors.js';
import { parseHex } from '../_hex.js';
import { handleError } from '../handle-error.js';

async function readJson(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new EnclaveError('invalid_options', `Cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}.`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new EnclaveError('invalid_options', `The ${what} ${file} is not JSON.`);
  }
}

export const verifyCommand = new Command('verify')
  .description('verify evidence from `enclave attest` against a policy; prints the verified claims')
  .argument('<token>', 'the token, or @file to read it from a file')
  .requiredOption('--policy <file>', 'policy JSON (docs/ATTESTATION.md)')
  .requiredOption('--nonce <hex>', 'the nonce you sent, as hex')
  .option('--platform-key <file>', 'platform public key JWK (default: this machine’s software platform key)')
  .option('--platform-dir <dir>', 'software platform key directory, when --platform-key is not given')
  .option('--json', 'print the result as JSON')
  .action(async (tokenArg: string, opts) => {
    try {
      const token = tokenArg.startsWith('@') ? (await readFile(tokenArg.slice(1), 'utf8')).trim() : tokenArg;
      const policy = parsePolicy(await readJson(opts.policy, 'policy'));
      const platformKey = opts.platformKey
        ? ((await readJson(opts.platformKey, 'platform key')) as VerificationJwk)
        : new SoftwareAttestationProvider(opts.platformDir ? { dir: opts.platformDir } : {}).publicJwk();
      const verified = await verifyEvidence(token, { platformKey, policy, nonce: parseHex(opts.nonce, '--nonce') });
      if (opts.json) process.stdout.write(`${JSON.stringify({ ok: true, claims: verified.claims }, null, 2)}\n`);
      else process.stdout.write(`ok\n${JSON.stringify(verified.claims, null, 2)}\n`);
    } catch (err) {
      if (err instanceof AttestationError && opts.json) {
        process.stdout.write(`${JSON.stringify({ ok: false, reason: err.code })}\n`);
      }
      handleError(err, opts.json);
    }
  });
