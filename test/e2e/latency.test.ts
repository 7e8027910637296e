/**
 * A slow path and a frozen server: the client's ack timeout (4100) must give up a dead connection once,
 * and then let the next one live. Regression tests for "after one ack timeout the client kills its own
 * reconnects" (docs/RELIABILITY.md, Client): the in-flight frame kept its old send time and the flush
 * tick did not check that the new socket had been welcomed, so every new socket was closed with 4100 at
 * the next tick, before its welcome could arrive.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type ClientStatus, type PromstreamClient } from '../../client/node.js';
import type { RunningServer } from '../../server/index.js';
import { scrape, valueOf } from '../support/scrape.js';
import { describeEachTransport, startTestServer } from '../support/server-harness.js';
import { killAllClis, startServe } from '../support/spawn-cli.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

/** The one-way delay of the slow path: a WebSocket handshake then costs 4 × 200 ms, more than a flush interval. */
const ONE_WAY_MS = 200;
const FLUSH_INTERVAL_MS = 500;

const codesOf = (statuses: readonly ClientStatus[]): number[] => statuses.flatMap((s) => (s.type === 'disconnected' ? [s.code] : []));
/** 'acknowledged', or the error's code: a flush that fails is an assertion, not an unhandled rejection. */
const settled = (p: Promise<void>): Promise<string> => p.then(() => 'acknowledged', (err: { code?: string }) => err.code ?? String(err));
const connectedOf = (statuses: readonly ClientStatus[]) => statuses.flatMap((s) => (s.type === 'connected' ? [s] : []));

describeEachTransport('a client on a slow path (%s)', (transport) => {
  let server: RunningServer | undefined;
  let proxy: TcpProxy | undefined;
  const clients: PromstreamClient[] = [];
  afterEach(async () => {
    await proxy?.close();
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    await server?.close();
    server = proxy = undefined;
  });

  it(`after one ack timeout, its next connection is welcomed and kept (${ONE_WAY_MS} ms one way, flush every ${FLUSH_INTERVAL_MS} ms)`, async () => {
    // An idle timeout of 3 s: the server's ping at half of it is answered within the 400 ms round trip.
    const s = await startTestServer(transport, { idleTimeoutMs: 3000 });
    server = s;
    const p = await startTcpProxy({ host: '127.0.0.1', port: s.port }, { delayMs: ONE_WAY_MS });
    proxy = p;
    const statuses: ClientStatus[] = [];
    const c = createClient({
      url: `ws://127.0.0.1:${p.port}/ws`, labels: { app: 'student' }, flushInterval: FLUSH_INTERVAL_MS, flushTimeout: 15_000,
      onStatus: (st) => statuses.push(st),
    });
    clients.push(c);
    c.increment('usage_total', { feature: 'a' }, 2);
    await c.flush();
    const story = (): string => JSON.stringify(statuses); // what the client went through, for a failure message
    expect(connectedOf(statuses), story()).toHaveLength(1);

    // The path dies without a close: the next frame is never acknowledged, and after the idle timeout
    // the client gives the connection up with 4100 (once) and reconnects.
    p.freeze();
    c.increment('usage_total', { feature: 'a' }, 3);
    const flushed = settled(c.flush());
    await waitFor(() => codesOf(statuses).includes(4100), { what: 'the ack timeout (4100)', timeoutMs: 10_000 });
    p.unfreeze();

    // The new connection needs two slow round trips before its welcome: several flush ticks. It must
    // be left to finish them; the frame is resumed on it and acknowledged.
    expect(await flushed, story()).toBe('acknowledged');
    expect(codesOf(statuses), story()).toEqual([4100]);
    const connected = connectedOf(statuses);
    expect(connected, story()).toHaveLength(2);
    expect(connected[1]).toMatchObject({ resumed: true, sessionId: connected[0]!.sessionId });

    // Kept: more frames over the same connection for longer than the ack timeout (3 s, 6 ticks), each
    // acknowledged, and not one more close.
    const keptSince = performance.now();
    let extra = 0;
    for (let round = 0; round < 20 && performance.now() - keptSince < 3500; round++) {
      c.increment('usage_total', { feature: 'a' }, 1);
      extra++;
      await c.flush();
    }
    expect(performance.now() - keptSince).toBeGreaterThanOrEqual(3000);
    expect(codesOf(statuses), story()).toEqual([4100]);
    expect(connectedOf(statuses), story()).toHaveLength(2);

    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'usage_total{feature="a"}')).toBe(2 + 3 + extra);
    expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(1);
    expect(valueOf(m, 'connected_clients{app="student"}')).toBe(1);
  });
});

describe('a client of a server process frozen (SIGSTOP) for longer than the idle timeout', () => {
  const clients: PromstreamClient[] = [];
  afterEach(async () => {
    await killAllClis(); // SIGKILL ends a stopped process too
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  });

  it('gives up its connection once (4100), then waits for the welcome instead of closing every new socket; flush resolves after SIGCONT', async () => {
    const serving = await startServe(['--demo', '--idle-timeout', '1s']);
    const statuses: ClientStatus[] = [];
    // A flush tick every 100 ms: with the defect, each of them closed the unwelcomed socket.
    const c = createClient({ url: `ws://127.0.0.1:${serving.port}/ws`, labels: { app: 'demo' }, flushInterval: 100, flushTimeout: 20_000, onStatus: (st) => statuses.push(st) });
    clients.push(c);
    const story = (): string => JSON.stringify(statuses);
    c.increment('demo_clicks_total', { button: 'red' }, 4);
    await c.flush();

    serving.proc.signal('SIGSTOP');
    c.increment('demo_clicks_total', { button: 'red' }, 5);
    const flushed = settled(c.flush());
    await waitFor(() => codesOf(statuses).includes(4100), { what: 'the ack timeout (4100)', timeoutMs: 5000 });
    // The reconnect: the stopped server's kernel completes the TCP handshake, the upgrade goes unanswered.
    await waitFor(() => statuses.at(-1)?.type === 'connecting', { what: 'the reconnect attempt', timeoutMs: 5000 });
    // A negative can only be shown with a deadline: for 20 flush ticks (2 s) no other close comes; the
    // unwelcomed socket is left to the welcome timeout (15 s, 4101).
    const another = await waitFor(() => codesOf(statuses).length > 1, { what: 'another close', timeoutMs: 2000 }).then(() => 'another close', (err: Error) => err.message);
    expect(another, story()).toMatch(/^timed out .* waiting for another close/);
    expect(codesOf(statuses), story()).toEqual([4100]);

    const continuedAt = performance.now();
    serving.proc.signal('SIGCONT');
    expect(await flushed, story()).toBe('acknowledged');
    const flushMs = performance.now() - continuedAt;
    expect(codesOf(statuses), story()).toEqual([4100]);
    expect(connectedOf(statuses).map((st) => st.resumed), story()).toEqual([false, true]);
    // The held connection is welcomed as soon as the server runs again (0.4 s here): no backoff to wait out.
    expect(flushMs, story()).toBeLessThan(4000);
    const metrics = await scrape(serving.metricsPort);
    expect(valueOf(metrics, 'demo_clicks_total{button="red"}')).toBe(9);
    expect(valueOf(metrics, 'promstream_sessions_opened_total')).toBe(1);
  });
});
