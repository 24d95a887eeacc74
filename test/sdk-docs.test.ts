// docs/SDK.md is the SDK's reference: its examples must compile, and the whole modules it shows must
// answer as it says. Conventions of the page (the first word of a fence is the language, so GitHub
// still highlights them):
//
//   ```ts enclave            AssemblyScript that must compile as `enclave build` compiles it. A
//                            fragment (no `enclave/sdk/exports` import) gets the ABI exports appended
//                            and its top-level functions exported, so that every one is compiled
//                            (asc compiles only what is reachable).
//   ```ts enclave <name>     a whole module named <name>;
//   ```json contract <name>  its contract.json: the module is built with it by `enclave build`'s
//                            buildModule (compile with the contract's limits, embed, load check);
//   ```ts host <name>        calls of the built module: `const x = await loadEnclave('...', options?);`
//                            then lines `await x.call('op', args?); // <expected JS value>` or
//                            `// throws <code>`, run in order on one instance.
//
// A failure names the line of docs/SDK.md where the example (and the line in it) is.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compileAssemblyScript } from '../host/build/compile.js';
import { buildModule } from '../host/build-modules.js';
import { EnclaveError } from '../core/index.js';
import { loadEnclave, SUPPORTED_ABI_VERSIONS, type EnclaveHandle } from '../runtime/index.js';

const DOC = new URL('../docs/SDK.md', import.meta.url);
const DOC_NAME = 'docs/SDK.md';

/** One fenced block of the page. */
interface Block {
  readonly lang: string;
  readonly kind: string | undefined;
  readonly name: string | undefined;
  readonly body: string;
  /** 1-based line of the first line inside the fence. */
  readonly line: number;
}

/** Every fenced block of `text`, with its info string split and its first body line. */
export function fencedBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(.*)$/.exec(lines[i]!);
    if (open === null) continue;
    const [lang = '', kind, name] = [open[1], ...open[2]!.trim().split(/\s+/).filter(Boolean)];
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end] !== '```') end++;
    if (end === lines.length) throw new Error(`${DOC_NAME}:${i + 1}: a fence that is never closed`);
    blocks.push({ lang, kind, name, body: lines.slice(start, end).join('\n'), line: start + 1 });
    i = end;
  }
  return blocks;
}

const EXPORTS = 'export { enclave_abi_version, enclave_alloc, enclave_call } from "enclave/sdk/exports";';

/** The source compiled for a block: a fragment gets the exports (last, so line numbers hold) and exported functions. */
function sourceOf(block: Block): string {
  if (block.body.includes('"enclave/sdk/exports"')) return block.body;
  return `${block.body.replace(/^function /gm, 'export function ')}\n${EXPORTS}\n`;
}

/** asc's `index.ts(L,C)` positions rewritten as the line in the page. */
function inPage(diagnostics: string, block: Block): string {
  return diagnostics.replace(/index\.ts\((\d+),(\d+)\)/g, (_, l: string, c: string) => `${DOC_NAME}:${block.line + Number(l) - 1}:${c}`);
}

let work: string;

/**
 * Compiles a fragment with enclave build's compiler and settings, but without binaryen's
 * optimisation passes (a fourth of the time; they change no diagnostic); fails naming the page's line.
 */
async function compileBlock(block: Block): Promise<Uint8Array> {
  const dir = mkdtempSync(path.join(work, `line-${block.line}-`));
  writeFileSync(path.join(dir, 'index.ts'), sourceOf(block));
  try {
    return await compileAssemblyScript({
      baseDir: dir,
      entry: 'index.ts',
      limits: { requestBytes: 65536, replyBytes: 65536, depth: 32, memoryPages: 16 },
      extraArgs: ['--optimizeLevel', '0'],
    });
  } catch (err) {
    throw new Error(`the example at ${DOC_NAME}:${block.line} does not compile:\n${inPage((err as Error).message, block)}`);
  }
}

/** Builds a whole module with its contract exactly as `enclave build <dir>` does (compile, embed, check). */
async function buildBlock(block: Block, contract: Block): Promise<Uint8Array> {
  const dir = mkdtempSync(path.join(work, `${block.name}-`));
  writeFileSync(path.join(dir, 'index.ts'), block.body);
  writeFileSync(path.join(dir, 'contract.json'), contract.body);
  try {
    return readFileSync((await buildModule(dir)).output);
  } catch (err) {
    throw new Error(`the module at ${DOC_NAME}:${block.line} (contract at line ${contract.line}) does not build:\n${inPage((err as Error).message, block)}`);
  }
}

/** Evaluates a JS literal of the page (args, options, expected values): our own document, in a test. */
function literal(source: string, where: string): unknown {
  try {
    return new Function(`return (${source});`)();
  } catch (err) {
    throw new Error(`${where}: cannot read ${JSON.stringify(source)}: ${(err as Error).message}`);
  }
}

/** The expected outcome of a call line's comment: a value, or `throws <code>`; a trailing `(remark)` or `: remark` is ignored. */
function expectation(comment: string, where: string): { throws: string } | { value: unknown } {
  const t = /^throws (\w+)/.exec(comment);
  if (t !== null) return { throws: t[1]! };
  const candidates = [comment, comment.replace(/\s*\(.*\)$/, ''), comment.replace(/:\s.*$/, '')];
  for (const c of candidates) {
    try {
      return { value: new Function(`return (${c});`)() };
    } catch {
      // try the next reading
    }
  }
  return { value: literal(comment, where) };
}

const text = readFileSync(DOC, 'utf8');
const blocks = fencedBlocks(text);
const enclaveBlocks = blocks.filter((b) => b.lang === 'ts' && b.kind === 'enclave');
const modules = enclaveBlocks.filter((b) => b.name !== undefined);

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'enclave-sdk-docs-'));
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('docs/SDK.md', () => {
  it('has enclave examples, whole modules among them, each with a contract and calls', () => {
    expect(enclaveBlocks.length).toBeGreaterThanOrEqual(6);
    expect(modules.length).toBeGreaterThanOrEqual(3);
    for (const m of modules) {
      const where = `${DOC_NAME}:${m.line}`;
      expect(blocks.filter((b) => b.kind === 'contract' && b.name === m.name), `${where}: one contract ${m.name}`).toHaveLength(1);
      expect(blocks.filter((b) => b.kind === 'host' && b.name === m.name), `${where}: one host block ${m.name}`).toHaveLength(1);
      expect(m.body, `${where}: a whole module re-exports the ABI`).toContain('"enclave/sdk/exports"');
    }
  });

  it('states the ABI version the SDK implements and the runtime speaks', () => {
    const stated = /This SDK implements \*\*ABI version (\d+)\*\*/.exec(text);
    expect(stated, 'the page states the ABI version').not.toBeNull();
    const sdk = readFileSync(new URL('../enclave-modules/sdk/exports.ts', import.meta.url), 'utf8');
    const returned = /export function enclave_abi_version\(\): i32 \{\s*return (\d+);/.exec(sdk);
    expect(returned?.[1]).toBe(stated![1]);
    expect(SUPPORTED_ABI_VERSIONS).toContain(Number(stated![1]));
  });

  it('imports the SDK only by its package subpaths (never ../sdk), and never calls setLimits', () => {
    for (const b of blocks.filter((x) => x.lang === 'ts')) {
      for (const m of b.body.matchAll(/from\s+"([^"]+)"/g)) {
        expect(['enclave/sdk', 'enclave/sdk/exports', 'enclave/sdk/crypto'], `${DOC_NAME}:${b.line}`).toContain(m[1]);
      }
      expect(b.body, `${DOC_NAME}:${b.line}`).not.toContain('setLimits');
    }
  });

  it.each(enclaveBlocks.filter((b) => b.name === undefined).map((b) => [b.line, b] as const))(
    'the fragment at line %i compiles',
    async (_line, block) => {
      const bytes = await compileBlock(block);
      expect(WebAssembly.validate(bytes)).toBe(true);
    },
    60_000,
  );

  describe.each(modules.map((m) => [m.name!, m] as const))('the module %s', (name, block) => {
    let enclave: EnclaveHandle | undefined;
    afterAll(async () => {
      await enclave?.close();
    });

    it('builds with its contract, passes the build check and answers as the page says', async () => {
      const bytes = await buildBlock(block, blocks.find((b) => b.kind === 'contract' && b.name === name)!);

      const host = blocks.find((b) => b.kind === 'host' && b.name === name)!;
      let calls = 0;
      for (const [i, source] of host.body.split('\n').entries()) {
        const where = `${DOC_NAME}:${host.line + i}`;
        const load = /^const (\w+) = await loadEnclave\('[^']*'(?:, (.*))?\);$/.exec(source);
        if (load !== null) {
          const options = load[2] === undefined ? {} : (literal(load[2], where) as object);
          enclave = await loadEnclave(bytes, options);
          continue;
        }
        const call = /^await (\w+)\.call\((.*)\);\s*\/\/\s*(.*)$/.exec(source);
        if (call === null) {
          expect(source.trim(), `${where}: a host block holds only loadEnclave and call lines`).toBe('');
          continue;
        }
        expect(enclave, `${where}: loadEnclave first`).toBeDefined();
        const [op, args] = literal(`[${call[2]}]`, where) as [string, unknown];
        const want = expectation(call[3]!, where);
        calls++;
        let outcome: { throws: string } | { value: unknown };
        try {
          outcome = { value: await enclave!.call(op, args as never) };
        } catch (err) {
          if (!(err instanceof EnclaveError)) throw err;
          outcome = { throws: err.code };
        }
        expect(outcome, where).toEqual(want);
      }
      expect(calls, `${DOC_NAME}:${host.line}: calls to check`).toBeGreaterThanOrEqual(2);
    }, 60_000);
  });

  it("the README's AssemblyScript module compiles too", async () => {
    const readme = fencedBlocks(readFileSync(new URL('../README.md', import.meta.url), 'utf8'));
    const asModules = readme.filter((b) => b.lang === 'ts' && b.body.includes('"enclave/sdk/exports"'));
    expect(asModules.length).toBeGreaterThanOrEqual(1);
    for (const b of asModules) {
      expect(b.body).not.toContain('setLimits');
      // compileBlock names docs/SDK.md; the README's line is in the test name of a failure here.
      await expect(compileBlock(b), `README.md:${b.line}`).resolves.toBeInstanceOf(Uint8Array);
    }
  }, 60_000);

  it('fails with the line of the page when an example does not compile', async () => {
    const broken: Block = { lang: 'ts', kind: 'enclave', name: undefined, body: 'import { Value, Reply } from "enclave/sdk";\n\nfunction f(args: Value): Reply {\n  const n: i32 = "no";\n  return Reply.ok();\n}', line: 500 };
    await expect(compileBlock(broken)).rejects.toThrow(/example at docs\/SDK\.md:500 does not compile:[\s\S]*docs\/SDK\.md:503:/);
  }, 60_000);
});
