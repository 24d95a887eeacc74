/** What the enclave suites share: the echo module and the worker-isolation probe. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EnclaveError } from '../core/index.js';
import { loadEnclave, type Enclave, type EnclaveOptions } from '../runtime/index.js';

/** The echo enclave's bytes (`npm run build` writes them). */
export async function echoBytes(root: string): Promise<Uint8Array> {
  const path = join(root, 'enclave-modules', 'echo', 'build', 'echo.wasm');
  try {
    return new Uint8Array(await readFile(path));
  } catch {
    throw new Error(`${path} is missing: run \`npm run build\` first`);
  }
}

/** A payload of `size` bytes, not all equal so nothing can shortcut it. */
export function payload(size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff);
}

/** Worker isolation, or why it is not there. */
export type WorkerMode =
  | { readonly ok: true; load(bytes: Uint8Array): Promise<Enclave> }
  | { readonly ok: false; readonly reason: string };

const WORKER_OPTIONS = { isolation: 'worker' } as unknown as EnclaveOptions;

/**
 * Finds out whether this runtime has worker isolation (`loadEnclave(src, { isolation: 'worker' })`).
 * A runtime that knows the option refuses an unknown value of it; one that does not know it
 * ignores it, and an enclave "in worker mode" would silently run in-process, so the probe asks
 * with a nonsense value first.
 */
export async function probeWorkerMode(bytes: Uint8Array): Promise<WorkerMode> {
  const unavailable = { ok: false, reason: 'worker mode: not available in this build (runtime/ has no `isolation` option)' } as const;
  try {
    const e = await loadEnclave(bytes, { isolation: 'no-such-isolation' } as unknown as EnclaveOptions);
    await closeEnclave(e);
    return unavailable;
  } catch (err) {
    if (!(err instanceof EnclaveError) || err.code !== 'invalid_options' || !/isolation/i.test(err.message)) return unavailable;
  }
  try {
    const e = await loadEnclave(bytes, WORKER_OPTIONS);
    await closeEnclave(e);
  } catch (err) {
    return { ok: false, reason: `worker mode: loading failed: ${(err as Error).message}` };
  }
  return { ok: true, load: (b) => loadEnclave(b, WORKER_OPTIONS) };
}

/** `close()`, awaited in case a worker-backed enclave returns a promise from it. */
export async function closeEnclave(e: Enclave): Promise<void> {
  await (e.close() as unknown);
}
