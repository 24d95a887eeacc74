/**
 * Packs the package once for the package suites (`npm run test:package`), as its user gets it:
 * `npm pack` of a copy of this checkout with a clean dist/ built by tsc. Each suite installs the
 * tarball (`inject('packageTarball')`) into an empty project of its own.
 *
 * A copy, because the dist/ of a long-lived work tree also holds the outputs of sources deleted
 * since, and npm pack would ship them. The copy has no dist/, so tsc builds it from the sources
 * alone. `npm pack --ignore-scripts`: the `prepare` script (`npm run build`) would also rebuild the
 * enclave modules; the builds of this checkout are what ships (the suites check that a module built
 * from the installed package is byte-identical to them).
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The packed package (absolute path of the .tgz). */
    packageTarball: string;
    /** The checkout it was packed from. */
    packageSource: string;
  }
}

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Top-level entries of the checkout not copied to build the package from (dist/ is rebuilt clean). */
const NOT_COPIED = new Set(['node_modules', 'dist', '.git', 'test', 'reports', '.stryker-tmp', 'bench-out', '.cache']);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = performance.now();
  const work = await mkdtemp(path.join(tmpdir(), 'enclave-pack-'));
  const src = path.join(work, 'src');
  await cp(ROOT, src, { recursive: true, filter: (from) => !NOT_COPIED.has(path.relative(ROOT, from)) && !from.endsWith('.tgz') });
  await symlink(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'), 'dir');
  await exec(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: src });
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
  const { stdout } = await exec('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: src, env, maxBuffer: 16 << 20 });
  const tarball = path.join(work, (JSON.parse(stdout) as { filename: string }[])[0]!.filename);
  project.provide('packageTarball', tarball);
  project.provide('packageSource', ROOT);
  console.info(`package-pack: ${path.basename(tarball)} packed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return async () => {
    await rm(work, { recursive: true, force: true });
  };
}
