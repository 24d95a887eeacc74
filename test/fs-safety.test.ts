/**
 * The smaller file-system findings of issue 9 (finding 11): a platform directory on a pseudo file
 * system (/proc) fails with `platform_unavailable` instead of spinning in a recursive mkdir, and
 * `keygen --force` replaces a key file by a new file (rename) instead of rewriting it in place, so
 * a reader holding the old file never sees the new private key.
 */
import { execFile } from 'node:child_process';
import { lstatSync, mkdtempSync, openSync, readFileSync, readSync, closeSync, statSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, privateKeyToJwk, writeKeyPair } from '../attest/keys.js';
import { SoftwareAttestationProvider } from '../attest/software-provider.js';
import { AttestationError } from '../attest/index.js';

const CLI = 'dist/host/cli/main.js';

/** Runs the CLI, killed after 10 s so a spin fails the test (on its output) instead of hanging it. */
function enclave(...args: string[]): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 10_000, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number; signal?: string }) | null;
      resolve({ code: e ? (e.code ?? null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

function readAll(fd: number): string {
  const buf = Buffer.alloc(4096);
  const n = readSync(fd, buf, 0, buf.length, 0);
  return buf.subarray(0, n).toString('utf8');
}

describe('platform directory on a pseudo file system', () => {
  for (const dir of ['/proc/enclave-platform-test', '/proc/self/enclave-platform-test/nested']) {
    it(`refuses ${dir} with platform_unavailable instead of spinning`, async () => {
      const r = await enclave('platform-key', '--platform-dir', dir, '--json');
      expect(r.signal).toBeNull(); // not killed by the 10 s guard
      expect(JSON.parse(r.stderr.trim()).error.code).toBe('platform_unavailable');
      expect(r.code).toBe(1);
    });
  }

  it('still creates a missing platform directory (and missing parents) mode 0700', () => {
    const root = mkdtempSync(join(tmpdir(), 'enclave-platform-'));
    const dir = join(root, 'a', 'b', 'platform');
    const jwk = new SoftwareAttestationProvider({ dir }).publicJwk();
    expect(jwk.crv).toBe('Ed25519');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'platform-key.json')).mode & 0o777).toBe(0o600);
  });

  it('refuses a platform path that is a regular file with platform_unavailable', () => {
    const root = mkdtempSync(join(tmpdir(), 'enclave-platform-'));
    writeFileSync(join(root, 'file'), 'x');
    let code: string | undefined;
    try {
      new SoftwareAttestationProvider({ dir: join(root, 'file', 'platform') }).open();
    } catch (err) {
      expect(err).toBeInstanceOf(AttestationError);
      code = (err as AttestationError).code;
    }
    expect(code).toBe('platform_unavailable');
  });
});

describe('keygen --force replaces the key file, never rewrites it', () => {
  it('a handle opened before the overwrite still reads the old key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-keygen-'));
    const privateKeyPath = join(dir, 'k.key.json');
    const oldKeys = generateKeyPair();
    await writeKeyPair(oldKeys, { privateKeyPath });
    const oldText = readFileSync(privateKeyPath, 'utf8');
    const fd = openSync(privateKeyPath, 'r');
    try {
      const newKeys = generateKeyPair();
      await writeKeyPair(newKeys, { privateKeyPath }, { overwrite: true });
      expect(readAll(fd)).toBe(oldText); // the old file, untouched
      expect(JSON.parse(readFileSync(privateKeyPath, 'utf8')).d).toBe(privateKeyToJwk(newKeys).d);
      expect(statSync(privateKeyPath).mode & 0o777).toBe(0o600);
      expect(readdirSync(dir).sort()).toEqual(['k.key.json', 'k.pub.json']); // no temporary file left
    } finally {
      closeSync(fd);
    }
  });

  it('through the CLI: --force leaves an open handle on the old file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-keygen-'));
    const out = join(dir, 'cli.key.json');
    expect((await enclave('keygen', '--out', out)).code).toBe(0);
    const oldText = readFileSync(out, 'utf8');
    const fd = openSync(out, 'r');
    try {
      const r = await enclave('keygen', '--out', out, '--force');
      expect(r.code).toBe(0);
      expect(readAll(fd)).toBe(oldText);
      expect(readFileSync(out, 'utf8')).not.toBe(oldText);
    } finally {
      closeSync(fd);
    }
  });

  it('--force refuses a symlink at the path and never writes through it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-keygen-'));
    const target = join(dir, 'elsewhere.txt');
    writeFileSync(target, 'not yours\n');
    const privateKeyPath = join(dir, 'k.key.json');
    symlinkSync(target, privateKeyPath);
    await expect(writeKeyPair(generateKeyPair(), { privateKeyPath }, { overwrite: true })).rejects.toMatchObject({ code: 'key_unavailable' });
    expect(readFileSync(target, 'utf8')).toBe('not yours\n');
    expect(lstatSync(privateKeyPath).isSymbolicLink()).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['elsewhere.txt', 'k.key.json']); // no temporary file left
  });
});
