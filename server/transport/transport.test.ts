/**
 * Both transports against the same contract (types.ts), over real sockets on 127.0.0.1 port 0 with
 * the `ws` client. Waits are on events or conditions with a deadline, never on the clock alone.
 */
import { once } from 'node:events';
import { connect as connectTcp, createServer as createTcpServer, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { WebSocket, type ClientOptions } from 'ws';
import type { ConnectionHandlers, HttpHandler, Peer, RunningTransport, StartTransport, UpgradeRequest } from './types.js';
import { startWsTransport } from './ws-transport.js';
import { loadUws, startUwsTransport } from './uws-transport.js';
import { selectTransport } from './select-transport.js';

const uwsLoaded = (await loadUws()).uws !== null;
const log = pino({ level: 'silent' });
const MAX_PAYLOAD_BYTES = 16 * 1024;
const MAX_BACKPRESSURE_BYTES = 256 * 1024;
const DEADLINE_MS = 5_000;
const PROTOCOL = 'promstream.v1';

/** Server-side view of one connection, filled in by the test handlers. */
interface Conn {
  readonly peer: Peer;
  readonly request: UpgradeRequest;
  readonly protocol: string | null;
  readonly messages: Array<{ readonly data: Uint8Array; readonly isBinary: boolean }>;
  pongs: number;
  readonly closes: Array<{ readonly code: number; readonly reason: string }>;
}

interface Harness {
  readonly transport: RunningTransport;
  readonly url: string;
  readonly upgrades: UpgradeRequest[];
  readonly conns: Conn[];
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Polls a condition until it holds; fails with `what` at the deadline. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function event<T extends unknown[]>(emitter: NodeJS.EventEmitter, name: string): Promise<T> {
  return once(emitter, name, { signal: AbortSignal.timeout(DEADLINE_MS) }) as Promise<T>;
}

/** Echoes every message back; 'throw' as text makes onMessage throw. Refuses bad paths and one origin. */
function testHandlers(upgrades: UpgradeRequest[], conns: Conn[]): ConnectionHandlers<Conn> {
  return {
    checkUpgrade(request) {
      upgrades.push(request);
      if (request.path !== '/ws') return { accept: false, status: 404, message: 'no such endpoint' };
      if (request.origin === 'http://evil.example') return { accept: false, status: 403, message: 'origin not allowed' };
      return { accept: true, protocol: request.protocols.includes(PROTOCOL) ? PROTOCOL : null };
    },
    onOpen(peer, request, protocol) {
      const conn: Conn = { peer, request, protocol, messages: [], pongs: 0, closes: [] };
      conns.push(conn);
      return conn;
    },
    onMessage(conn, data, isBinary) {
      const copy = Uint8Array.from(data);
      conn.messages.push({ data: copy, isBinary });
      if (!isBinary && Buffer.from(copy).toString() === 'throw') throw new Error('handler bug');
      conn.peer.send(copy);
    },
    onPong(conn) {
      conn.pongs += 1;
    },
    onClose(conn, code, reason) {
      conn.closes.push({ code, reason });
    },
  };
}

const http: HttpHandler = (req) =>
  req.path === '/healthz'
    ? { status: 200, headers: { 'content-type': 'text/plain', 'x-seen': `${req.method} ${req.query} ${req.headers['x-probe']}` }, body: 'ok' }
    : null;

async function startHarness(start: StartTransport, port = 0): Promise<Harness> {
  const upgrades: UpgradeRequest[] = [];
  const conns: Conn[] = [];
  const transport = await start({
    host: '127.0.0.1',
    port,
    maxPayloadBytes: MAX_PAYLOAD_BYTES,
    maxBackpressureBytes: MAX_BACKPRESSURE_BYTES,
    handlers: testHandlers(upgrades, conns),
    http,
    log,
  });
  cleanups.push(() => transport.close());
  return { transport, url: `ws://127.0.0.1:${transport.port}`, upgrades, conns };
}

function client(url: string, protocols: string[] = [PROTOCOL], options: ClientOptions = {}): WebSocket {
  const ws = new WebSocket(url, protocols, options);
  ws.on('error', () => {}); // asserted through 'close' and 'unexpected-response'
  cleanups.push(() => ws.terminate());
  return ws;
}

/** Opens a client and returns it with the server side of its connection (one at a time). */
async function connected(h: Harness, path = '/ws', protocols: string[] = [PROTOCOL]): Promise<{ ws: WebSocket; conn: Conn }> {
  const index = h.conns.length;
  const ws = client(h.url + path, protocols);
  await event(ws, 'open');
  await until(() => h.conns.length > index, 'onOpen');
  const conn = h.conns[index];
  if (conn === undefined) throw new Error('no server-side connection');
  return { ws, conn };
}

/** A port that was free a moment ago: for the tests that need a fixed one. */
async function freePort(): Promise<number> {
  const server = createTcpServer().listen(0, '127.0.0.1');
  await event(server, 'listening');
  const address = server.address();
  server.close();
  await event(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

async function closeOf(ws: WebSocket): Promise<{ code: number; reason: string }> {
  const [code, reason] = await event<[number, Buffer]>(ws, 'close');
  return { code, reason: reason.toString() };
}

async function refusal(ws: WebSocket): Promise<{ status: number | undefined; body: string }> {
  const [, res] = await event<[unknown, NodeJS.ReadableStream & { statusCode?: number }]>(ws, 'unexpected-response');
  let body = '';
  for await (const chunk of res) body += chunk.toString();
  return { status: res.statusCode, body };
}

describe.each([
  ['uws', startUwsTransport],
  ['ws', startWsTransport],
] as const)('%s transport', (name, start) => {
  const test = name === 'uws' && !uwsLoaded ? it.skip : it;

  test('reports its name and the port it bound', async () => {
    const h = await startHarness(start);
    expect(h.transport.name).toBe(name);
    expect(h.transport.port).toBeGreaterThan(0);
  });

  test('checkUpgrade sees path, query, origin, protocols and address; the chosen protocol is echoed', async () => {
    const h = await startHarness(start);
    const ws = client(`${h.url}/ws?session=abc&x=1`, ['other', PROTOCOL], { origin: 'https://app.example' });
    await event(ws, 'open');
    expect(h.upgrades).toEqual([
      { path: '/ws', query: 'session=abc&x=1', origin: 'https://app.example', protocols: ['other', PROTOCOL], remoteAddress: '127.0.0.1' },
    ]);
    expect(ws.protocol).toBe(PROTOCOL);
    await until(() => h.conns.length === 1, 'onOpen');
    expect(h.conns[0]?.protocol).toBe(PROTOCOL);
    expect(h.conns[0]?.request.query).toBe('session=abc&x=1');
  });

  test('no origin, no query, no protocol offered: undefined, empty, none echoed', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h, '/ws', []);
    expect(h.upgrades[0]).toEqual({ path: '/ws', query: '', origin: undefined, protocols: [], remoteAddress: '127.0.0.1' });
    expect(ws.protocol).toBe('');
    expect(conn.protocol).toBeNull();
  });

  test('a refused upgrade gets the exact HTTP status and message', async () => {
    const h = await startHarness(start);
    const evil = client(`${h.url}/ws`, [PROTOCOL], { origin: 'http://evil.example' });
    expect(await refusal(evil)).toEqual({ status: 403, body: 'origin not allowed' });
    const lost = client(`${h.url}/elsewhere`);
    expect(await refusal(lost)).toEqual({ status: 404, body: 'no such endpoint' });
    expect(h.conns).toHaveLength(0);
  });

  test('binary messages arrive byte-exact both ways', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h);
    const payload = new Uint8Array([0, 255, 0, 1, ...randomBytes(4000), 0]);
    const echoed = event<[Buffer, boolean]>(ws, 'message');
    ws.send(payload);
    const [data, isBinary] = await echoed;
    expect(isBinary).toBe(true);
    expect(new Uint8Array(data)).toEqual(payload);
    expect(conn.messages).toHaveLength(1);
    expect(conn.messages[0]?.isBinary).toBe(true);
    expect(conn.messages[0]?.data).toEqual(payload);
  });

  test('server close(4001, "x") reaches the client with that code and reason', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h);
    const closed = closeOf(ws);
    conn.peer.close(4001, 'x');
    expect(await closed).toEqual({ code: 4001, reason: 'x' });
    await h.transport.close();
    expect(conn.closes).toEqual([{ code: 4001, reason: 'x' }]);
    // Safe after close: no throw, no second onClose.
    conn.peer.send(new Uint8Array([1]));
    conn.peer.close(1000, 'again');
    conn.peer.terminate();
    conn.peer.ping();
    expect(conn.closes).toHaveLength(1);
  });

  test('client close(1000) gives onClose(1000) exactly once; no code gives 1005', async () => {
    const h = await startHarness(start);
    const first = await connected(h);
    first.ws.close(1000, 'bye');
    await closeOf(first.ws);
    const second = await connected(h);
    second.ws.close();
    await closeOf(second.ws);
    await until(() => second.conn.closes.length > 0, 'onClose');
    await h.transport.close();
    expect(first.conn.closes).toEqual([{ code: 1000, reason: 'bye' }]);
    expect(second.conn.closes).toEqual([{ code: 1005, reason: '' }]);
  });

  test('terminate() drops the connection: the client sees 1006', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h);
    const closed = closeOf(ws);
    conn.peer.terminate();
    expect((await closed).code).toBe(1006);
    await h.transport.close();
    expect(conn.closes).toEqual([{ code: 1006, reason: '' }]);
  });

  test('ping() is answered: onPong', async () => {
    const h = await startHarness(start);
    const { conn } = await connected(h);
    conn.peer.ping();
    await until(() => conn.pongs === 1, 'onPong');
  });

  test('a handler that throws costs its connection (1011), not the process', async () => {
    const h = await startHarness(start);
    const { ws } = await connected(h);
    const closed = closeOf(ws);
    ws.send('throw');
    expect(await closed).toEqual({ code: 1011, reason: 'internal error' });
    const next = await connected(h);
    const echoed = event<[Buffer]>(next.ws, 'message');
    next.ws.send(new Uint8Array([7]));
    expect([...(await echoed)[0]]).toEqual([7]);
  });

  test('plain HTTP goes to the http handler; unknown paths get 404', async () => {
    const h = await startHarness(start);
    const base = `http://127.0.0.1:${h.transport.port}`;
    const health = await fetch(`${base}/healthz?probe=1`, { headers: { 'X-Probe': 'yes' } });
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toBe('text/plain');
    expect(health.headers.get('x-seen')).toBe('GET probe=1 yes');
    expect(await health.text()).toBe('ok');
    const head = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    await missing.text();
  });

  test('stopAccepting() refuses new connections while open ones keep working', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h);
    h.transport.stopAccepting();
    const late = client(`${h.url}/ws`);
    const [err] = await event<[NodeJS.ErrnoException]>(late, 'error');
    expect(err.code).toBe('ECONNREFUSED');
    const echoed = event<[Buffer]>(ws, 'message');
    ws.send(new Uint8Array([1, 2, 3]));
    expect([...(await echoed)[0]]).toEqual([1, 2, 3]);
    expect(conn.closes).toHaveLength(0);
  });

  test('close() ends open connections, reports them, and releases the port', async () => {
    // A fixed port, as in production: uSockets sets SO_REUSEADDR only on a non-zero port, and
    // without it the server side of a closed connection (TIME_WAIT) blocks the port for a minute.
    const port = await freePort();
    const h = await startHarness(start, port);
    const { ws, conn } = await connected(h);
    const closed = closeOf(ws);
    await h.transport.close();
    expect(conn.closes).toEqual([{ code: 1006, reason: '' }]);
    expect((await closed).code).toBe(1006);
    const probe = createTcpServer();
    probe.listen(port, '127.0.0.1');
    await event(probe, 'listening');
    probe.close();
    await event(probe, 'close');
    // A restart on the same port binds too.
    const again = await startHarness(start, port);
    expect(again.transport.port).toBe(port);
  });

  test('a port in use is an error, not a shared port', async () => {
    const port = await freePort();
    await startHarness(start, port);
    await expect(startHarness(start, port)).rejects.toThrow();
  });

  test('a frame above maxPayloadBytes closes the connection', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h);
    const closed = closeOf(ws);
    ws.send(new Uint8Array(MAX_PAYLOAD_BYTES + 1));
    const { code } = await closed;
    // ws answers with 1009; uWS cuts the socket without a close frame.
    expect(name === 'ws' ? [1009] : [1006, 1009]).toContain(code);
    await h.transport.close();
    expect(conn.closes).toHaveLength(1);
    expect(conn.messages).toHaveLength(0);
  });

  test('a client that stops reading is closed once its send queue passes the limit', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h);
    // ws keeps its socket private; pausing it stops reads so the server's queue grows.
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const frame = new Uint8Array(64 * 1024);
    // Bounded: once the transport closes the peer, the remaining sends are no-ops.
    for (let i = 0; i < 2000; i += 1) conn.peer.send(frame);
    await until(() => conn.closes.length === 1, 'onClose after backpressure');
    expect(conn.closes).toEqual([{ code: 1008, reason: 'send queue full' }]);
    const closed = closeOf(ws);
    socket.resume();
    await closed;
    // The process and the transport carry on.
    const next = await connected(h);
    const echoed = event<[Buffer]>(next.ws, 'message');
    next.ws.send(new Uint8Array([9]));
    expect([...(await echoed)[0]]).toEqual([9]);
    expect(conn.closes).toHaveLength(1);
  });

  test('peers that vanish mid-upgrade or send garbage do not disturb the server', async () => {
    const h = await startHarness(start);
    const request =
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    for (const bytes of [request, request.slice(0, 40), 'garbage\r\n\r\n']) {
      const raw = connectTcp(h.transport.port, '127.0.0.1');
      raw.on('error', () => {});
      await event(raw, 'connect');
      raw.write(bytes);
      raw.resetAndDestroy();
      await event(raw, 'close');
    }
    const { ws } = await connected(h);
    const echoed = event<[Buffer]>(ws, 'message');
    ws.send(new Uint8Array([5]));
    expect([...(await echoed)[0]]).toEqual([5]);
  });
});

describe('selectTransport', () => {
  it('gives ws for "ws" without touching uWS, and uWS for "uws" and "auto" when it loads', async () => {
    expect((await selectTransport('ws', log)).name).toBe('ws');
    const expected = uwsLoaded ? 'uws' : 'ws';
    expect((await selectTransport('auto', log)).name).toBe(expected);
    if (uwsLoaded) expect((await selectTransport('uws', log)).name).toBe('uws');
    else await expect(selectTransport('uws', log)).rejects.toThrow(/--transport uws/);
  });
});
