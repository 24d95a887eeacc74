/**
 * The enclave ABI's constants (docs/ABI.md): what the runtime requires a module to export, which
 * versions it speaks, and the numbers its capability imports exchange with the enclave. They
 * belong to the runtime, which defines the ABI; the platform (attest/) keeps its own copies of the
 * few it needs, and test/abi.test.ts checks that the two agree (attest never imports runtime/).
 */
import type { FuncType } from '../core/index.js';

/** The ABI versions this runtime speaks (docs/ABI.md §8). */
export const SUPPORTED_ABI_VERSIONS: readonly number[] = Object.freeze([1]);

/** The only module an enclave may import from (docs/ABI.md §3). */
export const IMPORT_MODULE = 'enclave';

/** The export holding the enclave's linear memory (docs/ABI.md §2). */
export const MEMORY_EXPORT = 'memory';

const I32: FuncType['params'] = ['i32'];

/** The functions every module exports, and their types (docs/ABI.md §2). */
export const REQUIRED_EXPORTS: Readonly<Record<string, FuncType>> = Object.freeze({
  enclave_abi_version: { params: [], results: I32 },
  enclave_alloc: { params: I32, results: I32 },
  enclave_call: { params: ['i32', 'i32'], results: I32 },
});

/** The one import every module may have without a capability: `abort(msg_ptr, msg_len)`. */
export const ABORT_IMPORT = Object.freeze({ name: 'abort', type: { params: ['i32', 'i32'], results: [] } as FuncType });

/** The levels of the `log` import, in the order of its `level` argument 0..3 (docs/ABI.md §3). */
export const LOG_LEVELS = Object.freeze(['debug', 'info', 'warn', 'error'] as const);

/** Severity of a line an enclave logs through the `log` import, whose `level` 0..3 names one (docs/ABI.md §3). */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Return values of the `report` import for failures (docs/ABI.md §3); success is the evidence length. */
export const REPORT_STATUS = Object.freeze({
  /** A pointer or length is out of the enclave's memory (checked by the runtime). */
  outOfBounds: -1,
  /** The report data is not {@link REPORT_DATA_MIN_BYTES}..{@link REPORT_DATA_MAX_BYTES} bytes. */
  badReportData: -2,
  /** The platform could not issue evidence. */
  unavailable: -3,
} as const);

/** Fewest bytes of report data the `report` import takes: it is the evidence's nonce (RFC 9711 §4.1). */
export const REPORT_DATA_MIN_BYTES = 8;
/** Most bytes of report data the `report` import takes (as SGX REPORTDATA). */
export const REPORT_DATA_MAX_BYTES = 64;

/** Return values of the `seal_key` import (docs/ABI.md §3). */
export const SEAL_STATUS = Object.freeze({
  ok: 0,
  /** The 32-byte output lies outside the enclave's memory. */
  outOfBounds: -1,
  /** The policy argument names no policy of {@link SEAL_POLICIES}. */
  unknownPolicy: -2,
  /** The platform could not give a key. */
  unavailable: -3,
} as const);

/** Bytes of a sealing key written by `seal_key`. */
export const SEAL_KEY_BYTES = 32;

/** Return values of the `seal_key_at` import (docs/ABI.md §3). */
export const SEAL_AT_STATUS = Object.freeze({
  ok: 0,
  /** The 40-byte output lies outside the enclave's memory. */
  outOfBounds: -1,
  /** The policy argument names no policy of {@link SEAL_POLICIES}. */
  unknownPolicy: -2,
  /** The platform could not give a key (no signer for `signer`, no `sealingKey`, a failure). */
  unavailable: -3,
  /** The platform has no root with that key id, or it was revoked. */
  unknownKey: -4,
  /** The svn argument is not allowed: below -1, above the module's own, or not -1 under `measurement`. */
  svnNotAllowed: -5,
} as const);

/** Bytes `seal_key_at` writes: key[32] ‖ root key id u32 LE ‖ svn u32 LE. */
export const SEAL_KEY_AT_BYTES = 40;

/** The `svn` argument of `seal_key_at` that asks for the module's own svn. */
export const OWN_SVN = -1;

/** Return values of the `counter_read` and `counter_advance` imports (docs/ABI.md §3). */
export const COUNTER_STATUS = Object.freeze({
  ok: 0,
  /** The 40-byte output (`counter_read`) or the 32-byte tag (`counter_advance`) lies outside memory. */
  outOfBounds: -1,
  /** The policy argument names no policy of {@link SEAL_POLICIES}. */
  unknownPolicy: -2,
  /** The platform could not serve the counter (no signer for `signer`, a failure). */
  unavailable: -3,
  /** `counter_advance`: the counter's value was not the expected one. */
  conflict: -4,
  /** `counter_advance`: too many counters, a value past 2^64-1, or more than {@link MAX_ADVANCES_PER_CALL} in one call. */
  limit: -5,
} as const);

/** Bytes `counter_read` writes: value u64 LE ‖ tag[32]. */
export const COUNTER_BYTES = 40;

/** Bytes of a counter's tag. */
export const COUNTER_TAG_BYTES = 32;

/** Most `counter_advance` calls that reach the platform in one call into the enclave (each is an fsync). */
export const MAX_ADVANCES_PER_CALL = 64;

/**
 * What the `seal_key` import's `policy` argument means: index 0 binds the key to the measurement,
 * 1 to the signer (docs/ABI.md §3). Appending is compatible; reordering breaks every sealed blob.
 */
export const SEAL_POLICIES = Object.freeze(['measurement', 'signer'] as const);

/** A sealing policy's name (docs/ATTESTATION.md §6). */
export type SealPolicy = (typeof SEAL_POLICIES)[number];
