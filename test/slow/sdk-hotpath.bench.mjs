// Micro-benchmark of the guest side of a small call (not a test): enclave_alloc + copy in +
// enclave_call, straight on the exports, for a few requests and several builds of a module side by
// side in one process (interleaved rounds, medians), so a change to the SDK can be compared with a
// saved copy of the old .wasm on a noisy machine.
//
//   node test/slow/sdk-hotpath.bench.mjs [--rounds 15] [--n 200000] [--only echo16]
//        [label=echo.wasm,counter.wasm ...]
//
// With no label arguments it measures the built modules (enclave-modules/*/build) and, as the floor,
// a raw copy-in/copy-out module if /tmp/sdkperf/raw.wasm exists (compile test/sdk-fixtures/raw.ts
// there). `--once` runs each case a fixed number of times and exits, for
// `valgrind --tool=callgrind` (instruction counts: compare the `enclave_call` inclusive cost).

import { readFileSync, existsSync } from 'node:fs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const flag = (name) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
};
const ROUNDS = Number(opt('rounds', 15));
const N = Number(opt('n', 200_000));
const ONLY = opt('only', '');
const ONCE = flag('once');

const root = new URL('../../', import.meta.url).pathname;
const builds = [];
for (const a of args) {
  const [label, files] = a.split('=');
  const [echo, counter] = files.split(',');
  builds.push({ label, echo, counter });
}
if (builds.length === 0) {
  builds.push({ label: 'built', echo: `${root}enclave-modules/echo/build/echo.wasm`, counter: `${root}enclave-modules/counter/build/counter.wasm` });
}

// msgpack by hand (fixmap / fixstr / bin8 / fixint), so the bench depends on nothing.
const str = (s) => [0xa0 | s.length, ...Buffer.from(s)];
const envelope = (op, argBytes) => Uint8Array.from([0x82, ...str('op'), ...str(op), ...str('args'), ...argBytes]);
const cases = [
  { name: 'echo16', module: 'echo', req: envelope('echo', [0xc4, 16, ...new Array(16).fill(7)]) },
  { name: 'echomap', module: 'echo', req: envelope('echo', [0x82, ...str('a'), 1, ...str('b'), ...str('x')]) },
  { name: 'incr', module: 'counter', req: envelope('incr', [0x81, ...str('by'), 1]) },
].filter((c) => !ONLY || ONLY.split(',').includes(c.name));

function instantiate(file) {
  const mod = new WebAssembly.Module(readFileSync(file));
  const inst = new WebAssembly.Instance(mod, {
    enclave: {
      abort: () => {
        throw new Error('abort');
      },
      random: () => 0,
      now: () => 0n,
      log: () => {},
      seal_key: () => -3,
      report: () => -3,
    },
  });
  return inst.exports;
}

function caller(ex) {
  return (req) => {
    const p = ex.enclave_alloc(req.length);
    new Uint8Array(ex.memory.buffer, p, req.length).set(req);
    return ex.enclave_call(p, req.length);
  };
}

function replyOf(ex, d) {
  const dv = new DataView(ex.memory.buffer);
  const p = dv.getUint32(d, true);
  return Buffer.from(new Uint8Array(ex.memory.buffer, p, dv.getUint32(d + 4, true))).toString('hex');
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const variants = []; // { build, case, call }
const rawFile = '/tmp/sdkperf/raw.wasm';
for (const c of cases) {
  if (existsSync(rawFile) && !ONCE) {
    const ex = instantiate(rawFile);
    variants.push({ label: 'raw', c, ex, call: caller(ex) });
  }
  for (const b of builds) {
    const ex = instantiate(b[c.module]);
    variants.push({ label: b.label, c, ex, call: caller(ex) });
  }
}

if (ONCE) {
  // No allocation in JavaScript per call (a cached view of memory), so that the difference between
  // two runs with different --n counts is the Wasm work plus a constant loop cost.
  for (const v of variants) {
    const ex = v.ex;
    const req = v.c.req;
    let mem = ex.memory.buffer;
    let u8 = new Uint8Array(mem);
    for (let i = 0; i < N; i++) {
      const p = ex.enclave_alloc(req.length);
      if (ex.memory.buffer !== mem) {
        mem = ex.memory.buffer;
        u8 = new Uint8Array(mem);
      }
      u8.set(req, p);
      ex.enclave_call(p, req.length);
    }
  }
  process.exit(0);
}

// Same reply from every build (modulo the counter's state, which is reset by a fresh instance).
for (const v of variants) {
  const d = v.call(v.c.req);
  v.firstReply = v.label === 'raw' ? '' : replyOf(v.ex, d);
  for (let i = 0; i < N / 10; i++) v.call(v.c.req); // warm up
}
for (const c of cases) {
  const rs = new Set(variants.filter((v) => v.c === c && v.label !== 'raw').map((v) => v.firstReply));
  if (rs.size !== 1) console.log(`!! ${c.name}: builds reply differently: ${[...rs].join(' / ')}`);
}

const samples = new Map(variants.map((v) => [v, []]));
for (let r = 0; r < ROUNDS; r++) {
  // Rotate the order each round so no build always runs first.
  for (let k = 0; k < variants.length; k++) {
    const v = variants[(k + r) % variants.length];
    const req = v.c.req;
    const call = v.call;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) call(req);
    samples.get(v).push(Number(process.hrtime.bigint() - t0) / N);
  }
}

for (const c of cases) {
  const line = [`${c.name.padEnd(8)}`];
  for (const v of variants.filter((x) => x.c === c)) {
    const s = samples.get(v);
    line.push(`${v.label} ${median(s).toFixed(0)} ns (min ${Math.min(...s).toFixed(0)})`);
  }
  console.log(line.join('  |  '));
}
