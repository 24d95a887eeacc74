/**
 * The part of the WebAssembly JS API the runtime uses. @types/node for Node 20 does not declare
 * it and the DOM lib would bring a browser's globals along, so the few declarations live here
 * (WebAssembly JS API §5, as in TypeScript's lib.dom.d.ts).
 */
declare namespace WebAssembly {
  interface CompileError extends Error {}
  var CompileError: { prototype: CompileError; new (message?: string): CompileError };
  interface LinkError extends Error {}
  var LinkError: { prototype: LinkError; new (message?: string): LinkError };
  interface RuntimeError extends Error {}
  var RuntimeError: { prototype: RuntimeError; new (message?: string): RuntimeError };

  interface Memory {
    readonly buffer: ArrayBuffer;
    grow(delta: number): number;
  }
  var Memory: { prototype: Memory; new (descriptor: MemoryDescriptor): Memory };
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }

  /** A global; `value` is a number for i32, f32, f64 and a bigint for i64 (v128 throws). */
  interface Global {
    value: unknown;
  }
  var Global: { prototype: Global; new (descriptor: { value: string; mutable?: boolean }, value?: unknown): Global };

  interface Module {}
  var Module: {
    prototype: Module;
    new (bytes: ArrayBufferView | ArrayBuffer): Module;
    customSections(moduleObject: Module, sectionName: string): ArrayBuffer[];
    exports(moduleObject: Module): { kind: ImportExportKind; name: string }[];
    imports(moduleObject: Module): { kind: ImportExportKind; module: string; name: string }[];
  };

  interface Instance {
    readonly exports: Record<string, unknown>;
  }
  var Instance: { prototype: Instance; new (module: Module, importObject?: Imports): Instance };

  type ImportExportKind = 'function' | 'global' | 'memory' | 'table';
  type Imports = Record<string, Record<string, unknown>>;

  function compile(bytes: ArrayBufferView | ArrayBuffer): Promise<Module>;
  function validate(bytes: ArrayBufferView | ArrayBuffer): boolean;
  function instantiate(module: Module, importObject?: Imports): Promise<Instance>;
  function instantiate(
    bytes: ArrayBufferView | ArrayBuffer,
    importObject?: Imports,
  ): Promise<{ module: Module; instance: Instance }>;
}
