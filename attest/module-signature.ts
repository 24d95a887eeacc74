/**
 * Signed modules in the format of WebAssembly tool-conventions `Signatures.md`, byte-compatible with
 * wasmsign2 (which defines the details the prose leaves open; see docs/ATTESTATION.md §2).
 *
 * A signed module is `header ‖ signature section ‖ content`. The signature section is the first
 * section; its payload ("signature data") is:
 *
 *   spec_version (0x01) ‖ content_type (0x01, module) ‖ hash_fn (0x01, SHA-256)
 *   ‖ varuint32 count ‖ count × (varuint32 len ‖ signed_hashes)
 *   signed_hashes = varuint32 n ‖ n × 32-byte hash ‖ varuint32 m ‖ m × (varuint32 len ‖ signature)
 *   signature     = varuint32 key_id_len ‖ key_id ‖ alg (0x01 Ed25519) ‖ varuint32 sig_len ‖ sig
 *
 * The hashes are a rolling SHA-256 over the content's section bytes (not the 8-byte header): one
 * hash at each `signature_delimiter` section, and one at the end unless the content ends with a
 * delimiter. Each signature is Ed25519 over `"wasmsig" ‖ 0x01 ‖ 0x01 ‖ 0x01 ‖ hashes`. Because the
 * signature section is excluded from what is hashed, adding a signer never invalidates the others.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, equalBytes, utf8Encode } from './_bytes.js';
import { parseLayout, type ModuleLayout } from './_layout.js';
import { parsePrivateKey, parsePublicKey, type PublicKeyInput, type SigningKeyPair } from './keys.js';
import {
  AttestationError,
  SIGNATURE_DELIMITER_SECTION,
  SIGNATURE_SECTION,
  WasmFormatError,
  encodeCustomSection,
  encodeU32Leb,
  readU32Leb,
} from '../core/index.js';

const SPEC_VERSION = 0x01;
const CONTENT_TYPE_MODULE = 0x01;
const HASH_SHA256 = 0x01;
const ALG_ED25519 = 0x01;
const DOMAIN = utf8Encode('wasmsig');
// Bounds on hostile input, as wasmsign2 (sig_sections.rs: MAX_HASHES, MAX_SIGNATURES).
const MAX_HASH_SETS = 64;
const MAX_HASHES = 64;
const MAX_SIGNATURES = 256;

interface RawSignature {
  readonly keyId: Uint8Array;
  readonly alg: number;
  readonly signature: Uint8Array;
}

interface SignedHashes {
  readonly hashes: Uint8Array[];
  readonly signatures: RawSignature[];
}

/** @internal The decoded payload of a `signature` section. */
export interface SignatureData {
  readonly signedHashes: SignedHashes[];
}

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}
  u32(): number {
    const [v, next] = readU32Leb(this.bytes, this.pos);
    this.pos = next;
    return v;
  }
  take(n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) throw new WasmFormatError('truncated');
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  slice(): Reader {
    return new Reader(this.take(this.u32()));
  }
  end(): void {
    if (this.pos !== this.bytes.length) throw new WasmFormatError('trailing bytes');
  }
}

/** @internal Decodes signature data; throws `malformed_signature`. */
export function decodeSignatureData(payload: Uint8Array): SignatureData {
  try {
    const r = new Reader(payload);
    const version = r.u32();
    const contentType = r.u32();
    const hashFn = r.u32();
    if (version !== SPEC_VERSION || contentType !== CONTENT_TYPE_MODULE || hashFn !== HASH_SHA256) {
      throw new AttestationError('malformed_signature', 'the module signature uses an unsupported format version or hash; re-sign it');
    }
    const setCount = r.u32();
    if (setCount > MAX_HASH_SETS) throw new WasmFormatError('too many hash sets');
    const signedHashes: SignedHashes[] = [];
    for (let i = 0; i < setCount; i++) {
      const s = r.slice();
      const n = s.u32();
      if (n === 0 || n > MAX_HASHES) throw new WasmFormatError('bad hash count');
      const hashes: Uint8Array[] = [];
      for (let j = 0; j < n; j++) hashes.push(s.take(32));
      const m = s.u32();
      if (m > MAX_SIGNATURES) throw new WasmFormatError('too many signatures');
      const signatures: RawSignature[] = [];
      for (let j = 0; j < m; j++) {
        const sr = s.slice();
        const keyId = sr.take(sr.u32());
        const alg = sr.take(1)[0]!;
        const signature = sr.take(sr.u32());
        sr.end();
        signatures.push({ keyId, alg, signature });
      }
      s.end();
      signedHashes.push({ hashes, signatures });
    }
    r.end();
    return { signedHashes };
  } catch (err) {
    // A WasmFormatError (an invalid_module AttestationError) here is the signature payload's framing.
    if (err instanceof AttestationError && !(err instanceof WasmFormatError)) throw err;
    throw new AttestationError('malformed_signature', undefined, { cause: err });
  }
}

function encodeSlice(bytes: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.from(encodeU32Leb(bytes.length)), bytes);
}

function encodeSignatureData(data: SignatureData): Uint8Array {
  const sets = data.signedHashes.map((set) =>
    encodeSlice(
      concatBytes(
        Uint8Array.from(encodeU32Leb(set.hashes.length)),
        ...set.hashes,
        Uint8Array.from(encodeU32Leb(set.signatures.length)),
        ...set.signatures.map((s) =>
          encodeSlice(concatBytes(encodeSlice(s.keyId), Uint8Array.of(s.alg), encodeSlice(s.signature))),
        ),
      ),
    ),
  );
  return concatBytes(
    Uint8Array.of(SPEC_VERSION, CONTENT_TYPE_MODULE, HASH_SHA256),
    Uint8Array.from(encodeU32Leb(sets.length)),
    ...sets,
  );
}

/** The rolling hashes of the content: one per delimiter, plus one at the end if it is not a delimiter. */
function contentHashes(layout: ModuleLayout): Uint8Array[] {
  const h = sha256.create();
  const hashes: Uint8Array[] = [];
  let lastWasDelimiter = false;
  for (const s of layout.content) {
    h.update(layout.bytes.subarray(s.start, s.end));
    lastWasDelimiter = s.id === 0 && s.name === SIGNATURE_DELIMITER_SECTION;
    if (lastWasDelimiter) hashes.push(h.clone().digest());
  }
  if (!lastWasDelimiter) hashes.push(h.digest());
  return hashes;
}

function signedMessage(hashes: readonly Uint8Array[]): Uint8Array {
  return concatBytes(DOMAIN, Uint8Array.of(SPEC_VERSION, CONTENT_TYPE_MODULE, HASH_SHA256), ...hashes);
}

function sameHashes(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((h, i) => equalBytes(h, b[i]!));
}

function verifySig(sig: RawSignature, msg: Uint8Array, pk: Uint8Array): boolean {
  if (sig.alg !== ALG_ED25519 || sig.signature.length !== 64) return false;
  try {
    // zip215: false = strict RFC 8032 verification, no malleable encodings.
    return ed25519.verify(sig.signature, msg, pk, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * The key id wasmsign2 attaches by default (keys.rs `attach_default_key_id`):
 * the first 12 bytes of HMAC-SHA-256 with the public key as key and "key_id" as message.
 * @example
 * bytesToHex(defaultKeyId(keys.publicKey));
 */
export function defaultKeyId(publicKey: PublicKeyInput): Uint8Array {
  return hmac(sha256, parsePublicKey(publicKey), utf8Encode('key_id')).slice(0, 12);
}

/** Options of {@link signModule}. */
export interface SignOptions {
  /**
   * The key id stored with the signature: default the wasmsign2 default key id
   * ({@link defaultKeyId}); `null` stores none. It is a hint for verifiers, never trusted.
   */
  keyId?: Uint8Array | null;
}

/**
 * Signs a module with an Ed25519 key, adding to any signatures it already has (they stay valid).
 * The module's content is not changed, so its measurement is not either.
 * @param bytes - the module, signed or not.
 * @param privateKey - a key pair, a 32-byte seed, or a private JWK.
 * @returns the signed module (new bytes).
 * @throws {AttestationError} `invalid_module`; `malformed_signature` if the existing signature
 *   section cannot be read; `duplicate_signature` if this key already signed this content;
 *   `invalid_key`.
 * @example
 * const signed = signModule(await readFile('echo.wasm'), await readPrivateKeyFile('release.key.json'));
 * await writeFile('echo.signed.wasm', signed);
 */
export function signModule(bytes: Uint8Array, privateKey: SigningKeyPair | Uint8Array | string, options: SignOptions = {}): Uint8Array {
  const keys = isKeyPair(privateKey) ? privateKey : parsePrivateKey(privateKey);
  const layout = parseLayout(bytes);
  const previous = layout.signature
    ? decodeSignatureData(bytes.subarray(layout.signature.payloadStart, layout.signature.end))
    : { signedHashes: [] };
  const hashes = contentHashes(layout);
  const msg = signedMessage(hashes);
  const keyId = options.keyId === null ? new Uint8Array(0) : (options.keyId ?? defaultKeyId(keys.publicKey));
  const signature: RawSignature = { keyId, alg: ALG_ED25519, signature: ed25519.sign(msg, keys.secretKey) };

  const sets = previous.signedHashes.map((s) => ({ hashes: s.hashes, signatures: [...s.signatures] }));
  const same = sets.find((s) => sameHashes(s.hashes, hashes));
  if (same) {
    if (same.signatures.some((s) => verifySig(s, msg, keys.publicKey))) throw new AttestationError('duplicate_signature');
    same.signatures.push(signature);
  } else {
    if (sets.length >= MAX_HASH_SETS) throw new AttestationError('malformed_signature', 'the module has too many signature sets to add another');
    sets.push({ hashes, signatures: [signature] });
  }
  const section = encodeCustomSection(SIGNATURE_SECTION, encodeSignatureData({ signedHashes: sets }));
  return concatBytes(bytes.subarray(0, 8), section, bytes.subarray(layout.contentStart));
}

function isKeyPair(v: unknown): v is SigningKeyPair {
  return typeof v === 'object' && v !== null && 'secretKey' in v && 'publicKey' in v && (v as SigningKeyPair).secretKey instanceof Uint8Array;
}

/** One signer whose signature covers the whole module. */
export interface VerifiedSigner {
  /** Signer id: SHA-256 of the raw public key, hex. */
  readonly signer: string;
  /** The raw public key, hex. */
  readonly publicKey: string;
}

/**
 * Returns which of the given public keys signed the whole module (every section after the
 * signature section). Partial signatures, which leave some parts unsigned, do not count
 * (Signatures.md: "partial signatures must be ignored by WebAssembly runtimes" by default).
 * An unsigned module yields an empty list.
 * @param bytes - the module.
 * @param publicKeys - the keys to check, in any {@link PublicKeyInput} form.
 * @returns the valid signers, in the order of `publicKeys`, without duplicates.
 * @throws {AttestationError} `invalid_module`, `malformed_signature`, `invalid_key`.
 * @example
 * const valid = verifyModule(bytes, [releaseKey]);
 * if (valid.length === 0) throw new Error('not signed by the release key');
 */
export function verifyModule(bytes: Uint8Array, publicKeys: readonly PublicKeyInput[]): VerifiedSigner[] {
  return wholeModuleSigners(bytes, publicKeys).map(({ publicKey }) =>
    Object.freeze({ signer: bytesToHex(sha256(publicKey)), publicKey: bytesToHex(publicKey) }),
  );
}

/**
 * Each distinct key of `publicKeys` that signed the whole module, in the order of `publicKeys`,
 * with the position of its first valid signature in the module's signature section.
 */
function wholeModuleSigners(bytes: Uint8Array, publicKeys: readonly PublicKeyInput[]): { publicKey: Uint8Array; at: number }[] {
  const keys = publicKeys.map((k) => parsePublicKey(k));
  const layout = parseLayout(bytes);
  if (!layout.signature) return [];
  const data = decodeSignatureData(bytes.subarray(layout.signature.payloadStart, layout.signature.end));
  const hashes = contentHashes(layout);
  const set = data.signedHashes.find((s) => sameHashes(s.hashes, hashes));
  if (!set) return [];
  const msg = signedMessage(hashes);
  const out: { publicKey: Uint8Array; at: number }[] = [];
  const seen = new Set<string>();
  for (const publicKey of keys) {
    const hex = bytesToHex(publicKey);
    if (seen.has(hex)) continue;
    seen.add(hex); // the same key gives the same answer
    const at = set.signatures.findIndex((s) => verifySig(s, msg, publicKey));
    if (at >= 0) out.push({ publicKey, at });
  }
  return out;
}

/**
 * @internal The signer ids of those `publicKeys` that signed the whole module, ordered by the
 * position of each one's first valid signature in the module's own signature section: an order the
 * module's bytes fix, whatever order the keys come in ({@link checkTrust} binds the first admitted one).
 * @throws {AttestationError} `invalid_module`, `malformed_signature`, `invalid_key`.
 * @example
 * signersInModuleOrder(bytes, [keyB, keyA]); // [id of A, id of B] if A signed first
 */
export function signersInModuleOrder(bytes: Uint8Array, publicKeys: readonly PublicKeyInput[]): string[] {
  const found = wholeModuleSigners(bytes, publicKeys).map(({ publicKey, at }) => ({ signer: bytesToHex(sha256(publicKey)), at }));
  // Ties (one signature valid under two keys) cannot happen with Ed25519; the id breaks one anyway.
  return found.sort((a, b) => a.at - b.at || (a.signer < b.signer ? -1 : 1)).map(({ signer }) => signer);
}

/** What a signature section declares, before any key is checked (for `enclave inspect`). */
export interface DeclaredSignature {
  /** The key id stored with the signature, hex; empty string when none. Unauthenticated: a hint only. */
  readonly keyId: string;
  /** `'ed25519'`, or `'unknown(<id>)'` for an algorithm this layer does not support. */
  readonly algorithm: string;
  /** Whether this signature's hashes match the module's current content (the signature itself is not checked). */
  readonly coversModule: boolean;
}

/**
 * Lists the signatures a module declares, without verifying them (no key needed).
 * @throws {AttestationError} `invalid_module`, `malformed_signature`.
 * @example
 * for (const s of readSignatures(bytes)) console.log(s.keyId, s.coversModule);
 */
export function readSignatures(bytes: Uint8Array): DeclaredSignature[] {
  const layout = parseLayout(bytes);
  if (!layout.signature) return [];
  const data = decodeSignatureData(bytes.subarray(layout.signature.payloadStart, layout.signature.end));
  const hashes = contentHashes(layout);
  return data.signedHashes.flatMap((set) =>
    set.signatures.map((s) => ({
      keyId: bytesToHex(s.keyId),
      algorithm: s.alg === ALG_ED25519 ? 'ed25519' : `unknown(${s.alg})`,
      coversModule: sameHashes(set.hashes, hashes),
    })),
  );
}
