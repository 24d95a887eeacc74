/**
 * `enclave run` as a person uses it: limits, isolation, state and trust from flags, `--stats`,
 * several calls to one instance with `--ndjson`, arguments from stdin, and stdin as hostile input
 * (bounded lines, bytes that are not UTF-8, a reader that goes away). Exit codes: cli-exit-codes.test.ts.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { lines, readStream } from '../host/cli/_stdin.js';
import { parseWhole } from '../host/cli/_flags.js';
import { parseLine, serveLines } from '../host/cli/_ndjson.js';
import { wantsJson } from '../host/cli/handle-error.js';
import { CLI, enclaveCli, jsonError } from './helpers/cli.js';
import { MINIMAL_CONTRACT, SPIN_CONTRACT, SPIN_WAT, minimalWat, watModule } from './helpers/wat.js';

let dir: string;
const env: NodeJS.ProcessEnv = { ...process.env };
const run = (args: readonly string[], stdin?: string | Uint8Array) => enclaveCli(args, { cwd: dir, env, ...(stdin === undefined ? {} : { stdin }) });
const replies = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'enclave-cli-run-'));
  env.ENCLAVE_CACHE_DIR = path.join(dir, 'cache');
  await copyFile('enclave-modules/echo/build/echo.wasm', path.join(dir, 'echo.wasm'));
  await copyFile('enclave-modules/counter/build/counter.wasm', path.join(dir, 'counter.wasm'));
  await writeFile(path.join(dir, 'clock.wasm'), await watModule(minimalWat(), { ...MINIMAL_CONTRACT, name: 'timer', capabilities: ['clock', 'random'] }));
  await writeFile(path.join(dir, 'spin.wasm'), await watModule(SPIN_WAT, SPIN_CONTRACT));
}, 60_000);

describe('enclave run --ndjson: several calls to one instance', () => {
  it('counter incr then reset in one process, one reply line per call, in order', async () => {
    const r = await run(['run', 'counter.wasm', '--ndjson'], '{"op":"incr","args":{"by":2}}\n{"op":"incr","args":{"by":3}}\n{"op":"get"}\n{"op":"reset"}\n{"op":"get"}\n');
    expect(r.code, r.stderr).toBe(0);
    expect(replies(r.stdout)).toEqual([{ ok: 2 }, { ok: 5 }, { ok: 5 }, { ok: null }, { ok: 0 }]);
  });

  it('a failed call is its own error line and the session goes on; ids are echoed; blank lines are skipped', async () => {
    const r = await run(['run', 'counter.wasm', '--ndjson'], '{"op":"incr","args":{"by":1},"id":"a"}\n\n  \r\n{"op":"decr","id":2}\n{"op":"incr","args":{"by":-1}}\n{"op":"get","id":3}\n');
    expect(r.code).toBe(1);
    const out = replies(r.stdout);
    expect(out).toHaveLength(4);
    expect(out[0]).toEqual({ id: 'a', ok: 1 });
    expect(out[1]).toMatchObject({ id: 2, error: { code: 'unknown_op' } });
    expect(out[2]).toMatchObject({ error: { code: 'invalid_args' } });
    expect(out[3]).toEqual({ id: 3, ok: 1 }); // the failed calls did not reset the instance
  });

  it('lines that are not calls are usage errors (exit 2), and the session goes on', async () => {
    const bad = ['nope', '[1]', '{"args":1}', '{"op":1}', '{"op":"echo","extra":1}', '{"op":"echo","session":5}', '{"op":"echo","id":{}}', '{"op":"echo","session":"s"}'];
    const r = await run(['run', 'echo.wasm', '--ndjson'], `${bad.join('\n')}\n{"op":"echo","args":"still here"}\n`);
    expect(r.code).toBe(2);
    const out = replies(r.stdout);
    expect(out.slice(0, bad.length).map((o) => (o.error as { code: string }).code)).toEqual(bad.map(() => 'usage'));
    expect((out[0]!.error as { message: string }).message).toMatch(/^Line 1/);
    expect((out[7]!.error as { message: string }).message).toMatch(/--state per-session/);
    expect(out.at(-1)).toEqual({ ok: 'still here' });
  });

  it('stdin is bounded: an endless line is too_large once, bytes that are not UTF-8 are usage; the next line is served', async () => {
    const long = `{"op":"echo","args":"${'a'.repeat(9 * 1024 * 1024)}"}`;
    const input = Buffer.concat([Buffer.from(`${long}\n`), Buffer.from([0xff, 0xfe, 0x0a]), Buffer.from('{"op":"echo","args":1}')]);
    const r = await run(['run', 'echo.wasm', '--ndjson'], input);
    const out = replies(r.stdout);
    expect(out).toHaveLength(3);
    expect(out[0]).toMatchObject({ error: { code: 'too_large' } });
    expect((out[0]!.error as { message: string }).message).toMatch(/^Line 1 is longer than 8388608 bytes/);
    expect(out[1]).toMatchObject({ error: { code: 'usage', message: 'Line 2 is not UTF-8 text.' } });
    expect(out[2]).toEqual({ ok: 1 }); // the last line needs no newline
    expect(r.code).toBe(2);
  });

  it('per-session state: each session its own instance; --session is the default of a line without one', async () => {
    const r = await run(
      ['run', 'counter.wasm', '--ndjson', '--state', 'per-session', '--session', 'a'],
      '{"op":"incr","args":{"by":1}}\n{"op":"incr","args":{"by":5},"session":"b"}\n{"op":"incr","args":{"by":1}}\n{"op":"get","session":"b"}\n',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(replies(r.stdout)).toEqual([{ ok: 1 }, { ok: 5 }, { ok: 2 }, { ok: 5 }]);
  });

  it('per-call state serves every call from a pristine instance', async () => {
    const r = await run(['run', 'counter.wasm', '--ndjson', '--state', 'per-call'], '{"op":"incr","args":{"by":1}}\n{"op":"incr","args":{"by":1}}\n');
    expect(replies(r.stdout)).toEqual([{ ok: 1 }, { ok: 1 }]);
  });

  it('--stats adds what each call used to its reply line, failed calls included', async () => {
    const r = await run(['run', 'counter.wasm', '--ndjson', '--stats', '--fuel', '5000000'], '{"op":"incr","args":{"by":1}}\n{"op":"decr"}\n');
    const [ok, failed] = replies(r.stdout) as [{ stats: { fuel: number; fuelLimit: number; ms: number } }, { stats: { fuel: number } }];
    expect(ok.stats.fuel).toBeGreaterThan(0);
    expect(ok.stats.fuelLimit).toBe(5_000_000);
    expect(ok.stats.ms).toBeGreaterThanOrEqual(0);
    expect(failed.stats).toBeDefined();
  });
});

describe('enclave run flags', () => {
  it('--stats prints the fuel used of the budget on stderr after the reply; --json prints it as JSON', async () => {
    const r = await run(['run', 'echo.wasm', 'echo', '"x"', '--stats']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('x');
    const m = /^stats: fuel (\d+) of (\d+), ([\d.]+) ms$/m.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![2])).toBe(10_000_000);
    const j = await run(['run', 'echo.wasm', 'echo', '"x"', '--stats', '--json', '--fuel', '5000000']);
    const { stats } = JSON.parse(j.stderr.trim()) as { stats: { fuel: number; fuelLimit: number } };
    expect(stats.fuelLimit).toBe(5_000_000);
    expect(stats.fuel).toBe(Number(m![1])); // deterministic: the same call uses the same fuel
  });

  it('--stats reports a call that ran out of fuel, with the flag that helps', async () => {
    const r = await run(['run', 'spin.wasm', 'spin', '--stats', '--fuel', '1000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[fuel_exhausted\]: The call used more than its 1000 units of fuel: pass --fuel <n> for more, up to \d+/m);
    expect(r.stderr).toMatch(/^stats: fuel \d+ of 1000,/m);
  });

  it('--fuel can only lower what the contract allows (the policy caps, never raises)', async () => {
    // echo's contract gives no limits.fuel: the contract default is the ceiling.
    const r = await run(['run', 'echo.wasm', 'echo', '1', '--stats', '--json', '--fuel', '2147483647']);
    const { stats } = JSON.parse(r.stderr.trim()) as { stats: { fuelLimit: number } };
    expect(stats.fuelLimit).toBeLessThan(2_147_483_647);
  });

  it('--memory-pages lowers the limit below what the module declares: memory_limit', async () => {
    const r = await run(['run', 'counter.wasm', 'get', '--memory-pages', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[memory_limit\]: .*pass --memory-pages \d+/m);
  });

  it('--worker runs the call in a worker; --deadline-ms is its deadline', async () => {
    const r = await run(['run', 'counter.wasm', 'incr', '{"by":4}', '--worker', '--deadline-ms', '10000', '--stats']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(4);
    expect(r.stderr).toMatch(/^stats: fuel \d+ of/m);
  });

  it('a module needing capabilities names them as --grant flags', async () => {
    const r = await run(['run', 'clock.wasm', 'ping', '--grant', 'random']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[capability_denied]: The enclave "timer" needs the "clock" capability: pass --grant clock if you trust it.');
    const both = await run(['run', 'clock.wasm', 'ping', '--json']);
    expect(jsonError(both.stderr).message).toMatch(/needs the "clock", "random" capabilities: pass --grant clock random/);
    expect((await run(['run', 'clock.wasm', 'ping', '--grant', 'clock', 'random'])).code).toBe(0);
  });

  it('a missing module is usage with its path, as text and as JSON', async () => {
    const r = await run(['run', path.join(dir, 'missing', 'x.wasm'), 'echo']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`error[usage]: Cannot read ${path.join(dir, 'missing', 'x.wasm')}: ENOENT.\n`);
  });

  it('--input-file must be a regular file within the bound', async () => {
    const fifoLike = await run(['run', 'echo.wasm', 'echo', '--input-file', '/dev/zero']);
    expect(fifoLike.code).toBe(2);
    expect(fifoLike.stderr).toMatch(/not a regular file/);
    await writeFile(path.join(dir, 'big.json'), JSON.stringify('a'.repeat(9 * 1024 * 1024)));
    const big = await run(['run', 'echo.wasm', 'echo', '--input-file', 'big.json', '--json']);
    expect(big.code).toBe(1);
    expect(jsonError(big.stderr).code).toBe('too_large');
  });

  it('the parser refuses as usage, also with --json (help and --version still exit 0)', async () => {
    const text = await run(['run', 'echo.wasm', 'echo', '--fuel']);
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/^error\[usage\]: option '--fuel <n>' argument missing/m);
    const json = await run(['run', 'echo.wasm', '--json', 'echo', '--nope']);
    expect(json.code).toBe(2);
    expect(json.stderr.trim().split('\n')).toHaveLength(1);
    expect(jsonError(json.stderr)).toEqual({ code: 'usage', message: "unknown option '--nope'" });
    const none = await run(['--json']);
    expect(jsonError(none.stderr).code).toBe('usage');
    expect((await run(['--version', '--json'])).code).toBe(0);
    expect((await run(['run', '--help', '--json'])).code).toBe(0);
  });
});

describe('what a cold enclave run loads', () => {
  it('with a warm cache: neither the AssemblyScript compiler, binaryen, jose nor the native msgpack extractor', async () => {
    // A module loader hook names every ES module the process loads on stderr; NODE_DEBUG=module
    // names what require() loads (msgpackr finds its native extractor with require).
    const hooks = path.join(dir, 'hooks.mjs');
    await writeFile(hooks, 'export async function load(url, context, next) { process._rawDebug(`LOADED ${url}`); return next(url, context); }\n');
    const register = path.join(dir, 'register.mjs');
    await writeFile(register, `import { register } from 'node:module';\nregister(${JSON.stringify(new URL(`file://${hooks}`).href)});\n`);
    const traced = (args: string[]) => enclaveCli(args, { cwd: dir, env: { ...env, NODE_DEBUG: 'module', NODE_OPTIONS: `--import=${new URL(`file://${register}`).href}` } });
    expect((await traced(['run', 'echo.wasm', 'echo', '1'])).code).toBe(0); // warms the cache
    const r = await traced(['run', 'echo.wasm', 'echo', '1']);
    expect(r.code, r.stderr).toBe(0);
    const loaded = r.stderr.split('\n').filter((l) => l.startsWith('LOADED '));
    expect(loaded.some((l) => l.includes('/dist/runtime/index.js'))).toBe(true); // the hook saw the run
    for (const unwanted of ['/node_modules/assemblyscript/', '/node_modules/binaryen/', '/node_modules/jose/']) {
      expect(loaded.filter((l) => l.includes(unwanted))).toEqual([]);
    }
    expect(r.stderr).toMatch(/^MODULE \d+: /m); // NODE_DEBUG saw require() at work
    expect(r.stderr).not.toContain('msgpackr-extract');
  });
});

describe('CLI helpers', () => {
  it('parseWhole takes plain decimal numbers in range only', () => {
    expect(parseWhole('0', '--n', 0, 5)).toBe(0);
    expect(parseWhole('5', '--n', 0, 5)).toBe(5);
    for (const bad of ['', ' 1', '1 ', '01', '1e3', '0x10', '-1', '+1', '1.0', '1_000', '6', '99999999999999999999', '٣']) {
      expect(() => parseWhole(bad, '--n', 0, 5), bad).toThrow(/--n takes a whole number from 0 to 5/);
    }
  });

  it('wantsJson reads --json before a --', () => {
    expect(wantsJson(['node', 'main', 'run', '--json'])).toBe(true);
    expect(wantsJson(['node', 'main', 'run', '--', '--json'])).toBe(false);
    expect(wantsJson(['node', 'main', 'run', '--jsonx'])).toBe(false);
  });

  it('lines splits on newlines across chunks and drops an overlong line as it streams', async () => {
    async function* chunks() {
      yield Buffer.from('ab');
      yield Buffer.from('c\nd');
      yield Buffer.from('efghij'); // line 2 passes 5 bytes here
      yield Buffer.from('klm\nxy\n\nz');
    }
    const got = [];
    for await (const l of lines(chunks(), 5)) got.push('tooLong' in l ? [l.number, 'tooLong'] : [l.number, l.bytes.toString()]);
    expect(got).toEqual([
      [1, 'abc'],
      [2, 'tooLong'],
      [3, 'xy'],
      [4, ''],
      [5, 'z'],
    ]);
  });

  it('readStream refuses a stream past its bound as soon as it passes it', async () => {
    let pulled = 0;
    async function* endless() {
      for (;;) {
        pulled++;
        yield Buffer.alloc(1024);
      }
    }
    await expect(readStream(endless(), 'stdin', 4096)).rejects.toMatchObject({ code: 'too_large' });
    expect(pulled).toBe(5);
  });

  it('parseLine takes op, args (bytes as $base64), session and id only', () => {
    const { call, id } = parseLine('{"op":"echo","args":{"$base64":"AAE="},"session":"s","id":1}', 1);
    expect(call).toEqual({ op: 'echo', args: new Uint8Array([0, 1]), session: 's' });
    expect(id).toBe(1);
    expect(() => parseLine('{"op":"echo","__proto__":{}}', 3)).toThrow(/Line 3 has an unknown key "__proto__"/);
    expect(() => parseLine('{"$base64":"AA=="}', 4)).toThrow(/Line 4 is not a call/);
  });

  it('serveLines stops quietly when its reader goes away', async () => {
    const { Writable } = await import('node:stream');
    const out = new Writable({ highWaterMark: 1, write: (_chunk, _enc, done) => setImmediate(done) });
    let calls = 0;
    const input = (async function* () {
      for (let i = 0; i < 1000; i++) yield Buffer.from('{"op":"x"}\n');
    })();
    const done = serveLines(input, out, async () => {
      calls++;
      if (calls === 3) out.destroy(Object.assign(new Error('EPIPE'), { code: 'EPIPE' }));
      return { reply: calls };
    });
    await expect(done).resolves.toBe(0);
    expect(calls).toBeLessThan(10);
  });
});

describe('a reader that goes away', () => {
  /** Runs the CLI with its stdout closed before it writes (`enclave run ... | head -c0`). */
  function closedStdout(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
      child.stdout.destroy();
      const err: Buffer[] = [];
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.stdin.on('error', () => undefined);
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr: Buffer.concat(err).toString('utf8') }));
      child.stdin.end('{"op":"echo","args":1}\n');
    });
  }

  it.each([
    ['one call', ['run', 'echo.wasm', 'echo', '{"a":1}']],
    ['--ndjson', ['run', 'echo.wasm', '--ndjson']],
    ['inspect', ['inspect', 'echo.wasm']],
  ])('EPIPE on stdout (%s) ends the output quietly: no unhandled error, no stack trace', async (_name, args) => {
    const r = await closedStdout(args);
    expect(r.stderr).not.toMatch(/Unhandled|EPIPE|\n\s+at /);
    expect(r.code).toBe(0);
  });

  it.each([
    ['one call', ['run', 'echo.wasm', 'echo', '{"a":1}']],
    ['--ndjson', ['run', 'echo.wasm', '--ndjson']],
    ['--json', ['run', 'echo.wasm', 'echo', '{"a":1}', '--json']],
  ])('output that cannot be written (stdout on /dev/full, %s) is exit 1 with the reason, not a crash and not success', async (_name, args) => {
    const full = openSync('/dev/full', 'w');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env, stdio: ['pipe', full, 'pipe'] });
      const err: Buffer[] = [];
      child.stderr!.on('data', (b: Buffer) => err.push(b));
      child.stdin!.on('error', () => undefined);
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr: Buffer.concat(err).toString('utf8') }));
      child.stdin!.end('{"op":"echo","args":1}\n');
    });
    closeSync(full);
    expect(r.stderr).not.toMatch(/Unhandled|\n\s+at /);
    expect(r.stderr).toMatch(/Cannot write the output: ENOSPC/);
    if (args.includes('--json')) expect(jsonError(r.stderr)).toMatchObject({ code: 'internal' });
    expect(r.code).toBe(1);
  });
});

describe('--json: stderr is JSON only', () => {
  it('a process warning (an untrusted fuel cache) is a JSON line too, and the error stays one JSON object', async () => {
    const open = path.join(dir, 'open-cache');
    await mkdir(open, { recursive: true });
    await chmod(open, 0o777); // anyone can write it: the cache refuses it with a warning
    const r = await enclaveCli(['run', 'echo.wasm', 'nope', '--json'], { cwd: dir, env: { ...env, ENCLAVE_CACHE_DIR: open } });
    expect(r.code).toBe(1);
    const parsed = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, { code: string }>);
    expect(parsed.map((o) => Object.keys(o)[0])).toEqual(['warning', 'error']);
    expect(parsed[0]!.warning!.code).toBe('ENCLAVE_FUEL_CACHE_UNTRUSTED');
    expect(parsed[1]!.error!.code).toBe('unknown_op');
  });
});

describe('JSON arguments', () => {
  it('nesting too deep for the parser is said so (usage), not "not valid JSON"', async () => {
    const { parseJsonArgs } = await import('../host/cli/_json.js');
    const deep = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
    expect(() => parseJsonArgs(deep)).toThrow(expect.objectContaining({ code: 'usage', message: expect.stringMatching(/nested too deep/) }));
    expect(() => parseJsonArgs(`{"a":${deep}}`)).toThrow(/nested too deep/);
  });

  it('{"$base64": ...} takes base64 only: other text is usage, not silently other bytes', async () => {
    const { parseJsonArgs } = await import('../host/cli/_json.js');
    expect(parseJsonArgs('{"$base64":"AAEC/w=="}')).toEqual(new Uint8Array([0, 1, 2, 255]));
    expect(parseJsonArgs('{"$base64":""}')).toEqual(new Uint8Array([]));
    for (const bad of ['!!!', 'AAEC/w', 'AA EC', 'AAEC/w==AA', 'AAE=C']) {
      expect(() => parseJsonArgs(`{"$base64":${JSON.stringify(bad)}}`), bad).toThrow(expect.objectContaining({ code: 'usage', message: expect.stringMatching(/\$base64/) }));
    }
  });
});
