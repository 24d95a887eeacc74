/**
 * The one output format: the JSON document (`--json`), the Markdown summary and the SVG charts
 * (`--report`). Everything here is pure, so tests can build reports from synthetic results.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { formatNs, type CaseResult, type Role } from './_harness.js';

/** Schema identifier of the JSON document; bumped on an incompatible change. */
export const SCHEMA = 'enclave-bench/1';

/** One case in the JSON document: what the harness measured plus the ratios of its group. */
export interface ResultRow extends CaseResult {
  /** `meanNs / floor.meanNs` within the case's group, when the group has a floor. */
  readonly ratioToFloor?: number;
  /** `meanNs / peer.meanNs` against the case named by `peer`, when both ran. */
  readonly ratioToPeer?: number;
}

export interface SuiteReport {
  readonly name: string;
  readonly description: string;
  /** What the "× peer" column is called in the Markdown table (for example `Extism`). */
  readonly peerLabel: string;
  /** Seconds per case this run used. */
  readonly maxTime: number;
  /** Wall time of the suite, setup included, seconds. */
  readonly seconds: number;
  readonly notes: readonly string[];
  readonly results: readonly ResultRow[];
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly node: string;
  readonly v8: string;
  readonly platform: string;
  readonly arch: string;
}

/** The JSON document `--json` writes and `--compare` reads. */
export interface BenchReport {
  readonly schema: typeof SCHEMA;
  readonly createdAt: string;
  /** `null` outside a git checkout. `dirty`: tracked files differ from the commit. */
  readonly git: { readonly commit: string; readonly dirty: boolean } | null;
  readonly machine: Machine;
  readonly options: { readonly quick: boolean; readonly maxTime: number | null; readonly filter: string | null; readonly slowdown: string | null };
  readonly suites: readonly SuiteReport[];
  /** Files in bench/ that are scripts, not suites, and so were not part of this run. */
  readonly notSuites?: readonly string[];
}

export function machineInfo(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    memoryBytes: os.totalmem(),
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
  };
}

export function gitInfo(root: string): BenchReport['git'] {
  try {
    const opts = { cwd: root, encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'], timeout: 5000 };
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], opts).trim() !== '';
    return /^[0-9a-f]{40}$/.test(commit) ? { commit, dirty } : null;
  } catch {
    return null;
  }
}

/** Adds each case's ratios to its group's floor and to its named peer. */
export function withRatios(results: readonly CaseResult[]): ResultRow[] {
  const floors = new Map<string, CaseResult>();
  for (const r of results) if (r.role === 'floor' && r.group !== undefined && !floors.has(r.group)) floors.set(r.group, r);
  const byName = new Map(results.map((r) => [r.name, r]));
  return results.map((r) => {
    const floor = r.group === undefined ? undefined : floors.get(r.group);
    const peer = r.peer === undefined ? undefined : byName.get(r.peer);
    return {
      ...r,
      ...(floor === undefined ? {} : { ratioToFloor: r.meanNs / floor.meanNs }),
      ...(peer === undefined ? {} : { ratioToPeer: r.meanNs / peer.meanNs }),
    };
  });
}

export function formatOps(hz: number): string {
  if (hz >= 1e6) return `${(hz / 1e6).toFixed(2)} M`;
  if (hz >= 1e3) return `${(hz / 1e3).toFixed(1)} k`;
  return hz >= 100 ? hz.toFixed(0) : hz.toFixed(1);
}

export function formatRatio(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '';
  return x >= 100 ? `${x.toFixed(0)}×` : x >= 10 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`;
}

const ROLE_MARK: Record<Role, string> = { subject: '', floor: ' *(floor)*', peer: ' *(peer)*', reference: ' *(ref)*' };

/** The Markdown table of one suite, with its notes. */
export function suiteMarkdown(s: SuiteReport, chartPath?: string): string {
  const lines = [`### ${s.name}: ${s.description}`, ''];
  if (s.results.length > 0) {
    // The peer column only where a suite has peers.
    const peers = s.results.some((r) => r.ratioToPeer !== undefined || r.role === 'peer');
    lines.push(
      `| group | case | ops/s | mean | ±rme | samples | × floor |${peers ? ` × ${s.peerLabel} |` : ''}`,
      `|---|---|--:|--:|--:|--:|--:|${peers ? '--:|' : ''}`,
    );
    let group: string | undefined;
    for (const r of s.results) {
      const g = r.group ?? '';
      lines.push(
        `| ${g === group ? '' : g} | ${r.name}${ROLE_MARK[r.role ?? 'subject']} | ${formatOps(r.opsPerSec)} | ${formatNs(r.meanNs)} | ±${r.rme.toFixed(1)}% | ${r.samples} | ${formatRatio(r.ratioToFloor)} |${peers ? ` ${formatRatio(r.ratioToPeer)} |` : ''}`,
      );
      group = g;
    }
    lines.push('');
  }
  for (const note of s.notes) lines.push(`- ${note}`);
  if (s.notes.length > 0) lines.push('');
  if (chartPath !== undefined && s.results.some((r) => r.ratioToFloor !== undefined)) lines.push(`![${s.name}: time relative to the floor](${chartPath})`, '');
  return lines.join('\n');
}

/** The whole Markdown summary: machine, commit, then one section per suite. */
export function reportMarkdown(report: BenchReport, charts = false): string {
  const m = report.machine;
  const git = report.git === null ? 'not a git checkout' : `\`${report.git.commit.slice(0, 12)}\`${report.git.dirty ? ' (with uncommitted changes)' : ''}`;
  const lines = [
    '## Benchmarks',
    '',
    `${m.cpu}, ${m.cores} cores, Node ${m.node} (${m.platform}/${m.arch}); commit ${git}; ${report.createdAt}` +
      `${report.options.quick ? '; **quick run** (indicative only)' : ''}${report.options.slowdown ? `; **slowdown injected: ${report.options.slowdown}**` : ''}.`,
    '',
    'Mean time per operation; ±rme is the relative margin of error of the mean (95% confidence, benchmark.js).',
    '× floor: mean / mean of the group\'s floor (the least work that can do the job); lower is better.',
    '',
  ];
  for (const s of report.suites) lines.push(suiteMarkdown(s, charts ? `${s.name}.svg` : undefined));
  if (report.notSuites !== undefined && report.notSuites.length > 0) {
    lines.push(`Not part of this run (scripts without a \`suite\` export): ${report.notSuites.map((f) => `\`bench/${f}\``).join(', ')}.`, '');
  }
  return lines.join('\n');
}

const COLORS: Record<Role, string> = { subject: '#2f6fdf', floor: '#8a8f98', peer: '#e0822d', reference: '#3b9a5a' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A horizontal bar chart of each case's time relative to its group's floor, log scale, one bar
 * per case grouped as in the table. Hand-written SVG: no chart dependency.
 */
export function suiteSvg(s: SuiteReport): string {
  const rows = s.results.filter((r) => r.ratioToFloor !== undefined && Number.isFinite(r.ratioToFloor) && r.ratioToFloor > 0);
  const W = 820;
  const LABEL = 250;
  const RIGHT = 70;
  const BAR = 16;
  const GAP = 4;
  const GROUP_GAP = 22;
  const TOP = 44;
  const plot = W - LABEL - RIGHT;
  if (rows.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="40" font-family="sans-serif" font-size="12"><text x="8" y="24">${esc(s.name)}: no case has a floor to compare with</text></svg>\n`;
  }
  const ratios = rows.map((r) => r.ratioToFloor!);
  const lo = 10 ** Math.floor(Math.log10(Math.min(1, ...ratios)));
  let hi = 10 ** Math.ceil(Math.log10(Math.max(...ratios)));
  if (hi <= lo) hi = lo * 10;
  const x = (v: number): number => LABEL + (plot * Math.log10(v / lo)) / Math.log10(hi / lo);
  const out: string[] = [];
  let y = TOP;
  let group: string | undefined;
  for (const r of rows) {
    if (r.group !== group) {
      y += group === undefined ? 0 : GROUP_GAP - GAP;
      out.push(`<text x="8" y="${y - 5}" font-weight="bold">${esc(r.group ?? '')}</text>`);
      group = r.group;
      y += 2;
    }
    const w = Math.max(1, x(r.ratioToFloor!) - LABEL);
    const role = r.role ?? 'subject';
    out.push(
      `<text x="${LABEL - 6}" y="${y + BAR - 4}" text-anchor="end">${esc(r.name)}</text>`,
      `<rect x="${LABEL}" y="${y}" width="${w.toFixed(1)}" height="${BAR}" fill="${COLORS[role]}"><title>${esc(`${r.name}: ${formatNs(r.meanNs)} ±${r.rme.toFixed(1)}%`)}</title></rect>`,
      `<text x="${(LABEL + w + 4).toFixed(1)}" y="${y + BAR - 4}">${formatRatio(r.ratioToFloor)}</text>`,
    );
    y += BAR + GAP;
  }
  const height = y + 28;
  const ticks: string[] = [];
  for (let t = lo; t <= hi * 1.0001; t *= 10) {
    const tx = x(t).toFixed(1);
    ticks.push(
      `<line x1="${tx}" y1="${TOP - 14}" x2="${tx}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${tx}" y="${y + 16}" text-anchor="middle" fill="#555">${t >= 1 ? `${t}×` : `${t.toPrecision(1)}×`}</text>`,
    );
  }
  const legend = (['subject', 'floor', 'peer', 'reference'] as const)
    .filter((role) => rows.some((r) => (r.role ?? 'subject') === role))
    .map((role, i) => {
      const lx = LABEL + i * 110;
      return `<rect x="${lx}" y="8" width="10" height="10" fill="${COLORS[role]}"/><text x="${lx + 14}" y="17">${role === 'subject' ? 'enclave' : role}</text>`;
    });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="17" font-weight="bold" font-size="13">${esc(s.name)}</text>`,
    ...legend,
    `<text x="${W - 8}" y="17" text-anchor="end" fill="#555">time / floor (log scale, lower is better)</text>`,
    ...ticks,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
