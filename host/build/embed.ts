/**
 * `enclave embed-contract`: the contract of a module made by any toolchain (clang, Rust, TinyGo, a
 * hand-written WAT, a component from wit-component) embedded as its `enclave.contract` section,
 * with the checks `enclave build` makes (./contract-file.ts, ./check.ts), not copies of them:
 *
 * 1. the contract is valid (the runtime's own parser, the limits fit the memory, ≤ 1 MiB);
 * 2. the module carries no contract yet (one is never replaced: it is part of the measurement) and
 *    no signature (a section appended after signing would make every signature fail);
 * 3. the result loads under the runtime (`EnclaveModule.compile` on the output bytes: for a
 *    component, the gate and the world check), its memory maximum is at most `limits.memoryPages`,
 *    and it starts under the contract's fuel;
 * 4. each op has a handler, where the module answers the handler probe (docs/ABI.md §4.1): an op
 *    answered `unknown_op` is refused; a module whose answers are not the probe's (it ignores the
 *    key, or traps without the runtime's imports) is embedded with the handler check reported as
 *    not made, and why. A core module is probed unmetered in a worker with the plain WebAssembly
 *    API, a component through the runtime under its fuel (./check.ts `probeHandlers`).
 */
import { CONTRACT_SECTION, customSections, EnclaveError, isComponent, SIGNATURE_SECTION, UsageError, WasmFormatError } from '../../core/index.js';
import type { Contract } from '../../runtime/index.js';
import { checkLoads, LOAD_CHECK_DEADLINE_MS, probeHandlers } from './check.js';
import { appendContract, type ContractFile } from './contract-file.js';

/** What the handler check found. */
export type HandlerCheck =
  /** Every op answered the probe: each has a handler. */
  | { readonly checked: true }
  /** The module does not answer the probe (as a module that is not built with the SDK may not): why. */
  | { readonly checked: false; readonly why: string };

/** A module with its contract embedded, and checked. */
export interface Embedded {
  readonly kind: 'module' | 'component';
  /** The module's bytes with the `enclave.contract` section appended. */
  readonly bytes: Uint8Array;
  readonly contract: Contract;
  /** SHA-256 of the result without its signature sections, hex: what the runtime measures. */
  readonly measurement: string;
  readonly handlers: HandlerCheck;
}

/**
 * Embeds a checked contract into a module or component and checks the result.
 * @param deadlineMs - how long the handler probe may take (tests pass less).
 * @throws {EnclaveError} `invalid_contract` when the module already carries a contract;
 *   `invalid_module` for bytes that are not a module or a component; the runtime's code when the
 *   result does not load (`invalid_module`, `capability_denied`, `memory_limit`, `trap`,
 *   `fuel_exhausted`, ...); `build_failed` naming the contract ops the module has no handler for.
 *   {@link UsageError} for a signed module.
 * @example
 * const { bytes } = await embedContract(wasm, await readContractFile('contract.json'));
 */
export async function embedContract(module: Uint8Array, contract: ContractFile, deadlineMs = LOAD_CHECK_DEADLINE_MS): Promise<Embedded> {
  const kind = isComponent(module) ? 'component' : 'module';
  let present: number;
  let signatures: number;
  try {
    present = customSections(module, CONTRACT_SECTION).length;
    signatures = customSections(module, SIGNATURE_SECTION).length;
  } catch (err) {
    if (err instanceof WasmFormatError) {
      throw new EnclaveError('invalid_module', `The file is not a WebAssembly module or component: ${err.message}.`, { cause: err });
    }
    throw err;
  }
  if (present > 0) {
    throw new EnclaveError(
      'invalid_contract',
      `The ${kind} already carries an enclave.contract section: embed-contract never replaces one (the contract is part of the ` +
        `measurement). Embed into the ${kind} as your toolchain wrote it.`,
    );
  }
  if (signatures > 0) {
    throw new UsageError(
      `The ${kind} is signed: a contract appended now would make its signatures fail. Embed the contract into the unsigned ` +
        `${kind}, then sign the result (enclave sign).`,
    );
  }
  const bytes = appendContract(module, contract.payload);
  const mod = await checkLoads(bytes, contract.contract, 'within');
  const handlers = await checkHandlers(bytes, contract.contract, deadlineMs);
  return { kind, bytes, contract: contract.contract, measurement: mod.measurement, handlers };
}

/** The handler check: refuses ops answered `unknown_op`, else says whether every op answered the probe. */
async function checkHandlers(bytes: Uint8Array, contract: Contract, deadlineMs: number): Promise<HandlerCheck> {
  const kind = isComponent(bytes) ? 'component' : 'module';
  const probe = await probeHandlers(bytes, contract, deadlineMs);
  const missing = probe.answers.filter((a) => a.kind === 'missing').map((a) => a.op);
  if (missing.length > 0) {
    const list = missing.map((op) => JSON.stringify(op)).join(', ');
    throw new EnclaveError(
      'build_failed',
      `The ${kind} has no handler for ${missing.length === 1 ? 'the contract op' : 'the contract ops'} ${list} (its probe answered ` +
        `unknown_op): add ${missing.length === 1 ? 'one' : 'them'} to the module, or remove ${missing.length === 1 ? 'it' : 'them'} from the contract.`,
    );
  }
  if (probe.failed !== undefined) {
    const ops = Object.keys(contract.ops);
    const started = kind === 'module' ? 'when it started (its top-level code, without the runtime)' : 'when it loaded';
    const where = probe.failed.stage < 0 ? started : `probing ${JSON.stringify(ops[probe.failed.stage])}`;
    return { checked: false, why: `the probe failed ${where}: ${probe.failed.why}` };
  }
  const other = probe.answers.find((a) => a.kind === 'other');
  if (other !== undefined && other.kind === 'other') {
    return { checked: false, why: `the ${kind} does not answer the handler probe: probing ${JSON.stringify(other.op)}, ${other.why}` };
  }
  return { checked: true };
}
