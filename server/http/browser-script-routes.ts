/**
 * The browser script on the public side, for pages on any origin:
 *
 * - `/promstream.js`: always the current build; a short max-age, so an upgrade reaches pages within
 *   minutes, and an ETag, so a revalidation is a 304.
 * - `/promstream.<hash>.js`: the same bytes under their content hash, immutable for a year; the URL the
 *   README snippet and `promstream snippet` give, with its `integrity` value. Only the current hash
 *   exists: a page pinned to an older one must update its snippet (SRI would refuse other bytes anyway).
 *
 * Both are cross-origin scripts: `Access-Control-Allow-Origin: *` (needed for `integrity` and
 * `crossorigin`) and `Cross-Origin-Resource-Policy: cross-origin` (for pages that require CORP).
 */
import type { Logger } from 'pino';
import { BrowserScriptMissing, loadBrowserScript, type BrowserScript } from './browser-script.js';
import type { HttpHandler } from '../transport/types.js';

/** Seconds a browser may use /promstream.js without asking again. */
export const EVERGREEN_MAX_AGE_SECONDS = 300;
const IMMUTABLE_MAX_AGE_SECONDS = 365 * 24 * 3600;



/** True when If-None-Match lists one of the tags (weak comparison, RFC 9110 §13.1.2). */
function matches(ifNoneMatch: string | undefined, tags: readonly string[]): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim().replace(/^W\//, '');
    return tag === '*' || tags.includes(tag);
  });
}

/** True when Accept-Encoding lists gzip without q=0. */
function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (acceptEncoding === undefined) return false;
  return acceptEncoding.split(',').some((part) => {
    const [coding, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    if (coding !== 'gzip') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/**
 * Routes for the built script. `script` null (dist/browser missing: running from sources before a
 * build) answers 404; the caller logs that once.
 */
export function browserScriptRoutes(script: BrowserScript | null): HttpHandler {
  if (script === null) return () => null;
  const { manifest } = script;
  const versionedPath = `/${manifest.file}`;
  const identityTag = `"${manifest.hash}"`;
  const gzipTag = `"${manifest.hash}-gzip"`;
  return (req) => {
    const evergreen = req.path === '/promstream.js';
    if (!evergreen && req.path !== versionedPath) return null;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return { status: 405, headers: { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, body: 'GET or HEAD\n' };
    }
    const gzip = acceptsGzip(req.headers['accept-encoding']);
    const headers: Record<string, string> = {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': evergreen ? `public, max-age=${EVERGREEN_MAX_AGE_SECONDS}` : `public, max-age=${IMMUTABLE_MAX_AGE_SECONDS}, immutable`,
      etag: gzip ? gzipTag : identityTag,
      vary: 'accept-encoding',
      'access-control-allow-origin': '*',
      'cross-origin-resource-policy': 'cross-origin',
      'x-content-type-options': 'nosniff',
    };
    const body = gzip ? script.gzipped : script.body;
    // On a 304 too: the length of the 200 it stands for (RFC 9110 §8.6), which uWS needs (uws-transport.ts).
    headers['content-length'] = String(body.byteLength);
    if (matches(req.headers['if-none-match'], [identityTag, gzipTag])) return { status: 304, headers };
    if (gzip) headers['content-encoding'] = 'gzip';
    return { status: 200, headers, body };
  };
}

/** Loads dist/browser for the routes; when missing, warns once and serves 404. */
export function loadBrowserScriptRoutes(log: Logger, dir?: string): { route: HttpHandler; script: BrowserScript | null } {
  try {
    const script = loadBrowserScript(dir);
    return { route: browserScriptRoutes(script), script };
  } catch (err) {
    if (!(err instanceof BrowserScriptMissing)) throw err;
    log.warn({ reason: err.message }, '/promstream.js is not available (dist/browser missing); it answers 404');
    return { route: browserScriptRoutes(null), script: null };
  }
}
