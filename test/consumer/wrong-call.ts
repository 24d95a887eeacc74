// A typed call with a wrong argument: this file must NOT compile (the consumer test checks that
// tsc reports an error on the marked line, and only there).
import { loadEnclave } from 'enclave';
import type { KvOps } from './kv.js';

const kv = await loadEnclave<KvOps>('kv/build/kv.wasm');
await kv.call('put', { k: 'a', v: 42 }); // WRONG: v must be a string
await kv.close();
