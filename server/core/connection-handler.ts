import type { Logger } from 'pino';
import {
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
import type { MetricBlock } from '../scrape/metric-block.js';
import type { ConnectionHandlers, Peer, UpgradeDecision, UpgradeRequest } from '../transport/types.js';
import { Admission, type AdmissionLimits } from './admission.js';
import type { ServerCatalog } from './catalog.js';
import { ClientConnection } from './client-connection.js';
import type { ConnectionCounts } from './connection-counts.js';
import type { LiveWhitelist } from './live-whitelist.js';
import { CLOSE_GRACE_MS, sweepConnections, type LivenessDeadlines } from './liveness.js';
import type { SlotTable } from './slot-table.js';
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
  /** This worker's own counters (summed over workers at scrape time). */
  readonly metrics: MetricBlock;
  /** The host's sessions (shared memory with workers). */
  readonly slots: SlotTable;
  /** This worker's number (0 … workers - 1; 0 in one event loop): its sessions' owner is worker + 1. */
  readonly worker: number;
  /** The host's open sockets (shared memory with workers); this handler's own when absent. */
  readonly counts?: ConnectionCounts;
  readonly options: HandlerOptions;
  readonly epoch: string;
  readonly log: Logger;
  /** Milliseconds on a clock every worker of the host shares. */
  readonly nowMs: () => number;
  /**
   * With workers: asks worker `owner` to give up the session in `slot` (its connection there gets
   * 4002); resolves once it did, rejects when it did not answer in time.
   */
  readonly askRelease?: (owner: number, slot: number) => Promise<void>;
  /** Sessions expired by this handler's sweep; absent with workers, where the main thread expires them. */
  readonly onExpired?: (n: number) => void;
  /**
   * Runs the sending of the acks owed once the frames at hand are applied; setImmediate by default (after
   * every read of this event-loop turn). Acks are cumulative: frames that arrived together get one.
   */
  readonly defer?: (send: () => void) => void;
}

/**
 * The protocol state machine of every client connection: hello/resume, sequenced deltas, acks,
 * goodbye. Admission (who may connect) and liveness (deadlines, pings) are their own files; this
 * class ties them to the transport's callbacks. It knows nothing of the library that carries the bytes.
 */
export class ConnectionHandler implements ConnectionHandlers<ClientConnection> {
  /** Every connection whose socket is open, those the server is still closing included. */
  readonly live = new Set<ClientConnection>();
  /** Connections of this worker with a session attached, by the session's slot. */
  readonly attached = new Map<number, ClientConnection>();
  readonly admission: Admission;
  private readonly owner: number;
  private readonly allowedSessionValues: ReadonlyMap<string, ReadonlySet<string>>;
  private readonly rejected = new Map<RejectReason, number>();
  /** Per allowed combination of session label values: one frozen label object and its index. */
  private readonly labelObjects = new Map<string, { readonly labels: Readonly<Record<string, string>>; readonly combo: number }>();
  /** Per client address: how many sessions it may still evict at the cap (only kept once it tried). */
  private readonly evictionBudgets = new Map<string, TokenBucket>();

  constructor(private readonly deps: HandlerDeps) {
    this.owner = deps.worker + 1;
    this.allowedSessionValues = new Map(deps.whitelist.current.catalog.sessionLabels.map((l) => [l.name, new Set(l.allowedValues)]));
    deps.metrics.layout.combos.forEach((combo, i) => {
      this.labelObjects.set(Object.values(combo).map((v) => `${v}\u0000`).join(''), { labels: combo, combo: i });
    });
    this.admission = new Admission(deps.options, () => deps.metrics.protocolError('origin_not_allowed'), deps.counts);
  }

  /** The host's sessions: held, and waiting for a resume. */
  get sessions(): { readonly size: number; readonly resumable: number } {
    return { size: this.deps.slots.used, resumable: this.deps.slots.detached };
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
    const conn = new ClientConnection(peer, now, urlSessionId, address, options.maxFramesPerSecond * 2, version ?? PROTOCOL_VERSION);
    this.live.add(conn);
    this.deps.metrics.live(1);
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
    if (!this.takeFrame(conn, this.deps.nowMs())) this.closeWith(conn, CloseReasons.frameRateLimit);
  }

  /**
   * Every frame, ping and pong: it is seen now, and takes a token of the connection's frame budget (a
   * token bucket of maxFramesPerSecond, holding twice that, whose clock is lastSeenMs: TokenBucket.take
   * on two fields of the connection). False when the budget is spent.
   */
  private takeFrame(conn: ClientConnection, now: number): boolean {
    const rate = this.deps.options.maxFramesPerSecond;
    let tokens = conn.frameTokens;
    const elapsedMs = now - conn.lastSeenMs;
    if (elapsedMs > 0) {
      tokens = Math.min(rate * 2, tokens + (elapsedMs * rate) / 1000);
      conn.lastSeenMs = now;
    }
    if (tokens < 1) {
      conn.frameTokens = tokens;
      return false;
    }
    conn.frameTokens = tokens - 1;
    return true;
  }

  onClose(conn: ClientConnection, code: number, _reason: string, byTransport: ServerCloseReason | null): void {
    this.live.delete(conn);
    this.deps.metrics.live(-1);
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
        this.deps.metrics.close(code);
        this.detach(conn, false);
      }
    }
    conn.phase = 'closed';
  }

  onMessage(conn: ClientConnection, data: Uint8Array, isBinary: boolean): void {
    if (conn.phase === 'closing' || conn.phase === 'closed') return;
    this.deps.metrics.frame(data.byteLength);
    const now = this.deps.nowMs();
    if (!this.takeFrame(conn, now)) return this.closeWith(conn, CloseReasons.frameRateLimit);
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
    // A client waits for its welcome; whatever it sends while its session is handed over is a second hello or worse.
    if (conn.phase === 'resuming') return this.closeWith(conn, message.type === ClientMessageType.HELLO ? CloseReasons.duplicateHello : CloseReasons.helloExpected);
    switch (message.type) {
      case ClientMessageType.HELLO:
        return this.closeWith(conn, CloseReasons.duplicateHello);
      case ClientMessageType.DELTA:
        return this.delta(conn, message, now);
      case ClientMessageType.GOODBYE:
        return this.closeWith(conn, CloseReasons.goodbye);
    }
  }

  private hello(conn: ClientConnection, hello: Hello): void {
    const { metrics, epoch, options, slots } = this.deps;
    const given = this.sessionLabelsOf(hello.labels);
    if (given === null) return this.closeWith(conn, CloseReasons.sessionLabelsRejected);

    const resume = hello.resume;
    if (resume === null) {
      const rate = options.maxSamplesPerSecond;
      const fresh = { tokens: rate * 10, atMs: this.deps.nowMs() };
      let slot = slots.allocate(this.owner, given.combo, fresh);
      if (slot < 0 && this.makeRoom(conn.address)) slot = slots.allocate(this.owner, given.combo, fresh);
      if (slot < 0) return this.closeWith(conn, CloseReasons.sessionTableFull);
      metrics.sessionOpened();
      return this.welcome(conn, slot, given.combo, false);
    }
    const routedRight = conn.urlSessionId === null || conn.urlSessionId === resume.sessionId;
    const at = resume.epoch === epoch && routedRight ? slots.parseId(resume.sessionId) : null;
    if (at === null || !slots.tokenMatches(at.slot, resume.token) || slots.labelsOf(at.slot) !== given.combo) return this.closeWith(conn, CloseReasons.sessionNotResumable);
    this.take(conn, at.slot, at.gen, given, true);
  }

  /**
   * Takes the session in `slot` for `conn`: from the table if it waits for a resume, from another of
   * this worker's connections (4002 there), or from another worker, which is asked to give it up first.
   */
  private take(conn: ClientConnection, slot: number, gen: number, given: { labels: Readonly<Record<string, string>>; combo: number }, mayAsk: boolean): void {
    const { slots } = this.deps;
    let got = slots.acquire(slot, gen, this.owner);
    if (got.kind === 'mine') {
      // A second connection for a session of this worker: the older one gets 4002, then the session is free to take.
      const previous = this.attached.get(slot);
      if (previous !== undefined) this.closeWith(previous, CloseReasons.sessionReplaced);
      else slots.release(slot, this.owner, this.deps.nowMs());
      got = slots.acquire(slot, gen, this.owner);
    }
    if (got.kind === 'taken') {
      this.deps.metrics.sessionResumed();
      return this.welcome(conn, slot, given.combo, true);
    }
    if (got.kind === 'owned' && mayAsk && this.deps.askRelease !== undefined) {
      // Another worker's connection has it: that one gets 4002 there, then this one takes it.
      conn.phase = 'resuming';
      this.deps.askRelease(got.worker, slot).then(
        () => {
          if (conn.phase === 'resuming') {
            conn.phase = 'hello';
            this.take(conn, slot, gen, given, false);
          }
        },
        () => {
          if (conn.phase === 'resuming') this.closeWith(conn, CloseReasons.sessionBusy);
        },
      );
      return;
    }
    if (got.kind === 'owned') return this.closeWith(conn, CloseReasons.sessionBusy);
    this.closeWith(conn, CloseReasons.sessionNotResumable);
  }

  /** The session in `slot`, which this worker owns now, attached to `conn`, which is welcomed. */
  private welcome(conn: ClientConnection, slot: number, combo: number, resumed: boolean): void {
    const { metrics, epoch, options, slots } = this.deps;
    const catalog = this.deps.whitelist.current.catalog;
    conn.slot = slot;
    conn.combo = combo;
    conn.gauges = null;
    conn.phase = 'active';
    this.attached.set(slot, conn);
    metrics.connected(combo, 1);
    // Id and token are derived from the slot when needed (here), not kept per session.
    const sessionId = slots.idOf(slot);
    // Which worker serves which session (with workers the log line gets a worker field): for tests and debugging, never on the wire.
    this.deps.log.debug({ session: sessionId, resumed }, 'session attached');
    conn.peer.send(encodeWelcome({
      sessionId, token: slots.tokenOf(slot), epoch, lastAppliedSeq: slots.seqOf(slot), resumed,
      flushIntervalMs: options.flushIntervalMs, idleTimeoutMs: options.idleTimeoutMs, catalog: catalog.wire,
      limits: { maxFrameBytes: options.maxFrameBytes, maxSamplesPerFrame: options.maxSamplesPerFrame, maxSampleValue: options.maxSampleValue, maxFramesPerSecond: options.maxFramesPerSecond },
    }, catalog.encodedWire, conn.version));
  }

  /**
   * Another worker resumes a session this one holds: its connection here gets 4002 and the session goes
   * back to the table (the caller then takes it). Nothing to do when it is not held here any more.
   */
  releaseSession(slot: number): void {
    const conn = this.attached.get(slot);
    if (conn !== undefined) this.closeWith(conn, CloseReasons.sessionReplaced);
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
    if (!budget.take(now)) return false;
    if (!this.deps.slots.evictOldestDetached(now - graceMs)) {
      budget.refund(now);
      return false;
    }
    this.deps.metrics.sessionEvicted();
    return true;
  }

  private delta(conn: ClientConnection, delta: Delta, now: number): void {
    const { slots } = this.deps;
    const slot = conn.slot;
    const lastAppliedSeq = slots.seqOf(slot);
    // Cumulative acks: a duplicate (a resend after a lost ack) is acknowledged again, never re-applied.
    if (delta.seq <= lastAppliedSeq) return this.owe(conn, lastAppliedSeq, 0);
    if (delta.seq !== lastAppliedSeq + 1) return this.closeWith(conn, CloseReasons.sequenceGap);
    const { store, catalog } = this.deps.whitelist.current;
    if (delta.catalogVersion !== catalog.wire.version) return this.closeWith(conn, CloseReasons.catalogChanged);
    if (delta.samples.length > this.deps.options.maxSamplesPerFrame) return this.closeWith(conn, CloseReasons.tooManySamples);

    const metrics = this.deps.metrics;
    let applied = 0;
    store.frameStart(slot, delta.seq);
    // Samples beyond the session's budget are dropped (counted), the rest of the frame applies.
    const rate = this.deps.options.maxSamplesPerSecond;
    const allowed = slots.takeSamples(slot, now, delta.samples.length, rate, rate * 10);
    const rateLimited = delta.samples.length - allowed;
    if (rateLimited > 0) this.rejected.set(RejectReason.RATE_LIMITED, rateLimited);
    const gauges = (conn.gauges ??= new Map());
    for (let i = 0; i < allowed; i++) {
      const reason = store.apply(delta.samples[i], gauges);
      if (reason === null) applied++;
      else this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
    }
    // The frame is in once its seq is in the slot: a worker that dies before this line has it taken back.
    slots.setSeq(slot, delta.seq);
    store.frameDone();
    if (this.rejected.size > 0) {
      for (const [reason, n] of this.rejected) metrics.rejected(reason, n);
      this.rejected.clear();
    }
    if (delta.drops.size > 0) this.countReportedDrops(slot, delta.drops, now);
    metrics.samplesApplied(applied);
    // from the frame's arrival: decode, checks and apply (one clock read fewer per frame)
    metrics.frameApplied((this.deps.nowMs() - now) / 1000);
    // v2 tells the client what its sample rate cost it, so that flush() does not read as "all arrived".
    this.owe(conn, delta.seq, rateLimited);
  }

  /** What the client says it dropped: known reasons only, capped per frame and per session over time. */
  private countReportedDrops(slot: number, drops: ReadonlyMap<string, number>, now: number): void {
    for (const [reason, n] of drops) {
      if (n <= 0 || this.deps.metrics.layout.dropped(reason) < 0) continue;
      const granted = this.deps.slots.takeDrops(slot, now, Math.min(n, MAX_REPORTED_DROPS_PER_FRAME), REPORTED_DROPS.perSecond, REPORTED_DROPS.burst);
      if (granted > 0) this.deps.metrics.clientDropped(reason, granted);
    }
  }

  private sessionLabelsOf(given: ReadonlyMap<string, string>): { readonly labels: Readonly<Record<string, string>>; readonly combo: number } | null {
    if (given.size !== this.allowedSessionValues.size) return null;
    let key = '';
    for (const [name, allowed] of this.allowedSessionValues) {
      const value = given.get(name);
      if (value === undefined || !allowed.has(value)) return null;
      key += `${value}\u0000`;
    }
    // One frozen label object per allowed combination, shared by every session that has it.
    return this.labelObjects.get(key) ?? null;
  }

  private countServerClose(reason: ServerCloseReason): void {
    const m = this.deps.metrics;
    if (reason.metric !== null) m.protocolError(reason.metric);
    m.close(reason.code);
  }

  /** Connections owed an ack, sent together once the frames at hand are applied (flushAcks). */
  private readonly acksDue: ClientConnection[] = [];
  private acksScheduled = false;

  /** `conn` is owed the ack of `seq` (cumulative: it covers what it still owed) and `dropped` rate-limited samples. */
  private owe(conn: ClientConnection, seq: number, dropped: number): void {
    if (conn.ackSeq === 0) this.acksDue.push(conn);
    conn.ackSeq = seq;
    conn.ackDropped += dropped;
    if (this.acksScheduled) return;
    this.acksScheduled = true;
    (this.deps.defer ?? setImmediate)(this.flushAcks);
  }

  private readonly flushAcks = (): void => {
    this.acksScheduled = false;
    const due = this.acksDue;
    for (let i = 0; i < due.length; i++) this.sendAck(due[i]!);
    due.length = 0;
  };

  private sendAck(conn: ClientConnection): void {
    const seq = conn.ackSeq;
    if (seq === 0) return;
    const dropped = conn.ackDropped;
    conn.ackSeq = 0;
    conn.ackDropped = 0;
    if (conn.phase !== 'active') return;
    conn.peer.send(dropped > 0 && conn.version >= 2 ? encodeAckWithDrops(seq, dropped) : encodeAck(seq));
  }

  /**
   * The server ends a connection: counts it, takes it out of connected_clients, sends the close. The
   * socket stays counted (live, admission) until the transport reports it gone.
   */
  closeWith(conn: ClientConnection, reason: ServerCloseReason): void {
    if (conn.phase === 'closing' || conn.phase === 'closed') return;
    // What was applied is acknowledged before the close, as it would have been without coalescing.
    this.sendAck(conn);
    this.countServerClose(reason);
    this.detach(conn, reason === CloseReasons.goodbye);
    conn.phase = 'closing';
    conn.sinceMs = this.deps.nowMs();
    conn.peer.close(reason.code, reason.reason);
  }

  /** Takes the connection's session off it: out of connected_clients, its gauge parts gone. */
  private detach(conn: ClientConnection, endSession: boolean): void {
    const slot = conn.slot;
    if (slot < 0) return;
    conn.slot = -1;
    const { slots, metrics } = this.deps;
    metrics.connected(conn.combo, -1);
    if (conn.gauges !== null) this.deps.whitelist.current.store.removeGaugeParts(conn.gauges);
    conn.gauges = null;
    this.attached.delete(slot);
    // Its budgets and seq are in the slot already.
    if (endSession) return slots.end(slot, this.owner);
    slots.release(slot, this.owner, this.deps.nowMs());
  }

  /** Liveness and handshake deadlines for every connection; expiry of detached sessions. */
  sweep(): void {
    const now = this.deps.nowMs();
    sweepConnections(this.live, now, this.deps.options, (conn, reason) => this.closeWith(conn, reason));
    const onExpired = this.deps.onExpired;
    if (onExpired === undefined) return;
    const expired = this.deps.slots.expire(now - this.deps.options.sessionTtlMs);
    if (expired > 0) onExpired(expired);
  }

  /** Refuses new upgrades, closes every client with 1012 spread evenly over windowMs, then waits (at most CLOSE_GRACE_MS) for their sockets to go. */
  async drain(windowMs: number): Promise<void> {
    this.admission.stopAdmitting();
    await this.closeAllSpread(CloseReasons.serverRestart, windowMs);
    // Every client has its 1012; wait for the sockets to go (the peer's answer to the close frame), so
    // that a slow reader gets its 1012 rather than a reset when the transport closes.
    const deadline = performance.now() + CLOSE_GRACE_MS;
    while (this.live.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  /**
   * A new whitelist: new catalogue and series store (totals of the series that remain carried over).
   * Every session stays resumable; gauge parts are cleared (each client sends its gauges again on
   * reconnect) and every connection is closed with 4006, spread over windowMs, so clients resume and get
   * the new catalogue.
   */
  async replaceCatalog(catalog: ServerCatalog, windowMs: number, region: SharedArrayBuffer | null = null): Promise<number> {
    const seriesKept = this.deps.whitelist.replace(catalog, region);
    for (const conn of this.attached.values()) conn.gauges = null;
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
