/**
 * The baseline: the same 7-sample batches sent the old way, one HTTP POST of JSON per batch to an
 * express endpoint that checks each sample against the whitelist and applies it to prom-client,
 * measured in the same run on the same core, so promstream's gain is a ratio within one run.
 */
import { ServerCatalog } from '../../server/core/catalog.js';
import { loadWhitelist } from '../../server/index.js';
import { BenchContext, pause } from './context.js';
import { scrape } from '../report/metrics-probe.js';
import type { HttpLoadResult } from '../generators/raw-http-load.js';
import { fmtPct, fmtRate, fmtRatio, fmtSpread } from '../report/report.js';
import { compareTotals, ExpectedTotals, SAMPLES_PER_BATCH } from '../generators/sample-plan.js';
import { summarize, type Summary } from '../report/stats.js';
import type { IngestFigures } from './ingest.js';

/** Keep-alive connections POSTing in a closed loop (a browser's flush loop each). */
const HTTP_CONNECTIONS = 32;

export interface BaselineFigures {
  readonly batchesPerS: Summary;
  /** Batches per CPU-second of the server (see ingest's per-core rate). */
  readonly batchesPerCoreS: Summary;
  readonly serverCpu: Summary;
  readonly generatorCpu: Summary;
}

export const baselineSteps = (ctx: BenchContext): number => (ctx.isTarget ? 0 : ctx.options.runs);

export async function runBaseline(ctx: BenchContext, ingest: Map<string, IngestFigures> | null): Promise<BaselineFigures | null> {
  if (ctx.isTarget) {
    ctx.progress.note('baseline: skipped against a target (it needs the express server on this machine)');
    return null;
  }
  const { runs, quick } = ctx.options;
  const warmupMs = quick ? 150 : 700;
  const windowMs = quick ? 300 : 2500;
  const metrics = new ServerCatalog(await loadWhitelist([ctx.ingestConfig])).wire.metrics;
  const list: { batchesPerS: number; batchesPerCoreS: number; serverCpu: number; generatorCpu: number }[] = [];
  const gen = ctx.generator(0);

  for (let run = 0; run < runs; run++) {
    ctx.progress.step(`baseline: express + JSON POST, run ${run + 1}/${runs}`, warmupMs + windowMs + 500);
    const server = await ctx.server({ mode: 'express', transport: 'uws' });
    try {
      await gen.request('http-open', { host: server.host, port: server.port, connections: HTTP_CONNECTIONS, localAddresses: ctx.sourceAddresses(2), metrics });
      await gen.request('http-start');
      await pause(warmupMs);
      const a = await server.counts();
      const ra = await server.resources();
      await pause(windowMs);
      const b = await server.counts();
      const rb = await server.resources();
      const sent = await gen.request<HttpLoadResult>('http-stop');
      await gen.request('http-close');
      const batchesPerS = (b.frames - a.frames) / ((b.atMs - a.atMs) / 1000);
      const serverCpu = (rb.cpuSeconds - ra.cpuSeconds) / ((rb.atMs - ra.atMs) / 1000);
      const r = { batchesPerS, batchesPerCoreS: batchesPerS / serverCpu, serverCpu, generatorCpu: sent.generatorCpuSeconds / (sent.elapsedMs / 1000) };
      list.push(r);
      // A POST counts as sent once answered; gauges are set (not summed over sessions) in the old design.
      const expected = ExpectedTotals.fromJSON(sent.expected).exposition(1);
      const problems = compareTotals(expected, (await scrape(server.metricsUrl!)).samples);
      if (sent.answered !== sent.batchesSent) problems.push(`${sent.batchesSent - sent.answered} POSTs unanswered`);
      ctx.report.check('baseline', 'totals', problems, `${sent.answered.toLocaleString('en-US')} POSTs`);
      ctx.progress.result(`${fmtRate(r.batchesPerS)} batches/s at ${fmtPct(r.serverCpu)} server CPU (${fmtRate(r.batchesPerCoreS)} per core), generator ${fmtPct(r.generatorCpu)} CPU`);
    } finally {
      await server.stop();
    }
  }

  const f: BaselineFigures = {
    batchesPerS: summarize(list.map((r) => r.batchesPerS)),
    batchesPerCoreS: summarize(list.map((r) => r.batchesPerCoreS)),
    serverCpu: summarize(list.map((r) => r.serverCpu)),
    generatorCpu: summarize(list.map((r) => r.generatorCpu)),
  };
  const rows = [['express, HTTP POST of a JSON batch', fmtSpread(f.batchesPerS, fmtRate), fmtPct(f.serverCpu.median), fmtSpread(f.batchesPerCoreS, fmtRate), fmtRate(f.batchesPerCoreS.median * SAMPLES_PER_BATCH), fmtPct(f.generatorCpu.median), '1×']];
  for (const t of ctx.options.transports) {
    const x = ingest?.get(`promstream ${t}`);
    if (x !== undefined) {
      rows.push([`promstream, ${t}`, fmtSpread(x.framesPerS, fmtRate), fmtPct(x.serverCpu.median), fmtSpread(x.framesPerCoreS, fmtRate), fmtRate(x.framesPerCoreS.median * SAMPLES_PER_BATCH), fmtPct(x.generatorCpu.median), fmtRatio(x.framesPerCoreS.median / f.batchesPerCoreS.median)]);
    }
  }
  ctx.report.tables.push({
    title: 'Baseline: the old HTTP/JSON design',
    columns: ['', 'batches (frames)/s', 'server CPU', 'per core', 'samples/s per core', 'generator CPU', 'vs baseline'],
    rows,
    notes: [
      `${HTTP_CONNECTIONS} keep-alive connections, each POSTing the next batch when the previous one is answered (204); a batch holds the same 7 samples as one delta frame, by name and labels in JSON.`,
      'The express app parses JSON, checks every sample against the same whitelist and applies it to prom-client, as the original project did; medians, min–max in brackets. Ratios are between per-core rates (rate ÷ server CPU).',
    ],
  });
  ctx.report.data.baseline = f;
  return f;
}
