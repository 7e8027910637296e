import { writeSync } from 'node:fs';

/**
 * The CLI's log destination: each pino line is written synchronously to fd 1 before log() returns, so
 * nothing is left to flush at exit and nothing can hold the exit. pino's default destination
 * (sonic-boom 4) writes asynchronously and flushes synchronously at exit, retrying every 100 ms: EAGAIN
 * (a reader that stopped reading) forever, and EPIPE (a reader that is gone) forever too, with the
 * event loop blocked, so no second signal could end the process.
 *
 * Here every write is bounded: a full pipe (EAGAIN) is retried for at most `maxWaitMs` per line, and
 * while it stays full the following lines are dropped at once, without waiting, until a write succeeds
 * again; a reader that is gone (EPIPE), or any other write error, stops the writing for good. Dropped
 * lines are counted, never thrown: logging must not take the server down.
 */
export interface StdoutDestination {
  /** Writes one line (pino passes each record as a string ending in "\n"). Never throws. */
  write(line: string): void;
  /** Lines not written, or only partly: stdout stayed full past the wait, or it is gone. */
  readonly droppedLines: number;
  /** Set once a write failed for good (EPIPE: nobody reads any more; EBADF, …): nothing is written after. */
  readonly stopped: boolean;
}

/** The system calls the destination makes; tests pass their own to script EAGAIN, EPIPE and short writes. */
export interface FdWriter {
  /** Writes some of `data` to `fd` and returns how many bytes, or throws with the errno `code`. */
  write(fd: number, data: Uint8Array): number;
  /** Blocks the thread for `ms` milliseconds. */
  sleep(ms: number): void;
  now(): number;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export const systemFdWriter: FdWriter = {
  write: (fd, data) => writeSync(fd, data),
  sleep: (ms) => {
    // Nothing ever notifies the cell: a bounded, synchronous wait.
    Atomics.wait(sleepCell, 0, 0, ms);
  },
  now: () => performance.now(),
};

export interface StdoutDestinationOptions {
  /** Default 1 (stdout). */
  readonly fd?: number;
  /** Longest a line waits for a full pipe before it is dropped, in milliseconds (default 100). */
  readonly maxWaitMs?: number;
  /** Pause between two tries on a full pipe, in milliseconds (default 5). */
  readonly retryEveryMs?: number;
  readonly writer?: FdWriter;
}

const FULL = new Set(['EAGAIN', 'EWOULDBLOCK', 'EINTR']);

export function stdoutDestination(options: StdoutDestinationOptions = {}): StdoutDestination {
  const { fd = 1, maxWaitMs = 100, retryEveryMs = 5, writer = systemFdWriter } = options;
  let stopped = false;
  let droppedLines = 0;
  /** A line was dropped on a full pipe and nothing was written since: do not wait again. */
  let congested = false;
  /** The last line was cut off after some of its bytes: the next one starts on a line of its own. */
  let torn = false;

  return {
    get droppedLines() {
      return droppedLines;
    },
    get stopped() {
      return stopped;
    },
    write(line: string): void {
      if (stopped) {
        droppedLines++;
        return;
      }
      const data = Buffer.from(torn ? `\n${line}` : line, 'utf8');
      const deadline = writer.now() + (congested ? 0 : maxWaitMs);
      let offset = 0;
      // Bounded twice: every round writes at least a byte or waits, and the waits end at the deadline.
      const maxRounds = data.length + Math.ceil(maxWaitMs / Math.max(1, retryEveryMs)) + 2;
      for (let round = 0; offset < data.length; round++) {
        let failure: string | undefined;
        try {
          const n = writer.write(fd, offset === 0 ? data : data.subarray(offset));
          if (n > 0) offset += n;
          else failure = 'EAGAIN';
        } catch (err) {
          failure = (err as NodeJS.ErrnoException).code ?? 'EIO';
        }
        if (failure === undefined) continue;
        if (!FULL.has(failure)) {
          stopped = true;
          droppedLines++;
          return;
        }
        const leftMs = deadline - writer.now();
        if (leftMs <= 0 || round >= maxRounds) {
          congested = true;
          if (offset > 0) torn = true;
          droppedLines++;
          return;
        }
        writer.sleep(Math.min(retryEveryMs, leftMs));
      }
      congested = false;
      torn = false;
    },
  };
}
