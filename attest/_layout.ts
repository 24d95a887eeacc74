/**
 * How attestation sees a module: the WebAssembly header, an optional leading `signature` section
 * (tool-conventions Signatures.md: "If embedded in a module, the section must be the first section
 * of the module"), then the content, which is what the measurement and the signatures cover.
 */
import { createHash } from 'node:crypto';
import { AttestationError, SIGNATURE_SECTION, WasmFormatError, listSections, type WasmSection } from '../core/index.js';

export interface ModuleLayout {
  readonly bytes: Uint8Array;
  /** The leading `signature` section, if the module is signed. */
  readonly signature: WasmSection | undefined;
  /** The sections after the signature section (all sections of an unsigned module). */
  readonly content: readonly WasmSection[];
  /** Offset where the content starts: 8, or the end of the signature section. */
  readonly contentStart: number;
}

/**
 * Splits a module into header, signature section and content.
 * A `signature` section anywhere but first, or more than one, is refused: a second one would be
 * unmeasured space an attacker could fill, and no conforming signer writes one.
 */
export function parseLayout(bytes: Uint8Array): ModuleLayout {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('module: expected a Uint8Array');
  let sections: WasmSection[];
  try {
    sections = listSections(bytes);
  } catch (err) {
    if (err instanceof WasmFormatError) throw new AttestationError('invalid_module', undefined, { cause: err });
    throw err;
  }
  const sigIndexes = sections.flatMap((s, i) => (s.id === 0 && s.name === SIGNATURE_SECTION ? [i] : []));
  if (sigIndexes.length > 1 || (sigIndexes.length === 1 && sigIndexes[0] !== 0)) {
    throw new AttestationError('malformed_signature');
  }
  const signature = sigIndexes.length === 1 ? sections[0] : undefined;
  return {
    bytes,
    signature,
    content: signature ? sections.slice(1) : sections,
    contentStart: signature ? signature.end : 8,
  };
}

/**
 * SHA-256 over the header and the content: the module bytes with the signature section left out.
 * node:crypto (OpenSSL), not the pure-JS hash: every load measures the whole module, and a cold
 * process would hash it in the interpreter (~35 ms for 27 KB; a 2 MiB module takes far longer).
 */
export function measureLayout(layout: ModuleLayout): Uint8Array {
  // A copy: a Buffer may share its ArrayBuffer with others.
  return new Uint8Array(createHash('sha256').update(layout.bytes.subarray(0, 8)).update(layout.bytes.subarray(layout.contentStart)).digest());
}
