/**
 * deploy/nginx/promstream.conf with a real nginx in front of two real aggregators, and nginx dropping
 * every connection half-way. Clients with a route key in their URL come back to the aggregator that
 * holds their session and resume exactly. Clients without one (the default today) are spread over both
 * at first, but their resumes, hashed by session id, find the session's aggregator only by chance: the
 * others start a new session (at-least-once), which the counts survive here because nothing was in
 * flight at the cut.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { afterEach, expect, it } from 'vitest';
import { createClient, type PromstreamClient } from '../../client/node.js';
import { describeRequiring } from '../support/prometheus.js';
import { scrape } from '../support/scrape.js';
import { killAllClis, REPO_ROOT, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';
import { describeRun, freePort, onPath, run } from './deploy-tools.js';

/** Debian puts nginx in /usr/sbin, which is not on every user's PATH. */
const nginxBin = process.env.NGINX_BIN ?? onPath('nginx') ?? '/usr/sbin/nginx';
const describeWithNginx = describeRequiring({
  what: 'nginx binary',
  available: () => {
    try {
      accessSync(nginxBin, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  },
  installHint: `apt-get install nginx-light (looked at ${nginxBin}; set NGINX_BIN to override)`,
});

const CLIENTS = 20;

/** deploy/nginx/promstream.conf with its upstream servers and listen address replaced, inside a minimal nginx.conf. */
async function nginxConfig(dir: string, listenPort: number, upstreams: readonly number[]): Promise<string> {
  let conf = await readFile(path.join(REPO_ROOT, 'deploy/nginx/promstream.conf'), 'utf8');
  expect(conf).toMatch(/^\s*hash \$promstream_route consistent;$/m);
  const servers = conf.match(/^\s*server \d+\.\d+\.\d+\.\d+:\d+;$/gm) ?? [];
  expect(servers.length).toBeGreaterThan(0);
  conf = conf.replace(servers[0]!, upstreams.map((p) => `    server 127.0.0.1:${p};`).join('\n'));
  for (const extra of servers.slice(1)) conf = conf.replace(`${extra}\n`, '');
  expect(conf).toMatch(/^\s*listen 80;$/m);
  conf = conf.replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${listenPort};`);
  const file = path.join(dir, 'nginx.conf');
  await writeFile(
    file,
    `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${conf}
}
`,
  );
  return file;
}

interface RunningNginx {
  stop(): Promise<void>;
}

async function startNginx(dir: string, configFile: string, port: number): Promise<RunningNginx> {
  const child: ChildProcess = spawn(nginxBin, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (output += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (output += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(
    () =>
      child.exitCode !== null
        ? Promise.reject(new Error(`nginx exited: ${output}`))
        : new Promise<boolean>((resolve) => {
            const socket = net.connect(port, '127.0.0.1', () => {
              socket.destroy();
              resolve(true);
            });
            socket.on('error', () => resolve(false));
          }),
    { what: `nginx listening on ${port}`, timeoutMs: 10_000 },
  );
  return {
    async stop() {
      // SIGTERM is nginx's fast shutdown: every proxied WebSocket is cut, as by a crashed proxy.
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const sum = (samples: Map<string, number>, prefix: string): number =>
  [...samples].filter(([k]) => k === prefix || k.startsWith(`${prefix}{`)).reduce((s, [, v]) => s + v, 0);

describeWithNginx('deploy/nginx/promstream.conf with a real nginx in front of two aggregators', () => {
  let dir = '';
  const clients: PromstreamClient[] = [];
  const proxies: RunningNginx[] = [];

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
    for (const p of proxies.splice(0)) await p.stop();
    await killAllClis();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  async function setUp(): Promise<{ aggregators: ServingCli[]; port: number; config: string }> {
    dir = await mkdtemp(path.join(tmpdir(), 'promstream-nginx-'));
    const aggregators = [await startServe(['--demo']), await startServe(['--demo'])];
    const port = await freePort();
    const config = await nginxConfig(dir, port, aggregators.map((a) => a.port));
    proxies.push(await startNginx(dir, config, port));
    return { aggregators, port, config };
  }

  function connectClients(port: number, { routeKey }: { routeKey: boolean }): void {
    for (let i = 0; i < CLIENTS; i++) {
      // The client adds its own random route key; `?route=` (empty) stands for a client without one.
      const query = routeKey ? '' : '?route=';
      // A short backoff: the test restarts nginx and should not wait for the default 30 s cap.
      clients.push(createClient({ url: `ws://127.0.0.1:${port}/ws${query}`, labels: { app: 'demo' }, flushInterval: 100, flushTimeout: 15_000, backoff: { baseMs: 50, capMs: 500 } }));
    }
  }

  /** Connects the clients, counts a click each, cuts every connection, counts another; returns the scrapes before and after. */
  async function cutAndReconnect(routeKey: boolean): Promise<{ before: Map<string, number>[]; after: Map<string, number>[] }> {
    const { aggregators, port, config } = await setUp();
    connectClients(port, { routeKey });
    for (const c of clients) c.increment('demo_clicks_total', { button: 'red' });
    await Promise.all(clients.map((c) => c.flush()));
    const before = await Promise.all(aggregators.map((a) => scrape(a.metricsPort)));
    expect(before.reduce((s, m) => s + sum(m, 'promstream_sessions_opened_total'), 0)).toBe(CLIENTS);
    // Both get some (all on one would happen by chance once in 2^19 runs).
    for (const m of before) expect(sum(m, 'connected_clients')).toBeGreaterThan(0);

    // nginx goes away with every connection and comes back on the same port.
    await proxies.pop()!.stop();
    proxies.push(await startNginx(dir, config, port));
    for (const c of clients) c.increment('demo_clicks_total', { button: 'red' });
    await Promise.all(clients.map((c) => c.flush()));
    const after = await waitFor(
      async () => {
        const samples = await Promise.all(aggregators.map((a) => scrape(a.metricsPort)));
        return samples.reduce((s, m) => s + sum(m, 'connected_clients'), 0) === CLIENTS ? samples : undefined;
      },
      { what: `${CLIENTS} clients connected again`, timeoutMs: 15_000 },
    );
    return { before, after };
  }

  it('with the route key every client puts in its URL, every client resumes on the aggregator that holds its session: exact counts', async () => {
    const { before, after } = await cutAndReconnect(true);
    for (const [i, m] of after.entries()) {
      const mine = sum(before[i]!, 'promstream_sessions_opened_total');
      // No aggregator opened a new session; each resumed its own clients and holds the same ones.
      expect(sum(m, 'promstream_sessions_opened_total'), `aggregator ${i}`).toBe(mine);
      expect(sum(m, 'promstream_sessions_resumed_total'), `aggregator ${i}`).toBe(mine);
      expect(sum(m, 'connected_clients'), `aggregator ${i}`).toBe(mine);
      expect(sum(m, 'demo_clicks_total'), `aggregator ${i}`).toBe(2 * mine);
    }
  }, 60_000);

  it('without a route key, a resume routed by its session id finds its aggregator only by chance; the rest start anew (at-least-once)', async () => {
    const { after } = await cutAndReconnect(false);
    const resumed = after.reduce((s, m) => s + sum(m, 'promstream_sessions_resumed_total'), 0);
    const openedAgain = after.reduce((s, m) => s + sum(m, 'promstream_sessions_opened_total'), 0) - CLIENTS;
    const refused = after.reduce((s, m) => s + sum(m, 'promstream_protocol_errors_total{reason="session_not_resumable"}'), 0);
    // Each client either resumed or, refused by an aggregator that did not know its session, began again.
    expect(resumed + openedAgain).toBe(CLIENTS);
    expect(refused).toBe(openedAgain);
    // All 20 resuming on the right aggregator would be a 1-in-2^20 chance.
    expect(openedAgain).toBeGreaterThan(0);
    // Nothing was in flight at the cut, so even the new sessions lost and doubled nothing.
    expect(after.reduce((s, m) => s + sum(m, 'demo_clicks_total'), 0)).toBe(2 * CLIENTS);
  }, 60_000);

  it("the http-snippet that deploy/k8s/ingress.yaml tells users to add is valid nginx", async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'promstream-nginx-'));
    const ingress = await readFile(path.join(REPO_ROOT, 'deploy/k8s/ingress.yaml'), 'utf8');
    // The commented ConfigMap fragment, uncommented and read as YAML.
    const lines = ingress.split('\n');
    const from = lines.findIndex((l) => /^#\s+data:\s*$/.test(l));
    const fragment = lines.slice(from).filter((l) => l.startsWith('#')).map((l) => l.replace(/^# {4}/, ''));
    const end = fragment.findIndex((l, i) => i > 0 && /^\S/.test(l) && !l.startsWith('data:'));
    const snippet = (parseDocument(fragment.slice(0, end < 0 ? undefined : end).join('\n')).toJS() as { data: { 'http-snippet': string } }).data['http-snippet'];
    expect(snippet).toContain('$promstream_route');
    const config = path.join(dir, 'nginx.conf');
    await writeFile(
      config,
      `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp {\n  access_log off;\n${snippet}\n  upstream promstream { hash $promstream_route consistent; server 127.0.0.1:1; server 127.0.0.1:2; }\n  server { listen 127.0.0.1:1; location = /ws { proxy_pass http://promstream; } }\n}\n`,
    );
    const result = await run(nginxBin, ['-t', '-p', dir, '-e', path.join(dir, 'error.log'), '-c', config]);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stderr).toMatch(/syntax is ok/);
  });
});
