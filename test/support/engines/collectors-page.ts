/**
 * The pages of test/e2e/collectors.test.ts: the README snippet with every collector on (route, pageMetrics,
 * apiMetrics, errorMetrics), served from a page server of its own (another origin than the aggregator
 * and than the API server), under a CSP that allows exactly the aggregator, the API origin and a closed
 * port (for a request that fails).
 *
 * The route function maps the page's paths onto the routes of examples/routes-whitelist.json:
 * `/` → `/`, `/spa` → `/courses`, `/spa/item/…` → `/courses/:id`, `/spa/settings` → `/settings`, and
 * gives any other path as it is (the whitelist counts those under its fallback, `other`). `/away` is a
 * plain page without the snippet, to leave the page through a link and come back to it; `/hostile` passes
 * init options of the wrong types and a route function that throws.
 */
import type { BrowserScriptManifest } from '../../../server/http/browser-script.js';
import { renderSnippet } from '../../../server/http/browser-snippet.js';
import type { TestPage } from '../chromium.js';

export const NONCE = 'c0llect0rs-n0nce';

export interface CollectorsPageOrigins {
  /** The aggregator's client port on 127.0.0.1. */
  readonly agg: number;
  /** The API server's port (CORS, with and without Timing-Allow-Origin). */
  readonly api: number;
  /** A port nothing listens on: a request there fails. */
  readonly closed: number;
}

/** What the page keeps on window for the test to read. */
export interface CollectorsPageWindow {
  statuses: { type: string }[];
  warnings: string[];
}

export function collectorsPage(manifest: BrowserScriptManifest, url: URL, { agg, api, closed }: CollectorsPageOrigins): TestPage {
  if (url.pathname === '/away') {
    return { html: '<!doctype html><html><head><meta charset="utf-8"><title>away</title></head><body><h1>another page</h1><a id="back" href="/spa">back</a></body></html>' };
  }
  const snippet = renderSnippet(manifest, { baseUrl: `http://127.0.0.1:${agg}`, labels: { app: 'student' } });
  const [inline, loader] = snippet.split(/(?=<script async )/) as [string, string | undefined];
  const labels = "labels: { app: 'student' } }";
  if (!inline.includes(labels) || loader === undefined) throw new Error(`the snippet changed shape:\n${snippet}`);
  // /hostile: init options of the wrong types, and a route function that throws, then gives any path
  const options = url.pathname === '/hostile'
    ? `labels: { app: 'student' }, onStatus: function (s) { statuses.push(s); },
    route: function (u) { if (u.pathname === '/hostile') throw new Error('a bug in the route function'); return u.pathname; },
    pageMetrics: 'yes', apiMetrics: 1, errorMetrics: {} }`
    : `labels: { app: 'student' }, onStatus: function (s) { statuses.push(s); },
    route: function (u) {
      var p = u.pathname;
      return p === '/spa' ? '/courses' : p.indexOf('/spa/item/') === 0 ? '/courses/:id' : p === '/spa/settings' ? '/settings' : p;
    },
    pageMetrics: true, apiMetrics: true, errorMetrics: true }`;
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>collectors</title>
<script nonce="${NONCE}">
  window.statuses = [];
  window.warnings = [];
  var warn = console.warn;
  console.warn = function () { warnings.push(Array.prototype.join.call(arguments, ' ')); return warn.apply(console, arguments); };
</script>
${inline.replace(labels, options).replace('<script>', `<script nonce="${NONCE}">`)}${loader}</head>
<body><h1>collectors</h1><p id="content">a page with some content to paint</p>
<button id="soft" type="button">open item 9</button> <a id="away" href="/away">leave</a>
<script nonce="${NONCE}">
  // A soft navigation as a router makes it: the address changes and new content is painted.
  document.getElementById('soft').addEventListener('click', function () {
    history.pushState(null, '', '/spa/item/9');
    var p = document.createElement('p');
    p.textContent = 'item 9: ' + new Array(40).join('a longer paragraph of new content ');
    document.body.appendChild(p);
  });
</script>
</body></html>`;
  const hosts = (scheme: string, ports: readonly number[]): string => ports.map((p) => `${scheme}://127.0.0.1:${p}`).join(' ');
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${NONCE}' http://127.0.0.1:${agg}`,
    `connect-src ws://127.0.0.1:${agg} ${hosts('http', [agg, api, closed])}`,
    `img-src ${hosts('http', [api])}`,
    // the client's socket in Firefox lives in a SharedWorker from a blob: URL (README, Content Security Policy)
    'worker-src blob:',
  ].join('; ');
  // Not no-store: with a WebSocket open, Chromium keeps such a page out of the bfcache (WebSocketUsedWithCCNS).
  return { html, headers: { 'content-security-policy': csp, 'cache-control': 'no-cache' } };
}
