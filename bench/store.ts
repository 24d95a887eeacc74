/**
 * The sealed-blob store (`FileStore`, host/store/): what durability and compare-and-set cost, side
 * by side in one run, at 256 B (a vault key record is about that) and 64 KiB.
 *
 * Per size, one group of three puts, each replacing the previous version of one name:
 * - `writeFile + rename, no fsync` (floor): what a naive store does: fast, and after a power cut the
 *   name may hold an empty or half-written file, or the old one.
 * - `write + fsync + rename + fsync dir` (reference): the durable write alone, without the store.
 * - `FileStore.put` (subject): the store: the same durable write, plus its per-name lock (a rename
 *   in, an unlink and rmdir out), the read of the current version for compare-and-set, the header
 *   and its SHA-256.
 * And a group for reads: `readFile` (floor) against `FileStore.get` (open without following links,
 *   fstat, read, check the header and the digest).
 * "× floor" is the price of durability; the notes add an interleaved measurement (blocks of puts
 * alternating between the three, median per-put time of each) that a shared machine's drift moves
 * less, with the ratios spelled out, and the file system the numbers are for (on tmpfs an fsync
 * costs nothing and the ratios mean nothing).
 *
 *   npm run build && npm run bench -- store [--quick]      (or: node dist/bench/store.js)
 */
import { statfsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../host/index.js';
import { payload } from './_enclaves.js';
import { defineSuite, formatBytes, isMain, runStandalone, type Case } from './_harness.js';

/** Blob sizes of the put groups. */
const SIZES = [256, 65_536] as const;

/** statfs `type` magic numbers of file systems where the numbers need a word (linux/magic.h). */
const FS_NAMES: Record<number, string> = { 0x01021994: 'tmpfs (fsync is free: the ratios mean nothing here)', 0xef53: 'ext4', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x794c7630: 'overlayfs' };

export const suite = defineSuite({
  name: 'store',
  description: 'FileStore.put (fsync, compare-and-set) against a plain writeFile + rename and a bare durable write; FileStore.get against readFile',
  maxTime: 1,
  quickMaxTime: 0.25,
  async setup(ctx) {
    const dir = await mkdtemp(join(tmpdir(), 'enclave-bench-store-'));
    const store = new FileStore(join(dir, 'store'));
    const plainDir = join(dir, 'plain');
    const durableDir = join(dir, 'durable');
    for (const d of [plainDir, durableDir]) await mkdir(d, { mode: 0o700 });
    const cases: Case[] = [];
    const notes: string[] = [];
    let fsType = 'unknown';
    try {
      const type = statfsSync(dir).type;
      fsType = FS_NAMES[type] ?? `type 0x${type.toString(16)}`;
    } catch {
      /* statfs is not everywhere */
    }
    notes.push(`File system of ${tmpdir()}: ${fsType}. Every put replaces one name's previous version; fsync costs are the device's and vary by machine; the ratios are measured side by side.`);

    const puts: { size: number; plain: () => Promise<void>; durable: () => Promise<void>; store: () => Promise<void> }[] = [];
    for (const size of SIZES) {
      const data = payload(size);
      const plainTarget = join(plainDir, `blob-${size}`);
      const durableTarget = join(durableDir, `blob-${size}`);
      const name = `bench/${size}`;
      let version = 0;
      let n = 0;
      const plain = async () => {
        const tmp = `${plainTarget}.${n++}.tmp`;
        await writeFile(tmp, data);
        await rename(tmp, plainTarget);
      };
      const durable = async () => {
        const tmp = `${durableTarget}.${n++}.tmp`;
        const fh = await open(tmp, 'wx', 0o600);
        try {
          await fh.writeFile(data);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, durableTarget);
        const d = await open(durableDir, 'r');
        try {
          await d.sync();
        } finally {
          await d.close();
        }
      };
      const put = async () => {
        version = (await store.put(name, data, { expectedVersion: version })).version;
      };
      // Checked before anything is timed: the store reads back what it was given.
      await put();
      const back = await store.get(name);
      if (back === undefined || Buffer.compare(back.bytes, data) !== 0) throw new Error(`FileStore did not read back ${size} bytes`);
      puts.push({ size, plain, durable, store: put });
      const group = `put ${formatBytes(size)}`;
      cases.push(
        { name: `writeFile + rename, no fsync ${formatBytes(size)}`, group, role: 'floor', batch: 1, fn: plain },
        { name: `write + fsync + rename + fsync dir ${formatBytes(size)}`, group, role: 'reference', batch: 1, fn: durable },
        { name: `FileStore.put ${formatBytes(size)}`, group, batch: 1, fn: put },
      );
    }

    const readSize = 65_536;
    const readName = `bench/${readSize}`;
    const readTarget = join(plainDir, `blob-${readSize}`);
    cases.push(
      { name: `readFile ${formatBytes(readSize)}`, group: `get ${formatBytes(readSize)}`, role: 'floor', batch: 8, fn: async () => { for (let i = 0; i < 8; i++) await readFile(readTarget); } },
      { name: `FileStore.get ${formatBytes(readSize)}`, group: `get ${formatBytes(readSize)}`, batch: 8, fn: async () => { for (let i = 0; i < 8; i++) await store.get(readName); } },
    );

    // Interleaved: rounds of a block of each kind in rotating order; the median per-put time of each.
    const rounds = ctx.quick ? 3 : 9;
    const block = ctx.quick ? 10 : 30;
    for (const p of puts) {
      const kinds = [p.plain, p.durable, p.store];
      const perPut: number[][] = [[], [], []];
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < kinds.length; k++) {
          const which = (k + r) % kinds.length;
          const t0 = performance.now();
          for (let i = 0; i < block; i++) await kinds[which]!();
          perPut[which]!.push((performance.now() - t0) / block);
        }
      }
      const [plain, durable, stored] = perPut.map(median) as [number, number, number];
      const ms = (x: number) => `${x.toFixed(3)} ms`;
      const perSec = (x: number) => `${Math.round(1000 / x)}/s`;
      const line =
        `Interleaved, put ${formatBytes(p.size)}, median of ${rounds} rounds of ${block}: plain ${ms(plain)} (${perSec(plain)}), durable write ${ms(durable)} (${perSec(durable)}), FileStore.put ${ms(stored)} (${perSec(stored)}); ` +
        `FileStore.put / plain = ${(stored / plain).toFixed(1)}× (the price of durability and compare-and-set), FileStore.put / durable write = ${(stored / durable).toFixed(2)}× (the store's own cost over the fsyncs).`;
      notes.push(line);
      ctx.log(`  ${line}`);
    }

    return {
      cases,
      notes,
      dispose: async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
});

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

if (isMain(import.meta.url)) await runStandalone(suite);
