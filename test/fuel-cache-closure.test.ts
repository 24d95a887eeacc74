/**
 * The fuel cache is keyed by what actually produced the bytes (issue 10): the fingerprint covers
 * the instrumenter's whole import closure, followed at run time from the instrumentation worker's
 * entry (runtime/_instrument-closure.ts), so a new or moved import cannot be forgotten; and an
 * edited instrumenter is never served an entry the previous one made, from memory or from disk.
 */
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closureFingerprint, importClosure } from '../runtime/_instrument-closure.js';
import { clearFuelMemoryCache, instrumentCached, instrumenterFingerprint, setFingerprintEntry } from '../runtime/_fuel-cache.js';
import { instrumenterEntry } from '../runtime/_instrument-worker.js';
import { INSTRUMENTER_VERSION, instrumentFuel } from '../runtime/fuel.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE_ENTRY = join(ROOT, 'runtime/_instrument-main.ts');
const DIST_ENTRY = fileURLToPath(instrumenterEntry());

/**
 * The import graph as the TypeScript compiler parses it (independent of the closure's scanner):
 * every import and re-export that is not type-only, and `import('...')` with a literal.
 */
function compilerClosure(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const specs: string[] = [];
    const visit = (node: ts.Node): void => {
      if (ts.isImportDeclaration(node) && !node.importClause?.isTypeOnly && ts.isStringLiteral(node.moduleSpecifier)) {
        specs.push(node.moduleSpecifier.text);
      } else if (ts.isExportDeclaration(node) && !node.isTypeOnly && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        specs.push(node.moduleSpecifier.text);
      } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && ts.isStringLiteral(node.arguments[0]!)) {
        specs.push((node.arguments[0] as ts.StringLiteral).text);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
    for (const spec of specs) {
      if (spec.startsWith('.')) {
        const js = resolve(dirname(file), spec);
        todo.push(file.endsWith('.ts') ? js.replace(/\.js$/, '.ts') : js);
      } else if (!spec.startsWith('node:')) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
  }
  return { files: [...files].sort(), packages: [...packages].sort() };
}

const rel = (base: string, files: readonly string[]) => files.map((f) => relative(base, f).replace(/\.(ts|js)$/, '')).sort();

describe('the instrumenter fingerprint covers its whole import closure', () => {
  it('the closure is the real import graph of the instrumentation worker (sources and dist alike)', () => {
    const scanned = importClosure(SOURCE_ENTRY);
    const parsed = compilerClosure(SOURCE_ENTRY);
    expect(scanned.files).toEqual(parsed.files);
    expect(scanned.packages).toEqual(parsed.packages);
    // What the worker really runs (dist/, built from these sources) has the same files.
    expect(rel(dirname(dirname(DIST_ENTRY)), importClosure(DIST_ENTRY).files)).toEqual(rel(ROOT, scanned.files));
  });

  it('includes fuel and the Wasm reader wherever they live, and binaryen', () => {
    const names = importClosure(DIST_ENTRY).files.map((f) => f.split(/[\\/]/).pop());
    for (const name of ['_instrument-main.js', 'fuel.js', 'wasm-sections.js']) expect(names).toContain(name);
    expect(importClosure(DIST_ENTRY).packages).toContain('binaryen');
  });

  it('is the fingerprint the cache uses, and changes when any file of the closure changes', () => {
    const base = dirname(dirname(DIST_ENTRY));
    const copy = mkdtempSync(join(tmpdir(), 'enclave-instrumenter-'));
    try {
      const files = importClosure(DIST_ENTRY).files;
      for (const f of files) {
        const to = join(copy, relative(base, f));
        mkdirSync(dirname(to), { recursive: true });
        copyFileSync(f, to);
      }
      const copiedEntry = join(copy, relative(base, DIST_ENTRY));
      // The same code elsewhere is the same instrumenter.
      expect(closureFingerprint(copiedEntry)).toBe(instrumenterFingerprint());
      const seen = new Set([closureFingerprint(copiedEntry)]);
      for (const f of files) {
        const to = join(copy, relative(base, f));
        const before = readFileSync(to);
        writeFileSync(to, Buffer.concat([before, Buffer.from('\n// edited\n')]));
        seen.add(closureFingerprint(copiedEntry));
        writeFileSync(to, before);
      }
      expect(seen.size).toBe(files.length + 1);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe('an edited instrumenter is never served a stale entry', () => {
  let work: string;
  /** A copy of the instrumenter's closure with one edit in the Wasm reader: another instrumenter. */
  let edited: URL;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'enclave-cache-closure-'));
    const base = dirname(dirname(DIST_ENTRY));
    for (const f of importClosure(DIST_ENTRY).files) {
      const to = join(work, 'instrumenter', relative(base, f));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(f, to);
      if (f.endsWith('wasm-sections.js')) writeFileSync(to, Buffer.concat([readFileSync(f), Buffer.from('\n// edited\n')]));
    }
    edited = pathToFileURL(join(work, 'instrumenter', relative(base, DIST_ENTRY)));
  });
  afterEach(() => {
    setFingerprintEntry();
    clearFuelMemoryCache();
  });
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  const measurementOf = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  it('from memory: the entry of the previous instrumenter is not a hit', async () => {
    clearFuelMemoryCache();
    const bytes = await watModule(minimalWat({ body: '(global (mut i32) (i32.const 1))' }), MINIMAL_CONTRACT);
    const first = instrumentCached(bytes, measurementOf(bytes), false);
    expect(instrumentCached(bytes, measurementOf(bytes), false)).toBe(first); // same instrumenter: a hit
    const original = instrumenterFingerprint();
    setFingerprintEntry(edited);
    expect(instrumenterFingerprint()).not.toBe(original);
    const second = instrumentCached(bytes, measurementOf(bytes), false);
    expect(second).not.toBe(first);
    expect(await second).not.toBe(await first);
  });

  it('from disk: an entry the previous instrumenter wrote is not served', async () => {
    const dir = join(work, 'cache');
    mkdirSync(dir);
    chmodSync(dir, 0o700);
    const victim = await watModule(minimalWat({ body: '(global (mut i32) (i32.const 2))' }), MINIMAL_CONTRACT);
    const other = await watModule(minimalWat({ body: '(global (mut i32) (i32.const 3))' }), MINIMAL_CONTRACT);
    // An entry for `victim` holding other bytes (a marker), made by the current instrumenter.
    const marker = await instrumentFuel(other);
    const m = measurementOf(victim);
    const json = Buffer.from(JSON.stringify({ ...marker.manifest, measurement: m, instrumenter: instrumenterFingerprint() }), 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length, 0);
    const rest = Buffer.concat([len, json, marker.bytes]);
    const sha = createHash('sha256').update(rest).digest();
    writeFileSync(join(dir, `${m}-fuel-v${INSTRUMENTER_VERSION}.bin`), Buffer.concat([Buffer.from('ENCFUEL1'), sha, rest]), { mode: 0o600 });

    // The same instrumenter is served the entry (so the disk path works and the marker is valid)...
    clearFuelMemoryCache();
    expect(Buffer.from((await instrumentCached(victim, m, dir)).bytes).equals(Buffer.from(marker.bytes))).toBe(true);
    // ...an edited one never: it instruments afresh.
    setFingerprintEntry(edited);
    clearFuelMemoryCache();
    const fresh = await instrumentCached(victim, m, dir);
    const direct = await instrumentFuel(victim);
    expect(Buffer.from(fresh.bytes).equals(Buffer.from(marker.bytes))).toBe(false);
    expect(Buffer.from(fresh.bytes).equals(Buffer.from(direct.bytes))).toBe(true);
  });
});
