/**
 * The browser collectors in every engine Debian ships (Chromium, Firefox ESR, WebKitGTK; see
 * test/support/engines/): routes and page views of an SPA, soft-navigation and bfcache-restore Web
 * Vitals, navigation timing, fetch/XHR to a second local origin with and without Timing-Allow-Origin,
 * and a page that throws in a loop. The README snippet with every collector on, a real aggregator
 * process loading the examples' whitelists, exact counts from /metrics. One browser per engine; every
 * wait polls with a deadline. The README table "What each engine gives" is what this file asserts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type {} from '../../client/promstream-global.js';
import { loadBrowserScript } from '../../server/http/browser-script.js';
import { startPageServer, type PageServer } from '../support/chromium.js';
import { collectorsPage, type CollectorsPageWindow } from '../support/engines/collectors-page.js';
import { ENGINES, type EngineBrowser, type EngineName, type EngineTab } from '../support/engines/index.js';
import { clickAndSettle } from '../support/engines/interaction.js';
import { scrape } from '../support/scrape.js';
import { REPO_ROOT, killAllClis, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';

type Vital = 'lcp' | 'inp' | 'fcp' | 'ttfb' | 'cls';
const VITAL_METRIC: Record<Vital, string> = {
  lcp: 'web_vitals_lcp_seconds', inp: 'web_vitals_inp_seconds', fcp: 'web_vitals_fcp_seconds', ttfb: 'web_vitals_ttfb_seconds', cls: 'web_vitals_cls',
};

/** What each engine gives (docs/BFCACHE-FINDINGS.md part A, and what this file measured). */
interface EngineSupport {
  /** Web Vitals of a page load that was hidden without an interaction. */
  readonly loadVitals: readonly Vital[];
  /** Comes back from the back/forward cache with a promstream connection open. */
  readonly bfcache: boolean;
  /** Vitals web-vitals measures again after a bfcache restore, reported when hidden. */
  readonly restoreVitals: readonly Vital[];
  /** Reports Web Vitals of a soft navigation (the Soft Navigation API: `soft-navigation` entries). */
  readonly softNavigationVitals: readonly Vital[];
  /** Has event timing, so INP for a page with an interaction. */
  readonly inp: boolean;
}
const SUPPORT: Record<EngineName, EngineSupport> = {
  chromium: { loadVitals: ['cls', 'fcp', 'lcp', 'ttfb'], inp: true, bfcache: true, restoreVitals: ['cls', 'fcp', 'lcp', 'ttfb'], softNavigationVitals: ['cls', 'fcp', 'lcp', 'ttfb'] },
  firefox: { loadVitals: ['fcp', 'lcp', 'ttfb'], inp: true, bfcache: true, restoreVitals: ['fcp', 'lcp', 'ttfb'], softNavigationVitals: [] },
  webkit: { loadVitals: ['fcp', 'ttfb'], inp: false, bfcache: true, restoreVitals: ['fcp', 'ttfb'], softNavigationVitals: [] },
};

let dir: string;
let pages: PageServer;
let apiServer: http.Server;
let apiPort: number;
let closedPort: number;
let agg: ServingCli;
const hanging = new Set<http.ServerResponse>();

/** A port the kernel gave and nothing listens on any more: connecting there is refused. */
async function closedLocalPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** The second local origin the pages call: CORS everywhere but /opaque, Timing-Allow-Origin only on /tao. */
function startApiServer(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const cors = { 'access-control-allow-origin': '*', 'cache-control': 'no-store' };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET, POST, PUT, DELETE, PATCH' }).end();
      return;
    }
    req.resume();
    switch (url.pathname) {
      case '/tao':
        res.writeHead(200, { ...cors, 'timing-allow-origin': '*' }).end('ab');
        return;
      case '/notao':
        res.writeHead(200, cors).end('ab');
        return;
      case '/slow-body':
        // The headers and a first byte at once, the rest 300 ms later: the time measured must include it.
        res.writeHead(200, cors);
        res.write('a');
        setTimeout(() => res.end('b'), 300);
        return;
      case '/status/404':
        res.writeHead(404, cors).end('no');
        return;
      case '/status/500':
        res.writeHead(500, cors).end('no');
        return;
      case '/opaque':
        res.writeHead(200, { 'cache-control': 'no-store' }).end('opaque');
        return;
      case '/hang':
        hanging.add(res);
        return;
      default:
        res.writeHead(404, cors).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

beforeAll(async () => {
  const { manifest } = loadBrowserScript();
  dir = mkdtempSync(path.join(tmpdir(), 'promstream-collectors-'));
  apiServer = await startApiServer();
  apiPort = (apiServer.address() as AddressInfo).port;
  closedPort = await closedLocalPort();
  pages = await startPageServer((url) => collectorsPage(manifest, url, { agg: agg.port, api: apiPort, closed: closedPort }));
  // The API metric as examples/api-metrics-whitelist.json has it, for this test's API origin and with a route.
  const apiWhitelist = path.join(dir, 'api.json');
  writeFileSync(apiWhitelist, JSON.stringify({
    allowedMetrics: [{
      name: 'http_client_request_duration_seconds', help: 'fetch and XHR', type: 'histogram', buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      labels: [
        { name: 'host', allowedValues: [`127.0.0.1:${apiPort}`], fallback: 'other' },
        { name: 'method', allowedValues: ['GET', 'POST', 'PUT', 'DELETE'], fallback: 'other' },
        { name: 'status_class', allowedValues: ['2xx', '3xx', '4xx', '5xx', 'opaque', 'error', 'aborted'] },
        { name: 'route', allowedValues: ['/', '/courses', '/courses/:id', '/settings'], fallback: 'other' },
      ],
    }],
    sessionLabels: [{ name: 'app', allowedValues: ['student'] }],
  }));
  const examples = ['routes', 'page-metrics', 'errors'].flatMap((n) => ['--config', path.join(REPO_ROOT, 'examples', `${n}-whitelist.json`)]);
  // The server's flush timer is far away: what arrives came from a flush the test asked for.
  agg = await startServe(['--config', apiWhitelist, ...examples, '--allowed-origins', pages.origin, '--flush-interval', '30s']);
});
afterAll(async () => {
  for (const res of hanging) res.destroy();
  await pages?.close();
  await new Promise<void>((resolve) => (apiServer === undefined ? resolve() : apiServer.close(() => resolve())));
  apiServer?.closeAllConnections();
  await killAllClis();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const metrics = (): Promise<Map<string, number>> => scrape(agg.metricsPort);
/** The page's flush: true once the aggregator acknowledged everything recorded before it. */
const flush = (tab: EngineTab): Promise<boolean | undefined> => tab.evaluate(() => promstream('flush'));
const views = (route: string, navigation: string): string => `page_views_total{route="${route}",navigation="${navigation}"}`;
const vital = (v: Vital, route: string): string => `${VITAL_METRIC[v]}_count{route="${route}"}`;
const api = (host: string, method: string, cls: string, suffix = '_count', le = ''): string =>
  `http_client_request_duration_seconds${suffix}{host="${host}",method="${method}",status_class="${cls}",route="/"${le === '' ? '' : `,le="${le}"`}}`;
const errors = (kind: string, route: string): string => `browser_errors_total{kind="${kind}",route="${route}"}`;

/** A trusted click on the page's text: what finalises LCP for web-vitals, and an interaction for INP. */
const interact = (tab: EngineTab): Promise<void> => clickAndSettle(tab, '#content');

/** What the user does when switching tabs, for web-vitals: hidden, then visible again. */
const hideAndShow = (tab: EngineTab): Promise<null> =>
  tab.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
    delete (document as { visibilityState?: unknown }).visibilityState;
    document.dispatchEvent(new Event('visibilitychange'));
    return null;
  });

for (const engine of ENGINES) {
  engine.describe(`the collectors in ${engine.name}`, () => {
    const support = SUPPORT[engine.name];
    let browser: EngineBrowser;
    const open: EngineTab[] = [];
    beforeAll(async () => {
      browser = await engine.launch();
      console.info(`${engine.name}: ${browser.version}`);
    });
    afterAll(async () => {
      await browser?.close();
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
    });

    /** A tab on `path`, once its client is welcomed; with the counts of `series` before it opened. */
    const openTab = async (pathname: string): Promise<EngineTab> => {
      const tab = await browser.newTab(`${pages.origin}${pathname}`);
      open.push(tab);
      await waitFor(() => tab.evaluate(() => (window as unknown as CollectorsPageWindow).statuses.some((s) => s.type === 'connected')), { what: `the ${engine.name} tab to connect` });
      return tab;
    };
    /** Waits until, after a flush, every series moved by exactly the wanted amount since `before`. */
    const expectDeltas = async (tab: EngineTab, before: Map<string, number>, wanted: Record<string, number>): Promise<void> => {
      let got: Record<string, number> = {};
      await waitFor(async () => {
        await flush(tab);
        const now = await metrics();
        got = Object.fromEntries(Object.keys(wanted).map((k) => [k, (now.get(k) ?? NaN) - (before.get(k) ?? NaN)]));
        return Object.keys(wanted).every((k) => got[k] === wanted[k]);
      }, { what: `${engine.name}: ${JSON.stringify(wanted)}`, timeoutMs: 15_000, intervalMs: 100 }).catch(() => undefined);
      expect(got).toEqual(wanted);
    };

    it('routes: a page load and soft navigations, each transition once; vitals and navigation timing under the page load\'s route', async () => {
      const before = await metrics();
      const tab = await openTab('/spa');
      await tab.evaluate(async () => {
        const task = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
        history.pushState(null, '', '/spa/item/1');
        await task();
        // one transition, several calls: one view
        history.pushState(null, '', '/spa/item/2');
        history.replaceState(null, '', '/spa/item/2?tab=a');
        await task();
        history.replaceState(null, '', '/spa/item/2?tab=a'); // the same address: no view
        history.pushState(null, '', '/spa/item/2?tab=a#top'); // the fragment only: no view
        await task();
        history.pushState(null, '', '/nowhere'); // a route the whitelist does not list
        await task();
        history.back(); // popstate, back to /spa/item/2?tab=a#top
        return null;
      });
      await waitFor(() => tab.evaluate(() => location.pathname === '/spa/item/2'), { what: 'history.back() to land' });
      await interact(tab);
      await hideAndShow(tab);
      const wanted: Record<string, number> = {
        [views('/courses', 'navigate')]: 1,
        [views('/courses/:id', 'soft')]: 3,
        [views('other', 'soft')]: 1,
        [views('/courses', 'soft')]: 0,
        'performance_timing_navigationStart_count{route="/courses"}': 1,
        // every field a navigation has, Firefox's negative fetchStart and WebKit's zeros included
        'performance_timing_fetchStart_count{route="/courses"}': 1,
        'performance_timing_connectEnd_count{route="/courses"}': 1,
        'performance_timing_loadEventEnd_count{route="/courses"}': 1,
        'performance_timing_unloadEventStart_count{route="/courses"}': 0,
      };
      for (const v of ['lcp', 'inp', 'fcp', 'ttfb', 'cls'] as const) {
        wanted[vital(v, '/courses')] = support.loadVitals.includes(v) || (v === 'inp' && support.inp) ? 1 : 0;
        wanted[vital(v, '/courses/:id')] = 0;
        wanted[vital(v, 'other')] = 0;
      }
      // web-vitals reports no TTFB for a navigation entry whose responseStart is not after the time origin.
      // Firefox on a loaded machine starts a document's clock after its response began (its negative
      // fetchStart above is the same thing): then the page has no TTFB to report, and must report none.
      const responseStart = await tab.evaluate(() => (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined)?.responseStart ?? 0);
      if (!(responseStart > 0)) {
        console.warn(`${engine.name}: navigation responseStart ${responseStart} ms: no TTFB expected for this page load`);
        wanted[vital('ttfb', '/courses')] = 0;
      }
      await expectDeltas(tab, before, wanted);
    });

    it(`soft navigation vitals: ${support.softNavigationVitals.length > 0 ? 'reported under the soft navigation\'s route' : 'none (no Soft Navigation API)'}`, async () => {
      const before = await metrics();
      const tab = await openTab('/spa');
      const soft = await tab.evaluate(() => PerformanceObserver.supportedEntryTypes.includes('soft-navigation'));
      expect(soft).toBe(support.softNavigationVitals.length > 0);
      await tab.click('#soft');
      await waitFor(() => tab.evaluate(() => location.pathname === '/spa/item/9'), { what: 'the click to navigate' });
      if (soft) await waitFor(() => tab.evaluate(() => performance.getEntriesByType('soft-navigation').length > 0), { what: 'a soft-navigation entry' });
      await interact(tab);
      await hideAndShow(tab);
      const wanted: Record<string, number> = { [views('/courses', 'navigate')]: 1, [views('/courses/:id', 'soft')]: 1 };
      for (const v of support.softNavigationVitals) wanted[vital(v, '/courses/:id')] = 1;
      for (const v of support.loadVitals) wanted[vital(v, '/courses')] = 1;
      await expectDeltas(tab, before, wanted);
    });

    it(`the back/forward cache: ${support.bfcache ? 'a restore is a page view of its own, and the vitals measured after it are its route\'s' : 'not cached: going back loads the page again'}`, async () => {
      const before = await metrics();
      const tab = await openTab('/spa');
      await tab.evaluate(() => {
        history.pushState(null, '', '/spa/settings');
        return null;
      });
      // The page load's vitals final (a click finalises LCP, hidden reports LCP, CLS and INP) and
      // acknowledged before leaving, so that what follows counts only the restore's; the connection across
      // the bfcache (a delta pending at pagehide included) is test/e2e/bfcache.test.ts's subject.
      await interact(tab);
      await hideAndShow(tab);
      const settled: Record<string, number> = { [views('/settings', 'soft')]: 1 };
      for (const v of [...support.loadVitals, ...(support.inp ? ['inp' as const] : [])]) settled[vital(v, '/courses')] = 1;
      await expectDeltas(tab, before, settled);
      await tab.click('#away');
      await waitFor(() => tab.evaluate(() => location.pathname === '/away' && document.readyState === 'complete'), { what: 'the other page to load' });
      const back = await tab.back();
      console.info(`${engine.name}: back to /spa/settings: ${back.evidence} ${back.notRestoredReasons.join(', ')}`);
      expect(back.fromBfcache).toBe(support.bfcache);
      await waitFor(() => tab.evaluate(() => (window as unknown as CollectorsPageWindow).statuses.filter((s) => s.type === 'connected').length > 0), { what: 'the page to be connected again' });
      await interact(tab);
      await hideAndShow(tab);
      const wanted: Record<string, number> = {
        [views('/courses', 'navigate')]: 1,
        [views('/settings', 'soft')]: 1,
        [views('/settings', 'back_forward_cache')]: support.bfcache ? 1 : 0,
        [views('/settings', 'back_forward')]: support.bfcache ? 0 : 1,
      };
      // the first page load's vitals stay its route's: nothing more was reported for it on the way out
      for (const v of [...support.loadVitals, ...(support.inp ? ['inp' as const] : [])]) wanted[vital(v, '/courses')] = 1;
      // measured again after the restore, or for the new page load; INP from the click after it
      for (const v of [...(support.bfcache ? support.restoreVitals : support.loadVitals), ...(support.inp ? ['inp' as const] : [])]) wanted[vital(v, '/settings')] = 1;
      await expectDeltas(tab, before, wanted);
    });

    it('fetch and XMLHttpRequest to another origin, with and without Timing-Allow-Origin: host, method, status class, to the end of the body; transparent', async () => {
      const before = await metrics();
      const tab = await openTab('/');
      const host = `127.0.0.1:${apiPort}`;
      const result = await tab.evaluate(async ({ api, closed, agg }) => {
        const out: Record<string, unknown> = {};
        const xhr = (method: string, url: string, abort = false): Promise<number> =>
          new Promise((resolve) => {
            const x = new XMLHttpRequest();
            x.open(method, url);
            x.onloadend = () => resolve(x.status);
            x.send();
            if (abort) setTimeout(() => x.abort(), 50);
          });
        const first = window.fetch;
        out.tao = await (await fetch(`${api}/tao`)).text();
        // no `this`, as a page that kept a reference would call it
        out.notao = await (await fetch.call(undefined, `${api}/notao`)).text();
        const slow = await fetch(new Request(`${api}/slow-body`, { method: 'POST', body: 'x' }));
        out.slow = [slow.status, await slow.text()];
        out.notFound = (await fetch(`${api}/status/404`)).status;
        out.opaque = (await fetch(`${api}/opaque`, { mode: 'no-cors' })).type;
        out.put = await xhr('PUT', `${api}/tao`);
        out.failed500 = await xhr('DELETE', `${api}/status/500`);
        out.error = await fetch(`${closed}/x`).then(() => 'resolved', (e: unknown) => (e instanceof TypeError ? 'TypeError' : String(e)));
        const controller = new AbortController();
        const hung = fetch(`${api}/hang`, { signal: controller.signal });
        setTimeout(() => controller.abort(), 50);
        out.aborted = await hung.then(() => 'resolved', (e: unknown) => (e as Error).name);
        out.xhrAborted = await xhr('PATCH', `${api}/hang`, true);
        out.own = (await fetch(`${agg}/promstream.js`)).status; // the aggregator's: not counted
        // a second copy of the script and a second init change nothing
        await new Promise((resolve) => {
          const s = document.createElement('script');
          s.src = `${agg}/promstream.js`;
          s.onload = s.onerror = resolve;
          document.head.appendChild(s);
        });
        promstream('init', { url: `${agg.replace('http', 'ws')}/ws`, apiMetrics: true });
        out.sameFetch = window.fetch === first;
        out.again = await (await fetch(`${api}/tao`)).text();
        const timing = (name: string): Record<string, number> => {
          const e = performance.getEntriesByName(`${api}/${name}`)[0] as PerformanceResourceTiming | undefined;
          return e === undefined ? {} : { responseStart: e.responseStart, responseEnd: e.responseEnd };
        };
        out.timing = { tao: timing('tao'), notao: timing('notao'), slow: timing('slow-body') };
        out.entries = performance.getEntriesByType('resource').map((e) => `${(e as PerformanceResourceTiming).initiatorType} ${e.name} ${Math.round(e.startTime)}`);
        out.warnings = (window as unknown as { warnings: string[] }).warnings;
        return out;
      }, { api: `http://${host}`, closed: `http://127.0.0.1:${closedPort}`, agg: `http://127.0.0.1:${agg.port}` });
      console.info(`${engine.name}: Resource Timing without and with Timing-Allow-Origin: ${JSON.stringify(result.timing)} ${JSON.stringify(result.entries)}`);
      expect(result).toMatchObject({
        tao: 'ab', notao: 'ab', slow: [200, 'ab'], notFound: 404, opaque: 'opaque', put: 200, failed500: 500,
        error: 'TypeError', aborted: 'AbortError', xhrAborted: 0, own: 200, sameFetch: true, again: 'ab',
      });
      expect(result.warnings).toEqual([
        'promstream: the script is loaded twice; the second copy does nothing',
        'promstream: init called again; ignored (one connection per page: the first init stays)',
      ]);
      // the body's end is known without Timing-Allow-Origin (responseEnd); only the phases are hidden
      const timing = result.timing as Record<string, { responseStart?: number; responseEnd?: number }>;
      for (const name of ['tao', 'notao', 'slow'] as const) expect(timing[name]!.responseEnd, name).toBeGreaterThan(0);
      expect(timing.notao!.responseStart).toBe(0);
      expect(timing.tao!.responseStart).toBeGreaterThan(0);
      await expectDeltas(tab, before, {
        [api(host, 'GET', '2xx')]: 3,
        [api(host, 'POST', '2xx')]: 1,
        // the rest of the body came 300 ms after the headers: it is in the time measured
        [api(host, 'POST', '2xx', '_bucket', '0.25')]: 0,
        [api(host, 'GET', '4xx')]: 1,
        [api(host, 'GET', 'opaque')]: 1,
        [api(host, 'PUT', '2xx')]: 1,
        [api(host, 'DELETE', '5xx')]: 1,
        [api('other', 'GET', 'error')]: 1,
        [api(host, 'GET', 'aborted')]: 1,
        [api(host, 'other', 'aborted')]: 1,
        [api('other', 'GET', '2xx')]: 0,
      });
    });

    it('a hostile page: wrong init types warn once each and turn nothing on; a throwing route function and 30 made-up routes add no series', async () => {
      const before = await metrics();
      const series = (m: Map<string, number>): string[] => [...m.keys()].filter((k) => k.startsWith('page_views_total'));
      const tab = await openTab('/hostile');
      const result = await tab.evaluate(async () => {
        const task = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
        // (WebKit allows 100 history calls per 10 s: then pushState throws a SecurityError)
        for (let i = 0; i < 30; i++) {
          history.pushState(null, '', `/made-up/${i}/${Math.random()}`);
          await task();
        }
        return { nativeFetch: /\[native code\]/.test(Function.prototype.toString.call(window.fetch)), warnings: (window as unknown as CollectorsPageWindow).warnings };
      });
      expect(result.nativeFetch).toBe(true); // apiMetrics was not true: nothing wrapped
      expect([...result.warnings].sort()).toEqual([
        "promstream: route gave no string (or threw); such page views count under the whitelist's fallback",
        'promstream: init: pageMetrics must be true or false; off',
        'promstream: init: apiMetrics must be true or false; off',
        'promstream: init: errorMetrics must be true or false; off',
      ].sort());
      await expectDeltas(tab, before, { [views('other', 'navigate')]: 1, [views('other', 'soft')]: 30, 'performance_timing_navigationStart_count{route="other"}': 0 });
      expect(series(await metrics())).toEqual(series(before));
    });

    it('a page that throws in a loop: each message once per page view, by kind and route; no message text in /metrics', async () => {
      const before = await metrics();
      const tab = await openTab('/');
      await tab.evaluate(async (api) => {
        const task = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
        for (let i = 0; i < 100; i++) {
          setTimeout(() => {
            throw new Error('boom in a loop');
          }, 0);
          void Promise.reject(new Error('rejected in a loop'));
        }
        const images = ['missing-1.png', 'missing-1.png', 'missing-2.png'].map((name) => {
          const img = document.createElement('img');
          const failed = new Promise((resolve) => (img.onerror = resolve));
          img.src = `${api}/${name}`;
          document.body.appendChild(img);
          return failed;
        });
        await Promise.all(images);
        await task();
        // a re-render after a soft navigation: the same error again, in a new page view
        history.pushState(null, '', '/spa/item/3');
        await task();
        for (let i = 0; i < 10; i++) {
          setTimeout(() => {
            throw new Error('boom in a loop');
          }, 0);
        }
        await task();
        return null;
      }, `http://127.0.0.1:${apiPort}`);
      await expectDeltas(tab, before, {
        [errors('error', '/')]: 1,
        [errors('unhandledrejection', '/')]: 1,
        [errors('resource', '/')]: 2,
        [errors('error', '/courses/:id')]: 1,
        [errors('unhandledrejection', '/courses/:id')]: 0,
      });
      const text = await (await fetch(`http://127.0.0.1:${agg.metricsPort}/metrics`)).text();
      expect(text).not.toMatch(/boom|rejected in|missing-/);
    });
  });
}
