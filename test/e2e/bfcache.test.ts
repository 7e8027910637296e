/**
 * The back/forward cache with the real client, in every engine Debian ships: a page with the README
 * snippet is left through a link and brought back with the back button. While cached it must not count
 * in connected_clients; back, it resumes its session (nothing lost, nothing counted twice, no protocol
 * error), and promstream must not keep it out of the cache. Chromium says so through the DevTools
 * protocol (a BackForwardCacheRestore, no backForwardCacheNotUsed reasons), Firefox and WebKit through
 * the page's own pageshow with persisted. docs/BFCACHE-FINDINGS.md has the measurements behind the design.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type {} from '../../client/promstream-global.js';
import { loadBrowserScript, type BrowserScriptManifest } from '../../server/http/browser-script.js';
import { startPageServer, type PageServer } from '../support/chromium.js';
import { ENGINES, type EngineBrowser, type EngineTab } from '../support/engines/index.js';
import { snippetPageFromUrl, snippetWhitelistFile, snippetPageQuery, type SnippetPageWindow } from '../support/engines/snippet-page.js';
import { scrape, valueOf } from '../support/scrape.js';
import { killAllClis, startServe, type ServingCli } from '../support/spawn-cli.js';
import { waitFor } from '../support/wait-for.js';

const NEXT_PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>next</title></head><body><h1>the next page</h1></body></html>';

let manifest: BrowserScriptManifest;
let dir: string;
let pages: PageServer;
let agg: ServingCli;

beforeAll(async () => {
  manifest = loadBrowserScript().manifest;
  const made = snippetWhitelistFile('promstream-bfcache-');
  dir = made.dir;
  const whitelist = made.file;
  // Cacheable pages: the page server's default no-store keeps a page out of Firefox's cache, and out of
  // Chromium's once it used a WebSocket (WebSocketUsedWithCCNS), whatever promstream does.
  const cacheable = { 'cache-control': 'no-cache' };
  pages = await startPageServer((url) => {
    if (url.pathname === '/next') return { html: NEXT_PAGE, headers: cacheable };
    const page = snippetPageFromUrl(manifest, url);
    return { html: page.html, headers: { ...page.headers, ...cacheable } };
  });
  agg = await startServe(['--config', whitelist, '--allowed-origins', pages.origin, '--flush-interval', '30s']);
});
afterAll(async () => {
  await pages?.close();
  await killAllClis();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const metrics = (): Promise<Map<string, number>> => scrape(agg.metricsPort);
const statuses = (tab: EngineTab): Promise<SnippetPageWindow['statuses']> => tab.evaluate(() => (window as unknown as SnippetPageWindow).statuses);
const flush = (tab: EngineTab): Promise<boolean | undefined> => tab.evaluate(() => promstream('flush'));

for (const engine of ENGINES) {
  engine.describe(`the back/forward cache in ${engine.name}`, () => {
    let browser: EngineBrowser;
    beforeAll(async () => {
      browser = await engine.launch();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('a cached page leaves connected_clients, comes back resumed, and counts exactly; a closed one says goodbye', async () => {
      const before = await metrics();
      const delta = async (series: string): Promise<number> => valueOf(await metrics(), series) - (before.get(series) ?? 0);
      const tab = await browser.newTab(`${pages.origin}/${snippetPageQuery({ agg: agg.port, app: 'teacher', workerSrcBlob: true })}`);
      await waitFor(async () => (await statuses(tab)).some((s) => s.type === 'connected'), { what: 'the client welcomed' });
      await tab.click('#record');
      expect(await flush(tab)).toBe(true);
      expect(await delta('connected_clients{app="teacher"}')).toBe(1);

      // Recorded and not yet sent when the page is left: it goes out in pagehide, just before the 4102
      // close, and the resume's welcome says it was applied, so it is neither lost nor sent again.
      await tab.click('#record');
      await tab.click('#next');
      // In the cache: its connection is closed with 4102 (resumable), so it no longer counts.
      const outWhileCached = await waitFor(async () => (await delta('connected_clients{app="teacher"}')) === 0, {
        what: 'the cached page out of connected_clients',
        timeoutMs: engine.name === 'firefox' ? 5_000 : 10_000,
      }).then(
        () => true,
        (error: unknown) => {
          // Firefox only: the socket is the page's SharedWorker's (client/worker-socket.ts), and a cached
          // page's worker is frozen with it. When the worker thread did not run between pagehide and the
          // freeze (a loaded machine), the 4102 goes out when the page is shown again, and the page counts
          // while it is cached (docs/BFCACHE-FINDINGS.md; bfcache-probe's sharedworker-close+busy shows it).
          if (engine.name !== 'firefox') throw error;
          return false;
        },
      );
      if (!outWhileCached) console.warn('firefox: the worker was frozen before it took the pagehide message; its 4102 comes with the restore');
      const back = await tab.back();
      expect(back).toMatchObject({ fromBfcache: true, notRestoredReasons: [] });

      // Back: a resume of the same session, then what it records counts once.
      await waitFor(async () => (await statuses(tab)).some((s) => s.type === 'connected' && s.resumed === true), { what: 'the restored page resumed' });
      await tab.click('#record');
      expect(await flush(tab)).toBe(true);
      expect(await delta('connected_clients{app="teacher"}')).toBe(1);
      expect(await delta('usage_total{feature="c"}')).toBe(3);
      // the snippet page queues 2 + 5 for a and b before the script loads: once, not again after the restore
      expect(await delta('usage_total{feature="a"}')).toBe(2);
      expect(await delta('usage_total{feature="b"}')).toBe(5);
      expect(await delta('promstream_sessions_opened_total')).toBe(1);
      expect(await delta('promstream_sessions_resumed_total')).toBe(1);
      expect(await delta('promstream_closes_total{code="4102"}')).toBe(1);
      expect(await delta('promstream_protocol_errors_total{reason="session_not_resumable"}')).toBe(0);
      // Closed for good (pagehide without persisted): what is pending goes out, then the goodbye ends
      // the session instead of leaving it resumable.
      await tab.click('#record');
      await tab.close();
      await waitFor(async () => (await delta('connected_clients{app="teacher"}')) === 0, { what: 'the closed tab gone' });
      expect(await delta('usage_total{feature="c"}')).toBe(4);
      const goodbyes = await delta('promstream_closes_total{code="1000"}');
      const dropped = await delta('promstream_closes_total{code="1006"}');
      if (engine.name === 'webkit' && goodbyes === 0 && dropped === 1) {
        // WebKit only, on a loaded machine (about 1 run in 5 alone): the tab is torn down after the last
        // delta left but before the goodbye and the close frame did, so the server sees the connection
        // drop (1006). A dropped connection must stay resumable (its client may come back), so the session
        // waits out --session-ttl; counts are exact either way (docs/BFCACHE-FINDINGS.md).
        console.warn('webkit: the tab was torn down before its goodbye left (the server saw 1006); the session waits for its TTL');
        expect(await delta('promstream_sessions_resumable')).toBe(1);
      } else {
        expect({ goodbyes, dropped }).toEqual({ goodbyes: 1, dropped: 0 });
        expect(await delta('promstream_sessions_resumable')).toBe(0);
      }
    });
  });
}
