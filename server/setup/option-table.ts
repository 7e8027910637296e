/**
 * Every option of `promstream serve`, in one table: flag (and so its PROMSTREAM_* environment name),
 * the startServer() key, unit, default, range and help. The CLI's parsing, `--help`, startServer()'s
 * validation, DEFAULTS and the README's option table (held to it by a test) all come from here, so a
 * new limit is one row. JavaScript values are milliseconds and bytes; the CLI reads units (10s, 64KiB).
 */
import type { TransportChoice } from '../transport/types.js';
import { formatBytes, formatDuration } from './option-text.js';

/** How an option's text is read and its value checked. */
export type OptionUnit = 'string' | 'port' | 'duration' | 'bytes' | 'count' | 'whole' | 'number' | 'list' | 'flag' | 'paths' | 'choice' | 'workers';

export interface OptionDef<T> {
  readonly flag: string;
  readonly unit: OptionUnit;
  readonly default: T;
  /** The default as --help and the README say it. */
  readonly defaultText: string;
  /** Smallest allowed value (numbers), in the option's JavaScript unit. */
  readonly min?: number;
  readonly max?: number;
  /** The allowed values of a 'choice'. */
  readonly choices?: readonly string[];
  readonly help: string;
}

const def = <T>(d: OptionDef<T>): OptionDef<T> => Object.freeze(d);
const text = (flag: string, value: string, help: string, defaultText = value): OptionDef<string> => def({ flag, unit: 'string', default: value, defaultText, help });
const port = (flag: string, value: number, help: string): OptionDef<number> => def({ flag, unit: 'port', default: value, defaultText: String(value), min: 0, max: 65_535, help });
const duration = (flag: string, ms: number, min: number, help: string): OptionDef<number> => def({ flag, unit: 'duration', default: ms, defaultText: formatDuration(ms), min, help });
const bytes = (flag: string, n: number, min: number, help: string): OptionDef<number> => def({ flag, unit: 'bytes', default: n, defaultText: formatBytes(n), min, help });
const count = (flag: string, n: number, help: string, min = 1): OptionDef<number> => def({ flag, unit: min === 0 ? 'whole' : 'count', default: n, defaultText: n === 0 ? '0 (off)' : String(n), min, help });
const flagOption = (flag: string, help: string): OptionDef<boolean> => def({ flag, unit: 'flag', default: false, defaultText: 'off', help });

export type { TransportChoice };
export const TRANSPORT_CHOICES: readonly TransportChoice[] = ['auto', 'uws', 'ws'];

/** Options startServer() takes, by their JavaScript name. */
export const SERVER_OPTION_TABLE = Object.freeze({
  host: text('host', '0.0.0.0', 'public side address: WebSocket at /ws, /promstream.js, /healthz'),
  port: port('port', 3000, 'public side port (0 picks a free one)'),
  metricsHost: text('metrics-host', '0.0.0.0', 'private side address: /metrics, /healthz, /readyz'),
  metricsPort: port('metrics-port', 9102, 'private side port'),
  workers: def<number | 'auto'>({ flag: 'workers', unit: 'workers', default: 'auto', defaultText: 'auto', min: 1, max: 64, help: 'event loops (threads) serving clients on the one port; auto: one per CPU where the transport can share its port (uWS; ws on Node ≥ 22.12), else 1' }),
  transport: def<TransportChoice>({ flag: 'transport', unit: 'choice', default: 'auto', defaultText: 'auto', choices: TRANSPORT_CHOICES, help: 'uws, ws, or auto (uWS when its binary loads, else ws, logged)' }),
  flushIntervalMs: duration('flush-interval', 10_000, 100, 'told to clients in the welcome'),
  idleTimeoutMs: duration('idle-timeout', 30_000, 1_000, 'a silent connection (no message, no pong) is closed; ≥ 1s'),
  sessionTtlMs: duration('session-ttl', 120_000, 0, 'how long a disconnected session can be resumed'),
  handshakeTimeoutMs: duration('handshake-timeout', 10_000, 100, 'a connection without hello by then is closed (4004)'),
  maxPayloadBytes: bytes('max-payload', 64 * 1024, 1024, 'hard frame limit at the transport (uWS cuts bigger frames without a close frame)'),
  // Its minimum leaves room for the largest frame a client sends without samples: its drop counts.
  maxFrameBytes: bytes('max-frame-bytes', 32 * 1024, 1024, 'protocol frame limit told to clients; bigger frames are closed with 1009'),
  maxSamplesPerFrame: count('max-samples-per-frame', 4096, 'more samples in one frame: closed with 1009'),
  maxSampleValue: def({ flag: 'max-sample-value', unit: 'number', default: 1e9, defaultText: '1000000000', min: Number.MIN_VALUE, help: 'largest counter increment, observation or gauge magnitude accepted per sample' }),
  maxBackpressureBytes: bytes('max-backpressure', 1024 * 1024, 1024, 'send queue per connection; a slower reader is closed'),
  maxConnections: count('max-connections', 50_000, 'open connections per process; more are closed with 1013 (try again later)'),
  maxConnectionsPerIp: count('max-connections-per-ip', 0, 'open connections per client address; off by default: a school or office shares one address behind NAT', 0),
  maxFramesPerSecond: count('max-frames-per-second', 20, 'frames, pings and pongs per connection (bucket of 2 s); excess is closed with 1008'),
  maxSamplesPerSecond: count('max-samples-per-second', 1000, 'samples per session (bucket of 10 s); excess samples are dropped (reason rate_limited)'),
  maxSessions: count('max-sessions', 100_000, 'sessions held; at the cap the oldest resumable one detached ≥ 60 s goes first (10 per address, then 1/s), else new ones get 1013'),
  drainWindowMs: duration('drain-window', 5_000, 0, 'on SIGTERM/SIGINT, closes with 1012 are spread over this window'),
  allowedOrigins: def<readonly string[]>({ flag: 'allowed-origins', unit: 'list', default: Object.freeze(['*']), defaultText: '*', help: 'comma list of browser origins (*.example.com allowed); * warns at start-up' }),
  trustProxy: flagOption('trust-proxy', 'take the client address from X-Forwarded-For (set by your proxy); only behind a proxy'),
});
export type ServerOptionName = keyof typeof SERVER_OPTION_TABLE;
type ValueOf<D> = D extends OptionDef<infer T> ? T : never;
/** The table's options with their value types: startServer() takes any of them. */
export type TableOptions = { readonly [K in ServerOptionName]?: ValueOf<(typeof SERVER_OPTION_TABLE)[K]> };
export type TableDefaults = { readonly [K in ServerOptionName]: ValueOf<(typeof SERVER_OPTION_TABLE)[K]> };

/** Options only the command line has: they shape what it passes to startServer() and loadWhitelist(). */
export const CLI_OPTION_TABLE = Object.freeze({
  config: def<readonly string[]>({ flag: 'config', unit: 'paths', default: [], defaultText: '(required unless --demo)', help: 'whitelist file or directory of .json/.yaml/.yml files; repeatable (env: comma-separated)' }),
  demo: flagOption('demo', 'load the examples/ whitelist and serve the demo page at /'),
  maxSeries: count('max-series', 1_000_000, 'refuse a whitelist that exposes more series than this'),
  tlsCert: text('tls-cert', '', 'PEM certificate file: serve wss:// and https:// without a proxy (with --tls-key)', 'none'),
  tlsKey: text('tls-key', '', 'PEM private key file for --tls-cert', 'none'),
  logLevel: def({ flag: 'log-level', unit: 'choice', default: 'info', defaultText: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], help: 'trace, debug, info, warn, error, fatal or silent; logs are JSON lines on stdout' }),
});
export type CliOptionName = keyof typeof CLI_OPTION_TABLE;

/** Every `promstream serve` option in the order --help and the README list them. */
const ORDER: readonly (ServerOptionName | CliOptionName)[] = [
  'config', 'demo', 'host', 'port', 'metricsHost', 'metricsPort', 'workers', 'transport', 'flushIntervalMs', 'idleTimeoutMs', 'sessionTtlMs',
  'handshakeTimeoutMs', 'maxPayloadBytes', 'maxFrameBytes', 'maxSamplesPerFrame', 'maxSampleValue', 'maxBackpressureBytes', 'maxConnections',
  'maxConnectionsPerIp', 'maxFramesPerSecond', 'maxSamplesPerSecond', 'maxSessions', 'maxSeries', 'drainWindowMs', 'allowedOrigins', 'trustProxy',
  'tlsCert', 'tlsKey', 'logLevel',
];

export interface ServeOption extends OptionDef<unknown> {
  /** The startServer() or CLI name. */
  readonly name: ServerOptionName | CliOptionName;
  /** Whether startServer() takes it (else only the CLI uses it). */
  readonly server: boolean;
}

const isServerOption = (name: ServerOptionName | CliOptionName): name is ServerOptionName => Object.hasOwn(SERVER_OPTION_TABLE, name);

export const SERVE_OPTIONS: readonly ServeOption[] = Object.freeze(
  ORDER.map((name): ServeOption => {
    const d: OptionDef<unknown> = isServerOption(name) ? SERVER_OPTION_TABLE[name] : CLI_OPTION_TABLE[name];
    return Object.freeze({ ...d, name, server: isServerOption(name) });
  }),
);

export const envName = (flag: string): string => `PROMSTREAM_${flag.toUpperCase().replace(/-/g, '_')}`;

function defaultsOf(): TableDefaults {
  const out: Record<string, unknown> = {};
  for (const [name, d] of Object.entries(SERVER_OPTION_TABLE)) out[name] = d.default;
  // Every key of the table, each with its own default: the mapped type's shape by construction.
  return Object.freeze(out) as TableDefaults;
}

/** Every default of startServer(), by JavaScript name (milliseconds and bytes). */
export const DEFAULTS: TableDefaults & { readonly maxSeries: number; readonly logLevel: string } = Object.freeze({
  ...defaultsOf(),
  maxSeries: CLI_OPTION_TABLE.maxSeries.default,
  logLevel: CLI_OPTION_TABLE.logLevel.default,
});
