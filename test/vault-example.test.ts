// The vault example (docs/examples/vault.mjs) as a user runs it, from the repository root: a real
// process that creates keys, encrypts and signs, re-spawns itself (a new process on the same store
// and platform directory), decrypts and verifies there, rotates the platform root with the
// `enclave keys` CLI and the key, rewraps an old ciphertext and retires its version, moves the other
// record to the new root and revokes the old one, then opens a fresh vault. Checked on its
// output, on the files it leaves, and run a second time on the same directory.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const EXAMPLE = 'docs/examples/vault.mjs';
const dir = mkdtempSync(join(tmpdir(), 'enclave-vault-example-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]): { status: number | null; lines: string[]; stderr: string } {
  const r = spawnSync(process.execPath, [EXAMPLE, ...args], { encoding: 'utf8', timeout: 90_000 });
  return { status: r.status, lines: r.stdout.trim().split('\n'), stderr: r.stderr };
}

describe('the vault example (docs/examples/vault.mjs)', () => {
  it('tells the whole story across two processes, in a temporary directory it removes', () => {
    const before = new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('enclave-vault-example-') && !n.includes('test')));
    const { status, lines, stderr } = run();
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const pids = lines.map((l) => /vault opened in process (\d+)/.exec(l)?.[1]).filter((p) => p !== undefined);
    expect(pids).toHaveLength(2);
    expect(pids[0]).not.toBe(pids[1]); // the restart is truly another process
    expect(lines).toEqual([
      '[1] signed the vault module with the release key',
      expect.stringMatching(/^\[1\] vault opened in process \d+: 0 keys, 0 refused$/),
      '[1] created payments (symmetric) and releases (ed25519); payments sealed under root 1',
      expect.stringMatching(/^\[1\] encrypted a card number: \d+-byte ciphertext under payments v1$/),
      expect.stringMatching(/^\[1\] signed "release v1\.0\.0": public key [0-9a-f]{16}…$/),
      '[1] restarting in a new process',
      expect.stringMatching(/^\[2\] vault opened in process \d+: payments, releases; 0 refused$/),
      '[2] decrypted after the restart: 4111 1111 1111 1111',
      '[2] signature verifies after the restart: true',
      "[2] decrypt with another customer's aad: decrypt_failed",
      '[2] enclave keys rotate: sealing root 2 is current: new data seals under it. (2 roots listed)',
      '[2] payments rotated to v2; its record is now sealed under root 2',
      '[2] rewrapped the old ciphertext: v1 -> v2, decrypts to 4111 1111 1111 1111',
      '[2] the v1 ciphertext after retiring v1: denied',
      '[2] moved the records still under an old root: releases',
      '[2] enclave keys revoke 1 --yes: sealing root 1 is revoked: its secret is destroyed.',
      '[2] a fresh vault after the revocation: payments, releases; 0 refused',
      '[1] done',
    ]);
    const after = readdirSync(tmpdir()).filter((n) => n.startsWith('enclave-vault-example-') && !n.includes('test') && !before.has(n));
    expect(after).toEqual([]);
  }, 120_000);

  it('in a given directory it keeps its files; a second run reopens the keys and rotates them once more', () => {
    const target = join(dir, 'kept');
    const first = run(target);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(readdirSync(target).sort()).toEqual(['app-data.json', 'platform', 'release.key.json', 'release.pub.json', 'store', 'vault.signed.wasm']);
    const second = run(target);
    expect(second.stderr).toBe('');
    expect(second.status).toBe(0);
    expect(second.lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[1\] vault opened in process \d+: 2 keys, 0 refused$/),
        '[1] reopened payments (symmetric) and releases (ed25519); payments sealed under root 2',
        expect.stringMatching(/^\[1\] encrypted a card number: \d+-byte ciphertext under payments v2$/),
        '[2] decrypted after the restart: 4111 1111 1111 1111',
        '[2] enclave keys rotate: sealing root 3 is current: new data seals under it. (3 roots listed)',
        '[2] payments rotated to v3; its record is now sealed under root 3',
        '[2] rewrapped the old ciphertext: v2 -> v3, decrypts to 4111 1111 1111 1111',
        '[2] the v2 ciphertext after retiring v2: denied',
        '[2] moved the records still under an old root: releases',
        '[2] enclave keys revoke 2 --yes: sealing root 2 is revoked: its secret is destroyed.',
        '[2] a fresh vault after the revocation: payments, releases; 0 refused',
      ]),
    );
  }, 120_000);
});
