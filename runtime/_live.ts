/**
 * One live instance and the small pieces of the call path that need no enclave state: the
 * exports looked up once, views over its memory, and how anything thrown maps to a code.
 * Used by runtime/instance.ts only.
 */
import type { ModuleIdentity } from '../attest/index.js';
import { AttestationError, EnclaveError } from '../core/index.js';
import type { ImportContext } from './capabilities/index.js';
import type { OpCall } from './marshal.js';
import type { LogLevel } from './options.js';
import type { EnclavePlatform, ReportContext } from './platform.js';

/** Log lines kept per call; the rest are counted and reported as one line (log flooding). */
const MAX_LOG_LINES = 256;
/** Decodes what an enclave logs; malformed UTF-8 becomes U+FFFD, never an exception. */
const utf8 = new TextDecoder();

/** Thrown inside an import to unwind the enclave; never escapes the runtime. */
export class EnclaveAbort extends Error {}

/** The component part of a {@link Live}. */
export interface ComponentLive {
  /** Every core instance's fuel counter, the main one's included; empty when unmetered. */
  readonly counters: readonly WebAssembly.Global[];
  /** `cabi_post_…#call`, when the component has one. */
  readonly postReturn: ((ret: number) => void) | undefined;
}

/** The exports of one live instance, looked up once. */
export interface Live {
  readonly memory: WebAssembly.Memory;
  readonly alloc: (len: number) => number;
  readonly call: (ptr: number, len: number) => number;
  /** View over `memory.buffer`; replaced when the memory grows. */
  u8: Uint8Array;
  view: DataView;
  /** Ops that have succeeded on this instance, for `requires`. */
  readonly done: Set<string>;
  /** False at the start of each call: a cached `report` token serves retries within one call only. */
  reportsValid: boolean;
  /** Bumped at the start of each call: `counter_advance` bounds what one call asks of the platform. */
  callSerial: number;
  /** The fuel counter (runtime/fuel.ts); undefined when unmetered. */
  readonly fuel: WebAssembly.Global | undefined;
  /** The module's mutable globals, for per-call snapshots; empty when unmetered. */
  readonly globals: readonly WebAssembly.Global[];
  /**
   * A component's other counters and post-return (runtime/_component-live.ts); undefined for a
   * core module. `fuel` is then the main core instance's counter (the one capabilities charge).
   */
  readonly component: ComponentLive | undefined;
}

/** Copies `src[start, end)` to `dst` at `at`: a plain loop for small copies (no call overhead). */
export function copyInto(dst: Uint8Array, at: number, src: Buffer, start: number, end: number): void {
  if (end - start <= 64) {
    for (let i = start; i < end; i++) dst[at++] = src[i]!;
  } else {
    src.copy(dst, at, start, end);
  }
}

/** New views after the memory grew (growing a non-shared memory detaches its old buffer). */
export function refreshViews(live: Live): Uint8Array {
  live.u8 = new Uint8Array(live.memory.buffer);
  live.view = new DataView(live.memory.buffer);
  return live.u8;
}

/** Whether `err` is V8's "Maximum call stack size exceeded" (an enclave recursing too deep), not a trap. */
export function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

/**
 * Maps anything thrown while the enclave ran to a stable code. The runtime's own errors keep
 * theirs, and so does an enclave's own `err` reply (runtime/_reply.ts), `rollback` included,
 * although that code's class is AttestationError (it is also a module verdict). Anything else, a
 * platform's error included (imports catch those, but one that escaped would be a bug of ours,
 * not a property of the enclave), is a `trap`.
 */
export function toEnclaveError(err: unknown): EnclaveError {
  if (err instanceof EnclaveError && (!(err instanceof AttestationError) || err.flags.fromEnclave)) return err;
  if (isStackOverflow(err)) return new EnclaveError('stack_overflow', undefined, { cause: err });
  return new EnclaveError('trap', undefined, { cause: err });
}

/** Refuses a call whose op `requires` others that have not succeeded on this instance. */
export function checkRequires(op: string, spec: OpCall, live: Live): void {
  for (const required of spec.requires) {
    if (!live.done.has(required)) {
      throw new EnclaveError('state', `"${op}" requires "${required}" to have succeeded first on this enclave.`);
    }
  }
}

/**
 * @internal Hands log lines to the host's `onLog` (both isolation modes). A logger that throws,
 * or an async one that rejects, must not break the enclave's caller nor surface as an uncaught
 * exception or an unhandled rejection, which would end the process.
 */
export function deliverLogs(onLog: (level: LogLevel, message: string) => void, entries: readonly (readonly [LogLevel, string])[]): void {
  for (const [level, message] of entries) {
    try {
      const result: unknown = onLog(level, message);
      if (result instanceof Promise) result.catch(() => undefined);
    } catch {
      // Ignored, as above.
    }
  }
}

/** What an enclave logged during one call (the `log` capability, `abort`), bounded. */
export class CallLog {
  #lines: [LogLevel, string][] = [];
  #dropped = 0;

  /** Whether one more line fits this call's bound; if not, it is counted as dropped. */
  admit(): boolean {
    if (this.#lines.length < MAX_LOG_LINES) return true;
    this.#dropped++;
    return false;
  }

  push(level: LogLevel, message: string): void {
    this.#lines.push([level, message]);
  }

  /** The call's lines (and one for the dropped ones), emptied; undefined when there are none. */
  take(): [LogLevel, string][] | undefined {
    if (this.#lines.length === 0) return undefined;
    const lines = this.#lines;
    this.#lines = [];
    if (this.#dropped > 0) {
      lines.push(['warn', `enclave log flood: ${this.#dropped} more lines in this call were dropped`]);
      this.#dropped = 0;
    }
    return lines;
  }
}

/** What {@link importContext} needs of the instance being made. */
export interface ImportContextSource {
  /** The live instance; undefined while it starts. */
  live(): Live | undefined;
  /** Its fuel counter; undefined while it starts and when unmetered. */
  counter(): WebAssembly.Global | undefined;
  log: CallLog;
  listening: boolean;
  identity: ModuleIdentity;
  platform: EnclavePlatform | undefined;
  reportContext(): ReportContext;
}

/** What a capability import may use of one instance (runtime/capabilities/_capability.ts). */
export function importContext(source: ImportContextSource): ImportContext {
  const memory = (): Uint8Array => {
    const live = source.live();
    if (live === undefined) throw new EnclaveAbort('called before the instance exists');
    return live.u8.buffer === live.memory.buffer ? live.u8 : refreshViews(live);
  };
  const inBounds = (ptr: number, len: number): boolean => ptr >>> 0 === ptr && len >>> 0 === len && ptr + len <= memory().length;
  return {
    memory,
    inBounds,
    readText: (ptr, len, max) => {
      const n = Math.min(len >>> 0, max);
      return inBounds(ptr, n) ? utf8.decode(memory().subarray(ptr, ptr + n)) : '<out of bounds>';
    },
    // Running out ends the call as an instruction charge does: the counter below zero, then a
    // trap (`fuel_exhausted`).
    pay: (fuel) => {
      const counter = source.counter();
      if (counter === undefined) return;
      const left = (counter.value as number) - fuel;
      counter.value = left < 0 ? -1 : left;
      if (left < 0) throw new EnclaveAbort('out of fuel');
    },
    admitLog: () => source.log.admit(),
    log: (level, message) => source.log.push(level, message),
    listening: source.listening,
    identity: source.identity,
    platform: source.platform,
    reportContext: () => source.reportContext(),
    get sameCall() {
      return source.live()?.reportsValid === true;
    },
    set sameCall(value: boolean) {
      const live = source.live();
      if (live !== undefined) live.reportsValid = value;
    },
    callSerial: () => source.live()?.callSerial ?? 0,
  };
}
