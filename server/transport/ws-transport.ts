/**
 * The ws transport: Node's http server plus `ws` in noServer mode. Slower than uWS, but pure
 * JavaScript, so it runs wherever Node does; `--transport auto` falls back to it.
 *
 * Semantics shared with uws-transport.ts (guarded-peer.ts; the tests hold both to them):
 * - onClose fires exactly once per opened connection, once its socket is gone, always from a fresh
 *   microtask, never from inside another handler call or a Peer method.
 * - When the server closes (Peer.close) the close frame goes out behind what is queued and onClose
 *   follows ws' 'close' event: the peer answered, or the socket was dropped (Peer.terminate, send
 *   queue full, liveness' close grace).
 * - Nothing is delivered to the handlers after the server has closed a connection.
 * - A peer's ping is answered with a pong (onSocketPing; ws' autoPong is off) before onPing runs.
 * - Slow or silent HTTP peers (slowloris) are dropped once httpHeadersTimeoutMs has passed without
 *   a complete request line and headers, over plain TCP and TLS alike; see serverTimeouts().
 * - A connection with more than MAX_REQUESTS_IN_FLIGHT pipelined requests unanswered (a peer that
 *   sends them and never reads) is destroyed (node-http-limits.ts).
 */
import { createServer, STATUS_CODES, type IncomingMessage, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { Logger } from 'pino';
import { CloseReasons, type ServerCloseReason } from '../../protocol/index.js';
import { ErrorCode, PromstreamError } from '../errors.js';
import { GuardedPeer, type PeerShared } from './guarded-peer.js';
import { BODY_REFUSED, INTERNAL_ERROR, NOT_FOUND, SHUTTING_DOWN, announcesBody, checkHeadersTimeout, parseProtocols, splitUrl } from './http-parts.js';
import { limitRequestsInFlight } from './node-http-limits.js';
import { decideUpgrade } from './upgrade-decision.js';
import type {
  HttpHandler,
  HttpRequest,
  RunningTransport,
  StartTransport,
  SocketBudget,
  TransportOptions,
  UpgradeRequest,
} from './types.js';
import { readTlsFiles } from './tls-files.js';

export const startWsTransport: StartTransport = async <S>(options: TransportOptions<S>): Promise<RunningTransport> => {
  const { handlers, log, maxBackpressureBytes } = options;
  checkHeadersTimeout(options.httpHeadersTimeoutMs);
  const timeouts = serverTimeouts(options.httpHeadersTimeoutMs);
  // Read before anything listens, so that a bad file fails start-up with its name.
  const tls = options.tls === undefined ? undefined : await readTlsFiles(options.tls);
  const live = new Set<WsPeer<S>>();
  const shared: WsShared<S> = { handlers, log, maxBackpressureBytes, live, sockets: options.sockets };
  /** Subprotocol picked by checkUpgrade, read back by ws' handleProtocols for the same request. */
  const chosenProtocol = new WeakMap<IncomingMessage, string>();
  let accepting = true;

  const wss = new WebSocketServer<typeof PeerWebSocket>({
    noServer: true,
    WebSocket: PeerWebSocket,
    maxPayload: options.maxPayloadBytes,
    // Compression costs CPU and memory per socket and invites zip bombs; frames are small msgpack.
    perMessageDeflate: false,
    // The transport's own `live` set tracks every peer until its socket is gone; a Set and a listener
    // per socket in ws as well would only cost memory.
    clientTracking: false,
    // Pings are answered in onSocketPing instead: ws' own answer keeps a closure and three fields on
    // every socket (~135 B of heap, measured), and the frame budget already bounds a peer's pings.
    autoPong: false,
    // ws calls this only when the client offered subprotocols; false means "echo none".
    handleProtocols: (offered, request) => {
      const chosen = chosenProtocol.get(request);
      return chosen !== undefined && offered.has(chosen) ? chosen : false;
    },
  });
  wss.on('error', (err) => log.error({ err }, 'ws server error'));

  // At most MAX_REQUESTS_IN_FLIGHT pipelined requests per connection (node-http-limits.ts).
  const answer = limitRequestsInFlight((req, res) => answerHttp(options.http, accepting, req, res, log), log);
  const server =
    tls === undefined
      ? createServer(timeouts.http, answer)
      : createHttpsServer({ ...timeouts.http, cert: tls.cert, key: tls.key, handshakeTimeout: timeouts.tlsHandshakeMs }, answer);
  // Inactivity, per socket: a peer that connects and sends nothing, or stops reading a response.
  // ws clears it on the sockets it upgrades (setTimeout(0)); Node destroys a timed-out socket when
  // nothing listens for 'timeout'.
  server.timeout = timeouts.socketIdleMs;
  server.on('error', (err) => log.error({ err }, 'http server error'));
  // Every TCP connection holds a descriptor from accept on, upgraded or not: past the socket budget (or while
  // paused for want of descriptors) a new one is closed as it arrives, before it can sit there silent.
  // Listeners shared by every socket, not a closure per socket: an idle WebSocket lives for days.
  const budget = options.sockets;
  let paused = false;
  const socketClosed = (): void => budget.give();
  const upgradeSocketError = (err: Error): void => log.debug({ err }, 'upgrade socket error');
  server.on('connection', (socket: Duplex) => {
    if (paused || !budget.take()) {
      socket.destroy();
      return;
    }
    // A socket emits 'close' once.
    socket.on('close', socketClosed);
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Before anything else: a reset from the peer must not become an uncaught 'error'.
    socket.on('error', upgradeSocketError);
    if (!accepting) {
      refuseUpgrade(socket, 503, 'server is shutting down');
      return;
    }
    if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
      refuseUpgrade(socket, 400, 'only WebSocket upgrades are served');
      return;
    }
    if (announcesBody({ 'content-length': req.headers['content-length'], 'transfer-encoding': req.headers['transfer-encoding'] })) {
      refuseUpgrade(socket, BODY_REFUSED.status, BODY_REFUSED.body);
      return;
    }
    const request = upgradeRequestOf(req);
    const decision = decideUpgrade(handlers, request, log);
    if (!decision.accept) {
      refuseUpgrade(socket, decision.status, decision.message);
      return;
    }
    if (decision.protocol !== null) chosenProtocol.set(req, decision.protocol);
    // Synchronous in noServer mode without verifyClient: the callback runs before this returns,
    // or ws answers the handshake itself (400 for a bad key or version).
    wss.handleUpgrade(req, socket, head, (ws) => {
      // ws owns the socket now: its own 'error' listener destroys it, and the peer gives the socket back
      // to the budget on ws' 'close' (once, after the socket's). Two listener arrays fewer per socket.
      socket.off('error', upgradeSocketError);
      socket.off('close', socketClosed);
      forgetClearedTimer(socket);
      const protocol = ws.protocol === '' ? null : ws.protocol;
      const peer = new WsPeer(ws, shared);
      live.add(peer);
      peer.open(request, protocol);
    });
  });

  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => {
      reject(new PromstreamError(ErrorCode.LISTEN_FAILED, `could not listen on ${options.host}:${options.port}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', failed);
    // reusePort: Node ≥ 22.12 (older Nodes ignore it; promstream does not start workers on ws there)
    server.listen({ port: options.port, host: options.host, ...(options.reusePort === true ? { reusePort: true } : {}) }, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  // What a message left behind in ws' receive queue, given back once a connection has gone quiet
  // (started once listening, so that a start that fails leaves no timer behind).
  const compacting = setInterval(() => {
    for (const peer of live) peer.compact();
  }, COMPACT_EVERY_MS);
  compacting.unref();

  let serverClosed: Promise<void> | undefined;
  const stopAccepting = (): void => {
    if (serverClosed !== undefined) return;
    accepting = false;
    // close() stops listening now (and drops idle keep-alive connections) but calls back only
    // once every socket, upgraded ones included, is gone; close() below waits for that.
    serverClosed = new Promise((resolve) => server.close(() => resolve()));
  };

  return {
    name: 'ws',
    port,
    stopAccepting,
    pauseAccepting: () => {
      paused = true;
    },
    resumeAccepting: () => {
      paused = false;
    },
    // Node closes a thread's sockets and listener itself when the thread ends.
    abortNow: () => {
      accepting = false;
      clearInterval(compacting);
    },
    async close() {
      clearInterval(compacting);
      stopAccepting();
      // Every upgraded socket has its peer in `live` until it is gone (one whose onOpen threw was terminated at once).
      for (const peer of [...live]) peer.terminate();
      server.closeAllConnections();
      wss.close();
      await serverClosed;
      // ws emits each 'close' a little after its socket closed: wait for them, so that every onClose
      // has run when close() resolves (bounded, in case a socket never reports).
      const deadline = Date.now() + 2_000;
      while (live.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      await Promise.resolve();
    },
  };
};

/**
 * Node's knobs for httpHeadersTimeoutMs. headersTimeout and requestTimeout are enforced by a sweep
 * every connectionsCheckingInterval (30 s by default, which would let a slowloris peer stay 30 s
 * past its limit); at min(1 s, timeout/2) a peer goes at most that late. The sweep also catches a
 * connection that has sent nothing since it opened (408, measured on Node 20.20). requestTimeout
 * covers the body too, but no handler here reads one, so the same value serves.
 */
function serverTimeouts(httpHeadersTimeoutMs: number): {
  readonly http: Pick<ServerOptions, 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'>;
  readonly socketIdleMs: number;
  readonly tlsHandshakeMs: number;
} {
  return {
    http: {
      headersTimeout: httpHeadersTimeoutMs,
      requestTimeout: httpHeadersTimeoutMs,
      connectionsCheckingInterval: Math.max(1, Math.min(1000, Math.floor(httpHeadersTimeoutMs / 2))),
    },
    socketIdleMs: httpHeadersTimeoutMs,
    // Before the TLS handshake is done there is no HTTP parser to sweep. Node's default is 120 s; this
    // is a deadline from accept, not an inactivity timer (a ClientHello trickled byte by byte is cut too).
    tlsHandshakeMs: httpHeadersTimeoutMs,
  };
}

/**
 * Frames a peer may still send after the server closed it before its socket is dropped: enough for the
 * close frame's answer and whatever was in flight, far too few for a flood. ws keeps reading (and, for
 * pings, parsing) a closing socket until its own 30 s close timeout; this is what ends a flooder's turn
 * at once. Liveness' close grace (2 s) ends a silent one.
 */
const MAX_FRAMES_AFTER_CLOSE = 16;
/** How long a flooder's paused socket stays before it is dropped: the close frame's time to get out. */
const FLOODER_LINGER_MS = 500;

interface WsShared<S> extends PeerShared<S> {
  readonly maxBackpressureBytes: number;
  readonly live: Set<WsPeer<S>>;
  /** Given back when an upgraded socket is gone (before the upgrade the server's 'close' listener does). */
  readonly sockets: SocketBudget;
}

class WsPeer<S> extends GuardedPeer<S, WsShared<S>> {
  #framesAfterClose = 0;
  /** A message arrived since the last compact(). */
  #received = false;

  constructor(
    private readonly ws: PeerWebSocket,
    shared: WsShared<S>,
  ) {
    super(shared);
  }

  open(request: UpgradeRequest, protocol: string | null): void {
    const ws = this.ws;
    // Listeners shared by every socket, finding their peer on it: none per connection, none per frame.
    ws.peer = this;
    ws.on('error', onSocketError);
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketPong);
    // onSocketPing queues the pong, then counts the ping.
    ws.on('ping', onSocketPing);
    ws.on('close', onSocketClose);
    if (!this.openWith(request, protocol)) ws.terminate();
  }

  /** From ws' events (the listeners below). */
  received(data: RawData, isBinary: boolean): void {
    this.#received = true;
    if (this.closing) this.readAfterClose();
    else this.deliver(bytesOf(data), isBinary);
  }

  controlReceived(ping: boolean): void {
    if (this.closing) this.readAfterClose();
    else if (ping) this.pingReceived();
    else this.pongReceived();
  }

  socketError(err: Error): void {
    this.shared.log.debug({ err }, 'websocket error');
  }

  /** Passes the peer's code through: 1005 for a close frame without a code, 1006 for none at all. */
  socketClosed(code: number, reason: Buffer): void {
    this.shared.live.delete(this);
    this.shared.sockets.give();
    this.reportGone(code, reason.toString());
  }

  send(bytes: Uint8Array): void {
    // Past OPEN ws counts sends as buffered without writing them; that must not read as backpressure.
    if (this.closing || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(bytes, { binary: true });
    // The peer is not reading: a close frame queued behind the backlog would never reach it, so the
    // socket is dropped now (uWS does the same).
    if (this.ws.bufferedAmount > this.shared.maxBackpressureBytes) this.closeByTransport(CloseReasons.sendQueueFull);
  }

  close(code: number, reason: string): void {
    if (!this.markClosing()) return;
    this.closeSocket(code, reason);
  }

  protected closeByTransport(reason: ServerCloseReason): void {
    if (!this.markClosing(reason)) return;
    if (reason === CloseReasons.sendQueueFull) this.ws.terminate();
    else this.closeSocket(reason.code, reason.reason);
  }

  terminate(): void {
    this.markClosing();
    this.ws.terminate();
  }

  ping(): void {
    if (this.closing || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.ping();
  }

  /**
   * Every COMPACT_EVERY_MS. ws queues each chunk read from the socket in its receiver's array and takes it
   * out again; on Node 20 the emptied array keeps the room it grew (146 B, measured), for as long as the
   * connection stays quiet. Setting the length of an empty array to 0 gives that back. Not on the
   * per-frame path: there the same two steps cost ~115 ns per frame (measured), here once per quiet spell.
   */
  compact(): void {
    if (!this.#received) return;
    this.#received = false;
    const queue = (this.ws as unknown as WsInternals)._receiver?._buffers;
    if (queue !== undefined && queue.length === 0) queue.length = 0;
  }

  private readAfterClose(): void {
    if (++this.#framesAfterClose !== MAX_FRAMES_AFTER_CLOSE + 1) return;
    // Stop reading (no more parsing, no CPU), and drop the socket a moment later rather than now: a
    // socket destroyed with unread bytes sends a reset, and a reset can overtake our close frame still
    // on its way, so the flooder would never learn why it was closed.
    this.ws.pause();
    setTimeout(() => this.ws.terminate(), FLOODER_LINGER_MS).unref();
  }

  private closeSocket(code: number, reason: string): void {
    // Not OPEN: the peer started the close handshake; its 'close' event follows on its own.
    if (this.ws.readyState !== WebSocket.OPEN) return;
    try {
      this.ws.close(code, reason);
    } catch (err) {
      // ws throws on a code it may not send or a reason over 123 bytes: a caller bug, but one that
      // must not escape from a timer and take the process down.
      this.shared.log.error({ err, code }, 'invalid close code or reason; terminating instead');
      this.ws.terminate();
    }
  }
}

/** How often quiet connections give back what ws' receive queue grew to (WsPeer.compact). */
const COMPACT_EVERY_MS = 1_000;

/** The fields of ws' objects that WsPeer and PeerWebSocket reach into (ws-transport.test.ts checks they exist). */
export interface WsInternals {
  _extensions: object;
  _receiver: { _buffers: unknown[]; _extensions: object } | null;
  _sender: { _extensions: object } | null;
}

/** No extension is negotiated (perMessageDeflate is off): one empty table for every connection. */
const NO_EXTENSIONS: object = Object.freeze({});

/**
 * ws' WebSocket, leaner per connection (measured: npm run bench, connections, heap used per session):
 * - its peer in a field of its own;
 * - its event table shaped once for the five events listened to, as Node's streams shape theirs. An
 *   EventEmitter starts with a null-prototype object, which V8 keeps as a hash table: with five
 *   listeners ~290 B, a plain object with those keys ~70 B.
 * - one shared, frozen table of negotiated extensions instead of an empty object of its own (56 B),
 *   which ws hands on to the connection's receiver and sender when it takes the socket.
 */
export class PeerWebSocket extends WebSocket {
  peer: WsPeer<unknown> | null = null;
  /** Replaces the table EventEmitter's constructor made (a field is set right after it). */
  _events = { error: undefined, message: undefined, ping: undefined, pong: undefined, close: undefined };
  _extensions = NO_EXTENSIONS;
}

function onSocketError(this: WebSocket, err: Error): void {
  (this as PeerWebSocket).peer?.socketError(err);
}
function onSocketMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as PeerWebSocket).peer?.received(data, isBinary);
}
function onSocketPing(this: WebSocket, data: Buffer): void {
  // Answered first, as ws' autoPong would (queued behind what is being sent); then counted.
  if (this.readyState === WebSocket.OPEN) this.pong(data);
  (this as PeerWebSocket).peer?.controlReceived(true);
}
function onSocketPong(this: WebSocket): void {
  (this as PeerWebSocket).peer?.controlReceived(false);
}
function onSocketClose(this: WebSocket, code: number, reason: Buffer): void {
  (this as PeerWebSocket).peer?.socketClosed(code, reason);
}

/**
 * Node keeps a socket's inactivity timer referenced after `setTimeout(0)` has cleared it (~150 B for as
 * long as the socket lives): the http server armed one (server.timeout) and ws cleared it on upgrade.
 * The timer is Node's own `Symbol('timeout')` property; it is let go only once cleared (no callback).
 */
let timerKey: symbol | null | undefined;
function forgetClearedTimer(socket: Duplex): void {
  timerKey ??= Object.getOwnPropertySymbols(socket).find((k) => k.description === 'timeout') ?? null;
  if (timerKey === null) return;
  const holder = socket as unknown as Record<symbol, { _onTimeout?: unknown } | null | undefined>;
  const timer = holder[timerKey];
  if (timer !== null && timer !== undefined && timer._onTimeout === null) holder[timerKey] = null;
}

function bytesOf(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return data;
}

function upgradeRequestOf(req: IncomingMessage): UpgradeRequest {
  const { path, query } = splitUrl(req.url ?? '/');
  const offered = req.headers['sec-websocket-protocol'];
  return {
    path,
    query,
    origin: req.headers.origin,
    protocols: offered === undefined ? [] : parseProtocols(offered),
    remoteAddress: remoteAddressOf(req.socket),
    // Node joins repeated X-Forwarded-For lines with ', ' (uws-transport.ts does the same).
    forwardedFor: headerText(req.headers['x-forwarded-for']),
  };
}

/**
 * The peer's address, without the copy Node keeps: reading socket.remoteAddress caches an object of
 * address, family and port on the socket (56 B) for as long as it lives. Let go, a later read asks the
 * kernel again.
 */
export function remoteAddressOf(socket: Duplex | IncomingMessage['socket']): string {
  const address = (socket as IncomingMessage['socket']).remoteAddress ?? '';
  const cache = socket as unknown as { _peername?: unknown };
  if (cache._peername !== undefined) cache._peername = undefined;
  return address;
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** A refused upgrade is a plain HTTP response on the raw socket, then the socket goes. */
function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const body = Buffer.from(message);
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Refused'}\r\n` +
    'Connection: close\r\n' +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n\r\n`;
  // end() flushes before the FIN; destroy after 'finish' so a peer that never reads cannot hold it.
  socket.once('finish', () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(head), body]));
}

function answerHttp(handler: HttpHandler, accepting: boolean, req: IncomingMessage, res: ServerResponse, log: Logger): void {
  res.on('error', (err) => log.debug({ err }, 'http response error'));
  if (!accepting) {
    res.writeHead(SHUTTING_DOWN.status, { ...SHUTTING_DOWN.headers, connection: 'close' }).end(SHUTTING_DOWN.body);
    return;
  }
  const { path, query } = splitUrl(req.url ?? '/');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    const text = headerText(value);
    if (text !== undefined) headers[name] = text;
  }
  if (announcesBody(headers)) {
    // Connection: close makes Node send nothing after it on this connection, and then close it.
    res.writeHead(BODY_REFUSED.status, { ...BODY_REFUSED.headers, connection: 'close' }).end(BODY_REFUSED.body);
    return;
  }
  const request: HttpRequest = { method: req.method ?? 'GET', path, query, headers };
  let response;
  try {
    response = handler(request);
  } catch (err) {
    log.error({ err, path }, 'http handler threw');
    res.writeHead(INTERNAL_ERROR.status, INTERNAL_ERROR.headers).end(INTERNAL_ERROR.body);
    return;
  }
  if (response === null) {
    res.writeHead(NOT_FOUND.status, NOT_FOUND.headers).end(NOT_FOUND.body);
    return;
  }
  try {
    res.writeHead(response.status, response.headers);
  } catch (err) {
    // Node rejects header values with CR/LF and the like.
    log.error({ err, path }, 'http handler returned invalid headers');
    res.writeHead(INTERNAL_ERROR.status, INTERNAL_ERROR.headers).end(INTERNAL_ERROR.body);
    return;
  }
  res.end(response.body);
}
