/**
 * Firefox ESR: Debian's `firefox-esr`, driven by puppeteer-core over WebDriver BiDi (installed with
 * PUPPETEER_SKIP_DOWNLOAD=1; puppeteer-core never downloads a browser, and is only ever given Debian's).
 *
 * Firefox has no DevTools protocol event for the bfcache: whether a history navigation was served from it
 * is told by the page's own `pageshow` event (see pageshowVerdict). Firefox says why it did not cache a
 * page in its `PageCache` and `SHIPBFCache` log modules: launch with
 * `env: { MOZ_LOG: 'SHIPBFCache:5,PageCache:5' }` and an `output` listener.
 */
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { describeRequiringBinaries, pageshowLogId, pageshowVerdict, type Engine, type EngineBrowser, type EngineTab, type HistoryNavigation } from './engine.js';

/** `FIREFOX_BIN`, else where Debian's `firefox-esr` package puts it. */
export const firefoxBin: string = process.env.FIREFOX_BIN ?? '/usr/bin/firefox-esr';

export interface FirefoxLaunchOptions {
  /** Extra about:config preferences, written into the temporary profile. */
  readonly prefs?: Readonly<Record<string, string | number | boolean>>;
  /** Extra environment for the browser process (e.g. MOZ_LOG). */
  readonly env?: Readonly<Record<string, string>>;
  /** Every line the browser (and its content processes) print on stderr. */
  readonly output?: (line: string) => void;
}

/**
 * Preferences for a browser that talks to 127.0.0.1 only, on top of puppeteer's own set (which already
 * points updates, telemetry, safebrowsing and remote settings at a dummy host).
 */
const OFFLINE_PREFS = {
  'network.connectivity-service.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'extensions.systemAddon.update.enabled': false,
} as const;

class FirefoxTab implements EngineTab {
  constructor(readonly page: Page) {}

  async goto(url: string): Promise<void> {
    await this.page.goto(url, { waitUntil: 'load' });
    await pageshowLogId(this.evaluate.bind(this));
  }

  evaluate<R, A = null>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    // puppeteer's own generics (handles) are more than JSON in, JSON out needs.
    return this.page.evaluate(fn as (a: unknown) => R, arg ?? null) as Promise<R>;
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
   * BiDi's browsingContext.traverseHistory, through the page's main frame. puppeteer's goBack() would
   * wait for a load event as well, which a restore from the bfcache never fires.
   */
  private async traverse(delta: -1 | 1): Promise<HistoryNavigation> {
    const left = await pageshowLogId(this.evaluate.bind(this));
    const context = (this.page.mainFrame() as unknown as { browsingContext?: { traverseHistory?: (d: number) => Promise<void> } }).browsingContext;
    if (typeof context?.traverseHistory !== 'function') throw new Error('puppeteer-core changed: no browsingContext.traverseHistory on the BiDi main frame');
    await context.traverseHistory(delta);
    return pageshowVerdict(this.evaluate.bind(this), left);
  }

  async close(): Promise<void> {
    await this.page.close();
  }
}

export async function launchFirefoxEngine(options: FirefoxLaunchOptions = {}): Promise<EngineBrowser> {
  const browser: Browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: firefoxBin,
    headless: true,
    extraPrefsFirefox: { ...OFFLINE_PREFS, ...options.prefs },
    env: { ...process.env, ...options.env },
  });
  const output = options.output;
  const child = browser.process();
  if (output !== undefined && child !== null) {
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) output(line);
    });
  }
  const version = await browser.version();
  return {
    engine: 'firefox',
    version: version.replace(/^firefox\//, 'Firefox '),
    async newTab(url) {
      const tab = new FirefoxTab(await browser.newPage());
      await tab.goto(url);
      return tab;
    },
    async close() {
      await browser.close();
    },
  };
}

export const firefoxEngine: Engine = {
  name: 'firefox',
  describe: describeRequiringBinaries('firefox', { 'firefox-esr': firefoxBin }, 'apt-get install firefox-esr (set FIREFOX_BIN to override)'),
  launch: () => launchFirefoxEngine(),
};
