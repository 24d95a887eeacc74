/**
 * The sealed-blob test enclave (test/fixtures/sealer/index.ts), built the way `enclave build`
 * builds a module (like test/helpers/supervised.ts builds test/fixtures/supervised), and the
 * TypeScript REFERENCE of the blob format (docs/SEALING.md), written from the spec, independently of
 * enclave-modules/sdk/sealed.ts: the oracle the tests check the enclave's blobs against.
 *
 * Ops of the fixture (policy 0 measurement, 1 signer):
 *   seal   {plaintext: bin, aad: bin, policy: int, counter_id?: int} → {blob, policy, key_id, svn, counter_id, counter, pending, stale}
 *   unseal {blob: bin, aad: bin, max?: int}  → {plaintext, ...the same fields}
 *   commit {blob: bin}                       → nil
 *   reseal {blob: bin, aad: bin, max?: int}  → {blob, ...}
 *   variant                                  → 0 or 1 (which build)
 * Failures are the enclave's error codes: unseal_failed, rollback, conflict, limit, state, ...
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import {
  deriveSealingKey, generateKeyPair, signModule, SoftwareAttestationProvider,
  type ModuleIdentity, type SealingPolicy, type SigningKeyPair, type TrustPolicy,
} from '../../attest/index.js';
import { loadEnclave, type EnclaveHandle } from '../../host/index.js';
import { buildFixture } from './fixture-build.js';

/** The fixture's entry, relative to the repository root. */
export const SEALER_ENTRY = 'test/fixtures/sealer/index.ts';

/** Options of {@link sealerModule}. */
export interface SealerOptions {
  /** The contract's `version` (default '1.0.0'). */
  version?: string;
  /** The contract's `svn` (default 1). */
  svn?: number;
  /** Build the variant (other bytes, another measurement, the same behaviour). */
  variant?: boolean;
  /** The contract's `name` (default 'sealer'); the signer policy binds it. */
  name?: string;
}

/** The fixture's contract for these options. */
export function sealerContract(opts: SealerOptions = {}): Record<string, unknown> {
  const bin = (max: number) => ({ type: 'bin', maxLength: max });
  return {
    abi: 1,
    name: opts.name ?? 'sealer',
    version: opts.version ?? '1.0.0',
    svn: opts.svn ?? 1,
    capabilities: ['random', 'seal', 'counter'],
    limits: { requestBytes: 1 << 20, replyBytes: 1 << 20, depth: 8, memoryPages: 64, fuel: 2_000_000_000 },
    ops: {
      // counter_id: any (a u64 above 2^63 arrives as msgpack uint 64); max: the caller's bound, any int
      // (negative ones too: the SDK clamps).
      seal: { args: { type: 'map', fields: { plaintext: bin(600_000), aad: bin(4096), policy: { type: 'int', min: 0, max: 1 }, counter_id: { type: 'any' } }, required: ['plaintext', 'aad', 'policy'] } },
      unseal: { args: { type: 'map', fields: { blob: bin(600_100), aad: bin(4096), max: { type: 'int' } }, required: ['blob', 'aad'] } },
      commit: { args: { type: 'map', fields: { blob: bin(600_100) } } },
      reseal: { args: { type: 'map', fields: { blob: bin(600_100), aad: bin(4096), max: { type: 'int' } }, required: ['blob', 'aad'] } },
      variant: { reply: { type: 'int' }, idempotent: true },
    },
  };
}

/**
 * The fixture module's bytes for these options (test/helpers/fixture-build.ts: cached in test/build/
 * by a hash of the sources, the args and the contract).
 * @throws {EnclaveError} `build_failed` if the fixture does not compile or fails the load check.
 * @example
 * const v1 = await sealerModule();
 * const v2 = await sealerModule({ svn: 2, variant: true });
 */
export async function sealerModule(opts: SealerOptions = {}): Promise<Uint8Array> {
  const args = opts.variant === true ? ['--use', 'SEALER_VARIANT=1'] : [];
  return buildFixture({ entry: SEALER_ENTRY, contract: sealerContract(opts), args, cacheName: 'sealer' });
}

// ---------------------------------------------------------------------------------------------
// The reference format (docs/SEALING.md §2-3), from the spec.

/** Header length, overhead, hard bound (docs/SEALING.md §2). */
export const HEADER = 60;
export const TAG = 16;
export const MAX_PLAINTEXT = 16 << 20;
export const MAGIC = Uint8Array.of(0x45, 0x4e, 0x43, 0x53);

/** The header fields of a blob. */
export interface SealedHeader {
  version: number;
  policy: number;
  flags: number;
  reserved: number;
  keyId: number;
  svn: number;
  counterId: bigint;
  counter: bigint;
  nonce: Uint8Array;
  length: number;
}

/**
 * The reference strict parse: the header, or the reason it is refused (any refusal is
 * `unseal_failed` from the enclave).
 * @example
 * const h = parseSealed(blob, 4096); if (typeof h === 'string') throw new Error(h);
 */
export function parseSealed(blob: Uint8Array, maxPlaintext = MAX_PLAINTEXT): SealedHeader | string {
  if (blob.length < HEADER + TAG) return 'short';
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const h: SealedHeader = {
    version: blob[4]!,
    policy: blob[5]!,
    flags: blob[6]!,
    reserved: blob[7]!,
    keyId: dv.getUint32(8, true),
    svn: dv.getUint32(12, true),
    counterId: dv.getBigUint64(16, true),
    counter: dv.getBigUint64(24, true),
    nonce: blob.slice(32, 56),
    length: dv.getUint32(56, true),
  };
  if (!MAGIC.every((b, i) => blob[i] === b)) return 'magic';
  if (h.version !== 1) return 'version';
  if (h.policy > 1) return 'policy';
  if ((h.flags & ~1) !== 0) return 'flags';
  if (h.reserved !== 0) return 'reserved';
  if (h.keyId === 0 || h.keyId > 0x7fffffff) return 'key id';
  if (h.policy === 0 ? h.svn !== 0 : h.svn > 0x7fffffff) return 'svn';
  if ((h.flags & 1) === 1 ? h.counterId === 0n || h.counter === 0n : h.counterId !== 0n || h.counter !== 0n) return 'counter fields';
  if (h.length > Math.min(Math.max(maxPlaintext, 0), MAX_PLAINTEXT)) return 'length bound';
  if (blob.length !== HEADER + h.length + TAG) return 'length mismatch';
  return h;
}

/** header[0,60) ‖ aad. */
function associatedData(blob: Uint8Array, aad: Uint8Array): Uint8Array {
  const ad = new Uint8Array(HEADER + aad.length);
  ad.set(blob.subarray(0, HEADER), 0);
  ad.set(aad, HEADER);
  return ad;
}

/**
 * The reference open: parse, then XChaCha20-Poly1305 with @noble/ciphers. `undefined` on any failure.
 * @example
 * expect(openSealed(blob, aad, key)).toEqual(plaintext);
 */
export function openSealed(blob: Uint8Array, aad: Uint8Array, key: Uint8Array): Uint8Array | undefined {
  const h = parseSealed(blob);
  if (typeof h === 'string') return undefined;
  try {
    return xchacha20poly1305(key, h.nonce, associatedData(blob, aad)).decrypt(blob.subarray(HEADER));
  } catch {
    return undefined;
  }
}

/** Fields of {@link buildSealed}; every header byte may be set to anything (hostile blobs). */
export interface BuildFields {
  key: Uint8Array;
  plaintext: Uint8Array;
  aad?: Uint8Array;
  policy?: number;
  keyId?: number;
  svn?: number;
  counterId?: bigint;
  counter?: bigint;
  flags?: number;
  version?: number;
  reserved?: number;
  magic?: Uint8Array;
  nonce?: Uint8Array;
  /** The length field (default: the plaintext's length). */
  length?: number;
}

/**
 * The reference seal: writes the header as given (defaults: a valid v1 blob) and encrypts with
 * @noble/ciphers over the header as written, so a header lie is authenticated and only the strict
 * parse can refuse it.
 * @example
 * const blob = buildSealed({ key, plaintext, aad, policy: 0, keyId: 1 });
 */
export function buildSealed(f: BuildFields): Uint8Array {
  const n = f.plaintext.length;
  const blob = new Uint8Array(HEADER + n + TAG);
  const dv = new DataView(blob.buffer);
  blob.set(f.magic ?? MAGIC, 0);
  blob[4] = f.version ?? 1;
  blob[5] = f.policy ?? 0;
  const versioned = f.counterId !== undefined && f.counterId !== 0n;
  blob[6] = f.flags ?? (versioned ? 1 : 0);
  blob[7] = f.reserved ?? 0;
  dv.setUint32(8, f.keyId ?? 1, true);
  dv.setUint32(12, f.svn ?? 0, true);
  dv.setBigUint64(16, f.counterId ?? 0n, true);
  dv.setBigUint64(24, f.counter ?? 0n, true);
  const nonce = f.nonce ?? crypto.getRandomValues(new Uint8Array(24));
  blob.set(nonce, 32);
  dv.setUint32(56, f.length ?? n, true);
  const sealed = xchacha20poly1305(f.key, nonce, associatedData(blob, f.aad ?? new Uint8Array(0))).encrypt(f.plaintext);
  blob.set(sealed, HEADER);
  return blob;
}

/** SHA-256 of the whole blob: the counter's tag once committed. */
export function blobDigest(blob: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(blob).digest());
}

/**
 * The 32-byte secret of sealing root `keyId` read from a software platform directory's key file
 * (version 1: `sealingSecret` is root 1; version 2: `sealingRoots`). Throws if absent (revoked).
 * @example
 * const secret = rootSecret(dir, 1);
 */
export function rootSecret(dir: string, keyId: number): Uint8Array {
  const file = JSON.parse(readFileSync(join(dir, 'platform-key.json'), 'utf8')) as {
    version: number;
    sealingSecret?: string;
    sealingRoots?: Array<{ id: number; secret?: string }>;
  };
  const b64 = file.version === 1 ? (keyId === 1 ? file.sealingSecret : undefined) : file.sealingRoots?.find((r) => r.id === keyId)?.secret;
  if (b64 === undefined) throw new Error(`no secret for sealing root ${keyId}`);
  return new Uint8Array(Buffer.from(b64, 'base64url'));
}

/**
 * The reference key of a blob: attest's deriveSealingKey from the platform's root secret.
 * @example
 * const key = referenceKey(dir, enclave.identity, 'signer', 1, 1);
 */
export function referenceKey(dir: string, identity: ModuleIdentity, policy: SealingPolicy, keyId: number, svn?: number): Uint8Array {
  return deriveSealingKey(rootSecret(dir, keyId), identity, policy, policy === 'signer' ? { svn: svn ?? identity.svn } : {});
}

// ---------------------------------------------------------------------------------------------
// A test platform and the fixture loaded on it.

/** A fresh software platform in a temporary directory, a signing key the loads trust, and a loader. */
export interface SealerRig {
  /** The platform directory (its key file holds the sealing roots the oracle reads). */
  readonly dir: string;
  readonly provider: SoftwareAttestationProvider;
  /** The key the fixture builds are signed with (trusted by {@link SealerRig.load}). */
  readonly signer: SigningKeyPair;
  /** `module` signed with {@link SealerRig.signer}. */
  sign(module: Uint8Array, key?: SigningKeyPair): Uint8Array;
  /**
   * Loads `bytes` in process with capabilities random, seal and counter on this platform, trusting
   * the rig's signer (`trust: null`: no trust check, so no signer: the signer policy is unavailable).
   */
  load(bytes: Uint8Array, options?: { trust?: TrustPolicy | null; provider?: SoftwareAttestationProvider; isolation?: 'in-process' | 'worker' }): Promise<EnclaveHandle>;
}

/**
 * A rig on a new temporary platform directory.
 * @example
 * const rig = await sealerRig();
 * const enclave = await rig.load(rig.sign(await sealerModule()));
 */
export async function sealerRig(): Promise<SealerRig> {
  const dir = await mkdtemp(join(tmpdir(), 'enclave-sealed-'));
  const provider = new SoftwareAttestationProvider({ dir }).open();
  const signer = generateKeyPair();
  const trust: TrustPolicy = { trusted: [{ publicKey: signer.publicKey }] };
  return {
    dir,
    provider,
    signer,
    sign: (module, key = signer) => signModule(module, key),
    load: (bytes, options = {}) =>
      loadEnclave(bytes, {
        isolation: options.isolation ?? 'in-process',
        capabilities: ['random', 'seal', 'counter'],
        attestation: options.provider ?? provider,
        policy: { fuel: 2_000_000_000 },
        ...(options.trust === null ? {} : { trust: options.trust ?? trust }),
      }),
  };
}

/** The fields every op of the fixture answers besides the bytes. */
export interface SealedInfo {
  policy: number;
  key_id: number;
  svn: number;
  counter_id: number | bigint;
  counter: number | bigint;
  pending: boolean;
  stale: boolean;
}

/**
 * Typed calls of the fixture's ops.
 * @example
 * const { blob } = await ops(enclave).seal(pt, aad, 1);
 */
export function sealerOps(enclave: EnclaveHandle) {
  const bytes = (v: unknown) => new Uint8Array(v as Uint8Array);
  return {
    seal: async (plaintext: Uint8Array, aad: Uint8Array, policy: 0 | 1, counterId?: number | bigint) => {
      const r = (await enclave.call('seal', { plaintext, aad, policy, ...(counterId === undefined ? {} : { counter_id: counterId }) })) as SealedInfo & { blob: Uint8Array };
      return { ...r, blob: bytes(r.blob) };
    },
    unseal: async (blob: Uint8Array, aad: Uint8Array, max?: number) => {
      const r = (await enclave.call('unseal', { blob, aad, ...(max === undefined ? {} : { max }) })) as SealedInfo & { plaintext: Uint8Array };
      return { ...r, plaintext: bytes(r.plaintext) };
    },
    commit: async (blob: Uint8Array) => enclave.call('commit', { blob }),
    reseal: async (blob: Uint8Array, aad: Uint8Array, max?: number) => {
      const r = (await enclave.call('reseal', { blob, aad, ...(max === undefined ? {} : { max }) })) as SealedInfo & { blob: Uint8Array };
      return { ...r, blob: bytes(r.blob) };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The fixture instantiated bare, on a platform simulated here, so a test can read its linear
// memory after a call (what the runtime never shows): are sealing keys and refused plaintexts gone?

/** A bare instance of the fixture and the keys its simulated platform handed out. */
export interface BareSealer {
  /** One call: the decoded `{ok}` or `{err}` envelope. */
  call(op: string, args: Record<string, unknown>): { ok?: Record<string, unknown> | null; err?: { code: string } };
  /** A copy of the instance's whole linear memory now. */
  memory(): Uint8Array;
  /** Every key `seal_key_at` wrote into the instance so far. */
  readonly keysHandedOut: Uint8Array[];
}

/**
 * Instantiates `bytes` with the `enclave` imports answered in TypeScript: root 1 (`secret`), keys
 * from attest's deriveSealingKey for `identity`, counters in a Map.
 * @example
 * const bare = await bareSealer(await sealerModule(), identity, secret);
 */
export async function bareSealer(bytes: Uint8Array, identity: ModuleIdentity, secret: Uint8Array): Promise<BareSealer> {
  const { Packr, Unpackr } = await import('msgpackr');
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });
  const counters = new Map<string, { value: bigint; tag: Uint8Array }>();
  const keysHandedOut: Uint8Array[] = [];
  let memory!: WebAssembly.Memory;
  const u8 = () => new Uint8Array(memory.buffer);
  const enclave = {
    abort(p: number, n: number) {
      throw new Error(`abort: ${new TextDecoder().decode(u8().slice(p, p + n))}`);
    },
    random(p: number, n: number) {
      crypto.getRandomValues(u8().subarray(p, p + n));
      return 0;
    },
    seal_key_at(policy: number, keyId: number, svn: number, out: number) {
      if (keyId !== 0 && keyId !== 1) return -4;
      if (policy === 0 ? svn !== -1 : svn < -1 || svn > identity.svn) return -5;
      const used = policy === 1 ? (svn === -1 ? identity.svn : svn) : 0;
      const key = deriveSealingKey(secret, identity, policy === 0 ? 'measurement' : 'signer', policy === 1 ? { svn: used } : {});
      keysHandedOut.push(key.slice());
      u8().set(key, out);
      const dv = new DataView(memory.buffer);
      dv.setUint32(out + 32, 1, true);
      dv.setUint32(out + 36, used, true);
      return 0;
    },
    counter_read(policy: number, id: bigint, out: number) {
      const c = counters.get(`${policy}/${BigInt.asUintN(64, id)}`) ?? { value: 0n, tag: new Uint8Array(32) };
      new DataView(memory.buffer).setBigUint64(out, c.value, true);
      u8().set(c.tag, out + 8);
      return 0;
    },
    counter_advance(policy: number, id: bigint, expected: bigint, tag: number) {
      const k = `${policy}/${BigInt.asUintN(64, id)}`;
      const c = counters.get(k) ?? { value: 0n, tag: new Uint8Array(32) };
      if (c.value !== BigInt.asUintN(64, expected)) return -4;
      counters.set(k, { value: c.value + 1n, tag: u8().slice(tag, tag + 32) });
      return 0;
    },
  };
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(bytes), { enclave });
  const ex = instance.exports as { memory: WebAssembly.Memory; enclave_alloc(n: number): number; enclave_call(p: number, n: number): number };
  memory = ex.memory;
  return {
    keysHandedOut,
    memory: () => u8().slice(),
    call(op, args) {
      const req = packr.pack({ op, args });
      const p = ex.enclave_alloc(req.length);
      u8().set(req, p);
      const d = ex.enclave_call(p, req.length);
      const dv = new DataView(memory.buffer);
      const ptr = dv.getUint32(d, true);
      const len = dv.getUint32(d + 4, true);
      return unpackr.unpack(u8().slice(ptr, ptr + len)) as ReturnType<BareSealer['call']>;
    },
  };
}

/** Whether `needle` occurs anywhere in `haystack`. */
export function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(Buffer.from(needle)) !== -1;
}
