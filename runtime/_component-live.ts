/**
 * A component instance as the call path sees it (issue 14, decisions 4 to 6): jco's glue wires the
 * core instances and serves the imports; the runtime enters the core handler export itself, and
 * turns the canonical ABI's result area into the core ABI's reply envelope, so everything after
 * (decodeReply, limits, codes, worker path, stats) is the code core modules use.
 *
 * ```
 *  instantiate ─► glue.instantiate(getCoreModule, imports, instantiateCore)   (synchronous)
 *                   instantiateCore: each core module once, its deferred start under the start
 *                   budget, its fuel counter and mutable globals collected
 *               ─► Live: alloc = cabi_realloc(0, 0, 1, len), call = `handler@1.0.0#call`
 *  one call     ─► every counter = budget; alloc, copy in, call ─► retptr
 *               ─► result area read with our bounds ─► envelope in a host buffer ─► post-return
 *               ─► fuel used = Σ (budget − left); any counter below zero, or the sum above the
 *                  budget: fuel_exhausted
 * ```
 *
 * Every core module has its own counter (the instrumenter gives each one), so a call's work is
 * bounded by (core modules × budget) at worst while the accounting stays exact: the sum over all
 * counters is checked against the budget after the call (docs/LIMITS.md, "Fuel").
 */
import { EnclaveError, ENCLAVE_CODES, readComponentInfo, type ErrorCode } from '../core/index.js';
import { FUEL_EXPORT, GLOBAL_EXPORT_PREFIX, INSTRUMENTER_VERSION, START_EXPORT, type FuelManifest } from './fuel.js';
import { HANDLER_CALL_EXPORT, POST_RETURN_EXPORT, REALLOC_EXPORT } from './_component-world.js';
import { isStackOverflow, refreshViews, type ComponentLive, type Live } from './_live.js';

/** The glue's entry (jco, `instantiation: async`): returns the exports at once when both hooks are synchronous. */
export type GlueInstantiate = (
  getCoreModule: (name: string) => WebAssembly.Module,
  imports: Record<string, Record<string, unknown>>,
  instantiateCore: (module: WebAssembly.Module, imports?: WebAssembly.Imports) => WebAssembly.Instance,
) => unknown;

/** What every instance of one component is made from. */
export interface ComponentProgram {
  /** The glue's `instantiate`, loaded from its source (runtime/_component-module.ts `loadGlue`). */
  readonly instantiate: GlueInstantiate;
  /** The compiled core modules, in the component's order (instrumented unless unmetered). */
  readonly modules: readonly WebAssembly.Module[];
  /** The name the glue asks for each (same order). */
  readonly names: readonly string[];
  /** Each module's fuel manifest (same order); undefined when unmetered. */
  readonly manifests: readonly FuelManifest[] | undefined;
  /** Index of the main module: the one exporting the handler, `memory` and `cabi_realloc`. */
  readonly main: number;
}

/** The parts of a compiled component that cross to a worker (structured-cloneable). */
export interface ComponentParts {
  /** The glue's ES module source, checked and patched (runtime/_component-glue.ts). */
  readonly glue: string;
  /** The instrumented core modules, compiled, in the component's order. */
  readonly modules: readonly WebAssembly.Module[];
  /** The name the glue asks for each. */
  readonly names: readonly string[];
  /** Each one's fuel manifest. */
  readonly manifests: readonly FuelManifest[];
  /** Index of the main core module (the handler, `memory`, `cabi_realloc`). */
  readonly main: number;
  /** Table elements over every core module (the limit `tableElements` covers them all). */
  readonly tableElements: number;
}

/** The fuel manifest of the component as a whole, for what `create` reads of one (per-call snapshots). */
export function combinedManifest(manifests: readonly FuelManifest[]): FuelManifest {
  return Object.freeze({
    version: INSTRUMENTER_VERSION,
    hasStart: manifests.some((m) => m.hasStart),
    mutableGlobals: manifests.reduce((n, m) => n + m.mutableGlobals, 0),
    snapshotSafe: manifests.every((m) => m.snapshotSafe),
    chargePoints: manifests.reduce((n, m) => n + m.chargePoints, 0),
  });
}

export type { ComponentLive } from './_live.js';

/** `types.error-code` in the WIT enum's order, as the core ABI's codes (docs/ABI.md §9). */
const WIT_ERROR_CODES: readonly ErrorCode[] = [
  'bad_request',
  'unknown_op',
  'denied',
  'state',
  'limit',
  'internal',
  'unseal_failed',
  'rollback',
  'not_found',
  'conflict',
  'decrypt_failed',
];
for (const code of WIT_ERROR_CODES) if (!ENCLAVE_CODES.includes(code)) throw new Error(`${code} is not an enclave code`);

/** Bytes of an error message read from the guest (the reply keeps 256 of them). */
export const MAX_ERROR_MESSAGE = 1024;
/** The result area: discriminant @0; ok ptr @4, len @8; err code @4, message ptr @8, len @12. */
const AREA_BYTES = 16;
/** `{ok: …}`: fixmap 1, fixstr "ok". */
const OK_HEADER = Uint8Array.of(0x81, 0xa2, 0x6f, 0x6b);
const utf8 = new TextEncoder();
/** `{err: {code: <str>, message: <str>}}` up to the code's string, and what follows it, made once. */
const ERR_HEAD = Uint8Array.of(0x81, 0xa3, 0x65, 0x72, 0x72, 0x82, 0xa4, 0x63, 0x6f, 0x64, 0x65);
const MESSAGE_KEY = Uint8Array.of(0xa7, ...utf8.encode('message'));
const CODE_STRINGS: readonly Uint8Array[] = WIT_ERROR_CODES.map((c) => Uint8Array.of(0xa0 | c.length, ...utf8.encode(c)));
/** The longest err envelope: head, the longest code, the key, a str16 header, the message. */
export const MAX_ERR_ENVELOPE = ERR_HEAD.length + Math.max(...CODE_STRINGS.map((c) => c.length)) + MESSAGE_KEY.length + 3 + MAX_ERROR_MESSAGE;

function startError(err: unknown, counter: WebAssembly.Global | undefined, budget: number): EnclaveError {
  if (err instanceof EnclaveError) return err;
  if (counter !== undefined && (counter.value as number) < 0) {
    return new EnclaveError('fuel_exhausted', `The start function used more than its ${budget} units of fuel.`, { cause: err });
  }
  return new EnclaveError(isStackOverflow(err) ? 'stack_overflow' : 'trap', 'The enclave trapped while starting.', { cause: err });
}

/**
 * Instantiates a component through its glue, synchronously, and returns its {@link Live}.
 * @param imports the capabilities in the glue's shape (runtime/capabilities/_component.ts).
 * @param charging called with a core instance's fuel counter before its start function runs: the
 *   counter the imports it calls must charge (the caller's import context reads it).
 * @throws {EnclaveError} `trap`, `stack_overflow` or `fuel_exhausted` when a start function fails;
 *   `invalid_module` when the component instantiates a core module twice or never instantiates
 *   the main one; `internal` when the glue
 *   does not behave as this runtime expects.
 */
export function instantiateComponent(
  program: ComponentProgram,
  imports: Record<string, Record<string, unknown>>,
  budget: number,
  charging: (counter: WebAssembly.Global) => void = () => undefined,
): Live {
  const { modules, names, manifests } = program;
  const instances: (WebAssembly.Instance | undefined)[] = modules.map(() => undefined);
  const counters: WebAssembly.Global[] = [];
  const globals: WebAssembly.Global[] = [];
  let mainCounter: WebAssembly.Global | undefined;

  const getCoreModule = (name: string): WebAssembly.Module => {
    const i = names.indexOf(name);
    if (i === -1) throw new EnclaveError('internal', 'The component glue asked for a core module the component does not have.');
    return modules[i]!;
  };
  const instantiateCore = (module: WebAssembly.Module, coreImports?: WebAssembly.Imports): WebAssembly.Instance => {
    const i = modules.indexOf(module);
    if (i === -1) throw new EnclaveError('internal', 'The component glue instantiated a module that is not the component’s.');
    // Each core module once: an instance is a memory (or a table) more than the limits were checked for.
    if (instances[i] !== undefined) throw new EnclaveError('invalid_module', `The component instantiates its core module ${i} more than once; the runtime runs each once.`);
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, coreImports);
    } catch (err) {
      throw startError(err, undefined, budget);
    }
    instances[i] = instance;
    const manifest = manifests?.[i];
    if (manifest !== undefined) {
      const exports = instance.exports as Record<string, unknown>;
      const counter = exports[FUEL_EXPORT] as WebAssembly.Global;
      counters.push(counter);
      if (i === program.main) mainCounter = counter;
      for (let g = 0; g < manifest.mutableGlobals; g++) globals.push(exports[`${GLOBAL_EXPORT_PREFIX}${g}`] as WebAssembly.Global);
      // The deferred start function (runtime/fuel.ts), under its own counter's start budget. The
      // imports it calls (jco's crossing, the capability's own cost) are charged to that counter:
      // the context's counter is the main instance's only once instantiation is over.
      counter.value = budget;
      if (manifest.hasStart) {
        charging(counter);
        try {
          (exports[START_EXPORT] as () => void)();
        } catch (err) {
          throw startError(err, counter, budget);
        }
      }
    }
    return instance;
  };

  let result: unknown;
  try {
    result = program.instantiate(getCoreModule, imports, instantiateCore);
  } catch (err) {
    throw startError(err, undefined, budget);
  }
  if (typeof (result as PromiseLike<unknown> | null)?.then === 'function') {
    (result as Promise<unknown>).then(undefined, () => undefined);
    throw new EnclaveError('internal', 'The component glue did not instantiate synchronously.');
  }
  const main = instances[program.main];
  // The component's own wiring: it may lift its handler from another core module and never
  // instantiate the one exporting the handler's core function (the bytes' fault, not the runtime's).
  if (main === undefined) {
    throw new EnclaveError('invalid_module', `The component never instantiates its core module ${program.main}, the one exporting "${HANDLER_CALL_EXPORT}", memory and cabi_realloc.`);
  }
  const exports = main.exports as Record<string, unknown>;
  const memory = exports.memory;
  const realloc = exports[REALLOC_EXPORT];
  const call = exports[HANDLER_CALL_EXPORT];
  const post = exports[POST_RETURN_EXPORT];
  // Checked at compile from the module's own exports (runtime/_component-module.ts); again here, cheaply.
  if (!(memory instanceof WebAssembly.Memory) || typeof realloc !== 'function' || typeof call !== 'function') {
    throw new EnclaveError('internal', 'The main core instance lacks its memory, cabi_realloc or handler export.');
  }
  const alloc = realloc as (a: number, b: number, align: number, len: number) => number;
  return {
    memory,
    alloc: (len: number) => alloc(0, 0, 1, len),
    call: call as Live['call'],
    u8: new Uint8Array(memory.buffer),
    view: new DataView(memory.buffer),
    done: new Set(),
    reportsValid: false,
    callSerial: 0,
    fuel: mainCounter,
    globals,
    component: { counters, postReturn: typeof post === 'function' ? (post as (ret: number) => void) : undefined },
  };
}

/** Sets every counter of a component instance to the call's budget. */
export function startCounters(component: ComponentLive, budget: number): void {
  const counters = component.counters;
  for (let i = 0; i < counters.length; i++) counters[i]!.value = budget;
}

/**
 * The fuel a component call has used: Σ (budget − left) over every counter; -1 when a counter
 * ran below zero or the sum passed the budget (fuel_exhausted).
 */
export function componentFuelUsed(component: ComponentLive, budget: number): number {
  const counters = component.counters;
  let used = 0;
  for (let i = 0; i < counters.length; i++) {
    const left = counters[i]!.value as number;
    if (left < 0) return -1;
    used += budget - left;
  }
  return used > budget ? -1 : used;
}

/** What is left of a component call's budget (budget − used), or -1 when it ran out. */
export function componentFuelLeft(component: ComponentLive, budget: number): number {
  const used = componentFuelUsed(component, budget);
  return used < 0 ? -1 : budget - used;
}

/** A host buffer for reply envelopes, grown as needed (one per enclave: no allocation per call). */
export interface ReplyBuffer {
  bytes: Uint8Array;
}

function room(out: ReplyBuffer, size: number): Uint8Array {
  if (out.bytes.length < size) out.bytes = new Uint8Array(Math.max(size, out.bytes.length * 2));
  return out.bytes;
}

function badReply(message: string): never {
  throw new EnclaveError('bad_reply', message);
}

/**
 * Reads the result area at `ret` (docs of issue 14, decision 5) and writes the core ABI's reply
 * envelope for it into `out`, then runs post-return. Every number read from the guest is hostile.
 * @returns the envelope's length in `out.bytes`.
 * @throws {EnclaveError} `bad_reply` for a result area, list or message outside memory or
 *   misaligned, a discriminant other than 0 and 1, an error code outside `types.error-code`;
 *   `too_large` when the ok list is over `replyBytes` with its 4 bytes of envelope (checked before
 *   anything is read).
 */
export function componentReply(live: Live, component: ComponentLive, ret: number, replyBytes: number, out: ReplyBuffer): number {
  let u8 = live.u8;
  if (u8.length === 0 || u8.buffer !== live.memory.buffer) u8 = refreshViews(live);
  if (ret % 4 !== 0 || ret + AREA_BYTES > u8.length) badReply('The result area lies outside enclave memory or is misaligned.');
  const view = live.view;
  const disc = u8[ret]!;
  let length: number;
  if (disc === 0) {
    const ptr = view.getUint32(ret + 4, true);
    const len = view.getUint32(ret + 8, true);
    // The limit first: a list both over it and outside memory is too_large, and nothing is read.
    if (len + OK_HEADER.length > replyBytes) {
      component.postReturn?.(ret);
      throw new EnclaveError('too_large', `The reply is ${len + OK_HEADER.length} bytes; the limit is ${replyBytes}.`);
    }
    if (ptr + len > u8.length) badReply('The reply lies outside enclave memory.');
    const bytes = room(out, len + OK_HEADER.length);
    bytes.set(OK_HEADER, 0);
    bytes.set(u8.subarray(ptr, ptr + len), OK_HEADER.length);
    length = len + OK_HEADER.length;
  } else if (disc === 1) {
    const code = u8[ret + 4]!;
    if (code >= WIT_ERROR_CODES.length) badReply('The enclave replied with an error code outside the world’s error-code.');
    const ptr = view.getUint32(ret + 8, true);
    const len = view.getUint32(ret + 12, true);
    if (ptr + len > u8.length) badReply('The error message lies outside enclave memory.');
    // Only the first MAX_ERROR_MESSAGE bytes, cut on a character boundary (the reply keeps 256).
    let n = Math.min(len, MAX_ERROR_MESSAGE);
    if (n < len) while (n > 0 && (u8[ptr + n]! & 0xc0) === 0x80) n--;
    const bytes = room(out, MAX_ERR_ENVELOPE);
    let p = 0;
    bytes.set(ERR_HEAD, p);
    p += ERR_HEAD.length;
    const codeString = CODE_STRINGS[code]!;
    bytes.set(codeString, p);
    p += codeString.length;
    bytes.set(MESSAGE_KEY, p);
    p += MESSAGE_KEY.length;
    if (n < 32) {
      bytes[p++] = 0xa0 | n;
    } else if (n < 256) {
      bytes[p++] = 0xd9;
      bytes[p++] = n;
    } else {
      bytes[p++] = 0xda;
      bytes[p++] = n >>> 8;
      bytes[p++] = n & 0xff;
    }
    bytes.set(u8.subarray(ptr, ptr + n), p);
    length = p + n;
  } else {
    badReply(`The result area's discriminant is ${disc}; the world's result has 0 (ok) and 1 (err).`);
  }
  component.postReturn?.(ret);
  return length;
}

/** @internal For tests: the core ABI code of each `types.error-code` discriminant. */
export const COMPONENT_ERROR_CODES = WIT_ERROR_CODES;

/** The name stack traces give the glue's frames. */
export const GLUE_SOURCE_URL = 'enclave-component-glue.js';

/**
 * The glue's `instantiate`, its source imported as a `data:` URL module (evaluating it defines
 * functions only; everything runs in `instantiate`). Node keeps a module per distinct source for
 * the process's life: about 1.2 MB of resident memory per distinct component loaded (measured:
 * the vault's 160 KB glue, its source, its data: URL and its compiled code), never freed.
 * @throws {EnclaveError} `internal` when the source does not load or has no `instantiate`.
 */
export async function loadGlue(glue: string): Promise<GlueInstantiate> {
  let mod: { instantiate?: unknown };
  try {
    // Named by a sourceURL: otherwise every stack frame in the glue names the module by its whole
    // data: URL (the base64 glue, ~220 KB), and an error from an instantiation or an import call
    // carried stacks of ~390 KB each (its cause's as much again), printed whole by any logger.
    const source = `${glue}\n//# sourceURL=${GLUE_SOURCE_URL}\n`;
    mod = (await import(`data:text/javascript;base64,${Buffer.from(source, 'utf8').toString('base64')}`)) as { instantiate?: unknown };
  } catch (err) {
    throw new EnclaveError('internal', 'The component glue does not load.', { cause: err });
  }
  if (typeof mod.instantiate !== 'function') throw new EnclaveError('internal', 'The component glue has no instantiate function.');
  return mod.instantiate as GlueInstantiate;
}

/**
 * The program of an unmetered enclave (`metering: false`): the original core modules (read again
 * from the component's bytes, validated and instrumented once already at compile) compiled as
 * they are; their start functions run at instantiation, as a core module's do.
 */
export function plainProgram(original: Uint8Array, component: ComponentParts, instantiate: GlueInstantiate): ComponentProgram {
  const { coreModules } = readComponentInfo(original);
  return {
    instantiate,
    modules: coreModules.map((m) => new WebAssembly.Module(m)),
    names: component.names,
    manifests: undefined,
    main: component.main,
  };
}

/**
 * The program of a component's parts, its glue loaded: in a worker, before the module is rebuilt
 * from its parts (runtime/_worker-main.ts).
 * @throws {EnclaveError} `internal` when the glue does not load.
 */
export async function componentProgram(component: ComponentParts): Promise<ComponentProgram> {
  return {
    instantiate: await loadGlue(component.glue),
    modules: component.modules,
    names: component.names,
    manifests: component.manifests,
    main: component.main,
  };
}
