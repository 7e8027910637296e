/**
 * What the generators send, derived from the catalogue a server hands out in its welcome (so the same
 * code benches our whitelist locally and an operator's whitelist on a running deployment), and what
 * the server must then expose. A "batch" is the 7 samples of one flush: 5 counter increments, one
 * histogram observation and one gauge value. Batches vary over VARIANTS so that different series are
 * touched, as real clients would.
 */
import type { CatalogMetric } from '../../protocol/index.js';

export const VARIANTS = 64;
export const SAMPLES_PER_BATCH = 7;

export interface PlannedSample {
  readonly metricIndex: number;
  readonly metric: CatalogMetric;
  /** One allowed-value index per label, in catalogue order. */
  readonly labelIndexes: readonly number[];
  /** counter: increment; gauge: value; histogram: the observation. */
  readonly value: number;
  /** histogram: index of the bucket the observation falls in (bucket count = +Inf). */
  readonly bucket: number;
}

/** `VARIANTS` batches of samples, each `SAMPLES_PER_BATCH` long. */
export function planBatches(metrics: readonly CatalogMetric[]): PlannedSample[][] {
  const byType = (t: CatalogMetric['type']): number[] => metrics.flatMap((m, i) => (m.type === t ? [i] : []));
  const counters = byType('counter');
  const histograms = byType('histogram');
  const gauges = byType('gauge');
  const all = metrics.map((_, i) => i);
  if (all.length === 0) throw new Error('the catalogue has no metrics to send');
  // 5 counters, 1 histogram, 1 gauge; a catalogue without one kind uses what it has.
  const pick = (pool: number[], k: number): number => (pool.length > 0 ? pool[k % pool.length]! : (counters[k % Math.max(1, counters.length)] ?? all[k % all.length]!));
  const slots = [0, 1, 2, 3, 4].map((k) => pick(counters, k)).concat(pick(histograms, 0), pick(gauges, 0));

  const batches: PlannedSample[][] = [];
  for (let j = 0; j < VARIANTS; j++) {
    batches.push(slots.map((metricIndex, k) => {
      const metric = metrics[metricIndex]!;
      // Gauges always use their first series so that each session holds exactly one part of it.
      const labelIndexes = metric.type === 'gauge' ? metric.labelValues.map(() => 0) : digits(j * 7 + k * 13, metric.labelValues.map((v) => v.length));
      if (metric.type === 'histogram') {
        const bucket = j % (metric.buckets.length + 1);
        const last = metric.buckets.at(-1) ?? 1;
        // An observation equal to a bound falls in that bucket (le is inclusive).
        return { metricIndex, metric, labelIndexes, value: bucket < metric.buckets.length ? metric.buckets[bucket]! : last * 2, bucket };
      }
      return { metricIndex, metric, labelIndexes, value: metric.type === 'gauge' ? 1 : 1 + (j % 3), bucket: 0 };
    }));
  }
  return batches;
}

/** `n` written in the mixed radix `radices` (first most significant), wrapping around. */
export function digits(n: number, radices: readonly number[]): number[] {
  const out = new Array<number>(radices.length);
  for (let i = radices.length - 1; i >= 0; i--) {
    const r = radices[i]!;
    out[i] = n % r;
    n = Math.floor(n / r);
  }
  return out;
}

/** The sample as it goes on the wire (PROTOCOL.md, `sample`). */
export function wireSample(s: PlannedSample): unknown[] {
  if (s.metric.type !== 'histogram') return [s.metricIndex, ...s.labelIndexes, s.value];
  const counts = new Array<number>(s.metric.buckets.length + 1).fill(0);
  counts[s.bucket] = 1;
  return [s.metricIndex, ...s.labelIndexes, s.value, ...counts];
}

/** Label values by name, for the client API (`increment(name, labels, value)`). */
export function labelsOf(s: PlannedSample): Record<string, string> {
  const labels: Record<string, string> = {};
  s.metric.labelNames.forEach((name, i) => (labels[name] = s.metric.labelValues[i]![s.labelIndexes[i]!]!));
  return labels;
}

interface SeriesTotal {
  readonly sample: PlannedSample;
  value: number;
  sum: number;
  readonly counts: number[];
}

/**
 * What the server must expose after the generators sent some batches: counter totals, histogram
 * buckets/sum/count, and each gauge as the number of connected sessions that set it.
 */
export class ExpectedTotals {
  private readonly series = new Map<string, SeriesTotal>();
  private readonly gaugeSeries = new Map<string, PlannedSample>();

  /** Adds `times` copies of a batch. */
  addBatch(batch: readonly PlannedSample[], times = 1): void {
    if (times === 0) return;
    for (const s of batch) {
      const key = seriesKey(s.metric, s.labelIndexes);
      if (s.metric.type === 'gauge') {
        this.gaugeSeries.set(key, s);
        continue;
      }
      let t = this.series.get(key);
      if (t === undefined) this.series.set(key, (t = { sample: s, value: 0, sum: 0, counts: new Array<number>(s.metric.buckets.length + 1).fill(0) }));
      if (s.metric.type === 'counter') t.value += s.value * times;
      else {
        t.sum += s.value * times;
        t.counts[s.bucket]! += times;
      }
    }
  }

  /** Adds `frames` batches cycling through the variants from variant 0, as the raw generator sends them. */
  addCycled(batches: readonly (readonly PlannedSample[])[], frames: number): void {
    const full = Math.floor(frames / batches.length);
    const rest = frames % batches.length;
    batches.forEach((b, j) => this.addBatch(b, full + (j < rest ? 1 : 0)));
  }

  merge(other: ExpectedTotals): void {
    for (const t of other.series.values()) {
      const key = seriesKey(t.sample.metric, t.sample.labelIndexes);
      const mine = this.series.get(key);
      if (mine === undefined) {
        this.series.set(key, { sample: t.sample, value: t.value, sum: t.sum, counts: [...t.counts] });
        continue;
      }
      mine.value += t.value;
      mine.sum += t.sum;
      t.counts.forEach((c, i) => (mine.counts[i]! += c));
    }
    for (const [k, s] of other.gaugeSeries) this.gaugeSeries.set(k, s);
  }

  /** Exposition lines (`name{labels}` → value) the server must show; gauges at `gaugeHolders` (null: left out). */
  exposition(gaugeHolders: number | null): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, t] of this.series) {
      const m = t.sample.metric;
      if (m.type === 'counter') {
        out.set(key, t.value);
        continue;
      }
      const labels = labelPairs(m, t.sample.labelIndexes);
      const bounds = [...m.buckets.map(String), '+Inf'];
      let cumulative = 0;
      bounds.forEach((le, b) => {
        cumulative += t.counts[b]!;
        out.set(`${m.name}_bucket{${[...labels, `le="${le}"`].join(',')}}`, cumulative);
      });
      const set = labels.length === 0 ? '' : `{${labels.join(',')}}`;
      out.set(`${m.name}_sum${set}`, t.sum);
      out.set(`${m.name}_count${set}`, cumulative);
    }
    if (gaugeHolders !== null) for (const key of this.gaugeSeries.keys()) out.set(key, gaugeHolders);
    return out;
  }

  toJSON(): unknown {
    return { series: [...this.series.values()].map((t) => ({ s: t.sample, value: t.value, sum: t.sum, counts: t.counts })), gauges: [...this.gaugeSeries.values()] };
  }

  static fromJSON(json: unknown): ExpectedTotals {
    const j = json as { series: { s: PlannedSample; value: number; sum: number; counts: number[] }[]; gauges: PlannedSample[] };
    const e = new ExpectedTotals();
    for (const t of j.series) e.series.set(seriesKey(t.s.metric, t.s.labelIndexes), { sample: t.s, value: t.value, sum: t.sum, counts: t.counts });
    for (const s of j.gauges) e.gaugeSeries.set(seriesKey(s.metric, s.labelIndexes), s);
    return e;
  }
}

function labelPairs(m: CatalogMetric, labelIndexes: readonly number[]): string[] {
  return m.labelNames.map((name, i) => `${name}="${escapeLabelValue(m.labelValues[i]![labelIndexes[i]!]!)}"`);
}

function seriesKey(m: CatalogMetric, labelIndexes: readonly number[]): string {
  const pairs = labelPairs(m, labelIndexes);
  return pairs.length === 0 ? m.name : `${m.name}{${pairs.join(',')}}`;
}

const escapeLabelValue = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/**
 * Differences between what the server exposes and what it must (after minus before, so a deployment
 * with other traffic can be checked too). Counts must match exactly; float sums to 1e-9 relative.
 * Label order does not matter (prom-client puts `le` first, promstream last).
 */
export function compareTotals(expected: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>, before: ReadonlyMap<string, number> = new Map()): string[] {
  const canonical = (m: ReadonlyMap<string, number>): Map<string, number> => new Map([...m].map(([k, v]) => [canonicalSeries(k), v]));
  const a = canonical(after);
  const b = canonical(before);
  const problems: string[] = [];
  for (const [key, want] of expected) {
    const k = canonicalSeries(key);
    const got = (a.get(k) ?? NaN) - (b.get(k) ?? 0);
    const exact = !/_sum(\{|$)/.test(key);
    const ok = exact ? got === want : Math.abs(got - want) <= 1e-9 * Math.max(1, Math.abs(want));
    if (!ok) problems.push(`${key}: exposed ${got}, sent ${want}`);
  }
  return problems;
}

/** `name{b="2",a="1"}` → `name{a="1",b="2"}`. */
function canonicalSeries(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const pairs = [...key.slice(open + 1, -1).matchAll(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g)].map((m) => m[0]).sort();
  return `${key.slice(0, open)}{${pairs.join(',')}}`;
}
