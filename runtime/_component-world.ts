/**
 * The enclave world of wit/enclave.wit, as the runtime checks a component against it: the names of
 * its interfaces and of the core functions the canonical ABI gives them, and {@link checkWorld},
 * which runs on what the gate read (core/component-binary.ts) before jco sees the bytes.
 *
 * A component imports only the world's interfaces (each an instance named exactly
 * `enclave:runtime/<iface>@1.0.0`), only the capability interfaces its contract declares, and
 * exports exactly the handler instance. Names are compared exactly: no other version, no
 * unversioned name, no attribute (the gate refuses those).
 */
import { EnclaveError, importTypes, liftedTypes, MAX_CORE_MODULES, quoteInput, type ComponentInfo } from '../core/index.js';
import type { Capability } from './capabilities/index.js';
import type { Contract } from './contract.js';

export { MAX_CORE_MODULES };

/** The WIT package of the world. */
export const WORLD_PACKAGE = 'enclave:runtime';
/** Its version: every import and export name ends with `@` and it. */
export const WORLD_VERSION = '1.0.0';
/** The one export: the handler interface, an instance. */
export const HANDLER_EXPORT = `${WORLD_PACKAGE}/handler@${WORLD_VERSION}`;
/** The core export the canonical ABI lifts `handler.call` from: `(i32 ptr, i32 len) -> i32 retptr`. */
export const HANDLER_CALL_EXPORT = `${HANDLER_EXPORT}#call`;
/** The core export that frees what `call` returned, if the component has one: `(i32 retptr) -> ()`. */
export const POST_RETURN_EXPORT = `cabi_post_${HANDLER_CALL_EXPORT}`;
/** The core export the host allocates guest memory with: `(i32, i32, i32, i32) -> i32`. */
export const REALLOC_EXPORT = 'cabi_realloc';

/** The interfaces a component may import, and the capability each needs (`null`: none). */
export const INTERFACE_CAPABILITY: Readonly<Record<string, Capability | null>> = Object.freeze({
  types: null,
  random: 'random',
  clock: 'clock',
  log: 'log',
  seal: 'seal',
  counter: 'counter',
  attest: 'attest',
});

/** An interface's full import name: `enclave:runtime/<iface>@1.0.0`. */
export function interfaceName(iface: string): string {
  return `${WORLD_PACKAGE}/${iface}@${WORLD_VERSION}`;
}

const PREFIX = `${WORLD_PACKAGE}/`;
const SUFFIX = `@${WORLD_VERSION}`;

/** The interface an import name denotes, `undefined` when it is not exactly one of the world's. */
function worldInterface(name: string): string | undefined {
  if (!name.startsWith(PREFIX) || !name.endsWith(SUFFIX)) return undefined;
  const iface = name.slice(PREFIX.length, name.length - SUFFIX.length);
  return Object.hasOwn(INTERFACE_CAPABILITY, iface) ? iface : undefined;
}

function invalid(message: string): never {
  throw new EnclaveError('invalid_module', message);
}

/**
 * The capabilities a component's imports need, in the order of its imports, each once. Imports
 * outside the world are skipped: {@link checkWorld} refuses them.
 * @example
 * importedCapabilities(readComponentInfo(bytes)); // ['random', 'log']
 */
export function importedCapabilities(info: Pick<ComponentInfo, 'imports'>): Capability[] {
  const out: Capability[] = [];
  for (const imp of info.imports) {
    const iface = imp.kind === 'instance' ? worldInterface(imp.name) : undefined;
    const capability = iface === undefined ? null : INTERFACE_CAPABILITY[iface]!;
    if (capability !== null && !out.includes(capability)) out.push(capability);
  }
  return out;
}

/**
 * Checks a component's imports and exports against the enclave world and its contract.
 * @throws {EnclaveError} `invalid_module` for an import beyond the world (another name, version or
 *   kind), an import named twice, or exports other than exactly the instance {@link HANDLER_EXPORT};
 *   `capability_denied` for a capability interface the contract does not declare.
 * @example
 * checkWorld(readComponentInfo(bytes), moduleContract(bytes));
 */
export function checkWorld(info: Pick<ComponentInfo, 'imports' | 'exports'>, contract: Pick<Contract, 'capabilities'>): void {
  const seen = new Set<string>();
  for (const imp of info.imports) {
    const iface = worldInterface(imp.name);
    if (iface === undefined || imp.kind !== 'instance') {
      invalid(
        `The component imports ${quoteInput(imp.name)} (${imp.kind}), beyond the enclave world (wit/enclave.wit): it may import only the instances ${PREFIX}<interface>${SUFFIX}.`,
      );
    }
    if (seen.has(imp.name)) invalid(`The component imports ${quoteInput(imp.name)} twice.`);
    seen.add(imp.name);
    const capability = INTERFACE_CAPABILITY[iface]!;
    if (capability !== null && !(contract.capabilities as readonly string[]).includes(capability)) {
      throw new EnclaveError(
        'capability_denied',
        `The component imports ${quoteInput(imp.name)} but its contract does not declare the "${capability}" capability.`,
      );
    }
  }
  const [only, ...more] = info.exports;
  if (only === undefined || more.length > 0 || only.name !== HANDLER_EXPORT || only.kind !== 'instance') {
    const found = info.exports.length === 0 ? 'nothing' : info.exports.slice(0, 4).map((e) => `${quoteInput(e.name)} (${e.kind})`).join(', ') + (info.exports.length > 4 ? ', ...' : '');
    invalid(`The component exports ${found}; it must export exactly the instance "${HANDLER_EXPORT}" (wit/enclave.wit).`);
  }
}

const FAILURE = 'enum{invalid, unavailable, unknown-root, svn-not-allowed, conflict, limit}';
const POLICY = 'enum{measurement, signer}';

/**
 * Every function of the world's imported interfaces with its type as core/component-types.ts
 * writes it (named types written out; field, case and parameter names included: jco's glue lifts
 * and lowers by them). A component imports a subset of each interface's functions, each with
 * exactly this type (test/component-attacks.test.ts checks this table against wit/enclave.wit).
 */
export const WORLD_FUNCTIONS: Readonly<Record<string, Readonly<Record<string, string>>>> = Object.freeze({
  types: Object.freeze({}),
  random: Object.freeze({ fill: `func(len: u32) -> result<list<u8>, ${FAILURE}>` }),
  clock: Object.freeze({ now: 'func() -> s64' }),
  log: Object.freeze({ log: 'func(level: enum{debug, info, warn, error}, message: string)' }),
  seal: Object.freeze({
    'seal-key': `func(policy: ${POLICY}) -> result<list<u8>, ${FAILURE}>`,
    'seal-key-at': `func(policy: ${POLICY}, key-id: u32, svn: option<u32>) -> result<record{key: list<u8>, key-id: u32, svn: u32}, ${FAILURE}>`,
  }),
  counter: Object.freeze({
    read: `func(policy: ${POLICY}, id: u64) -> result<record{value: u64, tag: list<u8>}, ${FAILURE}>`,
    advance: `func(policy: ${POLICY}, id: u64, expected: u64, tag: list<u8>) -> result<_, ${FAILURE}>`,
  }),
  attest: Object.freeze({ report: `func(data: list<u8>) -> result<string, ${FAILURE}>` }),
});

/**
 * Checks the TYPES of a component's imports against the world: each imported interface's
 * functions are among the world's, each with exactly the world's type. Run after
 * {@link checkWorld} (names, kinds, capabilities), before jco sees the bytes.
 *
 * jco's glue lifts an import's arguments from guest memory and lowers its results as the
 * component declares them, on the host thread, before the host function is called and outside any
 * fuel: a component declaring `log(level, message: list<string>)` had each call decode memory/8
 * strings of the whole memory (the host ran out of heap and aborted). With the world's types, what
 * the glue lifts is bounded by the arguments' own bytes, which the capabilities charge for.
 * @throws {EnclaveError} `invalid_module` for a function the world's interface does not have, a
 *   function of another type, or an imported instance type the runtime cannot read.
 * @example
 * checkWorld(info, contract); checkImportTypes(bytes);
 */
export function checkImportTypes(bytes: Uint8Array): void {
  for (const [name, types] of importTypes(bytes)) {
    const iface = worldInterface(name);
    if (iface === undefined) invalid(`The component imports ${quoteInput(name)}, beyond the enclave world (wit/enclave.wit).`);
    if (!types.resolved) {
      invalid(`The component declares ${quoteInput(name)} with a type the runtime does not read (${types.why}): it must be the interface of wit/enclave.wit.`);
    }
    const world = WORLD_FUNCTIONS[iface]!;
    for (const fn of types.functions) {
      const expected = Object.hasOwn(world, fn.name) ? world[fn.name] : undefined;
      if (expected === undefined) invalid(`The component's ${quoteInput(name)} declares the function ${quoteInput(fn.name)}, which the world's interface does not have.`);
      if (fn.type !== expected) {
        invalid(
          `The component declares ${quoteInput(`${name}#${fn.name}`)} as ${quoteInput(fn.type.slice(0, 300))}; wit/enclave.wit says ${expected} (jco's glue would lift and lower the other type on the host).`,
        );
      }
    }
  }
}

/** The type of the handler's `call` as core/component-types.ts writes it: the one function a component lifts. */
export const HANDLER_CALL_TYPE =
  'func(request: list<u8>) -> result<list<u8>, record{code: enum{bad-request, unknown-op, denied, state, limit, internal, unseal-failed, rollback, not-found, conflict, decrypt-failed}, message: string}>';

/**
 * Checks what the component lifts: exactly one function, of the type of the world's
 * `handler.call`. The runtime never calls it (it enters the core export itself), but jco's glue
 * has code for every lifted function, shaped by its type, which the host thread parses and keeps:
 * an exported function of a million-node type made a 2.6 KB component's glue 9.7 MB (700 ms of
 * parsing on the host thread, 136 MB kept for the process's life).
 * @throws {EnclaveError} `invalid_module` otherwise.
 */
export function checkLiftedTypes(bytes: Uint8Array): void {
  const lifts = liftedTypes(bytes);
  if (lifts.length !== 1) invalid(`The component lifts ${lifts.length} functions; an enclave lifts exactly one, the handler's call (wit/enclave.wit).`);
  const [lift] = lifts;
  if (!lift!.resolved) invalid(`The component lifts a function of a type the runtime does not read (${lift!.why}): it must be the handler's call of wit/enclave.wit.`);
  if (lift!.type !== HANDLER_CALL_TYPE) {
    invalid(`The component lifts a function of type ${quoteInput(lift!.type.slice(0, 300))}; the handler's call of wit/enclave.wit is ${HANDLER_CALL_TYPE}.`);
  }
}
