/**
 * `enclave keys` and the software platform driven by a careless caller: an empty platform
 * directory (`--platform-dir "$DIR"` with DIR unset, `ENCLAVE_PLATFORM_DIR=`) is refused, never
 * taken as the default platform (~/.enclave), whose roots `rotate` and `revoke --yes` would change.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { enclaveCli, jsonError } from './helpers/cli.js';
import { syncCodeOf } from './helpers/errors.js';

/** An environment whose default platform (~/.enclave) is in a fresh HOME, and no ENCLAVE_PLATFORM_DIR. */
function isolatedEnv(): { env: NodeJS.ProcessEnv; home: string } {
  const home = mkdtempSync(join(tmpdir(), 'enclave-review-keys-home-'));
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.ENCLAVE_PLATFORM_DIR;
  return { env, home };
}

describe('an empty platform directory is refused, not the default platform', () => {
  it('enclave keys rotate/revoke --platform-dir "" fail with invalid_options and touch no platform', async () => {
    const { env, home } = isolatedEnv();
    for (const args of [['rotate'], ['list'], ['revoke', '1', '--yes']]) {
      const result = await enclaveCli(['keys', ...args, '--json', '--platform-dir', ''], { env, cwd: home });
      expect(result.code).not.toBe(0);
      expect(jsonError(result.stderr).code).toBe('invalid_options');
    }
    expect(existsSync(join(home, '.enclave'))).toBe(false);
    expect(existsSync(join(home, 'platform-key.json'))).toBe(false); // '' is not the working directory either
  });

  it('ENCLAVE_PLATFORM_DIR set but empty is refused', async () => {
    const { env, home } = isolatedEnv();
    const result = await enclaveCli(['keys', 'rotate', '--json'], { env: { ...env, ENCLAVE_PLATFORM_DIR: '' }, cwd: home });
    expect(result.code).not.toBe(0);
    expect(jsonError(result.stderr).code).toBe('invalid_options');
    expect(existsSync(join(home, '.enclave'))).toBe(false);
  });

  it('the provider refuses an empty, non-string or NUL dir and non-object options with invalid_options', () => {
    expect(syncCodeOf(() => new SoftwareAttestationProvider({ dir: '' }))).toBe('invalid_options');
    expect(syncCodeOf(() => new SoftwareAttestationProvider({ dir: 5 as unknown as string }))).toBe('invalid_options');
    expect(syncCodeOf(() => new SoftwareAttestationProvider({ dir: 'a\0b' }))).toBe('invalid_options');
    expect(syncCodeOf(() => new SoftwareAttestationProvider(null as unknown as object))).toBe('invalid_options');
  });
});
