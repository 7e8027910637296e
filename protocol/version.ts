/** The one protocol version this build speaks, negotiated as the WebSocket subprotocol. */
export const PROTOCOL_VERSION = 1;
export const SUBPROTOCOL = `promstream.v${PROTOCOL_VERSION}` as const;
/** Subprotocols this build accepts, newest first. A future v2 server keeps v1 here while old tabs live. */
export const SUPPORTED_SUBPROTOCOLS: readonly string[] = Object.freeze([SUBPROTOCOL]);
/** The WebSocket path on the public side. */
export const WS_PATH = '/ws';
/** Query parameter a resuming client puts in its URL so a proxy can route it to its replica. */
export const SESSION_QUERY_PARAM = 'session';
/**
 * Query parameter with a random key a client picks once and keeps for all its connections: a proxy
 * that hashes on it sends the first connection and every resume to the same replica. (The session id
 * cannot serve: the server assigns it after the first connection has already landed somewhere.)
 */
export const ROUTE_QUERY_PARAM = 'route';
