/** The capacity targets of the bench issue, judged from a full local run. */
import { fmtInt, fmtMs, fmtRate, fmtRatio, type Report } from './report.js';
import type { BaselineFigures } from '../scenarios/baseline.js';
import type { ConnectionFigures } from '../scenarios/connections.js';
import type { IngestFigures } from '../scenarios/ingest.js';
import type { ScrapeFigures } from '../scenarios/scrape.js';

export interface AllFigures {
  readonly ingest: Map<string, IngestFigures> | null;
  readonly baseline: BaselineFigures | null;
  readonly scrape: ScrapeFigures[] | null;
  readonly connections: ConnectionFigures[] | null;
}

/** 1.5 KB read as 1.5 × 1024 bytes. */
const MAX_BYTES_PER_IDLE_SESSION = 1536;

export function judgeTargets(report: Report, f: AllFigures): void {
  const uws = f.ingest?.get('promstream uws');
  const ceiling = f.ingest?.get('decode-only uws');
  const add = (target: string, measured: string, met: boolean | null): void => void report.targets.push({ target, measured, met });

  // Per core: frames/s divided by the server's CPU, so that a neighbour's load does not count against it.
  add('ingest, uWS: ≥ 150 000 frames/s of 7 samples on one core', uws === undefined ? '–' : `${fmtRate(uws.framesPerCoreS.median)} frames/s per core (${fmtRate(uws.framesPerS.median)} at ${Math.round(uws.serverCpu.median * 100)} % CPU)`, uws === undefined ? null : uws.framesPerCoreS.median >= 150_000);
  const r = uws !== undefined && ceiling !== undefined ? uws.framesPerCoreS.median / ceiling.framesPerCoreS.median : NaN;
  add('ingest, uWS: ≥ 0.6 × the decode-only ceiling', Number.isFinite(r) ? `${fmtRatio(r)} (ceiling ${fmtRate(ceiling!.framesPerCoreS.median)} frames/s per core)` : '–', Number.isFinite(r) ? r >= 0.6 : null);

  const c = f.connections?.find((x) => x.transport === 'uws' && Number.isFinite(x.rssPerSessionBytes));
  add('≥ 19 000 concurrent sessions in one process (uWS)', c === undefined ? '–' : fmtInt(c.sessions), c === undefined ? null : c.sessions >= 19_000);
  add('≤ 1.5 KB server memory per idle session (uWS)', c === undefined ? '–' : `${fmtInt(c.rssPerSessionBytes)} B RSS (V8 heap used ${fmtInt(c.heapPerSessionBytes)} B, outside the heap ${fmtInt(c.nativePerSessionBytes)} B)`, c === undefined ? null : c.rssPerSessionBytes <= MAX_BYTES_PER_IDLE_SESSION);

  const b = f.baseline;
  const gain = uws !== undefined && b !== null ? uws.framesPerCoreS.median / b.batchesPerCoreS.median : NaN;
  add('≥ 30 × the HTTP baseline (batches/s)', Number.isFinite(gain) ? `${fmtRatio(gain)} per core (baseline ${fmtRate(b!.batchesPerCoreS.median)} batches/s per core)` : '–', Number.isFinite(gain) ? gain >= 30 : null);

  const s = f.scrape?.find((x) => x.series === 100_000);
  add('/metrics with 100 000 series in ≤ 40 ms', s === undefined ? '–' : `${fmtMs(s.scrapeMs.median)} ms median, ${fmtMs(s.scrapeMs.max)} ms max`, s === undefined ? null : s.scrapeMs.median <= 40);
  const worst = f.scrape === null || f.scrape.length === 0 ? null : f.scrape.reduce((w, x) => (x.ackMaxMs > w.ackMaxMs ? x : w));
  add('scrapes never stall ingest for more than 50 ms', worst === null ? '–' : `longest ack round trip ${fmtMs(worst.ackMaxMs)} ms, event-loop delay max ${fmtMs(Math.max(...f.scrape!.map((x) => x.eldMaxMs)))} ms`,
    worst === null ? null : worst.ackMaxMs <= 50 && f.scrape!.every((x) => !(x.eldMaxMs > 50)));
  report.data.targets = report.targets;
}
