/**
 * The exit codes of `enclave run`, row by row as README.md ("From the terminal") lists them: 0 ok;
 * 1 the module was refused or a call failed (the error's code printed); 2 bad usage (the command
 * line, a flag, a file named on it that cannot be read). Every error row runs twice: as text
 * (`error[<code>]: ...`) and with `--json` (one `{"error": {...}}` object on stderr), same exit code.
 */
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { enclaveCli, jsonError } from './helpers/cli.js';
import { MINIMAL_CONTRACT, SPIN_CONTRACT, SPIN_WAT, minimalWat, watModule } from './helpers/wat.js';

let dir: string;
const env: NodeJS.ProcessEnv = { ...process.env };

const run = (args: readonly string[], stdin?: string) => enclaveCli(args, { cwd: dir, env, ...(stdin === undefined ? {} : { stdin }) });

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'enclave-cli-exit-'));
  env.ENCLAVE_PLATFORM_DIR = path.join(dir, 'platform');
  // A private fuel cache: each module is instrumented once, not once per row.
  env.ENCLAVE_CACHE_DIR = path.join(dir, 'cache');
  await copyFile('enclave-modules/echo/build/echo.wasm', path.join(dir, 'echo.wasm'));
  await copyFile('enclave-modules/counter/build/counter.wasm', path.join(dir, 'counter.wasm'));
  await copyFile('enclave-modules/counter/build/counter.wasm', path.join(dir, 'signed.wasm'));
  await writeFile(path.join(dir, 'clock.wasm'), await watModule(minimalWat(), { ...MINIMAL_CONTRACT, capabilities: ['clock'] }));
  await writeFile(
    path.join(dir, 'bigmem.wasm'),
    await watModule(minimalWat({ memory: '(memory (export "memory") 1 300)' }), { ...MINIMAL_CONTRACT, limits: { ...MINIMAL_CONTRACT.limits, memoryPages: 300 } }),
  );
  await writeFile(path.join(dir, 'spin.wasm'), await watModule(SPIN_WAT, { ...SPIN_CONTRACT, limits: { ...SPIN_CONTRACT.limits, fuel: 2 ** 31 - 1 } }));
  await writeFile(path.join(dir, 'nocontract.wasm'), await watModule(minimalWat()));
  await writeFile(path.join(dir, 'args.json'), '{"by": 2}');
  await mkdir(path.join(dir, 'adir'));
  for (const key of ['dev', 'other']) expect((await run(['keygen', '--out', `${key}.key.json`])).code).toBe(0);
  expect((await run(['sign', 'signed.wasm', '--key', 'dev.key.json'])).code).toBe(0);
}, 120_000);

interface Row {
  /** What the row is about, as the README's table says it. */
  readonly why: string;
  readonly args: readonly string[];
  readonly stdin?: string;
  readonly exit: 0 | 1 | 2;
  /** The error code printed (absent for exit 0 and --ndjson rows, whose errors are stdout lines). */
  readonly code?: string;
  /** What the message must say (the path, the flag that helps). */
  readonly says?: RegExp;
  /** What the message must not say (the runtime's JavaScript options). */
  readonly not?: RegExp;
}

const ROWS: readonly Row[] = [
  // 0: done
  { why: 'a call that succeeds', args: ['run', 'echo.wasm', 'echo', '{"a": 1}'], exit: 0 },
  { why: 'args from a file', args: ['run', 'counter.wasm', 'incr', '--input-file', 'args.json'], exit: 0 },
  { why: 'args from stdin', args: ['run', 'counter.wasm', 'incr', '-'], stdin: '{"by": 3}', exit: 0 },
  { why: 'a module within --memory-pages', args: ['run', 'bigmem.wasm', 'ping', '--memory-pages', '300'], exit: 0 },
  { why: 'a module signed by a --trust key', args: ['run', 'signed.wasm', 'incr', '{"by": 1}', '--trust', 'dev.pub.json', '--min-svn', '1'], exit: 0 },
  { why: 'a granted capability', args: ['run', 'clock.wasm', 'ping', '--grant', 'clock'], exit: 0 },
  { why: 'worker isolation', args: ['run', 'echo.wasm', 'echo', '"w"', '--worker', '--deadline-ms', '5000'], exit: 0 },
  { why: '--ndjson, every call succeeds', args: ['run', 'counter.wasm', '--ndjson'], stdin: '{"op":"incr","args":{"by":1}}\n{"op":"reset"}\n', exit: 0 },
  { why: '--help', args: ['run', '--help'], exit: 0 },

  // 1: the module was refused, or the call failed
  { why: 'not a module', args: ['run', 'args.json', 'echo'], exit: 1, code: 'invalid_module' },
  { why: 'no contract', args: ['run', 'nocontract.wasm', 'ping'], exit: 1, code: 'invalid_contract' },
  { why: 'a capability not granted', args: ['run', 'clock.wasm', 'ping'], exit: 1, code: 'capability_denied', says: /pass --grant clock/, not: /capabilities:|\{/ },
  { why: 'memory above the policy', args: ['run', 'bigmem.wasm', 'ping'], exit: 1, code: 'memory_limit', says: /--memory-pages 300/ },
  { why: 'a --trust file that is no key', args: ['run', 'signed.wasm', 'get', '--trust', 'dev.pub.json', 'echo.wasm'], exit: 1, code: 'invalid_key', says: /--trust key echo\.wasm/ },
  { why: 'not signed by a --trust key', args: ['run', 'signed.wasm', 'incr', '{"by": 1}', '--trust', 'other.pub.json'], exit: 1, code: 'untrusted_module', says: /--trust/ },
  { why: 'svn below --min-svn', args: ['run', 'signed.wasm', 'incr', '{"by": 1}', '--trust', 'dev.pub.json', '--min-svn', '2'], exit: 1, code: 'rollback', says: /--min-svn/ },
  { why: 'an op the contract lacks', args: ['run', 'counter.wasm', 'decr'], exit: 1, code: 'unknown_op' },
  { why: 'args the contract refuses', args: ['run', 'counter.wasm', 'incr', '{"by": -1}'], exit: 1, code: 'invalid_args' },
  { why: 'a request above the contract limit', args: ['run', 'echo.wasm', 'echo', '-'], stdin: JSON.stringify('a'.repeat(1_100_000)), exit: 1, code: 'too_large' },
  { why: 'stdin above the CLI bound', args: ['run', 'echo.wasm', 'echo', '-'], stdin: JSON.stringify('a'.repeat(9 * 1024 * 1024)), exit: 1, code: 'too_large' },
  { why: 'the state an op requires', args: ['run', 'counter.wasm', 'reset'], exit: 1, code: 'state', says: /--ndjson/ },
  { why: 'fuel used up', args: ['run', 'spin.wasm', 'spin', '--fuel', '100000'], exit: 1, code: 'fuel_exhausted', says: /--fuel <n> for more, up to 2147483647/ },
  { why: 'a worker call past its deadline', args: ['run', 'spin.wasm', 'spin', '--worker', '--deadline-ms', '100', '--fuel', '2147483647'], exit: 1, code: 'timeout', says: /--deadline-ms/ },
  { why: '--ndjson, a call fails', args: ['run', 'counter.wasm', '--ndjson'], stdin: '{"op":"incr","args":{"by":1}}\n{"op":"decr"}\n', exit: 1 },

  // 2: bad usage
  { why: 'a module path that does not exist', args: ['run', 'nope.wasm', 'echo'], exit: 2, code: 'usage', says: /Cannot read nope\.wasm: ENOENT/ },
  { why: 'a module path that is a directory', args: ['run', 'adir', 'echo'], exit: 2, code: 'usage', says: /Cannot read adir: not a regular file/ },
  { why: 'a --trust key that does not exist', args: ['run', 'signed.wasm', 'get', '--trust', 'missing.pub.json'], exit: 2, code: 'usage', says: /missing\.pub\.json: ENOENT/ },
  { why: 'a --trust key that is a directory', args: ['run', 'signed.wasm', 'get', '--trust', 'dev.pub.json', 'adir'], exit: 2, code: 'usage', says: /Cannot read the --trust key adir: not a regular file/ },
  { why: 'an --input-file that does not exist', args: ['run', 'echo.wasm', 'echo', '--input-file', 'missing.json'], exit: 2, code: 'usage', says: /missing\.json: ENOENT/ },
  { why: 'no module', args: ['run'], exit: 2, code: 'usage' },
  { why: 'no op', args: ['run', 'echo.wasm'], exit: 2, code: 'usage', says: /--ndjson/ },
  { why: 'too many arguments', args: ['run', 'echo.wasm', 'echo', '1', '2'], exit: 2, code: 'usage' },
  { why: 'an unknown option', args: ['run', 'echo.wasm', 'echo', '--bogus'], exit: 2, code: 'usage', says: /--bogus/ },
  { why: 'an unknown command', args: ['frobnicate'], exit: 2, code: 'usage' },
  { why: 'args that are not JSON', args: ['run', 'echo.wasm', 'echo', '{not json'], exit: 2, code: 'usage' },
  { why: 'stdin args that are not JSON', args: ['run', 'echo.wasm', 'echo', '-'], stdin: '{not json', exit: 2, code: 'usage' },
  { why: 'args twice', args: ['run', 'echo.wasm', 'echo', '1', '--input-file', 'args.json'], exit: 2, code: 'usage' },
  { why: 'an op with --ndjson', args: ['run', 'echo.wasm', 'echo', '--ndjson'], exit: 2, code: 'usage' },
  { why: 'an unknown capability', args: ['run', 'clock.wasm', 'ping', '--grant', 'time'], exit: 2, code: 'usage' },
  { why: 'an unknown state policy', args: ['run', 'echo.wasm', 'echo', '--state', 'forever'], exit: 2, code: 'usage' },
  { why: '--fuel in exponent form', args: ['run', 'echo.wasm', 'echo', '--fuel', '1e3'], exit: 2, code: 'usage', says: /--fuel/ },
  { why: '--fuel 0', args: ['run', 'echo.wasm', 'echo', '--fuel', '0'], exit: 2, code: 'usage' },
  { why: '--fuel negative', args: ['run', 'echo.wasm', 'echo', '--fuel', '-5'], exit: 2, code: 'usage' },
  { why: '--fuel above 2^31 - 1', args: ['run', 'echo.wasm', 'echo', '--fuel', '2147483648'], exit: 2, code: 'usage' },
  { why: '--memory-pages above 65536', args: ['run', 'echo.wasm', 'echo', '--memory-pages', '65537'], exit: 2, code: 'usage' },
  { why: '--deadline-ms not a number', args: ['run', 'echo.wasm', 'echo', '--worker', '--deadline-ms', '1.5'], exit: 2, code: 'usage' },
  { why: '--deadline-ms without --worker', args: ['run', 'echo.wasm', 'echo', '--deadline-ms', '100'], exit: 2, code: 'usage', says: /--worker/ },
  { why: '--min-svn without --trust', args: ['run', 'echo.wasm', 'echo', '--min-svn', '1'], exit: 2, code: 'usage', says: /--trust/ },
  { why: '--min-svn not a number', args: ['run', 'signed.wasm', 'get', '--trust', 'dev.pub.json', '--min-svn', 'x'], exit: 2, code: 'usage' },
  { why: '--session without per-session', args: ['run', 'echo.wasm', 'echo', '--session', 'a'], exit: 2, code: 'usage' },
  { why: 'per-session without --session', args: ['run', 'echo.wasm', 'echo', '--state', 'per-session'], exit: 2, code: 'usage' },
  { why: '--platform-dir without seal or attest', args: ['run', 'echo.wasm', 'echo', '--platform-dir', 'p'], exit: 2, code: 'usage' },
  { why: '--ndjson, a line that is not a call', args: ['run', 'counter.wasm', '--ndjson'], stdin: '{"op":"incr","args":{"by":1}}\n[1]\n', exit: 2 },
];

describe('enclave run exit codes (README.md, "From the terminal")', () => {
  for (const row of ROWS) {
    it.concurrent(`${row.exit}: ${row.why}`, async () => {
      const r = await run(row.args, row.stdin);
      expect(r.code, r.stderr).toBe(row.exit);
      if (row.code === undefined) return;
      expect(r.stderr).toMatch(new RegExp(`^error\\[${row.code}\\]: `, 'm'));
      if (row.says) expect(r.stderr).toMatch(row.says);
      if (row.not) expect(r.stderr.slice(r.stderr.indexOf(`error[${row.code}]`))).not.toMatch(row.not);
    });
    if (row.code === undefined) continue;
    it.concurrent(`${row.exit}: ${row.why} (--json)`, async () => {
      const r = await run([...row.args, '--json'], row.stdin);
      expect(r.code, r.stderr).toBe(row.exit);
      const error = jsonError(r.stderr);
      expect(error.code).toBe(row.code);
      if (row.says) expect(error.message).toMatch(row.says);
      expect(r.stderr).not.toMatch(/^error/m); // nothing but the JSON object
    });
  }

  it('every exit code the README lists has rows here, and the README lists every code these rows use', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile('README.md', 'utf8');
    const heading = /^#+ Exit codes$/m.exec(readme);
    expect(heading).not.toBeNull();
    const section = readme.slice(heading!.index);
    const table = section.slice(0, section.indexOf('\n\n', section.indexOf('|')));
    for (const exit of [0, 1, 2]) expect(table).toMatch(new RegExp(`^\\| ${exit} \\|`, 'm'));
    for (const code of new Set(ROWS.flatMap((r) => (r.code === undefined ? [] : [r.code])))) expect(table).toContain(`\`${code}\``);
  });
});
