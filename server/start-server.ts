import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { loadBrowserScriptRoutes } from './browser-script-routes.js';
import { ServerCatalog } from './catalog.js';
import { ConnectionHandler } from './connection-handler.js';
import { DemoStatsRoute } from './demo-stats-route.js';
import { SeriesExposition } from './exposition.js';
import { startMetricsServer } from './metrics-server.js';
import { DEFAULTS, type ResolvedServerOptions, type ServerOptions } from './options.js';
import { VERSION } from './package-root.js';
import { SelfMetrics } from './self-metrics.js';
import { SeriesStore } from './series-store.js';
import { selectTransport } from './transport/select-transport.js';
import type { HttpHandler, TransportName } from './transport/types.js';
import type { Whitelist } from './config/types.js';

export { VERSION };

export interface RunningServer {
  /** Port of the public side (WebSocket at /ws). */
  readonly port: number;
  /** Port of the private side (/metrics). */
  readonly metricsPort: number;
  readonly transport: TransportName;
  /** Changes with every process: a client seeing another epoch knows the server restarted. */
  readonly epoch: string;
  /** Connections open right now. */
  readonly connections: number;
  /** Graceful: unready, stop accepting, close clients with 1012 over drainWindowMs, then close. */
  drain(windowMs?: number): Promise<void>;
  /** Immediate: drops every connection and releases both ports. */
  close(): Promise<void>;
  /**
   * Applies a new whitelist without dropping sessions: totals of series that stay are kept, every
   * client is reconnected (4006, spread over the drain window) to get the new catalogue. Rejects, keeping
   * the old whitelist, when the session labels changed (that needs a restart).
   */
  reload(whitelist: Whitelist): Promise<{ readonly catalogVersion: number; readonly changed: boolean }>;
}

function resolveOptions(options: ServerOptions): ResolvedServerOptions {
  const o: ResolvedServerOptions = {
    whitelist: options.whitelist,
    host: options.host ?? DEFAULTS.host,
    port: options.port ?? DEFAULTS.port,
    metricsHost: options.metricsHost ?? DEFAULTS.metricsHost,
    metricsPort: options.metricsPort ?? DEFAULTS.metricsPort,
    transport: options.transport ?? DEFAULTS.transport,
    flushIntervalMs: options.flushIntervalMs ?? DEFAULTS.flushIntervalMs,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
    sessionTtlMs: options.sessionTtlMs ?? DEFAULTS.sessionTtlMs,
    handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
    maxPayloadBytes: options.maxPayloadBytes ?? DEFAULTS.maxPayloadBytes,
    maxFrameBytes: options.maxFrameBytes ?? Math.min(DEFAULTS.maxFrameBytes, options.maxPayloadBytes ?? Infinity),
    maxSamplesPerFrame: options.maxSamplesPerFrame ?? DEFAULTS.maxSamplesPerFrame,
    maxSampleValue: options.maxSampleValue ?? DEFAULTS.maxSampleValue,
    maxBackpressureBytes: options.maxBackpressureBytes ?? DEFAULTS.maxBackpressureBytes,
    drainWindowMs: options.drainWindowMs ?? DEFAULTS.drainWindowMs,
    allowedOrigins: options.allowedOrigins ?? DEFAULTS.allowedOrigins,
    maxConnections: options.maxConnections ?? DEFAULTS.maxConnections,
    maxConnectionsPerIp: options.maxConnectionsPerIp ?? DEFAULTS.maxConnectionsPerIp,
    maxFramesPerSecond: options.maxFramesPerSecond ?? DEFAULTS.maxFramesPerSecond,
    maxSamplesPerSecond: options.maxSamplesPerSecond ?? DEFAULTS.maxSamplesPerSecond,
    maxSessions: options.maxSessions ?? DEFAULTS.maxSessions,
    trustProxy: options.trustProxy ?? DEFAULTS.trustProxy,
    tls: options.tls,
    httpHeadersTimeoutMs: options.httpHeadersTimeoutMs ?? options.handshakeTimeoutMs ?? DEFAULTS.handshakeTimeoutMs,
    staticRoutes: options.staticRoutes,
    logger: options.logger ?? pino({ level: 'silent' }),
  };
  const problems: string[] = [];
  const positive = (name: keyof ResolvedServerOptions, min: number): void => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) problems.push(`${name} must be a number ≥ ${min} (got ${String(v)})`);
  };
  positive('idleTimeoutMs', 1000);
  positive('handshakeTimeoutMs', 100);
  positive('flushIntervalMs', 100);
  positive('sessionTtlMs', 0);
  positive('maxPayloadBytes', 1024);
  positive('maxFrameBytes', 256);
  positive('maxSamplesPerFrame', 1);
  positive('maxSampleValue', 1);
  positive('maxBackpressureBytes', 1024);
  positive('drainWindowMs', 0);
  positive('maxConnections', 1);
  positive('maxConnectionsPerIp', 0);
  positive('maxFramesPerSecond', 1);
  positive('maxSamplesPerSecond', 1);
  positive('maxSessions', 1);
  positive('httpHeadersTimeoutMs', 100);
  if (o.maxFrameBytes > o.maxPayloadBytes) problems.push(`maxFrameBytes (${o.maxFrameBytes}) must not exceed maxPayloadBytes (${o.maxPayloadBytes})`);
  for (const p of ['port', 'metricsPort'] as const) if (!Number.isInteger(o[p]) || o[p] < 0 || o[p] > 65535) problems.push(`${p} must be 0–65535 (got ${o[p]})`);
  if (problems.length > 0) throw new TypeError(`invalid server options:\n  ${problems.join('\n  ')}`);
  return o;
}

/** Starts the aggregator: public side (WebSocket + HTTP) first, then the private /metrics side. */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const o = resolveOptions(options);
  const log = o.logger;
  const epoch = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  let catalog = new ServerCatalog(o.whitelist);
  const store = new SeriesStore(catalog, o.maxSampleValue);
  const metrics = new SelfMetrics(catalog.sessionLabels, VERSION);
  let exposition = new SeriesExposition(store);
  const t0 = performance.now();
  const handler = new ConnectionHandler({ catalog, store, metrics, options: o, epoch, log, nowMs: () => performance.now() - t0 });

  const browserScript = loadBrowserScriptRoutes(log).route;
  const demoStats = options.demoStats === true ? new DemoStatsRoute({ connectedClients: metrics.connectedClients, renderSeries: () => exposition.render() }) : null;
  const http: HttpHandler = (req) => {
    if (req.path === '/healthz') return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok\n' };
    const served = browserScript(req) ?? demoStats?.handle(req) ?? null;
    if (served !== null) return served;
    const route = o.staticRoutes?.get(req.path);
    if (route !== undefined && (req.method === 'GET' || req.method === 'HEAD')) {
      return { status: 200, headers: { 'content-type': route.contentType }, body: route.body };
    }
    return null;
  };

  const { name, start } = await selectTransport(o.transport, log);
  const transport = await start({
    host: o.host, port: o.port, maxPayloadBytes: o.maxPayloadBytes, maxBackpressureBytes: o.maxBackpressureBytes,
    handlers: handler, http, log, httpHeadersTimeoutMs: o.httpHeadersTimeoutMs, ...(o.tls === undefined ? {} : { tls: o.tls }),
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
        body: await exposition.renderBytesInSlices(await metrics.registry.metrics()),
      }),
    }, log);
  } catch (err) {
    demoStats?.stop();
    await transport.close();
    throw err;
  }

  const sweepEveryMs = Math.min(1000, Math.max(50, Math.min(o.idleTimeoutMs, o.handshakeTimeoutMs) / 4));
  const sweeper = setInterval(() => handler.sweep(), sweepEveryMs);
  sweeper.unref();

  log.info({
    transport: name, port: transport.port, metricsPort: metricsSide.port, epoch, metrics: catalog.entries.length,
    series: catalog.entries.reduce((n, e) => n + e.seriesCount, 0), catalogVersion: catalog.wire.version,
  }, 'promstream listening');

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      ready = false;
      clearInterval(sweeper);
      demoStats?.stop();
      transport.stopAccepting();
      await transport.close();
      await new Promise<void>((resolve) => {
        metricsSide.server.close(() => resolve());
        metricsSide.server.closeAllConnections();
      });
    })();
    return closed;
  };

  return {
    port: transport.port,
    metricsPort: metricsSide.port,
    transport: name,
    epoch,
    get connections() {
      return handler.live.size;
    },
    async drain(windowMs = o.drainWindowMs) {
      ready = false;
      transport.stopAccepting();
      log.info({ clients: handler.live.size, windowMs }, 'draining: closing clients with 1012');
      await handler.drain(windowMs);
      // Give the close frames a moment to leave before the sockets are torn down.
      const deadline = performance.now() + 1000;
      while (handler.live.size > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await close();
    },
    close,
    async reload(whitelist) {
      const next = new ServerCatalog(whitelist);
      if (JSON.stringify(next.sessionLabels) !== JSON.stringify(catalog.sessionLabels)) {
        throw new Error('sessionLabels changed: connected_clients would change its labels; restart to apply');
      }
      if (next.wire.version === catalog.wire.version) return { catalogVersion: next.wire.version, changed: false };
      const nextStore = new SeriesStore(next, o.maxSampleValue);
      const kept = nextStore.carryOver(handler.currentStore);
      catalog = next;
      exposition = new SeriesExposition(nextStore);
      log.info({ catalogVersion: next.wire.version, metrics: next.entries.length, seriesKept: kept, clients: handler.live.size }, 'whitelist reloaded; reconnecting clients for the new catalogue');
      await handler.replaceCatalog(next, nextStore, o.drainWindowMs);
      return { catalogVersion: next.wire.version, changed: true };
    },
  };
}
