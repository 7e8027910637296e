#!/usr/bin/env node
// Simulated promstream clients: N Node clients (the real `promstream/client`) that record random counter
// increments, histogram observations and gauge values for every metric of a whitelist, reconnect on
// their own, and are replaced one at a time (--churn) so that sessions open and end. docker-compose.yml
// runs it so that the dashboard moves; the tests run it for a bounded time and compare its report with
// what the aggregator exposes.
//
// Output: JSON lines on stdout ("loadgen started", "loadgen progress" every --report-every, "loadgen done"
// with the exact totals every client had acknowledged). Exit 0, or 1 when a client's last flush was not
// acknowledged (its totals are then not exact), 2 on a usage error.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadWhitelist } from 'promstream';
import { createClient } from 'promstream/client';

const HELP = `Usage: node examples/loadgen.mjs [options]

Runs simulated promstream clients against an aggregator until --duration ends or SIGINT/SIGTERM; then
every client flushes and ends its session, and a summary line with the acknowledged totals is printed.

Options:
  --url URL              aggregator WebSocket URL              default: ws://127.0.0.1:3000/ws
  --clients N            simultaneous clients, 1-10000          default: 20
  --rate R               recordings per second per client, 0-100  default: 1
  --duration D           stop after D (500ms, 30s, 2m; bare number = seconds); 0 = until a signal  default: 0
  --churn D              every D, one client ends its session and a new one starts; 0 = off  default: 10s
  --whitelist PATH       whitelist file or directory (the server's); repeatable  default: the demo whitelist
  --flush-interval D     client flush interval, at least 100ms  default: what the server says
  --report-every D       progress line interval; 0 = off        default: 10s
  --seed N               seed of the random choices (a whole number)  default: random
  --help                 show this help
`;

const DEMO_WHITELIST = join(dirname(fileURLToPath(import.meta.url)), 'demo-whitelist.json');
const VERSION = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json'), 'utf8')).version;

class UsageError extends Error {}

/** '500ms', '10s', '2m', or a bare number of seconds (as promstream's own options) → milliseconds. */
function durationMs(flag, text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (m === null) throw new UsageError(`--${flag}: not a duration: "${text}" (use e.g. 500ms, 10s, 2m)`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']);
}

/** Below 100 ms a client would send more than 10 frames a second, half the server's default frame rate limit. */
function flushInterval(text) {
  const ms = durationMs('flush-interval', text);
  if (ms < 100) throw new UsageError(`--flush-interval: at least 100ms, got "${text}"`);
  return ms;
}

function numberIn(flag, text, min, max, { integer = false } = {}) {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag}: expected ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

function parseOptions(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        url: { type: 'string', default: 'ws://127.0.0.1:3000/ws' },
        clients: { type: 'string', default: '20' },
        rate: { type: 'string', default: '1' },
        duration: { type: 'string', default: '0' },
        churn: { type: 'string', default: '10s' },
        whitelist: { type: 'string', multiple: true, default: [DEMO_WHITELIST] },
        'flush-interval': { type: 'string' },
        'report-every': { type: 'string', default: '10s' },
        seed: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError(err.message);
  }
  if (values.help) return { help: true };
  if (!/^wss?:\/\//.test(values.url)) throw new UsageError(`--url: expected a ws:// or wss:// URL, got "${values.url}"`);
  return {
    help: false,
    url: values.url,
    clients: numberIn('clients', values.clients, 1, 10_000, { integer: true }),
    rate: numberIn('rate', values.rate, 0, 100),
    durationMs: durationMs('duration', values.duration),
    churnMs: durationMs('churn', values.churn),
    whitelist: values.whitelist,
    flushIntervalMs: values['flush-interval'] === undefined ? undefined : flushInterval(values['flush-interval']),
    reportEveryMs: durationMs('report-every', values['report-every']),
    seed: values.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : numberIn('seed', values.seed, 0, 2 ** 32 - 1, { integer: true }),
  };
}

/** mulberry32: a small seeded PRNG, so that a run can be repeated with --seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const log = (msg, fields = {}) => process.stdout.write(`${JSON.stringify({ time: Date.now(), msg, ...fields })}\n`);

/** Series key as Prometheus prints it: labels in whitelist order. */
const seriesKey = (name, labels) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(',')}}`;
};

async function run(options) {
  const random = prng(options.seed);
  const pick = (values) => values[Math.floor(random() * values.length)];
  const whitelist = await loadWhitelist(options.whitelist);
  if (whitelist.metrics.length === 0) throw new UsageError(`--whitelist: ${options.whitelist.join(', ')} allows no metrics`);

  /** Totals of what acknowledged clients recorded; exact once every flush has been acknowledged. */
  const totals = new Map();
  const stats = { sessionsStarted: 0, sessionsResumed: 0, disconnects: 0, flushFailures: 0, recorded: 0 };
  const live = new Set();
  let nextId = 1;

  const randomLabels = (specs) => Object.fromEntries(specs.map((l) => [l.name, pick(l.allowedValues)]));
  /** Observations spread log-uniformly from a tenth of the lowest bucket to twice the highest. */
  const randomObservation = (buckets) => {
    const lo = Math.max((buckets[0] ?? 0.005) / 10, 1e-6);
    const hi = (buckets.at(-1) ?? 10) * 2;
    return Math.round(lo * Math.exp(random() * Math.log(hi / lo)) * 1e6) / 1e6;
  };

  function startClient() {
    const sim = { id: nextId++, pending: new Map(), connected: false, client: null };
    const labels = randomLabels(whitelist.sessionLabels);
    sim.client = createClient({
      url: options.url,
      labels,
      ...(options.flushIntervalMs === undefined ? {} : { flushInterval: options.flushIntervalMs }),
      onStatus(status) {
        if (status.type === 'connected') {
          sim.connected = true;
          if (status.resumed) stats.sessionsResumed++;
          else stats.sessionsStarted++;
        } else if (status.type === 'disconnected') {
          if (sim.connected) stats.disconnects++;
          sim.connected = false;
        }
      },
    });
    // Gauges are per session: each client starts with its own value for every gauge series.
    for (const metric of whitelist.metrics) {
      if (metric.type === 'gauge') sim.client.set(metric.name, randomLabels(metric.labels), random() < 0.5 ? 1 : 0);
    }
    live.add(sim);
    return sim;
  }

  /** One random recording on one client, counted in the client's pending totals until its next ack. */
  function recordOne(sim) {
    const metric = pick(whitelist.metrics);
    const labels = randomLabels(metric.labels);
    const key = seriesKey(metric.name, labels);
    const add = (fields) => {
      const t = sim.pending.get(key) ?? { name: metric.name, type: metric.type, labels, value: 0, count: 0, sum: 0 };
      if (fields.value !== undefined) t.value += fields.value;
      if (fields.observation !== undefined) {
        t.count += 1;
        t.sum += fields.observation;
      }
      sim.pending.set(key, t);
    };
    if (metric.type === 'counter') {
      const by = 1 + Math.floor(random() * 3);
      sim.client.increment(metric.name, labels, by);
      add({ value: by });
    } else if (metric.type === 'histogram') {
      const v = randomObservation(metric.buckets);
      sim.client.observe(metric.name, labels, v);
      add({ observation: v });
    } else {
      sim.client.set(metric.name, labels, random() < 0.5 ? 1 : 0);
    }
    stats.recorded++;
  }

  /** Flushes and ends one client's session; its pending totals count only once acknowledged. */
  async function endClient(sim) {
    live.delete(sim);
    try {
      await sim.client.flush();
      for (const [key, t] of sim.pending) {
        const total = totals.get(key) ?? { name: t.name, type: t.type, labels: t.labels, value: 0, count: 0, sum: 0 };
        total.value += t.value;
        total.count += t.count;
        total.sum += t.sum;
        totals.set(key, total);
      }
    } catch (err) {
      stats.flushFailures++;
      log('loadgen flush failed', { client: sim.id, error: err.message });
    }
    await sim.client.close();
  }

  log('loadgen started', { version: VERSION, url: options.url, clients: options.clients, rate: options.rate, durationMs: options.durationMs, churnMs: options.churnMs, whitelist: whitelist.files, seed: options.seed });
  for (let i = 0; i < options.clients; i++) startClient();

  const TICK_MS = 100;
  let owed = 0;
  const ticker = setInterval(() => {
    // Fractional recordings carry over, so that low rates still average out right.
    owed += (options.rate * live.size * TICK_MS) / 1000;
    const clients = [...live];
    for (; owed >= 1 && clients.length > 0; owed--) recordOne(pick(clients));
  }, TICK_MS);
  /** Sessions ended by the churn that are still flushing. */
  const ending = new Set();
  const churner = options.churnMs > 0
    ? setInterval(() => {
        const victim = pick([...live]);
        if (victim === undefined) return;
        startClient();
        const done = endClient(victim).finally(() => ending.delete(done));
        ending.add(done);
      }, options.churnMs)
    : null;
  const reporter = options.reportEveryMs > 0
    ? setInterval(() => log('loadgen progress', { connected: [...live].filter((s) => s.connected).length, ...stats }), options.reportEveryMs)
    : null;

  const stopped = new Promise((resolve) => {
    const stop = (reason) => resolve(reason);
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    if (options.durationMs > 0) setTimeout(() => stop('duration'), options.durationMs).unref();
  });
  const reason = await stopped;
  clearInterval(ticker);
  if (churner !== null) clearInterval(churner);
  if (reporter !== null) clearInterval(reporter);
  log('loadgen stopping', { reason, clients: live.size });
  // A second signal while the clients flush: leave at once.
  const hardStop = () => process.exit(130);
  process.once('SIGINT', hardStop);
  process.once('SIGTERM', hardStop);
  // Clients ended by the churn may still be flushing: wait for them too, or their totals are missing.
  await Promise.all([...ending, ...[...live].map(endClient)]);
  log('loadgen done', { reason, ...stats, series: [...totals.values()].sort((a, b) => seriesKey(a.name, a.labels).localeCompare(seriesKey(b.name, b.labels))) });
  return stats.flushFailures === 0 ? 0 : 1;
}

let code;
try {
  const options = parseOptions(process.argv.slice(2));
  if (options.help) {
    process.stdout.write(HELP);
    code = 0;
  } else {
    code = await run(options);
  }
} catch (err) {
  if (!(err instanceof UsageError) && err?.code !== 'PROMSTREAM_CONFIG_INVALID') throw err;
  process.stderr.write(`loadgen: ${err.message}\n${err.problems ? `${err.problems.map((p) => `  ${p.file}: ${p.metric ?? ''} ${p.field ?? ''} ${p.message}`).join('\n')}\n` : ''}(see --help)\n`);
  code = 2;
}
// Every client is closed and stdout (a pipe or a file) is written synchronously on Linux: nothing is left
// to wait for, and a stray reconnect timer of a closed client must not keep the process alive.
process.exit(code);
