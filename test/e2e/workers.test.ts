/**
 * `promstream serve --workers 2` as a user runs it: the real process, worker threads on one public port,
 * clients on 127.0.0.1. Which worker serves a connection is the kernel's choice (SO_REUSEPORT spreads
 * connections by their address and port); the tests learn it from the server's debug log ("session
 * attached", with the worker's number), which never reaches a client, and reconnect until a session lands
 * where the test needs it. ws shares a port between threads from Node 22.12 on; on older Nodes its
 * variants check that --workers 2 is refused with the reason.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient, type ClientStatus, type PromstreamClient } from '../../client/node.js';
import { CloseReasons, encodeDelta, encodeGoodbye } from '../../protocol/index.js';
import { admittedSockets } from '../../server/setup/descriptor-guard.js';
import { nodeSharesPorts } from '../../server/setup/workers-choice.js';
import { httpGet, killAllClis, runCli, startServe, type LogRecord, type ServingCli } from '../support/spawn-cli.js';
import { scrape, valueOf } from '../support/scrape.js';
import { rawClient, TEST_WHITELIST_FILE, TRANSPORTS, type RawClient } from '../support/server-harness.js';
import { describeWithUws } from '../support/uws-availability.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait-for.js';

const WHITELIST = TEST_WHITELIST_FILE;
const RELOADED = { ...WHITELIST, allowedMetrics: [...WHITELIST.allowedMetrics, { name: 'extra_total', help: 'added by a reload', type: 'counter', labels: [] }] };

let dir: string;
let whitelistFile: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'promstream-workers-'));
  whitelistFile = path.join(dir, 'whitelist.json');
  writeFileSync(whitelistFile, JSON.stringify(WHITELIST));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TEST_ENV = { PROMSTREAM_TEST_HOOKS: '1' };
const serve = (transport: string, args: readonly string[] = []): Promise<ServingCli> =>
  startServe(['--config', whitelistFile, '--transport', transport, '--workers', '2', '--log-level', 'debug', ...args], { env: TEST_ENV });

/** session id → the workers that served it, in order, from the debug log. */
function attachments(s: ServingCli): Map<string, { worker: number; resumed: boolean }[]> {
  const out = new Map<string, { worker: number; resumed: boolean }[]>();
  for (const r of s.proc.logs()) {
    if (r.msg !== 'session attached') continue;
    const list = out.get(r.session as string) ?? [];
    list.push({ worker: r.worker as number, resumed: r.resumed as boolean });
    out.set(r.session as string, list);
  }
  return out;
}
const workerOf = (s: ServingCli, sessionId: string): number | undefined => attachments(s).get(sessionId)?.at(-1)?.worker;
const metrics = (s: ServingCli): Promise<Map<string, number>> => scrape(s.metricsPort);

/**
 * Flushes `cs` and adds clients until both workers serve some (at most 40): the kernel hashes each
 * connection to a worker, so a handful can all land on one.
 */
async function untilBothWorkers(s: ServingCli, cs: readonly PromstreamClient[], addClient: () => void): Promise<void> {
  for (;;) {
    await Promise.all(cs.map((c) => c.flush()));
    await waitFor(() => cs.every((c) => workerOf(s, c.sessionId!) !== undefined), { what: 'every attach log line' });
    if (new Set(cs.map((c) => workerOf(s, c.sessionId!))).size === 2 || cs.length >= 40) return;
    addClient();
  }
}

/** A raw client welcomed by worker `want` (new connections until the kernel picks it). */
async function rawOn(s: ServingCli, want: number, resume: { sessionId: string; token: string; epoch: string } | null = null): Promise<{ c: RawClient; sessionId: string; token: string; epoch: string }> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const before = resume === null ? 0 : (attachments(s).get(resume.sessionId)?.length ?? 0);
    const c = await rawClient(s.port);
    const w = await c.hello({ app: 'student' }, resume);
    CATALOG_VERSION.value = w.catalog.version;
    await waitFor(() => (attachments(s).get(w.sessionId)?.length ?? 0) > before, { what: 'the attach log line' });
    if (workerOf(s, w.sessionId) === want) return { c, sessionId: w.sessionId, token: w.token, epoch: w.epoch };
    // Not there: a fresh session says goodbye (it ends, so it counts nowhere); a resume just leaves.
    if (resume === null) c.send(encodeGoodbye());
    else c.ws.close(1000);
    await c.closed;
  }
  throw new Error(`no connection landed on worker ${want} in 60 attempts`);
}

for (const transport of TRANSPORTS) {
  const shares = transport === 'uws' || nodeSharesPorts();
  const defineShared = !shares ? describe.skip : transport === 'uws' ? describeWithUws() : describe;
  defineShared(`--workers 2 over ${transport}`, () => {
    const clients: PromstreamClient[] = [];
    const raws: RawClient[] = [];
    let proxy: TcpProxy | undefined;
    afterEach(async () => {
      await proxy?.close();
      proxy = undefined;
      for (const r of raws.splice(0)) r.ws.terminate();
      await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
      await killAllClis();
    });

    it('one port, one /metrics: sums over workers, resumes that land on the other worker lose nothing and count nothing twice', async () => {
      const s = await serve(transport);
      expect(s.listening).toMatchObject({ workers: 2, transport });
      const p = await startTcpProxy({ host: '127.0.0.1', port: s.port });
      proxy = p;
      const sent = [0, 0, 0, 0];
      const cs = sent.map((_, i) => {
        const c = createClient({ url: `ws://127.0.0.1:${p.port}/ws`, labels: { app: i === 0 ? 'teacher' : 'student' }, flushInterval: 10, backoff: { baseMs: 20, capMs: 200 } });
        clients.push(c);
        return c;
      });
      await Promise.all(cs.map((c) => c.flush()));
      await waitFor(() => cs.every((c) => c.sessionId !== null), { what: 'every client welcomed' });
      // Bounded: 40 rounds, a cut every 150 ms; every reconnect is a new source port, so the kernel
      // sends about half of them to the other worker.
      const cutter = setInterval(() => p.cutAll(), 150);
      try {
        for (let round = 0; round < 40; round++) {
          cs.forEach((c, i) => {
            const n = 1 + ((round * 7 + i * 3) % 5);
            c.increment('usage_total', { feature: 'a' }, n);
            c.observe('rt_seconds', { host: 'x' }, 0.2);
            sent[i]! += n;
          });
          await new Promise((r) => setTimeout(r, 25));
        }
      } finally {
        clearInterval(cutter);
      }
      await Promise.all(cs.map((c) => c.flush()));
      const m = await metrics(s);
      const total = sent.reduce((a, b) => a + b);
      expect(valueOf(m, 'usage_total{feature="a"}')).toBe(total);
      expect(valueOf(m, 'rt_seconds_count{host="x"}')).toBe(4 * 40);
      expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(4);
      // They did move: resumes on another worker than the session's previous connection.
      let moves = 0;
      for (const list of attachments(s).values()) for (let i = 1; i < list.length; i++) if (list[i]!.worker !== list[i - 1]!.worker && list[i]!.resumed) moves++;
      console.info(`${transport}: ${moves} resumes landed on the other worker`);
      expect(moves).toBeGreaterThan(0);
      await waitFor(async () => {
        const now = await metrics(s);
        return valueOf(now, 'connected_clients{app="student"}') === 3 && valueOf(now, 'connected_clients{app="teacher"}') === 1;
      }, { what: 'all four clients connected again, counted over both workers' });
      expect(valueOf(m, 'promstream_workers')).toBe(2);
    });

    it('a second connection for a session on the other worker replaces the first there (4002) and resumes at its seq', async () => {
      const s = await serve(transport);
      const a = await rawOn(s, 0);
      raws.push(a.c);
      a.c.send(encodeDeltaFrame(1));
      await a.c.next((m) => (m.type === 2 && m.lastAppliedSeq === 1 ? true : undefined));
      // Resume on new connections until one lands on worker 1. One landing on worker 0 replaces the
      // connection there and becomes the one to replace; each replacement is a 4002.
      let current = a.c;
      let replaced = 0;
      let b: RawClient | null = null;
      for (let attempt = 0; attempt < 60 && b === null; attempt++) {
        const before = attachments(s).get(a.sessionId)!.length;
        const c = await rawClient(s.port);
        raws.push(c);
        await c.hello({ app: 'student' }, { sessionId: a.sessionId, token: a.token, epoch: a.epoch });
        await waitFor(() => attachments(s).get(a.sessionId)!.length > before, { what: 'the attach log line' });
        expect(await current.closed).toEqual({ code: 4002, reason: CloseReasons.sessionReplaced.reason });
        replaced++;
        if (workerOf(s, a.sessionId) === 1) b = c;
        else current = c;
      }
      if (b === null) throw new Error('no resume landed on worker 1 in 60 attempts');
      const welcome = b.messages.find((m) => m.type === 1);
      expect(welcome).toMatchObject({ resumed: true, lastAppliedSeq: 1, sessionId: a.sessionId });
      b.send(encodeDeltaFrame(2));
      await b.next((m) => (m.type === 2 && m.lastAppliedSeq === 2 ? true : undefined));
      const m = await metrics(s);
      expect(valueOf(m, 'usage_total{feature="b"}')).toBe(1 + 2);
      expect(valueOf(m, 'connected_clients{app="student"}')).toBe(1);
      expect(valueOf(m, 'promstream_closes_total{code="4002"}')).toBe(replaced);
    });

    it('gauges: each worker\'s sessions add their part; a session that leaves takes it away', async () => {
      const s = await serve(transport);
      const a = await rawOn(s, 0);
      const b = await rawOn(s, 1);
      raws.push(a.c, b.c);
      a.c.send(encodeGaugeFrame(1, 3));
      b.c.send(encodeGaugeFrame(1, 4));
      await a.c.next((m) => (m.type === 2 ? true : undefined));
      await b.c.next((m) => (m.type === 2 ? true : undefined));
      expect(valueOf(await metrics(s), 'presenting')).toBe(7);
      b.c.ws.terminate();
      await waitFor(async () => valueOf(await metrics(s), 'presenting') === 3, { what: 'the gauge part of the session on worker 1 gone' });
      expect(valueOf(await metrics(s), 'connected_clients{app="student"}')).toBe(1);
    });

    it('a worker killed mid-stream: the other worker\'s clients carry on, its clients resume elsewhere, totals exact, the worker is started again', async () => {
      const s = await serve(transport);
      const statuses: ClientStatus[][] = [];
      const sent: number[] = [];
      const cs: PromstreamClient[] = [];
      const addClient = (): void => {
        const st: ClientStatus[] = [];
        const c = createClient({ url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'student' }, flushInterval: 20, backoff: { baseMs: 20, capMs: 200 }, onStatus: (x) => st.push(x) });
        clients.push(c);
        cs.push(c);
        statuses.push(st);
        sent.push(1);
        c.increment('usage_total', { feature: 'c' });
      };
      // Clients until both workers serve some (the kernel's hash puts twelve on one worker 1 time in 2,048).
      for (let i = 0; i < 12; i++) addClient();
      await untilBothWorkers(s, cs, addClient);
      const workerAtStart = cs.map((c) => workerOf(s, c.sessionId!));
      expect(new Set(workerAtStart)).toEqual(new Set([0, 1]));
      const streaming = (async () => {
        for (let round = 0; round < 60; round++) {
          cs.forEach((c, i) => {
            c.increment('usage_total', { feature: 'c' }, 1 + (i % 3));
            sent[i]! += 1 + (i % 3);
          });
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      await new Promise((r) => setTimeout(r, 150));
      s.proc.signal('SIGUSR2'); // test hook: worker 0 throws
      const died = await s.proc.waitForLog((r) => r.msg?.startsWith('worker died') === true, { what: 'the worker death logged' });
      expect(died).toMatchObject({ worker: 0 });
      await streaming;
      await Promise.all(cs.map((c) => c.flush()));
      const m = await metrics(s);
      expect(valueOf(m, 'usage_total{feature="c"}')).toBe(sent.reduce((a, b) => a + b));
      expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(cs.length);
      expect(valueOf(m, 'promstream_worker_restarts_total')).toBe(1);
      await s.proc.waitForLog((r) => r.msg === 'worker started again', { what: 'worker 0 started again' });
      expect(valueOf(await metrics(s), 'promstream_workers')).toBe(2);
      // The clients of worker 1 never lost their connection; those of worker 0 did, and resumed.
      cs.forEach((_, i) => {
        const disconnects = statuses[i]!.filter((x) => x.type === 'disconnected').length;
        if (workerAtStart[i] === 1) expect(disconnects, `client ${i} on worker 1`).toBe(0);
        else expect(disconnects, `client ${i} on worker 0`).toBeGreaterThan(0);
      });
      await waitFor(async () => valueOf(await metrics(s), 'connected_clients{app="student"}') === cs.length, { what: 'every client connected again' });
    });

    it('the host\'s limits: --max-connections and --max-sessions count both workers', async () => {
      const s = await serve(transport, ['--max-connections', '3', '--max-sessions', '3']);
      const opened = await Promise.all([0, 1, 2, 3, 4].map(async () => {
        const c = await rawClient(s.port);
        raws.push(c);
        const first = await Promise.race([c.hello({ app: 'student' }).then(() => 'welcome' as const), c.closed.then((x) => x.code)]);
        return first;
      }));
      expect(opened.filter((x) => x === 'welcome').length).toBe(3);
      expect(opened.filter((x) => x === 1013).length).toBe(2);
      const m = await metrics(s);
      expect(valueOf(m, 'promstream_protocol_errors_total{reason="too_many_connections"}')).toBe(2);
    });

    it('the open-files budget is the host\'s: one worker may hold more than its share of the sockets', async () => {
      // 140 open files admit 44 sockets (descriptor-guard.ts). Descriptors are the process's: a worker
      // the kernel's hash favours (or the one left while another restarts) takes what the host has free.
      const admitted = admittedSockets(140);
      const s = await startServe(['--config', whitelistFile, '--transport', transport, '--workers', '2', '--log-level', 'debug'], { env: TEST_ENV, openFiles: 140 });
      const onWorker0 = Math.floor(admitted / 2) + 8;
      for (let i = 0; i < onWorker0; i++) raws.push((await rawOn(s, 0)).c);
      await waitFor(async () => valueOf(await metrics(s), 'connected_clients{app="student"}') === onWorker0, { what: `${onWorker0} sessions connected` });
      const m = await metrics(s);
      expect(valueOf(m, 'promstream_protocol_errors_total{reason="too_many_connections"}') ?? 0).toBe(0);
      expect(valueOf(m, 'promstream_open_files_exhausted_total') ?? 0).toBe(0);
    });

    it('session TTL across workers: a session left on one worker cannot be resumed on the other after it', async () => {
      const s = await serve(transport, ['--session-ttl', '1s']);
      const a = await rawOn(s, 0);
      expect(valueOf(await metrics(s), 'promstream_sessions_resumable')).toBe(0);
      a.c.ws.close(1000);
      await a.c.closed;
      await waitFor(async () => valueOf(await metrics(s), 'promstream_sessions_expired_total') === 1, { what: 'the session expired by the main thread' });
      const c = await rawClient(s.port);
      raws.push(c);
      await c.hello({ app: 'student' }, { sessionId: a.sessionId, token: a.token, epoch: a.epoch }).catch(() => undefined);
      expect((await c.closed).code).toBe(4001);
    });

    it('SIGHUP reload and SIGTERM drain cover every worker: totals kept, 4006 then 1012 to everyone, exit 0', async () => {
      const s = await serve(transport, ['--drain-window', '200ms']);
      const connects: number[] = [];
      const cs: PromstreamClient[] = [];
      const addClient = (): void => {
        const i = connects.push(0) - 1;
        const c = createClient({
          url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'teacher' }, flushInterval: 20, backoff: { baseMs: 20, capMs: 200 },
          onStatus: (x) => { if (x.type === 'connected') connects[i]!++; },
        });
        clients.push(c);
        cs.push(c);
        c.increment('usage_total', { feature: 'a' }, 5);
      };
      for (let i = 0; i < 6; i++) addClient();
      // The kernel hashes each connection to a worker: six land on one worker 1 time in 32, so clients are
      // added until both workers hold some (one CI run had all six on worker 0).
      await untilBothWorkers(s, cs, addClient);
      expect(new Set(cs.map((c) => workerOf(s, c.sessionId!)))).toEqual(new Set([0, 1]));
      const n = cs.length;
      writeFileSync(whitelistFile, JSON.stringify(RELOADED));
      try {
        s.proc.signal('SIGHUP');
        await s.proc.waitForLog((r) => r.msg === 'every client reconnected for the new catalogue', { what: 'the reload done' });
      } finally {
        writeFileSync(whitelistFile, JSON.stringify(WHITELIST));
      }
      // The reload is done once every client was told (4006); each then reconnects with the new catalogue,
      // and a client still on the old one would drop extra_total as unknown.
      await waitFor(() => connects.every((n) => n === 2), { what: 'every client reconnected' });
      cs.forEach((c) => c.increment('extra_total'));
      await Promise.all(cs.map((c) => c.flush()));
      const m = await metrics(s);
      expect(valueOf(m, 'usage_total{feature="a"}')).toBe(5 * n);
      expect(valueOf(m, 'extra_total')).toBe(n);
      expect(valueOf(m, 'promstream_closes_total{code="4006"}')).toBe(n);
      expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(n);
      s.proc.signal('SIGTERM');
      expect(await s.proc.waitForExit(20_000)).toEqual({ code: 0, signal: null });
      expect(s.proc.logs().some((r: LogRecord) => r.msg === 'stopped cleanly')).toBe(true);
    });

    it('a second promstream on the same port is refused, not let into the workers\' shared port', async () => {
      const s = await serve(transport);
      const second = await runCli(['serve', '--config', whitelistFile, '--transport', transport, '--workers', '2', '--host', '127.0.0.1', '--port', String(s.port), '--metrics-host', '127.0.0.1', '--metrics-port', '0']);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`127.0.0.1:${s.port} is in use (another promstream or another program listens there)`);
      expect(valueOf(await metrics(s), 'promstream_workers')).toBe(2);
    });

    it('bad input on one worker disturbs no client of the other', async () => {
      const s = await serve(transport);
      const good = await rawOn(s, 1);
      raws.push(good.c);
      const bad = await rawOn(s, 0);
      raws.push(bad.c);
      bad.c.send(Uint8Array.from([0xc1, 0xc1, 0xc1]));
      expect((await bad.c.closed).code).toBe(1007);
      good.c.send(encodeDeltaFrame(1));
      await good.c.next((m) => (m.type === 2 && m.lastAppliedSeq === 1 ? true : undefined));
      expect(good.c.ws.readyState).toBe(1);
      expect(valueOf(await metrics(s), 'promstream_protocol_errors_total{reason="not_msgpack"}')).toBe(1);
    });

    it('the merged /metrics passes promtool check metrics', async () => {
      const promtool = '/usr/bin/promtool';
      if (!existsSync(promtool)) {
        if (process.env.CI) throw new Error('promtool is missing and CI is set');
        console.warn('SKIPPED: promtool not found');
        return;
      }
      const s = await serve(transport);
      const a = await rawOn(s, 0);
      const b = await rawOn(s, 1);
      raws.push(a.c, b.c);
      a.c.send(encodeDeltaFrame(1));
      await a.c.next((m) => (m.type === 2 ? true : undefined));
      const body = (await httpGet(`http://127.0.0.1:${s.metricsPort}/metrics`)).body;
      const r = spawnSync(promtool, ['check', 'metrics'], { input: body, encoding: 'utf8' });
      expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: '' });
    });
  });

  describe.runIf(!shares)(`--workers over ${transport} on Node ${process.versions.node}`, () => {
    it('--workers 2 is refused with the reason; auto runs one worker and says why', async () => {
      const refused = await runCli(['serve', '--config', whitelistFile, '--transport', transport, '--workers', '2', '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1', '--metrics-host', '127.0.0.1']);
      expect(refused.code).not.toBe(0);
      expect(refused.stdout + refused.stderr).toMatch(/--workers 2: not here, as the ws transport shares a port between threads from Node\.js 22\.12 on/);
      const auto = await startServe(['--config', whitelistFile, '--transport', transport]);
      expect(auto.listening).toMatchObject({ workers: 1, transport });
      expect(auto.proc.logs().some((r) => typeof r.msg === 'string' && r.msg.startsWith('--workers auto: one worker'))).toBe(true);
      await killAllClis();
    });
  });
}

/** A delta with seq `seq` adding `seq` to usage_total{feature="b"} (catalogue index 0, label value 1). */
function encodeDeltaFrame(seq: number): Uint8Array {
  return encodeDelta(seq, CATALOG_VERSION.value, [[0, 1, seq]], new Map());
}
function encodeGaugeFrame(seq: number, value: number): Uint8Array {
  return encodeDelta(seq, CATALOG_VERSION.value, [[2, value]], new Map());
}
const CATALOG_VERSION = { value: 0 };
