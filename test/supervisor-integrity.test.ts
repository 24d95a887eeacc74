/**
 * Integrity over time (issue 12, §7): `EnclaveModule.remeasure` measures the module's private copy
 * of its bytes now, and `checkIntegrity` (host/supervisor/integrity.ts) compares it, and the module
 * file re-read, with the attested measurement. A byte changed in memory or a file rewritten is a
 * mismatch naming where; a file gone, not regular, too large or no longer a module is a mismatch
 * with `found: ''` and a reason, never a throw.
 */
import { mkdtemp, rm, truncate, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODULE_BOUNDS } from '../core/index.js';
import { checkIntegrity } from '../host/supervisor/integrity.js';
import { compileEnclave, type EnclaveModule } from '../runtime/index.js';
import { MODULE_PARTS } from '../runtime/module.js';
import { supervisedModule } from './helpers/supervised.js';

let dir: string;
let bytes: Uint8Array;
let v2bytes: Uint8Array;
let mod: EnclaveModule;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'enclave-integrity-'));
  bytes = await supervisedModule();
  v2bytes = await supervisedModule({ version: '2.0.0', svn: 2 });
  mod = await compileEnclave(bytes, { cacheDir: false });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The module's private copy of its bytes (test/ may reach internals). */
const keptBytes = (m: EnclaveModule): Uint8Array => m[MODULE_PARTS]().original;

describe('EnclaveModule.remeasure', () => {
  it('recomputes the measurement of the kept bytes each time it is called', async () => {
    const m = await compileEnclave(bytes, { cacheDir: false });
    expect(await m.remeasure()).toBe(m.measurement);
    const kept = keptBytes(m);
    // The last byte lies in the contract section's payload: the framing stays valid.
    kept[kept.length - 1]! ^= 1;
    const changed = await m.remeasure();
    expect(changed).toMatch(/^[0-9a-f]{64}$/);
    expect(changed).not.toBe(m.measurement);
    kept[kept.length - 1]! ^= 1;
    expect(await m.remeasure()).toBe(m.measurement);
  });

  it('bytes that no longer frame a module reject with invalid_module', async () => {
    const m = await compileEnclave(bytes, { cacheDir: false });
    keptBytes(m)[0] = 0x01; // the magic number
    await expect(m.remeasure()).rejects.toMatchObject({ code: 'invalid_module' });
  });

  it('the bytes given to compile are copied: changing them afterwards changes nothing', async () => {
    const source = bytes.slice();
    const m = await compileEnclave(source, { cacheDir: false });
    source[source.length - 1]! ^= 1;
    expect(await m.remeasure()).toBe(m.measurement);
  });
});

describe('checkIntegrity', () => {
  it('ok when memory and file both measure as attested', async () => {
    const file = join(dir, 'ok.wasm');
    await writeFile(file, bytes);
    expect(await checkIntegrity(mod, mod.measurement)).toEqual({ ok: true });
    expect(await checkIntegrity(mod, mod.measurement, file)).toEqual({ ok: true });
  });

  it('a byte flipped in memory is a memory mismatch with the measurement found', async () => {
    const m = await compileEnclave(bytes, { cacheDir: false });
    const file = join(dir, 'memory.wasm');
    await writeFile(file, bytes);
    const kept = keptBytes(m);
    kept[kept.length - 1]! ^= 1;
    const verdict = await checkIntegrity(m, m.measurement, file);
    expect(verdict).toMatchObject({ ok: false, where: 'memory' });
    expect(verdict.ok === false && verdict.found).toMatch(/^[0-9a-f]{64}$/);
    expect(verdict.ok === false && verdict.found).not.toBe(m.measurement);
    // Memory that no longer parses: found '' and a reason, not a throw.
    kept[1] = 0; // the magic number ("\0asm")
    const broken = await checkIntegrity(m, m.measurement);
    expect(broken).toMatchObject({ ok: false, where: 'memory', found: '' });
    expect(broken.ok === false && broken.reason).toMatch(/changed/);
  });

  it('a file rewritten with another module is a file mismatch with its measurement', async () => {
    const file = join(dir, 'rewritten.wasm');
    await writeFile(file, bytes);
    expect(await checkIntegrity(mod, mod.measurement, file)).toEqual({ ok: true });
    await writeFile(file, v2bytes);
    const v2 = await compileEnclave(v2bytes, { cacheDir: false });
    expect(await checkIntegrity(mod, mod.measurement, file)).toEqual({ ok: false, where: 'file', found: v2.measurement });
    // One byte changed in place is enough.
    const edited = bytes.slice();
    edited[edited.length - 1]! ^= 1;
    await writeFile(file, edited);
    const verdict = await checkIntegrity(mod, mod.measurement, file);
    expect(verdict).toMatchObject({ ok: false, where: 'file' });
    expect(verdict.ok === false && verdict.found).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a file that cannot be read or measured is a mismatch with found "" and a reason', async () => {
    const cases: [string, () => Promise<string>, RegExp][] = [
      ['missing', async () => join(dir, 'nothing-here.wasm'), /ENOENT/],
      ['a directory', async () => {
        const d = join(dir, 'a-dir.wasm');
        await mkdir(d, { recursive: true });
        return d;
      }, /regular/],
      ['over the module bound (sparse, never read)', async () => {
        const f = join(dir, 'huge.wasm');
        await writeFile(f, '');
        await truncate(f, MODULE_BOUNDS.moduleBytes + 1);
        return f;
      }, /larger/],
      ['not a module', async () => {
        const f = join(dir, 'garbage.wasm');
        await writeFile(f, 'not wasm at all');
        return f;
      }, /parse/],
    ];
    for (const [what, make, reason] of cases) {
      const verdict = await checkIntegrity(mod, mod.measurement, await make());
      expect(verdict, what).toMatchObject({ ok: false, where: 'file', found: '' });
      expect(verdict.ok === false && verdict.reason, what).toMatch(reason);
      // The reason names no path (it may reach logs and events).
      expect(verdict.ok === false && verdict.reason, what).not.toContain(dir);
    }
  });

  it('memory is checked first: a memory mismatch does not read the file', async () => {
    const m = await compileEnclave(bytes, { cacheDir: false });
    const kept = keptBytes(m);
    kept[kept.length - 1]! ^= 1;
    const verdict = await checkIntegrity(m, m.measurement, join(dir, 'nothing-here.wasm'));
    expect(verdict).toMatchObject({ ok: false, where: 'memory' });
  });

  it('refuses an attested value that is not a measurement, or an empty path', async () => {
    for (const attested of ['', 'abc', mod.measurement.toUpperCase(), `${mod.measurement}0`, 42]) {
      await expect(checkIntegrity(mod, attested as string)).rejects.toMatchObject({ code: 'invalid_options' });
    }
    await expect(checkIntegrity(mod, mod.measurement, '')).rejects.toMatchObject({ code: 'invalid_options' });
    // A measurement that differs is a finding, not a mistake.
    expect(await checkIntegrity(mod, '0'.repeat(64))).toEqual({ ok: false, where: 'memory', found: mod.measurement });
  });
});
