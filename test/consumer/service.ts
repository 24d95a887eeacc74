// A strict TypeScript service, as a user of the package writes one: it loads the enclave that
// `enclave init kv` made and `enclave build kv` built, its ops typed by `enclave types` (kv.d.ts),
// and the echo module that ships in the package (the `enclave/modules/<name>.wasm` export).
// Prints one JSON line with what it got.
import { EnclaveError, loadEnclave } from 'enclave';
import type { KvOps } from './kv.js';

const kv = await loadEnclave<KvOps>('kv/build/kv.wasm');
const echo = await loadEnclave(new URL(import.meta.resolve('enclave/modules/echo.wasm')));
try {
  await kv.call('put', { k: 'a', v: 'b' });
  const value: string | null = await kv.call('get', { k: 'a' });
  const missing: string | null = await kv.call('get', { k: 'nothing' });
  const count: number | bigint = await kv.call('count');
  const removed: boolean = await kv.call('del', { k: 'a' });

  // Each call below is refused by the type checker (an unused @ts-expect-error is an error too).
  // They never run: the host's argument check would refuse them at run time as well.
  if (count === -1) {
    // @ts-expect-error v must be a string
    await kv.call('put', { k: 'a', v: 42 });
    // @ts-expect-error v is required
    await kv.call('put', { k: 'a' });
    // @ts-expect-error a field the contract does not declare
    await kv.call('get', { k: 'a', extra: true });
    // @ts-expect-error no such op
    await kv.call('nope', {});
    // @ts-expect-error get replies a string or null, not a number
    const wrong: number = await kv.call('get', { k: 'a' });
    void wrong;
  }

  // The host refuses at run time what the types refuse at compile time (a cast gets past tsc).
  let refused = '';
  try {
    await kv.call('put', { k: 'a', v: 42 } as unknown as { k: string; v: string });
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    refused = err.code;
  }

  const echoed = await echo.call('echo', { hello: 'enclave' });
  console.log(JSON.stringify({ value, missing, count: Number(count), removed, refused, echoed }));
} finally {
  await kv.close();
  await echo.close();
}
