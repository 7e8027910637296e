/**
 * Collects every scenario's tables, correctness checks and target verdicts, prints them as Markdown
 * tables and writes bench/RESULTS.md. Hand-written analysis between the notes markers of an existing
 * RESULTS.md survives a rerun.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { MachineInfo } from './machine.js';

export interface Table {
  readonly title: string;
  readonly intro?: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
  readonly notes?: readonly string[];
}

export interface CorrectnessCheck {
  readonly scenario: string;
  readonly what: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface TargetVerdict {
  readonly target: string;
  readonly measured: string;
  /** null: not measured in this run (scenario skipped, quick run or target mode). */
  readonly met: boolean | null;
}

const NOTES_START = '<!-- notes:start (kept by npm run bench) -->';
const NOTES_END = '<!-- notes:end -->';

export class Report {
  readonly tables: Table[] = [];
  readonly checks: CorrectnessCheck[] = [];
  readonly targets: TargetVerdict[] = [];
  /** Raw figures for --json. */
  readonly data: Record<string, unknown> = {};

  constructor(
    readonly machine: MachineInfo,
    readonly command: string,
    readonly startedAt: Date,
  ) {}

  check(scenario: string, what: string, problems: readonly string[], okDetail: string): boolean {
    const ok = problems.length === 0;
    const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; … ${problems.length - 5} more` : '');
    this.checks.push({ scenario, what, ok, detail: ok ? okDetail : shown });
    return ok;
  }

  get allExact(): boolean {
    return this.checks.every((c) => c.ok);
  }

  /** Repeated runs of one check as one row: every run's detail when one failed, else the first and a count. */
  private mergedChecks(): CorrectnessCheck[] {
    const groups = new Map<string, CorrectnessCheck[]>();
    for (const c of this.checks) {
      const key = `${c.scenario}\u0000${c.what}`;
      (groups.get(key) ?? groups.set(key, []).get(key)!).push(c);
    }
    return [...groups.values()].map((runs) => {
      const first = runs[0]!;
      if (runs.length === 1) return first;
      const failed = runs.filter((r) => !r.ok);
      return failed.length > 0
        ? { ...first, ok: false, detail: `${failed.length} of ${runs.length} runs: ${failed.map((r) => r.detail).join(' / ')}` }
        : { ...first, detail: `${runs.length} of ${runs.length} runs, e.g. ${first.detail}` };
    });
  }

  markdown(previous: string | null): string {
    const m = this.machine;
    const lines = [
      '# promstream bench results',
      '',
      `Written by \`${this.command}\` on ${this.startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC; numbers below are from that run.`,
      '',
      '| machine | |',
      '| --- | --- |',
      `| CPU | ${m.cpus} × ${m.cpuModel} |`,
      `| memory | ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB |`,
      `| OS | ${m.os} |`,
      `| Node | ${m.node} |`,
      `| transports | uWebSockets.js ${m.uwsVersion ?? 'not loadable'}, ws ${m.wsVersion} |`,
      `| open files per process | ${m.openFiles} |`,
      `| pinning | ${m.pinning} |`,
      `| load average at start | ${m.loadAverage} |`,
      `| duration | ${m.durationS === null ? '–' : `${m.durationS.toFixed(0)} s`} |`,
      '',
    ];
    if (this.targets.length > 0) {
      lines.push('## Targets', '', '| target | measured | |', '| --- | --- | --- |');
      for (const t of this.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.met === null ? 'not measured' : t.met ? 'met' : '**missed**'} |`);
      lines.push('');
    }
    for (const t of this.tables) lines.push(...renderTable(t), '');
    lines.push('## Correctness under load', '', 'After each scenario the exposed totals are compared with what the generators sent.', '', '| scenario | check | result |', '| --- | --- | --- |');
    for (const c of this.mergedChecks()) lines.push(`| ${c.scenario} | ${c.what} | ${c.ok ? 'exact' : '**MISMATCH**'}: ${escapeCell(c.detail)} |`);
    lines.push('', NOTES_START, '', previousNotes(previous) ?? '_Notes on these figures go here; npm run bench keeps this block._', '', NOTES_END, '');
    return lines.join('\n');
  }

  /** The tables for the terminal. */
  text(): string {
    const out: string[] = [];
    if (this.targets.length > 0) {
      out.push('Targets', ...this.targets.map((t) => `  ${t.met === null ? '·' : t.met ? '✓' : '✗'} ${t.target}: ${t.measured}`), '');
    }
    for (const t of this.tables) out.push(...renderTable(t), '');
    out.push('Correctness', ...this.mergedChecks().map((c) => `  ${c.ok ? '✓' : '✗'} ${c.scenario}: ${c.what} — ${c.detail}`), '');
    return out.join('\n');
  }

  write(path: string): void {
    const previous = existsSync(path) ? readFileSync(path, 'utf8') : null;
    writeFileSync(path, this.markdown(previous));
  }
}

function renderTable(t: Table): string[] {
  const lines = [`## ${t.title}`, ''];
  if (t.intro !== undefined) lines.push(t.intro, '');
  lines.push(`| ${t.columns.join(' | ')} |`, `| ${t.columns.map(() => '---').join(' | ')} |`);
  for (const r of t.rows) lines.push(`| ${r.map(escapeCell).join(' | ')} |`);
  if (t.notes !== undefined && t.notes.length > 0) lines.push('', ...t.notes.map((n) => `- ${n}`));
  return lines;
}

const escapeCell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function previousNotes(text: string | null): string | null {
  if (text === null) return null;
  const a = text.indexOf(NOTES_START);
  const b = text.indexOf(NOTES_END);
  return a >= 0 && b > a ? text.slice(a + NOTES_START.length, b).trim() : null;
}

// Number formats shared by the scenario tables.
export const fmtInt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
export const fmtRate = (n: number): string => (!Number.isFinite(n) ? '–' : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e4 ? `${(n / 1e3).toFixed(0)} k` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0));
export const fmtMs = (n: number): string => (!Number.isFinite(n) ? '–' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
export const fmtPct = (n: number): string => (Number.isFinite(n) ? `${(n * 100).toFixed(0)} %` : '–');
export const fmtRatio = (n: number): string => (Number.isFinite(n) ? `${n.toFixed(n >= 10 ? 0 : 2)}×` : '–');
export const fmtKiB = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(2)} KiB` : '–');
/** "12 × 4004 no hello …, 3 × connect failed: …": counts of every tally given, summed per kind, in first-seen order. */
export function fmtTally(tallies: Iterable<Iterable<readonly [string, number]>>): string {
  const sum = new Map<string, number>();
  for (const tally of tallies) for (const [what, n] of tally) sum.set(what, (sum.get(what) ?? 0) + n);
  return [...sum].map(([what, n]) => `${n} × ${what}`).join(', ');
}
export const fmtMiB = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1024 ** 2).toFixed(0)} MiB` : '–');
/** `median (min–max)` of a summary, formatted with `f`. */
export const fmtSpread = (s: { median: number; min: number; max: number; runs: number }, f: (n: number) => string): string =>
  s.runs > 1 ? `${f(s.median)} (${f(s.min)}–${f(s.max)})` : f(s.median);
