/**
 * The software platform: a stand-in for TEE hardware. It keeps an Ed25519 attestation key and its
 * sealing roots in one file, `platform-key.json`, created on first use with mode 0600 in a
 * directory created with mode 0700, and its monotonic counters in `counters/` beside it (./counters.ts).
 *
 * THREAT MODEL (docs/THREAT-MODEL.md "Attestation"): these keys sit in a file and in the Node
 * process, next to the enclaves. Anyone who can read that file or that process memory can forge
 * evidence and unseal data. Evidence says `enclave.platform: "software"` so a relying party can
 * refuse it where it needs a hardware root of trust.
 *
 * File format (JSON, UTF-8), version 2:
 * `{"version":2,"platform":"software","attestationKey":<private Ed25519 JWK>,"sealingRoots":[{"id":1,"secret":<base64url 32 bytes>,"createdAt":<ISO 8601>,"state":"active"},...],"currentRoot":1,"createdAt":<ISO 8601>}`
 * A revoked root keeps its id and `createdAt` and loses its `secret` (crypto-shredded). Version 1
 * (`"sealingSecret":<base64url 32 bytes>` instead of the roots) is what a new platform gets and still
 * reads, as root 1, current; the first rotation or revocation rewrites it as version 2. Root 1's
 * derivation is the version 1 secret's, so data sealed before stays readable.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, fstatSync, linkSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fromBase64url, isPlainObject, toBase64url } from './_bytes.js';
import { AttestationError, EnclaveError } from '../core/index.js';
import { fsyncDirectory, ioErrors, platformUnavailable, POSIX, tempPathFor, withFileLock, writeFileAtomic, writeNewFileDurably } from './_durable.js';
import { inspectorOpen } from './_inspection.js';
import { COUNTERS_DIR, counterNamespace, CounterStore } from './counters.js';
import { buildEvidenceClaims, jwkThumbprint, signEvidenceClaims, type EvidenceRequest } from './evidence.js';
import { generateKeyPair, parsePrivateKey, privateKeyToJwk, type SigningKeyPair } from './keys.js';
import { measure } from './measure.js';
import type { ModuleIdentity } from './measure.js';
import type { AttestationProvider, CounterState, PlatformPublicJwk, SealingKey, SealingKeyRequest, SealingRootInfo } from './provider.js';
import { deriveSealingKey, type SealingOptions, type SealingPolicy } from './sealing.js';

/** The environment variable that overrides the platform directory. */
export const PLATFORM_DIR_ENV = 'ENCLAVE_PLATFORM_DIR';
/** The platform key file's name inside the platform directory. */
export const PLATFORM_KEY_FILE = 'platform-key.json';

/** At most this many sealing roots are listed, revoked ones included; beyond, a rotation is refused. */
export const MAX_SEALING_ROOTS = 256;
/** The largest sealing root id (ids are 1..2^31-1, never reused). */
export const MAX_SEALING_ROOT_ID = 2 ** 31 - 1;

/** Options of {@link SoftwareAttestationProvider}. */
export interface SoftwareProviderOptions {
  /** The platform directory. Precedence: this option, then `$ENCLAVE_PLATFORM_DIR`, then `~/.enclave`. */
  dir?: string;
}

interface SealingRoot {
  readonly id: number;
  readonly state: 'active' | 'revoked';
  /** Present for an active root only. */
  readonly secret: Uint8Array | undefined;
  readonly createdAt: string;
}

interface PlatformState {
  readonly attestationKey: SigningKeyPair;
  readonly jwk: PlatformPublicJwk;
  /** In id order. */
  readonly roots: readonly SealingRoot[];
  readonly current: SealingRoot & { readonly secret: Uint8Array };
  readonly createdAt: string;
  /** The key file's (dev, ino, size, mtime) when it was read: a change means another process rewrote it. */
  readonly stamp: string;
}

/**
 * The platform directory that applies for the given option: option, then `$ENCLAVE_PLATFORM_DIR`, then `~/.enclave`.
 * @throws {EnclaveError} `invalid_options` for an empty option or an empty `$ENCLAVE_PLATFORM_DIR`.
 * @example
 * resolvePlatformDir(); // '/home/me/.enclave'
 */
export function resolvePlatformDir(dir?: string): string {
  // An empty value is a mistake (`--platform-dir "$DIR"` with DIR unset), never "the default": the
  // default is another platform, whose roots `enclave keys revoke` would destroy.
  if (dir !== undefined && (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0'))) {
    throw new EnclaveError('invalid_options', 'The platform directory must be a non-empty path: pass the directory, or leave the option out for the default.');
  }
  const env = process.env[PLATFORM_DIR_ENV];
  if (dir === undefined && env !== undefined && (env.length === 0 || env.includes('\0'))) {
    throw new EnclaveError('invalid_options', `${PLATFORM_DIR_ENV} is set but empty: set it to the platform directory, or unset it for the default.`);
  }
  return dir ?? env ?? join(homedir(), '.enclave');
}

function unavailable(detail: string, cause?: unknown): AttestationError {
  // The message of this file since version 1; ./_durable.ts platformUnavailable is the same for the files added since.
  return new AttestationError(
    'platform_unavailable',
    `the platform key store could not be opened (${detail}); check ${PLATFORM_DIR_ENV} and its permissions`,
    { cause },
  );
}

/**
 * The software attestation provider. Keys load lazily, once, on the first call that needs them
 * (synchronous file I/O, so the first `report` or `seal_key` from an enclave may block briefly;
 * call {@link SoftwareAttestationProvider.open} at start-up to avoid that). Every sealing and counter
 * call then stats the key file (microseconds) and re-reads it if another process rotated or revoked
 * a sealing root, so a running provider never seals under a replaced root or unseals under a revoked one.
 *
 * @example
 * const platform = new SoftwareAttestationProvider({ dir: '/var/lib/enclave' });
 * const token = platform.getEvidence({ identity, nonce, runtimeVersion: '0.1.0', limits, capabilities: [], debug: false });
 * const jwk = platform.publicJwk(); // give this to relying parties
 */
export class SoftwareAttestationProvider implements AttestationProvider {
  readonly platform = 'software';
  readonly #dir: string;
  readonly #counters: CounterStore;
  #state: PlatformState | undefined;

  /**
   * @throws {EnclaveError} `invalid_options` for options that are not an object, or an empty `dir`
   *   (or an empty `$ENCLAVE_PLATFORM_DIR`): never silently the default platform.
   */
  constructor(options: SoftwareProviderOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_options', 'SoftwareAttestationProvider options must be an object: { dir }.');
    this.#dir = resolvePlatformDir(options.dir);
    this.#counters = new CounterStore(join(this.#dir, COUNTERS_DIR));
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
   * Derives a sealing key under the current sealing root, bound to the enclave's measurement or
   * signer (see attest/sealing.ts). {@link SoftwareAttestationProvider.sealingKey} says which root.
   * @throws {AttestationError} `sealing_unavailable`, `platform_unavailable`, `insecure_key_file`.
   * @example
   * const key = platform.getSealingSecret(identity, 'measurement');
   */
  getSealingSecret(identity: ModuleIdentity, policy: SealingPolicy, options?: SealingOptions): Uint8Array {
    return deriveSealingKey(this.#load(true).current.secret, identity, policy, options);
  }

  /**
   * Derives a sealing key under a given sealing root (default: the current one) and svn (signer
   * policy only; default: the identity's own), and says which root and svn it used.
   * @throws {AttestationError} `sealing_key_unknown` (no such root id), `sealing_key_revoked` (the
   *   root was revoked), `sealing_unavailable` (signer policy without a signer, an svn above the
   *   identity's, or an svn under the measurement policy), `platform_unavailable`, `insecure_key_file`.
   * @throws {RangeError} for a key id outside 0..2^31-1 or an svn that is not an integer ≥ 0.
   * @example
   * const { key, keyId } = platform.sealingKey(identity, 'signer');   // seal: remember keyId
   * const old = platform.sealingKey(identity, 'signer', { keyId, svn: 1 }); // unseal what svn 1 sealed
   */
  sealingKey(identity: ModuleIdentity, policy: SealingPolicy, request: SealingKeyRequest = {}): SealingKey {
    const keyId = request.keyId ?? 0;
    if (!Number.isSafeInteger(keyId) || keyId < 0 || keyId > MAX_SEALING_ROOT_ID) throw new RangeError('keyId: expected an integer 0..2^31-1');
    const { svn } = request;
    if (svn !== undefined && (!Number.isSafeInteger(svn) || svn < 0)) throw new RangeError('svn: expected an integer ≥ 0');
    if (svn !== undefined && policy === 'measurement') {
      throw new AttestationError('sealing_unavailable', 'an svn applies to the signer policy only: omit it under the measurement policy');
    }
    const state = this.#load(true);
    const root = keyId === 0 ? state.current : state.roots.find((r) => r.id === keyId);
    if (root === undefined) throw new AttestationError('sealing_key_unknown');
    if (root.secret === undefined) throw new AttestationError('sealing_key_revoked');
    const key = deriveSealingKey(root.secret, identity, policy, svn === undefined ? {} : { svn });
    return { key, keyId: root.id, svn: policy === 'signer' ? (svn ?? identity.svn) : 0 };
  }

  /**
   * The sealing roots, revoked ones included, in id order (never a secret).
   * @throws {AttestationError} `platform_unavailable`, `insecure_key_file`.
   * @example
   * platform.listSealingRoots(); // [{ id: 1, state: 'active', current: true, createdAt: '2026-...' }]
   */
  listSealingRoots(): SealingRootInfo[] {
    const state = this.#load(true);
    return state.roots.map((r) => ({ id: r.id, state: r.state, current: r === state.current, createdAt: r.createdAt }));
  }

  /**
   * Adds a sealing root (32 random bytes) and makes it current: new data seals under it; data sealed
   * under older active roots still unseals (reseal it forward, then revoke the old root). Atomic and
   * durable; serialised with other processes' rotations and revocations.
   * @returns the new root's id.
   * @throws {AttestationError} `platform_unavailable` (I/O, or 256 roots listed already), `insecure_key_file`.
   * @example
   * const { id } = platform.rotateSealingRoot();
   */
  rotateSealingRoot(): { id: number } {
    const id = this.#rewrite((file) => {
      if (file.roots.length >= MAX_SEALING_ROOTS) {
        throw platformUnavailable(`it lists ${MAX_SEALING_ROOTS} sealing roots, revoked ones included, the most it keeps; move to a new platform directory`);
      }
      const next = file.roots[file.roots.length - 1]!.id + 1;
      if (next > MAX_SEALING_ROOT_ID) throw platformUnavailable('no sealing root id is left; move to a new platform directory');
      const secret = randomBytes(32);
      const root: SealingRoot = { id: next, state: 'active', secret: new Uint8Array(secret), createdAt: new Date().toISOString() };
      secret.fill(0);
      return { roots: [...file.roots, root], current: root as PlatformState['current'], result: next };
    });
    return { id: id! };
  }

  /**
   * Revokes a sealing root: deletes its secret from the key file (crypto-shredding what it sealed)
   * and keeps its id listed, never reused. Revoking a revoked root does nothing.
   * @throws {EnclaveError} `invalid_options` for the current root (rotate first).
   * @throws {AttestationError} `sealing_key_unknown`, `platform_unavailable`, `insecure_key_file`.
   * @throws {RangeError} for an id that is not an integer 1..2^31-1.
   * @example
   * platform.rotateSealingRoot();
   * platform.revokeSealingRoot(1);
   */
  revokeSealingRoot(id: number): void {
    if (!Number.isSafeInteger(id) || id < 1 || id > MAX_SEALING_ROOT_ID) throw new RangeError('id: expected an integer 1..2^31-1');
    this.#rewrite((file) => {
      const root = file.roots.find((r) => r.id === id);
      if (root === undefined) throw new AttestationError('sealing_key_unknown');
      if (root === file.current) {
        throw new EnclaveError('invalid_options', `sealing root ${id} is the current one and cannot be revoked: rotate first (\`enclave keys rotate\`)`);
      }
      if (root.state === 'revoked') return undefined;
      const revoked: SealingRoot = { id, state: 'revoked', secret: undefined, createdAt: root.createdAt };
      return { roots: file.roots.map((r) => (r === root ? revoked : r)), current: file.current, result: undefined };
    });
  }

  /**
   * A monotonic counter of the enclave's identity binding (measurement, or signer and name: the same
   * for every svn). A counter never advanced reads 0n and 32 zero bytes.
   * @throws {AttestationError} `sealing_unavailable` (signer policy without a signer), `platform_unavailable`, `insecure_key_file`.
   * @throws {TypeError}/{@link RangeError} for an id that is not a bigint 0..2^64-1.
   * @example
   * const { value, tag } = platform.readCounter(identity, 'signer', 7n);
   */
  readCounter(identity: ModuleIdentity, policy: SealingPolicy, id: bigint): CounterState {
    const namespace = counterNamespace(identity, policy);
    this.#load();
    return this.#counters.read(namespace, id);
  }

  /**
   * Advances a counter from `expected` to `expected + 1` and stores `tag` with it, durable (file and
   * folder fsynced) before it returns; a compare-and-set that is atomic across processes.
   * @returns true if it advanced; false if the counter's value was not `expected` (a conflict).
   * @throws {AttestationError} `counter_limit` (4096 counters in the namespace, or past 2^64-1),
   *   `sealing_unavailable`, `platform_unavailable`, `insecure_key_file`.
   * @throws {TypeError}/{@link RangeError} for an id or value outside u64, or a tag that is not 32 bytes.
   * @example
   * if (!platform.advanceCounter(identity, 'signer', 7n, value, digest)) throw new Error('conflict');
   */
  advanceCounter(identity: ModuleIdentity, policy: SealingPolicy, id: bigint, expected: bigint, tag: Uint8Array): boolean {
    const namespace = counterNamespace(identity, policy);
    this.#load();
    return this.#counters.advance(namespace, id, expected, tag);
  }

  /**
   * The public key as a JWK, for relying parties (`kid` is its RFC 7638 thumbprint).
   * @throws {AttestationError} `platform_unavailable`, `insecure_key_file`.
   * @example
   * await writeFile('platform.pub.json', JSON.stringify(platform.publicJwk()));
   */
  publicJwk(): PlatformPublicJwk {
    return { ...this.#load().jwk };
  }

  /**
   * The platform state; with `fresh`, re-read if the key file changed since (a stat per call).
   * A key file that disappeared under a running provider is an error, not a new platform: a new
   * one would reuse root id 1 with another secret.
   */
  #load(fresh = false): PlatformState {
    const state = this.#state;
    if (state !== undefined) {
      if (!fresh) return state;
      let stamp: string;
      try {
        stamp = stampOf(statSync(this.keyPath, { bigint: true }));
      } catch (err) {
        throw unavailable('the key file disappeared while in use; restore it, or restart to create a new platform', err);
      }
      if (stamp === state.stamp) return state;
      this.#state = this.#read(false);
      forget(state);
      return this.#state;
    }
    this.#state = this.#read(true);
    return this.#state;
  }

  /** Reads the key file (creating it with `create`), after checking the directory. */
  #read(create: boolean): PlatformState {
    try {
      makeDirectory(this.#dir);
    } catch (err) {
      throw unavailable('cannot create the directory', err);
    }
    checkDirectory(this.#dir);
    const path = this.keyPath;
    let read: { text: string; stamp: string } | undefined;
    try {
      read = readIfExists(path) ?? (create ? createKeyFile(path) : undefined);
    } catch (err) {
      if (err instanceof AttestationError) throw err;
      throw unavailable('cannot read or create the key file', err);
    }
    if (read === undefined) throw unavailable('the key file disappeared while in use; restore it, or restart to create a new platform');
    return parseKeyFile(read.text, read.stamp);
  }

  /**
   * Rewrites the key file under the platform lock, from a fresh read of it: `change` returns the new
   * roots (or undefined: nothing to write). Atomic (temp, fsync, rename, fsync the directory).
   */
  #rewrite<T>(change: (file: PlatformState) => { roots: readonly SealingRoot[]; current: PlatformState['current']; result: T } | undefined): T | undefined {
    this.#load(); // creates the directory and a first key file if there is none
    const outcome = ioErrors('cannot rewrite the key file', () => withFileLock(`${this.keyPath}.lock`, () => {
      const file = this.#read(false);
      let next: ReturnType<typeof change>;
      try {
        next = change(file);
        if (next !== undefined) writeFileAtomic(this.keyPath, serializeKeyFile(file, next.roots, next.current));
        return next;
      } finally {
        forget(file);
        for (const root of next?.roots ?? []) root.secret?.fill(0); // a new root's secret: the re-read below has it
      }
    }));
    this.#load(true);
    return outcome?.result;
  }
}

/** Zeroes the sealing secrets of a state no longer in use (a revoked root's secret leaves memory too). */
function forget(state: PlatformState): void {
  for (const root of state.roots) root.secret?.fill(0);
}

function stampOf(st: { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint }): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

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
 * The stamp is the open file's, so it names exactly the bytes read.
 */
function readIfExists(path: string): { text: string; stamp: string } | undefined {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | (POSIX ? fsc.O_NOFOLLOW | fsc.O_NONBLOCK : 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new AttestationError('insecure_key_file', 'the platform key file is a symlink; replace it with the file itself');
    throw err;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile() || st.size > BigInt(MAX_KEY_FILE_BYTES)) throw unavailable('the key file is not a regular file of a few kilobytes');
    if (POSIX && Number(st.uid) !== process.getuid!()) {
      throw new AttestationError('insecure_key_file', 'the platform key file belongs to another user; remove it and let enclave create a new one');
    }
    if (POSIX && (Number(st.mode) & 0o077) !== 0) throw new AttestationError('insecure_key_file');
    return { text: readFileSync(fd, 'utf8'), stamp: stampOf(st) };
  } finally {
    closeSync(fd);
  }
}

/** Far above a real key file (256 roots are ~30 KB); bounds what a planted or corrupted file can make us read. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/**
 * Creates the key file atomically: write a private temp file, fsync it, then link it into place
 * (fails if another process won) and fsync the directory. A new platform's file is version 1, which
 * older releases read too; the first rotation or revocation makes it version 2.
 */
function createKeyFile(path: string): { text: string; stamp: string } {
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
  const tmp = tempPathFor(path);
  writeNewFileDurably(tmp, text);
  try {
    linkSync(tmp, path);
    fsyncDirectory(dirname(path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // another process created it first: use theirs
  } finally {
    unlinkSync(tmp);
  }
  return readIfExists(path)!;
}

function serializeKeyFile(file: PlatformState, roots: readonly SealingRoot[], current: SealingRoot): string {
  return `${JSON.stringify({
    version: 2,
    platform: 'software',
    attestationKey: privateKeyToJwk(file.attestationKey),
    sealingRoots: roots.map((r) =>
      r.secret === undefined
        ? { id: r.id, createdAt: r.createdAt, state: 'revoked' }
        : { id: r.id, secret: toBase64url(r.secret), createdAt: r.createdAt, state: 'active' },
    ),
    currentRoot: current.id,
    createdAt: file.createdAt,
  })}\n`;
}

/** An ISO 8601 time as the file holds it: a short string (it is printed by `enclave keys list`). */
function timeText(value: unknown, what: string): string {
  if (typeof value !== 'string' || !/^[0-9T:.+Z-]{1,40}$/.test(value)) throw unavailable(`${what} is malformed`);
  return value;
}

function parseRoots(json: Record<string, unknown>): { roots: SealingRoot[]; current: PlatformState['current'] } {
  if (json.version === 1) {
    const secret = fromBase64url(json.sealingSecret);
    if (!secret || secret.length !== 32) throw unavailable('the sealing secret is malformed');
    const root = { id: 1, state: 'active' as const, secret, createdAt: timeText(json.createdAt, 'createdAt') };
    return { roots: [root], current: root };
  }
  const list = json.sealingRoots;
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_SEALING_ROOTS) throw unavailable('sealingRoots is not a list of 1..256 roots');
  const roots: SealingRoot[] = [];
  for (const entry of list as unknown[]) {
    if (!isPlainObject(entry)) throw unavailable('a sealing root is malformed');
    const { id, state } = entry;
    const previous = roots.length === 0 ? 0 : roots[roots.length - 1]!.id;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= previous || id > MAX_SEALING_ROOT_ID) {
      throw unavailable('the sealing root ids are not increasing integers 1..2^31-1');
    }
    const createdAt = timeText(entry.createdAt, `sealing root ${id}'s createdAt`);
    if (state === 'active') {
      const secret = fromBase64url(entry.secret);
      if (!secret || secret.length !== 32) throw unavailable(`sealing root ${id}'s secret is malformed`);
      roots.push({ id, state, secret, createdAt });
    } else if (state === 'revoked') {
      if (entry.secret !== undefined) throw unavailable(`sealing root ${id} is revoked but keeps a secret`);
      roots.push({ id, state, secret: undefined, createdAt });
    } else {
      throw unavailable(`sealing root ${id}'s state is neither active nor revoked`);
    }
  }
  const current = roots.find((r) => r.id === json.currentRoot);
  if (current === undefined || current.secret === undefined) throw unavailable('currentRoot is not an active sealing root');
  return { roots, current: current as PlatformState['current'] };
}

function parseKeyFile(text: string, stamp: string): PlatformState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw unavailable('the key file is not JSON', err);
  }
  if (!isPlainObject(json) || (json.version !== 1 && !(json.version === 2 && json.platform === 'software'))) {
    throw unavailable('the key file has an unknown format');
  }
  let attestationKey: SigningKeyPair;
  try {
    attestationKey = parsePrivateKey(json.attestationKey as never);
  } catch (err) {
    throw unavailable('the attestation key is malformed', err);
  }
  const { roots, current } = parseRoots(json);
  const x = toBase64url(attestationKey.publicKey);
  const jwk: PlatformPublicJwk = { kty: 'OKP', crv: 'Ed25519', x, kid: jwkThumbprint(attestationKey.publicKey), alg: 'EdDSA', use: 'sig' };
  return Object.freeze({
    attestationKey,
    jwk: Object.freeze(jwk),
    roots: Object.freeze(roots.map((r) => Object.freeze(r))),
    current,
    createdAt: timeText(json.createdAt, 'createdAt'),
    stamp,
  });
}
