/**
 * Entry of /promstream.js, the classic script (an IIFE, ES2018) the snippet loads; scripts/build-browser.mjs
 * bundles it with esbuild. It replaces the snippet's queue stub with the real `promstream` function and
 * replays what the page queued, and starts the collectors `init` asked for. Nothing here may throw into
 * the page: a collector that cannot start warns and the others go on.
 */
import { BrowserClient } from './browser.js';
import { startApiMetrics } from './collectors/api.js';
import { startErrorMetrics } from './collectors/errors.js';
import { startRoutes, type PageViews } from './collectors/routes.js';
import { startPageMetrics } from './page-metrics.js';
import { installSnippet } from './snippet-commands.js';

const warn = (message: string): void => console.warn(message);
const attempt = <T>(what: string, start: () => T): T | undefined => {
  try {
    return start();
  } catch (err) {
    warn(`promstream: ${what} unavailable here: ${String(err)}`);
    return undefined;
  }
};

try {
  installSnippet(window as unknown as { promstream?: unknown }, {
    start(options, c, recorded) {
      const client = new BrowserClient(options, recorded);
      const route = c.route;
      const views: PageViews | undefined = route === undefined ? undefined : attempt('routes are', () => startRoutes(client, { route, warn }));
      if (c.pageMetrics) attempt('page metrics are', () => startPageMetrics(client, { views }));
      if (c.apiMetrics) attempt('API metrics are', () => startApiMetrics(client, { views, aggregatorUrl: options.url }));
      if (c.errorMetrics) attempt('error metrics are', () => startErrorMetrics(client, { views }));
      return client;
    },
    warn,
  });
} catch (err) {
  warn(`promstream: could not start: ${String(err)}`);
}
