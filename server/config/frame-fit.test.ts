import { describe, expect, it } from 'vitest';
import { MAX_DELTA_OVERHEAD_BYTES, encodeDelta } from '../../protocol/index.js';
import { metricSampleBytes, metricsTooBigForAFrame } from './frame-fit.js';
import type { MetricSpec } from './types.js';

const histogram = (buckets: number, labels = 0): MetricSpec => ({
  name: 'h_seconds', help: 'h', type: 'histogram', file: 'w.json', buckets: Array.from({ length: buckets }, (_, i) => i + 1),
  labels: Array.from({ length: labels }, (_, i) => ({ name: `l${i}`, allowedValues: ['x'] })),
});

describe('metrics too big for a frame', () => {
  it('bounds a sample from above: the largest values the protocol allows encode within the bound', () => {
    const m = histogram(40, 2);
    // every number at a long form: a float sum, counts near 2^32, big label indexes
    const sample = [65_535, 70_000, 70_001, 1e300 / 3, ...Array.from({ length: 41 }, () => 2 ** 32 - 1)];
    const frame = encodeDelta(2 ** 40, 2 ** 32 - 1, [sample], new Map([['client_buffer_full', 2 ** 40]]));
    expect(frame.byteLength).toBeLessThanOrEqual(metricSampleBytes(m) + MAX_DELTA_OVERHEAD_BYTES);
  });

  it('refuses a histogram one sample of which cannot fit maxFrameBytes, naming file, metric and field (review defect 6)', () => {
    expect(metricsTooBigForAFrame({ metrics: [histogram(100)] }, 32 * 1024)).toEqual([]);
    const problems = metricsTooBigForAFrame({ metrics: [histogram(4000)] }, 32 * 1024);
    expect(problems).toEqual([{
      file: 'w.json', metric: 'h_seconds', field: 'buckets',
      message: `one sample takes up to ${metricSampleBytes(histogram(4000))} bytes, more than a frame of maxFrameBytes 32768 holds (${32768 - MAX_DELTA_OVERHEAD_BYTES} after the frame's own ${MAX_DELTA_OVERHEAD_BYTES}); use fewer buckets or raise --max-frame-bytes`,
    }]);
  });

  it('fits exactly at the bound', () => {
    const m = histogram(20);
    const exact = metricSampleBytes(m) + MAX_DELTA_OVERHEAD_BYTES;
    expect(metricsTooBigForAFrame({ metrics: [m] }, exact)).toEqual([]);
    expect(metricsTooBigForAFrame({ metrics: [m] }, exact - 1)).toHaveLength(1);
  });
});
