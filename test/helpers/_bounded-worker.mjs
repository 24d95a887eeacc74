// The thread test/helpers/bounded.ts runs a scenario in. Plain JavaScript: a worker cannot load
// TypeScript, so the runtime comes from dist/ (built from the sources by test/global-setup.ts).
import { parentPort, workerData } from 'node:worker_threads';

const { source, input, hostUrl } = workerData;
try {
  const host = await import(hostUrl);
  // The scenario is the source of a self-contained function (it may use only its parameters).
  const scenario = (0, eval)(`(${source})`);
  const value = await scenario(host, input);
  parentPort.postMessage({ value });
} catch (err) {
  parentPort.postMessage({ error: { name: err?.name, message: String(err?.message ?? err), code: err?.code, stack: err?.stack } });
}
