import { ClientCore } from './client-core.js';
import type { ClientOptions, PromstreamClient, SocketLike } from './types.js';

export type { ClientOptions, ClientStatus, Labels, PromstreamClient } from './types.js';

/** Browsers (and bundlers targeting them) use the platform's WebSocket. */
export function createClient(options: ClientOptions): PromstreamClient {
  return new ClientCore(options, (url, protocols) => new WebSocket(url, protocols) as unknown as SocketLike);
}
