/**
 * What the instrumenter is made of: the files the instrumentation worker's entry loads, found by
 * following its imports at run time, and the packages they import (their package.json, which
 * names the version). The fuel cache (runtime/_fuel-cache.ts) keys its entries by a hash of it,
 * so an edit anywhere in the instrumenter (runtime/fuel.ts, the core Wasm reader, binaryen's
 * version...) makes every entry it made before a miss, with nobody having to bump
 * INSTRUMENTER_VERSION or keep a list of files up to date (a moved or new import is followed).
 *
 * The scan reads `import ... from '...'`, `export ... from '...'`, `import '...'` and
 * `import('...')` with a literal specifier; `import type` and `export type` are skipped (erased
 * before run). Comments are not parsed: an import in an example is at worst one more input.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';

const IMPORT_RE =
  /(?:^|[;\s}])(?:import|export)(?!\s+type[\s{])\s*(?:[\w*${}\s,]*?\bfrom\s*)?['"]([^'"\n]+)['"]|\bimport\s*\(\s*['"]([^'"\n]+)['"]\s*\)/g;

/** The closure of an entry file: its files (absolute paths) and the bare packages they import. */
export interface ImportClosure {
  readonly files: readonly string[];
  readonly packages: readonly string[];
}

/** The relative and bare specifiers a source file imports at run time. */
function importSpecifiers(source: string): string[] {
  const out: string[] = [];
  for (const m of source.matchAll(IMPORT_RE)) out.push((m[1] ?? m[2])!);
  return out;
}

/** `@scope/name/sub` -> `@scope/name`; `name/sub` -> `name`. */
function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Follows the imports of `entry` (an absolute path) through every relative import.
 * A `.js` specifier resolves to the `.ts` file beside it when only that exists (the sources).
 * @throws {Error} when a relative import cannot be read (the caller then runs without a disk cache).
 */
export function importClosure(entry: string): ImportClosure {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [resolve(entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.') || spec.startsWith('/')) {
        let target = resolve(dirname(file), spec);
        if (!existsSync(target) && target.endsWith('.js') && existsSync(`${target.slice(0, -3)}.ts`)) target = `${target.slice(0, -3)}.ts`;
        todo.push(target);
      } else if (!isBuiltin(spec)) {
        packages.add(packageName(spec));
      }
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

/** The package.json of a package as this project resolves it, or `undefined`. */
function packageJson(name: string): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    return require.resolve(`${name}/package.json`);
  } catch {
    // A package whose `exports` hides package.json: walk up from its entry.
    try {
      let dir = dirname(require.resolve(name));
      while (dirname(dir) !== dir) {
        const candidate = join(dir, 'package.json');
        if (existsSync(candidate) && JSON.parse(readFileSync(candidate, 'utf8')).name === name) return candidate;
        dir = dirname(dir);
      }
    } catch {
      // unresolvable (a name in a comment, a package not installed): its name alone is hashed
    }
    return undefined;
  }
}

/**
 * SHA-256 (first 16 hex digits) of the closure of `entry`: each file's path relative to the
 * entry's parent directory and its bytes, then each package's name and package.json.
 * @throws {Error} when a file of the closure cannot be read.
 */
export function closureFingerprint(entry: string): string {
  const { files, packages } = importClosure(entry);
  const base = resolve(dirname(entry), '..');
  const h = createHash('sha256');
  for (const file of files) {
    h.update(relative(base, file).split(sep).join('/')).update('\0').update(readFileSync(file)).update('\0');
  }
  for (const name of packages) {
    const json = packageJson(name);
    h.update(name).update('\0').update(json === undefined ? '' : readFileSync(json)).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}
