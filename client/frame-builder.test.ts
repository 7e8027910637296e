import { describe, expect, it } from 'vitest';
import {  decodeServerFrame, type Catalog, type WireLimits } from '../protocol/index.js';
import { takeFrame } from './frame-builder.js';
import { KnownCatalog, PendingDeltas } from './pending-deltas.js';

const BUCKETS = Array.from({ length: 300 }, (_, i) => (i + 1) / 100);
const catalog = new KnownCatalog({
  version: 3,
  metrics: [
    { name: 'usage_total', type: 'counter', labelNames: ['feature'], labelValues: [['a', 'b', 'c', 'd']], buckets: [] },
    { name: 'wide_seconds', type: 'histogram', labelNames: [], labelValues: [], buckets: BUCKETS },
    { name: 'presenting', type: 'gauge', labelNames: [], labelValues: [], buckets: [] },
  ],
} satisfies Catalog);
const limits = (maxFrameBytes: number, maxSamplesPerFrame = 4096): WireLimits => ({ maxFrameBytes, maxSamplesPerFrame, maxSampleValue: 1e9, maxFramesPerSecond: null });
const decode = (bytes: Uint8Array): unknown[] => decodeServerFrame(bytes) as unknown[];

describe('takeFrame', () => {
  it('takes everything pending in one frame when it fits', () => {
    const p = new PendingDeltas();
    for (const f of ['a', 'b']) p.record('counter', 'usage_total', { feature: f }, 2, catalog, 1e9);
    const frame = takeFrame(p, catalog, limits(32 * 1024), 1, false);
    expect(decode(frame.bytes)).toEqual([2, 1, 3, [[0, 0, 2], [0, 1, 2]], new Map()]);
    expect(frame.entries).toHaveLength(2);
    expect(p.isEmpty).toBe(true);
  });

  it('halves the samples until the frame fits the byte limit; the rest stays pending', () => {
    const p = new PendingDeltas();
    for (const f of ['a', 'b', 'c', 'd']) p.record('counter', 'usage_total', { feature: f }, 1.5, catalog, 1e9);
    // 4 samples of 13 bytes and the frame's own bytes: two fit in 40, four do not
    const frame = takeFrame(p, catalog, limits(40), 1, false);
    expect(frame.bytes.byteLength).toBeLessThanOrEqual(40);
    expect(frame.entries).toHaveLength(2);
    expect(p.entries.size).toBe(2);
  });

  it('honours maxSamplesPerFrame', () => {
    const p = new PendingDeltas();
    for (const f of ['a', 'b', 'c']) p.record('counter', 'usage_total', { feature: f }, 1, catalog, 1e9);
    expect(takeFrame(p, catalog, limits(32 * 1024, 2), 1, false).entries).toHaveLength(2);
  });

  it('drops a sample that could never fit a frame, counts it, and sends the rest (review defect 6)', () => {
    const p = new PendingDeltas();
    p.record('counter', 'usage_total', { feature: 'a' }, 1, catalog, 1e9);
    p.record('gauge', 'presenting', {}, 1, catalog, 1e9);
    // 301 bucket counts and a sum: ~310 bytes, more than a 200-byte frame holds.
    for (const v of [0.5, 1.5, 2.5]) p.record('histogram', 'wide_seconds', {}, v, catalog, 1e9);
    const samples: unknown[] = [];
    const drops = new Map<string, number>();
    // Bounded: three entries, at least one leaves per frame.
    for (let seq = 1; !p.isEmpty && seq <= 5; seq++) {
      const frame = takeFrame(p, catalog, limits(200), seq, seq === 1);
      expect(frame.bytes.byteLength).toBeLessThanOrEqual(200);
      const [, , , s, d] = decode(frame.bytes) as [number, number, number, unknown[], Map<string, number>];
      samples.push(...s);
      for (const [k, n] of d) drops.set(k, (drops.get(k) ?? 0) + n);
    }
    expect(p.isEmpty).toBe(true);
    expect(samples).toEqual(expect.arrayContaining([[0, 0, 1], [2, 1]]));
    expect(samples).toHaveLength(2);
    expect(drops).toEqual(new Map([['sample_too_big', 1]]));
    // a dropped gauge would be forgotten too; the histogram is simply gone, not resent every time
    expect(takeFrame(p, catalog, limits(200), 2, true).entries.map((e) => e.name)).toEqual(['presenting']);
  });
});
