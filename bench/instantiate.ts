/**
 * Start-up cost: an enclave from bytes (validate, compile, measure, instantiate), from a module
 * compiled once (`compileEnclave` + `create`), and the latency of the first call on a fresh
 * enclave, against raw WebAssembly doing the least of the same, and Extism creating its plugin.
 *
 *   npm run bench -- instantiate
 */
import { compileEnclave, createPackr, loadEnclave } from '../runtime/index.js';
import { closeEnclave, echoBytes, payload, probeWorkerMode } from './_enclaves.js';
import { defineSuite, isMain, runStandalone, type Case } from './_harness.js';
import { loadExtism } from './_peers.js';

/** Imports that satisfy any module importing only functions (the floor does not check them). */
function stubImports(module: WebAssembly.Module): WebAssembly.Imports {
  const imports: Record<string, Record<string, () => void>> = {};
  for (const i of WebAssembly.Module.imports(module)) (imports[i.module] ??= {})[i.name] = () => {};
  return imports;
}

export const suite = defineSuite({
  name: 'instantiate',
  description: 'start-up: from bytes, from a compiled module, first call',
  peerLabel: 'Extism',
  maxTime: 1,
  quickMaxTime: 0.25,
  async setup(ctx) {
    const bytes = await echoBytes(ctx.root);
    const notes: string[] = [];
    const request = new Uint8Array(createPackr().pack({ op: 'echo', args: payload(16) }));
    const rawModule = await WebAssembly.compile(bytes);
    const imports = stubImports(rawModule);
    const mod = await compileEnclave(bytes);

    /** The least a first call can be: instantiate, then the ABI by hand with no checks at all. */
    const rawFirstCall = (): number => {
      const { exports } = new WebAssembly.Instance(rawModule, imports);
      const p = (exports.enclave_alloc as (n: number) => number)(request.length);
      new Uint8Array((exports.memory as WebAssembly.Memory).buffer).set(request, p);
      return (exports.enclave_call as (p: number, n: number) => number)(p, request.length);
    };
    if (rawFirstCall() === 0) throw new Error('the raw first call got no reply');

    const cases: Case[] = [
      {
        name: 'wasm compile + instantiate',
        group: 'from bytes',
        role: 'floor',
        batch: 1,
        fn: async () => new WebAssembly.Instance(await WebAssembly.compile(bytes), imports),
      },
      {
        name: 'loadEnclave(bytes)',
        group: 'from bytes',
        peer: 'extism createPlugin(bytes)',
        batch: 1,
        fn: async () => closeEnclave(await loadEnclave(bytes)),
      },
      {
        name: 'new WebAssembly.Instance',
        group: 'from compiled module',
        role: 'floor',
        batch: 4,
        fn: () => {
          for (let i = 0; i < 4; i++) new WebAssembly.Instance(rawModule, imports);
        },
      },
      {
        name: 'module.create()',
        group: 'from compiled module',
        batch: 4,
        fn: () => {
          for (let i = 0; i < 4; i++) mod.create().close();
        },
      },
      {
        name: 'instantiate + raw ABI call',
        group: 'first call (16 B echo)',
        role: 'floor',
        batch: 4,
        fn: () => {
          for (let i = 0; i < 4; i++) rawFirstCall();
        },
      },
      {
        name: 'create() + first call',
        group: 'first call (16 B echo)',
        peer: 'extism create + first call',
        batch: 4,
        fn: async () => {
          for (let i = 0; i < 4; i++) {
            const e = mod.create();
            await e.call('echo', payload(16));
            e.close();
          }
        },
      },
    ];

    const worker = await probeWorkerMode(bytes);
    if (worker.ok) {
      cases.push({
        name: 'worker load + first call',
        group: 'first call (16 B echo)',
        ...(ctx.peers ? { peer: 'extism worker create + first call' } : {}),
        batch: 1,
        fn: async () => {
          const e = await worker.load(bytes);
          await e.call('echo', payload(16));
          await closeEnclave(e);
        },
      });
    } else {
      notes.push(worker.reason);
    }

    if (!ctx.peers) {
      notes.push('Extism: skipped (--no-peers)');
    } else {
      const ext = await loadExtism(ctx.root, ctx.log);
      if (!ext.ok) {
        notes.push(`Extism: not measured: ${ext.reason}`);
      } else {
        const wasm = await ext.peer.echoWasm();
        const data = payload(16);
        const peer = ext.peer;
        cases.push(
          {
            name: 'extism createPlugin(bytes)',
            group: 'from bytes',
            role: 'peer',
            batch: 1,
            fn: async () => (await peer.create(wasm, false)).close(),
          },
          {
            name: 'extism create + first call',
            group: 'first call (16 B echo)',
            role: 'peer',
            batch: 1,
            fn: async () => {
              const p = await peer.create(wasm, false);
              await p.echo(data);
              await p.close();
            },
          },
          {
            name: 'extism worker create + first call',
            group: 'first call (16 B echo)',
            role: 'peer',
            batch: 1,
            fn: async () => {
              const p = await peer.create(wasm, true);
              await p.echo(data);
              await p.close();
            },
          },
        );
        notes.push(
          `Extism @extism/extism ${peer.version}: createPlugin compiles the plugin from bytes each time, as loadEnclave(bytes) does; ` +
            `its echo plugin is ${wasm.length} bytes, our echo enclave ${bytes.length} (the SDK's msgpack codec and dispatch), so compile times differ by size too.`,
        );
      }
    }
    notes.push('V8 may reuse compiled code for identical bytes within one process; this affects the floor and every row alike.');
    return { cases, notes };
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
