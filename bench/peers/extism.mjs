// The Extism JS SDK as a benchmark peer. Imported by bench/*.ts through a path computed at run
// time, so nothing outside bench/peers depends on @extism/extism at type-check time.
import { readFile } from 'node:fs/promises';

const { createPlugin } = await import('@extism/extism');

/** The SDK version, for the report (its package.json is not in its exports map). */
export const version = JSON.parse(
  await readFile(new URL('./node_modules/@extism/extism/package.json', import.meta.url), 'utf8'),
).version;

/** The echo plugin's bytes (built by setup.mjs from src/echo.ts with @extism/as-pdk). */
export async function echoWasm() {
  return new Uint8Array(await readFile(new URL('./build/echo.wasm', import.meta.url)));
}

/**
 * Creates an Extism plugin from bytes. `runInWorker: true` runs it in a worker thread (the
 * SDK's background plugin); `false` on the calling thread.
 */
export async function create(wasm, runInWorker) {
  const plugin = await createPlugin({ wasm: [{ data: wasm }] }, { useWasi: false, runInWorker });
  return {
    /**
     * Calls `echo` and returns the output bytes (copied out of the plugin), then `reset()`s the
     * plugin: the SDK keeps every call's input and output blocks until a reset, so without it the
     * main-thread plugin fails after about 16k calls (block addresses overflow) and the worker
     * plugin ships all accumulated blocks across on every call. A long-running host must reset.
     */
    async echo(bytes) {
      const out = await plugin.call('echo', bytes);
      if (out === null) throw new Error('extism echo returned no output');
      const copy = out.bytes(); // its own buffer: blocks live outside Wasm memory
      await plugin.reset();
      return copy;
    },
    close: () => plugin.close(),
  };
}
