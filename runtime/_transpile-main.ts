/**
 * The transpile worker's entry (runtime/_component-transpile.ts): transpiles the component bytes
 * it is sent with jco (runtime/_component-glue.ts) and answers with the checked, patched glue and
 * its core modules' names, or the error's `{code, message}`. What this file imports is what makes
 * a cache entry: the transpile cache keys entries by the fingerprint of its import closure.
 */
import { parentPort } from 'node:worker_threads';
import { EnclaveError, readComponentInfo } from '../core/index.js';
import { transpileNow } from './_component-glue.js';

/** A request from the host thread. */
export interface TranspileRequest {
  readonly id: number;
  readonly bytes: Uint8Array;
}

const port = parentPort!;
port.on('message', (request: TranspileRequest) => {
  (async () => transpileNow(request.bytes, readComponentInfo(request.bytes).coreModules))().then(
    (result) => port.postMessage({ id: request.id, glue: result.glue, modules: result.modules }),
    (err: unknown) => {
      const error = err instanceof EnclaveError ? err : new EnclaveError('internal', 'The component could not be transpiled.');
      port.postMessage({ id: request.id, error: error.toJSON() });
    },
  );
});
