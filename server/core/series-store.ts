import { RejectReason } from '../../protocol/index.js';
import type { CatalogEntry, ServerCatalog } from './catalog.js';
import { SHARED_PAD_BYTES } from './shared-memory.js';

/** A session's own gauge values: global gauge series key → value. Its part of every gauge total. */
export type GaugeParts = Map<number, number>;

interface MetricState {
  readonly entry: CatalogEntry;
  /** Where `values` and `sums` start in the store's one array of numbers (for the frame journal). */
  readonly valuesAt: number;
  readonly sumsAt: number;
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
 * How a catalogue's series lie in one block of memory: every metric's values and sums in one array of
 * numbers, the gauge holder counts after it, and (for a worker) the frame journal. With workers, each
 * has such a region of its own in shared memory, which the main thread sums at scrape time and keeps
 * when the worker dies.
 */
export class SeriesLayout {
  readonly numbers: number;
  readonly holders: number;
  /** Numbers of the journal: a header of 3 (seq, slot, entries), then (index, old value) pairs. */
  readonly journal: number;

  constructor(
    readonly catalog: ServerCatalog,
    /** Bounds the writes of one frame: a sample takes at least one byte per number it writes. */
    maxFrameBytes: number,
  ) {
    let numbers = 0;
    let holders = 0;
    for (const e of catalog.entries) {
      numbers += e.seriesCount * (e.type === 'histogram' ? e.bucketCount + 1 : 1);
      if (e.type === 'gauge') holders += e.seriesCount;
    }
    this.numbers = numbers;
    this.holders = holders;
    this.journal = 3 + 2 * maxFrameBytes;
  }

  /** Bytes of a worker's region: numbers, journal and holders, with SHARED_PAD_BYTES free before and after them. */
  get bytes(): number {
    return SHARED_PAD_BYTES + (this.numbers + this.journal) * 8 + this.holders * 4 + SHARED_PAD_BYTES;
  }
}

/** The frame being applied, so that the main thread can take back a frame its worker died in. */
const J_SEQ = 0;
const J_SLOT = 1;
const J_ENTRIES = 2;

/**
 * The aggregated value of every whitelisted series, in typed arrays indexed by series number (the
 * mixed-radix number of its label value indexes). Applying a sample is a handful of array writes.
 */
export class SeriesStore {
  readonly metrics: readonly MetricState[];
  /** Every metric's values and sums, one after the other. */
  readonly numbers: Float64Array;
  /** Bucket counts of the histogram sample being checked, so a bad one writes nothing. */
  private scratch = new Float64Array(16);
  /** Old values of what the current frame wrote (workers only; null in one event loop). */
  private readonly journal: Float64Array | null;

  /**
   * `region`: the shared memory of SeriesLayout.bytes this store lives in (a worker's); with it the
   * store keeps a journal of the frame being applied. Without, plain memory of its own.
   */
  constructor(
    readonly catalog: ServerCatalog,
    private readonly maxSampleValue: number,
    region: { readonly layout: SeriesLayout; readonly buffer: SharedArrayBuffer } | null = null,
  ) {
    const layout = region?.layout ?? new SeriesLayout(catalog, 0);
    const buffer = region?.buffer ?? new ArrayBuffer(layout.numbers * 8 + layout.holders * 4);
    const start = region === null ? 0 : SHARED_PAD_BYTES;
    this.numbers = new Float64Array(buffer, start, layout.numbers);
    this.journal = region === null ? null : new Float64Array(buffer, start + layout.numbers * 8, layout.journal);
    const holders = new Uint32Array(buffer, start + (layout.numbers + (region === null ? 0 : layout.journal)) * 8, layout.holders);
    let at = 0;
    let holdersAt = 0;
    this.metrics = catalog.entries.map((entry) => {
      const isHistogram = entry.type === 'histogram';
      const isGauge = entry.type === 'gauge';
      const n = entry.seriesCount * (isHistogram ? entry.bucketCount : 1);
      const valuesAt = at;
      at += n;
      const sumsAt = at;
      if (isHistogram) at += entry.seriesCount;
      const state: MetricState = {
        entry, valuesAt, sumsAt,
        values: this.numbers.subarray(valuesAt, valuesAt + n),
        sums: isHistogram ? this.numbers.subarray(sumsAt, sumsAt + entry.seriesCount) : empty,
        holders: isGauge ? holders.subarray(holdersAt, (holdersAt += entry.seriesCount)) : new Uint32Array(0),
      };
      return state;
    });
  }

  /** A frame of session `slot` with `seq` starts: what it writes is journaled until frameDone(). */
  frameStart(slot: number, seq: number): void {
    const j = this.journal;
    if (j === null) return;
    j[J_ENTRIES] = 0;
    j[J_SLOT] = slot;
    j[J_SEQ] = seq;
  }

  /** The frame is in, its seq recorded in the session's slot: the journal is cleared. */
  frameDone(): void {
    if (this.journal !== null) this.journal[J_SEQ] = 0;
  }

  private note(index: number): void {
    const j = this.journal!;
    const n = j[J_ENTRIES]!;
    j[3 + 2 * n] = index;
    j[4 + 2 * n] = this.numbers[index]!;
    j[J_ENTRIES] = n + 1;
  }

  /**
   * After its worker died (no writer left): a frame cut halfway is taken back, unless the session's
   * slot already says it was applied (`appliedSeq(slot)` ≥ its seq). Returns what was done.
   */
  settleCutFrame(appliedSeq: (slot: number) => number): 'none' | 'kept' | 'undone' {
    const j = this.journal;
    if (j === null || j[J_SEQ] === 0) return 'none';
    let verdict: 'kept' | 'undone' = 'kept';
    if (appliedSeq(j[J_SLOT]!) < j[J_SEQ]!) {
      for (let n = j[J_ENTRIES]! - 1; n >= 0; n--) this.numbers[j[3 + 2 * n]!] = j[4 + 2 * n]!;
      verdict = 'undone';
    }
    j[J_SEQ] = 0;
    return verdict;
  }

  /** Every gauge at 0 and held by nobody (the sessions of this region's worker are gone). */
  clearGauges(): void {
    for (const m of this.metrics) {
      if (m.entry.type !== 'gauge') continue;
      m.values.fill(0);
      m.holders.fill(0);
    }
  }

  /** This store becomes the sum of `stores` (the same catalogue): what a scrape renders with workers. */
  loadSum(stores: readonly SeriesStore[]): void {
    const out = this.numbers;
    out.fill(0);
    for (const s of stores) {
      const src = s.numbers;
      for (let i = 0; i < out.length; i++) out[i]! += src[i]!;
    }
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
        if (this.journal !== null) this.note(m.valuesAt + series);
        m.values[series]! += inc;
        return null;
      }
      if (!isNumber(inc)) return RejectReason.NOT_A_NUMBER;
      const bad = checkNumber(inc, max);
      if (bad !== null) return bad;
      if (inc < 0) return RejectReason.NEGATIVE;
      if (this.journal !== null) this.note(m.valuesAt + series);
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
    if (this.journal !== null) {
      for (let b = 0; b < e.bucketCount; b++) this.note(m.valuesAt + base + b);
      this.note(m.sumsAt + series);
    }
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
