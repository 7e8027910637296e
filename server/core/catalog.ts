import { createHash } from 'node:crypto';
import { encodeCatalog, type Catalog, type MetricType } from '../../protocol/index.js';
import type { LabelSpec, MetricSpec, Whitelist } from '../config/types.js';

/** One whitelisted metric with the numbers the hot path needs precomputed. */
export interface CatalogEntry {
  readonly index: number;
  readonly spec: MetricSpec;
  readonly type: MetricType;
  readonly labelCount: number;
  /** allowedValues.length per label: the radices of the series index. */
  readonly radices: Uint32Array;
  /**
   * Per label, the index of its fallback value, or -1: a sample whose label index equals the radix (a
   * value the client saw outside the list) counts under the fallback, or is rejected without one.
   */
  readonly fallbacks: Int32Array;
  /** Product of the radices: how many label combinations (series) the metric has. */
  readonly seriesCount: number;
  /** Per-series values a sample carries after its label indexes: 1, or 1 + buckets + 1 for histograms. */
  readonly valueCount: number;
  /** Buckets including +Inf (histograms), else 0. */
  readonly bucketCount: number;
}

/**
 * The whitelist as the wire sees it: metrics and label values by index. Its version is a hash of its
 * content, so the same whitelist gives the same version across restarts and replicas, and a changed one
 * can never be mixed up with the old ids.
 */
export class ServerCatalog {
  readonly entries: readonly CatalogEntry[];
  readonly wire: Catalog;
  /** The catalogue as it goes into every welcome, built once. */
  readonly encodedWire: unknown[];
  readonly sessionLabels: readonly LabelSpec[];

  constructor(whitelist: Whitelist) {
    this.sessionLabels = whitelist.sessionLabels;
    this.entries = whitelist.metrics.map((spec, index) => {
      const radices = Uint32Array.from(spec.labels, (l) => l.allowedValues.length);
      const bucketCount = spec.type === 'histogram' ? spec.buckets.length + 1 : 0;
      const fallbacks = Int32Array.from(spec.labels, (l) => (l.fallback === undefined ? -1 : l.allowedValues.indexOf(l.fallback)));
      return {
        index, spec, type: spec.type, labelCount: spec.labels.length, radices, fallbacks,
        seriesCount: radices.reduce((a, b) => a * b, 1),
        valueCount: spec.type === 'histogram' ? 1 + bucketCount : 1,
        bucketCount,
      };
    });
    const metrics = whitelist.metrics.map((m) => ({
      name: m.name, type: m.type, labelNames: m.labels.map((l) => l.name),
      labelValues: m.labels.map((l) => l.allowedValues), buckets: m.type === 'histogram' ? m.buckets : [],
    }));
    const encoded = encodeCatalog({ version: 0, metrics });
    const version = createHash('sha256').update(JSON.stringify(encoded)).digest().readUInt32BE(0);
    this.wire = { version, metrics };
    this.encodedWire = encoded;
  }
}
