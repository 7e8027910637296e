import { closeSync, openSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stdoutDestination, type FdWriter } from './stdout-destination.js';

/** A scripted fd: each write takes the next step (bytes to accept, or an errno); a clock the sleeps move. */
function scripted(steps: (number | string)[]) {
  let nowMs = 0;
  const written: string[] = [];
  const calls = { writes: 0, sleptMs: 0 };
  const writer: FdWriter = {
    write(_fd, data) {
      calls.writes++;
      const step = steps.shift() ?? Infinity;
      if (typeof step === 'string') throw Object.assign(new Error(step), { code: step });
      const n = Math.min(step, data.length);
      written.push(Buffer.from(data.subarray(0, n)).toString('utf8'));
      return n;
    },
    sleep(ms) {
      calls.sleptMs += ms;
      nowMs += ms;
    },
    now: () => nowMs,
  };
  return { writer, written, calls, output: () => written.join('') };
}

describe('stdoutDestination', () => {
  it('writes each line at once, finishing a short write', () => {
    const fd = scripted([3, Infinity, Infinity]);
    const d = stdoutDestination({ writer: fd.writer });
    d.write('{"a":1}\n');
    d.write('{"b":2}\n');
    expect(fd.output()).toBe('{"a":1}\n{"b":2}\n');
    expect(fd.calls.sleptMs).toBe(0);
    expect(d.droppedLines).toBe(0);
  });

  it('waits out a briefly full pipe (EAGAIN) and loses nothing', () => {
    const fd = scripted(['EAGAIN', 'EAGAIN', Infinity]);
    const d = stdoutDestination({ writer: fd.writer, maxWaitMs: 100, retryEveryMs: 5 });
    d.write('line\n');
    expect(fd.output()).toBe('line\n');
    expect(fd.calls.sleptMs).toBe(10);
    expect(d.droppedLines).toBe(0);
  });

  it('drops a line after maxWaitMs of a full pipe, then drops without waiting until a write goes through', () => {
    const fd = scripted(Array<string>(1000).fill('EAGAIN'));
    const d = stdoutDestination({ writer: fd.writer, maxWaitMs: 100, retryEveryMs: 5 });
    d.write('first\n');
    expect(fd.calls.sleptMs).toBe(100);
    expect(d.droppedLines).toBe(1);
    const writesSoFar = fd.calls.writes;
    for (let i = 0; i < 50; i++) d.write('more\n');
    // one try each, no waiting: 50 lines cost no time while the pipe stays full
    expect(fd.calls.writes - writesSoFar).toBe(50);
    expect(fd.calls.sleptMs).toBe(100);
    expect(d.droppedLines).toBe(51);
    expect(d.stopped).toBe(false);
  });

  it('after a line cut off by a full pipe, the next one starts on a line of its own; a success ends the congestion', () => {
    const fd = scripted([4, ...Array<string>(21).fill('EAGAIN'), Infinity, 'EAGAIN', Infinity]);
    const d = stdoutDestination({ writer: fd.writer, maxWaitMs: 100, retryEveryMs: 5 });
    d.write('{"cut":true}\n');
    expect(d.droppedLines).toBe(1);
    d.write('{"next":1}\n');
    expect(fd.output()).toBe('{"cu\n{"next":1}\n');
    // not congested any more: a brief EAGAIN is waited out again
    d.write('{"last":1}\n');
    expect(fd.output()).toBe('{"cu\n{"next":1}\n{"last":1}\n');
    expect(d.droppedLines).toBe(1);
  });

  it('stops for good on EPIPE (nobody reads any more) and on any other error, without throwing', () => {
    for (const code of ['EPIPE', 'EBADF']) {
      const fd = scripted([code, Infinity]);
      const d = stdoutDestination({ writer: fd.writer });
      expect(() => d.write('a\n')).not.toThrow();
      expect(d.stopped).toBe(true);
      d.write('b\n');
      expect(fd.calls.writes).toBe(1);
      expect(fd.calls.sleptMs).toBe(0);
      expect(d.droppedLines).toBe(2);
      expect(fd.output()).toBe('');
    }
  });

  it('writes to a real file descriptor', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'promstream-dest-'));
    const file = path.join(dir, 'log');
    const fd = openSync(file, 'w');
    try {
      const d = stdoutDestination({ fd });
      d.write('{"msg":"é"}\n');
      expect(readFileSync(file, 'utf8')).toBe('{"msg":"é"}\n');
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
