import { afterEach, expect, it } from 'vitest';
import { createClient, type PromstreamClient } from '../../client/node.js';
import type { RunningServer } from '../../server/index.js';
import { describeWithPrometheus, startPrometheus, type RunningPrometheus } from '../support/prometheus.js';
import { startTestServer } from '../support/server-harness.js';

describeWithPrometheus('a real Prometheus scraping a real aggregator', () => {
  let server: RunningServer | undefined;
  let prometheus: RunningPrometheus | undefined;
  const clients: PromstreamClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await prometheus?.stop();
    await server?.close();
  });

  it('reads connected_clients, exact counter sums, histogram buckets and the zero series back through its HTTP API', async () => {
    server = await startTestServer('ws');
    for (const [i, app] of ['student', 'student', 'teacher'].entries()) {
      const c = createClient({ url: `ws://127.0.0.1:${server.port}/ws`, labels: { app }, flushInterval: 50 });
      clients.push(c);
      c.increment('usage_total', { feature: 'a' }, 10 + i);
      c.observe('rt_seconds', { host: 'y' }, 0.3);
    }
    await Promise.all(clients.map((c) => c.flush()));
    prometheus = await startPrometheus({ targets: [`127.0.0.1:${server.metricsPort}`], scrapeIntervalMs: 500 });
    expect(await prometheus.waitForValue('sum(connected_clients)', (v) => v === 3)).toBe(3);
    expect(await prometheus.waitForValue('connected_clients{app="student"}', (v) => v === 2)).toBe(2);
    expect(await prometheus.waitForValue('usage_total{feature="a"}', (v) => v === 33)).toBe(33);
    expect(await prometheus.waitForValue('usage_total{feature="c"}', (v) => v === 0)).toBe(0);
    expect(await prometheus.waitForValue('rt_seconds_bucket{host="y",le="0.5"}', (v) => v === 3)).toBe(3);
    expect(await prometheus.waitForValue('histogram_quantile(1, sum by (le) (rt_seconds_bucket{host="y"}))', (v) => v === 0.5)).toBe(0.5);
    expect(await prometheus.targetsHealthy()).toBe(true);
  });
});
