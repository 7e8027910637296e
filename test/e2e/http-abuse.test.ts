/**
 * Hostile HTTP against the real process (`bin/promstream.js serve`), on both transports, over
 * 127.0.0.1 only: pipelined requests that are never read (the issue "Hold under hostile traffic",
 * item 1) and ambiguous or unsupported framing (item 8). Every attack is bounded in count and time;
 * waits are for conditions (a socket's TCP state, a process's memory), never for the clock alone.
 *
 * Memory is the server's resident set (VmRSS of its PID), sampled while the attack runs. The bound,
 * 64 MiB of growth, is an eighth of the pod's 512 MiB limit: a fresh process is ~70 MiB, and before
 * these fixes one such connection alone cost the uWS server +330 MiB (four, +1.1 GiB in 5 s) and 3 000
 * pipelined scrapes +340 MiB on either transport; what is left after them is a few MiB of request
 * objects parsed from one read, which the bound leaves room for many times over.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../client/node.js';
import { MAX_REQUESTS_IN_FLIGHT } from '../../server/transport/node-http-limits.js';
import { scrape, valueOf } from '../support/scrape.js';
import { TRANSPORTS } from '../support/server-harness.js';
import { killAllClis, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';

/** See the file comment. */
const RSS_GROWTH_BOUND_MIB = 64;
/**
 * An offender must be closed well before uWS's own fixed HTTP clock (8–12 s, uws-transport.ts)
 * would drop it anyway, so this is what tells "closed for what it did" from "timed out".
 */
const CLOSED_WITHIN_MS = 5_000;

/** Run after each test whatever happened: samplers stopped, clients closed, sockets destroyed, servers killed. */
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await killAllClis();
});

/** The server's resident set in MiB, from /proc (Linux, like the rest of the suite's process checks). */
function rssMiB(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (kib === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(kib[1]) / 1024;
}

/** Samples a process's RSS every 10 ms until stopped; the peak growth over the first sample. */
function watchRss(pid: number): { stop(): { baseMiB: number; growthMiB: number } } {
  const baseMiB = rssMiB(pid);
  let peak = baseMiB;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssMiB(pid));
    } catch {
      clearInterval(timer); // the process is gone: the test fails on its own
    }
  }, 10);
  cleanups.push(() => clearInterval(timer));
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, rssMiB(pid));
      return { baseMiB, growthMiB: peak - baseMiB };
    },
  };
}

/**
 * The TCP state of our end of a connection, from /proc/net/tcp: '01' established, '08' CLOSE_WAIT
 * (the server sent its FIN), null when the socket is gone from the table (the server reset it).
 */
function tcpStateOf(localPort: number, remotePort: number): string | null {
  const hex = (port: number): string => port.toString(16).toUpperCase().padStart(4, '0');
  const local = `0100007F:${hex(localPort)}`;
  const remote = `0100007F:${hex(remotePort)}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[2] === remote) return f[3] ?? null;
  }
  return null;
}

interface Attacker {
  readonly socket: Socket;
  readonly localPort: number;
  readonly remotePort: number;
}

/** Connects and writes `count` copies of `request` in one write, then never reads. */
async function pipeline(port: number, request: string, count: number): Promise<Attacker> {
  const socket = connect(port, '127.0.0.1');
  cleanups.push(() => socket.destroy());
  socket.on('error', () => {}); // a reset from the server is what some tests wait for
  socket.pause();
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(request.repeat(count));
  return { socket, localPort: socket.localPort!, remotePort: port };
}

/**
 * Waits, without reading a byte (reading would make the attacker an honest client), until the server
 * has closed the connection (FIN or reset); then reads what the server had sent and counts the
 * responses (status lines) in it.
 */
async function closedByServer(a: Attacker): Promise<{ responses: number }> {
  await waitFor(
    () => {
      const state = tcpStateOf(a.localPort, a.remotePort);
      return state === null || state === '08' || state === '07';
    },
    { what: `the server to close the connection from port ${a.localPort}`, timeoutMs: CLOSED_WITHIN_MS },
  );
  let responses = 0;
  let tail = '';
  a.socket.setEncoding('latin1');
  a.socket.on('data', (chunk: string) => {
    const text = tail + chunk;
    responses += text.match(/HTTP\/1\.1 \d{3} /g)?.length ?? 0;
    tail = text.slice(-16);
    // a status line cut at the chunk's end is counted with the next chunk, never twice
    if (/HTTP\/1\.1 \d{3} $/.test(tail)) tail = '';
  });
  a.socket.resume();
  await new Promise<void>((resolve) => {
    if (a.socket.destroyed) resolve();
    else a.socket.once('close', () => resolve());
  });
  return { responses };
}

/**
 * An honest client streaming throughout: one increment, then flush() and wait for its ack, again
 * and again (bounded in count). flushTimeout makes a stall of the server a failure, not a wait.
 */
function honestClient(port: number): { acked(): number; stop(): Promise<{ sent: number; flushes: number; maxAckMs: number }> } {
  const client = createClient({ url: `ws://127.0.0.1:${port}/ws`, labels: { app: 'demo' }, flushTimeout: 5_000 });
  let stopping = false;
  cleanups.push(() => {
    stopping = true;
    return client.close().catch(() => {});
  });
  let sent = 0;
  let flushes = 0;
  let maxAckMs = 0;
  const loop = (async () => {
    for (let i = 0; i < 20_000 && !stopping; i++) {
      client.increment('demo_clicks_total', { button: 'red' }, 1);
      sent += 1;
      const t0 = performance.now();
      await client.flush();
      maxAckMs = Math.max(maxAckMs, performance.now() - t0);
      flushes += 1;
    }
  })();
  loop.catch(() => {}); // stop() reports it; a test that failed before calling stop() must not add an unhandled one
  return {
    acked: () => flushes,
    async stop() {
      stopping = true;
      await loop;
      await client.close();
      return { sent, flushes, maxAckMs };
    },
  };
}

async function serve(transport: string): Promise<ServingCli> {
  // The honest client below flushes back to back: the frame limit is not what is tested here.
  return startServe(['--demo', '--transport', transport, '--max-frames-per-second', '100000']);
}

describe.each(TRANSPORTS)('hostile HTTP over %s, against the real process', (transport) => {
  it('3 000 pipelined /metrics that are never read: the offender is closed, memory stays bounded, /metrics and /ws carry on', async () => {
    const s = await serve(transport);
    const honest = honestClient(s.port);
    await waitFor(() => honest.acked() > 0, { what: 'the honest client to stream' });
    const rss = watchRss(s.proc.pid);
    const request = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';
    const answered = [];
    for (let round = 0; round < 2; round++) {
      const attackers = await Promise.all(Array.from({ length: 2 }, () => pipeline(s.metricsPort, request, 3000)));
      for (const a of attackers) answered.push((await closedByServer(a)).responses);
    }
    const { baseMiB, growthMiB } = rss.stop();
    const { sent, flushes, maxAckMs } = await honest.stop();
    console.info(`${transport}: 4 × 3000 pipelined GET /metrics: RSS ${baseMiB.toFixed(0)} MiB + ${growthMiB.toFixed(1)} MiB; answered ${answered.join(',')}; honest ${flushes} acks, slowest ${maxAckMs.toFixed(0)} ms`);
    expect(growthMiB).toBeLessThan(RSS_GROWTH_BOUND_MIB);
    for (const n of answered) expect(n).toBeLessThanOrEqual(MAX_REQUESTS_IN_FLIGHT);
    expect(flushes).toBe(sent);
    expect(valueOf(await scrape(s.metricsPort), 'demo_clicks_total{button="red"}')).toBe(sent);
  });
});
