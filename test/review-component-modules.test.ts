/**
 * Parity of the shipped modules as core modules and as components (`enclave build --component`:
 * the same AssemblyScript sources, the SDK's component mode): counter, crypto and vault, every op of
 * each contract, valid and refused calls. A caller must not be able to tell which form serves it:
 * the same values (deep-equal) and the same error codes and details. test/component-parity.test.ts
 * does the echo; this does the modules whose ops do real work (hashes, AEAD, curves, the vault's
 * keys, sealing and counters through the world's imports).
 *
 * The vault's random keys differ from load to load: each vault's replies are compared with bytes
 * replaced by their length, and where a key is the same in both (sealed under `signer` by the core
 * vault, imported into the component) the replies are compared exactly.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnclaveError, isComponent } from '../core/index.js';
import type { EnclaveHandle } from '../host/index.js';
import { loadIn, MODES } from './helpers/modes.js';
import { vaultRig, type VaultRig } from './helpers/vault.js';

const built = (name: string, component: boolean): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`../enclave-modules/${name}/build/${name}${component ? '.component' : ''}.wasm`, import.meta.url)));

type Outcome = { value: unknown } | { code: string; detail: string | undefined };

async function outcome(call: Promise<unknown>): Promise<Outcome> {
  try {
    return { value: await call };
  } catch (err) {
    if (!(err instanceof EnclaveError)) throw err;
    return { code: err.code, detail: err.detail };
  }
}

/** Bytes of 4 KiB or more as their length and digest (vitest compares typed arrays element by element). */
function comparable(v: unknown): unknown {
  if (v instanceof Uint8Array) return v.length < 4096 ? v : { bytes: v.length, sha256: createHash('sha256').update(v).digest('hex') };
  if (Array.isArray(v)) return v.map(comparable);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, comparable(x)]));
  return v;
}

/** Every byte string replaced by its length: the shape of a reply whose bytes are random. */
function shape(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: v.length };
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  return v;
}

const bytes = (n: number, seed = 7) => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff);

describe.each(MODES)('counter and crypto: core module and component answer alike ($name)', (mode) => {
  const handles: EnclaveHandle[] = [];
  afterAll(async () => {
    await Promise.all(handles.map((h) => h.close()));
  });
  const pair = async (name: string): Promise<[EnclaveHandle, EnclaveHandle]> => {
    const component = built(name, true);
    expect(isComponent(component)).toBe(true);
    const p: [EnclaveHandle, EnclaveHandle] = [await loadIn(mode, built(name, false)), await loadIn(mode, component)];
    handles.push(...p);
    return p;
  };

  it('counter: incr, get, reset and their refusals', async () => {
    const [core, component] = await pair('counter');
    const rows: Array<[string, unknown]> = [
      ['get', null], ['reset', null], ['incr', null], ['incr', { by: 41 }], ['get', null], ['incr', { by: 0 }], ['incr', { by: 2 ** 53 }],
      ['incr', { by: 'x' }], ['get', { x: 1 }], ['nope', null], ['reset', null], ['get', null],
    ];
    for (const [op, args] of rows) {
      const [a, b] = [await outcome(core.call(op, args)), await outcome(component.call(op, args))];
      expect(b, `${op} ${JSON.stringify(args)}`).toEqual(a);
    }
  }, 120_000);

  it('crypto: every op, with valid args and refused ones, gives the same value or the same error', async () => {
    const [core, component] = await pair('crypto');
    const key = bytes(32, 1);
    const seed = bytes(32, 2);
    const msg = bytes(1000, 3);
    const big = bytes(1_048_576, 4);
    const sealed12 = (await core.call('aead_seal', { alg: 'chacha20poly1305', key, nonce: bytes(12), aad: bytes(5), plaintext: msg })) as Uint8Array;
    const tampered = sealed12.slice();
    tampered[0]! ^= 1;
    const pub = (await core.call('ed25519_public_key', { seed })) as Uint8Array;
    const sig = (await core.call('ed25519_sign', { seed, message: msg })) as Uint8Array;
    const rows: Array<[string, unknown]> = [
      ['sha256', { data: new Uint8Array(0) }], ['sha256', { data: msg }], ['sha256', { data: big }],
      ['sha512', { data: msg }], ['sha512', { data: big }],
      ['hmac_sha256', { key, data: msg }], ['hmac_sha256', { key: bytes(4096), data: msg }], ['hmac_sha512', { key, data: msg }],
      ['hkdf_sha256', { ikm: key, salt: bytes(16), info: bytes(8), length: 42 }], ['hkdf_sha256', { ikm: key, salt: bytes(16), info: bytes(8), length: 8160 }],
      ['hkdf_sha256', { ikm: key, salt: bytes(16), info: bytes(8), length: 0 }], ['hkdf_sha256', { ikm: key, salt: bytes(16), info: bytes(8), length: 8161 }],
      ['aead_seal', { alg: 'chacha20poly1305', key, nonce: bytes(12), aad: bytes(5), plaintext: msg }],
      ['aead_seal', { alg: 'xchacha20poly1305', key, nonce: bytes(24), aad: bytes(0), plaintext: bytes(1_000_000) }],
      ['aead_seal', { alg: 'aes', key, nonce: bytes(12), aad: bytes(5), plaintext: msg }],
      ['aead_seal', { alg: 'chacha20poly1305', key, nonce: bytes(24), aad: bytes(5), plaintext: msg }],
      ['aead_open', { alg: 'chacha20poly1305', key, nonce: bytes(12), aad: bytes(5), sealed: sealed12 }],
      ['aead_open', { alg: 'chacha20poly1305', key, nonce: bytes(12), aad: bytes(5), sealed: tampered }],
      ['aead_open', { alg: 'chacha20poly1305', key: bytes(31), nonce: bytes(12), aad: bytes(5), sealed: sealed12 }],
      ['aead_open', { alg: 'chacha20poly1305', key, nonce: bytes(12), aad: bytes(5), sealed: bytes(3) }],
      ['x25519_public_key', { secret_key: key }], ['x25519', { secret_key: key, public_key: seed }],
      ['x25519', { secret_key: key, public_key: new Uint8Array(32) }], // the all-zero point: nil
      ['ed25519_public_key', { seed }], ['ed25519_sign', { seed, message: msg }], ['ed25519_sign', { seed, message: big }],
      ['ed25519_verify', { public_key: pub, message: msg, signature: sig }],
      ['ed25519_verify', { public_key: pub, message: bytes(1000, 9), signature: sig }],
      ['ed25519_verify', { public_key: bytes(31), message: msg, signature: sig }],
      ['ed25519_verify', { public_key: pub, message: msg, signature: bytes(128) }],
      ['equal_bytes', { a: msg, b: msg }], ['equal_bytes', { a: msg, b: bytes(1000, 4) }], ['equal_bytes', { a: msg, b: bytes(999, 3) }],
      ['sha256', { data: 'not bytes' }], ['sha256', null], ['x25519', { secret_key: bytes(33) }], ['nope', {}],
    ];
    for (const [op, args] of rows) {
      const [a, b] = [await outcome(core.call(op, args)), await outcome(component.call(op, args))];
      expect(comparable(b), `${op} ${JSON.stringify(comparable(args))}`).toEqual(comparable(a));
    }
  }, 240_000);
});

describe.each(MODES)('vault: core module and component answer alike ($name)', (mode) => {
  let rig: VaultRig;
  let core: EnclaveHandle;
  let component: EnclaveHandle;

  beforeAll(async () => {
    rig = await vaultRig();
    core = await rig.load(mode, rig.sign(built('vault', false)));
    // Another vault on the same platform and signer: its own counters, keys sealed under `signer` shared.
    component = await rig.load(mode, rig.sign(built('vault', true)), { vaultId: bytes(16, 99) });
  }, 180_000);

  afterAll(async () => {
    await core?.close();
    await component?.close();
  });

  type Persist = { name: string; version: number; blob: Uint8Array };

  /** The latest committed blob of each key name, per vault. */
  const persisted: [Map<string, Uint8Array>, Map<string, Uint8Array>] = [new Map(), new Map()];
  type Pair = [Record<string, unknown>, Record<string, unknown>];
  /** Calls `op` on both (the core vault with `a`, the component with `b`, default `a`); the shapes of their outcomes must be equal. */
  const both = async (op: string, a: unknown, b: unknown = a): Promise<[Outcome, Outcome]> => {
    const oa = await outcome(core.call(op, a));
    const ob = await outcome(component.call(op, b));
    expect(shape(ob), `${op} ${JSON.stringify(shape(b))}`).toEqual(shape(oa));
    return [oa, ob];
  };
  const value = <T>(o: Outcome): T => {
    if (!('value' in o)) throw new Error(`expected a value, got ${JSON.stringify(o)}`);
    return o.value as T;
  };
  /** `args` with each vault's own handle of the key `r` (a pair of replies holding `handle`). */
  const on = (r: Pair, args: Record<string, unknown> = {}): [Record<string, unknown>, Record<string, unknown>] => [
    { ...args, handle: r[0].handle },
    { ...args, handle: r[1].handle },
  ];
  const each = (op: string, [a, b]: [unknown, unknown]) => both(op, a, b);
  /** A mutation on both, each persist committed; the two replies. */
  const mutate = async (op: string, a: unknown, b: unknown = a): Promise<Pair> => {
    const [oa, ob] = await both(op, a, b);
    const ra = value<{ persist: Persist }>(oa);
    const rb = value<{ persist: Persist }>(ob);
    persisted[0].set(ra.persist.name, ra.persist.blob);
    persisted[1].set(rb.persist.name, rb.persist.blob);
    await both('commit', { name: ra.persist.name, version: ra.persist.version }, { name: rb.persist.name, version: rb.persist.version });
    return [ra as unknown as Record<string, unknown>, rb as unknown as Record<string, unknown>];
  };

  it('every op: the same codes and reply shapes; the same bytes where the key is the same', async () => {
    const sym = await mutate('create', { name: 'sym', type: 'symmetric', exportable: true, deletion_allowed: true, seal_policy: 'signer' });
    const ed = await mutate('create', { name: 'ed', type: 'ed25519', seal_policy: 'measurement' });
    const x = await mutate('create', { name: 'x', type: 'x25519', exportable: true, deletion_allowed: true, seal_policy: 'signer' });
    await both('create', { name: 'sym', type: 'symmetric' }); // exists
    await both('create', { name: 'bad', type: 'rsa' });
    await both('create', { name: 'Bad Name!', type: 'symmetric' });
    await both('open', { name: 'sym' });
    await both('open', { name: 'none' });
    await both('list', null);
    await both('list', { after: 'ed', limit: 1 });
    await each('describe', on(sym));
    await both('describe', { handle: bytes(16) });
    await mutate('rotate', ...on(sym));
    await mutate('configure', ...on(sym, { min_decryption_version: 2 }));
    await each('configure', on(sym, { min_decryption_version: 9 }));
    await each('export', on(sym));
    await each('export', on(ed)); // not exportable
    await each('public_key', on(ed));
    await each('public_key', on(x));
    await each('public_key', on(sym));
    const pt = bytes(300);
    const aad = bytes(7);
    const [ctA, ctB] = await each('encrypt', on(sym, { plaintext: pt, aad }));
    await both('decrypt', on(sym, { ciphertext: value(ctA), aad })[0], on(sym, { ciphertext: value(ctB), aad })[1]);
    await both('decrypt', on(sym, { ciphertext: value(ctA), aad: bytes(1) })[0], on(sym, { ciphertext: value(ctB), aad: bytes(1) })[1]);
    await each('decrypt', on(sym, { ciphertext: bytes(10) }));
    await both('rewrap', on(sym, { ciphertext: value(ctA), aad })[0], on(sym, { ciphertext: value(ctB), aad })[1]);
    await each('encrypt', on(sym, { batch: Array.from({ length: 5 }, (_, i) => ({ plaintext: bytes(i * 10), aad: bytes(i) })) }));
    await each('encrypt', on(ed, { plaintext: pt })); // wrong key type
    await each('datakey', on(sym, { plaintext: true, aad }));
    await each('datakey', on(sym));
    await each('sign', on(ed, { message: pt }));
    await each('sign', on(ed, { batch: [{ message: pt }, { message: aad }] }));
    await each('verify', on(ed, { message: pt, signature: bytes(68) }));
    const [sigA, sigB] = await each('sign', on(ed, { message: aad }));
    await both('verify', on(ed, { message: aad, signature: value(sigA) })[0], on(ed, { message: aad, signature: value(sigB) })[1]);
    await each('mac', on(sym, { data: pt }));
    await each('verify_mac', on(sym, { data: pt, mac: bytes(32) }));
    await each('derive', on(sym, { context: aad, length: 64 }));
    await each('derive', on(x, { context: aad, peer_public_key: bytes(32) }));
    await mutate('trim', ...on(sym, { min_available_version: 2 }));
    await mutate('reseal_key', { name: 'sym' });
    // Sealed under `signer` by the core vault, imported into both: one key, the same bytes.
    const [sealedA] = await each('export_sealed', on(sym, { policy: 'signer' }));
    await each('export_sealed', on(ed, { policy: 'signer' })); // not exportable
    const shared = await mutate('import_sealed', { blob: value(sealedA), name: 'shared' });
    await both('import_sealed', { blob: bytes(100), name: 'junk' });
    await both('reseal', { blob: value(sealedA) });
    await both('reseal', { blob: bytes(100) });
    const same = async (op: string, args: Record<string, unknown>): Promise<void> => {
      const [a, b] = await each(op, on(shared, args));
      expect(b, op).toEqual(a);
    };
    await same('mac', { data: pt });
    await same('mac', { batch: [{ data: pt }, { data: aad }] });
    await same('derive', { context: aad, length: 33 });
    await same('export', {});
    await same('verify_mac', { data: pt, mac: bytes(36) });
    await same('verify_mac', { data: pt, mac: (await core.call('mac', { ...on(shared)[0], data: pt })) as Uint8Array });
    const ct = (await core.call('encrypt', { ...on(shared)[0], plaintext: pt, aad })) as Uint8Array;
    await same('decrypt', { ciphertext: ct, aad });
    await same('decrypt', { ciphertext: ct, aad: bytes(2) });
    await both('load', { blobs: [], names: [] });
    await both('abort', { name: 'sym', version: 999 });
    await both('commit', { name: 'sym', version: 999 });
    await mutate('destroy', ...on(x));
    await each('destroy', on(ed)); // deletion not allowed
    await each('describe', on(x));
    await both('list', { limit: 1024 });
    await both('init', { vault_id: bytes(16, 1) }); // another id: state
    // A fresh instance of each vault loads its committed blobs back (unsealed, counters checked).
    const macA = await core.call('mac', { ...on(shared)[0], data: pt });
    await core.close();
    await component.close();
    core = await rig.load(mode, rig.sign(built('vault', false)));
    component = await rig.load(mode, rig.sign(built('vault', true)), { vaultId: bytes(16, 99) });
    const blobs = (m: Map<string, Uint8Array>) => ({ names: [...m.keys()], blobs: [...m.values()] });
    const [loadedA, loadedB] = await both('load', blobs(persisted[0]), blobs(persisted[1]));
    expect(value(loadedB)).toEqual(value(loadedA));
    expect(value<unknown[]>(loadedA).length).toBe(4);
    await both('list', null);
    await both('load', blobs(persisted[1]), blobs(persisted[0])); // each the other's: refused alike
    const reopened = await both('open', { name: 'shared' });
    const [macAgainA, macAgainB] = await both('mac', { handle: value<{ handle: Uint8Array }>(reopened[0]).handle, data: pt }, { handle: value<{ handle: Uint8Array }>(reopened[1]).handle, data: pt });
    expect(value(macAgainA)).toEqual(macA);
    expect(value(macAgainB)).toEqual(macA);
  }, 600_000);
});
