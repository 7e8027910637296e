/**
 * Whitelists the bench serves, as config documents (the format operators write). The ingest one is
 * shaped like the original project's seed config: a few counters with browser/feature-style labels, a
 * latency histogram and a gauge. The scrape ones expose a chosen number of series.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface LabelDoc {
  readonly name: string;
  readonly allowedValues: readonly string[];
}
interface MetricDoc {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly labels: readonly LabelDoc[];
  readonly buckets?: readonly number[];
}
export interface WhitelistDoc {
  readonly allowedMetrics: readonly MetricDoc[];
  readonly sessionLabels: readonly LabelDoc[];
}

const values = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

export const SESSION_LABELS: Readonly<Record<string, string>> = { app: 'student' };

/** The ingest/connections whitelist: 5 counters, 1 histogram and 1 gauge make a 7-sample frame. */
export const INGEST_WHITELIST: WhitelistDoc = {
  sessionLabels: [{ name: 'app', allowedValues: ['student', 'teacher', 'editor'] }],
  allowedMetrics: [
    {
      name: 'usage_total', help: 'feature use', type: 'counter',
      labels: [
        { name: 'browser', allowedValues: ['chrome', 'firefox', 'safari', 'edge'] },
        { name: 'feature', allowedValues: ['quickQuestion', 'selfPacedMode', 'blockStudent', 'showContent', 'draw', 'audio', 'slides', 'export'] },
      ],
    },
    { name: 'app_load_succeeded', help: 'successful app loads', type: 'counter', labels: [{ name: 'app', allowedValues: ['student', 'teacher', 'editor', 'home', 'join'] }] },
    { name: 'page_errors_total', help: 'uncaught errors', type: 'counter', labels: [{ name: 'kind', allowedValues: ['script', 'network', 'render', 'other'] }] },
    { name: 'button_clicks_total', help: 'clicks', type: 'counter', labels: [{ name: 'button', allowedValues: values('b', 10) }] },
    {
      name: 'firebase_response_time', help: 'seconds', type: 'histogram',
      labels: [{ name: 'firebaseHost', allowedValues: ['pd-dev-1.firebaseio.com', 'pd-dev-2.firebaseio.com'] }],
      buckets: [0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    },
    { name: 'users_presenting', help: 'tabs presenting', type: 'gauge', labels: [] },
  ],
};

/**
 * A whitelist exposing exactly `series` sample lines (a multiple of 1000), as `--max-series` counts
 * them: per 1000, a counter of 7×100 series, a gauge of 100 and a histogram of 20 series × 10 lines
 * (8 buckets with +Inf, _sum, _count) — 70 % counters, 10 % gauges, 20 % histogram lines.
 */
export function scrapeWhitelist(series: number): WhitelistDoc {
  if (series % 1000 !== 0 || series <= 0) throw new RangeError(`scrape series must be a positive multiple of 1000 (got ${series})`);
  const metrics: MetricDoc[] = [];
  for (let k = 0; k < series / 1000; k++) {
    metrics.push(
      { name: `bench_requests_${k}_total`, help: 'generated counter', type: 'counter', labels: [{ name: 'code', allowedValues: values('c', 7) }, { name: 'route', allowedValues: values('/route/', 100) }] },
      { name: `bench_inflight_${k}`, help: 'generated gauge', type: 'gauge', labels: [{ name: 'worker', allowedValues: values('w', 100) }] },
      { name: `bench_latency_${k}_seconds`, help: 'generated histogram', type: 'histogram', labels: [{ name: 'op', allowedValues: values('op', 20) }], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 5] },
    );
  }
  return { sessionLabels: [{ name: 'app', allowedValues: ['student'] }], allowedMetrics: metrics };
}

/** Writes a whitelist document to a fresh temporary file and returns its path. */
export function writeWhitelist(doc: WhitelistDoc, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'promstream-bench-'));
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(doc));
  return path;
}
