/**
 * The instrumentation worker's entry (runtime/_instrument-worker.ts): instruments the module bytes
 * it is sent (runtime/fuel.ts) and answers with the result or the error's `{code, message}`.
 */
import { parentPort } from 'node:worker_threads';
import { EnclaveError } from '../core/index.js';
import { instrumentFuel } from './fuel.js';

/** A request from the host thread. */
export interface InstrumentRequest {
  readonly id: number;
  readonly bytes: Uint8Array;
}

const port = parentPort!;
port.on('message', (request: InstrumentRequest) => {
  instrumentFuel(request.bytes).then(
    (result) => port.postMessage({ id: request.id, bytes: result.bytes, manifest: result.manifest }),
    (err: unknown) => {
      const error = err instanceof EnclaveError ? err : new EnclaveError('invalid_module', 'The module cannot be instrumented.');
      port.postMessage({ id: request.id, error: error.toJSON() });
    },
  );
});
