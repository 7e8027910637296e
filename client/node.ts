import WebSocket from 'ws';
import { ClientCore } from './client-core.js';
import type { ClientOptions, PromstreamClient, SocketLike } from './types.js';

export type { ClientOptions, ClientStatus, Labels, PromstreamClient } from './types.js';
export { ClientErrorCode, ClosedByServerError, PromstreamClientError } from './errors.js';

export interface NodeClientOptions extends ClientOptions {
  /** Extra HTTP headers for the upgrade request, e.g. { origin: 'https://app.example.com' }. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Largest frame the client accepts from the server (the welcome carries the whole catalogue). */
const MAX_SERVER_FRAME_BYTES = 16 * 1024 * 1024;

/** Node 20 has no global WebSocket: this entry brings `ws`. */
export function createClient(options: NodeClientOptions): PromstreamClient {
  return new ClientCore(options, (url, protocols) => {
    const ws = new WebSocket(url, protocols, { headers: { ...options.headers }, maxPayload: MAX_SERVER_FRAME_BYTES, perMessageDeflate: false });
    // Without a listener an 'error' event (refused connection, bad handshake) would throw; onclose follows it.
    ws.on('error', () => {});
    return ws as unknown as SocketLike;
  });
}
