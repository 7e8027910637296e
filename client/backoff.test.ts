import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DEFAULT_BACKOFF, backoffDelayMs } from './backoff.js';

const always = (x: number) => (): number => x;
const JUST_BELOW_ONE = 0.999999;

describe('backoffDelayMs (full jitter)', () => {
  it('defaults to base 250 ms and cap 30 s', () => {
    expect(DEFAULT_BACKOFF).toEqual({ baseMs: 250, capMs: 30_000 });
    expect(Object.isFrozen(DEFAULT_BACKOFF)).toBe(true);
  });

  it('is 0 when random() is 0, at every attempt', () => {
    for (const attempt of [0, 1, 5, 7, 8, 50, 1000]) expect(backoffDelayMs(attempt, DEFAULT_BACKOFF, always(0))).toBe(0);
  });

  it('stays just below min(cap, base·2^attempt) when random() approaches 1', () => {
    const ceilings = [250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000];
    ceilings.forEach((ceiling, attempt) => {
      expect(backoffDelayMs(attempt, DEFAULT_BACKOFF, always(JUST_BELOW_ONE)), `attempt ${attempt}`).toBe(ceiling - 1);
    });
  });

  it('respects the cap at attempt 50 and far beyond (no overflow to Infinity or NaN)', () => {
    expect(backoffDelayMs(50, DEFAULT_BACKOFF, always(JUST_BELOW_ONE))).toBe(29_999);
    expect(backoffDelayMs(50, DEFAULT_BACKOFF, always(0.5))).toBe(15_000);
    expect(backoffDelayMs(10_000, DEFAULT_BACKOFF, always(0.5))).toBe(15_000);
    expect(backoffDelayMs(Number.MAX_SAFE_INTEGER, DEFAULT_BACKOFF, always(0.5))).toBe(15_000);
  });

  it('gives exact values for a deterministic random', () => {
    const values = [0.5, 0.25, 0.1, 0.75, 0.3333, 0.9, 0.01, 0.6];
    let i = 0;
    const random = (): number => values[i++ % values.length]!;
    const delays = Array.from({ length: 8 }, (_, attempt) => backoffDelayMs(attempt, DEFAULT_BACKOFF, random));
    // ceilings 250, 500, 1000, 2000, 4000, 8000, 16000, 30000 times the values, floored
    expect(delays).toEqual([125, 125, 100, 1500, 1333, 7200, 160, 18_000]);
  });

  it('uses the policy it is given', () => {
    const policy = { baseMs: 100, capMs: 1000 };
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelayMs(a, policy, always(JUST_BELOW_ONE)))).toEqual([99, 199, 399, 799, 999, 999]);
    expect(backoffDelayMs(3, { baseMs: 1000, capMs: 500 }, always(0.5))).toBe(250);
  });

  it('draws exactly one random number per delay', () => {
    let calls = 0;
    backoffDelayMs(3, DEFAULT_BACKOFF, () => (calls++, 0.5));
    expect(calls).toBe(1);
  });

  it('property: a whole number in [0, min(cap, base·2^attempt)) for any random in [0, 1)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 120_000 }),
        (attempt, r, baseMs, capMs) => {
          const d = backoffDelayMs(attempt, { baseMs, capMs }, always(r));
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThan(Math.min(capMs, baseMs * 2 ** attempt));
        },
      ),
      { numRuns: 500 },
    );
  });
});
