/**
 * One live instance and the small pieces of the call path that need no enclave state: the
 * exports looked up once, views over its memory, and how anything thrown maps to a code.
 * Used by runtime/instance.ts only.
 */
import { AttestationError, EnclaveError } from '../core/index.js';
import type { OpCall } from './marshal.js';
import type { LogLevel } from './options.js';

/** Thrown inside an import to unwind the enclave; never escapes the runtime. */
export class EnclaveAbort extends Error {}

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
  /** The fuel counter (runtime/fuel.ts); undefined when unmetered. */
  readonly fuel: WebAssembly.Global | undefined;
  /** The module's mutable globals, for per-call snapshots; empty when unmetered. */
  readonly globals: readonly WebAssembly.Global[];
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

export function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack/i.test(err.message);
}

/**
 * Maps anything thrown while the enclave ran to a stable code. The runtime's own errors keep
 * theirs; anything else, a platform's error included (imports catch those, but one that escaped
 * would be a bug of ours, not a property of the enclave), is a `trap`.
 */
export function toEnclaveError(err: unknown): EnclaveError {
  if (err instanceof EnclaveError && !(err instanceof AttestationError)) return err;
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
