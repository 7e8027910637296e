/**
 * `/demo/stats`, served on the public side only with --demo: the demo page cannot read the private
 * /metrics port, so this gives it `connected_clients` and the whitelisted series as JSON. Read-only,
 * and a request costs the same whatever the request rate: it returns a snapshot that a timer refreshes,
 * never renders anything itself.
 */
import type { Gauge } from 'prom-client';
import type { HttpRequest, HttpResponse } from '../transport/types.js';

export const DEMO_STATS_PATH = '/demo/stats';
/** How often the snapshot is refreshed. */
export const DEMO_STATS_REFRESH_MS = 250;

export interface DemoStats {
  /** `connected_clients` by session labels. */
  readonly connectedClients: readonly { readonly labels: Readonly<Record<string, string>>; readonly value: number }[];
  /** Every whitelisted series except histogram buckets, by its exposition name, e.g. `x_total{a="b"}`. */
  readonly series: Readonly<Record<string, number>>;
}

export interface DemoStatsSources {
  readonly connectedClients: Gauge<string>;
  /** The whitelisted series in the text exposition format. */
  renderSeries(): string;
}

function seriesOf(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    const name = line.slice(0, cut);
    if (/^[^{]*_bucket[{ ]/.test(name)) continue;
    out[name] = Number(line.slice(cut + 1));
  }
  return out;
}

export class DemoStatsRoute {
  private body = JSON.stringify({ connectedClients: [], series: {} } satisfies DemoStats);
  private readonly timer: ReturnType<typeof setInterval>;
  private refreshing = false;

  constructor(private readonly sources: DemoStatsSources) {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), DEMO_STATS_REFRESH_MS);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const series = seriesOf(this.sources.renderSeries());
      const { values } = await this.sources.connectedClients.get();
      const stats: DemoStats = { connectedClients: values.map((v) => ({ labels: { ...v.labels } as Record<string, string>, value: v.value })), series };
      this.body = JSON.stringify(stats);
    } finally {
      this.refreshing = false;
    }
  }

  readonly handle = (req: HttpRequest): HttpResponse | null => {
    if (req.path !== DEMO_STATS_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) return null;
    return { status: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }, body: this.body };
  };

  stop(): void {
    clearInterval(this.timer);
  }
}
