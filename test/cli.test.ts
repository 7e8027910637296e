/**
 * The command line as users run it: `node bin/promstream.js …` in its own process, against the built
 * dist/ (`npm test` builds first). Every child is killed in afterEach; nothing sleeps.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../client/node.js';
import { CloseReasons, ServerMessageType,  SUBPROTOCOL, decodeServerFrame, encodeHello, parseServerMessage, type Welcome } from '../protocol/index.js';
import { SERVE_OPTIONS, envName } from '../server/setup/option-table.js';
import { LOOPBACK_ARGS, REPO_ROOT, httpGet, killAllClis, runCli, spawnCli, startServe, type CliProcess, type LogRecord, type ServingCli } from './support/spawn-cli.js';
import { waitFor } from './support/wait-for.js';
import { itEachTransport } from './support/server-harness.js';
import { expectedUwsBuild, uwsTests } from './support/uws-availability.js';

const packageVersion = (name: string): string => (JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

const VERSION = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const SEED_CONFIG = path.join(REPO_ROOT, 'test', 'fixtures', 'seed-config');
const DEMO_PAGE = path.join(REPO_ROOT, 'examples', 'demo.html');

afterEach(async () => {
  await killAllClis();
});

/** Rejects with `what` if `p` has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface Peer {
  readonly ws: WebSocket;
  readonly welcome: Welcome;
  readonly closed: Promise<{ code: number; reason: string }>;
}

const openPeers = new Set<WebSocket>();
afterEach(() => {
  for (const ws of openPeers) ws.terminate();
  openPeers.clear();
});

/** A raw protocol peer: subprotocol promstream.v1, hello, and the decoded welcome. */
async function helloPeer(port: number, labels: Record<string, string> = { app: 'demo' }): Promise<Peer> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, [SUBPROTOCOL]);
  openPeers.add(ws);
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const welcome = new Promise<Welcome>((resolve, reject) => {
    ws.once('open', () => {
      if (ws.protocol !== SUBPROTOCOL) reject(new Error(`server picked subprotocol "${ws.protocol}"`));
      ws.send(encodeHello(labels, null));
    });
    ws.once('message', (data: Buffer) => {
      try {
        const msg = parseServerMessage(decodeServerFrame(data));
        if (msg.type !== ServerMessageType.WELCOME) throw new Error(`expected a welcome, got ${JSON.stringify(msg)}`);
        resolve(msg);
      } catch (err) {
        reject(err as Error);
      }
    });
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    void closed.then(({ code, reason }) => reject(new Error(`closed before the welcome: ${code} ${reason}`)));
  });
  return { ws, welcome: await within(welcome, 10_000, 'the welcome'), closed };
}

describe('promstream (no command / global flags)', () => {
  it("--version prints package.json's version and exits 0", async () => {
    const r = await runCli(['--version']);
    expect(r).toMatchObject({ code: 0, signal: null, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('--help lists serve and check-config and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}promstream serve \[options\]/m);
    expect(r.stdout).toMatch(/^ {2}promstream check-config PATH\.\.\./m);
    expect(r.stdout).toMatch(/^ {2}promstream --version/m);
    expect(r.stderr).toBe('');
  });

  it('no arguments prints the usage and exits 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    const out = r.stdout + r.stderr;
    expect(out).toContain('Usage:');
    expect(out).toContain('promstream serve [options]');
    expect(out).toContain('promstream check-config PATH...');
  });

  it('an unknown command exits 2 naming it', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^promstream: unknown command "frobnicate"$/m);
    expect(r.stdout).toBe('');
  });
});

describe('promstream serve: options', () => {
  it('serve --help lists every option with its default and its PROMSTREAM_* variable', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.split('\n');
    expect(SERVE_OPTIONS.length).toBeGreaterThan(0);
    for (const o of SERVE_OPTIONS) {
      // "  --flag    help" and, on the next line, "default: …; env: PROMSTREAM_…"
      const at = lines.findIndex((l) => l.startsWith(`  --${o.flag} `));
      expect(at, `--${o.flag} in serve --help`).toBeGreaterThanOrEqual(0);
      expect(lines[at]).toContain(o.help);
      expect(lines[at + 1]?.trim(), `--${o.flag}'s default and env line`).toBe(`default: ${o.defaultText}; env: ${envName(o.flag)}`);
    }
    // the mapping of DESIGN.md, and its defaults
    expect(envName('metrics-port')).toBe('PROMSTREAM_METRICS_PORT');
    const designDefaults: Record<string, string> = {
      host: '0.0.0.0', port: '3000', 'metrics-host': '0.0.0.0', 'metrics-port': '9102', transport: 'auto',
      'flush-interval': '10s', 'idle-timeout': '30s', 'session-ttl': '2m', 'handshake-timeout': '10s',
      'max-payload': '64KiB', 'drain-window': '5s', 'allowed-origins': '*', 'log-level': 'info', demo: 'off',
    };
    for (const [flag, def] of Object.entries(designDefaults)) {
      expect(SERVE_OPTIONS.find((o) => o.flag === flag)?.defaultText, `default of --${flag}`).toBe(def);
    }
  });

  it('an unknown option exits 2 naming it, without starting', async () => {
    const r = await runCli(['serve', '--demo', '--frobnicate', '3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^promstream: unknown option --frobnicate\b/m);
    expect(r.stdout).not.toContain('promstream listening');
  });

  it('a bad duration exits 2 naming the option', async () => {
    const r = await runCli(['serve', '--demo', '--idle-timeout', '5parsecs']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^promstream: --idle-timeout: .*"5parsecs"/m);
    expect(r.stdout).not.toContain('promstream listening');
  });

  it('a duration out of range (--idle-timeout below 1s) exits 2 naming the option, not a stack trace', async () => {
    const r = await runCli(['serve', '--demo', '--idle-timeout', '500ms', '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1', '--metrics-host', '127.0.0.1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^ {2}--idle-timeout: must be ≥ 1000 \(got 500\)$/m);
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    expect(r.stdout).not.toContain('promstream listening');
  });

  it('a bad environment variable exits 2 naming the variable', async () => {
    const r = await runCli(['serve', '--demo'], { env: { PROMSTREAM_PORT: 'abc' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^promstream: PROMSTREAM_PORT: .*"abc"/m);
    expect(r.stdout).not.toContain('promstream listening');
  });

  it('without --config and without --demo it exits 2 saying so', async () => {
    const r = await runCli(['serve', '--port', '0', '--metrics-port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^promstream: no whitelist: pass --config PATH \(or --demo\)/m);
    expect(r.stdout).not.toContain('promstream listening');
  });
});

describe('promstream check-config and a bad --config', () => {
  let dir: string;
  let fileA: string;
  let fileB: string;
  /** Every problem in the two files: [file, metric, field]. */
  let expected: [string, string, string][];

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'promstream-cli-'));
    fileA = path.join(dir, 'a.json');
    fileB = path.join(dir, 'b.yaml');
    writeFileSync(
      fileA,
      JSON.stringify({
        allowedMetrics: [
          { name: '9bad-name', help: 'x', type: 'counter', labels: [] },
          { name: 'rt_seconds', help: 'x', type: 'histogram', labels: [], buckets: [1, 0.5] },
          { name: 'usage_total', help: 'x', type: 'counter', labels: [{ name: 'feature', allowedValues: [] }] },
          { name: 'presenting', help: 'x', type: 'gauge', labels: [], colour: 'red' },
          { name: 'shared_total', help: 'x', type: 'counter', labels: [] },
        ],
      }),
    );
    writeFileSync(
      fileB,
      [
        'allowedMetrics:',
        '  - { name: shared_total, help: again, type: counter, labels: [] }',
        '  - name: other_total',
        '    help: reserved label name',
        '    type: counter',
        '    labels: [{ name: __feature, allowedValues: [a] }]',
        '',
      ].join('\n'),
    );
    expected = [
      [fileA, '9bad-name', 'name'],
      [fileA, 'rt_seconds', 'buckets[1]'],
      [fileA, 'usage_total', 'labels[0].allowedValues'],
      [fileA, 'presenting', 'colour'],
      [fileB, 'shared_total', 'name'],
      [fileB, 'other_total', 'labels[0].name'],
    ];
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Problem lines are "  FILE: metric NAME: FIELD: message". */
  const problemLines = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('  '));

  it('accepts the seed config: exit 0 with a summary', async () => {
    const r = await runCli(['check-config', SEED_CONFIG]);
    expect(r).toMatchObject({ code: 0, stdout: 'ok: 2 files, 20 metrics, 0 session labels\n', stderr: '' });
  });

  it('lists every problem of a bad directory, naming file, metric and field; exit 1', async () => {
    const r = await runCli(['check-config', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`the whitelist has ${expected.length} problems:`);
    const lines = problemLines(r.stderr);
    expect(lines).toHaveLength(expected.length);
    for (const [file, metric, field] of expected) {
      expect(lines.some((l) => l.startsWith(`  ${file}: metric ${metric}: ${field}: `)), `${file} / ${metric} / ${field} in:\n${r.stderr}`).toBe(true);
    }
    expect(r.stderr).toContain(`metric "shared_total" is already defined in ${fileA}`);
  });

  it('serve --config with a bad file refuses to start: exit 1 listing every problem', async () => {
    const r = await runCli(['serve', '--config', fileA, '--port', '0', '--metrics-port', '0', '--host', '127.0.0.1', '--metrics-host', '127.0.0.1']);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('promstream listening');
    const ofA = expected.filter(([file]) => file === fileA);
    expect(r.stderr).toContain(`the whitelist has ${ofA.length} problems:`);
    const lines = problemLines(r.stderr);
    expect(lines).toHaveLength(ofA.length);
    for (const [file, metric, field] of ofA) {
      expect(lines.some((l) => l.startsWith(`  ${file}: metric ${metric}: ${field}: `)), `${metric} / ${field} in:\n${r.stderr}`).toBe(true);
    }
  });
});

describe('promstream serve --demo', () => {
  it('serves /metrics, /healthz on both sides, /readyz and the demo page; its PID is the server', async () => {
    const s = await startServe(['--demo']);
    expect(s.listening.pid).toBe(s.proc.pid);
    const base = `http://127.0.0.1:${s.metricsPort}`;

    const metrics = await httpGet(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/);
    expect(metrics.body.split('\n')).toContain('connected_clients{app="demo"} 0');
    expect(metrics.body.split('\n')).toContain('demo_clicks_total{button="red"} 0');

    expect(await httpGet(`${base}/healthz`)).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await httpGet(`http://127.0.0.1:${s.port}/healthz`)).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await httpGet(`${base}/readyz`)).status).toBe(200);

    const page = await httpGet(`http://127.0.0.1:${s.port}/`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toBe(readFileSync(DEMO_PAGE, 'utf8'));
    expect(page.body).toContain('promstream demo');
    expect(page.body).toContain('/promstream.js');

    // the demo whitelist takes real samples from the Node client
    const client = createClient({ url: `ws://127.0.0.1:${s.port}/ws`, labels: { app: 'demo' } });
    try {
      client.increment('demo_clicks_total', { button: 'red' }, 3);
      await within(client.flush(), 10_000, 'the flush to be acknowledged');
      const after = (await httpGet(`${base}/metrics`)).body.split('\n');
      expect(after).toContain('demo_clicks_total{button="red"} 3');
      expect(after).toContain('connected_clients{app="demo"} 1');
    } finally {
      await within(client.close(), 10_000, 'the client to close');
    }
  });

  it('takes its options from PROMSTREAM_* variables; the command line wins', async () => {
    const env = {
      PROMSTREAM_DEMO: 'true',
      PROMSTREAM_TRANSPORT: 'ws',
      PROMSTREAM_FLUSH_INTERVAL: '2s',
      PROMSTREAM_IDLE_TIMEOUT: '7s',
      PROMSTREAM_MAX_FRAME_BYTES: '16KiB',
    };
    const s = await startServe([], { env });
    expect(s.listening.transport).toBe('ws');
    const peer = await helloPeer(s.port);
    expect(peer.welcome.flushIntervalMs).toBe(2000);
    expect(peer.welcome.idleTimeoutMs).toBe(7000);
    expect(peer.welcome.limits.maxFrameBytes).toBe(16 * 1024);
    peer.ws.close();

    // The flag beats PROMSTREAM_TRANSPORT=ws: uws where it loads; elsewhere auto, which says why it is on ws.
    const t = await startServe(['--flush-interval', '1500ms', '--transport', uwsTests.run ? 'uws' : 'auto'], { env });
    if (uwsTests.run) expect(t.listening.transport).toBe('uws');
    else expect(t.proc.logs().filter((r) => r.msg?.startsWith('uWebSockets.js does not load here, using the ws transport'))).toHaveLength(1);
    const peer2 = await helloPeer(t.port);
    expect(peer2.welcome.flushIntervalMs).toBe(1500);
    expect(peer2.welcome.idleTimeoutMs).toBe(7000);
  });
});

describe('promstream serve: shutdown', () => {
  /** Waits for the exit, and checks it is the spawned PID that exits 0 on its own after a clean drain. */
  async function expectCleanExit(proc: CliProcess): Promise<void> {
    const exit = await proc.waitForExit(15_000);
    expect(exit, proc.stdout() + proc.stderr()).toEqual({ code: 0, signal: null });
    expect(proc.logs().some((r) => r.msg === 'stopped cleanly' && r.pid === proc.pid)).toBe(true);
    expect(() => process.kill(proc.pid, 0)).toThrow(/ESRCH/);
  }

  it('SIGTERM closes live clients with 1012, turns unready, and exits 0', async () => {
    const s: ServingCli = await startServe(['--demo', '--drain-window', '500ms']);
    expect(s.listening.pid).toBe(s.proc.pid);
    // two clients: the drain spreads their closes over the window, so the process is still draining
    // when the first one is told to go
    const peers = [await helloPeer(s.port), await helloPeer(s.port)];
    expect((await httpGet(`http://127.0.0.1:${s.metricsPort}/readyz`)).status).toBe(200);

    s.proc.signal('SIGTERM');
    const first = await within(Promise.race(peers.map((p) => p.closed)), 10_000, 'the first client to be closed');
    expect(first).toEqual({ code: 1012, reason: 'server restarting; reconnect and resume' });
    expect(CloseReasons.serverRestart).toMatchObject(first);

    // during the drain the private side says "not ready", or is already gone
    const readyz = await httpGet(`http://127.0.0.1:${s.metricsPort}/readyz`).then(
      (r) => r.status,
      (err: NodeJS.ErrnoException) => err.code,
    );
    expect(['ECONNREFUSED', 'ECONNRESET', 503]).toContain(readyz);

    for (const p of peers) {
      expect(await within(p.closed, 10_000, 'every client to be closed')).toEqual({ code: 1012, reason: 'server restarting; reconnect and resume' });
    }
    await expectCleanExit(s.proc);
    expect(s.proc.logs().find((r) => r.msg === 'draining: closing clients with 1012')).toMatchObject({ clients: 2, windowMs: 500 });
    // both ports are released
    await expect(httpGet(`http://127.0.0.1:${s.metricsPort}/readyz`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(httpGet(`http://127.0.0.1:${s.port}/healthz`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('a second signal during the drain exits 130 at once, after saying so', async () => {
    const s = await startServe(['--demo', '--drain-window', '30s']);
    const peers = [await helloPeer(s.port), await helloPeer(s.port)];
    s.proc.signal('SIGTERM');
    expect((await within(Promise.race(peers.map((p) => p.closed)), 10_000, 'the first 1012')).code).toBe(1012);
    expect(s.proc.exit).toBeNull();
    const secondAt = performance.now();
    s.proc.signal('SIGTERM');
    expect(await s.proc.waitForExit(5_000)).toEqual({ code: 130, signal: null });
    expect(performance.now() - secondAt).toBeLessThan(5_000);
    expect(s.proc.logs().find((r) => r.msg === 'second signal: exiting without draining')).toMatchObject({ signal: 'SIGTERM', pid: s.proc.pid });
    expect(s.proc.logs().some((r) => r.msg === 'stopped cleanly')).toBe(false);
  });

  it('SIGINT shuts down cleanly and exits 0', async () => {
    const s = await startServe(['--demo', '--drain-window', '500ms']);
    const peer = await helloPeer(s.port);
    s.proc.signal('SIGINT');
    expect(await within(peer.closed, 10_000, 'the client to be closed')).toEqual({ code: 1012, reason: 'server restarting; reconnect and resume' });
    await expectCleanExit(s.proc);
    expect(s.proc.logs().find((r) => r.msg === 'shutting down')).toMatchObject({ signal: 'SIGINT' });
  });
});

/**
 * A FIFO for a server's stdout that the test reads until the server is listening and then stalls: it
 * stops reading and fills the pipe from its own write end, so every later write of the server finds it
 * full (EAGAIN), as behind a log shipper that hangs. All ends are non-blocking on the test's side.
 */
interface StalledStdout {
  /** The write end to pass as the child's stdout (close it in the test once the child has it). */
  readonly childFd: number;
  /** Reads what arrived so far; resolves with the 'promstream listening' record. */
  listening(): Promise<LogRecord>;
  /** Fills the pipe to the brim; returns the bytes it took. */
  fill(): number;
  close(): void;
}

function stalledStdout(): StalledStdout {
  const dir = mkdtempSync(path.join(tmpdir(), 'promstream-stdout-'));
  const fifo = path.join(dir, 'stdout.fifo');
  execFileSync('mkfifo', [fifo]);
  // The read end first: opening a write end of a FIFO without a reader would block (or fail).
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const filler = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
  const childFd = openSync(fifo, constants.O_WRONLY);
  let text = '';
  const buf = Buffer.alloc(64 * 1024);
  const readSome = (): void => {
    // Bounded: the FIFO holds at most 64 KiB, read in at most a few rounds.
    for (let i = 0; i < 16; i++) {
      try {
        const n = readSync(reader, buf);
        if (n === 0) return;
        text += buf.toString('utf8', 0, n);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return;
        throw err;
      }
    }
  };
  return {
    childFd,
    listening: () =>
      waitFor(
        () => {
          readSome();
          for (const line of text.split('\n')) {
            if (!line.startsWith('{')) continue;
            const rec = JSON.parse(line) as LogRecord;
            if (rec.msg === 'promstream listening') return rec;
          }
          return undefined;
        },
        { what: "the 'promstream listening' line on the FIFO" },
      ),
    fill() {
      let total = 0;
      // Big writes first, then smaller ones, until not even one byte fits: each size is tried until EAGAIN,
      // at most 64 KiB worth of times.
      for (const size of [4096, 512, 64, 8, 1]) {
        const chunk = Buffer.alloc(size, 0x2e);
        for (let i = 0; i < (64 * 1024) / size; i++) {
          try {
            total += writeSync(filler, chunk);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
            break;
          }
        }
      }
      return total;
    },
    close() {
      for (const fd of [reader, filler, childFd]) {
        try {
          closeSync(fd);
        } catch {
          // already closed (childFd, once handed over)
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('promstream serve: shutdown when nobody reads its log (stdout)', () => {
  const stalled: StalledStdout[] = [];
  afterEach(() => {
    for (const s of stalled.splice(0)) s.close();
  });

  /** `serve` with its stdout on a stalled FIFO: listening, then the pipe is full. */
  async function serveWithStalledStdout(args: readonly string[]): Promise<{ proc: CliProcess; port: number }> {
    const out = stalledStdout();
    stalled.push(out);
    const proc = spawnCli(['serve', ...LOOPBACK_ARGS, ...args], { stdoutFd: out.childFd });
    closeSync(out.childFd);
    const listening = await out.listening();
    expect(listening.pid).toBe(proc.pid);
    expect(out.fill()).toBeGreaterThan(0);
    return { proc, port: listening['port'] as number };
  }

  it('SIGTERM during start-up is kept: the server finishes starting, drains, and exits 0 (not killed by the signal)', async () => {
    // The origins warning is logged after the signal listeners are in place and before the server listens.
    const proc = spawnCli(['serve', ...LOOPBACK_ARGS, '--demo', '--drain-window', '200ms']);
    await proc.waitForLog((r) => typeof r.msg === 'string' && r.msg.startsWith('--allowed-origins is *'), { what: 'the origins warning' });
    proc.signal('SIGTERM');
    expect(await proc.waitForExit(10_000)).toEqual({ code: 0, signal: null });
    const msgs = proc.logs().map((r) => r.msg);
    expect(msgs.indexOf('shutting down')).toBeGreaterThan(msgs.indexOf('promstream listening'));
    expect(msgs.at(-1)).toBe('stopped cleanly');
  });

  it('SIGTERM exits 0 within 5 s after the reader of its stdout is gone (EPIPE)', async () => {
    const s = await startServe(['--demo', '--drain-window', '200ms']);
    s.proc.child.stdout!.destroy(); // the only reader: every later write gets EPIPE
    const signalledAt = performance.now();
    s.proc.signal('SIGTERM');
    expect(await s.proc.waitForExit(5_000)).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalledAt).toBeLessThan(5_000);
  });

  it('SIGTERM exits 0 within 5 s while its stdout is a full pipe nobody reads (EAGAIN)', async () => {
    const { proc } = await serveWithStalledStdout(['--demo', '--drain-window', '200ms']);
    proc.signal('SIGTERM');
    expect(await proc.waitForExit(5_000)).toEqual({ code: 0, signal: null });
  });

  it('a second signal exits 130 at once while the first drain still runs, its stdout full', async () => {
    // Two clients and a 30 s window: the second 1012 is due 15 s after the first.
    const { proc, port } = await serveWithStalledStdout(['--demo', '--drain-window', '30s']);
    const peers = [await helloPeer(port), await helloPeer(port)];
    proc.signal('SIGTERM');
    const first = await within(Promise.race(peers.map((p) => p.closed)), 10_000, 'the first 1012');
    expect(first.code).toBe(1012);
    expect(proc.exit).toBeNull(); // still draining
    const secondAt = performance.now();
    proc.signal('SIGINT');
    expect(await proc.waitForExit(5_000)).toEqual({ code: 130, signal: null });
    expect(performance.now() - secondAt).toBeLessThan(5_000);
  });
});

describe('promstream serve --transport', () => {
  itEachTransport('--transport %s starts, says so (and which build) in the listening line and welcomes a client', async (transport) => {
    const s = await startServe(['--demo', '--transport', transport]);
    expect(s.listening).toMatchObject({ transport, port: s.port, metricsPort: s.metricsPort, pid: s.proc.pid });
    const build = expectedUwsBuild();
    if (transport === 'ws') expect(s.listening.transportLibrary).toEqual({ package: 'ws', version: packageVersion('ws') });
    else {
      expect(build, 'no installed uWS build runs here (see test/support/uws-availability.ts)').not.toBeNull();
      // Node 20 on Debian 12: @trufflesuite 20.30, with @btc-vision's binary passed over for its glibc.
      expect(s.listening.transportLibrary).toMatchObject({
        package: build!.packageName,
        version: build!.version,
        binary: path.join(REPO_ROOT, 'node_modules', build!.dir, build!.dir === 'uWebSockets.js' ? 'binaries' : '', `uws_linux_x64_${process.versions.modules}.node`),
      });
    }
    // Nothing about uWS on stderr, whatever the build (the packages' own loaders would print there).
    expect(s.proc.stderr()).toBe('');
    expect(s.port).toBeGreaterThan(0);
    expect(s.metricsPort).toBeGreaterThan(0);
    const peer = await helloPeer(s.port);
    expect(peer.welcome.flushIntervalMs).toBe(10_000);
    expect((await httpGet(`http://127.0.0.1:${s.metricsPort}/metrics`)).body.split('\n')).toContain('connected_clients{app="demo"} 1');
  });
});

describe('promstream serve: SIGHUP reloads the whitelist', () => {
  it('a SIGHUP during a reload is applied after it, so the newest file wins (hostile item 9)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'promstream-sighup-'));
    const file = path.join(dir, 'metrics.json');
    const counter = (name: string) => ({ name, help: 'h', type: 'counter', labels: [] });
    try {
      writeFileSync(file, JSON.stringify({ allowedMetrics: [counter('a_total')] }));
      const server = await startServe(['--config', file, '--drain-window', '3s']);
      // Three clients, so the reload's reconnects are spread over the 3 s window.
      await Promise.all([0, 1, 2].map(() => helloPeer(server.port, {})));
      writeFileSync(file, JSON.stringify({ allowedMetrics: [counter('a_total'), counter('b_total')] }));
      server.proc.signal('SIGHUP');
      await server.proc.waitForLog((r) => r.msg === 'whitelist reloaded; reconnecting clients for the new catalogue', { what: 'the first reload under way' });
      writeFileSync(file, JSON.stringify({ allowedMetrics: [counter('a_total'), counter('c_total')] }));
      server.proc.signal('SIGHUP');
      await server.proc.waitForLog((r) => r.msg === 'SIGHUP during a reload: reloading again once it is done', { what: 'the second SIGHUP noted' });
      await waitFor(async () => (await httpGet(`http://127.0.0.1:${server.metricsPort}/metrics`)).body.includes('c_total 0'), { what: 'the newest file applied', timeoutMs: 15_000 });
      const body = (await httpGet(`http://127.0.0.1:${server.metricsPort}/metrics`)).body;
      expect(body).not.toContain('b_total');
      expect(server.proc.logs().filter((r) => r.msg === 'whitelist reload applied')).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('applies a valid whitelist and refuses an invalid one with every problem logged, keeping the old', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'promstream-sighup-'));
    const file = path.join(dir, 'metrics.json');
    const metric = (name: string) => ({ name, help: 'h', type: 'counter', labels: [{ name: 'f', allowedValues: ['x'] }] });
    try {
      writeFileSync(file, JSON.stringify({ allowedMetrics: [metric('first_total')] }));
      const server = await startServe(['--config', file]);
      const peer = await helloPeer(server.port, {});
      const before = (await httpGet(`http://127.0.0.1:${server.metricsPort}/metrics`)).body;
      expect(before).toContain('first_total{f="x"} 0');
      expect(before).not.toContain('second_total');

      writeFileSync(file, JSON.stringify({ allowedMetrics: [metric('first_total'), metric('second_total')] }));
      server.proc.signal('SIGHUP');
      const applied = await server.proc.waitForLog((r) => r.msg === 'whitelist reload applied', { what: 'the reload to apply' });
      expect(applied['changed']).toBe(true);
      expect(await within(peer.closed, 10_000, 'the 4006 close')).toEqual({ code: 4006, reason: CloseReasons.catalogChanged.reason });
      const after = (await httpGet(`http://127.0.0.1:${server.metricsPort}/metrics`)).body;
      expect(after).toContain('second_total{f="x"} 0');

      writeFileSync(file, JSON.stringify({ allowedMetrics: [{ name: 'bad name', help: '', type: 'gauge', extra: 1 }] }));
      server.proc.signal('SIGHUP');
      const refused = await server.proc.waitForLog((r) => r.msg === 'whitelist reload refused; keeping the old whitelist', { what: 'the refusal' });
      const problems = refused['problems'] as string[];
      expect(problems.length).toBe(3);
      for (const p of problems) expect(p.startsWith(`${file}: metric bad name`)).toBe(true);
      const kept = (await httpGet(`http://127.0.0.1:${server.metricsPort}/metrics`)).body;
      expect(kept).toContain('second_total{f="x"} 0');
      expect(server.proc.exit).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
