/** The runtime layer: bytes to a running, limited, isolated enclave (its files, job by job: docs/ARCHITECTURE.md, "Inside runtime/"). */
export { SUPPORTED_ABI_VERSIONS, REPORT_STATUS, SEAL_STATUS, SEAL_POLICIES, REPORT_DATA_MIN_BYTES, REPORT_DATA_MAX_BYTES } from './abi.js';
export type { SealPolicy } from './abi.js';
export { DEFAULT_POLICY } from './options.js';
export type { CallOptions, CallStats, CompileOptions, EnclaveOptions, LogLevel } from './options.js';
export { EnclaveModule } from './module.js';
export { Enclave } from './instance.js';
// Of the types that type `call` by a contract (handle.ts), a user names only these (`enclave types` writes them).
export type { ArgValue, EnclaveHandle, ReplyValue } from './handle.js';
export type { EnclavePlatform, SealingKeySource, EvidenceIssuer, EvidenceOrder, ReportContext, EnclaveKeyJwk } from './platform.js';
export type { CounterSource, CounterReading, SealingKeyChoice, SealingKeyResult } from './platform.js';
export { CAPABILITY_MODULES } from './capabilities/index.js';
export type { CapabilityImport, CapabilityModule, Crossing, GrantOptions, ImportContext } from './capabilities/index.js';
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
export type { WorkerEnclaveOptions, WorkerResourceLimits, WorkerStartOptions } from './options.js';
export { EnclaveError, ERROR_MESSAGES, ENCLAVE_CODES, isErrorCode } from '../core/index.js';
export type { ErrorCode } from '../core/index.js';
export { parseContract, CAPABILITIES, DEFAULT_LIMITS } from './contract.js';
export type { Capability, Contract, Limits, OpContract, Shape } from './contract.js';
export { readModuleInfo } from '../core/index.js';
export type { ModuleInfo, ImportInfo, ExportInfo, MemoryInfo, FuncType } from '../core/index.js';
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
export { moduleContract } from './contract.js';
/** @internal */
export { checkMsgpack, createPackr, decodePlainMsgpack, decodeReply, encodeCall, requestFrame, unpackr } from './marshal.js';
/** @internal */
export { clearFuelMemoryCache } from './_fuel-cache.js';
/** @internal Forgets the transpiled glue of components kept in memory (bench/component.ts: a cold or warm load). */
export { clearTranspileMemoryCache } from './_component-transpile.js';
/** @internal */
export { HANDLER_EXPORT, INTERFACE_CAPABILITY, WORLD_PACKAGE, WORLD_VERSION } from './_component-world.js';
/** @internal The raw call path (request bytes in, reply bytes out): `enclave embed-contract`'s handler probe of a component (host/build/check.ts). */
export { CALL_RAW } from './instance.js';
