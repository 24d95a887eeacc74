/**
 * A component's identity is a module's (docs/DESIGN decision 2): measurement = SHA-256 of its bytes
 * without the top-level `signature` section, signatures are top-level `signature` sections, the
 * contract is the one top-level `enclave.contract`. attest's API and the CLI's `sign` and
 * `verify-module` work on a component unchanged.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { componentEmbed, componentNew, parse } from '@bytecodealliance/jco-transpile/wasm-tools';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttestationError,
  checkTrust,
  generateKeyPair,
  listSections,
  measure,
  moduleIdentity,
  readContract,
  readSignatures,
  signModule,
  verifyModule,
} from '../attest/index.js';
import { COMPONENT_HEADER, CONTRACT_SECTION, SIGNATURE_SECTION, encodeCustomSection, encodeU32Leb, isComponent, readComponentInfo } from '../core/index.js';
import { checkWorld } from '../runtime/_component-world.js';
import { moduleContract } from '../runtime/contract.js';
import { concat, contractJson } from './attest-fixtures.js';
import { randomEchoWat } from './helpers/component-fixtures.js';

const WIT = new URL('../wit/enclave.wit', import.meta.url);
const CORE_HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
/** A component holding one core module made of `sections` (a custom section inside it, say). */
function componentWithCore(...sections: Uint8Array[]): Uint8Array {
  const core = concat(CORE_HEADER, ...sections);
  return concat(COMPONENT_HEADER, Uint8Array.of(0x01), Uint8Array.from(encodeU32Leb(core.length)), core);
}

const alice = generateKeyPair();
const bob = generateKeyPair();
let bare: Uint8Array; // wit-component's output, no contract
let unsigned: Uint8Array; // with its contract (name "echo", svn 3)

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof AttestationError ? err.code : `other: ${(err as Error).message}`;
  }
}

beforeAll(async () => {
  const embedded = await componentEmbed({ binary: await parse(randomEchoWat()), witSource: await readFile(WIT, 'utf8'), world: 'enclave', stringEncoding: 'utf8' });
  bare = await componentNew(embedded);
  unsigned = concat(bare, encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 3, capabilities: ['random'] })));
});

describe('measurement of a component', () => {
  it('is SHA-256 of its bytes, and signing leaves it unchanged', () => {
    expect(isComponent(unsigned)).toBe(true);
    const m = bytesToHex(measure(unsigned));
    expect(m).toBe(bytesToHex(sha256(unsigned)));
    const once = signModule(unsigned, alice);
    const twice = signModule(once, bob);
    expect(isComponent(once) && isComponent(twice)).toBe(true);
    expect(bytesToHex(measure(once))).toBe(m);
    expect(bytesToHex(measure(twice))).toBe(m);
  });

  it('covers every byte: a core module inside, the contract, a custom section', () => {
    const m = bytesToHex(measure(unsigned));
    const info = readComponentInfo(unsigned);
    const inside = info.coreModules[0]!.byteOffset - unsigned.byteOffset + 40;
    const changed = new Uint8Array(unsigned);
    changed[inside]! ^= 1;
    expect(bytesToHex(measure(changed))).not.toBe(m);
    const other = concat(bare, encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 4, capabilities: ['random'] })));
    expect(bytesToHex(measure(other))).not.toBe(m);
    expect(bytesToHex(measure(concat(unsigned, encodeCustomSection('note', Uint8Array.of(1)))))).not.toBe(m);
  });

  it("a core module's own `signature` section is content: measured, and not a signature", () => {
    const c = concat(componentWithCore(encodeCustomSection(SIGNATURE_SECTION, Uint8Array.of(1, 2, 3))), encodeCustomSection(CONTRACT_SECTION, contractJson()));
    expect(bytesToHex(measure(c))).toBe(bytesToHex(sha256(c)));
    expect(readSignatures(c)).toEqual([]);
  });

  it('the top-level signature rules are the core ones: misplaced or duplicated is malformed_signature', () => {
    const signed = signModule(unsigned, alice);
    const sig = listSections(signed)[0]!;
    expect(sig.name).toBe(SIGNATURE_SECTION);
    const sigBytes = signed.subarray(sig.start, sig.end);
    const moved = concat(unsigned, sigBytes); // the signature section last
    expect(code(() => measure(moved))).toBe('malformed_signature');
    expect(code(() => measure(concat(signed.subarray(0, sig.end), sigBytes, signed.subarray(sig.end))))).toBe('malformed_signature');
    expect(code(() => measure(unsigned.subarray(0, unsigned.length - 1)))).toBe('invalid_module');
  });
});

describe('signing and verifying a component', () => {
  it('signModule then verifyModule: each signer found, the gate and the world still read it', () => {
    const signed = signModule(signModule(unsigned, alice), bob);
    expect(verifyModule(signed, [alice.publicKey, bob.publicKey]).map((s) => s.signer).sort()).toEqual(
      [moduleIdentity(signed, [alice.publicKey]).signers[0], moduleIdentity(signed, [bob.publicKey]).signers[0]].sort(),
    );
    const info = readComponentInfo(signed);
    expect(info.customSections[0]!.name).toBe(SIGNATURE_SECTION);
    expect(() => checkWorld(info, moduleContract(signed))).not.toThrow();
  });

  it('a changed byte anywhere after the signature invalidates it', () => {
    const signed = signModule(unsigned, alice);
    const info = readComponentInfo(signed);
    const at = info.coreModules[0]!.byteOffset - signed.byteOffset + 50;
    const tampered = new Uint8Array(signed);
    tampered[at]! ^= 0x01;
    expect(verifyModule(signed, [alice.publicKey])).toHaveLength(1);
    expect(verifyModule(tampered, [alice.publicKey])).toHaveLength(0);
  });

  it('moduleIdentity and checkTrust: the contract read from the top level', () => {
    const signed = signModule(unsigned, alice);
    const id = moduleIdentity(signed, [alice.publicKey]);
    expect([id.name, id.version, id.svn]).toEqual(['echo', '1.0.0', 3]);
    expect(id.measurement).toBe(bytesToHex(sha256(unsigned)));
    expect(readContract(signed).svn).toBe(3);
    expect(moduleContract(signed).svn).toBe(3);
    expect(checkTrust(signed, { trusted: [{ publicKey: alice.publicKey, minSvn: 3 }] }).signer).toBe(id.signers[0]);
    expect(code(() => checkTrust(signed, { trusted: [{ publicKey: alice.publicKey, minSvn: 4 }] }))).toBe('rollback');
    expect(code(() => checkTrust(signed, { trusted: [{ publicKey: bob.publicKey, minSvn: 0 }] }))).not.toBe('ok');
  });

  it('readContract: none or two at the top level is invalid_contract; one inside a core module is never read', () => {
    expect(code(() => readContract(bare))).toBe('invalid_contract');
    const one = encodeCustomSection(CONTRACT_SECTION, contractJson());
    expect(code(() => readContract(concat(bare, one, one)))).toBe('invalid_contract');
    const withInner = componentWithCore(encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 9 })));
    expect(readComponentInfo(withInner).customSections).toEqual([]);
    expect(code(() => readContract(withInner))).toBe('invalid_contract');
    expect(readContract(concat(withInner, encodeCustomSection(CONTRACT_SECTION, contractJson({ svn: 2 })))).svn).toBe(2);
  });
});

describe('the CLI on a component', () => {
  const run = promisify(execFile);
  const CLI = path.resolve('dist/host/cli/main.js');
  let dir: string;
  async function enclave(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd: dir });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'enclave-component-identity-'));
    await writeFile(path.join(dir, 'echo.component.wasm'), unsigned);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('enclave sign then verify-module: same measurement, the signer seen, the svn checked', async () => {
    expect((await enclave('keygen', '--out', 'dev.key.json')).code).toBe(0);
    const signed = await enclave('sign', 'echo.component.wasm', '--key', 'dev.key.json', '--json');
    expect(signed.code, signed.stderr).toBe(0);
    const bytes = new Uint8Array(await readFile(path.join(dir, 'echo.component.wasm')));
    expect(isComponent(bytes)).toBe(true);
    expect(bytesToHex(measure(bytes))).toBe(bytesToHex(sha256(unsigned)));
    const ok = await enclave('verify-module', 'echo.component.wasm', '--key', 'dev.pub.json', '--min-svn', '3', '--json');
    expect(ok.code, ok.stderr).toBe(0);
    const identity = JSON.parse(ok.stdout);
    expect(identity.measurement).toBe(bytesToHex(sha256(unsigned)));
    expect(identity.signers).toEqual([JSON.parse(signed.stdout).signer]);
    const rollback = await enclave('verify-module', 'echo.component.wasm', '--key', 'dev.pub.json', '--min-svn', '4');
    expect(rollback.code).toBe(1);
    expect(rollback.stderr).toMatch(/rollback/);
  });
});
