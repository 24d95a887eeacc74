/** @deprecated Temporary shim: moved to core/module-info.ts; import from core/index.ts. */
export * from '../core/index.js';
