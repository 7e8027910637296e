import { randomBytes } from 'node:crypto';
import { metricsTooBigForAFrame } from '../config/frame-fit.js';
import { ConfigError, type Whitelist } from '../config/types.js';
import { ServerCatalog } from '../core/catalog.js';
import { ConnectionHandler } from '../core/connection-handler.js';
import { LocalSocketBudget } from '../core/connection-counts.js';
import { LiveWhitelist } from '../core/live-whitelist.js';
import { sweepIntervalMs } from '../core/liveness.js';
import { ErrorCode, PromstreamError } from '../errors.js';
import { DemoStatsRoute } from '../http/demo-stats-route.js';
import { publicRoutes } from '../http/public-routes.js';
import { startMetricsServer } from '../scrape/metrics-server.js';
import { oneLoopState } from './one-loop.js';
import { selectTransport, type TransportLibrary } from '../transport/select-transport.js';
import type { TransportName } from '../transport/types.js';
import { resolveOptions, type ServerOptions } from './options.js';
import { VERSION } from '../package-root.js';
import { DescriptorGuard, admittedSockets, openFilesLimit, reserveFor } from './descriptor-guard.js';
import { watchEventLoop } from '../scrape/loop-stats.js';
import { startWorkerHost } from '../workers/supervisor.js';
import { resolveWorkers } from './workers-choice.js';
import type { Logger } from 'pino';
import type { ResolvedServerOptions } from './options.js';


export { VERSION };

export interface RunningServer {
  /** Port of the public side (WebSocket at /ws). */
  readonly port: number;
  /** Port of the private side (/metrics). */
  readonly metricsPort: number;
  readonly transport: TransportName;
  /** The library under the transport: package, version and, for uWS, the binary loaded. */
  readonly transportLibrary: TransportLibrary;
  /** Event loops serving clients: worker threads on the one port, or 1 (the calling thread). */
  readonly workers: number;
  /** Changes with every process: a client seeing another epoch knows the server restarted. */
  readonly epoch: string;
  /** Connections whose socket is open right now, those being closed included. */
  readonly connections: number;
  /**
   * Graceful: unready, stop accepting, close clients with 1012 spread over windowMs, wait for their
   * sockets to go (at most CLOSE_GRACE_MS more), then close.
   */
  drain(windowMs?: number): Promise<void>;
  /** Immediate: drops every connection and releases both ports. */
  close(): Promise<void>;
  /**
   * Applies a new whitelist without dropping sessions: totals of series that stay are kept, every
   * client is reconnected (4006, spread over the drain window) to get the new catalogue. One at a time:
   * rejects with PROMSTREAM_RELOAD_IN_PROGRESS while another reload runs, PROMSTREAM_SERVER_STOPPING once
   * drain() or close() began, and PROMSTREAM_SESSION_LABELS_CHANGED (keeping the old whitelist) when the
   * session labels changed, which needs a restart.
   */
  reload(whitelist: Whitelist): Promise<{ readonly catalogVersion: number; readonly changed: boolean }>;
  /** Test hook, with workers and PROMSTREAM_TEST_HOOKS=1 only: worker `index` throws an uncaught exception. */
  crashWorker?(index: number): void;
}

/** Starts the aggregator: public side (WebSocket + HTTP) first, then the private /metrics side. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const o = resolveOptions(options);
  const tooBig = metricsTooBigForAFrame(o.whitelist, o.maxFrameBytes);
  if (tooBig.length > 0) throw new ConfigError(tooBig);
  const log = o.logger;
  // Open files bound the sockets before any option does: keep a reserve, and never admit past the rest.
  const fdLimit = openFilesLimit();
  const reserve = fdLimit === null ? 0 : reserveFor(fdLimit);
  const maxSockets = fdLimit === null ? Infinity : admittedSockets(fdLimit);
  if (o.maxConnections > maxSockets) {
    log.warn({ maxConnections: o.maxConnections, openFilesLimit: fdLimit, usable: maxSockets }, `--max-connections is above what the open-files limit allows; admitting at most ${maxSockets} (raise ulimit -n)`);
  }
  const limits = { ...o, maxConnections: Math.max(1, Math.min(o.maxConnections, maxSockets)) };
  const epoch = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const selected = await selectTransport(o.transport, log);
  const workers = resolveWorkers(o, selected.name, log);
  if (workers > 1) return startWorkers(o, options, { workers, transport: selected.name, library: selected.library, maxConnections: limits.maxConnections, maxSockets, reserve, epoch, log });
  const whitelist = new LiveWhitelist(o.whitelist, o.maxSampleValue);
  const { block, slots, metrics } = oneLoopState(whitelist.current.catalog.sessionLabels, o.maxSessions, VERSION);
  const t0 = performance.now();
  const nowMs = (): number => performance.now() - t0;
  const handler = new ConnectionHandler({
    whitelist, metrics: block, slots, worker: 0, options: limits, epoch, log, nowMs,
    onExpired: (n) => metrics.sessionsExpired.inc(n),
  });

  const demoStats = o.demoStats ? new DemoStatsRoute({ connectedClients: metrics.connectedClients, renderSeries: () => whitelist.current.exposition.render() }) : null;
  const { name, start, library } = selected;
  const transport = await start({
    host: o.host, port: o.port, maxPayloadBytes: o.maxPayloadBytes, maxBackpressureBytes: o.maxBackpressureBytes,
    handlers: handler, http: publicRoutes(log, demoStats, o.staticRoutes), log, httpHeadersTimeoutMs: o.httpHeadersTimeoutMs, sockets: new LocalSocketBudget(maxSockets),
    ...(o.tls === undefined ? {} : { tls: o.tls }),
  }).catch((err: unknown) => {
    demoStats?.stop();
    throw err;
  });
  let ready = true;
  let metricsSide: Awaited<ReturnType<typeof startMetricsServer>>;
  try {
    metricsSide = await startMetricsServer(o.metricsHost, o.metricsPort, {
      ready: () => ready,
      render: async () => ({
        contentType: metrics.registry.contentType,
        // rendered in slices that yield to ingest between them, so a big scrape does not stall clients
        body: await whitelist.current.exposition.renderBytesInSlices(await metrics.registry.metrics()),
      }),
    }, log);
  } catch (err) {
    demoStats?.stop();
    await transport.close();
    throw err;
  }

  const sweeper = setInterval(() => handler.sweep(), sweepIntervalMs(o));
  sweeper.unref();
  const stopLoopWatch = watchEventLoop(block);
  const descriptors = reserve === 0 ? null : new DescriptorGuard(reserve, { pause: () => transport.pauseAccepting(), resume: () => transport.resumeAccepting() }, log, () => metrics.descriptorsExhausted.inc());

  logListening(log, { transport: name, transportLibrary: library, workers: 1, port: transport.port, metricsPort: metricsSide.port, epoch }, whitelist.current.catalog);

  const reloads = new ReloadGuard(log, o.maxFrameBytes, () => whitelist.current.catalog, () => handler.live.size);
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    reloads.stopping = true;
    closed ??= (async () => {
      ready = false;
      clearInterval(sweeper);
      stopLoopWatch();
      descriptors?.stop();
      demoStats?.stop();
      transport.stopAccepting();
      await transport.close();
      await metricsSide.close();
    })();
    return closed;
  };

  return {
    port: transport.port,
    metricsPort: metricsSide.port,
    transport: name,
    transportLibrary: library,
    workers: 1,
    epoch,
    get connections() {
      return handler.live.size;
    },
    async drain(windowMs = o.drainWindowMs) {
      reloads.stopping = true;
      ready = false;
      transport.stopAccepting();
      log.info({ clients: handler.live.size, windowMs }, 'draining: closing clients with 1012');
      await handler.drain(windowMs);
      await close();
    },
    close,
    reload: (next) => reloads.reload(next, async (nextCatalog) => ({ seriesKept: await handler.replaceCatalog(nextCatalog, o.drainWindowMs) })),
  };
}

/** The start-up line, the same for one event loop and for workers: where it listens and what it serves. */
function logListening(log: Logger, where: Record<string, unknown>, catalog: ServerCatalog): void {
  log.info({
    ...where, metrics: catalog.entries.length, series: catalog.entries.reduce((n, e) => n + e.seriesCount, 0), catalogVersion: catalog.wire.version,
  }, 'promstream listening');
}

/**
 * RunningServer.reload's rules, where the state is (one event loop or workers alike): one reload at a
 * time, none once the server is stopping, nothing done for the catalogue already in force.
 */
class ReloadGuard {
  /** Set by drain() and close(): reloads are refused from then on. */
  stopping = false;
  private reloading = false;

  constructor(
    private readonly log: Logger,
    private readonly maxFrameBytes: number,
    private readonly current: () => ServerCatalog,
    private readonly clients: () => number,
  ) {}

  /** Puts `next` in force through `apply`, which resolves once every client has the new catalogue (and says what to log). */
  async reload(next: Whitelist, apply: (catalog: ServerCatalog) => Promise<Record<string, unknown>>): Promise<{ catalogVersion: number; changed: boolean }> {
    if (this.stopping) throw new PromstreamError(ErrorCode.SERVER_STOPPING, 'the server is shutting down; not reloading');
    if (this.reloading) throw new PromstreamError(ErrorCode.RELOAD_IN_PROGRESS, 'a reload is still reconnecting its clients; try again when it is done');
    const current = this.current();
    const nextCatalog = catalogForReload(current, next, this.maxFrameBytes);
    if (nextCatalog === null) return { catalogVersion: current.wire.version, changed: false };
    this.reloading = true;
    try {
      this.log.info({ catalogVersion: nextCatalog.wire.version, metrics: nextCatalog.entries.length, clients: this.clients() }, 'whitelist reloaded; reconnecting clients for the new catalogue');
      const done = await apply(nextCatalog);
      this.log.info({ catalogVersion: nextCatalog.wire.version, ...done }, 'every client reconnected for the new catalogue');
    } finally {
      this.reloading = false;
    }
    return { catalogVersion: nextCatalog.wire.version, changed: true };
  }
}

/**
 * The catalogue a reload puts in force, or null when it is the one in force already. Throws for a
 * whitelist with metrics too big for a frame, or with other session labels (that needs a restart).
 */
function catalogForReload(current: ServerCatalog, next: Whitelist, maxFrameBytes: number): ServerCatalog | null {
  const tooBigNow = metricsTooBigForAFrame(next, maxFrameBytes);
  if (tooBigNow.length > 0) throw new ConfigError(tooBigNow);
  const nextCatalog = new ServerCatalog(next);
  if (JSON.stringify(nextCatalog.sessionLabels) !== JSON.stringify(current.sessionLabels)) {
    throw new PromstreamError(ErrorCode.SESSION_LABELS_CHANGED, 'sessionLabels changed: connected_clients would change its labels; restart to apply');
  }
  return nextCatalog.wire.version === current.wire.version ? null : nextCatalog;
}

interface WorkersStart {
  readonly workers: number;
  readonly transport: TransportName;
  readonly library: TransportLibrary;
  readonly maxConnections: number;
  readonly maxSockets: number;
  readonly reserve: number;
  readonly epoch: string;
  readonly log: Logger;
}

/** --workers N > 1: this thread supervises, N worker threads serve clients on one port (server/workers/). */
async function startWorkers(o: ResolvedServerOptions, raw: ServerOptions, w: WorkersStart): Promise<RunningServer> {
  const { log } = w;
  const host = await startWorkerHost({ options: o, raw, workers: w.workers, transport: w.transport, maxConnections: w.maxConnections, maxSockets: w.maxSockets, epoch: w.epoch, version: VERSION, log });
  const descriptors = w.reserve === 0 ? null : new DescriptorGuard(w.reserve, { pause: () => host.broadcastAccepting('pause'), resume: () => host.broadcastAccepting('resume') }, log, () => host.metrics.descriptorsExhausted.inc());
  let catalog = new ServerCatalog(o.whitelist);
  logListening(log, { transport: w.transport, transportLibrary: w.library, workers: w.workers, port: host.port, metricsPort: host.metricsPort, epoch: w.epoch }, catalog);
  const reloads = new ReloadGuard(log, o.maxFrameBytes, () => catalog, () => host.connections);
  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    reloads.stopping = true;
    closed ??= (async () => {
      descriptors?.stop();
      await host.close();
    })();
    return closed;
  };
  return {
    port: host.port,
    metricsPort: host.metricsPort,
    transport: w.transport,
    transportLibrary: w.library,
    workers: w.workers,
    epoch: w.epoch,
    get connections() {
      return host.connections;
    },
    async drain(windowMs = o.drainWindowMs) {
      reloads.stopping = true;
      host.setReady(false);
      log.info({ clients: host.connections, windowMs, workers: host.liveWorkers }, 'draining: closing clients with 1012');
      await host.drain(windowMs);
      await close();
    },
    close,
    reload: (next) =>
      reloads.reload(next, async (nextCatalog) => {
        await host.reload(next, nextCatalog);
        catalog = nextCatalog;
        return {};
      }),
    crashWorker: (index) => host.crashWorker(index),
  };
}
