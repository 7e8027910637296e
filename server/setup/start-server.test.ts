/**
 * startServer() as a library: options checked up front, the whitelist checked against the frame limit,
 * and reload() guarded where its state is (review defects 6 and 7).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FIXTURE_WHITELIST } from '../core/handler.fixture.js';
import type { Whitelist } from '../config/types.js';
import { startServer, type RunningServer } from './start-server.js';

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const base = { host: '127.0.0.1', port: 0, metricsHost: '127.0.0.1', metricsPort: 0, transport: 'ws' } as const;
async function start(whitelist: Whitelist = FIXTURE_WHITELIST, drainWindowMs = 0): Promise<RunningServer> {
  const s = await startServer({ ...base, whitelist, drainWindowMs });
  servers.push(s);
  return s;
}
const withCounter = (name: string): Whitelist => ({
  ...FIXTURE_WHITELIST,
  metrics: [...FIXTURE_WHITELIST.metrics, { name, help: 'new', type: 'counter', labels: [], buckets: [], file: 'fixture' }],
});

describe('startServer', () => {
  it('refuses options out of range, every one at once, by name (PROMSTREAM_OPTIONS_INVALID)', async () => {
    await expect(startServer({ ...base, whitelist: FIXTURE_WHITELIST, idleTimeoutMs: 10, maxFrameBytes: 10, port: 70_000, allowedOrigins: ['nope'] })).rejects.toMatchObject({
      code: 'PROMSTREAM_OPTIONS_INVALID',
      problems: [
        { option: 'port', message: 'must be ≤ 65535 (got 70000)' },
        { option: 'idleTimeoutMs', message: 'must be ≥ 1000 (got 10)' },
        { option: 'maxFrameBytes', message: 'must be ≥ 1024 (got 10)' },
        { option: 'allowedOrigins', message: '"nope" is not an origin (scheme://host[:port]) nor *.domain' },
      ],
    });
  });

  it('refuses a whitelist a client could never send a sample of (review defect 6)', async () => {
    const huge: Whitelist = {
      ...FIXTURE_WHITELIST,
      metrics: [{ name: 'huge_seconds', help: 'h', type: 'histogram', labels: [], buckets: Array.from({ length: 200 }, (_, i) => i + 1), file: 'big.json' }],
    };
    await expect(startServer({ ...base, whitelist: huge, maxFrameBytes: 1024, maxPayloadBytes: 1024 })).rejects.toMatchObject({
      code: 'PROMSTREAM_CONFIG_INVALID',
      problems: [expect.objectContaining({ file: 'big.json', metric: 'huge_seconds', field: 'buckets' })],
    });
  });
});

describe('RunningServer.reload', () => {
  it('applies one reload at a time: a second one while the first reconnects clients is refused (review defect 7)', async () => {
    const s = await start(FIXTURE_WHITELIST, 300);
    const first = s.reload(withCounter('a_total'));
    await expect(s.reload(withCounter('b_total'))).rejects.toMatchObject({ code: 'PROMSTREAM_RELOAD_IN_PROGRESS' });
    await expect(first).resolves.toMatchObject({ changed: true });
    await expect(s.reload(withCounter('b_total'))).resolves.toMatchObject({ changed: true });
  });

  it('refuses a reload once the server is draining or closed (review defect 7)', async () => {
    const s = await start();
    const draining = s.drain(0);
    await expect(s.reload(withCounter('a_total'))).rejects.toMatchObject({ code: 'PROMSTREAM_SERVER_STOPPING' });
    await draining;
    await expect(s.reload(withCounter('a_total'))).rejects.toMatchObject({ code: 'PROMSTREAM_SERVER_STOPPING' });
  });

  it('keeps the old whitelist when the session labels changed (PROMSTREAM_SESSION_LABELS_CHANGED)', async () => {
    const s = await start();
    await expect(s.reload({ ...FIXTURE_WHITELIST, sessionLabels: [] })).rejects.toMatchObject({ code: 'PROMSTREAM_SESSION_LABELS_CHANGED' });
    await expect(s.reload(FIXTURE_WHITELIST)).resolves.toMatchObject({ changed: false });
  });
});
