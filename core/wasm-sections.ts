/**
 * Reading and writing the section layout of a WebAssembly binary (core spec §5.5).
 *
 * Only the framing is parsed: section id, size and (for custom sections) name. That is all
 * measurement, signing and contract embedding need, and it keeps this parser small enough to
 * trust on hostile input: every length is checked against the bytes that remain.
 *
 * The section names live here too, below runtime and attest: they are part of the module format
 * (docs/ABI.md §6 for the contract, tool-conventions Signatures.md for signatures), the runtime reads
 * the contract section to enforce it, attest measures, signs and identifies by all three, and the
 * build and benchmarks write the contract; none of them owns the format.
 */
import { WasmFormatError } from './errors.js';

/** The custom section holding the enclave contract (docs/ABI.md §6). */
export const CONTRACT_SECTION = 'enclave.contract';
/**
 * Largest {@link CONTRACT_SECTION} payload, bytes (1 MiB): far above any real contract (a few KiB)
 * and small enough that parsing hostile JSON stays cheap. One bound for both readers, the runtime's
 * (`parseContractBytes`) and attest's (`readContract`): each refuses a larger one as `invalid_contract`.
 */
export const MAX_CONTRACT_BYTES = 1 << 20;
/** The custom section of WebAssembly tool-conventions Signatures.md. */
export const SIGNATURE_SECTION = 'signature';
/** The custom section that ends a separately verifiable part (tool-conventions Signatures.md). */
export const SIGNATURE_DELIMITER_SECTION = 'signature_delimiter';

const MAGIC_AND_VERSION = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00);
/**
 * A component's first 8 bytes (component model Binary.md: version 0x0d, layer 1). Its top-level
 * framing is the core one, so measurement, signatures and the contract section read it unchanged;
 * what a component holds is read by core/component-binary.ts, never by the core-module readers.
 */
const COMPONENT_MAGIC_AND_VERSION = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00);

/** One section of a module, located by byte offsets into the module. */
export interface WasmSection {
  /** Section id: 0 for custom sections, 1..13 for known ones. */
  readonly id: number;
  /** Name of a custom section, `undefined` for the others. */
  readonly name: string | undefined;
  /** Offset of the section's id byte. */
  readonly start: number;
  /** Offset one past the section's last byte. */
  readonly end: number;
  /** Offset of the payload: after the size, and after the name for custom sections. */
  readonly payloadStart: number;
}

/**
 * Reads an unsigned LEB128 u32 at `pos` (core spec §5.2.2).
 * @throws {WasmFormatError} if it is truncated, longer than 5 bytes or overflows a u32.
 * @example
 * const [size, next] = readU32Leb(bytes, 9);
 */
export function readU32Leb(bytes: Uint8Array, pos: number): [value: number, next: number] {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    if (pos >= bytes.length) throw new WasmFormatError('truncated LEB128 integer');
    const byte = bytes[pos++]!;
    if (i === 4 && byte > 0x0f) throw new WasmFormatError('LEB128 integer overflows u32');
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7;
  }
  throw new WasmFormatError('LEB128 integer longer than 5 bytes');
}

/**
 * Encodes a u32 as minimal unsigned LEB128.
 * @throws {RangeError} if `value` is not a u32.
 * @example
 * encodeU32Leb(624485); // [0xe5, 0x8e, 0x26]
 */
export function encodeU32Leb(value: number): number[] {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`expected a u32, got ${value}`);
  }
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/**
 * Decodes a name (core spec §5.2.4) as the engine does: fatal on malformed UTF-8, and a leading
 * U+FEFF kept. TextDecoder strips a BOM by default and V8 does not, so without `ignoreBOM` a
 * section named "\uFEFFsignature" would be left out of the measurement while the engine (and any
 * other tool) sees a section that is not the signature.
 * @example
 * WASM_NAME_DECODER.decode(Uint8Array.of(0xef, 0xbb, 0xbf, 0x61)); // '\uFEFFa', as V8 reads it
 */
export const WASM_NAME_DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Lists the sections of a module in order, or the top-level sections of a component (the framing
 * is the same; a component's nested modules are payloads of its sections, not listed).
 * @throws {WasmFormatError} if the header is wrong or a section overruns the bytes.
 * @example
 * const names = listSections(bytes).filter((s) => s.id === 0).map((s) => s.name);
 */
export function listSections(bytes: Uint8Array): WasmSection[] {
  if (bytes.length < 8 || (MAGIC_AND_VERSION.some((b, i) => bytes[i] !== b) && COMPONENT_MAGIC_AND_VERSION.some((b, i) => bytes[i] !== b))) {
    throw new WasmFormatError('not a WebAssembly 1.0 module or component (bad magic or version)');
  }
  const sections: WasmSection[] = [];
  let pos = 8;
  while (pos < bytes.length) {
    const start = pos;
    const id = bytes[pos++]!;
    const [size, afterSize] = readU32Leb(bytes, pos);
    const end = afterSize + size;
    if (end > bytes.length) throw new WasmFormatError(`section at offset ${start} runs past the end`);
    let name: string | undefined;
    let payloadStart = afterSize;
    if (id === 0) {
      const [nameLen, afterNameLen] = readU32Leb(bytes, afterSize);
      if (afterNameLen + nameLen > end) throw new WasmFormatError(`custom section name at offset ${start} overruns it`);
      try {
        name = WASM_NAME_DECODER.decode(bytes.subarray(afterNameLen, afterNameLen + nameLen));
      } catch {
        throw new WasmFormatError(`custom section name at offset ${start} is not UTF-8`);
      }
      payloadStart = afterNameLen + nameLen;
    }
    sections.push({ id, name, start, end, payloadStart });
    pos = end;
  }
  return sections;
}

/**
 * Encodes one custom section (id 0, size, name, payload), ready to append to a module.
 * @example
 * const signed = concat(module, encodeCustomSection('enclave.contract', json));
 */
export function encodeCustomSection(name: string, payload: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const nameLen = encodeU32Leb(nameBytes.length);
  const size = encodeU32Leb(nameLen.length + nameBytes.length + payload.length);
  const out = new Uint8Array(1 + size.length + nameLen.length + nameBytes.length + payload.length);
  let o = 0;
  out[o++] = 0;
  out.set(size, o);
  o += size.length;
  out.set(nameLen, o);
  o += nameLen.length;
  out.set(nameBytes, o);
  o += nameBytes.length;
  out.set(payload, o);
  return out;
}

/**
 * Returns the payloads of every custom section called `name`, in order (views into `bytes`).
 * @throws {WasmFormatError} if the bytes are not a well-framed module.
 * @example
 * const [contractJson] = customSections(bytes, CONTRACT_SECTION);
 */
export function customSections(bytes: Uint8Array, name: string): Uint8Array[] {
  return listSections(bytes)
    .filter((s) => s.id === 0 && s.name === name)
    .map((s) => bytes.subarray(s.payloadStart, s.end));
}
