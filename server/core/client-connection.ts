import type { ProtocolVersion } from '../../protocol/index.js';
import type { Peer } from '../transport/types.js';
import type { GaugeParts } from './series-store.js';

/**
 * Where a connection is in the protocol: waiting for its hello, resuming (its session is being handed
 * over from another worker), active (welcomed), closing (the
 * server sent its close and waits for the socket to go), closed (the socket is gone).
 */
export type ConnectionPhase = 'hello' | 'resuming' | 'active' | 'closing' | 'closed';

/**
 * Per-connection state, from the upgrade until the socket is gone, and the worker's part of the session
 * attached to it (slot ≥ 0). What must survive the connection (the session's last applied seq, its
 * budgets, its token) is in its slot of the host's SlotTable, which also gives its id and token: none
 * of it is copied here. One of these lives as long as an idle client, so it is one object of plain
 * fields: no per-connection bucket objects, no strings that can be derived.
 */
export class ClientConnection {
  phase: ConnectionPhase = 'hello';
  /** The slot of the session attached to this connection; -1 before the welcome and once detached. */
  slot = -1;
  /** Index of the session's label combination in connected_clients (valid while slot ≥ 0). */
  combo = 0;
  /** The session's gauge values; created with its first delta, so an idle session does not carry an empty Map. */
  gauges: GaugeParts | null = null;
  /** The start of the phase's deadline: opened (hello, resuming: the handshake timeout), or closed by the server (closing: the close grace). */
  sinceMs: number;
  /** The last frame, ping or pong; also the clock of the frame budget (every one of them takes from it). */
  lastSeenMs: number;
  pingSentAtMs = 0;
  /** Tokens of the frame budget (frames, pings and pongs per second), refilled from lastSeenMs. */
  frameTokens: number;
  /** The ack this connection is owed, not sent yet (0: none; seqs start at 1), and its rate-limited samples. */
  ackSeq = 0;
  ackDropped = 0;

  constructor(
    readonly peer: Peer,
    openedAtMs: number,
    /** The session id the URL names (for proxies), checked against the hello. */
    readonly urlSessionId: string | null,
    /** The client's address (from X-Forwarded-For with --trust-proxy), for the per-address limit. */
    readonly address: string,
    /** The frame budget starts full. */
    frameBurst: number,
    /** The protocol version the subprotocol negotiated; the welcome and acks are spelled for it. */
    readonly version: ProtocolVersion,
  ) {
    this.sinceMs = openedAtMs;
    this.lastSeenMs = openedAtMs;
    this.frameTokens = frameBurst;
  }
}
