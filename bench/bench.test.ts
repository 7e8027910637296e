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
      execFile(process.execPath, [RUN, '--quick', '--transport', 'uws', '--json', json], { timeout: 150_000 }, (err, out, errOut) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout: out, stderr: errOut }),
      );
    });
    expect(code, `bench exited ${code}\n${stdout}\n${stderr}`).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as BenchJson;
    expect(result.checks.filter((c) => !c.ok)).toEqual([]);
    expect(new Set(result.checks.map((c) => c.scenario))).toEqual(new Set(['ingest', 'baseline', 'scrape', 'connections', 'storm']));
    expect(Object.keys(result.data).sort()).toEqual(['baseline', 'connections', 'ingest', 'scrape']);
    expect(stdout).toContain('## Ingest at saturation');
  }, 180_000);
});
