/**
 * The PromQL of the Grafana dashboard and of the alert rules, as Prometheus receives it: dashboard
 * variables substituted the way Grafana does before it sends a query.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/spawn-cli.js';

export const DASHBOARDS_DIR = path.join(REPO_ROOT, 'deploy/grafana/dashboards');
/** The aggregator's dashboard (the compose setup's home page). */
export const DASHBOARD_FILE = path.join(DASHBOARDS_DIR, 'promstream.json');
/** What real users experience, from the browser collectors. */
export const REAL_USERS_DASHBOARD_FILE = path.join(DASHBOARDS_DIR, 'real-users.json');
/** Every dashboard Grafana provisions from deploy/grafana/dashboards/. */
export const DASHBOARD_FILES: readonly string[] = [DASHBOARD_FILE, REAL_USERS_DASHBOARD_FILE];
export const RULES_FILE = path.join(REPO_ROOT, 'deploy/prometheus/rules.yml');

export interface Target {
  readonly refId: string;
  readonly expr: string;
  readonly legendFormat?: string;
  readonly format?: string;
  readonly datasource?: { type?: string; uid?: string };
}

export interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { h: number; w: number; x: number; y: number };
  readonly datasource?: { type?: string; uid?: string };
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
  readonly options?: Record<string, unknown>;
  readonly fieldConfig?: {
    defaults?: {
      unit?: string;
      thresholds?: { steps: { color: string; value: number | null }[] };
      custom?: { thresholdsStyle?: { mode: string }; stacking?: { mode: string } };
    };
  };
}

export interface TemplateVariable {
  readonly name: string;
  readonly type: string;
  readonly query?: string | { query: string };
  readonly includeAll?: boolean;
  readonly allValue?: string;
  readonly multi?: boolean;
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { list: readonly TemplateVariable[] };
}

export function loadDashboard(file = DASHBOARD_FILE): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** Every panel, rows' collapsed children included. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

export interface PanelQuery {
  readonly panel: Panel;
  readonly target: Target;
}

export function dashboardQueries(dashboard: Dashboard): PanelQuery[] {
  return allPanels(dashboard).flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target })));
}

/** Grafana's built-in variables that may appear in a query. */
export const GRAFANA_BUILTINS: readonly string[] = ['__rate_interval', '__interval', '__range', '__interval_ms', '__range_s'];

const VARIABLE = /\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]/g;

/** The variable names a query uses ($x, ${x}, ${x:fmt}, [[x]]). */
export function variablesIn(expr: string): string[] {
  return [...expr.matchAll(VARIABLE)].map((m) => (m[1] ?? m[2] ?? m[3])!);
}

/** Substitutes every variable; throws on one without a value, so no query reaches Prometheus half-done. */
export function substitute(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(VARIABLE, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    const value = values[name];
    if (value === undefined) throw new Error(`no value for variable ${whole} in ${expr}`);
    return value;
  });
}

/**
 * One value of a multi-value variable inside `=~"…"`, as Grafana's Prometheus datasource writes it:
 * regex metacharacters escaped, and the backslash doubled for the PromQL string.
 */
export const grafanaRegexValue = (value: string): string => value.replace(/[\\^$*+?.()|[\]{}]/g, '\\\\$&');

export interface RuleExpression {
  readonly name: string;
  readonly expr: string;
  readonly for?: string;
}

export function ruleExpressions(): RuleExpression[] {
  const file = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string; for?: string }[] }[] };
  return file.groups.flatMap((g) => g.rules.map((r) => ({ name: (r.alert ?? r.record)!, expr: r.expr, ...(r.for === undefined ? {} : { for: r.for }) })));
}
