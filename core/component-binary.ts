/**
 * The gate of components: our own reader of a component's top-level sections (component model
 * Binary.md), run before anything else looks at the bytes (before jco transpiles them, before the
 * engine compiles a core module of them).
 *
 * A component's framing is the core one (id byte, u32 LEB128 size, custom sections named), after
 * the header `00 61 73 6d 0d 00 01 00` (component layer 1). Only what the runtime must decide on is
 * parsed: imports and exports (names and kinds), the canonical definitions (only `lift` and `lower`
 * with utf8, memory, realloc and post-return pass: every other built-in would make the JS glue do
 * work on the host thread outside any fuel: tasks, streams, futures, threads, resources), the core
 * modules (each a whole core module, read by {@link readModuleInfo}, which bounds it) and the custom
 * sections. Type sections are framed only: they define no code, and what they could refer to (a
 * resource, an async function) is unreachable without the refused built-ins; their names are
 * component-level (kebab-case), validated by wasmparser when jco transpiles.
 *
 * **Names** (issue 14): jco's glue generator pastes core names (import, export, instantiation
 * argument and alias names of core modules and instances) into its JavaScript source unescaped, in
 * quotes; a core export named `0'+(code)+'` runs `code` on the host when the glue instantiates. Core
 * names are arbitrary UTF-8 in the binary format, so every name of a core module, of the core
 * instance section, of the alias section, of the instance section and of the imports and exports
 * must match {@link COMPONENT_NAME_PATTERN} (what wit-component writes, and no character that can end or
 * escape a JavaScript string). The core type section (module types with their own import and export
 * names) is refused: wit-component never writes one; and aliasing a core module is refused, so
 * every core module instantiated is one of the component's own, whose names are checked.
 *
 * The one nested component accepted is the kind wit-component writes to export an interface with
 * named types (the handler's `error`): types, aliases, imports and exports only, no code.
 *
 * Every length and count is checked against the bytes that remain before anything is allocated for
 * it, so hostile bytes are refused in time linear in their size, with `invalid_module`.
 */
import { EnclaveError, quoteInput } from './errors.js';
import { MODULE_BOUNDS, readModuleInfo, type ModuleInfo } from './module-info.js';
import { WASM_NAME_DECODER } from './wasm-sections.js';

/** The first 8 bytes of a component: magic, version 0x0d, layer 1 (component model Binary.md). */
export const COMPONENT_HEADER: Uint8Array = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00);

/** Core modules a component may embed: what wit-component writes (main, shim, fixup) with room. */
export const MAX_CORE_MODULES = 8;
/** Nested components: wit-component writes one per exported interface with named types. */
export const MAX_NESTED_COMPONENTS = 4;

/**
 * The names the gate accepts wherever a name can reach jco's generated JavaScript: 1 to 256 of
 * letters, digits and `_ . : @ / # $ -`. That is every name wit-component writes (`memory`,
 * `cabi_realloc`, `cabi_post_enclave:runtime/handler@1.0.0#call`, `enclave:runtime/random@1.0.0`,
 * `seal-key-at`, the shim's `0`, `1`, ... and `$imports`, the fixup's `actual` and `shim`) and no
 * quote, backslash, line break, space, brace, bracket, parenthesis, operator or other character
 * that could end or escape a JavaScript string or identifier. `__proto__` is refused as well (an
 * object-literal key of that name sets a prototype).
 */
export const COMPONENT_NAME_PATTERN = /^[A-Za-z0-9_.:@/#$-]{1,256}$/;

/** What an import or export of a component is (Binary.md `externtype`, `sort`). */
export type ComponentExternKind = 'core-module' | 'func' | 'value' | 'type' | 'component' | 'instance';

/** A top-level import or export: its full name (with its `@version`) and its kind. */
export interface ComponentExtern {
  readonly name: string;
  readonly kind: ComponentExternKind;
}

/** A top-level custom section. */
export interface ComponentCustomSection {
  readonly name: string;
  /** Payload bytes, after the name. */
  readonly size: number;
}

/** What the gate read from a component. */
export interface ComponentInfo {
  readonly imports: readonly ComponentExtern[];
  readonly exports: readonly ComponentExtern[];
  /** The embedded core modules in order (views into the component's bytes). */
  readonly coreModules: readonly Uint8Array[];
  /** {@link readModuleInfo} of each core module, same order. */
  readonly coreModuleInfo: readonly ModuleInfo[];
  /** Top-level custom sections in order (nested ones, inside core modules, are not listed). */
  readonly customSections: readonly ComponentCustomSection[];
}

/**
 * Whether `bytes` start with the component header (Binary.md `preamble`).
 * @example
 * if (isComponent(bytes)) info = readComponentInfo(bytes);
 */
export function isComponent(bytes: Uint8Array): boolean {
  return bytes instanceof Uint8Array && bytes.length >= 8 && COMPONENT_HEADER.every((b, i) => bytes[i] === b);
}

function malformed(what: string): never {
  throw new EnclaveError('invalid_module', `The component is malformed: ${what}.`);
}

function refused(what: string): never {
  throw new EnclaveError('invalid_module', `The component ${what}: the runtime refuses it.`);
}

/** Refuses `name` unless it matches {@link COMPONENT_NAME_PATTERN}; `where` names the section and the item. */
function checkName(name: string, where: string): void {
  if (COMPONENT_NAME_PATTERN.test(name) && name !== '__proto__') return;
  refused(
    `has the name ${quoteInput(name)} in ${where}; names may hold only 1 to 256 letters, digits and _ . : @ / # $ - (jco pastes them into the JavaScript it generates)`,
  );
}

/** Why only lift and lower run, for the refusal of any other canonical definition or option. */
const CANON_WHY = 'only canon lift and lower with utf8 strings, memory, realloc and post-return run (the others make the JS glue do work outside fuel)';

/** Section ids (Binary.md `section`) and what they hold, for messages. */
const SECTION_NAMES: Record<number, string> = {
  0: 'custom',
  1: 'core module',
  2: 'core instance',
  3: 'core type',
  4: 'nested component',
  5: 'instance',
  6: 'alias',
  7: 'type',
  8: 'canon',
  9: 'start',
  10: 'import',
  11: 'export',
  12: 'value',
};
const TOP_LEVEL_SECTIONS = new Set([0, 1, 2, 4, 5, 6, 7, 8, 10, 11]);
/** A nested component defines no code: types, aliases, imports and exports only. */
const NESTED_SECTIONS = new Set([0, 6, 7, 10, 11]);
/** Why the core type section is refused. */
const CORE_TYPE_WHY = 'module types carry core import and export names of their own, and wit-component never writes one';

/** Canonical built-ins other than lift and lower (Binary.md `canon`), named in the refusal. */
const CANON_NAMES: Record<number, string> = {
  0x02: 'resource.new',
  0x03: 'resource.drop',
  0x04: 'resource.rep',
  0x05: 'task.cancel',
  0x06: 'subtask.cancel',
  0x07: 'resource.drop async',
  0x08: 'task.backpressure',
  0x09: 'task.return',
  0x0a: 'context.get',
  0x0b: 'context.set',
  0x0c: 'thread.yield',
  0x0d: 'subtask.drop',
  0x0e: 'stream.new',
  0x0f: 'stream.read',
  0x10: 'stream.write',
  0x11: 'stream.cancel-read',
  0x12: 'stream.cancel-write',
  0x13: 'stream.drop-readable',
  0x14: 'stream.drop-writable',
  0x15: 'future.new',
  0x16: 'future.read',
  0x17: 'future.write',
  0x18: 'future.cancel-read',
  0x19: 'future.cancel-write',
  0x1a: 'future.drop-readable',
  0x1b: 'future.drop-writable',
  0x1c: 'error-context.new',
  0x1d: 'error-context.debug-message',
  0x1e: 'error-context.drop',
  0x1f: 'waitable-set.new',
  0x20: 'waitable-set.wait',
  0x21: 'waitable-set.poll',
  0x22: 'waitable-set.drop',
  0x23: 'waitable.join',
  0x24: 'backpressure.inc',
  0x25: 'backpressure.dec',
  0x26: 'thread.index',
  0x27: 'thread.new-indirect',
  0x28: 'thread.resume-later',
  0x29: 'thread.suspend',
  0x2a: 'thread.suspend-then-resume',
  0x2b: 'thread.yield-then-resume',
  0x2c: 'thread.suspend-then-promote',
  0x2d: 'thread.yield-then-promote',
  0x40: 'thread.spawn-ref',
  0x41: 'thread.spawn-indirect',
  0x42: 'thread.available-parallelism',
};
/** Canonical options other than utf8, memory, realloc and post-return (Binary.md `canonopt`). */
const CANON_OPTION_NAMES: Record<number, string> = {
  0x01: 'string-encoding=utf16',
  0x02: 'string-encoding=latin1+utf16',
  0x06: 'async',
  0x07: 'callback',
  0x08: 'core type',
  0x09: 'gc',
};

const EXTERN_KINDS: Record<number, ComponentExternKind> = {
  0x01: 'func',
  0x02: 'value',
  0x03: 'type',
  0x04: 'component',
  0x05: 'instance',
};
const CORE_SORT_MODULE = 0x11;
const CORE_SORT_INSTANCE = 0x12;
/** Core sorts (Binary.md `core:sort`): func, table, memory, global, tag, type, module, instance. */
const CORE_SORTS = new Set([0x00, 0x01, 0x02, 0x03, 0x04, 0x10, 0x11, 0x12]);
/** Core sorts a core instance can export (core `externtype`): func, table, memory, global, tag. */
const CORE_EXPORT_SORTS = new Set([0x00, 0x01, 0x02, 0x03, 0x04]);

/** Largest number of imports or exports of one component (or nested component). */
const MAX_EXTERNS = MODULE_BOUNDS.imports;

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/** A cursor over `[pos, end)` that refuses to read past `end`. */
class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }
  get left(): number {
    return this.end - this.pos;
  }
  byte(): number {
    if (this.pos >= this.end) malformed('a section ends early');
    return this.bytes[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    for (let i = 0; i < 5; i++) {
      const b = this.byte();
      if (i === 4 && b > 0x0f) malformed('an integer overflows u32');
      result += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return result;
    }
    malformed('an integer is longer than 5 bytes');
  }
  /** A length of bytes that must fit in what is left. */
  length(what: string): number {
    const n = this.u32();
    if (n > this.left) malformed(`${what} runs past its section`);
    return n;
  }
  /** A vector count: each element takes at least one byte, and at most `max` are accepted. */
  count(what: string, max: number): number {
    const n = this.u32();
    if (n > this.left) malformed(`a vector of ${what} claims more elements than its section holds`);
    if (n > max) refused(`has ${n} ${what}; at most ${max} are accepted`);
    return n;
  }
  name(what: string): string {
    const len = this.length(what);
    const s = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    try {
      return WASM_NAME_DECODER.decode(s);
    } catch {
      malformed(`${what} is not UTF-8`);
    }
  }
  /** Binary.md `nameattributes`: the plain forms only (0x00, 0x01); attributes are refused. */
  externName(what: string): string {
    const form = this.byte();
    if (form === 0x02) {
      const name = this.name(`an ${what} name`);
      refused(`gives the ${what} ${quoteInput(name)} name attributes (implements, versionsuffix or external-id)`);
    }
    if (form !== 0x00 && form !== 0x01) malformed(`an ${what} name has the unknown form ${hex(form)}`);
    return this.name(`an ${what} name`);
  }
  /** Binary.md `externtype`, read to its end; returns its kind. */
  externType(what: string, name: string): ComponentExternKind {
    const tag = this.byte();
    if (tag === 0x00) {
      if (this.byte() !== CORE_SORT_MODULE) malformed(`the ${what} ${quoteInput(name)} has a core type other than a module`);
      this.u32();
      return 'core-module';
    }
    const kind = EXTERN_KINDS[tag] ?? malformed(`the ${what} ${quoteInput(name)} has the unknown kind ${hex(tag)}`);
    if (kind === 'value') refused(`has the value ${what} ${quoteInput(name)}`);
    if (kind === 'type') {
      const bound = this.byte();
      if (bound === 0x00) this.u32();
      else if (bound !== 0x01) malformed(`the type ${what} ${quoteInput(name)} has the unknown bound ${hex(bound)}`);
    } else {
      this.u32();
    }
    return kind;
  }
}

/** The import section: `vec(import)`, import = nameattributes externtype. */
function readImports(r: Reader, into: ComponentExtern[]): void {
  for (let i = 0, n = r.count('imports', MAX_EXTERNS); i < n; i++) {
    const name = r.externName('import');
    const kind = r.externType('import', name);
    checkName(name, 'its import section (an import)');
    into.push({ name, kind });
  }
  if (into.length > MAX_EXTERNS) refused(`has more than ${MAX_EXTERNS} imports`);
}

/** The export section: `vec(export)`, export = nameattributes sortidx externtype?. */
function readExports(r: Reader, into: ComponentExtern[]): void {
  for (let i = 0, n = r.count('exports', MAX_EXTERNS); i < n; i++) {
    const name = r.externName('export');
    const sort = r.byte();
    let kind: ComponentExternKind;
    if (sort === 0x00) {
      if (r.byte() !== CORE_SORT_MODULE) malformed(`the export ${quoteInput(name)} exports a core item other than a module`);
      kind = 'core-module';
    } else {
      kind = EXTERN_KINDS[sort] ?? malformed(`the export ${quoteInput(name)} has the unknown sort ${hex(sort)}`);
      if (kind === 'value') refused(`has the value export ${quoteInput(name)}`);
    }
    r.u32();
    const hasType = r.byte();
    if (hasType === 0x01) {
      if (r.externType('export', name) !== kind) malformed(`the export ${quoteInput(name)} declares a type of another kind`);
    } else if (hasType !== 0x00) malformed(`the export ${quoteInput(name)} has a malformed optional type`);
    checkName(name, 'its export section (an export)');
    into.push({ name, kind });
  }
  if (into.length > MAX_EXTERNS) refused(`has more than ${MAX_EXTERNS} exports`);
}

/** Canonical options: utf8, memory, realloc and post-return only. */
function readCanonOptions(r: Reader, canon: string): void {
  for (let i = 0, n = r.count('canonical options', 16); i < n; i++) {
    const opt = r.byte();
    if (opt === 0x00) continue;
    if (opt === 0x03 || opt === 0x04 || opt === 0x05) {
      r.u32();
      continue;
    }
    const known = CANON_OPTION_NAMES[opt];
    refused(`uses the canonical option ${known ?? `unknown (${hex(opt)})`} on a ${canon}; ${CANON_WHY}`);
  }
}

/** The canon section: `lift` and `lower` only. */
function readCanons(r: Reader): void {
  for (let i = 0, n = r.count('canonical definitions', MODULE_BOUNDS.functions); i < n; i++) {
    const kind = r.byte();
    if (kind === 0x00 || kind === 0x01) {
      const what = kind === 0x00 ? 'canon lift' : 'canon lower';
      if (r.byte() !== 0x00) malformed(`a ${what} does not name a function`);
      r.u32();
      readCanonOptions(r, what);
      if (kind === 0x00) r.u32();
      continue;
    }
    const known = CANON_NAMES[kind];
    refused(`uses the canonical built-in ${known ?? `unknown (${hex(kind)})`}; ${CANON_WHY}`);
  }
}

/** Binary.md `sortidx` (component level): `0x00 core:sort` or a component sort 0x01-0x05; then an index. */
function readSortIdx(r: Reader, what: string): void {
  const sort = r.byte();
  if (sort === 0x00) {
    const core = r.byte();
    if (!CORE_SORTS.has(core)) malformed(`${what} has the unknown core sort ${hex(core)}`);
  } else if (EXTERN_KINDS[sort] === undefined) malformed(`${what} has the unknown sort ${hex(sort)}`);
  r.u32();
}

/**
 * The core instance section: `vec(core:instance)`, each `0x00 moduleidx vec(core:name 0x12
 * instanceidx)` (instantiate, with named instances) or `0x01 vec(core:name core:sortidx)` (a bag of
 * exports). Every name is checked: jco writes them as object keys of the instantiation's imports.
 */
function readCoreInstances(r: Reader): void {
  for (let i = 0, n = r.count('core instances', MODULE_BOUNDS.functions); i < n; i++) {
    const form = r.byte();
    if (form === 0x00) {
      r.u32();
      for (let j = 0, m = r.count('core instantiation arguments', MODULE_BOUNDS.imports); j < m; j++) {
        const name = r.name('a core instantiation argument name');
        if (r.byte() !== CORE_SORT_INSTANCE) malformed(`the core instantiation argument ${quoteInput(name)} is not a core instance`);
        r.u32();
        checkName(name, 'its core instance section (an instantiation argument)');
      }
    } else if (form === 0x01) {
      for (let j = 0, m = r.count('core instance exports', MODULE_BOUNDS.exports); j < m; j++) {
        const name = r.name('a core instance export name');
        const sort = r.byte();
        if (!CORE_EXPORT_SORTS.has(sort)) malformed(`the core instance export ${quoteInput(name)} has the core sort ${hex(sort)}`);
        r.u32();
        checkName(name, 'its core instance section (an export of a core instance)');
      }
    } else malformed(`a core instance has the unknown form ${hex(form)}`);
  }
}

/**
 * The alias section: `vec(alias)`, each `sort aliastarget`, the target `0x00 instanceidx name` (an
 * export of a component instance), `0x01 core:instanceidx core:name` (an export of a core instance:
 * jco writes the name as a property key) or `0x02 count idx` (outer). Aliasing a core module is
 * refused: every core module instantiated is then one of the component's own, whose names are checked.
 */
function readAliases(r: Reader): void {
  for (let i = 0, n = r.count('aliases', MODULE_BOUNDS.functions); i < n; i++) {
    const sort = r.byte();
    let core = -1;
    if (sort === 0x00) {
      core = r.byte();
      if (!CORE_SORTS.has(core)) malformed(`an alias has the unknown core sort ${hex(core)}`);
    } else if (EXTERN_KINDS[sort] === undefined) malformed(`an alias has the unknown sort ${hex(sort)}`);
    const target = r.byte();
    if (target === 0x00 || target === 0x01) {
      r.u32();
      const name = r.name('an alias name');
      checkName(name, `its alias section (an alias of ${target === 0x00 ? 'the export of an instance' : 'the export of a core instance'})`);
    } else if (target === 0x02) {
      r.u32();
      r.u32();
    } else malformed(`an alias has the unknown target ${hex(target)}`);
    if (core === CORE_SORT_MODULE) refused('aliases a core module; only the core modules of its own core module sections are instantiated');
    if (sort === 0x02) refused('aliases a value');
  }
}

/**
 * The instance section: `vec(instance)`, each `0x00 componentidx vec(string sortidx)` (instantiate
 * a nested component with named arguments) or `0x01 vec(exportname sortidx)` (a bag of exports).
 * Component-level names, kebab-case when valid; checked all the same.
 */
function readInstances(r: Reader): void {
  for (let i = 0, n = r.count('instances', MODULE_BOUNDS.functions); i < n; i++) {
    const form = r.byte();
    if (form === 0x00) {
      r.u32();
      for (let j = 0, m = r.count('instantiation arguments', MODULE_BOUNDS.imports); j < m; j++) {
        const name = r.name('an instantiation argument name');
        readSortIdx(r, `the instantiation argument ${quoteInput(name)}`);
        checkName(name, 'its instance section (an instantiation argument)');
      }
    } else if (form === 0x01) {
      for (let j = 0, m = r.count('instance exports', MODULE_BOUNDS.exports); j < m; j++) {
        const name = r.externName('instance export');
        readSortIdx(r, `the instance export ${quoteInput(name)}`);
        checkName(name, 'its instance section (an export of an instance)');
      }
    } else malformed(`an instance has the unknown form ${hex(form)}`);
  }
}

interface Collected {
  imports: ComponentExtern[];
  exports: ComponentExtern[];
  coreModules: Uint8Array[];
  customSections: ComponentCustomSection[];
  nested: number;
  sections: number;
}

/** Reads the sections of a component (or of a nested one) in `[start, end)`, after its header. */
function readSections(bytes: Uint8Array, start: number, end: number, nested: boolean, out: Collected): void {
  const r = new Reader(bytes, start, end);
  while (r.pos < end) {
    if (++out.sections > MODULE_BOUNDS.sections) refused(`has more than ${MODULE_BOUNDS.sections} sections`);
    const at = r.pos;
    const id = r.byte();
    const size = r.length(`the section at offset ${at}`);
    const payloadEnd = r.pos + size;
    const allowed = nested ? NESTED_SECTIONS : TOP_LEVEL_SECTIONS;
    if (!allowed.has(id)) {
      const what = SECTION_NAMES[id];
      const where = nested ? ' inside a nested component' : '';
      if (what === undefined) malformed(`the section at offset ${at} has the unknown id ${id}${where}`);
      refused(
        `has a ${what} section${where}; ${nested ? 'a nested component may hold only custom, alias, type, import and export sections (no code)' : id === 3 ? CORE_TYPE_WHY : 'only custom, core module, core instance, nested component, instance, alias, type, canon, import and export sections are accepted'}`,
      );
    }
    const s = new Reader(bytes, r.pos, payloadEnd);
    switch (id) {
      case 0: {
        const name = s.name('a custom section name');
        if (!nested) out.customSections.push({ name, size: payloadEnd - s.pos });
        break;
      }
      case 1: {
        if (out.coreModules.length >= MAX_CORE_MODULES) refused(`has more than ${MAX_CORE_MODULES} core modules`);
        out.coreModules.push(bytes.subarray(s.pos, payloadEnd));
        break;
      }
      case 4: {
        if (++out.nested > MAX_NESTED_COMPONENTS) refused(`has more than ${MAX_NESTED_COMPONENTS} nested components`);
        if (size < 8 || !COMPONENT_HEADER.every((b, i) => bytes[s.pos + i] === b)) malformed(`the nested component at offset ${at} has no component header`);
        readSections(bytes, s.pos + 8, payloadEnd, true, out);
        break;
      }
      case 2:
        readCoreInstances(s);
        if (s.pos !== payloadEnd) malformed(`the core instance section at offset ${at} has bytes after its instances`);
        break;
      case 5:
        readInstances(s);
        if (s.pos !== payloadEnd) malformed(`the instance section at offset ${at} has bytes after its instances`);
        break;
      case 6:
        readAliases(s);
        if (s.pos !== payloadEnd) malformed(`the alias section at offset ${at} has bytes after its aliases`);
        break;
      case 8:
        readCanons(s);
        if (s.pos !== payloadEnd) malformed(`the canon section at offset ${at} has bytes after its definitions`);
        break;
      case 10:
        // A nested component's imports are what its parent instantiates it with, not the world's.
        readImports(s, nested ? [] : out.imports);
        if (s.pos !== payloadEnd) malformed(`the import section at offset ${at} has bytes after its imports`);
        break;
      case 11:
        readExports(s, nested ? [] : out.exports);
        if (s.pos !== payloadEnd) malformed(`the export section at offset ${at} has bytes after its exports`);
        break;
      default:
        break; // framed only (types): they define no code, and wasmparser checks their names are kebab-case
    }
    r.pos = payloadEnd;
  }
}

/**
 * Reads a component's top-level structure and refuses what the runtime does not run: sections other
 * than custom, core module, core instance, instance, alias, type, canon, import and export (a start,
 * a value, a core type; a nested component with code), canonical built-ins other than `lift` and
 * `lower`, options other than utf8/memory/realloc/post-return, more than {@link MAX_CORE_MODULES}
 * core modules, more than one memory defined across them, an imported memory, an aliased core module,
 * a name outside {@link COMPONENT_NAME_PATTERN} (core modules' imports and exports, core instances, aliases,
 * instances, imports, exports), or more than {@link MODULE_BOUNDS}`.moduleBytes` in all. Each core
 * module goes through {@link readModuleInfo}.
 * The world (which imports and exports) is checked by the runtime (runtime/_component-world.ts).
 * @throws {EnclaveError} `invalid_module` naming what is wrong (`memory_limit` from a core module's table).
 * @example
 * const { imports, exports, coreModules } = readComponentInfo(bytes);
 */
export function readComponentInfo(bytes: Uint8Array): ComponentInfo {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('component: expected a Uint8Array');
  if (bytes.length > MODULE_BOUNDS.moduleBytes) {
    throw new EnclaveError(
      'invalid_module',
      `The component is ${bytes.length} bytes; the runtime accepts at most ${MODULE_BOUNDS.moduleBytes} (docs/LIMITS.md, "Module structure").`,
    );
  }
  if (!isComponent(bytes)) malformed('it does not start with the component header (00 61 73 6d 0d 00 01 00)');
  const out: Collected = { imports: [], exports: [], coreModules: [], customSections: [], nested: 0, sections: 0 };
  readSections(bytes, 8, bytes.length, false, out);

  const coreModuleInfo: ModuleInfo[] = [];
  let memories = 0;
  out.coreModules.forEach((module, i) => {
    let info: ModuleInfo;
    try {
      info = readModuleInfo(module);
    } catch (err) {
      if (err instanceof EnclaveError) throw new EnclaveError(err.code, `Core module ${i} of the component: ${err.message}`, { cause: err });
      throw err;
    }
    const imported = info.imports.find((imp) => imp.kind === 'memory');
    if (imported) refused(`has core module ${i} importing a memory (${quoteInput(imported.module)} ${quoteInput(imported.name)}); only one memory, defined by a core module, is accepted`);
    for (const imp of info.imports) {
      checkName(imp.module, `core module ${i} (an import module name)`);
      checkName(imp.name, `core module ${i} (an import name)`);
    }
    for (const exp of info.exports) checkName(exp.name, `core module ${i} (an export name)`);
    memories += info.memories.length;
    if (memories > 1) refused('defines more than one memory across its core modules; only one is accepted');
    coreModuleInfo.push(info);
  });
  return Object.freeze({
    imports: Object.freeze(out.imports),
    exports: Object.freeze(out.exports),
    coreModules: Object.freeze(out.coreModules),
    coreModuleInfo: Object.freeze(coreModuleInfo),
    customSections: Object.freeze(out.customSections),
  });
}
