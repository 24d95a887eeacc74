/**
 * The benchmark regression gate (`--compare`), on synthetic results: it must fail on a slowed
 * result and pass on an unchanged one. No benchmark runs here except one tiny harness check.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compareReports, parseThreshold, regressionLimit } from '../bench/_compare.js';
import { slowed as slowedBody } from '../bench/_harness.js';
import { SCHEMA, suiteSvg, withRatios, type BenchReport, type ResultRow } from '../bench/_report.js';
import { parseSlowdown } from '../bench/run.js';

const run = promisify(execFile);
const RUNNER = 'dist/bench/run.js'; // `npm run bench`: not a command of the shipped CLI

function row(name: string, meanNs: number, rme = 2, extra: Partial<ResultRow> = {}): ResultRow {
  return { name, meanNs, opsPerSec: 1e9 / meanNs, rme, samples: 50, batch: 1, group: '16 B', ...extra };
}

function report(rows: ResultRow[], over: Partial<BenchReport> = {}): BenchReport {
  return {
    schema: SCHEMA,
    createdAt: '2026-01-01T00:00:00.000Z',
    git: { commit: 'a'.repeat(40), dirty: false },
    machine: { cpu: 'Test CPU', cores: 2, memoryBytes: 1, node: 'v20.0.0', v8: '11', platform: 'linux', arch: 'x64' },
    options: { quick: false, maxTime: null, filter: null, slowdown: null },
    suites: [{ name: 'boundary', description: 'echo', peerLabel: 'Extism', maxTime: 1, seconds: 1, notes: [], results: withRatios(rows) }],
    ...over,
  };
}

const BASE = report([
  row('raw wasm floor 16 B', 200, 1, { role: 'floor' }),
  row('enclave 16 B', 1000, 2, { peer: 'extism 16 B' }),
  row('extism 16 B', 20_000, 3, { role: 'peer' }),
]);

/** The baseline with every case `factor` times slower (rme unchanged). */
function slowed(factor: number, only?: string): BenchReport {
  return {
    ...BASE,
    suites: BASE.suites.map((s) => ({
      ...s,
      results: s.results.map((r) => (only === undefined || r.name === only ? { ...r, meanNs: r.meanNs * factor, opsPerSec: r.opsPerSec / factor } : r)),
    })),
  };
}

describe('compare rule', () => {
  it('parses thresholds as percentages', () => {
    expect(parseThreshold('10%')).toBeCloseTo(0.1);
    expect(parseThreshold('10')).toBeCloseTo(0.1);
    expect(parseThreshold('0.25')).toBeCloseTo(0.25);
    expect(parseThreshold('0%')).toBe(0);
    expect(() => parseThreshold('ten')).toThrow(RangeError);
    expect(() => parseThreshold('-5%')).toThrow(RangeError);
  });

  it('limit = base × (1 + t) × (1 + (rme_base + rme_new) / 100)', () => {
    expect(regressionLimit(1000, 2, 3, 0.1)).toBeCloseTo(1000 * 1.1 * 1.05);
  });

  it('passes an unchanged run', () => {
    const r = compareReports(BASE, BASE, 0.1);
    expect(r.regressions).toBe(0);
    expect(r.rows.find((x) => x.key === 'boundary/enclave 16 B')?.verdict).toBe('ok');
    expect(r.warnings).toEqual([]);
  });

  it('passes a slowdown within threshold plus margins, fails one beyond (relative to the floor)', () => {
    // enclave / floor = 5, rme 2 + 1 = 3 in each run -> limit 5 × 1.1 × 1.06 = 5.83, i.e. 1.166×
    expect(compareReports(BASE, slowed(1.16, 'enclave 16 B'), 0.1).regressions).toBe(0);
    const r = compareReports(BASE, slowed(1.17, 'enclave 16 B'), 0.1);
    expect(r.regressions).toBe(1);
    const row = r.rows.find((x) => x.verdict === 'regression');
    expect(row?.key).toBe('boundary/enclave 16 B');
    expect(row?.basis).toBe('floor');
  });

  it('fails an artificially slowed build: our code slower, the floor not', () => {
    expect(compareReports(BASE, slowed(2, 'enclave 16 B'), 0.1).regressions).toBe(1);
  });

  it('does not fail a slower machine: everything slower, the floor too', () => {
    const r = compareReports(BASE, slowed(2), 0.1);
    expect(r.regressions).toBe(0);
    expect(r.rows.find((x) => x.key === 'boundary/enclave 16 B')?.change).toBeCloseTo(0);
  });

  it('compares absolute times when a run lacks the floor', () => {
    const noFloor = (factor: number) =>
      report([row('enclave 16 B', 1000 * factor, 2, { peer: 'extism 16 B' }), row('extism 16 B', 20_000, 3, { role: 'peer' })]);
    const r = compareReports(BASE, noFloor(2), 0.1);
    expect(r.regressions).toBe(1);
    expect(r.rows.find((x) => x.key === 'boundary/enclave 16 B')?.basis).toBe('absolute');
    expect(compareReports(BASE, noFloor(1.14), 0.1).regressions).toBe(0); // 1000 × 1.1 × 1.04 = 1144
  });

  it('never fails on floors or peers, which are not our code', () => {
    const r = compareReports(BASE, slowed(3, 'extism 16 B'), 0.1);
    expect(r.regressions).toBe(0);
    expect(r.rows.find((x) => x.key === 'boundary/extism 16 B')?.verdict).toBe('info');
    expect(compareReports(BASE, slowed(3, 'raw wasm floor 16 B'), 0).regressions).toBe(0);
  });

  it('lists added and gone cases without failing, and warns about a different machine', () => {
    const other = report([row('enclave 16 B', 1000), row('enclave 32 B', 1200)], {
      machine: { ...BASE.machine, cpu: 'Other CPU' },
    });
    const r = compareReports(BASE, other, 0.1);
    expect(r.regressions).toBe(0);
    expect(r.rows.filter((x) => x.verdict === 'added').map((x) => x.key)).toEqual(['boundary/enclave 32 B']);
    expect(r.rows.filter((x) => x.verdict === 'gone').map((x) => x.key).sort()).toEqual(['boundary/extism 16 B', 'boundary/raw wasm floor 16 B']);
    expect(r.warnings.join('\n')).toMatch(/different machines/);
  });
});

describe('ratios and charts', () => {
  it('takes ratios to the group floor and the named peer', () => {
    const rows = BASE.suites[0]!.results;
    expect(rows.find((r) => r.name === 'enclave 16 B')?.ratioToFloor).toBeCloseTo(5);
    expect(rows.find((r) => r.name === 'enclave 16 B')?.ratioToPeer).toBeCloseTo(0.05);
    expect(rows.find((r) => r.name === 'raw wasm floor 16 B')?.ratioToFloor).toBe(1);
  });

  it('draws one bar per case with a floor, escaping names', () => {
    const svg = suiteSvg({ ...BASE.suites[0]!, results: withRatios([row('f', 10, 1, { role: 'floor' }), row('a <b> & "c"', 50)]) });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<title>/g)?.length).toBe(2);
    expect(svg).toContain('a &lt;b&gt; &amp; &quot;c&quot;');
    expect(svg).toContain('5.00×');
  });
});

describe('ENCLAVE_BENCH_SLOWDOWN', () => {
  it('parses suite, optional case substring and factor', () => {
    const f = parseSlowdown('boundary:2,marshal/pack:3');
    expect(f('boundary', 'enclave 16 B')).toBe(2);
    expect(f('marshal', 'pack request 16 B')).toBe(3);
    expect(f('marshal', 'unpack reply 16 B')).toBe(3); // substring match
    expect(f('marshal', 'copy 16 B')).toBe(1);
    expect(f('attest', 'x')).toBe(1);
    expect(parseSlowdown(undefined)('boundary', 'x')).toBe(1);
    expect(() => parseSlowdown('boundary')).toThrow(/ENCLAVE_BENCH_SLOWDOWN/);
  });

  it('multiplies the work of a sync body', () => {
    let calls = 0;
    const body = slowedBody(() => {
      calls++;
    }, 4);
    body();
    expect(calls).toBe(4);
    body();
    expect(calls).toBe(8);
  });

  it('multiplies the work of an async body, one run after another', async () => {
    let running = 0;
    let calls = 0;
    let overlapped = false;
    const body = slowedBody(async () => {
      if (running++ > 0) overlapped = true;
      calls++;
      await new Promise((r) => setImmediate(r));
      running--;
    }, 3);
    await body();
    expect(calls).toBe(3);
    expect(overlapped).toBe(false);
  });
});

describe('npm run bench -- --results --compare (the built runner)', () => {
  async function files() {
    const dir = await mkdtemp(path.join(tmpdir(), 'bench-compare-'));
    const write = async (name: string, r: BenchReport) => {
      const file = path.join(dir, name);
      await writeFile(file, JSON.stringify(r));
      return file;
    };
    return { dir, base: await write('base.json', BASE), same: await write('same.json', BASE), slow: await write('slow.json', slowed(2, 'enclave 16 B')) };
  }
  async function bench(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [RUNNER, ...args]);
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('exits 1 on a slowed result and 0 on an unchanged one', async () => {
    const f = await files();
    const slow = await bench('--results', f.slow, '--compare', f.base, '--max-regression', '10%');
    expect(slow.code).toBe(1);
    expect(slow.stdout).toContain('**REGRESSION**');
    expect(slow.stderr).toMatch(/1 regression/);
    const same = await bench('--results', f.same, '--compare', f.base, '--max-regression', '10%');
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('No regression.');
  });

  it('writes the report (Markdown and SVG) from saved results', async () => {
    const f = await files();
    const out = path.join(f.dir, 'report');
    expect((await bench('--results', f.slow, '--compare', f.base, '--report', out)).code).toBe(1);
    const md = await readFile(path.join(out, 'summary.md'), 'utf8');
    expect(md).toContain('| 16 B | raw wasm floor 16 B *(floor)*');
    expect(md).toContain('× Extism');
    expect(md).toContain('![boundary: time relative to the floor](boundary.svg)');
    expect(md).toContain('**REGRESSION**');
    expect(await readFile(path.join(out, 'boundary.svg'), 'utf8')).toMatch(/^<svg/);
  });

  it('refuses a file that is not a results document (exit 2)', async () => {
    const f = await files();
    await writeFile(path.join(f.dir, 'bad.json'), '{"suites": []}');
    const r = await bench('--results', f.same, '--compare', path.join(f.dir, 'bad.json'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not an enclave-bench\/1 document/);
  });
});
