/**
 * The software platform: a stand-in for TEE hardware. It keeps an Ed25519 attestation key and a
 * sealing secret in one file, `platform-key.json`, created on first use with mode 0600 in a
 * directory created with mode 0700.
 *
 * THREAT MODEL (docs/THREAT-MODEL.md "Attestation"): these keys sit in a file and in the Node
 * process, next to the enclaves. Anyone who can read that file or that process memory can forge
 * evidence and unseal data. Evidence says `enclave.platform: "software"` so a relying party can
 * refuse it where it needs a hardware root of trust.
 *
 * File format (JSON, UTF-8):
 * `{"version":1,"platform":"software","attestationKey":<private Ed25519 JWK>,"sealingSecret":<base64url 32 bytes>,"createdAt":<ISO 8601>}`
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fstatSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fromBase64url, isPlainObject, toBase64url } from './_bytes.js';
import { AttestationError } from '../core/index.js';
import { inspectorOpen } from './_inspection.js';
import { buildEvidenceClaims, jwkThumbprint, signEvidenceClaims, type EvidenceRequest } from './evidence.js';
import { generateKeyPair, parsePrivateKey, privateKeyToJwk, type SigningKeyPair } from './keys.js';
import { measure } from './measure.js';
import type { ModuleIdentity } from './measure.js';
import type { AttestationProvider, PlatformPublicJwk } from './provider.js';
import { deriveSealingKey, type SealingOptions, type SealingPolicy } from './sealing.js';

/** The environment variable that overrides the platform directory. */
export const PLATFORM_DIR_ENV = 'ENCLAVE_PLATFORM_DIR';
/** The platform key file's name inside the platform directory. */
export const PLATFORM_KEY_FILE = 'platform-key.json';

/** Options of {@link SoftwareAttestationProvider}. */
export interface SoftwareProviderOptions {
  /** The platform directory. Precedence: this option, then `$ENCLAVE_PLATFORM_DIR`, then `~/.enclave`. */
  dir?: string;
}

interface PlatformState {
  readonly attestationKey: SigningKeyPair;
  readonly sealingSecret: Uint8Array;
  readonly jwk: PlatformPublicJwk;
}

/**
 * The platform directory that applies for the given option: option, then `$ENCLAVE_PLATFORM_DIR`, then `~/.enclave`.
 * @example
 * resolvePlatformDir(); // '/home/me/.enclave'
 */
export function resolvePlatformDir(dir?: string): string {
  return dir ?? process.env[PLATFORM_DIR_ENV] ?? join(homedir(), '.enclave');
}

function unavailable(detail: string, cause?: unknown): AttestationError {
  return new AttestationError(
    'platform_unavailable',
    `the platform key store could not be opened (${detail}); check ${PLATFORM_DIR_ENV} and its permissions`,
    { cause },
  );
}

/**
 * The software attestation provider. Keys load lazily, once, on the first call that needs them
 * (synchronous file I/O, so the first `report` or `seal_key` from an enclave may block briefly;
 * call {@link SoftwareAttestationProvider.open} at start-up to avoid that).
 *
 * @example
 * const platform = new SoftwareAttestationProvider({ dir: '/var/lib/enclave' });
 * const token = platform.getEvidence({ identity, nonce, runtimeVersion: '0.1.0', limits, capabilities: [], debug: false });
 * const jwk = platform.publicJwk(); // give this to relying parties
 */
export class SoftwareAttestationProvider implements AttestationProvider {
  readonly platform = 'software';
  readonly #dir: string;
  #state: PlatformState | undefined;

  constructor(options: SoftwareProviderOptions = {}) {
    this.#dir = resolvePlatformDir(options.dir);
  }

  /** The platform directory in use. */
  get dir(): string {
    return this.#dir;
  }

  /** The path of the platform key file. */
  get keyPath(): string {
    return join(this.#dir, PLATFORM_KEY_FILE);
  }

  /**
   * Loads (creating on first use) the platform keys now rather than at the first call.
   * @throws {AttestationError} `platform_unavailable`, `insecure_key_file`.
   * @example
   * const platform = new SoftwareAttestationProvider().open();
   */
  open(): this {
    this.#load();
    return this;
  }

  /**
   * The module's measurement (SHA-256 without the signature section).
   * @throws {AttestationError} `invalid_module`, `malformed_signature`.
   * @example
   * platform.measure(bytes);
   */
  measure(bytes: Uint8Array): Uint8Array {
    return measure(bytes);
  }

  /**
   * Issues evidence (an EAT in a JWT) with `enclave.platform: "software"`.
   * @throws {AttestationError} `invalid_nonce`, `invalid_report_data`, `invalid_evidence_request`,
   *   `platform_unavailable`, `insecure_key_file`.
   * @example
   * const token = platform.getEvidence({ identity, nonce, runtimeVersion, limits, capabilities, debug: false });
   */
  getEvidence(request: EvidenceRequest): string {
    // The inspector sees inside every enclave of this process (attest/_inspection.ts): checked now,
    // whatever the caller says, so no route to evidence can claim "not debugged" while it is open.
    const seen = typeof request === 'object' && request !== null && request.debug === false && inspectorOpen();
    const claims = buildEvidenceClaims(seen ? { ...request, debug: true } : request, this.platform); // validate before touching keys
    return signEvidenceClaims(claims, this.#load().attestationKey);
  }

  /**
   * Derives a sealing key bound to the enclave's measurement or signer (see attest/sealing.ts).
   * @throws {AttestationError} `sealing_unavailable`, `platform_unavailable`, `insecure_key_file`.
   * @example
   * const key = platform.getSealingSecret(identity, 'measurement');
   */
  getSealingSecret(identity: ModuleIdentity, policy: SealingPolicy, options?: SealingOptions): Uint8Array {
    return deriveSealingKey(this.#load().sealingSecret, identity, policy, options);
  }

  /**
   * The platform's public key as a JWK, for relying parties (`kid` is its RFC 7638 thumbprint).
   * @throws {AttestationError} `platform_unavailable`, `insecure_key_file`.
   * @example
   * await writeFile('platform.pub.json', JSON.stringify(platform.publicJwk()));
   */
  publicJwk(): PlatformPublicJwk {
    return { ...this.#load().jwk };
  }

  #load(): PlatformState {
    if (this.#state) return this.#state;
    try {
      makeDirectory(this.#dir);
    } catch (err) {
      throw unavailable('cannot create the directory', err);
    }
    checkDirectory(this.#dir);
    const path = this.keyPath;
    let text: string;
    try {
      text = readIfExists(path) ?? createKeyFile(path);
    } catch (err) {
      if (err instanceof AttestationError) throw err;
      throw unavailable('cannot read or create the key file', err);
    }
    this.#state = parseKeyFile(text);
    return this.#state;
  }
}

const POSIX = process.platform !== 'win32';

/**
 * Creates the directory (mode 0700) and its missing parents one at a time, never with
 * `recursive: true`: Node 20's recursive mkdir spins at 100 % CPU, forever, where a parent exists
 * but mkdir answers ENOENT (a pseudo file system such as /proc). Here each missing component is
 * created once, in order, and the first failure is the error: the work is bounded by the path's length.
 */
function makeDirectory(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      statSync(d);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Refuses a platform directory that another user could write to: whoever can create or rename
 * files in it can plant their own key file, whose key and sealing secret they know (the checks
 * OpenSSH makes of `~/.ssh`). A symlinked directory is fine; its target is what is checked.
 */
function checkDirectory(dir: string): void {
  if (!POSIX) return;
  let st;
  try {
    st = statSync(dir);
  } catch (err) {
    throw unavailable('cannot read the directory', err);
  }
  if (!st.isDirectory()) throw unavailable('the platform directory is not a directory');
  if ((st.mode & 0o022) !== 0 || st.uid !== process.getuid!()) {
    throw new AttestationError('insecure_key_file', 'the platform directory is writable by, or belongs to, another user; use a private directory (mode 0700)');
  }
}

/**
 * Reads the key file if it exists. Opened once, without following a symlink, and the open file is
 * checked (regular, ours, mode 0600 or narrower), so nothing can swap it between check and read.
 */
function readIfExists(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | (POSIX ? fsc.O_NOFOLLOW | fsc.O_NONBLOCK : 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new AttestationError('insecure_key_file', 'the platform key file is a symlink; replace it with the file itself');
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_KEY_FILE_BYTES) throw unavailable('the key file is not a regular file of a few hundred bytes');
    if (POSIX && st.uid !== process.getuid!()) {
      throw new AttestationError('insecure_key_file', 'the platform key file belongs to another user; remove it and let enclave create a new one');
    }
    if (POSIX && (st.mode & 0o077) !== 0) throw new AttestationError('insecure_key_file');
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/** Far above a real key file; bounds what a planted or corrupted file can make us read. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/** Creates the key file atomically: write a private temp file, then link it into place (fails if another process won). */
function createKeyFile(path: string): string {
  const keys = generateKeyPair();
  const sealing = randomBytes(32);
  const text = `${JSON.stringify({
    version: 1,
    platform: 'software',
    attestationKey: privateKeyToJwk(keys),
    sealingSecret: toBase64url(sealing),
    createdAt: new Date().toISOString(),
  })}\n`;
  sealing.fill(0);
  keys.secretKey.fill(0); // parseKeyFile rebuilds the pair from the text
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, path);
    return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readIfExists(path)!; // another process created it first: use theirs
  } finally {
    unlinkSync(tmp);
  }
}

function parseKeyFile(text: string): PlatformState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw unavailable('the key file is not JSON', err);
  }
  if (!isPlainObject(json) || json.version !== 1) throw unavailable('the key file has an unknown format');
  let attestationKey: SigningKeyPair;
  try {
    attestationKey = parsePrivateKey(json.attestationKey as never);
  } catch (err) {
    throw unavailable('the attestation key is malformed', err);
  }
  const sealingSecret = fromBase64url(json.sealingSecret);
  if (!sealingSecret || sealingSecret.length !== 32) throw unavailable('the sealing secret is malformed');
  const x = toBase64url(attestationKey.publicKey);
  const jwk: PlatformPublicJwk = { kty: 'OKP', crv: 'Ed25519', x, kid: jwkThumbprint(attestationKey.publicKey), alg: 'EdDSA', use: 'sig' };
  return Object.freeze({ attestationKey, sealingSecret, jwk: Object.freeze(jwk) });
}
