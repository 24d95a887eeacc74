/**
 * The enclave contract (docs/ABI.md §6): parsed once at load, validated strictly, frozen.
 *
 * The contract lives inside the measured bytes, so what it declares (capabilities, limits, ops)
 * is part of the module's identity. The host trusts it only as far as its own policy allows:
 * limits are capped by the policy, capabilities must be granted.
 */
import { types } from 'node:util';
import { CONTRACT_SECTION, customSections, EnclaveError, MAX_CONTRACT_BYTES, quoteInput } from '../core/index.js';
// The capabilities a contract may declare: the names of the modules in runtime/capabilities/.
import { CAPABILITIES, type Capability } from './capabilities/index.js';

export { CAPABILITIES, type Capability };

/** Byte, depth and memory limits of one enclave (docs/ABI.md §5). */
export interface Limits {
  readonly requestBytes: number;
  readonly replyBytes: number;
  readonly depth: number;
  readonly memoryPages: number;
  readonly fuel: number;
  /** Entries of the module's table (docs/LIMITS.md, "Tables"). */
  readonly tableElements: number;
  /** msgpack values (keys, values, elements) one reply may hold (docs/LIMITS.md, "Replies"). */
  readonly replyItems: number;
}

/** Defaults for any limit a contract leaves out (docs/ABI.md §5). */
export const DEFAULT_LIMITS: Limits = Object.freeze({
  requestBytes: 65_536,
  replyBytes: 65_536,
  depth: 32,
  memoryPages: 16,
  fuel: 10_000_000,
  tableElements: 10_000,
  replyItems: 100_000,
});

/** Hard ceilings no contract can exceed, whatever the policy says. */
export const MAX_LIMITS: Limits = Object.freeze({
  requestBytes: 64 * 1024 * 1024,
  replyBytes: 64 * 1024 * 1024,
  depth: 512,
  memoryPages: 65_536,
  fuel: Number.MAX_SAFE_INTEGER,
  // MODULE_BOUNDS.tableElements (core/module-info.ts): a larger table is refused before the contract is read.
  tableElements: 100_000,
  // Every msgpack value takes at least one byte: more values than the byte ceiling cannot occur.
  replyItems: 64 * 1024 * 1024,
});

/** A value shape (docs/ABI.md §6). */
export type Shape =
  | { type: 'any' | 'nil' | 'bool'; nullable?: boolean }
  | { type: 'int' | 'float'; min?: number; max?: number; nullable?: boolean }
  | { type: 'str'; maxLength?: number; nullable?: boolean }
  | { type: 'bin'; minLength?: number; maxLength?: number; nullable?: boolean }
  | { type: 'array'; items?: Shape; maxItems?: number; nullable?: boolean }
  | { type: 'map'; fields?: Record<string, Shape>; required?: string[]; additional?: boolean; nullable?: boolean };

/** One operation of a contract. */
export interface OpContract {
  readonly args: Shape;
  readonly reply: Shape;
  readonly requires: readonly string[];
  readonly idempotent: boolean;
}

/** A validated contract with defaults filled in. */
export interface Contract {
  readonly abi: 1;
  readonly name: string;
  readonly version: string;
  readonly svn: number;
  readonly capabilities: readonly Capability[];
  readonly limits: Limits;
  readonly ops: Readonly<Record<string, OpContract>>;
}

const NAME_RE = /^[a-z][a-z0-9-]{0,63}$/;
const OP_RE = /^[a-z_][a-z0-9_]{0,63}$/;
const SHAPE_TYPES = new Set(['any', 'nil', 'bool', 'int', 'float', 'str', 'bin', 'array', 'map']);
const SHAPE_KEYS: Record<string, readonly string[]> = {
  any: [],
  nil: [],
  bool: [],
  int: ['min', 'max'],
  float: ['min', 'max'],
  str: ['maxLength'],
  bin: ['minLength', 'maxLength'],
  array: ['items', 'maxItems'],
  map: ['fields', 'required', 'additional'],
};

function fail(message: string): never {
  throw new EnclaveError('invalid_contract', `Invalid enclave contract: ${message}.`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) fail(`unknown field ${quoteInput(key)} in ${where}`);
  }
}

function checkCount(value: unknown, where: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0 || (value as number) > max) {
    fail(`${where} must be an integer in 0..${max}`);
  }
  return value as number;
}

function parseShape(value: unknown, where: string, depth = 0): Shape {
  if (depth > 32) fail(`${where} nests shapes deeper than 32`);
  if (!isPlainObject(value) || typeof value.type !== 'string' || !SHAPE_TYPES.has(value.type)) {
    fail(`${where} must be a shape object with a "type" of ${[...SHAPE_TYPES].join(', ')}`);
  }
  const type = value.type;
  checkKeys(value, ['type', 'nullable', ...SHAPE_KEYS[type]!], where);
  if (value.nullable !== undefined && typeof value.nullable !== 'boolean') fail(`${where}.nullable must be a boolean`);
  for (const key of ['min', 'max'] as const) {
    if (value[key] !== undefined && typeof value[key] !== 'number') fail(`${where}.${key} must be a number`);
  }
  for (const key of ['maxLength', 'minLength', 'maxItems'] as const) {
    if (value[key] !== undefined) checkCount(value[key], `${where}.${key}`);
  }
  if (type === 'array' && value.items !== undefined) {
    return { ...value, items: parseShape(value.items, `${where}.items`, depth + 1) } as Shape;
  }
  if (type === 'map') {
    const fields: Record<string, Shape> = Object.create(null);
    if (value.fields !== undefined) {
      if (!isPlainObject(value.fields)) fail(`${where}.fields must be an object`);
      for (const [name, shape] of Object.entries(value.fields)) {
        fields[name] = parseShape(shape, `${where}.fields[${quoteInput(name)}]`, depth + 1);
      }
    }
    if (value.required !== undefined) {
      if (!Array.isArray(value.required) || !value.required.every((n) => typeof n === 'string' && n in fields)) {
        fail(`${where}.required must list names of its fields`);
      }
    }
    if (value.additional !== undefined && typeof value.additional !== 'boolean') {
      fail(`${where}.additional must be a boolean`);
    }
    return { ...value, fields } as Shape;
  }
  return { ...value } as Shape;
}

/**
 * Parses and validates a contract document, filling in defaults.
 * @throws {EnclaveError} `invalid_contract`, naming the first field that is wrong.
 * @example
 * const contract = parseContract(JSON.parse(text));
 */
export function parseContract(value: unknown): Contract {
  if (!isPlainObject(value)) fail('the document must be a JSON object');
  checkKeys(value, ['abi', 'name', 'version', 'svn', 'capabilities', 'limits', 'ops', 'description'], 'the contract');
  // docs/ABI.md §6, §8: `abi` is required; a later version a host does not speak is
  // `unsupported_abi` (the module may be fine, this runtime is too old), anything else is malformed.
  if (value.abi === undefined) fail('"abi" is required (1)');
  if (value.abi !== 1) {
    if (Number.isSafeInteger(value.abi) && (value.abi as number) > 1) {
      throw new EnclaveError('unsupported_abi', `The contract speaks ABI version ${value.abi as number}; this runtime speaks 1.`);
    }
    fail('"abi" must be 1');
  }
  if (typeof value.name !== 'string' || !NAME_RE.test(value.name)) fail('"name" must match [a-z][a-z0-9-]{0,63}');
  if (typeof value.version !== 'string' || value.version.length === 0 || value.version.length > 64) {
    fail('"version" must be a string of 1..64 characters');
  }
  const svn = checkCount(value.svn, '"svn"', 0xffff_ffff);

  const capabilities = value.capabilities ?? [];
  if (!Array.isArray(capabilities) || !capabilities.every((c) => (CAPABILITIES as readonly string[]).includes(c))) {
    fail(`"capabilities" must be a list drawn from ${CAPABILITIES.join(', ')}`);
  }
  if (new Set(capabilities).size !== capabilities.length) fail('"capabilities" lists a capability twice');

  const limitsIn = value.limits ?? {};
  if (!isPlainObject(limitsIn)) fail('"limits" must be an object');
  checkKeys(limitsIn, Object.keys(DEFAULT_LIMITS), '"limits"');
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof Limits)[]) {
    if (limitsIn[key] !== undefined) limits[key] = checkCount(limitsIn[key], `"limits.${key}"`, MAX_LIMITS[key]);
    if (limits[key] < 1) fail(`"limits.${key}" must be at least 1`);
  }
  // docs/ABI.md §5: the envelope is level 1 and `{err: {code}}` needs level 2.
  if (limits.depth < 2) fail('"limits.depth" must be at least 2');

  const opsIn = value.ops;
  if (!isPlainObject(opsIn) || Object.keys(opsIn).length === 0) fail('"ops" must be an object with at least one op');
  const ops: Record<string, OpContract> = Object.create(null);
  for (const [name, op] of Object.entries(opsIn)) {
    if (!OP_RE.test(name)) fail(`op name ${quoteInput(name)} must match [a-z_][a-z0-9_]{0,63}`);
    if (!isPlainObject(op)) fail(`op "${name}" must be an object`);
    checkKeys(op, ['args', 'reply', 'requires', 'idempotent', 'description'], `op "${name}"`);
    const requires = op.requires ?? [];
    if (!Array.isArray(requires) || !requires.every((r) => typeof r === 'string' && Object.prototype.hasOwnProperty.call(opsIn, r))) {
      fail(`op "${name}".requires must list ops of this contract`);
    }
    if (op.idempotent !== undefined && typeof op.idempotent !== 'boolean') fail(`op "${name}".idempotent must be a boolean`);
    ops[name] = Object.freeze({
      args: parseShape(op.args ?? { type: 'any' }, `op "${name}".args`),
      reply: parseShape(op.reply ?? { type: 'any' }, `op "${name}".reply`),
      requires: Object.freeze([...requires] as string[]),
      idempotent: op.idempotent === true,
    });
  }

  return Object.freeze({
    abi: 1,
    name: value.name,
    version: value.version,
    svn,
    capabilities: Object.freeze([...capabilities] as Capability[]),
    limits: Object.freeze(limits),
    ops: Object.freeze(ops),
  });
}

/**
 * Parses the UTF-8 JSON payload of an `enclave.contract` section.
 * @throws {EnclaveError} `invalid_contract` when the payload is larger than `MAX_CONTRACT_BYTES`
 *   (1 MiB), not UTF-8 JSON, or not a valid contract (`parseContract`).
 */
export function parseContractBytes(payload: Uint8Array): Contract {
  // attest's readContract applies the same bound (core: MAX_CONTRACT_BYTES).
  if (payload.length > MAX_CONTRACT_BYTES) {
    fail(`the enclave.contract section is ${payload.length} bytes, more than the 1 MiB (${MAX_CONTRACT_BYTES} bytes) a contract may hold; shorten it and rebuild`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    fail('the enclave.contract section is not UTF-8 JSON');
  }
  return parseContract(json);
}

/**
 * The contract of a module: its one `enclave.contract` section, parsed (read from the bytes as
 * given: the measured ones).
 * @throws {EnclaveError} `invalid_contract` when there is none, more than one, or it is invalid.
 */
export function moduleContract(bytes: Uint8Array): Contract {
  const sections = customSections(bytes, CONTRACT_SECTION);
  if (sections.length !== 1) {
    throw new EnclaveError(
      'invalid_contract',
      sections.length === 0 ? 'The module has no enclave.contract section: build it with `enclave build`.' : 'The module has more than one enclave.contract section.',
    );
  }
  return parseContractBytes(new Uint8Array(sections[0]!));
}

/** A compiled shape check: returns `undefined` when the value fits, else where and why it does not. */
export type ShapeCheck = (value: unknown) => string | undefined;

const utf8 = new TextEncoder();

/**
 * What a checked value may be read through: own data properties only. The encoder reads the args
 * again after the check, so a getter or proxy that answered the check with one value could send
 * another (docs/ABI.md §4.4); with data properties and no user code in between, both reads agree.
 */
const NOT_DATA = 'must be plain data (no getter, no proxy)';
const ACCESSOR: unique symbol = Symbol('accessor');

/** An own data property's value, `undefined` when absent, {@link ACCESSOR} for a getter. */
/**
 * What a shape check run by {@link checkArgs} may still visit: array items, listed map keys and
 * the UTF-16 units of checked strings, each at least a byte of the request (docs/LIMITS.md,
 * "Request and reply sizes").
 */
let checkBudget = Infinity;
/** The keys of each map met by the running check, listed once (listing costs every own property). */
const checkedKeys = new Map<object, string[]>();
/** What a check run by {@link checkArgs} returns when the args hold more than its budget. */
export const CHECK_TOO_LARGE = 'the request is too large';

/**
 * Runs a shape check visiting at most `maxValues` array items, map keys and string units, so a sparse
 * array or an object or string referenced many times costs the check no more than the request may hold.
 * @returns the check's answer, or {@link CHECK_TOO_LARGE}.
 */
export function checkArgs(check: ShapeCheck, args: unknown, maxValues: number): string | undefined {
  checkBudget = maxValues;
  try {
    return check(args);
  } finally {
    checkBudget = Infinity;
    checkedKeys.clear();
  }
}

/**
 * @internal The intrinsic length of a typed array (the getter a caller cannot override on an
 * instance): the shape check and the encoder measure a `bin` by it alike.
 */
export const typedLength = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), 'length')!.get!;

const propertyIsEnumerable = Object.prototype.propertyIsEnumerable;

function dataValue(obj: object, key: string | number): unknown {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  if (d === undefined) return undefined;
  return 'value' in d ? d.value : ACCESSOR;
}

/**
 * Compiles a shape into a check function, once per op at load, so a call pays no interpretation.
 * A shape of `any` compiles to a check that accepts everything.
 */
export function compileShape(shape: Shape, path = 'args'): ShapeCheck {
  const nullable = shape.nullable === true;
  const inner = compileInner(shape, path);
  if (!nullable || shape.type === 'any' || shape.type === 'nil') return inner;
  return (v) => (v === null || v === undefined ? undefined : inner(v));
}

function compileInner(shape: Shape, path: string): ShapeCheck {
  switch (shape.type) {
    case 'any':
      return () => undefined;
    case 'nil':
      return (v) => (v === null || v === undefined ? undefined : `${path} must be nil`);
    case 'bool':
      return (v) => (typeof v === 'boolean' ? undefined : `${path} must be a boolean`);
    case 'int':
    case 'float': {
      const { min, max } = shape;
      const isInt = shape.type === 'int';
      return (v) => {
        // docs/ABI.md §4.4: an int is a safe-integer number or a bigint within 64 bits (sent as an integer).
        const int64 = isInt && typeof v === 'bigint' && v >= -(2n ** 63n) && v < 2n ** 64n;
        if (!int64 && (typeof v !== 'number' || (isInt ? !Number.isSafeInteger(v) : !Number.isFinite(v)))) {
          return `${path} must be ${isInt ? 'an integer' : 'a finite number'}`;
        }
        if (min !== undefined && v < min) return `${path} must be at least ${min}`;
        if (max !== undefined && v > max) return `${path} must be at most ${max}`;
        return undefined;
      };
    }
    case 'str': {
      const { maxLength } = shape;
      return (v) => {
        if (typeof v !== 'string') return `${path} must be a string`;
        // Each UTF-16 unit is at least a byte of the request: a string sent in many places is
        // measured at most as often as the request could hold it.
        if ((checkBudget -= v.length) < 0) return CHECK_TOO_LARGE;
        // A JS string of n UTF-16 units encodes to at most 3n UTF-8 bytes: only measure when it could matter.
        if (maxLength !== undefined && v.length * 3 > maxLength && utf8.encode(v).length > maxLength) {
          return `${path} must be at most ${maxLength} bytes`;
        }
        return undefined;
      };
    }
    case 'bin': {
      const { minLength = 0, maxLength = Infinity } = shape;
      return (v) => {
        // As the encoder sees it: any Uint8Array, measured by its intrinsic length (an own or
        // inherited "length" the caller defined does not count: the encoder sends the view's bytes).
        if (!types.isUint8Array(v)) return `${path} must be bytes (a Uint8Array)`;
        const length = typedLength.call(v) as number;
        if (length < minLength || length > maxLength) return `${path} must be ${minLength}..${maxLength} bytes`;
        return undefined;
      };
    }
    case 'array': {
      const items = shape.items === undefined ? undefined : compileShape(shape.items, `${path}[]`);
      const { maxItems = Infinity } = shape;
      return (v) => {
        if (!Array.isArray(v)) return `${path} must be an array`;
        if (types.isProxy(v)) return `${path} ${NOT_DATA}`;
        if (v.length > maxItems) return `${path} must have at most ${maxItems} items`;
        if (items !== undefined) {
          if ((checkBudget -= v.length) < 0) return CHECK_TOO_LARGE;
          for (let i = 0; i < v.length; i++) {
            const item = dataValue(v, i);
            if (item === ACCESSOR) return `${path}[${i}] ${NOT_DATA}`;
            const why = items(item);
            if (why !== undefined) return why;
          }
        }
        return undefined;
      };
    }
    case 'map': {
      const fields = Object.entries(shape.fields ?? {}).map(
        ([name, s]) => [name, compileShape(s, `${path}.${name}`)] as const,
      );
      const required = new Set(shape.required ?? fields.map(([name]) => name));
      const known = new Set(fields.map(([name]) => name));
      const additional = shape.additional === true;
      return (v) => {
        if (typeof v !== 'object' || v === null || Array.isArray(v) || types.isUint8Array(v)) {
          return `${path} must be a map`;
        }
        if (types.isProxy(v)) return `${path} ${NOT_DATA}`;
        const obj = v as Record<string, unknown>;
        for (const [name, check] of fields) {
          // A non-enumerable field is absent: the encoder sends own enumerable keys only.
          const field = propertyIsEnumerable.call(obj, name) ? dataValue(obj, name) : undefined;
          if (field === ACCESSOR) return `${path}.${name} ${NOT_DATA}`;
          if (field === undefined) {
            if (required.has(name)) return `${path}.${name} is required`;
            continue;
          }
          const why = check(field);
          if (why !== undefined) return why;
        }
        if (!additional) {
          let keys = checkedKeys.get(obj);
          if (keys === undefined) {
            keys = Object.keys(obj);
            checkedKeys.set(obj, keys);
          }
          if ((checkBudget -= keys.length) < 0) return CHECK_TOO_LARGE;
          for (const name of keys) {
            if (!known.has(name)) return `${path} has a field ${quoteInput(name)} that the contract does not declare`;
          }
        }
        return undefined;
      };
    }
  }
}
