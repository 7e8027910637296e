import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('starts full and refuses what it does not hold, taking nothing then', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(0, 0)).toBe(true);
  });

  it('refills at its rate, up to its capacity, on the clock it is given', () => {
    const b = new TokenBucket(10, 3, 0);
    b.takeUpTo(0, 3);
    expect(b.take(99)).toBe(false); // 0.99 tokens
    expect(b.take(100)).toBe(true);
    expect(b.takeUpTo(10_000, 100)).toBe(3); // capped at capacity however long the pause
  });

  it('takeUpTo takes whole tokens only, as many as there are', () => {
    const b = new TokenBucket(1000, 10, 0);
    expect(b.takeUpTo(0, 4)).toBe(4);
    expect(b.takeUpTo(0, 100)).toBe(6);
    expect(b.takeUpTo(2.5, 100)).toBe(2); // 2.5 tokens refilled
    expect(b.takeUpTo(3, 100)).toBe(1); // the half left plus 0.5
  });

  it('ignores a clock that goes back', () => {
    const b = new TokenBucket(10, 1, 1000);
    b.take(1000);
    expect(b.take(500)).toBe(false);
    expect(b.take(1100)).toBe(true);
  });
});
