/**
 * FileStore (host/store/): the SealedStore contract (docs/STORE.md) and its hostile cases:
 * compare-and-set of put and delete (also between instances and between processes), list paging in
 * byte order, hostile names, bounds, hostile contents on disk (garbage, truncation, a blob of
 * another name, a planted link, directory or FIFO), the directory checks, dead writers' temp files
 * and locks, and I/O errors. The SIGKILL loop is test/store-crash.test.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { EnclaveError } from '../core/index.js';
import { FileStore, STORE_LIMITS, type SealedStore } from '../host/store/index.js';
import { derive, snapshotStore } from './helpers/store-writer.mjs';

const root = mkdtempSync(join(tmpdir(), 'enclave-store-file-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const fresh = () => join(root, `s${++dirs}`);
const bytes = (...values: number[]) => new Uint8Array(values);
const hex = (name: string) => Buffer.from(name, 'utf8').toString('hex');

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<EnclaveError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return err as EnclaveError;
  }
  throw new Error('expected a rejection');
}
const code = async (p: Promise<unknown>) => (await failure(p)).code;

/** The path of a short name's blob file. */
const leafOf = (dir: string, name: string) => join(dir, 'data', `${hex(name)}.b`);

describe('FileStore: get, put, versions', () => {
  it('stores, reads back and versions a blob; a missing name reads as undefined', async () => {
    const store = new FileStore(fresh());
    expect(await store.get('a')).toBeUndefined();
    const first = await store.put('a', bytes(1, 2, 3), { expectedVersion: 0 });
    expect(first).toEqual({ name: 'a', version: 1, bytes: bytes(1, 2, 3) });
    expect(await store.get('a')).toEqual({ name: 'a', version: 1, bytes: bytes(1, 2, 3) });
    const second = await store.put('a', new Uint8Array(0), { expectedVersion: 1 });
    expect(second.version).toBe(2);
    expect(await store.get('a')).toEqual({ name: 'a', version: 2, bytes: new Uint8Array(0) });
    await store.close();
  });

  it('copies: changing the array after put, or the array get returned, changes nothing stored', async () => {
    const store = new FileStore(fresh());
    const data = bytes(1, 2, 3);
    const pending = store.put('a', data, { expectedVersion: 0 });
    data[0] = 9; // before the write happened
    const put = await pending;
    put.bytes[1] = 9;
    const got = (await store.get('a'))!;
    got.bytes[2] = 9;
    expect((await store.get('a'))!.bytes).toEqual(bytes(1, 2, 3));
    expect(Object.getPrototypeOf(got.bytes)).toBe(Uint8Array.prototype);
  });

  it('refuses a put whose expected version is not the current one with `conflict`, changing nothing', async () => {
    const store = new FileStore(fresh());
    expect(await code(store.put('a', bytes(1), { expectedVersion: 1 }))).toBe('conflict'); // absent
    await store.put('a', bytes(1), { expectedVersion: 0 });
    expect(await code(store.put('a', bytes(2), { expectedVersion: 0 }))).toBe('conflict'); // exists
    await store.put('a', bytes(2), { expectedVersion: 1 });
    expect(await code(store.put('a', bytes(3), { expectedVersion: 1 }))).toBe('conflict'); // stale
    expect(await code(store.put('a', bytes(3), { expectedVersion: 3 }))).toBe('conflict'); // ahead
    expect(await store.get('a')).toEqual({ name: 'a', version: 2, bytes: bytes(2) });
    const err = await failure(store.put('a', bytes(3), { expectedVersion: 1 }));
    expect(err.flags.retryable).toBe(false);
  });

  it('lets exactly one of two concurrent puts with the same expected version win, in one instance and across two', async () => {
    const dir = fresh();
    const one = new FileStore(dir);
    const two = new FileStore(dir);
    for (let round = 0; round < 20; round++) {
      const [a, b] = round % 2 === 0 ? [one, one] : [one, two];
      const results = await Promise.allSettled([a.put('n', bytes(round, 1), { expectedVersion: round }), b.put('n', bytes(round, 2), { expectedVersion: round })]);
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect((lost.reason as EnclaveError).code).toBe('conflict');
      const winner = (won[0] as PromiseFulfilledResult<{ bytes: Uint8Array; version: number }>).value;
      expect(winner.version).toBe(round + 1);
      expect(await two.get('n')).toEqual({ name: 'n', version: round + 1, bytes: winner.bytes });
    }
  });

  it('lets exactly one of three processes win each round of puts with the same expected version', async () => {
    const dir = fresh();
    new FileStore(dir);
    const url = snapshotStore(join(root, `dist-${dirs}`));
    const writer = fileURLToPath(new URL('./helpers/store-writer.mjs', import.meta.url));
    const children = ['p0', 'p1', 'p2'].map((id) => {
      const child = spawn(process.execPath, [writer, 'race', dir, id], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ENCLAVE_STORE_URL: url } });
      return { id, child, lines: lineReader(child) };
    });
    try {
      for (const c of children) expect(await c.lines.next()).toBe('ready');
      for (let round = 0; round < 30; round++) {
        for (const c of children) c.child.stdin!.write(`go race ${round}\n`);
        const answers = await Promise.all(children.map((c) => c.lines.next()));
        const winners = children.filter((_, i) => answers[i] === `ok ${round + 1}`);
        expect(answers.filter((a) => a !== 'conflict' && !a.startsWith('ok ')), `round ${round}`).toEqual([]);
        expect(winners, `round ${round}: ${answers.join(', ')}`).toHaveLength(1);
        const got = await new FileStore(dir).get('race');
        expect(got?.version).toBe(round + 1);
        expect(Buffer.from(got!.bytes).equals(Buffer.from(derive(winners[0]!.id, 'race', round + 1)))).toBe(true);
      }
    } finally {
      for (const c of children) c.child.stdin!.end();
      await Promise.all(children.map((c) => new Promise((r) => (c.child.exitCode !== null ? r(undefined) : c.child.on('exit', r)))));
    }
  }, 60_000);
});

/** Lines of a child's stdout, one `next()` at a time. */
function lineReader(child: ChildProcess): { next(): Promise<string> } {
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let buffered = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  child.on('exit', () => {
    for (const w of waiting.splice(0)) w('exited');
  });
  return { next: () => (lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise((r) => waiting.push(r))) };
}

describe('FileStore: delete', () => {
  it('deletes only at the expected version; a deleted name can be created again at version 1', async () => {
    const store = new FileStore(fresh());
    expect(await code(store.delete('a', { expectedVersion: 1 }))).toBe('conflict'); // absent
    await store.put('a', bytes(1), { expectedVersion: 0 });
    await store.put('a', bytes(2), { expectedVersion: 1 });
    expect(await code(store.delete('a', { expectedVersion: 1 }))).toBe('conflict');
    expect(await code(store.delete('a', { expectedVersion: 3 }))).toBe('conflict');
    expect((await store.get('a'))?.version).toBe(2);
    await store.delete('a', { expectedVersion: 2 });
    expect(await store.get('a')).toBeUndefined();
    expect(await store.list()).toEqual([]);
    expect(await code(store.delete('a', { expectedVersion: 2 }))).toBe('conflict');
    expect(await code(store.put('a', bytes(3), { expectedVersion: 2 }))).toBe('conflict');
    expect((await store.put('a', bytes(3), { expectedVersion: 0 })).version).toBe(1);
  });

  it('refuses expectedVersion 0 for a delete (there is nothing to delete) with invalid_options', async () => {
    const store = new FileStore(fresh());
    expect(await code(store.delete('a', { expectedVersion: 0 }))).toBe('invalid_options');
  });

  it('lets exactly one of a delete and a put at the same version win', async () => {
    const store = new FileStore(fresh());
    const other = new FileStore(store.directory);
    for (let round = 0; round < 10; round++) {
      await store.put('d', bytes(round), { expectedVersion: 0 });
      const results = await Promise.allSettled([store.delete('d', { expectedVersion: 1 }), other.put('d', bytes(99), { expectedVersion: 1 })]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const now = await store.get('d');
      if (results[0].status === 'fulfilled') expect(now).toBeUndefined();
      else {
        expect(now?.version).toBe(2);
        await store.delete('d', { expectedVersion: 2 });
      }
    }
  });
});

describe('FileStore: list', () => {
  it('pages through every name in UTF-8 byte order, with prefix, after and limit', async () => {
    const store = new FileStore(fresh());
    const names = new Set<string>();
    for (let i = 0; i < 230; i++) names.add(`vault/k${String(i).padStart(3, '0')}`);
    // Byte order differs from JS string order for U+E000..U+FFFF against astral characters.
    for (const n of ['a', 'B', 'b', 'é', 'e\u0301', '\uFF21', '\u{1F600}', 'vault', 'vault0', 'x/y', 'z'.repeat(256)]) names.add(n);
    // Names that span path components, and one that ends where another goes on (120 bytes = one component).
    const base = 'q'.repeat(120);
    for (const n of [base, `${base}a`, `${base}${'r'.repeat(120)}`, `${base}${'r'.repeat(120)}s`, `${base}${'r'.repeat(119)}`, 'é'.repeat(128)]) names.add(n);
    for (const n of names) await store.put(n, bytes(1), { expectedVersion: 0 });
    const sorted = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

    const all: string[] = [];
    for (let page = await store.list({ limit: 7 }); page.length > 0; page = await store.list({ after: all.at(-1)!, limit: 7 })) {
      expect(page.length).toBeLessThanOrEqual(7);
      all.push(...page);
    }
    expect(all).toEqual(sorted);
    expect(await store.list()).toEqual(sorted.slice(0, STORE_LIMITS.defaultListLimit));
    expect(await store.list({ limit: 1000 })).toEqual(sorted);

    expect(await store.list({ prefix: 'vault/', limit: 1000 })).toEqual(sorted.filter((n) => n.startsWith('vault/')));
    expect(await store.list({ prefix: 'vault/k1', after: 'vault/k150', limit: 3 })).toEqual(['vault/k151', 'vault/k152', 'vault/k153']);
    expect(await store.list({ prefix: base, limit: 1000 })).toEqual(sorted.filter((n) => n.startsWith(base)));
    expect(await store.list({ prefix: `${base}${'r'.repeat(120)}`, limit: 1000 })).toEqual([`${base}${'r'.repeat(120)}`, `${base}${'r'.repeat(120)}s`]);
    expect(await store.list({ after: base, prefix: base, limit: 1000 })).toEqual(sorted.filter((n) => n.startsWith(base) && n !== base));
    expect(await store.list({ prefix: 'nothing' })).toEqual([]);
    expect(await store.list({ after: sorted.at(-1)! })).toEqual([]);
    expect(await store.list({ prefix: '' , limit: 2 })).toEqual(sorted.slice(0, 2));
  });

  it('refuses bad list options with invalid_options', async () => {
    const store = new FileStore(fresh());
    for (const options of [{ limit: 0 }, { limit: 1001 }, { limit: 1.5 }, { limit: '5' }, { limit: Number.NaN }, { prefix: 5 }, { prefix: 'x'.repeat(257) }, { after: '' }, { after: 'a\nb' }, { extra: 1 }, 'x', null]) {
      expect(await code(store.list(options as never)), JSON.stringify(options)).toBe('invalid_options');
    }
  });
});

describe('FileStore: hostile names', () => {
  const bad: [string, unknown][] = [
    ['empty', ''],
    ['257 bytes', 'a'.repeat(257)],
    ['257 bytes of UTF-8 in 129 characters', `${'é'.repeat(128)}a`],
    ['NUL', 'a\0b'],
    ['newline', 'a\nb'],
    ['escape', '\x1b[31m'],
    ['DEL', 'a\x7f'],
    ['C1 control', 'a\u0085'],
    ['bidi override', 'a\u202eb'],
    ['bidi isolate', 'a\u2066b'],
    ['line separator', 'a\u2028b'],
    ['lone high surrogate', 'a\uD800'],
    ['lone low surrogate', '\uDC00a'],
    ['not a string', 42],
    ['null', null],
    ['a String object', new String('a')],
  ];
  it.each(bad)('refuses a name: %s (invalid_args, on every method)', async (_, name) => {
    const store = new FileStore(fresh());
    expect(await code(store.get(name as string))).toBe('invalid_args');
    expect(await code(store.put(name as string, bytes(1), { expectedVersion: 0 }))).toBe('invalid_args');
    expect(await code(store.delete(name as string, { expectedVersion: 1 }))).toBe('invalid_args');
    expect(readdirSync(join(store.directory, 'data'))).toEqual([]);
  });

  it('keeps names that look like paths, case variants and normalisation variants apart, and inside the store', async () => {
    const dir = fresh();
    const store = new FileStore(dir);
    // '\uFEFF…': a name that begins with a byte-order mark is listed with it (a decoder that drops a BOM reads it as another name).
    const names = ['..', '.', '../../escape', '/etc/passwd', 'a/../b', 'A', 'a', 'é', 'e\u0301', 'CON', 'nul', 'x'.repeat(256), 'é'.repeat(128), '\u{1F600}'.repeat(64), '\uFEFFa', '\uFEFF'];
    for (const [i, n] of names.entries()) await store.put(n, bytes(i), { expectedVersion: 0 });
    for (const [i, n] of names.entries()) expect((await store.get(n))?.bytes, n).toEqual(bytes(i));
    const listed = await store.list({ limit: 1000 });
    expect(listed.length).toBe(names.length);
    expect(new Set(listed)).toEqual(new Set(names));
    // Nothing outside data/; every file name is lowercase hex with its suffix, no component above NAME_MAX.
    expect(readdirSync(dir).sort()).toEqual(['data', 'locks', 'tmp']);
    expect(existsSync(join(root, 'escape'))).toBe(false);
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? [e.name, ...walk(join(d, e.name))] : [e.name]));
    for (const entry of walk(join(dir, 'data'))) {
      expect(entry).toMatch(/^[0-9a-f]+\.[bd]$/);
      expect(entry.length).toBeLessThanOrEqual(255);
    }
  });
});

describe('FileStore: bounds and options', () => {
  it('stores a blob of exactly maxBlobBytes and refuses one byte more with too_large', async () => {
    const store = new FileStore(fresh());
    const max = new Uint8Array(STORE_LIMITS.maxBlobBytes).fill(7);
    expect((await store.put('big', max, { expectedVersion: 0 })).version).toBe(1);
    expect(Buffer.from((await store.get('big'))!.bytes).equals(max)).toBe(true); // (toEqual walks 1 MiB element by element)
    expect(await code(store.put('big', new Uint8Array(STORE_LIMITS.maxBlobBytes + 1), { expectedVersion: 1 }))).toBe('too_large');
    const small = new FileStore(fresh(), { maxBlobBytes: 16 });
    expect(await code(small.put('a', new Uint8Array(17), { expectedVersion: 0 }))).toBe('too_large');
    // A file on disk above this instance's bound is refused too, not read whole.
    expect(await code(new FileStore(store.directory, { maxBlobBytes: 1000 }).get('big'))).toBe('too_large');
  });

  it('refuses a blob that is not a Uint8Array (invalid_args) and bad expected versions (invalid_options)', async () => {
    const store = new FileStore(fresh());
    for (const b of ['text', [1, 2], new ArrayBuffer(2), null, undefined]) {
      expect(await code(store.put('a', b as never, { expectedVersion: 0 }))).toBe('invalid_args');
    }
    for (const options of [{ expectedVersion: -1 }, { expectedVersion: 1.5 }, { expectedVersion: Number.NaN }, { expectedVersion: '0' }, { expectedVersion: Number.MAX_SAFE_INTEGER }, {}, null, undefined]) {
      expect(await code(store.put('a', bytes(1), options as never)), JSON.stringify(options)).toBe('invalid_options');
    }
    expect(await store.get('a')).toBeUndefined();
  });

  it('refuses bad constructor options with invalid_options', () => {
    for (const options of [{ maxBlobBytes: 0 }, { maxBlobBytes: STORE_LIMITS.hardMaxBlobBytes + 1 }, { maxBlobBytes: 1.5 }, { lockWaitMs: -1 }, { lockWaitMs: 600_001 }, { other: 1 }]) {
      expect(() => new FileStore(fresh(), options as never), JSON.stringify(options)).toThrow(expect.objectContaining({ code: 'invalid_options' }));
    }
    expect(() => new FileStore('')).toThrow(expect.objectContaining({ code: 'invalid_options' }));
    expect(() => new FileStore('a\0b')).toThrow(expect.objectContaining({ code: 'invalid_options' }));
  });

  it('refuses calls after close with `closed`, and close waits for the calls in flight', async () => {
    const store = new FileStore(fresh());
    const pending = store.put('a', bytes(1), { expectedVersion: 0 });
    await store.close();
    expect((await pending).version).toBe(1);
    expect(await code(store.get('a'))).toBe('closed');
    expect(await code(store.list())).toBe('closed');
    await store.close(); // idempotent
  });
});

describe('FileStore: hostile contents on disk', () => {
  /** A store with blob 'a' (version 1) and 'b' stored; returns the store and the path of 'a'. */
  async function withBlob(): Promise<{ store: FileStore; dir: string; leaf: string }> {
    const dir = fresh();
    const store = new FileStore(dir);
    await store.put('a', bytes(1, 2, 3), { expectedVersion: 0 });
    await store.put('b', bytes(4, 5, 6), { expectedVersion: 0 });
    return { store, dir, leaf: leafOf(dir, 'a') };
  }

  const damage: [string, (leaf: string, dir: string) => void][] = [
    ['garbage', (leaf) => writeFileSync(leaf, 'not a blob at all, but long enough to hold a header of sixty-four bytes')],
    ['an empty file', (leaf) => writeFileSync(leaf, '')],
    ['a truncated file', (leaf) => writeFileSync(leaf, readFileSync(leaf).subarray(0, -1))],
    ['an extended file', (leaf) => writeFileSync(leaf, Buffer.concat([readFileSync(leaf), Buffer.from([0])]))],
    ['a flipped blob byte', (leaf) => {
      const f = readFileSync(leaf);
      f[f.length - 1]! ^= 1;
      writeFileSync(leaf, f);
    }],
    ['a changed version', (leaf) => {
      const f = readFileSync(leaf);
      f[16]! ^= 2;
      writeFileSync(leaf, f);
    }],
    ['another format', (leaf) => {
      const f = readFileSync(leaf);
      f[8] = 2;
      writeFileSync(leaf, f);
    }],
    ['the blob of another name copied over it', (leaf, dir) => writeFileSync(leaf, readFileSync(leafOf(dir, 'b')))],
    ['a symlink to another blob', (leaf, dir) => {
      rmSync(leaf);
      symlinkSync(leafOf(dir, 'b'), leaf);
    }],
    ['a symlink out of the store', (leaf) => {
      rmSync(leaf);
      symlinkSync('/etc/hostname', leaf);
    }],
    ['a directory', (leaf) => {
      rmSync(leaf);
      mkdirSync(leaf);
    }],
    ['a FIFO', (leaf) => {
      rmSync(leaf);
      expect(spawnSync('mkfifo', [leaf]).status).toBe(0);
    }],
  ];
  it.each(damage)('refuses %s with store_corrupt on get and put, and never returns a wrong blob', async (_, harm) => {
    const { store, dir, leaf } = await withBlob();
    harm(leaf, dir);
    const err = await failure(store.get('a'));
    expect(err.code).toBe('store_corrupt');
    expect(err.flags.retryable).toBe(false);
    expect(await code(store.put('a', bytes(9), { expectedVersion: 1 }))).toBe('store_corrupt');
    expect(await code(store.delete('a', { expectedVersion: 1 }))).toBe('store_corrupt');
    expect((await store.get('b'))?.bytes).toEqual(bytes(4, 5, 6)); // the others are unaffected
  });

  it('refuses a link, or a file, planted where a directory of a long name belongs', async () => {
    const dir = fresh();
    const store = new FileStore(dir);
    const long = 'l'.repeat(200); // 400 hex characters: data/<240>.d/<160>.b
    await store.put(long, bytes(1), { expectedVersion: 0 });
    const branch = join(dir, 'data', `${hex(long).slice(0, 240)}.d`);
    const elsewhere = join(root, `elsewhere-${dirs}`);
    cpSync(branch, elsewhere, { recursive: true });
    rmSync(branch, { recursive: true });
    symlinkSync(elsewhere, branch);
    expect(await code(store.get(long))).toBe('store_corrupt');
    expect(await code(store.put(long, bytes(2), { expectedVersion: 1 }))).toBe('store_corrupt');
    expect(await code(store.list())).toBe('store_corrupt');
    expect(readdirSync(elsewhere)).toHaveLength(1); // nothing written through the link
    rmSync(branch);
    writeFileSync(branch, 'x');
    expect(await code(store.get(long))).toBe('store_corrupt');
    expect(await code(store.put(long, bytes(2), { expectedVersion: 1 }))).toBe('store_corrupt');
  });

  it('lists around debris it does not own, and refuses links among the names', async () => {
    const { store, dir, leaf } = await withBlob();
    writeFileSync(join(dir, 'data', '.DS_Store'), 'x');
    writeFileSync(join(dir, 'data', 'README'), 'x');
    expect(await store.list()).toEqual(['a', 'b']);
    symlinkSync(leaf, join(dir, 'data', `${hex('c')}.b`));
    expect(await code(store.list())).toBe('store_corrupt');
    rmSync(join(dir, 'data', `${hex('c')}.b`));
    writeFileSync(join(dir, 'data', `${hex('\n')}.b`), 'x'); // a file name that decodes to no valid name
    expect(await code(store.list())).toBe('store_corrupt');
  });
});

describe('FileStore: the directory', () => {
  it('creates the directory and its parents 0700', async () => {
    const dir = join(fresh(), 'deeper', 'store');
    new FileStore(dir);
    for (const d of [dir, join(dir, 'data'), join(dir, 'locks'), join(dir, 'tmp')]) expect(statSync(d).mode & 0o777).toBe(0o700);
  });

  it('refuses a directory other users may write, and store directories replaced by links or files', () => {
    const dir = fresh();
    new FileStore(dir);
    chmodSync(dir, 0o777);
    expect(() => new FileStore(dir)).toThrow(expect.objectContaining({ code: 'invalid_options' }));
    chmodSync(dir, 0o720);
    expect(() => new FileStore(dir)).toThrow(expect.objectContaining({ code: 'invalid_options' }));
    chmodSync(dir, 0o700);
    chmodSync(join(dir, 'data'), 0o777);
    expect(() => new FileStore(dir)).toThrow(expect.objectContaining({ code: 'invalid_options' }));
    chmodSync(join(dir, 'data'), 0o700);
    new FileStore(dir);

    rmSync(join(dir, 'tmp'), { recursive: true });
    symlinkSync(join(root), join(dir, 'tmp'));
    expect(() => new FileStore(dir)).toThrow(expect.objectContaining({ code: 'store_corrupt' }));
    rmSync(join(dir, 'tmp'));
    writeFileSync(join(dir, 'tmp'), 'x');
    expect(() => new FileStore(dir)).toThrow(expect.objectContaining({ code: 'store_corrupt' }));

    const file = join(root, `file-${dirs}`);
    writeFileSync(file, 'x');
    expect(() => new FileStore(file)).toThrow(EnclaveError);
  });

  it('accepts a symlink to a private directory as the store directory', async () => {
    const dir = fresh();
    mkdirSync(dir, { mode: 0o700 });
    const link = `${dir}-link`;
    symlinkSync(dir, link);
    const store = new FileStore(link);
    await store.put('a', bytes(1), { expectedVersion: 0 });
    expect(lstatSync(join(dir, 'data')).isDirectory()).toBe(true);
  });
});

describe('FileStore: dead writers, locks and I/O errors', () => {
  /** The pid of a process that has exited. */
  function deadPid(): number {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    return Number(child.stdout.toString());
  }
  /** An owner token as the store writes it, for this host and boot, with `pid` and a start time. */
  function token(pid: number, start = '1'): string {
    const own = ownToken();
    const [host, boot, ns] = own.split('_');
    return `${host}_${boot}_${ns}_${pid}_${start}_${'ab'.repeat(8)}`;
  }
  /** This process's own token, computed as the store does (file-store.ts, `selfOwner`). */
  function ownToken(): string {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/[^0-9a-f]/g, '');
    const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1]!;
    const host = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    return `${host}_${boot}_${ns}_${process.pid}_${start}_${'cd'.repeat(8)}`;
  }

  it.skipIf(process.platform !== 'linux')('removes dead writers\u2019 temp files and locks when it opens, and keeps a live one\u2019s', () => {
    const dir = fresh();
    new FileStore(dir);
    const dead = token(deadPid());
    const alive = ownToken();
    writeFileSync(join(dir, 'tmp', `${dead}.blob`), 'half a blob');
    mkdirSync(join(dir, 'tmp', `${dead}.lock`));
    writeFileSync(join(dir, 'tmp', 'debris'), 'x');
    writeFileSync(join(dir, 'tmp', `${token(process.pid, '12345')}.blob`), 'x'); // our pid, another start time: a reused pid
    writeFileSync(join(dir, 'tmp', `${token(1, '1')}.blob`.replace(/^[0-9a-f]{8}/, '00000000')), 'x'); // another host: cannot judge, kept
    writeFileSync(join(dir, 'tmp', `${alive}.blob`), 'x');
    mkdirSync(join(dir, 'locks', 'a'.repeat(64)));
    writeFileSync(join(dir, 'locks', 'a'.repeat(64), dead), '');
    mkdirSync(join(dir, 'locks', 'b'.repeat(64)));
    writeFileSync(join(dir, 'locks', 'b'.repeat(64), alive), '');
    new FileStore(dir);
    expect(readdirSync(join(dir, 'tmp')).sort()).toEqual([`${alive}.blob`, `${token(1, '1')}.blob`.replace(/^[0-9a-f]{8}/, '00000000')].sort());
    expect(readdirSync(join(dir, 'locks'))).toEqual(['b'.repeat(64)]);
  });

  it.skipIf(process.platform !== 'linux')('breaks a dead writer\u2019s lock, waits for a live one\u2019s, then answers unavailable', async () => {
    const dir = fresh();
    const store = new FileStore(dir, { lockWaitMs: 100 });
    await store.put('a', bytes(1), { expectedVersion: 0 });
    const lock = join(dir, 'locks', createHashHex('a'));
    mkdirSync(lock);
    writeFileSync(join(lock, token(deadPid())), '');
    expect((await store.put('a', bytes(2), { expectedVersion: 1 })).version).toBe(2); // broken
    expect(existsSync(lock)).toBe(false);

    mkdirSync(lock);
    writeFileSync(join(lock, ownToken()), ''); // held by a live process (this one)
    const started = Date.now();
    const err = await failure(store.put('a', bytes(3), { expectedVersion: 2 }));
    expect(err.code).toBe('unavailable');
    expect(err.flags.retryable).toBe(true);
    expect(err.message).toContain(`process ${process.pid}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect((await store.get('a'))?.version).toBe(2); // nothing written
    const foreign = ownToken().replace(/^[0-9a-f]{8}/, '00000000');
    rmSync(join(lock, ownToken()));
    writeFileSync(join(lock, foreign), ''); // another host's: never broken
    expect((await failure(store.put('a', bytes(3), { expectedVersion: 2 }))).message).toContain('another host or container');
    rmSync(lock, { recursive: true });
    expect((await store.put('a', bytes(3), { expectedVersion: 2 })).version).toBe(3);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
  });

  it('reports an I/O error as unavailable with the errno in the message, and writes nothing half', async () => {
    const dir = fresh();
    const store = new FileStore(dir);
    await store.put('a', bytes(1), { expectedVersion: 0 });
    rmSync(join(dir, 'tmp'), { recursive: true }); // where temp files and staged locks go
    const err = await failure(store.put('a', bytes(2), { expectedVersion: 1 }));
    expect(err.code).toBe('unavailable');
    expect(err.message).toContain('ENOENT');
    expect(err.flags.retryable).toBe(true);
    expect(await store.get('a')).toEqual({ name: 'a', version: 1, bytes: bytes(1) });
  });
});

function createHashHex(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

// The interface is what the vault uses: a FileStore is a SealedStore (checked by the type checker of the editor).
export const asSealedStore = (store: FileStore): SealedStore => store;
