import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { waitFor } from './wait-for.js';

/** The Prometheus binary: `PROMETHEUS_BIN`, else where Debian's `prometheus` package puts it (CI installs that). */
export const prometheusBin: string = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
/** promtool, from the same package: `PROMTOOL_BIN`, else Debian's path. */
export const promtoolBin: string = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';

export function prometheusAvailable(): boolean {
  try {
    accessSync(prometheusBin, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** CI=false and CI=0 are how some setups say "not CI"; any other non-empty value means CI. */
export function runningInCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

export interface Requirement {
  /** What is missing, as a noun: "prometheus binary". */
  what: string;
  available: () => boolean;
  /** How to get it: "apt-get install prometheus". */
  installHint: string;
}

/**
 * A `describe` for tests that need an outside tool. When the tool is missing, the suite is skipped with
 * a loud warning on a developer's machine, but fails under CI: a CI run that silently skipped the
 * end-to-end tests would report green without having checked anything.
 */
export function describeRequiring(requirement: Requirement): (name: string, body: () => void) => void {
  return (name, body) => {
    if (requirement.available()) {
      describe(name, body);
      return;
    }
    const message = `${requirement.what} not found; ${requirement.installHint}`;
    if (runningInCi()) {
      describe(name, () => {
        it(`requires the ${requirement.what}`, () => {
          throw new Error(`${message} (CI is set, so this fails instead of skipping)`);
        });
      });
      return;
    }
    console.warn(`SKIPPED: ${message} (suite "${name}")`);
    describe.skip(name, body);
  };
}

/** `describe` for suites that run a real Prometheus; see describeRequiring for the skip/fail rule. */
export const describeWithPrometheus = describeRequiring({
  what: 'prometheus binary',
  available: prometheusAvailable,
  installHint: `apt-get install prometheus (looked at ${prometheusBin}; set PROMETHEUS_BIN to override)`,
});

export interface StartPrometheusOptions {
  /** Scrape targets as host:port (job "promstream"); not used with `config`. */
  targets?: string[];
  /** Scrape (and so the lag of waitForValue) in milliseconds; default 500. */
  scrapeIntervalMs?: number;
  /** Default /metrics. */
  metricsPath?: string;
  /**
   * A whole prometheus.yml instead of the generated one (then targets, scrapeIntervalMs and metricsPath
   * are not used), and files to write beside it, such as the rule files it names.
   */
  config?: { yaml: string; files?: Readonly<Record<string, string>> };
  /**
   * History to start with, as OpenMetrics text with timestamps (`# EOF` at the end): turned into TSDB
   * blocks by `promtool tsdb create-blocks-from openmetrics` before Prometheus starts, so that queries
   * about the past (`offset 1w`) have data. Times must lie outside the last two hours (the head block's).
   */
  backfill?: string;
}

export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export interface RunningPrometheus {
  /** Base URL of its HTTP API, e.g. http://127.0.0.1:40123 */
  readonly url: string;
  /** Instant query at the current time; throws when Prometheus answers with anything but success. */
  query(expr: string): Promise<PromSample[]>;
  /**
   * Polls `expr` until its single sample satisfies `predicate` and returns that value. An expression
   * that yields several series is a mistake in the test (which one should match?) and throws at once:
   * wrap it in sum() or select one series. No series yet counts as "not yet".
   */
  waitForValue(expr: string, predicate: (value: number) => boolean, timeoutMs?: number): Promise<number>;
  /** True when there is at least one active target and every one is 'up'. */
  targetsHealthy(): Promise<boolean>;
  /** SIGTERM, wait for the exit (SIGKILL after 10 s), remove the temporary directory. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;
/** Enough of the child's output to explain a failure, not enough to flood a test report. */
const OUTPUT_TAIL_CHARS = 16_384;
/** Attempts to start on a fresh port: the port found free may be taken again before Prometheus binds it. */
const PORT_ATTEMPTS = 3;

export async function startPrometheus(options: StartPrometheusOptions): Promise<RunningPrometheus> {
  const { targets = [], scrapeIntervalMs = 500, metricsPath = '/metrics' } = options;
  if (!prometheusAvailable()) throw new Error(`prometheus binary not found at ${prometheusBin}; apt-get install prometheus`);
  if (options.config === undefined && targets.length === 0) throw new Error('startPrometheus: give targets or a config');
  if (!Number.isInteger(scrapeIntervalMs) || scrapeIntervalMs <= 0) {
    throw new Error(`startPrometheus: scrapeIntervalMs must be a positive integer, got ${scrapeIntervalMs}`);
  }

  const dir = await mkdtemp(join(tmpdir(), 'promstream-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  // JSON is valid YAML, and JSON.stringify quotes whatever a test passes in.
  const config = {
    global: {
      scrape_interval: `${scrapeIntervalMs}ms`,
      // Prometheus refuses a scrape_timeout above scrape_interval; its default (10s) is above ours.
      scrape_timeout: `${Math.min(scrapeIntervalMs, 10_000)}ms`,
    },
    scrape_configs: [{ job_name: 'promstream', metrics_path: metricsPath, static_configs: [{ targets }] }],
  };
  await writeFile(configFile, options.config?.yaml ?? JSON.stringify(config, null, 2));
  for (const [name, text] of Object.entries(options.config?.files ?? {})) await writeFile(join(dir, name), text);
  if (options.backfill !== undefined) {
    try {
      await backfill(options.backfill, dir);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  }

  try {
    for (let attempt = 1; ; attempt += 1) {
      const port = await findFreePort();
      const started = await launch(dir, configFile, port);
      if (started.ok) return started.running;
      const lostPortRace = /address already in use/i.test(started.output);
      if (!lostPortRace || attempt >= PORT_ATTEMPTS) {
        throw new Error(`prometheus did not start: ${started.reason}\n--- prometheus output ---\n${started.output}`);
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** Writes the OpenMetrics history into `dir`/data as blocks, with promtool; throws with its output when it fails. */
async function backfill(openMetrics: string, dir: string): Promise<void> {
  const input = join(dir, 'backfill.om');
  await writeFile(input, openMetrics);
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(promtoolBin, ['tsdb', 'create-blocks-from', 'openmetrics', input, join(dir, 'data')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (text += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', (exitCode) => resolve({ code: exitCode, output: text }));
  });
  if (code !== 0) throw new Error(`promtool tsdb create-blocks-from openmetrics exited with ${code}:\n${output.slice(-OUTPUT_TAIL_CHARS)}`);
}

type LaunchResult = { ok: true; running: RunningPrometheus } | { ok: false; reason: string; output: string };

async function launch(dir: string, configFile: string, port: number): Promise<LaunchResult> {
  const url = `http://127.0.0.1:${port}`;
  // Debian's defaults point at /etc/prometheus and /var/lib/prometheus: everything is set explicitly.
  const child = spawn(
    prometheusBin,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const capture = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', capture);
  child.stderr?.on('data', capture);

  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = signal === null ? `exited with code ${code}` : `killed by ${signal}`;
      resolve();
    });
    child.once('error', (error) => {
      exit = `could not be run: ${error.message}`;
      resolve();
    });
  });

  // A crashed test worker must not leave Prometheus running on the CI machine.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (exit === undefined) {
      child.kill('SIGTERM');
      const grace = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(grace);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      async () => {
        if (exit !== undefined) return 'exited';
        const response = await fetch(`${url}/-/ready`);
        await response.body?.cancel();
        return response.ok ? 'ready' : undefined;
      },
      { what: `prometheus at ${url}/-/ready`, timeoutMs: READY_TIMEOUT_MS, intervalMs: 50 },
    );
  } catch (error) {
    if (exit === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
    process.off('exit', killOnExit);
    return { ok: false, reason: error instanceof Error ? error.message : String(error), output };
  }
  if (exit !== undefined) {
    process.off('exit', killOnExit);
    return { ok: false, reason: `prometheus ${exit} before it was ready`, output };
  }

  let stopping: Promise<void> | undefined;
  const running: RunningPrometheus = {
    url,
    query: (expr) => query(url, expr),
    async waitForValue(expr, predicate, timeoutMs = 15_000) {
      const found = await waitFor(
        async () => {
          const samples = await query(url, expr);
          // Returned rather than thrown: waitFor treats a throw as "not yet" and would keep polling.
          if (samples.length > 1) return { ambiguous: samples.length };
          const sample = samples[0];
          if (sample === undefined) return undefined;
          // Boxed so that a wanted value of 0 counts as found.
          return predicate(sample.value) ? { value: sample.value } : undefined;
        },
        { what: `${expr} to satisfy ${predicate.toString().slice(0, 200)}`, timeoutMs, intervalMs: 100 },
      );
      if ('ambiguous' in found) {
        throw new Error(`waitForValue(${expr}) matched ${found.ambiguous} series; wrap it in sum() or select one`);
      }
      return found.value;
    },
    async targetsHealthy() {
      const data = await apiGet(url, '/api/v1/targets');
      const active = isRecord(data) && Array.isArray(data.activeTargets) ? data.activeTargets : [];
      return active.length > 0 && active.every((target) => isRecord(target) && target.health === 'up');
    },
    stop() {
      stopping ??= stop();
      return stopping;
    },
  };
  return { ok: true, running };
}

async function query(url: string, expr: string): Promise<PromSample[]> {
  const data = await apiGet(url, `/api/v1/query?query=${encodeURIComponent(expr)}`);
  if (!isRecord(data)) throw new Error(`query ${expr}: no data in the answer`);
  const { resultType, result } = data;
  switch (resultType) {
    case 'vector':
      if (!Array.isArray(result)) throw new Error(`query ${expr}: vector result is not an array`);
      return result.map((entry: unknown) => {
        if (!isRecord(entry) || !isRecord(entry.metric)) throw new Error(`query ${expr}: malformed sample`);
        return { metric: stringRecord(entry.metric), value: sampleValue(entry.value, expr) };
      });
    case 'scalar':
      return [{ metric: {}, value: sampleValue(result, expr) }];
    default:
      throw new Error(`query ${expr}: expected an instant vector or a scalar, got ${String(resultType)}`);
  }
}

/** GETs a Prometheus API path and returns `data`, or throws with Prometheus' own error text. */
async function apiGet(url: string, path: string): Promise<unknown> {
  const response = await fetch(`${url}${path}`);
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`GET ${path}: HTTP ${response.status}, not JSON: ${text.slice(0, 500)}`);
  }
  if (!isRecord(body) || body.status !== 'success') {
    const detail = isRecord(body) ? `${String(body.errorType)}: ${String(body.error)}` : text.slice(0, 500);
    throw new Error(`GET ${path}: HTTP ${response.status}, ${detail}`);
  }
  return body.data;
}

/** A sample is [unixSeconds, "value"]; Prometheus spells the infinities +Inf and -Inf, which Number() does not read. */
function sampleValue(pair: unknown, expr: string): number {
  if (!Array.isArray(pair) || typeof pair[1] !== 'string') throw new Error(`query ${expr}: malformed sample value`);
  const text: string = pair[1];
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

function stringRecord(value: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) if (typeof entry === 'string') out[key] = entry;
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Asks the kernel for a free port. Racy by nature (it is free only until someone binds it); startPrometheus retries. */
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = address !== null && typeof address === 'object' ? address.port : undefined;
      probe.close(() => (port === undefined ? reject(new Error('no TCP address for the port probe')) : resolve(port)));
    });
  });
}
