/**
 * The argument shape checks at the boundary, decision by decision (issue 10, mutation testing):
 * each kind of shape accepts what it names and refuses the nearest thing it does not (a nullable
 * shape and null, the 64-bit range of an `int` bigint, a non-finite `float`, an `array`'s
 * `maxItems` and items, a `map`'s required, optional and undeclared fields, accessors and proxies
 * in place of data), and the check's work budget. The bounds of `int`, `float`, `str` and `bin`
 * at their edges are in shape-decisions.test.ts. Through the public entry: the module answers
 * every op with `true`, so whatever is refused was refused by the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEnclave, type Enclave } from '../host/index.js';
import { CHECK_TOO_LARGE, checkArgs, compileShape, type Shape } from '../runtime/contract.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';
import { shapeOutcome } from './helpers/errors.js';

const OPS = {
  any: { args: { type: 'any' } },
  nil: { args: { type: 'nil' } },
  bool: { args: { type: 'bool' } },
  int: { args: { type: 'int' } },
  nint: { args: { type: 'int', nullable: true, max: 3 } },
  float: { args: { type: 'float' } },
  str: { args: { type: 'str' } },
  bin: { args: { type: 'bin' } },
  arr: { args: { type: 'array', maxItems: 2 } },
  ints: { args: { type: 'array', items: { type: 'int' } } },
  map: { args: { type: 'map', fields: { a: { type: 'int' }, b: { type: 'str' } }, required: ['a'] } },
  all: { args: { type: 'map', fields: { a: { type: 'int' } } } },
  open: { args: { type: 'map', fields: { a: { type: 'int' } }, additional: true } },
  nmap: { args: { type: 'map', nullable: true, fields: { a: { type: 'int' } } } },
};

let enclave: Enclave;
beforeAll(async () => {
  enclave = await loadEnclave(await watModule(minimalWat(), { ...MINIMAL_CONTRACT, ops: OPS }));
});
afterAll(async () => {
  await enclave?.close();
});

const outcome = (op: string, args: unknown): Promise<string> => shapeOutcome(enclave.call(op, args));

describe('scalar shapes', () => {
  it('the shape check refuses by itself what the encoder would refuse too: an int bigint below -2^63, a typed array other than Uint8Array for bin, a non-view', async () => {
    // Through a call, the request encoder refuses these as well (same code): only the message says
    // which check refused, and a shape check that let them through would leave one guard, not two.
    expect(compileShape({ type: 'int' })(-(2n ** 63n) - 1n)).toBe('args must be an integer');
    expect(compileShape({ type: 'int' })(-(2n ** 63n))).toBeUndefined();
    for (const v of [new Uint16Array(2), new Int8Array(2), new Uint8ClampedArray(2), 'ab', [1, 2], new Uint8Array(2).buffer]) {
      expect(compileShape({ type: 'bin' })(v), Object.prototype.toString.call(v)).toBe('args must be bytes (a Uint8Array)');
    }
    await expect(enclave.call('int', -(2n ** 63n) - 1n)).rejects.toThrow(/args must be an integer/);
    await expect(enclave.call('bin', new Int8Array(2))).rejects.toThrow(/args must be bytes \(a Uint8Array\)/);
  });

  it('any accepts every kind of plain data', async () => {
    for (const v of [null, 0, 'x', new Uint8Array(1), [1], { a: 1 }, true]) expect(await outcome('any', v)).toBe('accepted');
  });

  it('nil accepts null only', async () => {
    expect(await outcome('nil', null)).toBe('accepted');
    for (const v of [0, false, '', []]) expect(await outcome('nil', v), String(v)).toBe('invalid_args');
  });

  it('bool accepts booleans only', async () => {
    expect(await outcome('bool', true)).toBe('accepted');
    expect(await outcome('bool', false)).toBe('accepted');
    for (const v of [0, 1, 'true', null]) expect(await outcome('bool', v), String(v)).toBe('invalid_args');
  });

  it('int: a safe integer or a bigint within 64 bits, nothing else', async () => {
    for (const v of [0, -1, Number.MAX_SAFE_INTEGER, -(2n ** 63n), 2n ** 64n - 1n, 0n]) expect(await outcome('int', v), String(v)).toBe('accepted');
    for (const v of [1.5, 2 ** 53, NaN, Infinity, -(2n ** 63n) - 1n, 2n ** 64n, '1', null, true]) {
      expect(await outcome('int', v), String(v)).toBe('invalid_args');
    }
  });

  it('float: a finite number (a bigint is not a float)', async () => {
    for (const v of [0, 1.5, -1e300]) expect(await outcome('float', v), String(v)).toBe('accepted');
    for (const v of [NaN, Infinity, -Infinity, 1n, '1.5', null]) expect(await outcome('float', v), String(v)).toBe('invalid_args');
  });

  it('str and bin accept their own kind only (bin: any Uint8Array, a Buffer included)', async () => {
    expect(await outcome('str', '')).toBe('accepted');
    for (const v of [1, null, new Uint8Array(1), ['a']]) expect(await outcome('str', v), String(v)).toBe('invalid_args');
    expect(await outcome('bin', new Uint8Array(3))).toBe('accepted');
    expect(await outcome('bin', Buffer.from('ab'))).toBe('accepted');
    for (const v of [[1, 2], 'ab', new Uint16Array(2), new Uint8Array(4).buffer, null]) expect(await outcome('bin', v)).toBe('invalid_args');
  });
});

describe('nullable', () => {
  it('a nullable shape accepts null (and no args) besides its own values, and still checks them', async () => {
    expect(await outcome('nint', null)).toBe('accepted');
    expect(await outcome('nint', undefined)).toBe('accepted');
    expect(await outcome('nint', 3)).toBe('accepted');
    expect(await outcome('nint', 4)).toBe('invalid_args');
    expect(await outcome('nint', 'x')).toBe('invalid_args');
  });

  it('a shape that is not nullable refuses null and no args', async () => {
    expect(await outcome('int', null)).toBe('invalid_args');
    expect(await outcome('int', undefined)).toBe('invalid_args');
    expect(await outcome('map', null)).toBe('invalid_args');
  });

  it('a nullable map accepts null and still checks a map', async () => {
    expect(await outcome('nmap', null)).toBe('accepted');
    expect(await outcome('nmap', { a: 1 })).toBe('accepted');
    expect(await outcome('nmap', {})).toBe('invalid_args');
  });
});

describe('array shapes', () => {
  it('maxItems binds exactly, and only arrays are arrays', async () => {
    expect(await outcome('arr', [])).toBe('accepted');
    expect(await outcome('arr', [1, 'x'])).toBe('accepted');
    expect(await outcome('arr', [1, 2, 3])).toBe('invalid_args');
    for (const v of [{ 0: 1, length: 1 }, 'ab', new Uint8Array(1), null]) expect(await outcome('arr', v)).toBe('invalid_args');
  });

  it('items are checked one by one, the last included', async () => {
    expect(await outcome('ints', [1, 2, 3])).toBe('accepted');
    expect(await outcome('ints', ['a'])).toBe('invalid_args');
    expect(await outcome('ints', [1, 2, 'c'])).toBe('invalid_args');
  });

  it('an element behind a getter, or a proxy for the array, is refused (not plain data)', async () => {
    const withGetter = [1, 2];
    Object.defineProperty(withGetter, 1, { get: () => 2, enumerable: true });
    expect(await outcome('ints', withGetter)).toBe('invalid_args');
    expect(await outcome('arr', new Proxy([1], {}))).toBe('invalid_args');
    expect(await outcome('ints', new Proxy([1], {}))).toBe('invalid_args');
  });
});

describe('refusals name their reason', () => {
  it('an array element behind a getter is refused as not plain data, whatever its items accept (the getter never runs)', async () => {
    let reads = 0;
    const withGetter = [1, 2];
    Object.defineProperty(withGetter, 1, { get: () => ++reads, enumerable: true });
    expect(compileShape({ type: 'array', items: { type: 'int' } })(withGetter)).toBe('args[1] must be plain data (no getter, no proxy)');
    expect(compileShape({ type: 'array', items: { type: 'any' } })(withGetter)).toBe('args[1] must be plain data (no getter, no proxy)');
    await expect(enclave.call('ints', withGetter)).rejects.toThrow(/args\[1\] must be plain data/);
    expect(reads).toBe(0);
  });

  it('a map field behind a getter is refused as not plain data, whatever its shape accepts (the getter never runs)', async () => {
    let reads = 0;
    const getter = {};
    Object.defineProperty(getter, 'a', { get: () => ++reads, enumerable: true });
    expect(compileShape({ type: 'map', fields: { a: { type: 'int' } } })(getter)).toBe('args.a must be plain data (no getter, no proxy)');
    expect(compileShape({ type: 'map', fields: { a: { type: 'any' } } })(getter)).toBe('args.a must be plain data (no getter, no proxy)');
    await expect(enclave.call('map', getter)).rejects.toThrow(/args\.a must be plain data/);
    expect(reads).toBe(0);
  });

  it('additional: true lets undeclared fields through, anything else refuses them (compiled in the test)', () => {
    const fields = { a: { type: 'int' } } as const;
    expect(compileShape({ type: 'map', fields, additional: true })({ a: 1, c: 1 })).toBeUndefined();
    expect(compileShape({ type: 'map', fields })({ a: 1, c: 1 })).toBe('args has a field "c" that the contract does not declare');
    expect(compileShape({ type: 'map', fields, additional: false })({ a: 1, c: 1 })).toBe('args has a field "c" that the contract does not declare');
  });

  it('a map shape refuses a value that is not an object before looking for fields (a number has none to miss)', async () => {
    for (const v of [5, 'ab', true, 5n, Symbol('s')]) {
      expect(compileShape({ type: 'map' })(v), typeof v).toBe('args must be a map');
      expect(compileShape({ type: 'map', fields: { a: { type: 'int' } } })(v), typeof v).toBe('args must be a map');
    }
    await expect(enclave.call('map', 5)).rejects.toThrow(/args must be a map/);
  });
});

describe('map shapes', () => {
  it('required fields must be there; optional ones may be absent but are checked when present', async () => {
    expect(await outcome('map', { a: 1 })).toBe('accepted');
    expect(await outcome('map', { a: 1, b: 'x' })).toBe('accepted');
    expect(await outcome('map', { b: 'x' })).toBe('invalid_args');
    expect(await outcome('map', { a: 1, b: 2 })).toBe('invalid_args');
    expect(await outcome('map', { a: 'x' })).toBe('invalid_args');
  });

  it('without a required list every field is required', async () => {
    expect(await outcome('all', { a: 1 })).toBe('accepted');
    expect(await outcome('all', {})).toBe('invalid_args');
  });

  it('an undeclared field is refused unless the shape allows additional ones', async () => {
    expect(await outcome('map', { a: 1, c: 1 })).toBe('invalid_args');
    expect(await outcome('open', { a: 1, c: 1 })).toBe('accepted');
    expect(await outcome('open', { c: 1 })).toBe('invalid_args'); // still required
  });

  it('only a plain object is a map: not an array, bytes, null or a string', async () => {
    for (const v of [[1], new Uint8Array(1), 'a', 1]) expect(await outcome('open', v)).toBe('invalid_args');
  });

  it('a field is read as the encoder sends it: a non-enumerable one is absent, a getter or a proxy is refused', async () => {
    const hidden = { b: 'x' };
    Object.defineProperty(hidden, 'a', { value: 1, enumerable: false });
    expect(await outcome('map', hidden)).toBe('invalid_args');
    const getter = {};
    Object.defineProperty(getter, 'a', { get: () => 1, enumerable: true });
    expect(await outcome('map', getter)).toBe('invalid_args');
    expect(await outcome('open', new Proxy({ a: 1 }, {}))).toBe('invalid_args');
  });
});

describe('the check\'s work budget (checkArgs)', () => {
  const strings = compileShape({ type: 'array', items: { type: 'str' } } as Shape);
  const keys = compileShape({ type: 'map', fields: {} } as Shape);

  it('counts each string by its length and stops once the budget is spent', () => {
    expect(checkArgs(strings, ['abcd', 'efgh'], 10)).toBeUndefined(); // 2 items + 8 units
    expect(checkArgs(strings, ['abcd', 'efgh'], 9)).toBe(CHECK_TOO_LARGE);
  });

  it('counts the items of an array and the keys of a map', () => {
    const items = compileShape({ type: 'array', items: { type: 'any' } } as Shape);
    expect(checkArgs(items, [1, 2, 3], 3)).toBeUndefined();
    expect(checkArgs(items, [1, 2, 3], 2)).toBe(CHECK_TOO_LARGE);
    expect(checkArgs(keys, {}, 0)).toBeUndefined();
    // Keys are counted before the first undeclared one is refused.
    expect(checkArgs(keys, { a: 1, b: 2 }, 1)).toBe(CHECK_TOO_LARGE);
    expect(checkArgs(keys, { a: 1, b: 2 }, 2)).toMatch(/does not declare/);
  });

  it('starts each check with a fresh budget', () => {
    expect(checkArgs(strings, ['abcd'], 5)).toBeUndefined();
    expect(checkArgs(strings, ['abcd'], 5)).toBeUndefined();
  });
});
