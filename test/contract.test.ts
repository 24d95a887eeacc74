import { describe, expect, it } from 'vitest';
import { compileShape, DEFAULT_LIMITS, parseContract, type Shape } from '../runtime/contract.js';
import { EnclaveError } from '../core/index.js';

const base = { abi: 1, name: 'demo', version: '1.0.0', svn: 3, ops: { go: {} } };

function refusal(doc: unknown): string {
  try {
    parseContract(doc);
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).code).toBe('invalid_contract');
    return (err as EnclaveError).message;
  }
  throw new Error('expected a refusal');
}

describe('parseContract', () => {
  it('fills in defaults and freezes the result', () => {
    const c = parseContract(base);
    expect(c.limits).toEqual(DEFAULT_LIMITS);
    expect(c.capabilities).toEqual([]);
    expect(c.ops.go).toEqual({ args: { type: 'any' }, reply: { type: 'any' }, requires: [], idempotent: false });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.limits)).toBe(true);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', [], /JSON object/],
    ['abi 0', { ...base, abi: 0 }, /abi/],
    ['abi as a string', { ...base, abi: '1' }, /abi/],
    ['a missing abi', (({ abi: _, ...rest }) => rest)(base), /"abi" is required/],
    ['bad name', { ...base, name: 'Bad Name' }, /name/],
    ['negative svn', { ...base, svn: -1 }, /svn/],
    ['fractional svn', { ...base, svn: 1.5 }, /svn/],
    ['unknown capability', { ...base, capabilities: ['network'] }, /capabilities/],
    ['duplicate capability', { ...base, capabilities: ['random', 'random'] }, /twice/],
    ['unknown limit', { ...base, limits: { cpu: 1 } }, /unknown field "cpu"/],
    ['zero limit', { ...base, limits: { depth: 0 } }, /depth/],
    ['contract depth of 1, too shallow for an error reply', { ...base, limits: { depth: 1 } }, /depth" must be at least 2/],
    ['limit above the ceiling', { ...base, limits: { memoryPages: 70_000 } }, /memoryPages/],
    ['no ops', { ...base, ops: {} }, /ops/],
    ['bad op name', { ...base, ops: { 'Go!': {} } }, /op name/],
    ['unknown op field', { ...base, ops: { go: { sudo: true } } }, /sudo/],
    ['requires an unknown op', { ...base, ops: { go: { requires: ['nope'] } } }, /requires/],
    ['unknown shape type', { ...base, ops: { go: { args: { type: 'date' } } } }, /shape/],
    ['shape field of another type', { ...base, ops: { go: { args: { type: 'int', maxLength: 3 } } } }, /maxLength/],
    ['required names a missing field', { ...base, ops: { go: { args: { type: 'map', fields: {}, required: ['x'] } } } }, /required/],
    ['an unknown top-level field', { ...base, admin: true }, /admin/],
  ];
  for (const [what, doc, message] of bad) {
    it(`refuses ${what}`, () => {
      expect(refusal(doc)).toMatch(message);
    });
  }

  it('refuses a later abi version with unsupported_abi, not invalid_contract', () => {
    let caught: unknown;
    try {
      parseContract({ ...base, abi: 2 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(EnclaveError);
    expect((caught as EnclaveError).code).toBe('unsupported_abi');
  });

  it('accepts a contract depth of 2, the smallest that can carry an error reply', () => {
    expect(parseContract({ ...base, limits: { depth: 2 } }).limits.depth).toBe(2);
  });

  it('refuses shapes nested absurdly deep without overflowing the stack', () => {
    let shape: unknown = { type: 'int' };
    for (let i = 0; i < 10_000; i++) shape = { type: 'array', items: shape };
    expect(refusal({ ...base, ops: { go: { args: shape } } })).toMatch(/deeper/);
  });
});

describe('compileShape', () => {
  const check = (shape: Shape, value: unknown) => compileShape(shape)(value);

  it('accepts what fits and names what does not', () => {
    const shape: Shape = {
      type: 'map',
      fields: {
        by: { type: 'int', min: 1, max: 10 },
        tag: { type: 'str', maxLength: 4 },
        key: { type: 'bin', minLength: 32, maxLength: 32 },
        list: { type: 'array', items: { type: 'bool' }, maxItems: 2 },
      },
      required: ['by'],
    };
    expect(check(shape, { by: 3 })).toBeUndefined();
    expect(check(shape, { by: 3, tag: 'abcd', key: new Uint8Array(32), list: [true] })).toBeUndefined();
    expect(check(shape, {})).toMatch(/args\.by is required/);
    expect(check(shape, { by: 0 })).toMatch(/at least 1/);
    expect(check(shape, { by: 1.5 })).toMatch(/integer/);
    expect(check(shape, { by: 1, tag: 'ééé' })).toMatch(/at most 4 bytes/);
    expect(check(shape, { by: 1, key: new Uint8Array(31) })).toMatch(/32\.\.32 bytes/);
    expect(check(shape, { by: 1, list: [true, false, true] })).toMatch(/at most 2 items/);
    expect(check(shape, { by: 1, list: ['yes'] })).toMatch(/args\.list\[\] must be a boolean/);
    expect(check(shape, { by: 1, extra: 1 })).toMatch(/a field "extra" that the contract does not declare/);
    expect(check(shape, [1])).toMatch(/must be a map/);
    expect(check(shape, null)).toMatch(/must be a map/);
  });

  it('treats inherited properties as absent', () => {
    const shape: Shape = { type: 'map', fields: { admin: { type: 'bool' } }, required: [] };
    const sneaky = Object.create({ admin: 'yes' });
    expect(check(shape, sneaky)).toBeUndefined();
  });

  it('admits nil only where nullable', () => {
    expect(check({ type: 'int' }, null)).toMatch(/integer/);
    expect(check({ type: 'int', nullable: true }, null)).toBeUndefined();
    expect(check({ type: 'nil' }, undefined)).toBeUndefined();
    expect(check({ type: 'nil' }, 0)).toMatch(/nil/);
  });

  it('rejects NaN and infinities as floats', () => {
    expect(check({ type: 'float' }, Number.NaN)).toMatch(/finite/);
    expect(check({ type: 'float' }, Infinity)).toMatch(/finite/);
    expect(check({ type: 'float', max: 1 }, 0.5)).toBeUndefined();
  });
});
