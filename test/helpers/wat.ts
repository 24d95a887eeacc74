/** Builds test modules from WAT (parsed by jco) with a contract section appended. */
import { readFileSync } from 'node:fs';
import { parse } from '@bytecodealliance/jco';
import { CONTRACT_SECTION, encodeCustomSection } from '../../core/index.js';

/** Parses WAT and appends `contract` (an object, or raw payload bytes) as the contract section. */
export async function watModule(wat: string, contract?: object | Uint8Array): Promise<Uint8Array> {
  const bytes = await parse(wat);
  if (contract === undefined) return bytes;
  const payload = contract instanceof Uint8Array ? contract : new TextEncoder().encode(JSON.stringify(contract));
  const section = encodeCustomSection(CONTRACT_SECTION, payload);
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}

/** A fixture from test/fixtures: `<name>.wat` with `<name>.contract.json`. */
export async function fixture(name: string): Promise<Uint8Array> {
  const dir = new URL('../fixtures/', import.meta.url);
  const wat = readFileSync(new URL(`${name}.wat`, dir), 'utf8');
  const contract = JSON.parse(readFileSync(new URL(`${name}.contract.json`, dir), 'utf8'));
  return watModule(wat, contract);
}

/** A minimal well-formed enclave in WAT, with pieces replaceable for hostile variants. */
export function minimalWat(parts: { imports?: string; memory?: string; exports?: string; body?: string } = {}): string {
  return `(module
    ${parts.imports ?? ''}
    ${parts.memory ?? '(memory (export "memory") 1 1)'}
    (data (i32.const 0x100) "\\00\\02\\00\\00\\05\\00\\00\\00")
    (data (i32.const 0x200) "\\81\\a2ok\\c3")
    ${
      parts.exports ??
      `(func (export "enclave_abi_version") (result i32) (i32.const 1))
    (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
    (func (export "enclave_call") (param i32 i32) (result i32) (i32.const 0x100))`
    }
    ${parts.body ?? ''}
  )`;
}

/** The contract matching {@link minimalWat}: one op `ping` replying `true`. */
export const MINIMAL_CONTRACT = {
  abi: 1,
  name: 'minimal',
  version: '0.0.1',
  svn: 0,
  capabilities: [] as string[],
  limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1 },
  ops: { ping: {} },
};

/**
 * A worker-mode enclave: request byte 5 is the op's first letter (see test/fixtures/hostile.wat); `s`
 * spins until the worker is terminated, any other op replies `{ok: "fine"}`. Used by
 * test/worker.test.ts and test/review-listeners.test.ts.
 */
export const SPIN_WAT = `(module
  (memory (export "memory") 1 1)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x73)) (then (loop $spin (br $spin))))
    (i32.const 0x100)))`;
/** The contract matching {@link SPIN_WAT}: ops `ok` and `spin`. */
export const SPIN_CONTRACT = {
  abi: 1,
  name: 'spin',
  version: '0.0.1',
  svn: 0,
  capabilities: [] as string[],
  limits: { requestBytes: 1024, replyBytes: 1024, depth: 8, memoryPages: 1 },
  ops: { ok: {}, spin: {} },
};
