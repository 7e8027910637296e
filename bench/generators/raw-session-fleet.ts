/**
 * Thousands of protocol sessions in one generator process, each on a bare socket: hello and resume,
 * one delta in flight, cumulative acks, pong, and the reference client's reconnect policy (the client's
 * own backoff function and close-code table). It does what a browser tab does at a fraction of the
 * reference client's CPU (no `ws` object, frames patched from templates), so that 20 000 sessions
 * flushing every second measure the server and not the generator. Sessions spread over 127.0.x.y
 * source addresses: one address has only ~28 k ephemeral ports.
 */
import type { Socket } from 'node:net';
import { backoffDelayMs, DEFAULT_BACKOFF } from '../../client/backoff.js';
import {
  CloseCode,
  ServerMessageType, 
  SESSION_QUERY_PARAM,
  decodeServerFrame,
  encodeDelta,
  encodeGoodbye,
  encodeHello,
  parseServerMessage,
  retryPolicyFor,
  type CatalogMetric,
  type Welcome,
} from '../../protocol/index.js';
import { fmtTally } from '../report/report.js';
import { maskedFrame, payloadOffset, rawUpgrade, readUint, ServerFrameReader } from './raw-websocket.js';
import { ExpectedTotals, planBatches, VARIANTS, wireSample, type PlannedSample } from './sample-plan.js';

/** The reference client gives up a connection not welcomed within this (client close 4101). */
const WELCOME_TIMEOUT_MS = 15_000;
/** Flush slots per second: session i flushes in slot i % FLUSH_SLOTS, so sends spread over the second. */
const FLUSH_SLOTS = 10;
/** Batches merged into one frame at most (after a reconnect several may wait): 70 samples. */
const MAX_BATCHES_PER_FRAME = 10;
/** A frame holding only the gauge, sent first after every (re)connect as the reference client does. */
const GAUGE_ONLY = -1;

export interface FleetOpen {
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** Index of this fleet's first session across all generators (spreads addresses, variants, flush slots). */
  readonly firstIndex: number;
  readonly count: number;
  readonly localAddresses: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly metrics: readonly CatalogMetric[];
  /** Handshakes in progress at most. */
  readonly concurrency: number;
  readonly timeoutMs: number;
}

class RawSession {
  socket: Socket | null = null;
  welcomed = false;
  resumedLast = false;
  resume: { sessionId: string; token: string; epoch: string } | null = null;
  catalogVersion = 0;
  nextSeq = 1;
  inFlight: { seq: number; batches: number[] } | null = null;
  queue: number[] = [];
  hasGauge = false;
  attempt = 0;
  stopped = false;
  /** Since the last cut: connection attempts, time waited in backoff, time until welcomed again. */
  sinceCut: { attempts: number; backoffMs: number; backMs: number | null } | null = null;
  private closeCode = 1006;
  private welcomeTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly index: number,
    private readonly fleet: RawSessionFleet,
    private readonly localAddress: string,
  ) {}

  connect(): void {
    if (this.stopped) return;
    const f = this.fleet.target;
    const path = this.resume === null ? f.path : `${f.path}?${SESSION_QUERY_PARAM}=${encodeURIComponent(this.resume.sessionId)}`;
    this.fleet.attempts++;
    if (this.sinceCut !== null) this.sinceCut.attempts++;
    rawUpgrade({ host: f.host, port: f.port, path, localAddress: this.localAddress, timeoutMs: WELCOME_TIMEOUT_MS }).then(
      ({ socket, rest }) => this.opened(socket, rest),
      (err: Error) => {
        this.fleet.tally(`connect failed: ${err.message.replace(/[\d.:]+/g, '#')}`);
        this.retry(1006);
      },
    );
  }

  private opened(socket: Socket, rest: Buffer): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    this.socket = socket;
    this.closeCode = 1006;
    const reader = new ServerFrameReader((opcode, b, start, end) => this.frame(socket, opcode, b, start, end));
    socket.on('data', (chunk: Buffer) => reader.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.closed(socket));
    this.welcomeTimer = setTimeout(() => {
      if (this.socket === socket && !this.welcomed) {
        this.fleet.tally('4101 no welcome in time');
        socket.destroy();
      }
    }, WELCOME_TIMEOUT_MS);
    if (rest.length > 0) reader.push(rest);
    socket.write(maskedFrame(encodeHello(this.fleet.target.labels, this.resume)));
  }

  private frame(socket: Socket, opcode: number, b: Buffer, start: number, end: number): void {
    if (socket !== this.socket) return;
    if (opcode === 2) {
      if (this.welcomed) {
        // ack = [2, lastAppliedSeq]
        const n = readUint(b, start + 2);
        if (this.inFlight !== null && n >= this.inFlight.seq) {
          this.inFlight = null;
          if (this.fleet.flushing) this.send();
        }
        return;
      }
      const m = parseServerMessage(decodeServerFrame(b.subarray(start, end)));
      if (m.type === ServerMessageType.WELCOME) this.welcome(m);
    } else if (opcode === 9) {
      // Pong with the ping's payload (at most 125 bytes, so a one-byte length).
      const payload = b.subarray(start, end);
      socket.write(Buffer.concat([Buffer.from([0x8a, 0x80 | payload.length, 0, 0, 0, 0]), payload]));
    } else if (opcode === 8) {
      this.closeCode = end - start >= 2 ? b.readUInt16BE(start) : 1005;
      this.fleet.tally(`${this.closeCode} ${b.subarray(start + 2, end).toString()}`);
      socket.end();
    }
  }

  private welcome(w: Welcome): void {
    if (this.welcomeTimer !== null) clearTimeout(this.welcomeTimer);
    const inFlight = this.inFlight;
    this.inFlight = null;
    // Applied before the cut (the ack was lost): drop it; otherwise it goes again.
    if (inFlight !== null && !(w.resumed && w.lastAppliedSeq >= inFlight.seq)) this.queue.unshift(...inFlight.batches);
    if (this.hasGauge) this.queue.unshift(GAUGE_ONLY);
    this.welcomed = true;
    this.resumedLast = w.resumed;
    this.resume = { sessionId: w.sessionId, token: w.token, epoch: w.epoch };
    this.catalogVersion = w.catalog.version;
    this.nextSeq = w.lastAppliedSeq + 1;
    this.attempt = 0;
    if (this.sinceCut !== null && this.sinceCut.backMs === null) this.sinceCut.backMs = performance.now() - this.fleet.cutAtMs;
    this.fleet.sessionWelcomed();
    this.send();
  }

  /** Sends what is queued as the next delta, unless one is in flight. */
  send(): void {
    if (!this.welcomed || this.inFlight !== null || this.queue.length === 0 || this.socket === null) return;
    const batches = this.queue.splice(0, MAX_BATCHES_PER_FRAME);
    const seq = this.nextSeq++;
    this.inFlight = { seq, batches };
    this.socket.write(this.fleet.frame(seq, this.catalogVersion, batches));
  }

  private closed(socket: Socket): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.welcomed = false;
    if (this.welcomeTimer !== null) clearTimeout(this.welcomeTimer);
    this.retry(this.closeCode);
  }

  private retry(code: number): void {
    if (this.stopped) return;
    const policy = retryPolicyFor(code);
    if (policy === 'never') {
      this.stopped = true;
      return;
    }
    // The server no longer knows the session: a new one, at once; the in-flight delta goes again.
    if (policy === 'new-session') this.resume = null;
    let delayMs = policy === 'new-session' ? 0 : backoffDelayMs(this.attempt++, DEFAULT_BACKOFF);
    if (code === CloseCode.TRY_AGAIN_LATER) delayMs = Math.max(delayMs, DEFAULT_BACKOFF.capMs / 10);
    if (this.sinceCut !== null) this.sinceCut.backoffMs += delayMs;
    setTimeout(() => this.connect(), delayMs);
  }

  /** Drops the socket without a close frame, as a network cut does. */
  cut(): void {
    this.resumedLast = false;
    // Not welcomed from now on: the close event that starts the reconnect comes a turn later.
    this.welcomed = false;
    this.socket?.destroy();
  }

  goodbye(): void {
    this.stopped = true;
    const s = this.socket;
    if (s === null) return;
    if (this.welcomed) s.write(maskedFrame(encodeGoodbye()));
    s.end();
  }
}

/** What a cut found: totals, and per session (same order) its time back, attempts and backoff waited. */
export interface FleetCutResult {
  readonly elapsedMs: number;
  readonly back: number;
  readonly resumed: number;
  readonly attempts: number;
  readonly closes: Record<string, number>;
  /** ms from the cut until welcomed again (NaN: not back). */
  readonly backMs: readonly number[];
  readonly attemptsEach: readonly number[];
  /** ms the session's reconnect policy made it wait between attempts. */
  readonly backoffMsEach: readonly number[];
}

export class RawSessionFleet {
  target!: FleetOpen;
  flushing = false;
  attempts = 0;
  cutAtMs = 0;
  private sessions: RawSession[] = [];
  private batches: PlannedSample[][] = [];
  /** Per variant: its delta with a uint32 placeholder for the sequence number, for patching. */
  private templates: Buffer[] = [];
  private templateVersion = -1;
  private readonly expected = new ExpectedTotals();
  private readonly closes = new Map<string, number>();
  private recorder: NodeJS.Timeout | null = null;
  private flusher: NodeJS.Timeout | null = null;
  private welcomes = 0;

  async open(o: FleetOpen): Promise<{ connected: number; elapsedMs: number }> {
    this.target = o;
    this.batches = planBatches(o.metrics);
    const started = performance.now();
    const target = this.sessions.length + o.count;
    // At most `concurrency` sessions between connect and welcome.
    for (let i = 0; i < o.count; i++) {
      const index = o.firstIndex + i;
      const s = new RawSession(index, this, o.localAddresses[index % o.localAddresses.length]!);
      this.sessions.push(s);
      s.connect();
      while (this.sessions.length - this.welcomes >= o.concurrency && performance.now() - started < o.timeoutMs) await new Promise((r) => setTimeout(r, 2));
    }
    await this.until(() => this.connectedCount() >= target, o.timeoutMs - (performance.now() - started)).catch(() => {
      const closes = fmtTally([this.closes]);
      throw new Error(`${this.connectedCount()} of ${target} sessions welcomed after ${((performance.now() - started) / 1000).toFixed(0)} s${closes === '' ? '' : `; on the way: ${closes}`}`);
    });
    this.flusher ??= setInterval(() => this.flushSlot(), 1000 / FLUSH_SLOTS);
    return { connected: this.connectedCount(), elapsedMs: performance.now() - started };
  }

  sessionWelcomed(): void {
    this.welcomes++;
  }

  tally(what: string): void {
    this.closes.set(what, (this.closes.get(what) ?? 0) + 1);
  }

  /** The frame for `batches`: a patched template for the usual single batch, else encoded. */
  frame(seq: number, catalogVersion: number, batches: readonly number[]): Buffer {
    if (batches.length === 1 && batches[0]! >= 0) {
      if (this.templateVersion !== catalogVersion) {
        this.templates = this.batches.map((b) => maskedFrame(encodeDelta(0xffff_ffff, catalogVersion, b.map(wireSample), new Map())));
        this.templateVersion = catalogVersion;
      }
      const frame = Buffer.from(this.templates[batches[0]!]!);
      // [0x95, 2, 0xce, seq×4 …] after the masked frame header
      frame.writeUInt32BE(seq, payloadOffset(frame) + 3);
      return frame;
    }
    const samples = batches.flatMap((i) => (i === GAUGE_ONLY ? this.gaugeSamples() : this.batches[i]!).map(wireSample));
    return maskedFrame(encodeDelta(seq, catalogVersion, samples, new Map()));
  }

  private gaugeSamples(): PlannedSample[] {
    return this.batches[0]!.filter((s) => s.metric.type === 'gauge');
  }

  /**
   * Every `everyMs`, one batch of 7 samples on `1/spread` of the sessions (rotating), so that with a
   * 1 s tick and spread 10 each session sends one delta every 10 s.
   */
  record({ everyMs, spread }: { everyMs: number; spread: number }): void {
    this.stopRecording();
    let round = 0;
    const tick = (): void => {
      for (const s of this.sessions) {
        if ((s.index + round) % spread !== 0 || s.stopped) continue;
        const variant = (s.index + round) % VARIANTS;
        s.queue.push(variant);
        if (this.batches[variant]!.some((x) => x.metric.type === 'gauge')) s.hasGauge = true;
        this.expected.addBatch(this.batches[variant]!);
      }
      round++;
    };
    tick();
    this.recorder = setInterval(tick, everyMs);
  }

  stopRecording(): void {
    if (this.recorder !== null) clearInterval(this.recorder);
    this.recorder = null;
  }

  private slot = 0;
  private flushSlot(): void {
    const slot = this.slot++ % FLUSH_SLOTS;
    for (const s of this.sessions) if (s.index % FLUSH_SLOTS === slot) s.send();
  }

  /** Cuts every socket at once and waits until every session is welcomed again. */
  async cut(timeoutMs: number): Promise<FleetCutResult> {
    this.closes.clear();
    const attempts0 = this.attempts;
    const started = performance.now();
    this.cutAtMs = started;
    for (const s of this.sessions) s.sinceCut = { attempts: 0, backoffMs: 0, backMs: null };
    for (const s of this.sessions) s.cut();
    await this.until(() => this.sessions.every((s) => s.welcomed), timeoutMs).catch(() => {});
    const each = this.sessions.map((s) => s.sinceCut!);
    for (const s of this.sessions) s.sinceCut = null;
    return {
      elapsedMs: performance.now() - started,
      back: this.connectedCount(),
      resumed: this.sessions.filter((s) => s.welcomed && s.resumedLast).length,
      attempts: this.attempts - attempts0,
      closes: Object.fromEntries(this.closes),
      backMs: each.map((e) => e.backMs ?? NaN),
      attemptsEach: each.map((e) => e.attempts),
      backoffMsEach: each.map((e) => e.backoffMs),
    };
  }

  /** Sends everything recorded and waits for its acks; returns what the server must now expose. */
  async flush(timeoutMs: number): Promise<{ flushed: number; failed: number; gaugeHolders: number; expected: unknown; closes: Record<string, number> }> {
    this.flushing = true;
    for (const s of this.sessions) s.send();
    const done = (s: RawSession): boolean => s.welcomed && s.queue.length === 0 && s.inFlight === null;
    await this.until(() => this.sessions.every(done), timeoutMs).catch(() => {});
    this.flushing = false;
    const flushed = this.sessions.filter(done).length;
    return {
      flushed, failed: this.sessions.length - flushed,
      gaugeHolders: this.sessions.filter((s) => s.hasGauge && s.welcomed).length,
      expected: this.expected.toJSON(),
      closes: Object.fromEntries(this.closes),
    };
  }

  private connectedCount(): number {
    let n = 0;
    for (const s of this.sessions) if (s.welcomed) n++;
    return n;
  }

  /** Ends every session with a goodbye, as closing tabs do, and forgets them. */
  close(): void {
    this.stopRecording();
    if (this.flusher !== null) clearInterval(this.flusher);
    this.flusher = null;
    for (const s of this.sessions) s.goodbye();
    this.sessions = [];
    this.welcomes = 0;
  }

  private async until(condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
      if (performance.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
