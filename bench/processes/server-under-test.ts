/**
 * The server a scenario measures: a local child process (pinned to its own core, probed over IPC) or a
 * running deployment (`--target`/`--metrics`, probed through its /metrics only).
 */
import { spawnBenchChild, type BenchChild } from './child-process.js';
import { figuresOf, scrape, type ServerFigures } from '../report/metrics-probe.js';
import type { LoopsProbe, Probe, ServerMode, Started, StartRequest, ThreadsProbe } from './server-process.js';

/**
 * CPU of every thread between two probes of the same process(es), in cores, busiest first. A probe's
 * keys are "thread-id name"; the name is what follows the first space.
 */
export function threadCpuBetween(a: ThreadsProbe, b: ThreadsProbe): { name: string; cores: number }[] {
  const seconds = (b.atMs - a.atMs) / 1000;
  return Object.entries(b.threadCpuSeconds)
    .map(([key, cpu]) => ({ name: key.slice(key.indexOf(' ') + 1), cores: (cpu - (a.threadCpuSeconds[key] ?? 0)) / seconds }))
    .sort((x, y) => y.cores - x.cores);
}

export interface ResourceProbe {
  readonly atMs: number;
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  /** V8 heap resident, used or not (NaN for a target: /metrics does not say). */
  readonly heapResidentBytes: number;
  /** Of it, V8's young generation, empty after a forced GC (0 for a target: its figures then hold it). */
  readonly youngGenerationBytes: number;
}

export interface ServerUnderTest {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly wsUrl: string;
  /** /metrics of the aggregator (or the baseline's prom-client registry); null for decode-only and sink. */
  readonly metricsUrl: string | null;
  /** Event loops serving clients (promstream --workers N); 1 for the other modes and a target. */
  readonly workers: number;
  /** CPU and memory of the server process. */
  resources(): Promise<ResourceProbe>;
  /** Frames (or POSTed batches) and samples the server has taken so far. */
  counts(): Promise<{ frames: number; samples: number; atMs: number }>;
  /** The aggregator's own figures (promstream mode and targets only). */
  figures(): Promise<ServerFigures>;
  /** Forces a full GC before a memory reading; false when the server is not ours. */
  gc(): Promise<boolean>;
  /** Event-loop delay of the server process (local only): start, then read and reset. */
  eventLoopDelay(action: 'start' | 'read'): Promise<{ p50Ms: number; p99Ms: number; maxMs: number } | null>;
  /** Public connections per event loop and CPU per thread (local only, Linux; null for a target). */
  loops(): Promise<LoopsProbe | null>;
  /** CPU per thread only, without loops()' descriptor scan (local only, Linux; null for a target). */
  threads(): Promise<ThreadsProbe | null>;
  stop(): Promise<void>;
}

export interface LocalServerOptions {
  readonly mode: ServerMode;
  readonly configPath: string;
  readonly transport: 'uws' | 'ws';
  readonly cpus: string | undefined;
  readonly serverOptions?: Record<string, unknown>;
  /** The node binary for the server process; default: the bench's own. */
  readonly node?: string | undefined;
}

export async function startLocalServer(o: LocalServerOptions): Promise<ServerUnderTest> {
  // PROMSTREAM_BENCH_CPU_PROF=DIR writes a V8 CPU profile of every server process into DIR.
  const profileDir = process.env.PROMSTREAM_BENCH_CPU_PROF;
  const nodeFlags = ['--expose-gc', ...(profileDir === undefined || profileDir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])];
  const child: BenchChild = spawnBenchChild(`${o.mode} server (${o.transport})`, './server-process.js', { cpus: o.cpus, nodeFlags, node: o.node });
  let started: Started;
  try {
    const req: StartRequest = { mode: o.mode, configPath: o.configPath, transport: o.transport, ...(o.serverOptions === undefined ? {} : { serverOptions: o.serverOptions }) };
    started = await child.request<Started>('start', { ...req }, 30_000);
  } catch (err) {
    await child.stop();
    throw err;
  }
  const metricsUrl = started.metricsPort === null ? null : `http://127.0.0.1:${started.metricsPort}/metrics`;
  const probe = (): Promise<Probe> => child.request<Probe>('probe');
  return {
    label: `${o.mode} (${started.transport})`,
    host: '127.0.0.1',
    port: started.port,
    path: '/ws',
    wsUrl: `ws://127.0.0.1:${started.port}/ws`,
    metricsUrl,
    workers: started.workers,
    resources: probe,
    async counts() {
      if (o.mode === 'promstream') {
        const f = await figuresOf((await scrape(metricsUrl!)).samples, performance.now());
        return { frames: f.frames, samples: f.samplesApplied, atMs: f.atMs };
      }
      const p = await probe();
      return { frames: p.frames, samples: p.samples, atMs: p.atMs };
    },
    async figures() {
      if (metricsUrl === null) throw new Error(`${o.mode} has no /metrics`);
      return figuresOf((await scrape(metricsUrl)).samples, performance.now());
    },
    async gc() {
      await child.request('gc');
      return true;
    },
    eventLoopDelay: async (action) => (action === 'start' ? (await child.request('eld-start'), null) : child.request('eld-read')),
    loops: () => child.request<LoopsProbe>('loops'),
    threads: () => child.request<ThreadsProbe>('threads'),
    async stop() {
      await child.request('close', {}, 10_000).catch(() => {});
      await child.stop();
    },
  };
}

/** A deployment the operator points the bench at; nothing is started or stopped. */
export function targetServer(wsUrl: string, metricsUrl: string): ServerUnderTest {
  const u = new URL(wsUrl);
  if (u.protocol !== 'ws:') throw new Error(`--target must be a ws:// URL (got ${wsUrl}); the generator speaks plain WebSocket`);
  const figures = async (): Promise<ServerFigures> => figuresOf((await scrape(metricsUrl)).samples, performance.now());
  return {
    label: `target ${u.host}`,
    host: u.hostname,
    port: Number(u.port || 80),
    path: u.pathname,
    wsUrl,
    metricsUrl,
    workers: 1,
    async resources() {
      const f = await figures();
      return { atMs: f.atMs, cpuSeconds: f.cpuSeconds, rssBytes: f.rssBytes, heapUsedBytes: f.heapUsedBytes, heapResidentBytes: NaN, youngGenerationBytes: 0 };
    },
    async counts() {
      const f = await figures();
      return { frames: f.frames, samples: f.samplesApplied, atMs: f.atMs };
    },
    figures,
    gc: async () => false,
    eventLoopDelay: async () => null,
    loops: async () => null,
    threads: async () => null,
    stop: async () => {},
  };
}
