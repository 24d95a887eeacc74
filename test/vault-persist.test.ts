/**
 * The vault enclave's persistence (enclave-modules/vault/persist.ts, record.ts; docs/VAULT.md §7):
 * every mutation's `persist` blob, commit, a new instance that loads the blobs, a crash between
 * store and commit, rollback of an older blob, blobs of another name, changed or of another module,
 * tombstones, and the sealed export (export_sealed, import_sealed, reseal) across a changed module
 * (measurement policy) and an upgrade by the same signer (signer policy). Through the real runtime
 * on a test platform (test/helpers/vault.ts); the store is a Map here, as the host keeps it.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../attest/index.js';
import type { EnclaveHandle } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { MODES, type Mode } from './helpers/modes.js';
import { vaultModule, vaultRig, type KeyMeta, type Persist, type VaultRig } from './helpers/vault.js';

interface Created {
  handle: Uint8Array;
  key: KeyMeta;
  persist: Persist;
}
interface Loaded {
  name?: string;
  ok: boolean;
  code?: string;
}

const bytes = (v: unknown): Uint8Array => new Uint8Array(v as Uint8Array);
const MESSAGE = new TextEncoder().encode('pay 10 to alice');

let unsigned: Uint8Array;
let changed: Uint8Array; // another measurement: one contract byte differs
let upgraded: Uint8Array; // the next svn, for the same signer
beforeAll(async () => {
  unsigned = await vaultModule();
  changed = await vaultModule({ version: '0.1.1' });
  upgraded = await vaultModule({ version: '0.2.0', svn: 2 });
});

let rig: VaultRig;
let signed: Uint8Array;
beforeEach(async () => {
  rig = await vaultRig();
  signed = rig.sign(unsigned);
});

const open: EnclaveHandle[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((v) => v.close()));
});

async function load(mode: Mode, module = signed): Promise<EnclaveHandle> {
  const v = await rig.load(mode, module);
  open.push(v);
  return v;
}

/** The host's store of key blobs: name → the last blob it stored. */
type Store = Map<string, Uint8Array>;

/** A mutation as the host runs it: the op, store the blob, commit (unless `commit: false`: a crash before). */
async function mutate<T extends { persist: Persist }>(vault: EnclaveHandle, store: Store, op: string, args: Record<string, unknown>, commit = true): Promise<T> {
  const reply = (await vault.call(op, args)) as T;
  store.set(reply.persist.name, bytes(reply.persist.blob));
  if (commit) expect(await vault.call('commit', { name: reply.persist.name, version: reply.persist.version })).toBe(null);
  return reply;
}

function loadStore(vault: EnclaveHandle, store: Store, only?: string[]): Promise<Loaded[]> {
  const names = only ?? [...store.keys()];
  return vault.call('load', { blobs: names.map((n) => store.get(n)!), names }) as Promise<Loaded[]>;
}

async function handleOf(vault: EnclaveHandle, name: string): Promise<Uint8Array> {
  return bytes(((await vault.call('open', { name })) as { handle: Uint8Array }).handle);
}

describe.each(MODES)('vault persistence ($name)', (mode) => {
  it('persist, commit, a new instance loads: the same keys sign, verify and decrypt the same', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    const ed = await mutate<Created>(first, store, 'create', { name: 'signing', type: 'ed25519' });
    const box = await mutate<Created>(first, store, 'create', { name: 'box', type: 'symmetric', seal_policy: 'measurement' });
    await mutate(first, store, 'rotate', { handle: box.handle });
    const pub = bytes(await first.call('public_key', { handle: ed.handle }));
    const sig = bytes(await first.call('sign', { handle: ed.handle, message: MESSAGE }));
    const ct = bytes(await first.call('encrypt', { handle: box.handle, plaintext: MESSAGE }));
    await first.close();

    const second = await load(mode);
    expect(await loadStore(second, store)).toEqual([{ name: 'signing', ok: true }, { name: 'box', ok: true }]);
    expect(await second.call('list', {})).toEqual(['box', 'signing']);
    expect(await codeOf(second.call('describe', { handle: ed.handle }))).toBe('not_found'); // a handle of the old instance
    const ed2 = await handleOf(second, 'signing');
    const box2 = await handleOf(second, 'box');
    expect(bytes(await second.call('public_key', { handle: ed2 }))).toEqual(pub);
    expect(await second.call('verify', { handle: ed2, message: MESSAGE, signature: sig })).toBe(true);
    expect(bytes(await second.call('sign', { handle: ed2, message: MESSAGE }))).toEqual(sig); // Ed25519 is deterministic
    expect(bytes(await second.call('decrypt', { handle: box2, ciphertext: ct }))).toEqual(MESSAGE);
    expect(await second.call('describe', { handle: box2 })).toMatchObject({ latest_version: 2, seal_policy: 'measurement' });
  });

  it('a blob stored but never committed (a crash) loads, is committed, and then the older one is rollback', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    const k = await mutate<Created>(first, store, 'create', { name: 'k', type: 'ed25519' });
    const committed = store.get('k')!;
    await mutate(first, store, 'rotate', { handle: k.handle }, false); // stored; the process dies before commit
    const pending = store.get('k')!;
    await first.close();

    const second = await load(mode);
    expect(await loadStore(second, store)).toEqual([{ name: 'k', ok: true }]);
    expect(await second.call('describe', { handle: await handleOf(second, 'k') })).toMatchObject({ latest_version: 2 });
    await second.close();

    // The load committed it: the copy from before the rotation is refused from now on.
    const third = await load(mode);
    expect(await third.call('load', { blobs: [committed], names: ['k'] })).toEqual([{ ok: false, code: 'rollback' }]);
    expect(await third.call('load', { blobs: [pending], names: ['k'] })).toEqual([{ name: 'k', ok: true }]);
  });

  it('an older blob after a newer commit is rollback, and so is a sibling that was aborted', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    const k = await mutate<Created>(first, store, 'create', { name: 'k', type: 'symmetric', deletion_allowed: true });
    const v1 = store.get('k')!;
    await mutate(first, store, 'rotate', { handle: k.handle });
    const v2 = store.get('k')!;
    const aborted = (await first.call('rotate', { handle: k.handle })) as { persist: Persist };
    expect(await first.call('abort', { name: 'k', version: aborted.persist.version })).toBe(null);
    await mutate(first, store, 'configure', { handle: k.handle, deletion_allowed: false }); // the same counter value, committed
    const v3 = store.get('k')!;
    expect(aborted.persist.version).toBe(3);

    const second = await load(mode);
    const tries = [v1, v2, bytes(aborted.persist.blob), v3];
    const results = [];
    for (const blob of tries) results.push(((await second.call('load', { blobs: [blob], names: ['k'] })) as Loaded[])[0]);
    expect(results).toEqual([{ ok: false, code: 'rollback' }, { ok: false, code: 'rollback' }, { ok: false, code: 'rollback' }, { name: 'k', ok: true }]);
    expect(await second.call('describe', { handle: await handleOf(second, 'k') })).toMatchObject({ latest_version: 2, deletion_allowed: false });
  });

  it('an instance whose record is behind the counter (another instance committed since) cannot seal over it', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    const k = await mutate<Created>(first, store, 'create', { name: 'k', type: 'symmetric' });
    const second = await load(mode);
    expect(await loadStore(second, store)).toEqual([{ name: 'k', ok: true }]);
    const h2 = await handleOf(second, 'k');
    await mutate(first, store, 'rotate', { handle: k.handle }); // acknowledged: counter 2, version 2
    const ct = (await first.call('encrypt', { handle: k.handle, plaintext: MESSAGE })) as Uint8Array;
    // The second instance still holds version 1 only: a mutation from it would seal at counter 3
    // a record without version 2 and commit it (a store that ignores compare-and-set keeps it).
    for (const [op, args] of [['configure', { deletion_allowed: true }], ['rotate', {}]] as const) {
      expect(await codeOf(second.call(op, { handle: h2, ...args })), op).toBe('conflict');
    }
    const third = await load(mode);
    expect(await loadStore(third, store)).toEqual([{ name: 'k', ok: true }]);
    expect(bytes(await third.call('decrypt', { handle: await handleOf(third, 'k'), ciphertext: ct }))).toEqual(MESSAGE);
  });

  it('before init every op is state (the runtime enforces the contract\'s requires in this mode too)', async () => {
    const bare = await rig.load(mode, signed, { vaultId: null });
    open.push(bare);
    const h = new Uint8Array(16);
    const ops: [string, Record<string, unknown>][] = [
      ['list', {}], ['open', { name: 'k' }], ['create', { name: 'k', type: 'symmetric' }], ['load', { blobs: [], names: [] }],
      ['reseal_key', { name: 'k' }], ['commit', { name: 'k', version: 1 }], ['abort', { name: 'k', version: 1 }],
      ['encrypt', { handle: h, plaintext: MESSAGE }], ['verify', { handle: h, message: MESSAGE, signature: new Uint8Array(68) }],
      ['export_sealed', { handle: h }], ['import_sealed', { blob: new Uint8Array(100) }], ['reseal', { blob: new Uint8Array(100) }],
    ];
    for (const [op, args] of ops) expect(await codeOf(bare.call(op, args)), op).toBe('state');
    expect(await bare.call('init', { vault_id: rig.vaultId })).toBe(null);
    expect(await bare.call('list', {})).toEqual([]);
  });

  it('a blob under another name, with a changed byte, or of another module is unseal_failed', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    await mutate(first, store, 'create', { name: 'a', type: 'symmetric', seal_policy: 'measurement' });
    const blob = store.get('a')!;
    const second = await load(mode);
    const attempts: Array<[Uint8Array, string]> = [[blob, 'b']];
    for (const at of [0, 5, 6, 9, 13, 20, 28, 40, 57, 60, blob.length - 17, blob.length - 1]) {
      const bad = blob.slice();
      bad[at]! ^= 0x01;
      attempts.push([bad, 'a']);
    }
    attempts.push([blob.subarray(0, blob.length - 1), 'a'], [new Uint8Array(0), 'a'], [new Uint8Array([...blob, 0]), 'a']);
    const codes = (await second.call('load', { blobs: attempts.map(([b]) => b), names: attempts.map(([, n]) => n) })) as Loaded[];
    expect(codes.map((c) => c.code)).toEqual(attempts.map(() => 'unseal_failed'));
    // A module with one byte changed has another measurement: the key's blob does not open there.
    const other = await load(mode, rig.sign(changed));
    expect(await loadStore(other, store)).toEqual([{ ok: false, code: 'unseal_failed' }]);
    // The untouched blob still loads (nothing above committed or consumed anything).
    expect(await loadStore(second, store)).toEqual([{ name: 'a', ok: true }]);
  });
});

describe('vault persistence details (in-process)', () => {
  const mode = MODES[0]!;

  it('init: every other op waits for it; one id per instance; a blob of another vault id does not open', async () => {
    const bare = await rig.load(mode, signed, { vaultId: null });
    open.push(bare);
    expect(await codeOf(bare.call('list', {}))).toBe('state');
    expect(await codeOf(bare.call('create', { name: 'k', type: 'symmetric' }))).toBe('state');
    expect(await codeOf(bare.call('load', { blobs: [], names: [] }))).toBe('state');
    expect(await codeOf(bare.call('init', { vault_id: new Uint8Array(15) }))).toMatch(/^(invalid_args|bad_request)$/);
    const idA = new Uint8Array(16).fill(0xa);
    expect(await bare.call('init', { vault_id: idA })).toBe(null);
    expect(await bare.call('init', { vault_id: idA })).toBe(null); // the same id again: a no-op
    expect(await codeOf(bare.call('init', { vault_id: new Uint8Array(16).fill(0xb) }))).toBe('state');
    const store: Store = new Map();
    await mutate(bare, store, 'create', { name: 'k', type: 'symmetric' });
    // The same name in another vault: its own counter (no rollback either way), and A's blob does not open there.
    const other = await rig.load(mode, signed, { vaultId: new Uint8Array(16).fill(0xb) });
    open.push(other);
    const otherStore: Store = new Map();
    await mutate(other, otherStore, 'create', { name: 'k', type: 'symmetric' });
    const h = await handleOf(other, 'k');
    await mutate(other, otherStore, 'rotate', { handle: h });
    expect(await loadStore(await rig.load(mode, signed, { vaultId: idA }).then((v) => (open.push(v), v)), store)).toEqual([{ name: 'k', ok: true }]);
    expect(await loadStore(await rig.load(mode, signed, { vaultId: new Uint8Array(16).fill(0xb) }).then((v) => (open.push(v), v)), store)).toEqual([{ ok: false, code: 'unseal_failed' }]);
  });

  it('reseal_key re-persists a tombstone after a root rotation; export_sealed of a measurement key under signer is denied', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    const gone = await mutate<Created>(first, store, 'create', { name: 'gone', type: 'symmetric', deletion_allowed: true, seal_policy: 'measurement' });
    await mutate(first, store, 'destroy', { handle: gone.handle });
    expect(await codeOf(first.call('reseal_key', { name: 'nope' }))).toBe('not_found');
    rig.provider.rotateSealingRoot();
    const second = await load(mode);
    expect(await loadStore(second, store)).toEqual([{ name: 'gone', ok: true, stale: true }]);
    await mutate(second, store, 'reseal_key', { name: 'gone' });
    rig.provider.revokeSealingRoot(1);
    const third = await load(mode);
    expect(await loadStore(third, store)).toEqual([{ name: 'gone', ok: true }]);
    const pinned = await mutate<Created>(third, store, 'create', { name: 'gone', type: 'symmetric', seal_policy: 'measurement' });
    expect(await codeOf(third.call('export_sealed', { handle: pinned.handle, policy: 'signer' }))).toBe('denied');
    expect(bytes(await third.call('export_sealed', { handle: pinned.handle, policy: 'measurement' })).length).toBeGreaterThan(0);
  });

  it('load answers per blob in order; a name loaded twice is conflict; shapes are checked', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    await mutate(first, store, 'create', { name: 'x', type: 'x25519' });
    await mutate(first, store, 'create', { name: 'y', type: 'symmetric' });
    const second = await load(mode);
    const r = await second.call('load', { blobs: [store.get('x'), store.get('y'), store.get('x'), store.get('y')], names: ['x', 'z', 'x', 'y'] });
    expect(r).toEqual([{ name: 'x', ok: true }, { ok: false, code: 'unseal_failed' }, { ok: false, code: 'conflict' }, { name: 'y', ok: true }]);
    expect(await codeOf(second.call('load', { blobs: [store.get('x')], names: [] }))).toBe('bad_request');
    expect(await second.call('load', { blobs: [store.get('x')], names: ['Bad Name'] })).toEqual([{ ok: false, code: 'bad_request' }]);
    expect(await codeOf(second.call('load', { blobs: new Array(257).fill(new Uint8Array(1)), names: new Array(257).fill('n') }))).toMatch(/^(limit|invalid_args)$/);
    // A name known here (created, not loaded) cannot be loaded over.
    const third = await load(mode);
    await third.call('create', { name: 'x', type: 'symmetric' });
    expect(await loadStore(third, store, ['x'])).toEqual([{ ok: false, code: 'conflict' }]);
  });

  it('commit and abort: unknown names, wrong versions, retries', async () => {
    const vault = await load(mode);
    const store: Store = new Map();
    expect(await codeOf(vault.call('commit', { name: 'none', version: 1 }))).toBe('not_found');
    expect(await vault.call('abort', { name: 'none', version: 1 })).toBe(null); // an aborted create, aborted again
    const c = (await vault.call('create', { name: 'k', type: 'symmetric' })) as Created;
    expect(await codeOf(vault.call('commit', { name: 'k', version: 2 }))).toBe('conflict');
    expect(await vault.call('commit', { name: 'k', version: 1 })).toBe(null);
    expect(await vault.call('commit', { name: 'k', version: 1 })).toBe(null);
    expect(await codeOf(vault.call('abort', { name: 'k', version: 1 }))).toBe('conflict');
    const r = await mutate(vault, store, 'rotate', { handle: c.handle }, false);
    expect(await vault.call('abort', { name: 'k', version: r.persist.version })).toBe(null);
    expect(await vault.call('abort', { name: 'k', version: r.persist.version })).toBe(null); // a retried abort
    expect(await codeOf(vault.call('commit', { name: 'k', version: r.persist.version }))).toBe('conflict');
  });

  it('a destroyed key loads as a tombstone; its name can be created again and its counter continues', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    const k = await mutate<Created>(first, store, 'create', { name: 'old', type: 'ed25519', deletion_allowed: true });
    const live = store.get('old')!;
    await mutate(first, store, 'destroy', { handle: k.handle });
    const second = await load(mode);
    expect(await loadStore(second, store)).toEqual([{ name: 'old', ok: true }]);
    expect(await codeOf(second.call('open', { name: 'old' }))).toBe('not_found');
    expect(await second.call('list', {})).toEqual([]);
    const again = await mutate<Created>(second, store, 'create', { name: 'old', type: 'symmetric' });
    expect(again.persist.version).toBe(3);
    const third = await load(mode);
    expect(await third.call('load', { blobs: [live], names: ['old'] })).toEqual([{ ok: false, code: 'rollback' }]);
    expect(await loadStore(third, store)).toEqual([{ name: 'old', ok: true }]);
    expect(await third.call('describe', { handle: await handleOf(third, 'old') })).toMatchObject({ type: 'symmetric', latest_version: 1 });
  });

  it('after a root rotation load says stale; a no-change configure moves the key forward before the old root is revoked', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    await mutate(first, store, 'create', { name: 'moved', type: 'ed25519' });
    await mutate(first, store, 'create', { name: 'left', type: 'ed25519', seal_policy: 'measurement' });
    const pub = bytes(await first.call('public_key', { handle: await handleOf(first, 'moved') }));
    const oldRoot = 1; // a fresh platform's first root
    expect(rig.provider.rotateSealingRoot().id).toBe(2);

    const second = await load(mode);
    expect(await loadStore(second, store)).toEqual([{ name: 'moved', ok: true, stale: true }, { name: 'left', ok: true, stale: true }]);
    const moved = await handleOf(second, 'moved');
    const r = await mutate<{ key: KeyMeta; persist: Persist }>(second, store, 'configure', { handle: moved });
    expect(r.key).toMatchObject({ name: 'moved', latest_version: 1 });
    expect(new DataView(r.persist.blob.buffer, r.persist.blob.byteOffset).getUint32(8, true)).toBe(2); // the new root's id

    rig.provider.revokeSealingRoot(oldRoot);
    const third = await load(mode);
    expect(await loadStore(third, store)).toEqual([{ name: 'moved', ok: true }, { ok: false, code: 'unseal_failed' }]);
    expect(bytes(await third.call('public_key', { handle: await handleOf(third, 'moved') }))).toEqual(pub);
  });

  it('the signer policy (the default) needs a signed, trusted module', async () => {
    const vault = await rig.load(mode, unsigned, { trust: null });
    open.push(vault);
    expect(await codeOf(vault.call('create', { name: 'k', type: 'symmetric' }))).toBe('state');
    expect(await vault.call('list', {})).toEqual([]);
    expect(await vault.call('create', { name: 'k', type: 'symmetric', seal_policy: 'measurement' })).toMatchObject({ key: { name: 'k' } });
  });

  it('export_sealed under measurement: this module imports it, a module with one byte changed refuses it', async () => {
    const store: Store = new Map();
    const first = await load(mode);
    const k = await mutate<Created>(first, store, 'create', { name: 'k', type: 'ed25519' });
    const pub = bytes(await first.call('public_key', { handle: k.handle }));
    const exported = bytes(await first.call('export_sealed', { handle: k.handle, policy: 'measurement' }));
    expect(await codeOf(first.call('import_sealed', { blob: exported }))).toBe('conflict'); // the name is taken here

    const other = await load(mode, rig.sign(changed));
    expect(await codeOf(other.call('import_sealed', { blob: exported }))).toBe('unseal_failed');
    expect(await codeOf(other.call('reseal', { blob: exported }))).toBe('unseal_failed');

    const same = await load(mode);
    const imp = await mutate<Created>(same, store, 'import_sealed', { blob: exported, name: 'copy' });
    expect(imp.key).toMatchObject({ name: 'copy', type: 'ed25519', exportable: false, seal_policy: 'signer' });
    expect(bytes(await same.call('public_key', { handle: imp.handle }))).toEqual(pub);
    expect(await codeOf(same.call('export', { handle: imp.handle }))).toBe('denied'); // still not exportable
    // Tampered exports, and a key blob offered as an export, do not open.
    const bad = exported.slice();
    bad[bad.length - 3]! ^= 0x80;
    expect(await codeOf(same.call('import_sealed', { blob: bad }))).toBe('unseal_failed');
    expect(await codeOf(same.call('import_sealed', { blob: store.get('k')! }))).toBe('unseal_failed');
    expect(await codeOf(same.call('reseal', { blob: store.get('k')! }))).toBe('unseal_failed');
  });

  it('export_sealed under signer: an upgrade by the same signer imports and reseals it forward; the older module cannot open the result', async () => {
    const store: Store = new Map();
    const v1 = await load(mode);
    const k = await mutate<Created>(v1, store, 'create', { name: 'k', type: 'symmetric', exportable: true });
    const material = bytes(await v1.call('export', { handle: k.handle }));
    const exported = bytes(await v1.call('export_sealed', { handle: k.handle }));
    expect(new DataView(exported.buffer, exported.byteOffset).getUint32(12, true)).toBe(1); // sealed at svn 1

    const v2 = await load(mode, rig.sign(upgraded));
    const resealed = bytes(await v2.call('reseal', { blob: exported }));
    expect(new DataView(resealed.buffer, resealed.byteOffset).getUint32(12, true)).toBe(2); // moved to svn 2
    // (Under another name: 'k' has one counter for the signer's whole line, and the store holds v1's record.)
    const imp = await mutate<Created>(v2, new Map(), 'import_sealed', { blob: resealed, name: 'k2' });
    expect(bytes(await v2.call('export', { handle: imp.handle }))).toEqual(material);
    // The key blobs of v1 load in v2 too (signer policy, svn 1 ≤ 2), as stale (svn 1 < 2), in a fresh instance.
    const v2b = await load(mode, rig.sign(upgraded));
    expect(await loadStore(v2b, store)).toEqual([{ name: 'k', ok: true, stale: true }]);

    // v1 (svn 1) cannot open what was sealed at svn 2; another signer's module opens neither.
    const v1b = await load(mode);
    expect(await codeOf(v1b.call('import_sealed', { blob: resealed }))).toBe('unseal_failed');
    const otherSigner = generateKeyPair();
    const stranger = await rig.load(mode, rig.sign(upgraded, otherSigner), { trust: { trusted: [{ publicKey: otherSigner.publicKey }] } });
    open.push(stranger);
    expect(await codeOf(stranger.call('import_sealed', { blob: exported }))).toBe('unseal_failed');
    expect(await codeOf(stranger.call('import_sealed', { blob: resealed }))).toBe('unseal_failed');
  });
});
