/** The runtime layer: bytes to a running, limited, isolated enclave. */
export { Enclave, EnclaveModule, DEFAULT_POLICY, SUPPORTED_ABI_VERSIONS } from './enclave.js';
export type { CallOptions, CallStats, CompileOptions, EnclaveOptions, LogLevel } from './enclave.js';
export { MAX_FUEL } from './fuel.js';
export { STATE_POLICIES, DEFAULT_MAX_SESSIONS } from './state.js';
export type { StatePolicy } from './state.js';
export { RUNTIME_VERSION } from './version.js';
export { loadEnclave, compileEnclave, readModuleBytes } from './load.js';
export type { ModuleSource, LoadOptions, InProcessOptions } from './load.js';
export {
  WorkerEnclave,
  createWorkerEnclave,
  DEFAULT_DEADLINE_MS,
  DEFAULT_START_DEADLINE_MS,
  DEFAULT_MAX_QUEUE,
  DEFAULT_QUEUE_TIMEOUT_MS,
  DEFAULT_WORKER_LIMITS,
} from './worker.js';
export type { EnclaveHandle, WorkerEnclaveOptions, WorkerResourceLimits, WorkerStartOptions } from './worker.js';
export { EnclaveError, ERROR_MESSAGES, ENCLAVE_CODES, isErrorCode } from './errors.js';
export type { ErrorCode } from './errors.js';
export { parseContract, CAPABILITIES, DEFAULT_LIMITS } from './contract.js';
export type { Capability, Contract, Limits, OpContract, Shape } from './contract.js';
export { readModuleInfo } from './module-info.js';
export type { ModuleInfo, ImportInfo, ExportInfo, MemoryInfo, FuncType } from './module-info.js';
export { DIAGNOSTICS_CHANNELS, diagnosticsIdOf } from './diagnostics.js';
export type {
  CallEndMessage,
  CallStartMessage,
  DiagnosticsChannelName,
  DiagnosticsMessages,
  EnclaveEventBase,
  InstanceDiscardMessage,
  IsolationMode,
  WorkerExitMessage,
  WorkerExitReason,
} from './diagnostics.js';
// For the CLI (host/cli) and the benchmarks (bench/, which measure the boundary's parts one by one):
// not re-exported by the package root (host/index.ts). `@internal` on each statement: stripInternal
// drops a whole re-export statement, never one name of it.
/** @internal */
export { MAX_LIMITS } from './contract.js';
/** @internal */
export { checkMsgpack, createPackr, decodePlainMsgpack, decodeReply, encodeCall, requestFrame, unpackr } from './marshal.js';
/** @internal */
export { clearFuelMemoryCache } from './_fuel-cache.js';
