/**
 * `promstream health [--ready]`, the command the image's HEALTHCHECK and docker-compose.yml run: as a
 * real child process against a real `promstream serve` on free loopback ports.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { SUBPROTOCOL, encodeHello } from '../protocol/index.js';
import { parseHealthArgs } from '../server/setup/health-check.js';
import { freePort } from './deploy/deploy-tools.js';
import { killAllClis, runCli, startServe } from './support/spawn-cli.js';

const servers: net.Server[] = [];
const sockets = new Set<WebSocket>();
afterEach(async () => {
  await killAllClis();
  for (const ws of sockets) ws.terminate();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A client past its hello; resolves with its close code once the server closes it. */
async function connectedClient(port: number): Promise<{ closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, [SUBPROTOCOL]);
  sockets.add(ws);
  ws.on('error', () => {});
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => ws.send(encodeHello({ app: 'demo' }, null)));
    ws.once('message', () => resolve());
    void closed.then((code) => reject(new Error(`closed before the welcome: ${code}`)));
  });
  return { closed };
}

describe('parseHealthArgs', () => {
  it('defaults to /healthz on 127.0.0.1:9102 within 2 s', () => {
    expect(parseHealthArgs([], {})).toEqual({ host: '127.0.0.1', port: 9102, path: '/healthz', timeoutMs: 2000 });
  });

  it('takes PROMSTREAM_METRICS_HOST/PORT, argv over them, and asks a wildcard address on loopback', () => {
    const env = { PROMSTREAM_METRICS_HOST: '0.0.0.0', PROMSTREAM_METRICS_PORT: '9200' };
    expect(parseHealthArgs(['--ready'], env)).toEqual({ host: '127.0.0.1', port: 9200, path: '/readyz', timeoutMs: 2000 });
    expect(parseHealthArgs(['--port', '9300', '--host=10.1.2.3', '--timeout', '500ms'], env)).toEqual({ host: '10.1.2.3', port: 9300, path: '/healthz', timeoutMs: 500 });
    expect(parseHealthArgs([], { PROMSTREAM_METRICS_HOST: '::' }).host).toBe('::1');
    expect(parseHealthArgs(['--host', '[::1]'], {}).host).toBe('::1');
  });

  it('refuses what it cannot use', () => {
    expect(() => parseHealthArgs(['--port', '0'], {})).toThrow(/--port: expected a port 1–65535, got "0"/);
    expect(() => parseHealthArgs([], { PROMSTREAM_METRICS_PORT: 'abc' })).toThrow(/PROMSTREAM_METRICS_PORT: expected a port/);
    expect(() => parseHealthArgs(['--timeout', '5parsecs'], {})).toThrow(/--timeout: not a duration/);
    expect(() => parseHealthArgs(['--timeout', '0'], {})).toThrow(/--timeout: must be above 0/);
    expect(() => parseHealthArgs(['--ready=yes'], {})).toThrow(/--ready takes no value/);
    expect(() => parseHealthArgs(['--host'], {})).toThrow(/--host needs a value/);
    expect(() => parseHealthArgs(['localhost'], {})).toThrow(/unexpected argument "localhost"/);
  });
});

describe('promstream health', () => {
  it('--help exits 0 and names every option; `promstream --help` lists the command', async () => {
    const r = await runCli(['health', '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const option of ['--ready', '--host', '--port', '--timeout']) expect(r.stdout).toMatch(new RegExp(`^ {2}${option} `, 'm'));
    expect((await runCli(['--help'])).stdout).toMatch(/^ {2}promstream health \[--ready\]/m);
  });

  it('exits 0 for a running server: /healthz and /readyz, by flag and by PROMSTREAM_METRICS_* as in the image', async () => {
    const s = await startServe(['--demo']);
    const live = await runCli(['health', '--port', String(s.metricsPort)]);
    expect(live).toMatchObject({ code: 0, stderr: '', stdout: `ok: GET http://127.0.0.1:${s.metricsPort}/healthz: 200 ok\n` });
    const ready = await runCli(['health', '--ready'], { env: { PROMSTREAM_METRICS_PORT: String(s.metricsPort), PROMSTREAM_METRICS_HOST: '0.0.0.0' } });
    expect(ready).toMatchObject({ code: 0, stderr: '', stdout: `ok: GET http://127.0.0.1:${s.metricsPort}/readyz: 200 ready\n` });
  });

  it('--ready exits 1 while the server drains, when /healthz still exits 0', async () => {
    // Two clients over a 10 s window: the second is closed 5 s after the first, and until then the
    // server is draining with its metrics side up.
    const s = await startServe(['--demo', '--drain-window', '10s']);
    const clients = [await connectedClient(s.port), await connectedClient(s.port)];
    s.proc.signal('SIGTERM');
    expect(await Promise.race(clients.map((c) => c.closed))).toBe(1012);
    const ready = await runCli(['health', '--ready', '--port', String(s.metricsPort)]);
    expect(ready).toMatchObject({ code: 1, stdout: '', stderr: `promstream health: not ready: GET http://127.0.0.1:${s.metricsPort}/readyz: 503 not ready\n` });
    const live = await runCli(['health', '--port', String(s.metricsPort)]);
    expect(live.code, live.stderr).toBe(0);
    expect(s.proc.exit).toBeNull();
  });

  it('exits 1 when nothing listens', async () => {
    const port = await freePort();
    const r = await runCli(['health', '--port', String(port)]);
    expect(r).toMatchObject({ code: 1, stdout: '', stderr: `promstream health: unhealthy: GET http://127.0.0.1:${port}/healthz: ECONNREFUSED\n` });
  });

  it('exits 1 at --timeout when the port accepts but never answers', async () => {
    // Reads nothing and answers nothing; destroys its side once the check has gone.
    const silent = net.createServer((socket) => socket.on('error', () => {}).resume().once('end', () => socket.destroy()));
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const r = await runCli(['health', '--port', String(port), '--timeout', '300ms']);
    expect(r).toMatchObject({ code: 1, stderr: `promstream health: unhealthy: GET http://127.0.0.1:${port}/healthz: no answer within 300 ms\n` });
  });

  it('exits 2 on a usage error, saying what is wrong', async () => {
    const r = await runCli(['health', '--port', 'ninety']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^promstream: --port: expected a port 1–65535, got "ninety"$/m);
    expect(r.stdout).toBe('');
  });
});
