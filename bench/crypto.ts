/**
 * Cryptography: the enclave SDK's AssemblyScript primitives (enclave-modules/sdk/crypto/) against
 * @noble/* (the peer: portable JS, what our Wasm has to beat to be worth it) and node:crypto
 * (OpenSSL, native: a reference, not a target), on the same inputs in one run.
 *
 * Each group is one primitive at one size (SHA-256, SHA-512, HMAC-SHA-256, ChaCha20-Poly1305 and
 * XChaCha20-Poly1305 seal at 64 B, 1 KiB and 64 KiB; `--quick` skips 1 KiB) or one operation
 * (Ed25519 sign, verify and public key from seed, X25519), with up to four cases:
 * - `wasm …` (subject): the primitive itself, the SDK's raw pointer cores compiled with the
 *   release settings of asconfig.json (-O3, incremental runtime) and called on data already in
 *   linear memory, as enclave code calls them. This is what compares fairly to @noble.
 * - `enclave.call …` (subject): the same primitive across the real boundary, through the crypto
 *   test enclave (`enclave-modules/crypto/build/crypto.wasm`, `npm run build`) loaded with
 *   `loadEnclave` as a user would (in-process, fuel metered): request packing, the copy in, the
 *   op, the copy out, reply unpacking.
 * - `noble …` (peer; the "× @noble" of both wasm cases of the group is taken against it).
 * - `node:crypto …` (reference), where node has the primitive (not XChaCha20, not Ed25519 public
 *   key derivation from a seed as one call).
 *
 * The raw cores are compiled in memory at setup from an entry written below (`RAW_ENTRY`, a few
 * exports over `_sha256Ptr` and friends; cached in node_modules/.cache/enclave-bench/ while the
 * SDK sources are unchanged): no file under test/ is involved. Before anything is timed, every
 * case's output is checked against @noble's for the same inputs.
 *
 *   npm run build && npm run bench -- crypto [--quick]      (or: node dist/bench/crypto.js)
 */
import crypto from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { sha256 as nSha256, sha512 as nSha512 } from '@noble/hashes/sha2.js';
import { hmac as nHmac } from '@noble/hashes/hmac.js';
import { chacha20poly1305 as nChaPoly, xchacha20poly1305 as nXChaPoly } from '@noble/ciphers/chacha.js';
import { ed25519 as nEd, x25519 as nX } from '@noble/curves/ed25519.js';
import { loadEnclave, type Enclave } from '../runtime/index.js';
import { closeEnclave } from './_enclaves.js';
import { defineSuite, formatBytes, isMain, runStandalone, type Case } from './_harness.js';

/** Message sizes of the hash and AEAD groups. */
export const SIZES = [64, 1024, 65_536] as const;

/** Where asc believes the in-memory entry lives (it resolves the imports from there); never written. */
const RAW_ENTRY_PATH = 'bench/__crypto_raw__.ts';

/** The SDK's raw pointer cores, exported over linear memory (no Uint8Array per call). */
const RAW_ENTRY = `
import { _sha256Ptr } from '../enclave-modules/sdk/crypto/sha256';
import { _sha512Ptr } from '../enclave-modules/sdk/crypto/sha512';
import { _hmacSha256Ptr } from '../enclave-modules/sdk/crypto/hmac';
import { _sealPtr, _xsealPtr } from '../enclave-modules/sdk/crypto/chacha20poly1305';
import { _x25519Ptr } from '../enclave-modules/sdk/crypto/x25519';
import { _ed25519SignPtr, _ed25519VerifyPtr, _ed25519PublicKeyPtr } from '../enclave-modules/sdk/crypto/ed25519';
export function alloc(len: usize): usize { return heap.alloc(len); }
export function sha256Raw(out: usize, p: usize, n: usize): void { _sha256Ptr(out, p, n); }
export function sha512Raw(out: usize, p: usize, n: usize): void { _sha512Ptr(out, p, n); }
export function hmacSha256Raw(out: usize, k: usize, kn: usize, m: usize, mn: usize): void { _hmacSha256Ptr(out, k, kn, m, mn); }
export function sealRaw(alg: i32, out: usize, key: usize, nonce: usize, aad: usize, aadN: usize, pt: usize, ptN: usize): void {
  if (alg == 0) _sealPtr(out, key, nonce, aad, aadN, pt, ptN); else _xsealPtr(out, key, nonce, aad, aadN, pt, ptN);
}
export function x25519Raw(out: usize, k: usize, u: usize): i32 { return _x25519Ptr(out, k, u); }
export function ed25519PublicKeyRaw(out: usize, seed: usize): void { _ed25519PublicKeyPtr(out, seed); }
export function ed25519SignRaw(sig: usize, seed: usize, m: usize, mn: usize): void { _ed25519SignPtr(sig, seed, m, mn); }
export function ed25519VerifyRaw(sig: usize, pub: usize, m: usize, mn: usize): i32 { return _ed25519VerifyPtr(sig, pub, m, mn); }
`;

/** The exports of {@link RAW_ENTRY}. */
interface Raw {
  readonly memory: WebAssembly.Memory;
  alloc(n: number): number;
  sha256Raw(out: number, p: number, n: number): void;
  sha512Raw(out: number, p: number, n: number): void;
  hmacSha256Raw(out: number, k: number, kn: number, m: number, mn: number): void;
  sealRaw(alg: number, out: number, key: number, nonce: number, aad: number, aadN: number, pt: number, ptN: number): void;
  x25519Raw(out: number, k: number, u: number): number;
  ed25519PublicKeyRaw(out: number, seed: number): void;
  ed25519SignRaw(sig: number, seed: number, m: number, mn: number): void;
  ed25519VerifyRaw(sig: number, pub: number, m: number, mn: number): number;
}

/** asc's arguments: the release settings of asconfig.json (-O3 = optimizeLevel 3, shrinkLevel 0). */
const RAW_ARGS = [RAW_ENTRY_PATH, '--outFile', 'raw.wasm', '-O3', '--runtime', 'incremental', '--config', '/dev/null'];

/** What the cache holds next to the binary: everything the compile depended on. */
interface RawManifest {
  readonly key: string;
  /** Every file asc asked for, relative to the root, with the SHA-256 of its text (null: absent). */
  readonly files: Record<string, string | null>;
}

const sha256Hex = (text: string | Uint8Array): string => crypto.createHash('sha256').update(text).digest('hex');

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

/**
 * The binary of {@link RAW_ENTRY}, compiled in memory, and cached in
 * `node_modules/.cache/enclave-bench/` (asc takes several seconds): the cache is used only while
 * every file the compile read (or looked for) is unchanged, with the same entry, flags and asc.
 */
async function rawBinary(root: string, log: (line: string) => void): Promise<{ binary: Uint8Array; cached: boolean }> {
  const ascVersion = (JSON.parse((await readOrNull(join(root, 'node_modules', 'assemblyscript', 'package.json'))) ?? '{}') as { version?: string }).version;
  const key = sha256Hex(JSON.stringify([ascVersion ?? null, RAW_ARGS, RAW_ENTRY]));
  const dir = existsSync(join(root, 'node_modules')) ? join(root, 'node_modules', '.cache', 'enclave-bench') : undefined;
  if (dir !== undefined) {
    const manifest = JSON.parse((await readOrNull(join(dir, 'crypto-raw.json'))) ?? 'null') as RawManifest | null;
    if (manifest?.key === key) {
      let fresh = true;
      for (const [file, hash] of Object.entries(manifest.files)) {
        const text = await readOrNull(resolve(root, file));
        if ((text === null ? null : sha256Hex(text)) !== hash) {
          fresh = false;
          break;
        }
      }
      const binary = fresh ? await readFile(join(dir, 'crypto-raw.wasm')).catch(() => undefined) : undefined;
      if (binary !== undefined) return { binary: new Uint8Array(binary), cached: true };
    }
  }

  const { default: asc } = await import('assemblyscript/asc');
  let binary: Uint8Array | undefined;
  const files: Record<string, string | null> = {};
  const stderr = asc.createMemoryStream();
  const { error } = await asc.main([...RAW_ARGS, '--baseDir', root], {
    stdout: asc.createMemoryStream(),
    stderr,
    readFile: async (name, baseDir) => {
      if (name === RAW_ENTRY_PATH) return RAW_ENTRY;
      const path = resolve(baseDir, name);
      const text = await readOrNull(path);
      files[relative(root, path)] = text === null ? null : sha256Hex(text);
      return text;
    },
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm') && typeof contents !== 'string') binary = contents;
    },
  });
  if (error || !binary) throw new Error(`asc failed on the raw crypto entry: ${error?.message ?? 'no output'}\n${stderr.toString()}`);
  if (dir !== undefined) {
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'crypto-raw.wasm'), binary);
      await writeFile(join(dir, 'crypto-raw.json'), JSON.stringify({ key, files } satisfies RawManifest));
    } catch (err) {
      log(`crypto: cannot cache the raw module in ${dir}: ${(err as Error).message}`);
    }
  }
  return { binary, cached: false };
}

/** Instantiates the raw module. */
function instantiateRaw(binary: Uint8Array): Raw {
  const instance = new WebAssembly.Instance(new WebAssembly.Module(binary as Uint8Array<ArrayBuffer>), {
    env: {
      abort: () => {
        throw new Error('abort in the raw crypto module');
      },
    },
  });
  return instance.exports as unknown as Raw;
}

/** Operations per timed invocation: enough to amortise the harness (and the async call) per call. */
function batchFor(size: number): number {
  return size <= 64 ? 64 : size <= 1024 ? 16 : 4;
}
/** For the per-operation groups (Ed25519, X25519): tens of microseconds each. */
const OP_BATCH = 8;

const rand = (n: number): Uint8Array => new Uint8Array(crypto.randomBytes(n));

function pkcs8(prefixHex: string, key: Uint8Array): crypto.KeyObject {
  return crypto.createPrivateKey({ key: Buffer.concat([Buffer.from(prefixHex, 'hex'), key]), format: 'der', type: 'pkcs8' });
}
function spki(prefixHex: string, key: Uint8Array): crypto.KeyObject {
  return crypto.createPublicKey({ key: Buffer.concat([Buffer.from(prefixHex, 'hex'), key]), format: 'der', type: 'spki' });
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

/** One group as the implementations compute it; every `out` is checked against noble's before timing. */
interface GroupSpec {
  readonly group: string;
  /** The primitive's word in case names (`sha256`, `ed25519 sign`, …). */
  readonly what: string;
  /** `64 B`, `1 KiB`… in case names; empty for the per-operation groups. */
  readonly size: string;
  readonly batch: number;
  /** The raw core, once: what is timed (the output stays in linear memory). */
  readonly wasm: () => unknown;
  /** Its output for the check: `outLen` bytes at OUT, or (without) the return value 1 as a true byte. */
  readonly outLen?: number;
  /** Op and args of the crypto enclave. */
  readonly op: string;
  readonly args: Record<string, unknown>;
  readonly noble: () => Uint8Array;
  readonly node?: () => Uint8Array;
  /** How the enclave's reply compares to noble's output (default: the bytes are equal). */
  readonly reply?: (reply: unknown) => Uint8Array;
  /** Report the enclave's fuel for this call in the notes. */
  readonly fuelNote?: boolean;
}

function loop(batch: number, f: () => unknown): () => void {
  return () => {
    for (let i = 0; i < batch; i++) f();
  };
}

export const suite = defineSuite({
  name: 'crypto',
  description: 'SDK crypto in Wasm (raw and across the boundary) vs @noble/* (peer) and node:crypto (reference)',
  maxTime: 0.4,
  quickMaxTime: 0.1,
  peerLabel: '@noble',
  async setup(ctx) {
    const wasmPath = join(ctx.root, 'enclave-modules', 'crypto', 'build', 'crypto.wasm');
    let enclaveBytes: Uint8Array;
    try {
      enclaveBytes = new Uint8Array(await readFile(wasmPath));
    } catch {
      throw new Error(`${wasmPath} is missing: run \`npm run build\` first`);
    }
    const t0 = performance.now();
    const raw = await rawBinary(ctx.root, ctx.log);
    const compileNote = raw.cached ? 'from the cache' : `compiled in memory in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    const x = instantiateRaw(raw.binary);
    const enclave: Enclave = await loadEnclave(enclaveBytes);

    const mem = () => new Uint8Array(x.memory.buffer);
    const put = (bytes: Uint8Array): number => {
      const p = x.alloc(Math.max(bytes.length, 1));
      mem().set(bytes, p);
      return p;
    };
    const OUT = x.alloc(65_536 + 64);
    const out = (n: number) => mem().slice(OUT, OUT + n);

    // The same inputs for every implementation, generated once per run.
    const key = rand(32), nonce12 = rand(12), nonce24 = rand(24), aad = new Uint8Array(0);
    const K = put(key), N12 = put(nonce12), N24 = put(nonce24), AAD = put(aad);
    const specs: GroupSpec[] = [];
    // --quick leaves out the middle size: every case costs about half a second whatever maxTime is.
    for (const size of ctx.quick ? SIZES.filter((n) => n !== 1024) : SIZES) {
      const label = formatBytes(size);
      const msg = rand(size);
      const IN = put(msg); // the same bytes as `msg`, already inside the module's memory
      const batch = batchFor(size);
      specs.push(
        {
          group: `SHA-256 ${label}`, what: 'sha256', size: label, batch,
          wasm: () => x.sha256Raw(OUT, IN, size), outLen: 32,
          op: 'sha256', args: { data: msg }, fuelNote: size !== 1024,
          noble: () => nSha256(msg),
          node: () => crypto.createHash('sha256').update(msg).digest(),
        },
        {
          group: `SHA-512 ${label}`, what: 'sha512', size: label, batch,
          wasm: () => x.sha512Raw(OUT, IN, size), outLen: 64,
          op: 'sha512', args: { data: msg },
          noble: () => nSha512(msg),
          node: () => crypto.createHash('sha512').update(msg).digest(),
        },
        {
          group: `HMAC-SHA-256 ${label}`, what: 'hmac-sha256', size: label, batch,
          wasm: () => x.hmacSha256Raw(OUT, K, 32, IN, size), outLen: 32,
          op: 'hmac_sha256', args: { key, data: msg },
          noble: () => nHmac(nSha256, key, msg),
          node: () => crypto.createHmac('sha256', key).update(msg).digest(),
        },
        {
          group: `ChaCha20-Poly1305 seal ${label}`, what: 'chacha20poly1305', size: label, batch,
          wasm: () => x.sealRaw(0, OUT, K, N12, AAD, 0, IN, size), outLen: size + 16,
          op: 'aead_seal', args: { alg: 'chacha20poly1305', key, nonce: nonce12, aad, plaintext: msg }, fuelNote: size === 65_536,
          noble: () => nChaPoly(key, nonce12, aad).encrypt(msg),
          node: () => {
            const c = crypto.createCipheriv('chacha20-poly1305', key, nonce12, { authTagLength: 16 });
            return Buffer.concat([c.update(msg), c.final(), c.getAuthTag()]);
          },
        },
        {
          group: `XChaCha20-Poly1305 seal ${label}`, what: 'xchacha20poly1305', size: label, batch,
          wasm: () => x.sealRaw(1, OUT, K, N24, AAD, 0, IN, size), outLen: size + 16,
          op: 'aead_seal', args: { alg: 'xchacha20poly1305', key, nonce: nonce24, aad, plaintext: msg },
          noble: () => nXChaPoly(key, nonce24, aad).encrypt(msg),
        },
      );
    }

    const seed = rand(32), edMsg = rand(32);
    const edPub = nEd.getPublicKey(seed);
    const edSig = nEd.sign(edMsg, seed);
    const edPriv = pkcs8('302e020100300506032b657004220420', seed), edPubKey = spki('302a300506032b6570032100', edPub);
    const xa = rand(32), xbPub = nX.getPublicKey(rand(32));
    const xPriv = pkcs8('302e020100300506032b656e04220420', xa), xPub = spki('302a300506032b656e032100', xbPub);
    const SEED = put(seed), EDMSG = put(edMsg), SIG = put(edSig), PUB = put(edPub), XA = put(xa), XB = put(xbPub);
    const asBool = (ok: boolean) => Uint8Array.of(ok ? 1 : 0);
    specs.push(
      {
        group: 'Ed25519 sign (32 B msg)', what: 'ed25519 sign', size: '', batch: OP_BATCH,
        wasm: () => x.ed25519SignRaw(OUT, SEED, EDMSG, 32), outLen: 64,
        op: 'ed25519_sign', args: { seed, message: edMsg }, fuelNote: true,
        noble: () => nEd.sign(edMsg, seed),
        node: () => crypto.sign(null, edMsg, edPriv),
      },
      {
        group: 'Ed25519 verify (32 B msg)', what: 'ed25519 verify', size: '', batch: OP_BATCH,
        wasm: () => x.ed25519VerifyRaw(SIG, PUB, EDMSG, 32),
        op: 'ed25519_verify', args: { public_key: edPub, message: edMsg, signature: edSig }, fuelNote: true,
        // Strict RFC 8032 verification, as ours and OpenSSL's (noble's default is ZIP 215).
        noble: () => asBool(nEd.verify(edSig, edMsg, edPub, { zip215: false })),
        node: () => asBool(crypto.verify(null, edMsg, edPubKey, edSig)),
        reply: (r) => asBool(r === true),
      },
      {
        group: 'Ed25519 public key from seed', what: 'ed25519 public key', size: '', batch: OP_BATCH,
        wasm: () => x.ed25519PublicKeyRaw(OUT, SEED), outLen: 32,
        op: 'ed25519_public_key', args: { seed },
        noble: () => nEd.getPublicKey(seed),
      },
      {
        group: 'X25519 shared secret', what: 'x25519', size: '', batch: OP_BATCH,
        wasm: () => x.x25519Raw(OUT, XA, XB), outLen: 32,
        op: 'x25519', args: { secret_key: xa, public_key: xbPub }, fuelNote: true,
        noble: () => nX.getSharedSecret(xa, xbPub),
        node: () => crypto.diffieHellman({ privateKey: xPriv, publicKey: xPub }),
      },
    );

    const cases: Case[] = [];
    const fuel: string[] = [];
    for (const s of specs) {
      // Sanity: every implementation agrees with noble on these inputs before anything is timed.
      const want = s.noble();
      if (s.outLen === undefined && want[0] !== 1) throw new Error(`${s.group}: @noble rejects its own signature`);
      const ret = s.wasm();
      const stats = { fuel: 0 };
      const reply = await enclave.call(s.op, s.args, { stats });
      const got: Array<[string, unknown]> = [
        ['wasm', s.outLen === undefined ? asBool(ret === 1) : out(s.outLen)],
        ['enclave.call', s.reply ? s.reply(reply) : reply],
        ...(s.node ? [['node:crypto', s.node()] as [string, unknown]] : []),
      ];
      for (const [who, bytes] of got) {
        if (!(bytes instanceof Uint8Array) || !same(bytes, want)) throw new Error(`${s.group}: ${who} disagrees with @noble`);
      }
      if (s.fuelNote) fuel.push(`${s.group} ${stats.fuel.toLocaleString('en-US')}`);

      const name = (who: string) => `${who} ${s.what}${s.size === '' ? '' : ` ${s.size}`}`;
      const { batch, group } = s;
      const peer = name('noble');
      cases.push(
        { name: name('wasm'), group, batch, peer, fn: loop(batch, s.wasm) },
        {
          name: name('enclave.call'),
          group,
          batch,
          peer,
          fn: async () => {
            for (let i = 0; i < batch; i++) await enclave.call(s.op, s.args);
          },
        },
        { name: peer, group, role: 'peer', batch, fn: loop(batch, s.noble) },
      );
      if (s.node) cases.push({ name: name('node:crypto'), group, role: 'reference', batch, fn: loop(batch, s.node) });
    }

    return {
      cases,
      notes: [
        `Node ${process.version}, OpenSSL ${process.versions.openssl}, @noble/* 2.x. Hash and AEAD inputs are random bytes generated once per run ` +
          'and shared by every case; AEAD is seal with an empty AAD; every output was checked against @noble before timing.',
        `\`wasm\`: the SDK's raw pointer cores (-O3, ${compileNote}), inputs and output in linear memory ` +
          '(outputs are read back once, for the check, not in the timed loop). `enclave.call`: the crypto test enclave in-process, fuel metered, as loaded by default ' +
          '(request packing, copies, op dispatch, `Uint8Array` allocations in the SDK API, reply unpacking).',
        `Fuel per \`enclave.call\` (the op plus envelope handling): ${fuel.join('; ')}.`,
        'Ed25519 verify is strict RFC 8032 everywhere (noble with `zip215: false`). node:crypto has no XChaCha20-Poly1305 and no ' +
          'seed-to-public-key call, so those groups have no reference. node:crypto creates a Hash/Hmac/Cipher object per operation, as a caller would.',
        ...(ctx.quick ? ['--quick: 64 B and 64 KiB only (the full run adds 1 KiB).'] : []),
      ],
      dispose: () => closeEnclave(enclave),
    };
  },
});

if (isMain(import.meta.url)) await runStandalone(suite);
