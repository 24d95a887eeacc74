/**
 * The vault under SIGKILL (docs/VAULT.md §7, §10): a process rotates one key for ever
 * (test/helpers/vault-rotator.mjs) and is killed at a random moment, again and again, on the same
 * store and platform directory. After every kill a fresh Vault in this process finds:
 * - nothing refused (a record stored but not committed when the kill came is committed at load;
 *   no record is ever left `rollback` or `unseal_failed` by a kill);
 * - the key at a version at least the last acknowledged one, never below the last seen;
 * - every ciphertext made under an acknowledged version still decrypting, and the next writer
 *   going on from there.
 * The store's own SIGKILL test (test/store-crash.test.ts) covers the puts; this one covers the
 * vault's two phases (put, then the counter's commit) across a kill at any point between them.
 * Most kills land inside a rotation (its two fsyncs are most of a rotation's time): counted.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { FileStore, Vault } from '../host/index.js';

const WRITER = fileURLToPath(new URL('./helpers/vault-rotator.mjs', import.meta.url));
const ROUNDS = 12;
/** The writer is killed this long after it printed `ready`, ms: uniform in [0, KILL_WINDOW). */
const KILL_WINDOW = 400;

const root = mkdtempSync(join(tmpdir(), 'enclave-vault-crash-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs a writer until `ready`, lets it rotate for a random while, kills it; its output lines. */
async function killedWriter(platformDir: string, storeDir: string): Promise<string[]> {
  const child = spawn(process.execPath, [WRITER, platformDir, storeDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  const ready = new Promise<void>((res, rej) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line === 'ready') res();
        else lines.push(line);
      }
    });
    void exited.then(() => rej(new Error(`the writer exited before it was ready: ${stderr}${lines.join('\n')}`)));
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  await ready;
  await new Promise((r) => setTimeout(r, Math.random() * KILL_WINDOW));
  child.kill('SIGKILL');
  await exited;
  return lines;
}

describe('the vault: writers killed with SIGKILL', () => {
  it(`keeps every acknowledged rotation over ${ROUNDS} writers killed at random moments`, async () => {
    const platformDir = join(root, 'platform');
    const storeDir = join(root, 'store');
    const platform = new SoftwareAttestationProvider({ dir: platformDir }).open();
    const acked = new Map<number, Uint8Array>(); // version → a ciphertext made under it
    let lastSeen = 0;
    let killedInRotation = 0;
    let trimBegun = 1; // the highest min_available_version a writer began to trim to
    for (let round = 1; round <= ROUNDS; round++) {
      const lines = await killedWriter(platformDir, storeDir);
      expect(lines.filter((l) => l.startsWith('err ')), `round ${round}`).toEqual([]);
      for (const line of lines) {
        const [kind, version, hex] = line.split(' ');
        if (kind === 'a') acked.set(Number(version), new Uint8Array(Buffer.from(hex!, 'hex')));
        if (kind === 't') trimBegun = Math.max(trimBegun, Number(version));
      }
      const maxAcked = Math.max(0, ...acked.keys());
      const store = new FileStore(storeDir);
      const vault = await Vault.open({ store, attestation: platform });
      try {
        expect(vault.refused, `round ${round}`).toEqual([]);
        const key = await vault.key('k');
        const { latestVersion } = await key.describe();
        expect(latestVersion, `round ${round}: behind the last acknowledged rotation`).toBeGreaterThanOrEqual(maxAcked);
        expect(latestVersion, `round ${round}: went back`).toBeGreaterThanOrEqual(lastSeen);
        if (latestVersion > maxAcked) killedInRotation++; // stored, not acknowledged: committed at load
        lastSeen = latestVersion;
        // Versions are retired only by a trim the writer began (never by a kill).
        const { minDecryptionVersion } = await key.describe(); // ≥ min_available_version
        expect(minDecryptionVersion, `round ${round}: versions lost`).toBeLessThanOrEqual(trimBegun);
        for (const version of acked.keys()) if (version < minDecryptionVersion) acked.delete(version);
        for (const [version, ct] of acked) expect(new TextDecoder().decode(await key.decrypt(ct)), `round ${round}: v${version}`).toBe(`v${version}`);
      } finally {
        await vault.close();
        await store.close();
      }
    }
    expect(lastSeen).toBeGreaterThan(1); // the writers rotated (a slow machine may fit few rotations in a round)
    console.log(`vault-crash: ${ROUNDS} writers killed, last version ${lastSeen}, ${killedInRotation} kills after a put and before its acknowledgement`);
  }, 240_000);
});
