/**
 * The process under test, alone on its core so that its CPU and memory are its own. The parent asks
 * it to start one of:
 * - `promstream`: startServer() with a whitelist file, as `promstream serve` runs it;
 * - `decode-only`: the same transport with a handler that only decodes (the ingest ceiling);
 * - `express`: the old HTTP/JSON design (the baseline);
 * - `sink`: a TCP server that answers the upgrade and discards every byte (the generator's own ceiling).
 * and then probes it: CPU, memory (after a forced GC when asked), event-loop delay.
 */
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import pino from 'pino';
import { encodeWelcome } from '../../protocol/index.js';
import { ServerCatalog } from '../../server/core/catalog.js';
import { DEFAULTS, loadWhitelist, startServer, type ServerOptions, type Whitelist } from '../../server/index.js';
import { selectTransport } from '../../server/transport/select-transport.js';
import type { TransportChoice } from '../../server/setup/options.js';
import { cpuSeconds, serveParent, type IpcRequest } from './child-process.js';
import { DecodeOnlyHandler } from './decode-only-handler.js';
import { startExpressBaseline } from './express-baseline.js';

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
}

export interface Probe {
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  /** V8 heap reserved (used or not): RSS minus this is memory outside the JS heap (uWS, buffers, malloc). */
  readonly heapTotalBytes: number;
  /** Frames and samples counted by the decode-only handler, POSTs by the baseline, bytes by the sink. */
  readonly frames: number;
  readonly samples: number;
  readonly atMs: number;
}

let close: () => Promise<void> = async () => {};
let counts = (): { frames: number; samples: number } => ({ frames: 0, samples: 0 });
let eld: IntervalHistogram | null = null;

const silent = pino({ level: 'silent' });

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
      const options = { whitelist, host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, transport: req.transport, ...req.serverOptions } as ServerOptions;
      const server = await startServer(options);
      close = () => server.close();
      return { port: server.port, metricsPort: server.metricsPort, transport: server.transport };
    }
    case 'decode-only': {
      const handler = new DecodeOnlyHandler(welcomeFor(whitelist));
      const { name, start: startTransport } = await selectTransport(req.transport, silent);
      // Built apart from the call so that options this version of the transport does not know pass.
      const transportOptions = {
        host: '127.0.0.1', port: 0, maxPayloadBytes: DEFAULTS.maxPayloadBytes, maxBackpressureBytes: DEFAULTS.maxBackpressureBytes,
        handlers: handler, http: () => null, log: silent, httpHeadersTimeoutMs: DEFAULTS.handshakeTimeoutMs, maxSockets: Infinity,
      };
      const transport = await startTransport(transportOptions);
      counts = () => ({ frames: handler.frames, samples: handler.samples });
      close = () => transport.close();
      return { port: transport.port, metricsPort: null, transport: name };
    }
    case 'express': {
      const baseline = await startExpressBaseline(whitelist);
      counts = () => ({ frames: baseline.batches(), samples: 0 });
      close = () => baseline.close();
      return { port: baseline.port, metricsPort: baseline.port, transport: 'http' };
    }
    case 'sink': {
      const sink = await startSink(welcomeFor(whitelist));
      counts = () => ({ frames: 0, samples: sink.bytes() });
      close = () => new Promise((resolve) => sink.server.close(() => resolve()));
      return { port: (sink.server.address() as AddressInfo).port, metricsPort: null, transport: 'tcp' };
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

serveParent({
  start: (req: IpcRequest) => start(req as unknown as StartRequest),
  probe: (): Probe => {
    const m = process.memoryUsage();
    return { cpuSeconds: cpuSeconds(), rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, ...counts(), atMs: performance.now() };
  },
  gc: async () => {
    // Two passes with a turn of the loop between them: the first may leave work for finalizers.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error('start the server process with --expose-gc');
    gc();
    await new Promise((r) => setTimeout(r, 50));
    gc();
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
