import { MAX_DELTA_OVERHEAD_BYTES, maxSampleBytes } from '../../protocol/index.js';
import { problem } from './document-shape.js';
import type { ConfigProblem, MetricSpec, Whitelist } from './types.js';

/** The most bytes one sample of the metric can take in a delta (every number at its longest form). */
export function metricSampleBytes(metric: MetricSpec): number {
  const valueCount = metric.type === 'histogram' ? 1 + metric.buckets.length + 1 : 1;
  return maxSampleBytes(metric.labels.length, valueCount);
}

/**
 * Metrics a client could never send: one sample of theirs, in a frame of its own, may be larger than
 * maxFrameBytes (a histogram with thousands of buckets). Sent anyway, it would be closed with 1009 and
 * resent after every reconnect, forever; so such a whitelist is refused, naming the metric and field.
 */
export function metricsTooBigForAFrame(whitelist: Pick<Whitelist, 'metrics'>, maxFrameBytes: number): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const room = maxFrameBytes - MAX_DELTA_OVERHEAD_BYTES;
  for (const metric of whitelist.metrics) {
    const bytes = metricSampleBytes(metric);
    if (bytes <= room) continue;
    const field = metric.type === 'histogram' && metric.buckets.length >= metric.labels.length ? 'buckets' : 'labels';
    problems.push(problem(metric.file, metric.name, field,
      `one sample takes up to ${bytes} bytes, more than a frame of maxFrameBytes ${maxFrameBytes} holds (${room} after the frame's own ${MAX_DELTA_OVERHEAD_BYTES}); use fewer ${field} or raise --max-frame-bytes`));
  }
  return problems;
}
