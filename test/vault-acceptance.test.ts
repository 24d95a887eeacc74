/**
 * Issue 13's "done when", as one chain across a real process restart: a key generated in the vault
 * and exported sealed by one process (test/helpers/vault-process.mjs) is, in this process,
 * - usable again by the same module: from the store (the vault reloads it) and from its sealed
 *   export (imported into another vault of the platform);
 * - refused to a module with one byte changed under `measurement` (the export, and the store's
 *   record), while a `signer` key stays open to it;
 * - accepted by an upgraded module of the same signer (svn 2) under `signer`, which re-seals it
 *   forward (the export with `reseal`, the store's record with `resealStale`), after which the
 *   older module no longer opens it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, signModule, SoftwareAttestationProvider } from '../attest/index.js';
import { FileStore, Vault } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { vaultModule } from './helpers/vault.js';

const CHILD = fileURLToPath(new URL('./helpers/vault-process.mjs', import.meta.url));
const MESSAGE = new TextEncoder().encode('pay 10 to alice'); // as vault-process.mjs
const root = mkdtempSync(join(tmpdir(), 'enclave-vault-acceptance-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const svnOf = (blob: Uint8Array) => new DataView(blob.buffer, blob.byteOffset).getUint32(12, true); // docs/SEALING.md §2

const signer = generateKeyPair();
const trust = { trusted: [{ publicKey: signer.publicKey }] };
const paths = { platform: join(root, 'platform'), store: join(root, 'store'), v1: join(root, 'v1.wasm'), changed: join(root, 'changed.wasm'), v2: join(root, 'v2.wasm') };

beforeAll(async () => {
  const v1 = await vaultModule();
  const changed = await vaultModule({ version: '0.1.1' }); // one byte of the module differs: another measurement
  const v2 = await vaultModule({ version: '0.2.0', svn: 2 }); // an upgrade of the same line
  expect(changed.length).toBe(v1.length);
  expect(v1.reduce((n, b, i) => n + (b === changed[i] ? 0 : 1), 0)).toBe(1);
  writeFileSync(paths.v1, signModule(v1, signer));
  writeFileSync(paths.changed, signModule(changed, signer));
  writeFileSync(paths.v2, signModule(v2, signer));
});

let platform: SoftwareAttestationProvider;
const opened: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const o of opened.reverse()) await o.close();
});

/** A vault on the platform: `store` a directory under root (the first process's store, or a fresh one). */
async function open(module: string, store: string): Promise<Vault> {
  const s = new FileStore(join(root, store));
  const vault = await Vault.open({ store: s, attestation: platform, module, trust });
  opened.push(s, vault);
  return vault;
}

describe('a key exported sealed, across a process restart, a changed module and an upgrade', () => {
  it('is usable again by the same module, refused to a changed one (measurement), moved forward by an upgrade (signer)', async () => {
    const out = join(root, 'first.json');
    const child = spawnSync(process.execPath, [CHILD, JSON.stringify({ platform: paths.platform, store: paths.store, module: paths.v1, signer: Buffer.from(signer.publicKey).toString('hex'), out })], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const first = JSON.parse(readFileSync(out, 'utf8')) as Record<string, string | number>;
    expect(first.pid).not.toBe(process.pid); // the keys were made in another process, now gone
    const publicKey = unhex(first.publicKey as string);
    const signature = unhex(first.signature as string);
    const ciphertext = unhex(first.ciphertext as string);
    const exportRelease = unhex(first.exportRelease as string);
    const exportPinned = unhex(first.exportPinned as string);
    expect(ed25519.verify(signature.subarray(4), MESSAGE, publicKey)).toBe(true);
    platform = new SoftwareAttestationProvider({ dir: paths.platform }).open();

    // The same module, in this process: the store's records and the sealed exports open.
    const same = await open(paths.v1, 'store');
    expect(same.refused).toEqual([]);
    expect(await same.list()).toEqual(['pinned', 'release']);
    expect(await (await same.key('release')).verify(MESSAGE, signature)).toBe(true);
    expect(await (await same.key('release')).publicKey()).toEqual(publicKey);
    expect(await (await same.key('pinned')).decrypt(ciphertext)).toEqual(MESSAGE);
    const elsewhere = await open(paths.v1, 'same-module');
    const release1 = await elsewhere.importSealed(exportRelease);
    expect(await release1.publicKey()).toEqual(publicKey);
    expect(await release1.sign(MESSAGE)).toEqual(signature); // Ed25519 is deterministic: the same seed
    const pinned1 = await elsewhere.importSealed(exportPinned);
    expect(await pinned1.decrypt(ciphertext)).toEqual(MESSAGE);
    expect(await pinned1.describe()).toMatchObject({ sealPolicy: 'measurement' });
    // The measurement key never widens to the signer: not by an export, an import and a rewrite, or a reseal.
    expect(await codeOf(pinned1.exportSealed('signer'))).toBe('denied');
    expect(await pinned1.configure({})).toMatchObject({ sealPolicy: 'measurement' });
    expect(await codeOf(pinned1.exportSealed('signer'))).toBe('denied');
    expect((await elsewhere.reseal(exportPinned))[5]).toBe(0); // policy byte (docs/SEALING.md §2): measurement

    // One byte changed: the measurement key is refused, as an export and as a record; the signer key opens.
    const changed = await open(paths.changed, 'changed-module');
    expect(await codeOf(changed.importSealed(exportPinned))).toBe('unseal_failed');
    expect(await codeOf(changed.reseal(exportPinned))).toBe('unseal_failed');
    expect(await (await changed.importSealed(exportRelease)).publicKey()).toEqual(publicKey);
    const changedOnStore = await open(paths.changed, 'store');
    expect(changedOnStore.refused).toEqual([{ name: 'vault/pinned', code: 'unseal_failed' }]);
    expect(await changedOnStore.list()).toEqual(['release']);
    await changedOnStore.close();

    // The upgrade (same signer, svn 2): the signer export opens and is resealed forward; the older module cannot open the result.
    const upgraded = await open(paths.v2, 'upgraded-module');
    expect(await codeOf(upgraded.importSealed(exportPinned))).toBe('unseal_failed');
    expect(svnOf(exportRelease)).toBe(1);
    const forward = await upgraded.reseal(exportRelease);
    expect(svnOf(forward)).toBe(2);
    const release2 = await upgraded.importSealed(forward);
    expect(await release2.publicKey()).toEqual(publicKey);
    expect(await release2.sign(MESSAGE)).toEqual(signature);
    const older = await open(paths.v1, 'older-module');
    expect(await codeOf(older.importSealed(forward))).toBe('unseal_failed');
    expect(await (await older.importSealed(exportRelease)).publicKey()).toEqual(publicKey); // the svn-1 export still opens there

    // The upgrade on the first store: the signer record loads (stale: a lower svn) and moves forward; then v1 refuses it.
    await same.close();
    const upgradedOnStore = await open(paths.v2, 'store');
    expect(upgradedOnStore.refused).toEqual([{ name: 'vault/pinned', code: 'unseal_failed' }]);
    expect(upgradedOnStore.stale).toEqual(['release']);
    expect(await upgradedOnStore.resealStale()).toEqual({ moved: ['release'], failed: [] });
    expect(await (await upgradedOnStore.key('release')).verify(MESSAGE, signature)).toBe(true);
    await upgradedOnStore.close();
    const v1Again = await open(paths.v1, 'store');
    expect(v1Again.refused).toEqual([{ name: 'vault/release', code: 'unseal_failed' }]);
    expect(await (await v1Again.key('pinned')).decrypt(ciphertext)).toEqual(MESSAGE); // the measurement record is still v1's
  }, 120_000);
});
