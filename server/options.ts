import type { Logger } from 'pino';
import type { Whitelist } from './config/types.js';

export type TransportChoice = 'auto' | 'uws' | 'ws';

/**
 * Every limit and timing of the server, with its unit in its name. The CLI's --help, the README and
 * startServer() all read these defaults from here. JavaScript options are milliseconds and bytes.
 */
export const DEFAULTS = Object.freeze({
  host: '0.0.0.0',
  port: 3000,
  metricsHost: '0.0.0.0',
  metricsPort: 9102,
  transport: 'auto' as TransportChoice,
  flushIntervalMs: 10_000,
  idleTimeoutMs: 30_000,
  sessionTtlMs: 120_000,
  handshakeTimeoutMs: 10_000,
  /** Hard limit of one frame at the transport. */
  maxPayloadBytes: 64 * 1024,
  /** The protocol's own frame limit, told to clients in the welcome; above it: close 1009. */
  maxFrameBytes: 32 * 1024,
  maxSamplesPerFrame: 4096,
  /** Largest counter increment, observation or gauge magnitude accepted per sample. */
  maxSampleValue: 1e9,
  /** Per-connection send queue; a reader slower than this is closed. */
  maxBackpressureBytes: 1024 * 1024,
  drainWindowMs: 5_000,
  /** Open connections in this process; more are accepted and closed with 1013 "try again later". */
  maxConnections: 50_000,
  /**
   * Open connections per client address; 0 = off. Off by default because a whole school or office
   * shares one address behind NAT; turn it on only where clients have their own addresses.
   */
  maxConnectionsPerIp: 0,
  /** Frames (and pings) per second per connection, as a token bucket holding 2 s worth; excess → 1008. */
  maxFramesPerSecond: 20,
  /** Samples per second per session, as a token bucket holding 10 s worth; excess samples are dropped. */
  maxSamplesPerSecond: 1_000,
  /** Sessions held (connected or resumable); at the cap the oldest resumable one is dropped first. */
  maxSessions: 100_000,
  /** Honour X-Forwarded-For (client address) from a proxy in front; never enable without one. */
  trustProxy: false,
  allowedOrigins: ['*'] as readonly string[],
  /** Upper bound on exposed whitelisted series (histogram buckets count), checked at config load. */
  maxSeries: 1_000_000,
  logLevel: 'info',
});

export interface ServerOptions {
  /** The loaded whitelist (see loadWhitelist). */
  readonly whitelist: Whitelist;
  readonly host?: string;
  readonly port?: number;
  readonly metricsHost?: string;
  readonly metricsPort?: number;
  readonly transport?: TransportChoice;
  readonly flushIntervalMs?: number;
  readonly idleTimeoutMs?: number;
  readonly sessionTtlMs?: number;
  readonly handshakeTimeoutMs?: number;
  readonly maxPayloadBytes?: number;
  readonly maxFrameBytes?: number;
  readonly maxSamplesPerFrame?: number;
  readonly maxSampleValue?: number;
  readonly maxBackpressureBytes?: number;
  readonly drainWindowMs?: number;
  readonly allowedOrigins?: readonly string[];
  readonly maxConnections?: number;
  readonly maxConnectionsPerIp?: number;
  readonly maxFramesPerSecond?: number;
  readonly maxSamplesPerSecond?: number;
  readonly maxSessions?: number;
  readonly trustProxy?: boolean;
  /** PEM certificate and key files: serve wss:// and https:// on the public side. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /** Extra limit in ms for a slow HTTP request or upgrade (slowloris); default: the handshake timeout. */
  readonly httpHeadersTimeoutMs?: number;
  /** Extra public HTTP routes (the demo page); path → response. */
  readonly staticRoutes?: ReadonlyMap<string, { readonly contentType: string; readonly body: string | Uint8Array }>;
  /** Serve /demo/stats on the public side: connected_clients and the whitelisted series as JSON, for the demo page. */
  readonly demoStats?: boolean;
  /** A pino logger; default: a silent one (the CLI passes a JSON logger on stdout). */
  readonly logger?: Logger;
}

export type ResolvedServerOptions = Required<Omit<ServerOptions, 'logger' | 'staticRoutes' | 'tls' | 'demoStats'>> & {
  readonly staticRoutes: ServerOptions['staticRoutes'] | undefined;
  readonly tls: ServerOptions['tls'] | undefined;
  readonly logger: Logger;
};
