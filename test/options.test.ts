/**
 * The one option settler (runtime/options.ts): the `cacheDir` compile option, settled once and
 * passed down to the instrumentation cache instead of the cache reading the environment itself,
 * and conflicts refused up front, before a module is read.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileEnclave, loadEnclave } from '../host/index.js';
import { codeOf } from './helpers/errors.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

/** A module no other test compiles (a unique data segment), so the in-memory cache cannot answer for it. */
const unique = (tag: string) => watModule(minimalWat({ body: `(data (i32.const 0x300) "${tag}-${process.pid}-${Date.now()}")` }), MINIMAL_CONTRACT);

describe('cacheDir', () => {
  it('a directory: instrumented bytes are cached there', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'enclave-cachedir-'));
    const mod = await compileEnclave(await unique('dir'), { cacheDir: dir });
    expect(await mod.create().call('ping')).toBe(true);
    expect((await readdir(dir, { recursive: true })).length).toBeGreaterThan(0);
  });

  it('false: nothing on disk, and the module works', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'enclave-cachedir-'));
    const before = process.env.ENCLAVE_CACHE_DIR;
    process.env.ENCLAVE_CACHE_DIR = dir;
    try {
      const e = await loadEnclave(await unique('off'), { cacheDir: false });
      expect(await e.call('ping')).toBe(true);
    } finally {
      if (before === undefined) delete process.env.ENCLAVE_CACHE_DIR;
      else process.env.ENCLAVE_CACHE_DIR = before;
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it('anything else is invalid_options, in both modes', async () => {
    const bytes = await unique('bad');
    for (const cacheDir of [42, '', true, null]) {
      expect(await codeOf(compileEnclave(bytes, { cacheDir } as never))).toBe('invalid_options');
      expect(await codeOf(loadEnclave(bytes, { cacheDir } as never))).toBe('invalid_options');
      expect(await codeOf(loadEnclave(bytes, { cacheDir, isolation: 'worker' } as never))).toBe('invalid_options');
    }
  });
});

describe('conflicts are refused before the module is read', () => {
  it('a worker-only option in-process, or an unknown isolation: invalid_options even for bytes that are no module', async () => {
    const junk = new Uint8Array([1, 2, 3]);
    expect(await codeOf(loadEnclave(junk, { deadlineMs: 100 } as never))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(junk, { isolation: 'thread' } as never))).toBe('invalid_options');
    expect(await codeOf(loadEnclave(junk, { isolation: 'worker', maxQueue: -1 }))).toBe('invalid_options');
  });
});
