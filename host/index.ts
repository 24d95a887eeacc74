/**
 * enclave: a WebAssembly-sandboxed enclave runtime for Node.js.
 *
 * The public entry. Everything a service embeds is re-exported here; types with `export type`.
 *
 * @example
 * import { loadEnclave, EnclaveError } from 'enclave';
 * const counter = await loadEnclave('enclave-modules/counter/build/counter.wasm');
 * await counter.call('incr', { by: 2 }); // 2
 */
export {
  loadEnclave,
  compileEnclave,
  createWorkerEnclave,
  WorkerEnclave,
  DEFAULT_DEADLINE_MS,
  DEFAULT_WORKER_LIMITS,
  Enclave,
  EnclaveModule,
  EnclaveError,
  ERROR_MESSAGES,
  CAPABILITIES,
  DEFAULT_LIMITS,
  DEFAULT_POLICY,
  parseContract,
  RUNTIME_VERSION,
  MAX_FUEL,
  STATE_POLICIES,
  DIAGNOSTICS_CHANNELS,
  diagnosticsIdOf,
} from '../runtime/index.js';
export {
  AttestationError,
  SoftwareAttestationProvider,
  verifyEvidence,
  parsePolicy,
  generateKeyPair,
  signModule,
  verifyModule,
  checkTrust,
  measure,
} from '../attest/index.js';
export type {
  AttestationProvider,
  EvidencePolicy,
  VerifiedEvidence,
  ModuleIdentity,
  TrustPolicy,
  TrustedSigner,
} from '../attest/index.js';
export type {
  CallOptions,
  CallStats,
  StatePolicy,
  CompileOptions,
  EnclaveOptions,
  EnclaveHandle,
  ArgValue,
  ReplyValue,
  LoadOptions,
  WorkerEnclaveOptions,
  WorkerStartOptions,
  WorkerResourceLimits,
  LogLevel,
  ModuleSource,
  ErrorCode,
  Capability,
  Contract,
  Limits,
  OpContract,
  Shape,
  CallEndMessage,
  CallStartMessage,
  DiagnosticsChannelName,
  DiagnosticsMessages,
  InstanceDiscardMessage,
  IsolationMode,
  WorkerExitMessage,
  WorkerExitReason,
  EnclavePlatform,
  SealingKeySource,
  EvidenceIssuer,
  EvidenceOrder,
  EnclaveKeyJwk,
} from '../runtime/index.js';
