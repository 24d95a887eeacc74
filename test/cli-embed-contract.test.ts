/**
 * `enclave embed-contract <module> <contract.json>` (issue 14, decision 9): a module from another
 * toolchain (here a hand-written WAT core module following docs/ABI.md, no SDK) made an enclave
 * module, with the checks of `enclave build` (host/build/embed.ts): the contract valid, no contract
 * or signature already there, the memory maximum within limits.memoryPages, the result loads, and
 * every op has a handler where the module answers the handler probe. The output is written whole
 * or not at all, and never when a check fails.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_SECTION, customSections, encodeCustomSection, SIGNATURE_SECTION } from '../core/index.js';
import { LOAD_CHECK_DEADLINE_MS } from '../host/build/check.js';
import { readContractFile } from '../host/build/contract-file.js';
import { embedContract } from '../host/build/embed.js';
import { defaultOutput } from '../host/cli/commands/embed-contract.js';
import { loadEnclave } from '../runtime/index.js';
import { enclaveCli, jsonError } from './helpers/cli.js';
import { beyondWorldComponent, componentOf, fixtureContract, fixtureWat, MINIMAL_COMPONENT_CONTRACT, minimalComponentWat, withContract } from './helpers/component-fixtures.js';
import { codeOf } from './helpers/errors.js';

/**
 * A core module written by hand against docs/ABI.md, without the SDK: op `ping` answers "pong";
 * the handler probe (`{op, probe: true}`, docs/ABI.md §4.1) answers `{ok: nil}` for `ping`; any
 * other op answers `unknown_op`. It reads only what it needs: a map header (fixmap, or map16 as the
 * build's probe encoder writes), the key "op" first, its fixstr value; a second key that is fixstr-5
 * (`probe`: the host's calls have only `args` there) makes it a probe.
 */
function pingWat(options: { memory?: string; probe?: 'answers' | 'bad_request' } = {}): string {
  const probe =
    options.probe === 'bad_request'
      ? // A module that does not know the probe: a strict decoder, it refuses a second key other than "args".
        '(if (i32.and (i32.ge_u (local.get $n) (i32.const 2)) (i32.ne (i32.load8_u offset=8 (local.get $at)) (i32.const 0xa4))) (then (return (call $reply (i32.const 0x240) (i32.const 23)))))'
      : '(if (i32.and (i32.ge_u (local.get $n) (i32.const 2)) (i32.eq (i32.load8_u offset=8 (local.get $at)) (i32.const 0xa5))) (then (return (call $reply (i32.const 0x200) (i32.const 5)))))';
  return `(module
  ${options.memory ?? '(memory (export "memory") 1 1)'}
  (data (i32.const 0x200) "\\81\\a2ok\\c0")
  (data (i32.const 0x210) "\\81\\a2ok\\a4pong")
  (data (i32.const 0x220) "\\81\\a3err\\81\\a4code\\aaunknown_op")
  (data (i32.const 0x240) "\\81\\a3err\\81\\a4code\\abbad_request")
  (func $reply (param $at i32) (param $len i32) (result i32)
    (i32.store (i32.const 0x100) (local.get $at))
    (i32.store (i32.const 0x104) (local.get $len))
    (i32.const 0x100))
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (local $n i32) (local $at i32)
    ;; the map's entries $n, and $at where its first key starts
    (local.set $n (i32.and (i32.load8_u (local.get $p)) (i32.const 0x0f)))
    (local.set $at (i32.add (local.get $p) (i32.const 1)))
    (if (i32.eq (i32.load8_u (local.get $p)) (i32.const 0xde))
      (then
        (local.set $n (i32.load8_u offset=2 (local.get $p)))
        (local.set $at (i32.add (local.get $p) (i32.const 3)))))
    ;; key "op" (a2 6f 70), then the value fixstr-4 "ping" (0x676e6970 read little-endian)
    (if (i32.or (i32.ne (i32.load8_u offset=3 (local.get $at)) (i32.const 0xa4)) (i32.ne (i32.load offset=4 (local.get $at)) (i32.const 0x676e6970)))
      (then (return (call $reply (i32.const 0x220) (i32.const 22)))))
    ${probe}
    (call $reply (i32.const 0x210) (i32.const 9))))`;
}

const CONTRACT = {
  abi: 1,
  name: 'ping',
  version: '1.0.0',
  svn: 0,
  capabilities: [] as string[],
  limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1 },
  ops: { ping: { args: { type: 'nil' } } },
};

let dir: string;
let ping: Uint8Array;
const env: NodeJS.ProcessEnv = { ...process.env };
const cli = (...args: string[]) => enclaveCli(args, { cwd: dir, env });

async function file(name: string, content: Uint8Array | string | object): Promise<string> {
  const at = path.join(dir, name);
  await mkdir(path.dirname(at), { recursive: true });
  await writeFile(at, content instanceof Uint8Array || typeof content === 'string' ? content : JSON.stringify(content));
  return at;
}

function append(bytes: Uint8Array, name: string, payload: Uint8Array): Uint8Array {
  const section = encodeCustomSection(name, payload);
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}

/** The files of a folder: nothing left behind (no temporary file) after a refusal. */
async function listing(sub = '.'): Promise<string[]> {
  return (await readdir(path.join(dir, sub))).sort();
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'enclave-cli-embed-'));
  env.ENCLAVE_CACHE_DIR = path.join(dir, '.cache');
  ping = await parse(pingWat());
  await file('ping.wasm', ping);
  await file('contract.json', CONTRACT);
}, 60_000);

describe('enclave embed-contract: a module from another toolchain', () => {
  it('embeds the contract into <module>.enclave.wasm beside it; the result runs; the input is unchanged', async () => {
    const r = await cli('embed-contract', 'ping.wasm', 'contract.json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^embedded {5}ping 1\.0\.0 into ping\.enclave\.wasm \(module, \d+ bytes\)\nmeasurement  sha256:[0-9a-f]{64}\nhandlers {5}every contract op answered the handler probe\n$/);
    const out = await readFile(path.join(dir, 'ping.enclave.wasm'));
    // The input's bytes, then exactly one contract section: the contract as written, without whitespace.
    expect(out.subarray(0, ping.length)).toEqual(Buffer.from(ping));
    expect(customSections(out, CONTRACT_SECTION).map((p) => JSON.parse(Buffer.from(p).toString('utf8')))).toEqual([CONTRACT]);
    expect(await readFile(path.join(dir, 'ping.wasm'))).toEqual(Buffer.from(ping));
    const run = await cli('run', 'ping.enclave.wasm', 'ping');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toBe('pong');
    const denied = await cli('run', 'ping.enclave.wasm', 'pong');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^error\[unknown_op\]/);
  }, 120_000);

  it('--json: the output, kind, measurement (the one inspect prints), contract name and the handler check', async () => {
    const r = await cli('embed-contract', 'ping.wasm', 'contract.json', '--out', 'out/ping-json.wasm', '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toEqual({
      module: 'ping.wasm',
      output: path.join(dir, 'out', 'ping-json.wasm'),
      kind: 'module',
      bytes: (await readFile(path.join(dir, 'out', 'ping-json.wasm'))).length,
      measurement: expect.stringMatching(/^[0-9a-f]{64}$/),
      name: 'ping',
      version: '1.0.0',
      handlers: { checked: true },
    });
    const inspect = JSON.parse((await cli('inspect', 'out/ping-json.wasm', '--json')).stdout);
    expect(inspect.measurement).toBe(report.measurement);
    // The same bytes as the default output: the embedding is deterministic.
    expect(await readFile(path.join(dir, 'out', 'ping-json.wasm'))).toEqual(await readFile(path.join(dir, 'ping.enclave.wasm')));
  }, 120_000);

  it('a memory maximum below limits.memoryPages is accepted (the runtime refuses only more)', async () => {
    await file('small/ping.wasm', await parse(pingWat({ memory: '(memory (export "memory") 1 2)' })));
    await file('small/contract.json', { ...CONTRACT, limits: { ...CONTRACT.limits, memoryPages: 4 } });
    const r = await cli('embed-contract', 'small/ping.wasm', 'small/contract.json', '--json');
    expect(r.code, r.stderr).toBe(0);
    const enclave = await loadEnclave(path.join(dir, 'small', 'ping.enclave.wasm'), { cacheDir: false });
    try {
      expect(await enclave.call('ping')).toBe('pong');
    } finally {
      await enclave.close();
    }
  }, 120_000);

  it('the default output: .wasm replaced, or appended to a name without it', () => {
    expect(defaultOutput('a/b/kv.wasm')).toBe(path.join('a', 'b', 'kv.enclave.wasm'));
    expect(defaultOutput('kv')).toBe('kv.enclave.wasm');
    expect(defaultOutput('/x/kv.bin')).toBe('/x/kv.bin.enclave.wasm');
  });

  it('a module that ignores the probe is embedded, with the handler check reported as not made and why', async () => {
    await file('noprobe/ping.wasm', await parse(pingWat({ probe: 'bad_request' })));
    const r = await cli('embed-contract', 'noprobe/ping.wasm', 'contract.json', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).handlers).toEqual({
      checked: false,
      why: "the module does not answer the handler probe: probing \"ping\", it answered { err: { code: 'bad_request' } }",
    });
    const text = await cli('embed-contract', 'noprobe/ping.wasm', 'contract.json');
    expect(text.stdout).toContain('handlers     not checked: the module does not answer the handler probe: probing "ping"');
  }, 120_000);
});

describe('enclave embed-contract: refusals (nothing is written)', () => {
  it('a module that already carries a contract: invalid_contract, exit 1, never replaced', async () => {
    await file('has/ping.wasm', append(ping, CONTRACT_SECTION, new TextEncoder().encode(JSON.stringify(CONTRACT))));
    const r = await cli('embed-contract', 'has/ping.wasm', 'contract.json');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[invalid_contract\]: The module already carries an enclave\.contract section: embed-contract never replaces one/);
    // Even an unreadable one: any section of that name counts.
    await file('has/junk.wasm', append(ping, CONTRACT_SECTION, Uint8Array.of(0xff)));
    const json = await cli('embed-contract', 'has/junk.wasm', 'contract.json', '--json');
    expect(json.code).toBe(1);
    expect(jsonError(json.stderr).code).toBe('invalid_contract');
    expect(await listing('has')).toEqual(['junk.wasm', 'ping.wasm']);
  }, 120_000);

  it('an invalid contract: invalid_contract with the build\'s message, naming the file, before the module is touched', async () => {
    const cases: [string, string | object, RegExp][] = [
      ['bad/name.json', { ...CONTRACT, name: 'Not A Name' }, /bad\/name\.json: .*name/],
      ['bad/json.json', '{"abi": 1,', /bad\/json\.json is not readable JSON/],
      ['bad/abi.json', { ...CONTRACT, abi: 'one' }, /bad\/abi\.json: /],
      // The build's own check: a request and a reply must fit the memory.
      ['bad/fit.json', { ...CONTRACT, limits: { ...CONTRACT.limits, requestBytes: 65536 } }, /do not fit in limits\.memoryPages \(1 pages/],
    ];
    for (const [name, content, message] of cases) {
      await file(name, content);
      const r = await cli('embed-contract', 'ping.wasm', name, '--out', 'bad/out.wasm');
      expect(r.code, name).toBe(1);
      expect(r.stderr, name).toMatch(/^error\[invalid_contract\]: /);
      expect(r.stderr, name).toMatch(message);
    }
    // The same code and message as `enclave build` gives for that contract: one reader.
    expect(await codeOf(readContractFile(path.join(dir, 'bad', 'fit.json')))).toBe('invalid_contract');
    const missing = await cli('embed-contract', 'ping.wasm', 'bad/none.json');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error\[invalid_contract\]: .*bad\/none\.json is not readable JSON: .*ENOENT/);
    expect(existsSync(path.join(dir, 'bad', 'out.wasm'))).toBe(false);
  }, 120_000);

  it('a memory maximum above limits.memoryPages, or none: memory_limit, exit 1', async () => {
    await file('big/ping.wasm', await parse(pingWat({ memory: '(memory (export "memory") 1 2)' })));
    const r = await cli('embed-contract', 'big/ping.wasm', 'contract.json', '--json');
    expect(r.code).toBe(1);
    expect(jsonError(r.stderr)).toEqual({ code: 'memory_limit', message: "Its memory maximum is 2 pages; its contract's limits.memoryPages is 1." });
    await file('big/unbounded.wasm', await parse(pingWat({ memory: '(memory (export "memory") 1)' })));
    const none = await cli('embed-contract', 'big/unbounded.wasm', 'contract.json');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^error\[memory_limit\]: The module memory declares no maximum/);
    expect(await listing('big')).toEqual(['ping.wasm', 'unbounded.wasm']);
  }, 120_000);

  it('a contract op without a handler (the probe answers unknown_op): build_failed naming it', async () => {
    await file('two.json', { ...CONTRACT, ops: { ping: {}, pong: {}, pang: {} } });
    const r = await cli('embed-contract', 'ping.wasm', 'two.json', '--out', 'two.wasm');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'error[build_failed]: The module has no handler for the contract ops "pong", "pang" (its probe answered unknown_op): ' +
        'add them to the module, or remove them from the contract.\n',
    );
    expect(existsSync(path.join(dir, 'two.wasm'))).toBe(false);
  }, 120_000);

  it('what the runtime refuses, with its code: an import beyond docs/ABI.md §3, a capability the contract lacks, bytes that are not Wasm', async () => {
    const wat = pingWat().replace('(module', '(module (import "env" "steal" (func)) ');
    await file('imp/env.wasm', await parse(wat));
    const env1 = await cli('embed-contract', 'imp/env.wasm', 'contract.json');
    expect(env1.code).toBe(1);
    expect(env1.stderr).toMatch(/^error\[invalid_module\]: The module imports "env"\."steal"/);
    const random = pingWat().replace('(module', '(module (import "enclave" "random" (func (param i32 i32) (result i32))) ');
    await file('imp/random.wasm', await parse(random));
    const denied = await cli('embed-contract', 'imp/random.wasm', 'contract.json');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^error\[capability_denied\]: .*"random"/);
    await file('imp/text.wasm', 'not a module');
    const text = await cli('embed-contract', 'imp/text.wasm', 'contract.json');
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/^error\[invalid_module\]: The file is not a WebAssembly module or component/);
    expect(await listing('imp')).toEqual(['env.wasm', 'random.wasm', 'text.wasm']);
  }, 120_000);

  it('a signed module: a usage error (exit 2): sign after embedding', async () => {
    await file('signed/ping.wasm', append(ping, SIGNATURE_SECTION, Uint8Array.of(1, 2, 3)));
    const r = await cli('embed-contract', 'signed/ping.wasm', 'contract.json');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[usage\]: The module is signed: .*then sign the result \(enclave sign\)/);
    expect(await listing('signed')).toEqual(['ping.wasm']);
  }, 120_000);

  it('usage: missing arguments, an unreadable module (exit 1 invalid_module naming why)', async () => {
    const none = await cli('embed-contract', 'ping.wasm');
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^error\[usage\]: missing required argument 'contract'/);
    const missing = await cli('embed-contract', 'nope.wasm', 'contract.json');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error\[invalid_module\]: Cannot read the module file: ENOENT/);
  }, 120_000);
});

describe('enclave embed-contract: the output is written whole or not at all', () => {
  it('replaces an existing --out (also the input itself) by rename, leaving no temporary file', async () => {
    await file('atomic/ping.wasm', ping);
    await file('atomic/old.wasm', 'old bytes');
    const r = await cli('embed-contract', 'atomic/ping.wasm', 'contract.json', '--out', 'atomic/old.wasm');
    expect(r.code, r.stderr).toBe(0);
    expect(customSections(await readFile(path.join(dir, 'atomic', 'old.wasm')), CONTRACT_SECTION)).toHaveLength(1);
    const inPlace = await cli('embed-contract', 'atomic/ping.wasm', 'contract.json', '--out', 'atomic/ping.wasm');
    expect(inPlace.code, inPlace.stderr).toBe(0);
    expect(customSections(await readFile(path.join(dir, 'atomic', 'ping.wasm')), CONTRACT_SECTION)).toHaveLength(1);
    expect(await listing('atomic')).toEqual(['old.wasm', 'ping.wasm']);
    // Done once: a second embedding into the result is refused, and the file is left as it was.
    const before = await readFile(path.join(dir, 'atomic', 'ping.wasm'));
    const again = await cli('embed-contract', 'atomic/ping.wasm', 'contract.json', '--out', 'atomic/ping.wasm');
    expect(again.code).toBe(1);
    expect(await readFile(path.join(dir, 'atomic', 'ping.wasm'))).toEqual(before);
  }, 120_000);

  it('an --out that cannot be written: usage (exit 2) naming it, and no temporary file left; a refused module leaves --out untouched', async () => {
    await file('blocked', 'a file, not a folder');
    const r = await cli('embed-contract', 'ping.wasm', 'contract.json', '--out', 'blocked/sub/x.wasm');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[usage\]: Cannot write .*blocked\/sub\/x\.wasm: ENOTDIR: choose an --out file this user can write\./);
    await mkdir(path.join(dir, 'adir', 'x.wasm'), { recursive: true });
    const isDir = await cli('embed-contract', 'ping.wasm', 'contract.json', '--out', 'adir/x.wasm');
    expect(isDir.code).toBe(2);
    expect(await listing('adir')).toEqual(['x.wasm']);
    await file('keep/out.wasm', 'previous');
    await file('keep/big.wasm', await parse(pingWat({ memory: '(memory (export "memory") 1 2)' })));
    const refused = await cli('embed-contract', 'keep/big.wasm', 'contract.json', '--out', 'keep/out.wasm');
    expect(refused.code).toBe(1);
    expect(await readFile(path.join(dir, 'keep', 'out.wasm'), 'utf8')).toBe('previous');
    expect(await listing('keep')).toEqual(['big.wasm', 'out.wasm']);
  }, 120_000);
});

describe('enclave embed-contract: a component (wit-component output, no contract)', () => {
  // test/fixtures/components/echo.wat implements the world by hand; its contract has an op
  // "missing" that the module does not handle (unknown-op), dropped here except where it is the point.
  const contract = () => {
    const c = fixtureContract('echo');
    delete c.ops.missing;
    return c;
  };

  beforeAll(async () => {
    await file('comp/echo.wasm', await componentOf(fixtureWat('echo')));
    await file('comp/contract.json', contract());
  }, 120_000);

  it('embeds the contract at the top level, the result runs, and the probe went through the runtime', async () => {
    const bare = await componentOf(fixtureWat('echo'));
    const r = await cli('embed-contract', 'comp/echo.wasm', 'comp/contract.json', '--json');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ output: path.join(dir, 'comp', 'echo.enclave.wasm'), kind: 'component', name: 'wat-echo' });
    // The fixture answers the handler probe (nil for an op it handles, unknown-op otherwise).
    expect(report.handlers).toEqual({ checked: true });
    const out = await readFile(path.join(dir, 'comp', 'echo.enclave.wasm'));
    expect(out.subarray(0, bare.length)).toEqual(Buffer.from(bare));
    expect(out).toEqual(Buffer.from(withContract(bare, contract())));
    const run = await cli('run', 'comp/echo.enclave.wasm', 'echo', '{"hello":"component"}', '--grant', 'random', 'log');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ hello: 'component' });
    const inspect = JSON.parse((await cli('inspect', 'comp/echo.enclave.wasm', '--json')).stdout);
    expect(inspect).toMatchObject({ kind: 'component', measurement: report.measurement });
  }, 120_000);

  it('an op the component does not handle (its probe answers unknown-op): build_failed naming it; nothing written', async () => {
    // The fixture's own contract lists "missing", which echo.wat has no handler for.
    await file('comp/full.json', fixtureContract('echo'));
    const r = await cli('embed-contract', 'comp/echo.wasm', 'comp/full.json', '--out', 'comp/full.wasm');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[build_failed\]: The component has no handler for the contract op "missing" \(its probe answered unknown_op\)/);
    expect(existsSync(path.join(dir, 'comp', 'full.wasm'))).toBe(false);
  }, 120_000);

  it('a probe that never returns is stopped by the runtime\'s fuel: embedded, the check not made, and why', async () => {
    const wat = minimalComponentWat().replace('(i32.store8 (i32.const 0x100) (i32.const 0))', '(loop $spin (br $spin)) $&');
    await file('comp/spin.wasm', await componentOf(wat));
    await file('comp/spin.json', MINIMAL_COMPONENT_CONTRACT);
    const r = await cli('embed-contract', 'comp/spin.wasm', 'comp/spin.json', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).handlers).toEqual({
      checked: false,
      why: 'the component does not answer the handler probe: probing "ping", the runtime refused or stopped the call (fuel_exhausted): The call used more than its 100000 units of fuel.',
    });
  }, 120_000);

  it('a component answering the probe for every op: checked; an op it does not handle: build_failed naming it', async () => {
    // The minimal component answers ok(nil) to everything but the op "nope" (err unknown-op).
    const wat = minimalComponentWat().replace(
      '(i32.store8 (i32.const 0x100) (i32.const 0))',
      // The request's op is at byte 4 (fixstr) .. after the map header and the key "op"; "nope" is 0x65706f6e LE.
      `(if (i32.eq (i32.load (i32.add (local.get 0) (select (i32.const 7) (i32.const 4) (i32.eq (i32.load8_u (local.get 0)) (i32.const 0xde))))) (i32.const 0x65706f6e))
        (then (i32.store8 (i32.const 0x100) (i32.const 1)) (i32.store8 (i32.const 0x104) (i32.const 1))
              (i32.store (i32.const 0x108) (i32.const 0x200)) (i32.store (i32.const 0x10c) (i32.const 0)) (return (i32.const 0x100))))
      (i32.store8 (i32.const 0x100) (i32.const 0))`,
    );
    await file('comp/min.wasm', await componentOf(wat));
    await file('comp/min.json', { ...MINIMAL_COMPONENT_CONTRACT, ops: { pong: { requires: ['ping'] }, ping: {} } });
    const ok = await cli('embed-contract', 'comp/min.wasm', 'comp/min.json', '--json');
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).handlers).toEqual({ checked: true });
    await file('comp/nope.json', { ...MINIMAL_COMPONENT_CONTRACT, ops: { ping: {}, nope: {} } });
    const missing = await cli('embed-contract', 'comp/min.wasm', 'comp/nope.json', '--out', 'comp/nope.wasm');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error\[build_failed\]: The component has no handler for the contract op "nope" \(its probe answered unknown_op\)/);
    expect(existsSync(path.join(dir, 'comp', 'nope.wasm'))).toBe(false);
  }, 120_000);

  it('refusals: a contract already there, an import beyond the world, memory above the contract, a capability not declared', async () => {
    await file('comp/has.wasm', withContract(await componentOf(fixtureWat('echo')), contract()));
    const has = await cli('embed-contract', 'comp/has.wasm', 'comp/contract.json', '--out', 'comp/x.wasm');
    expect(has.code).toBe(1);
    expect(has.stderr).toMatch(/^error\[invalid_contract\]: The component already carries an enclave\.contract section/);
    const beyond = await beyondWorldComponent();
    // beyondWorldComponent carries a contract: the same component bytes without it.
    await file('comp/beyond.wasm', beyond.subarray(0, beyond.length - withContract(new Uint8Array(0), MINIMAL_COMPONENT_CONTRACT).length));
    await file('comp/min-contract.json', MINIMAL_COMPONENT_CONTRACT);
    const world = await cli('embed-contract', 'comp/beyond.wasm', 'comp/min-contract.json', '--out', 'comp/x.wasm');
    expect(world.code).toBe(1);
    expect(world.stderr).toMatch(/^error\[invalid_module\]: The component imports "wasi:random\/random@0\.2\.0" \(instance\), beyond the enclave world/);
    await file('comp/small.json', { ...contract(), limits: { ...contract().limits, memoryPages: 2, requestBytes: 1024, replyBytes: 1024 } });
    const memory = await cli('embed-contract', 'comp/echo.wasm', 'comp/small.json', '--out', 'comp/x.wasm');
    expect(memory.code).toBe(1);
    expect(memory.stderr).toBe("error[memory_limit]: Its memory maximum is 3 pages; its contract's limits.memoryPages is 2.\n");
    await file('comp/nocaps.json', { ...contract(), capabilities: ['random'] });
    const caps = await cli('embed-contract', 'comp/echo.wasm', 'comp/nocaps.json', '--out', 'comp/x.wasm');
    expect(caps.code).toBe(1);
    expect(caps.stderr).toMatch(/^error\[capability_denied\]: .*"log"/);
    expect(existsSync(path.join(dir, 'comp', 'x.wasm'))).toBe(false);
  }, 120_000);
});

describe('embedContract (host/build/embed.ts)', () => {
  it('a probe that never ends (an unmetered loop) stops at the deadline: embedded, the check not made', async () => {
    const spin = pingWat().replace('(local $n i32) (local $at i32)', '$& (loop $spin (br $spin))');
    const contract = await readContractFile(path.join(dir, 'contract.json'));
    const embedded = await embedContract(await parse(spin), contract, 1_000);
    // Probing "ping" (or, on a loaded machine, still starting: the deadline is short here).
    expect(embedded.handlers).toEqual({
      checked: false,
      why: expect.stringMatching(/^the probe failed (probing "ping"|when it started \(its top-level code, without the runtime\)): it did not finish in time \(1 s\): a loop that never ends\?/),
    });
    expect(LOAD_CHECK_DEADLINE_MS).toBeGreaterThan(1_000);
  }, 120_000);
});
