/**
 * State policies: which instance (and so which linear memory) serves a call (docs/LIMITS.md,
 * "State and tenants").
 *
 * ```
 *  persistent   one instance for every call; state survives between calls (the default)
 *  per-session  one instance per session id, made on first use; the least recently used idle
 *               session is dropped when more than maxSessions are live
 *  per-call     a pristine instance for every call: the instance is reset after each call, by
 *               copying back a snapshot of memory and mutable globals taken right after start,
 *               or, when a snapshot cannot restore it, by dropping it for a fresh one
 * ```
 *
 * One tenant's memory never reaches another's: sessions never share an instance, and in
 * per-call mode nothing written by one call survives to the next.
 */
import { EnclaveError } from '../core/index.js';

/** How an enclave keeps state between calls. */
export type StatePolicy = 'persistent' | 'per-session' | 'per-call';
/** The policies, in the order the docs list them. */
export const STATE_POLICIES: readonly StatePolicy[] = ['persistent', 'per-session', 'per-call'];
/** Live sessions kept per enclave by default in `per-session` mode. */
export const DEFAULT_MAX_SESSIONS = 64;
/**
 * Largest memory restored from a snapshot. Copying memory costs about 35 µs per MiB, a fresh
 * instance of a small module about 150 µs (bench/limits.ts): past 4 MiB a fresh instance is cheaper.
 */
export const SNAPSHOT_MAX_BYTES = 4 * 1024 * 1024;
/** Longest session id accepted, in UTF-16 code units. */
export const MAX_SESSION_ID = 256;

/**
 * True for a usable session id: a string of 1..{@link MAX_SESSION_ID} UTF-16 units with no lone
 * surrogate. Worker mode carries the id to its worker as UTF-8, where every lone surrogate becomes
 * U+FFFD: two distinct ids would reach the same instance there, one tenant's memory another's.
 */
export function isSessionId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= MAX_SESSION_ID &&
    (value as string & { isWellFormed(): boolean }).isWellFormed()
  );
}

/**
 * What the pool needs of an instance.
 * @internal Not in the package's declarations: it names `WebAssembly` types, which a consumer
 * compiling without the DOM lib (`"lib": ["ES2022"]`) does not have (runtime/_webassembly.d.ts is ours only).
 */
export interface PoolInstance {
  readonly memory: WebAssembly.Memory;
  /** The module's mutable globals, exported by the instrumenter, in declaration order. */
  readonly globals: readonly WebAssembly.Global[];
  /** Ops that succeeded on this instance (for `requires`); cleared on reset. */
  readonly done: Set<string>;
}

/** Memory and mutable globals of a freshly started instance. */
interface Snapshot {
  readonly memory: Uint8Array;
  readonly globals: readonly unknown[];
}

/**
 * Hands out instances by policy. For `persistent` the enclave keeps its single instance itself
 * (the hot path); this pool serves the other two.
 * @internal
 */
export class InstancePool<L extends PoolInstance> {
  readonly #policy: 'per-session' | 'per-call';
  readonly #maxSessions: number;
  readonly #create: () => L;
  #snapshots: boolean;
  readonly #sessions = new Map<string, L>();
  #single: L | undefined;
  #snapshot: Snapshot | undefined;

  /**
   * @param snapshots whether a per-call instance may be reset from a snapshot (the module's whole
   *   mutable state is its memory and exported globals) instead of being re-instantiated.
   */
  constructor(policy: 'per-session' | 'per-call', maxSessions: number, create: () => L, snapshots: boolean) {
    this.#policy = policy;
    this.#maxSessions = maxSessions;
    this.#create = create;
    this.#snapshots = snapshots && policy === 'per-call';
  }

  /** The instance for a call. `session` is required in per-session mode and refused otherwise. */
  acquire(session: string | undefined): L {
    if (this.#policy === 'per-call') {
      if (session !== undefined) throw new EnclaveError('invalid_options', "A session id needs state: 'per-session'.");
      return this.#single ?? (this.#single = this.#fresh());
    }
    if (!isSessionId(session)) {
      throw new EnclaveError(
        'invalid_options',
        `state: 'per-session' needs { session }, a well-formed string of 1..${MAX_SESSION_ID} characters, on every call.`,
      );
    }
    const sessions = this.#sessions;
    let live = sessions.get(session);
    if (live !== undefined) {
      // Move to the back: the map's insertion order is the LRU order.
      sessions.delete(session);
      sessions.set(session, live);
      return live;
    }
    live = this.#create();
    sessions.set(session, live);
    if (sessions.size > this.#maxSessions) sessions.delete(sessions.keys().next().value!);
    return live;
  }

  /** After every call that reached the instance: per-call mode resets it. */
  release(live: L): void {
    if (this.#policy !== 'per-call' || this.#single !== live) return;
    if (!this.#restore(live)) this.#single = undefined;
  }

  /** Drops an instance that can no longer be trusted (after a trap, fuel exhaustion, bad reply). */
  discard(live: L): void {
    if (this.#single === live) {
      this.#single = undefined;
      return;
    }
    for (const [id, l] of this.#sessions) {
      if (l === live) {
        this.#sessions.delete(id);
        return;
      }
    }
  }

  /** Forgets one session's instance, if any. True when there was one. */
  endSession(session: string): boolean {
    return this.#sessions.delete(session);
  }

  /**
   * True when `live` is still the instance the pool would hand out for `session` (worker settle
   * logic): one lookup, whatever the number of sessions.
   */
  holds(live: L, session: string | undefined): boolean {
    return session === undefined ? this.#single === live : this.#sessions.get(session) === live;
  }

  clear(): void {
    this.#sessions.clear();
    this.#single = undefined;
  }

  #fresh(): L {
    const live = this.#create();
    if (this.#snapshots && this.#snapshot === undefined) {
      if (live.memory.buffer.byteLength > SNAPSHOT_MAX_BYTES) {
        this.#snapshots = false;
        return live;
      }
      this.#snapshot = {
        memory: new Uint8Array(live.memory.buffer).slice(),
        globals: live.globals.map((g) => g.value as unknown),
      };
    }
    return live;
  }

  /** Copies the snapshot back; false when it cannot (no snapshot, or the memory grew). */
  #restore(live: L): boolean {
    const snap = this.#snapshot;
    if (snap === undefined) return false;
    const buffer = live.memory.buffer;
    // Memory cannot shrink: a grown instance is dropped for a fresh one.
    if (buffer.byteLength !== snap.memory.length) return false;
    new Uint8Array(buffer).set(snap.memory);
    const globals = live.globals;
    for (let i = 0; i < globals.length; i++) globals[i]!.value = snap.globals[i];
    live.done.clear();
    return true;
  }
}
