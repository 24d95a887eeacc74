/**
 * The live enclave and its call path. Both call routes, `call` (in-process: encode, enter, decode)
 * and `[CALL_RAW]` (the worker's: bytes in, bytes out, decoded on the host thread), go through
 * one path: {@link Enclave.#invoke} admits the call and {@link Enclave.#enter} runs it; the end of
 * every call is {@link Enclave.#ended}.
 *
 * ```
 *  call(op, args) ─► encode ─┐                                      ┌─► decode ─► value
 *                            ├─► #invoke: closed? size? instance,   │
 *  [CALL_RAW](op, bytes) ────┘   requires, #enter: copy in,         └─► reply bytes (worker)
 *                                enclave_call, bounds-check reply
 *  a trap, fuel_exhausted, a bad reply: the instance is discarded; the next call instantiates
 * ```
 */
import type { ModuleIdentity } from '../attest/index.js';
import { DISCARDING_CODES, EnclaveError } from '../core/index.js';
import { ABORT_IMPORT, IMPORT_MODULE, MEMORY_EXPORT, SUPPORTED_ABI_VERSIONS } from './abi.js';
import { reportContextOf, issueEvidence } from './capabilities/attest.js';
import { importsFor } from './capabilities/index.js';
import { componentImports } from './capabilities/_component.js';
import type { Contract, Limits } from './contract.js';
import { FUEL_EXPORT, GLOBAL_EXPORT_PREFIX, START_EXPORT } from './fuel.js';
import type { EnclaveHandle } from './handle.js';
import { callDiscarded, callEnded, callStarted, diagnosticsSource, discardsWatched, type DiagnosticsSource } from './diagnostics.js';
import { compileOps, createPackr, decodeReply, encodeCall, NOT_ENVELOPE, opFor, type Encoded, type OpCall, type RequestEncoder } from './marshal.js';
import { readCallOptions, type CallOptions, type EnclaveConfig } from './options.js';
import type { EnclaveKeyJwk, ReportContext } from './platform.js';
import { InstancePool } from './state.js';
import { CallLog, checkRequires, copyInto, deliverLogs, EnclaveAbort, importContext, isStackOverflow, refreshViews, toEnclaveError, type Live } from './_live.js';
import { componentFuelLeft, componentFuelUsed, componentReply, instantiateComponent, startCounters, type ComponentLive, type ComponentProgram, type ReplyBuffer } from './_component-live.js';

/** @internal `Enclave[CALL_RAW](op, request, settle, session, stats)`: one call from request bytes to reply bytes. */
export const CALL_RAW: unique symbol = Symbol('enclave.callRaw');

const MAX_ABORT_MESSAGE = 256;
/** Where no reply lies: #replyIn between calls once its memory is dropped. */
const NO_REPLY = new Uint8Array(0);

/**
 * A running enclave: one linear memory at a time, calls strictly sequential. Created by
 * `loadEnclave` or `EnclaveModule.create`.
 */
export class Enclave implements EnclaveHandle {
  readonly contract: Contract;
  /** SHA-256 of the module bytes without the signature section, hex. */
  readonly measurement: string;
  /** Measurement, svn and, when a trust policy admitted the module, its signer. */
  readonly identity: ModuleIdentity;
  /** The limits in force: the contract's, capped by the host policy. */
  readonly limits: Limits;
  /** A core module, or a component's glue and core modules (runtime/_component-live.ts). */
  readonly #module: WebAssembly.Module | ComponentProgram;
  readonly #config: EnclaveConfig;
  readonly #packr: RequestEncoder;
  readonly #ops: ReadonlyMap<string, OpCall>;
  #live: Live | undefined;
  #closed = false;
  /** What the enclave logged during the current call, handed to `onLog` after it. */
  readonly #log = new CallLog();
  /**
   * Where {@link Enclave.#enter} leaves the checked reply span: in `#replyIn`, the instance's
   * memory (a core module) or `#componentReply` (a component's envelope, made on the host).
   */
  #replyIn: Uint8Array = NO_REPLY;
  #replyStart = 0;
  #replyEnd = 0;
  /** A component's reply envelopes (runtime/_component-live.ts), grown to the largest. */
  readonly #componentReply: ReplyBuffer = { bytes: new Uint8Array(0) };
  /** The last call made through CALL_RAW, until the host settles it (three fields: no allocation per call). */
  #rawLive: Live | undefined;
  #rawOp = '';
  #rawSession: string | undefined;
  /** Instances for `per-session` and `per-call`; `persistent` uses #live alone (the hot path). */
  readonly #pool: InstancePool<Live> | undefined;
  /** Fuel per call (and for the start function); also what `{ stats }` is measured from. */
  readonly #budget: number;
  #lastFuel = 0;
  /** Calls that entered the enclave (reached {@link Enclave.#enter}): tells a call whether `#lastFuel` is its own. */
  #entries = 0;
  /** What this enclave's diagnostics events say about it (runtime/diagnostics.ts). */
  readonly #source: DiagnosticsSource;

  /** @internal Use `loadEnclave` or `EnclaveModule.create`. */
  constructor(module: WebAssembly.Module | ComponentProgram, contract: Contract, identity: ModuleIdentity, config: EnclaveConfig) {
    this.#module = module;
    this.contract = contract;
    this.identity = identity;
    this.measurement = identity.measurement;
    this.#config = config;
    this.limits = config.limits;
    this.#packr = createPackr();
    this.#ops = compileOps(contract);
    this.#budget = config.limits.fuel;
    this.#source = diagnosticsSource(this, 'in-process', identity.measurement, contract.ops);
    if (config.state === 'persistent') {
      this.#live = this.#instantiate();
    } else {
      const snapshots = config.fuel?.snapshotSafe === true;
      this.#pool = new InstancePool<Live>(config.state, config.maxSessions, () => this.#instantiate(), snapshots);
      // Instantiated once now, so a broken module fails here, as in persistent mode.
      if (config.state === 'per-call') this.#pool.acquire(undefined);
      else this.#instantiate();
    }
  }

  /**
   * Calls an operation of the enclave and resolves with its `ok` value.
   * @throws {EnclaveError} with a stable `code` (docs/ABI.md §4.2, §4.3); the enclave's own codes
   *   (`bad_request`, `denied`, `state`, ...) carry its message in `detail`.
   * @example
   * const value = await counter.call('incr', { by: 2 });
   */
  async call<T = unknown>(op: string, args?: unknown, options?: CallOptions): Promise<T> {
    // Observed (runtime/diagnostics.ts) only when someone listens: otherwise one check, nothing built.
    const observation = callStarted(this.#source, op);
    if (observation === undefined) {
      if (!discardsWatched()) return this.#callNow(op, args, options) as T;
      try {
        return this.#callNow(op, args, options) as T;
      } catch (err) {
        callDiscarded(this.#source, err);
        throw err;
      }
    }
    const entries = this.#entries;
    let value: unknown;
    try {
      value = this.#callNow(op, args, options);
    } catch (err) {
      callEnded(observation, err, this.#entries === entries ? 0 : this.#lastFuel);
      throw err;
    }
    callEnded(observation, undefined, this.#entries === entries ? 0 : this.#lastFuel);
    return value as T;
  }

  /** `call` itself: its options read, the call run, and its end settled (stats, logs). */
  #callNow(op: string, args: unknown, options: CallOptions | undefined): unknown {
    const { session, stats } = readCallOptions(options);
    const entries = this.#entries;
    try {
      return this.#call(op, args, session);
    } finally {
      this.#ended(stats, entries);
    }
  }

  /**
   * `per-session`: drops a session's instance and its memory now, rather than waiting for it to
   * be evicted. Resolves with whether the session existed.
   * @example
   * await enclave.endSession('tenant-7');
   */
  endSession(session: string): Promise<boolean> {
    // The last reply's view may be of that session's memory: let it go now too.
    this.#replyIn = NO_REPLY;
    return Promise.resolve(this.#pool?.endSession(session) ?? false);
  }

  /**
   * Signed evidence about this enclave for a relying party, bound to its nonce (docs/ATTESTATION.md).
   * @param nonce - 8..64 bytes chosen by the relying party; evidence is never issued without one.
   * @param options.enclaveKey - a public key held inside the enclave, carried in `cnf`.
   * @returns a compact JWT (EdDSA) from the configured attestation provider.
   * @throws {EnclaveError} (as a rejection) `invalid_options` without an attestation provider, `closed`.
   * @throws {AttestationError} (as a rejection) `invalid_nonce`, `invalid_evidence_request`, `platform_unavailable`.
   * @example
   * const token = await enclave.attest(nonceFromRelyingParty);
   */
  attest(nonce: Uint8Array, options?: { enclaveKey?: EnclaveKeyJwk }): Promise<string> {
    return issueEvidence(this.#closed, this.#config.attestation, () => this.#reportContext(), nonce, options);
  }

  #reportContext(): ReportContext {
    // A component's evidence says how many core modules (fuel counters) it has (`enclave.component`).
    const program = this.#module;
    return reportContextOf(this.identity, this.#config, program instanceof WebAssembly.Module ? undefined : program.modules.length);
  }

  /** Resolves at once: in-process, every call accepted has settled by the time it returns. */
  drain(): Promise<void> {
    return Promise.resolve();
  }

  /** Drops the instance and its memory; later calls fail with `closed`. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#live = undefined;
    this.#replyIn = NO_REPLY;
    this.#componentReply.bytes = NO_REPLY;
    this.#pool?.clear();
    return Promise.resolve();
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #call(op: string, args: unknown, session: string | undefined): unknown {
    if (this.#closed) throw new EnclaveError('closed');
    const spec = opFor(this.#ops, this.contract.name, op);
    const request = encodeCall(this.#packr, op, spec.frame, spec.check, args, this.#config.limits);
    // (A getter in the args may have closed the enclave: #invoke checks again, so no instance is made after close.)
    const live = this.#invoke(op, spec, request, session);
    // Checked (structure, map keys, item count) then decoded straight from enclave memory: strings
    // become JS strings and bins are copied, so the caller never holds a view of enclave memory.
    let value: unknown;
    try {
      value = decodeReply(this.#replyIn, this.#replyStart, this.#replyEnd, this.#config.limits);
      if (value === NOT_ENVELOPE) throw new EnclaveError('bad_reply', 'The enclave reply is neither {ok} nor {err}.');
    } catch (err) {
      throw this.#fail(err, live);
    }
    live.done.add(op);
    // per-call: reset after the op is recorded, so the reset forgets it too.
    this.#pool?.release(live);
    return value;
  }

  /**
   * @internal The worker's entry (runtime/_worker-main.ts): one call from request bytes the host
   * already checked, to the reply bytes (bounds and byte limit checked) as a view of enclave memory,
   * valid until the next call. The host checks their msgpack and opens the envelope (`decodeReply`,
   * on the host thread, where the objects are built), so it tells the next call what it found in
   * `settle`: 1, the previous op succeeded (it counts for `requires`); 2, the reply was not an
   * envelope (the instance is discarded, as in-process). Runs the same path as `call` (#invoke).
   * `stats.fuel` gets this call's fuel, as `call`'s `stats` option.
   * @throws {EnclaveError} as {@link Enclave.call}.
   */
  [CALL_RAW](op: string, request: Encoded, settle: number, session?: string, stats?: { fuel: number }): Uint8Array {
    const entries = this.#entries;
    if (stats !== undefined) stats.fuel = 0;
    const previous = this.#rawLive;
    this.#rawLive = undefined;
    const pool = this.#pool;
    if (previous !== undefined && (pool === undefined ? previous === this.#live : pool.holds(previous, this.#rawSession))) {
      if (settle === 1) previous.done.add(this.#rawOp);
      else if (settle === 2) this.#discard(previous);
    }
    try {
      if (this.#closed) throw new EnclaveError('closed');
      const live = this.#invoke(op, opFor(this.#ops, this.contract.name, op), request, session);
      if (pool === undefined || this.#config.state !== 'per-call') {
        this.#rawLive = live;
        this.#rawOp = op;
        this.#rawSession = session;
        return this.#replyIn.subarray(this.#replyStart, this.#replyEnd);
      }
      // per-call: the reset below overwrites enclave memory, so the reply is copied out first, and
      // there is nothing to settle: the reset forgets which ops succeeded and undoes a bad reply.
      const reply = this.#replyIn.slice(this.#replyStart, this.#replyEnd);
      pool.release(live);
      return reply;
    } finally {
      this.#ended(stats, entries);
    }
  }

  /**
   * The one way into the enclave, for both routes: refuses a closed enclave and an oversized
   * request, takes the instance for the session, checks `requires`, and runs the call
   * ({@link Enclave.#enter}). A failure settles the instance (#fail). Returns the instance, whose
   * `u8` holds the checked reply span #replyStart..#replyEnd.
   */
  #invoke(op: string, spec: OpCall, request: Encoded, session: string | undefined): Live {
    if (this.#closed) throw new EnclaveError('closed');
    const size = request.end - request.start;
    const limit = this.#config.limits.requestBytes;
    if (size > limit) throw new EnclaveError('too_large', `The request is ${size} bytes; the limit is ${limit}.`);
    const live = this.#acquire(session);
    checkRequires(op, spec, live);
    try {
      this.#enter(live, request);
    } catch (err) {
      throw this.#fail(err, live);
    }
    return live;
  }

  /**
   * The end of every call, both routes, whatever its outcome: its fuel into `stats` (when it
   * entered the enclave), and its log lines handed to `onLog` after it.
   */
  #ended(stats: { fuel: number } | undefined, entries: number): void {
    if (stats !== undefined && this.#entries !== entries) {
      try {
        stats.fuel = this.#lastFuel;
      } catch {
        // A setter of the caller's that throws once the call has run: the call's outcome stands.
      }
    }
    const onLog = this.#config.onLog;
    const lines = this.#log.take();
    // After the call, never inside it: user code must not run while the enclave is entered.
    if (lines !== undefined && onLog !== undefined) queueMicrotask(() => deliverLogs(onLog, lines));
  }

  /** The instance for a call: the persistent one, or the pool's for this session (or call). */
  #acquire(session: string | undefined): Live {
    const pool = this.#pool;
    if (pool !== undefined) return pool.acquire(session);
    if (session !== undefined) throw new EnclaveError('invalid_options', "A session id needs state: 'per-session'.");
    return this.#live ?? (this.#live = this.#instantiate());
  }

  /** Settles a failed call: a code that breaks trust drops the instance, others hand it back. */
  #fail(err: unknown, live: Live): EnclaveError {
    const error = this.#toError(err, live);
    if (DISCARDING_CODES.has(error.code)) this.#discard(live);
    else this.#pool?.release(live);
    return error;
  }

  #discard(live: Live): void {
    if (this.#pool === undefined) this.#live = undefined;
    else this.#pool.discard(live);
  }

  /**
   * Maps what a call threw to a code, after settling its fuel: an instance whose counter is below
   * zero stopped because its budget ran out, whatever the engine reported (an `unreachable` trap).
   */
  #toError(err: unknown, live: Live): EnclaveError {
    const fuel = live.fuel;
    if (fuel !== undefined) {
      // A component: every core instance's counter (runtime/_component-live.ts).
      const left = live.component === undefined ? (fuel.value as number) : componentFuelLeft(live.component, this.#budget);
      if (left < 0) {
        this.#lastFuel = this.#budget;
        return new EnclaveError('fuel_exhausted', `The call used more than its ${this.#budget} units of fuel.`, { cause: err });
      }
      const error = toEnclaveError(err);
      // A trap stops the enclave mid-function, where its counter lives in a local: what it spent
      // since its last call or return is lost (docs/LIMITS.md, "Fuel"). So a call that trapped is
      // charged its whole budget: deterministic, and never less than it ran.
      this.#lastFuel = error.code === 'trap' || error.code === 'stack_overflow' ? this.#budget : this.#budget - left;
      return error;
    }
    return toEnclaveError(err);
  }

  /**
   * Copy in, call, bounds-check the reply and its byte size; leaves the reply span in
   * #replyStart/#replyEnd and `live.u8` a view of the memory it lies in. Its msgpack (structure,
   * keys, items) is checked by `decodeReply`, on the host thread in both modes, before anything is
   * built. Every number read from the enclave is hostile. Runs with no user code in between, so
   * enclave memory cannot change while it is read.
   */
  #enter(live: Live, request: Encoded): void {
    this.#entries++;
    const len = request.end - request.start;
    // One budget covers enclave_alloc and enclave_call: one global set now, one get after.
    const fuel = live.fuel;
    if (fuel !== undefined) fuel.value = this.#budget;
    const component = live.component;
    if (component !== undefined) startCounters(component, this.#budget);
    // A new call from here: enclave_alloc runs enclave code too, and must not be served the
    // previous call's cached `report` token (another tenant's, with per-call snapshots).
    live.reportsValid = false;
    live.callSerial++;
    const ptr = live.alloc(len) >>> 0;
    if (ptr === 0) throw new EnclaveError('limit', 'The enclave could not allocate the request buffer.');
    let u8 = live.u8;
    // Growing a (non-shared) memory detaches its old buffer, so a view of length 0 means "grown".
    if (u8.length === 0) u8 = refreshViews(live);
    if (ptr + len > u8.length) {
      throw new EnclaveError('bad_reply', 'The enclave allocated a request buffer outside its memory.');
    }
    copyInto(u8, ptr, request.buffer, request.start, request.end);

    const d = live.call(ptr, len) >>> 0;
    if (component !== undefined) return this.#enterComponent(live, component, d);
    if (fuel !== undefined) {
      const left = fuel.value as number;
      this.#lastFuel = this.#budget - left;
      if (left < 0) throw new EnclaveError('fuel_exhausted', `The call used more than its ${this.#budget} units of fuel.`);
    }
    if (u8.length === 0) u8 = refreshViews(live);
    if (d === 0) throw new EnclaveError('internal', 'The enclave produced no reply.');
    if (d + 8 > u8.length) throw new EnclaveError('bad_reply', 'The reply descriptor lies outside enclave memory.');
    const replyPtr = live.view.getUint32(d, true);
    const replyLen = live.view.getUint32(d + 4, true);
    // The length is checked against the limit first: a reply both over the limit and outside
    // memory is too_large, and nothing is read (docs/ABI.md §4.3).
    const limit = this.#config.limits.replyBytes;
    if (replyLen > limit) throw new EnclaveError('too_large', `The reply is ${replyLen} bytes; the limit is ${limit}.`);
    const end = replyPtr + replyLen;
    if (end > u8.length) throw new EnclaveError('bad_reply', 'The reply lies outside enclave memory.');
    this.#replyIn = u8;
    this.#replyStart = replyPtr;
    this.#replyEnd = end;
  }

  /**
   * The end of {@link Enclave.#enter} for a component: its fuel summed over its core instances, its
   * result area read into a reply envelope on the host (runtime/_component-live.ts), post-return
   * run under the same budget.
   */
  #enterComponent(live: Live, component: ComponentLive, ret: number): void {
    const metered = live.fuel !== undefined;
    if (metered) this.#chargeComponent(component);
    const length = componentReply(live, component, ret, this.#config.limits.replyBytes, this.#componentReply);
    if (metered) this.#chargeComponent(component);
    this.#replyIn = this.#componentReply.bytes;
    this.#replyStart = 0;
    this.#replyEnd = length;
  }

  #chargeComponent(component: ComponentLive): void {
    const used = componentFuelUsed(component, this.#budget);
    this.#lastFuel = used < 0 ? this.#budget : used;
    if (used < 0) throw new EnclaveError('fuel_exhausted', `The call used more than its ${this.#budget} units of fuel.`);
  }

  #instantiate(): Live {
    let live: Live | undefined;
    let counter: WebAssembly.Global | undefined;
    const config = this.#config;
    const ctx = importContext({
      live: () => live,
      counter: () => counter,
      log: this.#log,
      listening: config.onLog !== undefined,
      identity: this.identity,
      platform: config.attestation,
      reportContext: () => this.#reportContext(),
    });
    const program = this.#module;
    if (!(program instanceof WebAssembly.Module)) {
      // A component: the same context, its capabilities in the WIT world's shape (decision 7).
      // A start function's imports charge its own core instance's counter (an import crossing is
      // host work: never free, even before the call path's counter exists).
      live = instantiateComponent(program, componentImports([...config.capabilities], ctx), this.#budget, (c) => {
        counter = c;
      });
      counter = live.fuel;
      return live;
    }
    const env: Record<string, (...args: never[]) => unknown> = {
      [ABORT_IMPORT.name]: (ptr: number, len: number) => {
        this.#log.push('error', `enclave aborted: ${ctx.readText(ptr, len, MAX_ABORT_MESSAGE)}`);
        throw new EnclaveAbort();
      },
      // The imports of the granted capabilities, each from its own module (runtime/capabilities/).
      ...importsFor(config.capabilities, ctx),
    };

    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(program, { [IMPORT_MODULE]: env });
    } catch (err) {
      throw new EnclaveError(isStackOverflow(err) ? 'stack_overflow' : 'trap', 'The enclave trapped while starting.', { cause: err });
    }
    const exports = instance.exports as Record<string, unknown>;
    const memory = exports[MEMORY_EXPORT] as WebAssembly.Memory;
    const metered = this.#config.fuel;
    const fuel = metered === undefined ? undefined : (exports[FUEL_EXPORT] as WebAssembly.Global);
    counter = fuel;
    const globals: WebAssembly.Global[] = [];
    for (let i = 0; i < (metered?.mutableGlobals ?? 0); i++) globals.push(exports[`${GLOBAL_EXPORT_PREFIX}${i}`] as WebAssembly.Global);
    let version: number;
    try {
      // The deferred start function (runtime/fuel.ts) and the version check share one start budget.
      if (fuel !== undefined) fuel.value = this.#budget;
      if (metered?.hasStart === true) (exports[START_EXPORT] as () => void)();
      version = (exports.enclave_abi_version as () => number)();
    } catch (err) {
      if (fuel !== undefined && (fuel.value as number) < 0) {
        throw new EnclaveError('fuel_exhausted', `The start function used more than its ${this.#budget} units of fuel.`, { cause: err });
      }
      throw toEnclaveError(err);
    }
    if (!SUPPORTED_ABI_VERSIONS.includes(version)) {
      throw new EnclaveError('unsupported_abi', `The module speaks ABI version ${version}; this runtime speaks ${SUPPORTED_ABI_VERSIONS.join(', ')}.`);
    }
    live = {
      memory,
      alloc: exports.enclave_alloc as Live['alloc'],
      call: exports.enclave_call as Live['call'],
      u8: new Uint8Array(memory.buffer),
      view: new DataView(memory.buffer),
      done: new Set(),
      reportsValid: false,
      callSerial: 0,
      fuel,
      globals,
      component: undefined,
    };
    return live;
  }

}
