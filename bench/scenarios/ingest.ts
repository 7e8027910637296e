/**
 * Ingest at saturation: a generator process streams prebuilt 7-sample frames over a few raw
 * connections as fast as the server reads them. Per transport, the real server alternates with a
 * decode-only handler behind the same transport (same generator, same frames), so the ratio shows what
 * the protocol work costs on top of transport + decode. A byte sink shows the generator's own ceiling.
 * The rate is read from the server's own counters over a window after a warm-up.
 */
import type { Welcome } from '../../protocol/index.js';
import { BenchContext, pause, pollUntil, SATURATION_LIMITS } from './context.js';
import { scrape } from '../report/metrics-probe.js';
import { fmtPct, fmtRate, fmtRatio, fmtSpread } from '../report/report.js';
import type { RawIngestResult } from '../generators/raw-ingest.js';
import { compareTotals, ExpectedTotals, SAMPLES_PER_BATCH } from '../generators/sample-plan.js';
import { threadCpuBetween, type ServerUnderTest } from '../processes/server-under-test.js';
import { summarize, type Summary } from '../report/stats.js';

export const INGEST_CONNECTIONS = 8;

export type IngestMode = 'promstream' | 'decode-only' | 'sink';

export interface IngestRun {
  readonly framesPerS: number;
  /** Frames per CPU-second of the server: what one whole core takes, whatever else ran on the machine. */
  readonly framesPerCoreS: number;
  readonly samplesPerS: number;
  /** Server CPU over the window, in cores. */
  readonly serverCpu: number;
  /** Generator CPU over its whole sending time, in cores. */
  readonly generatorCpu: number;
  /** With `perLoop`: public connections per event loop at the window's start, largest first. */
  readonly loopConnections?: readonly number[];
  /** With `perLoop`: CPU of the server's busiest threads over the window, in cores, largest first. */
  readonly threadCpu?: readonly number[];
}

export interface IngestWindow {
  readonly warmupMs: number;
  readonly windowMs: number;
  readonly maxFramesPerConnection: number;
  /** Ingest connections (default INGEST_CONNECTIONS). */
  readonly connections?: number;
  /** Also read connections per event loop and CPU per thread (local servers). */
  readonly perLoop?: boolean;
  /** Frames a connection may have unacknowledged (default: no cap but the socket's buffers). */
  readonly maxUnacked?: number;
  /** The scenario its correctness checks are filed under (default ingest). */
  readonly scenario?: string;
  /**
   * Generator processes sharing the connections (default 1); with several servers, generator j streams
   * to server j mod servers, so each server gets connections × servers ÷ generators of them.
   */
  readonly generators?: number;
}

export interface IngestFigures {
  readonly framesPerS: Summary;
  readonly framesPerCoreS: Summary;
  readonly samplesPerS: Summary;
  readonly serverCpu: Summary;
  readonly generatorCpu: Summary;
}

/** Warm-up, measured window and the bound on frames per connection, as every ingest run uses them. */
export function ingestWindow(quick: boolean): { warmupMs: number; windowMs: number; maxFramesPerConnection: number } {
  // Bounded in count as well as time: enough for the window at several million frames/s.
  return { warmupMs: quick ? 150 : 700, windowMs: quick ? 300 : 2500, maxFramesPerConnection: quick ? 10_240 : 4_000_000 };
}

export function ingestSteps(ctx: BenchContext): number {
  if (ctx.isTarget) return ctx.options.runs;
  return ctx.options.transports.length * 2 * ctx.options.runs + ctx.options.runs;
}

export async function runIngest(ctx: BenchContext): Promise<Map<string, IngestFigures>> {
  const { runs, quick } = ctx.options;
  const { warmupMs, windowMs, maxFramesPerConnection } = ingestWindow(quick);
  const results = new Map<string, IngestRun[]>();
  const add = (key: string, r: IngestRun): void => void (results.get(key) ?? results.set(key, []).get(key)!).push(r);

  const plan: { key: string; mode: IngestMode; transport: 'uws' | 'ws' }[] = [];
  if (ctx.isTarget) plan.push({ key: 'target', mode: 'promstream', transport: 'uws' });
  else {
    plan.push({ key: 'sink', mode: 'sink', transport: 'uws' });
    // Alternate ceiling and server within each transport so that machine noise hits both alike.
    for (const transport of ctx.options.transports) plan.push({ key: `decode-only ${transport}`, mode: 'decode-only', transport }, { key: `promstream ${transport}`, mode: 'promstream', transport });
  }
  for (let run = 0; run < runs; run++) {
    for (const p of plan) {
      ctx.progress.step(`ingest: ${p.key}, run ${run + 1}/${runs}`, warmupMs + windowMs + 1500);
      const server = await ctx.server({ mode: p.mode, transport: p.transport, serverOptions: SATURATION_LIMITS });
      try {
        const r = await ingestOnce(ctx, server, p.mode, p.key, { warmupMs, windowMs, maxFramesPerConnection });
        add(p.key, r);
        ctx.progress.result(`${fmtRate(r.framesPerS)} frames/s at ${fmtPct(r.serverCpu)} server CPU (${fmtRate(r.framesPerCoreS)} per core), generator ${fmtPct(r.generatorCpu)} CPU`);
      } finally {
        await server.stop();
      }
    }
  }

  const figures = new Map<string, IngestFigures>();
  for (const [key, list] of results) {
    figures.set(key, {
      framesPerS: summarize(list.map((r) => r.framesPerS)),
      framesPerCoreS: summarize(list.map((r) => r.framesPerCoreS)),
      samplesPerS: summarize(list.map((r) => r.samplesPerS)),
      serverCpu: summarize(list.map((r) => r.serverCpu)),
      generatorCpu: summarize(list.map((r) => r.generatorCpu)),
    });
  }
  reportIngest(ctx, figures);
  return figures;
}

/**
 * One measured window against one server, or against several at once (independent processes side by
 * side, as replicas): their frames, samples and CPU are summed, each one's totals checked against what
 * its own generators sent.
 */
export async function ingestOnce(
  ctx: BenchContext,
  target: ServerUnderTest | readonly ServerUnderTest[],
  mode: IngestMode,
  key: string,
  { warmupMs, windowMs, maxFramesPerConnection, connections = INGEST_CONNECTIONS, perLoop = false, maxUnacked, scenario = 'ingest', generators = 1 }: IngestWindow,
): Promise<IngestRun> {
  const servers: readonly ServerUnderTest[] = Array.isArray(target) ? target : [target as ServerUnderTest];
  if (generators % servers.length !== 0 || connections % generators !== 0) {
    throw new Error(`ingest: ${connections} connections, ${generators} generators and ${servers.length} servers do not divide evenly`);
  }
  const gens = Array.from({ length: generators }, (_, j) => ({ gen: ctx.generator(j), server: servers[j % servers.length]! }));
  const each = <T>(f: (server: ServerUnderTest) => Promise<T>): Promise<T[]> => Promise.all(servers.map(f));
  const counts = async (): Promise<{ frames: number; samples: number; atMs: number }> => {
    const list = await each((sv) => sv.counts());
    return { frames: sum(list.map((c) => c.frames)), samples: sum(list.map((c) => c.samples)), atMs: sum(list.map((c) => c.atMs)) / list.length };
  };
  const resources = async (): Promise<{ cpuSeconds: number; atMs: number }> => {
    const list = await each((sv) => sv.resources());
    return { cpuSeconds: sum(list.map((r) => r.cpuSeconds)), atMs: sum(list.map((r) => r.atMs)) / list.length };
  };
  const loops = async (): Promise<{ connections: number[]; threadCpuSeconds: Record<string, number>; atMs: number } | null> => {
    const list = await each((sv) => sv.loops());
    if (list.some((l) => l === null)) return null;
    const threadCpuSeconds: Record<string, number> = {};
    list.forEach((l, i) => {
      for (const [tid, cpu] of Object.entries(l!.threadCpuSeconds)) threadCpuSeconds[`${i}:${tid}`] = cpu;
    });
    return { connections: list.flatMap((l) => l!.connections).sort((x, y) => y - x), threadCpuSeconds, atMs: sum(list.map((l) => l!.atMs)) / list.length };
  };

  const before = await each(async (sv) => (ctx.isTarget ? (await scrape(sv.metricsUrl!)).samples : new Map<string, number>()));
  const framesBefore = mode === 'sink' ? 0 : (await counts()).frames;
  await Promise.all(gens.map(({ gen, server }) => gen.request<{ catalog: Welcome['catalog'] }>('ingest-open', {
    host: server.host, port: server.port, path: server.path, connections: connections / generators, localAddresses: ctx.sourceAddresses(4), labels: ctx.labels,
  })));
  try {
    await Promise.all(gens.map(({ gen }) => gen.request('ingest-start', { maxFramesPerConnection, ...(maxUnacked === undefined ? {} : { maxUnacked }) })));
    await pause(warmupMs);
    const la = perLoop ? await loops() : null;
    const a = mode === 'sink' ? null : await counts();
    const ra = await resources();
    await pause(windowMs);
    const b = mode === 'sink' ? null : await counts();
    const rb = await resources();
    const lb = perLoop ? await loops() : null;
    const perLoopFigures = la === null || lb === null ? {} : {
      loopConnections: la.connections,
      threadCpu: threadCpuBetween(la, lb).map((t) => t.cores),
    };
    const sent = await Promise.all(gens.map(({ gen }) => gen.request<RawIngestResult>('ingest-stop', { awaitAcks: mode === 'promstream' }, 120_000)));

    const generatorCpu = sum(sent.map((x) => x.generatorCpuSeconds / (x.elapsedMs / 1000)));
    const serverCpu = (rb.cpuSeconds - ra.cpuSeconds) / ((rb.atMs - ra.atMs) / 1000);
    const framesSent = sum(sent.map((x) => x.framesSent));
    const connectionsOpen = sum(sent.map((x) => x.connections));
    if (mode === 'sink') {
      const framesPerS = sum(sent.map((x) => x.framesSent / (x.elapsedMs / 1000)));
      return { framesPerS, framesPerCoreS: NaN, samplesPerS: framesPerS * SAMPLES_PER_BATCH, serverCpu, generatorCpu };
    }
    const closes = sent.flatMap((x) => x.closes);
    if (closes.length > 0) throw new Error(`the server closed ingest connections: ${[...new Set(closes)].join(', ')}`);
    const seconds = (b!.atMs - a!.atMs) / 1000;

    // Every frame sent (and each connection's hello) must arrive; the real server must expose exactly what was sent.
    const want = framesBefore + framesSent + connectionsOpen;
    const arrived = await pollUntil(async () => (await counts()).frames >= want, 60_000, 100);
    const got = (await counts()).frames;
    if (mode === 'decode-only') {
      ctx.report.check(scenario, `${key}: frames decoded`, arrived && got === want ? [] : [`decoded ${got - framesBefore}, sent ${want - framesBefore}`], `${(want - framesBefore).toLocaleString('en-US')} frames`);
    } else {
      const problems: string[] = [];
      let seriesCount = 0;
      for (const [i, server] of servers.entries()) {
        // What this server's generators sent; a deployment's gauges also count its other sessions: there only counters and histograms are compared.
        const mine = sent.filter((_, j) => gens[j]!.server === server);
        const expected = new ExpectedTotals();
        for (const x of mine) expected.merge(ExpectedTotals.fromJSON(x.expected));
        const exposition = expected.exposition(ctx.isTarget ? null : sum(mine.map((x) => x.connections)));
        seriesCount = Math.max(seriesCount, exposition.size);
        const found = compareTotals(exposition, (await scrape(server.metricsUrl!)).samples, before[i]!);
        problems.push(...(servers.length === 1 ? found : found.map((p) => `${server.label}: ${p}`)));
        const unacked = sum(mine.map((x) => x.connections - x.fullyAcked));
        if (unacked > 0) problems.push(`${unacked} connections missing their last ack`);
      }
      ctx.report.check(scenario, `${key}: totals`, problems, `${framesSent.toLocaleString('en-US')} frames, ${seriesCount} series${servers.length === 1 ? '' : ` on each of ${servers.length} servers`}`);
    }
    const framesPerS = (b!.frames - a!.frames) / seconds;
    return { framesPerS, framesPerCoreS: framesPerS / serverCpu, samplesPerS: (b!.samples - a!.samples) / seconds, serverCpu, generatorCpu, ...perLoopFigures };
  } finally {
    await Promise.all(gens.map(({ gen }) => gen.request('ingest-close')));
  }
}

const sum = (xs: readonly number[]): number => xs.reduce((acc, x) => acc + x, 0);

function reportIngest(ctx: BenchContext, f: Map<string, IngestFigures>): void {
  const rows: string[][] = [];
  const sink = f.get('sink');
  const row = (name: string, key: string, ceilingKey?: string): void => {
    const x = f.get(key);
    if (x === undefined) return;
    const ceiling = ceilingKey === undefined ? undefined : f.get(ceilingKey);
    rows.push([
      name,
      fmtSpread(x.framesPerS, fmtRate),
      fmtPct(x.serverCpu.median),
      fmtSpread(x.framesPerCoreS, fmtRate),
      fmtRate(x.framesPerCoreS.median * SAMPLES_PER_BATCH),
      fmtPct(x.generatorCpu.median),
      ceiling === undefined ? '–' : fmtRatio(x.framesPerCoreS.median / ceiling.framesPerCoreS.median),
    ]);
  };
  if (sink !== undefined) rows.push(['generator into a byte sink', fmtSpread(sink.framesPerS, fmtRate), '–', '–', '–', fmtPct(sink.generatorCpu.median), '–']);
  for (const t of ctx.options.transports) {
    row(`decode-only ceiling, ${t}`, `decode-only ${t}`);
    row(`promstream, ${t}`, `promstream ${t}`, `decode-only ${t}`);
  }
  row('promstream, target', 'target');
  const uws = f.get('promstream uws');
  const ws = f.get('promstream ws');
  const notes = [
    `${INGEST_CONNECTIONS} connections, each one session streaming 7-sample delta frames (59–62 bytes) back to back; the server acknowledges every frame. Medians of ${ctx.options.runs} run(s), min–max in brackets, read from the server's own counters over a window after a warm-up.`,
    'Server CPU is in cores (100 % = one core; the event loop is one thread, GC helpers may add a little). "Per core" divides the rate by that CPU: what one whole core takes even when other work on a shared machine took part of it. Ratios are between per-core rates.',
  ];
  if (uws !== undefined && ws !== undefined) notes.push(`uWS / ws: ${fmtRatio(uws.framesPerCoreS.median / ws.framesPerCoreS.median)} per core.`);
  if (sink !== undefined && uws !== undefined) notes.push(`The generator alone pushes ${fmtRatio(sink.framesPerS.median / uws.framesPerS.median)} the frames the uWS server applies, at ${fmtPct(sink.generatorCpu.median)} of a core: the server is the limit, not the generator.`);
  ctx.report.tables.push({ title: 'Ingest at saturation', columns: ['', 'frames/s', 'server CPU', 'frames/s per core', 'samples/s per core', 'generator CPU', 'vs decode-only'], rows, notes });
  ctx.report.data.ingest = Object.fromEntries(f);
}
