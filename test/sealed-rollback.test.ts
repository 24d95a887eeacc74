// Rollback protection of versioned sealed blobs (docs/SEALING.md §4, §7): the two-phase protocol
// (seal → store → commit) through the real SDK code, runtime and software platform counters. An
// acknowledged (committed) write is never rolled back; a crash between store and commit loses
// nothing; once a newer blob is committed every older copy and every sibling is refused.
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { codeOf } from './helpers/errors.js';
import { blobDigest, buildSealed, referenceKey, sealerModule, sealerOps, sealerRig, type SealerRig } from './helpers/sealer.js';

const te = new TextEncoder();
const AAD = te.encode('enclave-test/record\0a');
const rec = (n: number) => te.encode(`record version ${n}`);

let rig: SealerRig;
let module: Uint8Array;
let ops: ReturnType<typeof sealerOps>;
let identity: Awaited<ReturnType<SealerRig['load']>>['identity'];
let nextId = 1000n;
/** A counter id no other test uses. */
const freshId = () => nextId++;

beforeAll(async () => {
  rig = await sealerRig();
  module = rig.sign(await sealerModule());
  const enclave = await rig.load(module);
  identity = enclave.identity;
  ops = sealerOps(enclave);
});

describe('two phases: seal is pending, commit makes it current', () => {
  for (const policy of [0, 1] as const) {
    it(`policy ${policy}: pending until committed, current after, a retried commit is a no-op`, async () => {
      const id = freshId();
      const s = await ops.seal(rec(1), AAD, policy, id);
      expect(s).toMatchObject({ counter: 1, pending: true, stale: false });
      expect(BigInt(s.counter_id)).toBe(id);
      // nothing advanced by seal
      expect(rig.provider.readCounter!(identity, policy === 0 ? 'measurement' : 'signer', id).value).toBe(0n);
      const before = await ops.unseal(s.blob, AAD);
      expect(before).toMatchObject({ pending: true, counter: 1 });
      expect(before.plaintext).toEqual(rec(1));
      expect(await ops.commit(s.blob)).toBeNull();
      const state = rig.provider.readCounter!(identity, policy === 0 ? 'measurement' : 'signer', id);
      expect(state.value).toBe(1n);
      expect(Buffer.from(state.tag).equals(Buffer.from(blobDigest(s.blob)))).toBe(true);
      expect(await ops.unseal(s.blob, AAD)).toMatchObject({ pending: false, counter: 1 });
      expect(await ops.commit(s.blob)).toBeNull(); // idempotent: a commit whose reply was lost
      expect(rig.provider.readCounter!(identity, policy === 0 ? 'measurement' : 'signer', id).value).toBe(1n);
    });
  }

  it('the old copy after a commit is rollback; the committed one opens', async () => {
    const id = freshId();
    const b1 = (await ops.seal(rec(1), AAD, 1, id)).blob;
    await ops.commit(b1);
    const b2 = await ops.seal(rec(2), AAD, 1, id);
    expect(b2.counter).toBe(2);
    // before the commit of b2, b1 is still the current one and b2 is pending
    expect(await ops.unseal(b1, AAD)).toMatchObject({ pending: false });
    expect(await ops.unseal(b2.blob, AAD)).toMatchObject({ pending: true });
    await ops.commit(b2.blob);
    expect(await codeOf(ops.unseal(b1, AAD))).toBe('rollback');
    expect(await codeOf(ops.reseal(b1, AAD))).toBe('rollback');
    expect((await ops.unseal(b2.blob, AAD)).plaintext).toEqual(rec(2));
    // committing the old one again cannot move the counter back
    expect(await codeOf(ops.commit(b1))).toBe('conflict');
    expect(await codeOf(ops.unseal(b1, AAD))).toBe('rollback');
  });

  it('a sibling pending blob is refused once the other one is committed, and its commit is a conflict', async () => {
    const id = freshId();
    await ops.commit((await ops.seal(rec(1), AAD, 1, id)).blob);
    const a = await ops.seal(rec(2), AAD, 1, id);
    const b = await ops.seal(te.encode('sibling'), AAD, 1, id);
    expect(a.counter).toBe(2);
    expect(b.counter).toBe(2);
    expect(await ops.unseal(a.blob, AAD)).toMatchObject({ pending: true });
    expect(await ops.unseal(b.blob, AAD)).toMatchObject({ pending: true });
    await ops.commit(a.blob);
    expect(await codeOf(ops.unseal(b.blob, AAD))).toBe('rollback');
    expect(await codeOf(ops.commit(b.blob))).toBe('conflict');
    expect((await ops.unseal(a.blob, AAD)).plaintext).toEqual(rec(2));
  });

  it('a blob more than one ahead of its counter is rollback (seal never makes one)', async () => {
    const id = freshId();
    const key = referenceKey(rig.dir, identity, 'signer', 1);
    const ahead = buildSealed({ key, plaintext: rec(9), aad: AAD, policy: 1, keyId: 1, svn: 1, counterId: id, counter: 2n });
    expect(await codeOf(ops.unseal(ahead, AAD))).toBe('rollback');
    // the same blob one ahead opens as pending (the reference's versioned blobs are the SDK's)
    const next = buildSealed({ key, plaintext: rec(1), aad: AAD, policy: 1, keyId: 1, svn: 1, counterId: id, counter: 1n });
    expect(await ops.unseal(next, AAD)).toMatchObject({ pending: true, counter: 1 });
    await ops.commit(next);
    expect(await ops.unseal(next, AAD)).toMatchObject({ pending: false });
    expect(await ops.unseal(ahead, AAD)).toMatchObject({ pending: true });
  });

  it('a versioned blob whose counter id or value is changed does not open (the header is authenticated)', async () => {
    const id = freshId();
    const s = await ops.seal(rec(1), AAD, 1, id);
    for (const at of [16, 23, 24, 31]) {
      const bad = s.blob.slice();
      bad[at]! ^= 1;
      expect(await codeOf(ops.unseal(bad, AAD))).toBe('unseal_failed');
    }
  });

  it('counters are per policy and per id: committing one does not move another', async () => {
    const id = freshId();
    const m = await ops.seal(rec(1), AAD, 0, id);
    const s = await ops.seal(rec(1), AAD, 1, id);
    const other = await ops.seal(rec(1), AAD, 1, id + 500n);
    await ops.commit(m.blob);
    expect(await ops.unseal(s.blob, AAD)).toMatchObject({ pending: true });
    expect(await ops.unseal(other.blob, AAD)).toMatchObject({ pending: true });
    expect(await ops.unseal(m.blob, AAD)).toMatchObject({ pending: false });
  });

  it('a counter id above 2^63 works (u64 throughout)', async () => {
    const id = (1n << 63n) + 12345n;
    const s = await ops.seal(rec(1), AAD, 1, id);
    expect(BigInt(s.counter_id)).toBe(id);
    await ops.commit(s.blob);
    expect(rig.provider.readCounter!(identity, 'signer', id).value).toBe(1n);
    expect(await ops.unseal(s.blob, AAD)).toMatchObject({ pending: false });
  });
});

describe('commit and reseal refuse what they must', () => {
  it('commit of an unversioned blob is state (never 0, which is bad_request\'s value and success); of bytes that do not parse, unseal_failed', async () => {
    const s = await ops.seal(rec(1), AAD, 1);
    expect(await codeOf(ops.commit(s.blob))).toBe('state');
    expect(await codeOf(ops.commit(new Uint8Array(10)))).toBe('unseal_failed');
    expect(await codeOf(ops.commit(s.blob.slice(0, s.blob.length - 1)))).toBe('unseal_failed');
  });

  it('reseal of a pending blob is a conflict (commit it first); of a committed one, a new pending blob one ahead', async () => {
    const id = freshId();
    const s = await ops.seal(rec(1), AAD, 1, id);
    expect(await codeOf(ops.reseal(s.blob, AAD))).toBe('conflict');
    await ops.commit(s.blob);
    const r = await ops.reseal(s.blob, AAD);
    expect(r).toMatchObject({ counter: 2, pending: true });
    expect(BigInt(r.counter_id)).toBe(id);
    expect(await ops.unseal(s.blob, AAD)).toMatchObject({ pending: false }); // still current until the commit
    await ops.commit(r.blob);
    expect(await codeOf(ops.unseal(s.blob, AAD))).toBe('rollback');
    expect((await ops.unseal(r.blob, AAD)).plaintext).toEqual(rec(1));
  });
});

describe('across restarts, upgrades and stale stores', () => {
  it('a crash between store and commit loses nothing: after a restart the pending blob opens, is committed, and the older one is refused', async () => {
    const id = freshId();
    const b1 = (await ops.seal(rec(1), AAD, 1, id)).blob;
    await ops.commit(b1);
    const b2 = (await ops.seal(rec(2), AAD, 1, id)).blob; // stored; then the process dies before commit
    const restarted = sealerOps(await rig.load(module, { provider: new SoftwareAttestationProvider({ dir: rig.dir }) }));
    const u = await restarted.unseal(b2, AAD);
    expect(u).toMatchObject({ pending: true });
    expect(u.plaintext).toEqual(rec(2));
    await restarted.commit(b2);
    expect(await codeOf(restarted.unseal(b1, AAD))).toBe('rollback');
    expect(await codeOf(ops.unseal(b1, AAD))).toBe('rollback'); // the running instance sees it as well
  });

  it('a stale copy of the whole store (a backup restored) is refused blob by blob', async () => {
    const ids = [freshId(), freshId(), freshId()];
    const store = new Map<bigint, Uint8Array>();
    const write = async (id: bigint, n: number) => {
      const s = await ops.seal(rec(n), AAD, 1, id);
      store.set(id, s.blob); // durably stored
      await ops.commit(s.blob); // acknowledged
    };
    for (const id of ids) await write(id, 1);
    const backup = new Map(store);
    await write(ids[0]!, 2);
    await write(ids[2]!, 2);
    // restore the backup over the store: ids[1] did not change since, the others did
    const results = await Promise.all(ids.map(async (id) => ops.unseal(backup.get(id)!, AAD).then(() => 'ok', (e: { code: string }) => e.code)));
    expect(results).toEqual(['rollback', 'ok', 'rollback']);
  });

  it('an upgrade keeps the counters (bound to the signer without the svn)', async () => {
    const id = freshId();
    const b1 = (await ops.seal(rec(1), AAD, 1, id)).blob;
    await ops.commit(b1);
    const v2 = sealerOps(await rig.load(rig.sign(await sealerModule({ svn: 2, version: '2.0.0', variant: true }))));
    expect(await v2.unseal(b1, AAD)).toMatchObject({ pending: false, stale: true, svn: 1 });
    const moved = await v2.reseal(b1, AAD);
    expect(moved).toMatchObject({ svn: 2, counter: 2, pending: true });
    await v2.commit(moved.blob);
    expect(await codeOf(v2.unseal(b1, AAD))).toBe('rollback');
    expect(await v2.unseal(moved.blob, AAD)).toMatchObject({ pending: false, stale: false });
  });

  it('what it does NOT stop: whoever rewinds the platform directory rewinds the counters (docs/SEALING.md §7)', async () => {
    const r = await sealerRig();
    const m = r.sign(await sealerModule());
    const o = sealerOps(await r.load(m));
    const b1 = (await o.seal(rec(1), AAD, 1, 1n)).blob;
    await o.commit(b1);
    const snapshot = join(r.dir, '..', `${r.dir.split('/').pop()}-snapshot`);
    cpSync(r.dir, snapshot, { recursive: true });
    const b2 = (await o.seal(rec(2), AAD, 1, 1n)).blob;
    await o.commit(b2);
    expect(await codeOf(o.unseal(b1, AAD))).toBe('rollback');
    // restore the platform directory with the store's backup: the old blob opens again
    rmSync(join(r.dir, 'counters'), { recursive: true, force: true });
    cpSync(join(snapshot, 'counters'), join(r.dir, 'counters'), { recursive: true });
    const rewound = sealerOps(await r.load(m, { provider: new SoftwareAttestationProvider({ dir: r.dir }) }));
    expect((await rewound.unseal(b1, AAD)).plaintext).toEqual(rec(1));
    rmSync(snapshot, { recursive: true, force: true });
  });

  it('worker mode: the same protocol across the worker boundary (host calls for keys and counters)', async () => {
    const worker = await rig.load(module, { isolation: 'worker' });
    try {
      const w = sealerOps(worker);
      const id = freshId();
      const b1 = await w.seal(rec(1), AAD, 1, id);
      expect(b1).toMatchObject({ pending: true, counter: 1 });
      await w.commit(b1.blob);
      // the in-process instance on the same platform agrees with the worker, both ways
      expect((await ops.unseal(b1.blob, AAD)).plaintext).toEqual(rec(1));
      const b2 = await ops.seal(rec(2), AAD, 1, id);
      expect(await w.unseal(b2.blob, AAD)).toMatchObject({ pending: true });
      await w.commit(b2.blob);
      expect(await codeOf(w.unseal(b1.blob, AAD))).toBe('rollback');
      const bad = b2.blob.slice();
      bad[40]! ^= 1;
      expect(await codeOf(w.unseal(bad, AAD))).toBe('unseal_failed');
      expect((await w.unseal(b2.blob, AAD)).plaintext).toEqual(rec(2));
    } finally {
      await worker.close();
    }
  });
});
