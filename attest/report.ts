/**
 * The platform side of the `report` capability import (docs/ABI.md §3):
 * `report(data_ptr, data_len, out_ptr, out_cap) -> i32`.
 *
 * Like SGX EREPORT's REPORTDATA, the enclave binds up to 64 bytes of its own choosing into the
 * evidence. Here those bytes are also the token's freshness value: the runtime cannot know the
 * relying party's nonce (it travels inside the enclave's request), so the enclave puts it, or a
 * hash of it and of a key it holds, in the report data. The token then carries the same bytes in
 * `eat_nonce` and in `enclave.report_data` (which marks it as enclave-supplied). Hence report data
 * must be 8..64 bytes: evidence is never issued without a nonce (RFC 9711 §4.1 bounds).
 */
import { AttestationError, isAttestationError } from '../core/index.js';
import { NONCE_MIN_BYTES, REPORT_DATA_MAX_BYTES, type EvidenceRequest } from './evidence.js';
import type { AttestationProvider } from './provider.js';

/** What the runtime knows about the calling enclave: an {@link EvidenceRequest} without the nonce and report data. */
export type ReportContext = Omit<EvidenceRequest, 'nonce' | 'reportData'>;

/**
 * Return values of the `report` import for failures (docs/ABI.md §3). The ABI's own table is
 * runtime/abi.ts `REPORT_STATUS`; attest never imports runtime/, so this copy is kept equal by
 * test/abi.test.ts.
 */
export const REPORT_STATUS = Object.freeze({
  /** A pointer or length is out of the enclave's memory (checked by the runtime). */
  outOfBounds: -1,
  /** The report data is not 8..64 bytes. */
  badReportData: -2,
  /** The platform could not issue evidence. */
  unavailable: -3,
} as const);

/**
 * Issues evidence binding enclave-supplied report data; the runtime calls this from the `report`
 * import after copying `data_len` bytes out of enclave memory (bounds-checked), then writes the
 * result at `out_ptr` if it fits in `out_cap` and returns its length either way.
 * @param provider - the platform.
 * @param context - the calling enclave's identity, limits, capabilities, debug state and runtime version.
 * @param reportData - 8..64 bytes from the enclave; copied, never kept.
 * @returns the token as ASCII bytes.
 * @throws {AttestationError} `invalid_report_data` (map to {@link REPORT_STATUS}.badReportData), or
 *   any provider error (map with {@link reportStatusFor}).
 * @example
 * const token = createReport(platform, context, memory.slice(dataPtr, dataPtr + dataLen));
 * if (token.length <= outCap) memory.set(token, outPtr);
 * return token.length;
 */
export function createReport(provider: AttestationProvider, context: ReportContext, reportData: Uint8Array): Uint8Array {
  if (!(reportData instanceof Uint8Array) || reportData.length < NONCE_MIN_BYTES || reportData.length > REPORT_DATA_MAX_BYTES) {
    throw new AttestationError('invalid_report_data');
  }
  const data = Uint8Array.from(reportData);
  const token = provider.getEvidence({ ...context, nonce: data, reportData: data });
  return new TextEncoder().encode(token);
}

/**
 * Maps an error from {@link createReport} to the import's negative return value, so a failure is a
 * value and never a trap (docs/ABI.md §3).
 * @example
 * try { ... } catch (err) { return reportStatusFor(err); }
 */
export function reportStatusFor(err: unknown): number {
  if (isAttestationError(err, 'invalid_report_data') || isAttestationError(err, 'invalid_nonce')) return REPORT_STATUS.badReportData;
  return REPORT_STATUS.unavailable;
}
