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
import * as runtime from '../runtime/index.js';
import { clearFuelMemoryCache, compileEnclave, loadEnclave, type Enclave } from '../runtime/index.js';
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

/** The transpile cache's clear hook (internal), when this runtime exports one. */
const clearTranspile = (runtime as Record<string, unknown>).clearTranspileMemoryCache as (() => void) | undefined;

/** Forgets what the runtime keeps in memory between loads (instrumented modules, transpiled glue). */
function clearMemoryCaches(): void {
  clearFuelMemoryCache();
  clearTranspile?.();
}

function sameBytes(a: unknown, b: Uint8Array): boolean {
  return a instanceof Uint8Array && a.length === b.length && a.every((v, i) => v === b[i]);
}

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
      const cases: Case[] = [];
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
            cases.push(callCase(kind, e, data, group, batchFor(size, mode !== '')));
          }
        }
      }

      // ---- an import per call: the vault's nonce from `random` ----------------------------------
      const plaintext = payload(64);
      const items = Array.from({ length: BATCH_ITEMS }, () => ({ plaintext }));
      for (const kind of KINDS) {
        const v = await openVault(join(dir, `vault-${kind}`), vaultBytes[kind]);
        closers.push(() => v.close());
        const sealed = await v.key.encrypt(plaintext);
        if (!sameBytes(await v.key.decrypt(sealed), plaintext)) throw new Error(`${kind} vault: decrypt(encrypt(64 B)) differs`);
        const batch = await v.key.encryptBatch(items);
        if (batch.length !== BATCH_ITEMS || batch.some((r) => !r.ok)) throw new Error(`${kind} vault: encryptBatch failed`);
        const floor = kind === 'core' ? { role: 'floor' as const } : {};
        cases.push(
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
      notes.push(
        `Vault rows: \`VaultKey.encrypt\` (one \`random\` import for the nonce) and \`encryptBatch\` of ${BATCH_ITEMS} items in one call (${BATCH_ITEMS} imports; per item), in-process, fuel metered; each vault on its own software platform and FileStore.`,
      );

      // ---- load and create --------------------------------------------------------------------
      const cacheDir = join(dir, 'cache');
      const compiled = {} as Record<Kind, Awaited<ReturnType<typeof compileEnclave>>>;
      for (const kind of KINDS) {
        clearMemoryCaches(); // a hit in memory would write nothing to disk
        compiled[kind] = await compileEnclave(echo[kind], { cacheDir }); // fills the disk cache
      }
      let entries: string[] = [];
      try {
        entries = readdirSync(cacheDir);
      } catch {
        // not created: the disk cache is off (an untrusted directory)
      }
      if (!entries.some((f) => f.includes('-jco-'))) notes.push(`The warm rows of the component: no transpiled glue on disk (${entries.length} cache entries): this runtime keeps the glue in memory only, so a warm load transpiles again.`);
      if (entries.length === 0) notes.push('The disk cache was not used (no entry written): the warm rows load as cold.');
      if (clearTranspile === undefined) notes.push('This runtime cannot clear its transpile cache: the component\'s cold and warm rows reuse the glue transpiled in memory.');
      notes.push(
        'Cold and warm loads start from cleared in-memory caches; what the process keeps anyway is not cleared: V8 may reuse compiled code for identical Wasm bytes, and a glue already imported (a data: URL) is not evaluated again.',
      );
      for (const kind of KINDS) {
        const bytes = echo[kind];
        const floor = kind === 'core' ? { role: 'floor' as const } : {};
        const mod = compiled[kind];
        const probe = mod.create();
        if (!sameBytes(await probe.call('echo', plaintext), plaintext)) throw new Error(`${kind}: create() + call did not echo`);
        probe.close();
        cases.push(
          {
            name: `${kind} loadEnclave, cold`,
            group: 'load, cold (no cache)',
            ...floor,
            batch: 1,
            fn: async () => {
              clearMemoryCaches();
              await closeEnclave(await loadEnclave(bytes, { cacheDir: false }));
            },
          },
          {
            name: `${kind} loadEnclave, warm disk cache`,
            group: 'load, warm disk cache',
            ...floor,
            batch: 1,
            fn: async () => {
              clearMemoryCaches();
              await closeEnclave(await loadEnclave(bytes, { cacheDir }));
            },
          },
          {
            name: `${kind} loadEnclave, in-memory caches`,
            group: 'load, in-memory caches',
            ...floor,
            batch: 4,
            fn: async () => {
              for (let i = 0; i < 4; i++) await closeEnclave(await loadEnclave(bytes, { cacheDir }));
            },
          },
          {
            name: `${kind} module.create()`,
            group: 'create() from a compiled module',
            ...floor,
            batch: 4,
            fn: () => {
              for (let i = 0; i < 4; i++) mod.create().close();
            },
          },
        );
      }
      return { cases, notes, dispose };
    } catch (err) {
      await dispose();
      throw err;
    }
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
