import { describe, expect, it } from 'vitest';
import { ENCLAVE_CODES, ERROR_MESSAGES, EnclaveError, isErrorCode, type ErrorCode } from '../runtime/errors.js';

describe('EnclaveError', () => {
  const codes = Object.keys(ERROR_MESSAGES) as ErrorCode[];

  for (const code of codes) {
    it(`${code}: fixed name, stable code, default message, survives a thread hop`, () => {
      const err = new EnclaveError(code);
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe('EnclaveError');
      expect(err.code).toBe(code);
      expect(err.message).toBe(ERROR_MESSAGES[code]);
      expect(err.message.length).toBeGreaterThan(10);
      const back = EnclaveError.fromJSON(JSON.parse(JSON.stringify(err)));
      expect(back.code).toBe(code);
      expect(back.message).toBe(err.message);
    });
  }

  it('every enclave code is a known code', () => {
    for (const code of ENCLAVE_CODES) expect(isErrorCode(code)).toBe(true);
  });

  it('keeps the detail apart from the message', () => {
    const err = new EnclaveError('denied', undefined, { detail: 'policy says no' });
    expect(err.message).not.toContain('policy says no');
    expect(err.toJSON()).toEqual({ code: 'denied', message: ERROR_MESSAGES.denied, detail: 'policy says no' });
  });

  it('rebuilds an unknown or missing code as internal', () => {
    expect(EnclaveError.fromJSON({ code: 'pwned', message: 'x' }).code).toBe('internal');
    expect(EnclaveError.fromJSON({}).code).toBe('internal');
    expect(isErrorCode('toString')).toBe(false);
    expect(isErrorCode('__proto__')).toBe(false);
  });
});
