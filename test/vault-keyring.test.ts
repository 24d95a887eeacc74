/**
 * The vault enclave's keyring (enclave-modules/vault/keyring.ts, key-ops.ts): create, open, list,
 * describe, rotate, configure, trim, destroy, export, handles and bounds, through the real runtime
 * in both isolation modes on a test platform (test/helpers/vault.ts). Persistence across instances
 * is test/vault-persist.test.ts.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EnclaveHandle } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { MODES, type Mode } from './helpers/modes.js';
import { compileModule } from './helpers/raw-abi.js';
import { vaultModule, vaultRig, type KeyMeta, type Persist, type VaultRig } from './helpers/vault.js';

interface Created {
  handle: Uint8Array;
  key: KeyMeta;
  persist: Persist;
}

let unsigned: Uint8Array;
beforeAll(async () => {
  unsigned = await vaultModule();
});

// A fresh platform per test: counters (a name's versions) start at 0.
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

async function load(mode: Mode): Promise<EnclaveHandle> {
  const v = await rig.load(mode, signed);
  open.push(v);
  return v;
}

/** Calls a mutating op and commits its `persist`, as the host does after storing the blob. */
async function mutate<T extends { persist: Persist }>(vault: EnclaveHandle, op: string, args: Record<string, unknown>): Promise<T> {
  const reply = (await vault.call(op, args)) as T;
  expect(reply.persist.name).toBeTypeOf('string');
  expect(await vault.call('commit', { name: reply.persist.name, version: reply.persist.version })).toBe(null);
  return reply;
}

function create(vault: EnclaveHandle, name: string, more: Record<string, unknown> = {}): Promise<Created> {
  return mutate<Created>(vault, 'create', { name, type: 'symmetric', ...more });
}

const bytes = (v: unknown): Uint8Array => new Uint8Array(v as Uint8Array);

describe.each(MODES)('vault keyring ($name)', (mode) => {
  it('create, open, list and describe', async () => {
    const vault = await load(mode);
    const a = await create(vault, 'billing', { type: 'ed25519', exportable: true });
    expect(a.handle.length).toBe(16);
    expect(a.key).toEqual({
      name: 'billing', type: 'ed25519', latest_version: 1, min_decryption_version: 1, min_available_version: 1,
      exportable: true, deletion_allowed: false, seal_policy: 'signer',
    });
    expect(a.persist.version).toBe(1);
    await create(vault, 'alpha.v2', { type: 'x25519', seal_policy: 'measurement', deletion_allowed: true });
    await create(vault, 'zeta_key');

    expect(await vault.call('list', {})).toEqual(['alpha.v2', 'billing', 'zeta_key']);
    expect(await vault.call('list', { after: 'alpha.v2', limit: 1 })).toEqual(['billing']);
    expect(await vault.call('list', { after: 'zeta_key' })).toEqual([]);

    const o = (await vault.call('open', { name: 'alpha.v2' })) as { handle: Uint8Array; key: KeyMeta };
    expect(o.key).toMatchObject({ name: 'alpha.v2', type: 'x25519', seal_policy: 'measurement', deletion_allowed: true, exportable: false });
    expect(bytes(((await vault.call('open', { name: 'billing' })) as { handle: Uint8Array }).handle)).toEqual(bytes(a.handle));
    expect(await vault.call('describe', { handle: o.handle })).toEqual(o.key);

    expect(await codeOf(vault.call('open', { name: 'nope' }))).toBe('not_found');
    expect(await codeOf(vault.call('create', { name: 'billing', type: 'symmetric' }))).toBe('conflict');
    expect(await codeOf(vault.call('create', { name: 'k', type: 'rsa' }))).toBe('bad_request');
    expect(await codeOf(vault.call('create', { name: 'k', type: 'symmetric', seal_policy: 'nobody' }))).toBe('bad_request');
    for (const name of ['', 'Upper', '-lead', '.lead', 'a/b', 'a b', 'é', 'a'.repeat(65)]) {
      expect(await codeOf(vault.call('create', { name, type: 'symmetric' })), name).toMatch(/^(bad_request|invalid_args)$/);
    }
    expect(await vault.call('list', {})).toEqual(['alpha.v2', 'billing', 'zeta_key']);
  });

  it('rotate adds a version; a pending change refuses another mutation with conflict', async () => {
    const vault = await load(mode);
    const k = await create(vault, 'rot', { exportable: true });
    const v1 = bytes(await vault.call('export', { handle: k.handle }));
    const r = (await vault.call('rotate', { handle: k.handle })) as { version: number; persist: Persist };
    expect(r.version).toBe(2);
    expect(r.persist).toMatchObject({ name: 'rot', version: 2 });
    // Pending: every other mutation of the key waits for commit or abort.
    for (const [op, args] of [
      ['rotate', {}], ['configure', { deletion_allowed: true }], ['trim', { min_available_version: 1 }], ['destroy', {}],
    ] as const) {
      expect(await codeOf(vault.call(op, { handle: k.handle, ...args })), op).toBe('conflict');
    }
    expect(await codeOf(vault.call('create', { name: 'rot', type: 'symmetric' }))).toBe('conflict');
    // Use sees the committed record until the rotation commits: the latest is still version 1.
    expect(bytes(await vault.call('export', { handle: k.handle }))).toEqual(v1);
    expect(await vault.call('commit', { name: 'rot', version: 2 })).toBe(null);
    expect(await vault.call('commit', { name: 'rot', version: 2 })).toBe(null); // a retried commit
    const v2 = bytes(await vault.call('export', { handle: k.handle }));
    expect(v2).not.toEqual(v1);
    expect(bytes(await vault.call('export', { handle: k.handle, version: 1 }))).toEqual(v1);
    expect(await vault.call('describe', { handle: k.handle })).toMatchObject({ latest_version: 2, min_decryption_version: 1, min_available_version: 1 });
    expect(await codeOf(vault.call('export', { handle: k.handle, version: 3 }))).toBe('not_found');
    expect(await codeOf(vault.call('commit', { name: 'rot', version: 7 }))).toBe('conflict');
  });

  it('abort takes a mutation back; an aborted create disappears', async () => {
    const vault = await load(mode);
    const c = (await vault.call('create', { name: 'gone', type: 'symmetric', deletion_allowed: true })) as Created;
    expect(await vault.call('abort', { name: 'gone', version: c.persist.version })).toBe(null);
    expect(await codeOf(vault.call('open', { name: 'gone' }))).toBe('not_found');
    expect(await codeOf(vault.call('describe', { handle: c.handle }))).toBe('not_found');
    expect(await vault.call('list', {})).toEqual([]);

    const k = await create(vault, 'stay', { deletion_allowed: true, exportable: true });
    const r = (await vault.call('rotate', { handle: k.handle })) as { version: number; persist: Persist };
    expect(await vault.call('abort', { name: 'stay', version: r.persist.version })).toBe(null);
    expect(await vault.call('describe', { handle: k.handle })).toMatchObject({ latest_version: 1 });
    expect(await codeOf(vault.call('export', { handle: k.handle, version: 2 }))).toBe('not_found');

    const d = (await vault.call('destroy', { handle: k.handle })) as { persist: Persist };
    expect(await codeOf(vault.call('describe', { handle: k.handle }))).toBe('not_found');
    expect(await vault.call('abort', { name: 'stay', version: d.persist.version })).toBe(null);
    // The destroy is taken back: the same handle names the key again.
    expect(await vault.call('describe', { handle: k.handle })).toMatchObject({ name: 'stay', latest_version: 1 });
    expect(await codeOf(vault.call('abort', { name: 'stay', version: 1 }))).toBe('conflict'); // the committed one
  });

  it('a create not committed yet is not used or exported; over a tombstone, export neither traps nor seals the tombstone', async () => {
    const vault = await load(mode);
    // Over nothing: an abort takes the key back, so nothing may be encrypted or exported under it.
    const fresh = (await vault.call('create', { name: 'fresh', type: 'symmetric', exportable: true })) as Created;
    for (const [op, args] of [
      ['encrypt', { plaintext: new Uint8Array(3) }], ['mac', { data: new Uint8Array(3) }], ['export', {}], ['export_sealed', {}],
    ] as const) {
      expect(await codeOf(vault.call(op, { handle: fresh.handle, ...args })), op).toBe('not_found');
    }
    expect(await vault.call('describe', { handle: fresh.handle })).toMatchObject({ name: 'fresh', latest_version: 1 });
    expect(await vault.call('commit', { name: 'fresh', version: fresh.persist.version })).toBe(null);
    expect(bytes(await vault.call('export', { handle: fresh.handle }))).toHaveLength(32);

    // Over the tombstone of an exportable key: the committed record is the tombstone.
    const old = await create(vault, 'again', { exportable: true, deletion_allowed: true });
    await mutate(vault, 'destroy', { handle: old.handle });
    const reborn = (await vault.call('create', { name: 'again', type: 'symmetric' })) as Created;
    expect(await codeOf(vault.call('export', { handle: reborn.handle }))).toBe('not_found');
    expect(await codeOf(vault.call('export_sealed', { handle: reborn.handle }))).toBe('not_found');
    expect(await codeOf(vault.call('encrypt', { handle: reborn.handle, plaintext: new Uint8Array(3) }))).toBe('not_found');
    // The instance is still there, keyring and all.
    expect(await vault.call('describe', { handle: fresh.handle })).toMatchObject({ name: 'fresh' });
    expect(await vault.call('commit', { name: 'again', version: reborn.persist.version })).toBe(null);
    expect(await codeOf(vault.call('export', { handle: reborn.handle }))).toBe('denied');
    expect((await vault.call('export_sealed', { handle: reborn.handle })) as Uint8Array).toBeInstanceOf(Uint8Array);
  });

  it('configure and trim keep min_available ≤ min_decryption ≤ latest', async () => {
    const vault = await load(mode);
    const k = await create(vault, 'cfg', { exportable: true });
    await mutate(vault, 'rotate', { handle: k.handle });
    await mutate(vault, 'rotate', { handle: k.handle });
    expect(await codeOf(vault.call('configure', { handle: k.handle, min_decryption_version: 4 }))).toBe('bad_request');
    expect(await codeOf(vault.call('trim', { handle: k.handle, min_available_version: 2 }))).toBe('bad_request'); // above min_decryption
    const c = await mutate<{ key: KeyMeta; persist: Persist }>(vault, 'configure', { handle: k.handle, min_decryption_version: 3, deletion_allowed: true });
    expect(c.key).toMatchObject({ min_decryption_version: 3, deletion_allowed: true, latest_version: 3 });
    const t = await mutate<{ key: KeyMeta; persist: Persist }>(vault, 'trim', { handle: k.handle, min_available_version: 2 });
    expect(t.key).toMatchObject({ min_available_version: 2, min_decryption_version: 3 });
    expect(await codeOf(vault.call('export', { handle: k.handle, version: 1 }))).toBe('not_found');
    expect(bytes(await vault.call('export', { handle: k.handle, version: 2 }))).toHaveLength(32);
    // Trimmed versions are gone: neither min may go below min_available again.
    expect(await codeOf(vault.call('trim', { handle: k.handle, min_available_version: 1 }))).toBe('bad_request');
    expect(await codeOf(vault.call('configure', { handle: k.handle, min_decryption_version: 1 }))).toBe('bad_request');
    // Lowering min_decryption back to min_available is allowed.
    const back = await mutate<{ key: KeyMeta; persist: Persist }>(vault, 'configure', { handle: k.handle, min_decryption_version: 2 });
    expect(back.key.min_decryption_version).toBe(2);
  });

  it('destroy is denied unless deletion_allowed; a destroyed handle stays not_found after its slot is reused', async () => {
    const vault = await load(mode);
    const keep = await create(vault, 'keep');
    expect(await codeOf(vault.call('destroy', { handle: keep.handle }))).toBe('denied');
    const old = await create(vault, 'old', { deletion_allowed: true });
    const d = (await vault.call('destroy', { handle: old.handle })) as { persist: Persist };
    expect(d.persist).toMatchObject({ name: 'old', version: 2 });
    expect(await codeOf(vault.call('describe', { handle: old.handle }))).toBe('not_found');
    expect(await vault.call('commit', { name: 'old', version: 2 })).toBe(null);
    expect(await codeOf(vault.call('open', { name: 'old' }))).toBe('not_found');
    expect(await vault.call('list', {})).toEqual(['keep']);

    // The freed slot is reused by the next key, with the next generation.
    const reborn = await create(vault, 'old', { exportable: true });
    expect(reborn.persist.version).toBe(3); // the name's counter continues
    expect(reborn.handle.subarray(0, 4)).toEqual(old.handle.subarray(0, 4));
    expect(reborn.handle.subarray(4, 8)).not.toEqual(old.handle.subarray(4, 8));
    expect(await codeOf(vault.call('describe', { handle: old.handle }))).toBe('not_found');
    expect(await codeOf(vault.call('export', { handle: old.handle }))).toBe('not_found');
    expect(await vault.call('describe', { handle: reborn.handle })).toMatchObject({ name: 'old', latest_version: 1 });
  });

  it('export gives material only for a key created exportable', async () => {
    const vault = await load(mode);
    const secret = await create(vault, 'secret', { type: 'ed25519' });
    expect(await codeOf(vault.call('export', { handle: secret.handle }))).toBe('denied');
    expect(await codeOf(vault.call('export', { handle: secret.handle, version: 1 }))).toBe('denied');
    // configure cannot make a key exportable: the flag is set at create only.
    expect(await codeOf(vault.call('configure', { handle: secret.handle, exportable: true }))).toMatch(/^(bad_request|invalid_args)$/);
    const open = await create(vault, 'open', { exportable: true });
    const m = bytes(await vault.call('export', { handle: open.handle }));
    expect(m).toHaveLength(32);
    expect(bytes(await vault.call('export', { handle: open.handle }))).toEqual(m);
    const other = await create(vault, 'other', { exportable: true });
    expect(bytes(await vault.call('export', { handle: other.handle }))).not.toEqual(m);
  });

  it('a bad handle is not_found: another instance, a changed byte, any length', async () => {
    const vault = await load(mode);
    const k = await create(vault, 'h');
    const other = await load(mode);
    await create(other, 'h'); // same slot, same generation: only the session key differs
    expect(await codeOf(other.call('describe', { handle: k.handle }))).toBe('not_found');
    for (let i = 0; i < 16; i++) {
      const bad = k.handle.slice();
      bad[i]! ^= 1;
      expect(await codeOf(vault.call('describe', { handle: bad })), `byte ${i}`).toBe('not_found');
    }
    for (const handle of [new Uint8Array(0), k.handle.subarray(0, 15), new Uint8Array(16)]) {
      expect(await codeOf(vault.call('rotate', { handle }))).toBe('not_found');
    }
    expect(await codeOf(vault.call('describe', { handle: new Uint8Array(17) }))).toMatch(/^(not_found|invalid_args)$/);
    expect(await vault.call('describe', { handle: k.handle })).toMatchObject({ name: 'h' });
  });
});

describe('vault keyring bounds (in-process)', () => {
  const mode = MODES[0]!;

  it('at most 64 live versions: rotate is limit until trimmed', async () => {
    const vault = await load(mode);
    const k = await create(vault, 'many');
    for (let v = 2; v <= 64; v++) await mutate(vault, 'rotate', { handle: k.handle });
    expect(await codeOf(vault.call('rotate', { handle: k.handle }))).toBe('limit');
    await mutate(vault, 'configure', { handle: k.handle, min_decryption_version: 10 });
    await mutate(vault, 'trim', { handle: k.handle, min_available_version: 10 });
    const r = await mutate<{ version: number; persist: Persist }>(vault, 'rotate', { handle: k.handle });
    expect(r.version).toBe(65);
  });

  it('at most 1024 keys', async () => {
    const vault = await load(mode);
    // Pending creates count: no commit needed (and none of the 1024 fsyncs).
    for (let i = 0; i < 1024; i++) await vault.call('create', { name: `k${i}`, type: 'symmetric' });
    expect(await codeOf(vault.call('create', { name: 'one-more', type: 'symmetric' }))).toBe('limit');
    expect(((await vault.call('list', {})) as string[]).length).toBe(1024);
    expect(await codeOf(vault.call('list', { limit: 1025 }))).toMatch(/^(bad_request|invalid_args)$/);
    // An aborted create frees its place.
    const k0 = (await vault.call('open', { name: 'k0' })) as { handle: Uint8Array };
    expect(await vault.call('abort', { name: 'k0', version: 1 })).toBe(null);
    expect(await codeOf(vault.call('describe', { handle: k0.handle }))).toBe('not_found');
    expect(await vault.call('create', { name: 'one-more', type: 'symmetric' })).toMatchObject({ key: { name: 'one-more' } });
  }, 60_000);
});

/**
 * The runtime gives no view of an instance's linear memory, so this one runs the vault module on
 * the plain WebAssembly API with stub imports (a platform in a Map) and a `random` that hands out
 * known material: it then counts the copies of that material left in memory.
 */
describe('vault secrets in linear memory (raw instance)', () => {
  interface Raw {
    call(op: string, args: unknown): Record<string, unknown>;
    copies(pattern: Uint8Array): number;
    /** The next 32-byte `random` request (a key's material) gets these bytes. */
    nextMaterial(m: Uint8Array): void;
  }
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

  async function raw(counters: Map<bigint, { value: bigint; tag: Uint8Array }>): Promise<Raw> {
    let memory!: WebAssembly.Memory;
    let material: Uint8Array | undefined;
    const u8 = () => new Uint8Array(memory.buffer);
    const dv = () => new DataView(memory.buffer);
    const enclave = {
      abort: () => {
        throw new Error('enclave aborted');
      },
      random(p: number, n: number) {
        u8().set(n === 32 && material !== undefined ? material : randomBytes(n), p);
        if (n === 32) material = undefined;
        return 0;
      },
      now: () => 0n,
      log: () => undefined,
      seal_key: () => -3,
      report: () => -3,
      seal_key_at(policy: number, _keyId: number, _svn: number, out: number) {
        u8().set(createHmac('sha256', 'test root').update(String(policy)).digest(), out);
        dv().setUint32(out + 32, 1, true);
        dv().setUint32(out + 36, 0, true);
        return 0;
      },
      counter_read(_policy: number, id: bigint, out: number) {
        const c = counters.get(BigInt.asUintN(64, id)) ?? { value: 0n, tag: new Uint8Array(32) };
        dv().setBigUint64(out, c.value, true);
        u8().set(c.tag, out + 8);
        return 0;
      },
      counter_advance(_policy: number, id: bigint, expected: bigint, tag: number) {
        const key = BigInt.asUintN(64, id);
        const c = counters.get(key) ?? { value: 0n, tag: new Uint8Array(32) };
        if (c.value !== BigInt.asUintN(64, expected)) return -4;
        counters.set(key, { value: c.value + 1n, tag: u8().slice(tag, tag + 32) });
        return 0;
      },
    };
    const { instance } = await WebAssembly.instantiate(await compileModule('vault'), { enclave });
    const ex = instance.exports as { memory: WebAssembly.Memory; enclave_alloc(n: number): number; enclave_call(p: number, n: number): number };
    memory = ex.memory;
    const handle: RawVault = {
      call(op, args) {
        const req = packr.pack({ op, args });
        const p = ex.enclave_alloc(req.length);
        u8().set(req, p);
        const d = ex.enclave_call(p, req.length);
        const reply = unpackr.unpack(u8().slice(dv().getUint32(d, true), dv().getUint32(d, true) + dv().getUint32(d + 4, true))) as { ok?: Record<string, unknown>; err?: { code: string } };
        if (reply.err !== undefined) throw new Error(reply.err.code);
        return reply.ok!;
      },
      copies(pattern) {
        const mem = Buffer.from(memory.buffer);
        let n = 0;
        for (let i = mem.indexOf(pattern); i >= 0; i = mem.indexOf(pattern, i + 1)) n++;
        return n;
      },
      nextMaterial(m) {
        material = m;
      },
    };
    handle.call('init', { vault_id: new Uint8Array(16).fill(7) }); // one vault: the same id for every instance
    return handle;
  }

  it('material is zeroed when a rotation is aborted, a trim commits, and a destroy commits; one copy lives meanwhile', async () => {
    const counters = new Map<bigint, { value: bigint; tag: Uint8Array }>();
    const vault = await raw(counters);
    const [m1, m2, m3] = [0xa1, 0xb2, 0xc3].map((b) => new Uint8Array(32).fill(b)) as [Uint8Array, Uint8Array, Uint8Array];
    const mutate = (op: string, args: Record<string, unknown>) => {
      const r = vault.call(op, args) as { persist: Persist };
      vault.call('commit', { name: r.persist.name, version: r.persist.version });
      return r;
    };
    vault.nextMaterial(m1);
    const k = mutate('create', { name: 'k', type: 'ed25519', seal_policy: 'measurement', deletion_allowed: true }) as unknown as Created;
    vault.call('sign', { handle: k.handle, message: new Uint8Array(3) });
    expect(vault.copies(m1)).toBe(1);

    vault.nextMaterial(m2);
    const r = vault.call('rotate', { handle: k.handle }) as { persist: Persist };
    expect(vault.copies(m2)).toBe(1);
    vault.call('abort', { name: 'k', version: r.persist.version });
    expect(vault.copies(m2)).toBe(0);

    vault.nextMaterial(m3);
    mutate('rotate', { handle: k.handle });
    mutate('configure', { handle: k.handle, min_decryption_version: 2 });
    const t = vault.call('trim', { handle: k.handle, min_available_version: 2 }) as { persist: Persist };
    expect(vault.copies(m1)).toBe(1); // pending: the committed record still holds version 1
    vault.call('commit', { name: 'k', version: t.persist.version });
    expect(vault.copies(m1)).toBe(0);

    // A second instance loads the record (its plaintext is wiped once parsed), then destroys the key.
    const latest = vault.call('configure', { handle: k.handle, deletion_allowed: true }) as { persist: Persist };
    vault.call('commit', { name: 'k', version: latest.persist.version });
    const other = await raw(counters);
    expect(other.call('load', { blobs: [latest.persist.blob], names: ['k'] })).toEqual([{ name: 'k', ok: true }]);
    expect(other.copies(m3)).toBe(1);
    // Meanwhile the first instance seals a destroy of its own, at the same counter value.
    const late = vault.call('destroy', { handle: k.handle }) as { persist: Persist };
    const h = (other.call('open', { name: 'k' }) as { handle: Uint8Array }).handle;
    const d = other.call('destroy', { handle: h }) as { persist: Persist };
    expect(other.copies(m3)).toBe(1); // pending
    other.call('commit', { name: 'k', version: d.persist.version });
    expect(other.copies(m3)).toBe(0);
    // The first one's commit finds the counter moved: conflict, and its destroy is dropped.
    expect(() => vault.call('commit', { name: 'k', version: late.persist.version })).toThrow('conflict');
    expect(vault.call('describe', { handle: k.handle })).toMatchObject({ name: 'k', latest_version: 2 });
  });
});
