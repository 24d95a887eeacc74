/**
 * Reads what validation needs from a module's binary: function types of imports and exports, the
 * limits of its memory and tables, and the size of everything the host pays for at load.
 * `WebAssembly.Module.imports()` names imports but not their signatures, and nothing in the JS API
 * reports a memory's declared maximum or a table's size, so those sections are parsed here (core
 * spec §5.5). Every length is checked against the bytes of its section, and every count against
 * {@link MODULE_BOUNDS} as it is read, so a hostile module is refused in time linear in its bytes,
 * before the engine or the instrumenter spends anything on it (docs/LIMITS.md, "Module structure").
 *
 * Names are decoded exactly as the engine decodes them: UTF-8, fatal on malformed bytes, and a
 * leading U+FEFF kept (TextDecoder strips it by default; V8 does not), so our parser and the engine
 * never disagree about which section or export a name denotes.
 */
import { EnclaveError } from './errors.js';
import { listSections, readU32Leb, WASM_NAME_DECODER } from './wasm-sections.js';

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';
export interface FuncType {
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}
export type ExternKind = 'function' | 'table' | 'memory' | 'global' | 'tag';

export interface ImportInfo {
  readonly module: string;
  readonly name: string;
  readonly kind: ExternKind;
  /** For function imports. */
  readonly type?: FuncType;
}
export interface ExportInfo {
  readonly name: string;
  readonly kind: ExternKind;
  /** For exported functions. */
  readonly type?: FuncType;
}
export interface MemoryInfo {
  /** Initial size in 64 KiB pages. */
  readonly initial: number;
  /** Declared maximum in pages, `undefined` when the module declares none. */
  readonly maximum: number | undefined;
  readonly shared: boolean;
  readonly memory64: boolean;
}
export interface TableInfo {
  /** Initial size in elements: the size for the instance's whole life (a table cannot grow, docs/ABI.md §2). */
  readonly initial: number;
  /** Declared maximum in elements, `undefined` when the module declares none. */
  readonly maximum: number | undefined;
}
export interface ModuleInfo {
  readonly imports: readonly ImportInfo[];
  readonly exports: readonly ExportInfo[];
  /** Memories the module defines itself (imported memories are in `imports`). */
  readonly memories: readonly MemoryInfo[];
  /** Tables the module defines itself: at most one, of `funcref` (imported tables are refused). */
  readonly tables: readonly TableInfo[];
  readonly customSections: readonly string[];
}

/**
 * Bounds on a module's structure, checked while its sections are read: before the engine
 * validates or compiles it and before it is instrumented (docs/LIMITS.md, "Module structure").
 * Each is well under the engine's own limit (V8's `wasm-limits.h`), so a module the engine would
 * refuse, or that its instrumented form could not carry, gets a clear `invalid_module` here.
 * @example
 * if (bytes.length > MODULE_BOUNDS.moduleBytes) console.warn('the runtime will refuse this module');
 */
export const MODULE_BOUNDS = Object.freeze({
  /** Bytes of the module file (V8: 1 GiB). */
  moduleBytes: 2 * 1024 * 1024,
  /**
   * Sections, custom ones included (V8: no limit). 2 MiB hold 700 000 empty custom sections, and
   * every pass over them (listing, measuring, sending the module's info to a worker) is host-thread work.
   */
  sections: 1_000,
  /** Function types (V8: 1 000 000). */
  types: 10_000,
  /** Imports (only the six functions of docs/ABI.md §3 may be imported). */
  imports: 100,
  /** Functions, imported and defined (V8: 1 000 000). */
  functions: 100_000,
  /** Locals of one function, parameters included (V8: 50 000; the instrumenter adds one). */
  localsPerFunction: 10_000,
  /** Locals of all functions together. */
  locals: 1_000_000,
  /** Globals (V8: 1 000 000); the instrumenter exports every mutable one. */
  globals: 10_000,
  /** Exports (V8: 100 000; the instrumenter adds one per mutable global and two more). */
  exports: 10_000,
  /** Data segments (V8: 100 000). */
  dataSegments: 100_000,
  /** Element segments (V8: 10 000 000 entries). */
  elementSegments: 10_000,
  /** Entries of all element segments together. */
  elements: 100_000,
  /** Entries of a table; the contract's and the policy's `tableElements` are capped by it (V8: 10 000 000). */
  tableElements: 100_000,
});

const VALTYPES: Record<number, ValType> = {
  0x7f: 'i32',
  0x7e: 'i64',
  0x7d: 'f32',
  0x7c: 'f64',
  0x7b: 'v128',
  0x70: 'funcref',
  0x6f: 'externref',
};
const KINDS: ExternKind[] = ['function', 'table', 'memory', 'global', 'tag'];

function malformed(what: string): never {
  throw new EnclaveError('invalid_module', `The module is malformed: ${what}.`);
}

function outside(what: string): never {
  throw new EnclaveError('invalid_module', `The module ${what}, outside the enclave feature set (docs/ABI.md §2).`);
}

/** Refuses a count above its bound, before anything is allocated or parsed for it. */
function bounded(count: number, bound: keyof typeof MODULE_BOUNDS, what: string): number {
  const max = MODULE_BOUNDS[bound];
  if (count > max) {
    throw new EnclaveError('invalid_module', `The module has ${count} ${what}; the runtime accepts at most ${max} (docs/LIMITS.md, "Module structure").`);
  }
  return count;
}

/** A table above the hard ceiling: refused like a memory above the policy, before any instance exists. */
function tableTooLarge(initial: number): never {
  throw new EnclaveError(
    'memory_limit',
    `The module table holds ${initial} elements; the runtime accepts at most ${MODULE_BOUNDS.tableElements} (docs/LIMITS.md, "Tables").`,
  );
}

const WASM_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const FUNCREF = 0x70;
const I32_CONST = 0x41;
const END = 0x0b;
const REF_FUNC = 0xd2;
const REF_NULL = 0xd0;

/** A cursor over one section's payload that refuses to read past it. */
class Reader {
  #pos: number;
  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.#pos = start;
  }
  get pos(): number {
    return this.#pos;
  }
  byte(): number {
    if (this.#pos >= this.end) malformed('a section ends early');
    return this.bytes[this.#pos++]!;
  }
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) malformed('an integer overflows u32');
        return result;
      }
    }
    malformed('an integer is longer than 5 bytes');
  }
  /** A signed LEB128 i32 (core spec §5.2.2), as `i32.const` encodes it. */
  s32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (b & 0x40) result -= 2 ** (shift + 7);
        if (result < -(2 ** 31) || result > 2 ** 31 - 1) malformed('an integer overflows i32');
        return result;
      }
    }
    malformed('an integer is longer than 5 bytes');
  }
  u64AsNumber(): number {
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    malformed('an integer is longer than 10 bytes');
  }
  skip(n: number): void {
    if (n < 0 || n > this.end - this.#pos) malformed('an entry runs past its section or its own size');
    this.#pos += n;
  }
  name(): string {
    const len = this.u32();
    if (len > this.end - this.#pos) malformed('a name runs past its section');
    const s = this.bytes.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    try {
      return WASM_NAME_DECODER.decode(s);
    } catch {
      malformed('a name is not UTF-8');
    }
  }
  /** A vector count, bounded by the bytes left (every element takes at least one byte). */
  count(): number {
    const n = this.u32();
    if (n > this.end - this.#pos) malformed('a vector claims more elements than its section holds');
    return n;
  }
  limits(memory: boolean): MemoryInfo {
    const flags = this.byte();
    if (flags > (memory ? 0x07 : 0x01)) {
      if (memory) malformed('unknown limits flags');
      outside('declares a shared or 64-bit table');
    }
    const memory64 = (flags & 0x04) !== 0;
    const read = () => (memory64 ? this.u64AsNumber() : this.u32());
    const initial = read();
    const maximum = flags & 0x01 ? read() : undefined;
    return { initial, maximum, shared: (flags & 0x02) !== 0, memory64 };
  }
  /** A table type: only `funcref` (reference types are outside the ABI's feature set). */
  table(): TableInfo {
    if (this.byte() !== FUNCREF) outside('declares a table of another type than funcref');
    const { initial, maximum } = this.limits(false);
    return { initial, maximum };
  }
  /** An element segment's offset: `i32.const n` (global.get could only name a refused import). */
  offset(): number {
    if (this.byte() !== I32_CONST) outside('gives an element segment an offset that is not an i32.const');
    const value = this.s32();
    if (this.byte() !== END) outside('gives an element segment an offset that is not an i32.const');
    return value >>> 0;
  }
  /** One element expression: `ref.func f` or `ref.null func`. */
  elementExpr(): void {
    const op = this.byte();
    if (op === REF_FUNC) this.u32();
    else if (op === REF_NULL) {
      if (this.byte() !== FUNCREF) outside('has an element of another type than funcref');
    } else outside('has an element expression other than ref.func or ref.null');
    if (this.byte() !== END) outside('has an element expression other than ref.func or ref.null');
  }
}

function valtype(r: Reader): ValType {
  const t = VALTYPES[r.byte()];
  if (t === undefined) malformed('unknown value type');
  return t;
}

/**
 * A value type outside reference types: `funcref` and `externref` parameters, results, locals and
 * globals are refused (docs/ABI.md §2); only a table holds function references.
 */
function plainType(r: Reader, where: string): ValType {
  const t = valtype(r);
  if (t === 'funcref' || t === 'externref') outside(`has a ${t} ${where} (reference types)`);
  return t;
}

/** Opcodes of constant expressions (core spec §3.3.10, extended-const) and their immediates. */
function skipConstExpr(r: Reader): void {
  for (;;) {
    const op = r.byte();
    if (op === END) return;
    if (op === I32_CONST) r.s32();
    else if (op === 0x42) r.u64AsNumber(); // i64.const: only skipped
    else if (op === 0x43) r.skip(4);
    else if (op === 0x44) r.skip(8);
    else if (op === 0x23 || op === REF_FUNC) r.u32(); // global.get, ref.func
    else if (op === REF_NULL) r.byte();
    else if (op === 0xfd && r.u32() === 12) r.skip(16); // v128.const
    else if ([0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(op)) continue; // i32/i64 add, sub, mul
    else outside('uses an instruction in a constant expression that the runtime does not know');
  }
}

/**
 * Parses the sections validation needs, and checks the module's structure against
 * {@link MODULE_BOUNDS} and its element segments against its tables, in one pass over the bytes.
 * @throws {EnclaveError} `invalid_module` for bytes that are not a well-formed module, for a module
 *   over a structural bound, a table that is not `funcref`, more than one table, or an active element
 *   segment that does not fit its table; `memory_limit` for a table above {@link MODULE_BOUNDS}`.tableElements`.
 * @example
 * const { exports, tables } = readModuleInfo(bytes);
 */
export function readModuleInfo(bytes: Uint8Array): ModuleInfo {
  if (bytes.length > MODULE_BOUNDS.moduleBytes) {
    throw new EnclaveError(
      'invalid_module',
      `The module is ${bytes.length} bytes; the runtime accepts at most ${MODULE_BOUNDS.moduleBytes} (docs/LIMITS.md, "Module structure").`,
    );
  }
  // Core modules only: the section framing (listSections) also accepts a component, whose contents
  // are read by core/component-binary.ts, never here.
  if (bytes.length >= 8 && !WASM_HEADER.every((b, i) => bytes[i] === b)) {
    const component = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00].every((b, i) => bytes[i] === b);
    malformed(component ? 'it is a component, not a core module' : 'not a WebAssembly 1.0 module (bad magic or version)');
  }
  // Sections counted from their headers alone, before anything is decoded or allocated for them;
  // a malformed header stops the count, and listSections says what is wrong with it.
  let count = 0;
  if (WASM_HEADER.every((b, i) => bytes[i] === b)) {
    for (let pos = 8; pos < bytes.length && count <= MODULE_BOUNDS.sections; count++) {
      let size: number;
      try {
        [size, pos] = readU32Leb(bytes, pos + 1);
      } catch {
        break;
      }
      pos += size;
    }
  }
  bounded(count, 'sections', count > MODULE_BOUNDS.sections ? 'sections or more' : 'sections');
  let sections;
  try {
    sections = listSections(bytes);
  } catch (err) {
    throw new EnclaveError('invalid_module', `The module is malformed: ${(err as Error).message}.`);
  }
  const types: FuncType[] = [];
  const funcTypes: number[] = []; // type index of every function, imported ones first
  let importedFunctions = 0;
  const imports: ImportInfo[] = [];
  const exportsRaw: { name: string; kind: ExternKind; index: number }[] = [];
  const memories: MemoryInfo[] = [];
  const tables: TableInfo[] = [];
  const tableSizes: number[] = []; // the table index space, imported tables first
  const customSections: string[] = [];
  let locals = 0;
  let elements = 0;

  for (const s of sections) {
    const r = new Reader(bytes, s.payloadStart, s.end);
    switch (s.id) {
      case 0:
        customSections.push(s.name!);
        break;
      case 1: {
        for (let i = 0, n = bounded(r.count(), 'types', 'function types'); i < n; i++) {
          if (r.byte() !== 0x60) malformed('a type is not a function type');
          const params = Array.from({ length: r.count() }, () => plainType(r, 'parameter'));
          const results = Array.from({ length: r.count() }, () => plainType(r, 'result'));
          types.push({ params, results });
        }
        break;
      }
      case 2: {
        for (let i = 0, n = bounded(r.count(), 'imports', 'imports'); i < n; i++) {
          const module = r.name();
          const name = r.name();
          const kindByte = r.byte();
          const kind = KINDS[kindByte] ?? malformed('unknown import kind');
          if (kind === 'function') {
            const typeIndex = r.u32();
            const type = types[typeIndex] ?? malformed('an import names a type that does not exist');
            funcTypes.push(typeIndex);
            importedFunctions++;
            imports.push({ module, name, kind, type });
            continue;
          }
          // Any non-function import refuses the module (docs/ABI.md §3); it is still read, so the
          // index spaces after it are right.
          imports.push({ module, name, kind });
          if (kind === 'table') tableSizes.push(r.table().initial);
          else if (kind === 'memory') r.limits(true);
          else if (kind === 'global') {
            valtype(r);
            r.byte();
          } else {
            r.byte();
            r.u32();
          }
        }
        break;
      }
      case 3: {
        const n = r.count();
        bounded(funcTypes.length + n, 'functions', 'functions');
        for (let i = 0; i < n; i++) {
          const typeIndex = r.u32();
          if (types[typeIndex] === undefined) malformed('a function names a type that does not exist');
          funcTypes.push(typeIndex);
        }
        break;
      }
      case 4: {
        const n = r.count();
        // More than one table needs reference types (call_indirect with a table index).
        if (n + tableSizes.length > 1) outside('declares more than one table');
        for (let i = 0; i < n; i++) {
          const t = r.table();
          if (t.initial > MODULE_BOUNDS.tableElements) tableTooLarge(t.initial);
          tables.push(t);
          tableSizes.push(t.initial);
        }
        break;
      }
      case 5: {
        for (let i = 0, n = r.count(); i < n; i++) memories.push(r.limits(true));
        break;
      }
      case 6:
        // The instrumenter exports every mutable global (runtime/fuel.ts): bounding them all keeps
        // the instrumented module's exports far under the engine's 100 000.
        for (let i = 0, n = bounded(r.count(), 'globals', 'globals'); i < n; i++) {
          plainType(r, 'global');
          if (r.byte() > 1) malformed('unknown global mutability');
          skipConstExpr(r);
        }
        break;
      case 7: {
        for (let i = 0, n = bounded(r.count(), 'exports', 'exports'); i < n; i++) {
          const name = r.name();
          const kind = KINDS[r.byte()] ?? malformed('unknown export kind');
          exportsRaw.push({ name, kind, index: r.u32() });
        }
        break;
      }
      case 9: {
        for (let i = 0, n = bounded(r.count(), 'elementSegments', 'element segments'); i < n; i++) {
          elements += readElementSegment(r, tableSizes);
          bounded(elements, 'elements', 'element segment entries');
        }
        break;
      }
      case 10: {
        const n = r.count();
        for (let i = 0; i < n; i++) {
          const size = r.u32();
          const bodyStart = r.pos;
          const typeIndex = funcTypes[importedFunctions + i];
          if (typeIndex === undefined) malformed('the code section does not match the function section');
          let own = types[typeIndex]!.params.length;
          for (let g = 0, groups = r.count(); g < groups; g++) {
            own += r.u32();
            plainType(r, 'local');
            // Checked per group, so a module declaring 2^32 locals in one group is refused
            // before anything walks them.
            if (own > MODULE_BOUNDS.localsPerFunction) {
              throw new EnclaveError(
                'invalid_module',
                `Function ${importedFunctions + i} of the module has more than ${MODULE_BOUNDS.localsPerFunction} locals (parameters included); the runtime accepts at most that many (docs/LIMITS.md, "Module structure").`,
              );
            }
          }
          locals += own;
          bounded(locals, 'locals', 'locals in all its functions together');
          r.skip(size - (r.pos - bodyStart));
        }
        break;
      }
      case 11:
        bounded(r.count(), 'dataSegments', 'data segments');
        break;
      default:
        break;
    }
  }
  const exports: ExportInfo[] = exportsRaw.map(({ name, kind, index }) => {
    if (kind !== 'function') return { name, kind };
    const typeIndex = funcTypes[index];
    return typeIndex === undefined ? { name, kind } : { name, kind, type: types[typeIndex]! };
  });
  return { imports, exports, memories, tables, customSections };
}

/**
 * Reads one element segment (core spec §5.5.12, flags 0..7) and returns its number of entries.
 * An active segment must fit its table: checked here, statically, so it is refused at load with
 * `invalid_module` as a data segment past the memory is, rather than trapping every instantiation.
 */
function readElementSegment(r: Reader, tableSizes: readonly number[]): number {
  const flags = r.u32();
  if (flags > 7) malformed('unknown element segment flags');
  const passive = (flags & 0x01) !== 0; // passive (1, 5) or declarative (3, 7)
  const explicitTable = (flags & 0x02) !== 0;
  const exprs = (flags & 0x04) !== 0;
  let table = 0;
  let offset = 0;
  if (!passive) {
    if (explicitTable) table = r.u32();
    offset = r.offset();
  }
  if (passive || explicitTable) {
    const kind = r.byte();
    // elemkind 0x00 (funcref) for index vectors, a reftype for expression vectors.
    if (exprs ? kind !== FUNCREF : kind !== 0x00) outside('has an element segment of another type than funcref');
  }
  const n = r.count();
  for (let i = 0; i < n; i++) {
    if (exprs) r.elementExpr();
    else r.u32();
  }
  if (!passive) {
    const size = tableSizes[table];
    if (size === undefined) malformed('an element segment names a table that does not exist');
    if (offset + n > size) {
      throw new EnclaveError(
        'invalid_module',
        `An element segment of the module ends at entry ${offset + n}, past the end of its table (${size} entries).`,
      );
    }
  }
  return n;
}

/** `(i32, i32) -> i32` style text for messages and `enclave inspect`. */
export function formatFuncType(type: FuncType | undefined): string {
  if (type === undefined) return '?';
  return `(${type.params.join(', ')}) -> ${type.results.length === 0 ? '()' : type.results.join(', ')}`;
}
