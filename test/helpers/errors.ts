import { expect } from 'vitest';
import { AttestationError, EnclaveError } from '../../core/index.js';

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

/** The EnclaveError code `fn` throws synchronously; fails the test if it returns or throws anything else. */
export function syncCodeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return (err as EnclaveError).code;
  }
  throw new Error('expected a throw');
}

/** The AttestationError code `fn` throws; `no error` if it returns, `other error: …` for any other throw. */
export function attestationCodeOf(fn: () => unknown): string {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return err instanceof AttestationError ? err.code : `other error: ${String(err)}`;
  }
}

/** The AttestationError code `p` rejects with; `no error` if it resolves, `other error: …` for any other rejection. */
export async function attestationCodeOfAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'no error';
  } catch (err) {
    return err instanceof AttestationError ? err.code : `other error: ${String(err)}`;
  }
}

/**
 * `accepted` if the call resolves with `true` (an op whose shape let the args through), else the
 * stable code it was refused with; fails the test on any other value or error.
 */
export async function shapeOutcome(call: Promise<unknown>): Promise<string> {
  try {
    expect(await call).toBe(true);
    return 'accepted';
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    return err.code;
  }
}
