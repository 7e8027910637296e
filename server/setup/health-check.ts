/**
 * `promstream health [--ready]`: asks a running aggregator's private side for /healthz (or /readyz)
 * and exits 0 when it answers 2xx, 1 otherwise, with a one-line reason on stderr. It is what the
 * image's HEALTHCHECK, docker-compose.yml and the docs run: an exec-form command with no shell and no
 * inline JavaScript to quote.
 */
import http from 'node:http';
import { parseDuration } from './option-text.js';
import { DEFAULTS } from './option-table.js';

export const HEALTH_HELP = `Usage: promstream health [--ready] [--host HOST] [--port PORT] [--timeout DURATION]

Asks a running aggregator's metrics side for /healthz (the process is up), or with --ready for /readyz
(it accepts clients; 503 while draining). Exit 0 on a 2xx answer, 1 otherwise (reason on stderr), 2 on
a usage error.
  --ready    ask /readyz instead of /healthz
  --host     default: PROMSTREAM_METRICS_HOST, else 127.0.0.1 (a wildcard address such as 0.0.0.0 means
             this machine: 127.0.0.1, or ::1 for ::)
  --port     default: PROMSTREAM_METRICS_PORT, else ${DEFAULTS.metricsPort}
  --timeout  the whole check, connection included (default 2s)
`;

export interface HealthCheckTarget {
  readonly host: string;
  readonly port: number;
  readonly path: '/healthz' | '/readyz';
  readonly timeoutMs: number;
}

export interface HealthCheckResult {
  readonly ok: boolean;
  /** One line: what was asked and what came back. */
  readonly reason: string;
}

/** The most of an answer's body that goes into the reason. */
const BODY_LIMIT = 200;

/** A server listening on every address is reached on this machine's loopback address. */
function connectable(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host.replace(/^\[(.*)\]$/, '$1');
}

function parsePort(raw: string, source: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 1 || n > 65535) throw new HealthUsageError(`${source}: expected a port 1–65535, got "${raw}"`);
  return n;
}

export class HealthUsageError extends Error {}

/** Reads argv over PROMSTREAM_METRICS_HOST / PROMSTREAM_METRICS_PORT; throws HealthUsageError. */
export function parseHealthArgs(args: readonly string[], env: NodeJS.ProcessEnv): HealthCheckTarget {
  let host = env.PROMSTREAM_METRICS_HOST ?? '127.0.0.1';
  let port = env.PROMSTREAM_METRICS_PORT === undefined ? DEFAULTS.metricsPort : parsePort(env.PROMSTREAM_METRICS_PORT, 'PROMSTREAM_METRICS_PORT');
  let path: HealthCheckTarget['path'] = '/healthz';
  let timeoutMs = 2000;
  for (let i = 0; i < args.length; i++) {
    const m = /^--(ready|host|port|timeout)(?:=(.*))?$/.exec(args[i]!);
    if (m === null) throw new HealthUsageError(`health: unexpected argument "${args[i]}"`);
    const name = m[1]!;
    if (name === 'ready') {
      if (m[2] !== undefined) throw new HealthUsageError('health: --ready takes no value');
      path = '/readyz';
      continue;
    }
    const value = m[2] ?? args[++i];
    if (value === undefined) throw new HealthUsageError(`health: --${name} needs a value`);
    if (name === 'host') host = value;
    else if (name === 'port') port = parsePort(value, '--port');
    else {
      try {
        timeoutMs = parseDuration(value);
      } catch (err) {
        throw new HealthUsageError(`--timeout: ${(err as Error).message}`);
      }
      if (timeoutMs < 1) throw new HealthUsageError(`--timeout: must be above 0, got "${value}"`);
    }
  }
  return { host: connectable(host), port, path, timeoutMs };
}

/** One GET on a fresh connection; never rejects. */
export function checkHealth(target: HealthCheckTarget): Promise<HealthCheckResult> {
  const url = `http://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}${target.path}`;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: HealthCheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    const req = http.get({ host: target.host, port: target.port, path: target.path, agent: false, headers: { 'user-agent': 'promstream-health' } }, (res) => {
      const status = res.statusCode ?? 0;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < BODY_LIMIT) body += chunk;
      });
      res.on('end', () => {
        const said = body.trim().split('\n')[0]!.slice(0, BODY_LIMIT);
        finish({ ok: status >= 200 && status < 300, reason: `GET ${url}: ${status}${said === '' ? '' : ` ${said}`}` });
      });
      res.on('error', (err) => finish({ ok: false, reason: `GET ${url}: ${err.message}` }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, reason: `GET ${url}: ${err.code ?? err.message}` }));
    const timer = setTimeout(() => finish({ ok: false, reason: `GET ${url}: no answer within ${target.timeoutMs} ms` }), target.timeoutMs);
  });
}

/** The whole subcommand: returns the exit code. */
export async function healthCommand(args: readonly string[], env: NodeJS.ProcessEnv, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    stdout.write(HEALTH_HELP);
    return 0;
  }
  let target: HealthCheckTarget;
  try {
    target = parseHealthArgs(args, env);
  } catch (err) {
    if (!(err instanceof HealthUsageError)) throw err;
    stderr.write(`promstream: ${err.message}\n\n${HEALTH_HELP}`);
    return 2;
  }
  const result = await checkHealth(target);
  if (result.ok) {
    stdout.write(`ok: ${result.reason}\n`);
    return 0;
  }
  stderr.write(`promstream health: ${target.path === '/readyz' ? 'not ready' : 'unhealthy'}: ${result.reason}\n`);
  return 1;
}
