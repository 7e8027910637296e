/**
 * What `pageMetrics: true` reports in each engine today (docs/BFCACHE-FINDINGS.md, "Page metrics"):
 * which navigation-timing fields and Web Vitals reach /metrics from one page view, and the raw
 * PerformanceNavigationTiming behind them. The assertions pin what was measured, so that a browser
 * upgrade that changes it shows up here. Real aggregator, snippet page on another origin.
 */
import { rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type {} from '../../client/promstream-global.js';
import { NAVIGATION_TIMING_FIELDS, OPTIONAL_TIMING_FIELDS, WEB_VITALS } from '../../client/page-metrics.js';
import { loadBrowserScript, type BrowserScriptManifest } from '../../server/http/browser-script.js';
import { startPageServer, type PageServer } from '../support/chromium.js';
import { ENGINES, type EngineBrowser, type EngineName, type EngineTab } from '../support/engines/index.js';
import { clickAndSettle } from '../support/engines/interaction.js';
import { snippetPageFromUrl, snippetWhitelistFile, snippetPageQuery } from '../support/engines/snippet-page.js';
import { scrape, valueOf } from '../support/scrape.js';
import { REPO_ROOT, killAllClis, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';

type Vital = keyof typeof WEB_VITALS;

/**
 * The Web Vitals each engine reports for one page view (a trusted click, then hidden). Gecko has no
 * layout-shift entries (no CLS); WebKitGTK 2.50 has paint and navigation entries only (no LCP, no event
 * timing so no INP, no CLS).
 */
const VITALS: Record<EngineName, readonly Vital[]> = {
  chromium: ['CLS', 'FCP', 'INP', 'LCP', 'TTFB'],
  firefox: ['FCP', 'INP', 'LCP', 'TTFB'],
  webkit: ['FCP', 'TTFB'],
};

let manifest: BrowserScriptManifest;
let dir: string;
let pages: PageServer;
let agg: ServingCli;

beforeAll(async () => {
  manifest = loadBrowserScript().manifest;
  const made = snippetWhitelistFile('promstream-page-metrics-');
  dir = made.dir;
  const whitelist = made.file;
  pages = await startPageServer((url) => snippetPageFromUrl(manifest, url));
  agg = await startServe(['--config', whitelist, '--config', path.join(REPO_ROOT, 'examples', 'page-metrics-whitelist.json'), '--allowed-origins', pages.origin, '--flush-interval', '30s']);
});
afterAll(async () => {
  await pages?.close();
  await killAllClis();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const counts = async (): Promise<Record<string, number>> => {
  const m = await scrape(agg.metricsPort);
  const out: Record<string, number> = {};
  // The snippet page gives no route: its page metrics count under the whitelist's fallback.
  for (const f of NAVIGATION_TIMING_FIELDS) out[f] = valueOf(m, `performance_timing_${f}_count{route="other"}`);
  for (const [v, { metric }] of Object.entries(WEB_VITALS)) out[v] = valueOf(m, `${metric}_count{route="other"}`);
  return out;
};

/** The navigation entry's fields, rounded to 0.1 ms, and the time origins. */
const rawTiming = (tab: EngineTab): Promise<Record<string, number | string>> =>
  tab.evaluate((fields: readonly string[]) => {
    const nav = performance.getEntriesByType('navigation')[0] as unknown as Record<string, number> | undefined;
    const out: Record<string, number | string> = { timeOrigin: performance.timeOrigin, navigationStartL1: performance.timing.navigationStart };
    if (nav === undefined) return out;
    for (const f of ['startTime', ...fields.filter((x) => x !== 'navigationStart')]) out[f] = Math.round((nav[f] ?? NaN) * 10) / 10;
    return out;
  }, NAVIGATION_TIMING_FIELDS);

const hide = (tab: EngineTab): Promise<null> =>
  tab.evaluate(() => {
    // What the browser does when the user switches tabs: web-vitals reports CLS, INP and LCP then.
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
    return null;
  });

for (const engine of ENGINES) {
  engine.describe(`pageMetrics in ${engine.name}`, () => {
    let browser: EngineBrowser;
    beforeAll(async () => {
      browser = await engine.launch();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('reports the navigation-timing fields and Web Vitals this engine has, once per page view', async () => {
      const before = await counts();
      const tab = await browser.newTab(`${pages.origin}/${snippetPageQuery({ agg: agg.port, app: 'student', pageMetrics: true })}`);
      await waitFor(() => tab.evaluate(() => document.readyState === 'complete'), { what: 'the load event' });
      const raw = await rawTiming(tab);
      const supported = await tab.evaluate(() => PerformanceObserver.supportedEntryTypes);
      console.info(`${engine.name} ${browser.version}: navigation entry ${JSON.stringify(raw)}; supportedEntryTypes ${supported.join(',')}`);
      // A trusted click, and web-vitals given the time to count it (interaction.ts says how); then
      // hidden: LCP is final, INP has its interaction, CLS is reported.
      const clickedAt = Date.now();
      await clickAndSettle(tab, '#record');
      console.info(`${engine.name}: the click's event timing entry and an idle callback after it took ${Date.now() - clickedAt} ms`);
      await hide(tab);
      // The client's rule: every field but the optional unloadEvent*, which only count when not 0
      // (Firefox's negative fetchStart and WebKit's zeros included: measured from min(startTime, fetchStart)).
      const fields = NAVIGATION_TIMING_FIELDS.filter((f) => !OPTIONAL_TIMING_FIELDS.includes(f) || (raw[f] as number) !== 0);
      const wanted = [...fields, ...VITALS[engine.name]].sort();
      const reported = async (): Promise<string[]> => {
        await tab.evaluate(() => promstream('flush'));
        const now = await counts();
        return Object.keys(now).filter((k) => (now[k] ?? 0) - (before[k] ?? 0) > 0).sort();
      };
      let last: string[] = [];
      await waitFor(async () => {
        last = await reported();
        return last.join() === wanted.join();
      }, { what: `one page view's observations of ${wanted.join(', ')}` }).catch(() => undefined);
      console.info(`${engine.name}: reported ${last.join(', ')}; not reported ${[...NAVIGATION_TIMING_FIELDS, ...Object.keys(WEB_VITALS)].filter((k) => !last.includes(k)).join(', ')}`);
      expect(last).toEqual(wanted);
      // Hidden a second time and flushed again: nothing counted twice, nothing that was missing turns up late.
      await tab.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
      expect(await reported()).toEqual(wanted);
      const after = await counts();
      for (const k of wanted) expect((after[k] ?? 0) - (before[k] ?? 0), k).toBe(1);
      expect(raw.startTime).toBe(0);
      // Firefox, first page of a new tab: fetchStart precedes the time origin (see the suite below).
      if (engine.name === 'firefox') expect(raw.fetchStart).toBeLessThan(0);
      else expect(raw.fetchStart).toBeGreaterThanOrEqual(0);
      await tab.close();
    });
  });
}

/**
 * Firefox's negative fields, narrowed down: they come only with the first navigation of a new tab (the
 * navigation the parent process starts into a fresh browsing context), not with later navigations of the
 * same tab however they are started; and a reused connection gives domainLookup*, connect* = fetchStart.
 */
const firefox = ENGINES.find((e) => e.name === 'firefox')!;
firefox.describe('Firefox navigation timing by kind of navigation', () => {
  let browser: EngineBrowser;
  let plain: http.Server;
  let origin: string;
  beforeAll(async () => {
    plain = http.createServer((req, res) => {
      res.writeHead(req.url === '/favicon.ico' ? 404 : 200, { 'content-type': 'text/html' }).end('<!doctype html><title>t</title><h1>timing</h1><a id="link" href="/clicked">link</a>');
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
    browser = await firefox.launch();
  });
  afterAll(async () => {
    await browser?.close();
    plain?.closeAllConnections();
    plain?.close();
  });

  const fetchStart = (tab: EngineTab): Promise<{ url: string; fetchStart: number; connectStart: number; domainLookupStart: number }> =>
    tab.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return { url: location.pathname, fetchStart: n.fetchStart, connectStart: n.connectStart, domainLookupStart: n.domainLookupStart };
    });

  it('negative only on the first navigation of a new tab', async () => {
    const rows = [];
    const tab = await browser.newTab(`${origin}/new-tab`);
    rows.push(await fetchStart(tab));
    await tab.goto(`${origin}/driver-navigate`);
    rows.push(await fetchStart(tab));
    await tab.click('#link');
    await waitFor(() => tab.evaluate(() => location.pathname === '/clicked' && document.readyState === 'complete'), { what: 'the clicked link to load' });
    rows.push(await fetchStart(tab));
    const second = await browser.newTab(`${origin}/second-new-tab`);
    rows.push(await fetchStart(second));
    console.info(`firefox fetchStart by navigation: ${JSON.stringify(rows)}`);
    const [first, driven, clicked, again] = rows as [typeof rows[0], typeof rows[0], typeof rows[0], typeof rows[0]];
    expect(first.fetchStart).toBeLessThan(0);
    // -1 to -3 ms or 0 here (Firefox clamps timestamps to whole milliseconds): never after the origin
    expect(again.fetchStart).toBeLessThanOrEqual(0);
    // the second new tab reuses the kept-alive connection: no DNS or connect of its own, all = fetchStart
    expect(again.connectStart).toBe(again.fetchStart);
    expect(again.domainLookupStart).toBe(again.fetchStart);
    for (const later of [driven, clicked]) expect(later.fetchStart).toBeGreaterThanOrEqual(0);
    await Promise.all([tab.close(), second.close()]);
  });
});
