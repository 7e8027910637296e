import type { Logger } from 'pino';
import {
  CLIENT_DROP_REASONS, 
  ClientMessageType,
  CloseReasons,
  DecodeError,
  RejectReason,
  PROTOCOL_VERSION,
  SESSION_QUERY_PARAM,
  decodeClientFrame,
  encodeAck,
  encodeAckWithDrops,
  encodeWelcome,
  isServerCloseReason,
  parseClientMessage,
  protocolVersionOf,
  type Delta,
  type Hello,
  type ServerCloseReason,
} from '../../protocol/index.js';
import type { SelfMetrics } from '../scrape/self-metrics.js';
import type { ConnectionHandlers, Peer, UpgradeDecision, UpgradeRequest } from '../transport/types.js';
import { Admission, type AdmissionLimits } from './admission.js';
import type { ServerCatalog } from './catalog.js';
import { ClientConnection } from './client-connection.js';
import type { LiveWhitelist } from './live-whitelist.js';
import { sweepConnections, type LivenessDeadlines } from './liveness.js';
import { SessionTable, type Session } from './session-table.js';
import { TokenBucket } from './token-bucket.js';

export { ClientConnection } from './client-connection.js';

/**
 * Under session-table pressure a resumable session is kept at least this long (or its TTL, if shorter):
 * a client whose connection (and maybe its last ack) was just lost reconnects within its backoff cap
 * (30 s) and resumes, so that a flood of new sessions cannot turn that lost ack into a double count.
 */
export const EVICTION_GRACE_MS = 60_000;
/** Evictions one address may cause at the cap: a bucket of 10, refilled one a second. */
const EVICTIONS_PER_ADDRESS = { ratePerSecond: 1, burst: 10 } as const;
/** Addresses whose eviction budgets are remembered; the oldest are forgotten past this. */
const MAX_EVICTION_BUDGETS = 10_000;

/** A client-reported drop count above this per frame and reason is capped: it is only the client's word. */
const MAX_REPORTED_DROPS_PER_FRAME = 1_000_000;
/**
 * What one session may report dropping, over time: a bucket of a million, refilled 10 000 a second.
 * Far above an honest page (a recording loop gone wrong reports tens of thousands), far below the
 * hundreds of millions a hostile one could claim per second with the per-frame cap alone.
 */
const REPORTED_DROPS = { perSecond: 10_000, burst: 1_000_000 } as const;
const CLIENT_DROP_REASON_SET: ReadonlySet<string> = new Set(CLIENT_DROP_REASONS);

/** The limits and timings the protocol state machine applies (startServer's resolved options have them all). */
export interface HandlerOptions extends AdmissionLimits, LivenessDeadlines {
  readonly flushIntervalMs: number;
  readonly sessionTtlMs: number;
  readonly maxFrameBytes: number;
  readonly maxSamplesPerFrame: number;
  readonly maxSampleValue: number;
  readonly maxFramesPerSecond: number;
  readonly maxSamplesPerSecond: number;
  readonly maxSessions: number;
}

export interface HandlerDeps {
  readonly whitelist: LiveWhitelist;
  readonly metrics: SelfMetrics;
  readonly options: HandlerOptions;
  readonly epoch: string;
  readonly log: Logger;
  readonly nowMs: () => number;
}

/**
 * The protocol state machine of every client connection: hello/resume, sequenced deltas, acks,
 * goodbye. Admission (who may connect) and liveness (deadlines, pings) are their own files; this
 * class ties them to the transport's callbacks. It knows nothing of the library that carries the bytes.
 */
export class ConnectionHandler implements ConnectionHandlers<ClientConnection> {
  /** Every connection whose socket is open, those the server is still closing included. */
  readonly live = new Set<ClientConnection>();
  readonly sessions = new SessionTable<ClientConnection>();
  readonly admission: Admission;
  private readonly allowedSessionValues: ReadonlyMap<string, ReadonlySet<string>>;
  private readonly rejected = new Map<string, number>();
  private readonly labelObjects = new Map<string, Readonly<Record<string, string>>>();
  /** Per client address: how many sessions it may still evict at the cap (only kept once it tried). */
  private readonly evictionBudgets = new Map<string, TokenBucket>();

  constructor(private readonly deps: HandlerDeps) {
    this.allowedSessionValues = new Map(deps.whitelist.current.catalog.sessionLabels.map((l) => [l.name, new Set(l.allowedValues)]));
    this.admission = new Admission(deps.options, () => deps.metrics.protocolErrors.inc({ reason: 'origin_not_allowed' }));
  }

  checkUpgrade(req: UpgradeRequest): UpgradeDecision {
    return this.admission.checkUpgrade(req);
  }

  onOpen(peer: Peer, req: UpgradeRequest, protocol: string | null): ClientConnection {
    const { options, nowMs } = this.deps;
    const address = this.admission.addressOf(req);
    const now = nowMs();
    const urlSessionId = new URLSearchParams(req.query).get(SESSION_QUERY_PARAM);
    const version = protocolVersionOf(protocol);
    const conn = new ClientConnection(peer, now, urlSessionId, address, new TokenBucket(options.maxFramesPerSecond, options.maxFramesPerSecond * 2, now), version ?? PROTOCOL_VERSION);
    this.live.add(conn);
    const refused = this.admission.admit(address);
    if (refused !== null) this.closeWith(conn, refused);
    else if (version === null) this.closeWith(conn, CloseReasons.unsupportedVersion);
    return conn;
  }

  /**
   * Pongs and pings are frames like any other: each takes from the connection's frame budget (an
   * unsolicited pong is legal, but a flood of them would cost the server a core and keep the peer alive
   * for ever). The server pings at most once per half idle timeout, so an honest peer's pongs cost nothing.
   */
  onPong(conn: ClientConnection): void {
    this.controlFrame(conn);
  }

  onPing(conn: ClientConnection): void {
    this.controlFrame(conn);
  }

  private controlFrame(conn: ClientConnection): void {
    if (conn.phase === 'closing' || conn.phase === 'closed') return;
    const now = this.deps.nowMs();
    conn.lastSeenMs = now;
    if (!conn.frameBudget.take(now)) this.closeWith(conn, CloseReasons.frameRateLimit);
  }

  onClose(conn: ClientConnection, code: number, _reason: string, byTransport: ServerCloseReason | null): void {
    this.live.delete(conn);
    this.admission.release(conn.address);
    if (conn.phase === 'closed') return;
    if (conn.phase !== 'closing') {
      if (byTransport !== null) {
        // The transport closed it (send queue full, a handler that threw): counted as the server's close.
        this.countServerClose(byTransport);
        this.detach(conn, false);
      } else {
        // The client (or the network, or the browser) closed it. Only a goodbye ends a session: a
        // browser closes with 1001 when a page goes into the back/forward cache, and that page may come
        // back and resume (PROTOCOL.md).
        this.deps.metrics.countClose(code);
        this.detach(conn, false);
      }
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
      message = parseClientMessage(decodeClientFrame(data));
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      // Parsing client frames throws with a reason of the server's catalogue (not_msgpack, bad_shape, …).
      return this.closeWith(conn, isServerCloseReason(err.close) ? err.close : CloseReasons.badShape);
    }

    if (conn.phase === 'hello') {
      if (message.type !== ClientMessageType.HELLO) return this.closeWith(conn, CloseReasons.helloExpected);
      return this.hello(conn, message);
    }
    const session = conn.session!;
    switch (message.type) {
      case ClientMessageType.HELLO:
        return this.closeWith(conn, CloseReasons.duplicateHello);
      case ClientMessageType.DELTA:
        return this.delta(conn, session, message, now);
      case ClientMessageType.GOODBYE:
        return this.closeWith(conn, CloseReasons.goodbye);
    }
  }

  private hello(conn: ClientConnection, hello: Hello): void {
    const { metrics, epoch, options } = this.deps;
    const catalog = this.deps.whitelist.current.catalog;
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
      if (sessions.size >= options.maxSessions && !this.makeRoom(conn.address)) return this.closeWith(conn, CloseReasons.sessionTableFull);
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
      limits: { maxFrameBytes: options.maxFrameBytes, maxSamplesPerFrame: options.maxSamplesPerFrame, maxSampleValue: options.maxSampleValue, maxFramesPerSecond: options.maxFramesPerSecond },
    }, catalog.encodedWire, conn.version));
  }

  /**
   * At the cap, a new session may take the place of the session that has waited longest for a resume,
   * but only one detached for EVICTION_GRACE_MS (or its TTL), and only within its address' eviction
   * budget: no single peer can push others' fresh sessions out (PROTOCOL.md says what remains).
   */
  private makeRoom(address: string): boolean {
    const now = this.deps.nowMs();
    const graceMs = Math.min(EVICTION_GRACE_MS, this.deps.options.sessionTtlMs);
    let budget = this.evictionBudgets.get(address);
    if (budget === undefined) {
      if (this.evictionBudgets.size >= MAX_EVICTION_BUDGETS) this.evictionBudgets.delete(this.evictionBudgets.keys().next().value!);
      budget = new TokenBucket(EVICTIONS_PER_ADDRESS.ratePerSecond, EVICTIONS_PER_ADDRESS.burst, now);
      this.evictionBudgets.set(address, budget);
    }
    if (!this.sessions.hasDetachedBy(now - graceMs) || !budget.take(now)) return false;
    this.sessions.evictOldestDetached(now - graceMs);
    this.deps.metrics.sessionsEvicted.inc();
    return true;
  }

  private delta(conn: ClientConnection, session: Session<ClientConnection>, delta: Delta, now: number): void {
    // Cumulative acks: a duplicate (a resend after a lost ack) is acknowledged again, never re-applied.
    if (delta.seq <= session.lastAppliedSeq) return conn.peer.send(encodeAck(session.lastAppliedSeq));
    if (delta.seq !== session.lastAppliedSeq + 1) return this.closeWith(conn, CloseReasons.sequenceGap);
    const { store, catalog } = this.deps.whitelist.current;
    if (delta.catalogVersion !== catalog.wire.version) return this.closeWith(conn, CloseReasons.catalogChanged);
    if (delta.samples.length > this.deps.options.maxSamplesPerFrame) return this.closeWith(conn, CloseReasons.tooManySamples);

    const metrics = this.deps.metrics;
    let applied = 0;
    // Samples beyond the session's budget are dropped (counted), the rest of the frame applies.
    const allowed = session.sampleBudget.takeUpTo(now, delta.samples.length);
    const rateLimited = delta.samples.length - allowed;
    if (rateLimited > 0) this.rejected.set(RejectReason.RATE_LIMITED, rateLimited);
    const gauges = (session.gauges ??= new Map());
    for (let i = 0; i < allowed; i++) {
      const reason = store.apply(delta.samples[i], gauges);
      if (reason === null) applied++;
      else this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
    }
    if (this.rejected.size > 0) {
      for (const [reason, n] of this.rejected) metrics.rejectedSamples.inc({ reason }, n);
      this.rejected.clear();
    }
    if (delta.drops.size > 0) this.countReportedDrops(session, delta.drops, now);
    session.lastAppliedSeq = delta.seq;
    metrics.hot.samples += applied;
    // from the frame's arrival: decode, checks and apply (one clock read fewer per frame)
    metrics.frameApplySeconds.observe((this.deps.nowMs() - now) / 1000);
    // v2 tells the client what its sample rate cost it, so that flush() does not read as "all arrived".
    conn.peer.send(rateLimited > 0 && conn.version >= 2 ? encodeAckWithDrops(delta.seq, rateLimited) : encodeAck(delta.seq));
  }

  /** What the client says it dropped: known reasons only, capped per frame and per session over time. */
  private countReportedDrops(session: Session<ClientConnection>, drops: ReadonlyMap<string, number>, now: number): void {
    const budget = (session.dropBudget ??= new TokenBucket(REPORTED_DROPS.perSecond, REPORTED_DROPS.burst, now));
    for (const [reason, n] of drops) {
      if (!CLIENT_DROP_REASON_SET.has(reason) || n <= 0) continue;
      const granted = budget.takeUpTo(now, Math.min(n, MAX_REPORTED_DROPS_PER_FRAME));
      if (granted > 0) this.deps.metrics.clientDroppedSamples.inc({ reason }, granted);
    }
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

  private countServerClose(reason: ServerCloseReason): void {
    const m = this.deps.metrics;
    if (reason.metric !== null) m.protocolErrors.inc({ reason: reason.metric });
    m.countClose(reason.code);
  }

  /**
   * The server ends a connection: counts it, takes it out of connected_clients, sends the close. The
   * socket stays counted (live, admission) until the transport reports it gone.
   */
  closeWith(conn: ClientConnection, reason: ServerCloseReason): void {
    if (conn.phase === 'closing' || conn.phase === 'closed') return;
    this.countServerClose(reason);
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
    if (session.gauges !== null) this.deps.whitelist.current.store.removeGaugeParts(session.gauges);
    if (endSession) this.sessions.end(session);
    else this.sessions.detach(session, this.deps.nowMs());
    this.deps.metrics.sessionsResumable.set(this.sessions.resumable);
  }

  /** Liveness and handshake deadlines for every connection; expiry of detached sessions. */
  sweep(): void {
    const now = this.deps.nowMs();
    sweepConnections(this.live, now, this.deps.options, (conn, reason) => this.closeWith(conn, reason));
    const expired = this.sessions.expire(now, this.deps.options.sessionTtlMs);
    if (expired > 0) {
      this.deps.metrics.sessionsExpired.inc(expired);
      this.deps.metrics.sessionsResumable.set(this.sessions.resumable);
    }
  }

  /** Refuses new upgrades and closes every client with 1012, spread evenly over windowMs. */
  async drain(windowMs: number): Promise<void> {
    this.admission.stopAdmitting();
    await this.closeAllSpread(CloseReasons.serverRestart, windowMs);
  }

  /**
   * A new whitelist: new catalogue and series store (totals of the series that remain carried over).
   * Every session stays resumable; gauge parts are cleared (each client sends its gauges again on
   * reconnect) and every connection is closed with 4006, spread over windowMs, so clients resume and get
   * the new catalogue.
   */
  async replaceCatalog(catalog: ServerCatalog, windowMs: number): Promise<number> {
    const seriesKept = this.deps.whitelist.replace(catalog);
    for (const session of this.sessions.all()) session.gauges = null;
    await this.closeAllSpread(CloseReasons.catalogChanged, windowMs);
    return seriesKept;
  }

  private async closeAllSpread(reason: ServerCloseReason, windowMs: number): Promise<void> {
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

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
