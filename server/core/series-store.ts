import { RejectReason } from '../../protocol/index.js';
import type { CatalogEntry, ServerCatalog } from './catalog.js';

/** A session's own gauge values: global gauge series key → value. Its part of every gauge total. */
export type GaugeParts = Map<number, number>;

interface MetricState {
  readonly entry: CatalogEntry;
  /** counter: totals; gauge: sum over live sessions; histogram: per-bucket counts (seriesCount × bucketCount). */
  readonly values: Float64Array;
  /** histogram only: sum of observations per series. */
  readonly sums: Float64Array;
  /** gauge only: how many live sessions hold a value for the series (to snap the float total back to 0). */
  readonly holders: Uint32Array;
}

const empty = new Float64Array(0);
/** A gauge series key is metricIndex × 2^32 + series number: one number, decodable without a search. */
const GAUGE_KEY_STRIDE = 2 ** 32;
const isNumber = (v: unknown): v is number => typeof v === 'number';

/**
 * The aggregated value of every whitelisted series, in typed arrays indexed by series number (the
 * mixed-radix number of its label value indexes). Applying a sample is a handful of array writes.
 */
export class SeriesStore {
  readonly metrics: readonly MetricState[];
  /** Bucket counts of the histogram sample being checked, so a bad one writes nothing. */
  private scratch = new Float64Array(16);

  constructor(
    readonly catalog: ServerCatalog,
    private readonly maxSampleValue: number,
  ) {
    this.metrics = catalog.entries.map((entry) => {
      const isHistogram = entry.type === 'histogram';
      const isGauge = entry.type === 'gauge';
      const state: MetricState = {
        entry,
        values: new Float64Array(entry.seriesCount * (isHistogram ? entry.bucketCount : 1)),
        sums: isHistogram ? new Float64Array(entry.seriesCount) : empty,
        holders: isGauge ? new Uint32Array(entry.seriesCount) : new Uint32Array(0),
      };
      return state;
    });
  }

  /**
   * Checks one untrusted sample and applies it. Returns null when applied, else why it was dropped;
   * nothing is written unless every part of the sample is valid.
   */
  apply(sample: unknown, gauges: GaugeParts): RejectReason | null {
    if (!Array.isArray(sample)) return RejectReason.NOT_ARRAY;
    const metricIndex: unknown = sample[0];
    // Indexing with anything but a whole number in range (0.5, -1, NaN) finds nothing: no separate check.
    const m = typeof metricIndex === 'number' ? this.metrics[metricIndex] : undefined;
    if (m === undefined) return RejectReason.UNKNOWN_METRIC;
    const e = m.entry;
    if (sample.length !== 1 + e.labelCount + e.valueCount) return e.type === 'histogram' ? RejectReason.BAD_BUCKET_COUNT : RejectReason.WRONG_LENGTH;

    let series = 0;
    for (let i = 0; i < e.labelCount; i++) {
      let v: unknown = sample[1 + i];
      const radix = e.radices[i]!;
      // One past the last: a value the client saw outside the list, counted under the fallback if any.
      if (v === radix && e.fallbacks[i]! >= 0) v = e.fallbacks[i];
      // v >>> 0 === v: a whole number in 0 … 2^32 - 1 (radixes are smaller).
      if (typeof v !== 'number' || v >>> 0 !== v || v >= radix) return RejectReason.LABEL_NOT_ALLOWED;
      series = series * radix + v;
    }
    const first = 1 + e.labelCount;
    const max = this.maxSampleValue;

    // Each kind first takes the one comparison a valid value passes (NaN fails every comparison); only a
    // value that fails it is checked step by step for the reason.
    if (e.type === 'counter') {
      const inc: unknown = sample[first];
      if (typeof inc === 'number' && inc >= 0 && inc <= max) {
        m.values[series]! += inc;
        return null;
      }
      if (!isNumber(inc)) return RejectReason.NOT_A_NUMBER;
      const bad = checkNumber(inc, max);
      if (bad !== null) return bad;
      if (inc < 0) return RejectReason.NEGATIVE;
      m.values[series]! += inc;
      return null;
    }
    if (e.type === 'gauge') {
      const value: unknown = sample[first];
      if (!isNumber(value)) return RejectReason.NOT_A_NUMBER;
      const bad = value >= -max && value <= max ? null : checkNumber(value, max);
      if (bad !== null) return bad;
      const key = e.index * GAUGE_KEY_STRIDE + series;
      const old = gauges.get(key);
      if (old === undefined) m.holders[series]!++;
      m.values[series]! += value - (old ?? 0);
      gauges.set(key, value);
      return null;
    }
    // histogram: [sum, c_0 … c_B]; validate everything before writing anything
    let count = 0;
    const counts = this.scratch.length >= e.bucketCount ? this.scratch : (this.scratch = new Float64Array(e.bucketCount));
    for (let b = 0; b < e.bucketCount; b++) {
      const c: unknown = sample[first + 1 + b];
      if (!(typeof c === 'number' && c >= 0 && c <= max && Number.isInteger(c))) return bucketCountReason(c);
      count += c;
      counts[b] = c;
    }
    // Each observation is at most maxSampleValue in magnitude, so the sum is bounded by count of them
    // (no observations: the sum must be 0, or a client could grow _sum without _count).
    const sum: unknown = sample[first];
    if (!isNumber(sum)) return RejectReason.NOT_A_NUMBER;
    const badSum = checkNumber(sum, max * count);
    if (badSum !== null) return badSum;
    const base = series * e.bucketCount;
    for (let b = 0; b < e.bucketCount; b++) m.values[base + b]! += counts[b]!;
    m.sums[series]! += sum;
    return null;
  }

  /**
   * Copies the counter and histogram totals of another store (the whitelist before a reload) into this
   * one, series by series, matched by metric name, type, buckets and label values. Series the new
   * whitelist no longer allows are left behind; gauges are not copied (sessions send them again).
   */
  carryOver(old: SeriesStore): number {
    let copied = 0;
    const byName = new Map(old.metrics.map((m) => [m.entry.spec.name, m]));
    for (const m of this.metrics) {
      const o = byName.get(m.entry.spec.name);
      if (o === undefined || o.entry.type !== m.entry.type || m.entry.type === 'gauge') continue;
      if (m.entry.type === 'histogram' && o.entry.spec.buckets.join() !== m.entry.spec.buckets.join()) continue;
      const newLabels = m.entry.spec.labels;
      const oldLabels = o.entry.spec.labels;
      if (newLabels.map((l) => l.name).join() !== oldLabels.map((l) => l.name).join()) continue;
      // old value index → new value index, per label (-1: no longer allowed)
      const remap = oldLabels.map((l, i) => l.allowedValues.map((v) => newLabels[i]!.allowedValues.indexOf(v)));
      const width = m.entry.type === 'histogram' ? m.entry.bucketCount : 1;
      for (let s = 0; s < o.entry.seriesCount; s++) {
        let rest = s;
        let target = 0;
        let multiplier = 1;
        for (let i = oldLabels.length - 1; i >= 0 && target >= 0; i--) {
          const radix = o.entry.radices[i]!;
          const mapped = remap[i]![rest % radix]!;
          rest = Math.floor(rest / radix);
          target = mapped < 0 ? -1 : target + mapped * multiplier;
          multiplier *= m.entry.radices[i]!;
        }
        if (target < 0) continue;
        for (let b = 0; b < width; b++) m.values[target * width + b] = o.values[s * width + b]!;
        if (m.entry.type === 'histogram') m.sums[target] = o.sums[s]!;
        copied++;
      }
    }
    return copied;
  }

  /** Takes a session's gauge parts out of the totals (its connection went away). */
  removeGaugeParts(gauges: GaugeParts): void {
    for (const [key, value] of gauges) {
      const m = this.metrics[Math.floor(key / GAUGE_KEY_STRIDE)]!;
      const series = key % GAUGE_KEY_STRIDE;
      // Float add/subtract may leave dust; when the last holder leaves the total is exactly 0.
      if (--m.holders[series]! === 0) m.values[series] = 0;
      else m.values[series]! -= value;
    }
    gauges.clear();
  }

}

/** Why a histogram bucket count is refused (it failed the one-comparison check), in the order the checks are documented. */
function bucketCountReason(c: unknown): RejectReason {
  if (!isNumber(c)) return RejectReason.NOT_A_NUMBER;
  if (!Number.isFinite(c)) return RejectReason.NON_FINITE;
  if (c < 0) return RejectReason.NEGATIVE;
  if (!Number.isInteger(c)) return RejectReason.NOT_INTEGER;
  return RejectReason.TOO_LARGE;
}

function checkNumber(v: number, max: number): RejectReason | null {
  if (!Number.isFinite(v)) return RejectReason.NON_FINITE;
  if (Math.abs(v) > max) return RejectReason.TOO_LARGE;
  return null;
}
