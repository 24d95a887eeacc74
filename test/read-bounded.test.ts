/**
 * core/read-bounded.ts: the one bounded read of a named file (module, contract.json, CLI input),
 * each outcome reported for the caller to turn into its own error.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readBoundedFile } from '../core/index.js';

const dir = mkdtempSync(join(tmpdir(), 'enclave-read-bounded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readBoundedFile', () => {
  it('reads a regular file of up to max bytes whole, by path or file URL', async () => {
    const file = join(dir, 'exact.bin');
    writeFileSync(file, Buffer.from([1, 2, 3, 4]));
    for (const source of [file, pathToFileURL(file)]) {
      const read = await readBoundedFile(source, 4);
      expect(read.kind).toBe('ok');
      if (read.kind === 'ok') expect([...read.bytes]).toEqual([1, 2, 3, 4]);
    }
    const empty = join(dir, 'empty.bin');
    writeFileSync(empty, '');
    const read = await readBoundedFile(empty, 4);
    expect(read.kind === 'ok' && read.bytes.length).toBe(0);
  });

  it('refuses a file of max + 1 bytes as too_large with its size', async () => {
    const file = join(dir, 'big.bin');
    writeFileSync(file, Buffer.alloc(5));
    expect(await readBoundedFile(file, 4)).toEqual({ kind: 'too_large', size: 5, atLeast: false });
  });

  it('refuses a directory, a device and a FIFO as not_regular, without waiting for a writer', async () => {
    expect(await readBoundedFile(dir, 1 << 20)).toEqual({ kind: 'not_regular' });
    if (process.platform === 'win32') return;
    expect(await readBoundedFile('/dev/zero', 1 << 20)).toEqual({ kind: 'not_regular' });
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await readBoundedFile(fifo, 1 << 20)).toEqual({ kind: 'not_regular' });
  });

  it('reports a file that cannot be opened with its errno code', async () => {
    const read = await readBoundedFile(join(dir, 'missing.json'), 10);
    expect(read.kind).toBe('errno');
    if (read.kind === 'errno') {
      expect(read.code).toBe('ENOENT');
      expect(read.error).toBeInstanceOf(Error);
    }
  });
});
