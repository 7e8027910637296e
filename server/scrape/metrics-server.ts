import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { limitRequestsInFlight } from '../transport/node-http-limits.js';

export interface MetricsEndpoints {
  /** Full exposition text (or its UTF-8 bytes) and its content type. */
  render(): Promise<{ contentType: string; body: string | Uint8Array }>;
  ready(): boolean;
}

/**
 * Concurrent callers share renders: the first starts one; whoever asks while it runs waits for the
 * next one, which starts when it ends and is shared by all of them (it sees everything applied
 * before they asked, which the running one might not). So however many scrapes arrive at once, at
 * most two renders run or wait and at most two bodies are held (besides the ones still being sent),
 * rather than one of each per request: 3 000 pipelined scrapes would otherwise be 3 000 renders.
 */
export function coalesce<T>(render: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | null = null;
  let next: Promise<T> | null = null;
  const start = (): Promise<T> => {
    const current: Promise<T> = Promise.resolve()
      .then(render)
      .finally(() => {
        if (running === current) running = null;
      });
    running = current;
    return current;
  };
  return () => {
    if (running === null) return start();
    next ??= running.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      next = null;
      return start();
    });
    return next;
  };
}

/** The private side: /metrics for Prometheus, /healthz (process up), /readyz (accepting clients). */
export interface MetricsServer {
  readonly server: Server;
  readonly port: number;
  /** Stops listening and ends every connection, scrapes in progress included. */
  close(): Promise<void>;
}

export async function startMetricsServer(host: string, port: number, endpoints: MetricsEndpoints, log: Logger): Promise<MetricsServer> {
  const render = coalesce(() => endpoints.render());
  const server = createServer(limitRequestsInFlight((req, res) => {
    // A scrape whose connection went while it rendered (or was destroyed for pipelining) writes nowhere.
    res.on('error', (err) => log.debug({ err }, 'metrics response error'));
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      render().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => {
          log.error({ err }, 'rendering /metrics failed');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('error rendering metrics\n');
        },
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const ready = endpoints.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
    }
  }, log));
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'metrics server error'));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
