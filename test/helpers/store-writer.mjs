// A writer process for the FileStore tests (test/store-crash.test.ts, test/store-file.test.ts).
// Plain JavaScript so it starts fast: the store comes from dist/ (built by test/global-setup.ts).
//
//   node store-writer.mjs crash <dir> <writer id> <name>...
//     once a line `go` arrives on stdin (so the test can start it ahead, while the previous round
//     runs), puts to the names in turn forever, each blob derived from (writer, name, version); prints
//     `b <name index> <version>` before a put and `a <name index> <version>` once it resolved (the
//     acknowledgement); on `conflict` it reads the name again and goes on. Killed by the test.
//   node store-writer.mjs race <dir> <writer id>
//     for each stdin line `go <name> <expected>`: one put; prints `ok <version>` or `conflict`.
//
// Both print `ready` first, and `err <code> <message>` (then exit 1) on any other failure.
// ENCLAVE_STORE_URL: the module to import FileStore from (default dist/host/store/index.js); the
// tests pass a copy taken when they start, so a rebuild of dist/ meanwhile cannot break a writer.
import { createHash } from 'node:crypto';
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The blob writer `writer` puts as `version` of `name`: a header naming all three, then bytes of a
 * SHA-256 stream, of a length that varies with the version (mostly up to 4 KiB, one in eight about
 * 100 KiB, so a kill also lands inside long writes). Whoever reads a blob can tell who wrote it and
 * check every byte.
 */
export function derive(writer, name, version) {
  const seed = `w=${writer};n=${name};v=${version};`;
  const h = createHash('sha256').update(seed).digest();
  const length = h[4] < 32 ? 100_000 + (h.readUInt16LE(0) % 8192) : 1 + (h.readUInt16LE(0) % 4096);
  const out = Buffer.alloc(seed.length + length);
  out.write(seed, 0, 'latin1');
  for (let off = seed.length, i = 0; off < out.length; i++) {
    const block = createHash('sha256').update(seed).update(String(i)).digest();
    off += block.copy(out, off);
  }
  return new Uint8Array(out);
}

/**
 * Copies the built store (dist/host/store and dist/core, all it imports) into `dir` and returns the
 * URL of its index: a writer started later imports this copy, whatever rebuilds dist/ meanwhile.
 */
export function snapshotStore(dir) {
  const dist = fileURLToPath(new URL('../../dist/', import.meta.url));
  cpSync(join(dist, 'core'), join(dir, 'core'), { recursive: true });
  cpSync(join(dist, 'host', 'store'), join(dir, 'host', 'store'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  return pathToFileURL(join(dir, 'host', 'store', 'index.js')).href;
}

/** The writer id at the head of a derived blob, or undefined. */
export function writerOf(bytes) {
  const m = /^w=([^;]{1,64});/.exec(Buffer.from(bytes.subarray(0, 80)).toString('latin1'));
  return m === null ? undefined : m[1];
}

async function main(argv) {
  const [mode, dir, writer, ...names] = argv;
  const storeUrl = process.env.ENCLAVE_STORE_URL ?? pathToFileURL(fileURLToPath(new URL('../../dist/host/store/index.js', import.meta.url))).href;
  const { FileStore } = await import(storeUrl);
  const fail = (err) => {
    process.stdout.write(`err ${err?.code ?? 'none'} ${String(err?.message ?? err).replace(/\s+/g, ' ')}\n`);
    process.exit(1);
  };
  const store = new FileStore(dir, { lockWaitMs: 30_000 });
  if (mode === 'crash') {
    process.stdout.write('ready\n');
    const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    if ((await lines.next()).value !== 'go') process.exit(0);
    const versions = [];
    for (const name of names) versions.push((await store.get(name))?.version ?? 0);
    for (let i = 0; ; i = (i + 1) % names.length) {
      const version = versions[i] + 1;
      process.stdout.write(`b ${i} ${version}\n`);
      try {
        await store.put(names[i], derive(writer, names[i], version), { expectedVersion: versions[i] });
        versions[i] = version;
        process.stdout.write(`a ${i} ${version}\n`);
      } catch (err) {
        if (err?.code !== 'conflict') fail(err);
        versions[i] = (await store.get(names[i]))?.version ?? 0;
      }
    }
  } else if (mode === 'race') {
    process.stdout.write('ready\n');
    for await (const line of createInterface({ input: process.stdin })) {
      const [, name, expected] = line.split(' ');
      try {
        const put = await store.put(name, derive(writer, name, Number(expected) + 1), { expectedVersion: Number(expected) });
        process.stdout.write(`ok ${put.version}\n`);
      } catch (err) {
        if (err?.code !== 'conflict') fail(err);
        process.stdout.write('conflict\n');
      }
    }
    await store.close();
  } else {
    fail(new Error(`unknown mode ${mode}`));
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((err) => {
    process.stdout.write(`err ${err?.code ?? 'none'} ${String(err?.message ?? err).replace(/\s+/g, ' ')}\n`);
    process.exit(1);
  });
}
