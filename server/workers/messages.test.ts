import { describe, expect, it } from 'vitest';
import { hostClock } from './messages.js';

describe('hostClock', () => {
  it('reads the time since the zero on the epoch timeline (timeOrigin + now), which every thread shares', () => {
    const zeroMs = performance.timeOrigin + performance.now() - 5_000;
    const clock = hostClock(zeroMs);
    for (let i = 0; i < 100; i++) {
      const before = performance.timeOrigin + performance.now() - zeroMs;
      const t = clock();
      const after = performance.timeOrigin + performance.now() - zeroMs;
      // within float rounding of the epoch sum (a quarter microsecond at today's epoch)
      expect(t).toBeGreaterThanOrEqual(before - 0.001);
      expect(t).toBeLessThanOrEqual(after + 0.001);
    }
  });

  it('starts at the zero it is given and never goes back', () => {
    const clock = hostClock(performance.timeOrigin + performance.now());
    let last = clock();
    expect(last).toBeGreaterThanOrEqual(0);
    expect(last).toBeLessThan(1000);
    for (let i = 0; i < 10_000; i++) {
      const t = clock();
      expect(t).toBeGreaterThanOrEqual(last);
      last = t;
    }
  });
});
