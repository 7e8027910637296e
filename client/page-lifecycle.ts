/**
 * What a browser tab's life means for the client.
 *
 * - Hidden (`visibilitychange`): a hidden tab may never run JavaScript again (closed, discarded, frozen
 *   on mobile) and its timers are throttled until then, so whatever is pending is flushed at once.
 * - Into the back/forward cache (`pagehide` with `persisted`): the client suspends: it sends what is
 *   pending and closes its socket with 4102, so that the cached page leaves connected_clients; the session
 *   stays resumable. Back (`pageshow` with `persisted`): it reconnects at once and resumes. No
 *   `beforeunload` or `unload` listener: either can keep a page out of the cache (docs/BFCACHE-FINDINGS.md).
 * - Unloaded for good (`pagehide` without `persisted`): every pending delta and then a goodbye go out,
 *   which ends the session at once instead of leaving it resumable. A page still visible at `pagehide`
 *   gets its `visibilitychange` right after it: the goodbye waits for that, because web-vitals reports a
 *   page's last CLS, INP and LCP from it (a window capture listener, so before ours on document).
 * - Shown again, or the network is back (`online`): a reconnect waiting out its backoff (maybe far longer
 *   than planned, on a throttled timer) happens now.
 */
export interface LifecycleClient {
  flush(): Promise<void>;
  reconnectNow(): void;
  networkBack(): void;
  suspend(): void;
  resume(): void;
  endNow(): void;
}

/** Listens to the page; returns the function that stops listening. A no-op outside a document (workers, Node). */
export function watchPageLifecycle(client: LifecycleClient): () => void {
  if (typeof document === 'undefined' || typeof addEventListener !== 'function') return () => {};
  let endWhenHidden = false;
  const onVisibility = (): void => {
    if (document.visibilityState !== 'hidden') client.reconnectNow();
    else if (endWhenHidden) client.endNow();
    // flush() rejects after flushTimeout; nobody waits for it here.
    else client.flush().catch(() => {});
  };
  const onPageHide = (e: PageTransitionEvent): void => {
    if (e.persisted) client.suspend();
    else if (document.visibilityState === 'hidden') client.endNow();
    else endWhenHidden = true;
  };
  const onPageShow = (e: PageTransitionEvent): void => {
    if (e.persisted) client.resume();
  };
  const onOnline = (): void => client.networkBack();
  // On document, not window in capture: web-vitals reports CLS, INP and LCP from a window capture
  // listener of the same visibilitychange event, and those observations belong in this flush.
  document.addEventListener('visibilitychange', onVisibility);
  addEventListener('pagehide', onPageHide);
  addEventListener('pageshow', onPageShow);
  addEventListener('online', onOnline);
  return () => {
    document.removeEventListener('visibilitychange', onVisibility);
    removeEventListener('pagehide', onPageHide);
    removeEventListener('pageshow', onPageShow);
    removeEventListener('online', onOnline);
  };
}
