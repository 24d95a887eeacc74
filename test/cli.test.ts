import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';

// The CLI as users run it: the built dist/ (npm install builds it).
const run = promisify(execFile);
const CLI = 'dist/host/cli/main.js';
const ECHO = 'enclave-modules/echo/build/echo.wasm';
const COUNTER = 'enclave-modules/counter/build/counter.wasm';

async function enclave(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('enclave run', () => {
  it('round-trips JSON through echo', async () => {
    const r = await enclave('run', ECHO, 'echo', '{"hello":"enclave","n":[1,2.5,null]}');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ hello: 'enclave', n: [1, 2.5, null] });
  });

  it('carries bytes as {"$base64": ...} both ways', async () => {
    const r = await enclave('run', ECHO, 'echo', '{"$base64":"AAEC/w=="}', '--compact');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('{"$base64":"AAEC/w=="}');
  });

  it('calls counter', async () => {
    const r = await enclave('run', COUNTER, 'incr', '{"by":5}');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(5);
  });

  it('reads msgpack and JSON input files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'enclave-cli-'));
    await writeFile(path.join(dir, 'args.msgpack'), pack({ k: [1, 2] }));
    await writeFile(path.join(dir, 'args.json'), '{"k":"v"}');
    const a = await enclave('run', ECHO, 'echo', '--input-file', path.join(dir, 'args.msgpack'));
    expect(JSON.parse(a.stdout)).toEqual({ k: [1, 2] });
    const b = await enclave('run', ECHO, 'echo', '--input-file', path.join(dir, 'args.json'));
    expect(JSON.parse(b.stdout)).toEqual({ k: 'v' });
  });

  it('exits non-zero with the error code on stderr', async () => {
    const r = await enclave('run', COUNTER, 'decr');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error\[unknown_op\]/);
    const j = await enclave('run', COUNTER, 'incr', '{"by":-1}', '--json');
    expect(j.code).toBe(1);
    expect(JSON.parse(j.stderr).error.code).toBe('invalid_args');
  });

  it('exits 2 on bad usage', async () => {
    expect((await enclave('run', ECHO, 'echo', '{not json')).code).toBe(2);
    expect((await enclave('run', ECHO)).code).toBe(2);
  });

  it('refuses a file that is not a module', async () => {
    const r = await enclave('run', 'package.json', 'echo');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid_module/);
  });
});

describe('enclave inspect', () => {
  it('prints the measurement, exports, imports and contract', async () => {
    const bytes = await readFile(COUNTER);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const r = await enclave('inspect', COUNTER, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.measurement).toBe(sha);
    expect(report.contract.name).toBe('counter');
    expect(report.exports.map((e: { name: string }) => e.name)).toEqual(
      expect.arrayContaining(['memory', 'enclave_abi_version', 'enclave_alloc', 'enclave_call']),
    );
    expect(report.imports.every((i: { module: string }) => i.module === 'enclave')).toBe(true);
    const text = await enclave('inspect', COUNTER);
    expect(text.stdout).toContain(`sha256:${sha}`);
  });
});

describe('--help', () => {
  const commands = [[], ['run'], ['inspect'], ['build'], ['embed-contract'], ['init'], ['keygen'], ['sign'], ['verify-module'], ['attest'], ['verify'], ['platform-key'], ['keys'], ['types']];
  for (const cmd of commands) {
    it.concurrent(`enclave ${cmd.join(' ')} --help`, async () => {
      const r = await enclave(...cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Usage: enclave/);
    });
  }

  it('every command the CLI lists is covered above', async () => {
    const listed = [...(await enclave('--help')).stdout.matchAll(/^ {2}([a-z][a-z-]*)\b/gm)].map((m) => m[1]).filter((c) => c !== 'help');
    expect(listed.sort()).toEqual(commands.flat().sort());
  });
});
