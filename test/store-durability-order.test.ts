// FileStore's write path in the order that makes a put durable before it resolves: the blob's bytes
// fsynced in tmp/, then renamed into place, then the directory that holds it fsynced. A SIGKILL test
// cannot see a missing fsync (the page cache outlives the process); this one records the calls.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';

const calls: string[] = [];

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const open: typeof real.open = async (path, flags, mode) => {
    const fh = await real.open(path, flags, mode);
    const sync = fh.sync.bind(fh);
    fh.sync = async () => {
      calls.push(`fsync ${String(path)}`);
      return sync();
    };
    return fh;
  };
  const rename: typeof real.rename = async (from, to) => {
    calls.push(`rename ${String(from)} -> ${String(to)}`);
    return real.rename(from, to);
  };
  return { ...real, default: { ...real, open, rename }, open, rename };
});

const { FileStore } = await import('../host/store/index.js');

const root = mkdtempSync(join(tmpdir(), 'enclave-store-order-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('FileStore.put: durable before it resolves', () => {
  beforeEach(() => {
    calls.length = 0;
  });

  it('fsyncs the blob, renames it into place, then fsyncs its directory, all before put resolves', async () => {
    const store = new FileStore(join(root, 's1'));
    await store.put('alpha', new Uint8Array([1, 2, 3]), { expectedVersion: 0 });
    const resolvedAt = calls.length;
    // The rename that publishes the blob (not the lock's staging renames).
    const publish = calls.findIndex((c) => c.startsWith('rename ') && /\/tmp\/[^/]+\.blob -> /.test(c));
    expect(publish, calls.join('\n')).toBeGreaterThan(0);
    const tmpFile = /^rename (\S+) -> (\S+)$/.exec(calls[publish]!)!;
    const target = tmpFile[2]!;
    // The blob's own bytes were fsynced before the rename...
    expect(calls.slice(0, publish)).toContain(`fsync ${tmpFile[1]}`);
    // ...and the directory now holding it after the rename, before put resolved.
    const dirSync = calls.findIndex((c, i) => i > publish && c === `fsync ${target.slice(0, target.lastIndexOf('/'))}`);
    expect(dirSync, calls.join('\n')).toBeGreaterThan(publish);
    expect(dirSync).toBeLessThan(resolvedAt);
    await store.close();
  });

  it('a second put of the same name follows the same order (the overwrite is durable too)', async () => {
    const store = new FileStore(join(root, 's2'));
    await store.put('beta', new Uint8Array([1]), { expectedVersion: 0 });
    calls.length = 0;
    await store.put('beta', new Uint8Array([2]), { expectedVersion: 1 });
    const publish = calls.findIndex((c) => /^rename \S+\/tmp\/[^/]+\.blob -> /.test(c));
    expect(publish, calls.join('\n')).toBeGreaterThan(0);
    const [, from, to] = /^rename (\S+) -> (\S+)$/.exec(calls[publish]!)!;
    expect(calls.slice(0, publish)).toContain(`fsync ${from}`);
    expect(calls.slice(publish + 1)).toContain(`fsync ${to!.slice(0, to!.lastIndexOf('/'))}`);
    await store.close();
  });
});
