/**
 * startServer()'s options: the option table's (limits, timings, addresses) plus what only JavaScript
 * passes (the loaded whitelist, a logger, extra routes). resolveOptions() checks every one against the
 * table up front and reports every problem at once, naming the option.
 */
import pino, { type Logger } from 'pino';
import type { Whitelist } from '../config/types.js';
import { OptionsError, type OptionProblem } from '../errors.js';
import { compileOriginRules, type OriginRules } from '../http/origin-check.js';
import { DEFAULTS, SERVER_OPTION_TABLE, type OptionDef, type TableDefaults, type TableOptions } from './option-table.js';

export { DEFAULTS, type TransportChoice } from './option-table.js';

export interface ServerOptions extends TableOptions {
  /** The loaded whitelist (see loadWhitelist). */
  readonly whitelist: Whitelist;
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

export type ResolvedServerOptions = TableDefaults & {
  readonly whitelist: Whitelist;
  readonly tls: ServerOptions['tls'] | undefined;
  readonly httpHeadersTimeoutMs: number;
  readonly staticRoutes: ServerOptions['staticRoutes'] | undefined;
  readonly demoStats: boolean;
  readonly logger: Logger;
  /** allowedOrigins, parsed. */
  readonly originRules: OriginRules;
};

const INTEGER_UNITS: ReadonlySet<string> = new Set(['port', 'bytes', 'count', 'whole']);

/** Why `value` is not a value of `d`, or null when it is. */
function problemWith(d: OptionDef<unknown>, value: unknown): string | null {
  switch (d.unit) {
    case 'string':
      return typeof value === 'string' ? null : `must be a string (got ${typeof value})`;
    case 'flag':
      return typeof value === 'boolean' ? null : `must be true or false (got ${typeof value})`;
    case 'list':
    case 'paths':
      return Array.isArray(value) && value.every((v) => typeof v === 'string') ? null : 'must be an array of strings';
    case 'workers':
      return value === 'auto' || (typeof value === 'number' && Number.isInteger(value) && value >= (d.min ?? 1) && value <= (d.max ?? Infinity))
        ? null
        : `must be 'auto' or a whole number ${d.min ?? 1}–${d.max} (got ${String(value)})`;
    case 'choice':
      return typeof value === 'string' && (d.choices ?? []).includes(value) ? null : `must be one of ${(d.choices ?? []).join(', ')} (got ${String(value)})`;
    default: {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a finite number (got ${String(value)})`;
      if (INTEGER_UNITS.has(d.unit) && !Number.isInteger(value)) return `must be a whole number (got ${value})`;
      if (d.min !== undefined && value < d.min) return `must be ≥ ${d.min} (got ${value})`;
      if (d.max !== undefined && value > d.max) return `must be ≤ ${d.max} (got ${value})`;
      return null;
    }
  }
}

/** Every option with its default filled in, checked; throws OptionsError listing every problem. */
export function resolveOptions(options: ServerOptions): ResolvedServerOptions {
  const problems: OptionProblem[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, d] of Object.entries<OptionDef<unknown>>(SERVER_OPTION_TABLE)) {
    const given: unknown = Reflect.get(options, name);
    // The protocol frame limit defaults to the transport's hard limit when that is set lower.
    const fallback = name === 'maxFrameBytes' ? Math.min(DEFAULTS.maxFrameBytes, options.maxPayloadBytes ?? Infinity) : d.default;
    const value = given ?? fallback;
    const problem = problemWith(d, value);
    if (problem !== null) problems.push({ option: name, message: problem });
    values[name] = value;
  }
  const table = values as TableDefaults; // each key checked against its own row just above
  if (problems.length === 0 && table.maxFrameBytes > table.maxPayloadBytes) {
    problems.push({ option: 'maxFrameBytes', message: `must not exceed maxPayloadBytes (${table.maxFrameBytes} > ${table.maxPayloadBytes})` });
  }
  const httpHeadersTimeoutMs = options.httpHeadersTimeoutMs ?? table.handshakeTimeoutMs;
  if (!(Number.isInteger(httpHeadersTimeoutMs) && httpHeadersTimeoutMs >= 100)) {
    problems.push({ option: 'httpHeadersTimeoutMs', message: `must be a whole number ≥ 100 (got ${String(httpHeadersTimeoutMs)})` });
  }
  const origins = compileOriginRules(Array.isArray(table.allowedOrigins) ? table.allowedOrigins : []);
  for (const message of origins.problems) problems.push({ option: 'allowedOrigins', message });
  if (problems.length > 0) throw new OptionsError(problems);
  return {
    ...table,
    whitelist: options.whitelist,
    tls: options.tls,
    httpHeadersTimeoutMs,
    staticRoutes: options.staticRoutes,
    demoStats: options.demoStats === true,
    logger: options.logger ?? pino({ level: 'silent' }),
    originRules: origins.rules,
  };
}
