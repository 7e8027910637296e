/**
 * The Grafana dashboard's structure: no Grafana can be installed here (it is not in Debian and npm has
 * no Grafana server), so what Grafana would reject or render wrongly is checked by hand, and every
 * query is run through a real Prometheus in prometheus-queries.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { allPanels, dashboardQueries, GRAFANA_BUILTINS, loadDashboard, substitute, variablesIn } from './dashboard-queries.js';

const dashboard = loadDashboard();
const panels = allPanels(dashboard);
const queries = dashboardQueries(dashboard);
const exprs = queries.map((q) => q.target.expr);

describe('deploy/grafana/dashboards/promstream.json', () => {
  it('is a dashboard Grafana can provision: uid, title, schema version, unique panel ids', () => {
    expect(dashboard.uid).toBe('promstream');
    expect(dashboard.title).toBe('promstream');
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
    // Replica selection works with "All" (a regex) and with several replicas picked.
    expect(dashboard.templating.list.find((v) => v.name === 'instance')).toMatchObject({ includeAll: true, multi: true, allValue: '.*' });
    for (const e of exprs) expect(substitute(e, { job: 'promstream', instance: '.*', __rate_interval: '1m' })).not.toMatch(/\$/);
  });

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

  it('selects the job and the replicas in every query, so it works beside other jobs', () => {
    for (const { panel, target } of queries) {
      const selectors = [...target.expr.matchAll(/[a-z_:]+\{([^}]*)\}/g)];
      expect(selectors.length, panel.title).toBeGreaterThan(0);
      for (const s of selectors) expect(s[1], `${panel.title}: ${target.expr}`).toContain('job="$job", instance=~"$instance"');
    }
  });
});
