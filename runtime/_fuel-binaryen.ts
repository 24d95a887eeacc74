/**
 * binaryen.js as the instrumenter uses it: the typings it lacks, and its loading, deferred until a
 * module must be instrumented.
 */

// The binaryen.js expression classes exist at runtime but are not in its typings.
/** A binaryen expression, function, global or table: a pointer into its heap. */
export type Ref = number;
/** The binaryen.js module (its expression classes and ids included). */
export interface Binaryen {
  readBinaryWithFeatures(data: Uint8Array, features: number): BinaryenModule;
  getExpressionId(e: Ref): number;
  getExpressionType(e: Ref): number;
  unreachable: number;
  getFunctionInfo(f: Ref): { name: string; module: string | null; base: string | null; body: Ref; params: number; results: number; vars: number[] };
  getGlobalInfo(g: Ref): { name: string; module: string | null; mutable: boolean; type: number };
  Features: Record<string, number>;
  i32: number;
  i64: number;
  f32: number;
  f64: number;
  v128: number;
  funcref: number;
  expandType(t: number): number[];
  _BinaryenGetNumTables(mod: number): number;
  _BinaryenGetTableByIndex(mod: number, i: number): Ref;
  _BinaryenTableGetType(table: Ref): number;
  _BinaryenFunctionAddVar(f: Ref, type: number): number;
  none: number;
  auto: number;
  [id: string]: unknown;
  Block: { getNumChildren(e: Ref): number; getChildAt(e: Ref, i: number): Ref };
  If: { getCondition(e: Ref): Ref; getIfTrue(e: Ref): Ref; getIfFalse(e: Ref): Ref };
  Loop: { getBody(e: Ref): Ref; setBody(e: Ref, body: Ref): void };
  Call: {
    getTarget(e: Ref): string;
    isReturn(e: Ref): boolean;
    getNumOperands(e: Ref): number;
    getOperandAt(e: Ref, i: number): Ref;
    setOperandAt(e: Ref, i: number, v: Ref): void;
  };
  CallIndirect: { isReturn(e: Ref): boolean; getTarget(e: Ref): Ref; setTarget(e: Ref, v: Ref): void };
  Return: { getValue(e: Ref): Ref; setValue(e: Ref, v: Ref): void };
  MemoryFill: { getSize(e: Ref): Ref; setSize(e: Ref, size: Ref): void };
  MemoryCopy: { getSize(e: Ref): Ref; setSize(e: Ref, size: Ref): void };
  MemoryInit: { getSize(e: Ref): Ref; setSize(e: Ref, size: Ref): void };
  MemoryGrow: { getDelta(e: Ref): Ref; setDelta(e: Ref, delta: Ref): void };
  Function: { getBody(f: Ref): Ref; setBody(f: Ref, body: Ref): void };
}
/** A module read by binaryen.js. */
export interface BinaryenModule {
  readonly ptr: number;
  getNumFunctions(): number;
  getFunctionByIndex(i: number): Ref;
  getNumGlobals(): number;
  getGlobalByIndex(i: number): Ref;
  getGlobal(name: string): Ref;
  getNumExports(): number;
  hasMemory(): boolean;
  getMemoryInfo(): { initial: number; max?: number };
  getNumDataSegments(): number;
  getDataSegmentByIndex(i: number): Ref;
  getDataSegmentInfo(seg: Ref): { offset: number | null; data: ArrayBuffer; passive: boolean };
  getStart(): Ref;
  setStart(f: Ref): void;
  setFeatures(features: number): void;
  addGlobal(name: string, type: number, mutable: boolean, init: Ref): Ref;
  addGlobalExport(internal: string, external: string): Ref;
  addFunctionExport(internal: string, external: string): Ref;
  block(label: string | null, children: Ref[], type?: number): Ref;
  if(cond: Ref, ifTrue: Ref, ifFalse?: Ref): Ref;
  unreachable(): Ref;
  global: { get(name: string, type: number): Ref; set(name: string, value: Ref): Ref };
  i32: {
    const(v: number): Ref;
    sub(a: Ref, b: Ref): Ref;
    lt_s(a: Ref, b: Ref): Ref;
    le_u(a: Ref, b: Ref): Ref;
    shr_u(a: Ref, b: Ref): Ref;
    shl(a: Ref, b: Ref): Ref;
    eqz(a: Ref): Ref;
  };
  memory: { size(): Ref };
  select(cond: Ref, ifTrue: Ref, ifFalse: Ref): Ref;
  local: {
    get(index: number, type: number): Ref;
    set(index: number, value: Ref): Ref;
    tee(index: number, value: Ref, type: number): Ref;
  };
  emitBinary(): Uint8Array;
  dispose(): void;
}

let binaryenPromise: Promise<Binaryen> | undefined;
/** binaryen is large (seconds to load cold): imported only when a module must be instrumented. */
export function loadBinaryen(): Promise<Binaryen> {
  binaryenPromise ??= import('binaryen').then((m) => m.default as unknown as Binaryen);
  return binaryenPromise;
}
