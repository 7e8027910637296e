import WebSocket from 'ws';
import { describe, it } from 'vitest';
import { startServer, type RunningServer } from '../../server/index.js';
import type { ServerOptions } from '../../server/setup/options.js';
import type { Whitelist } from '../../server/config/types.js';
import { SUBPROTOCOL, decodeServerFrame, encodeHello, type Welcome, parseServerMessage } from '../../protocol/index.js';

import { describeWithUws, itWithUws } from './uws-availability.js';

export const TRANSPORTS = ['uws', 'ws'] as const;
export type TestTransport = (typeof TRANSPORTS)[number];

/**
 * `describe.each(TRANSPORTS)`, with the uws suite skipped loudly where uws-availability.ts says uWS
 * cannot run here (and failing under CI unless that is declared). `%s` in the name is the transport.
 */
export function describeEachTransport(name: string, body: (transport: TestTransport) => void): void {
  for (const transport of TRANSPORTS) {
    const define = transport === 'uws' ? describeWithUws() : describe;
    define(name.replaceAll('%s', transport), () => body(transport));
  }
}

/** `it.each(TRANSPORTS)` with the same rule as describeEachTransport. */
export function itEachTransport(name: string, body: (transport: TestTransport) => Promise<void>, timeoutMs?: number): void {
  for (const transport of TRANSPORTS) {
    const define = transport === 'uws' ? itWithUws() : it;
    define(name.replaceAll('%s', transport), () => body(transport), timeoutMs);
  }
}

/** The whitelist the end-to-end tests use. */
export const TEST_WHITELIST: Whitelist = {
  files: ['test-whitelist'],
  sessionLabels: [{ name: 'app', allowedValues: ['student', 'teacher'] }],
  metrics: [
    { name: 'usage_total', help: 'feature use', type: 'counter', labels: [{ name: 'feature', allowedValues: ['a', 'b', 'c'] }], buckets: [], file: 't' },
    { name: 'rt_seconds', help: 'response time', type: 'histogram', labels: [{ name: 'host', allowedValues: ['x', 'y'] }], buckets: [0.1, 0.5, 1], file: 't' },
    { name: 'presenting', help: 'tabs presenting', type: 'gauge', labels: [], buckets: [], file: 't' },
  ],
};

/** TEST_WHITELIST as a whitelist file spells it, for tests that start the real CLI with --config. */
export const TEST_WHITELIST_FILE = {
  allowedMetrics: TEST_WHITELIST.metrics.map(({ name, help, type, labels, buckets }) => ({ name, help, type, labels, ...(type === 'histogram' ? { buckets } : {}) })),
  sessionLabels: TEST_WHITELIST.sessionLabels,
};

export function startTestServer(transport: 'uws' | 'ws', options: Partial<ServerOptions> = {}): Promise<RunningServer> {
  return startServer({ whitelist: TEST_WHITELIST, host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, transport, ...options });
}

export interface RawClient {
  readonly ws: WebSocket;
  /** Server messages received so far, decoded. */
  readonly messages: ReturnType<typeof parseServerMessage>[];
  readonly closed: Promise<{ code: number; reason: string }>;
  send(bytes: Uint8Array | string): void;
  /** Sends hello and waits for the welcome. */
  hello(labels?: Record<string, string>, resume?: { sessionId: string; token: string; epoch: string } | null): Promise<Welcome>;
  /** Waits until a message satisfying `match` has arrived. */
  next<T>(match: (m: ReturnType<typeof parseServerMessage>) => T | undefined, timeoutMs?: number): Promise<T>;
}

/** A hand-driven protocol peer for tests that send what no well-behaved client would. */
export async function rawClient(port: number, { protocols = [SUBPROTOCOL] as string[], query = '', headers = {} as Record<string, string> } = {}): Promise<RawClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, protocols, { headers });
  ws.on('error', () => {});
  const messages: ReturnType<typeof parseServerMessage>[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    messages.push(parseServerMessage(decodeServerFrame(data)));
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('close', () => reject(new Error('closed before open')));
  });
  const client: RawClient = {
    ws, messages, closed,
    send: (bytes) => ws.send(bytes),
    next: (match, timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        let seen = 0;
        const check = (): void => {
          for (; seen < messages.length; seen++) {
            const r = match(messages[seen]!);
            if (r !== undefined) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(r);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error('expected server message did not arrive'));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    async hello(labels = { app: 'student' }, resume = null) {
      ws.send(encodeHello(labels, resume));
      return client.next((m) => (m.type === 1 ? m : undefined));
    },
  };
  return client;
}

