import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface PackageJson {
  type?: string;
  license?: string;
  files: string[];
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies: Record<string, string>;
}

async function json<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(new URL(file, `file://${ROOT}`), 'utf8')) as T;
}

// What a service imports: the package's own exports map, resolved as a dependency would be.
describe('package exports', () => {
  it('the root entry exposes the runtime API', async () => {
    const api = await import('enclave');
    for (const name of ['loadEnclave', 'compileEnclave', 'createWorkerEnclave', 'EnclaveError', 'AttestationError', 'verifyEvidence']) {
      expect(typeof (api as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('enclave/attest exposes the attestation layer documented in docs/ATTESTATION.md §11', async () => {
    const attest = await import('enclave/attest');
    for (const name of ['moduleIdentity', 'readSignatures', 'createReport', 'readPrivateKeyFile', 'writeKeyPair', 'deriveSealingKey', 'signerId']) {
      expect(typeof (attest as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it('enclave/modules/<name>.wasm names the bundled module <name> (enclave-modules/<name>/build/<name>.wasm)', () => {
    for (const name of ['echo', 'counter', 'crypto']) {
      expect(fileURLToPath(import.meta.resolve(`enclave/modules/${name}.wasm`))).toBe(`${ROOT}enclave-modules/${name}/build/${name}.wasm`);
    }
  });

  it('enclave/modules/ reaches nothing outside enclave-modules/ and nothing but .wasm', () => {
    for (const specifier of ['enclave/modules/../package.json.wasm', 'enclave/modules/%2e%2e.wasm', 'enclave/modules/./echo.wasm']) {
      expect(() => import.meta.resolve(specifier), specifier).toThrow(expect.objectContaining({ code: 'ERR_INVALID_MODULE_SPECIFIER' }));
    }
    for (const specifier of ['enclave/modules/echo', 'enclave/modules/echo.ts', 'enclave/enclave-modules/echo/build/echo.wasm', 'enclave/dist/host/index.js']) {
      expect(() => import.meta.resolve(specifier), specifier).toThrow(expect.objectContaining({ code: 'ERR_PACKAGE_PATH_NOT_EXPORTED' }));
    }
  });
});

describe('package.json', () => {
  it('is ESM only, MIT, and ships its LICENSE', async () => {
    const pkg = await json<PackageJson>('package.json');
    expect(pkg.type).toBe('module');
    expect(pkg.license).toBe('MIT');
    expect(pkg.files).toContain('LICENSE');
    expect(await readFile(new URL('LICENSE', `file://${ROOT}`), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) 2026 the enclave authors\n/);
  });

  it('the compiler is optional: a service that only runs enclaves can install without it (--omit=optional)', async () => {
    const pkg = await json<PackageJson>('package.json');
    expect(pkg.dependencies.assemblyscript).toBeUndefined();
    // Pinned exactly: the compiler is part of what makes a build reproducible.
    expect(pkg.optionalDependencies?.assemblyscript).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('binaryen is the version the compiler depends on, so an install holds one copy (93 MB), not two', async () => {
    const pkg = await json<PackageJson>('package.json');
    const asc = await json<PackageJson>('node_modules/assemblyscript/package.json');
    expect(pkg.optionalDependencies?.assemblyscript).toBe((await json<{ version: string }>('node_modules/assemblyscript/package.json')).version);
    expect(pkg.dependencies.binaryen).toBe(asc.dependencies.binaryen);
    const lock = await json<{ packages: Record<string, unknown> }>('package-lock.json');
    expect(Object.keys(lock.packages).filter((p) => p.endsWith('node_modules/binaryen'))).toEqual(['node_modules/binaryen']);
  });
});

describe('package-lock.json', () => {
  it('is in the form npm 10 (the npm of Node 20) writes, which npm 11 keeps: a fresh clone’s npm install leaves it unchanged', async () => {
    // npm 11 adds a `libc` field to platform packages and npm 10 removes it again, rewriting 135
    // lines of the lock in a new user's clone; a lock without them is left as is by both.
    // After changing dependencies with npm 11, rewrite the lock with `npx npm@10 install`.
    const text = await readFile(new URL('package-lock.json', `file://${ROOT}`), 'utf8');
    expect(JSON.parse(text).lockfileVersion).toBe(3);
    expect(text.match(/^ *"libc": \[/gm) ?? []).toEqual([]);
  });
});

// What `npm pack` would put in the package, listed without packing (--dry-run).
describe('package files', () => {
  let listed: Promise<string[]> | undefined;
  function packed(): Promise<string[]> {
    listed ??= promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 16 << 20 }).then(
      ({ stdout }) => (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path),
    );
    return listed;
  }

  it('ships the CLI, the API, the bundled modules, the guest SDK, the docs and the LICENSE', async () => {
    const files = await packed();
    for (const f of [
      'LICENSE', 'README.md', 'package.json', 'dist/host/cli/main.js', 'dist/host/index.js', 'dist/host/index.d.ts', 'dist/attest/index.js',
      'enclave-modules/echo/build/echo.wasm', 'enclave-modules/counter/build/counter.wasm', 'enclave-modules/crypto/build/crypto.wasm',
      'enclave-modules/vault/build/vault.wasm', 'enclave-modules/sdk/sealed.ts', 'docs/SEALING.md',
      'sdk/index.ts', 'sdk/exports.ts', 'sdk/crypto.ts', 'sdk/sealed.ts', 'enclave-modules/sdk/index.ts', 'enclave-modules/sdk/exports.ts', 'asconfig.json', 'docs/ABI.md', 'docs/SDK.md',
    ]) {
      expect(files, f).toContain(f);
    }
  }, 60_000);

  it('ships no tests, benchmarks, repository tooling or module sources other than the SDK', async () => {
    const files = await packed();
    expect(files.filter((f) => /^(test|bench|dist\/bench|\.ci|node_modules|reports)\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.startsWith('enclave-modules/') && !f.startsWith('enclave-modules/sdk/') && !/^enclave-modules\/([^/]+)\/build\/\1(\.component)?\.wasm$/.test(f))).toEqual([]);
  }, 60_000);
});

describe('source maps', () => {
  it('carry their sources (inlineSources): a debugger or --enable-source-maps reads the TypeScript from the package alone', async () => {
    for (const map of ['dist/host/index.js.map', 'dist/runtime/load.js.map', 'dist/host/cli/main.js.map']) {
      const parsed = await json<{ sources: string[]; sourcesContent?: (string | null)[] }>(map);
      expect(parsed.sourcesContent?.length, map).toBe(parsed.sources.length);
      expect(parsed.sourcesContent!.every((s) => typeof s === 'string' && s.length > 0), map).toBe(true);
    }
  });
});
