// The SDK modules as built artefacts: reproducible bytes, only `enclave` imports, exactly the ABI
// exports, and a declared memory maximum equal to the contract's `limits.memoryPages` (ABI §2-3, §5).

import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { compileModule, ROOT } from './helpers/raw-abi.js';

/** The memory section's limits of a module that defines one memory. */
function memoryLimits(bytes: Uint8Array): { min: number; max?: number } {
  let at = 8;
  const leb = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[at++]!;
      v |= (b & 0x7f) << shift;
      if (!(b & 0x80)) return v >>> 0;
      shift += 7;
    }
  };
  while (at < bytes.length) {
    const id = bytes[at++]!;
    const size = leb();
    const end = at + size;
    if (id === 5) {
      expect(leb()).toBe(1);
      const flags = leb();
      const min = leb();
      return flags & 1 ? { min, max: leb() } : { min };
    }
    at = end;
  }
  throw new Error('no memory section');
}

describe.each(['echo', 'counter'])('%s module', (name) => {
  it('compiles to identical bytes twice, with only enclave.abort imported and the ABI exports', async () => {
    const [a, b] = [await compileModule(name, [], { cache: false }), await compileModule(name, [], { cache: false })];
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);

    const mod = new WebAssembly.Module(a);
    expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'enclave', name: 'abort', kind: 'function' }]);
    expect(WebAssembly.Module.exports(mod).map((e) => `${e.kind}:${e.name}`).sort()).toEqual([
      'function:enclave_abi_version',
      'function:enclave_alloc',
      'function:enclave_call',
      'memory:memory',
    ]);
    const contract = JSON.parse(readFileSync(`${ROOT}enclave-modules/${name}/contract.json`, 'utf8'));
    expect(memoryLimits(a).max).toBe(contract.limits.memoryPages);
    expect(memoryLimits(a).min).toBeLessThanOrEqual(contract.limits.memoryPages);
  });

  it('states limits in the module matching its contract', () => {
    const src = readFileSync(`${ROOT}enclave-modules/${name}/index.ts`, 'utf8');
    const contract = JSON.parse(readFileSync(`${ROOT}enclave-modules/${name}/contract.json`, 'utf8'));
    const m = /Enclave\.setLimits\((\d+), (\d+), (\d+), (\d+)\)/.exec(src);
    expect(m, 'Enclave.setLimits(...) with literal numbers').not.toBeNull();
    const { requestBytes = 65536, replyBytes = 65536, depth = 32, memoryPages = 16 } = contract.limits;
    expect(m!.slice(1).map(Number)).toEqual([requestBytes, replyBytes, depth, memoryPages]);
    expect(Object.keys(contract.ops).every((op) => src.includes(`Enclave.op("${op}"`))).toBe(true);
  });
});
