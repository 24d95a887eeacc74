/** Test modules built from bytes, so attest tests depend on nobody's build output. */
import { encodeCustomSection } from '../core/index.js';

export const HEADER = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
/** A type section with one function type `() -> ()`. */
export const TYPE_SECTION = Uint8Array.of(0x01, 0x04, 0x01, 0x60, 0x00, 0x00);

export interface ContractFields {
  name?: string;
  version?: string;
  svn?: number;
  capabilities?: string[];
  [k: string]: unknown;
}

export function contractJson(fields: ContractFields = {}): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      abi: 1,
      name: 'echo',
      version: '1.0.0',
      svn: 1,
      capabilities: [],
      limits: { requestBytes: 1024, replyBytes: 1024 },
      ops: { echo: {} },
      ...fields,
    }),
  );
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A tiny valid module: header, a type section, the contract, then any extra sections. */
export function makeModule(fields: ContractFields = {}, ...extra: Uint8Array[]): Uint8Array {
  return concat(HEADER, TYPE_SECTION, encodeCustomSection('enclave.contract', contractJson(fields)), ...extra);
}
