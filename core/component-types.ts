/**
 * The types of a component's imported instances, as text (issue 14, review rev1): what each
 * function of an imported interface takes and returns, with every named type written out in full,
 * so the runtime can compare them with the world's (runtime/_component-world.ts `checkImportTypes`).
 *
 * Why: jco's glue lifts an import's arguments from guest memory, and lowers its results into it,
 * as the COMPONENT declares the function, before the host function sees anything and outside any
 * fuel. A component declaring `log(level, message: list<string>)` had the glue decode memory/8
 * strings of the whole memory per call (memory² / 8 bytes: the host ran out of heap and aborted).
 * The gate (core/component-binary.ts) frames type sections only; this reads them.
 *
 * Read here: the top-level type, alias, import, export and instance sections, enough to number the
 * type and instance index spaces (component model Binary.md); each imported instance's type (an
 * instance type defined at top level: its type definitions, outer aliases of the component's types,
 * `eq` type exports and function exports). Anything else an imported function's type would depend
 * on (a type this reader cannot frame, a resource, an async function, a stream, own/borrow) makes
 * the import unresolved, which the runtime refuses: only what is read exactly is ever accepted.
 *
 * Runs on bytes the gate accepted (framing checked); every length and count is still checked
 * against the bytes left, references only go backwards, and the text of one function is bounded,
 * so hostile bytes cost time linear in their size.
 */
import { COMPONENT_HEADER } from './component-binary.js';
import { WASM_NAME_DECODER } from './wasm-sections.js';

/** One function of an imported instance: its name and its type as text (see {@link importTypes}). */
export interface ImportedFunction {
  readonly name: string;
  readonly type: string;
}

/** What {@link importTypes} found for one imported instance. */
export type ImportTypes =
  | { readonly resolved: true; readonly functions: readonly ImportedFunction[] }
  | { readonly resolved: false; readonly why: string };

/** Types of one index space, defined types of one instance type, fields of one record... */
const MAX_ENTRIES = 10_000;
/** Longest text of one type: the world's longest function is ~230 characters. */
const MAX_TEXT = 2048;
/** Deepest nesting of type references followed: the world's is 4. */
const MAX_DEPTH = 32;
/** Functions of one imported instance type, and lifted functions, resolved (the world: 2 and 1). */
const MAX_FUNCTIONS = 16;

class Unreadable extends Error {}

function fail(why: string): never {
  throw new Unreadable(why);
}

const PRIMITIVES: Record<number, string> = {
  0x7f: 'bool',
  0x7e: 's8',
  0x7d: 'u8',
  0x7c: 's16',
  0x7b: 'u16',
  0x7a: 's32',
  0x79: 'u32',
  0x78: 's64',
  0x77: 'u64',
  0x76: 'f32',
  0x75: 'f64',
  0x74: 'char',
  0x73: 'string',
};

/** A value type: a primitive's name, or an index into the current type index space. */
type ValType = string | number;

/** A type definition as read (Binary.md `deftype`); `other` for what is never accepted. */
type DefType =
  | { readonly k: 'prim'; readonly name: string }
  | { readonly k: 'record'; readonly fields: readonly [string, ValType][] }
  | { readonly k: 'variant'; readonly cases: readonly [string, ValType | undefined][] }
  | { readonly k: 'list' | 'option'; readonly t: ValType }
  | { readonly k: 'tuple'; readonly ts: readonly ValType[] }
  | { readonly k: 'flags' | 'enum'; readonly labels: readonly string[] }
  | { readonly k: 'result'; readonly ok: ValType | undefined; readonly err: ValType | undefined }
  | { readonly k: 'func'; readonly params: readonly [string, ValType][]; readonly result: ValType | undefined }
  | { readonly k: 'instance'; readonly at: number; readonly end: number }
  | { readonly k: 'other'; readonly what: string };

class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}
  byte(): number {
    if (this.pos >= this.end) fail('a section ends early');
    return this.bytes[this.pos++]!;
  }
  peek(): number {
    if (this.pos >= this.end) fail('a section ends early');
    return this.bytes[this.pos]!;
  }
  u32(): number {
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    fail('an integer is longer than 5 bytes');
  }
  /** A type index written as s33 (Binary.md `valtype`): negative ones are not indices. */
  s33(): number {
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) {
        if ((b & 0x40) !== 0) fail('a type index is negative');
        return result;
      }
    }
    fail('an integer is longer than 5 bytes');
  }
  count(): number {
    const n = this.u32();
    if (n > this.end - this.pos || n > MAX_ENTRIES) fail('a vector is longer than its section');
    return n;
  }
  name(): string {
    const n = this.u32();
    if (n > this.end - this.pos) fail('a name runs past its section');
    const s = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return WASM_NAME_DECODER.decode(s);
    } catch {
      fail('a name is not UTF-8');
    }
  }
  /** Binary.md `importname'`/`exportname'`: the plain forms only. */
  externName(): string {
    const form = this.byte();
    if (form !== 0x00 && form !== 0x01) fail('a name has attributes');
    return this.name();
  }
  valType(): ValType {
    const prim = PRIMITIVES[this.peek()];
    if (prim !== undefined) {
      this.pos++;
      return prim;
    }
    return this.s33();
  }
  optional<T>(read: () => T): T | undefined {
    const b = this.byte();
    if (b === 0x00) return undefined;
    if (b !== 0x01) fail('an optional value is malformed');
    return read();
  }
  /** Binary.md `deftype`, read to its end. */
  defType(): DefType {
    const b = this.byte();
    const prim = PRIMITIVES[b];
    if (prim !== undefined) return { k: 'prim', name: prim };
    switch (b) {
      case 0x72: {
        const fields: [string, ValType][] = [];
        for (let i = 0, n = this.count(); i < n; i++) fields.push([this.name(), this.valType()]);
        return { k: 'record', fields };
      }
      case 0x71: {
        const cases: [string, ValType | undefined][] = [];
        for (let i = 0, n = this.count(); i < n; i++) {
          const label = this.name();
          const t = this.optional(() => this.valType());
          if (this.optional(() => this.u32()) !== undefined) fail('a variant case refines another');
          cases.push([label, t]);
        }
        return { k: 'variant', cases };
      }
      case 0x70:
        return { k: 'list', t: this.valType() };
      case 0x6f: {
        const ts: ValType[] = [];
        for (let i = 0, n = this.count(); i < n; i++) ts.push(this.valType());
        return { k: 'tuple', ts };
      }
      case 0x6e:
      case 0x6d: {
        const labels: string[] = [];
        for (let i = 0, n = this.count(); i < n; i++) labels.push(this.name());
        return { k: b === 0x6e ? 'flags' : 'enum', labels };
      }
      case 0x6b:
        return { k: 'option', t: this.valType() };
      case 0x6a: {
        const ok = this.optional(() => this.valType());
        const err = this.optional(() => this.valType());
        return { k: 'result', ok, err };
      }
      case 0x69:
      case 0x68:
        this.u32();
        return { k: 'other', what: b === 0x69 ? 'own' : 'borrow' };
      case 0x67:
        this.valType();
        this.u32();
        return { k: 'other', what: 'a fixed-size list' };
      case 0x66:
      case 0x65:
        this.optional(() => this.valType());
        return { k: 'other', what: b === 0x66 ? 'a stream' : 'a future' };
      case 0x64:
        return { k: 'other', what: 'error-context' };
      case 0x40: {
        const params: [string, ValType][] = [];
        for (let i = 0, n = this.count(); i < n; i++) params.push([this.name(), this.valType()]);
        const form = this.byte();
        if (form === 0x00) return { k: 'func', params, result: this.valType() };
        if (form !== 0x01 || this.u32() !== 0) fail('a function has named results');
        return { k: 'func', params, result: undefined };
      }
      case 0x42: {
        const at = this.pos;
        skipDecls(this, false);
        return { k: 'instance', at, end: this.pos };
      }
      case 0x41:
        skipDecls(this, true);
        return { k: 'other', what: 'a component type' };
      case 0x3f:
        if (this.byte() !== 0x7f) fail('a resource type is malformed');
        this.optional(() => this.u32());
        return { k: 'other', what: 'a resource' };
      default:
        // 0x43 (async function), 0x3e (async resource), anything newer: not framed, not run.
        fail(`the type constructor 0x${b.toString(16)} is not read`);
    }
  }
}

/** Binary.md `externdesc`; returns its tag (and the type index or bound). */
function externDesc(r: Reader): { tag: number; idx?: number; sub?: boolean } {
  const tag = r.byte();
  switch (tag) {
    case 0x00:
      if (r.byte() !== 0x11) fail('a core extern is not a module');
      return { tag, idx: r.u32() };
    case 0x01:
    case 0x04:
    case 0x05:
      return { tag, idx: r.u32() };
    case 0x03: {
      const bound = r.byte();
      if (bound === 0x00) return { tag, idx: r.u32() };
      if (bound === 0x01) return { tag, sub: true };
      return fail('a type bound is malformed');
    }
    default:
      return fail(`an extern has the kind 0x${tag.toString(16)}`);
  }
}

/** An instance or component type's declarations, read to their end (a core type cannot be framed here). */
function skipDecls(r: Reader, component: boolean): void {
  for (let i = 0, n = r.count(); i < n; i++) {
    const tag = r.byte();
    if (tag === 0x00) fail('a core type is declared inside a type');
    if (tag === 0x01) r.defType();
    else if (tag === 0x02) alias(r);
    else if (tag === 0x04 || (component && tag === 0x03)) {
      r.externName();
      externDesc(r);
    } else fail('a type declaration is malformed');
  }
}

/** Binary.md `alias`; returns its sort (0x00 for core sorts) and its target. */
function alias(r: Reader): { sort: number; target: number; a: number; b?: string | number } {
  let sort = r.byte();
  if (sort === 0x00) {
    r.byte();
    sort = -1; // a core sort: another index space
  }
  const target = r.byte();
  if (target === 0x00 || target === 0x01) return { sort, target, a: r.u32(), b: r.name() };
  if (target === 0x02) return { sort, target, a: r.u32(), b: r.u32() };
  return fail('an alias target is malformed');
}

/** Binary.md `sortidx`. */
function sortIdx(r: Reader): number {
  const sort = r.byte();
  if (sort === 0x00) r.byte();
  r.u32();
  return sort;
}

type TopType = { def: DefType } | { aliasOf: { instance: number; name: string } } | { same: number } | { opaque: string };
type TopInstance = { type: number } | { opaque: string };

/** An imported instance's type, read: its own type index space, type exports and functions. */
interface InstanceScope {
  readonly local: ({ def: DefType } | { eq: number } | { outer: number } | { opaque: string })[];
  readonly typeExports: Map<string, number>;
  readonly functions: [string, number][];
  /** Text of local types already written. */
  readonly memo: Map<number, string>;
}

class Resolver {
  readonly types: TopType[] = [];
  readonly instances: TopInstance[] = [];
  readonly imports: { name: string; instance: number }[] = [];
  /** The type index of each top-level `canon lift`, in order. */
  readonly lifts: number[] = [];
  readonly #scopes = new Map<number, InstanceScope>();
  readonly #topMemo = new Map<number, string>();

  constructor(readonly bytes: Uint8Array) {}

  /** The scope of the instance type at top-level type index `t`. */
  scope(t: number, depth: number): InstanceScope {
    const known = this.#scopes.get(t);
    if (known !== undefined) return known;
    const def = this.topDef(t, depth);
    if (def.k !== 'instance') fail(`type ${t} is not an instance type`);
    const r = new Reader(this.bytes, def.at, def.end);
    const scope: InstanceScope = { local: [], typeExports: new Map(), functions: [], memo: new Map() };
    for (let i = 0, n = r.count(); i < n; i++) {
      const tag = r.byte();
      if (tag === 0x01) scope.local.push({ def: r.defType() });
      else if (tag === 0x02) {
        const a = alias(r);
        if (a.sort !== 0x03) continue; // another index space: no type of this scope
        if (a.target !== 0x02 || a.a !== 1 || typeof a.b !== 'number' || a.b >= t) scope.local.push({ opaque: 'an alias this reader does not follow' });
        else scope.local.push({ outer: a.b });
      } else if (tag === 0x04) {
        const name = r.externName();
        const d = externDesc(r);
        if (d.tag === 0x01) scope.functions.push([name, d.idx!]);
        else if (d.tag === 0x03) {
          scope.typeExports.set(name, scope.local.length);
          if (d.sub === true) scope.local.push({ opaque: `the resource ${name}` });
          else scope.local.push({ eq: d.idx! });
        } else fail(`the instance type exports ${JSON.stringify(name)}, neither a function nor a type`);
      } else fail('an instance type declares a core type or something unknown');
    }
    this.#scopes.set(t, scope);
    return scope;
  }

  topDef(t: number, depth: number): DefType {
    if (depth > MAX_DEPTH) fail('types nest too deeply');
    const entry = this.types[t];
    if (entry === undefined) fail(`type ${t} is not defined before it is used`);
    if ('def' in entry) return entry.def;
    if ('same' in entry) return this.topDef(entry.same, depth + 1);
    fail('opaque' in entry ? entry.opaque : `type ${t} is not one this reader follows`);
  }

  /** The text of top-level type `t`. */
  topText(t: number, depth: number): string {
    const known = this.#topMemo.get(t);
    if (known !== undefined) return known;
    if (depth > MAX_DEPTH) fail('types nest too deeply');
    const entry = this.types[t];
    let text: string;
    if (entry === undefined) fail(`type ${t} is not defined before it is used`);
    else if ('def' in entry) text = this.defText(entry.def, (i) => (i < t ? this.topText(i, depth + 1) : fail('a type refers forward')), depth);
    else if ('same' in entry) text = entry.same < t ? this.topText(entry.same, depth + 1) : fail('a type refers forward');
    else if ('aliasOf' in entry) {
      const inst = this.instances[entry.aliasOf.instance];
      if (inst === undefined || !('type' in inst)) fail('a type is aliased from an instance that is not imported');
      const scope = this.scope(inst.type, depth + 1);
      const local = scope.typeExports.get(entry.aliasOf.name);
      if (local === undefined) fail(`the type ${JSON.stringify(entry.aliasOf.name)} is not exported by its instance`);
      text = this.localText(inst.type, scope, local, depth + 1);
    } else fail(entry.opaque);
    this.#topMemo.set(t, text);
    return text;
  }

  /** The text of type `i` of the instance type at top-level index `t`. */
  localText(t: number, scope: InstanceScope, i: number, depth: number): string {
    const known = scope.memo.get(i);
    if (known !== undefined) return known;
    if (depth > MAX_DEPTH) fail('types nest too deeply');
    const entry = scope.local[i];
    let text: string;
    if (entry === undefined) fail(`type ${i} of an instance type is not defined before it is used`);
    else if ('def' in entry) text = this.defText(entry.def, (j) => (j < i ? this.localText(t, scope, j, depth + 1) : fail('a type refers forward')), depth);
    else if ('eq' in entry) text = entry.eq < i ? this.localText(t, scope, entry.eq, depth + 1) : fail('a type refers forward');
    else if ('outer' in entry) text = this.topText(entry.outer, depth + 1);
    else fail(entry.opaque);
    scope.memo.set(i, text);
    return text;
  }

  /** The text of a value type definition; `ref` writes a referenced index. */
  defText(def: DefType, ref: (i: number) => string, depth: number): string {
    if (depth > MAX_DEPTH) fail('types nest too deeply');
    const v = (t: ValType | undefined): string => (t === undefined ? '_' : typeof t === 'string' ? t : ref(t));
    let text: string;
    switch (def.k) {
      case 'prim':
        text = def.name;
        break;
      case 'record':
        text = `record{${def.fields.map(([l, t]) => `${l}: ${v(t)}`).join(', ')}}`;
        break;
      case 'variant':
        text = `variant{${def.cases.map(([l, t]) => (t === undefined ? l : `${l}(${v(t)})`)).join(', ')}}`;
        break;
      case 'list':
      case 'option':
        text = `${def.k}<${v(def.t)}>`;
        break;
      case 'tuple':
        text = `tuple<${def.ts.map(v).join(', ')}>`;
        break;
      case 'flags':
      case 'enum':
        text = `${def.k}{${def.labels.join(', ')}}`;
        break;
      case 'result':
        text = `result<${v(def.ok)}, ${v(def.err)}>`;
        break;
      case 'func':
        text = `func(${def.params.map(([l, t]) => `${l}: ${v(t)}`).join(', ')})${def.result === undefined ? '' : ` -> ${v(def.result)}`}`;
        break;
      case 'instance':
        return fail('an instance type is used as a value type');
      default:
        return fail(`${def.what} is used`);
    }
    if (text.length > MAX_TEXT) fail('a type is too long');
    return text;
  }
}

/** Numbers the top-level type and instance index spaces (Binary.md), recording imports. */
function readTopLevel(bytes: Uint8Array, res: Resolver): void {
  const top = new Reader(bytes, COMPONENT_HEADER.length, bytes.length);
  while (top.pos < top.end) {
    const id = top.byte();
    const size = top.u32();
    const end = top.pos + size;
    if (end > top.end) fail('a section runs past the component');
    const r = new Reader(bytes, top.pos, end);
    switch (id) {
      case 7: {
        const n = r.count();
        let i = 0;
        try {
          for (; i < n; i++) res.types.push({ def: r.defType() });
        } catch (err) {
          if (!(err instanceof Unreadable)) throw err;
          // The rest of this section cannot be framed: its types are numbered, never followed.
          for (; i < n; i++) res.types.push({ opaque: `a type this reader cannot frame (${err.message})` });
        }
        break;
      }
      case 6:
        for (let i = 0, n = r.count(); i < n; i++) {
          const a = alias(r);
          if (a.sort === 0x03) {
            if (a.target === 0x00) res.types.push({ aliasOf: { instance: a.a, name: a.b as string } });
            else if (a.target === 0x02 && a.a === 0) res.types.push({ same: a.b as number });
            else res.types.push({ opaque: 'an alias this reader does not follow' });
          } else if (a.sort === 0x05) res.instances.push({ opaque: 'an aliased instance' });
        }
        break;
      case 10:
        for (let i = 0, n = r.count(); i < n; i++) {
          const name = r.externName();
          const d = externDesc(r);
          if (d.tag === 0x05) {
            res.imports.push({ name, instance: res.instances.length });
            res.instances.push({ type: d.idx! });
          } else if (d.tag === 0x03) res.types.push({ opaque: 'an imported type' });
        }
        break;
      case 11:
        for (let i = 0, n = r.count(); i < n; i++) {
          r.externName();
          const sort = sortIdx(r);
          r.optional(() => externDesc(r));
          if (sort === 0x03) res.types.push({ opaque: 'an exported type' });
          else if (sort === 0x05) res.instances.push({ opaque: 'an exported instance' });
        }
        break;
      case 5:
        for (let i = 0, n = r.count(); i < n; i++) {
          const form = r.byte();
          const args = form === 0x00 ? (r.u32(), r.count()) : form === 0x01 ? r.count() : fail('an instance is malformed');
          for (let j = 0; j < args; j++) {
            if (form === 0x00) r.name();
            else r.externName();
            sortIdx(r);
          }
          res.instances.push({ opaque: 'an instance made by the component' });
        }
        break;
      case 8:
        for (let i = 0, n = r.count(); i < n; i++) {
          const kind = r.byte();
          if (kind !== 0x00 && kind !== 0x01) fail('a canonical definition other than lift and lower');
          r.byte();
          r.u32();
          for (let j = 0, m = r.count(); j < m; j++) {
            const opt = r.byte();
            if (opt === 0x03 || opt === 0x04 || opt === 0x05) r.u32();
          }
          if (kind === 0x00) res.lifts.push(r.u32());
        }
        break;
      default:
        break; // no type or instance of the top level (custom, core, nested components)
    }
    top.pos = end;
  }
}

/** The type of one function the component lifts (its type index resolved), or why it could not be read. */
export type LiftedType = { readonly resolved: true; readonly type: string } | { readonly resolved: false; readonly why: string };

/**
 * The type, as text (see {@link importTypes}), of every function the component lifts at its top
 * level (`canon lift`), in order: jco's glue has code for each (the enclave world lifts one, the
 * handler's `call`, whose type bounds that code; an exported type of a million nodes made a 2.6 KB
 * component's glue 9.7 MB, parsed on the host thread and kept for the process's life).
 */
export function liftedTypes(bytes: Uint8Array): LiftedType[] {
  const res = new Resolver(bytes);
  try {
    readTopLevel(bytes, res);
  } catch (err) {
    if (!(err instanceof Unreadable)) throw err;
    return [{ resolved: false, why: err.message }];
  }
  return res.lifts.map((t, i) => {
    if (i >= MAX_FUNCTIONS) return { resolved: false, why: `more than ${MAX_FUNCTIONS} functions are lifted` };
    try {
      return { resolved: true, type: res.topText(t, 0) };
    } catch (err) {
      if (!(err instanceof Unreadable)) throw err;
      return { resolved: false, why: err.message };
    }
  });
}

/**
 * The functions of each imported instance with their types as text, by import name: a WIT-like
 * text with every named type written out (`enum{...}`, `record{name: type, ...}`, `result<ok, err>`
 * with `_` for none, `func(name: type, ...) -> type`), or why they could not be read.
 * @example
 * importTypes(bytes).get('enclave:runtime/clock@1.0.0'); // { resolved: true, functions: [{ name: 'now', type: 'func() -> s64' }] }
 */
export function importTypes(bytes: Uint8Array): Map<string, ImportTypes> {
  const out = new Map<string, ImportTypes>();
  const res = new Resolver(bytes);
  try {
    readTopLevel(bytes, res);
  } catch (err) {
    if (!(err instanceof Unreadable)) throw err;
    for (const imp of res.imports) out.set(imp.name, { resolved: false, why: err.message });
    return out;
  }
  for (const imp of res.imports) {
    try {
      const inst = res.instances[imp.instance]!;
      if (!('type' in inst)) fail(inst.opaque);
      const scope = res.scope(inst.type, 0);
      if (scope.functions.length > MAX_FUNCTIONS) fail(`the instance type has ${scope.functions.length} functions`);
      const functions = scope.functions.map(([name, i]) => ({ name, type: res.localText(inst.type, scope, i, 0) }));
      out.set(imp.name, { resolved: true, functions });
    } catch (err) {
      if (!(err instanceof Unreadable)) throw err;
      out.set(imp.name, { resolved: false, why: err.message });
    }
  }
  return out;
}
