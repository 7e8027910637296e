import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { CLIENT_DROP_REASONS, CloseReasons, SERVER_REJECT_REASONS, isKnownCloseCode } from '../../protocol/index.js';
import type { LabelSpec } from '../config/types.js';
import { PlainHistogram } from './plain-histogram.js';

/** The aggregator's own metrics, in one prom-client registry (DESIGN.md lists them). */
export class SelfMetrics {
  readonly registry = new Registry();
  readonly connectedClients: Gauge<string>;
  readonly sessionsOpened: Counter;
  readonly sessionsResumed: Counter;
  readonly sessionsResumable: Gauge;
  readonly sessionsExpired: Counter;
  readonly sessionsEvicted: Counter;
  readonly descriptorsExhausted: Counter;
  readonly framesReceived: Counter;
  readonly receivedBytes: Counter;
  readonly samplesApplied: Counter;
  readonly rejectedSamples: Counter<'reason'>;
  readonly clientDroppedSamples: Counter<'reason'>;
  readonly protocolErrors: Counter<'reason'>;
  readonly closes: Counter<'code'>;
  /** Observed once per frame: a plain-array histogram, not prom-client's (see plain-histogram.ts). */
  readonly frameApplySeconds: PlainHistogram;
  /**
   * Per-frame counts kept as plain numbers on the hot path and moved into their counters at scrape
   * time: a prom-client inc() per frame costs more than applying a small frame.
   */
  readonly hot = { frames: 0, bytes: 0, samples: 0 };

  constructor(sessionLabels: readonly LabelSpec[], version: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these three gauges with a counter's `_total` suffix, which promtool rejects
    // (exit 3); each is the sum of the same family without the suffix, so nothing is lost.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    this.connectedClients = new Gauge({
      name: 'connected_clients', help: 'Open client connections right now (from a valid hello until the socket closes or goes silent).',
      labelNames: sessionLabels.map((l) => l.name), registers,
    });
    // Every allowed combination exists from the start, at 0, so dashboards and alerts see it.
    for (const combo of combinations(sessionLabels)) this.connectedClients.set(combo, 0);
    this.sessionsOpened = new Counter({ name: 'promstream_sessions_opened_total', help: 'New sessions started by a hello without resume.', registers });
    this.sessionsResumed = new Counter({ name: 'promstream_sessions_resumed_total', help: 'Sessions resumed by a reconnecting client.', registers });
    this.sessionsResumable = new Gauge({ name: 'promstream_sessions_resumable', help: 'Disconnected sessions kept for resume until the session TTL.', registers });
    this.sessionsExpired = new Counter({ name: 'promstream_sessions_expired_total', help: 'Disconnected sessions dropped after the session TTL.', registers });
    this.descriptorsExhausted = new Counter({ name: 'promstream_open_files_exhausted_total', help: 'Times the process ran out of open files and the public side paused accepting (raise ulimit -n).', registers });
    this.sessionsEvicted = new Counter({ name: 'promstream_sessions_evicted_total', help: 'Disconnected sessions dropped before their TTL to make room for a new one (--max-sessions).', registers });
    const hot = this.hot;
    this.framesReceived = new Counter({
      name: 'promstream_frames_received_total', help: 'WebSocket messages received from clients.', registers,
      collect() { this.inc(hot.frames); hot.frames = 0; },
    });
    this.receivedBytes = new Counter({
      name: 'promstream_received_bytes_total', help: 'Payload bytes received from clients.', registers,
      collect() { this.inc(hot.bytes); hot.bytes = 0; },
    });
    this.samplesApplied = new Counter({
      name: 'promstream_samples_applied_total', help: 'Samples added to the aggregated series.', registers,
      collect() { this.inc(hot.samples); hot.samples = 0; },
    });
    this.rejectedSamples = new Counter({
      name: 'promstream_rejected_samples_total', help: 'Samples the server dropped, by reason (what clients report dropping is promstream_client_dropped_samples_total).',
      labelNames: ['reason'], registers,
    });
    for (const reason of SERVER_REJECT_REASONS) this.rejectedSamples.inc({ reason }, 0);
    // Only the client's word, and capped per session (connection-handler.ts): apart, so that a client
    // cannot set off the server's own rejection alert.
    this.clientDroppedSamples = new Counter({
      name: 'promstream_client_dropped_samples_total', help: 'Samples clients report they dropped before sending, by reason (capped per session).',
      labelNames: ['reason'], registers,
    });
    for (const reason of CLIENT_DROP_REASONS) this.clientDroppedSamples.inc({ reason }, 0);
    this.protocolErrors = new Counter({
      name: 'promstream_protocol_errors_total', help: 'Connections closed for a frame- or connection-level problem, by reason.',
      labelNames: ['reason'], registers,
    });
    for (const r of Object.values(CloseReasons)) if (r.metric !== null) this.protocolErrors.inc({ reason: r.metric }, 0);
    this.closes = new Counter({
      name: 'promstream_closes_total', help: 'WebSocket closes by close code, whoever sent it (codes outside the catalogue count as "other").',
      labelNames: ['code'], registers,
    });
    this.frameApplySeconds = new PlainHistogram('promstream_frame_apply_seconds', 'Time to decode, check and apply one delta frame.', [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025]);
    this.registry.registerMetric(this.frameApplySeconds.asRegistryMetric());
    new Gauge({ name: 'promstream_build_info', help: 'Always 1; the version label says which promstream runs.', labelNames: ['version'], registers }).set({ version }, 1);
  }

  countClose(code: number): void {
    // A peer picks its close code freely: codes outside the protocol's catalogue (both directions)
    // share one label, so that a client cannot grow the series.
    this.closes.inc({ code: isKnownCloseCode(code) ? String(code) : 'other' });
  }
}

/** Every combination of allowed values, as label objects. */
export function* combinations(labels: readonly LabelSpec[]): Generator<Record<string, string>> {
  if (labels.length === 0) {
    yield {};
    return;
  }
  const [first, ...rest] = labels as [LabelSpec, ...LabelSpec[]];
  for (const tail of combinations(rest)) {
    for (const value of first.allowedValues) yield { [first.name]: value, ...tail };
  }
}
