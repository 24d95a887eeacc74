/**
 * Ed25519 keys for signing modules, and their files.
 *
 * Key files are JSON Web Keys (RFC 7517, OKP keys per RFC 8037), one object per file, UTF-8:
 * - public:  `{"kty":"OKP","crv":"Ed25519","x":<base64url 32 bytes>,"kid":<signer id>,"alg":"EdDSA","use":"sig"}`
 * - private: the same plus `"d"`: the base64url 32-byte Ed25519 seed. Written with mode 0600, and
 *   refused on read if group or others can read it (as OpenSSH does).
 * The signer id (`kid`) is SHA-256 of the raw 32-byte public key, in lowercase hex.
 * Raw wasmsign2 key files (`0x01 ‖ pk`, `0x81 ‖ seed ‖ pk`) are accepted on input.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { abytes, bytesToHex, equalBytes, fromBase64url, hexToBytesOrUndefined, isPlainObject, toBase64url } from './_bytes.js';
import { AttestationError } from '../core/index.js';

/** An Ed25519 key pair. `secretKey` is the 32-byte seed of RFC 8032 §5.1.5. */
export interface SigningKeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** A public Ed25519 JWK (RFC 8037 §2). */
export interface Ed25519PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid?: string;
  alg?: string;
  use?: string;
}

/** A private Ed25519 JWK: the public one plus the seed `d`. */
export interface Ed25519PrivateJwk extends Ed25519PublicJwk {
  d: string;
}

/**
 * Any accepted form of an Ed25519 public key: 32 raw bytes, wasmsign2's `0x01 ‖ pk`, 64 hex digits,
 * 43 base64url characters, a JWK object, or a key file's text/bytes (JWK JSON).
 */
export type PublicKeyInput = Uint8Array | string | Ed25519PublicJwk;

const WASMSIGN2_PK_ID = 0x01;
const WASMSIGN2_SK_ID = 0x81;

/**
 * Generates a fresh Ed25519 key pair from the system CSPRNG.
 * @example
 * const keys = generateKeyPair();
 * await writeKeyPair(keys, { privateKeyPath: 'release.key.json' });
 */
export function generateKeyPair(): SigningKeyPair {
  const { secretKey, publicKey } = ed25519.keygen();
  return Object.freeze({ secretKey, publicKey });
}

/**
 * Rebuilds a key pair from its 32-byte seed.
 * @throws {RangeError} if the seed is not 32 bytes.
 * @example
 * const keys = keyPairFromSeed(seed);
 */
export function keyPairFromSeed(seed: Uint8Array): SigningKeyPair {
  abytes(seed, 'seed', 32);
  return Object.freeze({ secretKey: Uint8Array.from(seed), publicKey: ed25519.getPublicKey(seed) });
}

/**
 * The signer id of a public key: SHA-256 of its raw 32 bytes, lowercase hex.
 * @throws {AttestationError} `invalid_key` if the key cannot be parsed.
 * @example
 * signerId(keys.publicKey); // '3f1c…'
 */
export function signerId(publicKey: PublicKeyInput): string {
  return bytesToHex(sha256(parsePublicKey(publicKey)));
}

/**
 * The public JWK of a key, with `kid` set to its signer id.
 * @throws {AttestationError} `invalid_key` if the key cannot be parsed.
 * @example
 * JSON.stringify(publicKeyToJwk(keys.publicKey));
 */
export function publicKeyToJwk(publicKey: PublicKeyInput): Ed25519PublicJwk {
  const pk = parsePublicKey(publicKey);
  return { kty: 'OKP', crv: 'Ed25519', x: toBase64url(pk), kid: bytesToHex(sha256(pk)), alg: 'EdDSA', use: 'sig' };
}

/**
 * The private JWK of a key pair (contains the seed: keep it secret).
 * @example
 * const jwk = privateKeyToJwk(generateKeyPair());
 */
export function privateKeyToJwk(keys: SigningKeyPair): Ed25519PrivateJwk {
  abytes(keys.secretKey, 'secretKey', 32);
  return { ...publicKeyToJwk(keys.publicKey), d: toBase64url(keys.secretKey) };
}

function invalidKey(detail?: string): AttestationError {
  return new AttestationError('invalid_key', detail && `the key is malformed (${detail}); generate one with \`enclave keygen\``);
}

function checkPoint(pk: Uint8Array): Uint8Array {
  if (pk.length !== 32 || !ed25519.utils.isValidPublicKey(pk)) throw invalidKey('not an Ed25519 public key');
  return pk;
}

function publicFromJwk(jwk: unknown): Uint8Array {
  if (!isPlainObject(jwk) || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw invalidKey('not an OKP Ed25519 JWK');
  const x = fromBase64url(jwk.x);
  if (!x || x.length !== 32) throw invalidKey('bad "x"');
  return checkPoint(x);
}

function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalidKey('not JSON');
  }
}

/**
 * Parses an Ed25519 public key in any accepted form (see {@link PublicKeyInput}) to its raw 32 bytes.
 * @throws {AttestationError} `invalid_key` if it is not a valid Ed25519 public key.
 * @example
 * const pk = parsePublicKey('{"kty":"OKP","crv":"Ed25519","x":"…"}');
 */
export function parsePublicKey(input: PublicKeyInput): Uint8Array {
  if (input instanceof Uint8Array) {
    if (input.length === 32) return checkPoint(Uint8Array.from(input));
    if (input.length === 33 && input[0] === WASMSIGN2_PK_ID) return checkPoint(input.slice(1));
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw invalidKey('unrecognised binary format');
    }
    return parsePublicKey(text);
  }
  if (typeof input === 'string') {
    const text = input.trim();
    if (text.startsWith('{')) return publicFromJwk(parseJsonText(text));
    if (text.length === 64) {
      const raw = hexToBytesOrUndefined(text);
      if (raw) return checkPoint(raw);
    }
    const raw = fromBase64url(text);
    if (raw && raw.length === 32) return checkPoint(raw);
    throw invalidKey('unrecognised text format');
  }
  if (isPlainObject(input)) return publicFromJwk(input);
  throw new TypeError('publicKey: expected bytes, a string or a JWK');
}

/**
 * Parses a private key: a private JWK (object, JSON text or its bytes), a 32-byte seed, or a
 * wasmsign2 raw secret key (`0x81 ‖ seed ‖ pk`). The public part, when present, must match the seed.
 * @throws {AttestationError} `invalid_key` if it is malformed or inconsistent.
 * @example
 * const keys = parsePrivateKey(await readFile('release.key.json'));
 */
export function parsePrivateKey(input: Uint8Array | string | Ed25519PrivateJwk): SigningKeyPair {
  if (input instanceof Uint8Array) {
    if (input.length === 32) return keyPairFromSeed(input);
    if (input.length === 65 && input[0] === WASMSIGN2_SK_ID) {
      const keys = keyPairFromSeed(input.subarray(1, 33));
      if (!equalBytes(keys.publicKey, input.subarray(33))) throw invalidKey('public half does not match the seed');
      return keys;
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(input);
    } catch {
      throw invalidKey('unrecognised binary format');
    }
    return parsePrivateKey(text);
  }
  const jwk = typeof input === 'string' ? parseJsonText(input.trim()) : input;
  if (!isPlainObject(jwk)) throw invalidKey('not a JWK');
  const d = fromBase64url(jwk.d);
  if (!d || d.length !== 32) throw invalidKey('missing or bad "d": this is not a private key');
  const keys = keyPairFromSeed(d);
  d.fill(0);
  if (!equalBytes(publicFromJwk(jwk), keys.publicKey)) throw invalidKey('"x" does not match "d"');
  return keys;
}

/** Where {@link writeKeyPair} puts the files. */
export interface KeyPairPaths {
  /** The private key file, written with mode 0600. */
  privateKeyPath: string;
  /** The public key file; default: the private path with `.key.json`/`.json` replaced by `.pub.json`. */
  publicKeyPath?: string;
}

/**
 * The default public key path for a private key path: `x.key.json` → `x.pub.json`, else `x` → `x.pub.json`.
 * @example
 * defaultPublicKeyPath('release.key.json'); // 'release.pub.json'
 */
export function defaultPublicKeyPath(privateKeyPath: string): string {
  if (privateKeyPath.endsWith('.key.json')) return `${privateKeyPath.slice(0, -'.key.json'.length)}.pub.json`;
  if (privateKeyPath.endsWith('.json')) return `${privateKeyPath.slice(0, -'.json'.length)}.pub.json`;
  return `${privateKeyPath}.pub.json`;
}

/**
 * Writes a key file. Without `overwrite`, the file is created with O_EXCL: a planted file or
 * symlink is never followed into someone else's file. With `overwrite`, the new key goes to a new
 * file (O_EXCL, an unguessable name in the same directory) renamed over the path: the old file is
 * never rewritten, so a reader holding it open keeps reading the old key, never the new one. A
 * symlink at the path is refused (and rename would replace the link, never write through it).
 */
async function writeNew(path: string, text: string, mode: number, overwrite: boolean): Promise<void> {
  if (overwrite) {
    const st = await lstat(path).catch(() => undefined);
    if (st !== undefined && !st.isFile()) {
      throw new AttestationError('key_unavailable', 'the key path is a symlink or not a regular file; remove it or choose another path');
    }
  }
  const target = overwrite ? `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp` : path;
  let fh;
  try {
    fh = await open(target, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && !overwrite) throw new AttestationError('key_exists', undefined, { cause: err });
    throw new AttestationError('key_unavailable', undefined, { cause: err });
  }
  try {
    try {
      await fh.chmod(mode); // the umask may have narrowed it
      await fh.writeFile(text, 'utf8');
      await fh.sync(); // on disk before it replaces the old key
    } finally {
      await fh.close();
    }
    if (overwrite) await rename(target, path);
  } catch (err) {
    if (overwrite) await unlink(target).catch(() => {});
    throw new AttestationError('key_unavailable', undefined, { cause: err });
  }
}

/**
 * Writes a key pair as JWK files: the private one with mode 0600, the public one with 0644.
 * Refuses to replace existing files unless `overwrite` is set. If the public file cannot be
 * written, a private file this call created is removed again, so a retry starts clean.
 * @returns the paths written.
 * @throws {AttestationError} `key_exists` if a file exists; `key_unavailable` on other I/O errors
 *   or when both paths are the same file (the public key would replace the private one).
 * @example
 * const { publicKeyPath } = await writeKeyPair(generateKeyPair(), { privateKeyPath: 'release.key.json' });
 */
export async function writeKeyPair(
  keys: SigningKeyPair,
  paths: KeyPairPaths,
  options: { overwrite?: boolean } = {},
): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  const privateKeyPath = paths.privateKeyPath;
  const publicKeyPath = paths.publicKeyPath ?? defaultPublicKeyPath(privateKeyPath);
  if (resolve(privateKeyPath) === resolve(publicKeyPath)) {
    throw new AttestationError('key_unavailable', 'the public key path is the private key path; give the public key another file');
  }
  const overwrite = options.overwrite === true;
  await writeNew(privateKeyPath, `${JSON.stringify(privateKeyToJwk(keys))}\n`, 0o600, overwrite);
  try {
    await writeNew(publicKeyPath, `${JSON.stringify(publicKeyToJwk(keys.publicKey))}\n`, 0o644, overwrite);
  } catch (err) {
    if (!overwrite) await unlink(privateKeyPath).catch(() => {});
    throw err;
  }
  return { privateKeyPath, publicKeyPath };
}

/** Far above any real key file (a JWK is ~230 bytes); bounds what a wrong path can make us read. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * Reads a key file through one open handle: the checks (regular file, size, and for private keys
 * the mode) are made on the file actually read, so it cannot be swapped between check and read.
 * O_NONBLOCK keeps a FIFO from blocking the open; a FIFO or device (`/dev/zero`) is then refused.
 */
async function readKeyFile(path: string, requirePrivate: boolean): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, fsc.O_RDONLY | (process.platform === 'win32' ? 0 : fsc.O_NONBLOCK));
  } catch (err) {
    throw new AttestationError('key_unavailable', undefined, { cause: err });
  }
  try {
    let st;
    try {
      st = await fh.stat();
    } catch (err) {
      throw new AttestationError('key_unavailable', undefined, { cause: err });
    }
    if (!st.isFile() || st.size > MAX_KEY_FILE_BYTES) {
      throw new AttestationError('invalid_key', 'the key path is not a key file (not a regular file of at most 64 KiB); generate one with `enclave keygen`');
    }
    // As OpenSSH: a private key that group or others can access is refused, not used.
    if (requirePrivate && process.platform !== 'win32' && (st.mode & 0o077) !== 0) throw new AttestationError('insecure_key_file');
    try {
      return new Uint8Array(await fh.readFile());
    } catch (err) {
      throw new AttestationError('key_unavailable', undefined, { cause: err });
    }
  } finally {
    await fh.close();
  }
}

/**
 * Reads a private key file (JWK, or wasmsign2 raw). On POSIX, refuses a file that group or others
 * can read.
 * @throws {AttestationError} `key_unavailable`, `insecure_key_file`, `invalid_key`.
 * @example
 * const keys = await readPrivateKeyFile('release.key.json');
 * const signed = signModule(bytes, keys);
 */
export async function readPrivateKeyFile(path: string): Promise<SigningKeyPair> {
  const bytes = await readKeyFile(path, true);
  try {
    return parsePrivateKey(bytes);
  } finally {
    bytes.fill(0);
  }
}

/**
 * Reads a public key file (JWK, hex, base64url or wasmsign2 raw) to its raw 32 bytes.
 * @throws {AttestationError} `key_unavailable`, `invalid_key` (also for a path that is not a regular file).
 * @example
 * const trusted = [{ publicKey: await readPublicKeyFile('release.pub.json'), minSvn: 2 }];
 */
export async function readPublicKeyFile(path: string): Promise<Uint8Array> {
  return parsePublicKey(await readKeyFile(path, false));
}
