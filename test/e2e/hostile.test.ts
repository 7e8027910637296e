/**
 * What a hostile probe found, reproduced against the real process (`bin/promstream.js serve`), bounded
 * in count and time, on loopback, on both transports: each test failed on the build before its fix
 * (PROMSTREAM_TEST_BIN=<old checkout>/bin/promstream.js runs them there). docs/RELIABILITY.md lists them.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { maskedFrame, rawUpgrade, ServerFrameReader } from '../../bench/generators/raw-websocket.js';
import { createClient, type ClientStatus, type PromstreamClient } from '../../client/node.js';
import { decodeServerFrame, encodeDelta, encodeHello, parseServerMessage } from '../../protocol/index.js';
import { scrape, valueOf } from '../support/scrape.js';
import { describeEachTransport } from '../support/server-harness.js';
import { killAllClis, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';
import { uwsHttpTimeoutMs } from '../../server/transport/uws-transport.js';

const DEMO = ['--demo'];
const OPCODE = { close: 0x8, ping: 0x9, pong: 0xa } as const;

/** A masked control frame without payload (zero mask key). */
const control = (opcode: number): Buffer => Buffer.from([0x80 | opcode, 0x80, 0, 0, 0, 0]);

interface RawPeer {
  readonly socket: Socket;
  /** The server's close frame, once it came. */
  closeFrame: { code: number; reason: string } | null;
  /** Set when the TCP connection is gone (the server dropped it). */
  endedAtMs: number | null;
  closeFrameAtMs: number | null;
  readonly messages: ReturnType<typeof parseServerMessage>[];
}

/** A bare WebSocket peer that reads everything, answers nothing (no pongs, no close frame) unless told to. */
async function rawPeer(port: number, hello = true): Promise<RawPeer> {
  const { socket, rest } = await rawUpgrade({ host: '127.0.0.1', port, path: '/ws?route=hostile', timeoutMs: 10_000 });
  const peer: RawPeer = { socket, closeFrame: null, endedAtMs: null, closeFrameAtMs: null, messages: [] };
  const reader = new ServerFrameReader((opcode, bytes, start, end) => {
    if (opcode === OPCODE.close) {
      peer.closeFrame = { code: end - start >= 2 ? bytes.readUInt16BE(start) : 1005, reason: bytes.subarray(start + 2, end).toString() };
      peer.closeFrameAtMs ??= performance.now();
    } else if (opcode === 0x2) {
      peer.messages.push(parseServerMessage(decodeServerFrame(bytes.subarray(start, end))));
    }
  });
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  socket.on('error', () => {});
  socket.on('close', () => {
    peer.endedAtMs = performance.now();
  });
  if (rest.byteLength > 0) reader.push(rest);
  if (hello) {
    socket.write(maskedFrame(encodeHello({ app: 'demo' }, null)));
    await waitFor(() => peer.messages.length > 0 || peer.closeFrame !== null || peer.endedAtMs !== null, { what: 'a welcome (or a close)' });
  }
  return peer;
}

/** What a test opened, closed after it (every describe below). */
const clients: PromstreamClient[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
  await killAllClis();
});

describeEachTransport('alert hygiene against the real process over %s (item 9)', (transport) => {

  it("a client's drop reports are capped per session and kept apart from the server's own rejections", async () => {
    const s = await startServe([...DEMO, '--transport', transport]);
    const liar = await rawPeer(s.port);
    sockets.push(liar.socket);
    const w = liar.messages[0]!;
    if (w.type !== 1) throw new Error('expected a welcome');
    // 30 frames each claiming the per-frame maximum: 30 million drops in a moment.
    for (let seq = 1; seq <= 30; seq++) liar.socket.write(maskedFrame(encodeDelta(seq, w.catalog.version, [], new Map([['unknown_metric', 1_000_000]]))));
    // Acks are cumulative (frames that arrive together get one): wait for the ack of the last.
    await waitFor(() => liar.messages.some((m) => m.type === 2 && m.lastAppliedSeq === 30), { what: 'every frame acknowledged' });
    const m = await scrape(s.metricsPort);
    // The session's bucket: a million, refilled 10 000 a second (plus what came in during the ~frames).
    const claimed = valueOf(m, 'promstream_client_dropped_samples_total{reason="unknown_metric"}');
    expect(claimed).toBeGreaterThanOrEqual(1_000_000);
    expect(claimed).toBeLessThan(1_100_000);
    expect(valueOf(m, 'promstream_rejected_samples_total{reason="unknown_metric"}')).toBe(0);
  });

  it('an honest increment-and-flush loop never runs into the frame limit: the client paces itself', async () => {
    const s = await startServe([...DEMO, '--transport', transport]);
    const closes: number[] = [];
    const c = createClient({ url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'demo' }, onStatus: (st) => st.type === 'disconnected' && closes.push(st.code) });
    clients.push(c);
    // Bounded: 60 flushes (past the bucket of 40), at the 20 frames/s the server allows about 3.3 s.
    for (let i = 0; i < 60; i++) {
      c.increment('demo_clicks_total', { button: 'blue' }, 1);
      await c.flush();
    }
    const m = await scrape(s.metricsPort);
    expect(closes).toEqual([]);
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="frame_rate_limit"}')).toBe(0);
    expect(valueOf(m, 'demo_clicks_total{button="blue"}')).toBe(60);
    expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(1);
  }, 30_000);

  it('samples dropped for the sample rate are said in the ack, and the client reports them', async () => {
    const s = await startServe([...DEMO, '--transport', transport, '--max-samples-per-second', '1']); // a bucket of 10
    const seen: ClientStatus[] = [];
    const c = createClient({ url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'demo' }, onStatus: (st) => seen.push(st) });
    clients.push(c);
    for (const task of ['load', 'save']) for (let i = 0; i < 8; i++) c.observe('demo_task_duration_seconds', { task }, i / 10);
    c.set('demo_tabs_presenting', {}, 1);
    for (const button of ['red', 'green', 'blue']) c.increment('demo_clicks_total', { button }, 1);
    await c.flush();
    // 2 histogram + 1 gauge + 3 counter samples in one frame is 6: under the bucket. Ten more frames of 6 are not.
    let dropped = 0;
    for (let i = 0; i < 3; i++) {
      for (const button of ['red', 'green', 'blue']) c.increment('demo_clicks_total', { button }, 1);
      for (const task of ['load', 'save']) c.observe('demo_task_duration_seconds', { task }, 0.1);
      await c.flush();
    }
    for (const st of seen) if (st.type === 'rate-limited') dropped += st.samples;
    const m = await scrape(s.metricsPort);
    expect(dropped).toBeGreaterThan(0);
    expect(valueOf(m, 'promstream_rejected_samples_total{reason="rate_limited"}')).toBe(dropped);
  });
});

describeEachTransport('hostile peers against the real process over %s', (transport) => {
  const serve = (args: string[]): Promise<ServingCli> => startServe([...DEMO, '--transport', transport, ...args]);
  const peer = async (port: number, hello = true): Promise<RawPeer> => {
    const p = await rawPeer(port, hello);
    sockets.push(p.socket);
    return p;
  };
  /** An honest client streaming beside the attack: every increment must arrive exactly once. */
  const honest = (s: ServingCli): { client: PromstreamClient; sent: () => number } => {
    let sent = 0;
    const client = createClient({ url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'teacher' }, flushInterval: 100, backoff: { baseMs: 100, capMs: 1000 } });
    clients.push(client);
    const record = (): void => {
      client.increment('demo_clicks_total', { button: 'green' }, 1);
      sent++;
    };
    record();
    return { client, sent: () => (record(), sent) };
  };

  it('a flood of new sessions cannot evict a session whose ack was lost, so its resend is not counted twice (item 3)', async () => {
    const s = await serve(['--max-sessions', '50']);
    // The victim: +1 applied, then its connection goes before it could see the ack.
    const victim = await peer(s.port);
    const welcome = victim.messages[0]!;
    if (welcome.type !== 1) throw new Error('expected a welcome');
    victim.socket.write(maskedFrame(encodeDelta(1, welcome.catalog.version, [[0, 0, 1]], new Map())));
    await waitFor(async () => valueOf(await scrape(s.metricsPort), 'demo_clicks_total{button="red"}') === 1, { what: 'the +1 applied' });
    victim.socket.destroy();
    // Another client: 60 new sessions, each dropped at once, so the table of 50 overflows.
    const refused: number[] = [];
    for (let i = 0; i < 60; i++) {
      const p = await peer(s.port);
      if (p.messages.length === 0) refused.push(p.closeFrame?.code ?? 0);
      p.socket.destroy();
    }
    // The victim comes back as the reference client does: resume, and resend the frame in flight unless
    // the welcome says it was applied.
    const back = await peer(s.port, false);
    back.socket.write(maskedFrame(encodeHello({ app: 'demo' }, { sessionId: welcome.sessionId, token: welcome.token, epoch: welcome.epoch })));
    await waitFor(() => back.messages[0] ?? back.closeFrame, { what: "the victim's welcome or close" });
    const answer = back.messages[0];
    if (answer === undefined || answer.type !== 1 || !answer.resumed || answer.lastAppliedSeq < 1) {
      // What the reference client does after 4001: a new session, and the frame in flight again.
      const again = await peer(s.port);
      const w = again.messages[0]!;
      if (w.type === 1) again.socket.write(maskedFrame(encodeDelta(1, w.catalog.version, [[0, 0, 1]], new Map())));
      await waitFor(() => again.messages.length > 1, { what: 'the resend acknowledged' });
    }
    const m = await scrape(s.metricsPort);
    expect(answer).toMatchObject({ type: 1, resumed: true, lastAppliedSeq: 1, sessionId: welcome.sessionId });
    expect(valueOf(m, 'demo_clicks_total{button="red"}')).toBe(1);
    expect(valueOf(m, 'promstream_sessions_evicted_total')).toBe(0);
    expect(refused.length).toBe(11);
    expect(refused.every((code) => code === 1013)).toBe(true);
  });

  it('silent connects past the open-files limit leave /metrics answering, and clients get in once they are gone (item 7)', async () => {
    // 256 open files; the server keeps 32 of them back. ws drops slow handshakes after 1 s, uWS after its
    // build's fixed HTTP timeout (uwsHttpTimeoutMs: ~12 s on 20.30, ~32 s on 20.57).
    const s = await startServe([...DEMO, '--transport', transport, '--handshake-timeout', '1s'], { openFiles: 256 });
    const library = s.listening.transportLibrary as { version: string };
    const silentHeldMs = transport === 'ws' ? 1_000 : uwsHttpTimeoutMs(library.version).latest;
    const silent: Socket[] = [];
    // Bounded: 400 connects that never send a byte, more than the process may hold.
    for (let i = 0; i < 400; i++) {
      const c = connect({ host: '127.0.0.1', port: s.port });
      c.on('error', () => {});
      silent.push(c);
      sockets.push(c);
    }
    await waitFor(() => silent.every((c) => c.readyState !== 'opening'), { what: 'every connect answered (accepted or refused)' });
    // The private side answers while the flood still holds the public one (uWS keeps silent peers for seconds).
    // A scrape racing the moment the files ran out may hang on its own connection: each try gets 1 s.
    const scraped = await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`, { signal: AbortSignal.timeout(1000) });
      return res.status === 200 ? res.text() : null;
    }, { what: '/metrics answering during the flood', timeoutMs: 5000 });
    expect(scraped).toContain('connected_clients{app="demo"} 0');
    // Once the silent peers are dropped, a real client streams as usual.
    const h = honest(s);
    await waitFor(() => h.client.sessionId, { what: 'a client welcomed after the flood', timeoutMs: silentHeldMs + 19_000 });
    const total = h.sent();
    await h.client.flush();
    expect(valueOf(await scrape(s.metricsPort), 'demo_clicks_total{button="green"}')).toBe(total);
  }, 90_000);

  it('a pong flood is closed with 1008 like a ping flood, and nobody else notices (item 4)', async () => {
    const s = await serve([]);
    const h = honest(s);
    await h.client.flush();
    const flooder = await peer(s.port);
    // Bounded: 5 000 unsolicited pongs in one write, far past the 20/s bucket of 40.
    flooder.socket.write(Buffer.concat(Array.from({ length: 5000 }, () => control(OPCODE.pong))));
    await waitFor(() => flooder.closeFrame, { what: "the flooder's close frame", timeoutMs: 5000 });
    expect(flooder.closeFrame).toEqual({ code: 1008, reason: 'frame rate above the limit' });
    const total = h.sent();
    await h.client.flush();
    const m = await scrape(s.metricsPort);
    expect(valueOf(m, 'promstream_protocol_errors_total{reason="frame_rate_limit"}')).toBe(1);
    expect(valueOf(m, 'demo_clicks_total{button="green"}')).toBe(total);
  });

  it('a socket the server closed and whose peer never answers is gone within the close grace, not ws’ 30 s (item 2)', async () => {
    const s = await serve(['--max-connections', '3']);
    const kept = await Promise.all([0, 1, 2].map(() => peer(s.port)));
    // 40 more: each is accepted, told 1013, and never answers the close frame.
    const refused = await Promise.all(Array.from({ length: 40 }, () => peer(s.port, false)));
    await waitFor(() => refused.every((p) => p.closeFrame !== null), { what: 'every extra peer told 1013' });
    for (const p of refused) expect(p.closeFrame).toEqual({ code: 1013, reason: 'server full; try again later' });
    // Gone soon after its close frame: liveness' close grace is 2 s, swept at most every second.
    await waitFor(() => refused.every((p) => p.endedAtMs !== null), { what: 'every refused socket dropped by the server', timeoutMs: 10_000 });
    for (const p of refused) expect(p.endedAtMs! - p.closeFrameAtMs!).toBeLessThan(5_000);
    // The three kept connections still hold their places: a fourth is still refused.
    const fourth = await peer(s.port, false);
    await waitFor(() => fourth.closeFrame, { what: "the fourth peer's close frame" });
    expect(fourth.closeFrame?.code).toBe(1013);
    for (const k of kept) expect(k.endedAtMs).toBeNull();
    expect(valueOf(await scrape(s.metricsPort), 'promstream_protocol_errors_total{reason="too_many_connections"}')).toBe(41);
  });

  it('a ping flooder closed with 1008 is dropped at once, not parsed for 30 s, and nobody else notices (item 2)', async () => {
    const s = await serve([]);
    const h = honest(s);
    await h.client.flush();
    const flooder = await peer(s.port);
    // Bounded: 200 writes of 500 pings, until the server drops the socket.
    const burst = Buffer.concat(Array.from({ length: 500 }, () => control(OPCODE.ping)));
    for (let i = 0; i < 200 && flooder.endedAtMs === null; i++) {
      flooder.socket.write(burst);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor(() => flooder.endedAtMs, { what: 'the flooder dropped', timeoutMs: 15_000 });
    expect(flooder.closeFrame).toEqual({ code: 1008, reason: 'frame rate above the limit' });
    expect(flooder.endedAtMs! - flooder.closeFrameAtMs!).toBeLessThan(10_000);
    const total = h.sent();
    await h.client.flush();
    expect(valueOf(await scrape(s.metricsPort), 'demo_clicks_total{button="green"}')).toBe(total);
  });
});
