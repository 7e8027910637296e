/**
 * Open files, before any limit of ours: every TCP connection holds a descriptor from the moment the
 * kernel hands it over, long before an upgrade says who it is. A flood of silent connects can take
 * every descriptor the process may hold, and then /metrics, the logs and even closing a socket fail.
 *
 * So the process keeps a reserve: RESERVE descriptors opened on /dev/null at start-up, and a probe every
 * PROBE_MS that opens and closes one more. When the probe fails (EMFILE), the public side stops
 * accepting (uWebSockets.js would otherwise spin on its readable listener at a full core) and the reserve
 * is handed back, so /metrics, closes and logs go on. Once twice the reserve is free again, the public
 * side accepts again. Connections the transport counts (ws: every accepted socket, upgraded or not) are also
 * capped below the limit, so that with ws the reserve is rarely needed at all.
 */
import { closeSync, openSync, readFileSync } from 'node:fs';
import type { Logger } from 'pino';

const PROBE_MS = 250;

/** The soft open-files limit of this process, or null where /proc/self/limits is not there. */
export function openFilesLimit(): number | null {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line === undefined ? NaN : Number(line.slice('Max open files'.length).trim().split(/\s+/)[0]);
    return Number.isInteger(soft) && soft > 0 ? soft : null;
  } catch {
    return null;
  }
}

/** Descriptors kept back for the metrics side, logging and closing: 5 % of the limit, at least 32, at most 256. */
export function reserveFor(limit: number): number {
  return Math.max(32, Math.min(256, Math.floor(limit * 0.05)));
}

/** Descriptors a running server holds besides client sockets: stdio, epoll, listeners, libuv's, pino's. */
export const BASELINE_DESCRIPTORS = 64;

/** Client sockets a server admits with an open-files limit of `limit`: what is left after its reserve and its own. */
export function admittedSockets(limit: number): number {
  return limit - reserveFor(limit) - BASELINE_DESCRIPTORS;
}

export interface AcceptSwitch {
  /** Stop taking new connections on the public side (existing ones stay). */
  pause(): void;
  resume(): void;
}

export class DescriptorGuard {
  private readonly held: number[] = [];
  private exhausted = false;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly reserve: number,
    private readonly accept: AcceptSwitch,
    private readonly log: Logger,
    private readonly onExhausted: () => void,
  ) {
    this.takeReserve();
    this.timer = setInterval(() => this.probe(), PROBE_MS);
    this.timer.unref();
  }

  /** Whether the public side is paused because descriptors ran out. */
  get paused(): boolean {
    return this.exhausted;
  }

  stop(): void {
    clearInterval(this.timer);
    this.release();
  }

  private probe(): void {
    if (!this.exhausted) {
      if (canOpenOne()) return;
      this.exhausted = true;
      this.release();
      this.accept.pause();
      this.onExhausted();
      this.log.warn({ reserve: this.reserve }, 'open files exhausted: the public side stops accepting until descriptors are free again (raise ulimit -n?)');
      return;
    }
    // Resume once twice the reserve is free: the reserve again, and as much room for the connections
    // that waited in the accept queue and will be taken at once.
    if (this.takeReserve() && canOpen(this.reserve)) {
      this.exhausted = false;
      this.accept.resume();
      this.log.info('open files available again: the public side accepts connections');
    } else this.release();
  }

  private takeReserve(): boolean {
    while (this.held.length < this.reserve) {
      try {
        this.held.push(openSync('/dev/null', 'r'));
      } catch {
        return false;
      }
    }
    return true;
  }

  private release(): void {
    for (const fd of this.held.splice(0)) closeSync(fd);
  }
}

function canOpenOne(): boolean {
  return canOpen(1);
}

/** Whether n more descriptors can be opened right now (they are closed again before this returns). */
function canOpen(n: number): boolean {
  const fds: number[] = [];
  try {
    while (fds.length < n) fds.push(openSync('/dev/null', 'r'));
    return true;
  } catch {
    return false;
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}
