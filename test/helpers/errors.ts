import { expect } from 'vitest';
import { EnclaveError } from '../../core/index.js';

/** The stable code a rejected call ends with; fails the test if it resolves or rejects with anything but an EnclaveError. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return (err as EnclaveError).code;
  }
  throw new Error('expected a rejection');
}
