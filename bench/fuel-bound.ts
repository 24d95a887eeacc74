/**
 * The time bound of fuel (docs/LIMITS.md, "Fuel"): for hostile patterns that each burn a whole
 * budget as slowly as they can (the cheapest and the dearest instructions, cache-missing loads,
 * bulk memory operations at their charge rate, memory.grow, calls, call_indirect, deep recursion,
 * every capability import at its largest size), the wall time of one in-process call divided by
 * the fuel it used. The largest is K, the rate of the bound `call time <= K x fuel budget + C`;
 * C is what a call that ends otherwise (a stack overflow: once per call) takes.
 *
 * Then the same for components (issue 14): a WAT component looping on one capability import until
 * its budget runs out. Each import call through jco's glue costs the host thread far more than a
 * core import call; runtime/capabilities/_component.ts charges COMPONENT_IMPORT_FUEL per call for
 * it, and these rows say whether that keeps a component within the core modules' K (printed as
 * their ns per fuel against K).
 *
 *   npm run build:ts && node dist/bench/fuel-bound.js [fuel per call, default 10 000 000]
 *
 * A measurement script, not a test: its numbers depend on the machine.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from '@bytecodealliance/jco';
import { componentEmbed, componentNew } from '@bytecodealliance/jco-transpile/wasm-tools';
import { SoftwareAttestationProvider } from '../attest/index.js';
import { CONTRACT_SECTION, EnclaveError, encodeCustomSection } from '../core/index.js';
import { compileEnclave } from '../runtime/index.js';
import { isMain, repoRoot } from './_harness.js';

/** One hostile pattern: the body of `$attack` (locals $i $j $p i32, $x i64, $y f64). */
interface Pattern {
  readonly name: string;
  readonly body: string;
  /** Run once before timing (per instance), e.g. to lay out memory. */
  readonly setup?: string;
  /** Initial memory pages; the maximum is {@link PAGES}. Default: the maximum. */
  readonly initialPages?: number;
  /** A component (issue 14) whose handler runs the body: {@link componentWat}. Default: a core module. */
  readonly component?: boolean;
}

const PAGES = 256;
const N = (PAGES * 65536) / 64; // 64-byte slots over the whole memory

export const PATTERNS: readonly Pattern[] = [
  { name: 'empty loop (br)', body: '(loop $l (br $l))' },
  { name: 'i32.add loop', body: '(loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))' },
  {
    name: 'i64.div_s chain',
    body: '(local.set $x (i64.const 0x7fffffffffff)) (loop $l (local.set $x (i64.div_s (i64.sub (i64.const 0x7fffffffffffffff) (local.get $x)) (i64.const 3))) (br $l))',
  },
  {
    name: 'f64.sqrt/div chain',
    body: '(local.set $y (f64.const 2)) (loop $l (local.set $y (f64.div (f64.sqrt (local.get $y)) (f64.const 0.999))) (br $l))',
  },
  {
    // A dependent chain of loads through a full-period permutation of 64-byte slots over 16 MiB:
    // every load misses the caches (and often the TLB). Offset 32 in each slot
    // leaves the reply at 0x100 and 0x200 intact.
    name: 'pointer chase over 16 MiB',
    setup: `(local.set $i (i32.const 0))
      (loop $s
        (i32.store offset=32 (i32.shl (local.get $i) (i32.const 6))
          (i32.add (i32.shl (i32.and (i32.add (i32.mul (local.get $i) (i32.const 1664525)) (i32.const 1)) (i32.const ${N - 1})) (i32.const 6)) (i32.const 32)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $s (i32.lt_u (local.get $i) (i32.const ${N}))))`,
    body: '(local.set $p (i32.const 32)) (loop $l (local.set $p (i32.load (local.get $p))) (br $l))',
  },
  {
    name: 'random-address stores over 16 MiB',
    body: `(loop $l
      (local.set $p (i32.add (i32.mul (local.get $p) (i32.const 1664525)) (i32.const 1013904223)))
      (i32.store (i32.and (local.get $p) (i32.const ${PAGES * 65536 - 4})) (local.get $p)) (br $l))`,
  },
  { name: 'memory.fill 16 MiB - 64 KiB', body: `(loop $l (memory.fill (i32.const 0x10000) (i32.const 7) (i32.const ${PAGES * 65536 - 0x10000})) (br $l))` },
  { name: 'memory.fill 64 B', body: '(loop $l (memory.fill (i32.const 0x10000) (i32.const 7) (i32.const 64)) (br $l))' },
  { name: 'memory.fill 1 B', body: '(loop $l (memory.fill (i32.const 0x10000) (i32.const 7) (i32.const 1)) (br $l))' },
  { name: 'memory.fill 0 B', body: '(loop $l (memory.fill (i32.const 0x10000) (i32.const 7) (i32.const 0)) (br $l))' },
  { name: 'memory.copy 0 B', body: '(loop $l (memory.copy (i32.const 0x10000) (i32.const 0x20000) (i32.const 0)) (br $l))' },
  { name: 'memory.init 0 B', body: '(loop $l (memory.init $seg (i32.const 0x10000) (i32.const 0) (i32.const 0)) (br $l))' },
  { name: 'memory.copy 8 MiB', body: '(loop $l (memory.copy (i32.const 0x10000) (i32.const 0x800000) (i32.const 0x7f0000)) (br $l))' },
  { name: 'memory.copy 8 MiB overlapping', body: '(loop $l (memory.copy (i32.const 0x10001) (i32.const 0x10000) (i32.const 0x800000)) (br $l))' },
  { name: 'memory.copy 64 B', body: '(loop $l (memory.copy (i32.const 0x10000) (i32.const 0x20000) (i32.const 64)) (br $l))' },
  { name: 'memory.init 64 KiB', body: '(loop $l (memory.init $seg (i32.const 0x10000) (i32.const 0) (i32.const 65536)) (br $l))' },
  { name: 'memory.grow 1 (1 page at a time to the maximum, then fails)', initialPages: 1, body: '(loop $l (drop (memory.grow (i32.const 1))) (br $l))' },
  { name: 'memory.grow 0', body: '(loop $l (drop (memory.grow (i32.const 0))) (br $l))' },
  { name: 'memory.size', body: '(loop $l (drop (memory.size)) (br $l))' },
  { name: 'call a function with 10 000 i64 locals', body: '(loop $l (call $locals) (br $l))' },
  { name: 'call a function with 10 000 v128 locals', body: '(loop $l (call $locals128) (br $l))' },
  { name: 'call (empty function)', body: '(loop $l (call $nop) (br $l))' },
  { name: 'call_indirect (empty function)', body: '(loop $l (call_indirect (type $v) (i32.const 0)) (br $l))' },
  { name: 'deep recursion (to stack overflow)', body: '(drop (call $deep (i32.const 0)))' },
  { name: 'now', body: '(loop $l (drop (call $now)) (br $l))' },
  { name: 'random 64 KiB', body: '(loop $l (drop (call $random (i32.const 0x10000) (i32.const 65536))) (br $l))' },
  { name: 'random 1 B', body: '(loop $l (drop (call $random (i32.const 0x10000) (i32.const 1))) (br $l))' },
  { name: 'log 1 KiB (onLog set)', body: '(loop $l (call $log (i32.const 1) (i32.const 0x10000) (i32.const 1024)) (br $l))' },
  { name: 'log 1 B (onLog set)', body: '(loop $l (call $log (i32.const 1) (i32.const 0x10000) (i32.const 1)) (br $l))' },
  { name: 'seal_key', body: '(loop $l (drop (call $seal_key (i32.const 0) (i32.const 0x10000))) (br $l))' },
  {
    name: 'report (new data each time)',
    body: `(loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (i32.store (i32.const 0x10000) (local.get $i))
      (drop (call_indirect (type $rt) (i32.const 0x10000) (i32.const 32) (i32.const 0x20000) (i32.const 0x4000) (i32.const 1))) (br $l))`,
  },
  {
    name: 'report (same data: cached token)',
    body: '(loop $l (drop (call $report (i32.const 0x10000) (i32.const 32) (i32.const 0x20000) (i32.const 0x4000))) (br $l))',
  },
  // Components: each import call crosses jco's glue (task bookkeeping, lifting, lowering).
  { name: 'component: now', component: true, body: '(loop $l (drop (call $now)) (br $l))' },
  { name: 'component: log 1 B (onLog set)', component: true, body: '(loop $l (call $log (i32.const 1) (i32.const 0x300) (i32.const 1)) (br $l))' },
  { name: 'component: log 1 KiB (onLog set)', component: true, body: '(loop $l (call $log (i32.const 1) (i32.const 0x300) (i32.const 1024)) (br $l))' },
  // The list is lowered through the guest's cabi_realloc (here a fixed area: nothing grows).
  { name: 'component: random 1 B', component: true, body: '(loop $l (call $fill (i32.const 1) (i32.const 0x800)) (br $l))' },
];

/**
 * The core module of a component enclave (wit/enclave.wit, its canonical core signatures) whose
 * handler runs `p.body` for op `attack`: the request is the core ABI's, so its byte 5 is the op's
 * first letter, as for {@link moduleWat}; the reply is ok(nil).
 */
function componentWat(p: Pattern): string {
  return `(module
  (import "enclave:runtime/clock@1.0.0" "now" (func $now (result i64)))
  (import "enclave:runtime/log@1.0.0" "log" (func $log (param i32 i32 i32)))
  (import "enclave:runtime/random@1.0.0" "fill" (func $fill (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x200) "\\c0")
  (data (i32.const 0x300) "${'x'.repeat(1024)}")
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0x8000))
  (func (export "enclave:runtime/handler@1.0.0#call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61)) (then ${p.body}))
    (i32.store8 (i32.const 0x100) (i32.const 0))
    (i32.store (i32.const 0x104) (i32.const 0x200))
    (i32.store (i32.const 0x108) (i32.const 1))
    (i32.const 0x100)))`;
}

/** The pattern's enclave: a core module, or a component of the world (wit/enclave.wit), without its contract. */
async function patternBytes(p: Pattern): Promise<Uint8Array> {
  if (p.component !== true) return parse(moduleWat(p));
  const witSource = readFileSync(join(repoRoot(), 'wit', 'enclave.wit'), 'utf8');
  const embedded = await componentEmbed({ binary: await parse(componentWat(p)), witSource, world: 'enclave', stringEncoding: 'utf8' });
  return componentNew(embedded);
}

function moduleWat(p: Pattern): string {
  return `(module
  (type $v (func))
  (type $rt (func (param i32 i32 i32 i32) (result i32)))
  (import "enclave" "now" (func $now (result i64)))
  (import "enclave" "random" (func $random (param i32 i32) (result i32)))
  (import "enclave" "log" (func $log (param i32 i32 i32)))
  (import "enclave" "seal_key" (func $seal_key (param i32 i32) (result i32)))
  (import "enclave" "report" (func $report (type $rt)))
  (memory (export "memory") ${p.initialPages ?? PAGES} ${PAGES})
  (table 2 2 funcref) (elem (i32.const 0) $nop $report)
  (data (i32.const 0x100) "\\00\\02\\00\\00\\09\\00\\00\\00")
  (data (i32.const 0x200) "\\81\\a2ok\\a4fine")
  (data $seg "${'\\00'.repeat(65536)}")
  (func $nop)
  (func $locals ${'(local i64)'.repeat(10_000)})
  (func $locals128 ${'(local v128)'.repeat(10_000)})
  (func $deep (param i32) (result i32) (i32.add (call $deep (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func $setup (local $i i32) ${p.setup ?? ''})
  (func $attack (local $i i32) (local $j i32) (local $p i32) (local $x i64) (local $y f64) ${p.body})
  (func (export "enclave_abi_version") (result i32) (i32.const 1))
  (func (export "enclave_alloc") (param i32) (result i32) (i32.const 0x1000))
  (func (export "enclave_call") (param $p i32) (param $l i32) (result i32)
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x73)) (then (call $setup)))
    (if (i32.eq (i32.load8_u offset=5 (local.get $p)) (i32.const 0x61)) (then (call $attack)))
    (i32.const 0x100)))`;
}

export interface BoundRow {
  readonly name: string;
  readonly fuel: number;
  readonly ms: number;
  readonly nsPerFuel: number;
  readonly code: string;
  /** A component's row: checked against K, not part of it. */
  readonly component: boolean;
}

/** Times `runs` calls of each pattern under `fuel` and keeps the slowest per fuel unit. */
export async function measureBound(fuel: number, runs = 3, only?: (name: string) => boolean): Promise<BoundRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'enclave-fuel-bound-'));
  const provider = new SoftwareAttestationProvider({ dir });
  const rows: BoundRow[] = [];
  try {
    for (const p of PATTERNS) {
      if (only !== undefined && !only(p.name)) continue;
      const contract = {
        abi: 1,
        name: 'fuel-bound',
        version: '0.0.1',
        svn: 0,
        capabilities: ['clock', 'random', 'log', 'seal', 'attest'],
        limits: { requestBytes: 64, replyBytes: 64, depth: 4, memoryPages: PAGES, fuel: 2 ** 31 - 1 },
        ops: { attack: {}, setup: {} },
      };
      const wasm = await patternBytes(p);
      const section = encodeCustomSection(CONTRACT_SECTION, new TextEncoder().encode(JSON.stringify(contract)));
      const bytes = new Uint8Array(wasm.length + section.length);
      bytes.set(wasm);
      bytes.set(section, wasm.length);
      const mod = await compileEnclave(bytes);
      let worst: BoundRow | undefined;
      for (let r = 0; r < runs; r++) {
        const e = mod.create({
          capabilities: ['clock', 'random', 'log', 'seal', 'attest'],
          attestation: provider,
          onLog: () => undefined,
          policy: { fuel, memoryPages: PAGES },
        });
        // Only the attack is timed.
        if (p.setup !== undefined) await e.call('setup');
        const t = process.hrtime.bigint();
        let code = 'ok';
        const stats = { fuel: 0 };
        try {
          await e.call('attack', undefined, { stats });
        } catch (err) {
          code = err instanceof EnclaveError ? err.code : String(err);
        }
        const ms = Number(process.hrtime.bigint() - t) / 1e6;
        const used = stats.fuel;
        const row = { name: p.name, fuel: used, ms, nsPerFuel: (ms * 1e6) / Math.max(used, 1), code, component: p.component === true };
        if (worst === undefined || row.nsPerFuel > worst.nsPerFuel) worst = row;
        e.close();
      }
      rows.push(worst!);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

if (isMain(import.meta.url)) {
  const fuel = Number(process.argv[2] ?? 10_000_000);
  const filter = process.argv[3];
  const rows = await measureBound(fuel, 3, filter === undefined ? undefined : (n) => n.includes(filter));
  const width = Math.max(...rows.map((r) => r.name.length));
  console.log(`fuel per call ${fuel.toLocaleString('en-US')}; worst of 3 calls per pattern, in-process`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(width)}  ${r.ms.toFixed(1).padStart(8)} ms  ${r.fuel.toLocaleString('en-US').padStart(13)} fuel  ${r.nsPerFuel.toFixed(3).padStart(8)} ns/fuel  ${r.code}`,
    );
  }
  // Calls that burn their budget give K; a stack overflow ends a call once, whatever its budget,
  // so it is the constant term of the bound, not a rate. Components are checked against K, not part of it.
  const core = rows.filter((r) => !r.component);
  const metered = core.filter((r) => r.code === 'fuel_exhausted');
  const worst = metered.reduce<BoundRow | undefined>((a, b) => (a === undefined || b.nsPerFuel > a.nsPerFuel ? b : a), undefined);
  if (worst !== undefined) {
    const once = core.filter((r) => r.code !== 'fuel_exhausted').reduce((m, r) => Math.max(m, r.ms), 0);
    console.log(`K = ${worst.nsPerFuel.toFixed(3)} ns/fuel (${worst.name}); constant term ${once.toFixed(1)} ms (calls that end otherwise)`);
    console.log(`bound: call time <= ${worst.nsPerFuel.toFixed(1)} ns x fuel + ${once.toFixed(0)} ms; the default 10 000 000 fuel: ${((worst.nsPerFuel * 1e7) / 1e6 + once).toFixed(0)} ms`);
  }
  // A component's import call pays COMPONENT_IMPORT_FUEL for the glue (runtime/capabilities/_component.ts).
  for (const r of rows.filter((row) => row.component)) {
    const against = worst === undefined ? 'no core pattern run: no K to compare with' : `${(r.nsPerFuel / worst.nsPerFuel).toFixed(2)} x K, ${r.nsPerFuel <= worst.nsPerFuel ? 'within' : 'ABOVE'} the bound`;
    console.log(`${r.name}: ${r.nsPerFuel.toFixed(3)} ns/fuel (${against})`);
  }
}
