/**
 * `enclave types` reads its input as `enclave run` reads a module (core/read-bounded.ts): a FIFO
 * or a device is the command line's mistake (usage, exit 2, the path named), never waited on; and
 * the path it wrote is escaped for the terminal, as text and as JSON (host/cli/_escape.ts). `enclave
 * verify` reads its policy, token and key files with the same bounded read.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { enclaveCli, jsonError } from './helpers/cli.js';

const COUNTER = path.resolve('enclave-modules/counter/build/counter.wasm');
const dirs: string[] = [];
async function tmp(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'enclave-types-input-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('enclave types: its input and its output', () => {
  it('a FIFO or a device as input is usage (exit 2) naming the path, as in enclave run', async () => {
    const fifo = path.join(await tmp(), 'contract.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const input of [fifo, '/dev/zero']) {
      const r = await enclaveCli(['types', input, '--json']);
      expect(r.code).toBe(2);
      expect(jsonError(r.stderr)).toEqual({ code: 'usage', message: `Cannot read ${JSON.stringify(input)}: not a regular file.` });
      const text = await enclaveCli(['types', input]);
      expect(text.code).toBe(2);
      expect(text.stderr).toMatch(/^error\[usage\]: Cannot read ".*": not a regular file\.$/m);
    }
  }, 60_000);

  it('escapes the path it wrote for the terminal, as text and as JSON', async () => {
    const out = path.join(await tmp(), 'a\u202eb\x1b.d.ts');
    const text = await enclaveCli(['types', COUNTER, '--out', out]);
    expect(text.code).toBe(0);
    expect(text.stdout).not.toMatch(/[\u202e\x1b]/);
    expect(text.stdout).toContain('a\\u202eb\\x1b.d.ts: CounterOps, CounterEnclave');
    const json = await enclaveCli(['types', COUNTER, '--out', out, '--json']);
    expect(json.code).toBe(0);
    expect(json.stdout).not.toMatch(/[\u202e\x1b]/);
    expect(JSON.parse(json.stdout)).toEqual({ out, ops: 'CounterOps', enclave: 'CounterEnclave' });
  }, 60_000);
});

describe('enclave verify: its files are read with the same bounded read', () => {
  it('a device, a FIFO or a file over 1 MiB as --policy or @token is usage (exit 2); a missing one names its errno', async () => {
    const dir = await tmp();
    const fifo = path.join(dir, 'policy.fifo');
    execFileSync('mkfifo', [fifo]);
    const big = path.join(dir, 'big.json');
    await writeFile(big, Buffer.alloc((1 << 20) + 1, 0x20));
    for (const policy of ['/dev/zero', fifo, big]) {
      const r = await enclaveCli(['verify', 'x.y.z', '--policy', policy, '--nonce', '00', '--json']);
      expect(r.code).toBe(2);
      expect(jsonError(r.stderr)).toEqual({ code: 'usage', message: `The policy ${policy} is not a regular file of at most 1 MiB.` });
    }
    const token = await enclaveCli(['verify', `@${fifo}`, '--policy', big, '--nonce', '00', '--json']);
    expect(jsonError(token.stderr)).toEqual({ code: 'usage', message: `The token ${fifo} is not a regular file of at most 1 MiB.` });
    const missing = path.join(dir, 'nope.json');
    const r = await enclaveCli(['verify', 'x.y.z', '--policy', missing, '--nonce', '00', '--json']);
    expect(r.code).toBe(2);
    expect(jsonError(r.stderr)).toEqual({ code: 'usage', message: `Cannot read the policy ${missing}: ENOENT.` });
  }, 60_000);
});
