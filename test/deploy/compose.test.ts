import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDuration } from '../../server/setup/option-text.js';
import { DEFAULTS } from '../../server/setup/options.js';
import { REPO_ROOT } from '../support/spawn-cli.js';
import { describeRun, describeWithDockerCompose, run } from './deploy-tools.js';

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: (string | { type: string; source: string; target: string; read_only?: boolean })[];
  ports?: unknown[];
  healthcheck?: { test: string[]; interval?: string };
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
  mem_limit?: string;
}

/** A bind mount as `source:target[:mode]` (docker-compose v1) or the long form (Compose v2). */
function bindMounts(service: Service): { source: string; target: string }[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target };
    const [source, target] = v.split(':') as [string, string];
    return { source, target };
  });
}

describeWithDockerCompose('docker-compose.yml', () => {
  let services: Record<string, Service> = {};

  beforeAll(async () => {
    const result = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: REPO_ROOT });
    expect(result.code, describeRun(result)).toBe(0);
    services = (parse(result.stdout) as { services: Record<string, Service> }).services;
  });

  it('docker-compose config accepts it, with the aggregator, Prometheus, Grafana and the load generator', () => {
    expect(Object.keys(services).sort()).toEqual(['aggregator', 'grafana', 'loadgen', 'prometheus']);
  });

  it('every file and directory it mounts exists (Docker would mount an empty directory in its place)', () => {
    const mounts = Object.entries(services).flatMap(([name, s]) => bindMounts(s).map((m) => ({ name, ...m })));
    expect(mounts.length).toBeGreaterThanOrEqual(5);
    for (const { name, source, target } of mounts) {
      expect(existsSync(source), `${name}: ${source} → ${target}`).toBe(true);
      // A file mounted onto a file path, a directory onto a directory path.
      expect(statSync(source).isFile(), `${name}: ${source} → ${target}`).toBe(path.extname(target) !== '');
    }
  });

  it('builds the aggregator and the load generator from this directory with its Dockerfile', () => {
    for (const name of ['aggregator', 'loadgen']) {
      const build = services[name]!.build!;
      expect(build.context).toBe(REPO_ROOT);
      expect(existsSync(path.join(build.context, build.dockerfile ?? 'Dockerfile'))).toBe(true);
      expect(services[name]!.image).toBe(services.aggregator!.image);
    }
  });

  it('has health checks, and starts each service once what it needs is healthy', () => {
    for (const name of ['aggregator', 'prometheus', 'grafana']) {
      const test = services[name]!.healthcheck?.test ?? [];
      expect(test[0], name).toBe('CMD');
    }
    // The image's HEALTHCHECK asks the aggregator's port: the load generator must not inherit it.
    expect(services.loadgen!.healthcheck?.test).toEqual(['NONE']);
    expect(services.loadgen!.depends_on).toEqual({ aggregator: { condition: 'service_healthy' } });
    expect(services.prometheus!.depends_on).toEqual({ aggregator: { condition: 'service_healthy' } });
    expect(services.grafana!.depends_on).toEqual({ prometheus: { condition: 'service_healthy' } });
    // The aggregator's check asks /readyz on its metrics port (PROMSTREAM_METRICS_PORT, else 9102).
    expect(services.aggregator!.healthcheck!.test).toEqual(['CMD', 'promstream', 'health', '--ready']);
    expect(services.aggregator!.environment?.PROMSTREAM_METRICS_PORT ?? String(DEFAULTS.metricsPort)).toBe(String(DEFAULTS.metricsPort));
  });

  it('gives the aggregator time to drain on docker compose stop', () => {
    const grace = parseDuration(services.aggregator!.stop_grace_period ?? '10s');
    const drain = parseDuration(services.aggregator!.environment?.PROMSTREAM_DRAIN_WINDOW ?? `${DEFAULTS.drainWindowMs}ms`);
    expect(grace).toBeGreaterThanOrEqual(drain + 5_000);
  });

  it('wires the services to each other: load generator → aggregator, Prometheus → aggregator, Grafana → Prometheus', async () => {
    const loadgen = services.loadgen!.command!;
    expect(loadgen.slice(0, 2)).toEqual(['node', 'examples/loadgen.mjs']);
    expect(loadgen[loadgen.indexOf('--url') + 1]).toBe(`ws://aggregator:${DEFAULTS.port}/ws`);
    expect(existsSync(path.join(REPO_ROOT, 'examples/loadgen.mjs'))).toBe(true);

    const mountOf = (service: string, source: string): string => {
      const found = bindMounts(services[service]!).find((m) => m.source === path.join(REPO_ROOT, source));
      if (found === undefined) throw new Error(`${service} does not mount ${source}`);
      return found.target;
    };
    expect(mountOf('prometheus', 'deploy/prometheus/prometheus.yml')).toBe('/etc/prometheus/prometheus.yml');
    // rule_files are relative to the config file: the rules must sit beside it.
    expect(mountOf('prometheus', 'deploy/prometheus/rules.yml')).toBe('/etc/prometheus/rules.yml');
    const prometheusConfig = parse(await readFile(path.join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    expect(prometheusConfig.rule_files).toEqual(['rules.yml']);
    expect(prometheusConfig.scrape_configs.map((s) => s.job_name)).toEqual(['promstream']);
    expect(prometheusConfig.scrape_configs[0]!.static_configs[0]!.targets).toEqual([`aggregator:${DEFAULTS.metricsPort}`]);

    const datasources = parse(await readFile(path.join(REPO_ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      datasources: { type: string; url: string; isDefault: boolean }[];
    };
    expect(datasources.datasources).toHaveLength(1);
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true });
    expect(mountOf('grafana', 'deploy/grafana/provisioning/datasources')).toBe('/etc/grafana/provisioning/datasources');
    expect(mountOf('grafana', 'deploy/grafana/provisioning/dashboards')).toBe('/etc/grafana/provisioning/dashboards');

    // The dashboard provider reads the directory where the dashboards are mounted, and the home
    // dashboard is a file in it.
    const providers = parse(await readFile(path.join(REPO_ROOT, 'deploy/grafana/provisioning/dashboards/promstream.yml'), 'utf8')) as {
      providers: { type: string; options: { path: string } }[];
    };
    const dashboardsTarget = mountOf('grafana', 'deploy/grafana/dashboards');
    expect(providers.providers.map((p) => p.options.path)).toEqual([dashboardsTarget]);
    const home = services.grafana!.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    expect(path.posix.dirname(home)).toBe(dashboardsTarget);
    expect(existsSync(path.join(REPO_ROOT, 'deploy/grafana/dashboards', path.posix.basename(home)))).toBe(true);
    expect(services.grafana!.environment).toMatchObject({ GF_AUTH_ANONYMOUS_ENABLED: 'true', GF_AUTH_ANONYMOUS_ORG_ROLE: 'Viewer' });
  });

  it('pins every image it pulls to a version', () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build !== undefined) continue;
      expect(s.image, name).toMatch(/:v?[0-9][\w.-]*$/);
    }
  });
});
