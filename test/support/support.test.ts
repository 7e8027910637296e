import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeWithPrometheus, startPrometheus, type RunningPrometheus } from './prometheus.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { waitFor } from './wait-for.js';

/** A client socket that records what it receives and whether it has closed. */
interface TestClient {
  socket: net.Socket;
  received(): string;
  closed(): boolean;
}

async function connectClient(port: number): Promise<TestClient> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  let received = '';
  let closed = false;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
  socket.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => received, closed: () => closed };
}

describe('startTcpProxy', () => {
  let echo: net.Server;
  let echoSockets: Set<net.Socket>;
  let proxy: TcpProxy;

  beforeEach(async () => {
    echoSockets = new Set();
    echo = net.createServer((socket) => {
      echoSockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => echoSockets.delete(socket));
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const address = echo.address();
    if (address === null || typeof address === 'string') throw new Error('echo server has no TCP address');
    proxy = await startTcpProxy({ host: '127.0.0.1', port: address.port });
  });

  afterEach(async () => {
    await proxy.close();
    for (const socket of echoSockets) socket.destroy();
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  it('passes bytes both ways', async () => {
    const client = await connectClient(proxy.port);
    client.socket.write('hello');
    await waitFor(() => client.received() === 'hello', { what: 'the echo of hello' });
    expect(proxy.connections).toBe(1);
    client.socket.destroy();
    await waitFor(() => proxy.connections === 0 && echoSockets.size === 0, { what: 'the pair to close after the client left' });
  });

  it('passes a clean end from the client on to the server', async () => {
    const client = await connectClient(proxy.port);
    client.socket.end('bye');
    await waitFor(() => client.closed(), { what: 'the client socket to close' });
    expect(client.received()).toBe('bye');
    await waitFor(() => echoSockets.size === 0 && proxy.connections === 0, { what: 'the server side to close' });
  });

  it('cutAll closes both ends of every pair and still accepts new connections', async () => {
    const first = await connectClient(proxy.port);
    const second = await connectClient(proxy.port);
    first.socket.write('a');
    second.socket.write('b');
    await waitFor(() => first.received() === 'a' && second.received() === 'b', { what: 'both echoes' });
    expect(echoSockets.size).toBe(2);

    proxy.cutAll();
    expect(proxy.connections).toBe(0);
    await waitFor(() => first.closed() && second.closed(), { what: 'both clients to see the cut' });
    await waitFor(() => echoSockets.size === 0, { what: 'the server to see both connections close' });

    const third = await connectClient(proxy.port);
    third.socket.write('c');
    await waitFor(() => third.received() === 'c', { what: 'the echo through a connection made after the cut' });
  });

  it('freeze stops forwarding but keeps the sockets open; unfreeze delivers what was held', async () => {
    const client = await connectClient(proxy.port);
    client.socket.write('1');
    await waitFor(() => client.received() === '1', { what: 'the echo before the freeze' });

    proxy.freeze();
    client.socket.write('2');
    // A negative can only be shown with a deadline: for 300 ms, the echo must not come back.
    await expect(waitFor(() => client.received() !== '1', { what: 'a forwarded byte', timeoutMs: 300 })).rejects.toThrow(
      /timed out .* waiting for a forwarded byte/,
    );
    expect(client.closed()).toBe(false);
    expect(proxy.connections).toBe(1);
    expect(echoSockets.size).toBe(1);

    proxy.unfreeze();
    await waitFor(() => client.received() === '12', { what: 'the held byte after unfreeze' });
  });

  it('a connection made while frozen does not reach the server until unfreeze', async () => {
    proxy.freeze();
    const client = await connectClient(proxy.port);
    client.socket.write('x');
    await expect(waitFor(() => echoSockets.size > 0, { what: 'a server-side connection', timeoutMs: 300 })).rejects.toThrow();
    expect(proxy.connections).toBe(1);

    proxy.unfreeze();
    await waitFor(() => client.received() === 'x', { what: 'the echo after unfreeze' });
    expect(echoSockets.size).toBe(1);
  });

  it('close stops listening and closes open pairs', async () => {
    const client = await connectClient(proxy.port);
    await proxy.close();
    await waitFor(() => client.closed(), { what: 'the client to be closed by proxy.close()' });
    await expect(connectClient(proxy.port)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('closes the client when the upstream refuses', async () => {
    const refused = await startTcpProxy({ host: '127.0.0.1', port: await unusedPort() });
    try {
      const client = await connectClient(refused.port);
      await waitFor(() => client.closed(), { what: 'the client to be closed after ECONNREFUSED upstream' });
      await waitFor(() => refused.connections === 0, { what: 'the pair to be forgotten' });
    } finally {
      await refused.close();
    }
  });
});

describe('startTcpProxy with a one-way delay', () => {
  const DELAY_MS = 150;
  let upstream: net.Server;
  let upstreamSockets: Set<net.Socket>;
  /** What the upstream does with each connection; echo unless a test says otherwise. */
  let onUpstream: (socket: net.Socket) => void;
  let proxy: TcpProxy | undefined;

  beforeEach(async () => {
    upstreamSockets = new Set();
    onUpstream = (socket) => socket.pipe(socket);
    upstream = net.createServer({ allowHalfOpen: true }, (socket) => {
      upstreamSockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => upstreamSockets.delete(socket));
      onUpstream(socket);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    for (const socket of upstreamSockets) socket.destroy();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const startProxy = async (options: { delayMs: number; maxDelayedBytes?: number }): Promise<TcpProxy> => {
    const address = upstream.address();
    if (address === null || typeof address === 'string') throw new Error('upstream has no TCP address');
    proxy = await startTcpProxy({ host: '127.0.0.1', port: address.port }, options);
    return proxy;
  };

  it('holds every byte for the delay in each direction, in order: an echo costs two delays', async () => {
    const p = await startProxy({ delayMs: DELAY_MS });
    const client = await connectClient(p.port);
    const sentAt = performance.now();
    client.socket.write('ab');
    client.socket.write('cd');
    await waitFor(() => client.received() === 'abcd', { what: 'the delayed echo' });
    expect(p.delayedBytes).toBe(0);
    // Timers never fire early; the bound below is the one the proxy promises.
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(2 * DELAY_MS);
    expect(p.peakDelayedBytes).toBeGreaterThan(0);
  });

  it('passes a FIN on after the bytes sent before it, and the close after what the upstream still sent', async () => {
    onUpstream = (socket) => {
      socket.once('data', (chunk: Buffer) => {
        // last words, then the upstream closes at once: the client must still get them
        socket.end(`got ${chunk.toString('utf8')}`, () => socket.destroy());
      });
    };
    const p = await startProxy({ delayMs: DELAY_MS });
    const client = await connectClient(p.port);
    client.socket.end('bye');
    await waitFor(() => client.closed(), { what: 'the client socket to close' });
    expect(client.received()).toBe('got bye');
    await waitFor(() => p.connections === 0 && upstreamSockets.size === 0, { what: 'the pair to be forgotten' });
  });

  it('keeps its delay line bounded: a fast writer is paused, and every byte still arrives', async () => {
    let counted = 0;
    onUpstream = (socket) => socket.on('data', (chunk: Buffer) => (counted += chunk.length));
    const maxDelayedBytes = 16 * 1024;
    const p = await startProxy({ delayMs: 20, maxDelayedBytes });
    const client = await connectClient(p.port);
    const total = 2 * 1024 * 1024;
    const block = Buffer.alloc(64 * 1024, 7);
    for (let sent = 0; sent < total; sent += block.length) client.socket.write(block);
    await waitFor(() => counted === total, { what: 'all 2 MiB through the delay line', timeoutMs: 20_000 });
    // At most the bound plus the one read chunk that crossed it (a socket reads up to 64 KiB at a time).
    expect(p.peakDelayedBytes).toBeGreaterThanOrEqual(maxDelayedBytes);
    expect(p.peakDelayedBytes).toBeLessThanOrEqual(maxDelayedBytes + 64 * 1024);
  });

  it('freeze holds the delay line too; unfreeze delivers it', async () => {
    let got = '';
    onUpstream = (socket) => socket.on('data', (chunk: Buffer) => (got += chunk.toString('utf8')));
    const p = await startProxy({ delayMs: DELAY_MS });
    const client = await connectClient(p.port);
    client.socket.write('1');
    await waitFor(() => got === '1', { what: 'the byte before the freeze' });
    client.socket.write('2');
    // '2' is read at once and waits in the client→upstream line when the freeze comes
    await waitFor(() => p.delayedBytes === 1, { what: 'the byte in the delay line' });
    p.freeze();
    await expect(waitFor(() => got !== '1', { what: 'a forwarded byte', timeoutMs: 3 * DELAY_MS })).rejects.toThrow(
      /timed out .* waiting for a forwarded byte/,
    );
    expect(p.delayedBytes).toBe(1);
    p.unfreeze();
    await waitFor(() => got === '12', { what: 'the held byte after unfreeze' });
    expect(p.delayedBytes).toBe(0);
  });

  it('refuses a delay or bound that is not a number it can use', async () => {
    await expect(startProxy({ delayMs: -1 })).rejects.toThrow(/delayMs must be finite and >= 0/);
    await expect(startProxy({ delayMs: 10, maxDelayedBytes: 0 })).rejects.toThrow(/maxDelayedBytes must be a positive integer/);
  });
});

describe('waitFor', () => {
  it('resolves with the first truthy value', async () => {
    let calls = 0;
    const value = await waitFor(() => (++calls >= 3 ? { calls } : undefined), { what: 'the third call', intervalMs: 1 });
    expect(value).toEqual({ calls: 3 });
  });

  it('keeps polling through errors and rejected promises', async () => {
    let calls = 0;
    const value = await waitFor(
      async () => {
        calls += 1;
        if (calls < 3) throw new Error('not up yet');
        return 'up';
      },
      { what: 'the service', intervalMs: 1 },
    );
    expect(value).toBe('up');
  });

  it('times out naming what it waited for and the last value seen', async () => {
    await expect(waitFor(() => 0, { what: 'the counter to move', timeoutMs: 50, intervalMs: 5 })).rejects.toThrow(
      /timed out after 50 ms .*waiting for the counter to move; last value: 0/,
    );
  });

  it('times out naming the last error seen', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('connect ECONNREFUSED');
        },
        { what: 'the server', timeoutMs: 50, intervalMs: 5 },
      ),
    ).rejects.toThrow(/waiting for the server; last error: connect ECONNREFUSED/);
  });

  it('gives up on a probe that never settles', async () => {
    const started = Date.now();
    await expect(waitFor(() => new Promise<boolean>(() => {}), { what: 'a hung probe', timeoutMs: 100 })).rejects.toThrow(
      /waiting for a hung probe; the probe never answered/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describeWithPrometheus('startPrometheus', () => {
  let target: http.Server;
  let prometheus: RunningPrometheus;

  beforeAll(async () => {
    target = http.createServer((request, response) => {
      if (request.url !== '/metrics') {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      response.end('# TYPE x_total counter\nx_total 42\n');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const address = target.address();
    if (address === null || typeof address === 'string') throw new Error('metrics server has no TCP address');
    prometheus = await startPrometheus({ targets: [`127.0.0.1:${address.port}`] });
  });

  afterAll(async () => {
    // Either may be missing when beforeAll failed half-way.
    await prometheus?.stop();
    if (target) await new Promise<void>((resolve) => target.close(() => resolve()));
  });

  it('scrapes the value the target serves', async () => {
    expect(await prometheus.waitForValue('x_total', (v) => v === 42)).toBe(42);
    expect(await prometheus.waitForValue('up', (v) => v === 1)).toBe(1);
    await waitFor(() => prometheus.targetsHealthy(), { what: 'every target healthy' });
    const [sample] = await prometheus.query('x_total');
    expect(sample?.metric).toMatchObject({ __name__: 'x_total', job: 'promstream' });
  });

  it('waitForValue accepts a wanted value of 0 and refuses an ambiguous expression', async () => {
    expect(await prometheus.waitForValue('absent(nonexistent_metric) - 1', (v) => v === 0)).toBe(0);
    await expect(prometheus.waitForValue('{__name__=~"x_total|up"}', () => true)).rejects.toThrow(/matched 2 series; wrap it in sum\(\)/);
  });

  it('query throws on a bad expression with Prometheus own error', async () => {
    await expect(prometheus.query('sum(')).rejects.toThrow(/bad_data/);
  });

  it('start fails with the captured output when the config is refused', async () => {
    await expect(startPrometheus({ targets: ['not/a-host'] })).rejects.toThrow(/not a valid hostname/);
  });
});

/** A port on which nothing listens (free at the time of asking; good enough for a refused connection). */
async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}
