import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import { itWithUws } from '../test/support/uws-availability.js';

const RUN = fileURLToPath(new URL('../dist/bench/run.js', import.meta.url));

interface BenchJson {
  readonly checks: { scenario: string; what: string; ok: boolean; detail: string }[];
  readonly data: Record<string, unknown>;
}

describe('npm run bench -- --quick', () => {
  // The smoke run keeps the bench working; it asserts completion and exact totals, never timings.
  itWithUws()('runs every scenario on a small scale and every exposed total equals what was sent', async () => {
    if (!existsSync(RUN)) throw new Error(`${RUN} is missing: npm test builds it (npm run build)`);
    const json = join(mkdtempSync(join(tmpdir(), 'promstream-bench-test-')), 'bench.json');
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [RUN, '--quick', '--transport', 'uws', '--json', json], { timeout: 210_000 }, (err, out, errOut) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout: out, stderr: errOut }),
      );
    });
    expect(code, `bench exited ${code}\n${stdout}\n${stderr}`).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as BenchJson;
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(new Set(result.checks.map((c) => c.scenario))).toEqual(new Set(['ingest', 'ingest-workers', 'baseline', 'scrape', 'connections', 'storm']));
    expect(Object.keys(result.data).sort()).toEqual(['baseline', 'connections', 'ingest', 'ingestWorkers', 'scrape']);
    expect(stdout).toContain('## Ingest at saturation');
    // The workers path: ingest, connections and the storm each ran with --workers 2 (totals exact, above) and one event loop.
    const whats = result.checks.map((c) => `${c.scenario}: ${c.what}`);
    for (const want of ['ingest-workers: promstream uws --workers 1: totals', 'ingest-workers: promstream uws --workers 2: totals', 'ingest-workers: promstream uws, 2 replicas of --workers 1: totals', 'connections: uws, --workers 2: totals after all flushed', 'storm: uws, --workers 2: every session back and resumed', 'storm: uws: every session back and resumed']) {
      expect(whats).toContain(want);
    }
    const ingestWorkers = result.data.ingestWorkers as { figures: { layout: string; workers: number; splits: number[][] }[] };
    const two = ingestWorkers.figures.find((f) => f.layout === 'workers' && f.workers === 2);
    // Both workers polled some of the 32 connections, and none was lost from the count.
    expect(two?.splits.every((s) => s.length === 2 && s[0]! + s[1]! === 32)).toBe(true);
    // Two replicas: each polled exactly the 16 connections of its own generator.
    const replicas = ingestWorkers.figures.find((f) => f.layout === 'replicas');
    expect(replicas?.splits.every((s) => s.length === 2 && s[0] === 16 && s[1] === 16)).toBe(true);
    const connections = result.data.connections as { transport: string; workers: number; split: number[]; sessions: number }[];
    expect(connections.find((c) => c.workers === 2)?.split.reduce((a, b) => a + b, 0)).toBe(connections.find((c) => c.workers === 2)?.sessions);
    expect(stdout).toContain('## Ingest at saturation: --workers 2 vs --workers 1');
  }, 240_000);
});
