/**
 * FileStore (host/store/) driven by a hostile or careless caller: blobs that are not what they
 * claim to be (a Uint8Array subclass whose `length` lies, a Proxy, an object that only inherits from
 * Uint8Array, a view of a detached buffer). Every one is refused with a stable code before anything
 * is written, and nothing acknowledged is ever unreadable.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EnclaveError } from '../core/index.js';
import { FileStore } from '../host/store/index.js';
import { syncCodeOf } from './helpers/errors.js';

const root = mkdtempSync(join(tmpdir(), 'enclave-review-store-caller-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const fresh = () => new FileStore(join(root, `s${++dirs}`), { maxBlobBytes: 1024 });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return (err as EnclaveError).code;
  }
  throw new Error('expected a rejection');
}

describe('FileStore.put: the blob is what it is, not what it says', () => {
  it('a subclass whose length getter says 0 cannot store more than maxBlobBytes (acknowledged, then too_large forever)', async () => {
    class Liar extends Uint8Array {
      override get length(): number {
        return 0;
      }
    }
    const store = fresh();
    expect(await codeOf(store.put('big', new Liar(4096), { expectedVersion: 0 }))).toBe('too_large');
    expect(await store.get('big')).toBeUndefined();
    // Within the bound, a subclass is stored whole, whatever its getter says.
    await store.put('small', new Liar(100).fill(7), { expectedVersion: 0 });
    const got = await store.get('small');
    expect(got?.bytes.length).toBe(100);
    expect(got?.bytes.every((b) => b === 7)).toBe(true);
    await store.close();
  });

  it('a Proxy of a Uint8Array and an object inheriting from Uint8Array.prototype are invalid_args, not a TypeError', async () => {
    const store = fresh();
    expect(await codeOf(store.put('p', new Proxy(new Uint8Array(3), {}), { expectedVersion: 0 }))).toBe('invalid_args');
    expect(await codeOf(store.put('o', Object.create(Uint8Array.prototype) as Uint8Array, { expectedVersion: 0 }))).toBe('invalid_args');
    expect(await store.list()).toEqual([]);
    await store.close();
  });

  it('a view of a detached buffer is invalid_args, not a TypeError', async () => {
    const store = fresh();
    const view = new Uint8Array(8);
    structuredClone(view.buffer, { transfer: [view.buffer] });
    expect(await codeOf(store.put('d', view, { expectedVersion: 0 }))).toBe('invalid_args');
    expect(await store.list()).toEqual([]);
    await store.close();
  });

  it('a Buffer slice of the shared pool stores only its own bytes', async () => {
    const store = fresh();
    const neighbour = Buffer.from('neighbour-secret');
    const slice = Buffer.from('abc');
    expect(slice.buffer.byteLength).toBeGreaterThan(3); // a view into Node's pool
    await store.put('b', slice, { expectedVersion: 0 });
    expect(Buffer.from((await store.get('b'))!.bytes).toString()).toBe('abc');
    expect(neighbour.length).toBe(16);
    await store.close();
  });
});

describe('new FileStore(dir): a directory that is a file is the caller\'s mistake, not a retryable failure', () => {
  it('a regular file, a FIFO, or a file among the parents is invalid_options (was unavailable: "retry")', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    expect(syncCodeOf(() => new FileStore(file))).toBe('invalid_options');
    expect(syncCodeOf(() => new FileStore(join(file, 'below')))).toBe('invalid_options');
    if (process.platform !== 'win32') {
      const fifo = join(root, 'a-fifo');
      execFileSync('mkfifo', [fifo]);
      expect(syncCodeOf(() => new FileStore(fifo))).toBe('invalid_options');
    }
  });
});
