import {
  ClientCloseReasons,
  type CloseCode,
  DecodeError,
  RejectReason, 
  ROUTE_QUERY_PARAM,
  SESSION_QUERY_PARAM,
  SUPPORTED_SUBPROTOCOLS,
  ServerMessageType,
  decodeServerFrame,
  encodeGoodbye,
  encodeHello,
  parseServerMessage,
  retryPolicyFor,
  type ClientCloseReason,
  type MetricType,
  type Welcome,
} from '../protocol/index.js';
import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { ClientErrorCode, ClosedByServerError, PromstreamClientError } from './errors.js';
import { FlushWaiters } from './flush-waiters.js';
import { takeFrame } from './frame-builder.js';
import { KnownCatalog, PendingDeltas, type Entry } from './pending-deltas.js';
import { parseRecordInput } from './record-input.js';
import type { ClientOptions, ClientStatus, Labels, PromstreamClient, SocketFactory, SocketLike } from './types.js';

const DEFAULT_FLUSH_TIMEOUT_MS = 30_000;
/** Before the first welcome the server's values are unknown; these apply until then. */
const FALLBACK_FLUSH_INTERVAL_MS = 10_000;
const FALLBACK_MAX_VALUE = Number.MAX_VALUE;
/** A connection that has not been welcomed within this is given up and retried. */
const WELCOME_TIMEOUT_MS = 15_000;
// The two close codes the core acts on, as literals typed by the catalogue (the bundle then carries no
// CloseCode object): a socket that could not be opened reads as 1006; 1013 backs off for longer.
const ABNORMAL: typeof CloseCode.ABNORMAL = 1006;
const TRY_AGAIN_LATER: typeof CloseCode.TRY_AGAIN_LATER = 1013;

interface InFlight {
  readonly seq: number;
  readonly entries: Entry[];
  readonly drops: ReadonlyMap<string, number>;
  /** Record serial this frame completes, or -1 when a part of the pending deltas stayed behind. */
  readonly coversUpTo: number;
  /**
   * The welcomed socket the frame was sent on, and when. After that socket is gone the frame waits for
   * the next welcome (which drops it or puts it back to be sent again): no ack can come for it before.
   */
  readonly sentOn: SocketLike;
  readonly sentAtMs: number;
}

/**
 * The client core, shared by the Node and browser entries: local aggregation, one frame in flight,
 * cumulative acks, reconnect with full-jitter backoff, and resume.
 */
export class ClientCore implements PromstreamClient {
  readonly #pending: PendingDeltas;
  #catalog: KnownCatalog | null = null;
  #welcome: Welcome | null = null;
  #socket: SocketLike | null = null;
  #ready = false;
  #resumeWith: { sessionId: string; token: string; epoch: string } | null = null;
  #nextSeq = 1;
  #inFlight: InFlight | null = null;
  #sendAllGauges = false;
  #recordSerial = 0;
  #ackedSerial = 0;
  readonly #waiters: FlushWaiters;
  /** A bug of ours seen in record(): reported once through onStatus, counted every time. */
  #bugReported = false;
  #attempt = 0;
  #closed = false;
  /** The page is in the back/forward cache: no socket, no reconnect, until resume(). */
  #suspended = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  #flushTimer: ReturnType<typeof setInterval> | null = null;
  /** A frame held back to keep to the server's frame rate (maxFramesPerSecond), sent when it fires. */
  #paceTimer: ReturnType<typeof setTimeout> | null = null;
  #lastFrameAtMs = -Infinity;
  #welcomeTimer: ReturnType<typeof setTimeout> | null = null;
  #closeResolvers: (() => void)[] = [];
  readonly #backoff: BackoffPolicy;
  /** Random, fixed for the client's life: a proxy hashing on it keeps every connection on one replica. */
  readonly #routeKey = randomRouteKey();
  readonly #flushTimeoutMs: number;

  /**
   * `recorded`: deltas recorded before the client existed (the browser snippet aggregates calls made
   * before `init` there); they go out with the first frame.
   */
  readonly #options: ClientOptions;
  readonly #openSocket: SocketFactory;

  constructor(
    options: ClientOptions,
    openSocket: SocketFactory,
    recorded: PendingDeltas = new PendingDeltas(),
  ) {
    this.#options = options;
    this.#openSocket = openSocket;
    if (typeof options.url !== 'string' || !/^wss?:\/\//.test(options.url)) {
      throw new PromstreamClientError(ClientErrorCode.OPTIONS_INVALID, `createClient: url must be a ws:// or wss:// URL (got ${String(options.url)})`);
    }
    this.#pending = recorded;
    if (!recorded.isEmpty || recorded.gauges.size > 0) this.#recordSerial = 1;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#flushTimeoutMs = options.flushTimeout ?? DEFAULT_FLUSH_TIMEOUT_MS;
    this.#waiters = new FlushWaiters(this.#flushTimeoutMs);
    this.#connect();
  }

  get sessionId(): string | null {
    return this.#welcome?.sessionId ?? null;
  }

  increment(name: string, labels: Labels = {}, value = 1): void {
    this.record('counter', name, labels, value);
  }

  observe(name: string, labels: Labels, value: number): void {
    this.record('histogram', name, labels, value);
  }

  set(name: string, labels: Labels, value: number): void {
    this.record('gauge', name, labels, value);
  }

  /**
   * Records one sample from untrusted arguments (JavaScript callers pass anything, the snippet passes
   * the page's): parsed into typed values first, and what does not parse is dropped and counted under
   * its reason. Never throws into the application. `loose`: a built-in collector's sample (labels the
   * whitelist does not give the metric are left out: KnownCatalog.resolve).
   */
  record(type: MetricType, name: unknown, labels: unknown, value: unknown, loose = false): void {
    if (this.#closed) return;
    const input = parseRecordInput(name, labels, value);
    this.#recordSerial++;
    if (typeof input === 'string') {
      this.#pending.drop(input);
      return;
    }
    try {
      this.#pending.record(type, input.name, input.labels, input.value, this.#catalog, this.#welcome?.limits.maxSampleValue ?? FALLBACK_MAX_VALUE, loose);
    } catch (err) {
      // The input is typed by now: only a bug of ours gets here. Counted apart from bad data, said once.
      this.#pending.drop(RejectReason.CLIENT_ERROR);
      if (!this.#bugReported) {
        this.#bugReported = true;
        this.#status({ type: 'error', message: `promstream client bug while recording ${input.name}: ${err instanceof Error ? err.message : String(err)}` });
      }
    }
  }

  flush(): Promise<void> {
    const target = this.#recordSerial;
    if (target <= this.#ackedSerial) return Promise.resolve();
    if (this.#closed) return Promise.reject(new PromstreamClientError(ClientErrorCode.CLIENT_CLOSED, 'promstream client is closed'));
    const acknowledged = this.#waiters.wait(target);
    this.#trySend();
    return acknowledged;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } catch {
      // bounded by flushTimeout; what was not acknowledged is lost with the session
    }
    this.#closed = true;
    this.#stopTimers();
    this.#waiters.rejectAll(new PromstreamClientError(ClientErrorCode.CLIENT_CLOSED, 'promstream client closed'));
    const socket = this.#socket;
    if (socket === null || socket.readyState >= 2) return;
    await new Promise<void>((resolve) => {
      this.#closeResolvers.push(resolve);
      const timer = setTimeout(resolve, Math.min(this.#flushTimeoutMs, 5_000));
      this.#closeResolvers.push(() => clearTimeout(timer));
      if (this.#ready) socket.send(encodeGoodbye());
      socket.close(ClientCloseReasons.endSession.code, ClientCloseReasons.endSession.reason);
    });
  }

  /**
   * Skips the rest of a backoff wait and reconnects now: a hidden tab whose timers were throttled (a
   * wait of minutes instead of seconds) became visible, or the network is back. No-op while connected.
   */
  reconnectNow(): void {
    if (this.#reconnectTimer === null || this.#closed || this.#suspended) return;
    clearTimeout(this.#reconnectTimer);
    this.#connect();
  }

  /**
   * The network is back (the browser's `online`). Besides reconnecting now, a connection whose frame is
   * still unacknowledged is given up and resumed on a new one: after a network change it may be dead
   * without a close ever arriving. The resume tells what was applied, so nothing is lost or sent twice.
   */
  networkBack(): void {
    this.reconnectNow();
    const socket = this.#socket;
    if (!this.#closed && this.#ready && socket !== null && this.#inFlight !== null) this.#abandon(socket, ClientCloseReasons.networkChanged);
  }

  /**
   * The page goes into the back/forward cache (`pagehide` with `persisted`): what is pending goes out
   * as a frame if one can, and the socket is closed with 4102, so that the cached page leaves
   * connected_clients; nothing reconnects until resume(). The session stays resumable on the server.
   */
  suspend(): void {
    if (this.#closed || this.#suspended) return;
    this.#trySend();
    this.#suspended = true;
    if (this.#reconnectTimer !== null) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const socket = this.#socket;
    if (socket !== null) this.#abandon(socket, ClientCloseReasons.pageCached);
  }

  /** The page is shown again from the cache (`pageshow` with `persisted`): reconnect now and resume. */
  resume(): void {
    if (!this.#suspended) return;
    this.#suspended = false;
    if (!this.#closed && this.#socket === null && this.#reconnectTimer === null) this.#connect();
  }

  /**
   * The page is being unloaded for good (`pagehide` without `persisted`): nothing here can be awaited, so
   * every pending delta goes out now, one frame after another (the server applies them in order), then
   * the goodbye that ends the session. The client is closed afterwards.
   */
  endNow(): void {
    if (this.#closed) return;
    const socket = this.#socket;
    const w = this.#welcome;
    if (this.#ready && socket !== null && w !== null && this.#catalog !== null) {
      // Bounded: each frame takes at least one entry or the drop counts out of pending.
      for (let i = 0; i < 1000 && !this.#pending.isEmpty; i++) {
        const frame = takeFrame(this.#pending, this.#catalog, w.limits, this.#nextSeq++, this.#sendAllGauges);
        this.#sendAllGauges = false;
        socket.send(frame.bytes);
      }
      socket.send(encodeGoodbye());
    }
    this.#closed = true;
    this.#stopTimers();
    this.#waiters.rejectAll(new PromstreamClientError(ClientErrorCode.CLIENT_CLOSED, 'promstream client closed: the page was unloaded'));
    if (socket !== null) {
      socket.onopen = socket.onmessage = socket.onclose = null;
      socket.close(ClientCloseReasons.endSession.code, ClientCloseReasons.endSession.reason);
    }
  }

  #status(s: ClientStatus): void {
    try {
      this.#options.onStatus?.(s);
    } catch {
      // a throwing status callback must not break the connection logic
    }
  }

  #connect(): void {
    this.#reconnectTimer = null;
    if (this.#closed) return;
    this.#status({ type: 'connecting', attempt: this.#attempt });
    const resume = this.#resumeWith;
    let url = hasQueryParam(this.#options.url, ROUTE_QUERY_PARAM) ? this.#options.url : withQuery(this.#options.url, ROUTE_QUERY_PARAM, this.#routeKey);
    if (resume !== null) url = withQuery(url, SESSION_QUERY_PARAM, resume.sessionId);
    let socket: SocketLike;
    try {
      socket = this.#openSocket(url, [...SUPPORTED_SUBPROTOCOLS]);
    } catch (err) {
      this.#status({ type: 'error', message: `cannot open WebSocket: ${(err as Error).message}` });
      this.#scheduleReconnect(ABNORMAL);
      return;
    }
    socket.binaryType = 'arraybuffer';
    this.#socket = socket;
    this.#welcomeTimer = setTimeout(() => {
      if (this.#socket === socket && !this.#ready) this.#abandon(socket, ClientCloseReasons.welcomeTimeout);
    }, WELCOME_TIMEOUT_MS);
    socket.onopen = () => socket.send(encodeHello(this.#options.labels ?? {}, resume));
    socket.onmessage = (ev) => {
      if (this.#socket === socket) this.#onMessage(ev.data);
    };
    socket.onerror = () => {
      // followed by onclose, which decides what to do
    };
    socket.onclose = (ev) => {
      if (this.#socket === socket) this.#onClose(ev.code, ev.reason);
    };
  }

  #onMessage(data: unknown): void {
    let msg;
    try {
      const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
      if (bytes === null) throw new DecodeError(ClientCloseReasons.badServerFrame, 'text frame from server');
      msg = parseServerMessage(decodeServerFrame(bytes));
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.#status({ type: 'error', message: `bad frame from server: ${err.message}` });
      this.#socket?.close(err.close.code, err.close.reason);
      return;
    }
    if (msg.type === ServerMessageType.WELCOME) this.#onWelcome(msg);
    else {
      if (msg.rateLimitedSamples > 0) this.#status({ type: 'rate-limited', samples: msg.rateLimitedSamples });
      this.#onAck(msg.lastAppliedSeq);
    }
  }

  #onWelcome(w: Welcome): void {
    if (this.#welcomeTimer !== null) clearTimeout(this.#welcomeTimer);
    const inFlight = this.#inFlight;
    this.#inFlight = null;
    if (inFlight !== null) {
      // Applied before the cut: the ack was lost, the welcome says so. Otherwise send it again.
      if (w.resumed && w.lastAppliedSeq >= inFlight.seq) this.#acknowledged(inFlight.coversUpTo);
      else this.#pending.restore(inFlight.entries, inFlight.drops);
    }
    if (this.#catalog === null || this.#catalog.catalog.version !== w.catalog.version) this.#catalog = new KnownCatalog(w.catalog);
    this.#welcome = w;
    this.#nextSeq = w.lastAppliedSeq + 1;
    this.#resumeWith = { sessionId: w.sessionId, token: w.token, epoch: w.epoch };
    this.#ready = true;
    this.#attempt = 0;
    this.#sendAllGauges = true;
    this.#status({ type: 'connected', sessionId: w.sessionId, resumed: w.resumed, epoch: w.epoch });
    if (this.#flushTimer === null) {
      const everyMs = this.#options.flushInterval ?? (w.flushIntervalMs || FALLBACK_FLUSH_INTERVAL_MS);
      this.#flushTimer = setInterval(() => this.#tick(), everyMs);
    }
    this.#trySend(true);
  }

  #onAck(lastAppliedSeq: number): void {
    const f = this.#inFlight;
    if (f === null || lastAppliedSeq < f.seq) return;
    this.#inFlight = null;
    this.#acknowledged(f.coversUpTo);
    // More to send right away: a split frame's rest, or someone waiting in flush().
    if (f.coversUpTo < 0 || this.#waiters.size > 0) this.#trySend();
  }

  /** Everything recorded up to `serial` is acknowledged: settles the flushes waiting for it. */
  #acknowledged(serial: number): void {
    if (serial > this.#ackedSerial) this.#ackedSerial = serial;
    this.#waiters.settle(this.#ackedSerial);
  }

  #tick(): void {
    const f = this.#inFlight;
    const socket = this.#socket;
    // A frame unacknowledged for longer than the server's idle timeout means the path is dead
    // (a frozen proxy sends no close): give the socket up and resume on a new one. Only a frame sent on
    // this very socket, once welcomed, and timed from when it was sent there: a new socket still waiting
    // for its welcome (two round trips on a slow path) is the welcome timer's business, and the frame
    // left over from the socket given up is resolved by that welcome.
    if (f !== null && this.#ready && socket !== null && f.sentOn === socket && this.#welcome !== null && Date.now() - f.sentAtMs > Math.max(this.#welcome.idleTimeoutMs, 1000)) {
      this.#abandon(socket, ClientCloseReasons.ackTimeout);
      return;
    }
    this.#trySend();
  }

  /** Stops listening to a socket that stopped answering and reconnects without waiting for its close. */
  #abandon(socket: SocketLike, why: ClientCloseReason): void {
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      socket.close(why.code, why.reason);
    } catch {
      // already closing
    }
    this.#onClose(why.code, why.reason);
  }

  /** Sends the pending deltas as the next frame when connected and nothing is in flight. */
  #trySend(afterWelcome = false): void {
    const socket = this.#socket;
    const w = this.#welcome;
    if (!this.#ready || socket === null || w === null || this.#catalog === null || this.#inFlight !== null || this.#paceTimer !== null) return;
    // Keep a tenth below the server's frame rate: its bucket then never runs dry, pongs included.
    const rate = w.limits.maxFramesPerSecond;
    if (rate !== null) {
      const waitMs = this.#lastFrameAtMs + 1100 / rate - Date.now();
      if (waitMs > 0) {
        this.#paceTimer = setTimeout(() => {
          this.#paceTimer = null;
          this.#trySend(afterWelcome);
        }, waitMs);
        return;
      }
    }
    if (this.#pending.isEmpty && !(afterWelcome && this.#pending.gauges.size > 0)) {
      // Nothing recorded since: whatever flush() waits for is already acknowledged.
      this.#acknowledged(this.#recordSerial);
      return;
    }
    const serial = this.#recordSerial;
    const frame = takeFrame(this.#pending, this.#catalog, w.limits, this.#nextSeq, this.#sendAllGauges);
    this.#sendAllGauges = false;
    this.#inFlight = { seq: this.#nextSeq, entries: frame.entries, drops: frame.drops, coversUpTo: this.#pending.isEmpty ? serial : -1, sentOn: socket, sentAtMs: Date.now() };
    this.#lastFrameAtMs = this.#inFlight.sentAtMs;
    this.#nextSeq++;
    socket.send(frame.bytes);
  }

  #onClose(code: number, reason: string): void {
    this.#socket = null;
    this.#ready = false;
    if (this.#welcomeTimer !== null) clearTimeout(this.#welcomeTimer);
    for (const r of this.#closeResolvers.splice(0)) r();
    if (this.#closed || this.#suspended) return;
    this.#scheduleReconnect(code, reason);
  }

  #scheduleReconnect(code: number, reason = ''): void {
    const policy = retryPolicyFor(code);
    if (policy === 'never') {
      this.#status({ type: 'disconnected', code, reason, retryInMs: null });
      this.#closed = true;
      this.#stopTimers();
      this.#waiters.rejectAll(new ClosedByServerError(code, reason));
      return;
    }
    if (policy === 'new-session') {
      // The server no longer knows the session: start a new one; the in-flight frame is sent again.
      this.#resumeWith = null;
    }
    let delayMs = policy === 'new-session' ? 0 : backoffDelayMs(this.#attempt++, this.#backoff);
    if (code === TRY_AGAIN_LATER) delayMs = Math.max(delayMs, this.#backoff.capMs / 10);
    this.#status({ type: 'disconnected', code, reason, retryInMs: delayMs });
    this.#reconnectTimer = setTimeout(() => this.#connect(), delayMs);
  }

  #stopTimers(): void {
    for (const t of [this.#reconnectTimer, this.#welcomeTimer, this.#paceTimer]) if (t !== null) clearTimeout(t);
    if (this.#flushTimer !== null) clearInterval(this.#flushTimer);
    this.#reconnectTimer = this.#welcomeTimer = this.#flushTimer = this.#paceTimer = null;
  }
}

function hasQueryParam(url: string, key: string): boolean {
  const q = url.indexOf('?');
  return q >= 0 && new URLSearchParams(url.slice(q + 1)).has(key);
}

function randomRouteKey(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  let key = '';
  for (const b of bytes) key += b.toString(16).padStart(2, '0');
  return key;
}

function withQuery(url: string, key: string, value: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}${encodeURIComponent(key)}=${encodeURIComponent(value)}`;
}
