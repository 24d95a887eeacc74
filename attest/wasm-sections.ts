/** @deprecated Temporary shim: moved to core/wasm-sections.ts; import from core/index.ts. */
export * from '../core/index.js';
