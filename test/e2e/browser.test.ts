/**
 * The browser client in real headless Chromium, against the real aggregator process (`bin/promstream.js
 * serve`, built dist/). Test pages live on another origin (a page server of their own, with a strict CSP)
 * and use the documented snippet: the versioned script with its integrity value. Nothing sleeps: every
 * wait polls a condition with a deadline.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type {} from '../../client/promstream-global.js';
import type { ClientStatus } from '../../client/types.js';
import { loadBrowserScript, type BrowserScriptManifest } from '../../server/http/browser-script.js';
import { renderSnippet } from '../../server/http/browser-snippet.js';
import { describeWithChromium, launchChromium, startPageServer, type PageServer } from '../support/chromium.js';
import { scrape, valueOf } from '../support/scrape.js';
import { describeEachTransport, itEachTransport, TEST_WHITELIST_FILE } from '../support/server-harness.js';
import { REPO_ROOT, killAllClis, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';

const PAGE_METRICS_WHITELIST = path.join(REPO_ROOT, 'examples', 'page-metrics-whitelist.json');
const WHITELIST = TEST_WHITELIST_FILE;
/** The server's own flush timer is far away: whatever arrives earlier came from flush, hidden or pagehide. */
const SERVER_ARGS = ['--flush-interval', '30s'];
const NONCE = 't3st-n0nce';

interface TestWindow {
  statuses: ClientStatus[];
  queuedBeforeLoad: number;
}

/** dist/browser's manifest, read in beforeAll (npm test builds first). */
let manifest: BrowserScriptManifest;

/**
 * The README snippet for the aggregator on port `agg`, with the options a page adds (onStatus; pageMetrics
 * when asked), calls made before the script can have loaded, and a CSP that allows exactly what the
 * README's CSP notes say: the nonce'd inline snippet, the aggregator's script, its WebSocket.
 */
function testPage(url: URL): { html: string; headers: Record<string, string> } {
  const app = url.searchParams.get('app') ?? 'student';
  const agg = Number(url.searchParams.get('agg'));
  const snippet = renderSnippet(manifest, { baseUrl: `http://127.0.0.1:${agg}`, labels: { app } });
  const [inline, loader] = snippet.split(/(?=<script async )/) as [string, string];
  const labels = `labels: { app: '${app}' } }`;
  if (!inline.includes(labels) || loader === undefined) throw new Error(`the snippet changed shape:\n${snippet}`);
  const options = `labels: { app: '${app}' }, onStatus: function (s) { statuses.push(s); }${url.searchParams.has('pageMetrics') ? ', pageMetrics: true' : ''} }`;
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>a page on another origin</title>
<script nonce="${NONCE}">window.statuses = [];</script>
${inline.replace(labels, options).replace('<script>', `<script nonce="${NONCE}">`)}<script nonce="${NONCE}">
  // Before the script tag below: these calls can only be waiting in the stub's queue.
  promstream('increment', 'usage_total', { feature: 'a' });
  promstream('increment', 'usage_total', { feature: 'a' });
  promstream('increment', 'usage_total', { feature: 'b' }, 5);
  promstream('observe', 'rt_seconds', { host: 'x' }, 0.3);
  promstream('increment', 'usage_total', { feature: 'evil' });
  promstream('increment', 'evil_total', {});
  window.queuedBeforeLoad = promstream.q.length;
</script>
${loader}</head><body><h1>a page on another origin</h1><p>some content to paint</p></body></html>`;
  const csp = `default-src 'none'; script-src 'nonce-${NONCE}' http://127.0.0.1:${agg}; connect-src ws://127.0.0.1:${agg}`;
  return { html, headers: { 'content-security-policy': csp } };
}

const statuses = (page: Page): Promise<ClientStatus[]> => page.evaluate(() => (window as unknown as TestWindow).statuses);
const connectedCount = (page: Page): Promise<number> => statuses(page).then((s) => s.filter((x) => x.type === 'connected').length);

/** Resolves with the page's flush result (true: acknowledged). */
const flush = (page: Page): Promise<boolean | undefined> => page.evaluate(() => promstream('flush'));

describeWithChromium('the browser client in Chromium', () => {
  let browser: Browser;
  let pages: PageServer;
  let otherOrigin: PageServer;
  let dir: string;
  let whitelistFile: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    manifest = loadBrowserScript().manifest;
    dir = mkdtempSync(path.join(tmpdir(), 'promstream-browser-'));
    whitelistFile = path.join(dir, 'whitelist.json');
    writeFileSync(whitelistFile, JSON.stringify(WHITELIST));
    [browser, pages, otherOrigin] = await Promise.all([launchChromium(), startPageServer(testPage), startPageServer(testPage)]);
  });
  afterAll(async () => {
    await browser?.close();
    await pages?.close();
    await otherOrigin?.close();
    await killAllClis();
    rmSync(dir, { recursive: true, force: true });
  });
  const closeTabs = (): Promise<void[]> => Promise.all(contexts.splice(0).map((c) => c.close()));
  afterEach(closeTabs);

  const newContext = async (): Promise<BrowserContext> => {
    const ctx = await browser.newContext();
    contexts.push(ctx);
    return ctx;
  };

  /** A tab of the test page, once its client is welcomed. */
  const openTab = async (ctx: BrowserContext, aggPort: number, app: string, { origin = pages, pageMetrics = false } = {}): Promise<Page> => {
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
    });
    await page.goto(`${origin.origin}/?app=${app}&agg=${aggPort}${pageMetrics ? '&pageMetrics' : ''}`);
    if (origin === pages) {
      await waitFor(async () => (await connectedCount(page)) > 0, { what: `the ${app} tab to connect (page errors: ${errors.join('; ')})` });
      expect(errors).toEqual([]);
    }
    return page;
  };

  const startAggregator = (transport: string, extra: readonly string[] = []): Promise<ServingCli> =>
    startServe(['--config', whitelistFile, '--config', PAGE_METRICS_WHITELIST, '--allowed-origins', pages.origin, '--transport', transport, ...SERVER_ARGS, ...extra]);

  describeEachTransport('tabs on another origin, one aggregator over %s', (transport) => {
    let agg: ServingCli;
    beforeAll(async () => {
      agg = await startAggregator(transport);
    });
    afterAll(() => agg.proc.signal('SIGKILL'));
    afterEach(async () => {
      await closeTabs();
      // Closed tabs leave connected_clients at once (their sockets close).
      await waitFor(async () => {
        const m = await scrape(agg.metricsPort);
        return valueOf(m, 'connected_clients{app="student"}') + valueOf(m, 'connected_clients{app="teacher"}') === 0;
      }, { what: 'every tab of the last test to be gone' });
    });
    const metrics = (): Promise<Map<string, number>> => scrape(agg.metricsPort);

    it('counts exactly what several tabs recorded, calls queued before the script loaded included; connected_clients per label; nothing outside the whitelist', async () => {
      const before = await metrics();
      const ctx = await newContext();
      const tabs = [await openTab(ctx, agg.port, 'student'), await openTab(ctx, agg.port, 'student'), await openTab(ctx, agg.port, 'teacher')];
      for (const tab of tabs) {
        // init plus six calls waited in the stub's queue, then the script replayed them
        expect(await tab.evaluate(() => (window as unknown as TestWindow).queuedBeforeLoad)).toBe(7);
        expect(await tab.evaluate(() => (promstream as { q?: unknown }).q)).toBeUndefined();
      }
      // after the script loaded: tab i adds i + 1 to c and observes 0.7 on y
      await Promise.all(tabs.map((tab, i) => tab.evaluate((n) => {
        for (let k = 0; k < n; k++) promstream('increment', 'usage_total', { feature: 'c' });
        promstream('observe', 'rt_seconds', { host: 'y' }, 0.7);
        promstream('observe', 'rt_seconds', { host: 'nowhere' }, 0.7);
        promstream('increment', 'usage_total', { feature: 'a' }, -1);
      }, i + 1)));
      expect(await Promise.all(tabs.map(flush))).toEqual([true, true, true]);

      const m = await metrics();
      const delta = (series: string): number => valueOf(m, series) - valueOf(before, series);
      expect(delta('usage_total{feature="a"}')).toBe(3 * 2);
      expect(delta('usage_total{feature="b"}')).toBe(3 * 5);
      expect(delta('usage_total{feature="c"}')).toBe(1 + 2 + 3);
      expect(delta('rt_seconds_count{host="x"}')).toBe(3);
      expect(delta('rt_seconds_bucket{host="x",le="0.5"}')).toBe(3);
      expect(delta('rt_seconds_bucket{host="x",le="0.1"}')).toBe(0);
      expect(delta('rt_seconds_count{host="y"}')).toBe(3);
      expect(delta('rt_seconds_bucket{host="y",le="1"}')).toBe(3);
      expect(delta('rt_seconds_bucket{host="y",le="0.5"}')).toBe(0);
      expect(valueOf(m, 'connected_clients{app="student"}')).toBe(2);
      expect(valueOf(m, 'connected_clients{app="teacher"}')).toBe(1);
      // dropped in the tabs (evil_total; a negative increment) and counted; the label values outside the
      // list (feature evil, rt_seconds{host=nowhere}) left each tab as "not in the list" and the server,
      // with no fallback for those labels, rejected them
      expect(delta('promstream_client_dropped_samples_total{reason="label_not_allowed"}')).toBe(0);
      expect(delta('promstream_rejected_samples_total{reason="label_not_allowed"}')).toBe(3 * 2);
      expect(delta('promstream_client_dropped_samples_total{reason="unknown_metric"}')).toBe(3);
      expect(delta('promstream_client_dropped_samples_total{reason="negative"}')).toBe(3);
      expect([...m.keys()].filter((k) => k.includes('evil') || k.includes('nowhere'))).toEqual([]);
    });

    it('a page calling in a loop never throws, stays bounded, and the server counts what was dropped', async () => {
      const before = await metrics();
      const ctx = await newContext();
      const tab = await openTab(ctx, agg.port, 'student');
      const threw = await tab.evaluate(() => {
        try {
          for (let i = 0; i < 50_000; i++) {
            promstream('increment', 'usage_total', { feature: 'c' });
            promstream('increment', `made_up_${i}`, {}); // a new name every call: never held, dropped and counted
            promstream('observe', 'rt_seconds', { host: i % 2 === 0 ? 'x' : `h${i}` }, i % 7);
            promstream('set', 'presenting', {}, Number.NaN);
          }
          return false;
        } catch {
          return true;
        }
      });
      expect(threw).toBe(false);
      expect(await flush(tab)).toBe(true);
      const m = await metrics();
      const delta = (series: string): number => valueOf(m, series) - valueOf(before, series);
      expect(delta('usage_total{feature="c"}')).toBe(50_000);
      expect(delta('rt_seconds_count{host="x"}')).toBe(1 + 25_000); // with the page's own 0.3 from before the script loaded
      expect(delta('promstream_client_dropped_samples_total{reason="unknown_metric"}')).toBe(50_000 + 1);
      expect(delta('promstream_client_dropped_samples_total{reason="non_finite"}')).toBe(50_000);
      // 25 000 hosts outside the list leave the page as one series "not in the list" (the whitelist gives
      // host no fallback, so the server rejects it once), plus the evil feature from before the script loaded
      expect(delta('promstream_client_dropped_samples_total{reason="label_not_allowed"}')).toBe(0);
      expect(delta('promstream_rejected_samples_total{reason="label_not_allowed"}')).toBe(1 + 1);
    });

    it('sums the gauges of two tabs; a closed tab takes its part with it', async () => {
      const ctx = await newContext();
      const [one, two] = [await openTab(ctx, agg.port, 'student'), await openTab(ctx, agg.port, 'teacher')];
      await one.evaluate(() => promstream('set', 'presenting', {}, 1));
      await two.evaluate(() => promstream('set', 'presenting', {}, 2));
      expect([await flush(one), await flush(two)]).toEqual([true, true]);
      expect(valueOf(await metrics(), 'presenting')).toBe(3);

      await one.close();
      await waitFor(async () => valueOf(await metrics(), 'presenting') === 2, { what: 'the closed tab to take its gauge part along' });
      expect(valueOf(await metrics(), 'connected_clients{app="student"}')).toBe(0);
      expect(valueOf(await metrics(), 'connected_clients{app="teacher"}')).toBe(1);
    });

    it('sends what is pending when the tab is hidden, and when it is left, without waiting for the 30 s flush timer', async () => {
      const ctx = await newContext();
      const tab = await openTab(ctx, agg.port, 'student');
      expect(await flush(tab)).toBe(true);
      const c0 = valueOf(await metrics(), 'usage_total{feature="c"}');

      await tab.evaluate(() => {
        for (let i = 0; i < 4; i++) promstream('increment', 'usage_total', { feature: 'c' });
        // What the browser does when the user switches tabs or minimises the window.
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      await waitFor(async () => valueOf(await metrics(), 'usage_total{feature="c"}') === c0 + 4, { what: 'the increments sent on visibilitychange → hidden' });

      await tab.evaluate(() => {
        delete (document as { visibilityState?: unknown }).visibilityState;
        for (let i = 0; i < 3; i++) promstream('increment', 'usage_total', { feature: 'c' });
      });
      // Leaving the page: pagehide, then the browser closes the socket (1001).
      await tab.goto('about:blank');
      await waitFor(async () => valueOf(await metrics(), 'usage_total{feature="c"}') === c0 + 7, { what: 'the increments sent on pagehide' });
    });

    it('with pageMetrics: navigation timing and Core Web Vitals, in seconds, once per page view', async () => {
      const before = await metrics();
      // This page gives no route: the page metrics count under the whitelist's fallback.
      const OTHER = '{route="other"}';
      const ctx = await newContext();
      const tab = await openTab(ctx, agg.port, 'student', { pageMetrics: true });
      await tab.waitForFunction(() => document.readyState === 'complete');
      await tab.click('h1'); // a trusted input: LCP is final from here on
      await tab.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      const wanted = ['performance_timing_loadEventEnd', 'performance_timing_responseStart', 'web_vitals_ttfb_seconds', 'web_vitals_fcp_seconds', 'web_vitals_lcp_seconds', 'web_vitals_cls'];
      const m = await waitFor(async () => {
        const now = await metrics();
        return wanted.every((w) => valueOf(now, `${w}_count${OTHER}`) - valueOf(before, `${w}_count${OTHER}`) === 1) ? now : undefined;
      }, { what: `one observation each of ${wanted.join(', ')}` });
      const delta = (series: string): number => valueOf(m, series) - valueOf(before, series);
      expect(delta(`performance_timing_navigationStart_count${OTHER}`)).toBe(1);
      expect(delta(`performance_timing_navigationStart_sum${OTHER}`)).toBe(0);
      // seconds, not milliseconds: a local page loads well within 10 s, and takes some time
      for (const w of ['performance_timing_loadEventEnd', 'web_vitals_ttfb_seconds', 'web_vitals_fcp_seconds', 'web_vitals_lcp_seconds']) {
        expect(delta(`${w}_sum${OTHER}`), w).toBeGreaterThan(0);
        expect(delta(`${w}_sum${OTHER}`), w).toBeLessThan(10);
      }
      expect(delta(`performance_timing_responseEnd_sum${OTHER}`)).toBeLessThanOrEqual(delta(`performance_timing_loadEventEnd_sum${OTHER}`));
      // a first visibilitychange again: still once per page view
      await tab.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
      expect(await flush(tab)).toBe(true);
      const after = await metrics();
      for (const w of wanted) expect(valueOf(after, `${w}_count${OTHER}`) - valueOf(before, `${w}_count${OTHER}`), w).toBe(1);
      expect(valueOf(after, `web_vitals_inp_seconds_count${OTHER}`) - valueOf(before, `web_vitals_inp_seconds_count${OTHER}`)).toBeLessThanOrEqual(1);
    });

    it('a tab that goes offline and comes back loses nothing and counts nothing twice', async () => {
      const opened0 = valueOf(await metrics(), 'promstream_sessions_opened_total');
      const ctx = await newContext();
      const tab = await openTab(ctx, agg.port, 'teacher');
      expect(await flush(tab)).toBe(true);
      const c0 = valueOf(await metrics(), 'usage_total{feature="c"}');
      const connectedBefore = await connectedCount(tab);

      await ctx.setOffline(true);
      await tab.evaluate(() => {
        for (let i = 0; i < 7; i++) promstream('increment', 'usage_total', { feature: 'c' });
        void promstream('flush'); // a frame goes out into the void and waits for its ack
      });
      await ctx.setOffline(false);
      expect(await flush(tab)).toBe(true);
      const m = await metrics();
      expect(valueOf(m, 'usage_total{feature="c"}')).toBe(c0 + 7);
      // Back online with its frame unacknowledged, the client resumes on a fresh connection (the old one may
      // be dead after a real network change). Chromium's offline emulation only holds frames back, so the
      // ack may also beat the `online` event: then the old connection simply carries on. Never a new session.
      const after = (await statuses(tab)).filter((s) => s.type === 'connected').slice(connectedBefore);
      expect(after.length).toBeLessThanOrEqual(1);
      for (const s of after) expect(s).toMatchObject({ type: 'connected', resumed: true });
      expect(valueOf(m, 'promstream_sessions_opened_total')).toBe(opened0 + 1);
    });

    it('refuses a page whose origin is not in --allowed-origins: no connection, onStatus says so', async () => {
      const before = await metrics();
      const ctx = await newContext();
      const tab = await openTab(ctx, agg.port, 'student', { origin: otherOrigin });
      // the script itself loads (any origin may load it); the WebSocket upgrade is refused with 403
      const seen = await waitFor(async () => {
        const s = await statuses(tab);
        return s.filter((x) => x.type === 'disconnected').length >= 2 ? s : undefined;
      }, { what: 'two refused connection attempts' });
      expect(seen.some((s) => s.type === 'connected')).toBe(false);
      expect(seen.find((s) => s.type === 'disconnected')).toMatchObject({ code: 1006, retryInMs: expect.any(Number) });
      const m = await metrics();
      const refusals = (samples: Map<string, number>): number => samples.get('promstream_protocol_errors_total{reason="origin_not_allowed"}') ?? 0;
      expect(refusals(m) - refusals(before)).toBeGreaterThanOrEqual(2);
      expect(valueOf(m, 'connected_clients{app="student"}')).toBe(0);
      expect(valueOf(m, 'usage_total{feature="a"}')).toBe(valueOf(before, 'usage_total{feature="a"}'));
    });
  });

  itEachTransport('the aggregator (%s) killed with SIGKILL and restarted on the same port: every tab reconnects by itself; later calls count', async (transport) => {
    const first = await startAggregator(transport);
    const ctx = await newContext();
    const apps = ['student', 'student', 'teacher'];
    const tabs: Page[] = [];
    for (const app of apps) tabs.push(await openTab(ctx, first.port, app));
    await Promise.all(tabs.map((tab) => tab.evaluate(() => promstream('set', 'presenting', {}, 1))));
    expect(await Promise.all(tabs.map(flush))).toEqual([true, true, true]);
    const firstEpochs = await Promise.all(tabs.map(async (t) => (await statuses(t)).find((s) => s.type === 'connected')));
    expect(valueOf(await scrape(first.metricsPort), 'presenting')).toBe(3);

    first.proc.signal('SIGKILL');
    expect(await first.proc.waitForExit()).toMatchObject({ signal: 'SIGKILL' });
    for (const tab of tabs) {
      await waitFor(async () => (await statuses(tab)).some((s) => s.type === 'disconnected'), { what: 'each tab to see the connection drop' });
    }
    const second = await startAggregator(transport, ['--port', String(first.port)]);
    expect(second.port).toBe(first.port);
    for (const [i, tab] of tabs.entries()) {
      const epoch = (firstEpochs[i] as { epoch: string }).epoch;
      await waitFor(async () => (await statuses(tab)).some((s) => s.type === 'connected' && s.epoch !== epoch), {
        what: `tab ${i} to reconnect to the new process by itself`, timeoutMs: 30_000,
      });
    }
    const m0 = await scrape(second.metricsPort);
    expect(valueOf(m0, 'connected_clients{app="student"}')).toBe(2);
    expect(valueOf(m0, 'connected_clients{app="teacher"}')).toBe(1);
    // gauges are sent again after every reconnect: the new process knows them without a new call
    await waitFor(async () => valueOf(await scrape(second.metricsPort), 'presenting') === 3, { what: 'the gauges resent to the new process' });

    await Promise.all(tabs.map((tab, i) => tab.evaluate((n) => promstream('increment', 'usage_total', { feature: 'c' }, n), 10 * (i + 1))));
    expect(await Promise.all(tabs.map(flush))).toEqual([true, true, true]);
    expect(valueOf(await scrape(second.metricsPort), 'usage_total{feature="c"}')).toBe(10 + 20 + 30);
  });

  it('the demo page (serve --demo): buttons record each metric type, shows connected_clients, and a killed connection resumes', async () => {
    const demo = await startServe(['--demo', ...SERVER_ARGS]);
    const ctx = await newContext();
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${demo.port}/`);
    await page.waitForSelector('#status.connected');
    await page.click('button[data-click="red"]');
    await page.click('button[data-click="red"]');
    await page.click('button[data-click="blue"]');
    await page.click('button[data-task="load"]');
    await page.click('#present');
    await page.click('#flush');
    await page.waitForSelector('#flushed:text("acknowledged")');
    const m = await scrape(demo.metricsPort);
    expect(valueOf(m, 'demo_clicks_total{button="red"}')).toBe(2);
    expect(valueOf(m, 'demo_clicks_total{button="blue"}')).toBe(1);
    expect(valueOf(m, 'demo_task_duration_seconds_count{task="load"}')).toBe(1);
    expect(valueOf(m, 'demo_tabs_presenting')).toBe(1);
    await page.waitForSelector('#clients:text-is("1")');
    await page.waitForSelector('#series:has-text("demo_clicks_total{button=\\"red\\"}")');

    await page.click('#kill');
    await page.waitForSelector('#status.connected:has-text("resumed")');
    await page.click('button[data-click="red"]');
    await page.click('#flush');
    await waitFor(async () => valueOf(await scrape(demo.metricsPort), 'demo_clicks_total{button="red"}') === 3, { what: 'the click after the resume' });
    expect(valueOf(await scrape(demo.metricsPort), 'promstream_sessions_resumed_total')).toBe(1);
    expect(valueOf(await scrape(demo.metricsPort), 'promstream_sessions_opened_total')).toBe(1);
  });
});
