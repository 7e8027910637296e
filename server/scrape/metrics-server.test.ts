import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { MAX_REQUESTS_IN_FLIGHT } from '../transport/node-http-limits.js';
import { waitFor } from '../../test/support/wait-for.js';
import { coalesce, startMetricsServer } from './metrics-server.js';

const log = pino({ level: 'silent' });

/** A render the test finishes by hand: `renders` counts the calls, `finish(i)` resolves the i-th. */
function heldRender(): {
  render: () => Promise<{ contentType: string; body: string }>;
  renders: () => number;
  finish: (i: number) => void;
  finishAll: () => void;
} {
  const finishers: Array<() => void> = [];
  return {
    render: () => {
      const n = finishers.length + 1;
      return new Promise((resolve) => finishers.push(() => resolve({ contentType: 'text/plain', body: `render ${n}\n` })));
    },
    renders: () => finishers.length,
    finish: (i) => finishers[i - 1]!(),
    // resolving twice is a no-op
    finishAll: () => finishers.forEach((f) => f()),
  };
}

describe('coalesce', () => {
  it('callers during a render share the next one; callers after it start afresh', async () => {
    const held = heldRender();
    const render = coalesce(held.render);
    const first = render();
    const during = [render(), render(), render()];
    await waitFor(() => held.renders() === 1, { what: 'the first render to start' });
    held.finish(1);
    expect((await first).body).toBe('render 1\n');
    await waitFor(() => held.renders() === 2, { what: 'the shared second render to start' });
    held.finish(2);
    expect((await Promise.all(during)).map((r) => r.body)).toEqual(['render 2\n', 'render 2\n', 'render 2\n']);
    const after = render();
    await waitFor(() => held.renders() === 3, { what: 'a fresh render' });
    held.finish(3);
    expect((await after).body).toBe('render 3\n');
  });

  it('a failed render fails its callers only; the next callers get a fresh one', async () => {
    let calls = 0;
    const render = coalesce(async () => {
      calls += 1;
      if (calls === 1) throw new Error('boom');
      return calls;
    });
    const failed = render();
    const waiting = render();
    await expect(failed).rejects.toThrow('boom');
    expect(await waiting).toBe(2);
    expect(calls).toBe(2);
  });
});

describe('startMetricsServer', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(render: () => Promise<{ contentType: string; body: string }>): Promise<number> {
    const { server, port } = await startMetricsServer('127.0.0.1', 0, { render, ready: () => true }, log);
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
    return port;
  }

  /** Writes `count` pipelined GET /metrics on one connection and collects what comes back until it closes. */
  async function pipelined(port: number, count: number): Promise<{ text: () => string; closed: Promise<void> }> {
    const socket = connect(port, '127.0.0.1');
    cleanups.push(() => socket.destroy());
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (text += c));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(count));
    return { text: () => text, closed };
  }

  it(`${MAX_REQUESTS_IN_FLIGHT} pipelined scrapes cost two renders and are all answered, in order`, async () => {
    const held = heldRender();
    const port = await start(held.render);
    const c = await pipelined(port, MAX_REQUESTS_IN_FLIGHT);
    await waitFor(() => held.renders() === 1, { what: 'the first render' });
    held.finish(1);
    await waitFor(() => held.renders() === 2, { what: 'the shared second render' });
    held.finish(2);
    await waitFor(() => (c.text().match(/render \d\n/g) ?? []).length === MAX_REQUESTS_IN_FLIGHT, { what: 'every answer' });
    expect(c.text().match(/render \d\n/g)).toEqual(['render 1\n', ...Array<string>(MAX_REQUESTS_IN_FLIGHT - 1).fill('render 2\n')]);
    expect(held.renders()).toBe(2);
  });

  it(`one more than ${MAX_REQUESTS_IN_FLIGHT} in flight on a connection: it is destroyed; other connections are served`, async () => {
    const held = heldRender();
    const port = await start(held.render);
    const c = await pipelined(port, MAX_REQUESTS_IN_FLIGHT + 1);
    await c.closed;
    expect(c.text()).toBe('');
    const next = await pipelined(port, 1);
    await waitFor(
      () => {
        held.finishAll();
        return /render \d\n/.test(next.text());
      },
      { what: 'the other connection answered' },
    );
    expect(next.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});
