/**
 * /metrics cost: the time of a whole scrape (request to last byte, as Prometheus sees it) at 1 k, 10 k
 * and 100 k whitelisted series, all holding values; then the stall it causes: a paced ingest (40
 * sessions, a frame each every 80 ms) runs first alone and then under back-to-back scrapes, while the
 * server's event-loop delay and the frames' acknowledgement round trips are recorded.
 */
import { BenchContext, pause } from './context.js';
import { scrape, timeScrape } from '../report/metrics-probe.js';
import type { RawIngestResult } from '../generators/raw-ingest.js';
import { fmtInt, fmtMs, fmtSpread } from '../report/report.js';
import { compareTotals, ExpectedTotals } from '../generators/sample-plan.js';
import { fillEverySeries } from '../generators/series-fill.js';
import { percentile, summarize, type Summary } from '../report/stats.js';
import { scrapeWhitelist, writeWhitelist } from '../generators/whitelists.js';
import { SATURATION_LIMITS } from './context.js';

const PACED_CONNECTIONS = 40;
const PACED_EVERY_MS = 80;

export interface ScrapeFigures {
  readonly series: number;
  readonly bytes: number;
  readonly scrapeMs: Summary;
  /** Request to the response head, which leaves with the rendered body: the server's part. */
  readonly firstByteMs: Summary;
  /** Event-loop delay of the server while scraping back to back (local servers only). */
  readonly eldP99Ms: number;
  readonly eldMaxMs: number;
  readonly eldQuietP99Ms: number;
  /** Acknowledgement round trips of the paced ingest, without and with scrapes. */
  readonly ackQuietP99Ms: number;
  readonly ackP99Ms: number;
  readonly ackMaxMs: number;
}

const sizes = (ctx: BenchContext): number[] => (ctx.isTarget ? [0] : ctx.options.quick ? [1000] : [1000, 10_000, 100_000]);
export const scrapeSteps = (ctx: BenchContext): number => sizes(ctx).length * 2;

export async function runScrape(ctx: BenchContext): Promise<ScrapeFigures[]> {
  const { quick } = ctx.options;
  const scrapes = quick ? 3 : 15;
  const quietMs = quick ? 300 : 2000;
  const busyMs = quick ? 500 : 3000;
  const figures: ScrapeFigures[] = [];
  const gen = ctx.generator(0);

  for (const size of sizes(ctx)) {
    const name = size === 0 ? 'the target' : `${fmtInt(size)} series`;
    ctx.progress.step(`scrape: fill and time /metrics, ${name}`);
    const configPath = size === 0 ? undefined : writeWhitelist(scrapeWhitelist(size), `scrape-${size}`);
    const server = await ctx.server({ mode: 'promstream', transport: 'uws', serverOptions: SATURATION_LIMITS, ...(configPath === undefined ? {} : { configPath }) });
    try {
      const before = ctx.isTarget ? (await scrape(server.metricsUrl!)).samples : new Map<string, number>();
      const fill = ctx.isTarget ? null : await fillEverySeries({ host: server.host, port: server.port, path: server.path, labels: ctx.labels, localAddress: ctx.sourceAddresses(1)[0]! });
      const times: number[] = [];
      const firstBytes: number[] = [];
      let bytes = 0;
      await timeScrape(server.metricsUrl!); // the first render warms the code up
      for (let i = 0; i < scrapes; i++) {
        const r = await timeScrape(server.metricsUrl!);
        times.push(r.elapsedMs);
        firstBytes.push(r.firstByteMs);
        bytes = r.bytes;
        ctx.progress.update((i + 1) / scrapes, `${fmtMs(r.elapsedMs)} ms`);
        await pause(50);
      }
      ctx.progress.result(`median ${fmtMs(percentile(times, 50))} ms (first byte ${fmtMs(percentile(firstBytes, 50))} ms), ${(bytes / 1024).toFixed(0)} KiB`);

      ctx.progress.step(`scrape: ingest stall while scraping, ${name}`, quietMs + busyMs + 500);
      await gen.request('ingest-open', { host: server.host, port: server.port, path: server.path, connections: PACED_CONNECTIONS, localAddresses: ctx.sourceAddresses(2), labels: ctx.labels });
      await server.eventLoopDelay('start');
      await gen.request('ingest-start', { maxFramesPerConnection: 1e9, everyMs: PACED_EVERY_MS });
      await pause(quietMs);
      const quiet = await gen.request<RawIngestResult>('ingest-stop', { awaitAcks: true });
      const eldQuiet = await server.eventLoopDelay('read');
      await gen.request('ingest-start', { maxFramesPerConnection: 1e9, everyMs: PACED_EVERY_MS });
      const busyUntil = performance.now() + busyMs;
      while (performance.now() < busyUntil) {
        await timeScrape(server.metricsUrl!);
        await pause(20);
      }
      const busy = await gen.request<RawIngestResult>('ingest-stop', { awaitAcks: true });
      const eld = await server.eventLoopDelay('read');
      if (busy.closes.length > 0) throw new Error(`the server closed paced connections: ${[...new Set(busy.closes)].join(', ')}`);

      // Counters and histograms must hold exactly the fill plus the paced frames (gauges mix both).
      const expected = ExpectedTotals.fromJSON(busy.expected);
      if (fill !== null) expected.merge(fill.expected);
      const problems = compareTotals(expected.exposition(null), (await scrape(server.metricsUrl!)).samples, before);
      ctx.report.check('scrape', `${name}: totals after fill and paced ingest`, problems, `${fmtInt(expected.exposition(null).size)} series lines`);
      await gen.request('ingest-close');
      fill?.close();

      const f: ScrapeFigures = {
        series: size, bytes, scrapeMs: summarize(times), firstByteMs: summarize(firstBytes),
        eldP99Ms: eld?.p99Ms ?? NaN, eldMaxMs: eld?.maxMs ?? NaN, eldQuietP99Ms: eldQuiet?.p99Ms ?? NaN,
        ackQuietP99Ms: percentile(quiet.ackRttMs, 99), ackP99Ms: percentile(busy.ackRttMs, 99), ackMaxMs: Math.max(...busy.ackRttMs),
      };
      figures.push(f);
      ctx.progress.result(`ack p99 ${fmtMs(f.ackQuietP99Ms)} → ${fmtMs(f.ackP99Ms)} ms (max ${fmtMs(f.ackMaxMs)}), event-loop delay p99 ${fmtMs(f.eldP99Ms)} ms (max ${fmtMs(f.eldMaxMs)})`);
    } finally {
      await server.stop();
    }
  }

  ctx.report.tables.push({
    title: 'Scrape: /metrics cost and the ingest stall it causes',
    columns: ['whitelisted series', 'body', '/metrics time, ms', 'of it to first byte (render), ms', 'event-loop delay p99 / max, ms (quiet p99)', 'ack round trip p99 / max, ms (quiet p99)'],
    rows: figures.map((f) => [
      f.series === 0 ? 'target as configured' : fmtInt(f.series),
      `${(f.bytes / 1024).toFixed(0)} KiB`,
      fmtSpread(f.scrapeMs, fmtMs),
      fmtMs(f.firstByteMs.median),
      `${fmtMs(f.eldP99Ms)} / ${fmtMs(f.eldMaxMs)} (${fmtMs(f.eldQuietP99Ms)})`,
      `${fmtMs(f.ackP99Ms)} / ${fmtMs(f.ackMaxMs)} (${fmtMs(f.ackQuietP99Ms)})`,
    ]),
    notes: [
      `Series are sample lines as --max-series counts them: 70 % counters, 10 % gauges, 20 % histogram lines; every one holds a value. /metrics time is request to last byte (a lean client that counts the bytes), median of ${scrapes} scrapes after a warm-up (min–max); the body includes the aggregator's own metrics from prom-client.`,
      `Stall: ${PACED_CONNECTIONS} sessions send a frame each every ${PACED_EVERY_MS} ms (${Math.round((PACED_CONNECTIONS * 1000) / PACED_EVERY_MS)} frames/s) for ${busyMs / 1000} s while /metrics is scraped back to back; "quiet" is the same ingest without scrapes. Event-loop delay is sampled at 1 ms resolution, so an idle loop reads about 1 ms.`,
    ],
  });
  ctx.report.data.scrape = figures;
  return figures;
}
