import { afterEach, expect, it } from 'vitest';
import { createClient, type PromstreamClient } from '../../client/node.js';
import type { RunningServer } from '../../server/index.js';
import { scrape, valueOf } from '../support/scrape.js';
import { describeEachTransport, startTestServer } from '../support/server-harness.js';
import { waitFor } from '../support/wait-for.js';

describeEachTransport('aggregation end to end over %s', (transport) => {
  let server: RunningServer;
  const clients: PromstreamClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await server?.close();
  });
  const client = (app: string, flushInterval = 50): PromstreamClient => {
    const c = createClient({ url: `ws://127.0.0.1:${server.port}/ws`, labels: { app }, flushInterval });
    clients.push(c);
    return c;
  };

  it('exposes every allowed series at zero before any client', async () => {
    server = await startTestServer(transport);
    const m = await scrape(server.metricsPort);
    for (const f of ['a', 'b', 'c']) expect(valueOf(m, `usage_total{feature="${f}"}`)).toBe(0);
    for (const host of ['x', 'y']) {
      for (const le of ['0.1', '0.5', '1', '+Inf']) expect(valueOf(m, `rt_seconds_bucket{host="${host}",le="${le}"}`)).toBe(0);
      expect(valueOf(m, `rt_seconds_sum{host="${host}"}`)).toBe(0);
      expect(valueOf(m, `rt_seconds_count{host="${host}"}`)).toBe(0);
    }
    expect(valueOf(m, 'presenting')).toBe(0);
    expect(valueOf(m, 'connected_clients{app="student"}')).toBe(0);
    expect(valueOf(m, 'connected_clients{app="teacher"}')).toBe(0);
    expect(valueOf(m, 'promstream_build_info{version="0.1.0"}')).toBe(1);
  });

  it('sums counters, merges histograms and sums gauge parts of N clients exactly', async () => {
    server = await startTestServer(transport);
    const n = 6;
    const cs = Array.from({ length: n }, (_, i) => client(i % 2 === 0 ? 'student' : 'teacher'));
    let expectA = 0;
    let expectB = 0;
    cs.forEach((c, i) => {
      for (let k = 0; k <= i; k++) c.increment('usage_total', { feature: 'a' });
      c.increment('usage_total', { feature: 'b' }, 10 * i);
      expectA += i + 1;
      expectB += 10 * i;
      c.observe('rt_seconds', { host: 'x' }, 0.05); // bucket 0.1
      c.observe('rt_seconds', { host: 'x' }, 0.5); // bucket 0.5 (le is inclusive)
      c.observe('rt_seconds', { host: 'y' }, 7); // +Inf
      c.set('presenting', {}, i);
    });
    await Promise.all(cs.map((c) => c.flush()));
    const m = await scrape(server.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(expectA);
    expect(valueOf(m, 'usage_total{feature="b"}')).toBe(expectB);
    expect(valueOf(m, 'usage_total{feature="c"}')).toBe(0);
    expect(valueOf(m, 'rt_seconds_bucket{host="x",le="0.1"}')).toBe(n);
    expect(valueOf(m, 'rt_seconds_bucket{host="x",le="0.5"}')).toBe(2 * n);
    expect(valueOf(m, 'rt_seconds_bucket{host="x",le="+Inf"}')).toBe(2 * n);
    expect(valueOf(m, 'rt_seconds_count{host="x"}')).toBe(2 * n);
    expect(valueOf(m, 'rt_seconds_sum{host="x"}')).toBeCloseTo(0.55 * n, 10);
    expect(valueOf(m, 'rt_seconds_bucket{host="y",le="1"}')).toBe(0);
    expect(valueOf(m, 'rt_seconds_bucket{host="y",le="+Inf"}')).toBe(n);
    expect(valueOf(m, 'rt_seconds_sum{host="y"}')).toBe(7 * n);
    expect(valueOf(m, 'presenting')).toBe((n * (n - 1)) / 2);
    expect(valueOf(m, 'connected_clients{app="student"}')).toBe(3);
    expect(valueOf(m, 'connected_clients{app="teacher"}')).toBe(3);
    expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(n);
  });

  it('counts connected_clients up and down and drops a closed session\'s gauge part', async () => {
    server = await startTestServer(transport);
    const a = client('student');
    const b = client('student');
    const t = client('teacher');
    a.set('presenting', {}, 1);
    b.set('presenting', {}, 2);
    t.set('presenting', {}, 4);
    await Promise.all([a.flush(), b.flush(), t.flush()]);
    let m = await scrape(server.metricsPort);
    expect(valueOf(m, 'connected_clients{app="student"}')).toBe(2);
    expect(valueOf(m, 'connected_clients{app="teacher"}')).toBe(1);
    expect(valueOf(m, 'presenting')).toBe(7);
    await b.close();
    m = await waitFor(async () => {
      const s = await scrape(server.metricsPort);
      return valueOf(s, 'connected_clients{app="student"}') === 1 ? s : null;
    }, { what: 'student count to drop to 1' });
    expect(valueOf(m, 'presenting')).toBe(5);
    expect(valueOf(m, 'promstream_sessions_resumable')).toBe(0); // a clean close ends the session
    await Promise.all([a.close(), t.close()]);
    m = await waitFor(async () => {
      const s = await scrape(server.metricsPort);
      return valueOf(s, 'connected_clients{app="teacher"}') === 0 && valueOf(s, 'connected_clients{app="student"}') === 0 ? s : null;
    }, { what: 'all clients gone' });
    expect(valueOf(m, 'presenting')).toBe(0);
    expect(valueOf(m, 'promstream_closes_total{code="1000"}')).toBe(3);
  });

  it('drops what the whitelist does not allow on the client and counts it on the server', async () => {
    server = await startTestServer(transport);
    const c = client('student');
    c.increment('usage_total', { feature: 'a' }, 2);
    await c.flush(); // now the client knows the catalogue
    c.increment('not_whitelisted_total');
    c.increment('usage_total', { feature: 'zzz' });
    c.increment('usage_total', {});
    c.increment('usage_total', { feature: 'a' }, Number.NaN);
    c.increment('usage_total', { feature: 'a' }, -1);
    c.observe('usage_total', { feature: 'a' }, 1); // wrong type for the name
    c.increment('usage_total', { feature: 'a' }, 3);
    await c.flush();
    const m = await scrape(server.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(5);
    expect(valueOf(m, 'promstream_client_dropped_samples_total{reason="unknown_metric"}')).toBe(2);
    // {} lacks the label: dropped in the client; feature zzz goes as "not in the list", rejected by the server
    expect(valueOf(m, 'promstream_client_dropped_samples_total{reason="label_not_allowed"}')).toBe(1);
    expect(valueOf(m, 'promstream_rejected_samples_total{reason="label_not_allowed"}')).toBe(1);
    expect(valueOf(m, 'promstream_client_dropped_samples_total{reason="non_finite"}')).toBe(1);
    expect(valueOf(m, 'promstream_client_dropped_samples_total{reason="negative"}')).toBe(1);
    expect([...m.keys()].some((k) => k.includes('not_whitelisted') || k.includes('zzz'))).toBe(false);
  });

  it('keeps what was recorded before the welcome and folds it in', async () => {
    server = await startTestServer(transport);
    const c = client('teacher');
    // Recorded synchronously, before the socket even opened: the client has no catalogue yet.
    c.increment('usage_total', { feature: 'c' }, 4);
    c.observe('rt_seconds', { host: 'y' }, 0.3);
    c.increment('nope_total');
    await c.flush();
    const m = await scrape(server.metricsPort);
    expect(valueOf(m, 'usage_total{feature="c"}')).toBe(4);
    expect(valueOf(m, 'rt_seconds_bucket{host="y",le="0.1"}')).toBe(0);
    expect(valueOf(m, 'rt_seconds_bucket{host="y",le="0.5"}')).toBe(1);
    expect(valueOf(m, 'promstream_client_dropped_samples_total{reason="unknown_metric"}')).toBe(1);
  });

  it('splits a delta bigger than maxSamplesPerFrame into several frames', async () => {
    server = await startTestServer(transport, { maxSamplesPerFrame: 2 });
    const c = client('student');
    for (const f of ['a', 'b', 'c']) c.increment('usage_total', { feature: f }, 1);
    c.observe('rt_seconds', { host: 'x' }, 1);
    c.observe('rt_seconds', { host: 'y' }, 1);
    await c.flush();
    const m = await scrape(server.metricsPort);
    expect(['a', 'b', 'c'].map((f) => valueOf(m, `usage_total{feature="${f}"}`))).toEqual([1, 1, 1]);
    expect(valueOf(m, 'rt_seconds_count{host="y"}')).toBe(1);
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="too_many_samples"}')).toBe(0);
  });
});
