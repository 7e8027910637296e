/**
 * What both transports' HTTP sides do alike: splitting the request target, reading the offered
 * subprotocols, the plain-text answers of our own, and checking the slow-request deadline.
 */
import { STATUS_CODES } from 'node:http';
import type { HttpResponse } from './types.js';

/** Sec-WebSocket-Protocol is a comma list of tokens in order of preference; repeated headers arrive joined with ', '. */
export function parseProtocols(header: string): string[] {
  return header
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

/** '/ws?route=x' → { path: '/ws', query: 'route=x' }. */
export function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf('?');
  return q === -1 ? { path: url, query: '' } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

export const statusLine = (status: number): string => `${status} ${STATUS_CODES[status] ?? 'Unknown'}`;

/** One of our own plain-text answers (404, 500, 503, a refused upgrade). */
export function plainText(status: number, body: string): HttpResponse & { readonly body: string } {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8' }, body };
}

export const NOT_FOUND = plainText(404, 'not found');
export const BODY_REFUSED = plainText(400, 'bad request: promstream takes no request body\n');
export const INTERNAL_ERROR = plainText(500, 'internal error');
export const SHUTTING_DOWN = plainText(503, 'server is shutting down');

/** The slow-request deadline both transports take; a caller bug, not user input, when it is off. */
export function checkHeadersTimeout(ms: number): void {
  if (!Number.isInteger(ms) || ms < 1) throw new RangeError(`httpHeadersTimeoutMs must be a positive integer (got ${ms})`);
}

/**
 * Our routes (GET and HEAD, and the WebSocket upgrade) take no body, so a request that announces one
 * is refused, and with it every ambiguous framing: a Transfer-Encoding of any kind (uWS accepts ones
 * it does not know, e.g. "xchunked"), a Content-Length other than a single 0, or several (uWS frames
 * by the first and would run what the second covers as a request of its own: smuggling). Node's own
 * parser refuses some of these before we see them; this holds both transports to one rule. `headers`
 * as both transports pass them: lower-case names, repeated headers joined with ', '.
 */
export function announcesBody(headers: Readonly<Record<string, string | undefined>>): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length.trim() !== '0');
}
