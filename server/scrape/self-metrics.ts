import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { FRAME_APPLY_BUCKETS, MetricLayout } from './metric-block.js';
import { PlainHistogram } from './plain-histogram.js';

/** What the aggregator's own metrics are read from at scrape time. */
export interface SelfMetricSources {
  readonly layout: MetricLayout;
  /** Every worker's block (one, without workers), those of workers that died included. */
  blocks(): readonly Float64Array[];
  /** Sessions waiting for a resume, host-wide. */
  resumable(): number;
  /** Workers running right now (1 for one event loop). */
  liveWorkers(): number;
}

/**
 * The aggregator's own metrics, in one prom-client registry (DESIGN.md lists them). What the connection
 * handlers count lives in their MetricBlocks (one per worker) and is summed here when Prometheus
 * scrapes; what only the main thread sees (expiry, open files, workers) is counted here directly.
 */
export class SelfMetrics {
  readonly registry = new Registry();
  readonly connectedClients: Gauge<string>;
  readonly sessionsExpired: Counter;
  readonly descriptorsExhausted: Counter;
  readonly frameApplySeconds: PlainHistogram;
  readonly workerRestarts: Counter;

  constructor(
    private readonly sources: SelfMetricSources,
    version: string,
  ) {
    const registers = [this.registry];
    const { layout } = sources;
    const sum = (at: number): number => {
      let total = 0;
      for (const b of sources.blocks()) total += b[at]!;
      return total;
    };
    collectDefaultMetrics({ register: this.registry });
    // prom-client names these three gauges with a counter's `_total` suffix, which promtool rejects
    // (exit 3); each is the sum of the same family without the suffix, so nothing is lost.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
    const labelNames = Object.keys(layout.combos[0] ?? {});
    // Every allowed combination exists from the start, at 0, so dashboards and alerts see it.
    this.connectedClients = new Gauge({
      name: 'connected_clients', help: 'Open client connections right now (from a valid hello until the socket closes or goes silent).',
      labelNames, registers,
      collect() {
        layout.combos.forEach((combo, i) => this.set(combo, sum(layout.connectedAt + i)));
      },
    });
    const total = (name: string, help: string, at: number): void => {
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(sum(at)); } });
    };
    const byLabel = (name: string, help: string, label: string, values: readonly string[], at: number): void => {
      new Counter({
        name, help, labelNames: [label], registers,
        collect() {
          this.reset();
          values.forEach((v, i) => this.inc({ [label]: v }, sum(at + i)));
        },
      });
    };
    total('promstream_sessions_opened_total', 'New sessions started by a hello without resume.', MetricLayout.OPENED);
    total('promstream_sessions_resumed_total', 'Sessions resumed by a reconnecting client.', MetricLayout.RESUMED);
    new Gauge({ name: 'promstream_sessions_resumable', help: 'Disconnected sessions kept for resume until the session TTL.', registers, collect() { this.set(sources.resumable()); } });
    this.sessionsExpired = new Counter({ name: 'promstream_sessions_expired_total', help: 'Disconnected sessions dropped after the session TTL.', registers });
    this.descriptorsExhausted = new Counter({ name: 'promstream_open_files_exhausted_total', help: 'Times the process ran out of open files and the public side paused accepting (raise ulimit -n).', registers });
    total('promstream_sessions_evicted_total', 'Disconnected sessions dropped before their TTL to make room for a new one (--max-sessions).', MetricLayout.EVICTED);
    total('promstream_frames_received_total', 'WebSocket messages received from clients.', MetricLayout.FRAMES);
    total('promstream_received_bytes_total', 'Payload bytes received from clients.', MetricLayout.BYTES);
    total('promstream_samples_applied_total', 'Samples added to the aggregated series.', MetricLayout.SAMPLES);
    byLabel('promstream_rejected_samples_total', 'Samples the server dropped, by reason (what clients report dropping is promstream_client_dropped_samples_total).', 'reason', layout.rejectReasons, layout.rejectedAt);
    // Only the client's word, and capped per session (connection-handler.ts): apart, so that a client
    // cannot set off the server's own rejection alert.
    byLabel('promstream_client_dropped_samples_total', 'Samples clients report they dropped before sending, by reason (capped per session).', 'reason', layout.dropReasons, layout.droppedAt);
    byLabel('promstream_protocol_errors_total', 'Connections closed for a frame- or connection-level problem, by reason.', 'reason', layout.errorReasons, layout.errorsAt);
    byLabel('promstream_closes_total', 'WebSocket closes by close code, whoever sent it (codes outside the catalogue count as "other").', 'code', layout.closeCodes, layout.closesAt);
    const histogram = new PlainHistogram('promstream_frame_apply_seconds', 'Time to decode, check and apply one delta frame.', FRAME_APPLY_BUCKETS);
    this.frameApplySeconds = histogram;
    const counts = new Float64Array(FRAME_APPLY_BUCKETS.length + 1);
    this.registry.registerMetric({
      ...histogram,
      name: histogram.name, help: histogram.help, type: histogram.type, aggregator: histogram.aggregator,
      get: () => {
        counts.fill(0);
        let s = 0;
        for (const b of sources.blocks()) {
          for (let i = 0; i < counts.length; i++) counts[i]! += b[layout.applyAt + i]!;
          s += b[layout.applyAt + counts.length]!;
        }
        histogram.load(counts, s);
        return histogram.get();
      },
    } as unknown as Metric);
    new Gauge({ name: 'promstream_workers', help: 'Workers (event loops serving clients) running right now.', registers, collect() { this.set(sources.liveWorkers()); } });
    this.workerRestarts = new Counter({ name: 'promstream_worker_restarts_total', help: 'Workers that died and were started again.', registers });
    const perWorker = (name: string, help: string, at: number): void => {
      new Gauge({
        name, help, labelNames: ['worker'], registers,
        collect() {
          sources.blocks().forEach((b, i) => this.set({ worker: String(i) }, b[at]!));
        },
      });
    };
    perWorker('promstream_worker_event_loop_delay_seconds', 'p99 of each worker\'s event-loop delay over the last few seconds.', MetricLayout.LOOP_DELAY);
    perWorker('promstream_worker_event_loop_utilization', 'Share of time each worker\'s event loop was busy over the last few seconds (0–1).', MetricLayout.LOOP_UTILIZATION);
    new Gauge({ name: 'promstream_build_info', help: 'Always 1; the version label says which promstream runs.', labelNames: ['version'], registers }).set({ version }, 1);
  }
}
