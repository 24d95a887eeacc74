/**
 * The disk cache of instrumented modules is bounded in entries and in bytes, and temporary files a
 * dead process left between write and rename are cleaned up (runtime/_fuel-cache.ts, `prune`;
 * docs/LIMITS.md, "The cache"): an instrumented module can be ~8x its 2 MiB input, so a count
 * alone let 256 entries hold about 4 GiB.
 */
import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prune } from '../runtime/_fuel-cache.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function cacheDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'enclave-prune-'));
  dirs.push(d);
  return d;
}

const name = (i: number) => `${i.toString(16).padStart(64, '0')}-fuel-v7.bin`;

/** Writes entry `i` of `size` bytes, written `age` seconds ago. */
function entry(dir: string, i: number, size: number, age: number): void {
  const file = join(dir, name(i));
  writeFileSync(file, Buffer.alloc(size));
  const t = Date.now() / 1000 - age;
  utimesSync(file, t, t);
}

describe('the disk fuel cache stays within its bounds', () => {
  it('keeps the total bytes under the byte bound, deleting the least recently written first', async () => {
    const dir = cacheDir();
    for (let i = 0; i < 10; i++) entry(dir, i, 1000, 100 - i); // entry 0 is the oldest
    await prune(dir, { entries: 256, bytes: 4500 });
    expect(readdirSync(dir).sort()).toEqual([6, 7, 8, 9].map(name));
  });

  it('keeps the number of entries under the entry bound', async () => {
    const dir = cacheDir();
    for (let i = 0; i < 6; i++) entry(dir, i, 10, 100 - i);
    await prune(dir, { entries: 2, bytes: 1 << 30 });
    expect(readdirSync(dir).sort()).toEqual([4, 5].map(name));
  });

  it('deletes a temporary file left more than an hour ago, never a fresh one (a write in progress)', async () => {
    const dir = cacheDir();
    const stale = `${name(1)}.123.0123456789ab.tmp`;
    const fresh = `${name(2)}.124.0123456789ab.tmp`;
    writeFileSync(join(dir, stale), 'x');
    writeFileSync(join(dir, fresh), 'x');
    const t = Date.now() / 1000 - 2 * 3600;
    utimesSync(join(dir, stale), t, t);
    await prune(dir);
    expect(readdirSync(dir)).toEqual([fresh]);
  });

  it('leaves files that are not its own alone', async () => {
    const dir = cacheDir();
    writeFileSync(join(dir, 'README'), 'x'.repeat(10_000));
    entry(dir, 1, 10, 0);
    await prune(dir, { entries: 256, bytes: 100 });
    expect(readdirSync(dir).sort()).toEqual([name(1), 'README']);
  });
});
