/**
 * Third-party peers (bench/peers/, their own package.json): installed and built on first use,
 * loaded with a dynamic `import()` of a path computed at run time and typed loosely here, so
 * they never enter the runtime's dependencies or its type check (tsconfig excludes bench/peers).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The Extism JS SDK driving an echo plugin built from AssemblyScript with @extism/as-pdk. */
export interface ExtismPeer {
  readonly version: string;
  echoWasm(): Promise<Uint8Array>;
  create(wasm: Uint8Array, runInWorker: boolean): Promise<{ echo(bytes: Uint8Array): Promise<Uint8Array>; close(): Promise<void> }>;
}

/** A peer, or why it is not there. */
export type Loaded<T> = { readonly ok: true; readonly peer: T } | { readonly ok: false; readonly reason: string };

const cache = new Map<string, Promise<Loaded<unknown>>>();

/** `npm install --prefix bench/peers` when node_modules is missing, then the Wasm build. */
function preparePeers(root: string, log: (line: string) => void): string | undefined {
  const dir = join(root, 'bench', 'peers');
  if (!existsSync(join(dir, 'package.json'))) return `${dir}/package.json is missing`;
  if (!existsSync(join(dir, 'node_modules'))) {
    log('peers: npm install --prefix bench/peers (first use)');
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const r = spawnSync(npm, ['install', '--prefix', dir, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
    if (r.status !== 0) return `npm install --prefix bench/peers failed (${r.error?.message ?? `exit ${r.status}`})`;
  }
  if (!existsSync(join(dir, 'build', 'echo.wasm'))) {
    log('peers: building the Extism echo plugin from AssemblyScript (bench/peers/setup.mjs)');
    const r = spawnSync(process.execPath, [join(dir, 'setup.mjs')], { stdio: ['ignore', 2, 2] });
    if (r.status !== 0) return `building bench/peers/src/echo.ts failed (${r.error?.message ?? `exit ${r.status}`})`;
  }
  return undefined;
}

/**
 * Loads the Extism peer once per process. Never throws: a peer that cannot be installed, built
 * or loaded comes back as `{ ok: false, reason }` for the report.
 */
export function loadExtism(root: string, log: (line: string) => void): Promise<Loaded<ExtismPeer>> {
  let loaded = cache.get('extism');
  if (loaded === undefined) {
    loaded = (async (): Promise<Loaded<unknown>> => {
      const why = preparePeers(root, log);
      if (why !== undefined) return { ok: false, reason: why };
      try {
        const href = pathToFileURL(join(root, 'bench', 'peers', 'extism.mjs')).href;
        return { ok: true, peer: (await import(href)) as unknown };
      } catch (err) {
        return { ok: false, reason: `loading @extism/extism failed: ${(err as Error).message}` };
      }
    })();
    cache.set('extism', loaded);
  }
  return loaded as Promise<Loaded<ExtismPeer>>;
}
