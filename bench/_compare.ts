/**
 * `--compare <baseline.json> --max-regression <t>`: the regression gate.
 *
 * For every case of ours (role `subject`, or no role) present in both runs, keyed by
 * `<suite>/<case name>`, the gate compares the case's time **relative to its group's floor** when
 * both runs measured that floor, and its absolute time otherwise:
 *
 *     x     = meanNs / floor.meanNs          rme(x) = rme + floor.rme     (basis "floor")
 *     x     = meanNs                         rme(x) = rme                 (basis "absolute")
 *     limit = base.x × (1 + t) × (1 + (rme(base.x) + rme(new.x)) / 100)
 *     regression  ⇔  new.x > limit
 *
 * `t` is the threshold (`10%` → 0.10); the rme terms (percent) widen the limit by both runs'
 * margins of error, so noise a run itself admits to does not fail the gate. The floor is measured
 * side by side with the case, so dividing by it cancels what a shared or different machine does to
 * both (a busier neighbour, another CPU model) and leaves what our code did. Floors, peers and
 * references are shown but never fail the gate. Cases only in one of the two runs are listed as
 * added or gone and do not fail it.
 */
import { formatNs } from './_harness.js';
import { SCHEMA, type BenchReport } from './_report.js';

export type Verdict = 'ok' | 'regression' | 'faster' | 'info' | 'added' | 'gone';

export interface Comparison {
  readonly key: string;
  readonly verdict: Verdict;
  /** What was compared: time relative to the group's floor, or absolute time. */
  readonly basis?: 'floor' | 'absolute';
  readonly baseNs?: number;
  readonly newNs?: number;
  /** `new / base - 1` on the compared basis, for example 0.25 for 25% slower. */
  readonly change?: number;
  /** The largest `newNs` that still passes, at this run's floor (only for gated cases). */
  readonly limitNs?: number;
}

export interface CompareResult {
  readonly threshold: number;
  readonly rows: readonly Comparison[];
  readonly regressions: number;
  /** Warnings about the comparison itself (different CPU, quick run, ...). */
  readonly warnings: readonly string[];
}

/**
 * Parses a threshold: `10%`, `10` (percent) or `0.1` (a fraction when below 1).
 * @throws {RangeError} when it is not a non-negative number.
 */
export function parseThreshold(text: string | number): number {
  const s = String(text).trim();
  const m = /^(\d+(?:\.\d+)?)\s*(%?)$/.exec(s);
  if (m === null) throw new RangeError(`--max-regression: expected a percentage like 10%, got "${s}"`);
  const v = Number(m[1]);
  return m[2] === '%' || v >= 1 ? v / 100 : v;
}

/**
 * Checks that a parsed JSON document is a benchmark report this version can read.
 * @throws {TypeError} naming what is wrong.
 */
export function assertReport(json: unknown, what: string): asserts json is BenchReport {
  const r = json as Partial<BenchReport> | null;
  if (typeof r !== 'object' || r === null || r.schema !== SCHEMA || !Array.isArray(r.suites)) {
    throw new TypeError(`${what}: not an ${SCHEMA} document (written by \`npm run bench -- --json <file>\`)`);
  }
  for (const s of r.suites) {
    if (typeof s?.name !== 'string' || !Array.isArray(s.results)) throw new TypeError(`${what}: suite without name or results`);
    for (const c of s.results) {
      if (typeof c?.name !== 'string' || !(c.meanNs > 0) || !(c.rme >= 0)) {
        throw new TypeError(`${what}: case ${s.name}/${String(c?.name)} lacks a positive meanNs or rme`);
      }
    }
  }
}

/** The largest mean that passes the gate. */
export function regressionLimit(baseMeanNs: number, baseRme: number, newRme: number, threshold: number): number {
  return baseMeanNs * (1 + threshold) * (1 + (baseRme + newRme) / 100);
}

type Result = BenchReport['suites'][number]['results'][number];

/** Each case of a report by `<suite>/<case>`, with its group's floor when the group has one. */
function indexReport(r: BenchReport): Map<string, { readonly result: Result; readonly floor: Result | undefined }> {
  const out = new Map<string, { result: Result; floor: Result | undefined }>();
  for (const s of r.suites) {
    const floors = new Map(s.results.filter((c) => c.role === 'floor').map((c) => [c.group, c] as const));
    for (const c of s.results) out.set(`${s.name}/${c.name}`, { result: c, floor: c.role === 'floor' ? undefined : floors.get(c.group) });
  }
  return out;
}

export function compareReports(base: BenchReport, current: BenchReport, threshold: number): CompareResult {
  const before = indexReport(base);
  const after = indexReport(current);
  const rows: Comparison[] = [];
  let regressions = 0;
  for (const [key, { result: now, floor: nowFloor }] of after) {
    const previous = before.get(key);
    if (previous === undefined) {
      rows.push({ key, verdict: 'added', newNs: now.meanNs });
      continue;
    }
    const { result: was, floor: wasFloor } = previous;
    const gated = (now.role ?? 'subject') === 'subject';
    if (!gated) {
      rows.push({ key, verdict: 'info', baseNs: was.meanNs, newNs: now.meanNs, change: now.meanNs / was.meanNs - 1 });
      continue;
    }
    const relative = nowFloor !== undefined && wasFloor !== undefined;
    const x = (c: Result, f: Result | undefined) => (relative ? c.meanNs / f!.meanNs : c.meanNs);
    const rme = (c: Result, f: Result | undefined) => (relative ? c.rme + f!.rme : c.rme);
    const wasX = x(was, wasFloor);
    const nowX = x(now, nowFloor);
    const limitX = regressionLimit(wasX, rme(was, wasFloor), rme(now, nowFloor), threshold);
    const verdict: Verdict = nowX > limitX ? 'regression' : nowX * (1 + threshold) < wasX ? 'faster' : 'ok';
    if (verdict === 'regression') regressions++;
    rows.push({
      key,
      verdict,
      basis: relative ? 'floor' : 'absolute',
      baseNs: was.meanNs,
      newNs: now.meanNs,
      change: nowX / wasX - 1,
      limitNs: relative ? limitX * nowFloor!.meanNs : limitX,
    });
  }
  for (const [key, { result: was }] of before) if (!after.has(key)) rows.push({ key, verdict: 'gone', baseNs: was.meanNs });

  const warnings: string[] = [];
  if (base.machine?.cpu !== current.machine?.cpu || base.machine?.cores !== current.machine?.cores) {
    warnings.push(`different machines: baseline "${base.machine?.cpu}" ×${base.machine?.cores}, this run "${current.machine?.cpu}" ×${current.machine?.cores}`);
  }
  if (base.machine?.node !== current.machine?.node) warnings.push(`different Node versions: ${base.machine?.node} → ${current.machine?.node}`);
  if (base.options?.quick || current.options?.quick) warnings.push('a --quick run is involved: margins are wide');
  return { threshold, rows, regressions, warnings };
}

const MARK: Record<Verdict, string> = { ok: 'ok', regression: '**REGRESSION**', faster: 'faster', info: 'not gated', added: 'added', gone: 'gone' };

/** The comparison as Markdown, regressions first. */
export function compareMarkdown(result: CompareResult, baseLabel: string): string {
  const order: Verdict[] = ['regression', 'faster', 'ok', 'info', 'added', 'gone'];
  const rows = [...result.rows].sort((a, b) => order.indexOf(a.verdict) - order.indexOf(b.verdict));
  const pct = (x: number | undefined) => (x === undefined ? '' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`);
  const ns = (x: number | undefined) => (x === undefined ? '' : formatNs(x));
  const lines = [
    `### Compared with ${baseLabel} (max regression ${(result.threshold * 100).toFixed(0)}% beyond the margins of error)`,
    '',
    result.regressions === 0 ? 'No regression.' : `**${result.regressions} regression${result.regressions === 1 ? '' : 's'}.**`,
    '',
    ...result.warnings.map((w) => `- warning: ${w}`),
    ...(result.warnings.length > 0 ? [''] : []),
    'Change and limit are relative to the group floor where both runs measured it (basis "floor"), absolute otherwise.',
    '',
    '| case | baseline | now | change | limit | basis | verdict |',
    '|---|--:|--:|--:|--:|---|---|',
    ...rows.map(
      (r) => `| ${r.key} | ${ns(r.baseNs)} | ${ns(r.newNs)} | ${pct(r.change)} | ${ns(r.limitNs)} | ${r.basis ?? ''} | ${MARK[r.verdict]} |`,
    ),
    '',
  ];
  return lines.join('\n');
}
