import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { BrowserScriptMissing, loadBrowserScript } from './browser-script.js';
import { renderSnippet } from './browser-snippet.js';
import { loadWhitelist } from './config/load-whitelist.js';
import { ConfigError, formatProblem } from './config/types.js';
import { SERVE_OPTIONS, convert, envName, serveHelp, type ParsedValue } from './cli-options.js';
import { healthCommand } from './health-check.js';
import { DEFAULTS, type ServerOptions, type TransportChoice } from './options.js';
import { PACKAGE_ROOT, VERSION } from './package-root.js';
import { startServer } from './start-server.js';

const EXAMPLES_DIR = join(PACKAGE_ROOT, 'examples/');
/** The demo page's metrics and the page metrics it turns on (pageMetrics: true). */
const DEMO_WHITELISTS = [`${EXAMPLES_DIR}demo-whitelist.json`, `${EXAMPLES_DIR}page-metrics-whitelist.json`];
const DEMO_PAGE = `${EXAMPLES_DIR}demo.html`;

const MAIN_HELP = `promstream ${VERSION} — stream metrics from browsers and other unscrapable clients into Prometheus

Usage:
  promstream serve [options]           run the aggregator (promstream serve --help lists the options)
  promstream check-config PATH...      validate whitelist files or directories; exit 1 listing every problem
  promstream snippet [--url URL]       print the HTML snippet for pages (versioned script URL + integrity)
  promstream health [--ready]          ask a running aggregator's /healthz (/readyz); exit 0 healthy, 1 not
  promstream --version                 print the version
  promstream --help                    show this help
`;

class UsageError extends Error {}

/** Reads argv and PROMSTREAM_* env into a map of option values; argv wins. */
function parseServeArgs(args: readonly string[], env: NodeJS.ProcessEnv): Map<string, ParsedValue> {
  const byFlag = new Map(SERVE_OPTIONS.map((o) => [o.flag, o]));
  const values = new Map<string, ParsedValue>();
  for (const spec of SERVE_OPTIONS) {
    const raw = env[envName(spec.flag)];
    if (raw !== undefined) values.set(spec.flag, convert(spec, raw, envName(spec.flag)));
  }
  const fromArgs = new Map<string, ParsedValue>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m === null) throw new UsageError(`unexpected argument "${arg}" (options start with --; see promstream serve --help)`);
    const spec = byFlag.get(m[1]!);
    if (spec === undefined) throw new UsageError(`unknown option --${m[1]} (see promstream serve --help)`);
    let raw = m[2];
    if (raw === undefined && spec.kind === 'flag') raw = 'true';
    if (raw === undefined) {
      raw = args[++i];
      if (raw === undefined) throw new UsageError(`--${spec.flag} needs a value`);
    }
    const value = convert(spec, raw, `--${spec.flag}`);
    const prev = fromArgs.get(spec.flag);
    // --config is repeatable: the values add up
    fromArgs.set(spec.flag, spec.kind === 'paths' && Array.isArray(prev) && Array.isArray(value) ? [...prev, ...value] : value);
  }
  for (const [k, v] of fromArgs) values.set(k, v);
  return values;
}

function printConfigError(err: ConfigError, stream: NodeJS.WritableStream): void {
  stream.write(`promstream: the whitelist has ${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}:\n${err.problems.map(formatProblem).join('\n')}\n`);
}

async function checkConfig(paths: readonly string[]): Promise<number> {
  if (paths.length === 0 || paths.includes('--help')) {
    process.stdout.write('Usage: promstream check-config PATH...\n\nValidates whitelist files or directories (.json/.yaml/.yml) and lists every problem; exit 0 when valid, 1 when not.\n');
    return paths.length === 0 ? 2 : 0;
  }
  try {
    const w = await loadWhitelist(paths);
    process.stdout.write(`ok: ${w.files.length} file${w.files.length === 1 ? '' : 's'}, ${w.metrics.length} metrics, ${w.sessionLabels.length} session labels\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    printConfigError(err, process.stderr);
    return 1;
  }
}

function tlsOption(certFile: string | undefined, keyFile: string | undefined): Pick<ServerOptions, 'tls'> {
  if (certFile === undefined && keyFile === undefined) return {};
  if (certFile === undefined || keyFile === undefined) throw new UsageError('--tls-cert and --tls-key go together');
  return { tls: { certFile, keyFile } };
}

const SNIPPET_HELP = `Usage: promstream snippet [--url URL] [--labels NAME=VALUE,...]

Prints the HTML snippet for pages: the queue stub, init, and the versioned script with its integrity value.
  --url     the aggregator's public base URL as pages reach it (default http://localhost:3000)
  --labels  session labels for init, e.g. app=student (default: a placeholder comment)
`;

function snippet(args: readonly string[]): number {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(SNIPPET_HELP);
    return 0;
  }
  let baseUrl = 'http://localhost:3000';
  let labels: Record<string, string> | undefined;
  for (let i = 0; i < args.length; i++) {
    const m = /^--(url|labels)(?:=(.*))?$/.exec(args[i]!);
    if (m === null) throw new UsageError(`snippet: unexpected argument "${args[i]}"\n\n${SNIPPET_HELP}`);
    const value = m[2] ?? args[++i];
    if (value === undefined) throw new UsageError(`snippet: --${m[1]} needs a value`);
    if (m[1] === 'url') baseUrl = value;
    else labels = Object.fromEntries(value.split(',').filter((p) => p !== '').map((p) => {
      const eq = p.indexOf('=');
      if (eq <= 0) throw new UsageError(`snippet: --labels takes NAME=VALUE pairs, got "${p}"`);
      return [p.slice(0, eq), p.slice(eq + 1)];
    }));
  }
  let script;
  try {
    script = loadBrowserScript();
  } catch (err) {
    if (!(err instanceof BrowserScriptMissing)) throw err;
    process.stderr.write(`promstream: the browser script is not built: ${err.message}\n`);
    return 1;
  }
  try {
    process.stdout.write(renderSnippet(script.manifest, { baseUrl, ...(labels === undefined ? {} : { labels }) }));
  } catch (err) {
    throw new UsageError(`snippet: ${(err as Error).message}`);
  }
  return 0;
}

/** `promstream health`: the container health check (server/health-check.ts). */
function health(args: readonly string[]): Promise<number> {
  return healthCommand(args, process.env, process.stdout, process.stderr);
}

async function serve(args: readonly string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(serveHelp());
    return 0;
  }
  const v = parseServeArgs(args, process.env);
  const get = <T extends ParsedValue>(flag: string): T | undefined => v.get(flag) as T | undefined;
  const demo = get<boolean>('demo') === true;
  const paths = [...(get<string[]>('config') ?? []), ...(demo ? DEMO_WHITELISTS : [])];
  if (paths.length === 0) throw new UsageError('no whitelist: pass --config PATH (or --demo); see promstream serve --help');

  const level = get<string>('log-level') ?? DEFAULTS.logLevel;
  const logger = pino({ level, base: { pid: process.pid } });
  const whitelist = await loadWhitelist(paths, { maxSeries: get<number>('max-series') ?? DEFAULTS.maxSeries });
  const allowedOrigins = get<string[]>('allowed-origins') ?? [...DEFAULTS.allowedOrigins];
  if (allowedOrigins.includes('*')) logger.warn('--allowed-origins is *: pages from any site can stream into this aggregator; list your origins in production');

  const flagOf = new Map<string, string>();
  const opt = <K extends keyof ServerOptions>(key: K, flag: string): Partial<Pick<ServerOptions, K>> => {
    flagOf.set(key, flag);
    const value = v.get(flag);
    return value === undefined ? {} : ({ [key]: value } as Partial<Pick<ServerOptions, K>>);
  };
  // startServer checks ranges (--idle-timeout ≥ 1s, …) with its JavaScript names: say them as flags, exit 2.
  const asUsageError = (err: unknown): never => {
    if (!(err instanceof TypeError && err.message.startsWith('invalid server options'))) throw err;
    throw new UsageError(err.message.replace(/\b[a-z][A-Za-z]+\b/g, (w) => (flagOf.has(w) ? `--${flagOf.get(w)}` : w)));
  };
  const server = await startServer({
    whitelist, logger, allowedOrigins,
    ...opt('host', 'host'), ...opt('port', 'port'), ...opt('metricsHost', 'metrics-host'), ...opt('metricsPort', 'metrics-port'),
    ...(v.has('transport') ? { transport: get<TransportChoice>('transport')! } : {}),
    ...opt('flushIntervalMs', 'flush-interval'), ...opt('idleTimeoutMs', 'idle-timeout'), ...opt('sessionTtlMs', 'session-ttl'),
    ...opt('handshakeTimeoutMs', 'handshake-timeout'), ...opt('maxPayloadBytes', 'max-payload'), ...opt('maxFrameBytes', 'max-frame-bytes'),
    ...opt('maxSamplesPerFrame', 'max-samples-per-frame'), ...opt('maxSampleValue', 'max-sample-value'),
    ...opt('maxBackpressureBytes', 'max-backpressure'), ...opt('drainWindowMs', 'drain-window'),
    ...opt('maxConnections', 'max-connections'), ...opt('maxConnectionsPerIp', 'max-connections-per-ip'),
    ...opt('maxFramesPerSecond', 'max-frames-per-second'), ...opt('maxSamplesPerSecond', 'max-samples-per-second'),
    ...opt('maxSessions', 'max-sessions'), ...opt('trustProxy', 'trust-proxy'), ...tlsOption(get<string>('tls-cert'), get<string>('tls-key')),
    ...(demo ? { staticRoutes: new Map([['/', { contentType: 'text/html; charset=utf-8', body: readFileSync(DEMO_PAGE) }]]), demoStats: true } : {}),
  }).catch(asUsageError);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without draining');
        resolve(130);
        return;
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      server.drain().then(
        () => {
          logger.info('stopped cleanly');
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'error while draining');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    // SIGHUP re-reads the whitelist; a bad one is refused with every problem logged, the old one stays.
    let reloading = false;
    process.on('SIGHUP', () => {
      if (reloading || stopping) return;
      reloading = true;
      logger.info({ files: paths }, 'SIGHUP: reloading the whitelist');
      loadWhitelist(paths, { maxSeries: get<number>('max-series') ?? DEFAULTS.maxSeries })
        .then((next) => server.reload(next))
        .then(
          ({ catalogVersion, changed }) => logger.info({ catalogVersion, changed }, changed ? 'whitelist reload applied' : 'whitelist unchanged'),
          (err: unknown) => {
            const problems = err instanceof ConfigError ? err.problems.map(formatProblem).map((p) => p.trim()) : [(err as Error).message];
            logger.error({ problems }, 'whitelist reload refused; keeping the old whitelist');
          },
        )
        .finally(() => {
          reloading = false;
        });
    });
  });
}

/** The command line. Returns the exit code; the only place that touches process, env and signals. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case '--version':
      case '-v':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(MAIN_HELP);
        return command === undefined ? 2 : 0;
      case 'serve':
        return await serve(rest);
      case 'check-config':
        return await checkConfig(rest);
      case 'snippet':
        return snippet(rest);
      case 'health':
        return await health(rest);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigError(err, process.stderr);
      return 1;
    }
    if (err instanceof UsageError || (err instanceof Error && /^(--|PROMSTREAM_)/.test(err.message))) {
      process.stderr.write(`promstream: ${err.message}\n\n${command === 'serve' ? '' : MAIN_HELP}`);
      return 2;
    }
    process.stderr.write(`promstream: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

