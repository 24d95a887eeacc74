/**
 * Reads what validation needs from a module's binary: function types of imports and exports and the
 * limits of its memory. `WebAssembly.Module.imports()` names imports but not their signatures, and
 * nothing in the JS API reports a memory's declared maximum, so those few sections are parsed here
 * (core spec §5.5). Every length is checked against the bytes of its section.
 */
import { listSections } from '../attest/wasm-sections.js';
import { EnclaveError } from './errors.js';

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
export interface ModuleInfo {
  readonly imports: readonly ImportInfo[];
  readonly exports: readonly ExportInfo[];
  /** Memories the module defines itself (imported memories are in `imports`). */
  readonly memories: readonly MemoryInfo[];
  readonly customSections: readonly string[];
}

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
  u64AsNumber(): number {
    let result = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    malformed('an integer is longer than 10 bytes');
  }
  name(): string {
    const len = this.u32();
    if (len > this.end - this.#pos) malformed('a name runs past its section');
    const s = this.bytes.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(s);
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
    if (flags > (memory ? 0x07 : 0x01)) malformed('unknown limits flags');
    const memory64 = (flags & 0x04) !== 0;
    const read = () => (memory64 ? this.u64AsNumber() : this.u32());
    const initial = read();
    const maximum = flags & 0x01 ? read() : undefined;
    return { initial, maximum, shared: (flags & 0x02) !== 0, memory64 };
  }
}

function valtype(r: Reader): ValType {
  const t = VALTYPES[r.byte()];
  if (t === undefined) malformed('unknown value type');
  return t;
}

/**
 * Parses the import, export, type, function and memory sections of a module.
 * @throws {EnclaveError} `invalid_module` for bytes that are not a well-formed module.
 */
export function readModuleInfo(bytes: Uint8Array): ModuleInfo {
  let sections;
  try {
    sections = listSections(bytes);
  } catch (err) {
    throw new EnclaveError('invalid_module', `The module is malformed: ${(err as Error).message}.`);
  }
  const types: FuncType[] = [];
  const funcTypes: number[] = []; // type index of every function, imported ones first
  const imports: ImportInfo[] = [];
  const exportsRaw: { name: string; kind: ExternKind; index: number }[] = [];
  const memories: MemoryInfo[] = [];
  const customSections: string[] = [];

  for (const s of sections) {
    const r = new Reader(bytes, s.payloadStart, s.end);
    switch (s.id) {
      case 0:
        customSections.push(s.name!);
        break;
      case 1: {
        for (let i = 0, n = r.count(); i < n; i++) {
          if (r.byte() !== 0x60) malformed('a type is not a function type');
          const params = Array.from({ length: r.count() }, () => valtype(r));
          const results = Array.from({ length: r.count() }, () => valtype(r));
          types.push({ params, results });
        }
        break;
      }
      case 2: {
        for (let i = 0, n = r.count(); i < n; i++) {
          const module = r.name();
          const name = r.name();
          const kindByte = r.byte();
          const kind = KINDS[kindByte] ?? malformed('unknown import kind');
          if (kind === 'function') {
            const typeIndex = r.u32();
            const type = types[typeIndex] ?? malformed('an import names a type that does not exist');
            funcTypes.push(typeIndex);
            imports.push({ module, name, kind, type });
          } else {
            // Any non-function import refuses the module (docs/ABI.md §3): record it and stop
            // parsing this section, whose remaining layout we need not understand.
            imports.push({ module, name, kind });
            break;
          }
        }
        break;
      }
      case 3: {
        for (let i = 0, n = r.count(); i < n; i++) {
          const typeIndex = r.u32();
          if (types[typeIndex] === undefined) malformed('a function names a type that does not exist');
          funcTypes.push(typeIndex);
        }
        break;
      }
      case 5: {
        for (let i = 0, n = r.count(); i < n; i++) memories.push(r.limits(true));
        break;
      }
      case 7: {
        for (let i = 0, n = r.count(); i < n; i++) {
          const name = r.name();
          const kind = KINDS[r.byte()] ?? malformed('unknown export kind');
          exportsRaw.push({ name, kind, index: r.u32() });
        }
        break;
      }
      default:
        break;
    }
  }
  const exports: ExportInfo[] = exportsRaw.map(({ name, kind, index }) => {
    if (kind !== 'function') return { name, kind };
    const typeIndex = funcTypes[index];
    return typeIndex === undefined ? { name, kind } : { name, kind, type: types[typeIndex]! };
  });
  return { imports, exports, memories, customSections };
}

/** `(i32, i32) -> i32` style text for messages and `enclave inspect`. */
export function formatFuncType(type: FuncType | undefined): string {
  if (type === undefined) return '?';
  return `(${type.params.join(', ')}) -> ${type.results.length === 0 ? '()' : type.results.join(', ')}`;
}
