/**
 * The process under test, alone on its core so that its CPU and memory are its own. The parent asks
 * it to start one of:
 * - `promstream`: startServer() with a whitelist file, as `promstream serve` runs it;
 * - `decode-only`: the same transport with a handler that only decodes (the ingest ceiling);
 * - `express`: the old HTTP/JSON design (the baseline);
 * - `sink`: a TCP server that answers the upgrade and discards every byte (the generator's own ceiling).
 * and then probes it: CPU, memory (after a forced GC when asked), event-loop delay, and per event loop
 * (workers): the public connections each one polls and the CPU of each thread.
 */
import { openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { getHeapStatistics } from 'node:v8';
import { youngGenerationBytes } from './young-generation.js';
import workerThreads from 'node:worker_threads';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import pino from 'pino';
import { encodeWelcome } from '../../protocol/index.js';
import { ServerCatalog } from '../../server/core/catalog.js';
import { DEFAULTS, loadWhitelist, startServer, type ServerOptions, type Whitelist } from '../../server/index.js';
import { selectTransport } from '../../server/transport/select-transport.js';
import { UNLIMITED_SOCKETS } from '../../server/transport/types.js';
import type { TransportChoice } from '../../server/setup/options.js';
import { cpuSeconds, serveParent, type IpcRequest } from './child-process.js';
import { DecodeOnlyHandler } from './decode-only-handler.js';
import { startExpressBaseline } from './express-baseline.js';
import type { WorkerGcDone } from './worker-shim.js';

export type ServerMode = 'promstream' | 'decode-only' | 'express' | 'sink';

export interface StartRequest {
  readonly mode: ServerMode;
  readonly configPath: string;
  readonly transport: TransportChoice;
  /** Extra startServer options (limits) for promstream mode. */
  readonly serverOptions?: Record<string, unknown>;
}

export interface Started {
  readonly port: number;
  readonly metricsPort: number | null;
  readonly transport: string;
  /** Event loops serving clients (promstream --workers; 1 otherwise). */
  readonly workers: number;
}

/** Per event loop of the server process, read from /proc (Linux; empty elsewhere). */
export interface ThreadsProbe {
  /** CPU seconds of every thread of the process, by "thread-id name" (the main thread's name: main). */
  readonly threadCpuSeconds: Readonly<Record<string, number>>;
  /** When the threads were read. */
  readonly atMs: number;
}

export interface LoopsProbe extends ThreadsProbe {
  /**
   * Established TCP connections on the public port registered in each epoll instance, i.e. polled
   * by each event loop (one per worker thread; the main thread's too), largest first; zeros left out.
   */
  readonly connections: readonly number[];
}

export interface Probe {
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  /** V8 heap used: the main thread's now, plus each worker thread's as of the last forced GC. */
  readonly heapUsedBytes: number;
  /** V8 heap resident in memory (used or not; workers' as above): RSS minus this is memory outside the JS heaps (uWS, buffers, malloc). */
  readonly heapResidentBytes: number;
  /** Of it, V8's young generation (main thread now, workers as above): empty after a forced GC. */
  readonly youngGenerationBytes: number;
  /** Frames and samples counted by the decode-only handler, POSTs by the baseline, bytes by the sink. */
  readonly frames: number;
  readonly samples: number;
  readonly atMs: number;
}

let close: () => Promise<void> = async () => {};
let publicPort = 0;
let counts = (): { frames: number; samples: number } => ({ frames: 0, samples: 0 });
let eld: IntervalHistogram | null = null;

const silent = pino({ level: 'silent' });

/**
 * promstream's worker threads run under worker-shim.js (which runs the server's worker-main and answers
 * the bench's GC request): node:worker_threads' Worker is wrapped before the server starts one. The
 * server code is the same; only a forced GC and a heap reading reach into its threads.
 */
const OriginalWorker = workerThreads.Worker;
const promstreamWorkers = new Set<InstanceType<typeof OriginalWorker>>();
class BenchWorker extends OriginalWorker {
  constructor(filename: string | URL, options: workerThreads.WorkerOptions = {}) {
    const href = filename instanceof URL ? filename.href : String(filename);
    const ours = href.endsWith('/workers/worker-main.js');
    super(ours ? new URL('./worker-shim.js', import.meta.url) : filename, ours ? { ...options, argv: [...(options.argv ?? []), href] } : options);
    if (ours) {
      promstreamWorkers.add(this);
      this.once('exit', () => promstreamWorkers.delete(this));
    }
  }
}
(workerThreads as { Worker: unknown }).Worker = BenchWorker;
syncBuiltinESMExports();
/** The workers' V8 heaps as of the last forced GC (they are not read on every probe). */
let workersHeap = { usedBytes: 0, residentBytes: 0, youngBytes: 0 };

async function gcWorkers(): Promise<void> {
  const replies = await Promise.all([...promstreamWorkers].map((w) => new Promise<WorkerGcDone | null>((resolve) => {
    const timer = setTimeout(() => done(null), 10_000);
    const onExit = (): void => done(null);
    const onMessage = (m: { t?: unknown }): void => {
      if (m?.t === 'bench-gc-done') done(m as WorkerGcDone);
    };
    const done = (r: WorkerGcDone | null): void => {
      clearTimeout(timer);
      w.off('message', onMessage);
      w.off('exit', onExit);
      resolve(r);
    };
    w.on('message', onMessage);
    w.once('exit', onExit);
    w.postMessage({ t: 'bench-gc' });
  })));
  if (replies.some((r) => r === null)) throw new Error('a worker thread did not answer the GC request');
  workersHeap = { usedBytes: replies.reduce((s, r) => s + r!.heapUsedBytes, 0), residentBytes: replies.reduce((s, r) => s + r!.heapResidentBytes, 0), youngBytes: replies.reduce((s, r) => s + r!.youngGenerationBytes, 0) };
}

/** Inodes of the established TCP connections whose local port is `port`. */
function establishedOn(port: number): Set<string> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length > 9 && f[3] === '01' && f[1]!.endsWith(`:${hexPort}`)) inodes.add(f[9]!);
    }
  }
  return inodes;
}

/** CPU seconds of every thread, keyed "tid name", and when they were read; cheap (no descriptor scan). */
function threads(): ThreadsProbe {
  const threadCpuSeconds: Record<string, number> = {};
  const atMs = performance.now();
  if (process.platform !== 'linux') return { threadCpuSeconds, atMs };
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // fields after "(comm)": state is field 3, utime 14, stime 15 (clock ticks of 1/100 s)
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // keyed "tid name" (the thread's comm: node, V8's and libuv's helpers); the process's own id is the main thread
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      threadCpuSeconds[`${tid} ${Number(tid) === process.pid ? 'main' : name}`] = (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // the thread ended meanwhile
    }
  }
  return { threadCpuSeconds, atMs };
}

function loops(): LoopsProbe {
  const connections: number[] = [];
  if (process.platform !== 'linux') return { connections, ...threads() };
  const inodes = establishedOn(publicPort);
  const link = (fd: string): string | null => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return null;
    }
  };
  for (const fd of readdirSync('/proc/self/fd')) {
    if (link(fd) !== 'anon_inode:[eventpoll]') continue;
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    let n = 0;
    for (const m of info.matchAll(/tfd:\s*(\d+)/g)) {
      const inode = /^socket:\[(\d+)\]$/.exec(link(m[1]!) ?? '')?.[1];
      if (inode !== undefined && inodes.has(inode)) n++;
    }
    if (n > 0) connections.push(n);
  }
  connections.sort((a, b) => b - a);
  return { connections, ...threads() };
}

function welcomeFor(whitelist: Whitelist): Uint8Array {
  const catalog = new ServerCatalog(whitelist);
  return encodeWelcome({
    sessionId: 'bench', token: 'bench', epoch: 'bench', lastAppliedSeq: 0, resumed: false, flushIntervalMs: DEFAULTS.flushIntervalMs,
    idleTimeoutMs: DEFAULTS.idleTimeoutMs, catalog: catalog.wire,
    limits: { maxFrameBytes: DEFAULTS.maxFrameBytes, maxSamplesPerFrame: DEFAULTS.maxSamplesPerFrame, maxSampleValue: DEFAULTS.maxSampleValue, maxFramesPerSecond: DEFAULTS.maxFramesPerSecond },
  }, catalog.encodedWire);
}

async function start(req: StartRequest): Promise<Started> {
  const whitelist = await loadWhitelist([req.configPath]);
  switch (req.mode) {
    case 'promstream': {
      // One event loop unless asked: the server's own default (--workers auto) would use every CPU.
      const options = { whitelist, host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, transport: req.transport, workers: 1, ...req.serverOptions } as ServerOptions;
      const server = await startServer(options);
      close = () => server.close();
      publicPort = server.port;
      return { port: server.port, metricsPort: server.metricsPort, transport: server.transport, workers: server.workers };
    }
    case 'decode-only': {
      const handler = new DecodeOnlyHandler(welcomeFor(whitelist));
      const { name, start: startTransport } = await selectTransport(req.transport, silent);
      // Built apart from the call so that options this version of the transport does not know pass.
      const transportOptions = {
        host: '127.0.0.1', port: 0, maxPayloadBytes: DEFAULTS.maxPayloadBytes, maxBackpressureBytes: DEFAULTS.maxBackpressureBytes,
        handlers: handler, http: () => null, log: silent, httpHeadersTimeoutMs: DEFAULTS.handshakeTimeoutMs, sockets: UNLIMITED_SOCKETS,
      };
      const transport = await startTransport(transportOptions);
      counts = () => ({ frames: handler.frames, samples: handler.samples });
      close = () => transport.close();
      publicPort = transport.port;
      return { port: transport.port, metricsPort: null, transport: name, workers: 1 };
    }
    case 'express': {
      const baseline = await startExpressBaseline(whitelist);
      counts = () => ({ frames: baseline.batches(), samples: 0 });
      close = () => baseline.close();
      publicPort = baseline.port;
      return { port: baseline.port, metricsPort: baseline.port, transport: 'http', workers: 1 };
    }
    case 'sink': {
      const sink = await startSink(welcomeFor(whitelist));
      counts = () => ({ frames: 0, samples: sink.bytes() });
      close = () => new Promise((resolve) => sink.server.close(() => resolve()));
      publicPort = (sink.server.address() as AddressInfo).port;
      return { port: publicPort, metricsPort: null, transport: 'tcp', workers: 1 };
    }
  }
}

/** Answers any upgrade with 101 and a welcome frame, then reads and drops everything. */
async function startSink(welcome: Uint8Array): Promise<{ server: TcpServer; bytes: () => number }> {
  let bytes = 0;
  const frame = Buffer.concat([Buffer.from([0x82, welcome.byteLength < 126 ? welcome.byteLength : 126]), welcome.byteLength < 126 ? Buffer.alloc(0) : Buffer.from([welcome.byteLength >> 8, welcome.byteLength & 0xff]), welcome]);
  const server = createTcpServer((socket) => {
    socket.on('error', () => {});
    let upgraded = false;
    socket.on('data', (chunk) => {
      bytes += chunk.length;
      if (!upgraded && chunk.includes('\r\n\r\n')) {
        upgraded = true;
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: promstream.v1\r\n\r\n');
        socket.write(frame);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, bytes: () => bytes };
}

/**
 * RSS without a new descriptor: process.memoryUsage() opens /proc/self/stat on every call, which fails
 * (EMFILE) while a storm holds the server at its open-files limit. /proc/self/status stays open and is
 * read again from offset 0, which makes the kernel write it afresh.
 */
const statusFd = ((): number | null => {
  try {
    return openSync('/proc/self/status', 'r');
  } catch {
    return null;
  }
})();
const statusBuffer = Buffer.alloc(8192);
function rssBytes(): number {
  if (statusFd === null) return process.memoryUsage.rss();
  const text = statusBuffer.toString('latin1', 0, readSync(statusFd, statusBuffer, 0, statusBuffer.length, 0));
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(text);
  if (kb === null) throw new Error('/proc/self/status has no VmRSS line');
  return Number(kb[1]) * 1024;
}

serveParent({
  start: (req: IpcRequest) => start(req as unknown as StartRequest),
  probe: (): Probe => {
    const heap = getHeapStatistics();
    return {
      cpuSeconds: cpuSeconds(), rssBytes: rssBytes(), heapUsedBytes: heap.used_heap_size + workersHeap.usedBytes, heapResidentBytes: heap.total_physical_size + workersHeap.residentBytes,
      youngGenerationBytes: youngGenerationBytes() + workersHeap.youngBytes,
      ...counts(), atMs: performance.now(),
    };
  },
  loops: () => loops(),
  threads: () => threads(),
  gc: async () => {
    // Two passes with a turn of the loop between them: the first may leave work for finalizers.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error('start the server process with --expose-gc');
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
    await gcWorkers();
  },
  'eld-start': () => {
    eld?.disable();
    eld = monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
  },
  'eld-read': () => {
    if (eld === null) throw new Error('eld-start first');
    const ms = (ns: number): number => ns / 1e6;
    const result = { p50Ms: ms(eld.percentile(50)), p99Ms: ms(eld.percentile(99)), maxMs: ms(eld.max) };
    eld.reset();
    return result;
  },
  close: () => close(),
});
