// Random bytes at `enclave_call` (a modest run; test/slow/sdk-fuzz.ts runs longer): the SDK always
// answers with a valid envelope and never traps, and the instance keeps working.

import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { compileModule, instantiateRaw, request, decode, okReply, assertEnvelope, type RawEnclave } from './helpers/raw-abi.js';


let echo: RawEnclave;
let counter: RawEnclave;
beforeAll(async () => {
  echo = await instantiateRaw(await compileModule('echo'));
  counter = await instantiateRaw(await compileModule('counter'));
});


// Random prefixes that look like the envelope, so the fuzzer gets past the first byte.
const prefixes = [new Uint8Array(0), request('echo').subarray(0, 9), new Uint8Array([0x82, 0xa2, 0x6f, 0x70, 0xa4, 0x65, 0x63, 0x68, 0x6f, 0xa4, 0x61, 0x72, 0x67, 0x73])];
const bytesArb = fc.tuple(fc.constantFrom(...prefixes), fc.uint8Array({ minLength: 1, maxLength: 300 })).map(([p, b]) => {
  const out = new Uint8Array(p.length + b.length);
  out.set(p);
  out.set(b, p.length);
  return out;
});

describe('fuzz', () => {
  for (const [name, get] of [['echo', () => echo], ['counter', () => counter]] as const) {
    it(`${name}: random bytes always get a valid envelope, never a trap`, () => {
      const e = get();
      fc.assert(
        fc.property(bytesArb, (bytes) => {
          if (bytes.length > 1024 && name === 'counter') return;
          assertEnvelope(e.call(bytes));
        }),
        { numRuns: 3000, seed: 42 },
      );
      expect(e.aborts).toEqual([]);
      if (name === 'echo') expect(e.call(request('echo', [0x01]))).toEqual(okReply([0x01]));
    });
  }

  it('echo: any msgpackr-encodable value comes back equal', () => {
    const packr = new Packr({ useRecords: false, variableMapSize: true });
    // msgpackr decodes a "__proto__" key as "__proto_" (prototype-pollution guard): not ours to test.
    const arb = fc
      .jsonValue({ maxDepth: 6 })
      .map((v) => JSON.parse(JSON.stringify(v)))
      .filter((v) => !JSON.stringify(v).includes('"__proto__"'));
    fc.assert(
      fc.property(arb, fc.uint8Array({ maxLength: 64 }), (v, bin) => {
        const args = packr.pack({ v, bin });
        const reply = decode(echo.call(request('echo', args))) as { ok: { v: unknown; bin: Uint8Array } };
        expect(reply.ok.v).toEqual(v);
        expect(Buffer.from(reply.ok.bin).equals(Buffer.from(bin))).toBe(true);
      }),
      { numRuns: 1000, seed: 7 },
    );
  });
});
