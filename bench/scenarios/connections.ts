/**
 * Connections and the reconnect storm, with protocol sessions on bare sockets (raw-session-fleet.ts: the
 * reference client's resume and backoff rules, a fraction of its CPU) in several generator processes,
 * spread over 127.0.x.y source addresses:
 * - open as many sessions as the open-file limit allows and time it (connect rate);
 * - server memory per idle session: RSS and heap after a forced GC, minus the same after a warm-up, V8's
 *   young generation left out (empty after the GC; it grows with the allocation rate, not the sessions);
 * - server CPU while every client flushes a 7-sample delta every 1 s, then every 10 s;
 * - storm: every socket cut at once (no close frame); time until each client is back and resumed,
 *   the server's peak CPU meanwhile, and the totals afterwards.
 * The server keeps its default limits, as a deployment would.
 */
import { ServerCatalog } from '../../server/core/catalog.js';
import { loadWhitelist } from '../../server/index.js';
import { admittedSockets } from '../../server/setup/descriptor-guard.js';
import type { BenchChild } from '../processes/child-process.js';
import { BenchContext, pause, pollUntil } from './context.js';
import { BenchUsageError } from '../options.js';
import { listenOverflows, openFileLimits } from '../report/machine.js';
import { scrape } from '../report/metrics-probe.js';
import { fmtInt, fmtKiB, fmtMiB, fmtPct, fmtRate, fmtRatio, fmtTally } from '../report/report.js';
import { compareTotals, ExpectedTotals } from '../generators/sample-plan.js';
import type { FleetCutResult } from '../generators/raw-session-fleet.js';
import { threadCpuBetween, type ServerUnderTest } from '../processes/server-under-test.js';
import { percentile } from '../report/stats.js';
import type { CatalogMetric } from '../../protocol/index.js';

/** Clients per generator process: well inside its open-file limit, and a share of the CPU each. */
const CLIENTS_PER_GENERATOR = 5000;
/**
 * Sessions per source address. A connect from a chosen address binds it with port 0 first, and the
 * kernel's search for a free port then walks every socket bound there (inet_csk_get_port): with 10 000
 * per address and as many in TIME_WAIT after a cut, that search took 3/4 of both cores (perf) and the
 * storm measured the generators' binds, not the server (72 s; 7.7 s with 500 per address).
 */
const CLIENTS_PER_SOURCE_ADDRESS = 500;
/** Sockets below the server's admission cap left free: the warm-up's and the scrapes' connections. */
const SESSION_SLACK = 50;

export interface ConnectionFigures {
  /** The row's label: the transport, with ", --workers N" for more than one event loop, and the Node.js when not the bench's own. */
  readonly transport: string;
  /** The transport itself. */
  readonly base: 'uws' | 'ws';
  /** The server's Node.js version (`node --version`). */
  readonly node: string;
  readonly workers: number;
  /** Memory and CPU were measured (not only the storm). */
  readonly measured: boolean;
  /** Sessions per event loop once all were open, largest first (local servers on Linux). */
  readonly split: readonly number[];
  readonly sessions: number;
  readonly connectPerS: number;
  /** RSS per idle session, V8's young generation left out (reported apart: youngGenerationBytes). */
  readonly rssPerSessionBytes: number;
  /** The whole RSS over the warm-up's, per session: the young generation's growth included. */
  readonly rssOverallPerSessionBytes: number;
  /** V8's young generation with every session idle (every worker's): empty, resident. */
  readonly youngGenerationBytes: number;
  readonly heapPerSessionBytes: number;
  /** RSS outside the V8 heap per session: the transport's native memory (uWS, socket buffers, malloc). */
  readonly nativePerSessionBytes: number;
  readonly rssBytes: number;
  readonly cpu1s: number;
  readonly frames1s: number;
  readonly cpu10s: number;
  readonly frames10s: number;
  readonly storm: StormFigures | null;
}

export interface StormFigures {
  readonly sessions: number;
  readonly allBackMs: number;
  readonly back: number;
  readonly resumed: number;
  readonly peakCpu: number;
  readonly meanCpu: number;
  /** Connection attempts until all were back (sessions + retries). */
  readonly attempts: number;
  /** What failed on the way (close codes, connect errors), e.g. "12 × 1013 server full". */
  readonly failures: string;
  /** Connections the kernel dropped from the full accept queue meanwhile (local runs on Linux). */
  readonly listenOverflows: number | null;
  /** Time from the cut until welcomed again: median and 99th percentile over the sessions. */
  readonly backP50Ms: number;
  readonly backP99Ms: number;
  /** Sessions back at their first attempt. */
  readonly firstAttempt: number;
  /** The slowest 1 % of the sessions: their mean attempts, and the share of their time spent in backoff waits. */
  readonly slowestAttempts: number;
  readonly slowestBackoffShare: number;
}

/** Spread of the sessions' way back, from every generator's per-session figures. */
function stormSpread(cuts: readonly FleetCutResult[]): Pick<StormFigures, 'backP50Ms' | 'backP99Ms' | 'firstAttempt' | 'slowestAttempts' | 'slowestBackoffShare'> {
  const each = cuts.flatMap((c) => c.backMs.map((backMs, i) => ({ backMs, attempts: c.attemptsEach[i]!, backoffMs: c.backoffMsEach[i]! })));
  const back = each.filter((e) => Number.isFinite(e.backMs));
  const slowest = [...back].sort((a, b) => b.backMs - a.backMs).slice(0, Math.max(1, Math.ceil(back.length / 100)));
  const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((s, x) => s + x, 0) / xs.length);
  return {
    backP50Ms: percentile(back.map((e) => e.backMs), 50),
    backP99Ms: percentile(back.map((e) => e.backMs), 99),
    firstAttempt: back.filter((e) => e.attempts === 1).length,
    slowestAttempts: mean(slowest.map((e) => e.attempts)),
    slowestBackoffShare: mean(slowest.map((e) => Math.min(e.backoffMs, e.backMs) / e.backMs)),
  };
}

/** Sessions to open: --clients, or what one server process may hold open. */
export function sessionCount(ctx: BenchContext): number {
  const cap = admittedSockets(openFileLimits().hard);
  if (ctx.options.clients !== null) {
    if (ctx.options.clients > cap) throw new BenchUsageError(`--clients ${ctx.options.clients}: a server with ${openFileLimits().hard} open files admits at most ${cap} connections (raise ulimit -n)`);
    return ctx.options.clients;
  }
  if (ctx.options.quick) return 100;
  // The server admits what its open-files limit leaves after its reserve (server/setup/descriptor-guard.ts):
  // asking for more would leave the rest refused with 1013 until the opening times out.
  return Math.min(cap - SESSION_SLACK, 50_000);
}

const stormTransport = (ctx: BenchContext): 'uws' | 'ws' => ctx.options.transports[0]!;

/** Which of the connections scenarios run: with one event loop, and with --workers N. */
export interface ConnectionsSelection {
  readonly connections: boolean;
  readonly storm: boolean;
  readonly connectionsWorkers: boolean;
  readonly stormWorkers: boolean;
}

/** One server started and filled with sessions: measured (memory, CPU), cut (storm), or both. */
interface Pass {
  readonly transport: 'uws' | 'ws';
  readonly workers: number;
  /** The server's node binary (undefined: the bench's own) and its version. */
  readonly node: string | undefined;
  readonly version: string;
  measure: boolean;
  storm: boolean;
}

function passes(ctx: BenchContext, sel: ConnectionsSelection): { list: Pass[]; skipped: string[] } {
  const list: Pass[] = [];
  const st = stormTransport(ctx);
  const own = { node: undefined, version: process.version };
  if (ctx.isTarget) {
    if (sel.connections || sel.storm) list.push({ transport: 'uws', workers: 1, ...own, measure: sel.connections, storm: sel.storm });
    return { list, skipped: sel.connectionsWorkers || sel.stormWorkers ? ['the *-workers scenarios start their own servers: skipped against a target'] : [] };
  }
  if (sel.connections) for (const t of ctx.options.transports) list.push({ transport: t, workers: 1, ...own, measure: true, storm: sel.storm && t === st });
  else if (sel.storm) list.push({ transport: st, workers: 1, ...own, measure: false, storm: true });
  const skipped: string[] = [];
  // connections-workers: every transport; storm-workers: the first. ws before Node 22.12 runs both of its
  // passes (one event loop and workers) on the Node that ingest-workers' ws rows use, so that its ratio
  // compares like with like; the one-event-loop pass above stays on the bench's Node for ws vs uWS.
  const withWorkers = sel.connectionsWorkers ? ctx.options.transports : sel.stormWorkers ? [st] : [];
  for (const t of withWorkers) {
    const r = ctx.workersRuntime(t);
    if (!r.ok) {
      skipped.push(`connections/storm with --workers ${ctx.options.workers} over ${t}: ${r.why}`);
      continue;
    }
    if (sel.connectionsWorkers) {
      // The ratio to one event loop is the point: measure it in the same run if connections did not.
      const one = list.find((p) => p.transport === t && p.workers === 1 && p.version === r.version);
      if (one === undefined) list.push({ transport: t, workers: 1, node: r.node, version: r.version, measure: true, storm: false });
      else one.measure = true;
    }
    list.push({ transport: t, workers: ctx.options.workers, node: r.node, version: r.version, measure: sel.connectionsWorkers, storm: sel.stormWorkers && t === st });
  }
  return { list, skipped };
}

export function connectionsSteps(ctx: BenchContext, sel: ConnectionsSelection): number {
  return passes(ctx, sel).list.reduce((n, p) => n + 2 + (p.measure ? 3 : 0) + (p.storm ? 1 : 0), 0);
}

const passLabel = (ctx: BenchContext, p: Pass): string =>
  (ctx.isTarget ? 'target' : `${p.workers === 1 ? p.transport : `${p.transport}, --workers ${p.workers}`}${p.version === process.version ? '' : ` (Node ${p.version})`}`);

export async function runConnections(ctx: BenchContext, sel: ConnectionsSelection): Promise<ConnectionFigures[]> {
  const metrics = ctx.isTarget ? null : new ServerCatalog(await loadWhitelist([ctx.ingestConfig])).wire.metrics;
  const all: ConnectionFigures[] = [];
  const { list, skipped } = passes(ctx, sel);
  for (const why of skipped) ctx.progress.note(why);
  for (const p of list) {
    const server = await ctx.server({ mode: 'promstream', transport: p.transport, serverOptions: { workers: p.workers }, node: p.node });
    try {
      if (!ctx.isTarget && server.workers !== p.workers) throw new Error(`asked for --workers ${p.workers}, the server runs ${server.workers}`);
      all.push({ ...(await onTransport(ctx, server, passLabel(ctx, p), metrics, p.measure, p.storm)), base: p.transport, node: p.version });
    } finally {
      await server.stop();
      // Generators are stopped between transports: dropping their thousands of sockets is quicker than closing them.
      await ctx.close();
    }
  }
  if (all.some((f) => f.measured)) reportConnections(ctx, all.filter((f) => f.measured));
  if (all.some((f) => f.storm !== null)) reportStorm(ctx, all);
  ctx.report.data.connections = all;
  return all;
}

async function onTransport(
  ctx: BenchContext,
  server: ServerUnderTest,
  transport: string,
  knownMetrics: readonly CatalogMetric[] | null,
  measure: boolean,
  storm: boolean,
): Promise<Omit<ConnectionFigures, 'base' | 'node'>> {
  const { quick } = ctx.options;
  const n = sessionCount(ctx);
  const generatorCount = Math.max(1, Math.ceil(n / CLIENTS_PER_GENERATOR));
  const gens = Array.from({ length: generatorCount }, (_, i) => ctx.generator(i));
  const addresses = ctx.sourceAddresses(Math.ceil(n / CLIENTS_PER_SOURCE_ADDRESS) + 1);
  const metrics = knownMetrics ?? (await targetCatalog(ctx, server));
  const before = ctx.isTarget ? (await scrape(server.metricsUrl!)).samples : new Map<string, number>();
  const fleet = (count: number, firstIndex: number): Record<string, unknown> => ({
    host: server.host, port: server.port, path: server.path, firstIndex, count, localAddresses: addresses, labels: ctx.labels, metrics, concurrency: 256, timeoutMs: 120_000,
  });
  const label = transport;

  // Warm-up: the code paths of a session run before the memory baseline is read.
  ctx.progress.step(`connections (${label}): warm up, then open ${fmtInt(n)} sessions`, 10_000);
  await gens[0]!.request('fleet-open', fleet(Math.min(quick ? 20 : 200, n), 0));
  await gens[0]!.request('fleet-close');
  await server.gc();
  const base = await server.resources();
  const opened0 = ctx.isTarget ? (await server.figures()).sessionsOpened : 0;

  const t0 = performance.now();
  const cpu0 = await server.resources();
  const share = Math.ceil(n / generatorCount);
  const opened = await Promise.all(gens.map((g, i) => g.request<{ connected: number; elapsedMs: number }>('fleet-open', fleet(Math.max(0, Math.min(share, n - i * share)), i * share), 180_000)));
  const connectMs = performance.now() - t0;
  const cpu1 = await server.resources();
  const sessions = opened.reduce((s, o) => s + o.connected, 0);
  const connectPerS = sessions / (connectMs / 1000);
  ctx.progress.result(`${fmtInt(sessions)} sessions in ${(connectMs / 1000).toFixed(1)} s (${fmtRate(connectPerS)}/s, server ${fmtPct((cpu1.cpuSeconds - cpu0.cpuSeconds) / ((cpu1.atMs - cpu0.atMs) / 1000))} CPU)`);
  if (sessions < n) ctx.progress.note(`  only ${sessions} of ${n} sessions opened`);
  const split = server.workers > 1 ? ((await server.loops())?.connections ?? []) : [];
  if (split.length > 0) ctx.progress.note(`  sessions per worker: ${split.map(fmtInt).join(' / ')}`);

  let rssPerSessionBytes = NaN;
  let rssOverallPerSessionBytes = NaN;
  let youngGenerationBytes = NaN;
  let heapPerSessionBytes = NaN;
  let nativePerSessionBytes = NaN;
  let rssBytes = NaN;
  let cpu1s = NaN;
  let frames1s = NaN;
  let cpu10s = NaN;
  let frames10s = NaN;
  if (measure) {
    ctx.progress.step(`connections (${label}): memory of ${fmtInt(sessions)} idle sessions`);
    await pause(quick ? 200 : 1000);
    const gcDone = await server.gc();
    const idle = await server.resources();
    rssBytes = idle.rssBytes;
    const young = idle.youngGenerationBytes - base.youngGenerationBytes;
    youngGenerationBytes = idle.youngGenerationBytes;
    rssPerSessionBytes = (idle.rssBytes - base.rssBytes - young) / sessions;
    rssOverallPerSessionBytes = (idle.rssBytes - base.rssBytes) / sessions;
    heapPerSessionBytes = (idle.heapUsedBytes - base.heapUsedBytes) / sessions;
    nativePerSessionBytes = (idle.rssBytes - idle.heapResidentBytes - (base.rssBytes - base.heapResidentBytes)) / sessions;
    ctx.progress.result(`${fmtInt(rssPerSessionBytes)} B RSS, ${fmtInt(heapPerSessionBytes)} B heap used, ${fmtInt(nativePerSessionBytes)} B outside the heap per session${gcDone ? '' : ' (no GC: target)'}; RSS ${fmtMiB(idle.rssBytes)}, of it ${fmtMiB(youngGenerationBytes)} young generation (${young >= 0 ? '+' : ''}${fmtMiB(young)} since the warm-up; ${fmtInt(rssOverallPerSessionBytes)} B per session with it)`);

    const windowMs = quick ? 1000 : 10_000;
    for (const spread of [1, 10]) {
      ctx.progress.step(`connections (${label}): every client flushes every ${spread} s`, windowMs + 2000);
      await Promise.all(gens.map((g) => g.request('fleet-record', { everyMs: 1000, spread })));
      await pause(quick ? 300 : 2000);
      const la = server.workers > 1 ? await server.threads() : null;
      const w = await cpuWindow(server, windowMs, 1000);
      const lb = la === null ? null : await server.threads();
      if (spread === 1) [cpu1s, frames1s] = [w.cpu, w.framesPerS];
      else [cpu10s, frames10s] = [w.cpu, w.framesPerS];
      // With workers, where the CPU went: each thread over the window, busiest first.
      const threads = la === null || lb === null ? '' : `; threads ${threadCpuBetween(la, lb)
        .filter((t) => t.cores >= 0.005).map((t) => `${t.name} ${fmtPct(t.cores)}`).join(', ')}`;
      ctx.progress.result(`server ${fmtPct(w.cpu)} CPU at ${fmtRate(w.framesPerS)} frames/s${threads}`);
    }
  }

  let stormFigures: StormFigures | null = null;
  if (storm) {
    ctx.progress.step(`storm (${label}): cut all ${fmtInt(sessions)} sessions at once`, 10_000);
    // Frames are in flight when the cut comes: every client flushes every second.
    await Promise.all(gens.map((g) => g.request('fleet-record', { everyMs: 1000, spread: 1 })));
    await pause(quick ? 300 : 1500);
    const f0 = await server.figures();
    const overflows0 = ctx.isTarget ? null : listenOverflows();
    const sampler = sampleCpu(server, 100);
    const cuts = await Promise.all(gens.map((g) => g.request<FleetCutResult>('fleet-cut', { timeoutMs: 120_000 }, 180_000)));
    const cpu = await sampler.stop();
    const back = cuts.reduce((s, c) => s + c.back, 0);
    await pollUntil(async () => (await server.figures()).connected >= back, 10_000, 200);
    const f1 = await server.figures();
    stormFigures = {
      sessions, allBackMs: Math.max(...cuts.map((c) => c.elapsedMs)), back, resumed: cuts.reduce((s, c) => s + c.resumed, 0), peakCpu: cpu.peak, meanCpu: cpu.mean,
      attempts: cuts.reduce((s, c) => s + c.attempts, 0), failures: fmtTally(cuts.map((c) => Object.entries(c.closes))),
      listenOverflows: overflows0 === null ? null : (listenOverflows() ?? overflows0) - overflows0,
      ...stormSpread(cuts),
    };
    const resumedOnServer = f1.sessionsResumed - f0.sessionsResumed;
    ctx.progress.result(`all back in ${(stormFigures.allBackMs / 1000).toFixed(2)} s (half in ${(stormFigures.backP50Ms / 1000).toFixed(2)} s, 99 % in ${(stormFigures.backP99Ms / 1000).toFixed(2)} s), ${fmtInt(stormFigures.resumed)} resumed (server: ${fmtInt(resumedOnServer)}), ${fmtInt(stormFigures.attempts)} attempts, ${stormFigures.listenOverflows === null ? '' : `${fmtInt(stormFigures.listenOverflows)} accept-queue overflows, `}peak CPU ${fmtPct(cpu.peak)}${stormFigures.failures === '' ? '' : `; ${stormFigures.failures}`}`);
    ctx.report.check('storm', `${label}: every session back and resumed`, [
      ...(back === sessions ? [] : [`${sessions - back} sessions not back within 120 s`]),
      ...(stormFigures.resumed === back ? [] : [`${back - stormFigures.resumed} sessions came back as new sessions instead of resuming`]),
      ...(ctx.isTarget || f1.connected === sessions ? [] : [`connected_clients ${f1.connected}, expected ${sessions}`]),
    ], `${fmtInt(sessions)} resumed, connected_clients ${fmtInt(f1.connected)}`);
  }

  // Correctness: everything recorded is acknowledged, then the server must expose exactly that.
  ctx.progress.step(`${storm && !measure ? 'storm' : 'connections'} (${label}): flush every client and compare totals`);
  await Promise.all(gens.map((g) => g.request('fleet-stop-recording')));
  const flushed = await Promise.all(gens.map((g) => g.request<{ flushed: number; failed: number; gaugeHolders: number; expected: unknown; closes: Record<string, number> }>('fleet-flush', { timeoutMs: 60_000 }, 90_000)));
  const expected = new ExpectedTotals();
  for (const f of flushed) expected.merge(ExpectedTotals.fromJSON(f.expected));
  const holders = flushed.reduce((s, f) => s + f.gaugeHolders, 0);
  const problems = compareTotals(expected.exposition(ctx.isTarget ? null : holders), (await scrape(server.metricsUrl!)).samples, before);
  const failed = flushed.reduce((s, f) => s + f.failed, 0);
  const flushCloses = fmtTally(flushed.map((f) => Object.entries(f.closes)));
  if (failed > 0) problems.push(`${failed} sessions not acknowledged in time (${flushCloses})`);
  // What failed since the cut comes first (only five problems are shown): a session back only after
  // --session-ttl is a new one (4001) and resends its in-flight frame, at-least-once.
  else if (problems.length > 0 && flushCloses !== '') problems.unshift(`failures since the cut: ${flushCloses}`);
  const figures = await server.figures();
  if (!ctx.isTarget && figures.connected !== sessions) problems.push(`connected_clients ${figures.connected}, expected ${sessions}`);
  if (ctx.isTarget && figures.sessionsOpened - opened0 < sessions) problems.push(`sessions opened ${figures.sessionsOpened - opened0} < ${sessions}`);
  ctx.report.check(storm && !measure ? 'storm' : 'connections', `${label}: totals after all flushed`, problems, `${fmtInt(sessions)} sessions, ${fmtInt(expected.exposition(null).size)} series lines, gauge = ${fmtInt(holders)}`);
  ctx.progress.result(problems.length === 0 ? 'exact' : `${problems.length} mismatches`);

  return { transport: label, workers: server.workers, measured: measure, split, sessions, connectPerS, rssPerSessionBytes, rssOverallPerSessionBytes, youngGenerationBytes, heapPerSessionBytes, nativePerSessionBytes, rssBytes, cpu1s, frames1s, cpu10s, frames10s, storm: stormFigures };
}

/** The target's catalogue, from a welcome (its whitelist is not known here). */
async function targetCatalog(ctx: BenchContext, server: ServerUnderTest): Promise<readonly CatalogMetric[]> {
  const g: BenchChild = ctx.generator(0);
  const { catalog } = await g.request<{ catalog: { metrics: CatalogMetric[] } }>('ingest-open', {
    host: server.host, port: server.port, path: server.path, connections: 1, localAddresses: ctx.sourceAddresses(1), labels: ctx.labels,
  });
  await g.request('ingest-close');
  return catalog.metrics;
}

/** Server CPU (cores, median of per-second samples) and frames/s over a window. */
async function cpuWindow(server: ServerUnderTest, windowMs: number, everyMs: number): Promise<{ cpu: number; framesPerS: number }> {
  const f0 = await server.figures();
  const samples: number[] = [];
  let prev = await server.resources();
  const until = performance.now() + windowMs;
  while (performance.now() < until) {
    await pause(everyMs);
    const cur = await server.resources();
    samples.push((cur.cpuSeconds - prev.cpuSeconds) / ((cur.atMs - prev.atMs) / 1000));
    prev = cur;
  }
  const f1 = await server.figures();
  return { cpu: percentile(samples, 50), framesPerS: (f1.frames - f0.frames) / ((f1.atMs - f0.atMs) / 1000) };
}

/** Samples server CPU every `everyMs` until stopped; peak over two consecutive samples. */
function sampleCpu(server: ServerUnderTest, everyMs: number): { stop(): Promise<{ peak: number; mean: number }> } {
  const points: { cpuSeconds: number; atMs: number }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      points.push(await server.resources());
      await pause(everyMs);
    }
    points.push(await server.resources());
  })();
  return {
    async stop() {
      running = false;
      await loop;
      let peak = 0;
      for (let i = 2; i < points.length; i++) {
        const a = points[i - 2]!;
        const b = points[i]!;
        peak = Math.max(peak, (b.cpuSeconds - a.cpuSeconds) / ((b.atMs - a.atMs) / 1000));
      }
      const first = points[0]!;
      const last = points.at(-1)!;
      return { peak, mean: (last.cpuSeconds - first.cpuSeconds) / ((last.atMs - first.atMs) / 1000) };
    },
  };
}

/** CPU per frame at the 1 s flush, in seconds: what one delta arriving on its own costs. */
export const cpuPerFrame = (f: ConnectionFigures): number => f.cpu1s / f.frames1s;

/** The pass of one event loop that `many` (a pass with workers) compares with: the same transport on the same Node. */
export const oneLoopOf = (all: readonly ConnectionFigures[], many: ConnectionFigures): ConnectionFigures | undefined =>
  all.find((f) => f.workers === 1 && f.measured && f.base === many.base && f.node === many.node);

function reportConnections(ctx: BenchContext, all: readonly ConnectionFigures[]): void {
  const rows = all.map((f) => [
    f.transport,
    f.split.length > 1 ? `${fmtInt(f.sessions)} (${f.split.map(fmtInt).join(' / ')} per worker)` : fmtInt(f.sessions),
    `${fmtRate(f.connectPerS)}/s`,
    `${fmtInt(f.rssPerSessionBytes)} B (${fmtKiB(f.rssPerSessionBytes)})`,
    `${fmtInt(f.heapPerSessionBytes)} B`,
    Number.isFinite(f.nativePerSessionBytes) ? `${fmtInt(f.nativePerSessionBytes)} B` : '–',
    `${fmtMiB(f.rssBytes)} (${fmtInt(f.rssOverallPerSessionBytes)} B per session)`,
    fmtMiB(f.youngGenerationBytes),
    `${fmtPct(f.cpu1s)} at ${fmtRate(f.frames1s)} frames/s`,
    `${fmtPct(f.cpu10s)} at ${fmtRate(f.frames10s)} frames/s`,
    Number.isFinite(cpuPerFrame(f)) ? `${(cpuPerFrame(f) * 1e6).toFixed(1)} µs` : '–',
  ]);
  const uws = all.find((f) => f.transport === 'uws');
  const ws = all.find((f) => f.transport === 'ws');
  const notes = [
    'Sessions on bare sockets that follow the reference client\'s protocol (hello, one delta in flight, acks, pongs, resume), 5 000 per generator process, spread over 127.0.x.y source addresses; the reference client over ws costs its generator several times the CPU, and 20 000 of them flushing every second would measure the generator. Sessions: as many as the server process may hold open files, minus a margin for its own.',
    'Memory per idle session: server RSS and V8 heap after a forced GC with all sessions idle, minus the same after a warm-up, divided by the sessions, V8\'s young generation left out: the GC has emptied it, and V8 sizes it by the allocation rate (up to 2 × 16 MiB of semi-spaces per event loop), not by the sessions held. Its size is in its own column, and "RSS total" divides the whole growth, young generation included, by the sessions. RSS also holds the V8 old generation\'s free reserve (V8 keeps room to grow in proportion to the live heap), so RSS per session exceeds heap used + outside the heap. CPU: median of one-second samples over 10 s, in cores; every session sends 7 samples per flush.',
    'CPU per frame = CPU at the 1 s flush ÷ its frame rate: the cost of one 7-sample delta arriving on its own (read, decode, apply, ack), the figure to plan with.',
  ];
  if (uws !== undefined && ws !== undefined) {
    notes.push(`ws / uWS: ${fmtRatio(ws.rssPerSessionBytes / uws.rssPerSessionBytes)} the memory per session, ${fmtRatio(ws.cpu1s / uws.cpu1s)} the CPU at a 1 s flush.`);
  }
  for (const many of all.filter((f) => f.workers > 1)) {
    const one = oneLoopOf(all, many);
    if (one === undefined) continue;
    notes.push(`${many.transport} / ${one.transport} (one event loop): ${fmtRatio(cpuPerFrame(many) / cpuPerFrame(one))} the CPU per frame, ${fmtRatio(many.rssPerSessionBytes / one.rssPerSessionBytes)} the RSS per idle session (${fmtInt(Math.abs(many.rssPerSessionBytes - one.rssPerSessionBytes))} B ${many.rssPerSessionBytes >= one.rssPerSessionBytes ? 'more' : 'less'}). With workers, sessions are spread over the worker threads by the kernel (per worker: the sessions each worker's event loop polls); CPU is the whole process (workers, and the main thread that serves /metrics and expires sessions); heap figures add every worker's V8 heap after a forced GC in each (the bench runs each worker under a shim that answers a GC request).`);
  }
  ctx.report.tables.push({
    title: 'Connections: memory, connect rate and CPU per session',
    columns: ['server', 'sessions', 'connect rate', 'RSS per idle session', 'of it V8 heap used', 'of it outside the V8 heap', 'RSS total', 'of it V8\'s young generation (empty)', 'CPU, flush every 1 s', 'CPU, flush every 10 s', 'CPU per frame'],
    rows, notes,
  });
}

function reportStorm(ctx: BenchContext, all: readonly ConnectionFigures[]): void {
  ctx.report.tables.push({
    title: 'Reconnect storm: every session cut at once',
    columns: ['server', 'sessions cut', 'all back and resumed after', 'half / 99 % back after', 'resumed', 'connection attempts', 'back at the first attempt', 'slowest 1 %: attempts, time in backoff', 'accept-queue overflows', 'server CPU peak / mean', 'failures on the way'],
    rows: all.filter((f) => f.storm !== null).map((f) => {
      const s = f.storm!;
      return [
        f.transport, fmtInt(s.sessions), `${(s.allBackMs / 1000).toFixed(2)} s`, `${(s.backP50Ms / 1000).toFixed(2)} s / ${(s.backP99Ms / 1000).toFixed(2)} s`,
        `${fmtInt(s.resumed)} of ${fmtInt(s.back)} back`, fmtInt(s.attempts), fmtInt(s.firstAttempt), `${s.slowestAttempts.toFixed(1)}, ${fmtPct(s.slowestBackoffShare)}`,
        s.listenOverflows === null ? '–' : fmtInt(s.listenOverflows), `${fmtPct(s.peakCpu)} / ${fmtPct(s.meanCpu)}`, s.failures === '' ? 'none' : s.failures,
      ];
    }),
    notes: [
      'Each generator drops all its sockets in one loop (no close frame, as a proxy restart or network blip would); the sessions reconnect with the reference client\'s backoff (full jitter, base 250 ms, cap 30 s) and resume. Every session keeps recording and flushing every second throughout, so frames are in flight when the cut comes.',
      'Peak CPU is over 200 ms windows. Accept-queue overflows: connections the kernel dropped because the listener\'s queue (uWS: a fixed backlog of 512, one queue per worker with --workers) was full, machine-wide (TcpExt ListenOverflows); each costs its client a SYN retransmission (1 s, then 3 s, 7 s …) and, past the client\'s 15 s welcome timeout, a backoff. Totals are checked after the storm in the correctness table.',
      'Slowest 1 %: the sessions back last, their mean connection attempts and the share of their time back spent waiting in the reconnect backoff (the rest is connecting: SYN retransmissions after an accept-queue overflow, handshakes, the welcome).',
    ],
  });
}
