import { CloseReasons, type ServerCloseReason } from '../../protocol/index.js';
import type { ClientConnection } from './client-connection.js';

/**
 * How long a socket the server closed may take to go: its close frame out and the peer's answer in.
 * Past it the socket is dropped, so a peer that never answers (or floods while we wait) holds its
 * descriptor and its place in the limits for seconds, not for a library's default (ws: 30 s).
 */
export const CLOSE_GRACE_MS = 2_000;

export interface LivenessDeadlines {
  readonly idleTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
}

/**
 * One liveness pass over the open connections at `nowMs`: a connection without hello past the
 * handshake timeout is closed (4004); an active one silent for half the idle timeout is pinged, and
 * silent for all of it dropped (4005, no close frame: a vanished peer would never read one); one the
 * server closed that is still there after CLOSE_GRACE_MS is dropped.
 */
export function sweepConnections(
  connections: Iterable<ClientConnection>,
  nowMs: number,
  deadlines: LivenessDeadlines,
  closeWith: (conn: ClientConnection, reason: ServerCloseReason) => void,
): void {
  const { idleTimeoutMs, handshakeTimeoutMs } = deadlines;
  for (const conn of connections) {
    if (conn.phase === 'hello' || conn.phase === 'resuming') {
      if (nowMs - conn.sinceMs >= handshakeTimeoutMs) closeWith(conn, CloseReasons.handshakeTimeout);
    } else if (conn.phase === 'active') {
      const silentMs = nowMs - conn.lastSeenMs;
      if (silentMs >= idleTimeoutMs) {
        closeWith(conn, CloseReasons.idleTimeout);
        conn.peer.terminate();
      } else if (silentMs >= idleTimeoutMs / 2 && conn.pingSentAtMs <= conn.lastSeenMs) {
        conn.pingSentAtMs = nowMs;
        conn.peer.ping();
      }
    } else if (conn.phase === 'closing' && nowMs - conn.sinceMs >= CLOSE_GRACE_MS) {
      conn.peer.terminate();
    }
  }
}

/** How often to sweep: a quarter of the shorter deadline, between 50 ms and 1 s. */
export function sweepIntervalMs(deadlines: LivenessDeadlines): number {
  return Math.min(1000, Math.max(50, Math.min(deadlines.idleTimeoutMs, deadlines.handshakeTimeoutMs) / 4));
}
