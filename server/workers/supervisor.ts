/**
 * The main thread of `promstream serve --workers N`. It serves no client: it owns the host's shared
 * memory (the session slot table, the connection counts, every worker's metric block and series
 * region), serves /metrics from it, expires detached sessions, and starts the workers, each on the same
 * public port (SO_REUSEPORT). A worker that dies is started again on the memory it left: its counters
 * and series totals stay in the sum (a summed counter that went down would read as a reset to
 * Prometheus), a frame it was cut in the middle of is taken back (its client sends it again), its
 * gauges and connections are taken out, and its sessions wait for their clients' resumes on any worker.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Whitelist } from '../config/types.js';
import { ServerCatalog } from '../core/catalog.js';
import { SharedConnectionCounts, SharedSocketBudget } from '../core/connection-counts.js';
import { WhitelistState } from '../core/live-whitelist.js';
import { SeriesLayout, SeriesStore } from '../core/series-store.js';
import { SlotTable } from '../core/slot-table.js';
import { MetricLayout } from '../scrape/metric-block.js';
import { startMetricsServer } from '../scrape/metrics-server.js';
import { SelfMetrics } from '../scrape/self-metrics.js';
import type { ResolvedServerOptions, ServerOptions } from '../setup/options.js';
import { claimPort } from '../transport/free-port.js';
import type { TransportName } from '../transport/types.js';
import { hostClock, type FromWorker, type ToWorker, type WorkerData } from './messages.js';

/** A worker that died this soon after its start again waits this long before the next start. */
const CRASH_LOOP_WINDOW_MS = 10_000;
const RESTART_DELAY_MS = 100;
const CRASH_LOOP_DELAY_MS = 5_000;
/** How long the main thread waits for a worker to end after 'close' before it stops waiting. */
const CLOSE_WAIT_MS = 5_000;

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

interface WorkerState {
  readonly index: number;
  thread: Worker | null;
  alive: boolean;
  readonly block: SharedArrayBuffer;
  readonly blockValues: Float64Array;
  region: SharedArrayBuffer;
  /** A view of the worker's series region, for the scrape's sum and for settling a cut frame. */
  store: SeriesStore;
  startedAtMs: number;
  /** Waiters for the worker's next message of a type, or its exit. */
  readonly waiting: { type: FromWorker['t']; resolve: (m: FromWorker | null) => void }[];
}

export interface WorkerHostConfig {
  readonly options: ResolvedServerOptions;
  /** What startServer() was given, minus the logger: what each worker resolves again. */
  readonly raw: ServerOptions;
  readonly workers: number;
  readonly transport: TransportName;
  readonly maxConnections: number;
  readonly maxSockets: number;
  readonly epoch: string;
  readonly version: string;
  readonly log: Logger;
}

export interface WorkerHost {
  readonly port: number;
  readonly metricsPort: number;
  readonly connections: number;
  readonly metrics: SelfMetrics;
  readonly liveWorkers: number;
  setReady(ready: boolean): void;
  broadcastAccepting(state: 'stop' | 'pause' | 'resume'): void;
  drain(windowMs: number): Promise<void>;
  close(): Promise<void>;
  /** Puts a new catalogue in force in every worker, their totals carried over; resolves once every client was reconnected. */
  reload(whitelist: Whitelist, catalog: ServerCatalog): Promise<void>;
  /** Test hook: makes worker `index` throw an uncaught exception (PROMSTREAM_TEST_HOOKS=1 only). */
  crashWorker(index: number): void;
}

export async function startWorkerHost(c: WorkerHostConfig): Promise<WorkerHost> {
  const o = c.options;
  const log = c.log;
  const clockZeroMs = performance.timeOrigin + performance.now();
  const nowMs = hostClock(clockZeroMs);
  let whitelist = o.whitelist;
  let sum = new WhitelistState(new ServerCatalog(whitelist), o.maxSampleValue);
  const seriesLayout = new SeriesLayout(sum.catalog, o.maxFrameBytes);
  const metricLayout = new MetricLayout(sum.catalog.sessionLabels);
  const slotsBuffer = new SharedArrayBuffer(SlotTable.bytesFor(o.maxSessions));
  const slots = new SlotTable(slotsBuffer, 0);
  const countsBuffer = new SharedArrayBuffer(SharedConnectionCounts.bytesFor(c.workers, c.maxConnections));
  const counts = new SharedConnectionCounts(countsBuffer, c.workers, 0, c.maxConnections);
  const socketsBuffer = new SharedArrayBuffer(SharedSocketBudget.bytesFor(c.workers));
  const sockets = new SharedSocketBudget(socketsBuffer, 0, c.maxSockets);
  const testHooks = process.env.PROMSTREAM_TEST_HOOKS === '1';

  const workers: WorkerState[] = Array.from({ length: c.workers }, (_, index) => {
    const block = new SharedArrayBuffer(metricLayout.bytes);
    const region = new SharedArrayBuffer(seriesLayout.bytes);
    return {
      index, thread: null, alive: false, block, blockValues: metricLayout.values(block), region,
      store: new SeriesStore(sum.catalog, o.maxSampleValue, { layout: seriesLayout, buffer: region }),
      startedAtMs: 0, waiting: [],
    };
  });
  const liveWorkers = (): number => workers.filter((w) => w.alive).length;
  const metrics = new SelfMetrics({
    layout: metricLayout,
    blocks: () => workers.map((w) => w.blockValues),
    resumable: () => slots.detached,
    liveWorkers: () => liveWorkers(),
  }, c.version);

  // The one port of every worker: free (checked here, as the workers' shared sockets would not notice
  // another process on it), and the kernel's choice, when asked for any, made here once.
  const port = await claimPort(o.host, o.port);
  let stopping = false;
  let ready = false;
  let nextRelease = 1;
  /** Release requests forwarded to an owner: our id → who asked, and their id. */
  const releases = new Map<number, { owner: number; from: number; id: number }>();

  const send = (w: WorkerState, m: ToWorker): void => {
    if (w.alive) w.thread?.postMessage(m);
  };
  const next = (w: WorkerState, type: FromWorker['t']): Promise<FromWorker | null> =>
    new Promise((resolve) => {
      if (!w.alive) return resolve(null);
      w.waiting.push({ type, resolve });
    });

  const relog = (w: WorkerState, line: string): void => {
    try {
      const { level, msg, ...fields } = JSON.parse(line) as { level: number; msg?: string; [k: string]: unknown };
      log.child({ worker: w.index })[LEVELS[level] ?? 'info'](fields, msg);
    } catch {
      log.info({ worker: w.index, line }, 'worker log line');
    }
  };

  const onMessage = (w: WorkerState, m: FromWorker): void => {
    if (m.t === 'log') return relog(w, m.line);
    if (m.t === 'askRelease') {
      const owner = workers[m.owner];
      if (owner === undefined || !owner.alive) {
        // The owner is gone: once its exit is handled its sessions wait for a resume; the asker tries again then.
        send(w, { t: 'released', id: m.id, ok: false });
        return;
      }
      const id = nextRelease++;
      releases.set(id, { owner: owner.index, from: w.index, id: m.id });
      send(owner, { t: 'release', id, slot: m.slot });
      return;
    }
    if (m.t === 'released') {
      const r = releases.get(m.id);
      if (r === undefined) return;
      releases.delete(m.id);
      send(workers[r.from]!, { t: 'released', id: r.id, ok: true });
      return;
    }
    for (let i = 0; i < w.waiting.length; i++) {
      if (w.waiting[i]!.type !== m.t) continue;
      w.waiting.splice(i, 1)[0]!.resolve(m);
      return;
    }
  };

  const spawn = (w: WorkerState): Promise<void> => {
    const data: WorkerData = {
      index: w.index, workers: c.workers, options: { ...c.raw, whitelist, logger: undefined } as WorkerData['options'], logLevel: log.level,
      transport: c.transport, port, maxConnections: c.maxConnections, maxSockets: c.maxSockets, epoch: c.epoch, clockZeroMs,
      slots: slotsBuffer, counts: countsBuffer, sockets: socketsBuffer, block: w.block, region: w.region, testHooks,
    };
    const thread = new Worker(new URL('./worker-main.js', import.meta.url), { workerData: data });
    w.thread = thread;
    w.alive = true;
    w.startedAtMs = nowMs();
    const listening = next(w, 'listening');
    thread.on('message', (m: FromWorker) => onMessage(w, m));
    thread.on('error', (err) => log.error({ worker: w.index, err }, 'worker failed'));
    thread.on('exit', (code) => onExit(w, thread, code));
    return listening.then((m) => {
      if (m === null) throw new Error(`worker ${w.index} ended before it listened on port ${port}`);
    });
  };

  const onExit = (w: WorkerState, thread: Worker, code: number): void => {
    if (w.thread !== thread) return;
    w.alive = false;
    w.thread = null;
    for (const waiter of w.waiting.splice(0)) waiter.resolve(null);
    if (stopping) return;
    // Nothing writes the worker's memory any more: settle what it left.
    const cutFrame = w.store.settleCutFrame((slot) => slots.seqOf(slot));
    w.store.clearGauges();
    counts.forgetWorker(w.index, w.blockValues[MetricLayout.LIVE]!);
    sockets.forgetWorker(w.index);
    const block = w.blockValues;
    block[MetricLayout.LIVE] = 0;
    block.fill(0, metricLayout.connectedAt, metricLayout.connectedAt + metricLayout.combos.length);
    block[MetricLayout.LOOP_DELAY] = 0;
    block[MetricLayout.LOOP_UTILIZATION] = 0;
    const reclaimed = slots.reclaim(w.index, nowMs());
    // Whoever waited for it to give a session up may take it now.
    for (const [id, r] of releases) {
      if (r.owner !== w.index) continue;
      releases.delete(id);
      send(workers[r.from]!, { t: 'released', id: r.id, ok: true });
    }
    metrics.workerRestarts.inc();
    const crashLoop = nowMs() - w.startedAtMs < CRASH_LOOP_WINDOW_MS;
    const delayMs = crashLoop ? CRASH_LOOP_DELAY_MS : RESTART_DELAY_MS;
    log.error({ worker: w.index, exitCode: code, sessionsReclaimed: reclaimed, cutFrame, restartInMs: delayMs }, 'worker died: its clients resume on the other workers; starting it again');
    setTimeout(() => {
      if (stopping) return;
      spawn(w).then(
        () => log.info({ worker: w.index }, 'worker started again'),
        (err: unknown) => log.error({ worker: w.index, err }, 'worker could not be started again'),
      );
    }, delayMs).unref();
  };

  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(workers.map(async (w) => {
      const thread = w.thread;
      if (thread === null) return;
      const ended = new Promise<void>((resolve) => thread.once('exit', () => resolve()));
      send(w, { t: 'close' });
      const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), CLOSE_WAIT_MS).unref());
      if ((await Promise.race([ended, timer])) === 'late') {
        // A ws worker can be stopped from outside; a uWS one cannot without aborting the process (its exit ends it).
        if (c.transport === 'ws') await thread.terminate();
        else log.warn({ worker: w.index }, 'worker did not end in time');
      }
    }));
  };

  try {
    await spawn(workers[0]!);
    await Promise.all(workers.slice(1).map(spawn));
  } catch (err) {
    await stopAll();
    throw err;
  }

  const expirer = setInterval(() => {
    const n = slots.expire(nowMs() - o.sessionTtlMs);
    if (n > 0) metrics.sessionsExpired.inc(n);
  }, Math.min(1000, Math.max(50, o.sessionTtlMs / 4)));
  expirer.unref();

  let metricsSide: Awaited<ReturnType<typeof startMetricsServer>>;
  try {
    metricsSide = await startMetricsServer(o.metricsHost, o.metricsPort, {
      ready: () => ready && workers.some((w) => w.alive),
      render: async () => {
        // One snapshot of every worker's totals, then rendered in slices.
        const state = sum;
        state.store.loadSum(workers.map((w) => w.store));
        return { contentType: metrics.registry.contentType, body: await state.exposition.renderBytesInSlices(await metrics.registry.metrics()) };
      },
    }, log);
  } catch (err) {
    clearInterval(expirer);
    await stopAll();
    throw err;
  }
  ready = true;

  return {
    port,
    metricsPort: metricsSide.port,
    metrics,
    get connections() {
      return workers.reduce((n, w) => n + w.blockValues[MetricLayout.LIVE]!, 0);
    },
    get liveWorkers() {
      return liveWorkers();
    },
    setReady(value) {
      ready = value;
    },
    broadcastAccepting(state) {
      for (const w of workers) send(w, { t: 'accepting', state });
    },
    async drain(windowMs) {
      ready = false;
      const drained = workers.map((w) => next(w, 'drained'));
      for (const w of workers) send(w, { t: 'drain', windowMs });
      await Promise.all(drained);
    },
    async close() {
      ready = false;
      clearInterval(expirer);
      await stopAll();
      await metricsSide.close();
    },
    async reload(nextWhitelist, catalog) {
      const layout = new SeriesLayout(catalog, o.maxFrameBytes);
      const swapped: Promise<unknown>[] = [];
      const reloaded: Promise<unknown>[] = [];
      const regions = workers.map(() => new SharedArrayBuffer(layout.bytes));
      const stores = regions.map((buffer) => new SeriesStore(catalog, o.maxSampleValue, { layout, buffer }));
      for (const w of workers) {
        if (!w.alive) {
          // Nobody writes a dead worker's region: its totals are carried over here.
          stores[w.index]!.carryOver(w.store);
          continue;
        }
        swapped.push(next(w, 'swapped'));
        reloaded.push(next(w, 'reloaded'));
        send(w, { t: 'reload', whitelist: nextWhitelist, region: regions[w.index]!, windowMs: o.drainWindowMs });
      }
      await Promise.all(swapped);
      // Every worker writes its new region now: scrapes sum those from here on.
      whitelist = nextWhitelist;
      sum = new WhitelistState(catalog, o.maxSampleValue);
      workers.forEach((w, i) => {
        w.region = regions[i]!;
        w.store = stores[i]!;
      });
      await Promise.all(reloaded);
    },
    crashWorker(index) {
      const w = workers[index];
      if (w !== undefined && testHooks) send(w, { t: 'crash' });
    },
  };
}
