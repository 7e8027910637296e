/**
 * The SIGTERM drain as a slow reader meets it: its 1012 sits behind what the server already queued
 * for it, and the drain must let it out before tearing the socket down (review defect 2).
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { afterEach, expect, it } from 'vitest';
import { SUBPROTOCOL, encodeHello } from '../../protocol/index.js';
import type { Whitelist } from '../../server/config/types.js';
import { startServer, type RunningServer } from '../../server/index.js';
import { scrape, valueOf } from '../support/scrape.js';
import { describeEachTransport } from '../support/server-harness.js';
import { waitFor } from '../support/wait-for.js';

/**
 * A catalogue of ~7 MB, so that one welcome fills the loopback socket buffers of a peer that does not
 * read and the rest waits in the server's own send queue (this machine's loopback buffers take ~4 MB; 2 MB
 * was not enough to show the defect).
 */
const BIG_WHITELIST: Whitelist = {
  files: ['big'],
  sessionLabels: [],
  metrics: [{
    name: 'wide_total', help: 'many label values', type: 'counter', file: 'big', buckets: [],
    labels: [{ name: 'v', allowedValues: Array.from({ length: 500_000 }, (_, i) => `value-${String(i).padStart(6, "0")}`) }],
  }],
};

describeEachTransport('drain over %s', (transport) => {
  let server: RunningServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('a peer still reading its backlog when the drain starts gets its 1012, not a reset', async () => {
    const s = (server = await startServer({
      whitelist: BIG_WHITELIST, transport, host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, maxBackpressureBytes: 16 * 1024 * 1024,
    }));
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/ws`, [SUBPROTOCOL], { maxPayload: 64 * 1024 * 1024 });
    ws.on('error', () => {});
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', () => reject(new Error('closed before open')));
    });
    // ws keeps its socket private; pausing it stops reads, so the welcome backs up in the server.
    const socket = (ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    ws.send(encodeHello({}, null));
    // Welcomed: the welcome is queued behind what the peer does not read.
    await waitFor(async () => valueOf(await scrape(s.metricsPort), 'connected_clients') === 1, { what: 'the peer welcomed' });
    const drained = s.drain(0);
    // The slow reader catches up a little later, well within the close grace.
    setTimeout(() => socket.resume(), 300);
    expect(await closed).toEqual({ code: 1012, reason: 'server restarting; reconnect and resume' });
    await drained;
    expect(s.connections).toBe(0);
  });
});
