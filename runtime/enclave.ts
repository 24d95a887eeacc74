/**
 * Bytes to a running enclave, by job (each its own file):
 *
 * ```
 *  abi.ts            the ABI's constants: exports, versions, the imports' return codes
 *  options.ts        option types, defaults, and the one settler of both isolation modes
 *  module.ts         EnclaveModule: validate, measure (attest's identity), instrument, compile
 *  instance.ts       Enclave: the live instance and its one call path (_live.ts: its helpers)
 *  capabilities/     one module per capability import (random, clock, log, seal, attest)
 *  platform.ts       what the runtime needs of the platform (a sealing-key source, an evidence issuer)
 *  handle.ts         EnclaveHandle: what both isolation modes offer
 *  worker.ts         WorkerEnclave (_call-queue.ts, _worker-spawn.ts, _worker-main.ts, _worker-*.ts)
 *  load.ts           loadEnclave, compileEnclave: the one-step entries
 * ```
 *
 * This file re-exports them for the paths that import `runtime/enclave.js`.
 */
export { SUPPORTED_ABI_VERSIONS } from './abi.js';
export { DEFAULT_POLICY } from './options.js';
export type { CallOptions, CallStats, CompileOptions, EnclaveOptions, LogLevel } from './options.js';
export { EnclaveModule } from './module.js';
export { Enclave } from './instance.js';
export type { EnclaveHandle } from './handle.js';
