/** `enclave verify <token> --policy <file> --nonce <hex>`: the relying party's check of evidence. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import {
  AttestationError,
  parsePolicy,
  PLATFORM_KEY_FILE,
  resolvePlatformDir,
  SoftwareAttestationProvider,
  verifyEvidence,
  type VerificationJwk,
} from '../../../attest/index.js';
import { readBoundedFile, UsageError } from '../../../core/index.js';
import { parseHex } from '../_hex.js';
import { stringifyForTerminal } from '../_escape.js';
import { handleError } from '../handle-error.js';

/** Far above any real token, policy or JWK; a wrong path (a device, a huge file) is refused, not slurped. */
const MAX_INPUT_BYTES = 1 << 20;

async function readText(file: string, what: string): Promise<string> {
  const read = await readBoundedFile(file, MAX_INPUT_BYTES);
  switch (read.kind) {
    case 'ok':
      return Buffer.from(read.bytes.buffer, read.bytes.byteOffset, read.bytes.length).toString('utf8');
    case 'not_regular':
    case 'too_large':
      throw new UsageError(`The ${what} ${file} is not a regular file of at most 1 MiB.`);
    case 'errno':
      throw new UsageError(`Cannot read the ${what} ${file}: ${read.code}.`);
  }
}

async function readJson(file: string, what: string): Promise<unknown> {
  const text = await readText(file, what);
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError(`The ${what} ${file} is not JSON.`);
  }
}

/** A platform key file holds one JWK object or an array of them (selected by the token's `kid`). */
async function readPlatformKey(file: string): Promise<VerificationJwk | VerificationJwk[]> {
  const json = await readJson(file, 'platform key');
  const isObject = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (Array.isArray(json) ? json.length === 0 || !json.every(isObject) : !isObject(json)) {
    throw new UsageError(`The platform key ${file} is not a JWK or a non-empty array of JWKs.`);
  }
  return json as VerificationJwk | VerificationJwk[];
}

/**
 * This machine's software platform key, for verifying evidence issued here. A verifier never
 * creates a platform key: without one, the relying party must say which key it trusts.
 */
function localPlatformKey(dir: string | undefined): VerificationJwk {
  const file = join(resolvePlatformDir(dir), PLATFORM_KEY_FILE);
  if (!existsSync(file)) {
    throw new UsageError(
      `No platform key on this machine (${file}): pass --platform-key with the key of the platform that issued the evidence.`,
    );
  }
  return new SoftwareAttestationProvider(dir ? { dir } : {}).publicJwk();
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
      const nonce = parseHex(opts.nonce, '--nonce');
      const token = tokenArg.startsWith('@') ? (await readText(tokenArg.slice(1), 'token')).trim() : tokenArg;
      const policy = parsePolicy(await readJson(opts.policy, 'policy'));
      const platformKey = opts.platformKey ? await readPlatformKey(opts.platformKey) : localPlatformKey(opts.platformDir);
      const verified = await verifyEvidence(token, { platformKey, policy, nonce });
      // The claims carry the module's own text (its contract's name and version): escaped.
      if (opts.json) process.stdout.write(`${stringifyForTerminal({ ok: true, claims: verified.claims }, 2)}\n`);
      else process.stdout.write(`ok\n${stringifyForTerminal(verified.claims, 2)}\n`);
    } catch (err) {
      if (err instanceof AttestationError && opts.json) {
        process.stdout.write(`${JSON.stringify({ ok: false, reason: err.code })}\n`);
      }
      handleError(err, opts.json);
    }
  });
