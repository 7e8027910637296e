import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadWhitelist } from '../config/load-whitelist.js';
import { ConfigError, formatProblem } from '../config/types.js';
import { OptionsError, PromstreamError } from '../errors.js';
import { BrowserScriptMissing, loadBrowserScript } from '../http/browser-script.js';
import { renderSnippet } from '../http/browser-snippet.js';
import { CLI_OPTION_TABLE, SERVE_OPTIONS, SERVER_OPTION_TABLE, envName, type ServeOption } from './option-table.js';
import { readOptionText, type OptionValue } from './option-text.js';
import type { ServerOptions } from './options.js';
import { PACKAGE_ROOT, VERSION } from '../package-root.js';
import { healthCommand } from './health-check.js';
import { startServer } from './start-server.js';
import { stdoutDestination } from './stdout-destination.js';

const EXAMPLES_DIR = join(PACKAGE_ROOT, 'examples/');
/** The demo page's metrics and the page metrics it turns on (pageMetrics: true). */
const DEMO_WHITELISTS = ['demo', 'page-metrics', 'routes', 'api-metrics', 'errors'].map((name) => `${EXAMPLES_DIR}${name}-whitelist.json`);
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

/** A command line that cannot be run as given: exit 2 with the message and the usage. */
class UsageError extends Error {}

function serveHelp(): string {
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

/** An option's text as its value; a bad one is a UsageError naming --flag or PROMSTREAM_NAME. */
function read(spec: ServeOption, raw: string, source: string): OptionValue {
  try {
    return readOptionText(spec, raw, source);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/** Reads argv and PROMSTREAM_* env into option values by name; argv wins. */
function parseServeArgs(args: readonly string[], env: NodeJS.ProcessEnv): Map<string, OptionValue> {
  const byFlag = new Map(SERVE_OPTIONS.map((o) => [o.flag, o]));
  const values = new Map<string, OptionValue>();
  for (const spec of SERVE_OPTIONS) {
    const raw = env[envName(spec.flag)];
    if (raw !== undefined) values.set(spec.name, read(spec, raw, envName(spec.flag)));
  }
  const fromArgs = new Map<string, OptionValue>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m === null) throw new UsageError(`unexpected argument "${arg}" (options start with --; see promstream serve --help)`);
    const spec = byFlag.get(m[1]!);
    if (spec === undefined) throw new UsageError(`unknown option --${m[1]} (see promstream serve --help)`);
    let raw = m[2];
    if (raw === undefined && spec.unit === 'flag') raw = 'true';
    if (raw === undefined) {
      raw = args[++i];
      if (raw === undefined) throw new UsageError(`--${spec.flag} needs a value`);
    }
    const value = read(spec, raw, `--${spec.flag}`);
    const prev = fromArgs.get(spec.name);
    // --config is repeatable: the values add up
    fromArgs.set(spec.name, spec.unit === 'paths' && Array.isArray(prev) && Array.isArray(value) ? [...prev, ...value] : value);
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

/** The option values, typed by their table rows (each was read by readOptionText for its unit). */
class ServeArgs {
  constructor(private readonly values: Map<string, OptionValue>) {}
  has(name: string): boolean {
    return this.values.has(name);
  }
  string(name: keyof typeof CLI_OPTION_TABLE): string | undefined {
    const v = this.values.get(name);
    return typeof v === 'string' ? v : undefined;
  }
  strings(name: keyof typeof CLI_OPTION_TABLE): readonly string[] {
    const v = this.values.get(name);
    return Array.isArray(v) ? v : [];
  }
  number(name: keyof typeof CLI_OPTION_TABLE): number | undefined {
    const v = this.values.get(name);
    return typeof v === 'number' ? v : undefined;
  }
  flag(name: keyof typeof CLI_OPTION_TABLE): boolean {
    return this.values.get(name) === true;
  }
  /** Every startServer() option given on the command line or in the environment. */
  serverOptions(): Partial<ServerOptions> {
    const out: Record<string, OptionValue> = {};
    for (const name of Object.keys(SERVER_OPTION_TABLE)) {
      const v = this.values.get(name);
      if (v !== undefined) out[name] = v;
    }
    // Read by the table's own parser for each key's unit: the values have the keys' types.
    return out as Partial<ServerOptions>;
  }
}

/** startServer()'s problems by JavaScript name, said as the flags the user typed. */
function asFlags(err: OptionsError): string {
  const flagOf = new Map(SERVE_OPTIONS.map((o) => [o.name, `--${o.flag}`]));
  return `invalid options:\n${err.problems.map((p) => `  ${flagOf.get(p.option as ServeOption['name']) ?? p.option}: ${p.message.replace(/\b(maxPayloadBytes)\b/g, (w) => flagOf.get(w as ServeOption['name']) ?? w)}`).join('\n')}`;
}

/** `promstream health`: the container health check (health-check.ts). */
function health(args: readonly string[]): Promise<number> {
  return healthCommand(args, process.env, process.stdout, process.stderr);
}

async function serve(args: readonly string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(serveHelp());
    return 0;
  }
  const v = new ServeArgs(parseServeArgs(args, process.env));
  const demo = v.flag('demo');
  const paths = [...v.strings('config'), ...(demo ? DEMO_WHITELISTS : [])];
  if (paths.length === 0) throw new UsageError('no whitelist: pass --config PATH (or --demo); see promstream serve --help');

  // Our own destination, not pino's default: every line is written at once and every write is bounded,
  // so neither a reader that is gone (EPIPE) nor one that stopped reading (EAGAIN) can hold the exit
  // (stdout-destination.ts). process.stdout is opened first: Node puts a pipe or socket on fd 1 into
  // non-blocking mode, so a full pipe gives EAGAIN instead of a write that blocks the whole process.
  const logDestination = stdoutDestination({ fd: process.stdout.fd });
  const logger = pino({ level: v.string('logLevel') ?? CLI_OPTION_TABLE.logLevel.default, base: { pid: process.pid } }, logDestination);
  const serverOptions = v.serverOptions();
  const whitelistLimits = {
    maxSeries: v.number('maxSeries') ?? CLI_OPTION_TABLE.maxSeries.default,
    maxFrameBytes: serverOptions.maxFrameBytes ?? Math.min(SERVER_OPTION_TABLE.maxFrameBytes.default, serverOptions.maxPayloadBytes ?? Infinity),
  };
  const whitelist = await loadWhitelist(paths, whitelistLimits);
  const allowedOrigins = serverOptions.allowedOrigins ?? SERVER_OPTION_TABLE.allowedOrigins.default;
  // A signal that arrives while the server starts is kept and acted on once it is up (a container can be
  // stopped before it is ready); without a listener Node would die of it, with no drain and no exit 0.
  // One listener per signal for the life of the process: removing the last one stops Node's watcher,
  // and a signal caught but not yet dispatched would be lost.
  const early: NodeJS.Signals[] = [];
  let dispatch: ((signal: NodeJS.Signals) => void) | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (dispatch === null) early.push(signal);
    else dispatch(signal);
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  if (allowedOrigins.includes('*')) logger.warn('--allowed-origins is *: pages from any site can stream into this aggregator; list your origins in production');

  const server = await startServer({
    ...serverOptions, whitelist, logger, ...tlsOption(v.string('tlsCert'), v.string('tlsKey')),
    ...(demo ? { staticRoutes: new Map([['/', { contentType: 'text/html; charset=utf-8', body: readFileSync(DEMO_PAGE) }]]), demoStats: true } : {}),
  }).catch((err: unknown) => {
    for (const signal of SIGNALS) process.off(signal, onSignal);
    if (err instanceof OptionsError) throw new UsageError(asFlags(err));
    throw err;
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        // At once, whatever the drain or the logger is doing: the line is bounded like every other, and
        // nothing waits for the drain's promise chain.
        logger.warn({ signal }, 'second signal: exiting without draining');
        process.exit(130);
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      server.drain().then(
        () => {
          const droppedLogLines = logDestination.droppedLines;
          logger.info(droppedLogLines > 0 ? { droppedLogLines } : {}, 'stopped cleanly');
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'error while draining');
          resolve(1);
        },
      );
    };
    // Test hook (never in production): SIGUSR2 makes worker 0 throw, as a bug would.
    if (process.env.PROMSTREAM_TEST_HOOKS === '1' && server.crashWorker !== undefined) process.on('SIGUSR2', () => server.crashWorker?.(0));
    // SIGHUP re-reads the whitelist; a bad one is refused with every problem logged, the old one stays.
    // One reload runs at a time: a SIGHUP during one is remembered, and the files are read again once it
    // is done, so the newest files are the ones applied.
    let reloading = false;
    let again = false;
    const reload = (): void => {
      if (stopping) return;
      if (reloading) {
        if (!again) logger.info('SIGHUP during a reload: reloading again once it is done');
        again = true;
        return;
      }
      reloading = true;
      again = false;
      logger.info({ files: paths }, 'SIGHUP: reloading the whitelist');
      loadWhitelist(paths, whitelistLimits)
        .then((next) => server.reload(next))
        .then(
          ({ catalogVersion, changed }) => logger.info({ catalogVersion, changed }, changed ? 'whitelist reload applied' : 'whitelist unchanged'),
          (err: unknown) => {
            const problems = err instanceof ConfigError ? err.problems.map(formatProblem).map((p) => p.trim()) : [err instanceof Error ? err.message : String(err)];
            const code = err instanceof PromstreamError ? err.code : undefined;
            logger.error({ problems, code }, 'whitelist reload refused; keeping the old whitelist');
          },
        )
        .finally(() => {
          reloading = false;
          if (again && !stopping) reload();
        });
    };
    dispatch = (signal) => (signal === 'SIGHUP' ? reload() : stop(signal));
    for (const signal of early.splice(0)) dispatch(signal);
  });
}

/** The signals serve acts on: SIGTERM and SIGINT drain, SIGHUP reloads. */
const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

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
    if (err instanceof UsageError) {
      process.stderr.write(`promstream: ${err.message}\n\n${command === 'serve' ? '' : MAIN_HELP}`);
      return 2;
    }
    if (err instanceof PromstreamError) {
      // Ours, with a message that says what to do (a TLS file, a port in use): no stack.
      process.stderr.write(`promstream: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`promstream: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

