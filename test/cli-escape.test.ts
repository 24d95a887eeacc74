/**
 * Text a module or an enclave controls never reaches the terminal raw (issue 9, finding 9): the
 * CLI escapes export names, contract fields, custom section names, error detail, log lines and
 * reply strings (host/cli/_escape.ts). A hostile module here puts ESC sequences, C1 controls and
 * U+202E (right-to-left override) into each of them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { escapeJson, escapeText } from '../host/cli/_escape.js';
import { CONTRACT_SECTION, encodeCustomSection } from '../core/index.js';
import { enclaveCli } from './helpers/cli.js';
import { watModule } from './helpers/wat.js';

const run = promisify(execFile);
const CLI = 'dist/host/cli/main.js';

async function enclave(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ENCLAVE_CACHE_DIR: 'off' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Every character a terminal would act on or reorder by: C0 but newline, DEL, C1, bidi and other format characters. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\u{e0001}]/u;

// "A ESC[2K B U+202E C": ESC erases the line, U+202E reverses what follows.
const HOSTILE = 'A\u001b[2KB\u202eC';
const utf8 = (s: string) => Buffer.from(s, 'utf8');
/** A WAT string literal of arbitrary UTF-8 bytes. */
const watBytes = (b: Uint8Array) => [...b].map((x) => `\\${x.toString(16).padStart(2, '0')}`).join('');

/** msgpack of {err: {code: "denied", message: HOSTILE}} and of {ok: "A U+0085 B U+202E C ESC"}. */
function str(s: string): Buffer {
  const b = utf8(s);
  if (b.length > 31) throw new Error('fixstr only');
  return Buffer.concat([Buffer.from([0xa0 | b.length]), b]);
}
const ERR_REPLY = Buffer.concat([Buffer.from([0x81]), str('err'), Buffer.from([0x82]), str('code'), str('denied'), str('message'), str(HOSTILE)]);
const OK_REPLY = Buffer.concat([Buffer.from([0x81]), str('ok'), str('A\u0085B\u202eC\u001b')]);
const LOG_LINE = utf8(`log ${HOSTILE}\u009b31m`);
const le32 = (n: number) => watBytes(Uint8Array.of(n & 0xff, (n >> 8) & 0xff, 0, 0));

async function hostileModule(): Promise<Uint8Array> {
  const wat = `(module
    (import "enclave" "log" (func $log (param i32 i32 i32)))
    (memory (export "memory") 1 1)
    (data (i32.const 0x100) "\\00\\02\\00\\00${le32(ERR_REPLY.length)}")
    (data (i32.const 0x108) "\\00\\03\\00\\00${le32(OK_REPLY.length)}")
    (data (i32.const 0x200) "${watBytes(ERR_REPLY)}")
    (data (i32.const 0x300) "${watBytes(OK_REPLY)}")
    (data (i32.const 0x400) "${watBytes(LOG_LINE)}")
    (func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
      (call $log (i32.const 1) (i32.const 0x400) (i32.const ${LOG_LINE.length}))
      ;; {op: "fail"}: op name starts at byte 5
      (if (result i32) (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x66))
        (then (i32.const 0x100)) (else (i32.const 0x108))))
    (func (export "${watBytes(utf8(`x${HOSTILE}`))}") (result i32) (i32.const 0))
  )`;
  const contract = {
    abi: 1,
    name: 'hostile',
    version: `1.0\u001b[2K\u001b[1Asigner 3f1c\u202e7 nvs`,
    svn: 0,
    capabilities: ['log'],
    limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1 },
    ops: { fail: {}, ok: {} },
  };
  const bytes = await watModule(wat, contract);
  const extra = encodeCustomSection(`note${HOSTILE}`, new Uint8Array(1));
  expect(CONTRACT_SECTION).toBe('enclave.contract');
  return new Uint8Array(Buffer.concat([bytes, extra]));
}

async function hostileFile(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'enclave-cli-escape-'));
  const file = path.join(dir, 'hostile.wasm');
  await writeFile(file, await hostileModule());
  return file;
}

describe('cli escaping: module and enclave text is escaped before it reaches a terminal', () => {
  it('escapeText makes every control, bidi override and backslash visible', () => {
    expect(escapeText(HOSTILE)).toBe('A\\x1b[2KB\\u202eC');
    expect(escapeText('a\nb\tc\u007f\u0085\u2066\u2028\ufeff\u{e0001}\\x1b')).toBe('a\\x0ab\\x09c\\x7f\\x85\\u2066\\u2028\\ufeff\\u{e0001}\\\\x1b');
    expect(escapeText('plain café ✓ 漢字 🙂')).toBe('plain café ✓ 漢字 🙂');
    expect(escapeText('\ud800')).toBe('\\ud800');
  });

  it('escapeJson leaves the JSON meaning unchanged', () => {
    const value = { [HOSTILE]: [HOSTILE, 'a\u0085\u202e\u2028\u007f\ufeffb', 'é🙂'] };
    const text = escapeJson(JSON.stringify(value, null, 2));
    expect(text).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(text)).toEqual(value);
  });

  it("the runtime's own messages quote module text with every control and bidi character escaped", async () => {
    const { quoteInput } = await import('../core/index.js');
    const quoted = quoteInput(`op${HOSTILE}\u0085\u2066\u2028\u007f\u{e0001}`);
    expect(quoted).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(quoted)).toBe(`op${HOSTILE}\u0085\u2066\u2028\u007f\u{e0001}`);
  });

  it('inspect escapes export names, contract fields and section names (human and --json)', async () => {
    const file = await hostileFile();
    const human = await enclave('inspect', file);
    expect(human.code).toBe(0);
    expect(human.stdout).not.toMatch(RAW_CONTROL);
    expect(human.stdout).toContain('xA\\x1b[2KB\\u202eC'); // the export
    expect(human.stdout).toContain('1.0\\x1b[2K\\x1b[1Asigner 3f1c\\u202e7 nvs'); // the version
    expect(human.stdout).toContain('(unsigned)');
    const json = await enclave('inspect', file, '--json');
    expect(json.code).toBe(0);
    expect(json.stdout).not.toMatch(RAW_CONTROL);
    const report = JSON.parse(json.stdout);
    expect(report.exports.map((e: { name: string }) => e.name)).toContain(`x${HOSTILE}`);
    expect(report.version).toBe('1.0\u001b[2K\u001b[1Asigner 3f1c\u202e7 nvs');
    expect(report.customSections).toContain(`note${HOSTILE}`);
  });

  it('run escapes the error detail, the log lines and the reply (human and --json)', async () => {
    const file = await hostileFile();
    const fail = await enclave('run', file, 'fail', '--grant', 'log');
    expect(fail.code).toBe(1);
    expect(fail.stderr).toMatch(/^\[enclave \w+\] /m);
    expect(fail.stderr).toContain('error[denied]');
    expect(fail.stderr).toContain('A\\x1b[2KB\\u202eC');
    expect(fail.stderr).not.toMatch(RAW_CONTROL);
    const failJson = await enclave('run', file, 'fail', '--grant', 'log', '--json');
    expect(failJson.stderr).not.toMatch(RAW_CONTROL);
    const last = failJson.stderr.trim().split('\n').at(-1)!;
    expect(JSON.parse(last).error.detail).toBe(HOSTILE);
    const ok = await enclave('run', file, 'ok', '--grant', 'log');
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toMatch(RAW_CONTROL);
    expect(ok.stderr).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(ok.stdout)).toBe('A\u0085B\u202eC\u001b');
  });

  it('run --ndjson escapes each reply and error line (and --stats), keeping their meaning', async () => {
    const file = await hostileFile();
    const r = await enclaveCli(['run', file, '--ndjson', '--grant', 'log', '--stats'], {
      stdin: '{"op":"ok","id":1}\n{"op":"fail","id":2}\n',
      env: { ...process.env, ENCLAVE_CACHE_DIR: 'off' },
    });
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stderr).not.toMatch(RAW_CONTROL);
    const [ok, fail] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(ok).toMatchObject({ id: 1, ok: 'A\u0085B\u202eC\u001b' });
    expect(fail).toMatchObject({ id: 2, error: { code: 'denied', detail: HOSTILE } });
  });
});
