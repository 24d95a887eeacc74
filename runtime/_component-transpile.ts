/**
 * Components transpiled by jco (runtime/_component-glue.ts) off the host thread, with a deadline,
 * and cached so a warm start does not pay for it (issue 14, decision 4).
 *
 * THE CACHE HOLDS JAVASCRIPT THE RUNTIME WILL RUN (the glue, imported as a module and called at
 * every instantiation). It lives in the fuel cache's directory under the fuel cache's trust rules
 * (runtime/_disk-cache.ts): the directory is used only when no other user can have written it,
 * an entry only when it is a regular file of ours that others cannot write, opened without
 * following a link; an entry carries the SHA-256 of its contents and the hash of the component it
 * was made from, and any mismatch makes it ignored and rebuilt.
 *
 * Keyed by the SHA-256 of the exact component bytes and the transpiler's fingerprint: the import
 * closure of the transpile worker's entry (runtime/_transpile-main.ts: the glue checks and patches,
 * the gate, and jco-transpile's package.json, so its version), as the fuel cache keys by the
 * instrumenter's. Two levels: an in-memory map (which also merges concurrent compiles of the same
 * component), bounded by entries and bytes, and the directory on disk.
 *
 * ```
 *  transpileCached ─► memory ─► disk (trusted dir, own file, hash) ─► worker (jco, loaded once)
 *                       one job at a time; each job's deadline starts when the worker gets it
 *                       more than TRANSPILE_QUEUE waiting ─► `overloaded` at once
 *                       deadline passed ─► worker terminated, job fails with `timeout`
 * ```
 * (the queue and worker: runtime/_job-worker.ts, shared with the instrumenter)
 *
 * Disk layout: `<sha256>-jco-v1.bin`: `ENCJCO01` | sha256(rest) (32 B) | u32 LE manifest length |
 * manifest JSON `{hash, transpiler, modules}` | the glue (UTF-8).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnclaveError, MAX_CORE_MODULES } from '../core/index.js';
import { coreFileName, type Transpiled } from './_component-glue.js';
import { openEntry, pruneDir, readOwnedFile, sealEntry, trustedDir, writeAtomic } from './_disk-cache.js';
import type { FuelCacheDir } from './_fuel-cache.js';
import { closureFingerprint } from './_instrument-closure.js';
import type { TranspileRequest } from './_transpile-main.js';
import { JobWorker } from './_job-worker.js';

/** Wall-clock limit of one transpilation, from the moment the worker receives it. */
export const TRANSPILE_DEADLINE_MS = 30_000;
/** Components waiting behind the one being transpiled; past it a load fails at once with `overloaded`. */
export const TRANSPILE_QUEUE = 64;
/** An idle worker is stopped after this long (jco's compiler is ~6 MB of Wasm held while it lives). */
const IDLE_MS = 10_000;
/** The largest glue accepted from the worker or the disk (jco writes ~130 KB for the enclave world). */
const MAX_GLUE = 16 * 1024 * 1024;
/** In-memory entries kept, and the bytes of glue they may hold together; the oldest is dropped first. */
const MEMORY_ENTRIES = 64;
const MEMORY_BYTES = 32 * 1024 * 1024;
/** Disk entries kept, and their bytes; beyond them the least recently written are deleted. */
export const TRANSPILE_DISK_ENTRIES = 256;
export const TRANSPILE_DISK_BYTES = 64 * 1024 * 1024;

const MAGIC = new TextEncoder().encode('ENCJCO01');
const FORMAT = 1;
const ENTRY_RE = /^[0-9a-f]{64}-jco-v\d+\.bin$/;
const TMP_RE = /^[0-9a-f]{64}-jco-v\d+\.bin\.\d+\.[0-9a-f]{12}\.tmp$/;

// ---- the worker -------------------------------------------------------------------------------

/**
 * @internal Where the worker's entry is: next to this file, or in dist/ when this runs as
 * TypeScript (tests). What it imports is what makes a cache entry.
 */
export function transpilerEntry(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/runtime/_transpile-main.js', here) : new URL('./_transpile-main.js', here);
}

/**
 * The worker's JavaScript heap: jco's output for a component of the enclave world is a few hundred
 * KB; a component that makes it build far more ends the worker (`internal`), not the host.
 */
const WORKER_LIMITS = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32 };

const worker = new JobWorker<{ glue: string; modules: readonly string[] }>({
  entry: transpilerEntry,
  what: 'transpile',
  queue: TRANSPILE_QUEUE,
  idleMs: IDLE_MS,
  resourceLimits: WORKER_LIMITS,
  // The shape here (anything else stops the worker); the names against the job by transpileOffThread.
  readResult: ({ glue, modules }) =>
    typeof glue === 'string' && glue.length <= MAX_GLUE && Array.isArray(modules) && modules.length <= MAX_CORE_MODULES && modules.every((m) => typeof m === 'string')
      ? { glue, modules: [...(modules as string[])] }
      : undefined,
  timeout: (ms) => new EnclaveError('timeout', `The component was not transpiled within ${ms} ms: it is too complex to load.`),
  overloaded: () => new EnclaveError('overloaded', `${TRANSPILE_QUEUE} components are already waiting to be transpiled: retry the load later.`),
});

/**
 * Transpiles a component in the transpile worker (runtime/_job-worker.ts).
 * @param modules the number of core modules the gate read.
 * @throws {EnclaveError} what runtime/_component-glue.ts throws (`invalid_module`, `internal`);
 *   `timeout` past `deadlineMs`; `overloaded` when {@link TRANSPILE_QUEUE} components already wait;
 *   `internal` for a reply that is not a glue with exactly those modules' names.
 */
export async function transpileOffThread(bytes: Uint8Array, modules: number, deadlineMs: number = TRANSPILE_DEADLINE_MS): Promise<Transpiled> {
  const reply = await worker.run({ bytes } satisfies Omit<TranspileRequest, 'id'>, deadlineMs);
  const result = checkTranspiled(reply.glue, reply.modules, modules);
  if (result === undefined) throw new EnclaveError('internal', 'The transpile worker sent a glue that is not the component\'s.');
  return result;
}

/** A glue and its module names as this runtime expects them, frozen; undefined otherwise. */
function checkTranspiled(glue: unknown, modules: unknown, count: number): Transpiled | undefined {
  if (typeof glue !== 'string' || glue.length > MAX_GLUE || !Array.isArray(modules) || modules.length !== count) return undefined;
  if (!modules.every((name, i) => name === coreFileName(i))) return undefined;
  return Object.freeze({ glue, modules: Object.freeze([...(modules as string[])]) });
}

// ---- the cache --------------------------------------------------------------------------------

let fingerprint: string | null | undefined;

/**
 * @internal The transpiler's identity: SHA-256 (16 hex digits) of the transpile worker's import
 * closure (runtime/_instrument-closure.ts) with jco-transpile's package.json. `undefined` (no
 * disk cache) if the files cannot be read.
 */
export function transpilerFingerprint(): string | undefined {
  if (fingerprint === undefined) {
    try {
      fingerprint = closureFingerprint(fileURLToPath(transpilerEntry()));
    } catch {
      fingerprint = null;
    }
  }
  return fingerprint ?? undefined;
}

const memory = new Map<string, Promise<Transpiled>>();
const memorySizes = new Map<string, number>();
let memoryBytes = 0;

function forget(key: string): void {
  memory.delete(key);
  memoryBytes -= memorySizes.get(key) ?? 0;
  memorySizes.delete(key);
}

/** Forgets the in-memory entries (tests, and callers measuring a cold start). */
export function clearTranspileMemoryCache(): void {
  memory.clear();
  memorySizes.clear();
  memoryBytes = 0;
}

/**
 * The glue of a component: from memory, from the disk cache, or transpiled in the worker.
 * @param hash SHA-256 hex of the exact component bytes, the key.
 * @param coreModules the gate's core modules (their number checks the glue's).
 * @throws {EnclaveError} `invalid_module`, `internal`, `timeout`, `overloaded`; cache I/O errors are
 *   never thrown.
 */
export function transpileCached(bytes: Uint8Array, hash: string, coreModules: readonly Uint8Array[], dir: FuelCacheDir): Promise<Transpiled> {
  const key = `${hash}-${transpilerFingerprint() ?? 'unknown'}`;
  const hit = memory.get(key);
  if (hit !== undefined) return hit;
  const pending = load(bytes, hash, coreModules.length, dir);
  memory.set(key, pending);
  pending.then(
    (result) => {
      if (memory.get(key) !== pending) return; // dropped meanwhile
      memorySizes.set(key, result.glue.length);
      memoryBytes += result.glue.length;
      for (const old of memory.keys()) {
        if (memoryBytes <= MEMORY_BYTES) break;
        if (memorySizes.has(old)) forget(old); // a pending entry holds nothing yet
      }
    },
    () => {
      if (memory.get(key) === pending) forget(key);
    },
  );
  if (memory.size > MEMORY_ENTRIES) forget(memory.keys().next().value!);
  return pending;
}

async function load(bytes: Uint8Array, hash: string, modules: number, dir: FuelCacheDir): Promise<Transpiled> {
  const safe = dir === false || transpilerFingerprint() === undefined ? undefined : await trustedDir(dir);
  const file = safe === undefined ? undefined : join(safe, `${hash}-jco-v${FORMAT}.bin`);
  if (file !== undefined) {
    const cached = await readTranspiled(file, hash, modules);
    if (cached !== undefined) return cached;
  }
  const fresh = await transpileOffThread(bytes, modules);
  if (file !== undefined && (await writeAtomic(file, entryBytes(hash, fresh)))) {
    await pruneDir(safe!, ENTRY_RE, TMP_RE, { entries: TRANSPILE_DISK_ENTRIES, bytes: TRANSPILE_DISK_BYTES }).catch(() => undefined);
  }
  return fresh;
}

function entryBytes(hash: string, t: Transpiled): Buffer {
  const manifest = Buffer.from(JSON.stringify({ hash, transpiler: transpilerFingerprint(), modules: t.modules }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(manifest.length, 0);
  return sealEntry(MAGIC, Buffer.concat([len, manifest, Buffer.from(t.glue, 'utf8')]));
}

/**
 * @internal Reads and verifies one disk entry (exported for tests); anything unexpected is a miss:
 * another component's, another transpiler's, a module count other than the gate's, a hash that
 * does not match, a file not ours.
 */
export async function readTranspiled(file: string, hash: string, modules: number): Promise<Transpiled | undefined> {
  const raw = await readOwnedFile(file);
  const rest = raw === undefined ? undefined : openEntry(MAGIC, raw);
  if (rest === undefined || rest.length < 4) return undefined;
  const manifestLen = rest.readUInt32LE(0);
  if (4 + manifestLen > rest.length) return undefined;
  let manifest: { hash?: unknown; transpiler?: unknown; modules?: unknown };
  try {
    manifest = JSON.parse(rest.subarray(4, 4 + manifestLen).toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) return undefined;
  if (manifest.hash !== hash || manifest.transpiler !== transpilerFingerprint()) return undefined;
  let glue: string;
  try {
    glue = new TextDecoder('utf-8', { fatal: true }).decode(rest.subarray(4 + manifestLen));
  } catch {
    return undefined;
  }
  return checkTranspiled(glue, manifest.modules, modules);
}
