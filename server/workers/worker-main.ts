/**
 * One worker thread of `promstream serve --workers N`: its own transport on the shared public port, its
 * own connection handler, series region and metric block; sessions in the host's slot table. The main
 * thread (supervisor.ts) serves /metrics from every worker's memory and restarts a worker that dies.
 */
import { parentPort, workerData } from 'node:worker_threads';
import pino from 'pino';
import { ServerCatalog } from '../core/catalog.js';
import { ConnectionHandler } from '../core/connection-handler.js';
import { SharedConnectionCounts, SharedSocketBudget } from '../core/connection-counts.js';
import { LiveWhitelist } from '../core/live-whitelist.js';
import { sweepIntervalMs } from '../core/liveness.js';
import { SlotTable } from '../core/slot-table.js';
import { publicRoutes } from '../http/public-routes.js';
import { watchEventLoop } from '../scrape/loop-stats.js';
import { MetricBlock, MetricLayout } from '../scrape/metric-block.js';
import { resolveOptions } from '../setup/options.js';
import { transportStarter } from '../transport/select-transport.js';
import { hostClock, type FromWorker, type ToWorker, type WorkerData } from './messages.js';

const data = workerData as WorkerData;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);

const log = pino({ level: data.logLevel, base: null, timestamp: false }, { write: (line: string) => post({ t: 'log', line }) });
const o = resolveOptions({ ...data.options, logger: log });
const limits = { ...o, maxConnections: data.maxConnections };
const nowMs = hostClock(data.clockZeroMs);
const catalog = new ServerCatalog(o.whitelist);
const whitelist = new LiveWhitelist(catalog, o.maxSampleValue, { maxFrameBytes: o.maxFrameBytes, region: data.region });
const block = new MetricBlock(new MetricLayout(catalog.sessionLabels), data.block);
const slots = new SlotTable(data.slots, data.index);
const counts = new SharedConnectionCounts(data.counts, data.workers, data.index, data.maxConnections);

let nextAsk = 1;
const asks = new Map<number, { resolve: () => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
/** How long a worker waits for another to give up a session before the client is told to try again (1013). */
const RELEASE_TIMEOUT_MS = 2_000;

const handler = new ConnectionHandler({
  whitelist, metrics: block, slots, worker: data.index, counts, options: limits, epoch: data.epoch, log, nowMs,
  askRelease: (owner, slot) =>
    new Promise<void>((resolve, reject) => {
      const id = nextAsk++;
      const timer = setTimeout(() => {
        asks.delete(id);
        reject(new Error('no answer'));
      }, RELEASE_TIMEOUT_MS);
      asks.set(id, { resolve, reject, timer });
      post({ t: 'askRelease', id, owner, slot });
    }),
});

const start = await transportStarter(data.transport);
const transport = await start({
  host: o.host, port: data.port, maxPayloadBytes: o.maxPayloadBytes, maxBackpressureBytes: o.maxBackpressureBytes,
  handlers: handler, http: publicRoutes(log, null, o.staticRoutes), log, httpHeadersTimeoutMs: o.httpHeadersTimeoutMs,
  sockets: new SharedSocketBudget(data.sockets, data.index, data.maxSockets), reusePort: true, ...(o.tls === undefined ? {} : { tls: o.tls }),
});
// A uWS App still open when its thread ends takes the whole process down (SIGABRT): close it on the way out.
process.on('exit', () => transport.abortNow());
const stopLoopWatch = watchEventLoop(block);
const sweeper = setInterval(() => handler.sweep(), sweepIntervalMs(o));

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'release':
      handler.releaseSession(m.slot);
      post({ t: 'released', id: m.id });
      return;
    case 'released': {
      const ask = asks.get(m.id);
      if (ask === undefined) return;
      asks.delete(m.id);
      clearTimeout(ask.timer);
      if (m.ok) ask.resolve();
      else ask.reject(new Error('the owner is gone'));
      return;
    }
    case 'accepting':
      if (m.state === 'stop') transport.stopAccepting();
      else if (m.state === 'pause') transport.pauseAccepting();
      else transport.resumeAccepting();
      return;
    case 'drain':
      void (async () => {
        transport.stopAccepting();
        await handler.drain(m.windowMs);
        post({ t: 'drained' });
      })();
      return;
    case 'reload': {
      const done = handler.replaceCatalog(new ServerCatalog(m.whitelist), m.windowMs, m.region);
      // The new store holds this worker's totals from this tick on: the main thread may sum it now.
      post({ t: 'swapped' });
      void done.then((seriesKept) => post({ t: 'reloaded', seriesKept }));
      return;
    }
    case 'close':
      void (async () => {
        clearInterval(sweeper);
        stopLoopWatch();
        await transport.close();
        post({ t: 'closed' });
        port.close();
      })();
      return;
    case 'crash':
      if (!data.testHooks) return;
      setImmediate(() => {
        throw new Error('test hook: worker crash');
      });
      return;
  }
});

post({ t: 'listening', port: transport.port });
