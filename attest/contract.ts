/**
 * The part of a module's `enclave.contract` section (docs/ABI.md §6) that attestation relies on:
 * name, version and svn name the module in evidence; the runtime validates the full schema.
 */
import { isPlainObject } from './_bytes.js';
import { parseLayout } from './_layout.js';
import { AttestationError, CONTRACT_SECTION, MAX_CONTRACT_BYTES } from '../core/index.js';

/** The fields of the `enclave.contract` JSON that attestation relies on; the runtime validates the rest. */
export interface ModuleContract {
  readonly name: string;
  readonly version: string;
  /** Security version number, an integer ≥ 0. */
  readonly svn: number;
  /** The capabilities the module asks for; `[]` when the contract lists none. */
  readonly capabilities: readonly string[];
  /** The contract's limits as written; `{}` when absent (the runtime applies its defaults). */
  readonly limits: Readonly<Record<string, unknown>>;
  readonly ops: Readonly<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

/**
 * Reads and checks the contract embedded in a module's `enclave.contract` section.
 * Only the fields attestation needs are checked here; the runtime validates the full schema.
 * @throws {AttestationError} `invalid_module` for bad framing; `invalid_contract` if the section is
 *   missing, duplicated, larger than `MAX_CONTRACT_BYTES` (1 MiB), not UTF-8 JSON, lacks a valid name, version, svn or ops, or has
 *   capabilities that are not a list of strings or limits that are not an object.
 * @example
 * const { name, version, svn } = readContract(bytes);
 */
export function readContract(bytes: Uint8Array): ModuleContract {
  const layout = parseLayout(bytes);
  const found = layout.content.filter((s) => s.id === 0 && s.name === CONTRACT_SECTION);
  if (found.length !== 1) {
    throw new AttestationError(
      'invalid_contract',
      found.length === 0
        ? 'the module has no enclave.contract section; rebuild it with a contract'
        : 'the module has more than one enclave.contract section; rebuild it with exactly one',
    );
  }
  const section = found[0]!;
  const payload = bytes.subarray(section.payloadStart, section.end);
  // The runtime's parser applies the same bound (core: MAX_CONTRACT_BYTES).
  if (payload.length > MAX_CONTRACT_BYTES) {
    throw new AttestationError(
      'invalid_contract',
      `the enclave.contract section is ${payload.length} bytes, more than the 1 MiB (${MAX_CONTRACT_BYTES} bytes) a contract may hold; shorten it and rebuild`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch (err) {
    throw new AttestationError('invalid_contract', 'the contract is not UTF-8 JSON; rebuild the module', { cause: err });
  }
  return checkContract(json);
}

function checkContract(json: unknown): ModuleContract {
  const bad = (field: string): never => {
    throw new AttestationError('invalid_contract', `the contract field "${field}" is missing or invalid; fix the contract and rebuild`);
  };
  if (!isPlainObject(json)) return bad('(root)');
  if (typeof json.name !== 'string' || json.name.length === 0) bad('name');
  if (typeof json.version !== 'string' || json.version.length === 0) bad('version');
  if (!Number.isSafeInteger(json.svn) || (json.svn as number) < 0) bad('svn');
  // Optional, as for the runtime (docs/ABI.md §6): absent means none granted / the default limits.
  // Required here, a module the runtime loads had no identity (`moduleIdentity` refused its contract).
  const capabilities = json.capabilities ?? [];
  if (!Array.isArray(capabilities) || !capabilities.every((c) => typeof c === 'string')) bad('capabilities');
  const limits = json.limits ?? {};
  if (!isPlainObject(limits)) bad('limits');
  if (!isPlainObject(json.ops)) bad('ops');
  return { ...json, capabilities, limits } as unknown as ModuleContract;
}

