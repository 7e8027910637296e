/**
 * Ingest at saturation with worker threads: the same raw ingest as the ingest scenario, against
 * promstream --workers 1 and --workers N (alternating, same generator, same frames), each worker
 * listening on the one public port (SO_REUSEPORT). The generator runs on the same cores as the server
 * (no pinning unless --pin), as it would on a host that also runs other work. Enough connections that
 * the kernel's hash spreads them over every worker; the split is read from the server process (which
 * event loop polls which connection) and reported, with each busy thread's CPU.
 *
 * Beside them, N independent processes of --workers 1 on N ports (replicas: nothing shared, no port
 * shared), each streamed to by its own generators: what this machine gives N event loops of this load
 * with no coordination at all, so the workers' gain can be read against it. The same generators (N
 * processes, the connections split evenly) drive all three.
 */
import { BenchContext, SATURATION_LIMITS } from './context.js';
import { fmtInt, fmtPct, fmtRate, fmtRatio, fmtSpread } from '../report/report.js';
import { ingestOnce, ingestWindow, type IngestRun } from './ingest.js';
import { summarize, type Summary } from '../report/stats.js';

/** Ingest connections for both worker counts: with 32, a 4-tuple hash leaves no worker without a share. */
export const WORKERS_INGEST_CONNECTIONS = 32;
/**
 * Frames a connection may have unacknowledged: ~1 MiB, over a second of any connection's share at
 * saturation, so the server never waits for the generator, and at the end of a window the server has
 * at most a few seconds' backlog to work off before the totals are compared (without a cap, loopback's
 * socket buffers let 32 connections queue millions of frames: a minute and more of backlog).
 */
export const WORKERS_INGEST_MAX_UNACKED = 16_384;

export interface WorkersIngestFigures {
  readonly transport: 'uws' | 'ws';
  /** 'workers': one process with `workers` event loops; 'replicas': `workers` processes of --workers 1. */
  readonly layout: 'workers' | 'replicas';
  readonly workers: number;
  readonly framesPerS: Summary;
  /** frames/s of each run, in run order: rows of one run are paired for their ratios. */
  readonly framesPerSByRun: readonly number[];
  readonly framesPerCoreS: Summary;
  readonly serverCpu: Summary;
  readonly generatorCpu: Summary;
  /** Connections per event loop, every run's (largest first). */
  readonly splits: readonly (readonly number[])[];
  /** CPU of the busiest threads (workers + 1), median over runs per rank, in cores. */
  readonly threadCpu: readonly number[];
  /** The Node.js that ran the server processes (`node --version`). */
  readonly node: string;
}

export interface WorkersIngestResult {
  readonly figures: WorkersIngestFigures[];
  /** Transports not measured with workers here, and why (ws before Node 22.12). */
  readonly skipped: { readonly transport: 'uws' | 'ws'; readonly why: string }[];
}

interface Layout {
  readonly layout: 'workers' | 'replicas';
  readonly n: number;
}

function plan(ctx: BenchContext): { measured: ('uws' | 'ws')[]; skipped: WorkersIngestResult['skipped'] } {
  const measured: ('uws' | 'ws')[] = [];
  const skipped: WorkersIngestResult['skipped'] = [];
  for (const t of ctx.options.transports) {
    const r = ctx.workersRuntime(t);
    if (!r.ok) skipped.push({ transport: t, why: r.why });
    else measured.push(t);
  }
  return { measured, skipped };
}

/** Per transport: --workers 1, --workers N where this Node shares a port between threads, N replicas. */
function layouts(ctx: BenchContext, transport: 'uws' | 'ws', measured: readonly ('uws' | 'ws')[]): Layout[] {
  const { workers } = ctx.options;
  return [{ layout: 'workers', n: 1 }, ...(measured.includes(transport) ? [{ layout: 'workers' as const, n: workers }] : []), { layout: 'replicas', n: workers }];
}

export function ingestWorkersSteps(ctx: BenchContext): number {
  if (ctx.isTarget) return 0;
  const { measured } = plan(ctx);
  return ctx.options.transports.reduce((acc, t) => acc + layouts(ctx, t, measured).length, 0) * ctx.options.runs;
}

const layoutName = (transport: string, { layout, n }: Layout): string =>
  (layout === 'workers' ? `promstream ${transport} --workers ${n}` : `promstream ${transport}, ${n} replicas of --workers 1`);

export async function runIngestWorkers(ctx: BenchContext): Promise<WorkersIngestResult | null> {
  if (ctx.isTarget) {
    ctx.progress.note('ingest-workers: skipped against a target (it starts the server with --workers 1 and N)');
    return null;
  }
  const { runs, quick, workers } = ctx.options;
  // A quick run's bound is reached within its short window (one event loop reads ~0.5 MB per connection per turn): it checks totals, not rates.
  const window = { ...ingestWindow(quick), connections: WORKERS_INGEST_CONNECTIONS, maxUnacked: WORKERS_INGEST_MAX_UNACKED, perLoop: true, scenario: 'ingest-workers', generators: workers };
  const { measured, skipped } = plan(ctx);
  for (const s of skipped) ctx.progress.note(`ingest-workers, ${s.transport}: ${s.why}`);
  // Every row of a transport on one Node, so that its ratios compare like with like (a ws row's --workers 1 too).
  const runtimes = new Map(ctx.options.transports.map((t) => {
    const r = ctx.workersRuntime(t);
    return [t, r.ok ? { node: r.node, version: r.version } : { node: undefined, version: process.version }] as const;
  }));
  for (const [t, { node, version }] of runtimes) if (node !== undefined) ctx.progress.note(`ingest-workers, ${t}: every ${t} row's server runs on Node ${version} (${node}), the generators on ${process.version}`);
  const results = new Map<string, { transport: 'uws' | 'ws'; layout: Layout; runs: IngestRun[] }>();
  for (let run = 0; run < runs; run++) {
    for (const transport of ctx.options.transports) {
      // Alternating the layouts within each run, so that machine noise hits them alike.
      for (const layout of layouts(ctx, transport, measured)) {
        const key = layoutName(transport, layout);
        ctx.progress.step(`ingest-workers: ${key}, run ${run + 1}/${runs}`, window.warmupMs + window.windowMs + 2500);
        const count = layout.layout === 'workers' ? 1 : layout.n;
        const perServer = layout.layout === 'workers' ? layout.n : 1;
        const servers = await Promise.all(Array.from({ length: count }, () => ctx.server({ mode: 'promstream', transport, serverOptions: { ...SATURATION_LIMITS, workers: perServer }, node: runtimes.get(transport)!.node })));
        try {
          for (const server of servers) if (server.workers !== perServer) throw new Error(`asked for --workers ${perServer}, the server runs ${server.workers}`);
          const r = await ingestOnce(ctx, servers, 'promstream', key, window);
          (results.get(key) ?? results.set(key, { transport, layout, runs: [] }).get(key)!).runs.push(r);
          ctx.progress.result(`${fmtRate(r.framesPerS)} frames/s at ${fmtPct(r.serverCpu)} server CPU, generators ${fmtPct(r.generatorCpu)}; connections per event loop ${(r.loopConnections ?? []).join(' / ')}, busiest threads ${(r.threadCpu ?? []).slice(0, layout.n + 1).map(fmtPct).join(', ')}`);
        } finally {
          await Promise.all(servers.map((server) => server.stop()));
        }
      }
    }
  }
  const figures: WorkersIngestFigures[] = [...results.values()].map(({ transport, layout: { layout, n }, runs: list }) => ({
    transport, layout, workers: n,
    framesPerS: summarize(list.map((r) => r.framesPerS)),
    framesPerSByRun: list.map((r) => r.framesPerS),
    framesPerCoreS: summarize(list.map((r) => r.framesPerCoreS)),
    serverCpu: summarize(list.map((r) => r.serverCpu)),
    generatorCpu: summarize(list.map((r) => r.generatorCpu)),
    splits: list.map((r) => r.loopConnections ?? []),
    threadCpu: Array.from({ length: n + 1 }, (_, rank) => summarize(list.map((r) => r.threadCpu?.[rank] ?? NaN)).median),
    node: runtimes.get(transport)!.version,
  }));
  const result = { figures, skipped };
  reportIngestWorkers(ctx, result);
  return result;
}

/**
 * a ÷ b of the host's frames/s, run by run (the rows of one run alternate, so machine noise that drifts
 * over minutes hits both alike), summarized over runs: the median is the gain quoted.
 */
export const pairedRatio = (a: WorkersIngestFigures, b: WorkersIngestFigures): Summary =>
  summarize(a.framesPerSByRun.flatMap((x, i) => (b.framesPerSByRun[i] === undefined ? [] : [x / b.framesPerSByRun[i]!])));

/** workers N / workers 1 of the host's frames/s, per transport: the median of the per-run ratios. */
export function workersGain(r: WorkersIngestResult | null, transport: 'uws' | 'ws', workers: number): { gain: number; spread?: Summary; one?: WorkersIngestFigures; many?: WorkersIngestFigures } {
  const one = r?.figures.find((f) => f.transport === transport && f.layout === 'workers' && f.workers === 1);
  const many = r?.figures.find((f) => f.transport === transport && f.layout === 'workers' && f.workers === workers);
  const spread = one !== undefined && many !== undefined ? pairedRatio(many, one) : undefined;
  return { gain: spread?.median ?? NaN, ...(spread === undefined ? {} : { spread }), ...(one === undefined ? {} : { one }), ...(many === undefined ? {} : { many }) };
}

function reportIngestWorkers(ctx: BenchContext, r: WorkersIngestResult): void {
  const { workers } = ctx.options;
  const rows: string[][] = [];
  const versus: string[] = [];
  for (const t of ctx.options.transports) {
    const mine = r.figures.filter((x) => x.transport === t);
    const one = mine.find((f) => f.layout === 'workers' && f.workers === 1);
    const many = mine.find((f) => f.layout === 'workers' && f.workers === workers);
    const replicas = mine.find((f) => f.layout === 'replicas');
    for (const f of mine) {
      const on = f.node === process.version ? '' : ` (Node ${f.node})`;
      rows.push([
        (f.layout === 'workers' ? `promstream ${t}, --workers ${f.workers}` : `promstream ${t}, ${f.workers} replicas of --workers 1`) + on,
        fmtSpread(f.framesPerS, fmtRate),
        fmtPct(f.serverCpu.median),
        fmtSpread(f.framesPerCoreS, fmtRate),
        f.splits.map((s) => s.join(' / ')).join('; '),
        f.threadCpu.filter(Number.isFinite).map(fmtPct).join(', '),
        fmtPct(f.generatorCpu.median),
        f === one || one === undefined ? '1×' : `${fmtSpread(pairedRatio(f, one), fmtRatio)} frames/s, ${fmtRatio(f.framesPerCoreS.median / one.framesPerCoreS.median)} per core`,
      ]);
      if (f === one) {
        const skip = r.skipped.find((s) => s.transport === t);
        if (skip !== undefined) rows.push([`promstream ${t}, --workers ${workers}`, 'not measured', '–', '–', '–', '–', '–', skip.why]);
      }
    }
    if (many !== undefined && replicas !== undefined) versus.push(`${t}: --workers ${workers} takes ${fmtSpread(pairedRatio(many, replicas), fmtRatio)} the frames/s of ${workers} replicas (${fmtRatio(many.framesPerCoreS.median / replicas.framesPerCoreS.median)} per core).`);
  }
  ctx.report.tables.push({
    title: `Ingest at saturation: --workers ${workers} vs --workers 1`,
    columns: ['', 'frames/s (host)', 'server CPU', 'frames/s per core', 'connections per event loop', 'busiest server threads, CPU', 'generator CPU', `vs --workers 1`],
    rows,
    notes: [
      `${fmtInt(WORKERS_INGEST_CONNECTIONS)} connections (the same for every row) from ${workers} generator processes (${fmtInt(WORKERS_INGEST_CONNECTIONS / workers)} each), each connection one session streaming 7-sample delta frames back to back as in the ingest table, with at most ${fmtInt(WORKERS_INGEST_MAX_UNACKED)} frames unacknowledged per connection; medians of ${ctx.options.runs} run(s), min–max in brackets, the rows alternating within each run. The generators share the machine's ${ctx.report.machine.cpus} CPUs with the server (${ctx.report.machine.pinning}).`,
      `Replicas: ${workers} independent server processes of --workers 1 on ${workers} ports, generator j streaming to replica j: nothing shared between the event loops, the ceiling of ${workers} event loops on this machine for this load. Server CPU, frames/s and threads are summed over the replicas.`,
      'Connections per event loop: established connections on the public port registered in each event loop\'s epoll set, read from /proc at the start of the window, one list per run; with workers the kernel spreads connections over the listeners by a hash of the address and port pair (SO_REUSEPORT), so the split is near even but not exact. Busiest threads: the server process\'s threads by CPU over the window (with workers: each worker, then the main thread that serves /metrics, or V8\'s GC helpers).',
      'vs --workers 1: the ratio of frames/s (host) within each run, median and min–max over the runs (rows of one run are measured minutes apart at most; ratios of the medians drift with this machine\'s load).',
      'Server CPU is the whole process in cores (100 % = one core). The ratio of frames/s (host) is the gain on this machine; frames/s per core shows what each core of the server does (it falls when threads contend for cores with each other and the generators).',
      ...versus,
      ...ctx.options.transports.flatMap((t) => {
        const other = r.figures.find((f) => f.transport === t && f.node !== process.version);
        return other === undefined ? [] : [`${t} rows: every server process of them ran on Node ${other.node} (ws shares a port between threads from Node 22.12; --ws-node), the generators on ${process.version} as in every other row; their ratios compare rows of the same Node.`];
      }),
    ],
  });
  ctx.report.data.ingestWorkers = r;
}
