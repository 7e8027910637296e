/**
 * Page metrics, opt-in with `pageMetrics: true` in init: navigation timing and Core Web Vitals, observed
 * into histograms that examples/page-metrics-whitelist.json allows (their buckets live there).
 *
 * Navigation timing keeps the original project's names, `performance_timing_<field>` in seconds since
 * the start of navigation, computed from Navigation Timing Level 2 (the Level 1 `performance.timing`
 * is deprecated). Level 2 has no `domLoading`, so that one is not sent; `loadEventEnd`, which the
 * original could not measure from inside the load event, is. A field at 0 did not happen (no unload
 * of a previous page, say) and is skipped. `navigationStart` is 0 by definition: its `_count` is the
 * number of page views measured.
 *
 * Web Vitals come from the `web-vitals` package, the field's reference implementation. Each metric is
 * observed once per page view (per web-vitals metric id): CLS and INP are reported again when a tab is
 * hidden a second time, and a histogram must not count a page twice.
 */
import { onCLS, onFCP, onINP, onLCP, onTTFB, type Metric } from 'web-vitals';

/** Level 2 fields under their Level 1 names, in the order of a page load. */
export const NAVIGATION_TIMING_FIELDS = [
  'navigationStart', 'unloadEventStart', 'unloadEventEnd', 'fetchStart', 'domainLookupStart', 'domainLookupEnd',
  'connectStart', 'connectEnd', 'requestStart', 'responseStart', 'responseEnd', 'domInteractive',
  'domContentLoadedEventStart', 'domContentLoadedEventEnd', 'domComplete', 'loadEventStart', 'loadEventEnd',
] as const;

/** web-vitals metric name → our histogram and the factor to its unit (web-vitals reports milliseconds). */
export const WEB_VITALS = {
  LCP: { metric: 'web_vitals_lcp_seconds', factor: 1e-3 },
  INP: { metric: 'web_vitals_inp_seconds', factor: 1e-3 },
  FCP: { metric: 'web_vitals_fcp_seconds', factor: 1e-3 },
  TTFB: { metric: 'web_vitals_ttfb_seconds', factor: 1e-3 },
  CLS: { metric: 'web_vitals_cls', factor: 1 },
} as const;

export type Observe = (metric: string, value: number) => void;

/** Navigation timing of this page load, once the load event has finished. */
export function observeNavigationTiming(observe: Observe): void {
  const measure = (): void => {
    const nav = performance.getEntriesByType?.('navigation')[0] as PerformanceNavigationTiming | undefined;
    if (nav === undefined) return;
    for (const field of NAVIGATION_TIMING_FIELDS) {
      const ms = field === 'navigationStart' ? nav.startTime : nav[field];
      if (field === 'navigationStart' || ms > 0) observe(`performance_timing_${field}`, ms / 1000);
    }
  };
  // loadEventEnd is set once the load event's listeners have returned: measure in the task after.
  const afterLoad = (): void => void setTimeout(measure, 0);
  if (document.readyState === 'complete') afterLoad();
  else addEventListener('load', afterLoad, { once: true });
}

/** Core Web Vitals, each once per page view. */
export function observeWebVitals(observe: Observe): void {
  const seen = new Set<string>();
  const report = (m: Metric): void => {
    const target = WEB_VITALS[m.name];
    if (seen.has(m.id)) return;
    seen.add(m.id);
    observe(target.metric, m.value * target.factor);
  };
  onLCP(report);
  onINP(report);
  onFCP(report);
  onTTFB(report);
  onCLS(report);
}

export function startPageMetrics(observe: Observe): void {
  observeNavigationTiming(observe);
  observeWebVitals(observe);
}
