import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { PlainHistogram } from './plain-histogram.js';

describe('PlainHistogram', () => {
  it("renders exactly as prom-client's Histogram with the same observations", async () => {
    const buckets = [0.00001, 0.000025, 0.0001, 0.001, 0.025];
    const theirs = new Registry();
    const ours = new Registry();
    const reference = new Histogram({ name: 'x_seconds', help: 'h', buckets, registers: [theirs] });
    const plain = new PlainHistogram('x_seconds', 'h', buckets);
    ours.registerMetric(plain.asRegistryMetric());
    expect(await ours.metrics()).toBe(await theirs.metrics());
    for (const v of [0, 0.00001, 0.000011, 0.00002, 0.0004, 0.001, 0.5, 3, 0.000025]) {
      reference.observe(v);
      plain.observe(v);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });
});
