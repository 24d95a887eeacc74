/**
 * The instances behind one enclave name: N handles created from one compiled `EnclaveModule`
 * (worker mode: one worker each, so CPU-bound ops run in parallel), with the host's in-flight
 * accounting and call affinity.
 *
 * ```
 *  InstancePool.start(mod, { size: N })      all N started at once; one fails → the others closed
 *    members[0..N-1] ── each: { index, handle, inFlight }
 *  acquire()            an idle member (inFlight 0), else undefined (the host queues the call)
 *  acquire(key)         ONLY members[fnv1a(key) % N]: a session's calls stay on one instance
 *  release(member)      inFlight--; a handle found closed → replaced from the same module (async)
 *  drain() / close()    every member's
 * ```
 *
 * What the pool replaces, and what it leaves to the runtime: a `WorkerEnclave` replaces its own
 * worker after a timeout or a crash (the next call starts a fresh one), and an in-process `Enclave`
 * its instance after a trap; neither handle becomes unusable that way. The one way a handle becomes
 * permanently unusable is `close()` — called behind the pool's back (by code holding the handle) —
 * after which every call fails with `closed`. The pool checks `handle.closed` (a getter) on acquire
 * and release, takes such a member out of rotation and starts its replacement from the same module:
 * no recompile, so it takes a worker start (tens of ms), not a compile.
 */
import {
  createWorkerEnclave,
  EnclaveError,
  type EnclaveHandle,
  type EnclaveModule,
  type EnclaveOptions,
  type WorkerResourceLimits,
} from '../../runtime/index.js';

/** One instance of a pool: its handle and the calls the host has in flight on it. */
export interface PoolMember {
  /** Its place in the pool, 0..size-1; a replacement takes the same index. */
  readonly index: number;
  readonly handle: EnclaveHandle;
  /** Calls the host dispatched to it and has not released; 0 means idle. */
  inFlight: number;
}

/** How a pool's members are made. */
export interface PoolOptions {
  /** Members, 1..{@link MAX_POOL_SIZE}; in-process exactly 1 (one thread cannot run two calls at once). */
  readonly size: number;
  readonly isolation: 'worker' | 'in-process';
  /** Every member's enclave options: capabilities, policy, attestation, debug, state, maxSessions, onLog, metering. */
  readonly enclave: EnclaveOptions;
  /** Worker mode only. */
  readonly worker?: { deadlineMs?: number; startDeadlineMs?: number; resourceLimits?: WorkerResourceLimits };
  /**
   * A member found closed was replaced; called once the new member is in place (`reason`:
   * `closed`), so the host can hand it the calls queued for it. What it throws is ignored.
   */
  readonly onMemberReplaced?: (index: number, reason: string) => void;
  /**
   * Starting a replacement failed; the pool tries again after a jittered delay (100 ms doubling to
   * 5 s) until it succeeds or the pool closes. What it throws is ignored.
   */
  readonly onReplaceFailed?: (index: number, error: EnclaveError) => void;
}

/** Largest pool: one worker per member, each with its own heap (64 MiB old generation by default). */
export const MAX_POOL_SIZE = 256;
/**
 * Each worker member's own queue (`maxQueue`): the host's FairQueue is the queue and dispatches at
 * most one call per member; these places take what may still arrive meanwhile (`endSession`s,
 * which do not go through acquire), never a backlog of calls.
 */
export const MEMBER_MAX_QUEUE = 16;
/** Delays between attempts to start a replacement, ms. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 5000;

/** A place in the pool: its current member, and whether a replacement is starting. */
interface Slot {
  member: PoolMember;
  replacing: boolean;
}

/**
 * FNV-1a (32 bit) over the key's UTF-16 code units: cheap, stable across processes and runs (the
 * same key always lands on the same member of a pool of the same size), and spreads similar keys
 * (`s1`, `s2`) apart. Not a defence against a caller choosing keys that collide: a caller can only
 * crowd the members its own sessions map to, and the fair queue bounds what it can queue there.
 */
function fnv1a(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  }
  return hash >>> 0;
}

/**
 * The member index `key` maps to in a pool of `size`: always the same for the same key and size.
 * @throws {EnclaveError} `invalid_options` when `key` is not a string or `size` not a positive integer.
 * @example
 * affinityIndex('billing\u0000s1', 4); // e.g. 2, every time
 */
export function affinityIndex(key: string, size: number): number {
  if (typeof key !== 'string') throw new EnclaveError('invalid_options', 'An affinity key must be a string.');
  if (!Number.isSafeInteger(size) || size < 1) throw new EnclaveError('invalid_options', 'The pool size must be a positive integer.');
  return fnv1a(key) % size;
}

/** Options settled once for every member (a getter in the caller's options is read once, here). */
interface Settled {
  readonly size: number;
  readonly start: () => Promise<EnclaveHandle>;
  readonly onMemberReplaced: ((index: number, reason: string) => void) | undefined;
  readonly onReplaceFailed: ((index: number, error: EnclaveError) => void) | undefined;
}

function settle(mod: EnclaveModule, options: PoolOptions): Settled {
  if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_options', 'The pool options must be an object.');
  const { size, isolation, enclave, worker, onMemberReplaced, onReplaceFailed } = options;
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_POOL_SIZE) {
    throw new EnclaveError('invalid_options', `instances must be an integer from 1 to ${MAX_POOL_SIZE}.`);
  }
  if (typeof enclave !== 'object' || enclave === null) throw new EnclaveError('invalid_options', 'The enclave options must be an object.');
  if (onMemberReplaced !== undefined && typeof onMemberReplaced !== 'function') throw new EnclaveError('invalid_options', 'onMemberReplaced must be a function.');
  if (onReplaceFailed !== undefined && typeof onReplaceFailed !== 'function') throw new EnclaveError('invalid_options', 'onReplaceFailed must be a function.');
  // One copy for every member, now: what a member is started with cannot change between members.
  const enclaveOptions: EnclaveOptions = { ...enclave };
  let start: () => Promise<EnclaveHandle>;
  if (isolation === 'worker') {
    if (worker !== undefined && (typeof worker !== 'object' || worker === null)) throw new EnclaveError('invalid_options', 'The worker options must be an object.');
    const { deadlineMs, startDeadlineMs, resourceLimits } = worker ?? {};
    const memberOptions = {
      ...enclaveOptions,
      ...(deadlineMs === undefined ? {} : { deadlineMs }),
      ...(startDeadlineMs === undefined ? {} : { startDeadlineMs }),
      ...(resourceLimits === undefined ? {} : { resourceLimits }),
      maxQueue: MEMBER_MAX_QUEUE,
    };
    start = () => createWorkerEnclave(mod, memberOptions);
  } else if (isolation === 'in-process') {
    if (size !== 1) {
      throw new EnclaveError('invalid_options', "instances must be 1 with isolation: 'in-process': one thread runs one call at a time; use 'worker' for more.");
    }
    if (worker !== undefined) throw new EnclaveError('invalid_options', "Worker options need isolation: 'worker'.");
    // create() is synchronous; as a promise, its throw is a rejection like a worker's.
    start = async () => mod.create(enclaveOptions);
  } else {
    throw new EnclaveError('invalid_options', "isolation must be 'worker' or 'in-process'.");
  }
  return { size, start, onMemberReplaced, onReplaceFailed };
}

/** Anything a start rejected with, as an EnclaveError (the runtime rejects with one; this is the guard). */
function asEnclaveError(err: unknown): EnclaveError {
  return err instanceof EnclaveError ? err : new EnclaveError('internal', 'An enclave instance failed to start.', { cause: err });
}

/**
 * N instances of one enclave module, with the host's in-flight accounting and call affinity.
 * @example
 * const mod = await compileEnclave('signer.wasm');
 * const pool = await InstancePool.start(mod, { size: 2, isolation: 'worker', enclave: {} });
 * const member = pool.acquire();
 * if (member !== undefined) {
 *   try { await member.handle.call('sign', { msg }); } finally { pool.release(member); }
 * }
 * await pool.close();
 */
export class InstancePool {
  readonly size: number;
  readonly #slots: Slot[];
  /** The current member of each slot, in index order (what `members` returns). */
  readonly #members: PoolMember[];
  readonly #settled: Settled;
  #closing: Promise<void> | undefined;
  /** Replacements starting or waiting to retry: close() waits for them and stops what they started. */
  readonly #replacements = new Set<Promise<void>>();
  /** Retry delays in progress, to cut short on close. */
  readonly #retryTimers = new Map<ReturnType<typeof setTimeout>, () => void>();

  private constructor(settled: Settled, handles: readonly EnclaveHandle[]) {
    this.#settled = settled;
    this.size = settled.size;
    this.#members = handles.map((handle, index) => ({ index, handle, inFlight: 0 }));
    this.#slots = this.#members.map((member) => ({ member, replacing: false }));
  }

  /**
   * Starts `size` members from one compiled module, all at once. When one fails to start, the
   * others are closed (once they have started) and its error is thrown: a pool is whole or absent.
   * @throws {EnclaveError} `invalid_options` (size, isolation, a worker option in-process, and what
   *   the runtime refuses in the enclave options), and the start codes of `createWorkerEnclave` /
   *   `EnclaveModule.create` (`capability_denied`, `memory_limit`, `trap`, `timeout`, ...) of the
   *   first member, by index, that failed.
   * @example
   * const pool = await InstancePool.start(mod, { size: 4, isolation: 'worker', enclave: { policy: { fuel: 1e8 } } });
   */
  static async start(mod: EnclaveModule, options: PoolOptions): Promise<InstancePool> {
    const settled = settle(mod, options);
    // Every start is under way before the first is awaited: the pool starts in about one worker's time.
    const starts: Promise<EnclaveHandle>[] = [];
    for (let i = 0; i < settled.size; i++) starts.push(settled.start());
    const outcomes = await Promise.allSettled(starts);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed !== undefined) {
      // After every start has settled, so no member is left running once this rejects.
      await Promise.all(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.close().catch(() => undefined) : undefined)));
      throw asEnclaveError(failed.reason);
    }
    return new InstancePool(settled, outcomes.map((o) => (o as PromiseFulfilledResult<EnclaveHandle>).value));
  }

  /** The current members, by index. A replaced member is a new object at the same index. */
  get members(): readonly PoolMember[] {
    return this.#members;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * The member index a key maps to (busy or not): for what must reach the key's instance whatever
   * its load, such as ending a session.
   * @throws {EnclaveError} `invalid_options` when `key` is not a string.
   * @example
   * await pool.members[pool.indexOf(key)]!.handle.endSession(session);
   */
  indexOf(key: string): number {
    return affinityIndex(key, this.size);
  }

  /**
   * A member to dispatch one call to, counted in flight until {@link release}. Without a key: an
   * idle member (the lowest index), else undefined. With a key: only the member the key maps to,
   * undefined while it is busy, so a session's calls are served by one instance, in order.
   * A member found closed is never returned; its replacement starts. After close: undefined.
   * @throws {EnclaveError} `invalid_options` when `affinity` is given and not a string.
   * @example
   * const member = pool.acquire(`${caller}\u0000${session}`) ?? queueIt();
   */
  acquire(affinity?: string): PoolMember | undefined {
    if (this.#closing !== undefined) return undefined;
    if (affinity !== undefined) return this.#take(this.#slots[affinityIndex(affinity, this.size)]!);
    for (const slot of this.#slots) {
      const member = this.#take(slot);
      if (member !== undefined) return member;
    }
    return undefined;
  }

  /**
   * The call dispatched to `member` has settled: it counts as idle again once nothing else is in
   * flight on it. A member whose handle was closed meanwhile (not by the pool) is replaced, in the
   * background, from the same module. Releasing a member that was replaced already, or after
   * close, does nothing.
   * @example
   * try { return await member.handle.call(op, args); } finally { pool.release(member); }
   */
  release(member: PoolMember): void {
    const slot = this.#slots[member?.index];
    if (slot === undefined || slot.member !== member) return;
    if (member.inFlight > 0) member.inFlight--;
    if (this.#closing === undefined && member.handle.closed) this.#replace(slot, 'closed');
  }

  /**
   * Members that can take a call now: not in flight, not closed, not being replaced.
   * @example
   * if (pool.idle() === 0) queue.push(caller, job);
   */
  idle(): number {
    if (this.#closing !== undefined) return 0;
    let n = 0;
    for (const slot of this.#slots) if (!slot.replacing && slot.member.inFlight === 0 && !slot.member.handle.closed) n++;
    return n;
  }

  /**
   * Resolves when every call accepted by every member so far has settled. Never rejects.
   * @example
   * await pool.drain(); // everything dispatched has answered, failed or timed out
   */
  async drain(): Promise<void> {
    await Promise.all(this.#members.map((m) => m.handle.drain()));
  }

  /**
   * Closes every member (calls in flight fail with `closed`) and stops any replacement under way.
   * Resolves when every worker has stopped. Idempotent: later calls return the same promise.
   * @example
   * await pool.close();
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const [timer, wake] of this.#retryTimers) {
      clearTimeout(timer);
      wake();
    }
    this.#retryTimers.clear();
    await Promise.all(this.#members.map((m) => m.handle.close().catch(() => undefined)));
    // A replacement that was starting closes what it started itself once it sees the pool closing.
    await Promise.all(this.#replacements);
  }

  /** The slot's member counted in flight, if it can take a call now. */
  #take(slot: Slot): PoolMember | undefined {
    const member = slot.member;
    if (slot.replacing || member.inFlight !== 0) return undefined;
    if (member.handle.closed) {
      this.#replace(slot, 'closed');
      return undefined;
    }
    member.inFlight = 1;
    return member;
  }

  #replace(slot: Slot, reason: string): void {
    if (slot.replacing || this.#closing !== undefined) return;
    slot.replacing = true;
    const replacement = this.#startReplacement(slot, reason);
    this.#replacements.add(replacement);
    void replacement.finally(() => this.#replacements.delete(replacement));
  }

  async #startReplacement(slot: Slot, reason: string): Promise<void> {
    const index = slot.member.index;
    for (let attempt = 0; ; attempt++) {
      let handle: EnclaveHandle;
      try {
        handle = await this.#settled.start();
      } catch (err) {
        if (this.#closing !== undefined) return;
        try {
          this.#settled.onReplaceFailed?.(index, asEnclaveError(err));
        } catch {
          // The host's handler only reports; the pool keeps trying either way.
        }
        // Jittered (half to all of the step): members replaced at once do not retry in step.
        const step = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(attempt, 16));
        await this.#delay(Math.round(step * (0.5 + Math.random() / 2)));
        if (this.#closing !== undefined) return;
        continue;
      }
      if (this.#closing !== undefined) {
        await handle.close().catch(() => undefined);
        return;
      }
      const old = slot.member;
      const member: PoolMember = { index, handle, inFlight: 0 };
      slot.member = member;
      this.#members[index] = member;
      slot.replacing = false;
      // Closed already (that is why it is replaced); close() again waits for its worker to stop.
      void old.handle.close().catch(() => undefined);
      try {
        this.#settled.onMemberReplaced?.(index, reason);
      } catch {
        // A throwing handler must not undo the replacement, nor surface from a background task.
      }
      return;
    }
  }

  /** Waits `ms` (or until close), without keeping the process alive. */
  #delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#retryTimers.delete(timer);
        resolve();
      }, ms);
      timer.unref();
      this.#retryTimers.set(timer, resolve);
    });
  }
}
