import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from '../support/spawn-cli.js';
import { describeRun, describeWithPromtool, promtoolBin, run } from './deploy-tools.js';

const PROMETHEUS_DIR = path.join(REPO_ROOT, 'deploy/prometheus');
/** The rule unit tests: the aggregator's (evaluated every minute) and the real users' (every 15 minutes, over days). */
const TEST_FILES = ['rules.test.yml', 'rules-real-users.test.yml'] as const;

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string; for?: string }[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describeWithPromtool('promtool accepts the Prometheus config and rules, and their unit tests pass', () => {
  it('promtool check config deploy/prometheus/prometheus.yml (which also checks the rule file it names)', async () => {
    const result = await run(promtoolBin, ['check', 'config', 'prometheus.yml'], { cwd: PROMETHEUS_DIR });
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toMatch(/SUCCESS: 1 rule files found/);
  });

  it('promtool check rules deploy/prometheus/rules.yml', async () => {
    const result = await run(promtoolBin, ['check', 'rules', 'rules.yml'], { cwd: PROMETHEUS_DIR });
    expect(result.code, describeRun(result)).toBe(0);
  });

  it.each(TEST_FILES)('promtool test rules deploy/prometheus/%s', async (file) => {
    const result = await run(promtoolBin, ['test', 'rules', file], { cwd: PROMETHEUS_DIR, timeoutMs: 120_000 });
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stdout).toMatch(/SUCCESS/);
  }, 130_000);

  it('the unit tests cover every alert both firing and not firing', async () => {
    const rules = parse(await readFile(path.join(PROMETHEUS_DIR, 'rules.yml'), 'utf8')) as RuleFile;
    const files = await Promise.all(TEST_FILES.map(async (f) => parse(await readFile(path.join(PROMETHEUS_DIR, f), 'utf8')) as RuleTests));
    for (const tests of files) expect(tests.rule_files).toEqual(['rules.yml']);
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert)).filter((a): a is string => a !== undefined);
    expect(alerts.length).toBeGreaterThanOrEqual(9);
    const cases = files.flatMap((tests) => tests.tests.flatMap((t) => t.alert_rule_test ?? []));
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(mine.some((c) => c.exp_alerts.length > 0), `${alert} has a firing case`).toBe(true);
      expect(mine.some((c) => c.exp_alerts.length === 0), `${alert} has a not-firing case`).toBe(true);
    }
    // The list, by what each alert is about.
    // … and the real-user alerts: page load p75 regressed, errors per page view spiking, usage down on last week.
    for (const needed of [/Down/, /ClientsDropped/, /RejectedSamples/, /ProtocolErrors/, /EventLoopLag/, /Memory/, /PageLoadRegressed/, /ErrorRateSpiking/, /UsageDroppedWeekOverWeek/]) {
      expect(alerts.some((a) => needed.test(a)), String(needed)).toBe(true);
    }
  });

  checkKubernetesConfig();
});

/**
 * deploy/prometheus/prometheus-kubernetes.yml. Debian's Prometheus is built without Kubernetes service
 * discovery ("field kubernetes_sd_configs not found"): there, the rest of the file (relabelling, rule
 * file) is checked with the discovery block swapped for a static one, and the relabelling itself is
 * exercised by a real Prometheus in prometheus-queries.test.ts. An upstream promtool checks it as is.
 */
function checkKubernetesConfig(): void {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'promstream-promtool-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('promtool check config deploy/prometheus/prometheus-kubernetes.yml', async () => {
    const asIs = await run(promtoolBin, ['check', 'config', 'prometheus-kubernetes.yml'], { cwd: PROMETHEUS_DIR });
    if (asIs.code === 0) return;
    expect(asIs.stdout + asIs.stderr, describeRun(asIs)).toMatch(/field kubernetes_sd_configs not found/);
    console.warn('promtool here has no Kubernetes service discovery (Debian build): checking prometheus-kubernetes.yml with its kubernetes_sd_configs replaced by static_configs');
    const config = parse(await readFile(path.join(PROMETHEUS_DIR, 'prometheus-kubernetes.yml'), 'utf8')) as { scrape_configs: Record<string, unknown>[] };
    for (const scrape of config.scrape_configs) {
      expect(scrape.kubernetes_sd_configs).toBeDefined();
      delete scrape.kubernetes_sd_configs;
      scrape.static_configs = [{ targets: ['10.0.0.1:3000'] }];
    }
    await writeFile(path.join(dir, 'prometheus-kubernetes.yml'), stringify(config));
    await copyFile(path.join(PROMETHEUS_DIR, 'rules.yml'), path.join(dir, 'rules.yml'));
    const swapped = await run(promtoolBin, ['check', 'config', 'prometheus-kubernetes.yml'], { cwd: dir });
    expect(swapped.code, describeRun(swapped)).toBe(0);
  });
}
