import type { Logger } from 'pino';
import type { HttpHandler } from '../transport/types.js';
import { loadBrowserScriptRoutes } from './browser-script-routes.js';
import type { DemoStatsRoute } from './demo-stats-route.js';

export type StaticRoutes = ReadonlyMap<string, { readonly contentType: string; readonly body: string | Uint8Array }>;

/** Plain HTTP on the public side: /healthz, the browser script, the demo's stats and page; null → 404. */
export function publicRoutes(log: Logger, demoStats: DemoStatsRoute | null, staticRoutes: StaticRoutes | undefined): HttpHandler {
  const browserScript = loadBrowserScriptRoutes(log).route;
  return (req) => {
    if (req.path === '/healthz') return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok\n' };
    const served = browserScript(req) ?? demoStats?.handle(req) ?? null;
    if (served !== null) return served;
    const route = staticRoutes?.get(req.path);
    if (route !== undefined && (req.method === 'GET' || req.method === 'HEAD')) {
      return { status: 200, headers: { 'content-type': route.contentType }, body: route.body };
    }
    return null;
  };
}
