/**
 * Host calls: how the enclave in a worker reaches the attestation provider, which stays on the
 * host thread (it holds keys and methods a structured clone would drop). Layout and states are in
 * `_worker-protocol.ts`.
 *
 * Worker side, {@link hostCallProvider}: an {@link AttestationProvider} whose `getSealingSecret`
 * and `getEvidence` post a message to the host thread and block in `Atomics.wait` for the answer;
 * the `seal_key` and `report` imports of the worker's Enclave call it exactly as they call a real
 * provider in-process, so they return the same values. Host side, {@link answerHostCall}: runs the
 * real provider with the identity and report context the host computed itself (never the
 * worker's), and never throws, whatever the message holds.
 */
import { AttestationError, ATTESTATION_ERROR_MESSAGES, type AttestationErrorCode } from '../attest/errors.js';
import type { EvidenceRequest } from '../attest/evidence.js';
import { measure } from '../attest/measure.js';
import type { AttestationProvider } from '../attest/provider.js';
import type { ReportContext } from '../attest/report.js';
import { SEALING_POLICIES, type SealingPolicy } from '../attest/sealing.js';
import {
  HC_FAILED,
  HC_LEN,
  HC_OK,
  HC_STATE,
  HC_STATUS,
  HOSTCALL_DATA_BYTES,
  HOSTCALL_HEADER_BYTES,
  HOSTCALL_MAX_INPUT,
  type HostCallMessage,
} from './_worker-protocol.js';

type Ask = { kind: 'seal'; policy: string } | { kind: 'evidence'; nonce: Uint8Array; reportData: Uint8Array | undefined };

function isCode(code: string): code is AttestationErrorCode {
  return Object.prototype.hasOwnProperty.call(ATTESTATION_ERROR_MESSAGES, code);
}

/**
 * Worker side: a provider that forwards to the host thread.
 * @param post - sends a message to the host thread (`parentPort.postMessage`).
 * @param platform - the real provider's `platform`, for completeness (the runtime does not read it).
 * @param timeoutMs - longest wait for an answer; then the method throws `platform_unavailable`
 *   (the host normally ends the call at its deadline first).
 */
export function hostCallProvider(post: (message: HostCallMessage) => void, platform: string, timeoutMs: number): AttestationProvider {
  const sab = new SharedArrayBuffer(HOSTCALL_HEADER_BYTES + HOSTCALL_DATA_BYTES);
  const ctl = new Int32Array(sab, 0, HOSTCALL_HEADER_BYTES / 4);
  const data = new Uint8Array(sab, HOSTCALL_HEADER_BYTES);
  let seq = 0;

  const ask = (question: Ask): Uint8Array => {
    seq = seq >= 0x3fffffff ? 1 : seq + 1;
    Atomics.store(ctl, HC_STATE, seq);
    post({ type: 'hostcall', sab, seq, ...question } as HostCallMessage);
    const until = performance.now() + timeoutMs;
    for (;;) {
      if (Atomics.load(ctl, HC_STATE) !== seq) break;
      const left = until - performance.now();
      if (left <= 0) break;
      Atomics.wait(ctl, HC_STATE, seq, left);
    }
    // Take the slot back unless the answer landed meanwhile.
    if (Atomics.compareExchange(ctl, HC_STATE, seq, 0) === seq) {
      throw new AttestationError('platform_unavailable', 'The host thread did not answer the attestation request in time.');
    }
    const len = ctl[HC_LEN]!;
    const status = ctl[HC_STATUS]!;
    if (Atomics.load(ctl, HC_STATE) !== -seq || !(len >= 0 && len <= data.length)) {
      throw new AttestationError('platform_unavailable', 'The host thread sent a malformed attestation answer.');
    }
    const answer = data.slice(0, len);
    data.fill(0, 0, len);
    Atomics.store(ctl, HC_STATE, 0);
    if (status !== HC_OK) {
      const code = Buffer.from(answer).toString('utf8');
      // Same code, same import return value as in-process; a non-AttestationError stays one.
      throw isCode(code) ? new AttestationError(code) : new Error('The attestation provider failed.');
    }
    return answer;
  };

  return {
    platform,
    measure: (bytes: Uint8Array) => measure(bytes),
    // The host seals for the identity it knows, the same as this enclave's.
    getSealingSecret: (_identity, policy: SealingPolicy) => ask({ kind: 'seal', policy }),
    getEvidence: (request: EvidenceRequest) =>
      Buffer.from(ask({ kind: 'evidence', nonce: request.nonce, reportData: request.reportData })).toString('utf8'),
    publicJwk: () => {
      throw new AttestationError('platform_unavailable', 'The platform key is available on the host thread only.');
    },
  };
}

function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length <= HOSTCALL_MAX_INPUT;
}

/**
 * Host side: answers one host call from a worker. Never throws. Does not answer a message that is
 * malformed, stale (its seq is not the one the worker waits on), or whose provider call took the
 * whole `budgetMs` (the call's deadline has passed: the call then ends with `timeout`, exactly as
 * if the enclave itself had been slow, instead of a late answer racing the deadline).
 * @param message - what the worker posted; checked field by field.
 * @param provider - the real provider.
 * @param context - the report context the host computed (`reportContextFor`).
 * @param budgetMs - the deadline of the call in progress, ms.
 */
export function answerHostCall(message: unknown, provider: AttestationProvider, context: ReportContext, budgetMs: number): void {
  try {
    const m = message as Partial<Record<string, unknown>>;
    const sab = m.sab;
    const seq = m.seq;
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength !== HOSTCALL_HEADER_BYTES + HOSTCALL_DATA_BYTES) return;
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 1 || seq > 0x3fffffff) return;
    const ctl = new Int32Array(sab, 0, HOSTCALL_HEADER_BYTES / 4);
    if (Atomics.load(ctl, HC_STATE) !== seq) return;

    const started = performance.now();
    let status = HC_OK;
    let answer: Uint8Array;
    try {
      if (m.kind === 'seal') {
        const policy = m.policy;
        if (typeof policy !== 'string' || !(SEALING_POLICIES as readonly string[]).includes(policy)) {
          throw new AttestationError('sealing_unavailable');
        }
        const key: unknown = provider.getSealingSecret(context.identity, policy as SealingPolicy);
        if (!(key instanceof Uint8Array) || key.length > HOSTCALL_DATA_BYTES) throw new Error('not a key');
        answer = Uint8Array.from(key);
        key.fill(0);
      } else if (m.kind === 'evidence') {
        const { nonce, reportData } = m;
        if (!isBytes(nonce) || (reportData !== undefined && !isBytes(reportData))) throw new AttestationError('invalid_report_data');
        const request: EvidenceRequest = { ...context, nonce: Uint8Array.from(nonce) };
        if (reportData !== undefined) request.reportData = Uint8Array.from(reportData);
        const token: unknown = provider.getEvidence(request);
        if (typeof token !== 'string') throw new Error('not a token');
        answer = Buffer.from(token, 'utf8');
        if (answer.length > HOSTCALL_DATA_BYTES) throw new AttestationError('platform_unavailable', 'The evidence is too large for worker mode.');
      } else {
        return;
      }
    } catch (err) {
      status = HC_FAILED;
      let code = '';
      try {
        if (err instanceof AttestationError && isCode(err.code)) code = err.code;
      } catch {
        // A hostile getter: no code, which maps to the same value as any provider failure.
      }
      answer = Buffer.from(code, 'utf8');
    }
    if (performance.now() - started >= budgetMs) {
      answer.fill(0);
      return;
    }
    const data = new Uint8Array(sab, HOSTCALL_HEADER_BYTES);
    data.set(answer, 0);
    answer.fill(0);
    ctl[HC_STATUS] = status;
    ctl[HC_LEN] = answer.length;
    if (Atomics.compareExchange(ctl, HC_STATE, seq, -seq) === seq) Atomics.notify(ctl, HC_STATE);
  } catch {
    // Never let a message from a worker break the host thread.
  }
}
