/**
 * Entry of /promstream.js, the classic script (an IIFE, ES2018) the snippet loads; scripts/build-browser.mjs
 * bundles it with esbuild. It replaces the snippet's queue stub with the real `promstream` function and
 * replays what the page queued. Nothing here may throw into the page.
 */
import { BrowserClient } from './browser.js';
import { startPageMetrics } from './page-metrics.js';
import { installSnippet } from './snippet-commands.js';

try {
  installSnippet(window as unknown as { promstream?: unknown }, {
    start(options, pageMetrics, recorded) {
      const client = new BrowserClient(options, recorded);
      if (pageMetrics) {
        try {
          startPageMetrics((metric, value) => client.observe(metric, {}, value));
        } catch (err) {
          console.warn('promstream: page metrics are unavailable here:', err);
        }
      }
      return client;
    },
    warn: (message) => console.warn(message),
  });
} catch (err) {
  console.warn('promstream: could not start:', err);
}
