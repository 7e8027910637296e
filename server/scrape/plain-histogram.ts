import type { Metric } from 'prom-client';

/** What prom-client's registry reads from a metric (its index.d.ts does not export these shapes). */
interface RenderedValue {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}
interface RenderedMetric {
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  readonly aggregator: 'sum';
  readonly values: readonly RenderedValue[];
}

/**
 * A label-less histogram kept in a plain Float64Array and rendered through prom-client's registry.
 * prom-client's Histogram.observe() hashes a label set and walks objects on every call; observed once
 * per frame, it cost more than applying the frame's samples (bench/: ~8 % of the server's time at
 * saturation). Here an observation is a short bucket search and three additions.
 */
export class PlainHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  /** Per-bucket counts (not cumulative), the last one +Inf. */
  private readonly counts: Float64Array;
  private sum = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly upperBounds: readonly number[],
  ) {
    this.counts = new Float64Array(upperBounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.upperBounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
  }

  /** Takes counts (not cumulative, +Inf last) and a sum kept elsewhere (the workers' blocks). */
  load(counts: ArrayLike<number>, sum: number): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] = counts[i]!;
    this.sum = sum;
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
  }

  /** What prom-client's registry renders: cumulative `_bucket{le}`, `_sum`, `_count`, as its own Histogram does. */
  get(): RenderedMetric {
    const values: RenderedValue[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.counts.length; i++) {
      cumulative += this.counts[i]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { le: i < this.upperBounds.length ? this.upperBounds[i]! : '+Inf' }, value: cumulative });
    }
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum }, { metricName: `${this.name}_count`, labels: {}, value: cumulative });
    return { name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values };
  }

  /** prom-client types registerMetric() for its own classes only; the registry needs just get() and the fields above. */
  asRegistryMetric(): Metric {
    return this as unknown as Metric;
  }
}
