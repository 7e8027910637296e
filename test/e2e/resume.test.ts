import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type ClientStatus, type PromstreamClient } from '../../client/node.js';
import type { RunningServer } from '../../server/index.js';
import { scrape, valueOf } from '../support/scrape.js';
import { describeEachTransport, startTestServer } from '../support/server-harness.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

const metric = async (server: RunningServer, series: string): Promise<number> => valueOf(await scrape(server.metricsPort), series);

describeEachTransport('persistent sessions over %s', (transport) => {
  let server: RunningServer | undefined;
  let proxy: TcpProxy | undefined;
  const clients: PromstreamClient[] = [];
  afterEach(async () => {
    await proxy?.close(); // first, so no client waits on a frozen path to say goodbye
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await server?.close();
    server = proxy = undefined;
  });

  it('loses nothing and counts nothing twice while a proxy cuts every connection every 150 ms', async () => {
    const s = await startTestServer(transport);
    server = s;
    const p = await startTcpProxy({ host: '127.0.0.1', port: s.port });
    proxy = p;
    const sent = [0, 0, 0];
    const observed = [0, 0, 0];
    const cs = sent.map((_, i) => {
      const c = createClient({ url: `ws://127.0.0.1:${p.port}/ws`, labels: { app: i === 0 ? 'teacher' : 'student' }, flushInterval: 10, backoff: { baseMs: 20, capMs: 200 } });
      clients.push(c);
      return c;
    });
    // Welcomed first: a cut between a first hello and its welcome would leave the server a session the
    // client never heard of (it holds nothing and expires), and then the count of sessions below is off.
    await Promise.all(cs.map((c) => c.flush()));
    await waitFor(() => cs.every((c) => c.sessionId !== null), { what: 'every client welcomed' });
    // Bounded: 40 rounds of recording, a cut every 150 ms, stops by itself.
    const cutter = setInterval(() => p.cutAll(), 150);
    try {
      for (let round = 0; round < 40; round++) {
        cs.forEach((c, i) => {
          const n = 1 + ((round * 7 + i * 3) % 5);
          c.increment('usage_total', { feature: 'a' }, n);
          sent[i]! += n;
          c.observe('rt_seconds', { host: 'x' }, 0.2);
          observed[i]!++;
        });
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      clearInterval(cutter);
    }
    await Promise.all(cs.map((c) => c.flush()));
    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(sent.reduce((a, b) => a + b));
    expect(valueOf(m, 'rt_seconds_count{host="x"}')).toBe(observed.reduce((a, b) => a + b));
    expect(valueOf(m, 'rt_seconds_bucket{host="x",le="0.5"}')).toBe(observed.reduce((a, b) => a + b));
    // Every reconnect resumed: still exactly one session per client.
    expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(3);
    expect(valueOf(m, 'promstream_sessions_resumed_total')).toBeGreaterThan(3);
    // A client with nothing left to send may still be between reconnect attempts after the last cut.
    await waitFor(async () => {
      const now = await scrape(s.metricsPort);
      return valueOf(now, 'connected_clients{app="student"}') === 2 && valueOf(now, 'connected_clients{app="teacher"}') === 1;
    }, { what: 'all three clients connected again' });
  });

  it('a client behind a frozen proxy leaves connected_clients within the idle timeout', async () => {
    const s = await startTestServer(transport, { idleTimeoutMs: 1000 });
    server = s;
    const p = await startTcpProxy({ host: '127.0.0.1', port: s.port });
    proxy = p;
    const c = createClient({ url: `ws://127.0.0.1:${p.port}/ws`, labels: { app: 'student' }, flushInterval: 60_000 });
    clients.push(c);
    c.set('presenting', {}, 1);
    await c.flush();
    expect(await metric(s, 'connected_clients{app="student"}')).toBe(1);
    p.freeze();
    const frozenAt = performance.now();
    await waitFor(async () => (await metric(s, 'connected_clients{app="student"}')) === 0, { what: 'frozen client to leave', timeoutMs: 4000 });
    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'presenting')).toBe(0);
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="idle_timeout"}')).toBe(1);
    expect(valueOf(m, 'promstream_sessions_resumable')).toBe(1);
    // It left after the idle timeout, not before (the ping at half of it went unanswered).
    expect(performance.now() - frozenAt).toBeGreaterThanOrEqual(900);
  });

  it('after the session expired, the client starts a new one and sends its in-flight frame again', async () => {
    const s = await startTestServer(transport, { idleTimeoutMs: 1000, sessionTtlMs: 200 });
    server = s;
    const p = await startTcpProxy({ host: '127.0.0.1', port: s.port });
    proxy = p;
    const statuses: ClientStatus[] = [];
    const c = createClient({ url: `ws://127.0.0.1:${p.port}/ws`, labels: { app: 'student' }, flushInterval: 50, onStatus: (st) => statuses.push(st) });
    clients.push(c);
    c.increment('usage_total', { feature: 'b' }, 5);
    await c.flush();
    p.freeze();
    c.increment('usage_total', { feature: 'b' }, 7); // sent, stuck in the frozen proxy
    const flushed = c.flush();
    await waitFor(async () => (await metric(s, 'promstream_sessions_expired_total')) === 1, { what: 'session to expire', timeoutMs: 5000 });
    p.unfreeze();
    p.cutAll();
    await flushed;
    const m = await scrape(s.metricsPort);
    const story = JSON.stringify(statuses); // what the client went through, for a failure message
    expect(valueOf(m, 'usage_total{feature="b"}'), story).toBe(12);
    expect(valueOf(m, 'promstream_sessions_opened_total'), story).toBe(2);
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="session_not_resumable"}')).toBeGreaterThanOrEqual(1);
    expect(statuses.some((st) => st.type === 'disconnected' && st.code === 4001)).toBe(true);
  });

  it('a server restart is detected (new epoch), the client reconnects by itself and later calls count', async () => {
    const first = await startTestServer(transport);
    const port = first.port;
    const statuses: ClientStatus[] = [];
    const c = createClient({ url: `ws://127.0.0.1:${port}/ws`, labels: { app: 'teacher' }, flushInterval: 50, backoff: { baseMs: 50, capMs: 400 }, onStatus: (st) => statuses.push(st) });
    clients.push(c);
    c.increment('usage_total', { feature: 'a' }, 3);
    await c.flush();
    await first.close();
    const s = await startTestServer(transport, { port });
    server = s;
    c.increment('usage_total', { feature: 'a' }, 4);
    await c.flush();
    expect(await metric(s, 'usage_total{feature="a"}')).toBe(4);
    const epochs = statuses.flatMap((st) => (st.type === 'connected' ? [st.epoch] : []));
    expect(epochs[0]).toBe(first.epoch);
    expect(epochs.at(-1)).toBe(s.epoch);
    expect(first.epoch).not.toBe(s.epoch);
  });
});

describe('the URL a client connects with', () => {
  it('carries one random route key for all its connections, and the session id when it resumes', async () => {
    const { createServer } = await import('node:http');
    const { connect } = await import('node:net');
    const server = await startTestServer('ws');
    const urls: string[] = [];
    const sockets = new Set<import('node:net').Socket>();
    // A pass-through that records each upgrade's request line, then splices the bytes to the server.
    const front = createServer().on('upgrade', (req, socket, head) => {
      urls.push(req.url ?? '');
      const upstream = connect(server.port, '127.0.0.1', () => {
        upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${String(v)}`).join('\r\n')}\r\n\r\n`);
        upstream.write(head);
        socket.pipe(upstream).pipe(socket);
      });
      for (const s of [socket, upstream]) {
        sockets.add(s as import('node:net').Socket);
        s.on('error', () => {});
      }
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const port = (front.address() as import('node:net').AddressInfo).port;
    const c = createClient({ url: `ws://127.0.0.1:${port}/ws`, labels: { app: 'student' }, flushInterval: 20, backoff: { baseMs: 10, capMs: 50 } });
    try {
      c.increment('usage_total', { feature: 'a' });
      await c.flush();
      for (const s of sockets) s.destroy();
      c.increment('usage_total', { feature: 'a' });
      await c.flush();
      expect(urls.length).toBeGreaterThanOrEqual(2);
      const [first, ...later] = urls.map((u) => new URL(u, 'ws://x'));
      const route = first!.searchParams.get('route');
      expect(route).toMatch(/^[0-9a-f]{24}$/);
      expect(first!.searchParams.has('session')).toBe(false);
      for (const u of later) {
        expect(u.searchParams.get('route')).toBe(route);
        expect(u.searchParams.get('session')).toBe(c.sessionId);
      }
      expect(valueOf(await scrape(server.metricsPort), 'usage_total{feature="a"}')).toBe(2);
    } finally {
      await c.close();
      for (const s of sockets) s.destroy();
      front.close();
      await server.close();
    }
  });
});
