/**
 * FileStore under SIGKILL (docs/STORE.md §4): 200 writer processes killed. Two writers
 * (test/helpers/store-writer.mjs) always run on one store, putting to the same three names; each
 * round lets a new writer go and kills the older one at a random moment, so every writer is killed,
 * and always while another contends for the same names. After every kill, on a freshly opened store:
 * - every acknowledged (name, version) is readable at that version or a later one, and no name went
 *   back to an earlier version than a previous round read;
 * - the blob read is exactly the one its writer derives for that version (no torn, mixed or stale
 *   bytes), and for an acknowledged version, the acknowledging writer's;
 * - no two writers were acknowledged the same (name, version): compare-and-set held across processes;
 * - opening the store removed every temp file and lock of the killed writers (what is left is the
 *   live writer's), and once the last writer is killed, nothing is left.
 * Most kills land inside a put (the writers spend nearly all their time in fsync): the test counts
 * them, so a change that made the kills miss the writes fails instead of passing vacuously.
 * Writers are started a few rounds ahead and wait for `go`, so node's startup overlaps the rounds
 * (still most of the file's time: measured 50 s on the 2-core VM at load average 11).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStore } from '../host/store/index.js';
import { derive, snapshotStore, writerOf } from './helpers/store-writer.mjs';

const WRITER = fileURLToPath(new URL('./helpers/store-writer.mjs', import.meta.url));
const ROUNDS = 200;
const NAMES = ['vault/alpha', 'vault/βeta', `vault/${'long-'.repeat(40)}name`]; // the last one spans two path components
/** The older writer is killed this long after the younger began its first put, ms: uniform in [0, KILL_WINDOW). */
const KILL_WINDOW = 40;
/** Writers started ahead of their round. */
const AHEAD = 3;

const root = mkdtempSync(join(tmpdir(), 'enclave-store-crash-'));
const storeUrl = snapshotStore(join(root, 'dist'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Writer {
  readonly id: string;
  readonly child: ChildProcess;
  readonly lines: string[];
  /** Resolves once the writer has opened the store and waits for `go`. */
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
}

/**
 * Starts a writer; it opens the store and waits for `go` on stdin, so the next round's writers
 * start (node's startup is most of a round's cost) while this round's run.
 */
function startWriter(dir: string, id: string): Writer {
  const child = spawn(process.execPath, [WRITER, 'crash', dir, id, ...NAMES], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ENCLAVE_STORE_URL: storeUrl },
  });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  let onReady!: () => void;
  let onFail!: (err: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    onReady = res;
    onFail = rej;
  });
  ready.catch(() => undefined); // awaited later; a failure before then is not unhandled
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line === 'ready') onReady();
      else lines.push(line);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin!.on('error', () => undefined); // EPIPE once killed
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  void exited.then(() => onFail(new Error(`writer ${id} exited before it was ready: ${stderr}${lines.join('\n')}`)));
  return { id, child, lines, ready, exited };
}

/** The pid field of an owner token (host_boot_ns_pid_start_random), as the store writes it. */
const ownerPid = (entry: string) => Number(entry.split('.')[0]!.split('_')[3]);

describe('FileStore: writers killed with SIGKILL', () => {
  it(`keeps every acknowledged blob, whole, over ${ROUNDS} writers killed at random moments while another writes`, async () => {
    const dir = join(root, 'store');
    new FileStore(dir); // creates it (the writers then race only on the names)
    /** Per name: who acknowledged each version, the highest acknowledged, the last version read. */
    const acked = NAMES.map(() => new Map<number, string>());
    const maxAcked = NAMES.map(() => 0);
    const lastRead = NAMES.map(() => 0);
    const seen = new Map<Writer, number>(); // lines of each writer already counted
    let killedInPut = 0;
    let acks = 0;
    const started = performance.now();

    const collect = (w: Writer) => {
      const from = seen.get(w) ?? 0;
      const lines = w.lines.slice(from);
      seen.set(w, from + lines.length);
      expect(lines.filter((l) => l.startsWith('err ')), `writer ${w.id}`).toEqual([]);
      for (const line of lines) {
        const [kind, index, version] = line.split(' ');
        if (kind !== 'a') continue;
        const i = Number(index);
        const v = Number(version);
        const other = acked[i]!.get(v);
        expect(other, `${NAMES[i]} v${v} acknowledged to ${w.id} and to ${other}`).toBeUndefined();
        acked[i]!.set(v, w.id);
        maxAcked[i] = Math.max(maxAcked[i]!, v);
        acks++;
      }
    };

    const verify = async (label: string, live: Writer | undefined) => {
      const store = new FileStore(dir);
      const livePid = live?.child.pid;
      const tmpLeft = readdirSync(join(dir, 'tmp')).filter((e) => ownerPid(e) !== livePid);
      expect(tmpLeft, `${label}: temp files of killed writers left after open`).toEqual([]);
      // A lock is a directory holding its owner's token (empty for an instant while its owner releases it).
      const locksLeft = readdirSync(join(dir, 'locks')).flatMap((lock) => {
        try {
          return readdirSync(join(dir, 'locks', lock)).filter((e) => ownerPid(e) !== livePid);
        } catch {
          return []; // released meanwhile
        }
      });
      expect(locksLeft, `${label}: locks of killed writers left after open`).toEqual([]);
      for (const [i, name] of NAMES.entries()) {
        const got = await store.get(name);
        const version = got?.version ?? 0;
        expect(version, `${label}: ${name} is behind its last acknowledgement`).toBeGreaterThanOrEqual(maxAcked[i]!);
        expect(version, `${label}: ${name} went back`).toBeGreaterThanOrEqual(lastRead[i]!);
        lastRead[i] = version;
        if (got === undefined) continue;
        const writer = writerOf(got.bytes);
        expect(writer, `${label}: ${name} v${version} names no writer`).toBeDefined();
        const ackedBy = acked[i]!.get(version);
        if (ackedBy !== undefined) expect(writer, `${label}: ${name} v${version}`).toBe(ackedBy);
        expect(Buffer.from(got.bytes).equals(Buffer.from(derive(writer!, name, version))), `${label}: ${name} v${version} bytes`).toBe(true);
      }
      await store.close();
    };

    /** Sends `go` and resolves once the writer began its first put (or died trying). */
    const go = async (w: Writer) => {
      await w.ready;
      w.child.stdin!.write('go\n');
      while (!w.lines.some((l) => l.startsWith('b ') || l.startsWith('err ')) && w.child.exitCode === null) await new Promise((r) => setTimeout(r, 2));
    };

    let live = startWriter(dir, 'w0');
    // Writers started ahead and waiting for `go`: node's startup (most of a round's cost) overlaps the rounds before.
    const queue = Array.from({ length: AHEAD }, (_, i) => startWriter(dir, `w${i + 1}`));
    await go(live);
    for (let round = 1; round <= ROUNDS; round++) {
      const young = queue.shift()!;
      await go(young);
      queue.push(startWriter(dir, `w${round + AHEAD}`));
      await new Promise((r) => setTimeout(r, Math.random() * KILL_WINDOW));
      live.child.kill('SIGKILL');
      await live.exited;
      collect(live);
      collect(young);
      if (live.lines.at(-1)?.startsWith('b ')) killedInPut++;
      await verify(`round ${round}`, young);
      live = young;
    }
    for (const w of [live, ...queue]) w.child.kill('SIGKILL');
    await Promise.all([live, ...queue].map((w) => w.exited));
    collect(live);
    await verify('at the end', undefined);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);

    const seconds = (performance.now() - started) / 1000;
    console.log(`store-crash: ${ROUNDS} writers killed in ${seconds.toFixed(1)} s, ${acks} acknowledged puts, ${killedInPut} kills inside a put, final versions ${lastRead.join(', ')}`);
    expect(acks).toBeGreaterThan(ROUNDS / 2);
    expect(killedInPut).toBeGreaterThan(ROUNDS / 2);
  }, 180_000);
});
