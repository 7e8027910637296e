/**
 * The page the engine tests load: the README snippet for an aggregator (the versioned script with its
 * integrity value), calls made before the script can have loaded, a button that records a click, and a
 * CSP that allows exactly what the README's CSP notes say (the nonce'd inline snippet, the aggregator's
 * script and its WebSocket). Served from a page server of its own, i.e. another origin than the
 * aggregator, as in production.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserScriptManifest } from '../../../server/http/browser-script.js';
import { renderSnippet } from '../../../server/http/browser-snippet.js';
import type { TestPage } from '../chromium.js';

export const NONCE = 'eng1ne-n0nce';

export interface SnippetPageOptions {
  /** The aggregator's client port on 127.0.0.1. */
  readonly agg: number;
  readonly app: string;
  readonly pageMetrics?: boolean;
  /** Adds `worker-src blob:` to the CSP, as the README advises, so that Firefox can hold the socket in a worker. */
  readonly workerSrcBlob?: boolean;
}

/** What the page keeps on window for the test to read. */
export interface SnippetPageWindow {
  statuses: { type: string; resumed?: boolean; code?: number }[];
  queuedBeforeLoad: number;
  errors: string[];
}

/** The URL query that snippetPageFromUrl reads back. */
export function snippetPageQuery({ agg, app, pageMetrics = false, workerSrcBlob = false }: SnippetPageOptions): string {
  return `?agg=${agg}&app=${encodeURIComponent(app)}${pageMetrics ? '&pageMetrics' : ''}${workerSrcBlob ? '&workerSrcBlob' : ''}`;
}

export function snippetPageFromUrl(manifest: BrowserScriptManifest, url: URL): TestPage {
  return snippetPage(manifest, {
    agg: Number(url.searchParams.get('agg')),
    app: url.searchParams.get('app') ?? 'student',
    pageMetrics: url.searchParams.has('pageMetrics'),
    workerSrcBlob: url.searchParams.has('workerSrcBlob'),
  });
}

export function snippetPage(manifest: BrowserScriptManifest, { agg, app, pageMetrics = false, workerSrcBlob = false }: SnippetPageOptions): TestPage {
  const snippet = renderSnippet(manifest, { baseUrl: `http://127.0.0.1:${agg}`, labels: { app } });
  const [inline, loader] = snippet.split(/(?=<script async )/) as [string, string | undefined];
  const labels = `labels: { app: '${app}' } }`;
  if (!inline.includes(labels) || loader === undefined) throw new Error(`the snippet changed shape:\n${snippet}`);
  const options = `labels: { app: '${app}' }, onStatus: function (s) { statuses.push(s); }${pageMetrics ? ', pageMetrics: true' : ''} }`;
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>a page on another origin</title>
<script nonce="${NONCE}">
  window.statuses = [];
  window.errors = [];
  addEventListener('error', function (e) { errors.push(String(e.message)); });
</script>
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
${loader}</head><body><h1>a page on another origin</h1><p>some content to paint</p>
<button id="record" type="button">record a click</button>
<a id="next" href="/next">the next page</a>
<script nonce="${NONCE}">
  document.getElementById('record').addEventListener('click', function () {
    promstream('increment', 'usage_total', { feature: 'c' });
  });
</script>
</body></html>`;
  const csp = `default-src 'none'; script-src 'nonce-${NONCE}' http://127.0.0.1:${agg}; connect-src ws://127.0.0.1:${agg}${workerSrcBlob ? '; worker-src blob:' : ''}`;
  return { html, headers: { 'content-security-policy': csp } };
}

/** The whitelist the snippet page records into (plus examples/page-metrics-whitelist.json for pageMetrics). */
export const SNIPPET_PAGE_WHITELIST = {
  allowedMetrics: [
    { name: 'usage_total', help: 'feature use', type: 'counter', labels: [{ name: 'feature', allowedValues: ['a', 'b', 'c'] }] },
    { name: 'rt_seconds', help: 'response time', type: 'histogram', labels: [{ name: 'host', allowedValues: ['x', 'y'] }], buckets: [0.1, 0.5, 1] },
  ],
  sessionLabels: [{ name: 'app', allowedValues: ['student', 'teacher'] }],
};

/** SNIPPET_PAGE_WHITELIST as a file (`file`) in a temporary directory of its own (`dir`: the caller removes it). */
export function snippetWhitelistFile(prefix: string): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const file = path.join(dir, 'whitelist.json');
  writeFileSync(file, JSON.stringify(SNIPPET_PAGE_WHITELIST));
  return { dir, file };
}
