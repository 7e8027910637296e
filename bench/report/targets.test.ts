import { describe, expect, it } from 'vitest';
import type { ConnectionFigures } from '../scenarios/connections.js';
import type { IngestFigures } from '../scenarios/ingest.js';
import type { MachineInfo } from './machine.js';
import { Report } from './report.js';
import { summarize } from './stats.js';
import { judgeTargets, type AllFigures } from './targets.js';

const ingest = (framesPerCoreS: number): IngestFigures => ({
  framesPerS: summarize([framesPerCoreS]), framesPerCoreS: summarize([framesPerCoreS]), samplesPerS: summarize([7 * framesPerCoreS]),
  serverCpu: summarize([1]), generatorCpu: summarize([0.05]),
});

const connections = (transport: 'uws' | 'ws', rssPerSessionBytes: number, microsPerFrame: number): ConnectionFigures => ({
  transport, base: transport, node: process.version, workers: 1, measured: true, split: [], sessions: 19_630, connectPerS: 2_000, rssPerSessionBytes, rssOverallPerSessionBytes: rssPerSessionBytes + 1_000,
  youngGenerationBytes: 26 << 20, heapPerSessionBytes: rssPerSessionBytes - 800, nativePerSessionBytes: 800, rssBytes: 100 << 20,
  cpu1s: (19_630 * microsPerFrame) / 1e6, frames1s: 19_630, cpu10s: 0.1, frames10s: 1_963, storm: null,
});

function judged(ws: { share: number; bytes: number; microsPerFrame: number }): Map<string, { measured: string; met: boolean | null }> {
  const report = new Report({} as MachineInfo, 'npm run bench', new Date(0));
  const figures: AllFigures = {
    ingest: new Map([['promstream uws', ingest(300_000)], ['decode-only uws', ingest(420_000)], ['promstream ws', ingest(ws.share * 500_000)], ['decode-only ws', ingest(500_000)]]),
    ingestWorkers: null, baseline: null, scrape: null,
    connections: [connections('uws', 1_230, 40), connections('ws', ws.bytes, ws.microsPerFrame)],
  };
  judgeTargets(report, figures, { scenarios: ['ingest', 'connections'], workers: 2 });
  return new Map(report.targets.map((t) => [t.target, { measured: t.measured, met: t.met }]));
}

describe('the ws targets of issue 13', () => {
  it('are judged from the ingest and connections figures, each against its own bound', () => {
    const t = judged({ share: 0.55, bytes: 3_578, microsPerFrame: 66.4 });
    expect(t.get('ingest, ws: ≥ 0.3 × its decode-only ceiling')).toEqual({ measured: '0.55× (275 k vs 500 k frames/s per core)', met: true });
    expect(t.get('CPU per lone frame (1 s flush), ws ≤ 2 × uWS')).toEqual({ measured: '1.66× (66.4 µs vs 40.0 µs)', met: true });
    expect(t.get('≤ 4 KB server memory per idle session (ws)')).toEqual({ measured: '3,578 B RSS (V8 heap used 2,778 B, outside the heap 800 B)', met: true });
  });

  it('hold at their bounds and are missed just past them (4 KB is 4,096 B)', () => {
    const at = judged({ share: 0.3, bytes: 4_096, microsPerFrame: 80 });
    expect([...at].filter(([k]) => k.includes('ws')).map(([, v]) => v.met)).toEqual([true, true, true]);
    const past = judged({ share: 0.29, bytes: 4_097, microsPerFrame: 80.1 });
    expect([...past].filter(([k]) => k.includes('ws')).map(([, v]) => v.met)).toEqual([false, false, false]);
  });

  it('are not judged when the scenario did not run', () => {
    const report = new Report({} as MachineInfo, 'npm run bench', new Date(0));
    judgeTargets(report, { ingest: null, ingestWorkers: null, baseline: null, scrape: null, connections: null }, { scenarios: [], workers: 2 });
    const ws = report.targets.filter((x) => x.target.includes('ws'));
    expect(ws.map((x) => [x.measured, x.met])).toEqual([['–', null], ['–', null], ['–', null]]);
  });
});

describe('the lone-frame targets with workers', () => {
  const pass = (transport: 'uws' | 'ws', workers: number, node: string, microsPerFrame: number): ConnectionFigures => ({
    ...connections(transport, 1_300, microsPerFrame), workers, node,
    transport: `${transport}${workers > 1 ? `, --workers ${workers}` : ''}${node === process.version ? '' : ` (Node ${node})`}`,
  });

  it('compare each transport with one event loop of the same transport on the same Node', () => {
    const report = new Report({} as MachineInfo, 'npm run bench', new Date(0));
    const list = [pass('uws', 1, process.version, 40), pass('ws', 1, process.version, 66), pass('uws', 2, process.version, 42), pass('ws', 1, 'v99.1.0', 50), pass('ws', 2, 'v99.1.0', 60)];
    judgeTargets(report, { ingest: null, ingestWorkers: null, baseline: null, scrape: null, connections: list }, { scenarios: ['connections-workers'], workers: 2 });
    const rows = report.targets.filter((t) => t.target.startsWith('CPU per lone frame (1 s flush), uWS:') || t.target.startsWith('CPU per lone frame (1 s flush), ws:'));
    expect(rows.map((t) => [t.target, t.measured, t.met])).toEqual([
      ['CPU per lone frame (1 s flush), uWS: --workers 2 within 1.15 × --workers 1', '1.05× (42.0 µs vs 40.0 µs; RSS per idle session 1,300 B vs 1,300 B)', true],
      ['CPU per lone frame (1 s flush), ws: --workers 2 within 1.15 × --workers 1', '1.20× (60.0 µs vs 50.0 µs; RSS per idle session 1,300 B vs 1,300 B; servers on Node v99.1.0)', false],
    ]);
  });

  it('leave out a ws row that was not measured, and say so for uWS', () => {
    const report = new Report({} as MachineInfo, 'npm run bench', new Date(0));
    judgeTargets(report, { ingest: null, ingestWorkers: null, baseline: null, scrape: null, connections: [pass('ws', 1, process.version, 66)] }, { scenarios: ['connections-workers'], workers: 2 });
    expect(report.targets.filter((t) => t.target.includes('--workers')).map((t) => [t.target, t.met])).toEqual([
      ['CPU per lone frame (1 s flush), uWS: --workers 2 within 1.15 × --workers 1', null],
    ]);
  });
});
