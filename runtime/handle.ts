/**
 * The one interface both isolation modes implement: the in-process `Enclave` and the
 * `WorkerEnclave`. Pools and supervisors depend on nothing more. Every member has the same
 * signature in both modes; whatever may wait (a call, a session's end, closing) returns a
 * promise, which the in-process enclave resolves once its synchronous work is done.
 */
import type { ModuleIdentity } from '../attest/index.js';
import type { Contract, Limits } from './contract.js';
import type { CallOptions } from './options.js';
import type { EnclaveKeyJwk } from './platform.js';

/** What both isolation modes offer (`loadEnclave` returns one). */
export interface EnclaveHandle {
  readonly contract: Contract;
  /** SHA-256 of the module bytes without the signature section, hex. */
  readonly measurement: string;
  /** Measurement, svn and, when a trust policy admitted the module, its signer. */
  readonly identity: ModuleIdentity;
  /** The limits in force: the contract's, capped by the host policy. */
  readonly limits: Limits;
  /** True once `close()` was called. */
  readonly closed: boolean;
  /**
   * Calls an operation; rejects with an `EnclaveError` with a stable `code`. For what this call
   * used, pass `{ stats }`: it is filled in whatever else runs meanwhile.
   */
  call<T = unknown>(op: string, args?: unknown, options?: CallOptions): Promise<T>;
  /**
   * Signed evidence about this enclave, bound to the relying party's nonce (8..64 bytes), issued
   * by the host's platform. Rejects, never throws: `closed`, `invalid_options` without a platform,
   * and the platform's own codes (`invalid_nonce`, `platform_unavailable`, ...).
   */
  attest(nonce: Uint8Array, options?: { enclaveKey?: EnclaveKeyJwk }): Promise<string>;
  /**
   * `per-session`: drops a session's instance and its memory now, after the calls accepted before
   * it. Resolves with whether the session existed.
   */
  endSession(session: string): Promise<boolean>;
  /** Resolves when every call (and endSession) accepted before it has settled. Never rejects. */
  drain(): Promise<void>;
  /** Releases the enclave; later calls fail with `closed`. Resolves once released. Idempotent. */
  close(): Promise<void>;
}
