/**
 * Regression tests for the argument shape checks at the boundary (issue 10, mutation survivors):
 * every bound of `int`, `float`, `str` and `bin` shapes tested at its edges (min-1 refused, min
 * accepted, max accepted, max+1 refused), `min: 0` included (a falsy bound must still bind).
 * Each test fails when the bound it names is dropped or moved by one (checked by applying it by hand).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnclave, type Enclave } from '../host/index.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';
import { shapeOutcome } from './helpers/errors.js';

const OPS = {
  bin: { args: { type: 'bin', maxLength: 4 } },
  bin_range: { args: { type: 'bin', minLength: 2, maxLength: 4 } },
  int_zero: { args: { type: 'int', min: 0, max: 10 } },
  int_neg: { args: { type: 'int', min: -5, max: -1 } },
  float: { args: { type: 'float', min: 0, max: 1.5 } },
  str: { args: { type: 'str', maxLength: 3 } },
};

let enclave: Enclave;
beforeAll(async () => {
  // The minimal module answers every op with `true`: whatever is refused was refused by the host.
  enclave = await loadEnclave(await watModule(minimalWat(), { ...MINIMAL_CONTRACT, ops: OPS }));
});
afterAll(() => {
  enclave?.close();
});

const outcome = (op: string, args: unknown): Promise<string> => shapeOutcome(enclave.call(op, args));

describe('bin shapes', () => {
  it('maxLength binds: maxLength bytes accepted, maxLength + 1 refused', async () => {
    expect(await outcome('bin', new Uint8Array(0))).toBe('accepted');
    expect(await outcome('bin', new Uint8Array(4))).toBe('accepted');
    expect(await outcome('bin', new Uint8Array(5))).toBe('invalid_args');
    expect(await outcome('bin', new Uint8Array(64))).toBe('invalid_args');
  });

  it('minLength and maxLength together: min-1 refused, min and max accepted, max+1 refused', async () => {
    expect(await outcome('bin_range', new Uint8Array(1))).toBe('invalid_args');
    expect(await outcome('bin_range', new Uint8Array(2))).toBe('accepted');
    expect(await outcome('bin_range', new Uint8Array(4))).toBe('accepted');
    expect(await outcome('bin_range', new Uint8Array(5))).toBe('invalid_args');
  });

  it('maxLength measures the view, not its buffer (a 4-byte view of a larger buffer is accepted)', async () => {
    expect(await outcome('bin', new Uint8Array(16).subarray(2, 6))).toBe('accepted');
    expect(await outcome('bin', new Uint8Array(16).subarray(2, 7))).toBe('invalid_args');
  });
});

describe('int shapes', () => {
  it('min: 0 binds (a falsy bound): -1 refused, 0 accepted', async () => {
    expect(await outcome('int_zero', -1)).toBe('invalid_args');
    expect(await outcome('int_zero', -1n)).toBe('invalid_args');
    expect(await outcome('int_zero', 0)).toBe('accepted');
  });

  it('an exact max: max accepted, max + 1 refused', async () => {
    expect(await outcome('int_zero', 10)).toBe('accepted');
    expect(await outcome('int_zero', 11)).toBe('invalid_args');
    expect(await outcome('int_zero', 11n)).toBe('invalid_args');
  });

  it('negative bounds: min-1 refused, min and max accepted, max+1 refused', async () => {
    expect(await outcome('int_neg', -6)).toBe('invalid_args');
    expect(await outcome('int_neg', -5)).toBe('accepted');
    expect(await outcome('int_neg', -1)).toBe('accepted');
    expect(await outcome('int_neg', 0)).toBe('invalid_args');
  });
});

describe('float and str shapes', () => {
  it('float min: 0 and an exact max bind at their edges', async () => {
    expect(await outcome('float', -Number.MIN_VALUE)).toBe('invalid_args');
    expect(await outcome('float', 0)).toBe('accepted');
    expect(await outcome('float', 1.5)).toBe('accepted');
    expect(await outcome('float', 1.5000000000000002)).toBe('invalid_args');
  });

  it('str maxLength counts UTF-8 bytes: 3 bytes accepted, 4 refused', async () => {
    expect(await outcome('str', 'abc')).toBe('accepted');
    expect(await outcome('str', 'abcd')).toBe('invalid_args');
    // 'é' is 2 bytes in UTF-8: 'aé' is 3 bytes (accepted), 'éé' 4 (refused) though only 2 units.
    expect(await outcome('str', 'aé')).toBe('accepted');
    expect(await outcome('str', 'éé')).toBe('invalid_args');
  });
});
