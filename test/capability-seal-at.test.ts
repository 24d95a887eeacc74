/**
 * The `seal_key_at` import of the `seal` capability (docs/ABI.md §3, issue 13): every return value,
 * in both isolation modes, against the software platform (keys checked against attest's
 * deriveSealingKey for the root's secret) and against fake platforms that throw, answer garbage or
 * a Promise. Errors are values: never a trap, never a host crash.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestationError, deriveSealingKey, generateKeyPair, signModule, SoftwareAttestationProvider, type ModuleIdentity } from '../attest/index.js';
import type { EnclaveHandle } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { hostCallChannel } from './helpers/hostcall.js';
import { loadIn, MODES } from './helpers/modes.js';
import { decodeAnswer, encodeArgs, MEMORY_BYTES, sealCounterModule, type Answer, type CallArgs } from './helpers/seal-counter-wat.js';

const SVN = 3;

/** The secret of sealing root `id` as the key file holds it (version 1: `sealingSecret` is root 1). */
function rootSecret(dir: string, id: number): Uint8Array {
  const file = JSON.parse(readFileSync(join(dir, 'platform-key.json'), 'utf8')) as {
    sealingSecret?: string;
    sealingRoots?: { id: number; secret?: string }[];
  };
  const secret = file.sealingRoots?.find((r) => r.id === id)?.secret ?? (id === 1 ? file.sealingSecret : undefined);
  if (secret === undefined) throw new Error(`no secret for root ${id}`);
  return new Uint8Array(Buffer.from(secret, 'base64url'));
}

/** key ‖ key id u32 LE ‖ svn u32 LE, as the import writes them. */
function written(answer: Answer): { key: Uint8Array; keyId: number; svn: number } {
  const view = new DataView(answer.out.buffer, answer.out.byteOffset);
  return { key: answer.out.slice(0, 32), keyId: view.getUint32(32, true), svn: view.getUint32(36, true) };
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const ZERO40 = new Uint8Array(40);

async function ask(enclave: EnclaveHandle, args: Omit<CallArgs, 'sel'>): Promise<Answer> {
  return decodeAnswer(await enclave.call('x', encodeArgs({ sel: 1, ...args })));
}

/** A platform of the test's making: what the runtime takes, with `sealingKey` as given. */
function fakePlatform(sealingKey: unknown): Record<string, unknown> {
  return {
    platform: 'fake',
    getSealingSecret: () => new Uint8Array(32),
    getEvidence: () => 'a.b.c',
    ...(sealingKey === undefined ? {} : { sealingKey }),
  };
}

let dir: string;
let provider: SoftwareAttestationProvider;
let unsigned: Uint8Array;
let signed: Uint8Array;
let keys: ReturnType<typeof generateKeyPair>;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  dir = join(mkdtempSync(join(tmpdir(), 'enclave-seal-at-')), 'platform');
  provider = new SoftwareAttestationProvider({ dir });
  // Roots: 1 active, 2 revoked, 3 current.
  expect(provider.rotateSealingRoot().id).toBe(2);
  expect(provider.rotateSealingRoot().id).toBe(3);
  provider.revokeSealingRoot(2);
  unsigned = await sealCounterModule({ seal: true, counter: false }, { svn: SVN });
  keys = generateKeyPair();
  signed = signModule(unsigned, keys);
});

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

describe.each(MODES)('seal_key_at ($name)', (mode) => {
  let plain: EnclaveHandle;
  let bySigner: EnclaveHandle;
  let identity: ModuleIdentity;
  let signerIdentity: ModuleIdentity;

  beforeAll(async () => {
    plain = await loadIn(mode, unsigned, { capabilities: ['seal'], attestation: provider });
    bySigner = await loadIn(mode, signed, { capabilities: ['seal'], attestation: provider, trust: { trusted: [{ publicKey: keys.publicKey }] } });
    identity = plain.identity;
    signerIdentity = bySigner.identity;
    expect(signerIdentity.signer).toBeDefined();
  });

  afterAll(async () => {
    await plain.close();
    await bySigner.close();
  });

  it('key id 0 under measurement: the current root (3), svn 0, the key attest derives from its secret', async () => {
    const answer = await ask(plain, { policy: 0, keyId: 0, svn: -1 });
    expect(answer.status).toBe(0);
    const out = written(answer);
    expect(out.keyId).toBe(3);
    expect(out.svn).toBe(0);
    expect(hex(out.key)).toBe(hex(deriveSealingKey(rootSecret(dir, 3), identity, 'measurement')));
    // seal_key (current root, own svn) is the same key.
    expect(hex(out.key)).toBe(hex(provider.getSealingSecret(identity, 'measurement')));
  });

  it('an older active root by id: its own key, not the current one', async () => {
    const out = written(await ask(plain, { policy: 0, keyId: 1, svn: -1 }));
    expect(out.keyId).toBe(1);
    expect(hex(out.key)).toBe(hex(deriveSealingKey(rootSecret(dir, 1), identity, 'measurement')));
    expect(hex(out.key)).not.toBe(hex(deriveSealingKey(rootSecret(dir, 3), identity, 'measurement')));
  });

  it('-4 for a revoked root, an unknown id and an id no root can have; nothing is written', async () => {
    for (const keyId of [2, 99, 0x7fffffff, -1, -0x80000000]) {
      const answer = await ask(plain, { policy: 0, keyId, svn: -1 });
      expect(answer.status, `key id ${keyId}`).toBe(-4);
      expect(answer.out).toEqual(ZERO40);
    }
  });

  it('signer: own svn by -1, a lower svn works, a higher one is refused (-5)', async () => {
    const own = written(await ask(bySigner, { policy: 1, keyId: 0, svn: -1 }));
    expect(own).toMatchObject({ keyId: 3, svn: SVN });
    expect(hex(own.key)).toBe(hex(deriveSealingKey(rootSecret(dir, 3), signerIdentity, 'signer', { svn: SVN })));
    for (const svn of [0, 1, SVN]) {
      const lower = await ask(bySigner, { policy: 1, keyId: 1, svn });
      expect(lower.status).toBe(0);
      const out = written(lower);
      expect(out).toMatchObject({ keyId: 1, svn });
      expect(hex(out.key)).toBe(hex(deriveSealingKey(rootSecret(dir, 1), signerIdentity, 'signer', { svn })));
    }
    expect(hex(written(await ask(bySigner, { policy: 1, svn: 1 })).key)).not.toBe(hex(own.key));
    for (const svn of [SVN + 1, 0x7fffffff, -2, -0x80000000]) {
      const answer = await ask(bySigner, { policy: 1, keyId: 0, svn });
      expect(answer.status, `svn ${svn}`).toBe(-5);
      expect(answer.out).toEqual(ZERO40);
    }
  });

  it('measurement: any svn but -1 is refused (-5)', async () => {
    for (const svn of [0, 1, SVN, -2]) expect((await ask(plain, { policy: 0, svn })).status, `svn ${svn}`).toBe(-5);
  });

  it('-3 for the signer policy of an unsigned module; -2 for an unknown policy', async () => {
    expect((await ask(plain, { policy: 1, svn: -1 })).status).toBe(-3);
    expect((await ask(plain, { policy: 1, svn: 0 })).status).toBe(-3);
    for (const policy of [2, -1, 0x7fffffff]) expect((await ask(plain, { policy })).status, `policy ${policy}`).toBe(-2);
  });

  it('-1 for an output that does not fit, near the end of memory and near 2^32; the last fitting offset works', async () => {
    expect((await ask(plain, { policy: 0, ptr: MEMORY_BYTES - 40 })).status).toBe(0);
    for (const ptr of [MEMORY_BYTES - 39, MEMORY_BYTES, 0x7fffffff, 0x80000000, 0xffffffd8, 0xfffffff0, 0xffffffff]) {
      expect((await ask(plain, { policy: 0, ptr })).status, `ptr ${ptr.toString(16)}`).toBe(-1);
    }
  });

  it('pays its fuel before any work', async () => {
    const stats = { fuel: 0 };
    await plain.call('x', encodeArgs({ sel: 1, policy: 9 }), { stats });
    expect(stats.fuel).toBeGreaterThanOrEqual(500_000);
  });

  describe('a platform that fails or lies', () => {
    const goodKey = (): Record<string, unknown> => ({ key: new Uint8Array(32).fill(7), keyId: 5, svn: 0 });
    const cases: [string, number, unknown][] = [
      ['no sealingKey (an older platform)', -3, undefined],
      ['sealingKey is not a function', -3, 42],
      ['throws a plain error', -3, () => { throw new Error('disk on fire'); }],
      ['throws sealing_unavailable', -3, () => { throw new AttestationError('sealing_unavailable'); }],
      ['throws sealing_key_revoked', -4, () => { throw new AttestationError('sealing_key_revoked'); }],
      ['throws sealing_key_unknown', -4, () => { throw new AttestationError('sealing_key_unknown'); }],
      ['throws a non-error', -3, () => { throw 'string'; }],
      ['throws sealing_key_revoked with a throwing code getter', -3, () => { throw Object.defineProperty(new AttestationError('sealing_key_revoked'), 'code', { get() { throw new Error('getter'); } }); }],
      ['answers a resolved Promise', -3, () => Promise.resolve(goodKey())],
      ['answers a rejected Promise', -3, () => Promise.reject(new Error('later'))],
      ['answers null', -3, () => null],
      ['answers the key alone', -3, () => new Uint8Array(32)],
      ['answers a 31-byte key', -3, () => ({ ...goodKey(), key: new Uint8Array(31) })],
      ['answers a 33-byte key', -3, () => ({ ...goodKey(), key: new Uint8Array(33) })],
      ['answers a key that is an array', -3, () => ({ ...goodKey(), key: Array(32).fill(1) })],
      ['answers key id 0', -3, () => ({ ...goodKey(), keyId: 0 })],
      ['answers key id 2^31', -3, () => ({ ...goodKey(), keyId: 2 ** 31 })],
      ['answers key id 1.5', -3, () => ({ ...goodKey(), keyId: 1.5 })],
      ['answers key id as a string', -3, () => ({ ...goodKey(), keyId: '5' })],
      ['answers an svn other than 0 under measurement', -3, () => ({ ...goodKey(), svn: 1 })],
      ['answers a throwing getter', -3, () => ({ get key(): never { throw new Error('getter'); }, keyId: 5, svn: 0 })],
      ['answers a good key', 0, goodKey],
    ];
    it.each(cases)('%s: %i', async (_why, status, sealingKey) => {
      const enclave = await loadIn(mode, unsigned, { capabilities: ['seal'], attestation: fakePlatform(sealingKey) });
      try {
        const answer = await ask(enclave, { policy: 0, keyId: 0, svn: -1 });
        expect(answer.status).toBe(status);
        if (status === 0) expect(written(answer)).toEqual({ key: new Uint8Array(32).fill(7), keyId: 5, svn: 0 });
        else expect(answer.out).toEqual(ZERO40);
        // The instance lives on and answers the next call.
        expect((await ask(enclave, { policy: 9 })).status).toBe(-2);
      } finally {
        await enclave.close();
      }
    });

    it('a root other than the one asked for is no answer (-3)', async () => {
      const enclave = await loadIn(mode, unsigned, { capabilities: ['seal'], attestation: fakePlatform(() => ({ key: new Uint8Array(32), keyId: 6, svn: 0 })) });
      try {
        expect((await ask(enclave, { policy: 0, keyId: 5 })).status).toBe(-3);
        expect((await ask(enclave, { policy: 0, keyId: 6 })).status).toBe(0);
      } finally {
        await enclave.close();
      }
    });

    it('gets the policy, the root id and the svn asked for, and the identity the host computed', async () => {
      const seen: unknown[][] = [];
      const sealingKey = (...args: unknown[]) => {
        seen.push(args);
        return { key: new Uint8Array(32), keyId: 4, svn: 2 };
      };
      const enclave = await loadIn(mode, signed, {
        capabilities: ['seal'],
        attestation: fakePlatform(sealingKey),
        trust: { trusted: [{ publicKey: keys.publicKey }] },
      });
      try {
        expect((await ask(enclave, { policy: 1, keyId: 4, svn: 2 })).status).toBe(0);
        expect(seen).toHaveLength(1);
        const [who, policy, choice] = seen[0]!;
        expect((who as ModuleIdentity).measurement).toBe(enclave.identity.measurement);
        expect((who as ModuleIdentity).signer).toBe(enclave.identity.signer);
        expect(policy).toBe('signer');
        expect(choice).toEqual({ keyId: 4, svn: 2 });
      } finally {
        await enclave.close();
      }
    });

    it('no unhandled rejection from a Promise it could not wait for', async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    });
  });
});

describe('the host side of a worker\'s seal_key_at host call', () => {
  it('refuses hostile fields as an error answer, without asking the platform, and never throws', () => {
    let calls = 0;
    // The enclave's svn is 2: a signer key for svn 3 is refused.
    const channel = hostCallChannel(fakePlatform(() => {
      calls++;
      return { key: new Uint8Array(32), keyId: 1, svn: 0 };
    }), 2);
    const send = (fields: Record<string, unknown>): void => channel.send({ kind: 'seal_at', ...fields });
    for (const fields of [
      { policy: 'everything', keyId: 0 },
      { policy: 0, keyId: 0 },
      { policy: 'measurement', keyId: -1 },
      { policy: 'measurement', keyId: 2 ** 31 },
      { policy: 'measurement', keyId: 0.5 },
      { policy: 'measurement', keyId: '1' },
      { policy: 'measurement', keyId: 0, svn: 0 },
      { policy: 'signer', keyId: 0, svn: 3 },
      { policy: 'signer', keyId: 0, svn: -1 },
      { policy: 'signer', keyId: 0, svn: '1' },
      { policy: 'signer', keyId: 0, svn: Number.NaN },
    ]) {
      send(fields);
      expect(channel.status(), JSON.stringify(fields)).toBe(1);
    }
    expect(calls).toBe(0);
    send({ policy: 'measurement', keyId: 1 });
    expect(channel.status()).toBe(0);
    expect(calls).toBe(1);
  });
});

describe('grant', () => {
  it('seal still needs a platform', async () => {
    expect(await codeOf(loadIn(MODES[0]!, unsigned, { capabilities: ['seal'] }))).toBe('invalid_options');
  });
});
