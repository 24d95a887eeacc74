/** Byte helpers kept private to `attest/` (the `_` prefix: not part of the public API). */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

export { bytesToHex };

const HEX_RE = /^(?:[0-9a-f]{2})*$/i;
const B64URL_RE = /^[A-Za-z0-9_-]*$/;

/** Asserts a Uint8Array, optionally of an exact length or a length range. */
export function abytes(value: unknown, title: string, min?: number, max = min): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${title}: expected a Uint8Array`);
  if (min !== undefined && (value.length < min || value.length > max!)) {
    const want = min === max ? `${min}` : `${min}..${max}`;
    throw new RangeError(`${title}: expected ${want} bytes, got ${value.length}`);
  }
  return value;
}

/** Hex string to bytes, or undefined if it is not even-length hex. */
export function hexToBytesOrUndefined(hex: string): Uint8Array | undefined {
  if (typeof hex !== 'string' || !HEX_RE.test(hex)) return undefined;
  return hexToBytes(hex.toLowerCase());
}

/** RFC 4648 §5 base64url without padding, as JOSE uses it. */
export function toBase64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Strict base64url (no padding, canonical) to bytes, or undefined. */
export function fromBase64url(text: unknown): Uint8Array | undefined {
  if (typeof text !== 'string' || !B64URL_RE.test(text) || text.length % 4 === 1) return undefined;
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  // Refuse non-canonical encodings (stray low bits), so one value has exactly one text form.
  return toBase64url(bytes) === text ? bytes : undefined;
}

/** Constant-time equality for equal-length inputs (noble-ciphers `equalBytes`); lengths are public. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Constant-time comparison of two strings of public length (hex digests, base64url nonces). */
export function equalStrings(a: string, b: string): boolean {
  const enc = new TextEncoder();
  return equalBytes(enc.encode(a), enc.encode(b));
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const utf8Encode = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A SHA-256 digest as 64 lowercase hex digits (measurements, signer ids). */
export const HEX64 = /^[0-9a-f]{64}$/;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}
