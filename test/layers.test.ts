/**
 * The layer check (`npm run check:layers`, test/check-layers.mjs with .dependency-cruiser.cjs) can
 * fail: run on a miniature of the layers, it passes the clean tree and names every rule a wrong
 * import breaks. `npm test` runs the check itself on the real tree before vitest.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLayers as check, writeLayerTree } from './helpers/layer-tree.js';

/** The layers in miniature, each importing what the architecture allows. */
const CLEAN: Record<string, string> = {
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true } }),
  'core/index.ts': "export const CORE = 1;\n",
  'attest/index.ts': "export { measure, createReport } from './measure.js';\nexport type { ModuleIdentity } from './measure.js';\n",
  'attest/measure.ts':
    "import { CORE } from '../core/index.js';\nexport interface ModuleIdentity { measurement: string }\n" +
    'export function measure(): number { return CORE; }\nexport function createReport(): number { return 2; }\n',
  'attest/_bytes.ts': "import { CORE } from '../core/index.js';\nexport const BYTES = CORE;\n",
  'runtime/index.ts': "export { run } from './run.js';\n",
  'runtime/run.ts':
    "import { CORE } from '../core/index.js';\nimport { measure, type ModuleIdentity } from '../attest/index.js';\n" +
    'export function run(id?: ModuleIdentity): number { return measure() + CORE + (id ? 1 : 0); }\n',
  'host/index.ts': "export { run } from '../runtime/index.js';\nexport { measure } from '../attest/index.js';\n",
  'bench/run.ts': "import { run } from '../host/index.js';\nrun();\n",
};

/** Wrong imports, one per rule: the file and the line added to it (or the new file). */
const WRONG: Record<string, [file: string, line: string]> = {
  'core-imports-nothing-ours': ['core/index.ts', "import '../attest/index.js';"],
  'attest-imports-only-core': ['attest/measure.ts', "import '../runtime/index.js';"],
  'runtime-imports-only-core-and-attest': ['runtime/run.ts', "import type { run as r } from '../host/index.js';"],
  'host-imports-no-bench': ['host/index.ts', "import '../bench/run.js';"],
  'only-through-index': ['bench/run.ts', "import { BYTES } from '../attest/_bytes.js';\nconsole.log(BYTES);"],
  'no-circular': ['attest/_bytes.ts', "import './measure.js';"],
  'no-unresolvable': ['runtime/index.ts', "import './gone.js';"],
  'no-orphans': ['attest/dead.ts', 'export const DEAD = 1;'],
  'runtime-imports-attest-for-measurement-only': ['runtime/run.ts', "import { createReport } from '../attest/index.js';\ncreateReport();"],
};

let dir: string;

/** A miniature named `name` under this run's folder. */
function tree(name: string, files: Record<string, string>): Promise<string> {
  return writeLayerTree(path.join(dir, name), files);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'enclave-layers-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the layer check', () => {
  it('passes the layers importing as the architecture allows', async () => {
    const r = await check(await tree('clean', CLEAN));
    expect(r.out).toMatch(/check:layers: ok/);
    expect(r.code).toBe(0);
  });

  it('fails on each wrong import, naming its rule and the import', async () => {
    const files = { ...CLEAN };
    for (const [file, line] of Object.values(WRONG)) files[file] = files[file] === undefined ? line : `${line}\n${files[file]}`;
    const r = await check(await tree('wrong', files));
    expect(r.code).toBe(1);
    for (const rule of Object.keys(WRONG)) expect(r.out, rule).toContain(`error ${rule}: `);
    expect(r.out).toContain('error attest-imports-only-core: attest/measure.ts → runtime/index.ts');
    expect(r.out).toContain('error only-through-index: bench/run.ts → attest/_bytes.ts');
    expect(r.out).toMatch(/runtime-imports-attest-for-measurement-only: runtime\/run\.ts:1: createReport from attest\//);
    expect(r.out).toMatch(/check:layers: FAILED/);
  });
});
