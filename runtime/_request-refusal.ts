/**
 * Why an argument cannot cross (docs/ABI.md §4.4), as the request encoder says it: a {@link Refusal}
 * carries the code and the reason until the path to the value is known.
 */
import { types } from 'node:util';

/** Why a value cannot cross; becomes an `EnclaveError` once the path to it is known. */
export class Refusal {
  path = '';
  constructor(
    readonly code: 'invalid_args' | 'too_large',
    readonly why: string,
  ) {}
}

/** What may cross, said after the kind of a refused value (docs/ABI.md §4.4). */
export const PLAIN_DATA = 'only plain data can cross: null, booleans, numbers, bigints within 64 bits, strings, Uint8Array (or Buffer), arrays and plain objects';

/** What a refused value is, for the message; never its contents. */
export function kindOf(v: unknown): string {
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'bigint') return 'a bigint outside the 64-bit range';
  const t = types;
  if (t.isTypedArray(v)) return `a ${Object.prototype.toString.call(v).slice(8, -1)}`;
  if (t.isDataView(v)) return 'a DataView';
  if (t.isAnyArrayBuffer(v)) return 'an ArrayBuffer';
  if (t.isDate(v)) return 'a Date';
  if (t.isRegExp(v)) return 'a RegExp';
  if (t.isNativeError(v)) return 'an Error';
  if (t.isMap(v)) return 'a Map (use a plain object)';
  if (t.isSet(v)) return 'a Set (use an array)';
  if (t.isPromise(v)) return 'a Promise';
  if (t.isBoxedPrimitive(v)) return 'a boxed primitive';
  if (Array.isArray(v)) return 'an array with another prototype';
  return 'an object whose prototype is not Object.prototype or null (a class instance?)';
}
