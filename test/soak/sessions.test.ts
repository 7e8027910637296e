import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { afterAll, describe, expect } from 'vitest';
import { maskedFrame, rawUpgrade } from '../../bench/generators/raw-websocket.js';
import { encodeHello } from '../../protocol/index.js';
import { scrape, valueOf } from '../support/scrape.js';
import { killAllClis, startServe } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';
import { itWithUws } from '../support/uws-availability.js';

// One process may hold 20 000 open files here: the server (a child) holds one per session, this test
// process one per client, so each side stays under the limit.
const SESSIONS = 19_000;
const IN_FLIGHT = 200;
const SOURCES = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];

describe('19 000 sessions at once in one process', () => {
  afterAll(killAllClis);

  itWithUws()('welcomes and counts every one, then lets every one go', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'promstream-sessions-'));
    const config = join(dir, 'w.json');
    writeFileSync(config, JSON.stringify({ allowedMetrics: [{ name: 'x_total', help: 'x', type: 'counter' }], sessionLabels: [{ name: 'app', allowedValues: ['a', 'b'] }] }));
    const server = await startServe(['--config', config, '--transport', 'uws', '--max-connections', '20000', '--handshake-timeout', '60s', '--idle-timeout', '120s']);
    const idleRss = valueOf(await scrape(server.metricsPort), 'process_resident_memory_bytes');
    const hello = [maskedFrame(encodeHello({ app: 'a' }, null)), maskedFrame(encodeHello({ app: 'b' }, null))];
    const sockets: Socket[] = [];
    let welcomed = 0;
    let next = 0;
    const started = performance.now();
    try {
      // Bounded: exactly SESSIONS connections, at most IN_FLIGHT handshakes at a time.
      const worker = async (): Promise<void> => {
        while (next < SESSIONS) {
          const i = next++;
          const { socket, rest } = await rawUpgrade({ host: '127.0.0.1', port: server.port, path: '/ws', localAddress: SOURCES[i % SOURCES.length] });
          sockets.push(socket);
          socket.on('error', () => {});
          const gotWelcome = (): void => {
            welcomed++;
          };
          if (rest.length > 0) gotWelcome();
          else socket.once('data', gotWelcome);
          socket.write(hello[i % 2]!);
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      await waitFor(() => welcomed === SESSIONS, { what: `${SESSIONS} welcomes (have ${welcomed})`, timeoutMs: 60_000 });
      const connectSeconds = (performance.now() - started) / 1000;
      const m = await scrape(server.metricsPort);
      expect(valueOf(m, 'connected_clients{app="a"}')).toBe(SESSIONS / 2);
      expect(valueOf(m, 'connected_clients{app="b"}')).toBe(SESSIONS / 2);
      expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(SESSIONS);
      const perSessionBytes = (valueOf(m, 'process_resident_memory_bytes') - idleRss) / SESSIONS;
      console.log(`${SESSIONS} sessions in ${connectSeconds.toFixed(1)} s (${Math.round(SESSIONS / connectSeconds)}/s), server RSS +${(perSessionBytes / 1024).toFixed(2)} KiB per session`);
    } finally {
      for (const s of sockets) s.destroy();
    }
    await waitFor(async () => {
      const m = await scrape(server.metricsPort);
      return valueOf(m, 'connected_clients{app="a"}') + valueOf(m, 'connected_clients{app="b"}') === 0;
    }, { what: 'every session to leave connected_clients', timeoutMs: 30_000 });
    expect(valueOf(await scrape(server.metricsPort), 'promstream_sessions_resumable')).toBe(SESSIONS);
    server.proc.signal('SIGTERM');
    expect(await server.proc.waitForExit(20_000)).toEqual({ code: 0, signal: null });
  });
});
