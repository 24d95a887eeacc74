/**
 * What a module's structure can cost the host (issue 9, findings 3, 4 and 10): tables are bounded
 * and counted, element segments are checked statically, the module's complexity is bounded before
 * any expensive load work, and names are decoded exactly as the engine decodes them.
 */
import { mkdtempSync, openSync, closeSync, ftruncateSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeCustomSection, listSections, SIGNATURE_SECTION, MODULE_BOUNDS } from '../core/index.js';
import { measure } from '../attest/measure.js';
import { compileEnclave, EnclaveError, loadEnclave, type EnclaveHandle, type LoadOptions } from '../host/index.js';
import { bigModule } from './hostile/_big-modules.js';
import { MINIMAL_CONTRACT, minimalWat, watModule } from './helpers/wat.js';

const MODES: readonly [string, LoadOptions][] = [
  ['in-process', {}],
  ['worker', { isolation: 'worker' }],
];

function contract(limits: object = {}): object {
  return { ...MINIMAL_CONTRACT, limits: { ...MINIMAL_CONTRACT.limits, ...limits } };
}

function withContract(bytes: Uint8Array, c: object = contract()): Uint8Array {
  const section = encodeCustomSection('enclave.contract', new TextEncoder().encode(JSON.stringify(c)));
  const out = new Uint8Array(bytes.length + section.length);
  out.set(bytes);
  out.set(section, bytes.length);
  return out;
}

/** The code a load ends in, or 'loaded' (the enclave answers ping and is closed). */
async function loadCode(bytes: Uint8Array, options: LoadOptions = {}): Promise<string> {
  let enclave: EnclaveHandle;
  try {
    enclave = await loadEnclave(bytes, options);
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return (err as EnclaveError).code;
  }
  try {
    expect(await enclave.call('ping')).toBe(true);
  } finally {
    await enclave.close();
  }
  return 'loaded';
}

async function loadError(bytes: Uint8Array, options: LoadOptions = {}): Promise<EnclaveError> {
  try {
    const enclave = await loadEnclave(bytes, options);
    await enclave.close();
  } catch (err) {
    expect(err).toBeInstanceOf(EnclaveError);
    return err as EnclaveError;
  }
  throw new Error('the module loaded');
}

const table = (decl: string, extra = ''): Promise<Uint8Array> =>
  watModule(minimalWat({ body: `${decl} (func $f) ${extra}` }), contract());

describe('tables are bounded (finding 3)', () => {
  for (const [mode, options] of MODES) {
    it(`${mode}: a table above the hard ceiling is refused at load, before anything is instantiated (memory_limit)`, async () => {
      expect(await loadCode(await table(`(table ${MODULE_BOUNDS.tableElements + 1} funcref)`), options)).toBe('memory_limit');
    });

    it(`${mode}: a 10 000 000-entry table in a one-page module is refused without allocating it`, async () => {
      expect(await loadCode(await table('(table 10000000 funcref)'), options)).toBe('memory_limit');
    });

    it(`${mode}: a table above the contract's or the policy's tableElements is memory_limit; within both it loads`, async () => {
      const mod = withContract(bigModule({ table: 100 }), contract({ tableElements: 99 }));
      expect(await loadCode(mod, options)).toBe('memory_limit');
      const fits = withContract(bigModule({ table: 100 }), contract({ tableElements: 100 }));
      expect(await loadCode(fits, options)).toBe('loaded');
      expect(await loadCode(fits, { ...options, policy: { tableElements: 99 } } as LoadOptions)).toBe('memory_limit');
    });

    it(`${mode}: an element segment past the end of its table is invalid_module at load, not a trap`, async () => {
      expect(await loadCode(await table('(table 2 funcref)', '(elem (i32.const 1) $f $f)'), options)).toBe('invalid_module');
      expect(await loadCode(await table('(table 2 funcref)', '(elem (i32.const -1) $f)'), options)).toBe('invalid_module');
      expect(await loadCode(await table('(table 2 funcref)', '(elem (i32.const 0) $f $f)'), options)).toBe('loaded');
    });
  }

  it('the contract limit tableElements defaults to 10 000 and the policy may lower it', async () => {
    const mod = await compileEnclave(await table('(table 1 funcref)'));
    expect(mod.create().limits.tableElements).toBe(10_000);
    expect(mod.create({ policy: { tableElements: 5 } }).limits.tableElements).toBe(5);
    expect(await loadCode(withContract(bigModule({ table: 10_001 })))).toBe('memory_limit');
  });

  it('an externref table, a second table and an imported table are invalid_module', async () => {
    expect(await loadCode(await table('(table 1 externref)'))).toBe('invalid_module');
    expect(await loadCode(await table('(table 1 funcref) (table 1 funcref)'))).toBe('invalid_module');
    const imported = await watModule(minimalWat({ imports: '(import "enclave" "t" (table 1 funcref))' }), contract());
    expect(await loadCode(imported)).toBe('invalid_module');
  });

  it('a table cannot grow: table.grow is outside the enclave feature set', async () => {
    const grow = await table('(table 1 funcref)', '(func (drop (table.grow (ref.null func) (i32.const 1000000))))');
    expect(await loadCode(grow)).toBe('invalid_module');
  });
});

describe('module complexity is bounded before any expensive load work (finding 4)', () => {
  it('1 000 functions of 49 000 locals (13 KB) is invalid_module, refused before instrumentation', async () => {
    const err = await loadError(withContract(bigModule({ functions: 1000, locals: 49_000 })));
    expect(err.code).toBe('invalid_module');
    expect(err.message).toMatch(/locals/);
  });

  it(`a function with more than ${MODULE_BOUNDS.localsPerFunction} locals is invalid_module; at the bound it loads`, async () => {
    expect(await loadCode(withContract(bigModule({ functions: 1, locals: MODULE_BOUNDS.localsPerFunction + 1 })))).toBe('invalid_module');
    expect(await loadCode(withContract(bigModule({ functions: 1, locals: MODULE_BOUNDS.localsPerFunction })))).toBe('loaded');
  });

  it('50 000 locals, which the instrumented form cannot carry, is a clear invalid_module, not an engine message', async () => {
    const err = await loadError(withContract(bigModule({ functions: 1, locals: 50_000 })));
    expect(err.code).toBe('invalid_module');
    expect(err.message).toMatch(/locals/);
    expect(err.message).not.toMatch(/instrumented|compile/i);
  });

  it('more locals in total than the bound is invalid_module', async () => {
    const functions = Math.floor(MODULE_BOUNDS.locals / MODULE_BOUNDS.localsPerFunction) + 1;
    const err = await loadError(withContract(bigModule({ functions, locals: MODULE_BOUNDS.localsPerFunction })));
    expect(err.code).toBe('invalid_module');
    expect(err.message).toMatch(/locals/);
  });

  it('100 000 mutable globals is a clear invalid_module, not an engine message', async () => {
    const err = await loadError(withContract(bigModule({ globals: 100_000, mutable: true })));
    expect(err.code).toBe('invalid_module');
    expect(err.message).toMatch(/globals/);
    expect(err.message).not.toMatch(/instrumented|compile/i);
  });

  it('more functions than the bound is invalid_module', async () => {
    const err = await loadError(withContract(bigModule({ functions: MODULE_BOUNDS.functions })));
    expect(err.code).toBe('invalid_module');
    expect(err.message).toMatch(/functions/);
  });

  it('more exports than the bound is invalid_module', async () => {
    const err = await loadError(withContract(bigModule({ functions: MODULE_BOUNDS.exports, exports: MODULE_BOUNDS.exports })));
    expect(err.code).toBe('invalid_module');
    expect(err.message).toMatch(/exports/);
  });

  describe('module size', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enclave-bounds-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it(`module bytes over ${MODULE_BOUNDS.moduleBytes} are invalid_module`, async () => {
      const big = new Uint8Array(MODULE_BOUNDS.moduleBytes + 1);
      big.set(withContract(bigModule({})));
      const err = await loadError(big);
      expect(err.code).toBe('invalid_module');
      expect(err.message).toMatch(/bytes/);
    });

    it('a module file larger than the bound is refused without being read', async () => {
      const file = join(dir, 'huge.wasm');
      const fd = openSync(file, 'w');
      ftruncateSync(fd, 64 * 1024 ** 3); // sparse: 64 GiB that would never fit in memory
      closeSync(fd);
      const err = await loadError(file as unknown as Uint8Array);
      expect(err.code).toBe('invalid_module');
      expect(err.message).toMatch(/bytes/);
    });
  });
});

describe('names are decoded as the engine decodes them (finding 10)', () => {
  const bom = '\uFEFF';

  it('a custom section named U+FEFF "signature" is measured: it is not the signature section', async () => {
    const base = withContract(bigModule({}));
    const append = (payload: number): Uint8Array => {
      const s = encodeCustomSection(`${bom}${SIGNATURE_SECTION}`, Uint8Array.of(payload));
      const out = new Uint8Array(base.length + s.length);
      out.set(base);
      out.set(s, base.length);
      return out;
    };
    expect(listSections(append(1)).at(-1)!.name).toBe(`${bom}${SIGNATURE_SECTION}`);
    expect(Buffer.from(measure(append(1))).toString('hex')).not.toBe(Buffer.from(measure(append(2))).toString('hex'));
  });

  it('a section named U+FEFF "enclave.contract" is not the contract (invalid_contract)', async () => {
    const bytes = bigModule({});
    const s = encodeCustomSection(`${bom}enclave.contract`, new TextEncoder().encode(JSON.stringify(contract())));
    const out = new Uint8Array(bytes.length + s.length);
    out.set(bytes);
    out.set(s, bytes.length);
    expect(await loadCode(out)).toBe('invalid_contract');
  });

  for (const [mode, options] of MODES) {
    it(`${mode}: an export named U+FEFF "memory" is invalid_module, never a TypeError`, async () => {
      const wat = minimalWat({ memory: '(memory (export "\\u{feff}memory") 1 1)' });
      expect(await loadCode(await watModule(wat, contract()), options)).toBe('invalid_module');
    });
  }

  it('names that are not UTF-8 are invalid_module', async () => {
    const bytes = withContract(bigModule({}));
    const bad = new Uint8Array([0, 3, 2, 0xc3, 0x28]); // custom section, name of 2 bytes: invalid UTF-8
    const out = new Uint8Array(bytes.length + bad.length);
    out.set(bytes);
    out.set(bad, bytes.length);
    expect(await loadCode(out)).toBe('invalid_module');
  });
});
