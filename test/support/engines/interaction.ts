import type { EngineTab } from './engine.js';

/**
 * A trusted click on `selector`, then an idle callback registered once the click's event timing entry
 * has reached the page's performance observers: what a test waits for before hiding the page, so that
 * web-vitals has counted the interaction (LCP final, INP measured).
 *
 * web-vitals takes event entries in an idle callback of its own, registered when its observer is handed
 * the entry (docs/BFCACHE-FINDINGS.md, "INP needs an idle callback before the page is hidden"). Observers
 * are handed entries in one task, in the order they were registered (and a buffered entry is handed to a
 * new observer in a task queued after that), so the idle callback registered here runs after web-vitals'.
 * One registered right after the click could run before the entry existed (the frame after the click
 * comes late on a loaded machine); the page was then hidden before web-vitals saw the interaction, and
 * INP was lost (one CI run). An engine without event timing (WebKitGTK) waits for the idle callback only;
 * an entry that never comes (an interaction under 16 ms, which web-vitals' 40 ms threshold drops too) is
 * waited for 5 s.
 */
export async function clickAndSettle(tab: EngineTab, selector: string): Promise<void> {
  const since = await tab.evaluate(() => performance.now());
  await tab.click(selector);
  await tab.evaluate((t0) => new Promise<null>((resolve) => {
    const idle = (): void => {
      if (typeof requestIdleCallback === 'function') requestIdleCallback(() => resolve(null), { timeout: 1000 });
      else resolve(null);
    };
    if (typeof PerformanceEventTiming === 'undefined' || !('interactionId' in PerformanceEventTiming.prototype)) return idle();
    const seen = (e: PerformanceEntry): boolean => e.startTime >= t0 && (e.entryType === 'first-input' || (e as PerformanceEventTiming).interactionId > 0);
    const observer = new PerformanceObserver((list) => {
      if (!list.getEntries().some(seen)) return;
      clearTimeout(timer);
      observer.disconnect();
      idle();
    });
    const timer = setTimeout(() => {
      observer.disconnect();
      idle();
    }, 5000);
    observer.observe({ type: 'event', buffered: true, durationThreshold: 16 });
    observer.observe({ type: 'first-input', buffered: true });
    return undefined;
  }), since);
}
