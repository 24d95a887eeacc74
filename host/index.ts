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
export {
  EnclaveHost,
  HOST_DEFAULTS,
  HOST_STATES,
  HOST_EVENTS,
  parseAccessPolicy,
  readAccessPolicy,
  ACCESS_POLICY_LIMITS,
} from './supervisor/index.js';
export type {
  HostOptions,
  EnclaveSpec,
  HostCallOptions,
  UpgradeOptions,
  UpgradeResult,
  HostStats,
  EnclaveStats,
  OpStats,
  HostState,
  HostEventName,
  HostEvents,
  HostListener,
  StateEvent,
  SwapEvent,
  SwapOutcome,
  IntegrityEvent,
  BreakerEvent,
  RestartEvent,
  AccessPolicy,
  CallerPolicy,
  RateLimit,
  CallQuota,
} from './supervisor/index.js';
export { Vault, VaultKey, VAULT_LIMITS, VAULT_STORE_PREFIX, VAULT_ID_RECORD, VAULT_FUEL } from './vault/index.js';
export type {
  VaultOpenOptions,
  VaultCreateOptions,
  VaultStore,
  RefusedRecord,
  ResealReport,
  DataKey,
  DerivedKey,
  VaultKeyType,
  VaultSealPolicy,
  VaultKeyMetadata,
  VaultBatchItem,
} from './vault/index.js';
export { FileStore, FILE_STORE_DEFAULTS, STORE_LIMITS } from './store/index.js';
export type { SealedStore, StoredBlob, PutOptions, ListOptions, FileStoreOptions } from './store/index.js';
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
  SealingKeyChoice,
  SealingKeyResult,
  CounterSource,
  CounterReading,
  EvidenceIssuer,
  EvidenceOrder,
  EnclaveKeyJwk,
} from '../runtime/index.js';
