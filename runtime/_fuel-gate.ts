/**
 * The instrumenter's feature gate (docs/ABI.md §2): the features binaryen reads a module with, the
 * expressions the walk knows (an id outside them refuses the module: it fails closed rather than
 * leaving a loop unmetered), and the refusal of reference types; all as `invalid_module`.
 */
import { EnclaveError } from '../core/index.js';
import type { Binaryen, BinaryenModule, Ref } from './_fuel-binaryen.js';

/**
 * The features of docs/ABI.md (core + bulk-memory, sign-ext, mutable-globals, nontrapping-fptoint,
 * simd128) plus multi-value, which binaryen's reader needs for blocks with several results.
 */
export function abiFeatures(b: Binaryen): number {
  const f = b.Features;
  return f.MutableGlobals! | f.NontrappingFPToInt! | f.SIMD128! | f.BulkMemory! | f.SignExt! | f.Multivalue! | f.BulkMemoryOpt!;
}


/** Which getters of each expression class return child expressions, by expression id name. */
const CHILDREN: Record<string, readonly string[]> = {
  NopId: [],
  UnreachableId: [],
  ConstId: [],
  LocalGetId: [],
  GlobalGetId: [],
  MemorySizeId: [],
  DataDropId: [],
  LocalSetId: ['Value'],
  GlobalSetId: ['Value'],
  DropId: ['Value'],
  ReturnId: ['Value'],
  UnaryId: ['Value'],
  BinaryId: ['Left', 'Right'],
  SelectId: ['IfTrue', 'IfFalse', 'Condition'],
  BreakId: ['Condition', 'Value'],
  SwitchId: ['Condition', 'Value'],
  CallId: ['Operands'],
  CallIndirectId: ['Target', 'Operands'],
  LoadId: ['Ptr'],
  StoreId: ['Ptr', 'Value'],
  MemoryGrowId: ['Delta'],
  MemoryInitId: ['Dest', 'Offset', 'Size'],
  MemoryCopyId: ['Dest', 'Source', 'Size'],
  MemoryFillId: ['Dest', 'Value', 'Size'],
  SIMDExtractId: ['Vec'],
  SIMDReplaceId: ['Vec', 'Value'],
  SIMDShuffleId: ['Left', 'Right'],
  SIMDTernaryId: ['A', 'B', 'C'],
  SIMDShiftId: ['Vec', 'Shift'],
  SIMDLoadId: ['Ptr'],
  SIMDLoadStoreLaneId: ['Ptr', 'Vec'],
  TupleMakeId: ['Operands'],
  TupleExtractId: ['Tuple'],
};

/** Class names of the expression ids in {@link CHILDREN} (binaryen's `Expression` subclasses). */
const CLASS_OF: Record<string, string> = {
  LocalSetId: 'LocalSet',
  GlobalSetId: 'GlobalSet',
  DropId: 'Drop',
  ReturnId: 'Return',
  UnaryId: 'Unary',
  BinaryId: 'Binary',
  SelectId: 'Select',
  BreakId: 'Break',
  SwitchId: 'Switch',
  CallId: 'Call',
  CallIndirectId: 'CallIndirect',
  LoadId: 'Load',
  StoreId: 'Store',
  MemoryGrowId: 'MemoryGrow',
  MemoryInitId: 'MemoryInit',
  MemoryCopyId: 'MemoryCopy',
  MemoryFillId: 'MemoryFill',
  SIMDExtractId: 'SIMDExtract',
  SIMDReplaceId: 'SIMDReplace',
  SIMDShuffleId: 'SIMDShuffle',
  SIMDTernaryId: 'SIMDTernary',
  SIMDShiftId: 'SIMDShift',
  SIMDLoadId: 'SIMDLoad',
  SIMDLoadStoreLaneId: 'SIMDLoadStoreLane',
  TupleMakeId: 'TupleMake',
  TupleExtractId: 'TupleExtract',
};

/** A child getter of an expression class (`getValue`, `getOperands`...). */
export type ChildFn = (e: Ref) => Ref | Ref[];
/** The expression ids the walk treats apart, and how to reach and replace each child. */
export interface Walker {
  readonly block: number;
  readonly if: number;
  readonly loop: number;
  /** `br`/`br_if` and `br_table`. */
  readonly branch: number;
  readonly switch: number;
  readonly call: number;
  readonly callIndirect: number;
  readonly memoryInit: number;
  readonly memoryFill: number;
  readonly memoryCopy: number;
  readonly memoryGrow: number;
  readonly dataDrop: number;
  /** Loads from linear memory (weighted {@link LOAD_FUEL}). */
  readonly loads: ReadonlySet<number>;
  readonly return: number;
  /** Expression id to child getters; an id absent here is refused. */
  readonly children: Map<number, readonly ChildFn[]>;
  /** Expression id to the names of those children (`Value`, `Operands`...), for their setters. */
  readonly childNames: Map<number, readonly string[]>;
  /** Expression id to its binaryen class (`b.Drop`...), whose `set<Child>` replaces a child. */
  readonly classOf: Map<number, Record<string, unknown>>;
}

let walkerCache: Walker | undefined;
/** The {@link Walker} of a binaryen instance, built once (its ids are fixed per build). */
export function walkerFor(b: Binaryen): Walker {
  if (walkerCache !== undefined) return walkerCache;
  const children = new Map<number, readonly ChildFn[]>();
  const childNames = new Map<number, readonly string[]>();
  const classOf = new Map<number, Record<string, unknown>>();
  classOf.set(b.BlockId as number, b.Block as unknown as Record<string, unknown>);
  classOf.set(b.IfId as number, b.If as unknown as Record<string, unknown>);
  classOf.set(b.LoopId as number, b.Loop as unknown as Record<string, unknown>);
  for (const [idName, getters] of Object.entries(CHILDREN)) {
    const id = b[idName] as number;
    const cls = CLASS_OF[idName] === undefined ? undefined : (b[CLASS_OF[idName]!] as Record<string, ChildFn>);
    childNames.set(id, getters);
    if (cls !== undefined) classOf.set(id, cls);
    for (const g of getters) {
      const setter = g === 'Operands' ? 'setOperandAt' : `set${g}`;
      if (typeof cls?.[setter] !== 'function') throw new Error(`binaryen has no ${CLASS_OF[idName]}.${setter}`);
    }
    children.set(
      id,
      getters.map((g) => {
        const fn = cls?.[`get${g}`];
        if (typeof fn !== 'function') throw new Error(`binaryen has no ${CLASS_OF[idName]}.get${g}`);
        return fn as ChildFn;
      }),
    );
  }
  walkerCache = {
    block: b.BlockId as number,
    if: b.IfId as number,
    loop: b.LoopId as number,
    branch: b.BreakId as number,
    switch: b.SwitchId as number,
    call: b.CallId as number,
    callIndirect: b.CallIndirectId as number,
    memoryInit: b.MemoryInitId as number,
    memoryFill: b.MemoryFillId as number,
    memoryCopy: b.MemoryCopyId as number,
    memoryGrow: b.MemoryGrowId as number,
    dataDrop: b.DataDropId as number,
    loads: new Set([b.LoadId as number, b.SIMDLoadId as number, b.SIMDLoadStoreLaneId as number]),
    return: b.ReturnId as number,
    children,
    childNames,
    classOf,
  };
  return walkerCache;
}

/**
 * Refuses the module being instrumented.
 * @throws {EnclaveError} `invalid_module`, always.
 */
export function refuse(message: string): never {
  throw new EnclaveError('invalid_module', message);
}

/**
 * Reference types, beyond the `funcref` tables of WebAssembly 1.0, are outside the feature set
 * (docs/ABI.md §2): no `externref` table, and no reference-typed parameter, result, local or global.
 * The engine would accept them; refusing them here keeps the feature set one list, checked once.
 */
export function checkTypes(b: Binaryen, mod: BinaryenModule): void {
  const plain = new Set([b.none, b.i32, b.i64, b.f32, b.f64, b.v128]);
  const isPlain = (t: number): boolean => plain.has(t) || b.expandType(t).every((p) => plain.has(p));
  for (let i = 0, n = b._BinaryenGetNumTables(mod.ptr); i < n; i++) {
    if (b._BinaryenTableGetType(b._BinaryenGetTableByIndex(mod.ptr, i)) !== b.funcref) {
      refuse(`Table ${i} is not a funcref table: reference types are outside the enclave feature set (docs/ABI.md).`);
    }
  }
  for (let i = 0, n = mod.getNumFunctions(); i < n; i++) {
    const info = b.getFunctionInfo(mod.getFunctionByIndex(i));
    if (!isPlain(info.params) || !isPlain(info.results) || !info.vars.every(isPlain)) {
      refuse(`Function ${i} has a reference-typed parameter, result or local: reference types are outside the enclave feature set (docs/ABI.md).`);
    }
  }
  for (let i = 0, n = mod.getNumGlobals(); i < n; i++) {
    if (!isPlain(b.getGlobalInfo(mod.getGlobalByIndex(i)).type)) {
      refuse(`Global ${i} is reference-typed: reference types are outside the enclave feature set (docs/ABI.md).`);
    }
  }
}
