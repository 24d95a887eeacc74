/**
 * A component's evidence says plainly that it is a component and how its limits differ from a core
 * module's (issue 14, item 3; decision 6): `enclave.component` = { coreModules, fuelBound, glue },
 * fuelBound = coreModules × limits.fuel, the most fuel-metered work one call can do across its core
 * modules (each has its own counter). In both isolation modes, from `attest()` and from the
 * enclave's own `attest.report`. A core module's evidence is unchanged. The verifier checks and
 * exposes the claim; buildEvidenceClaims refuses a request whose component facts have other types
 * or disagree with the limits.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttestationError,
  buildEvidenceClaims,
  CLAIMS,
  DBGSTAT,
  generateKeyPair,
  signEvidenceClaims,
  SoftwareAttestationProvider,
  verifyEvidence,
  type EvidenceClaims,
  type EvidenceRequest,
  type VerifiedEvidence,
} from '../attest/index.js';
import { readComponentInfo, MAX_CORE_MODULES } from '../core/index.js';
import type { EnclaveHandle } from '../host/index.js';
import { COMPONENT_GLUE } from '../runtime/version.js';
import { ATTEST_CONTRACT, ATTEST_WAT } from './helpers/attest-wat.js';
import { capsComponent, capsContract, DATA_PTR, decodeCapsAnswer, encodeCapsArgs, SEL } from './helpers/component-caps-wat.js';
import { minimalComponentWat, MINIMAL_COMPONENT_CONTRACT, watComponent } from './helpers/component-fixtures.js';
import { loadIn, MODES } from './helpers/modes.js';
import { watModule } from './helpers/wat.js';

/** The claims of a core module's evidence before issue 14 (and still): `enclave.component` is not among them. */
const CORE_CLAIMS = [
  'eat_profile',
  'eat_nonce',
  'iat',
  'exp',
  'dbgstat',
  'enclave.platform',
  'enclave.measurement',
  'enclave.signers',
  'enclave.svn',
  'enclave.name',
  'enclave.version',
  'enclave.runtime',
  'enclave.limits',
  'enclave.capabilities',
].sort();

/** Under the default host policy's fuel cap, so the limit in force is the contract's. */
const FUEL = 8_000_000;
const nonce = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);
const reportData = new Uint8Array(32).fill(0x5a);
const payloadOf = (token: string): Record<string, unknown> => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

let provider: SoftwareAttestationProvider;
/** A component calling attest.report (and nothing else), and how many core modules the gate reads in it. */
let caps: Uint8Array;
let capsCore: number;
/** A component with no imports at all. */
let minimal: Uint8Array;
let minimalCore: number;
/** A core module calling the core `report` import. */
let core: Uint8Array;

beforeAll(async () => {
  provider = new SoftwareAttestationProvider({ dir: await mkdtemp(path.join(tmpdir(), 'enclave-component-evidence-')) });
  caps = await capsComponent(['attest'], capsContract(['attest'], 'component-evidence', FUEL));
  capsCore = readComponentInfo(caps).coreModules.length;
  minimal = await watComponent(minimalComponentWat(), MINIMAL_COMPONENT_CONTRACT);
  minimalCore = readComponentInfo(minimal).coreModules.length;
  core = await watModule(ATTEST_WAT, ATTEST_CONTRACT);
});

function verify(token: string, measurement: string, n: Uint8Array, rd?: Uint8Array): Promise<VerifiedEvidence> {
  return verifyEvidence(token, {
    platformKey: provider.publicJwk(),
    policy: { measurements: [measurement] },
    nonce: n,
    ...(rd === undefined ? {} : { reportData: rd }),
  });
}

describe('the glue named in the claim', () => {
  it('is the pinned jco-transpile, as package.json pins it and as installed', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    const installed = JSON.parse(readFileSync(new URL('../node_modules/@bytecodealliance/jco-transpile/package.json', import.meta.url), 'utf8')) as { version: string };
    expect(COMPONENT_GLUE).toBe(`jco-transpile@${pkg.dependencies['@bytecodealliance/jco-transpile']}`);
    expect(COMPONENT_GLUE).toBe(`jco-transpile@${installed.version}`);
  });
});

describe.each(MODES)('evidence of a component ($name)', (mode) => {
  const open: EnclaveHandle[] = [];
  const load = async (bytes: Uint8Array, extra: Record<string, unknown> = {}): Promise<EnclaveHandle> => {
    const handle = await loadIn(mode, bytes, { attestation: provider, ...extra });
    open.push(handle);
    return handle;
  };
  afterAll(async () => {
    await Promise.all(open.map((h) => h.close()));
  });

  it('the fixture has more than one core module (wit-component adds its shims), so the bound differs from limits.fuel', () => {
    expect(capsCore).toBeGreaterThan(1);
    expect(capsCore).toBeLessThanOrEqual(MAX_CORE_MODULES);
  });

  it('attest(nonce): enclave.component carries the core modules, their fuel bound and the glue; the verifier exposes it', async () => {
    const enclave = await load(caps, { capabilities: ['attest'] });
    const token = await enclave.attest(nonce);
    expect(enclave.limits.fuel).toBe(FUEL);
    const verified = await verify(token, enclave.measurement, nonce);
    const expected = { coreModules: capsCore, fuelBound: capsCore * FUEL, glue: COMPONENT_GLUE };
    expect(verified.component).toEqual(expected);
    expect(verified.claims[CLAIMS.component]).toEqual(expected);
    expect(verified.claims[CLAIMS.limits].fuel).toBe(FUEL);
    // Exactly the core claims and this one: nothing else changed.
    expect(Object.keys(payloadOf(token)).sort()).toEqual([...CORE_CLAIMS, CLAIMS.component].sort());
  });

  it('the enclave asking for its own evidence (attest.report) gets the same claim', async () => {
    const enclave = await load(caps, { capabilities: ['attest'] });
    const reply = await enclave.call('x', encodeCapsArgs({ sel: SEL.report, a1: DATA_PTR, a2: reportData.length, data: reportData, listAt: 4 }));
    const answer = decodeCapsAnswer(reply as Uint8Array);
    expect(answer.area[0]).toBe(0);
    const token = new TextDecoder().decode(answer.list);
    const verified = await verify(token, enclave.measurement, reportData, reportData);
    expect(verified.component).toEqual({ coreModules: capsCore, fuelBound: capsCore * FUEL, glue: COMPONENT_GLUE });
    expect(verified.claims[CLAIMS.reportData]).toBe(Buffer.from(reportData).toString('base64url'));
  });

  it('the bound follows the limits in force: a host policy lowering fuel lowers it', async () => {
    const enclave = await load(caps, { capabilities: ['attest'], policy: { fuel: 5_000_000 } });
    expect(enclave.limits.fuel).toBe(5_000_000);
    const verified = await verify(await enclave.attest(nonce), enclave.measurement, nonce);
    expect(verified.component?.fuelBound).toBe(capsCore * 5_000_000);
    const reply = await enclave.call('x', encodeCapsArgs({ sel: SEL.report, a1: DATA_PTR, a2: 8, data: reportData.subarray(0, 8), listAt: 4 }));
    const token = new TextDecoder().decode(decodeCapsAnswer(reply as Uint8Array).list);
    const fromReport = await verify(token, enclave.measurement, reportData.subarray(0, 8));
    expect(fromReport.component?.fuelBound).toBe(capsCore * 5_000_000);
  });

  it('a component without imports says so too, with its own count', async () => {
    const enclave = await load(minimal);
    const verified = await verify(await enclave.attest(nonce), enclave.measurement, nonce);
    const fuel = (MINIMAL_COMPONENT_CONTRACT as { limits: { fuel: number } }).limits.fuel;
    expect(verified.component).toEqual({ coreModules: minimalCore, fuelBound: minimalCore * enclave.limits.fuel, glue: COMPONENT_GLUE });
    expect(enclave.limits.fuel).toBe(fuel);
  });

  it('a core module: its evidence is unchanged (the same claims as before, no enclave.component), from attest() and from report', async () => {
    const enclave = await load(core, { capabilities: ['seal', 'attest'] });
    const token = await enclave.attest(nonce);
    expect(Object.keys(payloadOf(token)).sort()).toEqual(CORE_CLAIMS);
    const verified = await verify(token, enclave.measurement, nonce);
    expect(verified.component).toBeUndefined();
    expect('component' in verified).toBe(true);
    const report = Buffer.from((await enclave.call('report')) as Uint8Array).toString('ascii');
    expect(Object.keys(payloadOf(report)).sort()).toEqual([...CORE_CLAIMS, CLAIMS.reportData].sort());
  });
});

describe('buildEvidenceClaims: the component facts of a request', () => {
  const identity = { measurement: 'ab'.repeat(32), signers: [], svn: 1, name: 'c', version: '1.0.0' };
  const request = (component: unknown, limits: Record<string, unknown> = { fuel: 1000, requestBytes: 64 }): EvidenceRequest =>
    ({ identity, nonce, runtimeVersion: '0.1.0', limits, capabilities: [], debug: false, component }) as unknown as EvidenceRequest;
  const good = { coreModules: 3, fuelBound: 3000, glue: COMPONENT_GLUE };
  const codeOf = (fn: () => unknown): string => {
    try {
      fn();
      return 'ok';
    } catch (err) {
      if (!(err instanceof AttestationError)) throw err;
      return err.code;
    }
  };

  it('are copied as given, only their three members', () => {
    const claims = buildEvidenceClaims(request({ ...good, extra: 'x' }), 'software');
    expect(claims[CLAIMS.component]).toEqual(good);
    expect(buildEvidenceClaims(request(undefined), 'software')).not.toHaveProperty(CLAIMS.component);
    expect(buildEvidenceClaims(request({ coreModules: MAX_CORE_MODULES, fuelBound: MAX_CORE_MODULES * 1000, glue: 'x' }), 'software')[CLAIMS.component]?.coreModules).toBe(MAX_CORE_MODULES);
  });

  const hostile: [string, unknown, Record<string, unknown>?][] = [
    ['null', null],
    ['a number', 3],
    ['a string', 'component'],
    ['an array', [3, 3000, COMPONENT_GLUE]],
    ['coreModules missing', { fuelBound: 3000, glue: COMPONENT_GLUE }],
    ['coreModules a string', { ...good, coreModules: '3' }],
    ['coreModules a bigint', { ...good, coreModules: 3n }],
    ['coreModules 0', { ...good, coreModules: 0, fuelBound: 0 }],
    ['coreModules negative', { ...good, coreModules: -1, fuelBound: -1000 }],
    ['coreModules fractional', { ...good, coreModules: 1.5, fuelBound: 1500 }],
    ['coreModules NaN', { ...good, coreModules: Number.NaN }],
    ['coreModules past the gate', { ...good, coreModules: MAX_CORE_MODULES + 1, fuelBound: (MAX_CORE_MODULES + 1) * 1000 }],
    ['fuelBound missing', { coreModules: 3, glue: COMPONENT_GLUE }],
    ['fuelBound a string', { ...good, fuelBound: '3000' }],
    ['fuelBound disagreeing with the limits', { ...good, fuelBound: 1000 }],
    ['fuelBound Infinity', { ...good, fuelBound: Number.POSITIVE_INFINITY }],
    ['fuelBound past safe integers', { ...good, coreModules: 4, fuelBound: 2 ** 53 }, { fuel: 2 ** 51 }],
    ['glue missing', { coreModules: 3, fuelBound: 3000 }],
    ['glue a number', { ...good, glue: 15 }],
    ['glue empty', { ...good, glue: '' }],
    ['glue too long', { ...good, glue: 'j'.repeat(129) }],
    ['glue with a line break', { ...good, glue: 'jco\nx' }],
    ['glue with a space', { ...good, glue: 'jco transpile' }],
    ['glue not ASCII', { ...good, glue: 'jcö' }],
    ['no limits.fuel', good, { requestBytes: 64 }],
    ['limits.fuel fractional', good, { fuel: 1000.5 }],
  ];
  it.each(hostile)('%s: invalid_evidence_request, before any key is used', (_name, component, limits) => {
    expect(codeOf(() => buildEvidenceClaims(request(component, limits), 'software'))).toBe('invalid_evidence_request');
    expect(codeOf(() => provider.getEvidence(request(component, limits)))).toBe('invalid_evidence_request');
  });

  it('a getter that throws is not swallowed into a token', () => {
    const trap = Object.defineProperty({ ...good }, 'glue', { get: () => { throw new Error('boom'); }, enumerable: true });
    expect(() => buildEvidenceClaims(request(trap), 'software')).toThrow();
  });
});

describe('verifyEvidence: enclave.component', () => {
  const platform = generateKeyPair();
  const platformKey = { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(platform.publicKey).toString('base64url') };
  const T0 = 1_767_268_800;
  const MEASUREMENT = 'aa'.repeat(32);
  const claims = (over: Record<string, unknown>): EvidenceClaims =>
    ({
      eat_profile: 'urn:x-enclave:eat-profile:1',
      eat_nonce: Buffer.from(nonce).toString('base64url'),
      iat: T0,
      exp: T0 + 300,
      dbgstat: DBGSTAT.disabled,
      [CLAIMS.platform]: 'software',
      [CLAIMS.measurement]: MEASUREMENT,
      [CLAIMS.signers]: [],
      [CLAIMS.svn]: 0,
      [CLAIMS.name]: 'c',
      [CLAIMS.version]: '1.0.0',
      [CLAIMS.runtime]: '0.1.0',
      [CLAIMS.limits]: { fuel: 1000 },
      [CLAIMS.capabilities]: [],
      ...over,
    }) as unknown as EvidenceClaims;
  async function verdict(over: Record<string, unknown>): Promise<string> {
    try {
      await verifyEvidence(signEvidenceClaims(claims(over), platform), {
        platformKey,
        policy: { measurements: [MEASUREMENT] },
        nonce,
        now: new Date((T0 + 10) * 1000),
      });
      return 'ok';
    } catch (err) {
      if (!(err instanceof AttestationError)) throw err;
      return err.code;
    }
  }
  const good = { coreModules: 2, fuelBound: 2000, glue: 'jco-transpile@0.15.0' };

  it('accepted and exposed as it was signed; absent for a core module', async () => {
    const token = signEvidenceClaims(claims({ [CLAIMS.component]: good }), platform);
    const options = { platformKey, policy: { measurements: [MEASUREMENT] }, nonce, now: new Date((T0 + 10) * 1000) };
    expect((await verifyEvidence(token, options)).component).toEqual(good);
    expect((await verifyEvidence(signEvidenceClaims(claims({}), platform), options)).component).toBeUndefined();
    // A verifier does not hold the runtime's gate: more core modules than today's are a later runtime's business.
    expect(await verdict({ [CLAIMS.component]: { coreModules: 100, fuelBound: 100_000, glue: 'g' } })).toBe('ok');
  });

  const malformed: [string, unknown, Record<string, unknown>?][] = [
    ['null', null],
    ['an array', [2, 2000, 'g']],
    ['a string', 'component'],
    ['a fourth member', { ...good, extra: 1 }],
    ['a member missing', { coreModules: 2, fuelBound: 2000 }],
    ['coreModules 0', { ...good, coreModules: 0, fuelBound: 0 }],
    ['coreModules a string', { ...good, coreModules: '2' }],
    ['coreModules fractional', { ...good, coreModules: 1.5, fuelBound: 1500 }],
    ['fuelBound not coreModules × limits.fuel', { ...good, fuelBound: 1000 }],
    ['fuelBound a string', { ...good, fuelBound: '2000' }],
    ['glue a number', { ...good, glue: 1 }],
    ['glue empty', { ...good, glue: '' }],
    ['limits without fuel', good, { [CLAIMS.limits]: { requestBytes: 64 } }],
  ];
  it.each(malformed)('%s: malformed', async (_name, component, extra) => {
    expect(await verdict({ [CLAIMS.component]: component, ...extra })).toBe('malformed');
  });
});
