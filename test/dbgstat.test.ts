/**
 * Evidence carries `dbgstat: 0` (enabled) while a Node inspector is open, whatever opened it:
 * `node --inspect`, `inspector.open()` at run time, or SIGUSR1 (docs/ATTESTATION.md, `dbgstat`;
 * THREAT-MODEL). The inspector sees inside the enclave's memory on the software platform, in both
 * isolation modes. Each case runs in a child process (an inspector is per process), listening on
 * the loopback interface only, on a port the system picks; the child closes it before it exits.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
/** A child process starts Node, loads (and may instrument) a module, and starts a worker: slow on a loaded machine. */
const CHILD_TIMEOUT_MS = 90_000;
const ROOT = new URL('..', import.meta.url).pathname;
const platformDir = mkdtempSync(path.join(tmpdir(), 'enclave-dbgstat-'));
afterAll(() => rmSync(platformDir, { recursive: true, force: true }));

/**
 * The child: loads counter in-process and in a worker with one software provider, and prints the
 * `dbgstat` of each one's evidence, at each step of `steps` (`open`, `close`, `usr1`, `check`).
 * Written against the built dist/ (test/global-setup.ts builds it).
 */
const CHILD = `
import { readFileSync } from 'node:fs';
import inspector from 'node:inspector';
const [dir, ...steps] = process.argv.slice(2);
const { loadEnclave, SoftwareAttestationProvider } = await import(${JSON.stringify(`${ROOT}dist/host/index.js`)});
const provider = new SoftwareAttestationProvider({ dir });
const bytes = readFileSync(${JSON.stringify(`${ROOT}enclave-modules/counter/build/counter.wasm`)});
const dbgstat = (token) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).dbgstat;
const nonce = new Uint8Array(16).fill(7);
const inProcess = await loadEnclave(bytes, { attestation: provider });
const worker = await loadEnclave(bytes, { attestation: provider, isolation: 'worker' });
const out = [];
for (const step of steps) {
  if (step === 'open') inspector.open(0, '127.0.0.1');
  if (step === 'close') inspector.close();
  if (step === 'usr1') {
    process.kill(process.pid, 'SIGUSR1');
    // The signal starts the inspector on another thread: wait until it listens.
    for (let i = 0; i < 500 && inspector.url() === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  }
  out.push({ step, open: inspector.url() !== undefined, inProcess: dbgstat(await inProcess.attest(nonce)), worker: dbgstat(await worker.attest(nonce)) });
}
await worker.close();
inspector.close();
console.log(JSON.stringify(out));
`;

const script = path.join(platformDir, 'child.mjs');
writeFileSync(script, CHILD);

async function child(nodeFlags: string[], steps: string[]): Promise<{ step: string; open: boolean; inProcess: number; worker: number }[]> {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const { stdout } = await run(process.execPath, [...nodeFlags, script, platformDir, ...steps], {
    cwd: ROOT,
    env,
    timeout: 60_000,
  });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

describe('dbgstat follows the inspector, in both modes', () => {
  it('node --inspect: evidence says debug enabled (dbgstat 0)', async () => {
    expect(await child(['--inspect=127.0.0.1:0'], ['check'])).toEqual([{ step: 'check', open: true, inProcess: 0, worker: 0 }]);
  }, CHILD_TIMEOUT_MS);

  it('inspector.open() at run time: dbgstat 0 while it is open, 1 again once it is closed', async () => {
    expect(await child([], ['check', 'open', 'close'])).toEqual([
      { step: 'check', open: false, inProcess: 1, worker: 1 },
      { step: 'open', open: true, inProcess: 0, worker: 0 },
      { step: 'close', open: false, inProcess: 1, worker: 1 },
    ]);
  }, CHILD_TIMEOUT_MS);

  it('SIGUSR1: dbgstat 0 once the signal has opened the inspector (--inspect-port alone opens nothing)', async () => {
    expect(await child(['--inspect-port=127.0.0.1:0'], ['check', 'usr1'])).toEqual([
      { step: 'check', open: false, inProcess: 1, worker: 1 },
      { step: 'usr1', open: true, inProcess: 0, worker: 0 },
    ]);
  }, CHILD_TIMEOUT_MS);
});

describe('the start-up flags that open the inspector', () => {
  it('--inspect, --inspect-brk and --inspect-wait count; --inspect-port and --inspect-publish-uid alone do not', async () => {
    const { hasInspectFlag } = await import('../attest/_inspection.js');
    for (const flag of ['--inspect', '--inspect=0', '--inspect=127.0.0.1:0', '--inspect-brk', '--inspect-brk=9230', '--inspect-wait']) {
      expect(hasInspectFlag(['--no-warnings', flag]), flag).toBe(true);
    }
    for (const flag of ['--inspect-port=0', '--inspect-publish-uid=http', '--inspector', '--no-warnings']) {
      expect(hasInspectFlag([flag]), flag).toBe(false);
    }
  });

  it('evidence issued from a worker_threads thread says dbgstat 0: the main thread inspector reaches it unseen', async () => {
    const { Worker } = await import('node:worker_threads');
    const code = `import { parentPort } from 'node:worker_threads';
const { inspectorOpen } = await import(${JSON.stringify(`file://${ROOT}dist/attest/_inspection.js`)});
parentPort.postMessage(inspectorOpen());`;
    const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { execArgv: [] });
    const open = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(open).toBe(true);
  });
});
