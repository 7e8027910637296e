/**
 * The browser client in every engine Debian ships: Chromium, Firefox ESR and WebKitGTK (see
 * test/support/engines/). Each runs the README snippet from a page on another origin against a real
 * aggregator process. One browser per engine for the whole file; every wait polls with a deadline.
 */
import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type {} from '../../client/promstream-global.js';
import { loadBrowserScript, type BrowserScriptManifest } from '../../server/http/browser-script.js';
import { startPageServer, type PageServer } from '../support/chromium.js';
import { ENGINES, type EngineBrowser, type EngineTab } from '../support/engines/index.js';
import { snippetPageFromUrl, snippetWhitelistFile, snippetPageQuery, type SnippetPageWindow } from '../support/engines/snippet-page.js';
import { scrape, valueOf } from '../support/scrape.js';
import { killAllClis, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';

let manifest: BrowserScriptManifest;
let dir: string;
let pages: PageServer;
let agg: ServingCli;

beforeAll(async () => {
  manifest = loadBrowserScript().manifest;
  const made = snippetWhitelistFile('promstream-engines-');
  dir = made.dir;
  const whitelist = made.file;
  pages = await startPageServer((url) => snippetPageFromUrl(manifest, url));
  // The server's flush timer is far away: what arrives came from a flush the test asked for.
  agg = await startServe(['--config', whitelist, '--allowed-origins', pages.origin, '--flush-interval', '30s']);
});
afterAll(async () => {
  await pages?.close();
  await killAllClis();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const metrics = (): Promise<Map<string, number>> => scrape(agg.metricsPort);
const clients = async (app: string): Promise<number> => valueOf(await metrics(), `connected_clients{app="${app}"}`);
const pageState = (tab: EngineTab): Promise<SnippetPageWindow> =>
  tab.evaluate(() => {
    const w = window as unknown as SnippetPageWindow;
    return { statuses: w.statuses, queuedBeforeLoad: w.queuedBeforeLoad, errors: w.errors };
  });
/** The page's flush: true once the aggregator acknowledged everything recorded before it. */
const flush = (tab: EngineTab): Promise<boolean | undefined> => tab.evaluate(() => promstream('flush'));

for (const engine of ENGINES) {
  engine.describe(`the browser client in ${engine.name}`, () => {
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
      await waitFor(async () => (await clients('student')) + (await clients('teacher')) === 0, { what: `every ${engine.name} tab of the test to have left connected_clients` });
    });

    /** A tab on the snippet page, once its client is welcomed. */
    const openTab = async (app: string): Promise<EngineTab> => {
      const tab = await browser.newTab(`${pages.origin}/${snippetPageQuery({ agg: agg.port, app })}`);
      open.push(tab);
      const state = await waitFor(async () => {
        const s = await pageState(tab);
        return s.statuses.some((x) => x.type === 'connected') ? s : undefined;
      }, { what: `the ${engine.name} tab to connect` });
      expect(state.errors).toEqual([]);
      return tab;
    };

    it('replays the calls the snippet queued before the script loaded, exactly once', async () => {
      const before = await metrics();
      const tab = await openTab('student');
      const state = await pageState(tab);
      // init plus six calls waited in the stub's queue, then the script replayed them
      expect(state.queuedBeforeLoad).toBe(7);
      expect(await tab.evaluate(() => (promstream as { q?: unknown }).q ?? null)).toBeNull();
      expect(await flush(tab)).toBe(true);
      const m = await metrics();
      const delta = (series: string): number => valueOf(m, series) - valueOf(before, series);
      expect(delta('usage_total{feature="a"}')).toBe(2);
      expect(delta('usage_total{feature="b"}')).toBe(5);
      expect(delta('rt_seconds_count{host="x"}')).toBe(1);
      expect(delta('rt_seconds_bucket{host="x",le="0.5"}')).toBe(1);
      // the unknown metric was dropped in the page and counted; the evil label value left it as "not in
      // the list" and was rejected by the server (no fallback for feature)
      expect(delta('promstream_client_dropped_samples_total{reason="label_not_allowed"}')).toBe(0);
      expect(delta('promstream_rejected_samples_total{reason="label_not_allowed"}')).toBe(1);
      expect(delta('promstream_client_dropped_samples_total{reason="unknown_metric"}')).toBe(1);
    });

    it('N trusted clicks on a button give exactly +N in /metrics', async () => {
      const tab = await openTab('student');
      expect(await flush(tab)).toBe(true);
      const c0 = valueOf(await metrics(), 'usage_total{feature="c"}');
      const clicks = 7;
      for (let i = 0; i < clicks; i++) await tab.click('#record');
      expect(await flush(tab)).toBe(true);
      expect(valueOf(await metrics(), 'usage_total{feature="c"}')).toBe(c0 + clicks);
    });

    it('connected_clients counts the tab while it is open and drops when it closes', async () => {
      expect(await clients('teacher')).toBe(0);
      const tab = await openTab('teacher');
      await waitFor(async () => (await clients('teacher')) === 1, { what: 'connected_clients{app="teacher"} to be 1' });
      const second = await openTab('teacher');
      await waitFor(async () => (await clients('teacher')) === 2, { what: 'connected_clients{app="teacher"} to be 2' });
      await second.close();
      open.splice(open.indexOf(second), 1);
      await waitFor(async () => (await clients('teacher')) === 1, { what: 'the closed tab to leave connected_clients' });
      await tab.close();
      open.splice(open.indexOf(tab), 1);
      await waitFor(async () => (await clients('teacher')) === 0, { what: 'the last tab to leave connected_clients' });
    });
  });
}
