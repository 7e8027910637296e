/**
 * Chromium: Debian's `chromium`, driven by playwright-core over the DevTools protocol.
 *
 * playwright passes `--disable-back-forward-cache` by default ("avoids surprises" in its own goBack);
 * that would hide exactly the behaviour the bfcache tests look at, so it is left out here. Whether a
 * history navigation was served from the bfcache is the DevTools protocol's word: `Page.frameNavigated`
 * of the main frame with type `BackForwardCacheRestore`, and no `Page.backForwardCacheNotUsed` (whose
 * `notRestoredExplanations` say why not).
 */
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';
import { chromiumBin } from '../chromium.js';
import { answerWithin, waitFor } from '../wait-for.js';
import { describeRequiringBinaries, pageshowLogId, type Engine, type EngineBrowser, type EngineTab, type HistoryNavigation } from './engine.js';

export { chromiumBin };

/** The flags of test/support/chromium.ts: headless, and nothing that talks to anything but 127.0.0.1. */
export const CHROMIUM_ARGS: readonly string[] = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface NotUsedEvent {
  readonly loaderId: string;
  readonly frameId: string;
  readonly notRestoredExplanations: readonly { type: string; reason: string; context?: string }[];
}

interface FrameNavigatedEvent {
  readonly frame: { id: string; parentId?: string; url: string; loaderId: string };
  readonly type: 'Navigation' | 'BackForwardCacheRestore';
}

const HISTORY_TIMEOUT_MS = 15_000;

class ChromiumTab implements EngineTab {
  /** DevTools events of the main frame, in arrival order. */
  private readonly events: ({ kind: 'navigated'; type: string; url: string } | { kind: 'notUsed'; reasons: string[] })[] = [];

  private constructor(readonly page: Page, readonly cdp: CDPSession) {
    cdp.on('Page.frameNavigated', (e: FrameNavigatedEvent) => {
      if (e.frame.parentId === undefined) this.events.push({ kind: 'navigated', type: e.type, url: e.frame.url });
    });
    cdp.on('Page.backForwardCacheNotUsed', (e: NotUsedEvent) => {
      this.events.push({ kind: 'notUsed', reasons: e.notRestoredExplanations.map((x) => `${x.type}:${x.reason}${x.context === undefined ? '' : `(${x.context})`}`) });
    });
  }

  static async open(browser: Browser, url: string): Promise<ChromiumTab> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Page.enable');
    const tab = new ChromiumTab(page, cdp);
    await tab.goto(url);
    return tab;
  }

  async goto(url: string): Promise<void> {
    await this.page.goto(url, { waitUntil: 'load' });
    await pageshowLogId(this.evaluate.bind(this));
  }

  evaluate<R, A = null>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    // playwright's own generics (handles, unboxing) are more than JSON in, JSON out needs.
    return this.page.evaluate(fn as (a: unknown) => R, arg ?? null);
  }

  async click(selector: string): Promise<void> {
    await this.page.click(selector);
  }

  back(): Promise<HistoryNavigation> {
    return this.traverse(-1);
  }

  forward(): Promise<HistoryNavigation> {
    return this.traverse(1);
  }

  /**
   * Through the DevTools protocol itself, not page.goBack(): playwright's goBack waits for a load event,
   * which a bfcache restore never fires.
   */
  private async traverse(delta: -1 | 1): Promise<HistoryNavigation> {
    const { currentIndex, entries } = (await answerWithin('DevTools Page.getNavigationHistory', this.cdp.send('Page.getNavigationHistory'), HISTORY_TIMEOUT_MS)) as { currentIndex: number; entries: { id: number; url: string }[] };
    const target = entries[currentIndex + delta];
    if (target === undefined) throw new Error(`no history entry at ${delta} from ${currentIndex} of ${entries.length}`);
    const from = this.events.length;
    // A DevTools call has no timeout of its own: bounded, so a hang fails naming the call.
    await answerWithin('DevTools Page.navigateToHistoryEntry', this.cdp.send('Page.navigateToHistoryEntry', { entryId: target.id }), HISTORY_TIMEOUT_MS);
    const navigated = await waitFor(() => this.events.slice(from).find((e) => e.kind === 'navigated'), {
      what: `Page.frameNavigated after going ${delta < 0 ? 'back' : 'forward'} to ${target.url}`,
      timeoutMs: HISTORY_TIMEOUT_MS,
    });
    if (navigated.kind !== 'navigated') throw new Error('unreachable');
    if (navigated.type !== 'BackForwardCacheRestore') await this.page.waitForLoadState('load', { timeout: HISTORY_TIMEOUT_MS });
    // backForwardCacheNotUsed comes with or right after the navigation that was not restored.
    const notUsed = this.events.slice(from).filter((e) => e.kind === 'notUsed').flatMap((e) => (e.kind === 'notUsed' ? e.reasons : []));
    await pageshowLogId(this.evaluate.bind(this));
    const restored = navigated.type === 'BackForwardCacheRestore' && notUsed.length === 0;
    return { fromBfcache: restored, evidence: `devtools: Page.frameNavigated type ${navigated.type}${notUsed.length > 0 ? ', Page.backForwardCacheNotUsed' : ''}`, notRestoredReasons: notUsed };
  }

  async close(): Promise<void> {
    const context = this.page.context();
    await this.page.close();
    await context.close();
  }
}

export async function launchChromiumEngine(): Promise<EngineBrowser> {
  const browser = await chromium.launch({
    executablePath: chromiumBin,
    args: [...CHROMIUM_ARGS],
    ignoreDefaultArgs: ['--disable-back-forward-cache'],
  });
  return {
    engine: 'chromium',
    version: `Chromium ${browser.version()}`,
    async newTab(url) {
      return ChromiumTab.open(browser, url);
    },
    async close() {
      await browser.close();
    },
  };
}

export const chromiumEngine: Engine = {
  name: 'chromium',
  describe: describeRequiringBinaries('chromium', { chromium: chromiumBin }, 'apt-get install chromium (set CHROMIUM_BIN to override)'),
  launch: launchChromiumEngine,
};
