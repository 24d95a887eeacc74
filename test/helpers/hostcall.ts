/**
 * The host thread's side of a worker's host call (runtime/_worker-hostcall.ts answerHostCall), driven
 * directly as a compromised worker would drive it: any fields posted over a real shared buffer, so a
 * test can check what the host answers without a worker or an enclave.
 */
import { expect } from 'vitest';
import { answerHostCall } from '../../runtime/_worker-hostcall.js';
import { HC_STATE, HC_STATUS, HOSTCALL_DATA_BYTES, HOSTCALL_HEADER_BYTES } from '../../runtime/_worker-protocol.js';

/** A shared buffer the host answers on, and the calls posted to it. */
export interface HostCallChannel {
  /**
   * Posts `{type: 'hostcall', sab, seq, ...fields}` with a fresh seq and has the host answer it;
   * expects answerHostCall not to throw and to have answered (HC_STATE flipped to -seq).
   */
  send(fields: Record<string, unknown>): void;
  /** HC_STATUS of the last answer: 0 (HC_OK) the platform answered, 1 (HC_FAILED) an error answer. */
  status(): number;
}

/**
 * A channel whose calls `platform` answers for an enclave of svn `svn` (the report context's
 * identity: measurement all zero, no signer; the svn bounds a signer-policy seal_key_at).
 * @throws {Error} an assertion error (vitest `expect`) from `send` if the host throws or leaves a call unanswered.
 * @example
 * const channel = hostCallChannel(fakePlatform({ readCounter, advanceCounter }), 0);
 * channel.send({ kind: 'counter_read', policy: 'measurement', id: -1n });
 * expect(channel.status()).toBe(1);
 */
export function hostCallChannel(platform: unknown, svn: number): HostCallChannel {
  const context = {
    identity: { measurement: '00'.repeat(32), signers: [], svn, name: 'x', version: '1' },
    runtimeVersion: '0',
    limits: {},
    capabilities: [],
    debug: false,
  } as never;
  const sab = new SharedArrayBuffer(HOSTCALL_HEADER_BYTES + HOSTCALL_DATA_BYTES);
  const ctl = new Int32Array(sab, 0, 4);
  let seq = 1;
  return {
    send(fields) {
      seq++;
      Atomics.store(ctl, HC_STATE, seq);
      expect(() => answerHostCall({ type: 'hostcall', sab, seq, ...fields }, platform as never, context, 1000)).not.toThrow();
      expect(Atomics.load(ctl, HC_STATE)).toBe(-seq);
    },
    status: () => Atomics.load(ctl, HC_STATUS),
  };
}
