/**
 * The host supervisor (`EnclaveHost`, host/supervisor/): what it costs and what it buys, side by
 * side in one run (issue 12, "Performance").
 *
 * - **Its own cost per call**: echo of 16 B through `host.call` (access check, rate bucket, state,
 *   breaker, pool, metrics from the diagnostics channels) against the same call on a bare handle,
 *   in process (an `Enclave`, the group's floor) and in a worker (a `WorkerEnclave`, the floor),
 *   calls awaited one after another. Targets: 1.15× in process, 1.10× in a worker. Besides the
 *   harness's sequential cases, an interleaved A/B measurement (blocks of calls alternating
 *   bare/host, median of the per-round ratios, by wall time and by the process's CPU time) is in
 *   the notes: it is less sensitive to a shared machine's drift than two cases timed seconds
 *   apart. No host exists while a bare handle is timed: the host's observer subscribes to the
 *   runtime's diagnostics channels, and a bare handle publishes only when someone listens, so
 *   that cost is counted as the host's.
 * - **Parallelism**: Ed25519 sign (enclave-modules/crypto, `ed25519_sign`, CPU-bound, about 150 µs)
 *   through a pool of 1, 2 and 3 workers with 24 calls in flight (a multiple of each pool size);
 *   the 1-worker pool is the floor, so "× floor" is the time per signature relative to one worker,
 *   and throughput gain is its inverse. Target: 2 workers at least 1.7× the throughput of 1 on a
 *   2-core machine; 3 workers show the 2-core ceiling.
 * - **Overload** (measured once at setup, reported in the notes): a CPU-bound op of about 1 ms
 *   (bench/fixtures/sum.wat, `SUM_N`), one worker's capacity C measured closed-loop, then a flood
 *   offered open-loop at 10 × C for a few seconds from 8 callers: the
 *   share refused `overloaded`, how fast a refusal comes back, p99 of the admitted calls against
 *   the unloaded p99 (calls one at a time), and the host process's RSS and heap before and after.
 *   Twice: with the default queue (1024 deep) and with a queue as deep as the pool
 *   (`maxQueued: 1`), because the admitted calls' latency under overload is the queue's depth
 *   times the service time: the queue bound is the latency budget the service chooses. One worker,
 *   so that on a 2-core machine the host thread (which generates and refuses the flood) has a core
 *   of its own.
 *
 *   npm run build && npm run bench -- supervisor [--quick]      (or: node dist/bench/supervisor.js)
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism, loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { EnclaveHost, type EnclaveSpec } from '../host/index.js';
import { compileEnclave, createWorkerEnclave, EnclaveError } from '../runtime/index.js';
import { echoBytes, payload } from './_enclaves.js';
import { defineSuite, isMain, runStandalone, type Case } from './_harness.js';
import { sumBytes } from './limits.js';

/** Calls in flight in the parallelism cases: a multiple of every pool size measured. */
const IN_FLIGHT = 24;
/** Pool sizes of the scaling curve. */
const POOLS = [1, 2, 3] as const;
/** Callers of the flood (each with its own per-caller queue share). */
const FLOOD_CALLERS = 8;
/** The flood offers this many times the measured capacity. */
const OVERLOAD = 10;
/**
 * The flood's op: bench/fixtures/sum.wat's `sum` of this many iterations, about 1 ms of one core
 * (21 M fuel): a CPU-bound request of a realistic size, so 10× one worker's capacity is about
 * 10 000 calls/s, a rate one Node thread can receive. (With a 150 µs op, 10× is 40 000+ calls/s and
 * generating them saturates the host thread before the host's own behaviour shows.)
 */
const SUM_N = 1_500_000;

/** Every caller of this benchmark may call everything, far above any rate reached here. */
const ACCESS = {
  version: 1,
  callers: {
    '*': { allow: { 'echo-local': '*', 'echo-worker': '*', 'sign-1': '*', 'sign-2': '*', 'sign-3': '*', flood: '*' }, rate: { perSecond: 1e6, burst: 1e6 } },
  },
};

export const suite = defineSuite({
  name: 'supervisor',
  description: 'EnclaveHost: its cost per call against bare handles, pool scaling of a CPU-bound op, a flood at 10× capacity',
  maxTime: 1,
  quickMaxTime: 0.25,
  async setup(ctx) {
    const quick = ctx.quick;
    const echo = await compileEnclave(await echoBytes(ctx.root), { cacheDir: false });
    const cryptoPath = join(ctx.root, 'enclave-modules', 'crypto', 'build', 'crypto.wasm');
    const cryptoBytes = new Uint8Array(await readFile(cryptoPath).catch(() => {
      throw new Error(`${cryptoPath} is missing: run \`npm run build\` first`);
    }));
    const notes: string[] = [];
    const load = () => loadavg().map((n) => n.toFixed(2)).join(' ');
    notes.push(`Load average at setup: ${load()} (1, 5, 15 min); ${availableParallelism()} cores. A shared machine's load shifts absolute times; the ratios are measured side by side.`);

    // Overload first, on a host of its own, so its flood's garbage is not collected during the
    // cases below and its memory figures are this host's alone.
    const sumModule = await sumBytes(ctx.root);
    for (const maxQueued of [undefined, 1] as const) {
      notes.push(await overload(sumModule, maxQueued, quick, ctx.log));
    }

    // One host at a time, made when its case first runs and closed before any other case runs:
    // the bare cases run with no host in the process, so they do not pay for the diagnostics
    // channels the host's observer subscribes to (a bare handle publishes only to subscribers),
    // and no idle pool of another case shares the machine.
    const hosts = new Hosts();
    const bare = echo.create();
    const bareWorker = await createWorkerEnclave(echo);
    try {
      const echoSource = await echoBytes(ctx.root);
      const localHost = () => hostWith('echo-local', { module: echoSource, isolation: 'in-process', instances: 1 });
      const workerHost = () => hostWith('echo-worker', { module: echoSource, isolation: 'worker', instances: 1 });
      const signHost = (n: number) => () => hostWith(`sign-${n}`, { module: cryptoBytes, isolation: 'worker', instances: n });

      const data = payload(16);
      const check = (back: unknown) => {
        if (!(back instanceof Uint8Array) || back.length !== 16 || back.some((v, i) => v !== data[i])) throw new Error('echo lost bytes');
      };
      check(await bare.call('echo', data));
      check(await bareWorker.call('echo', data));
      check(await (await hosts.use('echo-local', localHost)).call('bench', 'echo-local', 'echo', data));
      check(await (await hosts.use('echo-worker', workerHost)).call('bench', 'echo-worker', 'echo', data));
      await hosts.none();

      // Interleaved A/B: the overhead ratio least affected by drift on a shared machine.
      const rounds = quick ? 7 : 31;
      const block = quick ? 1000 : 4000;
      const workerBlock = block / 10;
      const inProcess = await interleaved(rounds, block, block, hosts, () => bare.call('echo', data), 'echo-local', localHost, (h) => h.call('bench', 'echo-local', 'echo', data));
      const inWorker = await interleaved(rounds, workerBlock, workerBlock * 5, hosts, () => bareWorker.call('echo', data), 'echo-worker', workerHost, (h) => h.call('bench', 'echo-worker', 'echo', data));
      const ab = (r: AB, floor: string, target: string) =>
        `${r.wallRatio.toFixed(3)}× ${floor} by wall time (${r.wallA.toFixed(2)} → ${r.wallB.toFixed(2)} µs a call), ${r.cpuRatio.toFixed(3)}× by CPU time of the process (${r.cpuA.toFixed(2)} → ${r.cpuB.toFixed(2)} µs; target ≤ ${target})`;
      notes.push(
        `Interleaved A/B, echo 16 B, median of ${rounds} rounds (blocks of ${block} / ${workerBlock} calls, alternating which goes first; no host in the process during the bare blocks, each host block after a fresh start and ${block} / ${workerBlock * 5} untimed calls): ` +
          `host in-process ${ab(inProcess, 'a bare Enclave', '1.15×')}; host worker ×1 ${ab(inWorker, 'a bare WorkerEnclave', '1.10×')}. ` +
          'CPU time counts every thread of the process, so it is the cost of a call whatever else the machine runs.',
      );

      const seed = new Uint8Array(32).fill(1);
      const message = payload(32);
      const signArgs = { seed, message };
      let expected: Uint8Array | undefined;
      for (const n of POOLS) {
        const got = (await (await hosts.use(`sign-${n}`, signHost(n))).call('bench', `sign-${n}`, 'ed25519_sign', signArgs)) as Uint8Array;
        expected ??= got;
        if (got.length !== 64 || got.some((v, i) => v !== expected![i])) throw new Error('signatures differ between pools');
      }
      await hosts.none();

      // Interleaved scaling: one host running all three pools (idle workers cost nothing), rounds
      // of a block of signatures through each pool in turn, rotating which goes first.
      {
        const pools = new EnclaveHost({ access: ACCESS });
        try {
          for (const n of POOLS) await pools.start(`sign-${n}`, { module: cryptoBytes, isolation: 'worker', instances: n });
          const blockMs = quick ? 150 : 400;
          const scalingRounds = quick ? 3 : 9;
          const perSecond = new Map<number, number[]>(POOLS.map((n) => [n, []]));
          const gains = new Map<number, number[]>(POOLS.map((n) => [n, []]));
          const busy = new Map<number, number[]>(POOLS.map((n) => [n, []]));
          const cores = new Map<number, number[]>(POOLS.map((n) => [n, []]));
          const run = async (n: number) => {
            let done = 0;
            const until = performance.now() + blockMs;
            const elu0 = performance.eventLoopUtilization();
            const cpu0 = process.cpuUsage();
            const t0 = performance.now();
            await Promise.all(
              Array.from({ length: IN_FLIGHT }, async (_, k) => {
                while (performance.now() < until) {
                  await pools.call(`bench-${k % 4}`, `sign-${n}`, 'ed25519_sign', signArgs);
                  done++;
                }
              }),
            );
            const wallMs = performance.now() - t0;
            const rate = done / (wallMs / 1000);
            busy.get(n)!.push(performance.eventLoopUtilization(elu0).utilization);
            // Every thread of the process (host thread and workers), in cores: below the machine's
            // core count, some core sat idle (hand-overs); at it, the pool is CPU-bound.
            const cpu = process.cpuUsage(cpu0);
            cores.get(n)!.push((cpu.user + cpu.system) / 1000 / wallMs);
            return rate;
          };
          for (const n of POOLS) await run(n); // warm every pool's workers
          for (let r = 0; r < scalingRounds; r++) {
            const order = POOLS.map((_, i) => POOLS[(i + r) % POOLS.length]!);
            const got = new Map<number, number>();
            for (const n of order) got.set(n, await run(n));
            for (const n of POOLS) {
              perSecond.get(n)!.push(got.get(n)!);
              gains.get(n)!.push(got.get(n)! / got.get(1)!);
            }
          }
          notes.push(
            `Ed25519 sign scaling, interleaved (${scalingRounds} rounds of ${blockMs} ms per pool, ${IN_FLIGHT} in flight, rotating the order; medians): ` +
              POOLS.map(
                (n) =>
                  `${n} worker${n > 1 ? 's' : ''} ${median(perSecond.get(n)!).toFixed(0)} signs/s (${median(gains.get(n)!).toFixed(2)}×, host thread ${(median(busy.get(n)!) * 100).toFixed(0)}% busy, process CPU ${median(cores.get(n)!).toFixed(2)} cores)`,
              ).join(', ') +
              `; target for 2 workers ≥ 1.7× on 2 cores, where the host thread (encoding, hand-over, replies) shares the cores with the workers. Load average after: ${load()}.`,
          );
        } finally {
          await pools.close();
        }
      }

      const cases: Case[] = [];
      const batch = 256;
      cases.push(
        {
          name: 'bare Enclave, echo 16 B',
          group: 'echo 16 B in-process',
          role: 'floor',
          batch,
          fn: async () => {
            await hosts.none();
            for (let i = 0; i < batch; i++) await bare.call('echo', data);
          },
        },
        {
          name: 'host, in-process ×1, echo 16 B',
          group: 'echo 16 B in-process',
          batch,
          fn: async () => {
            const h = await hosts.use('echo-local', localHost);
            for (let i = 0; i < batch; i++) await h.call('bench', 'echo-local', 'echo', data);
          },
        },
        {
          name: 'bare WorkerEnclave, echo 16 B',
          group: 'echo 16 B worker',
          role: 'floor',
          batch: 64,
          fn: async () => {
            await hosts.none();
            for (let i = 0; i < 64; i++) await bareWorker.call('echo', data);
          },
        },
        {
          name: 'host, worker ×1, echo 16 B',
          group: 'echo 16 B worker',
          batch: 64,
          fn: async () => {
            const h = await hosts.use('echo-worker', workerHost);
            for (let i = 0; i < 64; i++) await h.call('bench', 'echo-worker', 'echo', data);
          },
        },
      );
      for (const n of POOLS) {
        const name = `sign-${n}`;
        cases.push({
          name: `host, ${n} worker${n > 1 ? 's' : ''}, Ed25519 sign, ${IN_FLIGHT} in flight`,
          group: 'Ed25519 sign throughput',
          ...(n === 1 ? { role: 'floor' as const } : {}),
          batch: IN_FLIGHT,
          fn: async () => {
            const h = await hosts.use(name, signHost(n));
            const calls: Promise<unknown>[] = [];
            // Spread over callers as a service's traffic would be; one caller's queue share is not the bound here.
            for (let i = 0; i < IN_FLIGHT; i++) calls.push(h.call(`bench-${i % 4}`, name, 'ed25519_sign', signArgs));
            await Promise.all(calls);
          },
        });
      }
      notes.push(
        `Ed25519 sign: "× floor" is the time per signature relative to the 1-worker pool, so the throughput gain of a pool is 1 / (× floor); target for 2 workers: ≥ 1.7× (× floor ≤ 0.59). ${IN_FLIGHT} calls in flight from 4 callers.`,
      );
      return {
        cases,
        notes,
        dispose: async () => {
          await hosts.none();
          await bare.close();
          await bareWorker.close();
        },
      };
    } catch (err) {
      await hosts.none();
      await bare.close();
      await bareWorker.close();
      throw err;
    }
  },
});

/** A host running one enclave under `name`, open to every caller of this benchmark. */
async function hostWith(name: string, spec: EnclaveSpec): Promise<EnclaveHost> {
  const host = new EnclaveHost({ access: ACCESS });
  try {
    await host.start(name, spec);
  } catch (err) {
    await host.close();
    throw err;
  }
  return host;
}

/** At most one host alive: `use` closes any other first, `none` closes it. */
class Hosts {
  #open: { key: string; host: EnclaveHost } | undefined;

  async use(key: string, make: () => Promise<EnclaveHost>): Promise<EnclaveHost> {
    if (this.#open?.key === key) return this.#open.host;
    await this.none();
    const host = await make();
    this.#open = { key, host };
    return host;
  }

  /** Whether the host for `key` is the one alive. */
  holds(key: string): boolean {
    return this.#open?.key === key;
  }

  async none(): Promise<void> {
    const open = this.#open;
    if (open === undefined) return;
    this.#open = undefined;
    await open.host.close();
  }
}

interface AB {
  readonly wallA: number;
  readonly wallB: number;
  readonly cpuA: number;
  readonly cpuB: number;
  /** Median over rounds of wallB / wallA. */
  readonly wallRatio: number;
  readonly cpuRatio: number;
}

/**
 * Rounds of one block of bare calls (`a`, no host in the process) and one of host calls (`b`, the
 * host started and warmed with `warm` calls untimed before its block), alternating which goes
 * first: µs per call by wall
 * time and by the process's CPU time, medians, and the medians of the per-round ratios.
 */
async function interleaved(
  rounds: number,
  block: number,
  warm: number,
  hosts: Hosts,
  a: () => Promise<unknown>,
  key: string,
  make: () => Promise<EnclaveHost>,
  b: (host: EnclaveHost) => Promise<unknown>,
): Promise<AB> {
  const time = async (fn: () => Promise<unknown>) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < block; i++) await fn();
    const wall = ((performance.now() - t0) * 1000) / block;
    const cpu = process.cpuUsage(c0);
    return { wall, cpu: (cpu.user + cpu.system) / block };
  };
  const runA = async () => {
    await hosts.none();
    return time(a);
  };
  const runB = async () => {
    const fresh = !hosts.holds(key);
    const host = await hosts.use(key, make);
    // A fresh host compiled its module anew and (worker) started a fresh thread: its code starts
    // in the baseline tiers. Untimed calls first, as the bare handle has had.
    if (fresh) for (let i = 0; i < warm; i++) await b(host);
    return time(() => b(host));
  };
  // Warm both (JIT tiers), untimed.
  await runA();
  await runB();
  const wa: number[] = [], wb: number[] = [], ca: number[] = [], cb: number[] = [], wr: number[] = [], cr: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let ta, tb;
    if (r % 2 === 0) {
      ta = await runA();
      tb = await runB();
    } else {
      tb = await runB();
      ta = await runA();
    }
    wa.push(ta.wall);
    wb.push(tb.wall);
    ca.push(ta.cpu);
    cb.push(tb.cpu);
    wr.push(tb.wall / ta.wall);
    cr.push(tb.cpu / ta.cpu);
  }
  await hosts.none();
  return { wallA: median(wa), wallB: median(wb), cpuA: median(ca), cpuB: median(cb), wallRatio: median(wr), cpuRatio: median(cr) };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const MB = 1024 * 1024;

/** A flood at 10× one worker's capacity; returns the note line. */
async function overload(sumModule: Uint8Array, maxQueued: number | undefined, quick: boolean, log: (line: string) => void): Promise<string> {
  const host = new EnclaveHost({ access: ACCESS });
  try {
    await host.start('flood', {
      module: sumModule,
      isolation: 'worker',
      instances: 1,
      policy: { fuel: 100_000_000 },
      ...(maxQueued === undefined ? {} : { queue: { maxQueued, maxQueuedPerCaller: maxQueued } }),
    });
    const call = (caller: string) => host.call(caller, 'flood', 'sum', SUM_N);
    for (let i = 0; i < 200; i++) await call('warm');

    // Unloaded: one call at a time.
    const unloaded: number[] = [];
    for (let i = 0; i < (quick ? 300 : 1000); i++) {
      const t0 = performance.now();
      await call('solo');
      unloaded.push(performance.now() - t0);
    }
    // Capacity: closed loop, as many in flight as the pool can hold plus one waiting each.
    const capacitySeconds = quick ? 0.5 : 1.5;
    let done = 0;
    const until = performance.now() + capacitySeconds * 1000;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 2 }, async (_, k) => {
        while (performance.now() < until) {
          await call(`cap-${k}`);
          done++;
        }
      }),
    );
    const capacity = done / ((performance.now() - t0) / 1000);

    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const before = process.memoryUsage();
    const lag = monitorEventLoopDelay({ resolution: 1 });
    lag.enable();
    const elu0 = performance.eventLoopUtilization();

    // The flood: open loop, every millisecond the calls due at OVERLOAD × capacity.
    const floodSeconds = quick ? 1 : 3;
    const rate = OVERLOAD * capacity;
    const admitted: number[] = [];
    const refused: number[] = [];
    const other = new Map<string, number>();
    const pending: Promise<void>[] = [];
    let offered = 0;
    const start = performance.now();
    const end = start + floodSeconds * 1000;
    while (performance.now() < end) {
      const due = Math.floor(((performance.now() - start) / 1000) * rate);
      for (; offered < due; offered++) {
        const c0 = performance.now();
        pending.push(
          call(`flood-${offered % FLOOD_CALLERS}`).then(
            () => void admitted.push(performance.now() - c0),
            (err: unknown) => {
              const code = err instanceof EnclaveError ? err.code : 'not-an-EnclaveError';
              if (code === 'overloaded') refused.push(performance.now() - c0);
              else other.set(code, (other.get(code) ?? 0) + 1);
            },
          ),
        );
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(pending);
    const elu = performance.eventLoopUtilization(elu0);
    lag.disable();
    pending.length = 0;
    gc?.();
    const after = process.memoryUsage();

    const unloadedP99 = percentile(unloaded, 99);
    const admittedP99 = percentile(admitted, 99);
    const others = [...other].map(([code, n]) => `${code} ${n}`).join(', ');
    const queue = maxQueued === undefined ? 'default queue (maxQueued 1024)' : `queue maxQueued ${maxQueued}`;
    const line =
      `Overload, 1 worker, ${queue}: capacity ${capacity.toFixed(0)} calls/s (unloaded p50 ${percentile(unloaded, 50).toFixed(2)} ms a call); offered ${offered} calls in ${floodSeconds} s (${(rate).toFixed(0)}/s, ${OVERLOAD}×) from ${FLOOD_CALLERS} callers: ` +
      `${((refused.length / offered) * 100).toFixed(1)}% answered \`overloaded\` (answered in p50 ${percentile(refused, 50).toFixed(3)} ms, p99 ${percentile(refused, 99).toFixed(3)} ms), ` +
      `${admitted.length} admitted${others === '' ? '' : `, other outcomes: ${others}`}; admitted p99 ${admittedP99.toFixed(2)} ms vs unloaded p99 ${unloadedP99.toFixed(2)} ms = ${(admittedP99 / unloadedP99).toFixed(2)}× (target ≤ 2×); the host thread meanwhile: ${(elu.utilization * 100).toFixed(0)}% busy (event-loop utilisation, generating and answering the flood), event-loop delay p99 ${(lag.percentile(99) / 1e6).toFixed(2)} ms; ` +
      `host RSS ${(before.rss / MB).toFixed(1)} → ${(after.rss / MB).toFixed(1)} MB, heap used ${(before.heapUsed / MB).toFixed(1)} → ${(after.heapUsed / MB).toFixed(1)} MB${gc === undefined ? ' (no --expose-gc: heap figures include uncollected garbage)' : ' (after gc)'}.`;
    log(`  ${line}`);
    return line;
  } finally {
    await host.close();
  }
}

if (isMain(import.meta.url)) await runStandalone(suite);
