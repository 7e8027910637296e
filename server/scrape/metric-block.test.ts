import { describe, expect, it } from 'vitest';
import { SHARED_PAD_BYTES } from '../core/shared-memory.js';
import { MetricBlock, MetricLayout } from './metric-block.js';

describe('a worker\'s metric block in shared memory', () => {
  it('keeps SHARED_PAD_BYTES free at both ends: its counters share no cache line with the next worker\'s block', () => {
    const layout = new MetricLayout([{ name: 'app', allowedValues: ['a', 'b'] }]);
    expect(layout.bytes).toBe(SHARED_PAD_BYTES + layout.size * 8 + SHARED_PAD_BYTES);
    const buffer = new SharedArrayBuffer(layout.bytes);
    const block = new MetricBlock(layout, buffer);
    // The first number (frames, written on every frame) and the last (the last combination's connected_clients).
    block.frame(60);
    block.frameApplied(0.00002);
    block.connected(1, 1);
    const at = (i: number): number => new Float64Array(buffer, SHARED_PAD_BYTES + i * 8, 1)[0]!;
    expect(at(MetricLayout.FRAMES)).toBe(1);
    expect(at(MetricLayout.BYTES)).toBe(60);
    expect(at(layout.size - 1)).toBe(1);
    expect(at(layout.applyAt + 1)).toBe(1);
    const bytes = new Uint8Array(buffer);
    const zeros = new Array<number>(SHARED_PAD_BYTES).fill(0);
    expect(Array.from(bytes.subarray(0, SHARED_PAD_BYTES))).toEqual(zeros);
    expect(Array.from(bytes.subarray(layout.bytes - SHARED_PAD_BYTES))).toEqual(zeros);
    // The main thread sums the same numbers through layout.values().
    expect(Array.from(layout.values(buffer))).toEqual(Array.from(block.values));
  });
});
