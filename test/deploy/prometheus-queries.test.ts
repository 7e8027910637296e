/**
 * A real Prometheus, started with deploy/prometheus/prometheus.yml and rules.yml (targets rewritten to
 * 127.0.0.1, scrape and evaluation every second), scrapes a real aggregator (`promstream serve --demo`)
 * fed by the load generator and two misbehaving clients. Every query of the Grafana dashboard (its
 * variables substituted as Grafana does) and every rule expression is then run through Prometheus'
 * HTTP API: none may fail, and every dashboard query must return data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createClient, type PromstreamClient } from '../../client/node.js';
import { SUBPROTOCOL } from '../../protocol/index.js';
import { describeWithPrometheus, startPrometheus, type RunningPrometheus } from '../support/prometheus.js';
import { REPO_ROOT, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';
import { DASHBOARD_FILES, dashboardQueries, grafanaRegexValue, loadDashboard, ruleExpressions, substitute } from './dashboard-queries.js';

const SCRAPE = '1s';
/** Grafana's $__rate_interval: max($__interval + scrape interval, 4 × scrape interval). */
const RATE_INTERVAL = '4s';

interface PromConfig {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs: Record<string, unknown>[];
}

/** deploy/prometheus/<file> with the scrape and evaluation interval shortened for a test. */
async function deployConfig(file: string): Promise<PromConfig> {
  const config = parse(await readFile(path.join(REPO_ROOT, 'deploy/prometheus', file), 'utf8')) as PromConfig;
  config.global = { ...config.global, scrape_interval: SCRAPE, scrape_timeout: SCRAPE, evaluation_interval: SCRAPE };
  return config;
}

/**
 * A week ago, as OpenMetrics for promtool to backfill: connected clients and page views of this
 * aggregator around the same time last week, so that the week-over-week panels have their other line.
 * Quieter than the load generator now (0.1 page views a second), so RealUserUsageDroppedWeekOverWeek stays
 * quiet, and more than its 100 an hour, so that its expression is evaluated in full.
 */
function lastWeek(instance: string): string {
  const weekAgo = Math.floor(Date.now() / 1000) - 7 * 24 * 3600;
  // Every second, as the test's scrapes: a rate over the test's $__rate_interval (4s) needs two samples.
  const times: number[] = [];
  for (let t = weekAgo - 70 * 60; t <= weekAgo + 10 * 60; t++) times.push(t);
  const labels = `job="promstream",instance="${instance}"`;
  const routes = ['/', '/courses', '/courses/:id', '/settings', 'other'];
  return [
    '# TYPE connected_clients gauge',
    ...times.map((t) => `connected_clients{${labels},app="demo"} 4 ${t}`),
    '# TYPE page_views counter',
    ...routes.flatMap((route) => times.map((t, i) => `page_views_total{${labels},route="${route}",navigation="navigate"} ${(i * 0.1).toFixed(1)} ${t}`)),
    '# EOF',
    '',
  ].join('\n');
}

/** GET on Prometheus' API; returns `data`, or throws with Prometheus' error. */
async function api(prometheus: RunningPrometheus, pathAndQuery: string): Promise<unknown> {
  const response = await fetch(`${prometheus.url}${pathAndQuery}`);
  const body = (await response.json()) as { status: string; data?: unknown; error?: string; errorType?: string };
  if (body.status !== 'success') throw new Error(`GET ${pathAndQuery}: ${body.errorType}: ${body.error}`);
  return body.data;
}

/** A range query like the one Grafana sends for a panel; returns the number of series with points. */
async function rangeSeries(prometheus: RunningPrometheus, expr: string): Promise<number> {
  const end = Math.floor(Date.now() / 1000);
  const data = (await api(prometheus, `/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${end - 30}&end=${end}&step=1`)) as {
    resultType: string;
    result: { values: unknown[] }[];
  };
  expect(data.resultType).toBe('matrix');
  return data.result.filter((s) => s.values.length > 0).length;
}

/** The same aggregator run two ways: one event loop (the demo), and two worker threads on one port. */
const SETUPS = [
  { name: 'one event loop (--demo)', args: ['--demo'], workers: 1 },
  { name: '--workers 2', args: ['--config', 'examples', '--workers', '2'], workers: 2 },
] as const;

for (const setup of SETUPS) describeWithPrometheus(`the dashboard and the alert rules against a real Prometheus scraping a real aggregator, ${setup.name}`, () => {
  // Assigned in beforeAll; afterAll also runs when beforeAll failed half-way, hence its `?.`.
  let server!: ServingCli;
  let prometheus!: RunningPrometheus;
  let loadgen!: ChildProcess;
  let loadgenOutput = '';
  const clients: PromstreamClient[] = [];
  const others: { stop(): Promise<void> }[] = [];

  beforeAll(async () => {
    server = await startServe(setup.args);
    expect(server.listening['workers']).toBe(setup.workers);
    loadgen = spawn(
      process.execPath,
      // every whitelist of --demo, the browser collectors' included: both dashboards get data
      ['examples/loadgen.mjs', '--url', `ws://127.0.0.1:${server.port}/ws`, '--whitelist', 'examples', '--clients', '6', '--rate', '10', '--churn', '300ms', '--flush-interval', '200ms', '--report-every', '0'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    loadgen.stdout!.setEncoding('utf8').on('data', (c: string) => (loadgenOutput += c));
    loadgen.stderr!.setEncoding('utf8').on('data', (c: string) => (loadgenOutput += c));

    // Something for the rejected-samples, client-drop and protocol-error panels: a label value the
    // whitelist does not allow (the server rejects it), a value that is not finite (the client drops
    // it and reports the drop), and a text frame (closed with 1003).
    const stray = createClient({ url: `ws://127.0.0.1:${server.port}/ws`, labels: { app: 'demo' }, flushInterval: 200 });
    clients.push(stray);
    await stray.flush();
    stray.increment('demo_clicks_total', { button: 'purple' });
    stray.increment('demo_clicks_total', { button: 'red' }, Number.NaN);
    await stray.flush();
    const text = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, [SUBPROTOCOL]);
    text.on('error', () => {});
    await new Promise<void>((resolve) => text.once('open', () => resolve()));
    const closed = new Promise<void>((resolve) => text.once('close', () => resolve()));
    text.send('not a msgpack frame');
    await closed;

    const config = await deployConfig('prometheus.yml');
    for (const scrape of config.scrape_configs) {
      scrape.static_configs = [{ targets: [`127.0.0.1:${server.metricsPort}`] }];
    }
    const files = Object.fromEntries(
      await Promise.all((config.rule_files ?? []).map(async (f) => [f, await readFile(path.join(REPO_ROOT, 'deploy/prometheus', f), 'utf8')] as const)),
    );
    prometheus = await startPrometheus({ config: { yaml: stringify(config), files }, backfill: lastWeek(`127.0.0.1:${server.metricsPort}`) });
    others.push(prometheus);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    if (loadgen?.exitCode === null) loadgen.kill('SIGKILL');
    for (const o of others) await o.stop();
    server?.proc.signal('SIGKILL');
  });

  it('every query of both dashboards runs without error and returns data, with "All" replicas and routes and with one of each picked', async () => {
    const queries = DASHBOARD_FILES.flatMap((file) => dashboardQueries(loadDashboard(file)));
    expect(queries.length).toBeGreaterThan(60);
    const instance = `127.0.0.1:${server.metricsPort}`;
    const selections = [
      { job: 'promstream', instance: '.*', route: '.*', __rate_interval: RATE_INTERVAL },
      { job: 'promstream', instance: grafanaRegexValue(instance), route: grafanaRegexValue('/courses/:id'), __rate_interval: RATE_INTERVAL },
    ];
    // Rates need two scrapes in their window and the histogram panels observations in it: poll until
    // every query has data. A query Prometheus refuses fails at once, naming it.
    let missing: string[] = [];
    const failed = await waitFor(
      async () => {
        const errors: string[] = [];
        const empty: string[] = [];
        for (const values of selections) {
          for (const { panel, target } of queries) {
            const expr = substitute(target.expr, values);
            try {
              if ((await rangeSeries(prometheus, expr)) === 0) empty.push(`${panel.title} [${target.refId}]: ${expr}`);
            } catch (err) {
              errors.push(`${panel.title} [${target.refId}]: ${(err as Error).message}`);
            }
          }
        }
        missing = empty;
        return errors.length > 0 || empty.length === 0 ? { errors } : undefined;
      },
      { what: 'every dashboard query to return data', timeoutMs: 40_000, intervalMs: 1000 },
    ).catch(() => ({ errors: [`no data within 40 s from:\n${missing.join('\n')}`] }));
    expect(failed.errors).toEqual([]);
    // The number that matters most: the live client count (6 simulated + the stray one).
    expect(await prometheus.waitForValue('sum(connected_clients{job="promstream"})', (v) => v === 7)).toBe(7);
    expect(await prometheus.waitForValue('sum(promstream_rejected_samples_total{job="promstream",reason="label_not_allowed"})', (v) => v === 1)).toBe(1);
    expect(await prometheus.waitForValue('sum(promstream_client_dropped_samples_total{job="promstream",reason="non_finite"})', (v) => v === 1)).toBe(1);
    expect(await prometheus.waitForValue('sum(promstream_protocol_errors_total{job="promstream",reason="text_frame"})', (v) => v === 1)).toBe(1);
  }, 90_000);

  it.each(DASHBOARD_FILES)("the dashboard's variables resolve: job and replica from promstream_build_info, routes from page_views_total (%s)", async (file) => {
    const dashboard = loadDashboard(file);
    const queryOf = (name: string): string => {
      const v = dashboard.templating.list.find((x) => x.name === name)!;
      return typeof v.query === 'string' ? v.query : v.query!.query;
    };
    // label_values(METRIC{SELECTOR}, LABEL) is Grafana's call of /api/v1/label/LABEL/values?match[]=...
    const labelValues = async (query: string, values: Record<string, string>): Promise<string[]> => {
      const m = /^label_values\((.+), (\w+)\)$/.exec(substitute(query, values));
      if (m === null) throw new Error(`not a label_values query: ${query}`);
      return (await api(prometheus, `/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(m[1]!)}`)) as string[];
    };
    expect(await labelValues(queryOf('job'), {})).toEqual(['promstream']);
    expect(await labelValues(queryOf('instance'), { job: 'promstream' })).toEqual([`127.0.0.1:${server.metricsPort}`]);
    // every route of the whitelist, its fallback included (every allowed series is exposed from 0)
    if (dashboard.templating.list.some((v) => v.name === 'route')) {
      expect(await labelValues(queryOf('route'), { job: 'promstream', instance: '.*' })).toEqual(['/', '/courses', '/courses/:id', '/settings', 'other']);
    }
  });

  it('every rule expression evaluates without error, Prometheus evaluates each rule healthily, and none fires', async () => {
    for (const rule of ruleExpressions()) {
      const samples = await prometheus.query(rule.expr);
      // A healthy aggregator under a light load trips none of them.
      expect(samples, `${rule.name}: ${JSON.stringify(samples)}`).toEqual([]);
    }
    type Rules = { groups: { file: string; rules: { name: string; health: string; lastError?: string; lastEvaluation: string; state?: string }[] }[] };
    const rules = await waitFor(
      async () => {
        const data = (await api(prometheus, '/api/v1/rules')) as Rules;
        const all = data.groups.flatMap((g) => g.rules);
        return all.length > 0 && all.every((r) => !r.lastEvaluation.startsWith('0001')) ? all : undefined;
      },
      { what: 'every rule evaluated once', timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(rules.map((r) => r.name).sort()).toEqual(ruleExpressions().map((r) => r.name).sort());
    for (const r of rules) {
      expect({ name: r.name, health: r.health, lastError: r.lastError ?? '' }).toEqual({ name: r.name, health: 'ok', lastError: '' });
      expect(r.state, r.name).toBe('inactive');
    }
  });

  it('deploy/prometheus/prometheus-kubernetes.yml keeps the annotated promstream pod and scrapes it on its prometheus.io/port', async () => {
    // Kubernetes discovery is replaced by a file that lists what it would find: the aggregator as an
    // annotated pod (address: its public port), a pod of another app, and a promstream pod that opted
    // out. The relabelling of the file under test decides what is scraped, and where.
    const config = await deployConfig('prometheus-kubernetes.yml');
    const pod = (name: string, app: string, scrape: string, address: string, port: string) => ({
      targets: [address],
      labels: {
        __meta_kubernetes_namespace: 'metrics',
        __meta_kubernetes_pod_name: name,
        __meta_kubernetes_pod_label_app_kubernetes_io_name: app,
        __meta_kubernetes_pod_annotation_prometheus_io_scrape: scrape,
        __meta_kubernetes_pod_annotation_prometheus_io_port: port,
        __meta_kubernetes_pod_annotation_prometheus_io_path: '/metrics',
      },
    });
    const pods = [
      pod('promstream-7d9f-abcde', 'promstream', 'true', `127.0.0.1:${server.port}`, String(server.metricsPort)),
      pod('other-app-1', 'other-app', 'true', '127.0.0.1:1', '2'),
      pod('promstream-opted-out', 'promstream', 'false', '127.0.0.1:3', '4'),
    ];
    for (const scrape of config.scrape_configs) {
      expect(scrape.kubernetes_sd_configs).toEqual([{ role: 'pod' }]);
      delete scrape.kubernetes_sd_configs;
      scrape.file_sd_configs = [{ files: ['pods.json'], refresh_interval: '1s' }];
    }
    const k8s = await startPrometheus({
      config: { yaml: stringify(config), files: { 'pods.json': JSON.stringify(pods), 'rules.yml': await readFile(path.join(REPO_ROOT, 'deploy/prometheus/rules.yml'), 'utf8') } },
    });
    others.push(k8s);
    type Targets = { activeTargets: { labels: Record<string, string>; scrapeUrl: string; health: string }[]; droppedTargets: unknown[] };
    const targets = await waitFor(
      async () => {
        const data = (await api(k8s, '/api/v1/targets')) as Targets;
        return data.activeTargets.length === 1 && data.activeTargets[0]!.health === 'up' ? data : undefined;
      },
      { what: 'the one promstream pod scraped and up', timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(targets.activeTargets[0]!.scrapeUrl).toBe(`http://127.0.0.1:${server.metricsPort}/metrics`);
    expect(targets.activeTargets[0]!.labels).toMatchObject({ job: 'promstream', namespace: 'metrics', pod: 'promstream-7d9f-abcde' });
    expect(targets.droppedTargets).toHaveLength(2);
    expect(await k8s.waitForValue('sum(connected_clients{job="promstream"})', (v) => v > 0)).toBeGreaterThan(0);
  }, 60_000);

  it('PromstreamAggregatorDown goes pending as soon as the aggregator stops answering', async () => {
    loadgen.kill('SIGTERM');
    const exit = await new Promise<number | null>((resolve) => (loadgen.exitCode !== null ? resolve(loadgen.exitCode) : loadgen.once('exit', (code) => resolve(code))));
    expect(exit, loadgenOutput.slice(-2000)).toBe(0);
    server.proc.signal('SIGKILL');
    await server.proc.waitForExit();
    type Alerts = { alerts: { labels: Record<string, string>; state: string }[] };
    const down = await waitFor(
      async () => {
        const data = (await api(prometheus, '/api/v1/alerts')) as Alerts;
        return data.alerts.find((a) => a.labels.alertname === 'PromstreamAggregatorDown');
      },
      { what: 'PromstreamAggregatorDown pending', timeoutMs: 15_000, intervalMs: 200 },
    );
    // `for: 1m` keeps it pending for a minute before it fires; pending proves the expression matched.
    expect(down).toMatchObject({ state: 'pending', labels: { job: 'promstream', instance: `127.0.0.1:${server.metricsPort}`, severity: 'critical' } });
  }, 40_000);
});
