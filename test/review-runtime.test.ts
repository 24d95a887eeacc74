/**
 * Regression tests from the review of the issue 10 restructuring of runtime/ (reviewer R2), each
 * named after what it guards. Public API only (host/index.ts), both isolation modes where the
 * behaviour is shared.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import type { EnclavePlatform } from '../host/index.js';
import { ATTEST_CONTRACT, ATTEST_WAT } from './helpers/attest-wat.js';
import { loadIn, MODES } from './helpers/modes.js';
import { watModule } from './helpers/wat.js';

const CAPS = ['seal', 'attest'];
/** REPORT_STATUS.unavailable and SEAL_STATUS.unavailable (docs/ABI.md §3). */
const UNAVAILABLE = -3;

/** Lets Node's unhandled-rejection check run (it runs after the microtask queue drains). */
const settleTicks = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));

describe.each(MODES)('a platform that answers with a Promise ($name)', (mode) => {
  let provider: SoftwareAttestationProvider;
  let bytes: Uint8Array;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  beforeAll(async () => {
    provider = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-platform-')) });
    bytes = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
  });
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  /** The real provider, with its sealing and evidence methods made asynchronous. */
  const asyncPlatform = (how: 'reject' | 'resolve'): EnclavePlatform =>
    ({
      platform: provider.platform,
      getSealingSecret: (identity: never, policy: never) =>
        how === 'reject' ? Promise.reject(new Error('async platform')) : Promise.resolve(provider.getSealingSecret(identity, policy)),
      getEvidence: (order: never) => (how === 'reject' ? Promise.reject(new Error('async platform')) : Promise.resolve(provider.getEvidence(order))),
    }) as unknown as EnclavePlatform;

  it('report and seal_key answer unavailable, and a rejected promise never ends the process as an unhandled rejection', async () => {
    const enclave = await loadIn(mode, bytes, { capabilities: CAPS, attestation: asyncPlatform('reject') });
    try {
      expect(await enclave.call('m_seal')).toBe(UNAVAILABLE);
      expect(await enclave.call('report')).toBe(UNAVAILABLE);
      await settleTicks();
      expect(unhandled).toEqual([]);
    } finally {
      await enclave.close();
    }
  }, 30_000);

  it('report never writes a pending promise as evidence ("[object Promise]"): an import cannot wait, so unavailable', async () => {
    const enclave = await loadIn(mode, bytes, { capabilities: CAPS, attestation: asyncPlatform('resolve') });
    try {
      expect(await enclave.call('report')).toBe(UNAVAILABLE);
      expect(await enclave.call('m_seal')).toBe(UNAVAILABLE);
      // attest() itself may wait: the same platform issues evidence through it.
      const token = await enclave.attest(new Uint8Array(16).fill(7));
      expect(token.split('.')).toHaveLength(3);
      await settleTicks();
      expect(unhandled).toEqual([]);
    } finally {
      await enclave.close();
    }
  }, 30_000);

  it('report answers unavailable for a token that is not a string, in both modes alike', async () => {
    const platform = { platform: 'stub', getSealingSecret: () => new Uint8Array(32), getEvidence: () => 42 } as unknown as EnclavePlatform;
    const enclave = await loadIn(mode, bytes, { capabilities: CAPS, attestation: platform });
    try {
      expect(await enclave.call('report')).toBe(UNAVAILABLE);
    } finally {
      await enclave.close();
    }
  }, 30_000);
});
