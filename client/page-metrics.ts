/**
 * Page metrics, opt-in with `pageMetrics: true` in init (bundlers: `promstream/collectors/page-metrics`):
 * navigation timing and Core Web Vitals, observed into histograms that examples/page-metrics-whitelist.json
 * allows (their buckets live there), each with a `route` label when the whitelist gives the metric one.
 *
 * Navigation timing keeps the original project's names, `performance_timing_<field>` in seconds since
 * the start of navigation, computed from Navigation Timing Level 2 (the Level 1 `performance.timing`
 * is deprecated). Level 2 has no `domLoading`, so that one is not sent; `loadEventEnd`, which the
 * original could not measure from inside the load event, is. The start of navigation is the entry's
 * earliest time, `min(startTime, fetchStart)`: Firefox puts `fetchStart` (and on a reused connection
 * `domainLookup*`, `connect*`) a few milliseconds before the time origin on a tab's first navigation
 * (docs/BFCACHE-FINDINGS.md), and measuring from there keeps those fields and the phases' differences.
 * Every field a navigation always has is reported, 0 included (WebKit gives exact zeros); only
 * `unloadEvent*`, which a navigation without a previous same-origin document does not have, is skipped
 * at 0. `navigationStart` is 0 by definition: its `_count` is the number of page loads measured. It
 * belongs to the page load's route.
 *
 * Web Vitals come from the `web-vitals` package, the field's reference implementation, with its soft
 * navigation reports on (Chromium with the soft navigation API). Each is observed once per metric id
 * (CLS and INP are reported again when a tab is hidden a second time, and a histogram must not count a
 * page twice), under the route of the page view it belongs to (PageViews.of): the page load's, a
 * back/forward-cache restore's (web-vitals measures a restored page afresh), or a soft navigation's.
 */
import { onCLS, onFCP, onINP, onLCP, onTTFB, type Metric } from 'web-vitals';
import type { CollectorClient } from './collectors/hooks.js';
import type { PageViews } from './collectors/routes.js';

/** Level 2 fields under their Level 1 names, in the order of a page load. */
export const NAVIGATION_TIMING_FIELDS = [
  'navigationStart', 'unloadEventStart', 'unloadEventEnd', 'fetchStart', 'domainLookupStart', 'domainLookupEnd',
  'connectStart', 'connectEnd', 'requestStart', 'responseStart', 'responseEnd', 'domInteractive',
  'domContentLoadedEventStart', 'domContentLoadedEventEnd', 'domComplete', 'loadEventStart', 'loadEventEnd',
] as const;
export type NavigationTimingField = (typeof NAVIGATION_TIMING_FIELDS)[number];

/** Fields a navigation may lack: 0 there means "did not happen", not "at the start". */
export const OPTIONAL_TIMING_FIELDS: readonly NavigationTimingField[] = ['unloadEventStart', 'unloadEventEnd'];

/** web-vitals metric name → our histogram and the divisor to its unit (web-vitals reports milliseconds). */
export const WEB_VITALS = {
  LCP: { metric: 'web_vitals_lcp_seconds', divisor: 1000 },
  INP: { metric: 'web_vitals_inp_seconds', divisor: 1000 },
  FCP: { metric: 'web_vitals_fcp_seconds', divisor: 1000 },
  TTFB: { metric: 'web_vitals_ttfb_seconds', divisor: 1000 },
  CLS: { metric: 'web_vitals_cls', divisor: 1 },
} as const;

export type Observe = (metric: string, value: number) => void;

/**
 * Seconds since the start of navigation for each field to report, from a navigation entry's raw
 * milliseconds (relative to the time origin). Pure: unit-tested with the engines' measured entries.
 */
export function navigationTimingSeconds(nav: Readonly<Record<NavigationTimingField | 'startTime', number>>): Partial<Record<NavigationTimingField, number>> {
  const origin = Math.min(nav.startTime, nav.fetchStart);
  const out: Partial<Record<NavigationTimingField, number>> = {};
  for (const field of NAVIGATION_TIMING_FIELDS) {
    const ms = field === 'navigationStart' ? origin : nav[field];
    if (typeof ms !== 'number' || !Number.isFinite(ms) || (ms === 0 && OPTIONAL_TIMING_FIELDS.includes(field))) continue;
    out[field] = (ms - origin) / 1000;
  }
  return out;
}

/** Navigation timing of this page load, once the load event has finished. */
export function observeNavigationTiming(observe: Observe): void {
  const measure = (): void => {
    const nav = performance.getEntriesByType?.('navigation')[0] as PerformanceNavigationTiming | undefined;
    if (nav === undefined) return;
    const seconds = navigationTimingSeconds(nav as unknown as Record<NavigationTimingField | 'startTime', number>);
    for (const field of NAVIGATION_TIMING_FIELDS) {
      const s = seconds[field];
      if (s !== undefined) observe(`performance_timing_${field}`, s);
    }
  };
  // loadEventEnd is set once the load event's listeners have returned: measure in the task after.
  const afterLoad = (): void => void setTimeout(measure, 0);
  if (document.readyState === 'complete') afterLoad();
  else addEventListener('load', afterLoad, { once: true });
}

/** Core Web Vitals, each once per metric id; `observe` gets the metric, so that it can be attributed. */
export function observeWebVitals(observe: (name: string, value: number, metric: Metric) => void): void {
  const seen = new Set<string>();
  const report = (m: Metric): void => {
    const target = WEB_VITALS[m.name];
    if (seen.has(m.id)) return;
    seen.add(m.id);
    observe(target.metric, m.value / target.divisor, m);
  };
  const opts = { reportSoftNavs: true };
  onLCP(report, opts);
  onINP(report, opts);
  onFCP(report, opts);
  onTTFB(report, opts);
  onCLS(report, opts);
}

export interface PageMetricsOptions {
  /** The routes collector's page views: attributes each metric to its view's route. */
  readonly views?: PageViews | undefined;
}

export function startPageMetrics(client: CollectorClient, { views }: PageMetricsOptions = {}): void {
  const record = (metric: string, value: number, route: string | undefined): void =>
    client.record('histogram', metric, route === undefined ? {} : { route }, value, true);
  const loadRoute = views?.of('navigate').route;
  observeNavigationTiming((metric, value) => record(metric, value, loadRoute));
  observeWebVitals((metric, value, m) => record(metric, value, views?.of(m.navigationType, m.navigationURL).route));
}
