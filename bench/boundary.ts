/**
 * Boundary round trip: an echo through the enclave, for replies of 16 B to 64 KiB, side by side
 * with
 * - the floor: a hand-written raw Wasm call that copies the same bytes in and out, with no
 *   envelope and no checks (the least any Wasm boundary can cost);
 * - a plain JS function doing the same work (a copy), for scale;
 * - the Extism JS SDK running an echo plugin (AssemblyScript, @extism/as-pdk), on the main
 *   thread and in a worker (`runInWorker: true`);
 * - the enclave in worker isolation, when the runtime has it.
 *
 *   npm run build && npm run bench -- boundary        (or: node dist/bench/boundary.js)
 */
import { parse } from '@bytecodealliance/jco';
import { loadEnclave, type Enclave } from '../runtime/index.js';
import { closeEnclave, echoBytes, payload, probeWorkerMode } from './_enclaves.js';
import { defineSuite, formatBytes, isMain, runStandalone, type Case } from './_harness.js';
import { loadExtism } from './_peers.js';

const FLOOR_WAT = `(module
  (memory (export "memory") 64 64)
  (func (export "alloc") (param i32) (result i32) (i32.const 0x10000))
  ;; copy the request to the reply area and return its length: what echo does, minus everything else
  (func (export "call") (param $p i32) (param $l i32) (result i32)
    (memory.copy (i32.const 0x200000) (local.get $p) (local.get $l))
    (local.get $l)))`;

/** Reply sizes measured. */
export const SIZES = [16, 256, 4096, 65_536] as const;

/** The floor: copy in, call, copy out. */
export async function floorCall(): Promise<(payload: Uint8Array) => Uint8Array> {
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(await parse(FLOOR_WAT)), {});
  const memory = exports.memory as WebAssembly.Memory;
  const alloc = exports.alloc as (n: number) => number;
  const call = exports.call as (p: number, n: number) => number;
  const u8 = new Uint8Array(memory.buffer);
  return (payload) => {
    const p = alloc(payload.length);
    u8.set(payload, p);
    const n = call(p, payload.length);
    return u8.slice(0x200000, 0x200000 + n);
  };
}

/** The same work in plain JS: hand back a copy. */
function jsEcho(bytes: Uint8Array): Uint8Array {
  return bytes.slice();
}

/** Batch sizes: enough operations per timed invocation to amortise the harness's overhead. */
function batchFor(size: number, costly: boolean): number {
  if (costly) return size >= 65_536 ? 4 : 16;
  return size >= 65_536 ? 16 : size >= 4096 ? 64 : 256;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export const suite = defineSuite({
  name: 'boundary',
  description: 'echo round trip through the boundary, by reply size',
  peerLabel: 'Extism',
  maxTime: 1.5,
  quickMaxTime: 0.25,
  async setup(ctx) {
    const bytes = await echoBytes(ctx.root);
    const notes: string[] = [];
    const closers: (() => Promise<void>)[] = [];
    const echo = await loadEnclave(bytes);
    closers.push(() => closeEnclave(echo));
    const floor = await floorCall();

    const worker = await probeWorkerMode(bytes);
    let workerEcho: Enclave | undefined;
    if (worker.ok) {
      workerEcho = await worker.load(bytes);
      const w = workerEcho;
      closers.push(() => closeEnclave(w));
      notes.push("Enclave worker: `loadEnclave(bytes, { isolation: 'worker' })` with its default deadline; one call at a time.");
    } else {
      notes.push(worker.reason);
    }

    type Plugin = Awaited<ReturnType<import('./_peers.js').ExtismPeer['create']>>;
    let extMain: Plugin | undefined;
    let extWorker: Plugin | undefined;
    if (!ctx.peers) {
      notes.push('Extism: skipped (--no-peers)');
    } else {
      const ext = await loadExtism(ctx.root, ctx.log);
      if (!ext.ok) {
        notes.push(`Extism: not measured: ${ext.reason}`);
      } else {
        const wasm = await ext.peer.echoWasm();
        try {
          extMain = await ext.peer.create(wasm, false);
          const m = extMain;
          closers.push(() => m.close());
        } catch (err) {
          notes.push(`Extism main thread: not measured: ${(err as Error).message}`);
        }
        try {
          extWorker = await ext.peer.create(wasm, true);
          const w = extWorker;
          closers.push(() => w.close());
        } catch (err) {
          notes.push(`Extism worker (runInWorker): not measured: ${(err as Error).message}`);
        }
        notes.push(
          `Extism: @extism/extism ${ext.peer.version}, echo plugin from AssemblyScript with @extism/as-pdk (bench/peers/src/echo.ts, -O3), raw bytes in and out (no msgpack envelope).`,
        );
      }
    }

    const cases: Case[] = [];
    for (const size of SIZES) {
      const data = payload(size);
      const group = formatBytes(size);
      const batch = batchFor(size, false);
      const slowBatch = batchFor(size, true);
      const check = (what: string, out: Uint8Array) => {
        if (!sameBytes(out, data)) throw new Error(`${what} did not echo ${size} bytes`);
      };
      check('floor', floor(data));
      check('js', jsEcho(data));
      check('enclave', (await echo.call('echo', data)) as Uint8Array);
      cases.push(
        {
          name: `js copy ${group}`,
          group,
          role: 'reference',
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) jsEcho(data);
          },
        },
        {
          name: `raw wasm floor ${group}`,
          group,
          role: 'floor',
          batch,
          fn: () => {
            for (let i = 0; i < batch; i++) floor(data);
          },
        },
        {
          name: `enclave ${group}`,
          group,
          ...(extMain ? { peer: `extism ${group}` } : {}),
          batch,
          fn: async () => {
            for (let i = 0; i < batch; i++) await echo.call('echo', data);
          },
        },
      );
      if (workerEcho !== undefined) {
        const w = workerEcho;
        check('enclave worker', (await w.call('echo', data)) as Uint8Array);
        cases.push({
          name: `enclave worker ${group}`,
          group,
          ...(extWorker ? { peer: `extism worker ${group}` } : {}),
          batch: slowBatch,
          fn: async () => {
            for (let i = 0; i < slowBatch; i++) await w.call('echo', data);
          },
        });
      }
      if (extMain !== undefined) {
        const p = extMain;
        check('extism', await p.echo(data));
        cases.push({
          name: `extism ${group}`,
          group,
          role: 'peer',
          batch: slowBatch,
          fn: async () => {
            for (let i = 0; i < slowBatch; i++) await p.echo(data);
          },
        });
      }
      if (extWorker !== undefined) {
        const p = extWorker;
        check('extism worker', await p.echo(data));
        cases.push({
          name: `extism worker ${group}`,
          group,
          role: 'peer',
          batch: slowBatch,
          fn: async () => {
            for (let i = 0; i < slowBatch; i++) await p.echo(data);
          },
        });
      }
    }
    return {
      cases,
      notes,
      dispose: async () => {
        for (const close of closers.reverse()) await close();
      },
    };
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
