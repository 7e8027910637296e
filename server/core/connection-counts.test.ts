import { describe, expect, it } from 'vitest';
import { LocalSocketBudget, SharedSocketBudget } from './connection-counts.js';

describe('socket budgets', () => {
  it('one event loop: takes up to the cap, then refuses until one is given back', () => {
    const b = new LocalSocketBudget(2);
    expect([b.take(), b.take(), b.take()]).toEqual([true, true, false]);
    b.give();
    expect([b.take(), b.take()]).toEqual([true, false]);
  });

  it('workers: the cap is the host\'s, so one worker may take it all while the other holds none', () => {
    const buffer = new SharedArrayBuffer(SharedSocketBudget.bytesFor(2));
    const w0 = new SharedSocketBudget(buffer, 0, 5);
    const w1 = new SharedSocketBudget(buffer, 1, 5);
    const host = new SharedSocketBudget(buffer, 0, 5);
    expect(Array.from({ length: 5 }, () => w0.take())).toEqual([true, true, true, true, true]);
    expect(w1.take()).toBe(false);
    expect(w0.take()).toBe(false);
    // A refused take leaves the total as it was.
    expect(host.total).toBe(5);
    w0.give();
    expect([w1.take(), w0.take()]).toEqual([true, false]);
    expect(host.total).toBe(5);
  });

  it('a dead worker\'s sockets leave the total; the others\' stay counted', () => {
    const buffer = new SharedArrayBuffer(SharedSocketBudget.bytesFor(2));
    const w0 = new SharedSocketBudget(buffer, 0, 4);
    const w1 = new SharedSocketBudget(buffer, 1, 4);
    const host = new SharedSocketBudget(buffer, 0, 4);
    w0.take();
    w1.take();
    w1.take();
    w1.take();
    expect(w0.take()).toBe(false);
    host.forgetWorker(1);
    expect(host.total).toBe(1);
    expect([w0.take(), w0.take(), w0.take(), w0.take()]).toEqual([true, true, true, false]);
    // Forgetting twice (a restart that died again at once) takes nothing more away.
    host.forgetWorker(1);
    expect(host.total).toBe(4);
  });
});
