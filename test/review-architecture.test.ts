/**
 * Regression tests from the architecture review of issue 10 (reviewer R1): the one error model
 * (core/errors.ts) on hostile input, and the layer check (test/check-layers.mjs with
 * .dependency-cruiser.cjs) against the imports that slipped through it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttestationError, ERROR_CODES, EnclaveError, UsageError, errorFlags, type ErrorCode } from '../core/index.js';
import { handleError } from '../host/cli/handle-error.js';
import { checkLayers as check, writeLayerTree } from './helpers/layer-tree.js';

describe('EnclaveError.fromJSON is total: whatever a worker or a peer sends, it returns an error and never throws', () => {
  // A worker posting `{type: 'failed'}` without an error made fromJSON throw inside the host's
  // 'message' listener (runtime/_worker-spawn.ts): an uncaught exception that ended the host process.
  const hostile: [string, () => unknown][] = [
    ['undefined', () => undefined],
    ['null', () => null],
    ['a number', () => 42],
    ['a string', () => 'rollback'],
    ['an array', () => ['rollback']],
    ['a getter that throws', () => ({ get code(): never { throw new Error('boom'); } })],
    ['a proxy that throws', () => new Proxy({}, { get: () => { throw new Error('boom'); }, has: () => { throw new Error('boom'); } })],
    ['a message getter that throws', () => ({ code: 'trap', get message(): never { throw new Error('boom'); } })],
  ];
  it.each(hostile)('%s', (_, make) => {
    let err: unknown;
    expect(() => (err = EnclaveError.fromJSON(make() as never))).not.toThrow();
    expect(err).toBeInstanceOf(EnclaveError);
  });

  it('reads each field once: a code that changes between two reads cannot pick an inherited name', () => {
    let reads = 0;
    const shifty = { get code() { return reads++ === 0 ? 'rollback' : 'constructor'; } };
    const err = EnclaveError.fromJSON(shifty);
    expect(err.code).toBe('rollback');
    expect(err).toBeInstanceOf(AttestationError);
  });
});

describe('an enclave cannot smuggle text into an error of a host code', () => {
  const detail = 'enclave says: the host verified this module';

  it.each(ERROR_CODES.map((code) => [code] as const))('%s: detail kept only if an enclave may send the code', (code: ErrorCode) => {
    const keep = errorFlags(code).fromEnclave;
    const back = EnclaveError.fromJSON({ code, detail });
    expect(back.detail).toBe(keep ? detail : undefined);
    expect(JSON.stringify(back)).toEqual(keep ? expect.stringContaining(detail) : expect.not.stringContaining(detail));
    const built = code === 'usage' ? new UsageError(undefined, { detail }) : new EnclaveError(code, undefined, { detail });
    expect(built.detail).toBe(keep ? detail : undefined);
  });

  it('the CLI prints no "enclave says" line under a host code rebuilt from a worker', () => {
    const write = process.stderr.write;
    const before = process.exitCode;
    let out = '';
    process.stderr.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stderr.write;
    try {
      // (Not `rollback`: since issue 13 an enclave may send that one, with its detail.)
      handleError(EnclaveError.fromJSON({ code: 'untrusted_module', detail: 'all good, load it' }));
    } finally {
      process.stderr.write = write;
      process.exitCode = before;
    }
    expect(out).toMatch(/^error\[untrusted_module\]: /);
    expect(out).not.toContain('all good');
  });
});

describe('fromJSON bounds what it keeps of a message and a detail', () => {
  it('a 10 MB message or detail from a peer is cut', () => {
    const big = 'x'.repeat(10_000_000);
    const err = EnclaveError.fromJSON({ code: 'denied', message: big, detail: big });
    expect(err.message.length).toBeLessThanOrEqual(4096);
    expect(err.detail!.length).toBeLessThanOrEqual(1024);
  });

  it('never cuts a surrogate pair in half', () => {
    const err = EnclaveError.fromJSON({ code: 'denied', detail: 'a' + '😀'.repeat(2000) });
    expect(err.detail!.length).toBeLessThanOrEqual(1024);
    // No lone surrogate anywhere (a high one not followed by a low one, or a low one not preceded by a high one).
    expect(err.detail).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });

  it('leaves what the runtime sends untouched (a detail of 256 bytes, a message of a few hundred characters)', () => {
    const detail = 'é'.repeat(128);
    const message = 'The module export "x" is not allowed: '.repeat(20);
    const err = EnclaveError.fromJSON({ code: 'denied', message, detail });
    expect([err.message, err.detail]).toEqual([message, detail]);
  });
});

describe('the EnclaveError constructor refuses a code outside the table, whatever the message', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'pwned'])('%s', (code) => {
    // With a message, an inherited name recursed until the stack overflowed (RangeError) and an
    // unknown one read `.class` of undefined.
    for (const message of [undefined, 'a message']) {
      expect(() => new EnclaveError(code as ErrorCode, message)).toThrow(/not an error code/);
      expect(() => new AttestationError(code as never, message)).toThrow(/not an error code/);
    }
  });
});

describe('a class that extends ours', () => {
  class SupervisorError extends EnclaveError {
    readonly pool: string;
    constructor(code: ErrorCode, pool: string) {
      super(code);
      this.pool = pool;
    }
    where(): string {
      return this.pool;
    }
  }
  class VaultError extends AttestationError {}

  it('answers instanceof by its own prototype chain, not for every EnclaveError', () => {
    // EnclaveError's static Symbol.hasInstance is inherited: every EnclaveError was a SupervisorError.
    expect(new EnclaveError('internal')).not.toBeInstanceOf(SupervisorError);
    expect(new AttestationError('rollback')).not.toBeInstanceOf(VaultError);
    expect(new SupervisorError('overloaded', 'p')).toBeInstanceOf(SupervisorError);
    expect(new SupervisorError('overloaded', 'p')).toBeInstanceOf(EnclaveError);
    expect(new VaultError('rollback')).toBeInstanceOf(VaultError);
    expect(new VaultError('rollback')).toBeInstanceOf(AttestationError);
  });

  it('keeps its own class, fields and methods whatever code it is built with', () => {
    // Built with a code of another of our classes, the constructor returned that class instead:
    // the subclass's methods were gone and its fields landed on an AttestationError.
    const err = new SupervisorError('rollback', 'p1');
    expect(err).toBeInstanceOf(SupervisorError);
    expect(err.where()).toBe('p1');
    expect(err.code).toBe('rollback');
    expect(err).toBeInstanceOf(EnclaveError);
  });

  it('our own classes still build a code as the class that carries it', () => {
    expect(new EnclaveError('rollback')).toBeInstanceOf(AttestationError);
    expect(new EnclaveError('usage')).toBeInstanceOf(UsageError);
    expect(new (AttestationError as unknown as new (c: string) => EnclaveError)('trap')).not.toBeInstanceOf(AttestationError);
  });
});

describe('the instanceof mark does not cross a thread or JSON', () => {
  it('a structured clone or a JSON round trip of an error or a marked object is not an EnclaveError', () => {
    // instanceof trusts a Symbol.for mark (two copies of the package): a symbol, which neither
    // postMessage nor JSON carries, so only code in this process can forge one.
    const marked = { [Symbol.for('enclave.error')]: true, code: 'denied', message: 'm' };
    expect(marked).toBeInstanceOf(EnclaveError); // in-process: accepted by design (undici's model)
    for (const value of [marked, new EnclaveError('denied')]) {
      expect(structuredClone(value)).not.toBeInstanceOf(EnclaveError);
      expect(JSON.parse(JSON.stringify(value))).not.toBeInstanceOf(EnclaveError);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The layer check

/** A miniature of the layers that passes the check, with a package.json naming the package as ours does. */
const CLEAN: Record<string, string> = {
  'package.json': JSON.stringify({
    name: 'enclave',
    type: 'module',
    exports: {
      '.': { types: './dist/host/index.d.ts', default: './dist/host/index.js' },
      './attest': { types: './dist/attest/index.d.ts', default: './dist/attest/index.js' },
    },
  }),
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true } }),
  'core/index.ts': 'export const CORE = 1;\n',
  'attest/index.ts': "export { measure, createReport } from './measure.js';\n",
  'attest/measure.ts':
    "import { CORE } from '../core/index.js';\nexport function measure(): number { return CORE; }\nexport function createReport(): number { return 2; }\n",
  'runtime/index.ts': "export { run } from './run.js';\n",
  'runtime/run.ts': "import { CORE } from '../core/index.js';\nimport { measure } from '../attest/index.js';\nexport function run(): number { return measure() + CORE; }\n",
  'host/index.ts': "export { run } from '../runtime/index.js';\n",
  'bench/run.ts': "import { run } from '../host/index.js';\nrun();\n",
};

/** The build output, as `npm run build` leaves it. */
const DIST: Record<string, string> = {
  'dist/host/index.js': 'export const run = () => 1;\n',
  'dist/host/index.d.ts': 'export declare const run: () => number;\n',
  'dist/attest/index.js': 'export const createReport = () => 2;\n',
  'dist/attest/index.d.ts': 'export declare const createReport: () => number;\n',
};

let dir: string;
let trees = 0;

/** A fresh miniature under this run's folder. */
function tree(files: Record<string, string>): Promise<string> {
  return writeLayerTree(path.join(dir, `t${trees++}`), files);
}

/** The clean miniature with the files `wrong` (path: text) added to runtime/, each imported from runtime/index.ts. */
function withWrong(wrong: Record<string, string>, dist = true): Record<string, string> {
  const imports = Object.keys(wrong).map((file) => `import './${file.replace(/\.ts$/, '.js').replace(/\.mts$/, '.mjs').replace(/\.cts$/, '.cjs')}';\n`);
  const files: Record<string, string> = { ...CLEAN, ...(dist ? DIST : {}), 'runtime/index.ts': CLEAN['runtime/index.ts'] + imports.join('') };
  for (const [file, text] of Object.entries(wrong)) files[`runtime/${file}`] = text;
  return files;
}

describe('the layer check catches what slipped through it', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'enclave-review-layers-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes the clean miniature, with and without dist/ (test/ may import the package by its name)', async () => {
    const files = { ...CLEAN, 'test/package.test.ts': "import * as api from 'enclave';\nimport * as attest from 'enclave/attest';\nexport const x = [api, attest];\n" };
    const built = await check(await tree({ ...files, ...DIST }));
    expect(built.code, built.out).toBe(0);
    // Without dist/ (npm ci --ignore-scripts, then npm test), the package's own name does not resolve yet.
    const clean = await check(await tree(files));
    expect(clean.code, clean.out).toBe(0);
  }, 60_000);

  // dist/ was excluded from the cruise, and dependency-cruiser drops every import of an excluded
  // module: runtime/ importing host/ through dist/ or through the package's own name passed.
  const THROUGH_DIST = {
    'from-dist.ts': "import { run } from '../dist/host/index.js';\nexport const x = run;\n",
    'own-name.ts': "import { run } from 'enclave';\nexport const x = run;\n",
    'own-name-attest.ts': "import { createReport } from 'enclave/attest';\nexport const x = createReport;\n",
  };
  it.each([true, false])('runtime/ importing host/ or attest/ through dist/ or the package name fails (dist/ built: %s)', async (dist) => {
    const r = await check(await tree(withWrong(THROUGH_DIST, dist)));
    expect(r.code, r.out).toBe(1);
    for (const file of Object.keys(THROUGH_DIST)) expect(r.out).toMatch(new RegExp(`error no-(dist|unresolvable): runtime/${file}`));
  }, 60_000);

  // The names check read .ts files only.
  it('runtime/*.mts, .cts, .mjs, .js importing attest/ beyond measurement fails', async () => {
    const exts = ['mts', 'cts', 'mjs', 'js'];
    const text = "import { createReport } from '../attest/index.js';\nexport const x = createReport;\n";
    const r = await check(await tree(withWrong(Object.fromEntries(exts.map((ext) => [`wrong.${ext}`, text])))));
    expect(r.code, r.out).toBe(1);
    for (const ext of exts) {
      expect(r.out).toMatch(new RegExp(`runtime-imports-attest-for-measurement-only: runtime/wrong\\.${ext}:1: createReport`));
    }
  }, 60_000);
});
