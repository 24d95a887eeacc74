/**
 * `enclave inspect` on a hostile component (review of issue 14): the WIT text wasm-tools prints
 * carries documentation the component chose (a top-level `package-docs` custom section, which the
 * gate allows like any custom section), raw: escapes, C1 controls, bidi overrides, carriage
 * returns. inspect must print it escaped, in text and in --json.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { encodeCustomSection } from '../core/index.js';
import { componentWitBounded } from '../host/cli/_component-wit.js';
import { enclaveCli } from './helpers/cli.js';
import { componentFixture } from './helpers/component-fixtures.js';

let dir: string;
let docs: Uint8Array;
const env: NodeJS.ProcessEnv = { ...process.env };
const HOSTILE = '\u001b[2J\u001b]0;owned\u0007\r\u202e\u009b31m\u2028';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'enclave-review-inspect-'));
  env.ENCLAVE_CACHE_DIR = path.join(dir, '.cache');
  const echo = await componentFixture('echo');
  // wit-component's package metadata: a version byte, then JSON (docs of the package and its worlds).
  const json = JSON.stringify({ docs: `pkg${HOSTILE}\nsecond line`, worlds: { root: { docs: `world${HOSTILE}` } } });
  const section = encodeCustomSection('package-docs', new Uint8Array([0, ...new TextEncoder().encode(json)]));
  docs = new Uint8Array(echo.length + section.length);
  docs.set(echo);
  docs.set(section, echo.length);
  await writeFile(path.join(dir, 'docs.wasm'), docs);
}, 120_000);

describe('inspect: documentation a component puts in its WIT', () => {
  it('wasm-tools prints it raw (so inspect is what must escape it)', async () => {
    const printed = await componentWitBounded(docs);
    expect(printed.wit).toContain('/// pkg\u001b[2J\u001b]0;owned\u0007');
    expect(printed.wit).toContain('\u202e\u009b31m');
  });

  it('text and --json: no raw control, bidi or separator character reaches the terminal', async () => {
    const unsafe = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;
    const text = await enclaveCli(['inspect', 'docs.wasm'], { cwd: dir, env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).not.toMatch(unsafe);
    expect(text.stdout).toContain('/// pkg\\x1b[2J\\x1b]0;owned\\x07\\x0d\\u202e\\x9b31m');
    const json = await enclaveCli(['inspect', 'docs.wasm', '--json'], { cwd: dir, env });
    expect(json.code, json.stderr).toBe(0);
    expect(json.stdout).not.toMatch(unsafe);
    expect(JSON.parse(json.stdout).wit).toContain(`world${HOSTILE.slice(0, 5)}`);
  });
});
