/**
 * Transpiling components (runtime/_component-glue.ts), cached. First version: in memory only.
 */
import type { FuelCacheDir } from './_fuel-cache.js';
import { transpileNow, type Transpiled } from './_component-glue.js';

const memory = new Map<string, Promise<Transpiled>>();

/**
 * The glue for a component, transpiled or from the cache.
 * @throws {EnclaveError} `invalid_module`, `internal` (runtime/_component-glue.ts).
 */
export function transpileCached(bytes: Uint8Array, hash: string, coreModules: readonly Uint8Array[], _dir: FuelCacheDir): Promise<Transpiled> {
  const hit = memory.get(hash);
  if (hit !== undefined) return hit;
  const pending = transpileNow(bytes, coreModules);
  memory.set(hash, pending);
  pending.catch(() => memory.delete(hash));
  return pending;
}
