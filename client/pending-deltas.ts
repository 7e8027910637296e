import { RejectReason, type Catalog, type MetricType } from '../protocol/index.js';
import type { Labels } from './types.js';

/** One series' delta, kept by name so it can be encoded against whatever catalogue is current. */
export interface Entry {
  readonly name: string;
  readonly labels: Labels;
  readonly type: MetricType;
  /** Recorded by a built-in collector before the catalogue was known: its labels are resolved loosely (KnownCatalog.resolve). */
  readonly loose: boolean;
  /** counter: increment; gauge: latest value. */
  value: number;
  /** histogram: sum of observations. */
  sum: number;
  /** histogram: per-bucket counts for `buckets` (+Inf last), or null before the catalogue is known. */
  counts: number[] | null;
  /** histogram: the bucket bounds `counts` was made with. */
  buckets: readonly number[] | null;
  /** histogram before the catalogue: raw observations, bucketed on welcome. */
  raw: number[] | null;
}

interface KnownMetric {
  readonly index: number;
  readonly type: MetricType;
  readonly labelNames: readonly string[];
  readonly valueIndex: readonly ReadonlyMap<string, number>[];
  readonly buckets: readonly number[];
}

/**
 * A label value outside the catalogue's list, once resolved: sent as the index one past the last ("not in
 * the list", PROTOCOL.md), which the server counts under the label's fallback or rejects. Every value
 * outside the list becomes this one, so they aggregate into one series: the page cannot grow the set.
 */
export const NOT_LISTED = '\u0000';

export class KnownCatalog {
  readonly byName = new Map<string, KnownMetric>();
  constructor(readonly catalog: Catalog) {
    catalog.metrics.forEach((m, index) => {
      this.byName.set(m.name, {
        index, type: m.type, labelNames: m.labelNames, buckets: m.buckets,
        valueIndex: m.labelValues.map((values) => new Map(values.map((v, i) => [v, i]))),
      });
    });
  }

  /**
   * The series' labels as the catalogue has them: exactly the metric's label names, a value outside the
   * list as NOT_LISTED. Strict (the page's own calls): a label missing or extra drops the sample. Loose
   * (the built-in collectors): labels the whitelist does not give the metric are left out, and one it
   * gives but the collector does not know (no route yet) is NOT_LISTED.
   */
  resolve(name: string, type: MetricType, labels: Labels, loose: boolean): Labels | RejectReason {
    const m = this.byName.get(name);
    if (m === undefined || m.type !== type) return RejectReason.UNKNOWN_METRIC;
    if (!loose && Object.keys(labels).length !== m.labelNames.length) return RejectReason.LABEL_NOT_ALLOWED;
    const out: Record<string, string> = {};
    for (let i = 0; i < m.labelNames.length; i++) {
      const n = m.labelNames[i]!;
      const v = Object.prototype.hasOwnProperty.call(labels, n) ? labels[n] : undefined;
      if (v === undefined && !loose) return RejectReason.LABEL_NOT_ALLOWED;
      out[n] = v !== undefined && m.valueIndex[i]!.has(v) ? v : NOT_LISTED;
    }
    return out;
  }

  /** The sample's [metricIndex, ...labelIndexes] prefix, or why the series is not allowed. */
  locate(name: string, type: MetricType, labels: Labels, loose = false): number[] | RejectReason {
    const resolved = this.resolve(name, type, labels, loose);
    if (typeof resolved === 'string') return resolved;
    const m = this.byName.get(name)!;
    return [m.index, ...m.labelNames.map((n, i) => m.valueIndex[i]!.get(resolved[n]!) ?? m.valueIndex[i]!.size)];
  }
}

/** Limits of what the client holds between flushes, so a page recording in a loop stays bounded. */
export const CLIENT_LIMITS = Object.freeze({
  /** Distinct series waiting to be sent. */
  maxPendingSeries: 10_000,
  /** Observations kept raw before the welcome tells the buckets. */
  maxRawObservations: 10_000,
});

// The type is part of the key: before the catalogue a name used as two types must stay two series, or
// a gauge set would overwrite counter increments (and be resent as an increment after every reconnect).
const keyOf = (type: MetricType, name: string, labels: Labels, loose = false): string => {
  const names = Object.keys(labels).sort();
  let key = `${type}${loose ? '~' : ''}\u0000${name}`;
  for (const n of names) key += `\u0000${n}\u0001${labels[n]}`;
  return key;
};

function bucketIndex(buckets: readonly number[], value: number): number {
  let i = 0;
  while (i < buckets.length && value > buckets[i]!) i++;
  return i; // buckets.length is +Inf
}

/**
 * Deltas recorded since the last frame, aggregated per series: memory grows with distinct series,
 * not with calls. Also keeps every gauge's latest value, resent after each reconnect.
 */
export class PendingDeltas {
  entries = new Map<string, Entry>();
  drops = new Map<string, number>();
  /** Latest value of every gauge ever set, by key. */
  readonly gauges = new Map<string, Entry>();
  #rawCount = 0;

  get isEmpty(): boolean {
    return this.entries.size === 0 && this.drops.size === 0;
  }

  drop(reason: RejectReason, n = 1): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + n);
  }

  /** `loose`: a built-in collector's sample, whose labels are resolved loosely (KnownCatalog.resolve). */
  record(type: MetricType, name: string, labels: Labels, value: number, catalog: KnownCatalog | null, maxValue: number, loose = false): void {
    if (typeof value !== 'number') return this.drop(RejectReason.NOT_A_NUMBER);
    if (!Number.isFinite(value)) return this.drop(RejectReason.NON_FINITE);
    if (Math.abs(value) > maxValue) return this.drop(RejectReason.TOO_LARGE);
    if (type === 'counter' && value < 0) return this.drop(RejectReason.NEGATIVE);
    let buckets: readonly number[] | null = null;
    if (catalog !== null) {
      const resolved = catalog.resolve(name, type, labels, loose);
      if (typeof resolved === 'string') return this.drop(resolved);
      // Kept as the catalogue names the series: values outside the list all go into one entry.
      labels = resolved;
      loose = false;
      buckets = catalog.byName.get(name)!.buckets;
    }
    const key = keyOf(type, name, labels, loose);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      if (this.entries.size >= CLIENT_LIMITS.maxPendingSeries) return this.drop(RejectReason.CLIENT_BUFFER_FULL);
      entry = { name, labels: { ...labels }, type, loose, value: 0, sum: 0, counts: null, buckets: null, raw: null };
      this.entries.set(key, entry);
    }
    if (type === 'counter') entry.value += value;
    else if (type === 'gauge') {
      entry.value = value;
      this.gauges.set(key, { ...entry });
    } else {
      if (buckets !== null && (entry.counts === null || sameBuckets(entry.buckets, buckets))) {
        entry.sum += value;
        entry.buckets = buckets;
        entry.counts ??= new Array<number>(buckets.length + 1).fill(0);
        entry.counts[bucketIndex(buckets, value)]!++;
      } else {
        if (this.#rawCount >= CLIENT_LIMITS.maxRawObservations) {
          // A series created just for this observation would go out as a sample without buckets.
          if (entry.counts === null && entry.raw === null) this.entries.delete(key);
          return this.drop(RejectReason.CLIENT_BUFFER_FULL);
        }
        entry.sum += value;
        (entry.raw ??= []).push(value);
        this.#rawCount++;
      }
    }
  }

  /** Drops a taken entry for good, counted under `reason`; a gauge is also forgotten (not resent after reconnects). */
  discard(entry: Entry, reason: RejectReason): void {
    this.drop(reason);
    if (entry.type === 'gauge') this.gauges.delete(keyOf(entry.type, entry.name, entry.labels, entry.loose));
  }

  /** Puts entries taken for a frame that was never applied back, under what was recorded since. */
  restore(entries: Iterable<Entry>, drops: ReadonlyMap<string, number>): void {
    for (const [reason, n] of drops) this.drops.set(reason, (this.drops.get(reason) ?? 0) + n);
    for (const old of entries) {
      const key = keyOf(old.type, old.name, old.labels, old.loose);
      const cur = this.entries.get(key);
      if (cur === undefined) {
        this.entries.set(key, old);
        continue;
      }
      if (old.type === 'counter') cur.value += old.value;
      else if (old.type === 'histogram') mergeHistogram(cur, old);
      // gauge: the newer value (cur) wins
    }
  }

  /**
   * Takes up to maxSamples entries (all gauges too when `withAllGauges`), encoded against the catalogue.
   * Entries the catalogue does not allow are dropped and counted here.
   */
  take(catalog: KnownCatalog, maxSamples: number, withAllGauges: boolean): { entries: Entry[]; samples: unknown[]; drops: Map<string, number> } {
    if (withAllGauges) {
      for (const [key, g] of this.gauges) if (!this.entries.has(key)) this.entries.set(key, { ...g });
    }
    const entries: Entry[] = [];
    const samples: unknown[] = [];
    for (const [key, entry] of this.entries) {
      if (samples.length >= maxSamples) break;
      this.entries.delete(key);
      const sample = this.#encode(entry, catalog);
      if (typeof sample === 'string') {
        this.drop(sample);
        if (entry.type === 'gauge') this.gauges.delete(key);
        continue;
      }
      entries.push(entry);
      samples.push(sample);
    }
    const drops = this.drops;
    this.drops = new Map();
    return { entries, samples, drops };
  }

  #encode(entry: Entry, catalog: KnownCatalog): unknown[] | RejectReason {
    const prefix = catalog.locate(entry.name, entry.type, entry.labels, entry.loose);
    if (typeof prefix === 'string') return prefix;
    if (entry.type !== 'histogram') return [...prefix, entry.value];
    const buckets = catalog.byName.get(entry.name)!.buckets;
    if (entry.counts !== null && !sameBuckets(entry.buckets, buckets)) return RejectReason.STALE_CATALOG;
    if (entry.raw !== null) {
      entry.counts ??= new Array<number>(buckets.length + 1).fill(0);
      entry.buckets = buckets;
      for (const v of entry.raw) entry.counts[bucketIndex(buckets, v)]!++;
      this.#rawCount -= entry.raw.length;
      entry.raw = null;
    }
    return [...prefix, entry.sum, ...(entry.counts ?? [])];
  }
}

function sameBuckets(a: readonly number[] | null, b: readonly number[]): boolean {
  return a !== null && a.length === b.length && a.every((v, i) => v === b[i]);
}

function mergeHistogram(into: Entry, from: Entry): void {
  into.sum += from.sum;
  if (from.raw !== null) (into.raw ??= []).push(...from.raw);
  if (from.counts === null) return;
  if (into.counts === null) {
    into.counts = [...from.counts];
    into.buckets = from.buckets;
  } else if (sameBuckets(into.buckets, from.buckets ?? [])) {
    for (let i = 0; i < into.counts.length; i++) into.counts[i]! += from.counts[i]!;
  }
}
