// The long version of test/sdk-fuzz.test.ts: many more random requests, bigger inputs, and
// structure-aware mutations of valid requests.

import { beforeAll, expect, it } from 'vitest';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { compileModule, instantiateRaw, request, decode, okReply, assertEnvelope, type RawEnclave } from '../helpers/raw-abi.js';

const RUNS = Number(process.env.SDK_FUZZ_RUNS ?? 200_000);

let echo: RawEnclave;
let counter: RawEnclave;
beforeAll(async () => {
  echo = await instantiateRaw(await compileModule('echo'));
  counter = await instantiateRaw(await compileModule('counter'));
});


const packr = new Packr({ useRecords: false, variableMapSize: true });
// Valid requests with random bytes flipped, inserted or cut.
const mutated = fc
  .tuple(fc.jsonValue({ maxDepth: 12 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 2 })), { maxLength: 4 }))
  .map(([v, edits]) => {
    let bytes = Array.from(request('echo', packr.pack(v)));
    for (const [at, b, kind] of edits) {
      const i = at % (bytes.length + 1);
      if (kind === 0) bytes[i % bytes.length] = b;
      else if (kind === 1) bytes.splice(i, 0, b);
      else bytes = bytes.slice(0, i);
    }
    return Uint8Array.from(bytes.length ? bytes : [0]);
  });

for (const [name, get] of [['echo', () => echo], ['counter', () => counter]] as const) {
  it(`${name}: ${RUNS} random and mutated requests, never a trap`, () => {
    const e = get();
    const arb = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 4096 }), mutated);
    fc.assert(
      fc.property(arb, (bytes) => {
        if (name === 'counter' && bytes.length > 1024) return;
        assertEnvelope(e.call(bytes));
      }),
      { numRuns: RUNS },
    );
    expect(e.aborts).toEqual([]);
    if (name === 'echo') expect(e.call(request('echo', [0x01]))).toEqual(okReply([0x01]));
  });
}
