import { parseExposition } from '../../bench/report/metrics-probe.js';

export { parseExposition };

/** Reads /metrics and returns every sample keyed by its exact `name{labels}` text, e.g. `x_total{a="b"}`. */
export async function scrape(metricsPort: number): Promise<Map<string, number>> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseExposition(await res.text());
}

/** One sample's value; throws naming the series when it is not exposed at all. */
export function valueOf(samples: ReadonlyMap<string, number>, series: string): number {
  const v = samples.get(series);
  if (v === undefined) throw new Error(`series ${series} is not in /metrics`);
  return v;
}
