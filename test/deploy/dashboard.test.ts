/**
 * The Grafana dashboards' structure (the aggregator's, and Real users): no Grafana can be installed here
 * (it is not in Debian and npm has no Grafana server), so what Grafana would reject or render wrongly is
 * checked by hand, and every query is run through a real Prometheus in prometheus-queries.test.ts.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allPanels, dashboardQueries, DASHBOARD_FILE, DASHBOARD_FILES, DASHBOARDS_DIR, GRAFANA_BUILTINS, loadDashboard, REAL_USERS_DASHBOARD_FILE, substitute, variablesIn, type Dashboard } from './dashboard-queries.js';

const IDENTITY: Readonly<Record<string, readonly [uid: string, title: string]>> = {
  [DASHBOARD_FILE]: ['promstream', 'promstream'],
  [REAL_USERS_DASHBOARD_FILE]: ['promstream-real-users', 'Real users'],
};

const parts = (dashboard: Dashboard) => {
  const queries = dashboardQueries(dashboard);
  return { panels: allPanels(dashboard), queries, exprs: queries.map((q) => q.target.expr) };
};

it('provisions both dashboards from deploy/grafana/dashboards/, with distinct uids', () => {
  const files = readdirSync(DASHBOARDS_DIR).filter((f) => f.endsWith('.json')).map((f) => path.join(DASHBOARDS_DIR, f)).sort();
  expect(files).toEqual([...DASHBOARD_FILES].sort());
  expect(new Set(DASHBOARD_FILES.map((f) => loadDashboard(f).uid)).size).toBe(DASHBOARD_FILES.length);
});

describe.each(DASHBOARD_FILES.map((f) => [path.relative(path.join(DASHBOARDS_DIR, '../../..'), f), f] as const))('%s', (_name, file) => {
  const dashboard = loadDashboard(file);
  const { panels, queries, exprs } = parts(dashboard);
  const identity = IDENTITY[file]!;

  it('is a dashboard Grafana can provision: uid, title, schema version, unique panel ids', () => {
    expect([dashboard.uid, dashboard.title]).toEqual(identity);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) expect(['row', 'stat', 'timeseries', 'heatmap', 'gauge', 'bargauge', 'table', 'text'], p.title).toContain(p.type);
  });

  it('lays its panels out on the 24-column grid without overlaps', () => {
    const boxes = dashboard.panels.map((p) => ({ title: p.title, ...p.gridPos }));
    for (const b of boxes) {
      expect(b.x, b.title).toBeGreaterThanOrEqual(0);
      expect(b.x + b.w, b.title).toBeLessThanOrEqual(24);
      expect(b.w * b.h, b.title).toBeGreaterThan(0);
    }
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) {
        const overlap = a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
        expect(overlap, `${a.title} overlaps ${b.title}`).toBe(false);
      }
    }
  });

  it('takes its Prometheus from a datasource variable, so it imports into any Grafana', () => {
    const variables = dashboard.templating.list;
    expect(variables.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const p of panels.filter((p) => p.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets ?? []) expect(t.datasource, `${p.title} ${t.refId}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });

  it('defines every variable its queries use, and each panel has targets with distinct refIds', () => {
    const defined = new Set([...dashboard.templating.list.map((v) => v.name), ...GRAFANA_BUILTINS]);
    for (const { panel, target } of queries) {
      expect(target.expr.trim(), `${panel.title} ${target.refId}`).not.toBe('');
      for (const name of variablesIn(target.expr)) expect(defined.has(name), `${panel.title}: $${name}`).toBe(true);
    }
    for (const p of panels.filter((p) => p.type !== 'row')) {
      const refIds = (p.targets ?? []).map((t) => t.refId);
      expect(refIds.length, p.title).toBeGreaterThan(0);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
    // Replica (and route) selection works with "All" (a regex) and with several picked.
    for (const name of ['instance', ...(dashboard.templating.list.some((v) => v.name === 'route') ? ['route'] : [])]) {
      expect(dashboard.templating.list.find((v) => v.name === name), name).toMatchObject({ includeAll: true, multi: true, allValue: '.*' });
    }
    for (const e of exprs) expect(substitute(e, { job: 'promstream', instance: '.*', route: '.*', __rate_interval: '1m' })).not.toMatch(/\$/);
  });

  it('selects the job and the replicas in every query, so it works beside other jobs', () => {
    for (const { panel, target } of queries) {
      const selectors = [...target.expr.matchAll(/[a-z_:]+\{([^}]*)\}/g)];
      expect(selectors.length, panel.title).toBeGreaterThan(0);
      for (const s of selectors) expect(s[1], `${panel.title}: ${target.expr}`).toContain('job="$job", instance=~"$instance"');
    }
  });
});

describe('deploy/grafana/dashboards/promstream.json', () => {
  const dashboard = loadDashboard(DASHBOARD_FILE);
  const { panels, exprs } = parts(dashboard);

  it('shows what the issue asks for', () => {
    const uses = (pattern: RegExp): boolean => exprs.some((e) => pattern.test(e));
    expect(uses(/^sum\(connected_clients\{/)).toBe(true); // total
    expect(uses(/sum without \(instance, job[^)]*\) \(connected_clients\{/)).toBe(true); // by session labels, whatever they are
    for (const metric of ['promstream_sessions_opened_total', 'promstream_sessions_resumed_total', 'promstream_frames_received_total', 'promstream_samples_applied_total', 'process_cpu_seconds_total']) {
      expect(uses(new RegExp(`rate\\(${metric}\\{`)), metric).toBe(true);
    }
    expect(uses(/sum by \(reason\) \(rate\(promstream_rejected_samples_total\{/)).toBe(true);
    expect(uses(/sum by \(reason\) \(rate\(promstream_protocol_errors_total\{/)).toBe(true);
    expect(uses(/^process_resident_memory_bytes\{/)).toBe(true);
    expect(uses(/^nodejs_eventloop_lag_p99_seconds\{/)).toBe(true);
    // One example per metric type of the demo whitelist.
    expect(uses(/rate\(demo_clicks_total\{/)).toBe(true);
    expect(uses(/histogram_quantile\(0\.95, sum by \(le[^)]*\) \(rate\(demo_task_duration_seconds_bucket\{/)).toBe(true);
    expect(uses(/demo_tabs_presenting\{/)).toBe(true);
    const heatmap = panels.find((p) => p.type === 'heatmap');
    expect(heatmap?.targets?.[0]).toMatchObject({ format: 'heatmap' });
    expect(heatmap?.targets?.[0]?.expr).toMatch(/demo_task_duration_seconds_bucket/);
    // The histogram's own buckets, not buckets Grafana recalculates from the values.
    expect(heatmap?.options).toMatchObject({ calculate: false });
  });

});

describe('deploy/grafana/dashboards/real-users.json', () => {
  const dashboard = loadDashboard(REAL_USERS_DASHBOARD_FILE);
  const { panels, exprs } = parts(dashboard);
  const uses = (pattern: RegExp): boolean => exprs.some((e) => pattern.test(e));
  const panel = (title: string) => {
    const p = panels.find((x) => x.title === title);
    if (p === undefined) throw new Error(`no panel "${title}"`);
    return p;
  };
  const SEL = 'job="$job", instance=~"$instance"';
  const RSEL = `${SEL}, route=~"$route"`;
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  it("the original project's front-end response time graph: navigation-timing percentiles over time, for the routes picked", () => {
    for (const title of ['Front-end response time (median)', 'Front-end response time (p95)']) {
      const p = panel(title);
      const q = title.includes('median') ? '0.5' : '0.95';
      expect(p.type).toBe('timeseries');
      expect(p.targets!.map((t) => t.legendFormat)).toEqual(['domainLookupEnd', 'connectEnd', 'responseStart', 'responseEnd', 'domInteractive', 'domContentLoadedEventEnd', 'loadEventEnd']);
      for (const t of p.targets!) expect(t.expr).toBe(`histogram_quantile(${q}, sum by (le) (rate(performance_timing_${t.legendFormat!}_bucket{${RSEL}}[$__rate_interval])))`);
    }
    expect(uses(new RegExp(esc(`histogram_quantile(0.75, sum by (le, route) (rate(performance_timing_loadEventEnd_bucket{${RSEL}}`)))).toBe(true);
  });

  it('Core Web Vitals at p75 by route, with the good and poor thresholds drawn', () => {
    const vitals = { LCP: ['web_vitals_lcp_seconds', 2.5, 4], INP: ['web_vitals_inp_seconds', 0.2, 0.5], CLS: ['web_vitals_cls', 0.1, 0.25], FCP: ['web_vitals_fcp_seconds', 1.8, 3], TTFB: ['web_vitals_ttfb_seconds', 0.8, 1.8] } as const;
    for (const [name, [metric, good, poor]] of Object.entries(vitals)) {
      const p = panel(`${name} p75 by route`);
      expect(p.targets!.map((t) => [t.expr, t.legendFormat])).toEqual([[`histogram_quantile(0.75, sum by (le, route) (rate(${metric}_bucket{${RSEL}}[$__rate_interval])))`, '{{route}}']]);
      expect(p.fieldConfig!.defaults!.thresholds!.steps.map((s) => s.value)).toEqual([null, good, poor]);
      expect(p.fieldConfig!.defaults!.custom!.thresholdsStyle!.mode).toMatch(/line/);
      // the share of good, needs improvement and poor page views, from the buckets at those bounds
      const shares = panel(`${name}: good / needs improvement / poor`);
      const count = `sum(rate(${metric}_count{${RSEL}}[$__rate_interval]))`;
      const le = (b: number): string => `sum(rate(${metric}_bucket{${RSEL}, le="${b}"}[$__rate_interval]))`;
      expect(shares.targets!.map((t) => [t.legendFormat, t.expr])).toEqual([
        ['good', `${le(good)} / ${count}`],
        ['needs improvement', `(${le(poor)} - ${le(good)}) / ${count}`],
        ['poor', `1 - ${le(poor)} / ${count}`],
      ]);
      expect(shares.fieldConfig!.defaults!.custom!.stacking!.mode).toBe('normal');
      // and per route
      expect(panel('Good page views by route').targets!.map((t) => t.expr)).toContain(`sum by (route) (rate(${metric}_bucket{${RSEL}, le="${good}"}[$__rate_interval])) / sum by (route) (rate(${metric}_count{${RSEL}}[$__rate_interval]))`);
    }
  });

  it('API latency p50 and p95 by host; errors per page view by kind; connected clients and page views against a week ago', () => {
    for (const q of ['0.5', '0.95']) {
      expect(panel(`API latency p${q === '0.5' ? '50' : '95'} by host`).targets!.map((t) => t.expr)).toEqual([`histogram_quantile(${q}, sum by (le, host) (rate(http_client_request_duration_seconds_bucket{${SEL}}[$__rate_interval])))`]);
    }
    expect(panel('Errors per page view by kind').targets!.map((t) => t.expr)).toEqual([
      `sum by (kind) (rate(browser_errors_total{${RSEL}}[$__rate_interval])) / ignoring (kind) group_left sum(rate(page_views_total{${RSEL}}[$__rate_interval]))`,
    ]);
    expect(panel('Connected clients, now and a week ago').targets!.map((t) => t.expr)).toEqual([`sum(connected_clients{${SEL}})`, `sum(connected_clients{${SEL}} offset 1w)`]);
    expect(panel('Page views per second, now and a week ago').targets!.map((t) => t.expr)).toEqual([
      `sum(rate(page_views_total{${RSEL}}[$__rate_interval]))`, `sum(rate(page_views_total{${RSEL}}[$__rate_interval] offset 1w))`,
    ]);
    expect(dashboard.templating.list.find((v) => v.name === 'route')).toMatchObject({ query: `label_values(page_views_total{${SEL}}, route)` });
  });
});
