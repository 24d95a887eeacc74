/**
 * The capabilities in WIT form (runtime/capabilities/_component.ts, issue 14 decision 7): the
 * imports jco's glue hands a component, each a core ABI import over a host-side scratch buffer.
 * Here `componentImports` is driven directly, as the glue drives it, with a context of the test's
 * making over the software platform: every value in jco's shapes, every failure mapped, fuel
 * charged as the core imports charge it plus COMPONENT_IMPORT_FUEL per call for the glue's
 * crossing (paid first, whatever the arguments), the per-call bounds kept, the instance's memory
 * never touched, nothing shared between instances.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AttestationError, generateKeyPair, signModule, SoftwareAttestationProvider, type ModuleIdentity } from '../attest/index.js';
import type { EnclaveHandle } from '../host/index.js';
import { EnclaveError } from '../core/index.js';
import { EnclaveAbort } from '../runtime/_live.js';
import type { LogLevel } from '../runtime/abi.js';
import { CAPABILITY_MODULES, type Capability, type ImportContext } from '../runtime/capabilities/index.js';
import { COMPONENT_IMPORT_FUEL, componentImports, type ComponentImports } from '../runtime/capabilities/_component.js';
import { reportContextOf } from '../runtime/capabilities/attest.js';
import type { EnclavePlatform } from '../runtime/platform.js';
import { ENCLAVE_WIT, MINIMAL_COMPONENT_CONTRACT, rawComponent, watComponent } from './helpers/component-fixtures.js';
import { codeOf, syncCodeOf } from './helpers/errors.js';
import { loadIn, MODES } from './helpers/modes.js';
import {
  ALL_CAPABILITIES,
  capsComponent,
  capsContract,
  capsWat,
  DATA_PTR,
  decodeCapsAnswer,
  decodeRawCapsAnswer,
  encodeCapsArgs,
  MEMORY_BYTES,
  SEL,
  type CapsAnswer,
  type CapsArgs,
} from './helpers/component-caps-wat.js';

const ALL: readonly Capability[] = ['random', 'clock', 'log', 'seal', 'counter', 'attest'];
const U64_MAX = (1n << 64n) - 1n;
const ZERO32 = new Uint8Array(32);
const tagOf = (n: number): Uint8Array => new Uint8Array(32).map((_, i) => (n * 31 + i) & 0xff);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
/** types.failure's cases by their index in the WIT enum (what the glue lowers). */
const FAILURE = Object.freeze({ invalid: 0, unavailable: 1, 'unknown-root': 2, 'svn-not-allowed': 3, conflict: 4, limit: 5 });

/** The fuel a core import declares. */
function fuelOf(name: string): number {
  const imp = CAPABILITY_MODULES.flatMap((c) => c.imports).find((i) => i.name === name);
  if (imp === undefined) throw new Error(name);
  return imp.fuel;
}

/** What every import call of a component pays first, for jco's glue crossing, before its core import's fuel. */
const CROSSING = COMPONENT_IMPORT_FUEL;

const IDENTITY: ModuleIdentity = Object.freeze({ measurement: 'ab'.repeat(32), signers: ['cd'.repeat(32)], signer: 'cd'.repeat(32), svn: 3, name: 'caps', version: '1.0.0' });
const UNSIGNED: ModuleIdentity = Object.freeze({ measurement: 'ef'.repeat(32), signers: [], svn: 0, name: 'caps', version: '1.0.0' });

interface Fake {
  readonly ctx: ImportContext;
  /** Fuel charged so far. */
  fuel: number;
  /** Past this, `pay` throws as the runtime's does (EnclaveAbort). */
  budget: number;
  readonly lines: [LogLevel, string][];
  dropped: number;
  /** A new call into the enclave: a new serial, the report cache invalid. */
  nextCall(): void;
}

/** A context of the test's making; the instance's memory is never there to be touched. */
function fakeContext(platform: EnclavePlatform | undefined, options: { identity?: ModuleIdentity; listening?: boolean } = {}): Fake {
  const identity = options.identity ?? IDENTITY;
  let serial = 1;
  let sameCall = false;
  const untouchable = (): never => {
    throw new Error('the instance memory was touched');
  };
  const fake: Fake = {
    fuel: 0,
    budget: Number.POSITIVE_INFINITY,
    lines: [],
    dropped: 0,
    nextCall() {
      serial++;
      sameCall = false;
    },
    ctx: {
      memory: untouchable,
      inBounds: untouchable,
      readText: untouchable,
      pay(fuel) {
        fake.fuel += fuel;
        if (fake.fuel > fake.budget) throw new EnclaveAbort('out of fuel');
      },
      admitLog() {
        if (fake.lines.length < 256) return true;
        fake.dropped++;
        return false;
      },
      log: (level, message) => void fake.lines.push([level, message]),
      listening: options.listening ?? true,
      identity,
      platform,
      reportContext: () => reportContextOf(identity, { limits: { fuel: 1 }, capabilities: ['attest'], debug: false }),
      get sameCall() {
        return sameCall;
      },
      set sameCall(value: boolean) {
        sameCall = value;
      },
      callSerial: () => serial,
    },
  };
  return fake;
}

/** The function `name` of interface `iface`, typed for the test. */
function fn<F>(imports: ComponentImports, iface: string, name: string): F {
  const f = imports[`enclave:runtime/${iface}`]?.[name];
  if (f === undefined) throw new Error(`no ${iface}.${name}`);
  return f as unknown as F;
}

/** What a call throws (counter.read's failures are thrown), or undefined. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** A platform of the test's making, each method as given. */
function fakePlatform(methods: Record<string, unknown>): EnclavePlatform {
  return { platform: 'fake', getSealingSecret: () => new Uint8Array(32), getEvidence: () => 'a.b.c', ...methods } as unknown as EnclavePlatform;
}

let dir: string;
let provider: SoftwareAttestationProvider;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
  dir = join(mkdtempSync(join(tmpdir(), 'enclave-component-caps-')), 'platform');
  provider = new SoftwareAttestationProvider({ dir });
  // Roots: 1 active, 2 revoked, 3 current.
  expect(provider.rotateSealingRoot().id).toBe(2);
  expect(provider.rotateSealingRoot().id).toBe(3);
  provider.revokeSealingRoot(2);
});

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled).toEqual([]);
});

describe('the interfaces', () => {
  it('each granted capability under its unversioned interface name, with the WIT functions in camelCase', () => {
    const imports = componentImports(ALL, fakeContext(provider).ctx);
    expect(Object.fromEntries(Object.entries(imports).map(([k, v]) => [k, Object.keys(v).sort()]))).toEqual({
      'enclave:runtime/random': ['fill'],
      'enclave:runtime/clock': ['now'],
      'enclave:runtime/log': ['log'],
      'enclave:runtime/seal': ['sealKey', 'sealKeyAt'],
      'enclave:runtime/counter': ['advance', 'read'],
      'enclave:runtime/attest': ['report'],
    });
    for (const iface of Object.values(imports)) expect(Object.isFrozen(iface)).toBe(true);
  });

  it('only the capabilities asked for; none: no interface at all', () => {
    expect(Object.keys(componentImports(['clock', 'seal'], fakeContext(provider).ctx)).sort()).toEqual(['enclave:runtime/clock', 'enclave:runtime/seal']);
    expect(componentImports([], fakeContext(provider).ctx)).toEqual({});
    // Names outside the list are not capabilities.
    expect(componentImports(['handler', 'types'] as unknown as Capability[], fakeContext(provider).ctx)).toEqual({});
  });

  it('without a platform, seal, counter and attest have no functions to offer (as importsFor leaves their core imports out)', () => {
    expect(Object.keys(componentImports(ALL, fakeContext(undefined).ctx)).sort()).toEqual([
      'enclave:runtime/clock',
      'enclave:runtime/log',
      'enclave:runtime/random',
    ]);
  });

  it('building the imports charges nothing and touches no memory', () => {
    const fake = fakeContext(provider);
    componentImports(ALL, fake.ctx);
    expect(fake.fuel).toBe(0);
  });
});

describe('random.fill', () => {
  it('len bytes of the CSPRNG, as a Uint8Array; the crossing, then the fuel of the core import', () => {
    const fake = fakeContext(undefined);
    const fill = fn<(len: number) => unknown>(componentImports(['random'], fake.ctx), 'random', 'fill');
    const a = fill(32) as Uint8Array;
    const b = fill(32) as Uint8Array;
    expect(a).toBeInstanceOf(Uint8Array);
    expect(a.length).toBe(32);
    expect(hex(a)).not.toBe(hex(b));
    expect(hex(a)).not.toBe(hex(ZERO32));
    expect(fake.fuel).toBe(2 * (CROSSING + fuelOf('random') + 8));
    expect((fill(0) as Uint8Array).length).toBe(0);
  });

  it('65536 bytes is the bound: 65537 and any u32 above are invalid, charged as the core import charges them', () => {
    const fake = fakeContext(undefined);
    const fill = fn<(len: number) => unknown>(componentImports(['random'], fake.ctx), 'random', 'fill');
    expect((fill(65_536) as Uint8Array).length).toBe(65_536);
    fake.fuel = 0;
    for (const len of [65_537, 0x7fff_ffff, 0xffff_ffff]) expect(fill(len), `len ${len}`).toEqual({ tag: 'err', val: 'invalid' });
    expect(fake.fuel).toBe(3 * (CROSSING + fuelOf('random') + 65_536 / 4));
  });

  it('the bytes handed over are zeroed once the call is over (the glue copied them into the guest before)', async () => {
    const fill = fn<(len: number) => Uint8Array>(componentImports(['random'], fakeContext(undefined).ctx), 'random', 'fill');
    const bytes = fill(64);
    expect(bytes.some((b) => b !== 0)).toBe(true);
    await Promise.resolve();
    expect(bytes.every((b) => b === 0)).toBe(true);
  });

  it('out of fuel for the crossing or for the core import: it throws the runtime abort (the call ends fuel_exhausted), nothing handed over', () => {
    // The crossing alone is more than is left; then the crossing is paid, the core import's fuel (+ 64 / 4) is not.
    for (const budget of [CROSSING - 1, CROSSING + fuelOf('random') + 15]) {
      const fake = fakeContext(undefined);
      fake.budget = budget;
      const fill = fn<(len: number) => unknown>(componentImports(['random'], fake.ctx), 'random', 'fill');
      expect(thrown(() => fill(64)), `budget ${budget}`).toBeInstanceOf(EnclaveAbort);
    }
    // Exactly enough: served.
    const fake = fakeContext(undefined);
    fake.budget = CROSSING + fuelOf('random') + 16;
    expect((fn<(len: number) => unknown>(componentImports(['random'], fake.ctx), 'random', 'fill')(64) as Uint8Array).length).toBe(64);
  });
});

describe('arguments of other types than the world gives', () => {
  it('random.fill and attest.report trap after paying the crossing only (the glue did its work), no core fuel, the platform never asked', () => {
    let asked = 0;
    const fake = fakeContext(fakePlatform({ getEvidence: () => (asked++, 'a.b.c') }));
    const imports = componentImports(ALL, fake.ctx);
    const fill = fn<(len: unknown) => unknown>(imports, 'random', 'fill');
    const lens = [-1, 2 ** 32, 1.5, Number.NaN, 8n, '8', undefined];
    for (const len of lens) expect(syncCodeOf(() => fill(len)), String(len)).toBe('trap');
    const report = fn<(data: unknown) => unknown>(imports, 'attest', 'report');
    const datas = ['0123456789', [1, 2, 3, 4, 5, 6, 7, 8], new Uint16Array(8), undefined];
    for (const data of datas) expect(syncCodeOf(() => report(data)), String(data)).toBe('trap');
    expect(fake.fuel).toBe((lens.length + datas.length) * CROSSING);
    expect(asked).toBe(0);
  });
});

describe('clock.now', () => {
  it('wall-clock milliseconds as a BigInt (s64); the crossing, then the fuel of the core import', () => {
    const fake = fakeContext(undefined);
    const now = fn<() => unknown>(componentImports(['clock'], fake.ctx), 'clock', 'now');
    const before = BigInt(Date.now());
    const t = now();
    expect(typeof t).toBe('bigint');
    expect(t as bigint).toBeGreaterThanOrEqual(before);
    expect(t as bigint).toBeLessThanOrEqual(BigInt(Date.now()));
    expect(fake.fuel).toBe(CROSSING + fuelOf('now'));
  });
});

describe('log.log', () => {
  const setup = (listening = true): { fake: Fake; log: (level: string, message: string) => unknown } => {
    const fake = fakeContext(undefined, { listening });
    return { fake, log: fn(componentImports(['log'], fake.ctx), 'log', 'log') };
  };

  it('each level by name; the line as given; the crossing, then the fuel of the core import per byte', () => {
    const { fake, log } = setup();
    for (const level of ['debug', 'info', 'warn', 'error']) expect(log(level, `a ${level} line`)).toBeUndefined();
    expect(fake.lines).toEqual([
      ['debug', 'a debug line'],
      ['info', 'a info line'],
      ['warn', 'a warn line'],
      ['error', 'a error line'],
    ]);
    expect(fake.fuel).toBe(4 * (CROSSING + fuelOf('log')) + [12, 11, 11, 12].reduce((s, n) => s + Math.floor(n / 4), 0));
  });

  it('the first 1024 bytes are kept, cut at a character boundary, never inside one', () => {
    const { fake, log } = setup();
    log('info', 'a'.repeat(2000));
    // 1023 ASCII bytes, then a 2-byte character that does not fit: it is left out whole.
    log('info', `${'a'.repeat(1023)}é and more`);
    // A 4-byte character (two UTF-16 units) across the bound.
    log('info', `${'a'.repeat(1021)}😀`);
    log('info', `${'a'.repeat(1020)}😀`);
    expect(fake.lines.map(([, m]) => Buffer.byteLength(m))).toEqual([1024, 1023, 1021, 1024]);
    expect(fake.lines[1]![1]).toBe('a'.repeat(1023));
    expect(fake.lines[3]![1]).toBe(`${'a'.repeat(1020)}😀`);
    expect(fake.lines.every(([, m]) => !m.includes('\uFFFD'))).toBe(true);
  });

  it('a long message pays for its whole length, listened to or not (the glue decoded all of it)', () => {
    const message = 'x'.repeat(100_000);
    const heard = setup(true);
    heard.log('warn', message);
    const unheard = setup(false);
    unheard.log('warn', message);
    expect(heard.fake.fuel).toBe(CROSSING + fuelOf('log') + 100_000 / 4);
    expect(unheard.fake.fuel).toBe(heard.fake.fuel);
    expect(unheard.fake.lines).toEqual([]);
    expect(heard.fake.lines).toEqual([['warn', 'x'.repeat(1024)]]);
  });

  it('lone surrogates are replaced (U+FFFD), never thrown on', () => {
    const { fake, log } = setup();
    log('info', 'a\uD800b\uDC00');
    expect(fake.lines).toEqual([['info', 'a\uFFFDb\uFFFD']]);
  });

  it('at most 256 lines per call: the rest are counted, not kept, and still paid for (crossing and core import)', () => {
    const { fake, log } = setup();
    const messages = Array.from({ length: 300 }, (_, i) => `line ${i}`);
    for (const message of messages) log('info', message);
    expect(fake.lines.length).toBe(256);
    expect(fake.dropped).toBe(44);
    expect(fake.fuel).toBe(messages.reduce((sum, m) => sum + CROSSING + fuelOf('log') + Math.floor(m.length / 4), 0));
  });

  it('a level or message of another type than the world gives traps after paying the crossing only: no core fuel, nothing logged', () => {
    const { fake, log } = setup();
    const calls = [['loud', 'x'], [1, 'x'], ['info', new Uint8Array(4)], ['info', undefined]];
    for (const [level, message] of calls) {
      expect(syncCodeOf(() => log(level as string, message as string)), String(level)).toBe('trap');
    }
    expect(fake.fuel).toBe(calls.length * CROSSING);
    expect(fake.lines).toEqual([]);
    expect(fake.dropped).toBe(0);
  });
});

describe('seal', () => {
  it('sealKey: the 32-byte key of the platform under each policy; the crossing, then the fuel of the core import', () => {
    const fake = fakeContext(provider);
    const sealKey = fn<(policy: string) => unknown>(componentImports(['seal'], fake.ctx), 'seal', 'sealKey');
    for (const policy of ['measurement', 'signer'] as const) {
      const key = sealKey(policy) as Uint8Array;
      expect(key).toBeInstanceOf(Uint8Array);
      expect(hex(key)).toBe(hex(provider.getSealingSecret(IDENTITY, policy)));
    }
    expect(fake.fuel).toBe(2 * (CROSSING + fuelOf('seal_key')));
  });

  it('sealKey: signer without a signer is unavailable; a platform that throws or answers garbage is unavailable', () => {
    const unsigned = fn<(policy: string) => unknown>(componentImports(['seal'], fakeContext(provider, { identity: UNSIGNED }).ctx), 'seal', 'sealKey');
    expect(unsigned('signer')).toEqual({ tag: 'err', val: 'unavailable' });
    expect((unsigned('measurement') as Uint8Array).length).toBe(32);
    for (const answer of [
      () => {
        throw new AttestationError('sealing_unavailable');
      },
      () => new Uint8Array(31),
      () => 'key',
      () => Promise.resolve(new Uint8Array(32)),
    ]) {
      const sealKey = fn<(policy: string) => unknown>(componentImports(['seal'], fakeContext(fakePlatform({ getSealingSecret: answer })).ctx), 'seal', 'sealKey');
      expect(sealKey('measurement')).toEqual({ tag: 'err', val: 'unavailable' });
    }
  });

  it('sealKey: a policy the WIT enum does not have traps (the component declared another type) after paying the crossing only, the platform never asked', () => {
    let asked = 0;
    const fake = fakeContext(fakePlatform({ getSealingSecret: () => (asked++, new Uint8Array(32)) }));
    const sealKey = fn<(policy: unknown) => unknown>(componentImports(['seal'], fake.ctx), 'seal', 'sealKey');
    const policies = ['other', 0, 1n, undefined];
    for (const policy of policies) expect(syncCodeOf(() => sealKey(policy)), String(policy)).toBe('trap');
    expect(fake.fuel).toBe(policies.length * CROSSING);
    expect(asked).toBe(0);
  });

  it('sealKey: the key handed over is zeroed once the call is over', async () => {
    const sealKey = fn<(policy: string) => Uint8Array>(componentImports(['seal'], fakeContext(provider).ctx), 'seal', 'sealKey');
    const key = sealKey('measurement');
    expect(hex(key)).not.toBe(hex(ZERO32));
    await Promise.resolve();
    expect(hex(key)).toBe(hex(ZERO32));
  });

  type SealKeyAt = (policy: string, keyId: number, svn: number | undefined) => unknown;

  it('sealKeyAt: a sealing-key record { key, keyId, svn } for the current root, an older one, the own and an older svn', () => {
    const fake = fakeContext(provider);
    const at = fn<SealKeyAt>(componentImports(['seal'], fake.ctx), 'seal', 'sealKeyAt');
    const current = at('measurement', 0, undefined) as { key: Uint8Array; keyId: number; svn: number };
    expect(Object.keys(current).sort()).toEqual(['key', 'keyId', 'svn']);
    expect({ key: hex(current.key), keyId: current.keyId, svn: current.svn }).toEqual({
      key: hex(provider.sealingKey(IDENTITY, 'measurement').key),
      keyId: 3,
      svn: 0,
    });
    const older = at('measurement', 1, undefined) as { key: Uint8Array; keyId: number };
    expect(older.keyId).toBe(1);
    expect(hex(older.key)).toBe(hex(provider.sealingKey(IDENTITY, 'measurement', { keyId: 1 }).key));
    const own = at('signer', 0, undefined) as { key: Uint8Array; svn: number };
    expect(own.svn).toBe(3);
    expect(hex(own.key)).toBe(hex(provider.sealingKey(IDENTITY, 'signer').key));
    const svn1 = at('signer', 1, 1) as { key: Uint8Array; keyId: number; svn: number };
    expect({ keyId: svn1.keyId, svn: svn1.svn }).toEqual({ keyId: 1, svn: 1 });
    expect(hex(svn1.key)).toBe(hex(provider.sealingKey(IDENTITY, 'signer', { keyId: 1, svn: 1 }).key));
    expect(fake.fuel).toBe(4 * (CROSSING + fuelOf('seal_key_at')));
  });

  it('sealKeyAt: unknown-root for a revoked root, an unknown id and any u32 id no root can have', () => {
    const at = fn<SealKeyAt>(componentImports(['seal'], fakeContext(provider).ctx), 'seal', 'sealKeyAt');
    for (const keyId of [2, 99, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]) {
      expect(at('measurement', keyId, undefined), `key id ${keyId}`).toEqual({ tag: 'err', val: 'unknown-root' });
    }
  });

  it('sealKeyAt: svn-not-allowed for any svn under measurement, an svn above the own, and u32 svns that are -1 as an i32', () => {
    const at = fn<SealKeyAt>(componentImports(['seal'], fakeContext(provider).ctx), 'seal', 'sealKeyAt');
    for (const svn of [0, 3]) expect(at('measurement', 0, svn), `measurement svn ${svn}`).toEqual({ tag: 'err', val: 'svn-not-allowed' });
    // 0xffffffff is the core ABI's -1 ("own svn") as an i32: in WIT it is an svn, above the own.
    for (const svn of [4, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]) {
      expect(at('signer', 0, svn), `signer svn ${svn}`).toEqual({ tag: 'err', val: 'svn-not-allowed' });
    }
  });

  it('sealKeyAt: unavailable for signer without a signer and a platform without sealingKey, or one that throws', () => {
    const unsigned = fn<SealKeyAt>(componentImports(['seal'], fakeContext(provider, { identity: UNSIGNED }).ctx), 'seal', 'sealKeyAt');
    expect(unsigned('signer', 0, undefined)).toEqual({ tag: 'err', val: 'unavailable' });
    const none = fn<SealKeyAt>(componentImports(['seal'], fakeContext(fakePlatform({})).ctx), 'seal', 'sealKeyAt');
    expect(none('measurement', 0, undefined)).toEqual({ tag: 'err', val: 'unavailable' });
    const throwing = fn<SealKeyAt>(
      componentImports(['seal'], fakeContext(fakePlatform({ sealingKey: () => { throw new Error('boom'); } })).ctx),
      'seal',
      'sealKeyAt',
    );
    expect(throwing('measurement', 0, undefined)).toEqual({ tag: 'err', val: 'unavailable' });
  });

  it('sealKeyAt: arguments of other types than policy, u32, option<u32> trap after paying the crossing only, the platform never asked', () => {
    let asked = 0;
    const fake = fakeContext(fakePlatform({ sealingKey: () => (asked++, { key: new Uint8Array(32), keyId: 1, svn: 0 }) }));
    const at = fn<(...args: unknown[]) => unknown>(componentImports(['seal'], fake.ctx), 'seal', 'sealKeyAt');
    const calls = [
      ['nope', 0, undefined],
      ['measurement', -1, undefined],
      ['measurement', 2 ** 32, undefined],
      ['measurement', 1.5, undefined],
      ['measurement', 0n, undefined],
      ['signer', 0, -1],
      ['signer', 0, null],
      ['signer', 0, 2 ** 32],
      ['signer', 0, '1'],
    ];
    for (const args of calls) expect(syncCodeOf(() => at(...args)), String(args)).toBe('trap');
    expect(fake.fuel).toBe(calls.length * CROSSING);
    expect(asked).toBe(0);
  });
});

describe('counter', () => {
  type Read = (policy: string, id: bigint) => unknown;
  type Advance = (policy: string, id: bigint, expected: bigint, tag: Uint8Array) => unknown;

  let fresh: () => { fake: Fake; read: Read; advance: Advance };

  beforeAll(() => {
    const platform = new SoftwareAttestationProvider({ dir: join(mkdtempSync(join(tmpdir(), 'enclave-component-counter-')), 'platform') });
    fresh = () => {
      const fake = fakeContext(platform);
      const imports = componentImports(['counter'], fake.ctx);
      return { fake, read: fn(imports, 'counter', 'read'), advance: fn(imports, 'counter', 'advance') };
    };
  });

  it('read: a counter-state record { value: bigint, tag }; never advanced is 0 and zeros', () => {
    const { fake, read } = fresh();
    expect(read('measurement', 1n)).toEqual({ value: 0n, tag: ZERO32 });
    expect(fake.fuel).toBe(CROSSING + fuelOf('counter_read'));
  });

  it('advance: ok is undefined (result<_, failure>); the value moves with the tag; a stale expected is a conflict that changes nothing', () => {
    const { fake, read, advance } = fresh();
    expect(advance('measurement', 2n, 0n, tagOf(1))).toBeUndefined();
    expect(read('measurement', 2n)).toEqual({ value: 1n, tag: tagOf(1) });
    for (const expected of [0n, 2n, U64_MAX]) {
      expect(advance('measurement', 2n, expected, tagOf(9)), `expected ${expected}`).toEqual({ tag: 'err', val: 'conflict' });
    }
    expect(read('measurement', 2n)).toEqual({ value: 1n, tag: tagOf(1) });
    expect(fake.fuel).toBe(4 * (CROSSING + fuelOf('counter_advance')) + 2 * (CROSSING + fuelOf('counter_read')));
    // The signer binding is another counter.
    expect(read('signer', 2n)).toEqual({ value: 0n, tag: ZERO32 });
    // Ids are u64 (the glue passes them as BigInt.asUintN(64, ...)).
    expect(advance('measurement', U64_MAX, 0n, tagOf(3))).toBeUndefined();
    expect(read('measurement', U64_MAX)).toEqual({ value: 1n, tag: tagOf(3) });
  });

  it('advance: a tag that is not 32 bytes is invalid, paid for (a long one by its length), never counted nor written', () => {
    const { fake, read, advance } = fresh();
    for (const tag of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33)]) {
      fake.fuel = 0;
      expect(advance('measurement', 3n, 0n, tag), `tag of ${tag.length}`).toEqual({ tag: 'err', val: 'invalid' });
      expect(fake.fuel).toBe(CROSSING + fuelOf('counter_advance') + Math.floor(tag.length / 4));
    }
    fake.fuel = 0;
    expect(advance('measurement', 3n, 0n, new Uint8Array(1 << 20))).toEqual({ tag: 'err', val: 'invalid' });
    expect(fake.fuel).toBe(CROSSING + fuelOf('counter_advance') + (1 << 18));
    expect(read('measurement', 3n)).toEqual({ value: 0n, tag: ZERO32 });
    // None of them counted against the 64 of this call.
    for (let i = 0; i < 64; i++) expect(advance('measurement', 3n, BigInt(i), tagOf(i)), `advance ${i}`).toBeUndefined();
  });

  it('the 65th advance in one call is limit, and moves nothing; the next call may advance again', () => {
    const { fake, read, advance } = fresh();
    for (let i = 0; i < 64; i++) expect(advance('measurement', 4n, BigInt(i), tagOf(i)), `advance ${i}`).toBeUndefined();
    expect(advance('measurement', 4n, 64n, tagOf(64))).toEqual({ tag: 'err', val: 'limit' });
    expect(read('measurement', 4n)).toEqual({ value: 64n, tag: tagOf(63) });
    fake.nextCall();
    expect(advance('measurement', 4n, 64n, tagOf(64))).toBeUndefined();
    expect(read('measurement', 4n)).toEqual({ value: 65n, tag: tagOf(64) });
  });

  it('each instance counts its own advances (nothing shared between two sets of imports)', () => {
    const a = fresh();
    const b = fresh();
    for (let i = 0; i < 64; i++) expect(a.advance('measurement', 5n, BigInt(i), tagOf(i))).toBeUndefined();
    expect(a.advance('measurement', 5n, 64n, tagOf(1))).toEqual({ tag: 'err', val: 'limit' });
    expect(b.advance('measurement', 5n, 64n, tagOf(1))).toBeUndefined();
  });

  it('read: failures are thrown as { payload } (counter-state has a field named tag: the glue reads any answer as ok)', () => {
    const { read } = fresh();
    const unsigned = componentImports(['counter'], fakeContext(provider, { identity: UNSIGNED }).ctx);
    expect(thrown(() => fn<Read>(unsigned, 'counter', 'read')('signer', 1n))).toEqual({ payload: 'unavailable' });
    for (const readCounter of [
      () => {
        throw new Error('disk');
      },
      () => ({ value: -1n, tag: ZERO32 }),
      () => ({ value: 1n, tag: new Uint8Array(31) }),
      () => Promise.resolve({ value: 1n, tag: ZERO32 }),
    ]) {
      const imports = componentImports(['counter'], fakeContext(fakePlatform({ readCounter, advanceCounter: () => true })).ctx);
      expect(thrown(() => fn<Read>(imports, 'counter', 'read')('measurement', 1n))).toEqual({ payload: 'unavailable' });
    }
  });

  it('arguments of other types than policy, u64, list<u8> trap after paying the crossing only: no core fuel, nothing counted', () => {
    const { fake, read, advance } = fresh();
    const anyRead = read as (...args: unknown[]) => unknown;
    const anyAdvance = advance as (...args: unknown[]) => unknown;
    const reads = [['nope', 1n], [0, 1n], ['measurement', 1], ['measurement', -1n], ['measurement', 1n << 64n], ['measurement', '1']];
    for (const args of reads) expect(syncCodeOf(() => anyRead(...args)), String(args)).toBe('trap');
    const advances = [
      ['nope', 1n, 0n, tagOf(1)],
      ['measurement', 1, 0n, tagOf(1)],
      ['measurement', 1n, -1n, tagOf(1)],
      ['measurement', 1n, 1n << 64n, tagOf(1)],
      ['measurement', 1n, 0n, [...tagOf(1)]],
      ['measurement', 1n, 0n, new Uint16Array(16)],
      ['measurement', 1n, 0n, 'tag'],
    ];
    for (const args of advances) expect(syncCodeOf(() => anyAdvance(...args)), String(args)).toBe('trap');
    expect(fake.fuel).toBe((reads.length + advances.length) * CROSSING);
    // None of them counted against the 64 advances of this call, nor moved a counter.
    expect(read('measurement', 1n)).toEqual({ value: 0n, tag: ZERO32 });
    for (let i = 0; i < 64; i++) expect(advance('measurement', 6n, BigInt(i), tagOf(i)), `advance ${i}`).toBeUndefined();
  });

  it('advance: the platform failing is unavailable, its counter_limit is limit', () => {
    const { advance } = fresh();
    const unsigned = componentImports(['counter'], fakeContext(provider, { identity: UNSIGNED }).ctx);
    expect(fn<Advance>(unsigned, 'counter', 'advance')('signer', 1n, 0n, tagOf(1))).toEqual({ tag: 'err', val: 'unavailable' });
    const cases: [unknown, unknown][] = [
      [
        () => {
          throw new AttestationError('counter_limit');
        },
        { tag: 'err', val: 'limit' },
      ],
      [
        () => {
          throw new Error('disk');
        },
        { tag: 'err', val: 'unavailable' },
      ],
      [() => 'yes', { tag: 'err', val: 'unavailable' }],
      [() => Promise.resolve(true), { tag: 'err', val: 'unavailable' }],
      [() => false, { tag: 'err', val: 'conflict' }],
    ];
    for (const [advanceCounter, expected] of cases) {
      const imports = componentImports(['counter'], fakeContext(fakePlatform({ readCounter: () => ({}), advanceCounter })).ctx);
      expect(fn<Advance>(imports, 'counter', 'advance')('measurement', 1n, 0n, tagOf(1))).toEqual(expected);
    }
  });
});

describe('attest.report', () => {
  type Report = (data: Uint8Array) => unknown;
  const nonce = new Uint8Array(16).map((_, i) => i + 1);

  /** The claims of a compact JWT. */
  const claims = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

  it('evidence as a string (the JWT) binding the data as its nonce; the crossing, then the fuel of the core import', () => {
    const fake = fakeContext(provider);
    const report = fn<Report>(componentImports(['attest'], fake.ctx), 'attest', 'report');
    const token = report(nonce);
    expect(typeof token).toBe('string');
    expect((token as string).split('.')).toHaveLength(3);
    expect(claims(token as string).eat_nonce).toBe(Buffer.from(nonce).toString('base64url'));
    expect(claims(token as string)['enclave.measurement']).toBe(IDENTITY.measurement);
    expect(fake.fuel).toBe(CROSSING + fuelOf('report'));
    for (const len of [8, 64]) expect(typeof report(new Uint8Array(len).fill(7)), `data of ${len}`).toBe('string');
  });

  it('within one call the same data gets the same evidence (the core cache); the next call a new one', () => {
    const fake = fakeContext(fakePlatform({ getEvidence: (() => { let n = 0; return () => `e.${++n}.x`; })() }));
    const report = fn<Report>(componentImports(['attest'], fake.ctx), 'attest', 'report');
    expect(report(nonce)).toBe('e.1.x');
    expect(report(nonce)).toBe('e.1.x');
    fake.nextCall();
    expect(report(nonce)).toBe('e.2.x');
  });

  it('data out of 8..64 bytes is invalid; a long list is paid for by its length', () => {
    const fake = fakeContext(provider);
    const report = fn<Report>(componentImports(['attest'], fake.ctx), 'attest', 'report');
    for (const len of [0, 7, 65, 100_000]) {
      fake.fuel = 0;
      expect(report(new Uint8Array(len)), `data of ${len}`).toEqual({ tag: 'err', val: 'invalid' });
      expect(fake.fuel).toBe(CROSSING + fuelOf('report') + (len > 64 ? Math.floor(len / 4) : 0));
    }
  });

  it('unavailable when the platform throws, answers no token, or a Promise; invalid for its bad-input error', () => {
    const cases: [unknown, unknown][] = [
      [() => { throw new Error('down'); }, 'unavailable'],
      [() => 42, 'unavailable'],
      [() => Promise.resolve('a.b.c'), 'unavailable'],
      [() => { throw new AttestationError('invalid_report_data'); }, 'invalid'],
    ];
    for (const [getEvidence, val] of cases) {
      const report = fn<Report>(componentImports(['attest'], fakeContext(fakePlatform({ getEvidence })).ctx), 'attest', 'report');
      expect(report(nonce)).toEqual({ tag: 'err', val });
    }
  });

  it('evidence larger than the scratch is handed over whole, paid for once (one crossing, one core import)', () => {
    const big = `h.${'p'.repeat(200_000)}.s`;
    let asked = 0;
    const fake = fakeContext(fakePlatform({ getEvidence: () => (asked++, big) }));
    const report = fn<Report>(componentImports(['attest'], fake.ctx), 'attest', 'report');
    expect(report(nonce)).toBe(big);
    expect(asked).toBe(1);
    expect(fake.fuel).toBe(CROSSING + fuelOf('report'));
    // The scratch is the usual size again: small evidence still fits it.
    expect(report(new Uint8Array(9))).toBe(big);
  });

  it('evidence above 1 MiB is unavailable (no buffer of a platform-chosen size)', () => {
    const report = fn<Report>(componentImports(['attest'], fakeContext(fakePlatform({ getEvidence: () => 'x'.repeat((1 << 20) + 1) })).ctx), 'attest', 'report');
    expect(report(nonce)).toEqual({ tag: 'err', val: 'unavailable' });
  });

  it('a token made anew on the retry (no call cache) of another length is unavailable, not a wrong token', () => {
    let n = 0;
    const fake = fakeContext(fakePlatform({ getEvidence: () => 'y'.repeat(70_000 + n++) }));
    // A context whose sameCall never sticks: the core import asks the platform again on the retry.
    const ctx = Object.create(fake.ctx, { sameCall: { get: () => false, set: () => undefined } }) as ImportContext;
    const report = fn<Report>(componentImports(['attest'], ctx), 'attest', 'report');
    expect(report(nonce)).toEqual({ tag: 'err', val: 'unavailable' });
  });
});

describe('fuel and scratch', () => {
  it('every function pays the crossing, then its core import, before any work: out of fuel at either, the platform is never asked', () => {
    let asked = 0;
    const platform = fakePlatform({
      getSealingSecret: () => (asked++, new Uint8Array(32)),
      sealingKey: () => (asked++, { key: new Uint8Array(32), keyId: 1, svn: 0 }),
      getEvidence: () => (asked++, 'a.b.c'),
      readCounter: () => (asked++, { value: 0n, tag: ZERO32 }),
      advanceCounter: () => (asked++, true),
    });
    const fake = fakeContext(platform);
    const imports = componentImports(ALL, fake.ctx);
    const calls: [string, string, unknown[]][] = [
      ['random', 'fill', [8]],
      ['clock', 'now', []],
      ['log', 'log', ['info', 'x']],
      ['seal', 'sealKey', ['measurement']],
      ['seal', 'sealKeyAt', ['measurement', 0, undefined]],
      ['counter', 'read', ['measurement', 1n]],
      ['counter', 'advance', ['measurement', 1n, 0n, tagOf(1)]],
      ['attest', 'report', [nonceOf()]],
    ];
    // Nothing left: the crossing itself aborts. Exactly the crossing left: the core import's fuel aborts.
    for (const budget of [0, CROSSING - 1, CROSSING]) {
      fake.budget = budget;
      for (const [iface, name, args] of calls) {
        fake.fuel = 0;
        expect(thrown(() => fn<(...a: unknown[]) => unknown>(imports, iface, name)(...args)), `${iface}.${name} with ${budget}`).toBeInstanceOf(EnclaveAbort);
      }
    }
    expect(asked).toBe(0);
    expect(fake.lines).toEqual([]);
  });

  it('values handed over are copies, never views of the scratch (the next call reuses it)', () => {
    const imports = componentImports(['random', 'counter'], fakeContext(provider).ctx);
    const fill = fn<(n: number) => Uint8Array>(imports, 'random', 'fill');
    const a = fill(32);
    const copy = a.slice();
    const b = fill(32);
    expect(a.buffer).not.toBe(b.buffer);
    expect(a).toEqual(copy);
    const read = fn<(p: string, id: bigint) => { tag: Uint8Array }>(imports, 'counter', 'read');
    const first = read('measurement', 1n).tag;
    fill(65_536);
    expect(first).toEqual(ZERO32);
  });
});

function nonceOf(): Uint8Array {
  return new Uint8Array(16).fill(1);
}

/**
 * Through jco's generated glue (jco-transpile, the options of the runtime), with no runtime/ code:
 * a WAT component calls each import, and what the glue lowered into the guest is read at the
 * canonical ABI's offsets. This checks the shapes above against the glue itself.
 */
describe("through jco's glue", () => {
  let component: Uint8Array;

  beforeAll(async () => {
    component = await capsComponent(ALL_CAPABILITIES, null);
  });

  /** The component over a fresh context of `platform`; `call` answers the area and list. */
  async function glued(platform: EnclavePlatform | undefined = provider, options: { identity?: ModuleIdentity; listening?: boolean } = {}) {
    const fake = fakeContext(platform, options);
    const raw = await rawComponent(component, componentImports(ALL, fake.ctx));
    const call = (args: CapsArgs): CapsAnswer => {
      const result = raw.call(encodeCapsArgs(args));
      if (result.tag !== 'ok') throw new Error('err reply');
      return decodeRawCapsAnswer(result.bytes);
    };
    return { fake, raw, call };
  }

  it('random.fill: ok lowers the list (disc @0, ptr @4, len @8); err is failure @4', async () => {
    const { fake, call } = await glued(undefined);
    const ok = call({ sel: SEL.fill, a0: 48, listAt: 4 });
    expect(ok.area[0]).toBe(0);
    expect(ok.view.getUint32(8, true)).toBe(48);
    expect(ok.list.length).toBe(48);
    expect(ok.list.some((b) => b !== 0)).toBe(true);
    expect(fake.fuel).toBe(CROSSING + fuelOf('random') + 12);
    const max = call({ sel: SEL.fill, a0: 65_536, listAt: 4 });
    expect(max.list.length).toBe(65_536);
    for (const len of [65_537, -1]) {
      const err = call({ sel: SEL.fill, a0: len });
      expect([err.area[0], err.area[4]], `len ${len >>> 0}`).toEqual([1, FAILURE.invalid]);
    }
  });

  it('clock.now: the s64 the core import answers', async () => {
    const { fake, call } = await glued(undefined);
    const before = BigInt(Date.now());
    const t = call({ sel: SEL.now }).view.getBigInt64(0, true);
    expect(t >= before && t <= BigInt(Date.now())).toBe(true);
    expect(fake.fuel).toBe(CROSSING + fuelOf('now'));
  });

  it('log.log: level and string as the glue lifts them; a long message is paid for whole', async () => {
    const { fake, call } = await glued(undefined);
    call({ sel: SEL.log, a0: 2, a1: DATA_PTR, a2: 5, data: new TextEncoder().encode('hello') });
    expect(fake.lines).toEqual([['warn', 'hello']]);
    expect(fake.fuel).toBe(CROSSING + fuelOf('log') + 1);
    fake.fuel = 0;
    // 256 KiB of memory as the message (zero bytes: U+0000, one byte each).
    call({ sel: SEL.log, a0: 0, a1: 0, a2: 0x40000 });
    expect(fake.lines[1]).toEqual(['debug', '\0'.repeat(1024)]);
    expect(fake.fuel).toBe(CROSSING + fuelOf('log') + 0x40000 / 4);
  });

  it('log.log: a level out of the enum or a message out of memory makes the glue throw (a trap) before the import is called: not even the crossing paid, nothing logged', async () => {
    const { fake, raw } = await glued(undefined);
    expect(() => raw.call(encodeCapsArgs({ sel: SEL.log, a0: 4, a1: DATA_PTR, a2: 1 }))).toThrow(TypeError);
    expect(() => raw.call(encodeCapsArgs({ sel: SEL.log, a0: 1, a1: MEMORY_BYTES - 2, a2: 3 }))).toThrow(RangeError);
    expect(fake.fuel).toBe(0);
    expect(fake.lines).toEqual([]);
  });

  it('seal.seal-key: the key lowered as a list; a policy out of the enum traps in the glue', async () => {
    const { fake, raw, call } = await glued();
    expect(hex(call({ sel: SEL.sealKey, a0: 0, listAt: 4 }).list)).toBe(hex(provider.getSealingSecret(IDENTITY, 'measurement')));
    expect(hex(call({ sel: SEL.sealKey, a0: 1, listAt: 4 }).list)).toBe(hex(provider.getSealingSecret(IDENTITY, 'signer')));
    expect(fake.fuel).toBe(2 * (CROSSING + fuelOf('seal_key')));
    expect(() => raw.call(encodeCapsArgs({ sel: SEL.sealKey, a0: 2 }))).toThrow(TypeError);
    const unsigned = await glued(provider, { identity: UNSIGNED });
    const err = unsigned.call({ sel: SEL.sealKey, a0: 1 });
    expect([err.area[0], err.area[4]]).toEqual([1, FAILURE.unavailable]);
  });

  it('seal.seal-key-at: the record lowered (key ptr @4 len @8, key-id @12, svn @16); option<u32> as disc and value; every failure @4', async () => {
    const { fake, call } = await glued();
    const current = call({ sel: SEL.sealKeyAt, a0: 0, a1: 0, a2: 0, listAt: 4 });
    expect([current.area[0], current.view.getUint32(12, true), current.view.getUint32(16, true)]).toEqual([0, 3, 0]);
    expect(hex(current.list)).toBe(hex(provider.sealingKey(IDENTITY, 'measurement').key));
    const older = call({ sel: SEL.sealKeyAt, a0: 1, a1: 1, a2: 1, a3: 1, listAt: 4 });
    expect([older.area[0], older.view.getUint32(12, true), older.view.getUint32(16, true)]).toEqual([0, 1, 1]);
    expect(hex(older.list)).toBe(hex(provider.sealingKey(IDENTITY, 'signer', { keyId: 1, svn: 1 }).key));
    expect(fake.fuel).toBe(2 * (CROSSING + fuelOf('seal_key_at')));
    const failures: [CapsArgs, number][] = [
      [{ sel: SEL.sealKeyAt, a0: 0, a1: 2, a2: 0 }, FAILURE['unknown-root']],
      [{ sel: SEL.sealKeyAt, a0: 0, a1: -1, a2: 0 }, FAILURE['unknown-root']],
      [{ sel: SEL.sealKeyAt, a0: 0, a1: 0, a2: 1, a3: 0 }, FAILURE['svn-not-allowed']],
      // some(0xffffffff): an svn above the own, never the core ABI's -1.
      [{ sel: SEL.sealKeyAt, a0: 1, a1: 0, a2: 1, a3: -1 }, FAILURE['svn-not-allowed']],
      [{ sel: SEL.sealKeyAt, a0: 1, a1: 0, a2: 1, a3: 4 }, FAILURE['svn-not-allowed']],
    ];
    for (const [args, failure] of failures) {
      const err = call(args);
      expect([err.area[0], err.area[4]], JSON.stringify(args)).toEqual([1, failure]);
    }
  });

  it('seal.seal-key-at: an option discriminant other than 0 and 1 traps in the glue before the import is called, nothing paid', async () => {
    const { fake, raw } = await glued();
    expect(() => raw.call(encodeCapsArgs({ sel: SEL.sealKeyAt, a0: 0, a1: 0, a2: 2 }))).toThrow(TypeError);
    expect(fake.fuel).toBe(0);
  });

  it('counter.read and advance: value u64 @8, tag ptr @16 len @20; read err at @8, advance err at @1', async () => {
    const platform = new SoftwareAttestationProvider({ dir: join(mkdtempSync(join(tmpdir(), 'enclave-component-glue-')), 'platform') });
    const { fake, call } = await glued(platform);
    const zero = call({ sel: SEL.read, a0: 0, x: 9n, listAt: 16 });
    expect([zero.area[0], zero.view.getBigUint64(8, true), zero.view.getUint32(20, true)]).toEqual([0, 0n, 32]);
    expect(zero.list).toEqual(ZERO32);
    const ok = call({ sel: SEL.advance, a0: 0, x: 9n, y: 0n, a1: DATA_PTR, a2: 32, data: tagOf(5) });
    expect([ok.area[0], ok.area[1]]).toEqual([0, 0]);
    const one = call({ sel: SEL.read, a0: 0, x: 9n, listAt: 16 });
    expect(one.view.getBigUint64(8, true)).toBe(1n);
    expect(one.list).toEqual(tagOf(5));
    expect(fake.fuel).toBe(2 * (CROSSING + fuelOf('counter_read')) + CROSSING + fuelOf('counter_advance'));
    const conflict = call({ sel: SEL.advance, a0: 0, x: 9n, y: 0n, a1: DATA_PTR, a2: 32, data: tagOf(6) });
    expect([conflict.area[0], conflict.area[1]]).toEqual([1, FAILURE.conflict]);
    for (const len of [0, 31, 33]) {
      const err = call({ sel: SEL.advance, a0: 0, x: 9n, y: 1n, a1: DATA_PTR, a2: len });
      expect([err.area[0], err.area[1]], `tag of ${len}`).toEqual([1, FAILURE.invalid]);
    }
    // A tag out of memory: the glue's copy comes out short (ArrayBuffer.slice clamps): invalid, no trap.
    const oob = call({ sel: SEL.advance, a0: 0, x: 9n, y: 1n, a1: MEMORY_BYTES - 16, a2: 32 });
    expect([oob.area[0], oob.area[1]]).toEqual([1, FAILURE.invalid]);
    const unsigned = await glued(platform, { identity: UNSIGNED });
    const err = unsigned.call({ sel: SEL.read, a0: 1, x: 1n });
    expect([err.area[0], err.area[8]]).toEqual([1, FAILURE.unavailable]);
    expect(one.list).toEqual(tagOf(5));
  });

  it('counter.advance: the 65th in one call is limit; the next call advances again', async () => {
    const platform = new SoftwareAttestationProvider({ dir: join(mkdtempSync(join(tmpdir(), 'enclave-component-glue-')), 'platform') });
    const { fake, call } = await glued(platform);
    const loop = call({ sel: SEL.advanceLoop, a0: 0, x: 1n, y: 0n, a1: DATA_PTR, a2: 32, count: 65, data: tagOf(1) });
    expect([loop.view.getUint32(24, true), loop.area[0], loop.area[1]]).toEqual([64, 1, FAILURE.limit]);
    expect(platform.readCounter(IDENTITY, 'measurement', 1n).value).toBe(64n);
    fake.nextCall();
    const again = call({ sel: SEL.advance, a0: 0, x: 1n, y: 64n, a1: DATA_PTR, a2: 32, data: tagOf(2) });
    expect(again.area[0]).toBe(0);
  });

  it('attest.report: the evidence lowered as a string; data out of 8..64 is invalid @4', async () => {
    const { fake, call } = await glued();
    const data = new Uint8Array(16).fill(9);
    const ok = call({ sel: SEL.report, a1: DATA_PTR, a2: 16, data, listAt: 4 });
    expect(ok.area[0]).toBe(0);
    const token = new TextDecoder().decode(ok.list);
    expect(token.split('.')).toHaveLength(3);
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')).eat_nonce).toBe(Buffer.from(data).toString('base64url'));
    expect(fake.fuel).toBe(CROSSING + fuelOf('report'));
    for (const len of [7, 65]) {
      const err = call({ sel: SEL.report, a1: DATA_PTR, a2: len });
      expect([err.area[0], err.area[4]], `data of ${len}`).toEqual([1, FAILURE.invalid]);
    }
    const down = await glued(fakePlatform({ getEvidence: () => { throw new Error('down'); } }));
    const err = down.call({ sel: SEL.report, a1: DATA_PTR, a2: 16 });
    expect([err.area[0], err.area[4]]).toEqual([1, FAILURE.unavailable]);
  });

  it('out of fuel inside an import: the EnclaveAbort comes out of the glue as it is (the runtime maps it to fuel_exhausted)', async () => {
    const { fake, raw } = await glued();
    const calls: CapsArgs[] = [
      { sel: SEL.fill, a0: 8 },
      { sel: SEL.sealKey, a0: 0 },
      { sel: SEL.read, a0: 0, x: 1n },
      { sel: SEL.advance, a0: 0, a1: DATA_PTR, a2: 32 },
      { sel: SEL.report, a1: DATA_PTR, a2: 16 },
      { sel: SEL.log, a0: 0, a1: DATA_PTR, a2: 1 },
      { sel: SEL.now },
    ];
    // Not enough for the crossing; then the crossing paid, not the core import.
    for (const budget of [10, CROSSING]) {
      fake.budget = budget;
      for (const args of calls) {
        fake.fuel = 0;
        expect(thrown(() => raw.call(encodeCapsArgs(args))), `sel ${args.sel} with ${budget}`).toBeInstanceOf(EnclaveAbort);
      }
    }
  });
});

/**
 * The gate reads import names, not types: a component may declare the world's functions with
 * other types, and jco's glue then lifts other values for them and lowers the answers as the
 * component declared them. The runtime refuses such a component at load (checkImportTypes in
 * runtime/_component-world.ts; test/component-attacks.test.ts); run here through the glue alone,
 * each such call traps, having paid the crossing (the glue's work was done) and nothing more;
 * nothing beyond a value's own bytes reaches the guest.
 */
describe('a component declaring the world with other types', () => {
  /** A component whose WIT replaces `from` by `to` in the world, calling `call` (WAT) from its handler. */
  async function retyped(from: string, to: string, imp: string, call: string) {
    expect(ENCLAVE_WIT).toContain(from);
    const wat = `(module
      ${imp}
      (memory (export "memory") 1 1)
      (global $bump (mut i32) (i32.const 0x1000))
      (data (i32.const 0x200) "\\c0")
      (data (i32.const 0x300) "0123456789abcdef")
      (func (export "cabi_realloc") (param i32 i32 i32) (param $size i32) (result i32)
        (local $p i32)
        (local.set $p (global.get $bump))
        (global.set $bump (i32.add (global.get $bump) (local.get $size)))
        (local.get $p))
      (func (export "enclave:runtime/handler@1.0.0#call") (param i32 i32) (result i32)
        ${call}
        (i32.store8 (i32.const 0x100) (i32.const 0))
        (i32.store (i32.const 0x104) (i32.const 0x200))
        (i32.store (i32.const 0x108) (i32.const 1))
        (i32.const 0x100)))`;
    const bytes = await watComponent(wat, undefined, { witSource: ENCLAVE_WIT.replace(from, to) });
    const fake = fakeContext(provider);
    const raw = await rawComponent(bytes, componentImports(ALL, fake.ctx));
    return { fake, call: () => thrown(() => raw.call(new Uint8Array(0))) };
  }

  it('random.fill(len: u64): the BigInt the glue lifts traps after the crossing, before any core fuel', async () => {
    const { fake, call } = await retyped(
      'fill: func(len: u32)',
      'fill: func(len: u64)',
      '(import "enclave:runtime/random@1.0.0" "fill" (func $f (param i64 i32)))',
      '(call $f (i64.const 16) (i32.const 0x400))',
    );
    const err = call();
    expect(err).toBeInstanceOf(EnclaveError);
    expect((err as EnclaveError).code).toBe('trap');
    expect(fake.fuel).toBe(CROSSING);
  });

  it('random.fill -> list<u64>: the glue would read 8 × len bytes of the answer: it throws (the answer owns exactly its bytes), nothing copied', async () => {
    const { call } = await retyped(
      'fill: func(len: u32) -> result<list<u8>, failure>',
      'fill: func(len: u32) -> result<list<u64>, failure>',
      '(import "enclave:runtime/random@1.0.0" "fill" (func $f (param i32 i32)))',
      '(call $f (i32.const 16) (i32.const 0x400))',
    );
    expect(call()).toBeInstanceOf(RangeError);
  });

  it('log.log(level: u32, message: list<u8>): traps, nothing logged, only the crossing paid', async () => {
    const { fake, call } = await retyped(
      'log: func(level: level, message: string)',
      'log: func(level: u32, message: list<u8>)',
      '(import "enclave:runtime/log@1.0.0" "log" (func $f (param i32 i32 i32)))',
      '(call $f (i32.const 1) (i32.const 0x300) (i32.const 16))',
    );
    expect((call() as EnclaveError).code).toBe('trap');
    expect(fake.lines).toEqual([]);
    expect(fake.fuel).toBe(CROSSING);
  });

  it('seal.seal-key -> string: the key is no string to the glue (it throws), never encoded', async () => {
    const { call } = await retyped(
      'seal-key: func(policy: policy) -> result<list<u8>, failure>',
      'seal-key: func(policy: policy) -> result<string, failure>',
      '(import "enclave:runtime/seal@1.0.0" "seal-key" (func $f (param i32 i32)))',
      '(call $f (i32.const 0) (i32.const 0x400))',
    );
    expect(call()).toBeInstanceOf(TypeError);
  });

  it('counter.advance(id: s64): a negative id traps after the crossing, before any core fuel or count', async () => {
    const { fake, call } = await retyped(
      'advance: func(policy: policy, id: u64',
      'advance: func(policy: policy, id: s64',
      '(import "enclave:runtime/counter@1.0.0" "advance" (func $f (param i32 i64 i64 i32 i32 i32)))',
      '(call $f (i32.const 0) (i64.const -1) (i64.const 0) (i32.const 0x300) (i32.const 32) (i32.const 0x400))',
    );
    expect((call() as EnclaveError).code).toBe('trap');
    expect(fake.fuel).toBe(CROSSING);
  });

  it('attest.report(data: string): traps after the crossing, before any core fuel or the platform is asked', async () => {
    const { fake, call } = await retyped(
      'report: func(data: list<u8>)',
      'report: func(data: string)',
      '(import "enclave:runtime/attest@1.0.0" "report" (func $f (param i32 i32 i32)))',
      '(call $f (i32.const 0x300) (i32.const 16) (i32.const 0x400))',
    );
    expect((call() as EnclaveError).code).toBe('trap');
    expect(fake.fuel).toBe(CROSSING);
  });
});

/**
 * What the crossing is for: jco's glue costs the host thread tens of microseconds per import call,
 * ~100 times a core import call, so without it a component looping on `clock.now` could keep the
 * host thread far longer per unit of fuel than a core module. With it, a call's budget buys at most
 * budget / (COMPONENT_IMPORT_FUEL + the core import's fuel) import calls, whatever else it does.
 */
describe('the crossing bounds a loop of import calls', () => {
  /** A component whose handler calls clock.now for ever (until its fuel runs out). */
  const LOOP_WAT = `(module
    (import "enclave:runtime/clock@1.0.0" "now" (func $now (result i64)))
    (memory (export "memory") 1 1)
    (global $bump (mut i32) (i32.const 0x1000))
    (func (export "cabi_realloc") (param i32 i32 i32) (param $size i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $bump))
      (global.set $bump (i32.add (global.get $bump) (local.get $size)))
      (local.get $p))
    (func (export "enclave:runtime/handler@1.0.0#call") (param i32 i32) (result i32)
      (loop $again
        (drop (call $now))
        (br $again))
      (i32.const 0x100)))`;
  /** Room for 40 calls and half a crossing: the loop's own instructions cannot buy a 41st. */
  const BUDGET = 40 * (COMPONENT_IMPORT_FUEL + fuelOf('now')) + COMPONENT_IMPORT_FUEL / 2;
  const BOUND = Math.floor(BUDGET / (COMPONENT_IMPORT_FUEL + fuelOf('now')));

  it("through jco's glue: exactly budget / (crossing + now's fuel) calls are served, then the abort", async () => {
    const fake = fakeContext(undefined);
    fake.budget = BUDGET;
    const imports = componentImports(['clock'], fake.ctx);
    const now = fn<() => bigint>(imports, 'clock', 'now');
    let served = 0;
    const counted = { 'enclave:runtime/clock': { now: () => { const t = now(); served++; return t; } } };
    const raw = await rawComponent(await watComponent(LOOP_WAT), counted);
    expect(thrown(() => raw.call(new Uint8Array(0)))).toBeInstanceOf(EnclaveAbort);
    expect(BOUND).toBe(40);
    expect(served).toBe(BOUND);
    // Every served call paid both; the one that found too little paid its crossing, not `now`.
    expect(fake.fuel).toBe(BOUND * (COMPONENT_IMPORT_FUEL + fuelOf('now')) + COMPONENT_IMPORT_FUEL);
  });

  it('under the runtime (in-process, the clock reads counted): fuel_exhausted after at most that many calls', async () => {
    const contract = { ...MINIMAL_COMPONENT_CONTRACT, name: 'clock-loop', capabilities: ['clock'], limits: { ...MINIMAL_COMPONENT_CONTRACT.limits, fuel: BUDGET } };
    const enclave = await loadIn(MODES.find((m) => m.name === 'in-process')!, await watComponent(LOOP_WAT, contract), { capabilities: ['clock'] });
    const realNow = Date.now.bind(Date);
    let served = 0;
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => {
      if (new Error().stack?.includes('capabilities/clock')) served++;
      return realNow();
    });
    try {
      const stats = { fuel: 0 };
      expect(await codeOf(enclave.call('ping', undefined, { stats }))).toBe('fuel_exhausted');
      expect(stats.fuel).toBe(BUDGET);
    } finally {
      spy.mockRestore();
      await enclave.close();
    }
    // The loop's instructions cost a few fuel per turn: they may take the last call, never add one.
    expect(served).toBeLessThanOrEqual(BOUND);
    expect(served).toBeGreaterThanOrEqual(BOUND - 1);
  });

  it.each(MODES)('under the runtime ($name): the loop ends fuel_exhausted, and the next call runs on a fresh instance', async (mode) => {
    const contract = { ...MINIMAL_COMPONENT_CONTRACT, name: 'clock-loop', capabilities: ['clock'], limits: { ...MINIMAL_COMPONENT_CONTRACT.limits, fuel: BUDGET } };
    const enclave = await loadIn(mode, await watComponent(LOOP_WAT, contract), { capabilities: ['clock'] });
    try {
      for (let i = 0; i < 2; i++) expect(await codeOf(enclave.call('ping')), `call ${i}`).toBe('fuel_exhausted');
    } finally {
      await enclave.close();
    }
  });
});

/**
 * End to end: the component loaded by the runtime (loadEnclave), in both isolation modes, each
 * capability called through the glue by the WAT component, its contract declaring them all.
 */
describe.each(MODES)('end to end ($name)', (mode) => {
  let platform: SoftwareAttestationProvider;
  let enclave: EnclaveHandle;
  let signed: EnclaveHandle;
  const lines: [string, string][] = [];

  /** One call of op x; the answer's area and list. */
  async function ask(handle: EnclaveHandle, args: CapsArgs, stats?: { fuel: number }): Promise<CapsAnswer> {
    const reply = await handle.call('x', encodeCapsArgs(args), stats === undefined ? undefined : { stats });
    expect(reply).toBeInstanceOf(Uint8Array);
    return decodeCapsAnswer(reply as Uint8Array);
  }

  beforeAll(async () => {
    platform = new SoftwareAttestationProvider({ dir: join(mkdtempSync(join(tmpdir(), 'enclave-component-e2e-')), 'platform') });
    expect(platform.rotateSealingRoot().id).toBe(2);
    const bytes = await capsComponent();
    const options = { capabilities: [...ALL_CAPABILITIES], attestation: platform, policy: { fuel: 500_000_000 }, onLog: (level: string, message: string) => void lines.push([level, message]) };
    enclave = await loadIn(mode, bytes, options);
    const keys = generateKeyPair();
    signed = await loadIn(mode, signModule(bytes, keys), { ...options, trust: { trusted: [{ publicKey: keys.publicKey }] } });
  });

  afterAll(async () => {
    await enclave?.close();
    await signed?.close();
  });

  it('random.fill: the bytes; above 65536 invalid', async () => {
    const ok = await ask(enclave, { sel: SEL.fill, a0: 100, listAt: 4 });
    expect([ok.area[0], ok.list.length]).toEqual([0, 100]);
    expect(ok.list.some((b) => b !== 0)).toBe(true);
    expect((await ask(enclave, { sel: SEL.fill, a0: 65_536, listAt: 4 })).list.length).toBe(65_536);
    const err = await ask(enclave, { sel: SEL.fill, a0: 65_537 });
    expect([err.area[0], err.area[4]]).toEqual([1, FAILURE.invalid]);
  });

  it('clock.now: wall-clock milliseconds', async () => {
    const before = BigInt(Date.now());
    const t = (await ask(enclave, { sel: SEL.now })).view.getBigInt64(0, true);
    expect(t >= before && t <= BigInt(Date.now())).toBe(true);
  });

  it('log.log: the line reaches onLog after the call, cut to 1024 bytes', async () => {
    lines.length = 0;
    await ask(enclave, { sel: SEL.log, a0: 3, a1: DATA_PTR, a2: 6, data: new TextEncoder().encode('hello!') });
    await ask(enclave, { sel: SEL.log, a0: 0, a1: 0, a2: 5000 });
    // In a worker the lines come back by message after the reply.
    await expect.poll(() => lines.length).toBe(2);
    expect(lines).toEqual([
      ['error', 'hello!'],
      ['debug', '\0'.repeat(1024)],
    ]);
  });

  it('log.log: at most 256 lines per call reach onLog, the rest counted in one warning', async () => {
    lines.length = 0;
    await ask(enclave, { sel: SEL.logLoop, a0: 1, a1: DATA_PTR, a2: 4, count: 300, data: new TextEncoder().encode('line') });
    await expect.poll(() => lines.length).toBe(257);
    expect(lines.slice(0, 256).every(([level, text]) => level === 'info' && text === 'line')).toBe(true);
    expect(lines[256]).toEqual(['warn', 'enclave log flood: 44 more lines in this call were dropped']);
  });

  it('fuel: each import call charges the crossing and its own, per byte where it reads bytes (a log of 4004 bytes costs 1000 more than one of 4)', async () => {
    const short = { fuel: 0 };
    const long = { fuel: 0 };
    await ask(enclave, { sel: SEL.log, a0: 1, a1: 0, a2: 4 }, short);
    await ask(enclave, { sel: SEL.log, a0: 1, a1: 0, a2: 4004 }, long);
    expect(long.fuel - short.fuel).toBe(1000);
    const none = { fuel: 0 };
    const one = { fuel: 0 };
    const two = { fuel: 0 };
    await ask(enclave, { sel: SEL.fillLoop, a0: 64, count: 0 }, none);
    await ask(enclave, { sel: SEL.fillLoop, a0: 64, count: 1 }, one);
    await ask(enclave, { sel: SEL.fillLoop, a0: 64, count: 2 }, two);
    // Each fill pays the crossing and the core import's fuel (4000 + 64 / 4) besides the loop's instructions.
    expect(one.fuel - none.fuel).toBeGreaterThanOrEqual(CROSSING + fuelOf('random') + 16);
    expect(one.fuel - none.fuel).toBeLessThan(CROSSING + fuelOf('random') + 16 + 1_000);
    expect(two.fuel - one.fuel).toBe(one.fuel - none.fuel);
  });

  it('seal: seal-key is the platform key of this identity; seal-key-at maps every failure', async () => {
    const key = await ask(enclave, { sel: SEL.sealKey, a0: 0, listAt: 4 });
    expect(hex(key.list)).toBe(hex(platform.getSealingSecret(enclave.identity, 'measurement')));
    const noSigner = await ask(enclave, { sel: SEL.sealKey, a0: 1 });
    expect([noSigner.area[0], noSigner.area[4]]).toEqual([1, FAILURE.unavailable]);
    const bySigner = await ask(signed, { sel: SEL.sealKey, a0: 1, listAt: 4 });
    expect(hex(bySigner.list)).toBe(hex(platform.getSealingSecret(signed.identity, 'signer')));
    const at = await ask(signed, { sel: SEL.sealKeyAt, a0: 1, a1: 1, a2: 1, a3: 2, listAt: 4 });
    expect([at.area[0], at.view.getUint32(12, true), at.view.getUint32(16, true)]).toEqual([0, 1, 2]);
    expect(hex(at.list)).toBe(hex(platform.sealingKey(signed.identity, 'signer', { keyId: 1, svn: 2 }).key));
    const failures: [EnclaveHandle, CapsArgs, number][] = [
      [enclave, { sel: SEL.sealKeyAt, a0: 1, a1: 0, a2: 0 }, FAILURE.unavailable],
      [enclave, { sel: SEL.sealKeyAt, a0: 0, a1: 7, a2: 0 }, FAILURE['unknown-root']],
      [enclave, { sel: SEL.sealKeyAt, a0: 0, a1: 0, a2: 1, a3: 0 }, FAILURE['svn-not-allowed']],
      [signed, { sel: SEL.sealKeyAt, a0: 1, a1: 0, a2: 1, a3: -1 }, FAILURE['svn-not-allowed']],
    ];
    for (const [handle, args, failure] of failures) {
      const err = await ask(handle, args);
      expect([err.area[0], err.area[4]], JSON.stringify(args)).toEqual([1, failure]);
    }
  });

  it('counter: read, advance, conflict, a tag of 31 bytes invalid; the 65th advance in one call is limit, the next call advances again', async () => {
    const zero = await ask(enclave, { sel: SEL.read, a0: 0, x: 3n, listAt: 16 });
    expect([zero.area[0], zero.view.getBigUint64(8, true)]).toEqual([0, 0n]);
    expect(zero.list).toEqual(ZERO32);
    expect((await ask(enclave, { sel: SEL.advance, a0: 0, x: 3n, y: 0n, a1: DATA_PTR, a2: 32, data: tagOf(3) })).area[0]).toBe(0);
    const one = await ask(enclave, { sel: SEL.read, a0: 0, x: 3n, listAt: 16 });
    expect([one.view.getBigUint64(8, true), hex(one.list)]).toEqual([1n, hex(tagOf(3))]);
    const conflict = await ask(enclave, { sel: SEL.advance, a0: 0, x: 3n, y: 0n, a1: DATA_PTR, a2: 32 });
    expect([conflict.area[0], conflict.area[1]]).toEqual([1, FAILURE.conflict]);
    const short = await ask(enclave, { sel: SEL.advance, a0: 0, x: 3n, y: 1n, a1: DATA_PTR, a2: 31 });
    expect([short.area[0], short.area[1]]).toEqual([1, FAILURE.invalid]);
    const loop = await ask(enclave, { sel: SEL.advanceLoop, a0: 0, x: 4n, y: 0n, a1: DATA_PTR, a2: 32, count: 65, data: tagOf(4) });
    expect([loop.view.getUint32(24, true), loop.area[0], loop.area[1]]).toEqual([64, 1, FAILURE.limit]);
    expect(platform.readCounter(enclave.identity, 'measurement', 4n).value).toBe(64n);
    const next = await ask(enclave, { sel: SEL.advance, a0: 0, x: 4n, y: 64n, a1: DATA_PTR, a2: 32, data: tagOf(5) });
    expect(next.area[0]).toBe(0);
    const noSigner = await ask(enclave, { sel: SEL.read, a0: 1, x: 1n });
    expect([noSigner.area[0], noSigner.area[8]]).toEqual([1, FAILURE.unavailable]);
  });

  it('attest.report: evidence for this enclave binding the data; data out of 8..64 invalid', async () => {
    const data = new Uint8Array(32).fill(0x5a);
    const ok = await ask(enclave, { sel: SEL.report, a1: DATA_PTR, a2: 32, data, listAt: 4 });
    expect(ok.area[0]).toBe(0);
    const token = new TextDecoder().decode(ok.list);
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(claims.eat_nonce).toBe(Buffer.from(data).toString('base64url'));
    expect(claims['enclave.measurement']).toBe(enclave.identity.measurement);
    const err = await ask(enclave, { sel: SEL.report, a1: DATA_PTR, a2: 7 });
    expect([err.area[0], err.area[4]]).toEqual([1, FAILURE.invalid]);
  });

  it('a call whose budget an import cannot pay ends fuel_exhausted; the next call works on a fresh instance', async () => {
    const bytes = await capsComponent(['counter'], capsContract(['counter'], 'caps-poor', 1_000_000));
    const poor = await loadIn(mode, bytes, { capabilities: ['counter'], attestation: platform });
    try {
      expect(await codeOf(poor.call('x', encodeCapsArgs({ sel: SEL.advance, a0: 0, x: 1n, a1: DATA_PTR, a2: 32 })))).toBe('fuel_exhausted');
      const read = decodeCapsAnswer((await poor.call('x', encodeCapsArgs({ sel: SEL.read, a0: 0, x: 1n }))) as Uint8Array);
      expect(read.area[0]).toBe(0);
    } finally {
      await poor.close();
    }
  });

  it('a component declaring an import with other types than the world is refused at load (invalid_module: the glue would lift the other types, unmetered)', async () => {
    const wit = ENCLAVE_WIT.replace('fill: func(len: u32)', 'fill: func(len: u64)');
    const wat = capsWat(['random']).replace('(func $fill (param i32 i32))', '(func $fill (param i64 i32))').replaceAll('(call $fill (i32.load offset=4 (local.get $a))', '(call $fill (i64.load offset=24 (local.get $a))');
    const bytes = await watComponent(wat, capsContract(['random'], 'caps-retyped'), { witSource: wit });
    expect(await codeOf(loadIn(mode, bytes, { capabilities: ['random'], policy: { fuel: 500_000_000 } }))).toBe('invalid_module');
  });
});
