/**
 * What the runtime needs from the platform (attest/, or a hardware TEE backend), declared here by
 * the runtime, in the runtime's terms. The platform implements these structurally: attest's
 * `SoftwareAttestationProvider` satisfies {@link EnclavePlatform} without the runtime importing
 * attest's provider, evidence, report or sealing files.
 *
 * The `seal_key`, `seal_key_at`, `counter_read`, `counter_advance` and `report` imports call these
 * methods from inside a running WebAssembly call, which cannot await: they need a synchronous
 * answer. `getSealingSecret`, `sealingKey` and the counter methods must be synchronous (a Promise
 * from them is answered "unavailable").
 * `getEvidence` may return a Promise: `attest()` on the handle awaits it, but the enclave's `report`
 * import then answers unavailable (-3), so a platform that can only answer asynchronously serves
 * `attest()` and not `report`. A backend that must do I/O for either does it when it is opened.
 */
import { isPromise } from 'node:util/types';
import type { ModuleIdentity } from '../attest/index.js';
import { EnclaveError, isErrorCode } from '../core/index.js';
import type { SealPolicy } from './abi.js';

/** A public key held inside the enclave, carried in the evidence's `cnf` (RFC 7800) so clients can encrypt to it. */
export interface EnclaveKeyJwk {
  kty: 'OKP';
  crv: 'X25519' | 'Ed25519';
  x: string;
  kid?: string;
  use?: string;
  alg?: string;
}

/**
 * What a component's evidence says about how its limits differ from a core module's
 * (`enclave.component`, docs/ATTESTATION.md §4.2): every core module has its own fuel counter.
 */
export interface ComponentFacts {
  /** Core modules in the component. */
  coreModules: number;
  /** The most fuel-metered work one call can do: `coreModules × limits.fuel`. */
  fuelBound: number;
  /** The glue serving its imports, `"jco-transpile@<version>"`. */
  glue: string;
}

/** What the runtime knows about an enclave and puts in its evidence, besides the nonce. */
export interface ReportContext {
  /** The enclave's identity (measurement, svn, signer). */
  identity: ModuleIdentity;
  /** The runtime's version string. */
  runtimeVersion: string;
  /** The limits in force for this enclave. */
  limits: Readonly<Record<string, number>>;
  /** The capabilities granted to this enclave. */
  capabilities: readonly string[];
  /** True if anything that can see inside the enclave is on (`dbgstat`). */
  debug: boolean;
  /** Only for a component: its core modules, the fuel bound of a call, its glue. */
  component?: ComponentFacts;
}

/** One request for evidence: the enclave's context, bound to a nonce. */
export interface EvidenceOrder extends ReportContext {
  /** The relying party's nonce (or the enclave's report data), 8..64 bytes. */
  nonce: Uint8Array;
  /** Enclave-supplied report data, placed in the evidence as such (the `report` import). */
  reportData?: Uint8Array;
  /** A public key held inside the enclave. */
  enclaveKey?: EnclaveKeyJwk;
}

/** Source of the keys the `seal_key` import hands an enclave. */
export interface SealingKeySource {
  /**
   * A 32-byte sealing key bound to the enclave's measurement or signer. The runtime copies it into
   * the enclave and zeroes the array it was given. Throws when the platform cannot give one.
   * Synchronous: only the `seal_key` import asks, from inside a running WebAssembly call.
   */
  getSealingSecret(identity: ModuleIdentity, policy: SealPolicy): Uint8Array;
  /**
   * The sealing key under a chosen root and svn (the `seal_key_at` import). Throws an error with
   * code `sealing_key_unknown` or `sealing_key_revoked` for a root it cannot use, anything else
   * when it cannot give one. Optional: without it `seal_key_at` answers unavailable.
   */
  sealingKey?(identity: ModuleIdentity, policy: SealPolicy, choice?: SealingKeyChoice): SealingKeyResult;
}

/** Which sealing key `sealingKey` is asked for (the `seal_key_at` import's arguments, in the runtime's terms). */
export interface SealingKeyChoice {
  /** The sealing root's id; 0 or absent: the current root. */
  keyId?: number;
  /** `signer` policy only: an svn at most the module's own; absent: its own. */
  svn?: number;
}

/** A sealing key and what it was derived under. */
export interface SealingKeyResult {
  /** 32 bytes; the runtime copies it into the enclave and zeroes this array. */
  key: Uint8Array;
  /** The id of the root used, 1..2^31-1. */
  keyId: number;
  /** The svn used; 0 under `measurement`. */
  svn: number;
}

/** A monotonic counter's state: its value and the tag stored with it. */
export interface CounterReading {
  /** 0..2^64-1; 0 for a counter never advanced. */
  value: bigint;
  /** 32 bytes; all zero for a counter never advanced. */
  tag: Uint8Array;
}

/**
 * Source of the monotonic counters of the `counter` capability, per identity binding (the policy's
 * measurement or signer). Synchronous, as the imports that ask run inside a WebAssembly call.
 */
export interface CounterSource {
  /** Counter `id` (u64). Throws when the platform cannot serve it (`sealing_unavailable`: no signer). */
  readCounter(identity: ModuleIdentity, policy: SealPolicy, id: bigint): CounterReading;
  /**
   * Moves counter `id` from `expected` to `expected + 1` with `tag` (32 bytes), durably before it
   * returns: true; false when the value was not `expected`. Throws `counter_limit` past the
   * platform's bounds, anything else when it cannot serve it.
   */
  advanceCounter(identity: ModuleIdentity, policy: SealPolicy, id: bigint, expected: bigint, tag: Uint8Array): boolean;
}

/** Issuer of the evidence `Enclave.attest` and the `report` import return. */
export interface EvidenceIssuer {
  /** The platform's name (`"software"` for the stand-in). */
  readonly platform: string;
  /**
   * Signed evidence (a compact JWT) about an enclave, bound to the order's nonce. Throws (or
   * rejects) with an error whose `code` is `invalid_nonce` or `invalid_report_data` for bad input,
   * anything else when the platform is unavailable.
   *
   * A Promise is awaited by `attest()` on the handle. The `report` import runs inside a WebAssembly
   * call and needs a synchronous answer: for a Promise it answers unavailable (-3), so a platform
   * that can only answer asynchronously serves `attest()` but its enclaves' `report` import does not.
   */
  getEvidence(order: EvidenceOrder): string | Promise<string>;
}

/**
 * A platform that can serve sealing and evidence, and maybe counters: what the `attestation` option
 * takes. The `counter` capability is granted only with a platform that has both counter methods.
 */
export interface EnclavePlatform extends SealingKeySource, EvidenceIssuer, Partial<CounterSource> {}

/** Error codes a platform throws for bad input to `getEvidence` (the `report` import returns badReportData). */
const BAD_INPUT = new Set(['invalid_report_data', 'invalid_nonce']);

/**
 * The platform error codes an import turns into a return value of its own (bad input: `report`
 * -2; an unusable root: `seal_key_at` -4; a counter limit: `counter_advance` -5). Only these cross
 * from the host thread to a worker: any other failure is "unavailable" in both modes.
 */
const MEANINGFUL = new Set([...BAD_INPUT, 'sealing_key_unknown', 'sealing_key_revoked', 'counter_limit']);

/**
 * @internal The code of a platform error when an import answers it with a value of its own
 * ({@link MEANINGFUL}), else undefined. Read defensively: a hostile getter means "none".
 */
export function platformCode(err: unknown): string | undefined {
  try {
    if (!(err instanceof EnclaveError)) return undefined;
    const code: unknown = err.code;
    return typeof code === 'string' && MEANINGFUL.has(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * @internal Whether a platform error is about the input (the enclave's report data) rather than
 * the platform. Read defensively: a hostile getter means "no".
 */
export function isBadInput(err: unknown): boolean {
  try {
    return err instanceof EnclaveError && BAD_INPUT.has(err.code);
  } catch {
    return false;
  }
}

/**
 * @internal An error as a platform throws it, with a `code` (what {@link isBadInput} reads): for
 * the platform proxy of a worker and the host side of its host calls.
 */
export function platformError(code: string, message?: string): Error {
  // A known code rebuilds its own class (AttestationError for the platform's codes: core/).
  return isErrorCode(code) ? EnclaveError.fromJSON({ code, message }) : Object.assign(new Error(message ?? `The platform failed (${code}).`), { code });
}

/**
 * @internal For a platform answer the `seal_key` or `report` import cannot use: when it is a promise
 * (an asynchronous platform, which `attest()` waits for), its rejection is handled here. Those
 * imports run inside a synchronous WebAssembly call and cannot wait: they answer "unavailable",
 * and the promise, left alone, would end the host process as an unhandled rejection.
 */
export function dropPending(answer: unknown): void {
  if (!isPromise(answer)) return;
  try {
    // The intrinsic `then`, not the promise's own (which a subclass may override).
    Promise.prototype.then.call(answer, undefined, () => undefined);
  } catch {
    // A hostile species constructor: nothing more can be done for it.
  }
}
