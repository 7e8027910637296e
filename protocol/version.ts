/**
 * The protocol versions this build speaks, negotiated as the WebSocket subprotocol, newest first. A
 * server keeps older versions while tabs that loaded an older script live: a browser tab keeps the script
 * it loaded for as long as it stays open.
 *
 * v2 (this build's): the welcome's limits carry maxFramesPerSecond, so a client paces itself; an ack may
 * carry the count of samples of that frame the server dropped for the session's sample rate.
 * v1: the same messages without those two fields.
 */
export const PROTOCOL_VERSION = 2;
export type ProtocolVersion = 1 | 2;
export const SUBPROTOCOL = `promstream.v${PROTOCOL_VERSION}` as const;
export const SUBPROTOCOL_V1 = 'promstream.v1';
/** Subprotocols this build accepts, newest first (a client offers them in this order, a server picks the first it knows). */
export const SUPPORTED_SUBPROTOCOLS: readonly string[] = Object.freeze([SUBPROTOCOL, SUBPROTOCOL_V1]);
/** The version a negotiated subprotocol names, or null for one this build does not speak. */
export function protocolVersionOf(subprotocol: string | null | undefined): ProtocolVersion | null {
  return subprotocol === SUBPROTOCOL ? 2 : subprotocol === SUBPROTOCOL_V1 ? 1 : null;
}
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
