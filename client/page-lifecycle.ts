/**
 * What a browser tab's life means for the client. A tab that goes hidden may never run JavaScript again
 * (closed, discarded, frozen on mobile), and its timers are throttled until then: so whatever is pending
 * is flushed the moment it goes hidden or is hidden away (`pagehide`), not by the flush timer. When the
 * network comes back (`online`) or the tab is shown again, a reconnect waiting out its backoff (maybe far
 * longer than planned, on a throttled timer) happens at once.
 */
export interface LifecycleClient {
  flush(): Promise<void>;
  reconnectNow(): void;
  networkBack(): void;
}

/** Listens to the page; returns the function that stops listening. A no-op outside a document (workers, Node). */
export function watchPageLifecycle(client: LifecycleClient): () => void {
  if (typeof document === 'undefined' || typeof addEventListener !== 'function') return () => {};
  const flush = (): void => {
    // flush() rejects after flushTimeout; nobody waits for it here.
    client.flush().catch(() => {});
  };
  const onVisibility = (): void => {
    if (document.visibilityState === 'hidden') flush();
    else client.reconnectNow();
  };
  const onOnline = (): void => client.networkBack();
  // On document, not window in capture: web-vitals reports CLS, INP and LCP from a window capture
  // listener of the same visibilitychange event, and those observations belong in this flush.
  document.addEventListener('visibilitychange', onVisibility);
  addEventListener('pagehide', flush);
  addEventListener('online', onOnline);
  return () => {
    document.removeEventListener('visibilitychange', onVisibility);
    removeEventListener('pagehide', flush);
    removeEventListener('online', onOnline);
  };
}
