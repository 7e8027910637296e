/**
 * Real headless Chromium for the browser tests: Debian's `chromium` package, driven by playwright-core
 * (never a downloaded browser). Pages come from a tiny HTTP server of their own, so that they sit on
 * another origin than the aggregator, as they do in production.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { describeRequiring } from './prometheus.js';

/** `CHROMIUM_BIN`, else where Debian's `chromium` package puts it (CI installs that). */
export const chromiumBin: string = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

function chromiumAvailable(): boolean {
  try {
    accessSync(chromiumBin, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `describe` for suites that drive Chromium: skipped loudly without it, failing under CI. */
export const describeWithChromium = describeRequiring({
  what: 'chromium binary',
  available: chromiumAvailable,
  installHint: `apt-get install chromium (looked at ${chromiumBin}; set CHROMIUM_BIN to override)`,
});

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumBin,
    // --headless explicitly: Debian's wrapper script passes its own flags; QUIC, sync, component
    // updates and background networking off so that the browser talks to 127.0.0.1 only.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export interface PageServer {
  /** e.g. http://127.0.0.1:41234 */
  readonly origin: string;
  readonly port: number;
  close(): Promise<void>;
}

export interface TestPage {
  readonly html: string;
  /** Extra response headers, e.g. a Content-Security-Policy. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Serves `page(url)` as HTML for every GET (404 for /favicon.ico), on 127.0.0.1 and a free port. */
export async function startPageServer(page: (url: URL) => TestPage): Promise<PageServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/favicon.ico') {
      res.writeHead(404).end();
      return;
    }
    const { html, headers } = page(url);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
