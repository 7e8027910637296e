import type { ProtocolVersion } from '../../protocol/index.js';
import type { Peer } from '../transport/types.js';
import type { Session } from './session.js';
import type { TokenBucket } from './token-bucket.js';

/**
 * Where a connection is in the protocol: waiting for its hello, resuming (its session is being handed
 * over from another worker), active (welcomed), closing (the
 * server sent its close and waits for the socket to go), closed (the socket is gone).
 */
export type ConnectionPhase = 'hello' | 'resuming' | 'active' | 'closing' | 'closed';

/** Per-connection state, from the upgrade until the socket is gone. */
export class ClientConnection {
  phase: ConnectionPhase = 'hello';
  session: Session<ClientConnection> | null = null;
  lastSeenMs: number;
  pingSentAtMs = 0;
  closingSinceMs = 0;
  /** The ack this connection is owed, not sent yet (0: none; seqs start at 1), and its rate-limited samples. */
  ackSeq = 0;
  ackDropped = 0;

  constructor(
    readonly peer: Peer,
    readonly openedAtMs: number,
    /** The session id the URL names (for proxies), checked against the hello. */
    readonly urlSessionId: string | null,
    /** The client's address (from X-Forwarded-For with --trust-proxy), for the per-address limit. */
    readonly address: string,
    /** Frames, pings and pongs per second. */
    readonly frameBudget: TokenBucket,
    /** The protocol version the subprotocol negotiated; the welcome and acks are spelled for it. */
    readonly version: ProtocolVersion,
  ) {
    this.lastSeenMs = openedAtMs;
  }
}
