/**
 * `report(data_ptr, data_len, out_ptr, out_cap) -> i32` (docs/ABI.md §3): evidence binding 8..64
 * bytes of the enclave's choosing (its relying party's nonce, or a hash of it and of a key it
 * holds), written at `out_ptr` if it fits in `out_cap`; returns its length either way, or a
 * negative {@link REPORT_STATUS}. Also what `attest()` issues on the host side, in both modes.
 *
 * Evidence comes from the platform's {@link EvidenceIssuer}. In a worker, the platform stays on
 * the host thread: the worker's platform proxy asks it by host call, and
 * {@link answerEvidenceHostCall} answers there with the report context the host computed itself.
 */
import { EnclaveError } from '../../core/index.js';
import type { ModuleIdentity } from '../../attest/index.js';
import { REPORT_DATA_MAX_BYTES, REPORT_DATA_MIN_BYTES, REPORT_STATUS } from '../abi.js';
import { dropPending, isBadInput, platformError, type EnclaveKeyJwk, type EvidenceIssuer, type EvidenceOrder, type ReportContext } from '../platform.js';
import { COMPONENT_GLUE, RUNTIME_VERSION } from '../version.js';
import type { CapabilityImport, CapabilityModule } from './_capability.js';

/** The `report` import. */
const report: CapabilityImport = Object.freeze<CapabilityImport>({
  name: 'report',
  type: { params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] },
  fuel: 2_000_000,
  hostCall: {
    kind: 'evidence',
    answer: (platform, context, message, room) =>
      answerEvidenceHostCall(platform, context, message.nonce, message.reportData, room.maxInput, room.maxAnswer),
  },
  implement(ctx) {
    const platform = ctx.platform;
    if (platform === undefined) return undefined;
    // The token is kept until the call ends so a retry with a bigger buffer gets the same bytes.
    let last: { data: string; token: Uint8Array } | undefined;
    return (dataPtr: number, dataLen: number, outPtr: number, outCap: number): number => {
      ctx.pay(report.fuel);
      if (!ctx.inBounds(dataPtr, dataLen) || !ctx.inBounds(outPtr, outCap)) return REPORT_STATUS.outOfBounds;
      // Refused before copying: data_len may be the whole memory, and this runs in a loop.
      if (dataLen < REPORT_DATA_MIN_BYTES || dataLen > REPORT_DATA_MAX_BYTES) return REPORT_STATUS.badReportData;
      const data = ctx.memory().slice(dataPtr, dataPtr + dataLen);
      const key = Buffer.from(data).toString('hex');
      if (last === undefined || last.data !== key || !ctx.sameCall) {
        try {
          last = { data: key, token: createReport(platform, ctx.reportContext(), data) };
        } catch (err) {
          return isBadInput(err) ? REPORT_STATUS.badReportData : REPORT_STATUS.unavailable;
        }
        ctx.sameCall = true;
      }
      if (last.token.length <= outCap) ctx.memory().set(last.token, outPtr);
      return last.token.length;
    };
  },
});

/** The `attest` capability. */
export const attest: CapabilityModule<'attest'> = Object.freeze<CapabilityModule<'attest'>>({
  name: 'attest',
  imports: Object.freeze([report]),
  crossing: 'host-call',
  grant(options) {
    if (options.attestation === undefined) throw new EnclaveError('invalid_options', 'The "attest" capability needs an attestation provider: pass { attestation }.');
  },
});

/**
 * Evidence binding enclave-supplied report data: the same bytes are its nonce and its
 * `report_data` (docs/ATTESTATION.md). Returns the token as bytes.
 */
function createReport(platform: EvidenceIssuer, context: ReportContext, reportData: Uint8Array): Uint8Array {
  const data = Uint8Array.from(reportData);
  const token: unknown = platform.getEvidence({ ...context, nonce: data, reportData: data });
  // Only a token now: a promise (an asynchronous platform) cannot be waited for inside the call,
  // and anything else is no token (worker mode's host side refuses the same: the modes agree).
  if (typeof token !== 'string') {
    dropPending(token);
    throw new Error('not a token');
  }
  return new TextEncoder().encode(token);
}

/**
 * What {@link reportContextOf} reads of the settled options (`EnclaveConfig` of options.ts is one;
 * declared here: no capability file imports options.ts, which reaches this folder through contract.ts).
 */
interface SettledForReport {
  readonly limits: { readonly fuel: number };
  readonly capabilities: Iterable<string>;
  readonly debug: boolean;
}

/**
 * @internal What an enclave's evidence says about it besides the nonce (identity, runtime, limits,
 * capabilities, debug, and for a component `enclave.component`). Both modes compute it from the
 * same settled options and the module's core-module count, so they make the same claims.
 * @param coreModules - a component's core modules (each metered on its own counter, so a call may
 *   do up to `coreModules × limits.fuel` of work: issue 14, decision 6); undefined for a core module.
 */
export function reportContextOf(identity: ModuleIdentity, config: SettledForReport, coreModules?: number): ReportContext {
  const context: ReportContext = {
    identity,
    runtimeVersion: RUNTIME_VERSION,
    limits: config.limits as unknown as Record<string, number>,
    capabilities: [...config.capabilities],
    debug: config.debug,
  };
  if (coreModules !== undefined) {
    context.component = { coreModules, fuelBound: coreModules * config.limits.fuel, glue: COMPONENT_GLUE };
  }
  return context;
}

/**
 * @internal `attest()` of both isolation modes: evidence from the host's platform, bound to the
 * relying party's nonce. The platform runs now, synchronously (platforms are synchronous); what
 * it or the checks throw becomes the rejection.
 */
export function issueEvidence(
  closed: boolean,
  platform: EvidenceIssuer | undefined,
  context: () => ReportContext,
  nonce: Uint8Array,
  options: { enclaveKey?: EnclaveKeyJwk } | undefined,
): Promise<string> {
  try {
    if (closed) throw new EnclaveError('closed');
    if (platform === undefined) throw new EnclaveError('invalid_options', 'Attestation needs a provider: pass { attestation }.');
    const enclaveKey = options?.enclaveKey;
    const order: EvidenceOrder = { ...context(), nonce, ...(enclaveKey ? { enclaveKey } : {}) };
    return Promise.resolve(platform.getEvidence(order));
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Host side of a worker's `report`: the evidence for the nonce and report data the
 * worker sent (each at most `maxInput` bytes, copied), as UTF-8 bytes of at most `maxBytes`.
 * Throws for bad input (code `invalid_report_data`) and for a platform answer that is no token.
 */
function answerEvidenceHostCall(
  platform: EvidenceIssuer,
  context: ReportContext,
  nonce: unknown,
  reportData: unknown,
  maxInput: number,
  maxBytes: number,
): Uint8Array {
  const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array && value.length <= maxInput;
  if (!isBytes(nonce) || (reportData !== undefined && !isBytes(reportData))) throw platformError('invalid_report_data');
  const order: EvidenceOrder = { ...context, nonce: Uint8Array.from(nonce) };
  if (reportData !== undefined) order.reportData = Uint8Array.from(reportData);
  const token: unknown = platform.getEvidence(order);
  if (typeof token !== 'string') {
    dropPending(token);
    throw new Error('not a token');
  }
  const answer = Buffer.from(token, 'utf8');
  if (answer.length > maxBytes) throw platformError('platform_unavailable', 'The evidence is too large for worker mode.');
  return answer;
}
