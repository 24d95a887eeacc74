/**
 * The instrumenting pass (the rewrite drawn in runtime/fuel.ts): walks each function once, counting
 * the weighted cost of each charge point and collecting calls, returns, bulk operations and grows,
 * then inserts the charges, keeps the counter in a local between calls, exports what the host
 * drives (the counter, the deferred start function, the mutable globals) and emits the bytes.
 */
import { listSections } from '../core/index.js';
import type { Binaryen, BinaryenModule, Ref } from './_fuel-binaryen.js';
import { checkTypes, refuse, walkerFor } from './_fuel-gate.js';
import {
  BULK_BYTES_SHIFT,
  BULK_OP_FUEL,
  BULK_ZERO_LENGTH_FUEL,
  FUEL_EXPORT,
  GLOBAL_EXPORT_PREFIX,
  GROW_PAGE_SHIFT,
  INSTRUMENTER_VERSION,
  LOAD_FUEL,
  LOCALS_PER_FUEL,
  MAX_COMPILE_WORK,
  MEMORY_GROW_FUEL,
  START_EXPORT,
  type Instrumented,
} from './_fuel-weights.js';

/** A charge point: the function body or loop body it guards and the cost counted for it. */
interface Region {
  readonly loop: Ref; // 0 for a function body
  cost: number;
  /** The function whose scratch local the charge uses. */
  readonly fn: Ref;
}

/** Where an expression sits in its parent, so that it can be replaced (wrapped) in place. */
interface Slot {
  /** The parent expression, or the function when `field` is `body`. */
  readonly parent: Ref;
  /** The parent's setter: `set<Field>` of its class, `setOperandAt`, `setChildAt`, or `body`. */
  readonly field: string;
  readonly index: number;
  /** The parent's expression id (its class), -1 for a function body. */
  readonly id: number;
}

/** A call (or `return`) of a function that keeps its counter in a local, to be rewritten. */
interface Site {
  readonly e: Ref;
  readonly id: number;
  readonly slot: Slot;
  readonly fn: Ref;
}

/**
 * Rewrites a module binaryen has read (the caller disposes of it) for fuel metering.
 * @throws {EnclaveError} `invalid_module`, for what the feature gate or the compile-work bound refuses.
 */
export function rewrite(b: Binaryen, mod: BinaryenModule): Instrumented {
  const walker = walkerFor(b);
  checkTypes(b, mod);
  const fuel = uniqueGlobalName(mod, '__enclave_fuel');
  const { i32 } = b;
  const fail = (f: number): Ref => mod.block(null, [mod.global.set(fuel, mod.local.get(f, i32)), mod.unreachable()], b.unreachable);
  // A charge on the function's counter local `f`, kept in a register: `f -= amount; if (f < 0)`
  // writes it back (so the host sees the budget ran out) and traps.
  const chargeBy = (amount: Ref, f: number): Ref =>
    mod.block(null, [
      mod.local.set(f, mod.i32.sub(mod.local.get(f, i32), amount)),
      mod.if(mod.i32.lt_s(mod.local.get(f, i32), mod.i32.const(0)), fail(f)),
    ], b.none);
  // On entry the counter is read from the global, where the host or the caller left it.
  const entryCharge = (cost: number, f: number): Ref =>
    mod.block(null, [
      mod.local.set(f, mod.i32.sub(mod.global.get(fuel, i32), mod.i32.const(cost))),
      mod.if(mod.i32.lt_s(mod.local.get(f, i32), mod.i32.const(0)), fail(f)),
    ], b.none);
  // Functions that cannot keep the counter in a local (multi-value results) charge the global.
  const globalChargeBy = (amount: Ref, tmp: number): Ref =>
    mod.block(null, [
      mod.global.set(fuel, mod.local.tee(tmp, mod.i32.sub(mod.global.get(fuel, i32), amount), i32)),
      mod.if(mod.i32.lt_s(mod.local.get(tmp, i32), mod.i32.const(0)), mod.unreachable()),
    ], b.none);
  const writeBack = (f: number): Ref => mod.global.set(fuel, mod.local.get(f, i32));
  const reload = (f: number): Ref => mod.local.set(f, mod.global.get(fuel, i32));

  let snapshotSafe = true;
  let chargePoints = 0;
  const regions: Region[] = [];
  const functions: [fn: Ref, region: Region][] = [];
  // Bulk memory operations, charged by length at run time, and the function each one is in.
  const bulk: [expr: Ref, fn: Ref, id: number][] = [];
  // `memory.grow`s, charged per page they will grow, and the function each one is in.
  const grows: [expr: Ref, fn: Ref][] = [];
  // Calls and returns, in walk order (a parent before its children).
  const sites: Site[] = [];
  // Functions whose counter stays in the global: a multi-value result somewhere (no scratch local of a tuple type).
  const globalMode = new Set<Ref>();
  const single = (t: number): boolean => b.expandType(t).length <= 1;
  const stack: [expr: Ref, region: Region, slot: Slot][] = [];
  let compileWork = 0;

  for (let i = 0, n = mod.getNumFunctions(); i < n; i++) {
    const fn = mod.getFunctionByIndex(i);
    const info = b.getFunctionInfo(fn);
    // An import: no body. Capability imports charge for themselves on the host (runtime/capabilities/: each import pays its `fuel` first).
    if (info.module !== null && info.module !== '') continue;
    // Entering a function zeroes its locals: a function with thousands of them pays for it.
    const region: Region = { loop: 0, cost: Math.floor(info.vars.length / LOCALS_PER_FUEL), fn };
    functions.push([fn, region]);
    // Control points of this function, weighted by what the engine's baseline compiler spends on
    // each per local (MAX_COMPILE_WORK): a block, branch or call 1, an if or a loop with its check
    // 4, the checks at the entry and before a bulk operation or a grow 2.
    let control = 2;
    if (!single(info.results)) globalMode.add(fn);
    stack.push([info.body, region, { parent: fn, field: 'body', index: 0, id: -1 }]);
    // An explicit stack, not recursion: a hostile module may nest expressions very deeply.
    while (stack.length > 0) {
      const [e, r, slot] = stack.pop()!;
      if (e === 0) continue;
      r.cost += 1;
      const id = b.getExpressionId(e);
      if (id === walker.block || id === walker.branch || id === walker.switch) control += 1;
      else if (id === walker.if) control += 4;
      if (id === walker.block) {
        for (let c = 0, m = b.Block.getNumChildren(e); c < m; c++) stack.push([b.Block.getChildAt(e, c), r, { parent: e, field: 'setChildAt', index: c, id }]);
      } else if (id === walker.if) {
        stack.push(
          [b.If.getCondition(e), r, { parent: e, field: 'setCondition', index: 0, id }],
          [b.If.getIfTrue(e), r, { parent: e, field: 'setIfTrue', index: 0, id }],
          [b.If.getIfFalse(e), r, { parent: e, field: 'setIfFalse', index: 0, id }],
        );
      } else if (id === walker.loop) {
        control += 4;
        const inner: Region = { loop: e, cost: 0, fn: r.fn };
        regions.push(inner);
        stack.push([b.Loop.getBody(e), inner, { parent: e, field: 'setBody', index: 0, id }]);
      } else {
        const getters = walker.children.get(id);
        if (getters === undefined) {
          refuse(`The module uses an instruction outside the enclave feature set (docs/ABI.md; expression id ${id}).`);
        }
        if (id === walker.memoryInit || id === walker.dataDrop) snapshotSafe = false;
        if (id === walker.call || id === walker.callIndirect) {
          control += 1;
          if (id === walker.call ? b.Call.isReturn(e) : b.CallIndirect.isReturn(e)) {
            refuse('The module uses tail calls (return_call), outside the enclave feature set (docs/ABI.md).');
          }
          if (!single(b.getExpressionType(e))) globalMode.add(fn);
          sites.push({ e, id, slot, fn });
        } else if (id === walker.return) {
          sites.push({ e, id, slot, fn });
        } else if (walker.loads.has(id)) {
          r.cost += LOAD_FUEL - 1;
        } else if (id === walker.memoryFill || id === walker.memoryCopy || id === walker.memoryInit) {
          r.cost += BULK_OP_FUEL;
          control += 2;
          bulk.push([e, r.fn, id]);
        } else if (id === walker.memoryGrow) {
          r.cost += MEMORY_GROW_FUEL;
          control += 2;
          grows.push([e, r.fn]);
        }
        const names = walker.childNames.get(id)!;
        for (let g = 0; g < getters.length; g++) {
          const child = getters[g]!(e);
          if (Array.isArray(child)) {
            for (let c = 0; c < child.length; c++) stack.push([child[c]!, r, { parent: e, field: 'setOperandAt', index: c, id }]);
          } else {
            stack.push([child, r, { parent: e, field: `set${names[g]}`, index: 0, id }]);
          }
        }
      }
    }
    // Locals as the engine counts them: parameters, the function's own, and about three the rewrite adds.
    compileWork += (b.expandType(info.params).length + info.vars.length + 3) * control;
    if (compileWork > MAX_COMPILE_WORK) {
      refuse(
        `The module's functions hold too many locals for their control flow (locals x blocks, loops, ifs, branches and calls above ${MAX_COMPILE_WORK} at function ${i}): compiling it would hold the host thread (docs/LIMITS.md, "Module structure").`,
      );
    }
  }

  // Rewrite after walking, so the walk never sees the charges it inserts. Each function gets new
  // locals after its own (so no index changes): its counter, and scratch locals by type.
  const counter = new Map<Ref, number>();
  for (const [fn] of functions) counter.set(fn, b._BinaryenFunctionAddVar(fn, i32));
  const scratchLocals = new Map<string, number>();
  const scratch = (fn: Ref, type: number): number => {
    const key = `${fn}:${type}`;
    let local = scratchLocals.get(key);
    if (local === undefined) scratchLocals.set(key, (local = b._BinaryenFunctionAddVar(fn, type)));
    return local;
  };
  const replace = (slot: Slot, value: Ref): void => {
    if (slot.field === 'body') b.Function.setBody(slot.parent, value);
    else (walker.classOf.get(slot.id)![slot.field] as (e: Ref, ...rest: number[]) => void)(slot.parent, ...(slot.field === 'setOperandAt' || slot.field === 'setChildAt' ? [slot.index, value] : [value]));
  };
  // `value` then a write-back, as one expression of value's type: (tmp = value; global = f; tmp).
  const thenWriteBack = (fn: Ref, value: Ref): Ref => {
    const type = b.getExpressionType(value);
    if (type === b.none || type === b.unreachable) return mod.block(null, [value, writeBack(counter.get(fn)!)], b.auto);
    const tmp = scratch(fn, type);
    return mod.block(null, [mod.local.set(tmp, value), writeBack(counter.get(fn)!), mod.local.get(tmp, type)], type);
  };

  // The counter lives in a local between calls: written back to the global right before a call
  // (after its operands, which may charge) and before a return, read again after a call (the
  // callee, or a capability import on the host, charged the global). Children before parents, so
  // a call nested in another's operands is rewritten first.
  for (let s = sites.length - 1; s >= 0; s--) {
    const { e, id, slot, fn } = sites[s]!;
    if (globalMode.has(fn)) continue;
    const f = counter.get(fn)!;
    if (id === walker.return) {
      // A return's own type is always `unreachable`; its value's tells whether it completes.
      const value = b.Return.getValue(e);
      if (value === 0) replace(slot, mod.block(null, [writeBack(f), e], b.unreachable));
      else if (b.getExpressionType(value) !== b.unreachable) b.Return.setValue(e, thenWriteBack(fn, value));
      continue;
    }
    const type = b.getExpressionType(e);
    if (type === b.unreachable) continue; // an operand never completes: the call never happens
    const operands = id === walker.call ? b.Call.getNumOperands(e) : -1;
    if (id === walker.callIndirect) b.CallIndirect.setTarget(e, thenWriteBack(fn, b.CallIndirect.getTarget(e)));
    else if (operands > 0) b.Call.setOperandAt(e, operands - 1, thenWriteBack(fn, b.Call.getOperandAt(e, operands - 1)));
    const pre = operands === 0 ? [writeBack(f)] : [];
    if (type === b.none) {
      replace(slot, mod.block(null, [...pre, e, reload(f)], b.none));
    } else {
      const tmp = scratch(fn, type);
      replace(slot, mod.block(null, [...pre, mod.local.set(tmp, e), reload(f), mod.local.get(tmp, type)], type));
    }
  }
  // A bulk operation's size operand is evaluated last, so it becomes
  //   (block (result i32) (local.set $n size) (charge by $n) (local.get $n)):
  // evaluated once, charged right before the operation runs. `$n >>> SHIFT` (SHIFT >= 1) is below
  // 2^31 and the counter is never negative when charged, so the subtraction cannot wrap.
  for (const [e, fn, id] of bulk) {
    const n = scratch(fn, i32);
    const cls = id === walker.memoryFill ? b.MemoryFill : id === walker.memoryCopy ? b.MemoryCopy : b.MemoryInit;
    const byLength = mod.select(
      mod.i32.eqz(mod.local.get(n, i32)),
      mod.i32.const(BULK_ZERO_LENGTH_FUEL),
      mod.i32.shr_u(mod.local.get(n, i32), mod.i32.const(BULK_BYTES_SHIFT)),
    );
    const charge = globalMode.has(fn) ? globalChargeBy(byLength, counter.get(fn)!) : chargeBy(byLength, counter.get(fn)!);
    cls.setSize(e, mod.block(null, [mod.local.set(n, cls.getSize(e)), charge, mod.local.get(n, i32)], i32));
  }
  // A grow's delta becomes (block (result i32) (local.set $n delta) (charge) (local.get $n)), the
  // charge `$n << SHIFT` when the grow will succeed ($n <= max - memory.size), else 0. The maximum
  // is at most 65 536 pages, so the charge is at most 2^29 and cannot wrap.
  if (grows.length > 0) {
    const max = mod.getMemoryInfo().max ?? 65_536;
    for (const [e, fn] of grows) {
      const n = scratch(fn, i32);
      const byPages = mod.select(
        mod.i32.le_u(mod.local.get(n, i32), mod.i32.sub(mod.i32.const(max), mod.memory.size())),
        mod.i32.shl(mod.local.get(n, i32), mod.i32.const(GROW_PAGE_SHIFT)),
        mod.i32.const(0),
      );
      const charge = globalMode.has(fn) ? globalChargeBy(byPages, counter.get(fn)!) : chargeBy(byPages, counter.get(fn)!);
      b.MemoryGrow.setDelta(e, mod.block(null, [mod.local.set(n, b.MemoryGrow.getDelta(e)), charge, mod.local.get(n, i32)], i32));
    }
  }
  for (const region of regions) {
    const f = counter.get(region.fn)!;
    const cost = mod.i32.const(Math.max(region.cost, 1));
    const charge = globalMode.has(region.fn) ? globalChargeBy(cost, f) : chargeBy(cost, f);
    b.Loop.setBody(region.loop, mod.block(null, [charge, b.Loop.getBody(region.loop)], b.auto));
    chargePoints++;
  }
  for (const [fn, region] of functions) {
    const f = counter.get(fn)!;
    const cost = Math.max(region.cost, 1);
    if (globalMode.has(fn)) {
      b.Function.setBody(fn, mod.block(null, [globalChargeBy(mod.i32.const(cost), f), b.Function.getBody(fn)], b.auto));
    } else {
      // Falling off the end (or a branch to the body's label) returns: write back after the body.
      b.Function.setBody(fn, mod.block(null, [entryCharge(cost, f), thenWriteBack(fn, b.Function.getBody(fn))], b.auto));
    }
    chargePoints++;
  }

  let mutableGlobals = 0;
  for (let i = 0, n = mod.getNumGlobals(); i < n; i++) {
    const g = b.getGlobalInfo(mod.getGlobalByIndex(i));
    // Imported globals are refused by validation; export the module's own mutable ones. JavaScript
    // cannot read a v128 global, so a module with one cannot be restored from a snapshot.
    if (!g.mutable || (g.module !== null && g.module !== '')) continue;
    if (g.type === b.v128) snapshotSafe = false;
    else mod.addGlobalExport(g.name, `${GLOBAL_EXPORT_PREFIX}${mutableGlobals++}`);
  }
  checkDataSegments(mod);
  mod.addGlobal(fuel, b.i32, true, mod.i32.const(0));
  mod.addGlobalExport(fuel, FUEL_EXPORT);

  const start = mod.getStart();
  const hasStart = start !== 0;
  if (hasStart) mod.addFunctionExport(b.getFunctionInfo(start).name, START_EXPORT);
  // binaryen's API cannot unset a start function: drop the whole start section (id 8) instead.
  const bytes = withoutSections(mod.emitBinary(), (id) => id === START_SECTION_ID);
  return {
    bytes,
    manifest: { version: INSTRUMENTER_VERSION, hasStart, mutableGlobals, snapshotSafe, chargePoints },
  };
}

/**
 * Active data segments must fit the initial memory. The engine would otherwise fail every
 * instantiation; refusing at load gives one clear, stable code instead of a trap per call.
 * Offsets are constants: imported globals, the only other offset source, are refused by validation.
 */
function checkDataSegments(mod: BinaryenModule): void {
  // A module without a memory has no active data segment (validation refuses one), and binaryen
  // aborts on getMemoryInfo() there: a component's shim modules (jco, wit-component) are such.
  if (!mod.hasMemory()) return;
  const initialBytes = mod.getMemoryInfo().initial * 65_536;
  for (let i = 0, n = mod.getNumDataSegments(); i < n; i++) {
    const seg = mod.getDataSegmentInfo(mod.getDataSegmentByIndex(i));
    if (seg.passive || seg.offset === null) continue;
    const end = (seg.offset >>> 0) + seg.data.byteLength;
    if (end > initialBytes) {
      refuse(`Data segment ${i} ends at byte ${end}, past the initial memory (${initialBytes} bytes).`);
    }
  }
}

/** Custom sections: dropped before binaryen reads the module. */
export const CUSTOM_SECTION_ID = 0;
const START_SECTION_ID = 8;

/** The module bytes without the sections whose id `drop` accepts (the input is not modified). */
export function withoutSections(bytes: Uint8Array, drop: (id: number) => boolean): Uint8Array {
  const sections = listSections(bytes).filter((s) => drop(s.id));
  return cut(bytes, sections);
}

function cut(bytes: Uint8Array, drop: readonly { start: number; end: number }[]): Uint8Array {
  if (drop.length === 0) return bytes;
  const out = new Uint8Array(bytes.length - drop.reduce((n, s) => n + (s.end - s.start), 0));
  let o = 0;
  let from = 0;
  for (const s of drop) {
    out.set(bytes.subarray(from, s.start), o);
    o += s.start - from;
    from = s.end;
  }
  out.set(bytes.subarray(from), o);
  return out;
}

function uniqueGlobalName(mod: BinaryenModule, base: string): string {
  let name = base;
  for (let i = 1; mod.getGlobal(name) !== 0; i++) name = `${base}_${i}`;
  return name;
}
