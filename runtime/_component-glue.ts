/**
 * A component transpiled by jco (`transpileBytes` of @bytecodealliance/jco-transpile, pinned): the
 * JavaScript glue that wires its core instances and lowers its imports, checked against the core
 * modules the gate read, and patched where jco's glue misbehaves when the runtime enters the core
 * handler export itself (issue 14, decisions 4 and 5). Runs in the transpile worker
 * (runtime/_transpile-main.ts); the transpile cache (runtime/_component-transpile.ts) keys its
 * entries by the fingerprint of that worker's import closure, this file and jco's version included.
 *
 * The glue is JavaScript the runtime will run, made from hostile bytes: jco pastes names from the
 * component into its source (core import and export names unescaped, in quotes), so what reaches
 * jco is restricted first (runtime/_component-module.ts, and the gate's name checks); the glue is
 * then run only as `instantiate(getCoreModule, imports, instantiateCore)` with hooks of ours.
 */
import { EnclaveError } from '../core/index.js';

/** What the runtime keeps of a transpiled component. */
export interface Transpiled {
  /** The glue's ES module source (patched, see {@link patchGlue}). */
  readonly glue: string;
  /**
   * The core modules the glue asks for, in the component's order: `component.core.wasm`,
   * `component.core2.wasm`, ... Each is byte-identical to the gate's core module of that index.
   */
  readonly modules: readonly string[];
}

/** The options of decision 4: instantiation by us, no WASI, modules as separate files, no extras. */
export const TRANSPILE_OPTIONS = Object.freeze({
  name: 'component',
  instantiation: Object.freeze({ tag: 'async' as const }),
  wasiShim: false,
  base64Cutoff: 0,
  nodejsCompat: false,
  tlaCompat: false,
  emitTypescriptDeclarations: false,
  minify: false,
  optimize: false,
  noComponentErrorWrapping: true,
});

/** The glue file, and the name of the n-th core module (0-based) as jco writes it. */
export const GLUE_FILE = 'component.js';
export function coreFileName(index: number): string {
  return index === 0 ? 'component.core.wasm' : `component.core${index + 1}.wasm`;
}

/** The glue's entry, as the runtime calls it (module records the glue's `export function instantiate`). */
const ENTRY = 'export function instantiate(getCoreModule, imports, instantiateCore';

/**
 * The patches, each a text the glue holds at most once; jco is pinned, and a glue that does not
 * look as expected is refused rather than run half-patched. A glue with imports (it defines
 * `_lowerImportBackwardsCompat`) must hold every one.
 *
 * 1. `_lowerImportBackwardsCompat` makes a task when an import is called with none current (the
 *    runtime enters the core export itself, so always), resolves it and never exits it: every
 *    import call leaves one behind, and finding the current one is a linear search, so a
 *    persistent instance slows by the number of import calls made (16 000 calls: 46 s, 57 MB).
 *    Exiting it pops it.
 * 2. That task's resolve handler calls `_clearCurrentTask`, an `async` function: whatever it
 *    throws would become an unhandled rejection, which ends a Node process. Made synchronous, it
 *    throws into the import call instead (a trap of that call).
 * 3. `_debugLog` reads `process.env.JCO_DEBUG` on every step of every import call and, when set,
 *    prints the values crossing (enclave data) with console.debug: made a no-op.
 */
const PATCHES: readonly { readonly find: string; readonly replace: string }[] = [
  {
    find: 'if (createdTask) { createdTask.resolve([syncRes]); }',
    replace: 'if (createdTask) { createdTask.resolve([syncRes]); createdTask.exit(); }',
  },
  { find: 'async function _clearCurrentTask(args) {', replace: 'function _clearCurrentTask(args) {' },
  { find: 'if (!globalThis?.process?.env?.JCO_DEBUG) { return; }', replace: 'return;' },
];

function occurrences(text: string, part: string): number {
  let n = 0;
  for (let at = text.indexOf(part); at !== -1; at = text.indexOf(part, at + part.length)) n++;
  return n;
}

/**
 * The glue with {@link PATCHES} applied.
 * @throws {EnclaveError} `internal` when the glue is not what this jco version writes.
 */
export function patchGlue(glue: string): string {
  if (occurrences(glue, ENTRY) !== 1) throw new EnclaveError('internal', 'The component glue from jco has no instantiate entry: the jco version is not the one the runtime expects.');
  const needed = glue.includes('function _lowerImportBackwardsCompat(');
  for (const { find, replace } of PATCHES) {
    const n = occurrences(glue, find);
    if (n > 1 || (needed && n !== 1)) {
      throw new EnclaveError('internal', 'The component glue from jco is not the one the runtime expects (a patch does not apply): the jco version changed.');
    }
    if (n === 1) glue = glue.replace(find, () => replace);
  }
  return glue;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Transpiles a component whose core modules the gate read (`coreModules`, in order), and checks
 * what came out: exactly the glue and one file per core module, each byte-identical to the gate's
 * (so what the runtime validates, instruments and runs is what the gate read, and jco's files are
 * not kept).
 * @throws {EnclaveError} `invalid_module` when jco refuses the component or makes core modules
 *   of its own for it (fused adapters); `internal` when its output is not the expected shape.
 */
export async function transpileNow(bytes: Uint8Array, coreModules: readonly Uint8Array[]): Promise<Transpiled> {
  const { transpileBytes } = await import('@bytecodealliance/jco-transpile');
  let out: { files: Record<string, Uint8Array> };
  try {
    out = await transpileBytes(bytes, { ...TRANSPILE_OPTIONS, instantiation: { tag: 'async' } });
  } catch (err) {
    // jco's message names what it found in hostile bytes: not repeated to the caller.
    throw new EnclaveError('invalid_module', 'jco cannot transpile the component: it is not a component the runtime can run.', { cause: err });
  }
  const files = out.files;
  const names = Object.keys(files);
  const modules = coreModules.map((_, i) => coreFileName(i));
  const expected = new Set([GLUE_FILE, ...modules]);
  // More core modules than the component's: jco compiled fused adapters (a function the component
  // lifts and lowers itself: wasmtime's FACT), code the gate never read and the runtime does not run.
  if (names.some((n) => !expected.has(n) && /^component\.core\d*\.wasm$/.test(n))) {
    throw new EnclaveError(
      'invalid_module',
      `jco made more core modules than the component's ${coreModules.length} (adapters for a function the component lifts and lowers itself): the runtime runs only the component's own core modules.`,
    );
  }
  if (names.length !== expected.size || !names.every((n) => expected.has(n))) {
    throw new EnclaveError('internal', `jco's output for the component is not its glue and ${coreModules.length} core modules.`);
  }
  modules.forEach((name, i) => {
    if (!equalBytes(files[name]!, coreModules[i]!)) throw new EnclaveError('internal', `jco's ${name} is not the component's core module ${i}.`);
  });
  const glue = new TextDecoder('utf-8', { fatal: true }).decode(files[GLUE_FILE]!);
  return { glue: patchGlue(glue), modules };
}
