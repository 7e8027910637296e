/**
 * Test fixture for the per-frame core (not part of the build: *.fixture.ts): a ConnectionHandler with
 * its real catalogue, store and metrics behind Peers that record what the handler asked the socket to
 * do, on a clock the test moves. Unit tests of the core drive it frame by frame, without sockets.
 */
import pino from 'pino';
import { SUBPROTOCOL, type ServerCloseReason } from '../../protocol/index.js';
import type { Whitelist } from '../config/types.js';
import type { SelfMetrics } from '../scrape/self-metrics.js';
import { oneLoopState } from '../setup/one-loop.js';
import { resolveOptions, type ServerOptions } from '../setup/options.js';
import type { Peer, UpgradeRequest } from '../transport/types.js';
import type { ClientConnection } from './client-connection.js';
import { ConnectionHandler } from './connection-handler.js';
import { LiveWhitelist } from './live-whitelist.js';

export const FIXTURE_WHITELIST: Whitelist = {
  files: ['fixture'],
  sessionLabels: [{ name: 'app', allowedValues: ['student', 'teacher'] }],
  metrics: [
    { name: 'usage_total', help: 'feature use', type: 'counter', labels: [{ name: 'feature', allowedValues: ['a', 'b', 'c'] }], buckets: [], file: 'fixture' },
    { name: 'rt_seconds', help: 'response time', type: 'histogram', labels: [{ name: 'host', allowedValues: ['x', 'y'] }], buckets: [0.1, 0.5, 1], file: 'fixture' },
    { name: 'presenting', help: 'tabs presenting', type: 'gauge', labels: [], buckets: [], file: 'fixture' },
  ],
};

/** What the handler asked one socket to do, in order. */
export class RecordingPeer implements Peer {
  readonly sent: Uint8Array[] = [];
  closed: { code: number; reason: string } | null = null;
  terminated = false;
  pings = 0;
  send(bytes: Uint8Array): void {
    this.sent.push(Uint8Array.prototype.slice.call(bytes));
  }
  close(code: number, reason: string): void {
    this.closed ??= { code, reason };
  }
  terminate(): void {
    this.terminated = true;
  }
  ping(): void {
    this.pings++;
  }
}

export const upgradeRequest = (over: Partial<UpgradeRequest> = {}): UpgradeRequest => ({
  path: '/ws', query: '', origin: undefined, protocols: [SUBPROTOCOL], remoteAddress: '127.0.0.1', forwardedFor: undefined, ...over,
});

export interface HandlerFixture {
  readonly handler: ConnectionHandler;
  readonly metrics: SelfMetrics;
  readonly whitelist: LiveWhitelist;
  /** The clock the handler reads, in ms; move it with `advance`. */
  readonly clock: { now: number };
  advance(ms: number): void;
  /** A connection opened the way the transport opens one; its peer records. */
  open(request?: Partial<UpgradeRequest>, protocol?: string | null): { conn: ClientConnection; peer: RecordingPeer };
  /** The transport reporting the socket gone. */
  gone(conn: ClientConnection, code?: number, byTransport?: ServerCloseReason | null): void;
  /** A sample value of the self metrics, e.g. metric('promstream_closes_total', { code: '4100' }). */
  metric(name: string, labels?: Readonly<Record<string, string>>): Promise<number>;
}

/**
 * `defer`: how the handler's owed acks are sent; at once by default (each ack inside the call that
 * applied its frame), or by a queue the test runs itself to see frames that arrived together.
 */
export function handlerFixture(options: Partial<ServerOptions> = {}, defer: (send: () => void) => void = (send) => send()): HandlerFixture {
  const o = resolveOptions({ whitelist: FIXTURE_WHITELIST, logger: pino({ level: 'silent' }), ...options });
  const whitelist = new LiveWhitelist(o.whitelist, o.maxSampleValue);
  const { block, slots, metrics } = oneLoopState(whitelist.current.catalog.sessionLabels, o.maxSessions, 'test');
  const clock = { now: 1_000 };
  const handler = new ConnectionHandler({
    whitelist, metrics: block, slots, worker: 0, options: o, epoch: 'E', log: o.logger, nowMs: () => clock.now,
    onExpired: (n) => metrics.sessionsExpired.inc(n), defer,
  });
  return {
    handler, metrics, whitelist, clock,
    advance: (ms) => {
      clock.now += ms;
    },
    open(request = {}, protocol = SUBPROTOCOL) {
      const peer = new RecordingPeer();
      return { conn: handler.onOpen(peer, upgradeRequest(request), protocol), peer };
    },
    gone(conn, code = 1006, byTransport = null) {
      handler.onClose(conn, code, '', byTransport);
    },
    async metric(name, labels = {}) {
      const metric = metrics.registry.getSingleMetric(name);
      if (metric === undefined) throw new Error(`no metric ${name}`);
      const { values } = await metric.get();
      const wanted = Object.entries(labels);
      const hit = values.find((v) => v.labels !== undefined && wanted.every(([k, x]) => String(v.labels[k]) === x) && Object.keys(v.labels).length === wanted.length);
      return hit?.value ?? 0;
    },
  };
}
