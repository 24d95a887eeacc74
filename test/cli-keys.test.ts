/**
 * `enclave keys list|rotate|revoke` (issue 13, docs/ATTESTATION.md §6.2): output and --json, exit
 * codes (0 ok, 1 failed, 2 usage), the platform directory from --platform-dir or
 * $ENCLAVE_PLATFORM_DIR, revoke's --yes guard, and a running provider seeing the change.
 */
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider, type ModuleIdentity } from '../attest/index.js';
import { enclaveCli, jsonError } from './helpers/cli.js';
import { syncCodeOf } from './helpers/errors.js';

const identity: ModuleIdentity = Object.freeze({
  measurement: 'ab'.repeat(32),
  signers: ['cd'.repeat(32)],
  signer: 'cd'.repeat(32),
  svn: 1,
  name: 'vault',
  version: '1.0.0',
});

function platformDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'enclave-cli-keys-')), 'platform');
}

const keys = (dir: string, ...args: string[]) => enclaveCli(['keys', ...args, '--platform-dir', dir]);

describe('enclave keys', () => {
  it('list: one current root on a new platform, as a table and as JSON; $ENCLAVE_PLATFORM_DIR works too', async () => {
    const dir = platformDir();
    const text = await keys(dir, 'list');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ID\s+STATE\s+CREATED\n1\s+active\s+current\s+\d{4}-\d\d-\d\dT/);
    const json = await keys(dir, 'list', '--json');
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { current: number; roots: unknown[] };
    expect(parsed).toEqual({ current: 1, roots: [{ id: 1, state: 'active', current: true, createdAt: expect.any(String) }] });
    const viaEnv = await enclaveCli(['keys', 'list', '--json'], { env: { ...process.env, ENCLAVE_PLATFORM_DIR: dir } });
    expect(JSON.parse(viaEnv.stdout)).toEqual(parsed);
  });

  it('rotate, then revoke with --yes; a provider already running sees both', async () => {
    const dir = platformDir();
    const running = new SoftwareAttestationProvider({ dir });
    const before = Buffer.from(running.sealingKey(identity, 'signer').key).toString('hex');
    const rotated = await keys(dir, 'rotate', '--json');
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout)).toEqual({ id: 2, current: true });
    expect(running.sealingKey(identity, 'signer').keyId).toBe(2);
    expect(Buffer.from(running.sealingKey(identity, 'signer', { keyId: 1 }).key).toString('hex')).toBe(before);

    const text = await keys(dir, 'rotate');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('sealing root 3 is current');
    expect(text.stdout).toContain('Data sealed under 1, 2 still unseals');

    const revoked = await keys(dir, 'revoke', '1', '--yes');
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('sealing root 1 is revoked');
    expect(syncCodeOf(() => running.sealingKey(identity, 'signer', { keyId: 1 }))).toBe('sealing_key_revoked');
    const again = await keys(dir, 'revoke', '1', '--yes', '--json');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toEqual({ id: 1, state: 'revoked', changed: false });
    const list = await keys(dir, 'list');
    const rows = list.stdout.trim().split('\n').slice(1).map((line) => line.replace(/\s+\S+$/, '').split(/\s+/).join(' '));
    expect(rows).toEqual(['1 revoked', '2 active', '3 active current']);
  });

  it('revoke without --yes refuses (usage, exit 2), says what it would destroy, and changes nothing', async () => {
    const dir = platformDir();
    await keys(dir, 'rotate');
    const fileBefore = readFileSync(join(dir, 'platform-key.json'), 'utf8');
    const r = await keys(dir, 'revoke', '1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[usage\]: Revoking sealing root 1 destroys its secret/);
    expect(r.stderr).toContain('enclave keys revoke 1 --yes');
    expect(readFileSync(join(dir, 'platform-key.json'), 'utf8')).toBe(fileBefore);
    const json = await keys(dir, 'revoke', '1', '--json');
    expect(json.code).toBe(2);
    expect(jsonError(json.stderr).code).toBe('usage');
    expect(new SoftwareAttestationProvider({ dir }).listSealingRoots().map((x) => x.state)).toEqual(['active', 'active']);
  });

  it('refuses the current root (invalid_options, 2), an unknown id (sealing_key_unknown, 1) and malformed command lines (usage, 2)', async () => {
    const dir = platformDir();
    const current = await keys(dir, 'revoke', '1', '--yes', '--json');
    expect([current.code, jsonError(current.stderr).code]).toEqual([2, 'invalid_options']);
    expect(jsonError(current.stderr).message).toContain('enclave keys rotate');
    const unknown = await keys(dir, 'revoke', '7', '--yes', '--json');
    expect([unknown.code, jsonError(unknown.stderr).code]).toEqual([1, 'sealing_key_unknown']);
    for (const args of [['revoke'], ['revoke', 'x', '--yes'], ['revoke', '0', '--yes'], ['revoke', '2147483648', '--yes'], ['revoke', '-1', '--yes'], ['list', '3'], ['rotate', '--yes'], ['shred']]) {
      const r = await keys(dir, ...args, '--json');
      expect([r.code, jsonError(r.stderr).code], args.join(' ')).toEqual([2, 'usage']);
    }
    expect(new SoftwareAttestationProvider({ dir }).listSealingRoots()).toHaveLength(1);
  });

  it('an unsafe platform directory is insecure_key_file (exit 1), as for enclave attest', async () => {
    const dir = platformDir();
    await keys(dir, 'list');
    chmodSync(dir, 0o777);
    const r = await keys(dir, 'rotate', '--json');
    expect([r.code, jsonError(r.stderr).code]).toEqual([1, 'insecure_key_file']);
    chmodSync(dir, 0o700);
    expect(new SoftwareAttestationProvider({ dir }).listSealingRoots()).toHaveLength(1);
  });
});
