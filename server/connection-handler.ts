import type { Logger } from 'pino';
import {
  CLIENT_DROP_REASONS,
  CLIENT_FRAME_GUARD,
  RejectReason,
  CloseReasons,
  DecodeError,
  MessageType,
  SESSION_QUERY_PARAM,
  SUPPORTED_SUBPROTOCOLS,
  WS_PATH,
  decodeUntrusted,
  encodeAck,
  encodeWelcome,
  parseClientMessage,
  type CloseReason,
  type Delta,
  type Hello,
} from '../protocol/index.js';
import type { ServerCatalog } from './catalog.js';
import type { ResolvedServerOptions } from './options.js';
import { originAllowed } from './origin-check.js';
import type { SelfMetrics } from './self-metrics.js';
import type { SeriesStore } from './series-store.js';
import { SessionTable, type Session } from './session-table.js';
import { TokenBucket } from './token-bucket.js';
import type { ConnectionHandlers, Peer, UpgradeDecision, UpgradeRequest } from './transport/types.js';

type Phase = 'hello' | 'active' | 'closing' | 'closed';

/** Per-connection state. */
export class ClientConnection {
  phase: Phase = 'hello';
  session: Session<ClientConnection> | null = null;
  lastSeenMs: number;
  pingSentAtMs = 0;
  closingSinceMs = 0;

  constructor(
    readonly peer: Peer,
    readonly openedAtMs: number,
    /** The session id the URL names (for proxies), checked against the hello. */
    readonly urlSessionId: string | null,
    /** The client's address (from X-Forwarded-For with --trust-proxy), for the per-address limit. */
    readonly address: string,
    /** Frames and pings per second. */
    readonly frameBudget: TokenBucket,
  ) {
    this.lastSeenMs = openedAtMs;
  }
}

/** A client-reported drop count above this per frame is capped: it is only the client's word. */
const MAX_REPORTED_DROPS_PER_FRAME = 1_000_000;
const CLIENT_DROP_REASON_SET: ReadonlySet<string> = new Set(CLIENT_DROP_REASONS);

export interface HandlerDeps {
  catalog: ServerCatalog;
  store: SeriesStore;
  readonly metrics: SelfMetrics;
  readonly options: ResolvedServerOptions;
  readonly epoch: string;
  readonly log: Logger;
  readonly nowMs: () => number;
}

/**
 * The protocol state machine of every client connection: handshake, hello/resume, sequenced deltas,
 * acks, goodbye, liveness. It knows nothing of the library that carries the bytes.
 */
export class ConnectionHandler implements ConnectionHandlers<ClientConnection> {
  readonly live = new Set<ClientConnection>();
  readonly sessions = new SessionTable<ClientConnection>();
  private readonly allowedSessionValues: ReadonlyMap<string, ReadonlySet<string>>;
  private draining = false;
  private readonly rejected = new Map<string, number>();
  private readonly labelObjects = new Map<string, Readonly<Record<string, string>>>();
  /** Open connections per client address, only kept when --max-connections-per-ip is on. */
  private readonly perAddress = new Map<string, number>();

  get currentStore(): SeriesStore {
    return this.deps.store;
  }

  constructor(private readonly deps: HandlerDeps) {
    this.allowedSessionValues = new Map(deps.catalog.sessionLabels.map((l) => [l.name, new Set(l.allowedValues)]));
  }

  checkUpgrade(req: UpgradeRequest): UpgradeDecision {
    if (req.path !== WS_PATH) return { accept: false, status: 404, message: `WebSocket endpoint is ${WS_PATH}` };
    if (this.draining) return { accept: false, status: 503, message: 'server is shutting down' };
    if (!originAllowed(req.origin, this.deps.options.allowedOrigins)) {
      this.deps.metrics.protocolErrors.inc({ reason: 'origin_not_allowed' });
      return { accept: false, status: 403, message: 'origin not allowed' };
    }
    // Browsers fail the handshake (and show only 1006) when the server picks none of the offered
    // subprotocols, so an unknown version is accepted as offered and then closed with 4000 and a reason.
    const supported = req.protocols.find((p) => SUPPORTED_SUBPROTOCOLS.includes(p));
    return { accept: true, protocol: supported ?? req.protocols[0] ?? null };
  }

  onOpen(peer: Peer, req: UpgradeRequest, protocol: string | null): ClientConnection {
    const { options, nowMs } = this.deps;
    const urlSessionId = new URLSearchParams(req.query).get(SESSION_QUERY_PARAM);
    const address = clientAddress(req, options.trustProxy);
    const now = nowMs();
    const conn = new ClientConnection(peer, now, urlSessionId, address, new TokenBucket(options.maxFramesPerSecond, options.maxFramesPerSecond * 2, now));
    this.live.add(conn);
    // Limits are checked after the upgrade so that a browser learns why (a refused upgrade is only 1006).
    if (this.live.size > options.maxConnections) return this.refuse(conn, CloseReasons.serverFull);
    if (options.maxConnectionsPerIp > 0) {
      const n = (this.perAddress.get(address) ?? 0) + 1;
      this.perAddress.set(address, n);
      if (n > options.maxConnectionsPerIp) return this.refuse(conn, CloseReasons.tooManyFromAddress);
    }
    if (protocol === null || !SUPPORTED_SUBPROTOCOLS.includes(protocol)) this.closeWith(conn, CloseReasons.unsupportedVersion);
    return conn;
  }

  private refuse(conn: ClientConnection, reason: CloseReason): ClientConnection {
    this.closeWith(conn, reason);
    return conn;
  }

  onPong(conn: ClientConnection): void {
    conn.lastSeenMs = this.deps.nowMs();
  }

  onPing(conn: ClientConnection): void {
    if (conn.phase === 'closing' || conn.phase === 'closed') return;
    const now = this.deps.nowMs();
    conn.lastSeenMs = now;
    if (!conn.frameBudget.take(now)) this.closeWith(conn, CloseReasons.frameRateLimit);
  }

  onClose(conn: ClientConnection, code: number): void {
    this.live.delete(conn);
    if (this.deps.options.maxConnectionsPerIp > 0) {
      const n = (this.perAddress.get(conn.address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(conn.address);
      else this.perAddress.set(conn.address, n);
    }
    if (conn.phase === 'closed') return;
    if (conn.phase !== 'closing') {
      // The client (or the network) closed it. 1000/1001 is a clean end: page hide, close().
      this.deps.metrics.countClose(code);
      this.detach(conn, code === 1000 || code === 1001);
    }
    conn.phase = 'closed';
  }

  onMessage(conn: ClientConnection, data: Uint8Array, isBinary: boolean): void {
    if (conn.phase === 'closing' || conn.phase === 'closed') return;
    const m = this.deps.metrics;
    m.hot.frames++;
    m.hot.bytes += data.byteLength;
    const now = this.deps.nowMs();
    conn.lastSeenMs = now;
    if (!conn.frameBudget.take(now)) return this.closeWith(conn, CloseReasons.frameRateLimit);
    if (!isBinary) return this.closeWith(conn, CloseReasons.textFrame);
    if (data.byteLength > this.deps.options.maxFrameBytes) return this.closeWith(conn, CloseReasons.frameTooBig);

    let message;
    try {
      const value = decodeUntrusted(data, CLIENT_FRAME_GUARD);
      if (Array.isArray(value) && value[0] !== MessageType.HELLO && value[0] !== MessageType.DELTA && value[0] !== MessageType.GOODBYE) {
        return this.closeWith(conn, CloseReasons.unknownMessageType);
      }
      message = parseClientMessage(value);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      return this.closeWith(conn, err.code === 'not_msgpack' ? CloseReasons.notMsgpack : CloseReasons.badShape);
    }

    if (conn.phase === 'hello') {
      if (message.type !== MessageType.HELLO) return this.closeWith(conn, CloseReasons.helloExpected);
      return this.hello(conn, message);
    }
    const session = conn.session!;
    switch (message.type) {
      case MessageType.HELLO:
        return this.closeWith(conn, CloseReasons.duplicateHello);
      case MessageType.DELTA:
        return this.delta(conn, session, message, now);
      case MessageType.GOODBYE:
        return this.closeWith(conn, CloseReasons.goodbye);
    }
  }

  private hello(conn: ClientConnection, hello: Hello): void {
    const { metrics, epoch, options, catalog } = this.deps;
    const sessions = this.sessions;
    const labels = this.sessionLabelsOf(hello.labels);
    if (labels === null) return this.closeWith(conn, CloseReasons.sessionLabelsRejected);

    let session: Session<ClientConnection> | null;
    const resume = hello.resume;
    if (resume !== null) {
      const routedRight = conn.urlSessionId === null || conn.urlSessionId === resume.sessionId;
      session = resume.epoch === epoch && routedRight ? sessions.find(resume.sessionId, resume.token) : null;
      if (session === null || !sameLabels(session.labels, labels)) return this.closeWith(conn, CloseReasons.sessionNotResumable);
      const previous = session.attachedTo;
      if (previous !== null) this.closeWith(previous, CloseReasons.sessionReplaced);
      sessions.attach(session, conn);
      metrics.sessionsResumed.inc();
    } else {
      if (sessions.size >= options.maxSessions) {
        // Make room by dropping the session that has waited longest for a resume.
        if (!sessions.evictOldestDetached()) return this.closeWith(conn, CloseReasons.sessionTableFull);
        metrics.sessionsExpired.inc();
      }
      const rate = options.maxSamplesPerSecond;
      session = sessions.create(labels, conn, new TokenBucket(rate, rate * 10, this.deps.nowMs()));
      metrics.sessionsOpened.inc();
    }
    conn.session = session;
    conn.phase = 'active';
    metrics.connectedClients.inc(session.labels);
    metrics.sessionsResumable.set(sessions.resumable);
    conn.peer.send(encodeWelcome({
      sessionId: session.id, token: session.token, epoch, lastAppliedSeq: session.lastAppliedSeq, resumed: resume !== null,
      flushIntervalMs: options.flushIntervalMs, idleTimeoutMs: options.idleTimeoutMs, catalog: catalog.wire,
      limits: { maxFrameBytes: options.maxFrameBytes, maxSamplesPerFrame: options.maxSamplesPerFrame, maxSampleValue: options.maxSampleValue },
    }, catalog.encodedWire));
  }

  private delta(conn: ClientConnection, session: Session<ClientConnection>, delta: Delta, now: number): void {
    // Cumulative acks: a duplicate (a resend after a lost ack) is acknowledged again, never re-applied.
    if (delta.seq <= session.lastAppliedSeq) return conn.peer.send(encodeAck(session.lastAppliedSeq));
    if (delta.seq !== session.lastAppliedSeq + 1) return this.closeWith(conn, CloseReasons.sequenceGap);
    if (delta.catalogVersion !== this.deps.catalog.wire.version) return this.closeWith(conn, CloseReasons.catalogChanged);
    if (delta.samples.length > this.deps.options.maxSamplesPerFrame) return this.closeWith(conn, CloseReasons.tooManySamples);

    const { store, metrics } = this.deps;
    let applied = 0;
    // Samples beyond the session's budget are dropped (counted), the rest of the frame applies.
    const allowed = session.sampleBudget.takeUpTo(now, delta.samples.length);
    if (allowed < delta.samples.length) this.rejected.set(RejectReason.RATE_LIMITED, delta.samples.length - allowed);
    const gauges = (session.gauges ??= new Map());
    for (let i = 0; i < allowed; i++) {
      const reason = store.apply(delta.samples[i], gauges);
      if (reason === null) applied++;
      else this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
    }
    if (delta.drops.size > 0) {
      for (const [reason, n] of delta.drops) {
        if (CLIENT_DROP_REASON_SET.has(reason) && n > 0) this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + Math.min(n, MAX_REPORTED_DROPS_PER_FRAME));
      }
    }
    if (this.rejected.size > 0) {
      for (const [reason, n] of this.rejected) metrics.rejectedSamples.inc({ reason }, n);
      this.rejected.clear();
    }
    session.lastAppliedSeq = delta.seq;
    metrics.hot.samples += applied;
    // from the frame's arrival: decode, checks and apply (one clock read fewer per frame)
    metrics.frameApplySeconds.observe((this.deps.nowMs() - now) / 1000);
    conn.peer.send(encodeAck(delta.seq));
  }

  private sessionLabelsOf(given: ReadonlyMap<string, string>): Readonly<Record<string, string>> | null {
    if (given.size !== this.allowedSessionValues.size) return null;
    let key = '';
    for (const [name, allowed] of this.allowedSessionValues) {
      const value = given.get(name);
      if (value === undefined || !allowed.has(value)) return null;
      key += `${value}\u0000`;
    }
    // One frozen label object per allowed combination, shared by every session that has it.
    let labels = this.labelObjects.get(key);
    if (labels === undefined) {
      labels = Object.freeze(Object.fromEntries([...this.allowedSessionValues.keys()].map((name) => [name, given.get(name)!])));
      this.labelObjects.set(key, labels);
    }
    return labels;
  }

  /** The server ends a connection: counts it, takes it out of connected_clients, sends the close. */
  closeWith(conn: ClientConnection, reason: CloseReason): void {
    if (conn.phase === 'closing' || conn.phase === 'closed') return;
    const m = this.deps.metrics;
    if (reason.metric !== null) m.protocolErrors.inc({ reason: reason.metric });
    m.countClose(reason.code);
    this.detach(conn, reason === CloseReasons.goodbye);
    conn.phase = 'closing';
    conn.closingSinceMs = this.deps.nowMs();
    conn.peer.close(reason.code, reason.reason);
  }

  /** Takes the connection's session off it: out of connected_clients, its gauge parts gone. */
  private detach(conn: ClientConnection, endSession: boolean): void {
    const session = conn.session;
    conn.session = null;
    if (session === null || session.attachedTo !== conn) return;
    this.deps.metrics.connectedClients.dec(session.labels);
    if (session.gauges !== null) this.deps.store.removeGaugeParts(session.gauges);
    if (endSession) this.sessions.end(session);
    else this.sessions.detach(session, this.deps.nowMs());
    this.deps.metrics.sessionsResumable.set(this.sessions.resumable);
  }

  /** Liveness and handshake deadlines for every connection; expiry of detached sessions. */
  sweep(): void {
    const now = this.deps.nowMs();
    const { idleTimeoutMs, handshakeTimeoutMs, sessionTtlMs } = this.deps.options;
    for (const conn of this.live) {
      if (conn.phase === 'hello') {
        if (now - conn.openedAtMs >= handshakeTimeoutMs) this.closeWith(conn, CloseReasons.handshakeTimeout);
      } else if (conn.phase === 'active') {
        const silentMs = now - conn.lastSeenMs;
        if (silentMs >= idleTimeoutMs) {
          // The peer stopped answering pings: a close frame would never be read, so drop it now.
          this.closeWith(conn, CloseReasons.idleTimeout);
          conn.peer.terminate();
        } else if (silentMs >= idleTimeoutMs / 2 && conn.pingSentAtMs <= conn.lastSeenMs) {
          conn.pingSentAtMs = now;
          conn.peer.ping();
        }
      } else if (conn.phase === 'closing' && now - conn.closingSinceMs >= handshakeTimeoutMs) {
        conn.peer.terminate(); // never answered our close frame
      }
    }
    const expired = this.sessions.expire(now, sessionTtlMs);
    if (expired > 0) {
      this.deps.metrics.sessionsExpired.inc(expired);
      this.deps.metrics.sessionsResumable.set(this.sessions.resumable);
    }
  }

  /** Refuses new upgrades and closes every client with 1012, spread evenly over windowMs. */
  async drain(windowMs: number): Promise<void> {
    this.draining = true;
    await this.closeAllSpread(CloseReasons.serverRestart, windowMs);
  }

  /**
   * A new whitelist: new catalogue and series store. Every session stays resumable; gauge parts are
   * cleared (each client sends its gauges again on reconnect) and every connection is closed with 4006,
   * spread over windowMs, so clients resume and get the new catalogue.
   */
  async replaceCatalog(catalog: ServerCatalog, store: SeriesStore, windowMs: number): Promise<void> {
    this.deps.catalog = catalog;
    this.deps.store = store;
    for (const session of this.sessions.all()) session.gauges = null;
    await this.closeAllSpread(CloseReasons.catalogChanged, windowMs);
  }

  private async closeAllSpread(reason: CloseReason, windowMs: number): Promise<void> {
    const conns = [...this.live];
    const stepMs = conns.length > 1 ? windowMs / conns.length : 0;
    const started = this.deps.nowMs();
    for (let i = 0; i < conns.length; i++) {
      const dueMs = started + i * stepMs;
      const waitMs = dueMs - this.deps.nowMs();
      if (waitMs > 1) await new Promise((r) => setTimeout(r, waitMs));
      this.closeWith(conns[i]!, reason);
    }
  }
}

/** The client's address: the last X-Forwarded-For entry (what our proxy saw) when the proxy is trusted. */
function clientAddress(req: UpgradeRequest, trustProxy: boolean): string {
  if (trustProxy && req.forwardedFor !== undefined) {
    const last = req.forwardedFor.split(',').at(-1)?.trim();
    if (last !== undefined && last !== '') return last;
  }
  return req.remoteAddress;
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
