import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { importJWK, jwtVerify } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';

// The documented CLI flow: keygen, sign, verify-module, attest, platform-key, verify; and the
// README's plain-jose check of a token.
const run = promisify(execFile);
const CLI = path.resolve('dist/host/cli/main.js');
const NONCE = '00112233445566778899aabbccddeeff';

let dir: string;
let env: NodeJS.ProcessEnv;

async function enclave(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: dir, env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'enclave-cli-attest-'));
  env = { ...process.env, ENCLAVE_PLATFORM_DIR: path.join(dir, 'platform') };
  await copyFile('enclave-modules/counter/build/counter.wasm', path.join(dir, 'counter.wasm'));
});

describe('signing from the CLI', () => {
  it('keygen writes a 0600 private key and a public key', async () => {
    const r = await enclave('keygen', '--out', 'dev.key.json', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.signer).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(path.join(dir, 'dev.key.json'))).mode & 0o777).toBe(0o600);
    expect((await enclave('keygen', '--out', 'dev.key.json')).code).not.toBe(0); // never overwrites silently
  });

  it('sign keeps the measurement; inspect and verify-module see the signer', async () => {
    const before = JSON.parse((await enclave('inspect', 'counter.wasm', '--json')).stdout);
    expect(before.signatures).toBe(0);
    expect((await enclave('sign', 'counter.wasm', '--key', 'dev.key.json')).code).toBe(0);
    const after = JSON.parse((await enclave('inspect', 'counter.wasm', '--json', '--key', 'dev.pub.json')).stdout);
    expect(after.measurement).toBe(before.measurement);
    expect(after.signer).toMatch(/^[0-9a-f]{64}$/);
    expect(after.svn).toBe(1);
    const ok = await enclave('verify-module', 'counter.wasm', '--key', 'dev.pub.json', '--min-svn', '1');
    expect(ok.code).toBe(0);
    const rollback = await enclave('verify-module', 'counter.wasm', '--key', 'dev.pub.json', '--min-svn', '2');
    expect(rollback.code).toBe(1);
    expect(rollback.stderr).toMatch(/error\[rollback\]/);
  });

  it('verify-module refuses a module signed by another key', async () => {
    await enclave('keygen', '--out', 'other.key.json');
    const r = await enclave('verify-module', 'counter.wasm', '--key', 'other.pub.json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error\[untrusted_module\]/);
  });
});

describe('attestation from the CLI', () => {
  let token: string;
  let measurement: string;

  beforeAll(async () => {
    const r = await enclave('attest', 'counter.wasm', '--nonce', NONCE, '--key', 'dev.pub.json');
    expect(r.code).toBe(0);
    token = r.stdout.trim();
    measurement = JSON.parse((await enclave('inspect', 'counter.wasm', '--json')).stdout).measurement;
  });

  it('verify accepts the token under a policy naming the measurement', async () => {
    await writeFile(path.join(dir, 'policy.json'), JSON.stringify({ measurements: [measurement] }));
    await writeFile(path.join(dir, 'token.jwt'), token);
    const r = await enclave('verify', '@token.jwt', '--policy', 'policy.json', '--nonce', NONCE, '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.claims['enclave.measurement']).toBe(measurement);
    expect(out.claims['enclave.signers']).toHaveLength(1);
  });

  it('verify refuses with reason codes', async () => {
    await writeFile(path.join(dir, 'other-policy.json'), JSON.stringify({ measurements: ['0'.repeat(64)] }));
    const wrongNonce = await enclave('verify', token, '--policy', 'policy.json', '--nonce', 'ff'.repeat(16), '--json');
    expect(wrongNonce.code).toBe(1);
    expect(JSON.parse(wrongNonce.stdout)).toEqual({ ok: false, reason: 'nonce_mismatch' });
    const wrongCode = await enclave('verify', token, '--policy', 'other-policy.json', '--nonce', NONCE, '--json');
    expect(JSON.parse(wrongCode.stdout).reason).toBe('measurement_not_allowed');
    const tampered = `${token.slice(0, -4)}AAAA`;
    const bad = await enclave('verify', tampered, '--policy', 'policy.json', '--nonce', NONCE, '--json');
    expect(JSON.parse(bad.stdout).reason).toBe('bad_signature');
  });

  it('attest refuses to issue evidence without a usable nonce', async () => {
    expect((await enclave('attest', 'counter.wasm', '--nonce', 'zz')).code).toBe(2);
    expect((await enclave('attest', 'counter.wasm', '--nonce', '00')).code).not.toBe(0);
  });

  it("the README's plain-jose check verifies the token", async () => {
    const platformJwk = JSON.parse((await enclave('platform-key')).stdout);
    const nonceHex = NONCE; // the hex the CLI takes and prints
    const expectedMeasurement = measurement;
    // --- as in README.md ---
    const key = await importJWK(platformJwk, 'EdDSA');
    const { payload } = await jwtVerify(token, key, { algorithms: ['EdDSA'], typ: 'eat+jwt', maxTokenAge: '5m' });
    if (payload.eat_nonce !== Buffer.from(nonceHex, 'hex').toString('base64url')) throw new Error('stale evidence');
    if (payload['enclave.measurement'] !== expectedMeasurement) throw new Error('wrong code');
    // ---
    expect(payload['enclave.platform']).toBe('software');
    // The README's earlier snippet encoded the hex text itself: that never matches the claim.
    expect(payload.eat_nonce).not.toBe(Buffer.from(nonceHex).toString('base64url'));
  });
});

describe('CLI input errors are stable codes, never stack traces', () => {
  it('bad files and numbers give error[usage] and exit 2 (regression: they were error[internal], exit 1)', async () => {
    await writeFile(path.join(dir, 'null.json'), 'null');
    await writeFile(path.join(dir, 'm-policy.json'), JSON.stringify({ measurements: ['0'.repeat(64)] }));
    const results = await Promise.all([
      enclave('verify', '@missing.jwt', '--policy', 'm-policy.json', '--nonce', NONCE),
      enclave('verify', 'a.b.c', '--policy', 'm-policy.json', '--nonce', NONCE, '--platform-key', 'null.json'),
      enclave('verify-module', 'counter.wasm', '--key', 'dev.pub.json', '--min-svn', 'abc'),
      enclave('attest', 'counter.wasm', '--nonce', NONCE, '--key', 'dev.pub.json', '--min-svn', '1e3'),
      enclave('sign', 'counter.wasm', '--key', 'other.key.json', '--out', 'no-such-dir/out.wasm'),
    ]);
    for (const r of results) {
      expect([r.code, r.stderr]).toEqual([2, expect.stringMatching(/^error\[usage\]/)]);
      expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    }
  });

  it('sign leaves no temp file behind, and platform-key takes --json', async () => {
    expect((await enclave('sign', 'counter.wasm', '--key', 'other.key.json', '--out', 'signed-twice.wasm')).code).toBe(0);
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const r = await enclave('platform-key', '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
  });
});

describe('enclave verify on a machine without a platform key', () => {
  it('refuses rather than creating one, and tells the relying party to pass --platform-key', async () => {
    const empty = await mkdtemp(path.join(tmpdir(), 'enclave-verifier-'));
    const policy = path.join(empty, 'policy.json');
    await writeFile(policy, JSON.stringify({ measurements: ['0'.repeat(64)] }));
    const r = await enclave('verify', 'x.y.z', '--policy', policy, '--nonce', NONCE, '--platform-dir', path.join(empty, 'platform'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--platform-key/);
    await expect(stat(path.join(empty, 'platform'))).rejects.toThrow(); // nothing was created
  });
});
