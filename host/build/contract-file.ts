/**
 * A contract.json read and checked for embedding, by `enclave build` (host/build-modules.ts) and by
 * `enclave embed-contract` (./embed.ts): one reader, so both refuse the same contracts with the same
 * code and message. Also the one way the `enclave.contract` section is appended to module bytes.
 */
import { CONTRACT_SECTION, EnclaveError, encodeCustomSection, MAX_CONTRACT_BYTES, readBoundedFile } from '../../core/index.js';
import { parseContract, type Contract } from '../../runtime/index.js';

/** A contract read from its file: parsed (defaults filled in) and the bytes to embed. */
export interface ContractFile {
  readonly contract: Contract;
  /** The contract as the author wrote it (parsed JSON), re-serialised without whitespace: the section's payload. */
  readonly payload: Uint8Array;
}

/**
 * Reads a contract.json and checks it: JSON, a valid contract (the runtime's own parser), limits
 * whose request and reply fit in its memory, and at most MAX_CONTRACT_BYTES once re-serialised.
 * Every message starts with the file's path.
 * @throws {EnclaveError} `invalid_contract` (a file that cannot be read too, naming why), or
 *   `unsupported_abi` for a later `abi`.
 * @example
 * const { contract, payload } = await readContractFile('enclave-modules/echo/contract.json');
 */
export async function readContractFile(file: string): Promise<ContractFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readContractText(file));
  } catch (err) {
    if (err instanceof EnclaveError) throw err;
    throw new EnclaveError('invalid_contract', `${file} is not readable JSON: ${(err as Error).message}`, { cause: err });
  }
  let contract: Contract;
  try {
    contract = parseContract(raw);
  } catch (err) {
    if (err instanceof EnclaveError) throw new EnclaveError(err.code, `${file}: ${err.message}`, { cause: err });
    throw err;
  }
  // The runtime copies a request of up to requestBytes into the module's memory and reads a reply of
  // up to replyBytes from it (the SDK holds both at once): with limits they cannot fit in, the module
  // would load, and a call its contract allows would trap and lose the instance's state. (Necessary,
  // not sufficient: the module's own data needs room too.)
  const { requestBytes, replyBytes, memoryPages } = contract.limits;
  if (requestBytes + replyBytes > memoryPages * 65536) {
    throw new EnclaveError(
      'invalid_contract',
      `${file}: limits.requestBytes (${requestBytes}) and limits.replyBytes (${replyBytes}) do not fit in limits.memoryPages ` +
        `(${memoryPages} pages of 64 KiB): the SDK holds a request and a reply in the module's memory; raise memoryPages above ` +
        `${Math.ceil((requestBytes + replyBytes) / 65536)}, or lower the byte limits.`,
    );
  }
  // Embedded as the author wrote it, validated and re-serialised without whitespace (the same bytes
  // every time); parseContract fills in the same defaults at load. The runtime refuses a section
  // over MAX_CONTRACT_BYTES: refused here, before anything compiles (re-serialising can grow it).
  const payload = new TextEncoder().encode(JSON.stringify(raw));
  if (payload.length > MAX_CONTRACT_BYTES) throw contractTooLarge(file, `${payload.length} bytes re-serialised (without whitespace)`);
  return { contract, payload };
}

function contractTooLarge(file: string, size: string): EnclaveError {
  return new EnclaveError(
    'invalid_contract',
    `${file} is ${size}, more than the 1 MiB (${MAX_CONTRACT_BYTES} bytes) a contract may hold: shorten it.`,
  );
}

/**
 * A contract.json's text, read with a bound ({@link readBoundedFile}): a regular file of at most
 * MAX_CONTRACT_BYTES. A FIFO, a device such as /dev/zero or a huge file is refused, never waited on
 * nor read whole.
 * @throws {EnclaveError} `invalid_contract`; the file system's error when it cannot be read.
 */
async function readContractText(file: string): Promise<string> {
  const read = await readBoundedFile(file, MAX_CONTRACT_BYTES);
  switch (read.kind) {
    case 'ok':
      return Buffer.from(read.bytes.buffer, read.bytes.byteOffset, read.bytes.length).toString('utf8');
    case 'not_regular':
      throw new EnclaveError('invalid_contract', `${file} is not a regular file: a contract is a JSON file.`);
    case 'too_large':
      throw contractTooLarge(file, read.atLeast ? `over ${MAX_CONTRACT_BYTES} bytes` : `${read.size} bytes`);
    case 'errno':
      throw read.error;
  }
}

/**
 * The module (a core module or a component: the custom section's framing is the same) with the
 * contract appended as its `enclave.contract` section, at the end: nothing before it moves.
 * @example
 * const built = appendContract(compiled, payload);
 */
export function appendContract(bytes: Uint8Array, payload: Uint8Array): Uint8Array {
  const section = encodeCustomSection(CONTRACT_SECTION, payload);
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes, 0);
  out.set(section, bytes.length);
  return out;
}
