/**
 * `core/`: the base layer below both `runtime/` and `attest/`. It holds what both need and neither
 * owns: the error root with its one table of codes, and the general WebAssembly binary reader
 * (section framing, LEB128, custom sections, and the module structure validation reads).
 * Imports nothing of ours: only node builtins.
 *
 * Every export is documented where it is defined, with `@throws` and `@example`.
 * @example
 * import { EnclaveError, listSections, readModuleInfo } from '../core/index.js';
 * const { exports } = readModuleInfo(bytes); // EnclaveError `invalid_module` for malformed bytes
 */

// Errors
export {
  EnclaveError,
  ERROR_MESSAGES,
  ENCLAVE_CODES,
  DISCARDING_CODES,
  isErrorCode,
  quoteInput,
} from './errors.js';
export type { ErrorCode } from './errors.js';

// Wasm framing
export {
  CONTRACT_SECTION,
  SIGNATURE_SECTION,
  SIGNATURE_DELIMITER_SECTION,
  WASM_NAME_DECODER,
  WasmFormatError,
  listSections,
  encodeCustomSection,
  customSections,
  readU32Leb,
  encodeU32Leb,
} from './wasm-sections.js';
export type { WasmSection } from './wasm-sections.js';

// Module structure
export { readModuleInfo, formatFuncType, MODULE_BOUNDS } from './module-info.js';
export type {
  ModuleInfo,
  ImportInfo,
  ExportInfo,
  MemoryInfo,
  TableInfo,
  FuncType,
  ValType,
  ExternKind,
} from './module-info.js';
