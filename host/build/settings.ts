/**
 * The compiler settings of `enclave build`, built in: a build never reads an asconfig.json (a
 * user's would change what the SDK was written for). The top-level asconfig.json states the same
 * settings for whoever compiles with plain asc; test/build-settings.test.ts keeps the two equal.
 */

/** What asc's `release` target of asconfig.json says, as asc's options (their asc names). */
export const COMPILER_SETTINGS = Object.freeze({
  optimizeLevel: 3,
  shrinkLevel: 0,
  converge: false,
  noAssert: false,
  runtime: 'incremental',
  debug: false,
  sourceMap: false,
  exportRuntime: false,
} as const);

/**
 * Where asc finds the SDK: `import ... from "enclave/sdk"` resolves through node_modules/enclave,
 * and asc names every file found there `~lib/enclave/<path in the package>`, wherever the package
 * is (and `enclave build` maps node_modules/enclave onto the package that runs it). So the name of
 * the SDK's abort replacement is the same for every module and every install.
 */
export const SDK_ABORT = '~lib/enclave/enclave-modules/sdk/env/enclave_abort';

/** `--use abort=...`: AssemblyScript's `abort` becomes the SDK's, which imports `enclave.abort` (not `env.abort`). */
export const ABORT_ALIAS = `abort=${SDK_ABORT}`;

/** The limits a build gives the SDK, as compile-time integer constants (`--use NAME=<n>`; enclave-modules/sdk/limits.ts). */
export const LIMIT_CONSTANTS = Object.freeze({
  requestBytes: 'ENCLAVE_REQUEST_BYTES',
  replyBytes: 'ENCLAVE_REPLY_BYTES',
  depth: 'ENCLAVE_DEPTH',
  memoryPages: 'ENCLAVE_MEMORY_PAGES',
} as const);

/** The constant of a component build (`--use ENCLAVE_COMPONENT=1`): the SDK's component mode (enclave-modules/sdk/env.ts). */
export const COMPONENT_CONSTANT = 'ENCLAVE_COMPONENT';

/** The limits of a contract the SDK enforces (docs/ABI.md §5). */
export interface SdkLimits {
  readonly requestBytes: number;
  readonly replyBytes: number;
  readonly depth: number;
  readonly memoryPages: number;
}

/** The settings as asc command-line arguments. */
export function settingsArgs(): string[] {
  const args: string[] = [];
  for (const [name, value] of Object.entries(COMPILER_SETTINGS) as Array<[string, unknown]>) {
    if (value === true) args.push(`--${name}`);
    else if (typeof value !== 'boolean') args.push(`--${name}`, String(value));
  }
  return args;
}

/** asc arguments for a module with these limits: memory maximum, SDK constants, abort alias. */
export function limitArgs(limits: SdkLimits): string[] {
  const args = ['--maximumMemory', String(limits.memoryPages), '--use', ABORT_ALIAS];
  for (const [key, name] of Object.entries(LIMIT_CONSTANTS)) {
    const value = limits[key as keyof SdkLimits];
    // parseContract checked them (positive integers within MAX_LIMITS); an i32 constant holds them.
    if (!Number.isSafeInteger(value) || value < 1 || value > 0x7fffffff) throw new RangeError(`limits.${key} is not a positive 32-bit integer`);
    args.push('--use', `${name}=${value}`);
  }
  return args;
}

/** The export the SDK's component mode gives the handler's call (renamed after asc, ./component.ts). */
export const SDK_CALL_EXPORT = 'enclave_component_call';

/** The SDK's allocator export in component mode (the canonical ABI's name). */
export const SDK_REALLOC_EXPORT = 'cabi_realloc';

/**
 * The name of a component build's generated entry, in the module's directory (asc reads it through
 * the build's `readFile` hook, ./compile.ts: it is never written, and a file of that name is not read).
 */
export const COMPONENT_ENTRY = '__enclave_component_entry__.ts';

/**
 * A component build's entry: imports `entry` (relative to the same directory: its top-level code
 * registers the ops, its own exports are not the module's) and exports the SDK's component functions
 * (enclave-modules/sdk/component.ts).
 * @example
 * componentEntrySource('index.ts'); // 'import "./index";\nexport { cabi_realloc, enclave_component_call } from "enclave/enclave-modules/sdk/component";\n'
 */
export function componentEntrySource(entry: string): string {
  const base = entry.replace(/\\/g, '/').replace(/\.ts$/, '');
  return (
    `import ${JSON.stringify(`./${base}`)};\n` +
    `export { ${SDK_REALLOC_EXPORT}, ${SDK_CALL_EXPORT} } from "enclave/enclave-modules/sdk/component";\n`
  );
}
