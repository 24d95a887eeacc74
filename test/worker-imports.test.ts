/**
 * What a worker thread loads at start: our files reached by the static imports of its entry. A
 * worker rebuilds a module from its parts and never measures it, so it must not load attest/ (and
 * with it jose and the platform: about +60 ms of CPU per worker start, paid again after every
 * timeout or crash). runtime/module.ts loads runtime/_identify.ts, the one importer of attest's
 * values, with `await import()` when it compiles. Reads dist/, which test/global-setup.ts builds.
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(new URL('..', import.meta.url).pathname);
const STATIC_IMPORT = /^(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]|^import\s+['"]([^'"]+)['"]/gm;

/** Our files the static imports of `entry` reach (package imports are left out), relative to dist/. */
function staticClosure(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [resolve(root, 'dist', entry)];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
    }
  }
  return [...seen].map((f) => relative(resolve(root, 'dist'), f)).sort();
}

describe('what a worker thread loads', () => {
  it('the enclave worker reaches runtime/ and core/ only, never attest/', () => {
    const files = staticClosure('runtime/_worker-main.js');
    expect(files).toContain('runtime/module.js'); // the walk follows imports at all
    expect(files.filter((f) => !f.startsWith('runtime/') && !f.startsWith('core/'))).toEqual([]);
  });

  it('the compile path still reaches attest/ (through the dynamic import of runtime/_identify.js)', () => {
    expect(readFileSync(resolve(root, 'dist/runtime/module.js'), 'utf8')).toContain("import('./_identify.js')");
    expect(staticClosure('runtime/_identify.js')).toContain('attest/index.js');
  });
});
