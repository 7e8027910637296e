import { DEFAULTS } from './options.js';

/** Parses '500ms', '10s', '2m', '1h' or a bare number of seconds (as Prometheus does) into ms. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (m === null) throw new Error(`not a duration: "${text}" (use e.g. 500ms, 10s, 2m, 1h; a bare number is seconds)`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * factor);
}

/** Parses '65536', '64KiB', '1MiB', '64kb' into bytes. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|k|mb|mib|m|gb|gib|g)?\s*$/i.exec(text);
  if (m === null) throw new Error(`not a size: "${text}" (use e.g. 65536, 64KiB, 1MiB)`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const factor = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * factor);
}

export const formatDuration = (ms: number): string => (ms % 60_000 === 0 && ms >= 60_000 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);
export const formatBytes = (n: number): string => (n % (1024 * 1024) === 0 ? `${n / 1024 / 1024}MiB` : n % 1024 === 0 ? `${n / 1024}KiB` : String(n));

type Kind = 'string' | 'port' | 'duration' | 'bytes' | 'count' | 'whole' | 'number' | 'list' | 'flag' | 'paths' | 'transport' | 'level';

export interface OptionSpec {
  readonly flag: string;
  readonly kind: Kind;
  readonly defaultText: string;
  readonly help: string;
}

/** Every `promstream serve` option; --help, the env mapping and the README table come from here. */
export const SERVE_OPTIONS: readonly OptionSpec[] = [
  { flag: 'config', kind: 'paths', defaultText: '(required unless --demo)', help: 'whitelist file or directory of .json/.yaml/.yml files; repeatable (env: comma-separated)' },
  { flag: 'demo', kind: 'flag', defaultText: 'off', help: 'load the examples/ whitelist and serve the demo page at /' },
  { flag: 'host', kind: 'string', defaultText: DEFAULTS.host, help: 'public side address: WebSocket at /ws, /promstream.js, /healthz' },
  { flag: 'port', kind: 'port', defaultText: String(DEFAULTS.port), help: 'public side port (0 picks a free one)' },
  { flag: 'metrics-host', kind: 'string', defaultText: DEFAULTS.metricsHost, help: 'private side address: /metrics, /healthz, /readyz' },
  { flag: 'metrics-port', kind: 'port', defaultText: String(DEFAULTS.metricsPort), help: 'private side port' },
  { flag: 'transport', kind: 'transport', defaultText: DEFAULTS.transport, help: 'uws, ws, or auto (uWS when its binary loads, else ws, logged)' },
  { flag: 'flush-interval', kind: 'duration', defaultText: formatDuration(DEFAULTS.flushIntervalMs), help: 'told to clients in the welcome' },
  { flag: 'idle-timeout', kind: 'duration', defaultText: formatDuration(DEFAULTS.idleTimeoutMs), help: 'a silent connection (no message, no pong) is closed; ≥ 1s' },
  { flag: 'session-ttl', kind: 'duration', defaultText: formatDuration(DEFAULTS.sessionTtlMs), help: 'how long a disconnected session can be resumed' },
  { flag: 'handshake-timeout', kind: 'duration', defaultText: formatDuration(DEFAULTS.handshakeTimeoutMs), help: 'a connection without hello by then is closed (4004)' },
  { flag: 'max-payload', kind: 'bytes', defaultText: formatBytes(DEFAULTS.maxPayloadBytes), help: 'hard frame limit at the transport (uWS cuts bigger frames without a close frame)' },
  { flag: 'max-frame-bytes', kind: 'bytes', defaultText: formatBytes(DEFAULTS.maxFrameBytes), help: 'protocol frame limit told to clients; bigger frames are closed with 1009' },
  { flag: 'max-samples-per-frame', kind: 'count', defaultText: String(DEFAULTS.maxSamplesPerFrame), help: 'more samples in one frame: closed with 1009' },
  { flag: 'max-sample-value', kind: 'number', defaultText: String(DEFAULTS.maxSampleValue), help: 'largest counter increment, observation or gauge magnitude accepted per sample' },
  { flag: 'max-backpressure', kind: 'bytes', defaultText: formatBytes(DEFAULTS.maxBackpressureBytes), help: 'send queue per connection; a slower reader is closed' },
  { flag: 'max-connections', kind: 'count', defaultText: String(DEFAULTS.maxConnections), help: 'open connections per process; more are closed with 1013 (try again later)' },
  { flag: 'max-connections-per-ip', kind: 'whole', defaultText: '0 (off)', help: 'open connections per client address; off by default: a school or office shares one address behind NAT' },
  { flag: 'max-frames-per-second', kind: 'count', defaultText: String(DEFAULTS.maxFramesPerSecond), help: 'frames and pings per connection (bucket of 2 s); excess is closed with 1008' },
  { flag: 'max-samples-per-second', kind: 'count', defaultText: String(DEFAULTS.maxSamplesPerSecond), help: 'samples per session (bucket of 10 s); excess samples are dropped (reason rate_limited)' },
  { flag: 'max-sessions', kind: 'count', defaultText: String(DEFAULTS.maxSessions), help: 'sessions held; at the cap the oldest resumable one goes first, then new ones get 1013' },
  { flag: 'max-series', kind: 'count', defaultText: String(DEFAULTS.maxSeries), help: 'refuse a whitelist that exposes more series than this' },
  { flag: 'drain-window', kind: 'duration', defaultText: formatDuration(DEFAULTS.drainWindowMs), help: 'on SIGTERM/SIGINT, closes with 1012 are spread over this window' },
  { flag: 'allowed-origins', kind: 'list', defaultText: '*', help: 'comma list of browser origins (*.example.com allowed); * warns at start-up' },
  { flag: 'trust-proxy', kind: 'flag', defaultText: 'off', help: 'take the client address from X-Forwarded-For (set by your proxy); only behind a proxy' },
  { flag: 'tls-cert', kind: 'string', defaultText: 'none', help: 'PEM certificate file: serve wss:// and https:// without a proxy (with --tls-key)' },
  { flag: 'tls-key', kind: 'string', defaultText: 'none', help: 'PEM private key file for --tls-cert' },
  { flag: 'log-level', kind: 'level', defaultText: DEFAULTS.logLevel, help: 'trace, debug, info, warn, error, fatal or silent; logs are JSON lines on stdout' },
];

export const envName = (flag: string): string => `PROMSTREAM_${flag.toUpperCase().replace(/-/g, '_')}`;

export function serveHelp(): string {
  const width = Math.max(...SERVE_OPTIONS.map((o) => o.flag.length)) + 4;
  const lines = SERVE_OPTIONS.map((o) => `  --${o.flag.padEnd(width)}${o.help}\n  ${''.padEnd(width + 2)}default: ${o.defaultText}; env: ${envName(o.flag)}`);
  return `Usage: promstream serve [options]

Runs the aggregator. Clients connect to ws://HOST:PORT/ws; Prometheus scrapes http://METRICS_HOST:METRICS_PORT/metrics.
Every option can also be set as an environment variable; the command line wins.
Durations take units (500ms, 10s, 2m); a bare number is seconds. Sizes take KiB/MiB.

Options:
${lines.join('\n')}
  --help${''.padEnd(width - 4)}show this help
`;
}

export type ParsedValue = string | number | boolean | string[];

/** Converts one option's text (from argv or env) to its value, or throws naming the option. */
export function convert(spec: OptionSpec, raw: string, source: string): ParsedValue {
  try {
    switch (spec.kind) {
      case 'string':
        return raw;
      case 'flag':
        if (/^(1|true|yes|on)$/i.test(raw)) return true;
        if (/^(0|false|no|off|)$/i.test(raw)) return false;
        throw new Error(`expected true or false, got "${raw}"`);
      case 'port': {
        const n = Number(raw);
        if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`expected a port 0–65535, got "${raw}"`);
        return n;
      }
      case 'duration':
        return parseDuration(raw);
      case 'bytes':
        return parseBytes(raw);
      case 'count': {
        const n = Number(raw);
        if (!Number.isInteger(n) || n < 1) throw new Error(`expected a whole number ≥ 1, got "${raw}"`);
        return n;
      }
      case 'whole': {
        const n = Number(raw);
        if (!Number.isInteger(n) || n < 0) throw new Error(`expected a whole number ≥ 0, got "${raw}"`);
        return n;
      }
      case 'number': {
        const n = Number(raw);
        if (!Number.isFinite(n) || n <= 0) throw new Error(`expected a positive number, got "${raw}"`);
        return n;
      }
      case 'list':
      case 'paths':
        return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      case 'transport':
        if (raw !== 'auto' && raw !== 'uws' && raw !== 'ws') throw new Error(`expected auto, uws or ws, got "${raw}"`);
        return raw;
      case 'level':
        if (!/^(trace|debug|info|warn|error|fatal|silent)$/.test(raw)) throw new Error(`expected a pino level, got "${raw}"`);
        return raw;
    }
  } catch (err) {
    throw new Error(`${source}: ${(err as Error).message}`);
  }
}
