/**
 * The uWebSockets.js transport: the fast path, a native binary that is an optional dependency.
 * Semantics match ws-transport.ts and guarded-peer.ts; the differences live in the library:
 * - A uWS WebSocket throws when touched after its close handler ran, so every Peer method checks
 *   first whether the socket is gone.
 * - ws.end() and ws.close() run the close handler synchronously, inside the call, and once it has run
 *   the socket is out of reach. So a close frame is only handed to end() when nothing is queued before
 *   it (it then goes straight to the kernel); behind a backlog it waits for uWS's drain (bounded by
 *   liveness' close grace), or a congested peer would lose it when the server shuts down.
 * - A frame above maxPayloadLength is cut without a close frame: the client sees 1006, onClose
 *   gets 1006 'Received too big message'.
 * - The request object of a handler is stack-allocated: everything is read before returning.
 * - A peer's ping is answered with a pong by uWS itself before the `ping` handler (onPing) runs.
 * - httpHeadersTimeoutMs cannot be set: uWS drops slow HTTP peers on a fixed clock of its build (uwsHttpTimeoutMs).
 * - uWS gives JavaScript no handle on an HTTP connection, and parses every pipelined request it has
 *   read, whether or not the peer reads the answers. What bounds a connection is uWS's refusal to
 *   parse a request behind an unfinished answer: answers with a body are streamed with tryEnd(), and
 *   answers without body bytes (HEAD, 304) end their connection (write(); how differs by build,
 *   uwsBodilessAnswers()).
 */
import type { Logger } from 'pino';
import type {
  TemplatedApp,
  HttpResponse as UwsHttpResponse,
  HttpRequest as UwsHttpRequest,
  WebSocket as UwsWebSocket,
  us_listen_socket,
} from 'uWebSockets.js';
import { CloseReasons, type ServerCloseReason } from '../../protocol/index.js';
import { ErrorCode, PromstreamError } from '../errors.js';
import { claimPort } from './free-port.js';
import { GuardedPeer, type PeerShared } from './guarded-peer.js';
import { BODY_REFUSED, INTERNAL_ERROR, NOT_FOUND, SHUTTING_DOWN, announcesBody, checkHeadersTimeout, parseProtocols, statusLine } from './http-parts.js';
import { decideUpgrade } from './upgrade-decision.js';
import type {
  HttpHandler,
  HttpRequest,
  HttpResponse,
  RunningTransport,
  StartTransport,
  TransportOptions,
  UpgradeRequest,
} from './types.js';
import { readTlsFiles } from './tls-files.js';
import { formatUwsFailures, loadNativeUws, type NativeUwsModule, type UwsBuild, type UwsCandidateFailure } from './uws-loader.js';

export type UwsModule = NativeUwsModule;
export type UwsLoadResult =
  | { readonly uws: UwsModule; readonly build: UwsBuild; readonly passedOver: readonly UwsCandidateFailure[]; readonly error: null }
  | { readonly uws: null; readonly failures: readonly UwsCandidateFailure[]; readonly error: Error };

/** WebSocket.send() results: written with nothing left queued; not queued because the backpressure limit is reached. */
const SEND_SUCCESS = 1;
const SEND_DROPPED = 2;

let loading: Promise<UwsLoadResult> | undefined;

/**
 * Loads the native module once (uws-loader.ts: the first build that loads here, never a package's own
 * entry point, which prints warnings or swaps in a JavaScript imitation); `uws: null` with one
 * reason per candidate when none does. An optional dependency, loaded lazily so that a missing or
 * broken binary costs only this transport.
 */
export function loadUws(): Promise<UwsLoadResult> {
  loading ??= Promise.resolve().then((): UwsLoadResult => {
    const result = loadNativeUws();
    if (result.ok) {
      const { packageName, version, binaryPath } = result;
      return { uws: result.module, build: { packageName, version, binaryPath }, passedOver: result.passedOver, error: null };
    }
    return { uws: null, failures: result.failures, error: new Error(formatUwsFailures(result.failures)) };
  });
  return loading;
}

interface UserData<S> {
  /** Until open: only onOpen reads it, and a socket may live for days (a few hundred bytes each). */
  request: UpgradeRequest | null;
  readonly protocol: string | null;
  peer: UwsPeer<S> | undefined;
}

/** What the App of this uWS version offers at runtime beyond its index.d.ts. */
interface AppRuntime {
  /** The d.ts has only listen(port, options, cb), which cannot take a host. */
  listen(host: string, port: number, options: number, cb: (listenSocket: us_listen_socket | false) => void): unknown;
  /** Ends every socket, HTTP keep-alive ones included, and every listener; absent in older versions. */
  close?: () => void;
}

/**
 * uSockets sets SO_REUSEPORT on a listener with a fixed port unless told otherwise: a second
 * process on the same port would then silently take half the connections (and their sessions).
 * The flag keeps SO_REUSEADDR, so a restart still binds while old connections sit in TIME_WAIT.
 * Its ListenOptions enum in index.d.ts has no runtime value, hence the literal.
 */
const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

/**
 * uWS has no setting for an HTTP header timeout. uSockets gives each HTTP connection a fixed timeout
 * when it is accepted and again after each response, counted on a 4-s timer wheel; incoming bytes do
 * not re-arm it. So a peer that sends nothing, stops mid-headers, trickles a header byte every 200 ms or
 * trickles its TLS ClientHello is cut that long after it connected, and an idle keep-alive connection
 * that long after its last response. The timeout differs by build; measured here, plain and TLS alike:
 * - @trufflesuite 20.30.0-unofficial.0 (HTTP_IDLE_TIMEOUT_S 10): 9.4–12.0 s; 16.0 s for a request at +6 s.
 * - @btc-vision 20.57.0: 32.0 s for every such peer; 36.0 s for a request at +6 s (docs/UWS-PROVENANCE.md).
 * A shorter deadline in JavaScript would need a hook at accept time that can tell later whether the
 * socket has sent a request: 20.30 has none, and 20.57's App.filter sees accepts and closes but hands
 * over a response object that cannot be matched to the request (nor safely closed after an upgrade).
 */
export function uwsHttpTimeoutMs(version: string): { readonly earliest: number; readonly latest: number } {
  if (/^20\.30\./.test(version)) return { earliest: 8_000, latest: 12_000 };
  if (/^20\.57\./.test(version)) return { earliest: 28_000, latest: 36_000 };
  // Not measured: the widest range seen so far.
  return { earliest: 8_000, latest: 36_000 };
}

/**
 * How an answer without body bytes (HEAD, 304) is kept from letting pipelined requests pile up (write()).
 * The builds differ in what tryEnd(empty, n) does, measured here:
 * - 'tryEnd' (@trufflesuite 20.30): tryEnd(empty, n) leaves the answer unfinished ([true, false]): uWS
 *   waits for n body bytes, so it parses nothing behind it, and JavaScript closes the connection after
 *   the turn. endWithoutBody(n, true) there leaves the connection open with no timeout.
 * - 'deferred' (@btc-vision 20.57, and builds not measured): tryEnd(empty, n) finishes the answer at
 *   once ([true, true]), the connection stays open and every pipelined request behind it is answered
 *   (8 000 of 8 000); closing that response afterwards throws, and an exception in a setImmediate ends
 *   the process: one HEAD took the server down. endWithoutBody(n, true) inside the handler closes, but
 *   only after parsing ~135 more requests of that read. So nothing is written in the handler: the
 *   answer, unfinished, makes uWS close the connection unanswered when a request behind it is parsed;
 *   after the turn it is written with endWithoutBody(n, true), and uWS closes the connection after it.
 */
export function uwsBodilessAnswers(version: string): 'tryEnd' | 'deferred' {
  return /^20\.30\./.test(version) ? 'tryEnd' : 'deferred';
}

export const startUwsTransport: StartTransport = async <S>(options: TransportOptions<S>): Promise<RunningTransport> => {
  const loaded = await loadUws();
  if (loaded.uws === null) throw new PromstreamError(ErrorCode.TRANSPORT_UNAVAILABLE, `the uws transport is unavailable: ${loaded.error.message}`, { cause: loaded.error });
  const uws = loaded.uws;
  const { handlers, log, maxBackpressureBytes } = options;
  checkHeadersTimeout(options.httpHeadersTimeoutMs);
  const httpTimeoutMs = uwsHttpTimeoutMs(loaded.build.version);
  if (options.httpHeadersTimeoutMs < httpTimeoutMs.earliest) {
    const seconds = `${httpTimeoutMs.earliest / 1000}–${httpTimeoutMs.latest / 1000} s`;
    log.warn(
      { httpHeadersTimeoutMs: options.httpHeadersTimeoutMs, uwsHttpTimeoutMs: httpTimeoutMs, uws: `${loaded.build.packageName}@${loaded.build.version}` },
      `uWebSockets.js drops slow HTTP requests after its own fixed ${seconds} (this build), not after ${options.httpHeadersTimeoutMs / 1000} s (the handshake timeout); use the ws transport for a shorter limit`,
    );
  }
  const app = options.tls === undefined ? uws.App() : await createSslApp(uws, options.tls);
  // A library typing gap, not untrusted data: the runtime has these (the tests exercise both).
  const appRuntime = app as unknown as AppRuntime;
  // Open peers, for a close() that must end them itself: only where the App has no close() (older
  // builds), else an entry per idle socket would be kept for nothing.
  const live = typeof appRuntime.close === 'function' ? null : new Set<UwsPeer<S>>();
  const shared: UwsShared<S> = { handlers, log, maxBackpressureBytes, live };
  let accepting = true;

  app.ws<UserData<S>>('/*', {
    maxPayloadLength: options.maxPayloadBytes,
    maxBackpressure: maxBackpressureBytes,
    // A flag in the C++ side; its index.d.ts types it as a number.
    closeOnBackpressureLimit: 1,
    // Liveness is the caller's own ping timer: uWS checks idleTimeout only every 4 s and aborts the
    // process for values 1..8, so it cannot serve short timeouts.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    compression: uws.DISABLED,
    upgrade: (res, req, context) => {
      // req is only valid until this function returns: read all of it before deciding.
      const key = req.getHeader('sec-websocket-key');
      const extensions = req.getHeader('sec-websocket-extensions');
      const request = upgradeRequestOf(res, req);
      if (!accepting) {
        refuse(res, 503, 'server is shutting down');
        return;
      }
      if (announcesBody(framingHeadersOf(req))) {
        refuseLater(res, BODY_REFUSED, watchAborted(res));
        return;
      }
      const decision = decideUpgrade(handlers, request, log);
      if (!decision.accept) {
        refuse(res, decision.status, decision.message);
        return;
      }
      const protocol = decision.protocol;
      // An empty Sec-WebSocket-Protocol argument makes uWS send no such header.
      res.upgrade<UserData<S>>({ request, protocol, peer: undefined }, key, protocol ?? '', extensions, context);
    },
    open: (ws) => {
      const data = ws.getUserData();
      // Set by our upgrade handler, which every uWS open follows exactly once.
      const request = data.request!;
      data.request = null;
      const peer = new UwsPeer(ws, shared);
      data.peer = peer;
      live?.add(peer);
      peer.open(request, data.protocol);
    },
    // The send queue emptied: a close waiting behind it can go now.
    drain: (ws) => ws.getUserData().peer?.drained(),
    // The ArrayBuffer is neutered when this returns; the handlers copy what they keep (types.ts).
    message: (ws, message, isBinary) => ws.getUserData().peer?.deliver(new Uint8Array(message), isBinary),
    // uWS has already sent the pong when this runs.
    ping: (ws) => ws.getUserData().peer?.pingReceived(),
    pong: (ws) => ws.getUserData().peer?.pongReceived(),
    // Passes the peer's code through: 1005 for a close frame without a code, 1006 for none at all.
    close: (ws, code, message) => ws.getUserData().peer?.closed(code, Buffer.from(message).toString()),
  });

  const bodiless = uwsBodilessAnswers(loaded.build.version);
  app.any('/*', (res, req) => answerHttp(options.http, accepting, res, req, log, bodiless));

  const listenOn = (port: number): Promise<us_listen_socket | false> =>
    new Promise((resolve) => appRuntime.listen(options.host, port, options.reusePort === true ? 0 : LIBUS_LISTEN_EXCLUSIVE_PORT, resolve));
  let listenSocket: us_listen_socket | null = null;
  if (options.port !== 0) {
    listenSocket = (await listenOn(options.port)) || null;
  } else {
    // uSockets sets SO_REUSEADDR only for an explicit port; a listener on port 0 gets none, and then
    // its closed connections (FIN-WAIT) keep the port from being bound again, e.g. by a restart.
    // So port 0 is resolved by the kernel first, then bound explicitly; a lost race is retried.
    for (let attempt = 0; attempt < 5 && listenSocket === null; attempt++) {
      listenSocket = (await listenOn(await claimPort(options.host, 0))) || null;
    }
  }
  // uWS reports no errno: the usual causes are a port in use or a privileged port.
  if (listenSocket === null) throw new PromstreamError(ErrorCode.LISTEN_FAILED, `uWebSockets.js could not listen on ${options.host}:${options.port} (in use, or a privileged port?)`);
  const port = uws.us_socket_local_port(listenSocket);

  const closeListener = (): void => {
    if (listenSocket === null) return;
    uws.us_listen_socket_close(listenSocket);
    listenSocket = null;
  };
  const stopAccepting = (): void => {
    accepting = false;
    closeListener();
  };
  // Paused: the listener is closed, so connects are refused at once instead of waiting in an accept queue
  // that uSockets, out of descriptors, would spin on. Resumed: the same port, bound again.
  let resuming = false;
  const resumeAccepting = (): void => {
    if (!accepting || listenSocket !== null || resuming) return;
    resuming = true;
    void listenOn(port).then((socket) => {
      resuming = false;
      if (socket === false) log.warn({ port }, 'could not listen again after a pause; retrying at the next chance');
      else if (!accepting) uws.us_listen_socket_close(socket);
      else listenSocket = socket;
    });
  };

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    stopAccepting();
    // app.close() also drops keep-alive HTTP connections and runs every close handler synchronously.
    if (typeof appRuntime.close === 'function') appRuntime.close();
    if (live !== null) for (const peer of [...live]) peer.terminate();
    // onClose calls were queued as microtasks during the calls above and run before this resumes,
    // so they have all happened when close() resolves.
    await Promise.resolve();
  };

  return {
    name: 'uws',
    port,
    stopAccepting,
    pauseAccepting: closeListener,
    resumeAccepting,
    close: () => (closing ??= close()),
    abortNow: () => {
      accepting = false;
      closeListener();
      if (typeof appRuntime.close === 'function') appRuntime.close();
    },
  };
};

interface UwsShared<S> extends PeerShared<S> {
  readonly maxBackpressureBytes: number;
  readonly live: Set<UwsPeer<S>> | null;
}

class UwsPeer<S> extends GuardedPeer<S, UwsShared<S>> {
  /** A close waiting for the send queue to empty. */
  #pendingClose: { readonly code: number; readonly reason: string } | null = null;

  constructor(
    private readonly ws: UwsWebSocket<UserData<S>>,
    shared: UwsShared<S>,
  ) {
    super(shared);
  }

  open(request: UpgradeRequest, protocol: string | null): void {
    if (!this.openWith(request, protocol)) this.drop();
  }

  /** From the uWS close handler, whoever closed: the socket is gone. */
  closed(code: number, reason: string): void {
    this.shared.live?.delete(this);
    this.reportGone(code, reason);
  }

  drained(): void {
    const pending = this.#pendingClose;
    if (pending !== null && !this.isGone && this.ws.getBufferedAmount() === 0) this.ws.end(pending.code, pending.reason);
  }

  send(bytes: Uint8Array): void {
    if (this.closing) return;
    const status = this.ws.send(bytes, true);
    // closeOnBackpressureLimit acts only on a dropped send, and later in the event loop: close now,
    // with a reason, on the send that crossed the limit. The peer is not reading, so a close frame
    // queued behind the backlog would never reach it: drop the socket. After a plain success nothing
    // is queued, so the native getBufferedAmount() call (one per ack) is only made when bytes stayed.
    if (status === SEND_DROPPED || (status !== SEND_SUCCESS && this.ws.getBufferedAmount() > this.shared.maxBackpressureBytes)) {
      this.closeByTransport(CloseReasons.sendQueueFull);
    }
  }

  close(code: number, reason: string): void {
    if (!this.markClosing()) return;
    this.endWhenFlushed(code, reason);
  }

  protected closeByTransport(reason: ServerCloseReason): void {
    if (!this.markClosing(reason)) return;
    if (reason === CloseReasons.sendQueueFull) this.drop();
    else this.endWhenFlushed(reason.code, reason.reason);
  }

  terminate(): void {
    this.markClosing();
    this.drop();
  }

  ping(): void {
    if (this.closing) return;
    this.ws.ping();
  }

  /** end() now when nothing is queued, else once uWS reports the queue drained (drained()). */
  private endWhenFlushed(code: number, reason: string): void {
    if (this.isGone) return;
    if (this.ws.getBufferedAmount() === 0) this.ws.end(code, reason);
    else this.#pendingClose = { code, reason };
  }

  private drop(): void {
    if (!this.isGone) this.ws.close();
  }
}

function upgradeRequestOf(res: UwsHttpResponse, req: UwsHttpRequest): UpgradeRequest {
  // getHeader() answers '' for a missing header, so an empty Origin reads as none.
  const origin = req.getHeader('origin');
  return {
    path: req.getUrl(),
    query: queryOf(req),
    origin: origin === '' ? undefined : origin,
    protocols: parseProtocols(req.getHeader('sec-websocket-protocol')),
    remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(),
    forwardedFor: forwardedForOf(req),
  };
}

/**
 * getHeader() gives only the first of repeated headers, and '' for an absent one. A proxy may add
 * its own X-Forwarded-For line after the client's, so all lines are joined with ', ' as Node does.
 */
function forwardedForOf(req: UwsHttpRequest): string | undefined {
  let joined: string | undefined;
  req.forEach((name, value) => {
    if (name === 'x-forwarded-for') joined = joined === undefined ? value : `${joined}, ${value}`;
  });
  return joined;
}

/** getQuery() returns undefined, not the '' its index.d.ts promises, when the URL has no query. */
function queryOf(req: UwsHttpRequest): string {
  const query: string | undefined = req.getQuery();
  return query ?? '';
}

function refuse(res: UwsHttpResponse, status: number, message: string): void {
  res.writeStatus(statusLine(status)).writeHeader('content-type', 'text/plain; charset=utf-8').end(message, true);
}

/** Content-Length and Transfer-Encoding as announcesBody() reads them: repeated ones joined with ', '. */
function framingHeadersOf(req: UwsHttpRequest): Record<string, string> {
  const framing: Record<string, string> = {};
  req.forEach((name, value) => {
    if (name !== 'content-length' && name !== 'transfer-encoding') return;
    const previous = framing[name];
    framing[name] = previous === undefined ? value : `${previous}, ${value}`;
  });
  return framing;
}

/**
 * A refusal after which uWS must parse nothing more of its connection (refused framing, where what
 * follows may be a smuggled request). Sent now, it would not stop uWS: end(…, true) closes the
 * connection only once uWS has parsed, and run, the rest of what it read. So the answer is left
 * unfinished until after this event-loop turn: a request pipelined behind it in the same read makes
 * uWS close the connection at once, unanswered (it never runs); else the 400 goes out with
 * Connection: close, and uWS closes the connection after it.
 */
function refuseLater(res: UwsHttpResponse, refusal: { readonly status: number; readonly body: string }, answer: Answer): void {
  setImmediate(() => {
    if (!answer.aborted) res.cork(() => refuse(res, refusal.status, refusal.body));
  });
}

/** An answer that may finish after its handler returned: uWS requires onAborted, and then nothing may touch it. */
function watchAborted(res: UwsHttpResponse): Answer {
  const answer: Answer = { aborted: false };
  res.onAborted(() => {
    answer.aborted = true;
  });
  return answer;
}

function answerHttp(handler: HttpHandler, accepting: boolean, res: UwsHttpResponse, req: UwsHttpRequest, log: Logger, bodiless: 'tryEnd' | 'deferred'): void {
  // Some answers finish after this call (write(), refuseLater()); once aborted, uWS calls nothing
  // more of it (onWritable included).
  const answer = watchAborted(res);
  if (!accepting) {
    write(res, answer, 'GET', SHUTTING_DOWN, true, bodiless);
    return;
  }
  const headers: Record<string, string> = Object.create(null);
  // uWS lower-cases header names; repeated headers are joined as Node does.
  req.forEach((name, value) => {
    const previous = headers[name];
    headers[name] = previous === undefined ? value : `${previous}, ${value}`;
  });
  if (announcesBody(headers)) {
    refuseLater(res, BODY_REFUSED, answer);
    return;
  }
  // getMethod() is lower-case in uWS 20; Node (and HTTP) spell methods in upper case.
  const method = req.getMethod().toUpperCase();
  const request: HttpRequest = { method, path: req.getUrl(), query: queryOf(req), headers };
  let response;
  try {
    response = handler(request);
  } catch (err) {
    log.error({ err, path: request.path }, 'http handler threw');
    response = INTERNAL_ERROR;
  }
  write(res, answer, method, response ?? NOT_FOUND, false, bodiless);
}

interface Answer {
  aborted: boolean;
}

const EMPTY = new Uint8Array(0);

/**
 * Writes one answer so that a connection holds at most one answer in this process, however many
 * requests it pipelines without reading. While an answer is unfinished, uWS parses no further
 * request of its connection: it closes the connection when the next one arrives (it refuses
 * pipelining behind an unfinished answer). So:
 * - With a body: tryEnd() hands the kernel what it takes and leaves the rest in our own (shared)
 *   body, continued from onWritable. (res.end() would copy whatever the kernel does not take into
 *   the socket's buffer and parse on: 8 000 pipelined requests for the 36 KiB script held 290 MB.)
 * - Without body bytes (HEAD, 304) uWS would consider the answer finished at once, whether or not
 *   its head left, and parse on: such answers would pile up without bound. So the answer is
 *   announced with the length of its representation (HEAD: the body's; 304: the Content-Length the
 *   route gives, that of its 200), is unfinished during the handler, which stops the parsing, and
 *   its connection is closed right after this event-loop turn (Connection: close tells the client
 *   so): one such answer per connection. How depends on the build (uwsBodilessAnswers()): 20.30 is
 *   left waiting for body bytes by tryEnd(empty, n) and closed by JavaScript after the turn; 20.57,
 *   whose tryEnd(empty, n) finishes at once, gets nothing in the handler and endWithoutBody(n, true)
 *   after the turn. (endWithoutBody(n) on 20.30 would lose the close: the JavaScript object is gone,
 *   and the connection stays open with no timeout at all, measured past 20 s.)
 * - closeConnection (shutting down): end(body, true).
 */
function write(res: UwsHttpResponse, answer: Answer, method: string, response: HttpResponse, closeConnection: boolean, bodiless: 'tryEnd' | 'deferred'): void {
  const body = typeof response.body === 'string' ? Buffer.from(response.body) : (response.body ?? EMPTY);
  let declaredLength = 0;
  const headers: Array<readonly [string, string]> = [];
  for (const [name, value] of Object.entries(response.headers ?? {})) {
    const lower = name.toLowerCase();
    // uWS writes Content-Length (and for end(…, true) Connection) itself; a second one would corrupt the response.
    if (lower === 'content-length') declaredLength = Number(value);
    else if (lower !== 'connection') headers.push([name, value]);
  }
  const writeHead = (): void => {
    res.writeStatus(statusLine(response.status));
    for (const [name, value] of headers) res.writeHeader(name, value);
  };
  // HEAD carries the body it would send; a 304 carries none, but the route's Content-Length.
  const representationLength = body.byteLength > 0 ? body.byteLength : declaredLength;
  if ((method === 'HEAD' || body.byteLength === 0) && Number.isSafeInteger(representationLength) && representationLength > 0) {
    if (bodiless === 'deferred') {
      // Unfinished until after this turn: a request behind it in the same read closes the connection unanswered.
      setImmediate(() => {
        // closeConnection: uWS writes Connection: close and closes once the head is out.
        if (answer.aborted) return;
        res.cork(() => {
          writeHead();
          res.endWithoutBody(representationLength, true);
        });
      });
      return;
    }
    writeHead();
    res.writeHeader('connection', 'close');
    // [true, false]: uWS now waits for representationLength body bytes, which never come.
    const [, done] = res.tryEnd(EMPTY, representationLength);
    // done: a build that finished the answer after all (not 20.30); touching it now would throw.
    if (!done) {
      setImmediate(() => {
        if (!answer.aborted) res.close();
      });
    }
    return;
  }
  writeHead();
  if (closeConnection || body.byteLength === 0) {
    // An empty 200 (none of our routes has one) or a refusal: uWS parses what it has read already,
    // then closes the connection.
    res.end(body, true);
    return;
  }
  const [, done] = res.tryEnd(body, body.byteLength);
  if (done) return;
  // offset: the body bytes the kernel has taken so far.
  res.onWritable((offset) => res.tryEnd(body.subarray(offset), body.byteLength)[0]);
}

/** uWS reads the PEM files itself, and fails without a reason: check them first for a useful error. */
async function createSslApp(uws: UwsModule, tls: { readonly certFile: string; readonly keyFile: string }): Promise<TemplatedApp> {
  await readTlsFiles(tls);
  try {
    return uws.SSLApp({ cert_file_name: tls.certFile, key_file_name: tls.keyFile });
  } catch (err) {
    // Only when a file changed since it was checked: uWS then throws 'App construction failed'.
    throw new PromstreamError(ErrorCode.TLS_FILE, `uWebSockets.js could not load the TLS certificate ${tls.certFile} or key ${tls.keyFile} (${String(err)})`, {
      cause: err,
    });
  }
}

