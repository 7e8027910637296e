/**
 * Both transports against the same contract (types.ts), over real sockets on 127.0.0.1 port 0 with
 * the `ws` client. Waits are on events or conditions with a deadline, never on the clock alone.
 */
import { once } from 'node:events';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { connect as connectTcp, createServer as createTcpServer, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino, type Logger } from 'pino';
import { WebSocket, type ClientOptions } from 'ws';
import type { ConnectionHandlers, HttpHandler, Peer, RunningTransport, StartTransport, TransportName, UpgradeRequest } from './types.js';
import { UNLIMITED_SOCKETS } from './types.js';
import { PeerWebSocket, remoteAddressOf, startWsTransport, type WsInternals } from './ws-transport.js';
import { loadUws, startUwsTransport, uwsHttpTimeoutMs, type UwsLoadResult, type UwsModule } from './uws-transport.js';
import { UWS_HINT, selectTransport } from './select-transport.js';
import { uwsBinaryName } from './uws-loader.js';
import { PromstreamError } from '../errors.js';
import { runningInCi } from '../../test/support/prometheus.js';
import { itWithUws } from '../../test/support/uws-availability.js';

const log = pino({ level: 'silent' });
const silentLog = log;
const MAX_PAYLOAD_BYTES = 16 * 1024;
const MAX_BACKPRESSURE_BYTES = 256 * 1024;
const DEADLINE_MS = 5_000;
const PROTOCOL = 'promstream.v1';
/** The production default (the handshake timeout); the slowloris tests pass a short one. */
const HTTP_HEADERS_TIMEOUT_MS = 10_000;
const SHORT_HTTP_HEADERS_TIMEOUT_MS = 1_000;
const uwsBuild = await loadUws();
const uwsLoaded = uwsBuild.uws !== null;
/** uWS cuts slow HTTP peers on its own fixed clock, per build (uwsHttpTimeoutMs): 8–12 s on 20.30, 28–36 s on 20.57. */
const UWS_FIXED_HTTP_TIMEOUT_MS = uwsBuild.uws === null ? 0 : uwsHttpTimeoutMs(uwsBuild.build.version).latest;
/** Scheduling noise on a busy 2-core machine running two test files at once. */
const DROP_SLACK_MS = 2_000;

/** openssl makes the self-signed certificates of the TLS tests; without it they are skipped. */
const opensslPresent = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
if (!opensslPresent && !runningInCi()) console.warn('SKIPPED: openssl not found; the TLS transport tests need it to make certificates (apt-get install openssl)');
const tlsDir = mkdtempSync(join(tmpdir(), 'promstream-transport-'));
afterAll(() => rmSync(tlsDir, { recursive: true, force: true }));

interface CertPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
}

/**
 * A self-signed certificate for 127.0.0.1, so that clients verify it against itself as the CA
 * (rather than switching verification off) while connecting to the address the server listens on.
 */
function selfSignedPair(name: string): CertPair {
  const certFile = join(tlsDir, `${name}-cert.pem`);
  const keyFile = join(tlsDir, `${name}-key.pem`);
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1'];
  args.push('-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile);
  const made = spawnSync('openssl', args, { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`);
  return { certFile, keyFile, cert: readFileSync(certFile) };
}

let tlsPair: CertPair | undefined;
let otherTlsPair: CertPair | undefined;
beforeAll(() => {
  if (!opensslPresent) return;
  tlsPair = selfSignedPair('server');
  otherTlsPair = selfSignedPair('other');
});

function pairOf(pair: CertPair | undefined): CertPair {
  if (pair === undefined) throw new Error('no certificate: openssl missing');
  return pair;
}

/** Server-side view of one connection, filled in by the test handlers. */
interface Conn {
  readonly peer: Peer;
  readonly request: UpgradeRequest;
  readonly protocol: string | null;
  readonly messages: Array<{ readonly data: Uint8Array; readonly isBinary: boolean }>;
  pongs: number;
  pings: number;
  /** Makes onPing close the connection with this, as a ping-flood limit would. */
  closeOnPing: { readonly code: number; readonly reason: string } | null;
  readonly closes: Array<{ readonly code: number; readonly reason: string }>;
  /** onClose's byTransport, by its metric name (null: the peer or the handler closed). */
  readonly closedByTransport: Array<string | null>;
}

interface Harness {
  readonly transport: RunningTransport;
  /** ws:// or wss:// with the port, no path. */
  readonly url: string;
  /** What a client needs to trust the server: the self-signed certificate as CA, when TLS. */
  readonly clientOptions: ClientOptions;
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
      const conn: Conn = { peer, request, protocol, messages: [], pongs: 0, pings: 0, closeOnPing: null, closes: [], closedByTransport: [] };
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
    onPing(conn) {
      conn.pings += 1;
      if (conn.closeOnPing !== null) conn.peer.close(conn.closeOnPing.code, conn.closeOnPing.reason);
    },
    onClose(conn, code, reason, byTransport) {
      conn.closes.push({ code, reason });
      conn.closedByTransport.push(byTransport?.metric ?? null);
    },
  };
}

const http: HttpHandler = (req) =>
  req.path === '/healthz'
    ? { status: 200, headers: { 'content-type': 'text/plain', 'x-seen': `${req.method} ${req.query} ${req.headers['x-probe']}` }, body: 'ok' }
    : null;

interface HarnessOptions {
  readonly port?: number;
  readonly tls?: CertPair;
  readonly httpHeadersTimeoutMs?: number;
  readonly log?: Logger;
}

async function startHarness(start: StartTransport, { port = 0, tls, httpHeadersTimeoutMs = HTTP_HEADERS_TIMEOUT_MS, log = silentLog }: HarnessOptions = {}): Promise<Harness> {
  const upgrades: UpgradeRequest[] = [];
  const conns: Conn[] = [];
  const transport = await start({
    host: '127.0.0.1',
    port,
    sockets: UNLIMITED_SOCKETS,
    maxPayloadBytes: MAX_PAYLOAD_BYTES,
    maxBackpressureBytes: MAX_BACKPRESSURE_BYTES,
    handlers: testHandlers(upgrades, conns),
    http,
    httpHeadersTimeoutMs,
    ...(tls === undefined ? {} : { tls: { certFile: tls.certFile, keyFile: tls.keyFile } }),
    log,
  });
  cleanups.push(() => transport.close());
  const scheme = tls === undefined ? 'ws' : 'wss';
  const clientOptions: ClientOptions = tls === undefined ? {} : { ca: tls.cert };
  return { transport, url: `${scheme}://127.0.0.1:${transport.port}`, clientOptions, upgrades, conns };
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
  const ws = client(h.url + path, protocols, h.clientOptions);
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

/**
 * How long a slow or silent HTTP peer may stay connected: ws honours the option, late by at most
 * Node's sweep interval; uWS ignores it and cuts on its own fixed clock.
 */
function dropBoundMs(name: TransportName, httpHeadersTimeoutMs: number): number {
  const bound =
    name === 'ws'
      ? httpHeadersTimeoutMs + Math.min(1000, httpHeadersTimeoutMs / 2)
      : Math.max(httpHeadersTimeoutMs, UWS_FIXED_HTTP_TIMEOUT_MS);
  return bound + DROP_SLACK_MS;
}

/** One header line, sent a byte at a time by the slowloris peers: never the blank line that ends them. */
const TRICKLED_HEADER = 'X-Pad: 1\r\n';

/**
 * Writes `opening` on a connected socket, then (when `trickle`) one header byte every 200 ms. Stops
 * by itself when the server closes the socket or `boundMs` has passed; resolves with the ms the
 * server took to close it, or null when it did not within the bound.
 */
async function msUntilDropped(socket: Socket, opening: string, trickle: boolean, boundMs: number): Promise<number | null> {
  cleanups.push(() => socket.destroy());
  socket.on('error', () => {}); // writes racing the server's close
  socket.resume(); // a 408 from Node, read and dropped
  const startedMs = performance.now();
  if (opening !== '') socket.write(opening);
  let sent = 0;
  const trickler = trickle
    ? setInterval(() => {
        if (socket.writable) socket.write(TRICKLED_HEADER.charAt(sent++ % TRICKLED_HEADER.length));
      }, 200)
    : undefined;
  let deadline: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      once(socket, 'close').then(() => performance.now() - startedMs),
      new Promise<null>((resolve) => (deadline = setTimeout(resolve, boundMs, null))),
    ]);
  } finally {
    clearInterval(trickler);
    clearTimeout(deadline);
  }
}

async function rawTcp(port: number): Promise<Socket> {
  const socket = connectTcp(port, '127.0.0.1');
  socket.on('error', () => {});
  await event(socket, 'connect');
  return socket;
}

/** A GET over https that trusts `ca`, on a fresh connection (no keep-alive left behind). */
async function httpsGet(url: string, ca: Buffer, headers: Record<string, string>): Promise<{ res: IncomingMessage; body: string }> {
  const req = httpsRequest(url, { ca, headers, agent: false });
  req.on('error', () => {}); // asserted through 'response'
  req.end();
  const [res] = await event<[IncomingMessage]>(req, 'response');
  let body = '';
  for await (const chunk of res) body += String(chunk);
  return { res, body };
}

/** Echo round trip: the transport still serves this connection. */
async function echoes(ws: WebSocket, byte: number): Promise<void> {
  const echoed = event<[Buffer]>(ws, 'message');
  ws.send(new Uint8Array([byte]));
  expect([...(await echoed)[0]]).toEqual([byte]);
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
  const test = name === 'uws' ? itWithUws() : it;
  // Loud without openssl, and failing under CI (selfSignedPair then throws).
  const tlsTest = opensslPresent || runningInCi() ? test : it.skip;

  test('reports its name and the port it bound', async () => {
    const h = await startHarness(start);
    expect(h.transport.name).toBe(name);
    expect(h.transport.port).toBeGreaterThan(0);
  });

  test('checkUpgrade sees path, query, origin, protocols and address; the chosen protocol is echoed', async () => {
    const h = await startHarness(start);
    const ws = client(`${h.url}/ws?session=abc&x=1`, ['other', PROTOCOL], { origin: 'https://app.example' });
    await event(ws, 'open');
    expect(h.upgrades).toStrictEqual([
      {
        path: '/ws',
        query: 'session=abc&x=1',
        origin: 'https://app.example',
        protocols: ['other', PROTOCOL],
        remoteAddress: '127.0.0.1',
        forwardedFor: undefined,
      },
    ]);
    expect(ws.protocol).toBe(PROTOCOL);
    await until(() => h.conns.length === 1, 'onOpen');
    expect(h.conns[0]?.protocol).toBe(PROTOCOL);
    expect(h.conns[0]?.request.query).toBe('session=abc&x=1');
  });

  test('no origin, no query, no protocol offered: undefined, empty, none echoed', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h, '/ws', []);
    expect(h.upgrades[0]).toStrictEqual({
      path: '/ws',
      query: '',
      origin: undefined,
      protocols: [],
      remoteAddress: '127.0.0.1',
      forwardedFor: undefined,
    });
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
    const h = await startHarness(start, { port });
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
    const again = await startHarness(start, { port });
    expect(again.transport.port).toBe(port);
  });

  test('a port in use is an error, not a shared port', async () => {
    const port = await freePort();
    await startHarness(start, { port });
    await expect(startHarness(start, { port })).rejects.toThrow();
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
    // Not reading: no close frame could reach it, so the socket is dropped, and the transport says why.
    expect(conn.closes).toEqual([{ code: 1006, reason: '' }]);
    expect(conn.closedByTransport).toEqual(['send_queue_full']);
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

  test('a frame whose second half comes after a quiet spell of seconds arrives whole (ws compacts quiet connections)', async () => {
    const h = await startHarness(start);
    const raw = await rawTcp(h.transport.port);
    const replies: Buffer[] = [];
    raw.on('data', (chunk: Buffer) => replies.push(chunk));
    raw.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Protocol: ${PROTOCOL}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    const received = (): Buffer => Buffer.concat(replies);
    await until(() => received().includes('\r\n\r\n'), 'the 101 response');
    const headerEnd = received().indexOf('\r\n\r\n') + 4;
    expect(received().subarray(0, 12).toString()).toBe('HTTP/1.1 101');
    // A masked binary frame (client to server), then the server's echo, unmasked.
    const frame = (payload: number[]): Buffer => {
      const mask = [0x11, 0x22, 0x33, 0x44];
      return Buffer.from([0x82, 0x80 | payload.length, ...mask, ...payload.map((b, i) => b ^ mask[i % 4]!)]);
    };
    const echoed = (payloads: number[][]): Buffer => Buffer.concat(payloads.map((p) => Buffer.from([0x82, p.length, ...p])));
    raw.write(frame([1]));
    await until(() => received().length >= headerEnd + 3, 'the first echo');
    const second = frame([7, 8, 9]);
    raw.write(second.subarray(0, 4));
    // The quiet spell is what is tested: longer than ws' compaction interval (1 s), with half a frame queued.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    raw.write(second.subarray(4));
    await until(() => received().length >= headerEnd + 3 + 5, 'the second echo');
    expect(received().subarray(headerEnd)).toEqual(echoed([[1], [7, 8, 9]]));
    expect(h.conns[0]!.messages.map((m) => [...m.data])).toEqual([[1], [7, 8, 9]]);
    raw.destroy();
  });

  test('forwardedFor is X-Forwarded-For exactly as sent, repeated lines joined with ", "', async () => {
    const h = await startHarness(start);
    const sent = '203.0.113.7,  198.51.100.2 ,10.0.0.1';
    const single = client(`${h.url}/ws`, [PROTOCOL], { headers: { 'X-Forwarded-For': sent } });
    await event(single, 'open');
    expect(h.upgrades[0]?.forwardedFor).toBe(sent);
    // A proxy may add a line of its own after the client's; the ws client cannot repeat a header.
    const raw = await rawTcp(h.transport.port);
    cleanups.push(() => raw.destroy());
    raw.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
        'X-Forwarded-For: 198.51.100.9\r\nX-Forwarded-For: 203.0.113.7\r\n\r\n',
    );
    const [head] = await event<[Buffer]>(raw, 'data');
    expect(head.toString()).toMatch(/^HTTP\/1\.1 101 /);
    expect(h.upgrades[1]?.forwardedFor).toBe('198.51.100.9, 203.0.113.7');
    await until(() => h.conns.length === 2, 'onOpen');
    expect(h.conns.map((conn) => conn.request.forwardedFor)).toEqual([sent, '198.51.100.9, 203.0.113.7']);
    const without = await connected(h);
    expect(without.conn.request).toHaveProperty('forwardedFor', undefined);
  });

  test('a ping from the client: onPing, and the client gets its pong', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h);
    for (const payload of ['first', 'second', '']) {
      const pong = event<[Buffer]>(ws, 'pong');
      ws.ping(payload);
      expect((await pong)[0].toString()).toBe(payload);
    }
    await until(() => conn.pings === 3, 'three onPing calls');
    expect(conn.pongs).toBe(0);
    await echoes(ws, 3);
  });

  test('onPing may close the connection (a ping-flood limit): the client sees that code', async () => {
    const h = await startHarness(start);
    const { ws, conn } = await connected(h);
    conn.closeOnPing = { code: 1008, reason: 'too many frames' };
    const closed = closeOf(ws);
    ws.ping();
    expect(await closed).toEqual({ code: 1008, reason: 'too many frames' });
    await until(() => conn.closes.length === 1, 'onClose');
    expect(conn.closes).toEqual([{ code: 1008, reason: 'too many frames' }]);
  });

  test('a message fragmented past maxPayloadBytes closes its connection; others are served', async () => {
    const h = await startHarness(start);
    const bystander = await connected(h);
    const fragmentBytes = 1024;
    for (const binary of [true, false]) {
      const { ws, conn } = await connected(h);
      const closed = closeOf(ws);
      const fragment = binary ? new Uint8Array(fragmentBytes) : 'a'.repeat(fragmentBytes);
      // Each fragment is small; only their sum passes the limit. Bounded at twice the limit.
      for (let sent = 0; sent < 2 * MAX_PAYLOAD_BYTES && ws.readyState === WebSocket.OPEN; sent += fragmentBytes) {
        ws.send(fragment, { binary, fin: false });
      }
      const { code } = await closed;
      // ws answers with 1009; uWS cuts the socket without a close frame.
      expect(name === 'ws' ? [1009] : [1006, 1009]).toContain(code);
      await until(() => conn.closes.length === 1, 'onClose');
      // 1006 on both: uWS sends no close frame, and ws stops reading once it has sent its 1009, so
      // it never sees the client's reply.
      expect(conn.closes[0]?.code).toBe(1006);
      expect(conn.messages).toHaveLength(0);
    }
    await echoes(bystander.ws, 4);
    await echoes((await connected(h)).ws, 5);
  });

  test('a peer that trickles its upgrade headers (slowloris) is dropped within the bound', async () => {
    const h = await startHarness(start, { httpHeadersTimeoutMs: SHORT_HTTP_HEADERS_TIMEOUT_MS });
    const bound = dropBoundMs(name, SHORT_HTTP_HEADERS_TIMEOUT_MS);
    const droppedAfter = await msUntilDropped(await rawTcp(h.transport.port), 'GET /ws HTTP/1.1\r\nHost: x\r\n', true, bound);
    expect(droppedAfter, `still connected after ${bound} ms`).not.toBeNull();
    expect(h.upgrades).toHaveLength(0);
    await echoes((await connected(h)).ws, 6);
  });

  test('a peer that connects and sends nothing is dropped within the bound', async () => {
    const h = await startHarness(start, { httpHeadersTimeoutMs: SHORT_HTTP_HEADERS_TIMEOUT_MS });
    const bound = dropBoundMs(name, SHORT_HTTP_HEADERS_TIMEOUT_MS);
    const droppedAfter = await msUntilDropped(await rawTcp(h.transport.port), '', false, bound);
    expect(droppedAfter, `still connected after ${bound} ms`).not.toBeNull();
    await echoes((await connected(h)).ws, 7);
  });

  if (name === 'uws') {
    test("warns once at start when the handshake timeout is shorter than the build's fixed HTTP timeout, naming both", async () => {
      const lines: string[] = [];
      const capture = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
      const { build } = uwsBuild as UwsLoadResult & { uws: UwsModule };
      const fixed = uwsHttpTimeoutMs(build.version);
      await startHarness(start, { httpHeadersTimeoutMs: fixed.earliest - 1000, log: capture });
      await startHarness(start, { httpHeadersTimeoutMs: fixed.earliest, log: capture });
      const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.level === 40);
      expect(warnings).toEqual([
        expect.objectContaining({
          httpHeadersTimeoutMs: fixed.earliest - 1000,
          uwsHttpTimeoutMs: fixed,
          uws: `${build.packageName}@${build.version}`,
          msg: `uWebSockets.js drops slow HTTP requests after its own fixed ${fixed.earliest / 1000}–${fixed.latest / 1000} s (this build), not after ${(fixed.earliest - 1000) / 1000} s (the handshake timeout); use the ws transport for a shorter limit`,
        }),
      ]);
    });
  }

  test('a missing or unreadable TLS file fails start-up with an error naming it', async () => {
    const missing = join(tlsDir, 'missing.pem');
    const garbage = join(tlsDir, 'garbage.pem');
    const directory = join(tlsDir, 'a-directory.pem');
    writeFileSync(garbage, 'not a certificate\n');
    mkdirSync(directory, { recursive: true });
    const startWith = (certFile: string, keyFile: string): Promise<Harness> =>
      startHarness(start, { tls: { certFile, keyFile, cert: Buffer.alloc(0) } });
    await expect(startWith(missing, garbage)).rejects.toThrow(`cannot read the TLS certificate file ${missing}: ENOENT`);
    await expect(startWith(garbage, missing)).rejects.toThrow(`cannot read the TLS private key file ${missing}: ENOENT`);
    await expect(startWith(directory, garbage)).rejects.toThrow(`cannot read the TLS certificate file ${directory}: EISDIR`);
    await expect(startWith(garbage, garbage)).rejects.toThrow(`TLS certificate file ${garbage} holds no PEM certificate`);
  });

  tlsTest('a key that does not belong to the certificate fails start-up naming both', async () => {
    const { certFile, cert } = pairOf(tlsPair);
    const { keyFile } = pairOf(otherTlsPair);
    await expect(startHarness(start, { tls: { certFile, keyFile, cert } })).rejects.toThrow(
      `TLS key file ${keyFile} does not belong to the certificate in ${certFile}`,
    );
    await expect(startHarness(start, { tls: { certFile, keyFile: certFile, cert } })).rejects.toThrow(
      `TLS key file ${certFile} holds no unencrypted PEM private key`,
    );
  });

  tlsTest('wss:// and https:// work end to end with a self-signed certificate', async () => {
    const pair = pairOf(tlsPair);
    const h = await startHarness(start, { tls: pair });
    expect(h.url).toMatch(/^wss:\/\//);
    // The client verifies the certificate (its own CA), so this is the server's certificate.
    const { ws, conn } = await connected(h);
    expect(conn.request).toMatchObject({ path: '/ws', remoteAddress: '127.0.0.1' });
    expect(ws.protocol).toBe(PROTOCOL);
    const payload = new Uint8Array([0, 255, ...randomBytes(3000)]);
    const echoed = event<[Buffer]>(ws, 'message');
    ws.send(payload);
    expect(new Uint8Array((await echoed)[0])).toEqual(payload);
    const pong = event<[Buffer]>(ws, 'pong');
    ws.ping('tls');
    expect((await pong)[0].toString()).toBe('tls');
    await until(() => conn.pings === 1, 'onPing');

    const health = await httpsGet(`https://127.0.0.1:${h.transport.port}/healthz?probe=1`, pair.cert, { 'X-Probe': 'tls' });
    expect(health.res.statusCode).toBe(200);
    expect(health.res.headers['x-seen']).toBe('GET probe=1 tls');
    expect(health.body).toBe('ok');
    const missing = await httpsGet(`https://127.0.0.1:${h.transport.port}/nope`, pair.cert, {});
    expect(missing.res.statusCode).toBe(404);

    const closed = closeOf(ws);
    ws.close(1000, 'done');
    expect(await closed).toEqual({ code: 1000, reason: 'done' });
    await until(() => conn.closes.length === 1, 'onClose');
    expect(conn.closes).toEqual([{ code: 1000, reason: 'done' }]);
  });

  tlsTest('over TLS, a peer that never starts the handshake and one that trickles its headers are dropped within the bound', async () => {
    const pair = pairOf(tlsPair);
    const h = await startHarness(start, { tls: pair, httpHeadersTimeoutMs: SHORT_HTTP_HEADERS_TIMEOUT_MS });
    const bound = dropBoundMs(name, SHORT_HTTP_HEADERS_TIMEOUT_MS);
    const secure = connectTls({ port: h.transport.port, host: '127.0.0.1', ca: pair.cert });
    secure.on('error', () => {});
    await event(secure, 'secureConnect');
    // Both at once: on uWS each takes its build's fixed timeout.
    const [silent, slowloris] = await Promise.all([
      msUntilDropped(await rawTcp(h.transport.port), '', false, bound),
      msUntilDropped(secure, 'GET /ws HTTP/1.1\r\nHost: x\r\n', true, bound),
    ]);
    expect(silent, `silent TCP peer still connected after ${bound} ms`).not.toBeNull();
    expect(slowloris, `slowloris TLS peer still connected after ${bound} ms`).not.toBeNull();
    expect(h.upgrades).toHaveLength(0);
    await echoes((await connected(h)).ws, 8);
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

  const failures = [
    { candidate: '@btc-vision/uwebsockets.js', reason: '@btc-vision/uwebsockets.js@20.57.0: uws_linux_x64_137.node does not load: GLIBC_2.38 not found (this system has glibc 2.36)' },
    { candidate: "promstream's uWebSockets.js", reason: '@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0 has no uws_linux_x64_137.node (linux-x64 ABIs 93, 108, 115; this Node.js is ABI 137)' },
  ];
  const noUws = (): Promise<UwsLoadResult> => Promise.resolve({ uws: null, failures, error: new Error('not used') });
  const why =
    `Node.js ${process.version} needs ${uwsBinaryName()}; @btc-vision/uwebsockets.js@20.57.0: uws_linux_x64_137.node does not load: GLIBC_2.38 not found (this system has glibc 2.36); ` +
    "promstream's uWebSockets.js: @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0 has no uws_linux_x64_137.node (linux-x64 ABIs 93, 108, 115; this Node.js is ABI 137)";

  it('"auto" without a loadable uWS: ws, and one warning naming every build, why it failed and what to do; no error object, so no stack', async () => {
    const lines: string[] = [];
    const capture = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const selected = await selectTransport('auto', capture, noUws);
    expect(selected.name).toBe('ws');
    expect(selected.library).toEqual({ package: 'ws', version: (JSON.parse(readFileSync('node_modules/ws/package.json', 'utf8')) as { version: string }).version });
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(record).toMatchObject({ level: 40, uws: failures, binary: uwsBinaryName() });
    expect(record.msg).toBe(`uWebSockets.js does not load here, using the ws transport: ${why}. To fix: ${UWS_HINT}; --transport ws silences this`);
    expect(Object.keys(record).filter((k) => k === 'err' || k === 'stack')).toEqual([]);
  });

  it('"uws" without a loadable uWS: PROMSTREAM_TRANSPORT_UNAVAILABLE naming the reasons, nothing logged', async () => {
    const lines: string[] = [];
    const capture = pino({ level: 'trace' }, { write: (line: string) => lines.push(line) });
    const failed = await selectTransport('uws', capture, noUws).then(() => null, (err: unknown) => err);
    expect(failed).toBeInstanceOf(PromstreamError);
    expect(failed).toMatchObject({
      code: 'PROMSTREAM_TRANSPORT_UNAVAILABLE',
      message: `--transport uws: no uWebSockets.js build loads here (${why}); ${UWS_HINT}; or use --transport ws or auto`,
    });
    expect(lines).toEqual([]);
  });

  it('a loaded uWS: its package, version and binary, and the builds passed over on the way', async () => {
    // selectTransport only hands the module on (to startUwsTransport): any object stands in for it.
    const fake = (): Promise<UwsLoadResult> =>
      Promise.resolve({
        uws: {} as UwsModule,
        build: { packageName: '@trufflesuite/uws-js-unofficial', version: '20.30.0-unofficial.0', binaryPath: '/app/node_modules/uWebSockets.js/binaries/uws_linux_x64_115.node' },
        passedOver: failures.slice(0, 1),
        error: null,
      });
    const selected = await selectTransport('auto', log, fake);
    expect(selected.name).toBe('uws');
    expect(selected.library).toEqual({
      package: '@trufflesuite/uws-js-unofficial',
      version: '20.30.0-unofficial.0',
      binary: '/app/node_modules/uWebSockets.js/binaries/uws_linux_x64_115.node',
      passedOver: failures[0]!.reason,
    });
  });
});

describe('ws transport: what it trims per connection (ws and Node internals it relies on)', () => {
  it('one frozen empty extensions table for the connection, its receiver and its sender; no cached peer address on the socket', async () => {
    const h = await startHarness(startWsTransport);
    const { conn } = await connected(h);
    const server = (conn.peer as unknown as { ws: PeerWebSocket & WsInternals & { _socket: Socket & { _peername?: unknown } } }).ws;
    expect(server).toBeInstanceOf(PeerWebSocket);
    expect(Object.isFrozen(server._extensions) && Object.keys(server._extensions)).toEqual([]);
    expect(server._receiver!._extensions).toBe(server._extensions);
    expect(server._sender!._extensions).toBe(server._extensions);
    // Another connection shares the very same table.
    const other = (((await connected(h)).conn.peer) as unknown as { ws: WsInternals }).ws;
    expect(other._extensions).toBe(server._extensions);
    // The receive queue compact() empties is where ws keeps it.
    expect(Array.isArray(server._receiver!._buffers)).toBe(true);
    expect(conn.request.remoteAddress).toBe('127.0.0.1');
    expect(server._socket._peername).toBeUndefined();
    // Asked again, Node asks the kernel.
    expect(server._socket.remoteAddress).toBe('127.0.0.1');
  });

  it('remoteAddressOf: the address, and the socket keeps no copy of it', async () => {
    const listener = createTcpServer((s) => s.end()).listen(0, '127.0.0.1');
    cleanups.push(() => new Promise((resolve) => listener.close(resolve)));
    await event(listener, 'listening');
    const port = (listener.address() as { port: number }).port;
    const socket = await rawTcp(port);
    cleanups.push(() => socket.destroy());
    expect(remoteAddressOf(socket)).toBe('127.0.0.1');
    expect((socket as unknown as { _peername?: unknown })._peername).toBeUndefined();
    expect(socket.remotePort).toBe(port);
  });
});
