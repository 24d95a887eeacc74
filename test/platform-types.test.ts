/**
 * runtime/platform.ts declares what the runtime takes from a platform; its types must say what the
 * runtime does (test/review-runtime.test.ts checks the behaviour): `attest()` awaits a Promise from
 * `getEvidence` (the `report` import answers unavailable for one), while `getSealingSecret` must be
 * synchronous. The suite is not type-checked, so this test runs the TypeScript checker on a snippet.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const HEADER = `import type { EnclavePlatform } from '../runtime/index.js';\n`;

/** Snippets, each a module in test/, checked together in one program (a program costs seconds). */
const SNIPPETS = {
  asyncEvidence: `${HEADER}
    export const platform: EnclavePlatform = {
      platform: 'remote',
      getSealingSecret: () => new Uint8Array(32),
      getEvidence: async () => 'a.b.c',
    };`,
  asyncSealing: `${HEADER}
    export const platform: EnclavePlatform = {
      platform: 'remote',
      getSealingSecret: async () => new Uint8Array(32),
      getEvidence: () => 'a.b.c',
    };`,
};
type Snippet = keyof typeof SNIPPETS;
const fileOf = (name: string): string => `${root}test/__platform-types-${name}.ts`;

let checked: Map<string, string[]> | undefined;

/** The type errors of a snippet, checked with the project's compiler options. */
function typeErrors(name: Snippet): string[] {
  if (checked === undefined) {
    const config = ts.readConfigFile(`${root}tsconfig.json`, (f) => readFileSync(f, 'utf8'));
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
    const files = new Map(Object.entries(SNIPPETS).map(([n, code]) => [fileOf(n), code]));
    const host = ts.createCompilerHost({ ...options, noEmit: true });
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (file, language, ...rest) => {
      const code = files.get(file);
      return code !== undefined ? ts.createSourceFile(file, code, language) : getSourceFile(file, language, ...rest);
    };
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (file) => files.has(file) || fileExists(file);
    const program = ts.createProgram([...files.keys()], { ...options, noEmit: true }, host);
    checked = new Map([...files.keys()].map((f) => [f, [] as string[]]));
    for (const d of ts.getPreEmitDiagnostics(program)) {
      checked.get(d.file?.fileName ?? '')?.push(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    }
  }
  return checked.get(fileOf(name))!;
}

describe('EnclavePlatform (runtime/platform.ts)', () => {
  it('admits a getEvidence that answers with a Promise (attest() awaits it)', () => {
    const errors = typeErrors('asyncEvidence');
    expect(errors).toEqual([]);
  }, 60_000);

  it('refuses a getSealingSecret that answers with a Promise (seal_key cannot wait)', () => {
    const errors = typeErrors('asyncSealing');
    expect(errors.join('\n')).toMatch(/getSealingSecret|Promise<Uint8Array/);
  }, 60_000);
});
