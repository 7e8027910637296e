/**
 * The one small interface between promstream and the library that carries WebSocket bytes.
 * Nothing outside server/transport/ imports uWebSockets.js or ws.
 */
import type { Logger } from 'pino';
import type { ServerCloseReason } from '../../protocol/index.js';

export type TransportName = 'uws' | 'ws';
/** --transport: a library, or 'auto' (uWS when its binary loads, else ws). */
export type TransportChoice = 'auto' | TransportName;

/** One WebSocket connection, as the connection handler sees it. Every method is safe after close (no-op). */
export interface Peer {
  /** Queues a binary frame. Past maxBackpressureBytes the transport closes the peer (1008 'send queue full'). */
  send(bytes: Uint8Array): void;
  /**
   * Starts the close handshake with a code and reason (reason ≤ 123 bytes). Nothing is delivered to the
   * handlers afterwards. The close frame goes out behind what is already queued; onClose follows once
   * the socket is gone (the peer answered, or terminate()).
   */
  close(code: number, reason: string): void;
  /** Drops the connection without a close handshake (for peers that stopped answering). */
  terminate(): void;
  /** Sends a protocol-level ping; the peer's pong arrives as onPong. */
  ping(): void;
}

export interface UpgradeRequest {
  /** Path without the query string, e.g. '/ws'. */
  readonly path: string;
  /** Raw query string without '?', '' when none. */
  readonly query: string;
  readonly origin: string | undefined;
  /** Offered subprotocols from Sec-WebSocket-Protocol, in order, trimmed. */
  readonly protocols: readonly string[];
  readonly remoteAddress: string;
  /** The X-Forwarded-For header as sent, undefined when absent (only trusted with --trust-proxy). */
  readonly forwardedFor: string | undefined;
}

export type UpgradeDecision =
  | { readonly accept: true; /** subprotocol to echo, or null for none */ readonly protocol: string | null }
  | { readonly accept: false; readonly status: number; readonly message: string };

export interface ConnectionHandlers<S> {
  /** Called before the upgrade completes: refuse (e.g. 403 bad origin, 404 bad path) or pick a subprotocol. */
  checkUpgrade(req: UpgradeRequest): UpgradeDecision;
  /** Called once the WebSocket is open; returns the handler's per-connection state. */
  onOpen(peer: Peer, req: UpgradeRequest, protocol: string | null): S;
  /** `data` is only valid during the call (uWS reuses the buffer): copy it to keep it. */
  onMessage(state: S, data: Uint8Array, isBinary: boolean): void;
  onPong(state: S): void;
  /** A ping from the peer (the transport answers it with a pong itself); counted against rate limits. */
  onPing(state: S): void;
  /**
   * Called exactly once per opened connection, once its socket is gone, whoever closed it. `code` and
   * `reason` are the close as the transport saw it (1005: a close frame without a code, 1006: none at
   * all); `byTransport` is set when the transport itself closed the connection (send queue full, a
   * handler that threw), null when the peer or the handler did.
   */
  onClose(state: S, code: number, reason: string, byTransport: ServerCloseReason | null): void;
}

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string>>;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
}

/** Plain HTTP on the public side (/healthz, /promstream.js, the demo page). null → 404. */
export type HttpHandler = (req: HttpRequest) => HttpResponse | null;

export interface TransportOptions<S> {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Hard frame limit at the transport. */
  readonly maxPayloadBytes: number;
  /** Send-queue bytes per connection before the transport closes it. */
  readonly maxBackpressureBytes: number;
  readonly handlers: ConnectionHandlers<S>;
  readonly http: HttpHandler;
  /** PEM files for wss:// and https:// without a proxy in front; plain ws:// and http:// when absent. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /**
   * Slow or stuck HTTP requests (slowloris) are dropped after this: the request line and headers of an
   * upgrade or an HTTP request must arrive within it.
   */
  readonly httpHeadersTimeoutMs: number;
  /**
   * TCP connections the public side may hold at once, upgraded or not (each is an open file; with
   * workers the budget is the host's); one past it is dropped as it arrives. Enforced where the library
   * shows connections before their upgrade (ws); uWS shows nothing before the headers are in, so there
   * only upgraded ones count (admission).
   */
  readonly sockets: SocketBudget;
  /**
   * Share the port with the other workers of this process (SO_REUSEPORT: the kernel spreads new
   * connections over every listener). `port` must then be the one port they all use.
   */
  readonly reusePort?: boolean;
  readonly log: Logger;
}

export interface RunningTransport {
  readonly name: TransportName;
  /** The port actually bound. */
  readonly port: number;
  /** Stops accepting new connections and HTTP requests, for good (shutdown); open WebSockets stay. */
  stopAccepting(): void;
  /** Stops taking new TCP connections for now (descriptors ran out); everything open carries on. */
  pauseAccepting(): void;
  resumeAccepting(): void;
  /** Terminates whatever is still open and releases the port. */
  close(): Promise<void>;
  /**
   * The same, synchronously, for a worker thread's `exit` hook: a uWS App still open when its thread
   * ends aborts the whole process.
   */
  abortNow(): void;
}

export type StartTransport = <S>(options: TransportOptions<S>) => Promise<RunningTransport>;

/**
 * Accepted sockets, upgraded or not, against what the open-files limit leaves for them (the ws transport
 * counts from accept on). Descriptors are the process's, so with workers the budget is the host's: a
 * fixed share per worker would drop sockets on the worker the kernel's SO_REUSEPORT hash happens to
 * favour, or on the one left while another restarts, with room left in the process.
 */
export interface SocketBudget {
  /** A place for a socket just accepted; false when there is none (the socket must be dropped). */
  take(): boolean;
  /** A socket take() admitted is gone. */
  give(): void;
}

/** No budget: for a transport whose sockets something else bounds (tests, the bench's bare servers). */
export const UNLIMITED_SOCKETS: SocketBudget = Object.freeze({ take: () => true, give: () => {} });
