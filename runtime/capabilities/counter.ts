/**
 * The `counter` capability (docs/ABI.md §3): monotonic counters the platform keeps durable per
 * identity binding (the policy's measurement or signer), what sealed state checks its age against
 * (rollback protection, docs/SEALING.md).
 *
 * - `counter_read(policy, id: i64, out_ptr) -> i32`: writes value u64 LE ‖ tag[32] at `out_ptr`.
 * - `counter_advance(policy, id: i64, expected: i64, tag_ptr) -> i32`: value `expected` →
 *   `expected + 1` with the 32 bytes at `tag_ptr`, durable before it returns; -4 when the value
 *   was not `expected`. At most {@link MAX_ADVANCES_PER_CALL} per call into the enclave (each is
 *   an fsync on the host): -5 past that.
 *
 * Return values: {@link COUNTER_STATUS}. The i64 arguments arrive as BigInt and are read as u64.
 * Counters come from the platform's {@link CounterSource}; in a worker, by host call, answered on
 * the host thread for the identity the host computed. Both modes run the same checks.
 */
import { isPromise } from 'node:util/types';
import { EnclaveError } from '../../core/index.js';
import type { ModuleIdentity } from '../../attest/index.js';
import { COUNTER_BYTES, COUNTER_STATUS, COUNTER_TAG_BYTES, MAX_ADVANCES_PER_CALL, SEAL_POLICIES, type SealPolicy } from '../abi.js';
import { dropPending, platformCode, type CounterSource, type CounterReading, type EnclavePlatform } from '../platform.js';
import type { CapabilityImport, CapabilityModule, GrantOptions } from './_capability.js';

const U64_MAX = (1n << 64n) - 1n;

/** The `counter_read` import. */
const counterRead: CapabilityImport = Object.freeze<CapabilityImport>({
  name: 'counter_read',
  type: { params: ['i32', 'i64', 'i32'], results: ['i32'] },
  // A file read on the host, as a key derivation.
  fuel: 500_000,
  hostCall: {
    kind: 'counter_read',
    answer: (platform, context, message) => answerReadHostCall(platform, context.identity, message),
  },
  implement(ctx) {
    const platform = ctx.platform;
    if (platform === undefined) return undefined;
    return (policy: number, id: bigint, outPtr: number): number => {
      ctx.pay(counterRead.fuel);
      if (!ctx.inBounds(outPtr, COUNTER_BYTES)) return COUNTER_STATUS.outOfBounds;
      const name = SEAL_POLICIES[policy];
      if (name === undefined) return COUNTER_STATUS.unknownPolicy;
      // WebAssembly hands an i64 over as a BigInt (never anything else from a module).
      if (typeof id !== 'bigint') return COUNTER_STATUS.unavailable;
      let state: CounterReading;
      try {
        state = readCounterOf(platform, ctx.identity, name, BigInt.asUintN(64, id));
      } catch {
        return COUNTER_STATUS.unavailable;
      }
      writeCounter(ctx.memory(), outPtr, state);
      return COUNTER_STATUS.ok;
    };
  },
});

/** The `counter_advance` import. */
const counterAdvance: CapabilityImport = Object.freeze<CapabilityImport>({
  name: 'counter_advance',
  type: { params: ['i32', 'i64', 'i64', 'i32'], results: ['i32'] },
  // A durable write on the host (file and directory fsync).
  fuel: 2_000_000,
  hostCall: {
    kind: 'counter_advance',
    maxPerCall: MAX_ADVANCES_PER_CALL,
    answer: (platform, context, message) => answerAdvanceHostCall(platform, context.identity, message),
  },
  implement(ctx) {
    const platform = ctx.platform;
    if (platform === undefined) return undefined;
    let serial = -1;
    let advances = 0;
    return (policy: number, id: bigint, expected: bigint, tagPtr: number): number => {
      ctx.pay(counterAdvance.fuel);
      if (!ctx.inBounds(tagPtr, COUNTER_TAG_BYTES)) return COUNTER_STATUS.outOfBounds;
      const name = SEAL_POLICIES[policy];
      if (name === undefined) return COUNTER_STATUS.unknownPolicy;
      if (typeof id !== 'bigint' || typeof expected !== 'bigint') return COUNTER_STATUS.unavailable;
      const now = ctx.callSerial();
      if (now !== serial) {
        serial = now;
        advances = 0;
      }
      if (advances >= MAX_ADVANCES_PER_CALL) return COUNTER_STATUS.limit;
      advances++;
      const tag = ctx.memory().slice(tagPtr, tagPtr + COUNTER_TAG_BYTES);
      let moved: boolean;
      try {
        moved = advanceCounterOf(platform, ctx.identity, name, BigInt.asUintN(64, id), BigInt.asUintN(64, expected), tag);
      } catch (err) {
        return platformCode(err) === 'counter_limit' ? COUNTER_STATUS.limit : COUNTER_STATUS.unavailable;
      }
      return moved ? COUNTER_STATUS.ok : COUNTER_STATUS.conflict;
    };
  },
});

/** The `counter` capability. */
export const counter: CapabilityModule<'counter'> = Object.freeze<CapabilityModule<'counter'>>({
  name: 'counter',
  imports: Object.freeze([counterRead, counterAdvance]),
  crossing: 'host-call',
  grant(options) {
    if (!hasCounters(options)) {
      throw new EnclaveError(
        'invalid_options',
        'The "counter" capability needs an attestation provider with monotonic counters (readCounter and advanceCounter): pass { attestation }.',
      );
    }
  },
});

/** Whether the options' platform has both counter methods (read defensively: a throwing getter is "no"). */
function hasCounters(options: GrantOptions): boolean {
  try {
    const platform = options.attestation;
    return platform !== undefined && typeof platform.readCounter === 'function' && typeof platform.advanceCounter === 'function';
  } catch {
    return false;
  }
}

/** value u64 LE ‖ tag[32] at `at` (in bounds: checked by the caller). */
function writeCounter(memory: Uint8Array, at: number, state: CounterReading): void {
  new DataView(memory.buffer, memory.byteOffset, memory.byteLength).setBigUint64(at, state.value, true);
  memory.set(state.tag, at + 8);
}

/** Whether `value` is a u64 as a BigInt. */
function isU64(value: unknown): value is bigint {
  return typeof value === 'bigint' && value >= 0n && value <= U64_MAX;
}

/** A policy name from a hostile message, or undefined. */
function policyOf(value: unknown): SealPolicy | undefined {
  return typeof value === 'string' && (SEAL_POLICIES as readonly string[]).includes(value) ? (value as SealPolicy) : undefined;
}

/**
 * @internal `platform.readCounter`, checked: a u64 value and a 32-byte tag (copied). Throws the
 * platform's error, or a plain error for a platform without the method or an answer that is no
 * counter (a Promise included: nothing here can wait).
 */
export function readCounterOf(platform: Partial<CounterSource>, identity: ModuleIdentity, policy: SealPolicy, id: bigint): CounterReading {
  const method: unknown = platform.readCounter;
  if (typeof method !== 'function') throw new Error('The platform has no readCounter.');
  const answer: unknown = method.call(platform, identity, policy, id);
  if (typeof answer !== 'object' || answer === null || isPromise(answer)) {
    dropPending(answer);
    throw new Error('not a counter');
  }
  // Each field read once: a getter could answer a check with one value and the copy with another.
  const { value, tag } = answer as Partial<Record<string, unknown>>;
  if (!isU64(value) || !(tag instanceof Uint8Array) || tag.length !== COUNTER_TAG_BYTES) throw new Error('not a counter');
  return { value, tag: Uint8Array.from(tag) };
}

/**
 * @internal `platform.advanceCounter`, checked: exactly `true` (advanced) or `false` (conflict).
 * Throws the platform's error (`counter_limit` among them), or a plain error for a platform
 * without the method or any other answer (a Promise included).
 */
export function advanceCounterOf(
  platform: Partial<CounterSource>,
  identity: ModuleIdentity,
  policy: SealPolicy,
  id: bigint,
  expected: bigint,
  tag: Uint8Array,
): boolean {
  const method: unknown = platform.advanceCounter;
  if (typeof method !== 'function') throw new Error('The platform has no advanceCounter.');
  const answer: unknown = method.call(platform, identity, policy, id, expected, tag);
  if (answer !== true && answer !== false) {
    dropPending(answer);
    throw new Error('not an advance result');
  }
  return answer;
}

/** Host side of a worker's `counter_read`: the 40 bytes the import writes. Every field is hostile. */
function answerReadHostCall(platform: EnclavePlatform, identity: ModuleIdentity, message: Readonly<Record<string, unknown>>): Uint8Array {
  const { policy, id } = message;
  const name = policyOf(policy);
  if (name === undefined || !isU64(id)) throw new Error('bad counter request');
  const answer = new Uint8Array(COUNTER_BYTES);
  writeCounter(answer, 0, readCounterOf(platform, identity, name, id));
  return answer;
}

/** Host side of a worker's `counter_advance`: one byte, 1 advanced, 0 conflict. Every field is hostile. */
function answerAdvanceHostCall(platform: EnclavePlatform, identity: ModuleIdentity, message: Readonly<Record<string, unknown>>): Uint8Array {
  const { policy, id, expected, tag } = message;
  const name = policyOf(policy);
  if (name === undefined || !isU64(id) || !isU64(expected) || !(tag instanceof Uint8Array) || tag.length !== COUNTER_TAG_BYTES) {
    throw new Error('bad counter request');
  }
  return Uint8Array.of(advanceCounterOf(platform, identity, name, id, expected, Uint8Array.from(tag)) ? 1 : 0);
}

/** @internal Worker side: the 40 bytes of a `counter_read` host call as a {@link CounterReading}. Throws for another length. */
export function counterFromAnswer(answer: Uint8Array): CounterReading {
  if (answer.length !== COUNTER_BYTES) throw new Error('not a counter');
  const value = new DataView(answer.buffer, answer.byteOffset, answer.byteLength).getBigUint64(0, true);
  return { value, tag: answer.slice(8) };
}

/** @internal Worker side: the byte of a `counter_advance` host call. Throws for anything but 0 or 1. */
export function advancedFromAnswer(answer: Uint8Array): boolean {
  if (answer.length !== 1 || answer[0]! > 1) throw new Error('not an advance result');
  return answer[0] === 1;
}
