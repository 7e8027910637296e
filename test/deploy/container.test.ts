/**
 * The real image and the real compose file, with podman (there is no Docker engine here, and no
 * container registry: test/container/base-image.sh makes the base images locally and sets podman up).
 *
 * 1. `podman build` of the Dockerfile (docker format, so that HEALTHCHECK is kept; layers cached).
 * 2. `podman run` as the image's non-root user, ports on 127.0.0.1 only; the project's Node client
 *    streams into it and /metrics shows exactly what was sent; `podman healthcheck run` is healthy;
 *    `podman stop` drains (every client gets 1012) and the container exits 0.
 * 3. `docker-compose up` (Debian's docker-compose v1, against `podman system service` on a unix socket)
 *    of docker-compose.yml + test/container/compose.override.yml: the aggregator, the load generator and
 *    Prometheus (from Debian's package). Grafana cannot be had here and is left out, which the output
 *    says. The load generator's acknowledged totals are exactly what /metrics and Prometheus show.
 *
 * There is no systemd to run health checks on a timer: the test runs `podman healthcheck run` itself
 * (compose's depends_on: service_healthy waits for their result). Not part of `npm test` (it takes
 * minutes on a cold cache and binds compose's fixed ports 3000, 9102 and 9090): `npm run test:container`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../../client/node.js';
import type { ClientStatus, PromstreamClient } from '../../client/types.js';
import { DEFAULTS } from '../../server/setup/option-table.js';
import { parseExposition } from '../support/scrape.js';
import { REPO_ROOT } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';
import { describeRun, freePort, run, type RunResult } from './deploy-tools.js';
import { describeWithPodman, podman, podmanEnv, prepareBaseImages, progressLog, streaming, tryPodman } from './podman-tools.js';

const OVERRIDE = 'test/container/compose.override.yml';
const IMAGE = 'localhost/promstream-test/promstream:test';
/** What docker-compose.yml calls the aggregator's (and the load generator's) image. */
const COMPOSE_IMAGE = 'localhost/promstream:local';
const PROMETHEUS_IMAGE = 'localhost/promstream-test/prometheus:trixie';
const BASE_IMAGE = 'docker.io/library/node:24-trixie-slim';
const CONTAINER = 'promstream-ct-run';
const PROJECT = 'promstreamct';
/** The ports docker-compose.yml publishes (3000 and 9090 on every address, 9102 on 127.0.0.1). */
const COMPOSE_PORTS = { public: DEFAULTS.port, metrics: DEFAULTS.metricsPort, prometheus: 9090 };

const progress = progressLog('container');

/** The JSON lines of a container's output (pino's log, the load generator's report). */
async function jsonLines(container: string): Promise<Record<string, unknown>[]> {
  const logs = await podman(['logs', container]);
  return `${logs.stdout}\n${logs.stderr}`.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function inspect(container: string, format: string): Promise<string> {
  return (await podman(['inspect', '--format', format, container])).stdout.trim();
}

async function metricsAt(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return parseExposition(await response.text());
}

/** The sum of every sample of a metric family with these labels (connected_clients over its session labels). */
const familySum = (samples: ReadonlyMap<string, number>, name: string): number =>
  [...samples].filter(([key]) => key === name || key.startsWith(`${name}{`)).reduce((sum, [, v]) => sum + v, 0);

/** A port nobody listens on, on every address: what compose's fixed ports need. */
function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

describeWithPodman('the image and docker-compose.yml with podman', () => {
  let transport = '';

  beforeAll(async () => {
    await prepareBaseImages(progress);
    // Leftovers of an interrupted run.
    await tryPodman(['rm', '--force', '--time', '0', CONTAINER]);

    progress(`podman build --format docker --layers -t ${IMAGE} . (FROM ${BASE_IMAGE}, made locally)`);
    const t0 = performance.now();
    // docker format: the OCI format has no HEALTHCHECK. --pull=never: nothing may come from a registry.
    const build = await streaming('podman', ['build', '--format', 'docker', '--layers', '--pull=never', '-t', IMAGE, '.'], {
      env: podmanEnv(),
      timeoutMs: 600_000,
      show: (line) => /^\[\d\/\d\] STEP \d+\/\d+: (FROM|RUN)/.test(line),
      progress,
    });
    const cachedSteps = (build.stdout.match(/^--> Using cache /gm) ?? []).length;
    progress(`built in ${((performance.now() - t0) / 1000).toFixed(1)}s (${cachedSteps} steps from the layer cache)`);
  }, 1_200_000);

  afterAll(async () => {
    await tryPodman(['rm', '--force', '--time', '0', CONTAINER]);
  });

  it("keeps the Dockerfile's user, entrypoint, command and health check, and adds nothing of the test base image", async () => {
    const image = JSON.parse((await podman(['image', 'inspect', IMAGE])).stdout) as {
      Config: { User: string; Entrypoint: string[]; Cmd: string[]; ExposedPorts: Record<string, unknown> };
      Healthcheck?: { Test: string[]; Timeout: number };
    }[];
    const config = image[0]!.Config;
    expect(config.User).toBe('node');
    expect(config.Entrypoint).toEqual(['/usr/bin/tini', '--']);
    expect(config.Cmd).toEqual(['promstream', 'serve', '--demo']);
    expect(image[0]!.Healthcheck).toMatchObject({ Test: ['CMD', 'promstream', 'health'], Timeout: 3e9 });
    expect(Object.keys(config.ExposedPorts).sort()).toEqual([`${DEFAULTS.port}/tcp`, `${DEFAULTS.metricsPort}/tcp`]);
    // The machine's CA bundle is in the test's base image only: the project's own layers never touch it.
    const diff = await podman(['image', 'diff', IMAGE, BASE_IMAGE]);
    expect(diff.stdout).toContain('/app/dist/server/setup/cli.js');
    expect(diff.stdout).not.toContain('promstream-test');
    // apt leaves neither package lists nor downloaded packages in the layers.
    const aptLeftovers = diff.stdout.split('\n').filter((l) => /^A \/var\/cache\/apt\/.*\.(deb|bin)$/.test(l) || /^A \/var\/lib\/apt\/lists\/(?!lock$|partial$)/.test(l));
    expect(aptLeftovers).toEqual([]);
  });

  describe('podman run', () => {
    let port = 0;
    let metricsPort = 0;
    const clients: PromstreamClient[] = [];
    const closes: number[][] = [];

    afterAll(async () => {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    });

    it('runs as the non-root node user under tini, with its ports published on 127.0.0.1 only', async () => {
      [port, metricsPort] = [await freePort(), await freePort()];
      progress(`podman run ${IMAGE}: 127.0.0.1:${port}->3000, 127.0.0.1:${metricsPort}->9102`);
      await podman(['run', '--detach', '--name', CONTAINER, '-p', `127.0.0.1:${port}:${DEFAULTS.port}`, '-p', `127.0.0.1:${metricsPort}:${DEFAULTS.metricsPort}`, '-e', 'PROMSTREAM_DRAIN_WINDOW=2s', IMAGE]);
      const listening = await waitFor(async () => (await jsonLines(CONTAINER)).find((l) => l.msg === 'promstream listening'), {
        what: "the container's 'promstream listening' line",
        timeoutMs: 30_000,
        intervalMs: 250,
      });
      expect(listening).toMatchObject({ port: DEFAULTS.port, metricsPort: DEFAULTS.metricsPort });
      transport = String(listening.transport);
      progress(`transport in the container: ${transport} ${JSON.stringify(listening.transportLibrary)}`);
      // Node 24 on Debian 13 (glibc 2.41): the native transport, from the pinned @btc-vision build.
      expect(listening).toMatchObject({
        transport: 'uws',
        transportLibrary: { package: '@btc-vision/uwebsockets.js', version: '20.57.0', binary: '/app/node_modules/@btc-vision/uwebsockets.js/uws_linux_x64_137.node' },
      });
      expect((listening.transportLibrary as Record<string, unknown>).passedOver).toBeUndefined();
      // Nothing says uWS failed to load, and nothing but promstream's JSON lines is in the output.
      const logs = await podman(['logs', CONTAINER]);
      expect(logs.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('{"level":'))).toEqual([]);
      expect(logs.stderr).toBe('');
      expect((await jsonLines(CONTAINER)).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('uWebSockets.js does not load'))).toEqual([]);

      const top = await podman(['top', CONTAINER, 'user', 'args']);
      const processes = top.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      expect(processes.map((p) => p[0])).toEqual(['node', 'node']);
      expect(processes[0]!.slice(1)).toEqual(['/usr/bin/tini', '--', 'promstream', 'serve', '--demo']);
      const published = (await podman(['port', CONTAINER])).stdout.trim().split('\n').sort();
      expect(published).toEqual([`${DEFAULTS.port}/tcp -> 127.0.0.1:${port}`, `${DEFAULTS.metricsPort}/tcp -> 127.0.0.1:${metricsPort}`].sort());
    });

    it("takes the project's Node client: /metrics shows exactly what three clients sent", async () => {
      for (const [i, app] of ['demo', 'student', 'teacher'].entries()) {
        const seen: number[] = [];
        closes.push(seen);
        const client = createClient({
          url: `ws://127.0.0.1:${port}/ws`,
          labels: { app },
          flushInterval: 200,
          flushTimeout: 5_000,
          // No reconnect within the test once the server is gone.
          backoff: { baseMs: 120_000, capMs: 120_000 },
          onStatus: (status: ClientStatus) => {
            if (status.type === 'disconnected') seen.push(status.code);
          },
        });
        clients.push(client);
        client.increment('demo_clicks_total', { button: 'red' }, i + 1);
        client.increment('demo_clicks_total', { button: 'blue' }, 2);
        client.observe('demo_task_duration_seconds', { task: 'load' }, 0.25);
        client.observe('demo_task_duration_seconds', { task: 'load' }, 3);
      }
      await Promise.all(clients.map((c) => c.flush()));
      const samples = await metricsAt(metricsPort);
      const expected: Record<string, number> = {
        'connected_clients{app="demo"}': 1,
        'connected_clients{app="student"}': 1,
        'connected_clients{app="teacher"}': 1,
        'demo_clicks_total{button="red"}': 6,
        'demo_clicks_total{button="green"}': 0,
        'demo_clicks_total{button="blue"}': 6,
        'demo_task_duration_seconds_bucket{task="load",le="0.1"}': 0,
        'demo_task_duration_seconds_bucket{task="load",le="0.25"}': 3,
        'demo_task_duration_seconds_bucket{task="load",le="2.5"}': 3,
        'demo_task_duration_seconds_bucket{task="load",le="5"}': 6,
        'demo_task_duration_seconds_bucket{task="load",le="+Inf"}': 6,
        'demo_task_duration_seconds_count{task="load"}': 6,
        'demo_task_duration_seconds_sum{task="load"}': 9.75,
        'demo_task_duration_seconds_count{task="save"}': 0,
      };
      expect(Object.fromEntries(Object.keys(expected).map((k) => [k, samples.get(k)]))).toEqual(expected);
      // The public side serves the browser script the build stage made.
      const script = await fetch(`http://127.0.0.1:${port}/promstream.js`);
      expect(script.status).toBe(200);
      expect((await script.text()).length).toBeGreaterThan(1000);
    });

    it('podman healthcheck run: the image\'s HEALTHCHECK (promstream health) reports healthy', async () => {
      const check = await tryPodman(['healthcheck', 'run', CONTAINER]);
      expect(check.code, describeRun(check)).toBe(0);
      const health = JSON.parse(await inspect(CONTAINER, '{{json .State.Health}}')) as { Status: string; Log: { ExitCode: number; Output: string }[] };
      expect(health.Status).toBe('healthy');
      expect(health.Log.at(-1)).toMatchObject({ ExitCode: 0, Output: `ok: GET http://127.0.0.1:${DEFAULTS.metricsPort}/healthz: 200 ok` });
    });

    it('podman stop: the server drains, every client gets 1012, and the container exits 0', async () => {
      progress('podman stop (SIGTERM to tini; drain window 2s)');
      const t0 = performance.now();
      await podman(['stop', '--time', '15', CONTAINER], 30_000);
      const tookMs = performance.now() - t0;
      expect(await inspect(CONTAINER, '{{.State.ExitCode}}')).toBe('0');
      // Not the SIGKILL at the end of the 15 s grace.
      expect(tookMs).toBeLessThan(12_000);
      await waitFor(() => closes.every((c) => c.length > 0), { what: 'every client to see its connection closed', timeoutMs: 5_000 });
      expect(closes.map((c) => c[0])).toEqual([1012, 1012, 1012]);
      const logs = (await jsonLines(CONTAINER)).map((l) => l.msg);
      expect(logs).toContain('draining: closing clients with 1012');
      expect(logs.at(-1)).toBe('stopped cleanly');
      expect((await jsonLines(CONTAINER)).find((l) => l.msg === 'draining: closing clients with 1012')).toMatchObject({ clients: 3, windowMs: 2000 });
      progress(`stopped in ${(tookMs / 1000).toFixed(1)}s, exit code 0`);
    });
  });

  describe('docker-compose up, against podman system service', () => {
    let dir = '';
    let service: ChildProcess | undefined;
    let socket = '';
    let composeUp: Promise<RunResult> | undefined;
    const composeEnv = (): NodeJS.ProcessEnv => ({ ...podmanEnv(), DOCKER_HOST: `unix://${socket}` });
    const compose = (args: readonly string[], timeoutMs = 60_000): Promise<RunResult> =>
      run('docker-compose', ['-p', PROJECT, '-f', 'docker-compose.yml', '-f', OVERRIDE, ...args], { cwd: REPO_ROOT, env: composeEnv(), timeoutMs });
    const name = (svc: string): string => `${PROJECT}_${svc}_1`;
    let loadgenDone: Record<string, unknown> | undefined;

    beforeAll(async () => {
      const busy = [];
      for (const [p, host] of [[COMPOSE_PORTS.public, '0.0.0.0'], [COMPOSE_PORTS.metrics, '127.0.0.1'], [COMPOSE_PORTS.prometheus, '0.0.0.0']] as const) {
        if (!(await portFree(p, host))) busy.push(`${host}:${p}`);
      }
      if (busy.length > 0) throw new Error(`docker-compose.yml publishes fixed ports, and ${busy.join(', ')} ${busy.length === 1 ? 'is' : 'are'} taken`);

      progress(`podman build ${PROMETHEUS_IMAGE} (Debian's prometheus package; test/container/prometheus.Containerfile)`);
      await podman(['build', '--format', 'docker', '--layers', '--pull=never', '-t', PROMETHEUS_IMAGE, '-f', 'test/container/prometheus.Containerfile', 'test/container'], 600_000);
      await podman(['tag', IMAGE, COMPOSE_IMAGE]);

      dir = await mkdtemp(path.join(tmpdir(), 'promstream-podman-'));
      socket = path.join(dir, 'podman.sock');
      progress(`podman system service on unix://${socket}`);
      service = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], { env: podmanEnv(), stdio: 'ignore' });
      await waitFor(
        () =>
          new Promise<boolean>((resolve) => {
            const req = http.get({ socketPath: socket, path: '/_ping', timeout: 1000 }, (res) => {
              res.resume();
              resolve(res.statusCode === 200);
            });
            req.on('error', () => resolve(false));
          }),
        { what: 'podman system service to answer /_ping', timeoutMs: 20_000, intervalMs: 100 },
      );
      // Leftovers of an interrupted run.
      await compose(['down', '--volumes', '--timeout', '5']);
    }, 900_000);

    afterAll(async () => {
      if (socket !== '') {
        const down = await compose(['down', '--volumes', '--timeout', '15'], 90_000);
        if (down.code !== 0) console.warn(`docker-compose down failed\n${describeRun(down)}`);
      }
      await composeUp?.catch(() => undefined);
      if (service !== undefined && service.exitCode === null) {
        const exited = new Promise((resolve) => service!.once('exit', resolve));
        service.kill('SIGTERM');
        const timer = setTimeout(() => service!.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      if (dir !== '') await rm(dir, { recursive: true, force: true });
      // With one name only, untag would remove every name of the image.
      await tryPodman(['untag', COMPOSE_IMAGE, COMPOSE_IMAGE]);
    }, 120_000);

    it('starts the aggregator, then (once its health check passes) the load generator and Prometheus; no Grafana', async () => {
      progress(`docker-compose -f docker-compose.yml -f ${OVERRIDE} up -d --no-build`);
      console.warn(`grafana: NOT STARTED. No Grafana image can be had on this machine (no container registry, no Debian package): ${OVERRIDE} puts the service behind a profile; the dashboard is checked without Grafana in test/deploy/dashboard.test.ts and prometheus-queries.test.ts`);
      composeUp = compose(['up', '--detach', '--no-build'], 180_000);
      let upResult: RunResult | undefined;
      void composeUp.then((r) => (upResult = r));
      // depends_on: service_healthy waits for the aggregator's health check, which no systemd timer runs
      // here: run it as the timer would, until compose has started what waits for it.
      let checks = 0;
      await waitFor(
        async () => {
          if (upResult !== undefined) return true;
          await tryPodman(['healthcheck', 'run', name('aggregator')], 10_000);
          checks += 1;
          return false;
        },
        { what: 'docker-compose up to finish while the aggregator health check runs', timeoutMs: 150_000, intervalMs: 1000 },
      );
      expect(upResult!.code, describeRun(upResult!)).toBe(0);
      progress(`up done after ${checks} health check runs of the aggregator`);
      expect(await inspect(name('aggregator'), '{{.State.Health.Status}}')).toBe('healthy');
      const health = JSON.parse(await inspect(name('aggregator'), '{{json .State.Health}}')) as { Log: { Output: string }[] };
      expect(health.Log.at(-1)!.Output).toBe(`ok: GET http://127.0.0.1:${DEFAULTS.metricsPort}/readyz: 200 ready`);

      const names = (await podman(['ps', '--all', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--format', '{{.Names}}'])).stdout.trim().split('\n').sort();
      expect(names).toEqual([name('aggregator'), name('loadgen'), name('prometheus')]);
      for (const container of names) expect(await inspect(container, '{{.State.Status}}'), container).toBe('running');

      // The compose file's own check of Prometheus (wget /-/ready), in the Debian-based image.
      await waitFor(async () => (await tryPodman(['healthcheck', 'run', name('prometheus')], 10_000)).code === 0, {
        what: "Prometheus' health check (wget /-/ready) to pass",
        timeoutMs: 30_000,
        intervalMs: 1000,
      });
    }, 200_000);

    it("stops the load generator: its acknowledged totals are exactly what /metrics and Prometheus show", async () => {
      // The load generator reports every 10 s: one report with all 50 clients connected, then stop it.
      const report = await waitFor(async () => (await jsonLines(name('loadgen'))).find((l) => l.msg === 'loadgen progress' && typeof l.recorded === 'number' && l.recorded > 0), {
        what: "the load generator's first progress line",
        timeoutMs: 30_000,
        intervalMs: 1000,
      });
      progress(`loadgen: ${JSON.stringify(report)}`);
      const stop = await compose(['stop', '--timeout', '20', 'loadgen'], 60_000);
      expect(stop.code, describeRun(stop)).toBe(0);
      expect(await inspect(name('loadgen'), '{{.State.ExitCode}}')).toBe('0');
      loadgenDone = (await jsonLines(name('loadgen'))).find((l) => l.msg === 'loadgen done');
      expect(loadgenDone).toMatchObject({ reason: 'SIGTERM', flushFailures: 0, sessionsResumed: 0 });
      const series = loadgenDone!.series as { name: string; type: string; labels: Record<string, string>; value: number; count: number; sum: number }[];
      const key = (n: string, labels: Record<string, string>): string => `${n}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`;

      const samples = await metricsAt(COMPOSE_PORTS.metrics);
      const counters = series.filter((s) => s.type === 'counter');
      const histograms = series.filter((s) => s.type === 'histogram');
      expect(counters.length).toBeGreaterThan(0);
      expect(histograms.length).toBeGreaterThan(0);
      for (const s of counters) expect(samples.get(key(s.name, s.labels)), key(s.name, s.labels)).toBe(s.value);
      for (const s of histograms) {
        expect(samples.get(key(`${s.name}_count`, s.labels)), key(s.name, s.labels)).toBe(s.count);
        expect(samples.get(key(`${s.name}_sum`, s.labels))).toBeCloseTo(s.sum, 6);
      }
      // Every series the load generator did not report stayed at 0, and every session has ended.
      const clicks = counters.filter((s) => s.name === 'demo_clicks_total').reduce((sum, s) => sum + s.value, 0);
      expect(familySum(samples, 'demo_clicks_total')).toBe(clicks);
      expect(familySum(samples, 'connected_clients')).toBe(0);
      progress(`/metrics: demo_clicks_total ${clicks} over ${counters.length} series, as the load generator reported; ${String(loadgenDone!.sessionsStarted)} sessions`);

      // Prometheus scrapes every 15 s (deploy/prometheus/prometheus.yml): bounded wait for the final values.
      const query = async (expr: string): Promise<number | undefined> => {
        const response = await fetch(`http://127.0.0.1:${COMPOSE_PORTS.prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
        const body = (await response.json()) as { status: string; data: { result: { value: [number, string] }[] } };
        if (body.status !== 'success') throw new Error(`query ${expr}: ${JSON.stringify(body)}`);
        const [first, ...more] = body.data.result;
        if (more.length > 0) throw new Error(`query ${expr}: ${body.data.result.length} series`);
        return first === undefined ? undefined : Number(first.value[1]);
      };
      await waitFor(async () => (await query('up{job="promstream"}')) === 1 && (await query('sum(demo_clicks_total)')) === clicks && (await query('sum(connected_clients)')) === 0, {
        what: `Prometheus to scrape the aggregator (up 1): sum(demo_clicks_total) = ${clicks} and no connected clients`,
        timeoutMs: 45_000,
        intervalMs: 1000,
      });
      for (const s of counters) expect(await query(key(s.name, s.labels)), key(s.name, s.labels)).toBe(s.value);
      for (const s of histograms) expect(await query(key(`${s.name}_count`, s.labels)), key(s.name, s.labels)).toBe(s.count);
      progress('Prometheus has the same totals');
    }, 150_000);
  });
});
