import { afterEach, expect, it } from 'vitest';
import { createClient, type PromstreamClient } from '../../client/node.js';
import { CloseReasons, encodeDelta, encodeHello } from '../../protocol/index.js';
import type { RunningServer } from '../../server/index.js';
import type { Whitelist } from '../../server/config/types.js';
import { scrape, valueOf } from '../support/scrape.js';
import { TEST_WHITELIST, describeEachTransport, rawClient, startTestServer, type RawClient } from '../support/server-harness.js';
import { waitFor } from '../support/wait-for.js';

describeEachTransport('limits over %s: each breach gets its close code and count, nobody else notices', (transport) => {
  let server: RunningServer | undefined;
  const clients: PromstreamClient[] = [];
  const raws: RawClient[] = [];
  afterEach(async () => {
    for (const r of raws.splice(0)) r.ws.terminate();
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await server?.close();
    server = undefined;
  });
  const raw = async (s: RunningServer, headers: Record<string, string> = {}): Promise<RawClient> => {
    const r = await rawClient(s.port, { headers });
    raws.push(r);
    return r;
  };
  const honestClient = async (s: RunningServer): Promise<PromstreamClient> => {
    const c = createClient({ url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'teacher' }, flushInterval: 20 });
    clients.push(c);
    c.increment('usage_total', { feature: 'c' }, 1);
    await c.flush();
    return c;
  };
  const stillCounting = async (s: RunningServer, c: PromstreamClient, expected: number): Promise<void> => {
    c.increment('usage_total', { feature: 'c' }, 1);
    await c.flush();
    expect(valueOf(await scrape(s.metricsPort), 'usage_total{feature="c"}')).toBe(expected);
  };

  it('--allowed-origins: a browser from another origin is refused at the upgrade with 403 and counted', async () => {
    const s = (server = await startTestServer(transport, { allowedOrigins: ['https://app.example.com', '*.school.example'] }));
    await expect(rawClient(s.port, { headers: { origin: 'https://evil.example.net' } })).rejects.toThrow('upgrade refused: 403');
    for (const origin of ['https://app.example.com', 'https://a.school.example']) {
      const ok = await raw(s, { origin });
      expect((await ok.hello({ app: 'student' })).type).toBe(1);
    }
    const scriptWithoutOrigin = await raw(s);
    expect((await scriptWithoutOrigin.hello({ app: 'student' })).type).toBe(1);
    expect(valueOf(await scrape(s.metricsPort), 'promstream_protocol_errors_total{reason="origin_not_allowed"}')).toBe(1);
  });

  it('a WebSocket on another path than /ws is refused with 404', async () => {
    const s = (server = await startTestServer(transport));
    const WebSocket = (await import('ws')).default;
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${s.port}/socket`, ['promstream.v1']);
      ws.on('error', () => {});
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('opened')));
    });
    expect(status).toBe(404);
  });

  it('--max-connections: the next connection is accepted and closed with 1013', async () => {
    const s = (server = await startTestServer(transport, { maxConnections: 3 }));
    const c = await honestClient(s);
    await raw(s);
    await raw(s);
    const extra = await raw(s);
    expect(await extra.closed).toEqual({ code: 1013, reason: CloseReasons.serverFull.reason });
    await stillCounting(s, c, 2);
    expect(valueOf(await scrape(s.metricsPort), 'promstream_protocol_errors_total{reason="too_many_connections"}')).toBe(1);
    // a slot freed is a slot usable again
    raws[0]!.ws.close(1000);
    await raws[0]!.closed;
    await waitFor(() => s.connections === 2, { what: 'one connection fewer' });
    const again = await raw(s);
    expect((await again.hello({ app: 'student' })).type).toBe(1);
  });

  it('--max-connections-per-ip counts the X-Forwarded-For address only with --trust-proxy', async () => {
    const s = (server = await startTestServer(transport, { maxConnectionsPerIp: 2, trustProxy: true }));
    const a1 = await raw(s, { 'x-forwarded-for': '198.51.100.9, 10.0.0.1' });
    await raw(s, { 'x-forwarded-for': '10.0.0.1' });
    const a3 = await raw(s, { 'x-forwarded-for': '10.0.0.1' });
    expect(await a3.closed).toEqual({ code: 1008, reason: CloseReasons.tooManyFromAddress.reason });
    const b = await raw(s, { 'x-forwarded-for': '10.0.0.2' });
    expect((await b.hello({ app: 'student' })).type).toBe(1);
    expect((await a1.hello({ app: 'student' })).type).toBe(1);
    expect(valueOf(await scrape(s.metricsPort), 'promstream_protocol_errors_total{reason="too_many_connections_per_ip"}')).toBe(1);
  });

  it('without --trust-proxy the header is ignored: every raw client is 127.0.0.1', async () => {
    const s = (server = await startTestServer(transport, { maxConnectionsPerIp: 2 }));
    await raw(s, { 'x-forwarded-for': '10.0.0.1' });
    await raw(s, { 'x-forwarded-for': '10.0.0.2' });
    const third = await raw(s, { 'x-forwarded-for': '10.0.0.3' });
    expect((await third.closed).code).toBe(1008);
  });

  it('--max-frames-per-second: a flood is closed with 1008; the honest client is untouched', async () => {
    const s = (server = await startTestServer(transport, { maxFramesPerSecond: 5 }));
    const c = await honestClient(s);
    const r = await raw(s);
    const w = await r.hello({ app: 'student' });
    for (let i = 0; i < 40; i++) r.send(encodeDelta(1, w.catalog.version, [[0, 0, 1]], new Map()));
    expect(await r.closed).toEqual({ code: 1008, reason: CloseReasons.frameRateLimit.reason });
    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(1); // the first applied, the rest were duplicates
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="frame_rate_limit"}')).toBe(1);
    await stillCounting(s, c, 2);
  });

  it('a ping flood counts like a frame flood (1008)', async () => {
    const s = (server = await startTestServer(transport, { maxFramesPerSecond: 5 }));
    const r = await raw(s);
    await r.hello({ app: 'student' });
    for (let i = 0; i < 40; i++) r.ws.ping();
    expect((await r.closed).code).toBe(1008);
  });

  it('--max-samples-per-second: samples beyond the session budget are dropped as rate_limited, the rest apply', async () => {
    const s = (server = await startTestServer(transport, { maxSamplesPerSecond: 10, maxSamplesPerFrame: 4096 }));
    const r = await raw(s);
    const w = await r.hello({ app: 'student' });
    // the bucket holds 10 s worth: 100 samples
    r.send(encodeDelta(1, w.catalog.version, Array.from({ length: 150 }, () => [0, 1, 1]), new Map()));
    await r.next((m) => (m.type === 2 ? m : undefined));
    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'usage_total{feature="b"}')).toBe(100);
    expect(valueOf(m, 'promstream_rejected_samples_total{reason="rate_limited"}')).toBe(50);
  });

  it('--max-sessions: with none resumable, 1013; a session detached within the eviction grace is not evicted and resumes', async () => {
    const s = (server = await startTestServer(transport, { maxSessions: 2 }));
    const a = await raw(s);
    const wa = await a.hello({ app: 'student' });
    const b = await raw(s);
    await b.hello({ app: 'student' });
    const c = await raw(s);
    c.send(encodeHello({ app: 'student' }, null));
    expect(await c.closed).toEqual({ code: 1013, reason: CloseReasons.sessionTableFull.reason });
    a.ws.terminate(); // a's session is now resumable, and the oldest, but fresh
    await waitFor(async () => valueOf(await scrape(s.metricsPort), 'promstream_sessions_resumable') === 1, { what: 'a detached' });
    const d = await raw(s);
    d.send(encodeHello({ app: 'student' }, null));
    expect(await d.closed).toEqual({ code: 1013, reason: CloseReasons.sessionTableFull.reason });
    const back = await raw(s);
    expect(await back.hello({ app: 'student' }, { sessionId: wa.sessionId, token: wa.token, epoch: wa.epoch })).toMatchObject({ resumed: true, sessionId: wa.sessionId });
    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'promstream_sessions_evicted_total')).toBe(0);
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="too_many_sessions"}')).toBe(2);
  });

  it('an anonymous page cannot add 1e300 (or more than --max-sample-value) to a counter', async () => {
    const s = (server = await startTestServer(transport, { maxSampleValue: 1000 }));
    const c = createClient({ url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'student' }, flushInterval: 20 });
    clients.push(c);
    c.increment('usage_total', { feature: 'a' }, 1);
    await c.flush();
    c.increment('usage_total', { feature: 'a' }, 1e300);
    c.increment('usage_total', { feature: 'a' }, 1001);
    c.observe('rt_seconds', { host: 'x' }, 5000);
    c.increment('usage_total', { feature: 'a' }, 1000);
    await c.flush();
    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(1001);
    expect(valueOf(m, 'rt_seconds_count{host="x"}')).toBe(0);
    // the client knows the limit from the welcome: dropped there, and reported
    expect(valueOf(m, 'promstream_client_dropped_samples_total{reason="too_large"}')).toBe(3);
  });
});

describeEachTransport('whitelist reload over %s', (transport) => {
  let server: RunningServer | undefined;
  const clients: PromstreamClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await server?.close();
  });

  const grown: Whitelist = {
    ...TEST_WHITELIST,
    metrics: TEST_WHITELIST.metrics.map((m) => (m.name === 'usage_total' ? { ...m, labels: [{ name: 'feature', allowedValues: ['d', 'a', 'b', 'c'] }] } : m)),
  };

  it('applies a new whitelist without dropping sessions or totals; clients get the new catalogue', async () => {
    const s = (server = await startTestServer(transport, { drainWindowMs: 100 }));
    let welcomes = 0;
    const c = createClient({
      url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'student' }, flushInterval: 20, backoff: { baseMs: 20, capMs: 100 },
      onStatus: (st) => { if (st.type === 'connected') welcomes++; },
    });
    clients.push(c);
    c.increment('usage_total', { feature: 'a' }, 5);
    c.observe('rt_seconds', { host: 'y' }, 0.3);
    c.set('presenting', {}, 2);
    await c.flush();
    const result = await s.reload(grown);
    expect(result.changed).toBe(true);
    // The client learns the new catalogue when it resumes after the 4006; until then it checks
    // against the old one, where feature=d is not allowed.
    await waitFor(() => welcomes === 2, { what: 'the client to resume with the new catalogue' });
    c.increment('usage_total', { feature: 'd' }, 1);
    c.increment('usage_total', { feature: 'a' }, 1);
    await c.flush();
    expect(valueOf(await scrape(s.metricsPort), 'usage_total{feature="d"}')).toBe(1);
    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(6);
    expect(valueOf(m, 'rt_seconds_bucket{host="y",le="0.5"}')).toBe(1);
    expect(valueOf(m, 'presenting')).toBe(2); // sent again after the reconnect
    expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(1);
    expect(valueOf(m, 'promstream_sessions_resumed_total')).toBeGreaterThanOrEqual(1);
    expect(valueOf(m, 'promstream_closes_total{code="4006"}')).toBeGreaterThanOrEqual(1);
    expect(await s.reload(grown)).toEqual({ catalogVersion: result.catalogVersion, changed: false });
  });

  it('refuses a reload that changes the session labels and keeps the old whitelist', async () => {
    const s = (server = await startTestServer(transport));
    await expect(s.reload({ ...TEST_WHITELIST, sessionLabels: [{ name: 'app', allowedValues: ['student'] }] })).rejects.toThrow(/sessionLabels changed/);
    const c = createClient({ url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'teacher' }, flushInterval: 20 });
    clients.push(c);
    c.increment('usage_total', { feature: 'a' }, 1);
    await c.flush();
    expect(valueOf(await scrape(s.metricsPort), 'usage_total{feature="a"}')).toBe(1);
  });
});
