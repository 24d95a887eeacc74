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

// Errors: the root, its subclasses, and the one table of codes
export { EnclaveError, AttestationError, WasmFormatError, UsageError, isAttestationError } from './errors.js';
/** @internal */
export { quoteInput } from './errors.js';
export type { EnclaveErrorOptions, ErrorJSON } from './errors.js';
export {
  ERROR_TABLE,
  ERROR_CODES,
  errorFlags,
  isErrorCode,
  ENCLAVE_CODES,
  ERROR_MESSAGES,
  ATTESTATION_ERROR_CODES,
  ATTESTATION_ERROR_MESSAGES,
} from './error-codes.js';
/** @internal */
export { DISCARDING_CODES } from './error-codes.js';
export type { ErrorCode, AttestationErrorCode, CodeOf, ErrorClassName, ErrorFlags, ErrorSpec } from './error-codes.js';

// Wasm framing
export {
  CONTRACT_SECTION,
  MAX_CONTRACT_BYTES,
  SIGNATURE_SECTION,
  SIGNATURE_DELIMITER_SECTION,
  WASM_NAME_DECODER,
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

// Components: the gate's reader of their top-level sections
export { isComponent, readComponentInfo, COMPONENT_HEADER, COMPONENT_NAME_PATTERN, MAX_CORE_MODULES, MAX_NESTED_COMPONENTS } from './component-binary.js';
export type { ComponentInfo, ComponentExtern, ComponentExternKind, ComponentCustomSection } from './component-binary.js';
export { importTypes, liftedTypes } from './component-types.js';
export type { ImportTypes, ImportedFunction, LiftedType } from './component-types.js';

// Bounded reads of named files
export { readBoundedFile } from './read-bounded.js';
export type { BoundedRead } from './read-bounded.js';
