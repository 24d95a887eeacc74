/**
 * One bound on the `enclave.contract` section, declared once (core: MAX_CONTRACT_BYTES) and applied
 * by the runtime's parser and attest's alike: a larger contract is `invalid_contract` from either,
 * never `invalid_module` about a signature section the module does not have.
 */
import { describe, expect, it } from 'vitest';
import { readContract } from '../attest/index.js';
import { EnclaveError, MAX_CONTRACT_BYTES } from '../core/index.js';
import { compileEnclave } from '../host/index.js';
import { parseContractBytes } from '../runtime/contract.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

/** The minimal contract as UTF-8 JSON of exactly `size` bytes (a `description` pads it). */
function contractOf(size: number): Uint8Array {
  const empty = JSON.stringify({ ...MINIMAL_CONTRACT, description: '' });
  const json = JSON.stringify({ ...MINIMAL_CONTRACT, description: 'x'.repeat(size - empty.length) });
  const bytes = new TextEncoder().encode(json);
  expect(bytes.length).toBe(size);
  return bytes;
}

function moduleWith(contract: Uint8Array): Promise<Uint8Array> {
  return watModule(minimalWat(), contract);
}

function refusal(run: () => unknown): EnclaveError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return err as EnclaveError;
  }
  throw new Error('expected a refusal');
}

describe(`a contract larger than MAX_CONTRACT_BYTES (${MAX_CONTRACT_BYTES})`, () => {
  it('is 1 MiB', () => {
    expect(MAX_CONTRACT_BYTES).toBe(1024 * 1024);
  });

  it('the runtime refuses it with invalid_contract, saying how large it is and the bound', () => {
    const err = refusal(() => parseContractBytes(contractOf(MAX_CONTRACT_BYTES + 1)));
    expect(err.code).toBe('invalid_contract');
    expect(err.message).toMatch(/1048577 bytes.*1 MiB/);
  });

  it('attest refuses it with invalid_contract, with the same message', async () => {
    const mod = await moduleWith(contractOf(MAX_CONTRACT_BYTES + 1));
    const err = refusal(() => readContract(mod));
    expect(err.code).toBe('invalid_contract');
    expect(err.message).toMatch(/1048577 bytes.*1 MiB/);
  });

  it('loading an unsigned module with it fails with invalid_contract, not invalid_module about a signature', async () => {
    const mod = await moduleWith(contractOf(MAX_CONTRACT_BYTES + 1));
    const err = await compileEnclave(mod, { cacheDir: false }).then(
      () => undefined,
      (e: unknown) => e as EnclaveError,
    );
    expect(err).toBeInstanceOf(EnclaveError);
    expect(err!.code).toBe('invalid_contract');
    expect(err!.message).not.toMatch(/signature/);
  });

  it('a contract of exactly MAX_CONTRACT_BYTES is read by both and the module loads', async () => {
    const contract = contractOf(MAX_CONTRACT_BYTES);
    expect(parseContractBytes(contract).name).toBe('minimal');
    const mod = await moduleWith(contract);
    expect(readContract(mod).name).toBe('minimal');
    const compiled = await compileEnclave(mod, { cacheDir: false });
    expect(compiled.contract.name).toBe('minimal');
  });
});
