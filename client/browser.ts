import { ClientCore } from './client-core.js';
import type { CollectorClient } from './collectors/hooks.js';
import { watchPageLifecycle } from './page-lifecycle.js';
import { needsWorkerHeldSocket, workerHeldSocketFactory } from './worker-socket.js';
import type { PendingDeltas } from './pending-deltas.js';
import type { ClientOptions, PromstreamClient, SocketFactory, SocketLike } from './types.js';

export type { ClientOptions, ClientStatus, Labels, PromstreamClient } from './types.js';
export type { CollectorClient } from './collectors/hooks.js';
export { ClientErrorCode, ClosedByServerError, PromstreamClientError } from './errors.js';

/** Browsers (and bundlers targeting them) use the platform's WebSocket. */
const openBrowserSocket: SocketFactory = (url, protocols) => new WebSocket(url, protocols) as unknown as SocketLike;

/**
 * The client core plus the page's life: flush when the tab is hidden, suspend into and resume from the
 * back/forward cache, end the session when the page is unloaded, reconnect when back online; its socket
 * held by a per-page SharedWorker where one can be had (worker-socket.ts).
 */
export class BrowserClient extends ClientCore {
  readonly #stopWatchingPage: () => void;

  constructor(options: ClientOptions, recorded?: PendingDeltas) {
    super(options, typeof navigator === 'object' && needsWorkerHeldSocket(navigator.userAgent) ? workerHeldSocketFactory(openBrowserSocket) : openBrowserSocket, recorded);
    this.#stopWatchingPage = watchPageLifecycle(this);
  }

  override close(): Promise<void> {
    this.#stopWatchingPage();
    return super.close();
  }
}

/** The client; also what the collectors (`promstream/collectors/*`) record into. */
export function createClient(options: ClientOptions): PromstreamClient & CollectorClient {
  return new BrowserClient(options);
}
