/**
 * examples/loadgen.mjs (what docker-compose.yml runs as `loadgen`) against a real aggregator: it runs
 * for a bounded time, and the totals it reports are exactly what the aggregator exposes.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { parseExposition } from '../support/scrape.js';
import { killAllClis, REPO_ROOT, startServe } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';
import { run } from './deploy-tools.js';

const LOADGEN = 'examples/loadgen.mjs';

interface SeriesTotal {
  name: string;
  type: 'counter' | 'histogram' | 'gauge';
  labels: Record<string, string>;
  value: number;
  count: number;
  sum: number;
}
interface Done {
  msg: 'loadgen done';
  reason: string;
  sessionsStarted: number;
  sessionsResumed: number;
  flushFailures: number;
  recorded: number;
  series: SeriesTotal[];
}

/** `name{a="x",b="y"}` with the labels sorted, so that keys compare whatever order they were printed in. */
function canonical(key: string): string {
  const m = /^([^{]+)(?:\{(.*)\})?$/.exec(key);
  if (m === null) return key;
  const labels = (m[2] ?? '').match(/\w+="(?:[^"\\]|\\.)*"/g) ?? [];
  return labels.length === 0 ? m[1]! : `${m[1]}{${[...labels].sort().join(',')}}`;
}
const seriesKey = (name: string, labels: Record<string, string>): string =>
  canonical(`${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`);

async function metrics(port: number): Promise<Map<string, number>> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  return new Map([...parseExposition(await response.text())].map(([k, v]) => [canonical(k), v]));
}

/** Runs the load generator to its end and returns its exit code and JSON lines. */
function runLoadgen(args: readonly string[], { stopWhen }: { stopWhen?: (line: Record<string, unknown>) => boolean } = {}): Promise<{ code: number | null; lines: Record<string, unknown>[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOADGEN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let partial = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop()!;
      for (const text of parts) {
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        if (stopWhen?.(line) === true) child.kill('SIGTERM');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    // Bounded: whatever the arguments say, the test does not wait for ever.
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, lines, stderr });
    });
  });
}

describe('examples/loadgen.mjs', () => {
  afterEach(killAllClis);

  it('prints its usage with --help and refuses a bad option with exit 2', async () => {
    const help = await run(process.execPath, [LOADGEN, '--help'], { cwd: REPO_ROOT });
    expect(help.code).toBe(0);
    for (const option of ['--url', '--clients', '--rate', '--duration', '--churn', '--whitelist', '--flush-interval', '--seed']) expect(help.stdout).toContain(option);
    const bad = await run(process.execPath, [LOADGEN, '--clients', 'many'], { cwd: REPO_ROOT });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--clients: expected a whole number/);
    const unknown = await run(process.execPath, [LOADGEN, '--client', '3'], { cwd: REPO_ROOT });
    expect(unknown.code).toBe(2);
  });

  it('runs for --duration, then every count it reports is exactly what /metrics exposes', async () => {
    const server = await startServe(['--demo']);
    const args = ['--url', `ws://127.0.0.1:${server.port}/ws`, '--clients', '5', '--rate', '20', '--duration', '4s', '--churn', '400ms', '--flush-interval', '200ms', '--report-every', '1s', '--seed', '42'];
    const running = runLoadgen(args);
    // While it runs: five clients connected, live.
    await waitFor(async () => {
      const m = await metrics(server.metricsPort);
      return [...m].filter(([k]) => k.startsWith('connected_clients')).reduce((s, [, v]) => s + v, 0) === 5;
    }, { what: 'connected_clients to sum to 5', timeoutMs: 10_000 });
    const { code, lines, stderr } = await running;
    expect(code, stderr).toBe(0);
    expect(lines.some((l) => l.msg === 'loadgen progress')).toBe(true);
    const done = lines.find((l) => l.msg === 'loadgen done') as Done | undefined;
    expect(done).toMatchObject({ reason: 'duration', flushFailures: 0, sessionsResumed: 0 });
    expect(done!.recorded).toBeGreaterThan(100);
    // The churn replaced a client every 400 ms for 4 s.
    expect(done!.sessionsStarted).toBeGreaterThan(5 + 5);

    const m = await metrics(server.metricsPort);
    const reported = new Set<string>();
    for (const s of done!.series) {
      if (s.type === 'counter') {
        reported.add(seriesKey(s.name, s.labels));
        expect(m.get(seriesKey(s.name, s.labels)), seriesKey(s.name, s.labels)).toBe(s.value);
      } else if (s.type === 'histogram') {
        reported.add(seriesKey(`${s.name}_count`, s.labels));
        expect(m.get(seriesKey(`${s.name}_count`, s.labels)), `${s.name}_count`).toBe(s.count);
        // Sums of floats added in another order: equal to rounding.
        expect(m.get(seriesKey(`${s.name}_sum`, s.labels))).toBeCloseTo(s.sum, 6);
        expect(m.get(seriesKey(`${s.name}_bucket`, { ...s.labels, le: '+Inf' }))).toBe(s.count);
      }
    }
    // Every counter and histogram series it recorded in is in the report, and the ones it did not are 0.
    expect(done!.series.length).toBeGreaterThanOrEqual(4);
    for (const [key, value] of m) {
      if ((key.startsWith('demo_clicks_total') || key.startsWith('demo_task_duration_seconds_count')) && !reported.has(key)) expect(value, key).toBe(0);
    }
    // Sessions: one per client started (no resumes in a calm run), all ended cleanly, gauges gone.
    expect(m.get('promstream_sessions_opened_total')).toBe(done!.sessionsStarted);
    expect(m.get('promstream_samples_applied_total')).toBeGreaterThan(0);
    expect([...m].filter(([k]) => k.startsWith('connected_clients')).every(([, v]) => v === 0)).toBe(true);
    expect(m.get('demo_tabs_presenting')).toBe(0);
    expect(m.get('promstream_rejected_samples_total{reason="label_not_allowed"}')).toBe(0);
  }, 40_000);

  it('stops on SIGTERM: flushes every client, ends their sessions and reports', async () => {
    const server = await startServe(['--demo']);
    const { code, lines, stderr } = await runLoadgen(
      ['--url', `ws://127.0.0.1:${server.port}/ws`, '--clients', '3', '--rate', '5', '--churn', '0', '--flush-interval', '200ms', '--report-every', '200ms'],
      { stopWhen: (l) => l.msg === 'loadgen progress' && l.connected === 3 && (l.recorded as number) > 5 },
    );
    expect(code, stderr).toBe(0);
    const done = lines.find((l) => l.msg === 'loadgen done') as Done | undefined;
    expect(done).toMatchObject({ reason: 'SIGTERM', flushFailures: 0, sessionsStarted: 3 });
    const m = await metrics(server.metricsPort);
    const clicks = done!.series.filter((s) => s.type === 'counter').reduce((sum, s) => sum + s.value, 0);
    expect([...m].filter(([k]) => k.startsWith('demo_clicks_total')).reduce((s, [, v]) => s + v, 0)).toBe(clicks);
    expect([...m].filter(([k]) => k.startsWith('connected_clients')).every(([, v]) => v === 0)).toBe(true);
  }, 40_000);
});
