/**
 * The host's queue in front of an enclave's pool: one FIFO per caller, served by deficit round
 * robin across the callers that have something queued, bounded in total and per caller, and in
 * the time an item may wait.
 *
 * ```
 *  push(caller, item, weight)          ring of callers with items (cursor ─► the one whose turn it is)
 *   full in total / for the caller?      ┌──────────────────────────────────────────┐
 *     → EnclaveError('overloaded')       ▼                                          │
 *   caller's FIFO ◄── item            [A: w=2, credit 1] ─► [B: w=1] ─► [C: w=1] ──┘
 *   global FIFO (push order) ◄── item   each turn serves up to `weight` head items of one caller
 *
 *  shift(accept)  the cursor's caller's head, or the next caller's whose head `accept`s
 *  sweep timer    at the oldest item's deadline: expired items leave (always callers' heads) → onExpire
 * ```
 *
 * Attack surface: the caller name is hostile text. It is only ever a `Map` key (`__proto__`,
 * `constructor` and a megabyte of text are names like any other), and a caller's entry exists only
 * while it has items queued, so names cost memory only within `maxQueued`. One caller flooding
 * fills at most its own `maxQueuedPerCaller` and gets at most its weight's share of the turns.
 *
 * Every operation is O(1), except `shift(accept)`, which asks `accept` about at most one head item
 * per caller (O(callers)), and `clear`, O(items).
 */
import { EnclaveError } from '../../core/index.js';

/** Bounds of a {@link FairQueue}. */
export interface FairQueueOptions {
  /** Items queued across every caller; one more is refused with `overloaded`. 0..2^20. */
  readonly maxQueued: number;
  /** Items queued for one caller; one more is refused with `overloaded`. 0..2^20. */
  readonly maxQueuedPerCaller: number;
  /** How long an item may wait, ms; past it, it is removed and handed to `onExpire`. 1..2^31-1. */
  readonly queueTimeoutMs: number;
  /** Monotonic clock, ms. Default `performance.now`. */
  readonly clock?: () => number;
}

/** Largest weight a caller may have: its turn serves at most this many items in a row. */
const MAX_QUEUE_WEIGHT = 100;
/** Largest `maxQueued` and `maxQueuedPerCaller`, as the runtime's own `maxQueue`. */
const MAX_BOUND = 1 << 20;
/** setTimeout's largest delay. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** One queued item: in its caller's FIFO (singly linked) and in the global push order (doubly linked). */
interface Entry<T> {
  readonly item: T;
  readonly caller: CallerQueue<T>;
  readonly deadline: number;
  /** Next of the same caller, younger. */
  nextOfCaller: Entry<T> | undefined;
  /** Neighbours in push order across every caller (the expiry sweep walks from the oldest). */
  older: Entry<T> | undefined;
  younger: Entry<T> | undefined;
}

/** A caller with items queued: its FIFO and its place in the round-robin ring. */
class CallerQueue<T> {
  /** Items this caller may still be served in its current turn. */
  credit: number;
  head: Entry<T> | undefined;
  tail: Entry<T> | undefined;
  count = 0;
  /** Ring neighbours (circular): alone, a caller is a ring of one. */
  next: CallerQueue<T> = this;
  prev: CallerQueue<T> = this;

  constructor(
    readonly name: string,
    public weight: number,
  ) {
    this.credit = weight;
  }
}

function bound(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new EnclaveError('invalid_options', `${name} must be an integer from ${min} to ${max}.`);
  }
  return value;
}

/**
 * Per-caller FIFO queues served fairly across callers (deficit round robin with unit cost: a
 * caller's turn serves up to its weight of items), bounded in total, per caller and in time.
 * @typeParam T - what is queued (the host queues its pending calls).
 * @example
 * const queue = new FairQueue<Job>({ maxQueued: 1024, maxQueuedPerCaller: 64, queueTimeoutMs: 5000 },
 *   (job) => job.reject(new EnclaveError('overloaded')));
 * queue.push('billing', job, 2);
 * const next = queue.shift((job) => pool.acquire(job.affinity) !== undefined);
 */
export class FairQueue<T> {
  readonly #maxQueued: number;
  readonly #maxPerCaller: number;
  readonly #timeoutMs: number;
  readonly #clock: () => number;
  readonly #onExpire: (item: T) => void;
  /** Callers with at least one item; a caller leaves the map with its last item. */
  readonly #callers = new Map<string, CallerQueue<T>>();
  /** The caller whose turn it is; undefined when nothing is queued. */
  #cursor: CallerQueue<T> | undefined;
  /** Oldest and youngest item across every caller. */
  #oldest: Entry<T> | undefined;
  #youngest: Entry<T> | undefined;
  #size = 0;
  /** The one expiry timer, due at (or before) the oldest item's deadline; undefined when empty. */
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * @param onExpire - called with each item that waited past `queueTimeoutMs`, after it was removed.
   * @throws {EnclaveError} `invalid_options` when a bound is not an integer in its range.
   * @example
   * const queue = new FairQueue<string>({ maxQueued: 8, maxQueuedPerCaller: 4, queueTimeoutMs: 1000 }, (item) => console.log('expired', item));
   */
  constructor(options: FairQueueOptions, onExpire: (item: T) => void) {
    if (typeof options !== 'object' || options === null) throw new EnclaveError('invalid_options', 'The queue options must be an object.');
    this.#maxQueued = bound(options.maxQueued, 'maxQueued', 0, MAX_BOUND);
    this.#maxPerCaller = bound(options.maxQueuedPerCaller, 'maxQueuedPerCaller', 0, MAX_BOUND);
    this.#timeoutMs = bound(options.queueTimeoutMs, 'queueTimeoutMs', 1, MAX_TIMEOUT_MS);
    if (options.clock !== undefined && typeof options.clock !== 'function') throw new EnclaveError('invalid_options', 'clock must be a function.');
    if (typeof onExpire !== 'function') throw new EnclaveError('invalid_options', 'onExpire must be a function.');
    this.#clock = options.clock ?? (() => performance.now());
    this.#onExpire = onExpire;
  }

  /** Items queued across every caller. */
  get size(): number {
    return this.#size;
  }

  /** Callers with at least one item queued (what the queue holds per-caller state for). */
  get callers(): number {
    return this.#callers.size;
  }

  /**
   * Items queued for one caller; 0 for a caller it knows nothing of.
   * @example
   * queue.sizeOf('billing'); // 3
   */
  sizeOf(caller: string): number {
    return this.#callers.get(caller)?.count ?? 0;
  }

  /**
   * Queues an item at the end of its caller's FIFO.
   * @param weight - the caller's share of turns relative to others, 1..100 (default 1): its turn
   *   serves up to `weight` items in a row. The latest push's weight is the caller's.
   * @throws {EnclaveError} `overloaded` when `maxQueued` items are queued, or `maxQueuedPerCaller`
   *   for this caller (the item is not queued); `invalid_options` for a caller that is not a string
   *   or a weight that is not an integer from 1 to 100.
   * @example
   * queue.push('billing', job);      // weight 1
   * queue.push('reports', job2, 3);  // served up to 3 in a row
   */
  push(caller: string, item: T, weight = 1): void {
    if (typeof caller !== 'string') throw new EnclaveError('invalid_options', 'The caller must be a string.');
    bound(weight, 'weight', 1, MAX_QUEUE_WEIGHT);
    if (this.#size >= this.#maxQueued) {
      throw new EnclaveError('overloaded', `${this.#maxQueued} calls are queued for this enclave already (maxQueued): retry later.`);
    }
    let queue = this.#callers.get(caller);
    if ((queue?.count ?? 0) >= this.#maxPerCaller) {
      throw new EnclaveError('overloaded', `This caller has ${this.#maxPerCaller} calls queued for this enclave already (maxQueuedPerCaller): retry later.`);
    }
    if (queue === undefined) {
      queue = this.#join(caller, weight);
    } else {
      queue.weight = weight;
    }
    const entry: Entry<T> = {
      item,
      caller: queue,
      deadline: this.#clock() + this.#timeoutMs,
      nextOfCaller: undefined,
      older: this.#youngest,
      younger: undefined,
    };
    if (queue.tail === undefined) queue.head = entry;
    else queue.tail.nextOfCaller = entry;
    queue.tail = entry;
    queue.count++;
    if (this.#youngest === undefined) this.#oldest = entry;
    else this.#youngest.younger = entry;
    this.#youngest = entry;
    this.#size++;
    // Due at the oldest item's deadline: set when the queue was empty (the new item is the oldest),
    // otherwise already due no later than this item's.
    if (this.#timer === undefined) this.#arm(this.#timeoutMs);
  }

  /**
   * Takes the next item: the head of the caller whose turn it is, or, when `accept` refuses that
   * head, the head of the next caller in the ring that it accepts. A refused caller keeps its turn
   * (it is asked first again next time), and never loses its items or their order. Only callers'
   * head items are asked: within a caller, items leave in the order they came.
   * @param accept - whether an item can be served now (for example: its instance is free).
   * @returns the item, or undefined when nothing is queued or `accept` refused every head.
   * @throws whatever `accept` throws (nothing is removed then).
   * @example
   * let job;
   * while ((job = queue.shift()) !== undefined) dispatch(job);
   */
  shift(accept?: (item: T) => boolean): T | undefined {
    const start = this.#cursor;
    if (start === undefined) return undefined;
    let queue = start;
    do {
      const head = queue.head!;
      if (accept === undefined || accept(head.item)) {
        if (queue === start) {
          queue.credit--;
          this.#take(head);
          return head.item;
        }
        // Served out of turn (the callers before it refused): the turn stays where it was, so a
        // caller whose head waits for one member (its session's) is asked first again when that
        // member frees. Moving the turn here let other callers take it for ever, each time their
        // member freed first. Out of turn, a caller spends its own credit and, once spent, goes
        // to the ring's end: the callers served while the turn waits share it by weight.
        if (queue.credit <= 0 || queue.credit > queue.weight) queue.credit = queue.weight;
        queue.credit--;
        this.#take(head);
        if (queue.count > 0 && queue.credit <= 0) this.#toEnd(queue);
        return head.item;
      }
      queue = queue.next;
    } while (queue !== start);
    return undefined;
  }

  /**
   * Empties the queue (when the enclave stops) and hands every item to `reject`, oldest first. The
   * queue is empty before the first `reject` runs, so `reject` may push again.
   * @throws whatever `reject` throws, after the queue is empty (the remaining items are not handed over then).
   * @example
   * queue.clear((job) => job.reject(new EnclaveError('unavailable')));
   */
  clear(reject: (item: T) => void): void {
    let entry = this.#oldest;
    this.#callers.clear();
    this.#cursor = undefined;
    this.#oldest = this.#youngest = undefined;
    this.#size = 0;
    this.#disarm();
    for (; entry !== undefined; entry = entry.younger) reject(entry.item);
  }

  /** A caller's first item: the caller joins the ring at its end (just before the cursor). */
  #join(name: string, weight: number): CallerQueue<T> {
    const queue = new CallerQueue<T>(name, weight);
    const cursor = this.#cursor;
    if (cursor === undefined) {
      this.#cursor = queue;
    } else {
      queue.next = cursor;
      queue.prev = cursor.prev;
      cursor.prev.next = queue;
      cursor.prev = queue;
    }
    this.#callers.set(name, queue);
    return queue;
  }

  /**
   * Removes an item that is its caller's head (served, or expired: the oldest item overall is
   * always its caller's oldest, as both orders are push order) and keeps the turn order: a caller
   * whose turn is used up, or who has nothing left, hands the turn on.
   */
  #take(entry: Entry<T>): void {
    const queue = entry.caller;
    queue.head = entry.nextOfCaller;
    if (queue.head === undefined) queue.tail = undefined;
    queue.count--;
    if (entry.older === undefined) this.#oldest = entry.younger;
    else entry.older.younger = entry.younger;
    if (entry.younger === undefined) this.#youngest = entry.older;
    else entry.younger.older = entry.older;
    this.#size--;
    if (queue.count === 0) {
      // Nothing queued: the caller holds no memory here any more.
      this.#callers.delete(queue.name);
      if (queue.next === queue) {
        // The timer stays: due within queueTimeoutMs, it finds nothing and is not set again. Clearing
        // it here and setting a new one on the next push cost a timer per burst (~300 ns a push when
        // the queue keeps emptying).
        this.#cursor = undefined;
        return;
      }
      queue.prev.next = queue.next;
      queue.next.prev = queue.prev;
      if (this.#cursor === queue) this.#advance(queue.next);
    } else if (this.#cursor === queue && queue.credit <= 0) {
      this.#advance(queue.next);
    }
  }

  /** Moves a caller (not the cursor's) to the ring's end, just before the cursor, with a fresh turn's credit. */
  #toEnd(queue: CallerQueue<T>): void {
    const cursor = this.#cursor!;
    queue.credit = queue.weight;
    if (cursor.prev === queue) return;
    queue.prev.next = queue.next;
    queue.next.prev = queue.prev;
    queue.next = cursor;
    queue.prev = cursor.prev;
    cursor.prev.next = queue;
    cursor.prev = queue;
  }

  #advance(to: CallerQueue<T>): void {
    this.#cursor = to;
    to.credit = to.weight;
  }

  #arm(delayMs: number): void {
    this.#timer = setTimeout(this.#sweep, Math.min(MAX_TIMEOUT_MS, Math.max(1, Math.ceil(delayMs))));
    // A queued item never keeps the process alive: what it waits for (a call in flight) does.
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The oldest item's deadline (or an earlier one: items served since do not move the timer): every
   * item past its deadline leaves, then the timer is set for the new oldest. One timer for the whole
   * queue, not one per item: a push costs no timer, and the sweep wakes at most about once per
   * `queueTimeoutMs` while items are served in time (once more after the queue empties).
   */
  readonly #sweep = (): void => {
    this.#timer = undefined;
    const now = this.#clock();
    const expired: T[] = [];
    let oldest = this.#oldest;
    while (oldest !== undefined && oldest.deadline <= now) {
      this.#take(oldest);
      expired.push(oldest.item);
      oldest = this.#oldest;
    }
    if (oldest !== undefined && this.#timer === undefined) this.#arm(oldest.deadline - now);
    // After the queue is consistent: the handler may push or shift. A handler that throws must not
    // keep the other expired items from theirs, nor surface as an uncaught exception from a timer.
    for (const item of expired) {
      try {
        this.#onExpire(item);
      } catch {
        // The host's handler rejects a promise; nothing here can act on its failure.
      }
    }
  };
}
