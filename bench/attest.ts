/**
 * Attestation: evidence token issue (`SoftwareAttestationProvider.getEvidence`: claims, checks,
 * an EdDSA JWT) and verify (`verifyEvidence`: shape, signature, freshness, nonce, policy), and
 * the trust check of a signed module, each against the bare primitive underneath (node:crypto
 * Ed25519 on the same bytes, SHA-256 of the module).
 *
 *   npm run bench -- attest
 */
import crypto from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SoftwareAttestationProvider,
  checkTrust,
  generateKeyPair,
  signModule,
  verifyEvidence,
  type EvidencePolicy,
  type EvidenceRequest,
} from '../attest/index.js';
import { echoBytes } from './_enclaves.js';
import { defineSuite, isMain, runStandalone, type Case } from './_harness.js';

export const suite = defineSuite({
  name: 'attest',
  description: 'evidence token issue and verify, signed-module trust check',
  maxTime: 1,
  quickMaxTime: 0.25,
  async setup(ctx) {
    const dir = await mkdtemp(join(tmpdir(), 'enclave-bench-platform-'));
    const platform = new SoftwareAttestationProvider({ dir }).open();
    const platformKey = platform.publicJwk();
    const signer = generateKeyPair();
    const module = signModule(await echoBytes(ctx.root), signer);
    const trust = { trusted: [{ publicKey: signer.publicKey }] };
    const identity = checkTrust(module, trust);
    const nonce = crypto.getRandomValues(new Uint8Array(32));
    const request: EvidenceRequest = {
      identity,
      nonce,
      runtimeVersion: '0.1.0',
      limits: { requestBytes: 65_536, replyBytes: 65_536, depth: 32, memoryPages: 64 },
      capabilities: ['random', 'attest'],
      debug: false,
    };
    const policy: EvidencePolicy = { signers: [{ signer: identity.signers[0]! }] };
    const token = platform.getEvidence(request);
    await verifyEvidence(token, { platformKey, policy, nonce }); // must pass before it is timed

    // The floor: one Ed25519 signature (and its check) over the same signing input, node:crypto.
    const signingInput = Buffer.from(token.slice(0, token.lastIndexOf('.')));
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
    const signature = crypto.sign(null, signingInput, privateKey);

    const cases: Case[] = [
      { name: 'ed25519 sign (node:crypto)', group: 'issue', role: 'floor', batch: 16, fn: () => { for (let i = 0; i < 16; i++) crypto.sign(null, signingInput, privateKey); } },
      { name: 'getEvidence', group: 'issue', batch: 16, fn: () => { for (let i = 0; i < 16; i++) platform.getEvidence(request); } },
      { name: 'ed25519 verify (node:crypto)', group: 'verify', role: 'floor', batch: 16, fn: () => { for (let i = 0; i < 16; i++) crypto.verify(null, signingInput, publicKey, signature); } },
      {
        name: 'verifyEvidence',
        group: 'verify',
        batch: 16,
        fn: async () => {
          for (let i = 0; i < 16; i++) await verifyEvidence(token, { platformKey, policy, nonce });
        },
      },
      { name: 'sha256 of the module', group: 'trust check', role: 'floor', batch: 16, fn: () => { for (let i = 0; i < 16; i++) crypto.createHash('sha256').update(module).digest(); } },
      { name: 'checkTrust (signed module)', group: 'trust check', batch: 16, fn: () => { for (let i = 0; i < 16; i++) checkTrust(module, trust); } },
    ];
    return {
      cases,
      notes: [
        `Token: ${token.length} characters (EdDSA JWT). Module: the echo enclave, ${module.length} bytes, signed once.`,
        'The software platform stands in for TEE hardware: these are software costs, not a hardware quote\'s.',
      ],
      dispose: () => rm(dir, { recursive: true, force: true }),
    };
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
