/**
 * Cryptography benchmark: the enclave SDK's AssemblyScript primitives (compiled to Wasm
 * with -O3, called on data already in linear memory, as enclave code would) against
 * @noble/* and node:crypto (OpenSSL) on the same inputs, in one run.
 *
 *   npm run build:ts && node dist/bench/crypto.js [--quick]
 *
 * Prints a Markdown table of ops/s and ratios (wasm / noble, wasm / node:crypto).
 */
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';
import { sha256 as nSha256, sha512 as nSha512 } from '@noble/hashes/sha2.js';
import { hmac as nHmac } from '@noble/hashes/hmac.js';
import { chacha20poly1305 as nChaPoly, xchacha20poly1305 as nXChaPoly } from '@noble/ciphers/chacha.js';
import { ed25519 as nEd, x25519 as nX } from '@noble/curves/ed25519.js';
import { runCases, type Case, type CaseResult } from './_harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // dist/bench/ -> repo root
const QUICK = process.argv.includes('--quick');
const MAX_TIME = QUICK ? 0.1 : 0.5;

/** Compiles the crypto harness (test/crypto/harness.ts, raw exports) in memory. */
async function compileHarness(): Promise<Uint8Array> {
  let binary: Uint8Array | undefined;
  let log = '';
  const sink = { write: (s: string | Uint8Array) => { log += String(s); return true; } };
  const { error } = await asc.main(
    ['test/crypto/harness.ts', '--outFile', 'harness.wasm', '-O3', '--runtime', 'incremental', '--config', '/dev/null', '--baseDir', ROOT],
    {
      stdout: sink as never,
      stderr: sink as never,
      writeFile: (name: string, contents: Uint8Array | string) => {
        if (name.endsWith('.wasm') && typeof contents !== 'string') binary = contents;
      },
    },
  );
  if (error || !binary) throw new Error(`asc failed: ${error?.message ?? 'no output'}\n${log}`);
  return binary;
}

/** The harness exports used here (see test/crypto/harness.ts, "raw cores"). */
type Raw = { memory: WebAssembly.Memory; alloc(n: number): number } & Record<string, any>;

const rand = (n: number): Uint8Array => new Uint8Array(crypto.randomBytes(n));

function pkcs8(prefixHex: string, key: Uint8Array): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([Buffer.from(prefixHex, 'hex'), key]), format: 'der', type: 'pkcs8' });
}
function spki(prefixHex: string, key: Uint8Array): crypto.KeyObject {
  return crypto.createPublicKey({ key: Buffer.concat([Buffer.from(prefixHex, 'hex'), key]), format: 'der', type: 'spki' });
}

interface Row {
  name: string;
  size: string;
  wasm: CaseResult;
  noble: CaseResult;
  node?: CaseResult;
  bytes: number;
}

async function main(): Promise<void> {
  const wasm = await compileHarness();
  const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm as Uint8Array<ArrayBuffer>), {
    env: { abort: () => { throw new Error('abort'); } },
  });
  const x = instance.exports as unknown as Raw;
  const mem = () => new Uint8Array(x.memory.buffer);
  const OUT = x.alloc(1 << 17), K = x.alloc(64), N = x.alloc(32), AAD = x.alloc(64), SIG = x.alloc(64), PUB = x.alloc(32);
  const put = (p: number, b: Uint8Array) => mem().set(b, p);

  const key = rand(32), nonce12 = rand(12), nonce24 = rand(24), aad = new Uint8Array(0);
  put(K, key);
  const rows: Row[] = [];
  const groups: Array<{ name: string; size: string; bytes: number; cases: [Case, Case, Case?] }> = [];
  const batchFor = (n: number) => (n <= 64 ? 64 : n <= 1024 ? 16 : 1);

  for (const size of [64, 1024, 65536]) {
    const label = size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
    const msg = rand(size);
    const IN = x.alloc(size); // the same bytes as `msg`, already inside the enclave's memory
    put(IN, msg);
    const b = batchFor(size);
    const loop = (f: () => unknown) => () => { for (let i = 0; i < b; i++) f(); };
    groups.push({
      name: 'SHA-256', size: label, bytes: size, cases: [
        { name: `wasm sha256 ${label}`, batch: b, fn: loop(() => x.sha256Raw!(OUT, IN, size)) },
        { name: `noble sha256 ${label}`, batch: b, fn: loop(() => nSha256(msg)) },
        { name: `node sha256 ${label}`, batch: b, fn: loop(() => crypto.createHash('sha256').update(msg).digest()) },
      ],
    });
    groups.push({
      name: 'SHA-512', size: label, bytes: size, cases: [
        { name: `wasm sha512 ${label}`, batch: b, fn: loop(() => x.sha512Raw!(OUT, IN, size)) },
        { name: `noble sha512 ${label}`, batch: b, fn: loop(() => nSha512(msg)) },
        { name: `node sha512 ${label}`, batch: b, fn: loop(() => crypto.createHash('sha512').update(msg).digest()) },
      ],
    });
    groups.push({
      name: 'HMAC-SHA-256', size: label, bytes: size, cases: [
        { name: `wasm hmac-sha256 ${label}`, batch: b, fn: loop(() => x.hmacSha256Raw!(OUT, K, 32, IN, size)) },
        { name: `noble hmac-sha256 ${label}`, batch: b, fn: loop(() => nHmac(nSha256, key, msg)) },
        { name: `node hmac-sha256 ${label}`, batch: b, fn: loop(() => crypto.createHmac('sha256', key).update(msg).digest()) },
      ],
    });
    groups.push({
      name: 'ChaCha20-Poly1305 seal', size: label, bytes: size, cases: [
        { name: `wasm chacha20poly1305 ${label}`, batch: b, fn: loop(() => { put(N, nonce12); x.sealRaw!(0, OUT, K, N, AAD, 0, IN, size); }) },
        { name: `noble chacha20poly1305 ${label}`, batch: b, fn: loop(() => nChaPoly(key, nonce12, aad).encrypt(msg)) },
        {
          name: `node chacha20poly1305 ${label}`, batch: b, fn: loop(() => {
            const c = crypto.createCipheriv('chacha20-poly1305', key, nonce12, { authTagLength: 16 });
            c.update(msg); c.final(); return c.getAuthTag();
          }),
        },
      ],
    });
    groups.push({
      name: 'XChaCha20-Poly1305 seal', size: label, bytes: size, cases: [
        { name: `wasm xchacha20poly1305 ${label}`, batch: b, fn: loop(() => { put(N, nonce24); x.sealRaw!(1, OUT, K, N, AAD, 0, IN, size); }) },
        { name: `noble xchacha20poly1305 ${label}`, batch: b, fn: loop(() => nXChaPoly(key, nonce24, aad).encrypt(msg)) },
      ],
    });
  }

  const seed = rand(32), edMsg = rand(32);
  const edPub = nEd.getPublicKey(seed);
  const edSig = nEd.sign(edMsg, seed);
  const edPriv = pkcs8('302e020100300506032b657004220420', seed), edPubKey = spki('302a300506032b6570032100', edPub);
  const xa = rand(32), xbPub = nX.getPublicKey(rand(32));
  const xPriv = pkcs8('302e020100300506032b656e04220420', xa), xPub = spki('302a300506032b656e032100', xbPub);
  const SEED = x.alloc(32), EDMSG = x.alloc(32), XA = x.alloc(32), XB = x.alloc(32);
  put(SEED, seed); put(EDMSG, edMsg); put(SIG, edSig); put(PUB, edPub); put(XA, xa); put(XB, xbPub);
  groups.push({
    name: 'Ed25519 sign (32 B msg)', size: 'op', bytes: 0, cases: [
      { name: 'wasm ed25519 sign', batch: 1, fn: () => x.ed25519SignRaw!(OUT, SEED, EDMSG, 32) },
      { name: 'noble ed25519 sign', batch: 1, fn: () => nEd.sign(edMsg, seed) },
      { name: 'node ed25519 sign', batch: 1, fn: () => crypto.sign(null, edMsg, edPriv) },
    ],
  });
  groups.push({
    name: 'Ed25519 verify (32 B msg)', size: 'op', bytes: 0, cases: [
      { name: 'wasm ed25519 verify', batch: 1, fn: () => { if (x.ed25519VerifyRaw!(SIG, PUB, EDMSG, 32) !== 1) throw new Error('verify'); } },
      { name: 'noble ed25519 verify', batch: 1, fn: () => nEd.verify(edSig, edMsg, edPub) },
      { name: 'node ed25519 verify', batch: 1, fn: () => crypto.verify(null, edMsg, edPubKey, edSig) },
    ],
  });
  groups.push({
    name: 'Ed25519 public key from seed', size: 'op', bytes: 0, cases: [
      { name: 'wasm ed25519 getPublicKey', batch: 1, fn: () => x.ed25519PublicKeyRaw!(OUT, SEED) },
      { name: 'noble ed25519 getPublicKey', batch: 1, fn: () => nEd.getPublicKey(seed) },
    ],
  });
  groups.push({
    name: 'X25519 shared secret', size: 'op', bytes: 0, cases: [
      { name: 'wasm x25519', batch: 1, fn: () => x.x25519Raw!(OUT, XA, XB) },
      { name: 'noble x25519', batch: 1, fn: () => nX.getSharedSecret(xa, xbPub) },
      { name: 'node x25519', batch: 1, fn: () => crypto.diffieHellman({ privateKey: xPriv, publicKey: xPub }) },
    ],
  });

  // Sanity: the wasm outputs equal noble's before anything is timed.
  x.ed25519SignRaw!(OUT, SEED, EDMSG, 32);
  if (Buffer.compare(Buffer.from(mem().slice(OUT, OUT + 64)), Buffer.from(edSig)) !== 0) throw new Error('ed25519 mismatch');
  x.x25519Raw!(OUT, XA, XB);
  if (Buffer.compare(Buffer.from(mem().slice(OUT, OUT + 32)), Buffer.from(nX.getSharedSecret(xa, xbPub))) !== 0) throw new Error('x25519 mismatch');

  for (const g of groups) {
    const cases = g.cases.filter((c): c is Case => c !== undefined);
    const [w, n, o] = await runCases(cases, { maxTime: MAX_TIME });
    rows.push({ name: g.name, size: g.size, bytes: g.bytes, wasm: w!, noble: n!, ...(o ? { node: o } : {}) });
    process.stderr.write('.');
  }
  process.stderr.write('\n');

  const fmt = (r: CaseResult, bytes: number) =>
    bytes > 0 ? `${Math.round(r.opsPerSec).toLocaleString('en-US')} (${((r.opsPerSec * bytes) / 1048576).toFixed(0)} MiB/s)` : Math.round(r.opsPerSec).toLocaleString('en-US');
  const lines = [
    '| primitive | input | wasm (this SDK) ops/s | @noble ops/s | node:crypto ops/s | wasm / noble | wasm / node |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${r.size} | ${fmt(r.wasm, r.bytes)} | ${fmt(r.noble, r.bytes)} | ${r.node ? fmt(r.node, r.bytes) : 'n/a'} | ${(r.wasm.opsPerSec / r.noble.opsPerSec).toFixed(2)}x | ${r.node ? (r.wasm.opsPerSec / r.node.opsPerSec).toFixed(2) + 'x' : 'n/a'} |`);
  }
  process.stdout.write(`Node ${process.version}, OpenSSL ${process.versions.openssl}; benchmark.js maxTime ${MAX_TIME}s per case\n\n`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
