/**
 * The compile path of a component (issue 14, decisions 1 to 6): the same checks, identity and
 * fuel as a core module, then jco's glue; `EnclaveModule.compile` hands a component here and gets
 * back the parts it keeps, so the module, its enclaves and worker mode are the core ones.
 *
 * ```
 *  bytes ─► gate (readComponentInfo: top-level sections, core modules read) ─► contract (top level)
 *        ─► world (checkWorld: imports, capabilities, the one export; checkImportTypes: each
 *           imported function's type is the world's; checkLiftedTypes: one lift, the handler's
 *           call) ─► main core module's shape,
 *           every core name jco will paste into JavaScript
 *        ─► identity (measured as a core module) ─► transpile (cached) ─► glue checked, patched
 *        ─► each core module: WebAssembly.validate, instrumentCached (fuel, feature gate), compile
 *        ─► the glue loaded (import of a data: URL)
 * ```
 */
import { createHash } from 'node:crypto';
import { COMPONENT_NAME_PATTERN, EnclaveError, formatFuncType, quoteInput, readComponentInfo, type ComponentInfo, type FuncType, type ModuleInfo } from '../core/index.js';
import type { TrustPolicy } from '../attest/index.js';
import { moduleContract, type Contract } from './contract.js';
import { instrumentCached, type FuelCacheDir } from './_fuel-cache.js';
import { checkImportTypes, checkLiftedTypes, checkWorld, HANDLER_CALL_EXPORT, POST_RETURN_EXPORT, REALLOC_EXPORT } from './_component-world.js';
import { transpileCached } from './_component-transpile.js';
import { combinedManifest, loadGlue, type ComponentParts, type ComponentProgram } from './_component-live.js';
import type { ModuleParts } from './_module-parts.js';

function invalid(message: string): never {
  throw new EnclaveError('invalid_module', message);
}

/**
 * Names jco pastes into the glue's JavaScript source, in quotes and unescaped (jco-transpile
 * 0.15.0: a core export named `0'+(code)+'` runs that code on the host). The gate refuses every
 * such name outside COMPONENT_NAME_PATTERN wherever it appears (core/component-binary.ts); checked
 * again here on the core modules' imports and exports, right before the bytes reach jco.
 */
function checkNames(info: ComponentInfo): void {
  info.coreModuleInfo.forEach((m, i) => {
    const names = [...m.imports.flatMap((imp) => [imp.module, imp.name]), ...m.exports.map((e) => e.name)];
    const bad = names.find((n) => !COMPONENT_NAME_PATTERN.test(n) || n === '__proto__');
    if (bad !== undefined) {
      invalid(`Core module ${i} of the component has an import or export named ${quoteInput(bad)}: names may hold only letters, digits and _ . : @ / # $ -.`);
    }
  });
}

function isType(type: FuncType | undefined, params: readonly string[], results: readonly string[]): boolean {
  return (
    type !== undefined &&
    type.params.length === params.length &&
    type.results.length === results.length &&
    type.params.every((t, i) => t === params[i]) &&
    type.results.every((t, i) => t === results[i])
  );
}

/** The core module the handler is lifted from, its shape checked (the canonical ABI's core signatures). */
function mainModule(info: ComponentInfo): number {
  const owners = info.coreModuleInfo.flatMap((m, i) => (m.exports.some((e) => e.name === HANDLER_CALL_EXPORT) ? [i] : []));
  if (owners.length !== 1) invalid(`${owners.length === 0 ? 'No' : 'More than one'} core module of the component exports "${HANDLER_CALL_EXPORT}".`);
  const main = owners[0]!;
  const m: ModuleInfo = info.coreModuleInfo[main]!;
  const fn = (name: string, params: readonly string[], results: readonly string[], required: boolean): void => {
    const exp = m.exports.find((e) => e.name === name);
    if (exp === undefined && !required) return;
    if (exp === undefined || exp.kind !== 'function') invalid(`The component's main core module does not export the function "${name}".`);
    if (!isType(exp.type, params, results)) {
      invalid(`The export "${name}" has type ${formatFuncType(exp.type)}; the canonical ABI says ${formatFuncType({ params, results } as FuncType)}.`);
    }
  };
  fn(HANDLER_CALL_EXPORT, ['i32', 'i32'], ['i32'], true);
  fn(REALLOC_EXPORT, ['i32', 'i32', 'i32', 'i32'], ['i32'], true);
  fn(POST_RETURN_EXPORT, ['i32'], [], false);
  const memory = m.exports.find((e) => e.name === 'memory');
  if (memory === undefined || memory.kind !== 'memory' || m.memories.length !== 1) {
    invalid('The component\'s main core module must define its one memory and export it as "memory".');
  }
  const mem = m.memories[0]!;
  if (mem.shared || mem.memory64) invalid('The component memory must be a plain (unshared, 32-bit) memory.');
  if (mem.maximum === undefined) {
    throw new EnclaveError('memory_limit', 'The component memory declares no maximum: build it with one (docs/ABI.md §2).');
  }
  return main;
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Compiles a component's core modules (instrumented) and transpiles its glue.
 * @returns the parts `EnclaveModule` keeps: `info` is the main core module's.
 * @throws {EnclaveError} as `EnclaveModule.compile`.
 */
export async function compileComponent(
  bytes: Uint8Array,
  trust: TrustPolicy | undefined,
  cacheDir: FuelCacheDir,
): Promise<{ parts: ModuleParts & { component: ComponentParts }; program: ComponentProgram }> {
  const info = readComponentInfo(bytes);
  const contract: Contract = moduleContract(bytes);
  checkWorld(info, contract);
  checkImportTypes(bytes);
  checkLiftedTypes(bytes);
  checkNames(info);
  const main = mainModule(info);
  info.coreModules.forEach((m, i) => {
    if (!WebAssembly.validate(m)) invalid(`Core module ${i} of the component does not validate as WebAssembly: rebuild it.`);
  });
  const { identify } = await import('./_identify.js');
  const identity = identify(bytes, trust);
  // The glue (cached by the hash of the exact bytes and the transpiler's fingerprint), then each
  // core module as any enclave's: instrumented (cached by its own hash), compiled.
  const transpiled = await transpileCached(bytes, sha256(bytes), info.coreModules, cacheDir);
  const instrumented = await Promise.all(info.coreModules.map((m) => instrumentCached(m, sha256(m), cacheDir)));
  const modules = await Promise.all(
    instrumented.map(async ({ bytes: metered }, i) => {
      try {
        return await WebAssembly.compile(metered);
      } catch (err) {
        throw new EnclaveError('invalid_module', `Core module ${i} of the component does not compile once instrumented: ${(err as Error).message}.`);
      }
    }),
  );
  const manifests = instrumented.map((r) => r.manifest);
  const component: ComponentParts = {
    glue: transpiled.glue,
    modules,
    names: transpiled.modules,
    manifests,
    main,
    tableElements: info.coreModuleInfo.reduce((n, m) => n + m.tables.reduce((k, t) => k + t.initial, 0), 0),
  };
  const instantiate = await loadGlue(transpiled.glue);
  return {
    parts: {
      module: modules[main]!,
      info: info.coreModuleInfo[main]!,
      contract,
      identity,
      fuel: combinedManifest(manifests),
      original: bytes,
      component,
    },
    program: { instantiate, modules, names: transpiled.modules, manifests, main },
  };
}

