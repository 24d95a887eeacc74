/**
 * Host calls: how the enclave in a worker reaches the platform, which stays on the host thread
 * (it holds keys and methods a structured clone would drop). The capabilities that cross this way
 * say so (`crossing: 'host-call'` in runtime/capabilities/); layout and states are in
 * `_worker-protocol.ts`.
 *
 * Worker side, {@link hostCallPlatform}: an {@link EnclavePlatform} whose methods
 * (`getSealingSecret`, `sealingKey`, `getEvidence`, `readCounter`, `advanceCounter`) post a message
 * to the host thread and block in `Atomics.wait` for the answer; the `seal`, `counter` and `attest`
 * imports of the worker's Enclave call it exactly as they call a real platform in-process, and
 * check its answers the same way, so they return the same values. Host side, {@link answerHostCall}: runs the
 * capability's host-side answer against the real platform with the identity and report context
 * the host computed itself (never the worker's), and never throws, whatever the message holds.
 */
import { HOST_CALL_CAPABILITY, HOST_CALLS } from './capabilities/index.js';
import { advancedFromAnswer, counterFromAnswer } from './capabilities/counter.js';
import { sealingKeyFromAnswer } from './capabilities/seal.js';
import { platformCode, platformError, type EnclavePlatform, type EvidenceOrder, type ReportContext } from './platform.js';
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

/** A host call's own fields: every message kind but its envelope. */
type Ask = HostCallMessage extends infer M ? (M extends HostCallMessage ? Omit<M, 'type' | 'sab' | 'seq'> : never) : never;

const ROOM = Object.freeze({ maxInput: HOSTCALL_MAX_INPUT, maxAnswer: HOSTCALL_DATA_BYTES });

/**
 * Worker side: a platform that forwards to the host thread.
 * @param post - sends a message to the host thread (`parentPort.postMessage`).
 * @param platform - the real provider's `platform`, for completeness (the runtime does not read it).
 * @param timeoutMs - longest wait for an answer; then the method throws `platform_unavailable`
 *   (the host normally ends the call at its deadline first).
 */
export function hostCallPlatform(post: (message: HostCallMessage) => void, platform: string, timeoutMs: number): EnclavePlatform {
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
      throw platformError('platform_unavailable', 'The host thread did not answer the attestation request in time.');
    }
    const len = ctl[HC_LEN]!;
    const status = ctl[HC_STATUS]!;
    if (Atomics.load(ctl, HC_STATE) !== -seq || !(len >= 0 && len <= data.length)) {
      throw platformError('platform_unavailable', 'The host thread sent a malformed attestation answer.');
    }
    const answer = data.slice(0, len);
    data.fill(0, 0, len);
    Atomics.store(ctl, HC_STATE, 0);
    if (status !== HC_OK) {
      const code = Buffer.from(answer).toString('utf8');
      // Same code, same import return value as in-process; an error without one stays without.
      throw code.length > 0 ? platformError(code) : new Error('The attestation provider failed.');
    }
    return answer;
  };

  return {
    platform,
    // The host seals for the identity it knows, the same as this enclave's.
    getSealingSecret: (_identity, policy) => ask({ kind: 'seal', policy }),
    sealingKey: (_identity, policy, choice) => sealingKeyFromAnswer(ask({ kind: 'seal_at', policy, keyId: choice?.keyId ?? 0, svn: choice?.svn })),
    getEvidence: (order: EvidenceOrder) => Buffer.from(ask({ kind: 'evidence', nonce: order.nonce, reportData: order.reportData })).toString('utf8'),
    readCounter: (_identity, policy, id) => counterFromAnswer(ask({ kind: 'counter_read', policy, id })),
    advanceCounter: (_identity, policy, id, expected, tag) => advancedFromAnswer(ask({ kind: 'counter_advance', policy, id, expected, tag })),
  };
}

/** The host calls of one worker since its current call began, by kind (the host clears it at each call). */
export interface HostCallQuota {
  readonly used: Map<string, number>;
}

/**
 * Host side, before {@link answerHostCall}: whether a worker's host call is one its enclave may
 * make at all. Its kind must belong to a capability the host granted (the worker builds the imports
 * of granted capabilities only: seal, counter, attest), and stay within that import's per-call bound
 * (`maxPerCall`: 64 `counter_advance`, each an fsync on this thread) since the host's call began;
 * the call is counted. False means a broken or compromised worker: the caller stops it. Never throws.
 * @param granted - the enclave's granted capabilities (its report context's).
 * @param quota - this worker's counts, cleared by the host at the start of each call.
 */
export function admitHostCall(message: unknown, granted: readonly string[], quota: HostCallQuota): boolean {
  try {
    const kind = (message as Partial<Record<string, unknown>>).kind;
    if (typeof kind !== 'string') return true; // answerHostCall drops it unanswered
    const capability = HOST_CALL_CAPABILITY.get(kind);
    if (capability === undefined) return true; // no such host call: answerHostCall drops it
    if (!granted.includes(capability)) return false;
    const max = HOST_CALLS.get(kind)?.maxPerCall;
    if (max !== undefined) {
      const used = quota.used.get(kind) ?? 0;
      if (used >= max) return false;
      quota.used.set(kind, used + 1);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Host side: answers one host call from a worker. Never throws. Does not answer a message that is
 * malformed, stale (its seq is not the one the worker waits on), or whose provider call took the
 * whole `budgetMs` (the call's deadline has passed: the call then ends with `timeout`, exactly as
 * if the enclave itself had been slow, instead of a late answer racing the deadline).
 * @param message - what the worker posted; checked field by field.
 * @param provider - the real platform.
 * @param context - the report context the host computed (`reportContextOf`).
 * @param budgetMs - the deadline of the call in progress, ms.
 */
export function answerHostCall(message: unknown, provider: EnclavePlatform, context: ReportContext, budgetMs: number): void {
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
      // The import's own host-side answer (runtime/capabilities/seal.ts, counter.ts, attest.ts).
      const kind = m.kind;
      const capability = typeof kind === 'string' ? HOST_CALLS.get(kind) : undefined;
      if (capability === undefined) return;
      answer = capability.answer(provider, context, m, ROOM);
    } catch (err) {
      status = HC_FAILED;
      // Only what changes the import's return value crosses: bad input (report: -2), an unusable
      // root (seal_key_at: -4), a counter limit (counter_advance: -5), or nothing (any other
      // failure: -3). platformCode reads the error defensively (a hostile getter: no code).
      answer = Buffer.from(platformCode(err) ?? '', 'utf8');
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
