// The AssemblyScript compiler is loaded only when a build runs (host/build/compile.ts), and a
// missing compiler (an install without the optional dependency) is a clear `build_failed`.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { ROOT } from './helpers/raw-abi.js';

vi.mock('assemblyscript/asc', () => {
  throw new Error("Cannot find package 'assemblyscript' imported from host/build/compile.js");
});

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? sources(file) : file.endsWith('.ts') ? [file] : [];
  });
}

describe('the compiler, lazily', () => {
  it('no host/ file imports assemblyscript statically; the build imports it dynamically', () => {
    const importing = sources(path.join(ROOT, 'host')).filter((file) => readFileSync(file, 'utf8').includes("'assemblyscript"));
    expect(importing.map((f) => path.relative(ROOT, f))).toContain(path.join('host', 'build', 'compile.ts'));
    for (const file of importing) expect(readFileSync(file, 'utf8'), file).not.toMatch(/^\s*(import|export)\b[^;(]*from\s*'assemblyscript/m);
    expect(readFileSync(path.join(ROOT, 'host', 'build', 'compile.ts'), 'utf8')).toContain("await import('assemblyscript/asc')");
  });

  it('a missing compiler is build_failed saying to install assemblyscript, and loading the build code does not need it', async () => {
    const { buildModules } = await import('../host/build-modules.js');
    const { compileAssemblyScript } = await import('../host/build/compile.js');
    expect(typeof buildModules).toBe('function');
    // The version the package pins when it pins one exactly (one copy of binaryen), else any.
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const pinned = pkg.optionalDependencies?.assemblyscript ?? pkg.dependencies?.assemblyscript;
    const spec = /^\d+\.\d+\.\d+$/.test(pinned) ? `assemblyscript@${pinned}` : 'assemblyscript';
    await expect(compileAssemblyScript({ baseDir: ROOT, entry: 'enclave-modules/echo/index.ts' })).rejects.toMatchObject({
      code: 'build_failed',
      message: expect.stringContaining(`(npm install ${spec}).`),
    });
  });
});
