import { describe, expect, it } from 'vitest';

// What a service imports: the package's own exports map, resolved as a dependency would be.
describe('package exports', () => {
  it('the root entry exposes the runtime API', async () => {
    const api = await import('enclave');
    for (const name of ['loadEnclave', 'compileEnclave', 'createWorkerEnclave', 'EnclaveError', 'AttestationError', 'verifyEvidence']) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('enclave/attest exposes the attestation layer documented in docs/ATTESTATION.md §11', async () => {
    const attest = await import('enclave/attest');
    for (const name of ['moduleIdentity', 'readSignatures', 'createReport', 'readPrivateKeyFile', 'writeKeyPair', 'deriveSealingKey', 'signerId']) {
      expect(typeof (attest as Record<string, unknown>)[name], name).toBe('function');
    }
  });
});
