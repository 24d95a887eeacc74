// A small signing service on plain node:http that runs an enclave under EnclaveHost
// (docs/EMBEDDING.md walks through it). Run it from the repository root, after `npm install`:
//
//   node docs/examples/service.mjs                 # PORT=8080 by default; PORT=0 picks a free port
//   curl -s -X POST -H 'x-api-key: demo-billing-key' --data-binary 'hello' http://127.0.0.1:8080/sign
//   curl -s http://127.0.0.1:8080/metrics
//   kill -HUP <pid>     # reload docs/examples/service-access.json
//   kill -TERM <pid>    # drain and stop
//
// What it shows: the caller identity on every call, the access policy (who may call which op, how
// fast, how much), enclave errors mapped to HTTP statuses, /metrics and /stats, a policy reload
// without a restart, and a graceful stop.

import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { EnclaveHost, EnclaveError, HOST_EVENTS } from 'enclave';

const PORT = Number(process.env.PORT ?? 8080);
const POLICY = fileURLToPath(new URL('./service-access.json', import.meta.url));
const MODULE = fileURLToPath(import.meta.resolve('enclave/modules/crypto.wasm'));
const MAX_BODY = 64 * 1024;

// Logs go to stderr; stdout carries only the "listening on" line (the test reads the port there).
const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' }, pino.destination(2));

// STUB authentication, for the example only: a fixed table of API keys. A real service
// authenticates its callers itself (mTLS, OAuth tokens, signed sessions) and passes the identity it
// established: the host trusts the caller id it is given and checks only what that caller may do.
const API_KEYS = new Map([
  ['demo-billing-key', 'billing'],
  ['demo-reports-key', 'reports'],
  ['demo-trial-key', 'trial'],
]);

// The signing key. In this example the service makes it and passes it in with each call, so it
// lives in the service's memory too; a real signer would generate and seal its key inside the
// enclave (docs/SDK.md, "seal") so that it never crosses the boundary.
const seed = randomBytes(32);

// The HTTP status for each code a call can end with (anything else is a 500).
const STATUS = new Map([
  ['unauthorized', 401],
  ['denied', 403],
  ['rate_limited', 429],
  ['quota_exceeded', 429],
  ['invalid_args', 400],
  ['too_large', 413],
  ['state', 409],
  ['overloaded', 503],
  ['unavailable', 503],
  ['timeout', 504],
]);

const host = new EnclaveHost({ access: POLICY, logger });
// Events: state changes, upgrades, integrity mismatches, breaker changes, replaced instances. Never
// payloads or caller ids, so they can go to any log or alerting pipeline as they are.
for (const event of HOST_EVENTS) host.on(event, (e) => logger.info({ event, ...e }, 'host event'));

// Two workers: Ed25519 signing is CPU-bound, and each worker is a core.
await host.start('signer', { module: MODULE, isolation: 'worker', instances: 2, deadlineMs: 2_000 });

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    logger.error({ err: String(err) }, 'request failed');
    if (!res.headersSent) send(res, 500, { error: 'internal' });
  });
});

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://localhost');
  logger.debug({ method: req.method, path: url.pathname }, 'request');
  if (req.method === 'GET' && url.pathname === '/metrics') {
    res.writeHead(200, { 'content-type': host.registry.contentType });
    res.end(await host.registry.metrics());
    return;
  }
  if (req.method === 'GET' && url.pathname === '/stats') return send(res, 200, host.stats());
  if (req.method === 'GET' && url.pathname === '/healthz') return send(res, host.state('signer') === 'ready' ? 200 : 503, { state: host.state('signer') });

  const isSign = req.method === 'POST' && url.pathname === '/sign';
  const isKey = req.method === 'GET' && url.pathname === '/public-key';
  if (!isSign && !isKey) return send(res, 404, { error: 'not_found' });

  const caller = API_KEYS.get(String(req.headers['x-api-key'] ?? ''));
  if (caller === undefined) return send(res, 401, { error: 'unauthenticated' });
  try {
    if (isKey) {
      const publicKey = await host.call(caller, 'signer', 'ed25519_public_key', { seed });
      return send(res, 200, { publicKey: Buffer.from(publicKey).toString('base64') });
    }
    const message = await readBody(req, MAX_BODY);
    if (message === undefined) return send(res, 413, { error: 'too_large' });
    const signature = await host.call(caller, 'signer', 'ed25519_sign', { seed, message });
    return send(res, 200, { signature: Buffer.from(signature).toString('base64') });
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    // The code is stable and safe to return; the message may name limits: it is never sent (5xx codes are logged).
    const status = STATUS.get(err.code) ?? 500;
    if (status >= 500) logger.warn({ code: err.code }, 'call failed');
    if (err.code === 'rate_limited') res.setHeader('retry-after', '1');
    return send(res, status, { error: err.code });
  }
}

/** The request body, or undefined past `max` bytes (the rest is not read). */
async function readBody(req, max) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function send(res, status, body) {
  // While stopping, each connection closes after its answer: no idle keep-alive holds the process.
  if (stopping) res.setHeader('connection', 'close');
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

// SIGHUP: reload the access policy. An invalid file is refused and the policy in force stays.
process.on('SIGHUP', () => {
  host.reloadAccess(POLICY).then(
    () => logger.info('access policy reloaded'),
    (err) => logger.error({ code: err.code, message: err.message }, 'access policy NOT reloaded; the previous one stays in force'),
  );
});

// SIGTERM (and Ctrl-C): stop taking connections, let the calls in flight finish, stop the host.
let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'stopping');
  server.close();
  server.closeIdleConnections();
  await host.close(); // drains every enclave: accepted calls finish or hit their deadline
  server.closeIdleConnections();
  logger.info('stopped');
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  console.log(`listening on http://127.0.0.1:${port}`);
});
