/**
 * Whether the Node inspector can see into this process now: on the software platform an enclave's
 * linear memory (and in worker mode its worker, which the inspector reaches as a target too) lies
 * inside the host process, so an open inspector can read and change it. Evidence then says
 * `dbgstat: 0` (enabled; docs/ATTESTATION.md, RFC 9711 §4.2.9).
 *
 * Checked at evidence time, on the thread that issues the evidence:
 * - `inspector.url()`: defined while the inspector listens, however it was opened (`--inspect`,
 *   `--inspect-brk`, `inspector.open()`, SIGUSR1);
 * - the flags that open it at start-up, in `process.execArgv` (which a worker of the runtime
 *   inherits) and in `NODE_OPTIONS`, in case it could not listen yet or stopped listening: they
 *   were the operator's intent. `--inspect-port` alone opens nothing and does not count.
 *
 * Not seen: a `node:inspector` `Session` the host code connects to itself (that is the host
 * process reading its own memory, which the threat model already grants it), and an inspector
 * opened and closed between two evidence requests: hence the software platform never claims more
 * than `1` ("disabled", now), never "disabled since boot".
 * @internal
 */
import inspector from 'node:inspector';
import { isMainThread } from 'node:worker_threads';

const INSPECT_FLAG = /^--inspect(?:-brk|-wait)?(?:=|$)/;

/** True if a flag that opens the inspector at start-up is among `args`. */
export function hasInspectFlag(args: readonly string[]): boolean {
  return args.some((arg) => INSPECT_FLAG.test(arg));
}

/**
 * True while the inspector is open, or was asked for on the command line or in `NODE_OPTIONS`; and
 * always off the main thread: the main thread's inspector reaches every worker as a target, and a
 * worker cannot see whether it is open (`inspector.url()` is undefined there), so evidence issued
 * from a worker thread claims no more than "debug may be enabled".
 */
export function inspectorOpen(): boolean {
  if (!isMainThread) return true;
  let url: string | undefined;
  try {
    url = inspector.url();
  } catch {
    // Node built without the inspector: nothing to open.
    url = undefined;
  }
  if (url !== undefined) return true;
  if (hasInspectFlag(process.execArgv)) return true;
  const options = process.env.NODE_OPTIONS;
  return options !== undefined && hasInspectFlag(options.split(/\s+/));
}
