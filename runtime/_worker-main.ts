/**
 * The entry of an enclave worker (runtime/worker.ts starts it). It instantiates the enclave with
 * the same {@link Enclave} class as in-process, reports `ready` with the shared buffer, then
 * serves calls from that buffer forever: block in `Atomics.wait` until the host posts a request,
 * run it, write the reply, notify. Blocking is fine here: this thread does nothing else, and the
 * host ends it with `terminate()`, which interrupts both the wait and a running Wasm call.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EnclaveError } from '../core/index.js';
import { CALL_RAW, type Enclave } from './instance.js';
import { CREATE_SETTLED, EnclaveModule, FROM_PARTS, type ModuleParts } from './module.js';
import { componentProgram } from './_component-live.js';
import type { LogLevel } from './options.js';
import { hostCallPlatform } from './_worker-hostcall.js';
import {
  dataBytes,
  ERROR,
  CALL_FUEL_F64,
  ERROR_BYTES,
  HEADER_BYTES,
  LEN,
  OP,
  OP_END_SESSION,
  REPLY,
  REQUEST,
  SESSION_BYTES,
  SESSION_LEN,
  SETTLE,
  SPIN_MS,
  STATE,
  type ErrorJSON,
  type WorkerData,
  type WorkerMessage,
} from './_worker-protocol.js';

const port = parentPort!;
const init = workerData as WorkerData;
const logs: [LogLevel, string][] = [];

function post(message: WorkerMessage): void {
  port.postMessage(message);
}

function asJSON(err: unknown): ErrorJSON {
  return err instanceof EnclaveError ? err.toJSON() : new EnclaveError('internal', undefined, { cause: err }).toJSON();
}

let enclave: Enclave | undefined;
try {
  // A component's glue is JavaScript: loaded here (an import) before the module is rebuilt.
  const component = (init.parts as ModuleParts).component;
  const program = component === undefined ? undefined : await componentProgram(component);
  const mod = EnclaveModule[FROM_PARTS](init.parts, program);
  // Options settled on the host thread (runtime/options.ts), not settled again here.
  enclave = mod[CREATE_SETTLED]({
    ...init.config,
    // The platform stays on the host thread; seal_key and report reach it through host calls.
    attestation: init.hostCall === undefined ? undefined : hostCallPlatform(post, init.hostCall.platform, init.hostCall.timeoutMs),
    onLog: init.forwardLogs ? (level: LogLevel, message: string) => void logs.push([level, message]) : undefined,
  });
} catch (err) {
  post({ type: 'failed', error: asJSON(err) });
}

if (enclave !== undefined) await serve(enclave);

async function serve(enclave: Enclave): Promise<void> {
  const sab = new SharedArrayBuffer(HEADER_BYTES + dataBytes(enclave.limits));
  const ctl = new Int32Array(sab, 0, HEADER_BYTES / 4);
  const f64 = new Float64Array(sab, 0, HEADER_BYTES / 8);
  const data = Buffer.from(sab, HEADER_BYTES);
  const ops = Object.keys(enclave.contract.ops);
  const request = { buffer: data, start: 0, end: 0 };
  const stats = { fuel: 0 };
  post({ type: 'ready', sab, limits: enclave.limits });
  for (;;) {
    let state = Atomics.load(ctl, STATE);
    if (state !== REQUEST) {
      // Poll briefly before sleeping: waking a sleeping thread costs tens of microseconds on a VM,
      // more than a small call, and back-to-back calls usually arrive within this window.
      const until = performance.now() + SPIN_MS;
      while ((state = Atomics.load(ctl, STATE)) !== REQUEST && performance.now() < until);
    }
    while (state !== REQUEST) {
      Atomics.wait(ctl, STATE, state);
      state = Atomics.load(ctl, STATE);
    }
    const index = ctl[OP]!;
    const op = ops[index];
    const len = ctl[LEN]!;
    const sessionLen = ctl[SESSION_LEN]!;
    stats.fuel = 0;
    try {
      if ((op === undefined && index !== OP_END_SESSION) || !(len >= 0 && sessionLen <= SESSION_BYTES && len + sessionLen <= data.length)) {
        throw new EnclaveError('internal', 'The enclave worker received a malformed request.');
      }
      const session = sessionLen < 0 ? undefined : data.toString('utf8', len, len + sessionLen);
      if (op === undefined) {
        ctl[LEN] = (await enclave.endSession(session!)) ? 1 : 0;
      } else {
        request.end = len;
        // A view of enclave memory, checked (bounds, reply limit; the host checks the msgpack);
        // the data area is at least replyBytes long, so it fits.
        const reply = enclave[CALL_RAW](op, request, ctl[SETTLE]!, session, stats);
        data.set(reply, 0);
        ctl[LEN] = reply.length;
      }
      f64[CALL_FUEL_F64] = stats.fuel;
      Atomics.store(ctl, STATE, REPLY);
    } catch (err) {
      f64[CALL_FUEL_F64] = stats.fuel;
      let bytes = Buffer.from(JSON.stringify(asJSON(err)));
      if (bytes.length > ERROR_BYTES) bytes = Buffer.from(JSON.stringify({ code: asJSON(err).code }));
      bytes.copy(data, 0);
      ctl[LEN] = bytes.length;
      Atomics.store(ctl, STATE, ERROR);
    }
    Atomics.notify(ctl, STATE);
    // The Enclave hands log lines to onLog in a microtask after the call: let it run, then send.
    await undefined;
    if (logs.length > 0) post({ type: 'log', entries: logs.splice(0) });
  }
}
