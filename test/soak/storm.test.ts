import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { createClient, type ClientStatus, type PromstreamClient } from '../../client/node.js';
import { scrape, valueOf } from '../support/scrape.js';
import { TEST_WHITELIST } from '../support/server-harness.js';
import { killAllClis, startServe } from '../support/spawn-cli.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';
import { itWithUws } from '../support/uws-availability.js';

const CLIENTS = 300;

function whitelistFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'promstream-storm-'));
  const file = join(dir, 'whitelist.json');
  writeFileSync(file, JSON.stringify({
    allowedMetrics: TEST_WHITELIST.metrics.map((m) => ({ name: m.name, help: m.help, type: m.type, labels: m.labels, ...(m.type === 'histogram' ? { buckets: m.buckets } : {}) })),
    sessionLabels: TEST_WHITELIST.sessionLabels,
  }));
  return file;
}

describe('storms against the real process (64 MB heap limit)', () => {
  afterAll(killAllClis);

  itWithUws()('reconnect storms, SIGKILL and restart: nobody crashes, resumed totals stay exact, clients come back by themselves', { timeout: 120_000 }, async () => {
    const config = whitelistFile();
    const env = { NODE_OPTIONS: '--max-old-space-size=64' };
    const first = await startServe(['--config', config, '--transport', 'uws', '--log-level', 'info'], { env });
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: first.port });
    const connected = new Set<string>();
    const clients: PromstreamClient[] = Array.from({ length: CLIENTS }, (_, i) =>
      createClient({
        url: `ws://127.0.0.1:${proxy.port}/ws`, labels: { app: i % 3 === 0 ? 'teacher' : 'student' }, flushInterval: 200,
        backoff: { baseMs: 100, capMs: 1000 },
        onStatus: (st: ClientStatus) => {
          if (st.type === 'connected') connected.add(`${i}:${st.epoch}`);
        },
      }));
    let sent = 0;
    const record = (round: number): void => {
      clients.forEach((c, i) => {
        c.increment('usage_total', { feature: 'a' }, 1 + ((i + round) % 3));
        sent += 1 + ((i + round) % 3);
      });
    };
    try {
      record(0);
      await Promise.all(clients.map((c) => c.flush()));
      // Three storms: every connection cut at once while the clients keep recording.
      for (let storm = 1; storm <= 3; storm++) {
        proxy.cutAll();
        record(storm);
        await Promise.all(clients.map((c) => c.flush()));
      }
      let m = await scrape(first.metricsPort);
      expect(valueOf(m, 'usage_total{feature="a"}')).toBe(sent);
      expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(CLIENTS);
      expect(valueOf(m, 'promstream_sessions_resumed_total')).toBeGreaterThanOrEqual(CLIENTS * 3);
      expect(first.proc.exit).toBeNull();
      console.log(`storm: server RSS ${(valueOf(m, 'process_resident_memory_bytes') / 1e6).toFixed(1)} MB, heap ${(valueOf(m, 'nodejs_heap_size_used_bytes') / 1e6).toFixed(1)} MB with ${CLIENTS} sessions`);

      // SIGKILL: no drain, no goodbye. A new process on the same port; every client finds it alone.
      const firstEpoch = String(first.listening['epoch']);
      first.proc.signal('SIGKILL');
      await first.proc.waitForExit();
      const second = await startServe(['--config', config, '--transport', 'uws', '--log-level', 'info', '--port', String(first.port)], { env });
      const secondEpoch = String(second.listening['epoch']);
      expect(secondEpoch).not.toBe(firstEpoch);
      await waitFor(() => clients.every((_, i) => connected.has(`${i}:${secondEpoch}`)), { what: 'every client reconnected to the new process', timeoutMs: 30_000 });
      let later = 0;
      clients.forEach((c) => {
        c.increment('usage_total', { feature: 'b' }, 2);
        later += 2;
      });
      await Promise.all(clients.map((c) => c.flush()));
      m = await scrape(second.metricsPort);
      expect(valueOf(m, 'usage_total{feature="b"}')).toBe(later);
      // Nothing was in flight at the kill, so nothing was sent twice to the new process.
      expect(valueOf(m, 'usage_total{feature="a"}')).toBe(0);
      expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(CLIENTS);
      expect(valueOf(m, 'connected_clients{app="teacher"}') + valueOf(m, 'connected_clients{app="student"}')).toBe(CLIENTS);

      // SIGTERM with everyone connected: drained with 1012, exit 0.
      second.proc.signal('SIGTERM');
      expect(await second.proc.waitForExit(20_000)).toEqual({ code: 0, signal: null });
    } finally {
      await proxy.close();
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    }
  });
});
