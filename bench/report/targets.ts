/** The capacity targets of the bench issue, judged from a full local run. */
import { fmtInt, fmtMs, fmtPct, fmtRate, fmtRatio, fmtSpread, type Report } from './report.js';
import type { BaselineFigures } from '../scenarios/baseline.js';
import { cpuPerFrame, oneLoopOf, type ConnectionFigures } from '../scenarios/connections.js';
import type { IngestFigures } from '../scenarios/ingest.js';
import type { ScrapeFigures } from '../scenarios/scrape.js';
import { workersGain, type WorkersIngestResult } from '../scenarios/ingest-workers.js';
import type { BenchOptions } from '../options.js';

export interface AllFigures {
  readonly ingest: Map<string, IngestFigures> | null;
  readonly ingestWorkers: WorkersIngestResult | null;
  readonly baseline: BaselineFigures | null;
  readonly scrape: ScrapeFigures[] | null;
  readonly connections: ConnectionFigures[] | null;
}

/** 1.5 KB read as 1.5 × 1024 bytes. */
const MAX_BYTES_PER_IDLE_SESSION = 1536;
/** Issue 13: what N workers on one host must give over one event loop. */
const MIN_WORKERS_INGEST_GAIN = 1.7;
const MAX_WORKERS_CPU_PER_FRAME = 1.15;
const MAX_STORM_BACK_MS_WITH_WORKERS = 15_000;
/** Issue 13, for ws (what users get on a Node without a uWS binary): against its own ceiling, and against uWS. */
const MIN_WS_SHARE_OF_CEILING = 0.3;
const MAX_WS_CPU_PER_FRAME_VS_UWS = 2;
/** 4 KB read as 4 × 1024 bytes. */
const MAX_WS_BYTES_PER_IDLE_SESSION = 4096;

export function judgeTargets(report: Report, f: AllFigures, options: Pick<BenchOptions, 'scenarios' | 'workers'>): void {
  const uws = f.ingest?.get('promstream uws');
  const ceiling = f.ingest?.get('decode-only uws');
  const add = (target: string, measured: string, met: boolean | null): void => void report.targets.push({ target, measured, met });

  // Per core: frames/s divided by the server's CPU, so that a neighbour's load does not count against it.
  add('ingest, uWS: ≥ 150 000 frames/s of 7 samples on one core', uws === undefined ? '–' : `${fmtRate(uws.framesPerCoreS.median)} frames/s per core (${fmtRate(uws.framesPerS.median)} at ${Math.round(uws.serverCpu.median * 100)} % CPU)`, uws === undefined ? null : uws.framesPerCoreS.median >= 150_000);
  const r = uws !== undefined && ceiling !== undefined ? uws.framesPerCoreS.median / ceiling.framesPerCoreS.median : NaN;
  add('ingest, uWS: ≥ 0.6 × the decode-only ceiling', Number.isFinite(r) ? `${fmtRatio(r)} (ceiling ${fmtRate(ceiling!.framesPerCoreS.median)} frames/s per core)` : '–', Number.isFinite(r) ? r >= 0.6 : null);

  const c = oneLoop(f, 'uws');
  add('≥ 19 000 concurrent sessions in one process (uWS)', c === undefined ? '–' : fmtInt(c.sessions), c === undefined ? null : c.sessions >= 19_000);
  add('≤ 1.5 KB server memory per idle session (uWS)', c === undefined ? '–' : memoryDetail(c), c === undefined ? null : c.rssPerSessionBytes <= MAX_BYTES_PER_IDLE_SESSION);

  judgeWs(f, add);

  const b = f.baseline;
  const gain = uws !== undefined && b !== null ? uws.framesPerCoreS.median / b.batchesPerCoreS.median : NaN;
  add('≥ 30 × the HTTP baseline (batches/s)', Number.isFinite(gain) ? `${fmtRatio(gain)} per core (baseline ${fmtRate(b!.batchesPerCoreS.median)} batches/s per core)` : '–', Number.isFinite(gain) ? gain >= 30 : null);

  const s = f.scrape?.find((x) => x.series === 100_000);
  add('/metrics with 100 000 series in ≤ 40 ms', s === undefined ? '–' : `${fmtMs(s.scrapeMs.median)} ms median, ${fmtMs(s.scrapeMs.max)} ms max`, s === undefined ? null : s.scrapeMs.median <= 40);
  const worst = f.scrape === null || f.scrape.length === 0 ? null : f.scrape.reduce((w, x) => (x.ackMaxMs > w.ackMaxMs ? x : w));
  add('scrapes never stall ingest for more than 50 ms', worst === null ? '–' : `longest ack round trip ${fmtMs(worst.ackMaxMs)} ms, event-loop delay max ${fmtMs(Math.max(...f.scrape!.map((x) => x.eldMaxMs)))} ms`,
    worst === null ? null : worst.ackMaxMs <= 50 && f.scrape!.every((x) => !(x.eldMaxMs > 50)));
  judgeWorkers(f, options, add);
  report.data.targets = report.targets;
}

/** The measured pass of one event loop on the bench's own Node (a ws pass with workers may run on another). */
const oneLoop = (f: AllFigures, t: 'uws' | 'ws'): ConnectionFigures | undefined =>
  f.connections?.find((x) => x.base === t && x.workers === 1 && x.node === process.version && x.measured && Number.isFinite(x.rssPerSessionBytes));

const memoryDetail = (c: ConnectionFigures): string => `${fmtInt(c.rssPerSessionBytes)} B RSS (V8 heap used ${fmtInt(c.heapPerSessionBytes)} B, outside the heap ${fmtInt(c.nativePerSessionBytes)} B)`;

function judgeWs(f: AllFigures, add: (target: string, measured: string, met: boolean | null) => void): void {
  const ws = f.ingest?.get('promstream ws');
  const ceiling = f.ingest?.get('decode-only ws');
  const share = ws !== undefined && ceiling !== undefined ? ws.framesPerCoreS.median / ceiling.framesPerCoreS.median : NaN;
  add(`ingest, ws: ≥ ${MIN_WS_SHARE_OF_CEILING} × its decode-only ceiling`, Number.isFinite(share) ? `${fmtRatio(share)} (${fmtRate(ws!.framesPerCoreS.median)} vs ${fmtRate(ceiling!.framesPerCoreS.median)} frames/s per core)` : '–', Number.isFinite(share) ? share >= MIN_WS_SHARE_OF_CEILING : null);

  const cws = oneLoop(f, 'ws');
  const cuws = oneLoop(f, 'uws');
  const r = cws !== undefined && cuws !== undefined ? cpuPerFrame(cws) / cpuPerFrame(cuws) : NaN;
  add(`CPU per lone frame (1 s flush), ws ≤ ${MAX_WS_CPU_PER_FRAME_VS_UWS} × uWS`, Number.isFinite(r) ? `${fmtRatio(r)} (${(cpuPerFrame(cws!) * 1e6).toFixed(1)} µs vs ${(cpuPerFrame(cuws!) * 1e6).toFixed(1)} µs)` : '–', Number.isFinite(r) ? r <= MAX_WS_CPU_PER_FRAME_VS_UWS : null);
  add('≤ 4 KB server memory per idle session (ws)', cws === undefined ? '–' : memoryDetail(cws), cws === undefined ? null : cws.rssPerSessionBytes <= MAX_WS_BYTES_PER_IDLE_SESSION);
}

function judgeWorkers(f: AllFigures, { scenarios, workers }: Pick<BenchOptions, 'scenarios' | 'workers'>, add: (target: string, measured: string, met: boolean | null) => void): void {
  const n = workers;
  if (scenarios.includes('ingest-workers')) {
    for (const t of ['uws', 'ws'] as const) {
      const skipped = f.ingestWorkers?.skipped.find((s) => s.transport === t);
      const { gain, spread, one, many } = workersGain(f.ingestWorkers, t, n);
      if (skipped === undefined && !Number.isFinite(gain)) continue;
      add(`ingest, ${t === 'uws' ? 'uWS' : 'ws'}: --workers ${n} ≥ ${MIN_WORKERS_INGEST_GAIN} × the frames/s of --workers 1 (host, generator on the same cores)`,
        skipped !== undefined ? skipped.why : `${fmtSpread(spread!, fmtRatio)} (median of the per-run ratios; ${fmtRate(many!.framesPerS.median)} at ${fmtPct(many!.serverCpu.median)} CPU vs ${fmtRate(one!.framesPerS.median)} at ${fmtPct(one!.serverCpu.median)}; connections per worker ${many!.splits.map((s) => s.join('/')).join(', ')}${many!.node === process.version ? '' : `; servers on Node ${many!.node}`})`,
        skipped !== undefined ? null : gain >= MIN_WORKERS_INGEST_GAIN);
    }
  }
  if (scenarios.includes('connections-workers')) {
    for (const t of ['uws', 'ws'] as const) {
      const many = f.connections?.find((x) => x.base === t && x.workers === n && x.measured);
      const one = many === undefined ? undefined : oneLoopOf(f.connections!, many);
      if (many === undefined && t === 'ws') continue;
      const r = one !== undefined && many !== undefined ? cpuPerFrame(many) / cpuPerFrame(one) : NaN;
      add(`CPU per lone frame (1 s flush), ${t === 'uws' ? 'uWS' : 'ws'}: --workers ${n} within ${MAX_WORKERS_CPU_PER_FRAME} × --workers 1`,
        Number.isFinite(r) ? `${fmtRatio(r)} (${(cpuPerFrame(many!) * 1e6).toFixed(1)} µs vs ${(cpuPerFrame(one!) * 1e6).toFixed(1)} µs; RSS per idle session ${fmtInt(many!.rssPerSessionBytes)} B vs ${fmtInt(one!.rssPerSessionBytes)} B${many!.node === process.version ? '' : `; servers on Node ${many!.node}`})` : '–',
        Number.isFinite(r) ? r <= MAX_WORKERS_CPU_PER_FRAME : null);
    }
  }
  if (scenarios.includes('storm-workers')) {
    const s = f.connections?.find((x) => x.workers === n && x.storm !== null)?.storm ?? null;
    add(`reconnect storm, --workers ${n}: every session back and resumed within ${MAX_STORM_BACK_MS_WITH_WORKERS / 1000} s`,
      s === null ? '–' : `${fmtInt(s.resumed)} of ${fmtInt(s.sessions)} in ${(s.allBackMs / 1000).toFixed(2)} s (99 % in ${(s.backP99Ms / 1000).toFixed(2)} s; ${fmtInt(s.attempts)} attempts, ${s.listenOverflows === null ? '–' : fmtInt(s.listenOverflows)} accept-queue overflows)`,
      s === null ? null : s.resumed === s.sessions && s.allBackMs <= MAX_STORM_BACK_MS_WITH_WORKERS);
  }
}
