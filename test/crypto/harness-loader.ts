// Builds and instantiates the crypto test harness (test/crypto/harness.ts): the SDK's
// AssemblyScript cryptography exposed over linear memory, without the msgpack boundary.

import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = 'test/crypto/build/harness.wasm';

/** The raw exports of the harness (see harness.ts for their meaning). */
export interface HarnessExports {
  memory: WebAssembly.Memory;
  alloc(len: number): number;
  free(ptr: number): void;
  [name: string]: any;
}

/** Compiles harness.ts with -O3 into test/crypto/build/ and returns the wasm bytes. */
export async function buildHarness(): Promise<Uint8Array> {
  mkdirSync(`${ROOT}test/crypto/build`, { recursive: true });
  let errors = '';
  const sink = { write: (s: string | Uint8Array) => { errors += String(s); return true; } };
  const { error } = await asc.main(
    [
      'test/crypto/harness.ts', '--outFile', OUT, '-O3', '--runtime', 'incremental',
      '--config', '/dev/null', '--baseDir', ROOT,
    ],
    { stdout: sink as any, stderr: sink as any },
  );
  if (error) throw new Error(`asc failed: ${error.message}\n${errors}`);
  return readFileSync(`${ROOT}${OUT}`);
}

/** A harness instance with helpers to move bytes in and out of its memory. */
export class Harness {
  readonly x: HarnessExports;
  /** Scratch slots (1 MiB each) allocated once. */
  readonly slots: number[];

  constructor(instance: WebAssembly.Instance) {
    this.x = instance.exports as unknown as HarnessExports;
    this.slots = Array.from({ length: 6 }, () => this.x.alloc(1 << 20));
  }

  static async create(bytes: Uint8Array): Promise<Harness> {
    const { instance } = await WebAssembly.instantiate(bytes, {
      env: {
        abort: () => {
          throw new Error('harness abort');
        },
      },
    });
    return new Harness(instance);
  }

  /** Copies `data` into slot `i` and returns its address. */
  put(i: number, data: Uint8Array): number {
    const p = this.slots[i]!;
    if (data.length > 1 << 20) throw new RangeError('harness slot overflow');
    new Uint8Array(this.x.memory.buffer).set(data, p);
    return p;
  }

  /** Reads `len` bytes at address `p`. */
  get(p: number, len: number): Uint8Array {
    return new Uint8Array(this.x.memory.buffer).slice(p, p + len);
  }

  /** The output slot's address (slot 5). */
  get out(): number {
    return this.slots[5]!;
  }
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/** Loads a Wycheproof JSON file copied into test/vectors/wycheproof/. */
export function wycheproof(name: string): any {
  return JSON.parse(readFileSync(`${ROOT}test/vectors/wycheproof/${name}`, 'utf8'));
}
