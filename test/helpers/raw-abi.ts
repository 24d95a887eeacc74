// A minimal host for tests of the guest SDK at the ABI level (docs/ABI.md §2-3), independent of
// runtime/: instantiate with the `enclave` imports stubbed, alloc, copy in, call, read the
// descriptor, copy out.

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compileAssemblyScript } from '../../host/build/compile.js';
import { ABORT_ALIAS } from '../../host/build/settings.js';
import { Unpackr } from 'msgpackr';

/** The repository root (asc runs from here, as the build tool does). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Thrown when the enclave calls `enclave.abort`; the instance must then be discarded. */
export class RawAbort extends Error {
  override name = 'RawAbort';
}

export interface RawOptions {
  /** Bytes for the `random` import (default: a counter pattern, deterministic). */
  random?: (out: Uint8Array) => void;
  now?: () => bigint;
}

export interface RawEnclave {
  readonly instance: WebAssembly.Instance;
  readonly memory: WebAssembly.Memory;
  readonly aborts: string[];
  readonly logs: Array<[number, string]>;
  /** alloc + copy in + call + copy out; throws on a 0 pointer, a bad descriptor or a trap. */
  call(request: Uint8Array): Uint8Array;
  /** `enclave_alloc` */
  alloc(len: number): number;
  /** `enclave_call` on raw numbers; returns the descriptor pointer. */
  callAt(ptr: number, len: number): number;
  /** Reads and bounds-checks the descriptor at `d`; returns a copy of the reply. */
  readReply(d: number): Uint8Array;
}

/**
 * Compiles `enclave-modules/<name>/index.ts` exactly as the build tool does (without the contract
 * section and the load check): from the module's directory, with its contract's limits. Cached in
 * test/build/ by a hash of the sources, so test files don't each recompile; `cache: false` compiles
 * afresh (the reproducibility test).
 */
export async function compileModule(name: string, extraArgs: string[] = [], opts: { cache?: boolean } = {}): Promise<Uint8Array> {
  const contract = JSON.parse(readFileSync(`${ROOT}enclave-modules/${name}/contract.json`, 'utf8'));
  const { requestBytes = 65536, replyBytes = 65536, depth = 32, memoryPages = 16 } = contract.limits ?? {};
  const limits = { requestBytes, replyBytes, depth, memoryPages };
  const compile = () => compileAssemblyScript({ baseDir: `${ROOT}enclave-modules/${name}`, entry: 'index.ts', limits, extraArgs });
  if (opts.cache === false) return compile();
  const hash = createHash('sha256');
  const sources = [...sourcesUnder('enclave-modules/sdk'), ...sourcesUnder('sdk'), ...sourcesUnder('host/build'), ...sourcesUnder(`enclave-modules/${name}`)];
  for (const file of sources) {
    hash.update(file).update('\0').update(readFileSync(ROOT + file)).update('\0');
  }
  hash.update(JSON.stringify(extraArgs));
  const cached = `${ROOT}test/build/${name}-${hash.digest('hex').slice(0, 16)}.wasm`;
  try {
    return new Uint8Array(readFileSync(cached));
  } catch {
    const bytes = await compile();
    mkdirSync(`${ROOT}test/build`, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, cached); // atomic: parallel test files never read half a file
    return bytes;
  }
}

function sourcesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(ROOT + dir).sort()) {
    const rel = `${dir}/${entry}`;
    if (entry === 'build' || entry === 'node_modules') continue;
    if (statSync(ROOT + rel).isDirectory()) out.push(...sourcesUnder(rel));
    else if (entry.endsWith('.ts') || entry.endsWith('.json')) out.push(rel);
  }
  return out;
}

/**
 * Compiles an AssemblyScript entry (path relative to the repo root) with the build's settings
 * (host/build/compile.ts: `enclave/sdk` is this checkout's SDK) and the ABI's default limits.
 */
export async function compileEntry(entry: string, extraArgs: string[] = []): Promise<Uint8Array> {
  return compileAssemblyScript({ baseDir: ROOT, entry, extraArgs: ['--use', ABORT_ALIAS, ...extraArgs] });
}

/** Instantiates `bytes` with stub `enclave` imports. */
export async function instantiateRaw(bytes: Uint8Array, opts: RawOptions = {}): Promise<RawEnclave> {
  const aborts: string[] = [];
  const logs: Array<[number, string]> = [];
  let memory!: WebAssembly.Memory;
  const u8 = () => new Uint8Array(memory.buffer);
  const text = (p: number, n: number, max: number) =>
    new TextDecoder().decode(u8().slice(p, p + Math.min(n, max)));
  let ctr = 0;
  const imports = {
    enclave: {
      abort(p: number, n: number) {
        const msg = text(p, n, 256);
        aborts.push(msg);
        throw new RawAbort(msg);
      },
      random(p: number, n: number) {
        if (n > 65536 || p + n > memory.buffer.byteLength) return -1;
        const view = u8().subarray(p, p + n);
        if (opts.random) opts.random(view);
        else for (let i = 0; i < n; i++) view[i] = ctr++ & 0xff;
        return 0;
      },
      now: () => (opts.now ? opts.now() : 1_700_000_000_000n),
      log(level: number, p: number, n: number) {
        logs.push([level, text(p, n, 1024)]);
      },
      seal_key(_policy: number, out: number) {
        u8().fill(7, out, out + 32);
        return 0;
      },
      report() {
        return -3;
      },
    },
  };
  const { instance } = await WebAssembly.instantiate(bytes, imports);
  const ex = instance.exports as Record<string, unknown>;
  memory = ex.memory as WebAssembly.Memory;
  const alloc = ex.enclave_alloc as (n: number) => number;
  const callFn = ex.enclave_call as (p: number, n: number) => number;
  if ((ex.enclave_abi_version as () => number)() !== 1) throw new Error('abi version');

  const readReply = (d: number): Uint8Array => {
    if (d === 0) throw new Error('enclave_call returned 0');
    const size = memory.buffer.byteLength;
    if (d < 0 || d + 8 > size) throw new Error('descriptor out of bounds');
    const dv = new DataView(memory.buffer);
    const ptr = dv.getUint32(d, true);
    const len = dv.getUint32(d + 4, true);
    if (ptr + len > size) throw new Error('reply out of bounds');
    return u8().slice(ptr, ptr + len);
  };
  return {
    instance,
    memory,
    aborts,
    logs,
    alloc: (n) => alloc(n),
    callAt: (p, n) => callFn(p, n),
    readReply,
    call(request: Uint8Array): Uint8Array {
      const p = alloc(request.length);
      if (p === 0) throw new Error('enclave_alloc returned 0');
      u8().set(request, p);
      return readReply(callFn(p, request.length));
    },
  };
}

// ---- small msgpack helpers for building requests byte by byte ----


/** Concatenates byte arrays. */
export function concat(...parts: Array<Uint8Array | number[]>): Uint8Array {
  const arrays = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

/** A msgpack str (smallest header). */
export function mpStr(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const n = b.length;
  if (n < 32) return concat([0xa0 | n], b);
  if (n < 256) return concat([0xd9, n], b);
  if (n < 65536) return concat([0xda, n >> 8, n & 0xff], b);
  return concat([0xdb, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff], b);
}

/** A request envelope `{op, args}` with `args` given as raw msgpack bytes (omitted if undefined). */
export function request(op: string, args?: Uint8Array | number[]): Uint8Array {
  if (args === undefined) return concat([0x81], mpStr('op'), mpStr(op));
  return concat([0x82], mpStr('op'), mpStr(op), mpStr('args'), args);
}

/** The bytes of `{ok: <value>}` given the value's bytes. */
export function okReply(value: Uint8Array | number[]): Uint8Array {
  return concat([0x81, 0xa2, 0x6f, 0x6b], value);
}

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint' });

/** Decodes a reply with msgpackr (maps as objects, 64-bit ints as bigint). */
export function decode(bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes);
}

const unpackrMaps = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: 'bigint' });

/** Decodes with msgpackr, maps as `Map` (any key type). */
export function decodeAsMaps(bytes: Uint8Array): unknown {
  return unpackrMaps.unpack(bytes);
}

const CODES = ['bad_request', 'unknown_op', 'denied', 'state', 'limit', 'internal'];

/** Throws unless `reply` is exactly one ABI §4.2 envelope: `{ok: any}` or `{err: {code, message?}}`. */
export function assertEnvelope(reply: Uint8Array): void {
  const v = decodeAsMaps(reply);
  if (!(v instanceof Map) || v.size !== 1) throw new Error('reply is not a one-entry map');
  const [[key, val]] = [...v.entries()] as Array<[unknown, unknown]>;
  if (key === 'ok') return;
  if (key !== 'err' || !(val instanceof Map)) throw new Error('reply is neither {ok} nor {err}');
  const code = val.get('code');
  const keys = [...val.keys()].sort();
  if (!CODES.includes(code as string)) throw new Error(`unexpected error code ${String(code)}`);
  if (keys.join() !== 'code' && keys.join() !== 'code,message') throw new Error('unexpected err keys');
  const message = val.get('message');
  if (message !== undefined && (typeof message !== 'string' || new TextEncoder().encode(message).length > 256)) {
    throw new Error('bad message');
  }
}

/** Hex of bytes (for readable assertions). */
export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Bytes from the msgpack-test-suite's `"cc-00"` notation. */
export function fromSuiteHex(s: string): Uint8Array {
  return s === '' ? new Uint8Array(0) : Uint8Array.from(s.split('-').map((h) => parseInt(h, 16)));
}

/** The error code of an `{err: {code}}` reply, or undefined for an `{ok}` reply. */
export function errCode(reply: Uint8Array): string | undefined {
  const v = decode(reply) as { ok?: unknown; err?: { code: string } };
  return v.err?.code;
}
