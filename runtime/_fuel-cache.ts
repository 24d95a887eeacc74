/**
 * Cache of instrumented modules (runtime/fuel.ts), so a warm start does not pay for binaryen.
 *
 * Keyed by the SHA-256 of the exact original bytes (unlike the measurement, it covers the signature
 * section), {@link INSTRUMENTER_VERSION} and the fingerprint of the instrumenter that made the bytes
 * ({@link instrumenterFingerprint}: its whole import closure and binaryen's version): an entry is
 * served only to the same instrumenter, from memory as from disk (a disk entry records it in its
 * manifest; its file name keeps the measurement and version only). Two levels: an
 * in-memory map (which also merges concurrent compiles of the same module) and a directory on disk.
 * A disk entry is never trusted as read: it carries the SHA-256 of its contents and the hash of the
 * module it was made from, and any mismatch (truncation, bit rot, a file renamed to another key)
 * makes it ignored and rebuilt. Entries are written atomically (exclusive temporary file, then rename).
 *
 * The directory holds code the runtime will run, so it must be as trusted as `node_modules`: it is
 * used only when no other user can have written it, checked on every component of its real path
 * (runtime/_disk-cache.ts `trustedDir`, shared with the transpile cache of components), and each
 * entry only when it is a regular file of ours that others cannot write. Otherwise the disk cache
 * is not used (one process warning); loading never fails because of it (docs/LIMITS.md, "Fuel";
 * docs/THREAT-MODEL.md, "Fuel cache").
 *
 * File layout: `ENCFUEL1` | sha256(rest) (32 B) | u32 LE manifest length | manifest JSON | bytes.
 * The hash is not a MAC (anyone who can write the file can recompute it): it catches accidents
 * (truncation, bit rot); what keeps planted code out is that no one else can write the directory.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { INSTRUMENTER_VERSION, type FuelManifest, type Instrumented } from './fuel.js';
import { closureFingerprint } from './_instrument-closure.js';
import { instrumentOffThread, instrumenterEntry } from './_instrument-worker.js';
import { openEntry, pruneDir, readOwnedFile, sealEntry, trustedDir, writeAtomic } from './_disk-cache.js';


const MAGIC = new TextEncoder().encode('ENCFUEL1');
/** In-memory entries kept; the oldest is dropped first. */
const MEMORY_ENTRIES = 64;
/** Disk entries kept; beyond it the least recently written are deleted after a write. */
export const DISK_ENTRIES = 256;
/** At most this many bytes of entries on disk (an instrumented 2 MiB module can reach ~16 MiB). */
export const DISK_BYTES = 256 * 1024 * 1024;
const ENTRY_RE = /^[0-9a-f]{64}-fuel-v\d+\.bin$/;
const TMP_RE = /^[0-9a-f]{64}-fuel-v\d+\.bin\.\d+\.[0-9a-f]{12}\.tmp$/;

const memory = new Map<string, Promise<Instrumented>>();
/** Bytes of each settled in-memory entry, and their sum. */
const memorySizes = new Map<string, number>();
let memoryBytes = 0;

/**
 * Bytes of instrumented code the in-memory entries may hold together, the oldest dropped first:
 * instrumenting multiplies a module's size up to about 8 (a charge per loop), so 64 of the
 * largest admitted modules would otherwise keep about 1 GiB in the host after their enclaves are gone.
 */
let memoryBudget = 64 * 1024 * 1024;

/** @internal Bytes of instrumented code the in-memory entries hold now, and their bound (set by tests). */
export function fuelMemoryCacheBytes(budget?: number): { held: number; budget: number } {
  if (budget !== undefined) memoryBudget = budget;
  return { held: memoryBytes, budget: memoryBudget };
}

/** Drops one in-memory entry. */
function forget(key: string): void {
  memory.delete(key);
  memoryBytes -= memorySizes.get(key) ?? 0;
  memorySizes.delete(key);
}

let fingerprint: string | null | undefined;
/** The entry whose closure is fingerprinted: the instrumentation worker's, unless a test moved it. */
let fingerprintEntry: URL | undefined;

/**
 * @internal The instrumenter's own identity: SHA-256 (first 16 hex digits) of the code that makes
 * an entry: every file the instrumentation worker's entry (runtime/_instrument-main) imports,
 * followed at run time (runtime/_instrument-closure.ts: runtime/fuel, the core Wasm reader, the
 * errors, wherever they live), and the package.json of each package they import (binaryen's
 * version). An entry records it and is served only to the same instrumenter.
 * {@link INSTRUMENTER_VERSION} alone depends on someone remembering to bump it, and a stale entry
 * would skip what the instrumenter enforces now (the feature gate, the charges). `undefined` (no
 * disk cache) if the files cannot be read.
 */
export function instrumenterFingerprint(): string | undefined {
  if (fingerprint !== undefined) return fingerprint ?? undefined;
  try {
    fingerprint = closureFingerprint(fileURLToPath(fingerprintEntry ?? instrumenterEntry()));
  } catch {
    fingerprint = null;
  }
  return fingerprint ?? undefined;
}

/**
 * @internal For tests: fingerprint the closure of another entry (a copy of the instrumenter with an
 * edit, standing for an edited instrumenter), or the real one again with no argument. Computed
 * afresh on the next use; the instrumenting itself is unchanged.
 */
export function setFingerprintEntry(entry?: URL): void {
  fingerprintEntry = entry;
  fingerprint = undefined;
}

/** Where instrumented bytes are cached: a directory, or `false` for memory only. */
export type FuelCacheDir = string | false;

/**
 * The default cache directory: `$ENCLAVE_CACHE_DIR` if set (`off` or empty disables the disk
 * cache), else `node_modules/.cache/enclave` under the working directory when `node_modules`
 * exists there, else the user's own cache: `$XDG_CACHE_HOME/enclave` (an absolute
 * `XDG_CACHE_HOME`, as the XDG Base Directory spec requires) or `~/.cache/enclave`, when the
 * home directory exists (a service user without one gets no disk cache). Whichever it is, it is
 * used only if it passes the ownership and mode checks of every load (see trustedDir).
 */
export function defaultCacheDir(): FuelCacheDir {
  const env = process.env.ENCLAVE_CACHE_DIR;
  if (env !== undefined) return env === '' || env === 'off' ? false : env;
  const nodeModules = join(process.cwd(), 'node_modules');
  if (existsSync(nodeModules)) return join(nodeModules, '.cache', 'enclave');
  const xdg = process.env.XDG_CACHE_HOME;
  if (xdg !== undefined && isAbsolute(xdg)) return join(xdg, 'enclave');
  let home: string;
  try {
    home = homedir();
  } catch {
    return false;
  }
  return home !== '' && isAbsolute(home) && existsSync(home) ? join(home, '.cache', 'enclave') : false;
}

/**
 * Instrumented bytes for a module, from the memory cache, the disk cache, or binaryen (in the
 * instrumentation worker, runtime/_instrument-worker.ts).
 * @param original the validated original bytes (not modified).
 * @param measurement SHA-256 hex of the exact bytes of `original` (not its measurement), the cache key.
 * @throws {EnclaveError} `invalid_module` from the instrumenter, `timeout` past its deadline; cache
 *   I/O errors are never thrown.
 */
export function instrumentCached(original: Uint8Array, measurement: string, dir: FuelCacheDir = defaultCacheDir()): Promise<Instrumented> {
  const key = `${measurement}-fuel-v${INSTRUMENTER_VERSION}`;
  // In memory, the instrumenter's fingerprint is part of the key: an entry made by another one is never a hit.
  const memoryKey = `${key}-${instrumenterFingerprint() ?? 'unknown'}`;
  const hit = memory.get(memoryKey);
  if (hit !== undefined) return hit;
  const pending = load(original, measurement, key, dir);
  memory.set(memoryKey, pending);
  pending.then(
    (result) => {
      if (memory.get(memoryKey) !== pending) return; // dropped meanwhile
      memorySizes.set(memoryKey, result.bytes.length);
      memoryBytes += result.bytes.length;
      // Oldest first; an entry larger than the whole budget is not kept either.
      for (const old of memory.keys()) {
        if (memoryBytes <= memoryBudget) break;
        if (memorySizes.has(old)) forget(old); // a pending entry holds no bytes yet
      }
    },
    () => {
      if (memory.get(memoryKey) === pending) forget(memoryKey);
    },
  );
  if (memory.size > MEMORY_ENTRIES) forget(memory.keys().next().value!);
  return pending;
}

/** Forgets the in-memory entries (tests, and callers measuring a cold start). */
export function clearFuelMemoryCache(): void {
  memory.clear();
  memorySizes.clear();
  memoryBytes = 0;
}

async function load(original: Uint8Array, measurement: string, key: string, dir: FuelCacheDir): Promise<Instrumented> {
  const safe = dir === false || instrumenterFingerprint() === undefined ? undefined : await trustedDir(dir);
  const file = safe === undefined ? undefined : join(safe, `${key}.bin`);
  if (file !== undefined) {
    const cached = await readEntry(file, measurement);
    if (cached !== undefined) return cached;
  }
  // Off the host thread, with a deadline (runtime/_instrument-worker.ts, issue 9 finding 4).
  const fresh = await instrumentOffThread(original);
  if (file !== undefined) await writeEntry(safe!, file, measurement, fresh);
  return fresh;
}

/**
 * Reads and verifies one entry; anything unexpected means a miss. The file is opened without
 * following a symlink, and the open file itself must be a regular file of ours (or root's) that
 * group and others cannot write: the checks hold for the bytes read, not for a name.
 */
export async function readEntry(file: string, measurement: string): Promise<Instrumented | undefined> {
  const raw = await readOwnedFile(file);
  const rest = raw === undefined ? undefined : openEntry(MAGIC, raw);
  if (rest === undefined || rest.length < 4) return undefined;
  const manifestLen = rest.readUInt32LE(0);
  if (4 + manifestLen > rest.length) return undefined;
  let manifest: FuelManifest & { measurement?: unknown; instrumenter?: unknown };
  try {
    manifest = JSON.parse(rest.subarray(4, 4 + manifestLen).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) return undefined;
  if (manifest.measurement !== measurement || manifest.version !== INSTRUMENTER_VERSION) return undefined;
  if (manifest.instrumenter !== instrumenterFingerprint()) return undefined;
  const { measurement: _m, instrumenter: _i, ...clean } = manifest;
  return { bytes: new Uint8Array(rest.subarray(4 + manifestLen)), manifest: Object.freeze(clean) };
}

async function writeEntry(dir: string, file: string, measurement: string, entry: Instrumented): Promise<void> {
  const manifest = Buffer.from(JSON.stringify({ ...entry.manifest, measurement, instrumenter: instrumenterFingerprint() }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(manifest.length, 0);
  if (!(await writeAtomic(file, sealEntry(MAGIC, Buffer.concat([len, manifest, entry.bytes]))))) return;
  await prune(dir).catch(() => undefined);
}

/**
 * Keeps the directory to {@link DISK_ENTRIES} entries and {@link DISK_BYTES} bytes, deleting the
 * least recently written first, and deletes temporary files a dead process left behind.
 * @internal exported for tests
 */
export async function prune(dir: string, limits: { entries: number; bytes: number } = { entries: DISK_ENTRIES, bytes: DISK_BYTES }): Promise<void> {
  await pruneDir(dir, ENTRY_RE, TMP_RE, limits);
}
