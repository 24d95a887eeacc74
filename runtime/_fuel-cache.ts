/**
 * Cache of instrumented modules (runtime/fuel.ts), so a warm start does not pay for binaryen.
 *
 * Keyed by the SHA-256 of the exact original bytes (unlike the measurement, it covers the signature
 * section) and {@link INSTRUMENTER_VERSION}. Two levels: an in-memory map (which also merges
 * concurrent compiles of the same module) and a directory on disk. A disk entry is never trusted
 * as read: it carries the SHA-256 of its contents and the hash of the module it was made from, and any mismatch (truncation, bit rot, a file renamed to another
 * key) makes it ignored and rebuilt. Entries are written atomically (temporary file, then rename).
 *
 * The directory holds code the runtime will run, so it must be as trusted as `node_modules`:
 * it is used only when owned by the current user and not writable by group or others
 * (docs/LIMITS.md, "Fuel"; docs/THREAT-MODEL.md).
 *
 * File layout: `ENCFUEL1` | sha256(rest) (32 B) | u32 LE manifest length | manifest JSON | bytes.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { INSTRUMENTER_VERSION, instrumentFuel, type FuelManifest, type Instrumented } from './fuel.js';

const MAGIC = new TextEncoder().encode('ENCFUEL1');
const HEADER = MAGIC.length + 32 + 4;
/** In-memory entries kept; the oldest is dropped first. */
const MEMORY_ENTRIES = 64;
/** Disk entries kept; beyond it the least recently written are deleted after a write. */
export const DISK_ENTRIES = 256;
const ENTRY_RE = /^[0-9a-f]{64}-fuel-v\d+\.bin$/;

const memory = new Map<string, Promise<Instrumented>>();

/** Where instrumented bytes are cached: a directory, or `false` for memory only. */
export type FuelCacheDir = string | false;

/**
 * The default cache directory: `$ENCLAVE_CACHE_DIR` if set (`off` or empty disables the disk
 * cache), else `node_modules/.cache/enclave` under the working directory when `node_modules`
 * exists there, else none.
 */
export function defaultCacheDir(): FuelCacheDir {
  const env = process.env.ENCLAVE_CACHE_DIR;
  if (env !== undefined) return env === '' || env === 'off' ? false : env;
  const nodeModules = join(process.cwd(), 'node_modules');
  return existsSync(nodeModules) ? join(nodeModules, '.cache', 'enclave') : false;
}

/**
 * Instrumented bytes for a module, from the memory cache, the disk cache, or binaryen.
 * @param original the validated original bytes (not modified).
 * @param measurement SHA-256 hex of the exact bytes of `original` (not its measurement), the cache key.
 * @throws {EnclaveError} `invalid_module` from the instrumenter; cache I/O errors are never thrown.
 */
export function instrumentCached(original: Uint8Array, measurement: string, dir: FuelCacheDir = defaultCacheDir()): Promise<Instrumented> {
  const key = `${measurement}-fuel-v${INSTRUMENTER_VERSION}`;
  const hit = memory.get(key);
  if (hit !== undefined) return hit;
  const pending = load(original, measurement, key, dir);
  memory.set(key, pending);
  pending.catch(() => memory.delete(key));
  if (memory.size > MEMORY_ENTRIES) memory.delete(memory.keys().next().value!);
  return pending;
}

/** Forgets the in-memory entries (tests, and callers measuring a cold start). */
export function clearFuelMemoryCache(): void {
  memory.clear();
}

async function load(original: Uint8Array, measurement: string, key: string, dir: FuelCacheDir): Promise<Instrumented> {
  const file = dir === false ? undefined : join(dir, `${key}.bin`);
  if (file !== undefined && (await trustedDir(dir as string))) {
    const cached = await readEntry(file, measurement);
    if (cached !== undefined) return cached;
  }
  const fresh = await instrumentFuel(original);
  if (file !== undefined) await writeEntry(dir as string, file, measurement, fresh);
  return fresh;
}

/** A cache directory is used only if it is ours and not writable by anyone else. */
async function trustedDir(dir: string): Promise<boolean> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) return false;
    if (process.platform === 'win32') return true;
    return (s.mode & 0o022) === 0 && (process.getuid === undefined || s.uid === process.getuid());
  } catch {
    return true; // absent: created with mode 0700 on write
  }
}

function digest(parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Reads and verifies one entry; anything unexpected means a miss. */
export async function readEntry(file: string, measurement: string): Promise<Instrumented | undefined> {
  let raw: Buffer;
  try {
    raw = await readFile(file);
  } catch {
    return undefined;
  }
  if (raw.length < HEADER || !MAGIC.every((b, i) => raw[i] === b)) return undefined;
  const stored = raw.subarray(MAGIC.length, MAGIC.length + 32);
  const rest = raw.subarray(MAGIC.length + 32);
  if (!timingSafeEqual(stored, digest([rest]))) return undefined;
  const manifestLen = rest.readUInt32LE(0);
  if (4 + manifestLen > rest.length) return undefined;
  let manifest: FuelManifest & { measurement?: unknown };
  try {
    manifest = JSON.parse(rest.subarray(4, 4 + manifestLen).toString('utf8'));
  } catch {
    return undefined;
  }
  if (manifest.measurement !== measurement || manifest.version !== INSTRUMENTER_VERSION) return undefined;
  const { measurement: _m, ...clean } = manifest;
  return { bytes: new Uint8Array(rest.subarray(4 + manifestLen)), manifest: Object.freeze(clean) };
}

async function writeEntry(dir: string, file: string, measurement: string, entry: Instrumented): Promise<void> {
  const manifest = Buffer.from(JSON.stringify({ ...entry.manifest, measurement }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(manifest.length, 0);
  const body = Buffer.concat([len, manifest, entry.bytes]);
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await ensureDir(dir);
    await writeFile(tmp, Buffer.concat([MAGIC, digest([body]), body]), { mode: 0o600 });
    await rename(tmp, file); // atomic on one file system: readers see the old entry or the new one
  } catch {
    // A read-only or full disk only costs the next start the instrumentation time.
    await unlink(tmp).catch(() => undefined);
    return;
  }
  await prune(dir).catch(() => undefined);
}

/**
 * Creates the directory and at most two missing parents (`node_modules/.cache/enclave`), never
 * with `recursive: true`: Node 20's recursive mkdir can spin forever on some paths (/proc).
 */
async function ensureDir(dir: string, depth = 0): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || depth >= 2) throw err;
    await ensureDir(dirname(dir), depth + 1);
    await mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

/** Keeps the directory to {@link DISK_ENTRIES} entries, deleting the least recently written. */
async function prune(dir: string): Promise<void> {
  const names = (await readdir(dir)).filter((n) => ENTRY_RE.test(n));
  if (names.length <= DISK_ENTRIES) return;
  const aged = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(dir, n))).mtimeMs })));
  aged.sort((a, b) => a.t - b.t);
  for (const { n } of aged.slice(0, aged.length - DISK_ENTRIES)) await unlink(join(dir, n)).catch(() => undefined);
}
