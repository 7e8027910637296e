/** What every scenario shares: options, progress, the report, CPUs, generator processes and source addresses. */
import { spawnBenchChild, type BenchChild } from '../processes/child-process.js';
import type { CpuPlan } from '../report/machine.js';
import type { BenchOptions } from '../options.js';
import type { Progress } from '../report/progress.js';
import type { Report } from '../report/report.js';
import { startLocalServer, targetServer, type LocalServerOptions, type ServerUnderTest } from '../processes/server-under-test.js';
import { INGEST_WHITELIST, SESSION_LABELS, writeWhitelist } from '../generators/whitelists.js';
import { resolveWsRuntime, type WsRuntime } from '../processes/ws-node.js';

/** Where a transport's servers run with --workers N: their node binary (undefined: the bench's own) and its version; or why not here. */
export type WorkersRuntime = { readonly ok: true; readonly node: string | undefined; readonly version: string } | { readonly ok: false; readonly why: string };

/**
 * Rate limits lifted for scenarios where a few connections stand for many clients (ingest, scrape
 * fill): the per-connection and per-session token buckets still run on every frame, they just never
 * run dry. The connections and storm scenarios keep the defaults, as a deployment would.
 */
export const SATURATION_LIMITS = Object.freeze({ maxFramesPerSecond: 1e9, maxSamplesPerSecond: 1e9 });

export class BenchContext {
  private readonly generators: BenchChild[] = [];
  private addressBlock: number;
  private wsWorkers: WsRuntime | null = null;
  readonly ingestConfig: string;

  constructor(
    readonly options: BenchOptions,
    readonly progress: Progress,
    readonly report: Report,
    readonly cpus: CpuPlan,
  ) {
    // A fresh third octet per bench run, so that ports still in TIME_WAIT from the last run are not reused.
    this.addressBlock = 1 + (process.pid % 200);
    this.ingestConfig = writeWhitelist(INGEST_WHITELIST, 'ingest');
  }

  /**
   * Before the steps are counted, when a *-workers scenario runs over ws: finds the Node.js for ws
   * servers with workers (bench/processes/ws-node.ts; --ws-node auto may fetch Node 24).
   */
  prepareWsWorkers(): void {
    if (this.isTarget || !this.options.transports.includes('ws') || this.wsWorkers !== null) return;
    this.wsWorkers = resolveWsRuntime(this.options.wsNode, (line) => this.progress.note(line));
  }

  /** Where `transport`'s servers run in the *-workers scenarios (uWS and a Node that shares ports: the bench's own). */
  workersRuntime(transport: 'uws' | 'ws'): WorkersRuntime {
    if (transport === 'uws') return { ok: true, node: undefined, version: process.version };
    const r = this.wsWorkers ?? resolveWsRuntime('off', () => {});
    return r.ok ? { ok: true, node: r.node ?? undefined, version: r.version } : r;
  }

  get isTarget(): boolean {
    return this.options.target !== null;
  }

  get labels(): Readonly<Record<string, string>> {
    return this.options.labels ?? SESSION_LABELS;
  }

  /**
   * `count` source addresses in 127.0.0.0/8, a new block each call. One source address offers ~28 k
   * ephemeral ports (net.ipv4.ip_local_port_range) towards one server.
   */
  sourceAddresses(count: number): string[] {
    const block = this.addressBlock++;
    const third = 1 + (block % 250);
    return Array.from({ length: Math.min(count, 250) }, (_, i) => `127.0.${third}.${2 + i}`);
  }

  /** Generator process `i` (started on first use, kept for the whole bench). */
  generator(i: number): BenchChild {
    while (this.generators.length <= i) {
      this.generators.push(spawnBenchChild(`generator ${this.generators.length}`, './generator-process.js', { cpus: this.cpus.generators }));
    }
    return this.generators[i]!;
  }

  /** Starts a local server, or returns the target. */
  server(o: Omit<LocalServerOptions, 'cpus' | 'configPath'> & { configPath?: string }): Promise<ServerUnderTest> {
    if (this.options.target !== null) return Promise.resolve(targetServer(this.options.target, this.options.metrics!));
    return startLocalServer({ ...o, configPath: o.configPath ?? this.ingestConfig, cpus: this.cpus.server });
  }

  async close(): Promise<void> {
    await Promise.all(this.generators.map((g) => g.stop()));
    this.generators.length = 0;
  }
}

/** Waits for `ms` — the bench measures over fixed windows, the only place it waits for time itself. */
export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it holds or the deadline passes; returns whether it held. */
export async function pollUntil(probe: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (performance.now() >= deadline) return false;
    await pause(everyMs);
  }
}
