/**
 * host/vault/: the vault client against the real vault enclave (enclave-modules/vault) and the real
 * software platform (sealing roots, monotonic counters) in a temporary directory, with an
 * in-memory store that can fail, stall or be tampered with: restart survival, a failed put that
 * aborts (the key's previous state stays usable), compare-and-set conflicts, refused records by
 * name and code, concurrent changes of one key serialised, a failed commit, hostile stores.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { EnclaveError } from '../core/index.js';
import { generateKeyPair, signModule, SoftwareAttestationProvider } from '../attest/index.js';
import { FileStore, Vault, VAULT_LIMITS, type VaultOpenOptions, type VaultStore } from '../host/index.js';
import { codeOf } from './helpers/errors.js';

const root = mkdtempSync(join(tmpdir(), 'enclave-vault-client-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The vault module signed by a test release key, loaded with that key trusted: records are sealed
// to the signer (the default policy), as a deployment does it (docs/examples/vault.mjs).
const MODULE = 'enclave-modules/vault/build/vault.wasm';
const releaseKey = generateKeyPair();
const signed = signModule(new Uint8Array(readFileSync(MODULE)), releaseKey);
const trust = { trusted: [{ publicKey: releaseKey.publicKey }] };

const text = (s: string) => new TextEncoder().encode(s);
/** The key version a vault ciphertext names: "EV1" ‖ version u32 LE ‖ … (enclave-modules/vault/crypto-ops.ts). */
const versionOf = (ciphertext: Uint8Array) => new DataView(ciphertext.buffer, ciphertext.byteOffset).getUint32(3, true);

interface Entry {
  version: number;
  bytes: Uint8Array;
}

/**
 * A SealedStore in memory (the contract of host/store: compare-and-set put, sorted paged list),
 * with hooks to make a put fail or wait, and direct access to tamper with what it holds.
 */
class MemoryStore implements VaultStore {
  readonly entries = new Map<string, Entry>();
  readonly puts: { name: string; expectedVersion: number }[] = [];
  /** Thrown by the next put (then cleared). */
  failNextPut: unknown;
  /** Awaited by every put before it writes. */
  gate: Promise<void> | undefined;
  /** Overrides list (a hostile store). */
  listOverride: ((options?: { prefix?: string; after?: string; limit?: number }) => Promise<string[]>) | undefined;

  async get(name: string) {
    const e = this.entries.get(name);
    return e === undefined ? undefined : { name, version: e.version, bytes: e.bytes.slice() };
  }

  async put(name: string, bytes: Uint8Array, options: { expectedVersion: number }) {
    this.puts.push({ name, expectedVersion: options.expectedVersion });
    await this.gate;
    if (this.failNextPut !== undefined) {
      const err = this.failNextPut;
      this.failNextPut = undefined;
      throw err;
    }
    const current = this.entries.get(name)?.version ?? 0;
    if (current !== options.expectedVersion) throw new EnclaveError('conflict', `expected version ${options.expectedVersion}, found ${current}`);
    const entry = { version: current + 1, bytes: bytes.slice() };
    this.entries.set(name, entry);
    return { name, version: entry.version, bytes };
  }

  async list(options: { prefix?: string; after?: string; limit?: number } = {}) {
    if (this.listOverride !== undefined) return this.listOverride(options);
    const names = [...this.entries.keys()].filter((n) => n.startsWith(options.prefix ?? '') && (options.after === undefined || n > options.after)).sort();
    return names.slice(0, options.limit ?? 1000);
  }

  /** Writes behind the vault's back, as another writer or a hostile storage would (bumps the version). */
  replace(name: string, bytes: Uint8Array): void {
    const current = this.entries.get(name)?.version ?? 0;
    this.entries.set(name, { version: current + 1, bytes: bytes.slice() });
  }
}

let platformDir: string;
let platform: SoftwareAttestationProvider;
let store: MemoryStore;
const open: Vault[] = [];

async function openVault(extra: Partial<VaultOpenOptions> = {}): Promise<Vault> {
  const vault = await Vault.open({ store, attestation: platform, module: signed, trust, ...extra });
  open.push(vault);
  return vault;
}

beforeEach(async () => {
  await Promise.all(open.splice(0).map((v) => v.close()));
  platformDir = mkdtempSync(join(root, 'platform-'));
  platform = new SoftwareAttestationProvider({ dir: platformDir }).open();
  store = new MemoryStore();
});
afterAll(async () => {
  await Promise.all(open.splice(0).map((v) => v.close()));
});

describe('restart', () => {
  it('a new Vault on the same store and platform has every key, its versions and its policy', async () => {
    const first = await openVault();
    const sym = await first.create('payments', { type: 'symmetric' });
    const signer = await first.create('release', { type: 'ed25519', sealPolicy: 'measurement' });
    const c1 = await sym.encrypt(text('card 4111'), text('order:1'));
    await sym.rotate();
    const c2 = await sym.encrypt(text('card 4242'));
    const signature = await signer.sign(text('v1.0.0'));
    const publicKey = await signer.publicKey();
    await sym.configure({ minDecryptionVersion: 1, deletionAllowed: true });
    await first.close();

    const second = await openVault();
    expect(second.refused).toEqual([]);
    expect(await second.list()).toEqual(['payments', 'release']);
    const sym2 = await second.key('payments');
    expect(await sym2.describe()).toMatchObject({ name: 'payments', type: 'symmetric', latestVersion: 2, deletionAllowed: true, sealPolicy: 'signer' });
    expect(new TextDecoder().decode(await sym2.decrypt(c1, text('order:1')))).toBe('card 4111');
    expect(new TextDecoder().decode(await sym2.decrypt(c2))).toBe('card 4242');
    expect(await codeOf(sym2.decrypt(c1, text('order:2')))).toBe('decrypt_failed');
    const signer2 = await second.key('release');
    expect(await signer2.publicKey()).toEqual(publicKey);
    expect(await signer2.verify(text('v1.0.0'), signature)).toBe(true);
    expect(await signer2.verify(text('v1.0.1'), signature)).toBe(false);
  });

  it('survives a restart in worker isolation too', async () => {
    const first = await openVault({ isolation: 'worker' });
    const key = await first.create('w', { type: 'symmetric' });
    const tag = await key.mac(text('data'));
    await first.close();
    const second = await openVault({ isolation: 'worker' });
    expect(await (await second.key('w')).verifyMac(text('data'), tag)).toBe(true);
  });

  it('a platform without the counters (another directory) opens nothing, and says so per record', async () => {
    const first = await openVault();
    await first.create('a', { type: 'symmetric' });
    await first.close();
    platform = new SoftwareAttestationProvider({ dir: mkdtempSync(join(root, 'other-platform-')) }).open();
    const second = await openVault();
    expect(second.refused).toEqual([{ name: 'vault/a', code: 'unseal_failed' }]);
    expect(await codeOf(second.key('a'))).toBe('not_found');
  });
});

describe('every change is stored before it is acknowledged', () => {
  it('a put that fails aborts the change: the caller gets the store error, the key keeps its previous state', async () => {
    const vault = await openVault();
    const key = await vault.create('k', { type: 'symmetric' });
    const before = await key.encrypt(text('before'));
    store.failNextPut = new EnclaveError('unavailable', 'disk on fire');
    const err = await key.rotate().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).code).toBe('unavailable');
    expect(await key.describe()).toMatchObject({ latestVersion: 1 });
    expect(versionOf(await key.encrypt(text('after')))).toBe(1);
    expect(new TextDecoder().decode(await key.decrypt(before))).toBe('before');
    // Nothing is pending: the next change goes through, and a restart sees exactly it.
    expect(await key.rotate()).toBe(2);
    await vault.close();
    const again = await openVault();
    expect(await (await again.key('k')).describe()).toMatchObject({ latestVersion: 2 });
  });

  it('a create whose put fails leaves no key; the name can be created again', async () => {
    const vault = await openVault();
    store.failNextPut = new Error('a store bug: not an EnclaveError');
    const err = await vault.create('gone', { type: 'ed25519' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).code).toBe('unavailable');
    expect(await codeOf(vault.key('gone'))).toBe('not_found');
    expect(await vault.list()).toEqual([]);
    const key = await vault.create('gone', { type: 'ed25519' });
    expect((await key.sign(text('m'))).length).toBe(68);
  });

  it('a compare-and-set conflict (another writer) aborts the change with `conflict`', async () => {
    const vault = await openVault();
    const key = await vault.create('k', { type: 'symmetric' });
    const stored = store.entries.get('vault/k')!;
    store.replace('vault/k', stored.bytes); // same bytes, newer store version: the vault's expected version is stale
    expect(await codeOf(key.rotate())).toBe('conflict');
    expect(await key.describe()).toMatchObject({ latestVersion: 1 });
    expect(store.entries.get('vault/k')!.version).toBe(2);
    // A create over a record the store already holds under that name is a conflict too.
    store.replace('vault/taken', new Uint8Array([1, 2, 3]));
    expect(await codeOf(vault.create('taken', { type: 'symmetric' }))).toBe('conflict');
    expect(await codeOf(vault.key('taken'))).toBe('not_found');
  });

  it('a commit that fails after the put: the error says so, and the stored change takes effect at the reload', async () => {
    let failAdvance = false;
    const flaky = new Proxy(platform, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (prop === 'advanceCounter' && typeof value === 'function') {
          return (...args: unknown[]) => {
            if (failAdvance) throw new EnclaveError('unavailable', 'counter store down');
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const vault = await openVault({ attestation: flaky });
    const key = await vault.create('k', { type: 'symmetric' });
    failAdvance = true;
    const err = await key.rotate().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).message).toMatch(/stored but its commit failed/);
    failAdvance = false;
    // The next call reloads the store: the pending record is committed and the key is at version 2.
    expect(await key.describe()).toMatchObject({ latestVersion: 2 });
    expect(await key.rotate()).toBe(3);
    await vault.close();
    expect(await (await (await openVault()).key('k')).describe()).toMatchObject({ latestVersion: 3 });
  });
});

describe('refused records are reported by name and code', () => {
  it('changed bytes, a record moved to another name, a stale copy, a name that is no key name, an oversized record', async () => {
    const vault = await openVault();
    await vault.create('good', { type: 'symmetric' });
    const tampered = await vault.create('tampered', { type: 'symmetric' });
    const stale = await vault.create('stale', { type: 'symmetric' });
    await vault.create('moved', { type: 'symmetric' });
    const old = store.entries.get('vault/stale')!.bytes;
    await stale.rotate();
    void tampered;
    await vault.close();

    const bytes = store.entries.get('vault/tampered')!.bytes.slice();
    bytes[bytes.length - 20]! ^= 1;
    store.replace('vault/tampered', bytes);
    store.replace('vault/stale', old); // the copy before the rotation: its counter is behind
    store.replace('vault/elsewhere', store.entries.get('vault/moved')!.bytes);
    store.replace('vault/NOT A KEY', store.entries.get('vault/good')!.bytes);
    store.replace('vault/huge', new Uint8Array(VAULT_LIMITS.recordBytes + 1));

    const again = await openVault();
    expect([...again.refused].sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual([
      { name: 'vault/NOT A KEY', code: 'unseal_failed' },
      { name: 'vault/elsewhere', code: 'unseal_failed' },
      { name: 'vault/huge', code: 'too_large' },
      { name: 'vault/stale', code: 'rollback' },
      { name: 'vault/tampered', code: 'unseal_failed' },
    ]);
    expect(await again.list()).toEqual(['good', 'moved']);
    // A refused record is left as it was.
    expect(store.entries.get('vault/tampered')!.bytes).toEqual(bytes);
  });

  it('a record the store finds damaged (a FileStore file with a changed byte) is reported, the other keys load', async () => {
    const dir = mkdtempSync(join(root, 'store-'));
    const files = new FileStore(dir);
    const vault = await openVault({ store: files });
    const good = await vault.create('good', { type: 'symmetric' });
    const ciphertext = await good.encrypt(text('x'));
    await vault.create('damaged', { type: 'symmetric' });
    await vault.close();
    const leaf = `${Buffer.from('vault/damaged').toString('hex')}.b`;
    expect(readdirSync(join(dir, 'data'))).toContain(leaf);
    const bytes = readFileSync(join(dir, 'data', leaf));
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(join(dir, 'data', leaf), bytes);
    const again = await openVault({ store: files });
    expect(again.refused).toEqual([{ name: 'vault/damaged', code: 'store_corrupt' }]);
    expect(await (await again.key('good')).decrypt(ciphertext)).toEqual(text('x'));
    await files.close();
  });

  it('loads more records than one load batch holds', async () => {
    const vault = await openVault();
    const n = VAULT_LIMITS.loadBatch + 9;
    for (let i = 0; i < n; i++) await vault.create(`k${String(i).padStart(3, '0')}`, { type: 'symmetric' });
    await vault.close();
    const again = await openVault();
    expect(again.refused).toEqual([]);
    expect((await again.list()).length).toBe(n);
  }, 60_000);
});

describe('pending records at open', () => {
  it('commits more pending records than one load call may advance counters (64): none is refused with `limit`', async () => {
    const { cpSync } = await import('node:fs');
    const vault = await openVault();
    const n = 70;
    const names = Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`);
    for (const name of names) await vault.create(name, { type: 'symmetric' });
    // Every record rotated and stored, none committed: as a crash during a re-seal of every key
    // (configure({}) after a root rotation) leaves them. Made here by winding the platform's
    // counters back to before the rotations, so each stored record is one ahead: pending.
    const counters = join(platformDir, 'counters');
    const before = `${counters}.before`;
    cpSync(counters, before, { recursive: true });
    for (const name of names) await (await vault.key(name)).rotate();
    await vault.close();
    rmSync(counters, { recursive: true });
    cpSync(before, counters, { recursive: true });
    platform = new SoftwareAttestationProvider({ dir: platformDir }).open();
    const again = await openVault();
    expect(again.refused).toEqual([]);
    expect((await again.list()).length).toBe(n);
    for (const name of [names[0]!, names[n - 1]!]) expect(await (await again.key(name)).describe()).toMatchObject({ latestVersion: 2 });
  }, 60_000);
});

describe('one change per key at a time', () => {
  it('concurrent rotations of one key are serialised: versions in order, one put each with the version the previous stored', async () => {
    const vault = await openVault();
    const key = await vault.create('k', { type: 'symmetric' });
    store.puts.length = 0;
    const versions = await Promise.all([key.rotate(), key.rotate(), key.rotate(), key.rotate(), key.rotate()]);
    expect(versions).toEqual([2, 3, 4, 5, 6]);
    expect(store.puts).toEqual([1, 2, 3, 4, 5].map((expectedVersion) => ({ name: 'vault/k', expectedVersion })));
  });

  it('an op issued during a change waits for it: nothing is encrypted under a version an abort could take back', async () => {
    const vault = await openVault();
    const key = await vault.create('k', { type: 'symmetric' });
    let release!: () => void;
    store.gate = new Promise((resolve) => (release = resolve));
    const rotation = key.rotate();
    const encryption = key.encrypt(text('during'));
    let encrypted = false;
    void encryption.then(() => (encrypted = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(encrypted).toBe(false);
    store.gate = undefined;
    release();
    expect(await rotation).toBe(2);
    expect(versionOf(await encryption)).toBe(2);
  });

  it('changes of different keys do not wait for each other', async () => {
    const vault = await openVault();
    const a = await vault.create('a', { type: 'symmetric' });
    const b = await vault.create('b', { type: 'symmetric' });
    let release!: () => void;
    store.gate = new Promise((resolve) => (release = resolve));
    const slow = a.rotate();
    // b's put waits on the same gate: only its enclave op runs; but b's reads are not held by a.
    expect(versionOf(await b.encrypt(text('x')))).toBe(1);
    store.gate = undefined;
    release();
    expect(await slow).toBe(2);
  });
});

describe('moving keys: exportSealed, importSealed, reseal', () => {
  it('a key exported sealed imports into another vault of the same platform under its own name, and persists there', async () => {
    const source = await openVault();
    const key = await source.create('payments', { type: 'symmetric' });
    const ciphertext = await key.encrypt(text('moved'), text('aad'));
    const blob = await key.exportSealed();
    expect(await codeOf(source.importSealed(blob))).toBe('conflict'); // the name exists here
    expect(await codeOf(source.importSealed(new Uint8Array(blob.length)))).toBe('unseal_failed');
    const resealed = await source.reseal(blob);
    expect(resealed.length).toBeGreaterThan(0);
    await source.close();

    const sourceStore = store;
    store = new MemoryStore();
    const target = await openVault();
    const imported = await target.importSealed(resealed);
    expect(imported.name).toBe('payments');
    expect(await imported.decrypt(ciphertext, text('aad'))).toEqual(text('moved'));
    expect([...store.entries.keys()]).toEqual(['vault.id', 'vault/payments']); // an export is not bound to the vault id
    await target.close();
    expect(await (await (await openVault()).key('payments')).decrypt(ciphertext, text('aad'))).toEqual(text('moved'));
    expect(sourceStore.entries.has('vault/payments')).toBe(true);
  });

  it('an import whose put fails leaves no key', async () => {
    const vault = await openVault();
    const blob = await (await vault.create('a', { type: 'ed25519' })).exportSealed();
    store.failNextPut = new EnclaveError('unavailable', 'down');
    expect(await codeOf(vault.importSealed(blob, 'b'))).toBe('unavailable');
    expect(await vault.list()).toEqual(['a']);
    const b = await vault.importSealed(blob, 'b');
    expect(await b.publicKey()).toEqual(await (await vault.key('a')).publicKey());
  });
});

describe('sealing roots', () => {
  it('after a rotation the reloaded records are listed stale; resealStale moves them all, then the old root can be revoked', async () => {
    const vault = await openVault();
    const a = await vault.create('a', { type: 'symmetric' });
    await vault.create('b', { type: 'ed25519' });
    const ciphertext = await a.encrypt(text('x'));
    expect(vault.stale).toEqual([]);
    platform.rotateSealingRoot();
    expect(vault.stale).toEqual(['a', 'b']); // seen while running, from the platform's roots
    await a.rotate();
    expect(vault.stale).toEqual(['b']);
    await vault.close();
    const reopened = await openVault();
    expect(reopened.stale).toEqual(['b']);
    // The enclave's own verdict counts too (here: a platform that does not list its roots).
    const blind = await openVault({ attestation: new Proxy(platform, { get: (t, p) => (p === 'listSealingRoots' ? undefined : (Reflect.get(t, p) as Function).bind?.(t) ?? Reflect.get(t, p)) }) });
    expect(blind.stale).toEqual(['b']);
    await blind.close();
    expect(await reopened.resealStale()).toEqual({ moved: ['b'], failed: [] });
    expect(reopened.stale).toEqual([]);
    expect(await reopened.resealStale()).toEqual({ moved: [], failed: [] });
    await reopened.close();
    platform.revokeSealingRoot(1);
    const after = await openVault();
    expect(after.refused).toEqual([]);
    expect(after.stale).toEqual([]);
    expect(await (await after.key('a')).decrypt(ciphertext)).toEqual(text('x'));
  });

  it('configure({}) moves a record to the current root; once every record moved, the old root can be revoked', async () => {
    const rootOf = (name: string) => new DataView(store.entries.get(name)!.bytes.buffer).getUint32(8, true);
    const vault = await openVault();
    const a = await vault.create('a', { type: 'symmetric' });
    await vault.create('b', { type: 'symmetric' });
    const ciphertext = await a.encrypt(text('x'));
    platform.rotateSealingRoot();
    expect(rootOf('vault/a')).toBe(1);
    await a.configure({});
    expect(rootOf('vault/a')).toBe(2);
    expect(rootOf('vault/b')).toBe(1); // not rewritten: it stays under root 1
    platform.revokeSealingRoot(1);
    await vault.close();
    const again = await openVault();
    expect(again.refused).toEqual([{ name: 'vault/b', code: 'unseal_failed' }]);
    expect(await (await again.key('a')).decrypt(ciphertext)).toEqual(text('x'));
  });
});

describe('a discarded instance', () => {
  it('is replaced and reloaded from the store before the next call: the keys are back, with new handles', async () => {
    // Fuel far below what a 1 MiB encryption needs: that call exhausts it and the runtime discards
    // the instance, its keyring with it.
    const vault = await openVault({ policy: { fuel: 30_000_000 } });
    const key = await vault.create('k', { type: 'symmetric' });
    const small = await key.encrypt(text('kept'));
    expect(await codeOf(key.encrypt(new Uint8Array(1 << 20)))).toBe('fuel_exhausted');
    expect(await key.decrypt(small)).toEqual(text('kept'));
    expect(await key.rotate()).toBe(2);
    expect(vault.refused).toEqual([]);
    expect(await vault.list()).toEqual(['k']);
  });
});

describe('close during a reload', () => {
  it('waits for the reload under way: no instance is left running (loaded with the keys) after close', async () => {
    let platformCalls = 0;
    const counting = new Proxy(platform, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          platformCalls++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const vault = await openVault({ attestation: counting, isolation: 'worker' });
    const key = await vault.create('k', { type: 'symmetric' });
    // A put answered without a valid version: the vault must reload before its next call.
    const put = store.put.bind(store);
    store.put = async (name, bytes, options) => {
      await put(name, bytes, options);
      return { name, version: Number.NaN, bytes };
    };
    expect(await codeOf(key.rotate())).toBe('unavailable');
    store.put = put;
    const read = key.describe().catch((e: unknown) => e); // starts the reload (a new worker instance)
    await new Promise((r) => setTimeout(r, 5));
    await vault.close();
    const atClose = platformCalls;
    expect(await codeOf(read.then((e) => Promise.reject(e)))).toBe('closed');
    await new Promise((r) => setTimeout(r, 200));
    // Nothing unseals the records after close: no instance was started and loaded behind it.
    expect(platformCalls).toBe(atClose);
  });
});

describe('hostile or broken stores, bad input', () => {
  it('a store listing names out of order or outside vault/ is refused with `unavailable`', async () => {
    await (await openVault()).close(); // the store has its vault id (without it, listed records are store_corrupt)
    store.listOverride = async () => ['vault/b', 'vault/a'];
    expect(await codeOf(openVault())).toBe('unavailable');
    store.listOverride = async () => ['other/a'];
    expect(await codeOf(openVault())).toBe('unavailable');
    let calls = 0;
    store.listOverride = async () => (calls++ < 3 ? Array.from({ length: 1000 }, (_, i) => `vault/x${String(i).padStart(4, '0')}`) : []);
    expect(await codeOf(openVault())).toBe('unavailable'); // the second page repeats the first
  });

  it('a FileStore listing names in UTF-8 byte order (not UTF-16) opens: names that are no key names are refused, the keys load', async () => {
    const { FileStore } = await import('../host/index.js');
    const files = new FileStore(mkdtempSync(join(root, 'store-')));
    const vault = await openVault({ store: files });
    const key = await vault.create('k', { type: 'symmetric' });
    const ciphertext = await key.encrypt(text('x'));
    await vault.close();
    // U+FFFD sorts before U+1F600 in UTF-8 (EF… < F0…) but after it in UTF-16 (0xFFFD > 0xD83D).
    await files.put('vault/\uFFFD', new Uint8Array([1]), { expectedVersion: 0 });
    await files.put('vault/\u{1F600}', new Uint8Array([2]), { expectedVersion: 0 });
    const again = await openVault({ store: files });
    expect(again.refused).toEqual([
      { name: 'vault/\uFFFD', code: 'unseal_failed' },
      { name: 'vault/\u{1F600}', code: 'unseal_failed' },
    ]);
    expect(await (await again.key('k')).decrypt(ciphertext)).toEqual(text('x'));
    await files.close();
  });

  it('a put answered without a valid version: `unavailable`, then the vault reloads the store and agrees with it', async () => {
    const vault = await openVault();
    const key = await vault.create('k', { type: 'symmetric' });
    const put = store.put.bind(store);
    store.put = async (name, bytes, options) => {
      await put(name, bytes, options);
      return { name, version: Number.NaN, bytes };
    };
    expect(await codeOf(key.rotate())).toBe('unavailable');
    store.put = put;
    // The record was stored (pending): the reload commits it.
    expect(await key.describe()).toMatchObject({ latestVersion: 2 });
    expect(await key.rotate()).toBe(3);
  });

  it('a put that stored the record yet failed (a lost answer): the vault reloads, later changes go through, the store and the vault agree', async () => {
    const vault = await openVault();
    const key = await vault.create('k', { type: 'symmetric' });
    const put = store.put.bind(store);
    store.put = async (name, bytes, options) => {
      await put(name, bytes, options); // the write lands…
      throw new EnclaveError('unavailable', 'timed out'); // …but its answer is lost
    };
    expect(await codeOf(key.rotate())).toBe('unavailable');
    store.put = put;
    // The store holds the rotated record (pending): the vault reloads it rather than stay one
    // version behind the store (every later change a `conflict` until a restart).
    expect(await key.describe()).toMatchObject({ latestVersion: 2 });
    expect(await key.rotate()).toBe(3);
    await vault.close();
    expect(await (await (await openVault()).key('k')).describe()).toMatchObject({ latestVersion: 3 });
  });

  it('after a `conflict` (another writer changed the record), the vault reloads the store: the next change goes through', async () => {
    const vault = await openVault();
    const key = await vault.create('k', { type: 'symmetric' });
    store.replace('vault/k', store.entries.get('vault/k')!.bytes); // the same record, a newer store version
    expect(await codeOf(key.rotate())).toBe('conflict');
    expect(await key.rotate()).toBe(2);
    expect(store.entries.get('vault/k')!.version).toBe(3);
    // A create over a record refused at the load is a `conflict` that no reload can change: none is made.
    store.replace('vault/junk', new Uint8Array([1, 2, 3]));
    await vault.close();
    const again = await openVault();
    expect(again.refused).toEqual([{ name: 'vault/junk', code: 'unseal_failed' }]);
    let lists = 0;
    const list = store.list.bind(store);
    store.list = async (options) => {
      lists++;
      return list(options);
    };
    expect(await codeOf(again.create('junk', { type: 'symmetric' }))).toBe('conflict');
    expect(await (await again.key('k')).describe()).toMatchObject({ latestVersion: 2 });
    expect(lists).toBe(0);
  });

  it('refuses bad names, bad types and calls after close', async () => {
    const vault = await openVault();
    expect(await codeOf(vault.create('Bad Name', { type: 'symmetric' }))).toBe('invalid_args');
    expect(await codeOf(vault.create('../x', { type: 'symmetric' }))).toBe('invalid_args');
    expect(await codeOf(vault.create('ok', { type: 'rsa' as never }))).toBe('invalid_args');
    expect(await codeOf(vault.key('a'.repeat(65)))).toBe('invalid_args');
    const key = await vault.create('ok', { type: 'symmetric' });
    expect(await codeOf(key.encryptBatch([]))).toBe('invalid_args');
    expect(await codeOf(key.sign(text('m')))).toBe('bad_request');
    await vault.close();
    expect(await codeOf(key.encrypt(text('m')))).toBe('closed');
    expect(await codeOf(vault.list())).toBe('closed');
  });

  it('an unsigned module cannot seal to a signer: `sealing_unavailable` says why; the measurement policy works', async () => {
    const vault = await openVault({ module: new Uint8Array(readFileSync(MODULE)), trust: undefined });
    expect(await codeOf(vault.create('k', { type: 'symmetric' }))).toBe('sealing_unavailable');
    const key = await vault.create('k', { type: 'symmetric', sealPolicy: 'measurement' });
    expect(await key.describe()).toMatchObject({ sealPolicy: 'measurement' });
    await vault.close();
    // Another build (here: the signed one, whose measurement is the same) under a trust policy still opens it: the
    // measurement excludes the signature section.
    expect((await openVault()).refused).toEqual([]);
  });

  it('refuses options without a store or a platform', async () => {
    expect(await codeOf(Vault.open({ store: {} as never, attestation: platform }))).toBe('invalid_options');
    expect(await codeOf(Vault.open({ store, attestation: null as never }))).toBe('invalid_options');
  });
});

describe('the key operations through the client', () => {
  it('batches, datakeys, macs, derive, destroy', async () => {
    const vault = await openVault();
    const key = await vault.create('k', { type: 'symmetric', deletionAllowed: true });
    const out = await key.encryptBatch([{ plaintext: text('a') }, { plaintext: text('b'), aad: text('x') }]);
    expect(out.every((r) => r.ok)).toBe(true);
    const back = await key.decryptBatch([
      { ciphertext: (out[0] as { value: Uint8Array }).value },
      { ciphertext: (out[1] as { value: Uint8Array }).value }, // wrong aad
    ]);
    expect(back[0]).toEqual({ ok: true, value: text('a') });
    expect(back[1]).toEqual({ ok: false, code: 'decrypt_failed' });
    const { ciphertext, plaintext } = await key.datakey({ plaintext: true });
    expect(await key.decrypt(ciphertext)).toEqual(plaintext);
    const tag = await key.mac(text('d'));
    expect(await key.verifyMac(text('d'), tag)).toBe(true);
    expect(await key.verifyMac(text('e'), tag)).toBe(false);
    expect(await key.derive(text('ctx'), { length: 16 })).toMatchObject({ version: 1, key: expect.objectContaining({ length: 16 }) });
    const old = await key.encrypt(text('old'));
    await key.rotate();
    expect(versionOf(await key.rewrap(old))).toBe(2);
    await key.destroy();
    expect(await codeOf(key.encrypt(text('m')))).toBe('not_found');
    await vault.close();
    const again = await openVault();
    expect(again.refused).toEqual([]);
    expect(await codeOf(again.key('k'))).toBe('not_found');
  });
});

describe('vault id: two vaults (two stores) on one platform and one module', () => {
  it('the same key name in both survives commits and restarts in each (no shared counter)', async () => {
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    const a = await openVault({ store: storeA });
    const b = await openVault({ store: storeB });
    const ka = await a.create('k', { type: 'symmetric' });
    const kb = await b.create('k', { type: 'symmetric' });
    await ka.rotate();
    await kb.rotate();
    await ka.rotate();
    const ca = await ka.encrypt(text('tenant a'));
    const cb = await kb.encrypt(text('tenant b'));
    await Promise.all([a.close(), b.close()]);
    for (let restart = 0; restart < 2; restart++) {
      const a2 = await openVault({ store: storeA });
      const b2 = await openVault({ store: storeB });
      expect(a2.refused).toEqual([]);
      expect(b2.refused).toEqual([]);
      expect(await (await a2.key('k')).decrypt(ca)).toEqual(text('tenant a'));
      expect(await (await b2.key('k')).decrypt(cb)).toEqual(text('tenant b'));
      expect((await (await a2.key('k')).describe()).latestVersion).toBe(3 + restart);
      expect((await (await b2.key('k')).describe()).latestVersion).toBe(2);
      await (await a2.key('k')).rotate(); // commits in A only
      await Promise.all([a2.close(), b2.close()]);
    }
    expect(storeA.entries.get('vault.id')!.bytes).not.toEqual(storeB.entries.get('vault.id')!.bytes);
  });

  it("a record copied from vault A's store into B's does not open in B (unseal_failed)", async () => {
    const storeA = new MemoryStore();
    const storeB = new MemoryStore();
    const a = await openVault({ store: storeA });
    await a.create('k', { type: 'symmetric' });
    await a.create('only-a', { type: 'symmetric' });
    await a.close();
    const b = await openVault({ store: storeB });
    await b.create('k', { type: 'symmetric' });
    await b.close();
    storeB.replace('vault/k', storeA.entries.get('vault/k')!.bytes);
    storeB.replace('vault/only-a', storeA.entries.get('vault/only-a')!.bytes);
    const b2 = await openVault({ store: storeB });
    expect(b2.refused).toEqual([
      { name: 'vault/k', code: 'unseal_failed' },
      { name: 'vault/only-a', code: 'unseal_failed' },
    ]);
    // A's own records still open in A.
    const a2 = await openVault({ store: storeA });
    expect(a2.refused).toEqual([]);
    expect(await a2.list()).toEqual(['k', 'only-a']);
  });

  it('the vault id is made once (two first opens agree) and a planted one is store_corrupt', async () => {
    const [x, y] = await Promise.all([openVault(), openVault()]);
    expect(store.entries.get('vault.id')!.version).toBe(1);
    expect(store.entries.get('vault.id')!.bytes.length).toBe(16);
    await x.create('made-by-x', { type: 'symmetric' });
    await Promise.all([x.close(), y.close()]);
    expect((await openVault()).refused).toEqual([]);
    for (const planted of [new Uint8Array(15), new Uint8Array(17), new Uint8Array(0)]) {
      const hostile = new MemoryStore();
      hostile.replace('vault.id', planted);
      expect(await codeOf(openVault({ store: hostile }))).toBe('store_corrupt');
    }
    // A store that lost its vault id but holds records: refused, and no fresh id is written over the loss.
    const id = store.entries.get('vault.id')!;
    store.entries.delete('vault.id');
    expect(await codeOf(openVault())).toBe('store_corrupt');
    expect(store.entries.has('vault.id')).toBe(false);
    store.entries.set('vault.id', id);
    expect((await openVault()).refused).toEqual([]);
  });
});

describe('tombstones and resealStale', () => {
  it("a destroyed key's tombstone moves too: rotate → resealStale → revoke → restart, and the name can be created again", async () => {
    const vault = await openVault();
    const gone = await vault.create('gone', { type: 'symmetric', deletionAllowed: true });
    await vault.create('kept', { type: 'ed25519' });
    await gone.destroy();
    platform.rotateSealingRoot();
    expect(vault.stale).toEqual(['gone', 'kept']);
    expect(await vault.resealStale()).toEqual({ moved: ['gone', 'kept'], failed: [] });
    expect(vault.stale).toEqual([]);
    await vault.close();
    platform.revokeSealingRoot(1);
    const after = await openVault();
    expect(after.refused).toEqual([]);
    expect(await after.list()).toEqual(['kept']);
    const again = await after.create('gone', { type: 'ed25519' });
    expect((await again.describe()).latestVersion).toBe(1);
    await after.close();
    const last = await openVault();
    expect(last.refused).toEqual([]);
    expect(await last.list()).toEqual(['gone', 'kept']);
  });

  it('resealStale reports a failure per name and still moves the keys after it', async () => {
    const vault = await openVault();
    await vault.create('a', { type: 'symmetric' });
    await vault.create('b', { type: 'symmetric' });
    await vault.create('c', { type: 'symmetric' });
    platform.rotateSealingRoot();
    store.failNextPut = new EnclaveError('unavailable', 'store down');
    const report = await vault.resealStale();
    expect(report.moved).toEqual(['b', 'c']);
    expect(report.failed.map(({ name, code }) => ({ name, code }))).toEqual([{ name: 'a', code: 'unavailable' }]);
    expect(report.failed[0]!.error).toBeInstanceOf(EnclaveError);
    expect(vault.stale).toEqual(['a']);
    expect(await vault.resealStale()).toEqual({ moved: ['a'], failed: [] });
  });
});

describe('retired versions and export policies', () => {
  it('verify and verifyMac answer denied for a version below min_decryption_version (single and batch)', async () => {
    const vault = await openVault();
    const signer = await vault.create('sig', { type: 'ed25519' });
    const macer = await vault.create('mac', { type: 'symmetric' });
    const m = text('message');
    const sig1 = await signer.sign(m);
    const tag1 = await macer.mac(m);
    await signer.rotate();
    await macer.rotate();
    const sig2 = await signer.sign(m);
    const tag2 = await macer.mac(m);
    expect(await signer.verify(m, sig1)).toBe(true);
    expect(await macer.verifyMac(m, tag1)).toBe(true);
    await signer.configure({ minDecryptionVersion: 2 });
    await macer.configure({ minDecryptionVersion: 2 });
    expect(await codeOf(signer.verify(m, sig1))).toBe('denied');
    expect(await codeOf(macer.verifyMac(m, tag1))).toBe('denied');
    expect(await signer.verify(m, sig2)).toBe(true);
    expect(await macer.verifyMac(m, tag2)).toBe(true);
    expect(await signer.verifyBatch([{ message: m, signature: sig1 }, { message: m, signature: sig2 }])).toEqual([
      { ok: false, code: 'denied' },
      { ok: true, value: true },
    ]);
    expect(await macer.verifyMacBatch([{ data: m, mac: tag1 }, { data: m, mac: tag2 }])).toEqual([
      { ok: false, code: 'denied' },
      { ok: true, value: true },
    ]);
  });

  it('exportSealed never widens who can open a key: a measurement key only under measurement', async () => {
    const vault = await openVault();
    const pinned = await vault.create('pinned', { type: 'symmetric', sealPolicy: 'measurement' });
    const line = await vault.create('line', { type: 'symmetric', sealPolicy: 'signer' });
    expect(await codeOf(pinned.exportSealed('signer'))).toBe('denied');
    expect((await pinned.exportSealed('measurement')).length).toBeGreaterThan(0);
    expect((await pinned.exportSealed()).length).toBeGreaterThan(0);
    expect((await line.exportSealed('signer')).length).toBeGreaterThan(0);
    expect((await line.exportSealed('measurement')).length).toBeGreaterThan(0);
  });

  it('the documented codes: encrypt over 1 MiB is invalid_args, a platform without counters invalid_options', async () => {
    const vault = await openVault();
    const key = await vault.create('big', { type: 'symmetric' });
    expect(await codeOf(key.encrypt(new Uint8Array(1024 * 1024 + 1)))).toBe('invalid_args');
    expect((await key.encrypt(new Uint8Array(1024 * 1024))).length).toBeGreaterThan(1024 * 1024);
    const noCounters = new Proxy(platform, {
      get: (t, p) => (p === 'readCounter' || p === 'advanceCounter' ? undefined : (Reflect.get(t, p) as Function).bind?.(t) ?? Reflect.get(t, p)),
    });
    expect(await codeOf(openVault({ store: new MemoryStore(), attestation: noCounters }))).toBe('invalid_options');
  });
});
