import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type PromstreamClient } from '../../client/node.js';
import { startTestServer } from '../../test/support/server-harness.js';
import { waitFor } from '../../test/support/wait-for.js';
import type { DemoStats } from './demo-stats-route.js';
import type { RunningServer } from '../setup/start-server.js';

describe('/demo/stats', () => {
  let server: RunningServer | undefined;
  let client: PromstreamClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.close();
    server = client = undefined;
  });

  it('is there only when asked for (--demo)', async () => {
    server = await startTestServer('ws');
    expect((await fetch(`http://127.0.0.1:${server.port}/demo/stats`)).status).toBe(404);
  });

  it('gives connected_clients by session labels and the whitelisted series without buckets, read-only', async () => {
    server = await startTestServer('ws', { demoStats: true });
    const url = `http://127.0.0.1:${server.port}/demo/stats`;
    client = createClient({ url: `ws://127.0.0.1:${server.port}/ws`, labels: { app: 'teacher' } });
    client.increment('usage_total', { feature: 'b' }, 4);
    client.observe('rt_seconds', { host: 'x' }, 0.2);
    await client.flush();
    const stats = await waitFor(async () => {
      const res = await fetch(url);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const s = (await res.json()) as DemoStats;
      return s.series['usage_total{feature="b"}'] === 4 ? s : undefined;
    }, { what: 'the snapshot to show the increment' });
    expect(stats.connectedClients).toEqual(expect.arrayContaining([{ labels: { app: 'teacher' }, value: 1 }, { labels: { app: 'student' }, value: 0 }]));
    expect(stats.series).toMatchObject({ 'rt_seconds_count{host="x"}': 1, 'rt_seconds_sum{host="x"}': 0.2, presenting: 0 });
    expect(Object.keys(stats.series).some((k) => k.includes('_bucket'))).toBe(false);
    expect((await fetch(url, { method: 'POST' })).status).toBe(404);
  });
});
