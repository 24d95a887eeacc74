// The embedding guide's example (docs/examples/service.mjs) as a user runs it: a real process on an
// ephemeral port, real HTTP calls (allowed, denied, unauthenticated, rate-limited), a real scrape
// of /metrics, a policy reload by SIGHUP, then SIGTERM and a clean exit.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';

const EXAMPLE = 'docs/examples/service.mjs';

let child: ChildProcessByStdio<null, Readable, Readable>;
let base = '';
let stderr = '';
let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

beforeAll(async () => {
  child = spawn(process.execPath, [EXAMPLE], { env: { ...process.env, PORT: '0', LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString('utf8');
  });
  exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not print its port within 60 s; stderr:\n${stderr}`)), 60_000);
    lines.on('line', (line) => {
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      if (m !== null) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`the example exited (${String(code)}) before listening; stderr:\n${stderr}`)));
  });
}, 90_000);

afterAll(() => {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

async function post(path: string, key: string | undefined, body: string): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(base + path, { method: 'POST', body, headers: key === undefined ? {} : { 'x-api-key': key } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

async function get(path: string, key?: string): Promise<Response> {
  return fetch(base + path, { headers: key === undefined ? {} : { 'x-api-key': key } });
}

/** The value of one series of a Prometheus text exposition, or undefined. */
function series(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const close = line.indexOf('} ');
    const got = new Map([...line.slice(name.length + 1, close).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) return Number(line.slice(close + 2));
  }
  return undefined;
}

describe('the embedding example (docs/examples/service.mjs)', () => {
  it('signs for an allowed caller: a signature that verifies under the public key it serves', async () => {
    const key = await get('/public-key', 'demo-billing-key');
    expect(key.status).toBe(200);
    const publicKey = Buffer.from(((await key.json()) as { publicKey: string }).publicKey, 'base64');
    expect(publicKey.length).toBe(32);
    for (let i = 0; i < 5; i++) {
      const r = await post('/sign', 'demo-billing-key', `message ${i}`);
      expect(r.status).toBe(200);
      const signature = Buffer.from(r.json.signature as string, 'base64');
      expect(ed25519.verify(signature, new TextEncoder().encode(`message ${i}`), publicKey)).toBe(true);
      expect(ed25519.verify(signature, new TextEncoder().encode(`message ${i + 1}`), publicKey)).toBe(false);
    }
  });

  it('denies an op the policy does not grant, with nothing but the code', async () => {
    const r = await post('/sign', 'demo-reports-key', 'm');
    expect(r).toMatchObject({ status: 403, json: { error: 'denied' } });
    expect(Object.keys(r.json)).toEqual(['error']);
    expect((await get('/public-key', 'demo-reports-key')).status).toBe(200);
  });

  it('refuses an unauthenticated caller before the host', async () => {
    expect((await post('/sign', undefined, 'm')).status).toBe(401);
    expect((await post('/sign', 'not-a-key', 'm')).status).toBe(401);
  });

  it('rate-limits a caller past its burst, and only that caller', async () => {
    // trial: burst 2, 0.5 per second. Six calls at once: two tokens, and at most one more refilled
    // unless the machine takes over 2 s to admit them.
    const replies = await Promise.all(Array.from({ length: 6 }, () => post('/sign', 'demo-trial-key', 'm')));
    const statuses = replies.map((r) => r.status);
    for (const r of replies.filter((x) => x.status === 429)) {
      expect(r.json).toEqual({ error: 'rate_limited' });
      expect(r.headers.get('retry-after')).toBe('1');
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(3);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect((await post('/sign', 'demo-billing-key', 'm')).status).toBe(200); // billing's own bucket
  });

  it('serves /metrics with the calls and refusals it just made', async () => {
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    // 5 + 1 signs by billing, plus the trial's admitted ones: at least 8 ok signs reached the enclave.
    expect(series(text, 'enclave_calls_total', { enclave: 'signer', op: 'ed25519_sign', code: 'ok' })).toBeGreaterThanOrEqual(8);
    expect(series(text, 'enclave_calls_total', { enclave: 'signer', op: 'ed25519_public_key', code: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(series(text, 'enclave_refusals_total', { enclave: 'signer', code: 'denied' })).toBeGreaterThanOrEqual(1);
    expect(series(text, 'enclave_refusals_total', { enclave: 'signer', code: 'rate_limited' })).toBeGreaterThanOrEqual(3);
    expect(series(text, 'enclave_instances', { enclave: 'signer' })).toBe(2);
    expect(series(text, 'enclave_state', { enclave: 'signer', state: 'ready' })).toBe(1);
    expect(series(text, 'enclave_call_duration_seconds_count', { enclave: 'signer', op: 'ed25519_sign' })).toBeGreaterThanOrEqual(8);
    expect(series(text, 'enclave_fuel_used_total', { enclave: 'signer', op: 'ed25519_sign' })).toBeGreaterThan(0);
    // Caller ids are never labels, and no payload reaches the exposition.
    expect(text).not.toMatch(/billing|reports|trial|demo-/);
  });

  it('serves /stats: the throughput profile per op', async () => {
    const stats = (await (await get('/stats')).json()) as { enclaves: Record<string, { state: string; instances: number; ops: Record<string, { calls: number; latencyMs: { p50: number } }> }> };
    const signer = stats.enclaves.signer!;
    expect(signer.state).toBe('ready');
    expect(signer.instances).toBe(2);
    expect(signer.ops.ed25519_sign!.calls).toBeGreaterThanOrEqual(8);
    expect(signer.ops.ed25519_sign!.latencyMs.p50).toBeGreaterThan(0);
  });

  it('reloads the access policy on SIGHUP and keeps serving', async () => {
    child.kill('SIGHUP');
    const deadline = Date.now() + 10_000;
    while (!stderr.includes('access policy reloaded') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(stderr).toContain('access policy reloaded');
    expect((await post('/sign', 'demo-billing-key', 'after reload')).status).toBe(200);
  });

  it('stops on SIGTERM: answers what it accepted, exits 0 by itself', async () => {
    // Calls sent together; SIGTERM once the service has read all eight (its debug log says so), so
    // none can be refused at the socket before the service saw it: each one it saw is answered.
    const signsLogged = (): number => stderr.split('\n').filter((l) => l.includes('"msg":"request"') && l.includes('"path":"/sign"')).length;
    const before = signsLogged();
    const calls = Array.from({ length: 8 }, (_, i) => post('/sign', 'demo-billing-key', `last ${i}`));
    const deadline = Date.now() + 20_000;
    while (signsLogged() < before + 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(signsLogged()).toBe(before + 8);
    child.kill('SIGTERM');
    const settled = await Promise.allSettled(calls);
    // Each is answered: signed if the host had accepted it, `unavailable` if it arrived while draining.
    for (const s of settled) {
      expect(s.status).toBe('fulfilled');
      if (s.status === 'fulfilled') expect([200, 503]).toContain(s.value.status);
    }
    const { code, signal } = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(stderr).toContain('"msg":"stopped"');
  }, 30_000);
});
