/**
 * Typed clients from contracts (`enclave types`): a contract's ops as TypeScript types, so a
 * caller's type checker refuses the calls the host's argument check would refuse.
 *
 * The mapping follows the host's check (runtime/contract.ts `compileShape`, then the plain-data
 * walk of runtime/_request-encoder.ts) for args, and the reply decoder (runtime/_reply.ts,
 * docs/ABI.md §4.4) for replies:
 *
 * | shape   | args (what the host accepts)                  | reply (what `call` resolves with)        |
 * |---------|-----------------------------------------------|------------------------------------------|
 * | `any`   | `ArgValue` (plain data; `undefined` = absent) | `ReplyValue`                             |
 * | `nil`   | `null \| undefined`                           | `null`                                   |
 * | `bool`  | `boolean`                                     | `boolean`                                |
 * | `int`   | `number \| bigint` (safe integer, or 64-bit)  | `number \| bigint`; `number` when `min` and `max` are both within ±(2^53-1) |
 * | `float` | `number` (finite)                             | `number`                                 |
 * | `str`   | `string`                                      | `string`                                 |
 * | `bin`   | `Uint8Array` (a `Buffer` is one)              | `Uint8Array`                             |
 * | `array` | `readonly T[]` (`readonly ArgValue[]` without `items`) | `T[]`                           |
 * | `map`   | `{ readonly "f": T; "o"?: T \| undefined }`, an index of `ArgValue` with `additional` | the same, without `undefined` |
 *
 * `nullable` adds `null` (and `undefined` where the check takes it as nil: args at the top, array
 * items, optional fields; a required field must be present, so `null` only). Args that accept
 * `undefined` make the args parameter optional (`EnclaveHandle<Ops>`'s `call`). The check's other rules have no
 * TypeScript form and stay run-time checks (`invalid_args` or `too_large`): `min`/`max`,
 * `maxLength`, `minLength`, `maxItems`, safe-integer and 64-bit ranges, finiteness, depth and byte
 * limits, plain objects only (a class instance is refused), no getters or proxies. A field the
 * contract does not declare is refused by the host, and by TypeScript only in an object literal
 * written at the call (excess property check), not in a variable of a wider type. An optional field
 * named like a member of `Object` (`constructor`, `toString`...) also admits that member's type
 * (TypeScript sees an absent one as inherited; the host refuses a function there), and so does the
 * index of such a map with `additional`. A field named `__proto__` must be written as a computed
 * key (`{ ['__proto__']: v }`): in a plain object literal it sets the prototype and is not sent,
 * which TypeScript does not see. A field whose name holds a lone surrogate can only be absent (the
 * host refuses such a key). Replies are not checked by the host against the contract (docs/ABI.md
 * §6: `reply` is documentation): the reply type is the contract's promise, kept by the enclave's
 * own code.
 *
 * Everything taken from the contract is hostile: names appear only as string literals escaped to
 * printable ASCII (property keys), never as identifiers or inside comments; the type's names come
 * from the contract's `name` (`[a-z][a-z0-9-]*`, checked by the parser) or from a checked option.
 */
import { EnclaveError, readModuleInfo, UsageError } from '../core/index.js';
import { moduleContract, parseContract, type Contract, type Shape } from '../runtime/index.js';

/** Options of {@link contractTypes}. */
export interface ContractTypesOptions {
  /** The base of the names declared (`<name>Ops`, `<name>Enclave`); default: the contract's name in PascalCase. */
  readonly name?: string;
  /** The module the types are imported from; default `enclave`. */
  readonly from?: string;
}

/** A base name: PascalCase ASCII, so never a reserved word and never a clash with the imports. */
const TYPE_NAME = /^[A-Z][A-Za-z0-9]{0,63}$/;
/** A module specifier we write into an import: a package name or a relative path, nothing that could end the string. */
const SPECIFIER = /^[A-Za-z0-9@._/-]{1,214}$/;
/** The largest integer a reply decodes to a `number` for certain (docs/ABI.md §4.4: ±2^53 and beyond are bigints). */
const SAFE = Number.MAX_SAFE_INTEGER;

/** A string as a TypeScript string literal of printable ASCII only (no line terminator, no `*\/` can matter). */
export function tsString(text: string): string {
  // JSON.stringify escapes quotes, backslashes, control characters and lone surrogates; every other
  // non-ASCII unit (U+2028, U+2029, bidi controls...) is escaped here.
  return JSON.stringify(text).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The PascalCase form of a contract name (`my-kv` -> `MyKv`). */
export function typeBaseName(contractName: string): string {
  const base = contractName
    .split(/[^a-zA-Z0-9]+/)
    .filter((part) => part.length > 0)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
  if (!TYPE_NAME.test(base)) throw new EnclaveError('invalid_contract', 'The contract name gives no TypeScript type name: pass --name.');
  return base;
}

/** Text written into a comment: checked, so no contract-controlled text can end it or a line. */
function comment(text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text) || text.includes('*/')) throw new Error('unreachable: unsafe comment text');
  return text;
}

/** What the args type of one shape uses from the imports. */
interface Uses {
  argValue: boolean;
  replyValue: boolean;
}

const pad = (depth: number): string => '  '.repeat(depth);

/** The members TypeScript's `Object` interface declares (lib.es5.d.ts): every object literal has them. */
const OBJECT_MEMBERS = new Set(['constructor', 'toString', 'toLocaleString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable']);

/** Whether the args type of a shape admits an inherited member's type somewhere (so is not within `ArgValue`). */
function widens(shape: Shape): boolean {
  if (shape.type === 'array') return shape.items !== undefined && widens(shape.items);
  if (shape.type !== 'map') return false;
  const required = new Set(shape.required ?? Object.keys(shape.fields ?? {}));
  return Object.entries(shape.fields ?? {}).some(([name, field]) => (!required.has(name) && OBJECT_MEMBERS.has(name)) || widens(field));
}

/** The TypeScript type of the scalar shapes, the same in args and replies (`int` differs: see each). */
const SCALAR_TYPES = { bool: 'boolean', float: 'number', str: 'string', bin: 'Uint8Array' } as const;

/**
 * The most characters the types of a contract may take. The index of a map with `additional`
 * repeats the type of each field that admits an inherited member (see `widens`), so each such level
 * doubles the text: 32 levels of a contract of a few KB would be 2^32 copies (hours and an
 * out-of-memory crash). Checked on each args type as it is built (so the work stops early) and on
 * the ops together. A contract of the runtime's largest size (1 MiB) writes far less than this.
 */
const MAX_TYPE_CHARS = 16 * 1024 * 1024;

/** `text`, or `invalid_contract` when `length` (default: its own) is over {@link MAX_TYPE_CHARS}. */
function bounded(text: string, length = text.length): string {
  if (length > MAX_TYPE_CHARS) {
    throw new EnclaveError(
      'invalid_contract',
      `The contract's types would take more than ${MAX_TYPE_CHARS} characters: a map with "additional" repeats the type of each field ` +
        'named like a member of Object (constructor, toString...), at every level: rename those fields or nest fewer such maps.',
    );
  }
  return text;
}

/** A lone surrogate (runtime/_request-encoder.ts refuses a map key with one). */
const LONE_SURROGATE = /\p{Cs}/u;

/** Whether the args type of a shape already has `undefined` (in a place that takes it as nil). */
const takesUndefined = (shape: Shape): boolean => shape.type === 'any' || shape.type === 'nil' || shape.nullable === true;

/**
 * The args type of a shape. `defined`: the place does not take `undefined` as nil (a required
 * map field, where `undefined` means absent and is refused as missing).
 */
function argType(shape: Shape, defined: boolean, depth: number, uses: Uses): string {
  const nilable = shape.nullable === true || shape.type === 'nil';
  const nil = defined ? 'null' : 'null | undefined';
  let base: string;
  switch (shape.type) {
    case 'any':
      uses.argValue = true;
      return defined ? 'Exclude<ArgValue, undefined>' : 'ArgValue';
    case 'nil':
      return nil;
    case 'bool':
    case 'float':
    case 'str':
    case 'bin':
      base = SCALAR_TYPES[shape.type];
      break;
    case 'int':
      base = 'number | bigint';
      break;
    case 'array':
      if (shape.items === undefined) uses.argValue = true;
      base = `readonly (${shape.items === undefined ? 'ArgValue' : argType(shape.items, false, depth, uses)})[]`;
      break;
    case 'map': {
      const fields = Object.entries(shape.fields ?? {});
      const required = new Set(shape.required ?? fields.map(([name]) => name));
      const lines = fields.map(([name, field]) => {
        const key = `${pad(depth + 1)}readonly ${tsString(name)}`;
        // A key with a lone surrogate cannot be sent (the encoder refuses it: as U+FFFD it could
        // repeat another key): such a field can only be absent, and a required one never.
        if (LONE_SURROGATE.test(name)) return required.has(name) ? `${key}: never;` : `${key}?: undefined;`;
        if (required.has(name)) return `${key}: ${argType(field, true, depth + 1, uses)};`;
        // TypeScript reads an absent optional `constructor` or `toString` of an object literal as
        // Object.prototype's: without that type in the union, `{}` would not be accepted.
        const inherited = OBJECT_MEMBERS.has(name) ? ` | Object[${tsString(name)}]` : '';
        return `${key}?: ${argType(field, false, depth + 1, uses)}${takesUndefined(field) ? '' : ' | undefined'}${inherited};`;
      });
      if (shape.additional === true) {
        uses.argValue = true;
        // The index must cover every field's type: those that admit an inherited member's type
        // (above, at any depth) are added to it.
        const wider = fields
          .filter(([name, field]) => (!required.has(name) && OBJECT_MEMBERS.has(name)) || widens(field))
          .map(([name, field]) => {
            const type = argType(field, false, depth + 1, uses);
            return ` | ${type}${OBJECT_MEMBERS.has(name) ? ` | Object[${tsString(name)}]` : ''}`;
          });
        lines.push(`${pad(depth + 1)}readonly [key: string]: ArgValue${wider.join('')};`);
      } else if (fields.length === 0) {
        // No key at all: the check refuses an undeclared key even when its value is undefined.
        lines.push(`${pad(depth + 1)}readonly [key: string]: never;`);
      }
      base = `{\n${lines.join('\n')}\n${pad(depth)}}`;
      break;
    }
  }
  return bounded(nilable ? `${base} | ${nil}` : base);
}

/** The reply type of a shape: what `decodeReply` builds for a value of that shape. */
function replyType(shape: Shape, depth: number, uses: Uses): string {
  let base: string;
  switch (shape.type) {
    case 'any':
      uses.replyValue = true;
      return 'ReplyValue';
    case 'nil':
      return 'null';
    case 'bool':
    case 'float':
    case 'str':
    case 'bin':
      base = SCALAR_TYPES[shape.type];
      break;
    case 'int': {
      // Integers beyond ±2^53 decode to bigints: a number only when the contract bounds both ends.
      const { min, max } = shape;
      base = min !== undefined && max !== undefined && min >= -SAFE && max <= SAFE ? 'number' : 'number | bigint';
      break;
    }
    case 'array':
      if (shape.items === undefined) uses.replyValue = true;
      base = `(${shape.items === undefined ? 'ReplyValue' : replyType(shape.items, depth, uses)})[]`;
      break;
    case 'map': {
      const fields = Object.entries(shape.fields ?? {});
      const required = new Set(shape.required ?? fields.map(([name]) => name));
      const lines = fields.map(
        ([name, field]) => `${pad(depth + 1)}${tsString(name)}${required.has(name) ? '' : '?'}: ${replyType(field, depth + 1, uses)};`,
      );
      if (shape.additional === true) {
        uses.replyValue = true;
        lines.push(`${pad(depth + 1)}[key: string]: ReplyValue;`);
      } else if (fields.length === 0) {
        lines.push(`${pad(depth + 1)}[key: string]: never;`);
      }
      base = `{\n${lines.join('\n')}\n${pad(depth)}}`;
      break;
    }
  }
  return shape.nullable === true ? `${base} | null` : base;
}

/**
 * Writes the TypeScript declarations of a contract: an interface `<Name>Ops` with, for each op,
 * the `args` the host accepts and the `reply` the contract declares, and `<Name>Enclave`, a handle
 * whose `call` is typed by it. See the file's comment for the mapping and what stays a run-time check.
 * @throws {EnclaveError} `invalid_contract` when no type name can be made from the contract's name;
 *   `usage` for a `name` or `from` option that is not acceptable.
 * @example
 * const text = contractTypes(parseContract(JSON.parse(await readFile('kv/contract.json', 'utf8'))));
 * // export interface KvOps { "put": { args: { readonly "k": string; ... }; reply: null }; ... }
 * // export type KvEnclave = EnclaveHandle<KvOps>;
 */
export function contractTypes(contract: Contract, options: ContractTypesOptions = {}): string {
  const name = options.name ?? typeBaseName(contract.name);
  if (!TYPE_NAME.test(name)) throw new UsageError(`The type name must be PascalCase ASCII letters and digits (${TYPE_NAME.source}).`);
  const from = options.from ?? 'enclave';
  if (!SPECIFIER.test(from)) throw new UsageError(`The module to import the types from must match ${SPECIFIER.source}.`);
  const ops = `${name}Ops`;
  const uses: Uses = { argValue: false, replyValue: false };
  let length = 0;
  const entries = Object.entries(contract.ops).map(([op, spec]) => {
    const notes = [spec.idempotent ? 'idempotent' : '', spec.requires.length > 0 ? `requires ${spec.requires.join(', ')}` : '']
      .filter((n) => n !== '')
      .join('; ');
    const entry = [
      // Op names match [a-z_][a-z0-9_]* (parseContract): safe in a comment, quoted as keys anyway.
      ...(notes === '' ? [] : [`  /** ${comment(`${op}: ${notes}`)} */`]),
      `  ${tsString(op)}: {`,
      `    args: ${argType(spec.args, false, 2, uses)};`,
      `    reply: ${replyType(spec.reply, 2, uses)};`,
      '  };',
    ].join('\n');
    length += entry.length;
    return bounded(entry, length);
  });
  const imports = ['EnclaveHandle', ...(uses.argValue ? ['ArgValue'] : []), ...(uses.replyValue ? ['ReplyValue'] : [])].sort();
  return [
    `// Generated by \`enclave types\` from the contract ${tsString(contract.name)}, version ${tsString(contract.version)}.`,
    '// Do not edit: run `enclave types` again when the contract changes.',
    `// The host still checks every call against the contract: ${comment('ranges, lengths, depth and sizes have no TypeScript form.')}`,
    `import type { ${imports.join(', ')} } from ${tsString(from)};`,
    '',
    `/** The ops of the enclave, each with the \`args\` the host accepts and the \`reply\` the contract declares. */`,
    `export interface ${ops} {`,
    entries.join('\n'),
    '}',
    '',
    `/** An enclave handle whose \`call\` is typed by {@link ${ops}}: \`loadEnclave<${ops}>(path)\` returns one. */`,
    `export type ${name}Enclave = EnclaveHandle<${ops}>;`,
    '',
  ].join('\n');
}

/**
 * The contract of a module (its `enclave.contract` section; nothing is compiled or run) or of a
 * contract document (JSON), told apart by the Wasm magic bytes.
 * @throws {EnclaveError} `invalid_module` for malformed module bytes, `invalid_contract` for a
 *   missing, repeated or invalid contract, `unsupported_abi`.
 */
export function contractOf(bytes: Uint8Array): Contract {
  const isModule = bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  if (!isModule) {
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    } catch {
      throw new EnclaveError('invalid_contract', 'The file is neither a Wasm module nor a UTF-8 JSON contract.');
    }
    return parseContract(json);
  }
  readModuleInfo(bytes); // invalid_module for malformed bytes, before any section is trusted
  return moduleContract(bytes);
}
