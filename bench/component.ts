/**
 * What a component costs against the core module built from the same AssemblyScript sources
 * (issue 14, "the cost"), side by side in one process. In every group the core module is the
 * `floor`, so the "× floor" column is component ÷ core:
 *
 * - `echo 16 B`, `echo 64 KiB` (a bin value): `enclave.call('echo', …)` on
 *   enclave-modules/echo/build/echo.wasm against echo.component.wasm, in-process, then in worker
 *   isolation. The component's call enters the core handler export directly (no glue on the call
 *   path) and its result area is copied into the core reply envelope on the host.
 * - `vault encrypt 64 B` (one `random` import per call: the nonce) and `vault encryptBatch 256 ×
 *   64 B` (256 imports in one call, per item): `VaultKey` on vault.wasm against vault.component.wasm
 *   (in-process, fuel metered, signed and trusted as deployed). A component's import goes through
 *   jco's glue (its trampoline, the lowering into the guest's memory through `cabi_realloc`), a core
 *   module's straight to the host function: the batch row's difference is the glue's cost per import call.
 * - `load, cold`: `loadEnclave(bytes, { cacheDir: false })` with the runtime's in-memory caches
 *   cleared first (instrumented modules; for a component also its transpiled glue): the gate,
 *   instrumentation of every core module, for a component the transpile (jco, in its worker), compile.
 * - `load, warm disk cache`: the same with a disk cache filled once (a temporary directory) and the
 *   in-memory caches cleared before each load, as a fresh process finds them.
 * - `load, in-memory caches`: the same process loading the same bytes again.
 * - `create()`: a new instance from a compiled module (`compileEnclave` once), closed at once.
 *
 *   npm run build && npm run bench -- component [--quick]     (or: node dist/bench/component.js)
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, generateKeyPair, signModule, SoftwareAttestationProvider, Vault, type VaultKey } from '../host/index.js';
import { readComponentInfo } from '../core/index.js';
import { clearFuelMemoryCache, clearTranspileMemoryCache, compileEnclave, loadEnclave, type Capability, type Enclave } from '../runtime/index.js';
import { closeEnclave, payload, probeWorkerMode } from './_enclaves.js';
import { defineSuite, formatBytes, isMain, runStandalone, type Case } from './_harness.js';

/** Echo sizes measured (a msgpack bin of this many bytes). */
const SIZES = [16, 65_536] as const;
/** Items of the `encryptBatch` row: one `random` import each. */
const BATCH_ITEMS = 256;

type Kind = 'core' | 'component';
const KINDS: readonly Kind[] = ['core', 'component'];

function moduleBytes(root: string, name: string, kind: Kind): Uint8Array {
  const path = join(root, 'enclave-modules', name, 'build', kind === 'core' ? `${name}.wasm` : `${name}.component.wasm`);
  try {
    return new Uint8Array(readFileSync(path));
  } catch {
    throw new Error(`${path} is missing: run \`npm run build\` first (it builds both the core module and the component)`);
  }
}

/** Forgets what the runtime keeps in memory between loads (instrumented modules, transpiled glue). */
function clearMemoryCaches(): void {
  clearFuelMemoryCache();
  clearTranspileMemoryCache();
}

function coreModuleCount(component: Uint8Array): number {
  return readComponentInfo(component).coreModules.length;
}

function sameBytes(a: unknown, b: Uint8Array): boolean {
  return a instanceof Uint8Array && a.length === b.length && a.every((v, i) => v === b[i]);
}

/** What an interleaved A/B measured: µs per operation (medians) and the median of the per-round ratios b ÷ a. */
interface AB {
  readonly a: number;
  readonly b: number;
  readonly wallRatio: number;
  readonly cpuRatio: number;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Rounds of one block of `a` (core) and one of `b` (component), alternating which goes first, after
 * one untimed block of each: less sensitive to a shared machine's drift than two cases timed
 * seconds apart, one after the other (the harness's cases, where the core one always goes first).
 * `ops` operations per call of `fn`.
 */
async function interleaved(rounds: number, block: number, ops: number, a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<AB> {
  const time = async (fn: () => Promise<unknown>) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < block; i++) await fn();
    const wall = ((performance.now() - t0) * 1000) / (block * ops);
    const cpu = process.cpuUsage(c0);
    return { wall, cpu: (cpu.user + cpu.system) / (block * ops) };
  };
  await time(a);
  await time(b);
  const wa: number[] = [], wb: number[] = [], wr: number[] = [], cr: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let ta, tb;
    if (r % 2 === 0) {
      ta = await time(a);
      tb = await time(b);
    } else {
      tb = await time(b);
      ta = await time(a);
    }
    wa.push(ta.wall);
    wb.push(tb.wall);
    wr.push(tb.wall / ta.wall);
    cr.push(tb.cpu / ta.cpu);
  }
  return { a: median(wa), b: median(wb), wallRatio: median(wr), cpuRatio: median(cr) };
}

const us = (x: number): string => (x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${x.toFixed(x >= 100 ? 0 : 1)} µs`);

const batchFor = (size: number, worker: boolean): number => (worker ? (size >= 65_536 ? 4 : 16) : size >= 65_536 ? 16 : 256);

/** A vault on its own platform and store in `dir`, running `module` (signed by a throwaway key and trusted). */
async function openVault(dir: string, module: Uint8Array): Promise<{ vault: Vault; key: VaultKey; close(): Promise<void> }> {
  const platform = new SoftwareAttestationProvider({ dir: join(dir, 'platform') }).open();
  const store = new FileStore(join(dir, 'store'));
  const release = generateKeyPair();
  const vault = await Vault.open({ store, attestation: platform, module: signModule(module, release), trust: { trusted: [{ publicKey: release.publicKey }] } });
  const key = await vault.create('bench-sym', { type: 'symmetric' });
  return {
    vault,
    key,
    close: async () => {
      await vault.close();
      await store.close();
    },
  };
}

export const suite = defineSuite({
  name: 'component',
  description: 'a component against the core module built from the same sources (× floor = component ÷ core): calls, an import through the glue, load, create',
  maxTime: 1,
  quickMaxTime: 0.25,
  async setup(ctx) {
    const notes: string[] = [
      'The floor of each group is the core module built from the same AssemblyScript sources (`enclave build`), so "× floor" is component ÷ core.',
    ];
    const closers: (() => Promise<void>)[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'enclave-bench-component-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const dispose = async (): Promise<void> => {
      for (const close of closers.reverse()) await close();
    };
    try {
      // Load and create first (their groups come first in the report), then the calls.
      const loadCases: Case[] = [];
      const callCases: Case[] = [];
      const echo = { core: moduleBytes(ctx.root, 'echo', 'core'), component: moduleBytes(ctx.root, 'echo', 'component') };
      const vaultBytes = { core: moduleBytes(ctx.root, 'vault', 'core'), component: moduleBytes(ctx.root, 'vault', 'component') };
      notes.push(`echo: core module ${echo.core.length} bytes, component ${echo.component.length}; vault: ${vaultBytes.core.length} and ${vaultBytes.component.length}.`);

      // ---- calls, in-process and in a worker --------------------------------------------------
      const inProcess = {} as Record<Kind, Enclave>;
      for (const kind of KINDS) {
        const e = await loadEnclave(echo[kind]);
        closers.push(() => closeEnclave(e));
        inProcess[kind] = e;
      }
      const worker = await probeWorkerMode(echo.core);
      const inWorker = {} as Partial<Record<Kind, Enclave>>;
      if (worker.ok) {
        for (const kind of KINDS) {
          const e = await worker.load(echo[kind]);
          closers.push(() => closeEnclave(e));
          inWorker[kind] = e;
        }
        notes.push("Worker rows: `loadEnclave(bytes, { isolation: 'worker' })`, one call at a time.");
      } else {
        notes.push(worker.reason);
      }
      const callCase = (kind: Kind, e: Enclave, data: Uint8Array, group: string, batch: number): Case => ({
        name: `${kind} ${group}`,
        group,
        ...(kind === 'core' ? { role: 'floor' as const } : {}),
        batch,
        fn: async () => {
          for (let i = 0; i < batch; i++) await e.call('echo', data);
        },
      });
      for (const size of SIZES) {
        const data = payload(size);
        for (const [mode, enclaves] of [['', inProcess], ['worker ', inWorker]] as const) {
          if (enclaves.core === undefined || enclaves.component === undefined) continue;
          const group = `${mode}echo ${formatBytes(size)}`;
          for (const kind of KINDS) {
            const e = enclaves[kind]!;
            if (!sameBytes(await e.call('echo', data), data)) throw new Error(`${kind} ${group}: the echo differs from the request`);
            callCases.push(callCase(kind, e, data, group, batchFor(size, mode !== '')));
          }
        }
      }

      // ---- an import per call: the vault's nonce from `random` ----------------------------------
      const plaintext = payload(64);
      const items = Array.from({ length: BATCH_ITEMS }, () => ({ plaintext }));
      const vaults: Partial<Record<Kind, Awaited<ReturnType<typeof openVault>>>> = {};
      for (const kind of KINDS) {
        const v = await openVault(join(dir, `vault-${kind}`), vaultBytes[kind]);
        closers.push(() => v.close());
        vaults[kind] = v;
        const sealed = await v.key.encrypt(plaintext);
        if (!sameBytes(await v.key.decrypt(sealed), plaintext)) throw new Error(`${kind} vault: decrypt(encrypt(64 B)) differs`);
        const batch = await v.key.encryptBatch(items);
        if (batch.length !== BATCH_ITEMS || batch.some((r) => !r.ok)) throw new Error(`${kind} vault: encryptBatch failed`);
        const floor = kind === 'core' ? { role: 'floor' as const } : {};
        callCases.push(
          {
            name: `${kind} vault encrypt 64 B`,
            group: 'vault encrypt 64 B (1 import)',
            ...floor,
            batch: 32,
            fn: async () => {
              for (let i = 0; i < 32; i++) await v.key.encrypt(plaintext);
            },
          },
          {
            name: `${kind} vault encryptBatch ${BATCH_ITEMS} × 64 B, per item`,
            group: `vault encryptBatch ${BATCH_ITEMS} × 64 B (1 import per item)`,
            ...floor,
            batch: BATCH_ITEMS,
            fn: () => v.key.encryptBatch(items),
          },
        );
      }
      // ---- the same calls, interleaved A/B -----------------------------------------------------
      {
        const rounds = ctx.quick ? 5 : 15;
        const scale = ctx.quick ? 0.25 : 1;
        const blocks: [string, number, number, Partial<Record<Kind, () => Promise<unknown>>>][] = [];
        for (const size of SIZES) {
          const data = payload(size);
          const n = Math.max(4, Math.round((size >= 65_536 ? 60 : 2000) * scale));
          blocks.push([`echo ${formatBytes(size)}`, n, 1, { core: () => inProcess.core.call('echo', data), component: () => inProcess.component.call('echo', data) }]);
          if (inWorker.core && inWorker.component) {
            const w = inWorker as Record<Kind, Enclave>;
            blocks.push([`worker echo ${formatBytes(size)}`, Math.max(4, Math.round((size >= 65_536 ? 40 : 300) * scale)), 1, { core: () => w.core.call('echo', data), component: () => w.component.call('echo', data) }]);
          }
        }
        blocks.push(
          ['vault encrypt 64 B', Math.max(4, Math.round(200 * scale)), 1, { core: () => vaults.core!.key.encrypt(plaintext), component: () => vaults.component!.key.encrypt(plaintext) }],
          [`vault encryptBatch ${BATCH_ITEMS} × 64 B, per item`, Math.max(1, Math.round(4 * scale)), BATCH_ITEMS, { core: () => vaults.core!.key.encryptBatch(items), component: () => vaults.component!.key.encryptBatch(items) }],
        );
        const lines: string[] = [];
        for (const [label, block, ops, fns] of blocks) {
          const r = await interleaved(rounds, block, ops, fns.core!, fns.component!);
          lines.push(`${label} ${r.wallRatio.toFixed(2)}× by wall time (${us(r.a)} → ${us(r.b)}), ${r.cpuRatio.toFixed(2)}× by CPU time`);
        }
        notes.push(`Interleaved A/B, component ÷ core, median of ${rounds} rounds (blocks alternating which goes first; CPU time of the whole process, every thread): ${lines.join('; ')}.`);
      }
      notes.push(
        `Vault rows: \`VaultKey.encrypt\` (one \`random\` import for the nonce) and \`encryptBatch\` of ${BATCH_ITEMS} items in one call (${BATCH_ITEMS} imports; per item), in-process, fuel metered; each vault on its own software platform and FileStore.`,
      );

      // ---- load and create: echo (one core module), the vault (three: wit-component's shims) ----
      const cacheDir = join(dir, 'cache');
      const platform = new SoftwareAttestationProvider({ dir: join(dir, 'load-platform') }).open();
      const loads = [
        { label: 'echo', bytes: echo, options: {} },
        { label: 'vault', bytes: vaultBytes, options: { capabilities: ['random', 'seal', 'counter'] as Capability[], attestation: platform } },
      ];
      const compiled = new Map<string, Awaited<ReturnType<typeof compileEnclave>>>();
      for (const { label, bytes } of loads) {
        for (const kind of KINDS) {
          clearMemoryCaches(); // a hit in memory would write nothing to disk
          compiled.set(`${label} ${kind}`, await compileEnclave(bytes[kind], { cacheDir })); // fills the disk cache
        }
      }
      let entries: string[] = [];
      try {
        entries = readdirSync(cacheDir);
      } catch {
        // not created: the disk cache is off (an untrusted directory)
      }
      if (!entries.some((f) => f.includes('-jco-'))) notes.push(`No transpiled glue was written to the disk cache (${entries.length} entries): a component's warm load transpiles again.`);
      if (entries.length === 0) notes.push('The disk cache was not used (no entry written): the warm rows load as cold.');
      notes.push(
        `Loads: echo (core modules in the component: ${coreModuleCount(echo.component)}) and the vault (${coreModuleCount(vaultBytes.component)}; granted random, seal and counter on a software platform). ` +
          'Cold and warm loads start from cleared in-memory caches; what the process keeps anyway is not cleared: V8 may reuse compiled code for identical Wasm bytes, and a glue already imported (a data: URL) is not evaluated again.',
      );
      for (const { label, bytes: byKind, options } of loads) {
        for (const kind of KINDS) {
          const bytes = byKind[kind];
          const floor = kind === 'core' ? { role: 'floor' as const } : {};
          const mod = compiled.get(`${label} ${kind}`)!;
          mod.create(options).close();
          loadCases.push(
            {
              name: `${kind} ${label} loadEnclave, cold`,
              group: `${label}: load, cold (no cache)`,
              ...floor,
              batch: 1,
              fn: async () => {
                clearMemoryCaches();
                await closeEnclave(await loadEnclave(bytes, { ...options, cacheDir: false }));
              },
            },
            {
              name: `${kind} ${label} loadEnclave, warm disk cache`,
              group: `${label}: load, warm disk cache`,
              ...floor,
              batch: 1,
              fn: async () => {
                clearMemoryCaches();
                await closeEnclave(await loadEnclave(bytes, { ...options, cacheDir }));
              },
            },
            {
              name: `${kind} ${label} loadEnclave, in-memory caches`,
              group: `${label}: load, in-memory caches`,
              ...floor,
              batch: 4,
              fn: async () => {
                for (let i = 0; i < 4; i++) await closeEnclave(await loadEnclave(bytes, { ...options, cacheDir }));
              },
            },
            {
              name: `${kind} ${label} module.create()`,
              group: `${label}: create() from a compiled module`,
              ...floor,
              batch: 4,
              fn: () => {
                for (let i = 0; i < 4; i++) mod.create(options).close();
              },
            },
          );
        }
      }
      // Cold loads of both modules first (the instrumentation and transpile workers warm), then warm, …
      const phases = ['load, cold (no cache)', 'load, warm disk cache', 'load, in-memory caches', 'create() from a compiled module'];
      loadCases.sort((a, b) => phases.findIndex((p) => a.group!.endsWith(p)) - phases.findIndex((p) => b.group!.endsWith(p)));
      {
        const probe = compiled.get('echo component')!.create();
        if (!sameBytes(await probe.call('echo', plaintext), plaintext)) throw new Error('component: create() + call did not echo');
        probe.close();
      }
      // The instrumenter and the transpiler run in workers that stop after 10 s idle; a fresh one
      // compiles binaryen (or jco) again and tiers it up for seconds, which the first cold case
      // measured would pay alone: run both kinds' cold loads here, alternating, until it settles.
      const warmUntil = performance.now() + (ctx.quick ? 1500 : 4000);
      for (let round = 0; round < 30 && (round < (ctx.quick ? 3 : 6) || performance.now() < warmUntil); round++) {
        for (const kind of round % 2 === 0 ? KINDS : [...KINDS].reverse()) {
          clearMemoryCaches();
          await closeEnclave(await loadEnclave(echo[kind], { cacheDir: false }));
        }
      }
      notes.push(
        'Before the cases, cold loads of both kinds alternate for a few seconds: the instrumentation and transpile workers (stopped after 10 s idle) are started and their Wasm tiered up, so the first cold case does not pay for it alone.',
      );
      return { cases: [...loadCases, ...callCases], notes, dispose };
    } catch (err) {
      await dispose();
      throw err;
    }
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
