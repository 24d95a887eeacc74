/**
 * The component form of an AssemblyScript module (`enclave build --component`): the same sources,
 * compiled with the SDK's component mode, made a component of the world `enclave` (wit/enclave.wit).
 *
 * 1. asc compiles a generated entry (componentEntrySource, ./settings.ts) that imports the module's entry
 *    (its top-level code registers the ops) and exports the SDK's `cabi_realloc` and
 *    `enclave_component_call`, with `--use ENCLAVE_COMPONENT=1`: the capability wrappers call the
 *    world's imports, `abort` traps, and nothing is imported from `enclave` nor exported by the
 *    core ABI (enclave-modules/sdk/component.ts).
 * 2. `enclave_component_call` is renamed `enclave:runtime/handler@1.0.0#call` (an export-section
 *    rewrite, {@link renameExport}: nothing else in the module changes).
 * 3. jco-transpile's wasm-tools embed the world and make the component (`componentEmbed`, then
 *    `componentNew`); the core module inside carries no `enclave.contract`.
 * 4. The contract is appended as the component's one top-level `enclave.contract` section.
 *
 * Deterministic: the same core bytes and contract give the same component (wasm-tools writes no
 * time, path or random part).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CONTRACT_SECTION,
  EnclaveError,
  encodeCustomSection,
  encodeU32Leb,
  readComponentInfo,
  readU32Leb,
  WASM_NAME_DECODER,
} from '../../core/index.js';
import type { Contract } from '../../runtime/index.js';
import { checkLoads } from './check.js';
import { packageRoot } from './compile.js';
import { SDK_CALL_EXPORT } from './settings.js';

/** The world a component build implements, in wit/enclave.wit. */
export const COMPONENT_WORLD = 'enclave';

/** The core export of `handler.call` in the canonical ABI. */
export const CALL_EXPORT = 'enclave:runtime/handler@1.0.0#call';

/** The module an interface of the world is imported from: `enclave:runtime/<iface>@1.0.0`. */
const WORLD_IMPORT = /^enclave:runtime\/(random|clock|log|seal|counter|attest)@1\.0\.0$/;

let witText: Promise<string> | undefined;

/** wit/enclave.wit of the package that runs the build. @throws {EnclaveError} `build_failed` when it is missing. */
export function worldWit(): Promise<string> {
  witText ??= (async () => {
    const file = path.join(await packageRoot(), 'wit', 'enclave.wit');
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      witText = undefined;
      throw new EnclaveError('build_failed', `The enclave world (${file}) is missing from this installation of enclave: reinstall the package.`, { cause: err });
    }
  })();
  return witText;
}

/**
 * The core module with export `from` renamed `to`; every other byte is kept (the export section is
 * re-encoded, the sections after it are copied).
 * @throws {EnclaveError} `build_failed` if the module has no export `from`, or already one named `to`.
 * @example
 * const core = renameExport(bytes, 'enclave_component_call', 'enclave:runtime/handler@1.0.0#call');
 */
export function renameExport(bytes: Uint8Array, from: string, to: string): Uint8Array {
  try {
    return renameExportUnchecked(bytes, from, to);
  } catch (err) {
    if (err instanceof EnclaveError && err.code === 'build_failed') throw err;
    // A truncated LEB, a name that is not UTF-8, a count past the end.
    throw new EnclaveError('build_failed', `The compiled module is malformed: ${(err as Error).message}`, { cause: err });
  }
}

function renameExportUnchecked(bytes: Uint8Array, from: string, to: string): Uint8Array {
  let pos = 8;
  while (pos < bytes.length) {
    const start = pos;
    const id = bytes[pos++]!;
    const [size, payload] = readU32Leb(bytes, pos);
    const end = payload + size;
    if (end > bytes.length) throw new EnclaveError('build_failed', `The compiled module is malformed: a section at offset ${start} runs past its end.`);
    if (id !== 7) {
      pos = end;
      continue;
    }
    const out: number[] = [];
    let [count, at] = readU32Leb(bytes, payload);
    out.push(...encodeU32Leb(count));
    let renamed = false;
    for (let i = 0; i < count; i++) {
      const [nameLen, afterLen] = readU32Leb(bytes, at);
      if (afterLen + nameLen + 1 > end) throw new RangeError(`export ${i} runs past its section`);
      const name = WASM_NAME_DECODER.decode(bytes.subarray(afterLen, afterLen + nameLen));
      const kind = bytes[afterLen + nameLen]!;
      const [, next] = readU32Leb(bytes, afterLen + nameLen + 1);
      if (next > end) throw new RangeError(`export ${i} runs past its section`);
      if (name === to) throw new EnclaveError('build_failed', `The compiled module already exports ${JSON.stringify(to)}.`);
      if (name === from && kind === 0 && !renamed) {
        const encoded = new TextEncoder().encode(to);
        out.push(...encodeU32Leb(encoded.length), ...encoded, ...bytes.subarray(afterLen + nameLen, next));
        renamed = true;
      } else {
        out.push(...bytes.subarray(at, next));
      }
      at = next;
    }
    if (at !== end) throw new EnclaveError('build_failed', 'The compiled module is malformed: its export section has trailing bytes.');
    if (!renamed) break;
    const sectionSize = encodeU32Leb(out.length);
    const result = new Uint8Array(start + 1 + sectionSize.length + out.length + (bytes.length - end));
    result.set(bytes.subarray(0, start), 0);
    result[start] = 7;
    result.set(sectionSize, start + 1);
    result.set(out, start + 1 + sectionSize.length);
    result.set(bytes.subarray(end), start + 1 + sectionSize.length + out.length);
    return result;
  }
  throw new EnclaveError('build_failed', `The compiled module has no function export ${JSON.stringify(from)}: was it compiled in the SDK's component mode?`);
}

/**
 * Refuses a core module that imports anything outside the world (a module's own
 * `@external("enclave", ...)`, `env.seed` from Math.random, ...): wasm-tools would refuse it with a
 * message about interfaces.
 * @throws {EnclaveError} `build_failed` naming the first such import.
 */
function checkWorldImports(core: Uint8Array, where: string): void {
  let imports: ReturnType<typeof WebAssembly.Module.imports>;
  try {
    imports = WebAssembly.Module.imports(new WebAssembly.Module(core));
  } catch (err) {
    throw new EnclaveError('build_failed', `The component's core module built from ${where} does not compile: ${(err as Error).message}`, { cause: err });
  }
  for (const imp of imports) {
    if (!WORLD_IMPORT.test(imp.module)) {
      throw new EnclaveError(
        'build_failed',
        `The module built from ${where} as a component imports ${JSON.stringify(`${imp.module}.${imp.name}`)}, which is not in the enclave world ` +
          '(wit/enclave.wit): use only the SDK\'s capabilities (no @external of your own, no Math.random).',
      );
    }
  }
}

/**
 * The component of a core module compiled in the SDK's component mode (`enclave_component_call`
 * still named so), with `contract` (the contract's JSON bytes) as its top-level `enclave.contract`.
 * @param where - the module's directory, for messages.
 * @throws {EnclaveError} `build_failed` when the module is not in the world's shape.
 * @example
 * const component = await makeComponent(compiled, payload, '/work/kv');
 */
export async function makeComponent(compiled: Uint8Array, contract: Uint8Array, where: string): Promise<Uint8Array> {
  const core = renameExport(compiled, SDK_CALL_EXPORT, CALL_EXPORT);
  checkWorldImports(core, where);
  const { componentEmbed, componentNew } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  let component: Uint8Array;
  try {
    const embedded = await componentEmbed({ binary: core, witSource: await worldWit(), world: COMPONENT_WORLD, stringEncoding: 'utf8' });
    component = await componentNew(embedded);
  } catch (err) {
    const why = err instanceof Error ? err.message : String((err as { payload?: unknown })?.payload ?? err);
    throw new EnclaveError('build_failed', `The module built from ${where} does not make a component of the enclave world: ${why}`, { cause: err });
  }
  const section = encodeCustomSection(CONTRACT_SECTION, contract);
  const out = new Uint8Array(component.length + section.length);
  out.set(component, 0);
  out.set(section, component.length);
  return out;
}

/**
 * The load check of a built component: the runtime's gate reads it (core/component-binary.ts), and
 * it loads and starts as the core module does (host/build/check.ts, `checkLoads`: the world and the
 * contract's capabilities, memory maximum equal to `limits.memoryPages`, top-level code under fuel).
 * Its ops need no probe: the core module built from the same sources was probed, and the component's
 * core module registers them with the same top-level code.
 * @throws {EnclaveError} `build_failed` naming the runtime's code and message.
 */
export async function checkComponent(component: Uint8Array, contract: Contract, where: string): Promise<void> {
  try {
    readComponentInfo(component);
    await checkLoads(component, contract, 'exact');
  } catch (err) {
    const code = err instanceof EnclaveError ? err.code : 'internal';
    throw new EnclaveError('build_failed', `The component built from ${where} does not load (${code}): ${(err as Error).message}`, { cause: err });
  }
}
