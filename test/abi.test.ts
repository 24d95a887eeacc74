/**
 * The ABI's constants live with the runtime (runtime/abi.ts); attest keeps its own copies of the
 * few it needs, since attest never imports runtime/. This test is what keeps the copies equal. It
 * also checks the capability modules (whose names are the contract's list of capabilities) against
 * the table of docs/ABI.md §3, and that the software platform is what the runtime's platform
 * interfaces ask for.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NONCE_MIN_BYTES, REPORT_DATA_MAX_BYTES, REPORT_STATUS as ATTEST_REPORT_STATUS, SEALING_POLICIES, SoftwareAttestationProvider } from '../attest/index.js';
import { CAPABILITIES, CAPABILITY_MODULES, REPORT_DATA_MAX_BYTES as ABI_REPORT_MAX, REPORT_DATA_MIN_BYTES, REPORT_STATUS, SEAL_POLICIES } from '../runtime/index.js';

describe('ABI constants: runtime and attest agree', () => {
  it('the report import return codes', () => {
    expect({ ...ATTEST_REPORT_STATUS }).toEqual({ ...REPORT_STATUS });
  });
  it('the seal_key policy argument: index to policy name', () => {
    expect([...SEALING_POLICIES]).toEqual([...SEAL_POLICIES]);
  });
  it('the report data bounds', () => {
    expect(REPORT_DATA_MIN_BYTES).toBe(NONCE_MIN_BYTES);
    expect(ABI_REPORT_MAX).toBe(REPORT_DATA_MAX_BYTES);
  });
});

describe('capability modules', () => {
  it('CAPABILITIES, read from the modules, is the table of docs/ABI.md §3: names, order, import names and types', () => {
    const abi = readFileSync(fileURLToPath(new URL('../docs/ABI.md', import.meta.url)), 'utf8');
    const section = abi.slice(abi.indexOf('## 3. Imports'), abi.indexOf('\n## 4'));
    // | `random` | `random` | `(ptr: i32, len: i32) -> i32` | ...  (the `abort` row has no capability)
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \| `([a-z_]+)` \| `\(([^)]*)\) -> ([^`]*)` \|/gm)].map(([, name, importName, params, results]) => ({
      name,
      importName,
      type: {
        params: params.trim() === '' ? [] : params.split(',').map((p) => p.split(':')[1]!.trim()),
        results: results.trim() === '()' ? [] : [results.trim()],
      },
    }));
    expect(rows.length).toBeGreaterThan(0);
    // A capability may have several imports (one row each, in its module's order).
    expect([...CAPABILITIES]).toEqual([...new Set(rows.map((r) => r.name))]);
    const declared = CAPABILITY_MODULES.flatMap((c) =>
      c.imports.map((i) => ({ name: c.name, importName: i.name, type: { params: [...i.type.params], results: [...i.type.results] } })),
    );
    expect(declared).toEqual(rows);
  });
  it('each import name once, none of them abort', () => {
    const imports = CAPABILITY_MODULES.flatMap((c) => c.imports.map((i) => i.name));
    expect(new Set(imports).size).toBe(imports.length);
    expect(imports).not.toContain('abort');
  });
  it('CAPABILITIES is frozen: a caller cannot add a capability to the list the contract is checked against', () => {
    expect(Object.isFrozen(CAPABILITIES)).toBe(true);
    expect(Object.isFrozen(CAPABILITY_MODULES)).toBe(true);
  });
  it('each declares a positive fuel cost and how it crosses to a worker', () => {
    for (const c of CAPABILITY_MODULES) {
      expect(c.imports.length, c.name).toBeGreaterThan(0);
      expect(['in-worker', 'host-call'], c.name).toContain(c.crossing);
      for (const i of c.imports) {
        expect(i.fuel, i.name).toBeGreaterThan(0);
        // A host-call capability says how the host answers each import; one that runs in the worker has nothing to answer.
        expect(i.hostCall !== undefined, i.name).toBe(c.crossing === 'host-call');
      }
    }
    const kinds = CAPABILITY_MODULES.flatMap((c) => c.imports.flatMap((i) => (i.hostCall === undefined ? [] : [i.hostCall.kind])));
    expect(new Set(kinds).size).toBe(kinds.length);
  });
  it('seal, counter and attest need a platform (counter one with counters); the others are granted on their own', () => {
    const needs = CAPABILITY_MODULES.filter((c) => {
      try {
        c.grant?.({});
        return false;
      } catch (err) {
        return (err as { code?: string }).code === 'invalid_options';
      }
    });
    expect(needs.map((c) => c.name)).toEqual(['seal', 'counter', 'attest']);
    const counters = { readCounter: () => undefined, advanceCounter: () => undefined } as never;
    for (const c of needs) expect(() => c.grant!({ attestation: counters })).not.toThrow();
    const counter = needs.find((c) => c.name === 'counter')!;
    expect(() => counter.grant!({ attestation: {} as never })).toThrow(expect.objectContaining({ code: 'invalid_options' }));
    expect(() => counter.grant!({ attestation: { readCounter: () => undefined } as never })).toThrow(expect.objectContaining({ code: 'invalid_options' }));
  });
});

describe('platform interfaces', () => {
  it('the software platform has the members the runtime declares (runtime/platform.ts)', () => {
    // The types are checked by tsc where host code passes one as `attestation` (host/cli/commands/attest.ts).
    const platform = new SoftwareAttestationProvider({ dir: '/nonexistent/enclave-abi-test' });
    expect(platform.platform).toBe('software');
    expect(typeof platform.getSealingSecret).toBe('function');
    expect(typeof platform.getEvidence).toBe('function');
  });
});
