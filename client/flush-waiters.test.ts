import { afterEach, describe, expect, it, vi } from 'vitest';
import { FlushWaiters } from './flush-waiters.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('FlushWaiters', () => {
  it('resolves each waiter once the acknowledged serial covers its target, in any order of arrival', async () => {
    const w = new FlushWaiters(1000);
    const done: number[] = [];
    const a = w.wait(3).then(() => done.push(3));
    const b = w.wait(1).then(() => done.push(1));
    w.settle(2);
    await b;
    expect(done).toEqual([1]);
    expect(w.size).toBe(1);
    w.settle(5);
    await a;
    expect(done).toEqual([1, 3]);
    expect(w.size).toBe(0);
  });

  it('rejects with PROMSTREAM_FLUSH_TIMEOUT after its timeout and forgets the waiter', async () => {
    vi.useFakeTimers();
    const w = new FlushWaiters(500);
    const p = w.wait(1);
    vi.advanceTimersByTime(500);
    await expect(p).rejects.toMatchObject({ code: 'PROMSTREAM_FLUSH_TIMEOUT', message: 'promstream flush not acknowledged within 500 ms' });
    expect(w.size).toBe(0);
  });

  it('rejectAll rejects every waiter with the error given', async () => {
    const w = new FlushWaiters(1000);
    const ps = [w.wait(1), w.wait(2)];
    const err = new Error('closed');
    w.rejectAll(err);
    for (const p of ps) await expect(p).rejects.toBe(err);
    expect(w.size).toBe(0);
  });
});
