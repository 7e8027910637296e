/**
 * One small interface over the three browser engines Debian ships, so that a test can run the same steps
 * on each: Chromium (playwright-core over the DevTools protocol), Firefox ESR (puppeteer-core over
 * WebDriver BiDi) and WebKitGTK (its WebDriver, classic HTTP+JSON, with MiniBrowser under Xvfb). Only
 * Debian's binaries are used; nothing here downloads a browser.
 *
 * Scripts given to `evaluate` are plain functions: they are sent as source text and run in the page's
 * main world, so they must not close over test variables (pass those as the one JSON argument) and must
 * return JSON (undefined becomes null in some engines: return null instead).
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { describeRequiring } from '../prometheus.js';
import { waitFor } from '../wait-for.js';

export type EngineName = 'chromium' | 'firefox' | 'webkit';

/** How a back/forward navigation was served. */
export interface HistoryNavigation {
  /** True when the document came back from the back/forward cache (its JavaScript heap survived). */
  readonly fromBfcache: boolean;
  /**
   * What showed it, e.g. "devtools: BackForwardCacheRestore" or "pageshow persisted=true". Chromium's
   * is the DevTools protocol's own word; Firefox's and WebKit's is the page's `pageshow` event, heard by
   * a listener the driver put into the page when it loaded (`persisted` true means restored).
   */
  readonly evidence: string;
  /**
   * Why the page was not cached, when the engine says: Chromium's `Page.backForwardCacheNotUsed`
   * reasons (`Type:Reason`, e.g. `Supported:WebSocket`); empty elsewhere and when it was restored.
   */
  readonly notRestoredReasons: readonly string[];
}

export interface EngineTab {
  /** Navigates and waits for the load event; afterwards the driver's pageshow listener is in the page. */
  goto(url: string): Promise<void>;
  /** Runs `fn(arg)` in the page (awaited when it returns a promise) and returns its JSON result. */
  evaluate<R, A = null>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
  /** A trusted click (the engine's input pipeline, not `element.click()`) on the first match of a CSS selector. */
  click(selector: string): Promise<void>;
  /** History back; resolves once the previous document is shown, saying whether it came from the bfcache. */
  back(): Promise<HistoryNavigation>;
  forward(): Promise<HistoryNavigation>;
  /** Closes the tab (or window) as a user would: the page gets pagehide and its sockets close. */
  close(): Promise<void>;
}

export interface EngineBrowser {
  readonly engine: EngineName;
  /** The browser's own version string, e.g. "Chromium 156.0.8078.129". */
  readonly version: string;
  /** A new tab (its own window in WebKit) showing `url`, loaded. */
  newTab(url: string): Promise<EngineTab>;
  /** Closes every tab and the browser, and whatever process the driver started (Xvfb, WebDriver). */
  close(): Promise<void>;
}

export interface Engine {
  readonly name: EngineName;
  /** `describe` for this engine's suites: skipped loudly when a binary is missing, failing under CI. */
  readonly describe: (name: string, body: () => void) => void;
  launch(): Promise<EngineBrowser>;
}

export function executable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** describeRequiring for a set of binaries: the first missing one is named. */
export function describeRequiringBinaries(engine: EngineName, binaries: Readonly<Record<string, string>>, installHint: string): (name: string, body: () => void) => void {
  const missing = (): string | undefined => Object.entries(binaries).find(([, path]) => !executable(path))?.[0];
  return describeRequiring({
    what: `${engine} engine (${Object.entries(binaries).map(([what, path]) => `${what} at ${path}`).join(', ')})`,
    available: () => missing() === undefined,
    installHint,
  });
}

/** The window property the drivers' pageshow log lives on. */
export const PAGESHOW_LOG = '__engineTestPageshows';

interface PageshowLog {
  readonly id: string;
  readonly shows: { persisted: boolean; at: number }[];
}

/**
 * Run in the page by the drivers after each load: records the page's `pageshow` events on window and
 * returns the document's id (random, one per document). The log survives only inside a document kept in
 * the bfcache, so after going back a log with a last `persisted: true` proves the restore, and no log at
 * all proves a fresh load. Must stay self-contained: it is sent as source text.
 */
export function installPageshowLog(name: string): string {
  const w = window as unknown as Record<string, PageshowLog | undefined>;
  let log = w[name];
  if (log === undefined) {
    const created: PageshowLog = { id: Math.random().toString(36).slice(2), shows: [] };
    addEventListener('pageshow', (e) => created.shows.push({ persisted: e.persisted, at: performance.now() }));
    w[name] = log = created;
  }
  return log.id;
}

export interface PageshowLogState {
  /** null: this document has no log (it was loaded afresh, not restored). */
  readonly id: string | null;
  readonly lastPersisted: boolean | null;
  readonly readyState: string;
}

export function readPageshowLog(name: string): PageshowLogState {
  const log = (window as unknown as Record<string, PageshowLog | undefined>)[name];
  const last = log?.shows[log.shows.length - 1];
  return { id: log?.id ?? null, lastPersisted: last === undefined ? null : last.persisted, readyState: document.readyState };
}

type Evaluate = EngineTab['evaluate'];

/** The current document's log id (installing the log when the document has none yet). */
export const pageshowLogId = (evaluate: Evaluate): Promise<string> => evaluate(installPageshowLog, PAGESHOW_LOG);

/**
 * After a history navigation away from the document `leftId`: waits until another document is shown,
 * and tells from its pageshow log whether it came from the bfcache. A fresh document gets its log.
 */
export async function pageshowVerdict(evaluate: Evaluate, leftId: string, timeoutMs = 15_000): Promise<HistoryNavigation> {
  const state = await waitFor(async () => {
    const s = await evaluate(readPageshowLog, PAGESHOW_LOG);
    if (s.id === leftId) return undefined; // still the page we left
    if (s.id === null) return s.readyState === 'complete' ? s : undefined;
    return s.lastPersisted === true ? s : undefined;
  }, { what: 'the history navigation to show the other document', timeoutMs, intervalMs: 25 });
  await pageshowLogId(evaluate);
  return state.id === null
    ? { fromBfcache: false, evidence: 'pageshow log gone: a fresh document', notRestoredReasons: [] }
    : { fromBfcache: true, evidence: 'pageshow persisted=true in the kept document', notRestoredReasons: [] };
}
